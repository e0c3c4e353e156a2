# -*- test-case-name: tests.test_imap4_messages -*-
"""
COPY, MOVE and their UID forms (RFC 3501 6.4.7, RFC 6851), answering
with C{COPYUID} (RFC 4315 3).

MOVE is one step in the store: the messages leave the selected mailbox as
they arrive in the other.  Its C{COPYUID} goes in an untagged C{OK}
before the C{EXPUNGE} responses (RFC 6851 4.3), which MOVE sends even in
its sequence-number form.  A read-only mailbox may be copied from, not
moved from.

A COPY or MOVE by sequence number that names a message another session
expunged, the client not told yet, copies nothing: it ends with
C{NO [EXPUNGEISSUED]} after the pending C{EXPUNGE}s (RFC 2180 4.4.1, as
Dovecot does).  The UID forms send those C{EXPUNGE}s first, after which
the UIDs name only messages still there.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred

from gomail_twisted.imap4 import _encode as E
from gomail_twisted.imap4 import _status as S
from gomail_twisted.imap4._base import ServerBase
from gomail_twisted.imap4._commands import Command, Transfer
from gomail_twisted.imap4._status import IMAPStatus
from gomail_twisted.imap4._storing import EXPUNGE_ISSUED
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
            return S.READ_ONLY
        if command.uid:
            self.write(selected.flushExpunges())
        uids = selected.named(arguments.numbers, command.uid)
        if not uids:
            # Only UIDs can name nothing (RFC 3501 6.4.8): no COPYUID.
            return IMAPStatus.ok(f"No messages to {command.name.lower()}")
        if not command.uid and any(map(selected.isExpunged, uids)):
            return EXPUNGE_ISSUED
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
