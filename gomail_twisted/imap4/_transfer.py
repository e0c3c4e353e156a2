# -*- test-case-name: tests.test_imap4_messages -*-
"""
COPY, MOVE and their UID forms (RFC 3501 6.4.7, RFC 6851), answering
with C{COPYUID} (RFC 4315 3).

MOVE is one step in the store: the messages leave the selected mailbox as
they arrive in the other.  Its C{COPYUID} goes in an untagged C{OK}
before the C{EXPUNGE} responses (RFC 6851 4.3), which MOVE sends even in
its sequence-number form.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred

from gomail_twisted.imap4 import _encode as E
from gomail_twisted.imap4._base import ServerBase
from gomail_twisted.imap4._commands import Command, Transfer
from gomail_twisted.imap4._status import IMAPStatus
from gomail_twisted.maildir.interfaces import CopyResult


def copyUID(result: CopyResult) -> str | None:
    """
    The C{COPYUID} response code (RFC 4315 3) of a copy, or L{None} when
    nothing was copied.

    @param result: what the store did.
    @return: such as C{"COPYUID 38505 304,319:320 3956:3958"}.
    """
    if not result.sourceUIDs:
        return None
    source = E.sequenceSet(result.sourceUIDs).decode()
    destination = E.sequenceSet(result.destinationUIDs).decode()
    return f"COPYUID {result.uidValidity} {source} {destination}"


class TransferCommands(ServerBase):
    """
    COPY and MOVE.
    """

    def doCopy(self, command: Command) -> object:
        arguments = command.arguments
        assert isinstance(arguments, Transfer)
        selected = self.selected
        assert selected is not None
        move = command.name == "MOVE"
        if move and selected.folder.readOnly:
            return IMAPStatus.no("Mailbox is read-only", "READ-ONLY")
        indexes = selected.select(arguments.numbers, command.uid)
        uids = [selected.uids[i] for i in indexes]
        if not uids:
            return IMAPStatus.ok(f"No messages to {command.name.lower()}")
        folder = selected.folder

        def copied(result: CopyResult) -> IMAPStatus:
            code = copyUID(result)
            if not move:
                return IMAPStatus.ok("COPY completed", code)
            if code is not None:
                self.write(IMAPStatus.ok("Moved", code).format())
            self.write(selected.expungedHere(result.sourceUIDs))
            return IMAPStatus.ok("MOVE completed")

        d: Deferred[CopyResult] = (
            folder.move(uids, arguments.mailbox)
            if move
            else folder.copy(uids, arguments.mailbox)
        )
        return d.addCallback(copied)
