# -*- test-case-name: tests.test_imap4_messages -*-
"""
STORE and UID STORE (RFC 3501 6.4.6, 6.4.8), with CONDSTORE's
C{UNCHANGEDSINCE} (RFC 7162 3.1.3).

Each message named gets an untagged FETCH of its flags as they are now
(unless C{.SILENT}), with its UID for UID STORE and its MODSEQ once
CONDSTORE is on; with CONDSTORE even C{.SILENT} reports the messages whose
mod-sequence changed (RFC 7162 3.1.3).  Messages left alone because they changed since
C{UNCHANGEDSINCE} are named in C{[MODIFIED ...]}.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred

from gomail_twisted.imap4 import _encode as E
from gomail_twisted.imap4._base import ServerBase
from gomail_twisted.imap4._commands import Command, Store
from gomail_twisted.imap4._status import IMAPStatus
from gomail_twisted.maildir.interfaces import FlagUpdate


class StoreCommands(ServerBase):
    """
    STORE.
    """

    def doStore(self, command: Command) -> object:
        arguments = command.arguments
        assert isinstance(arguments, Store)
        selected = self.selected
        assert selected is not None
        if selected.folder.readOnly:
            return IMAPStatus.no("Mailbox is read-only", "READ-ONLY")
        if arguments.unchangedSince is not None:
            # A CONDSTORE-enabling command (RFC 7162 3.1).
            self.enabled.add("CONDSTORE")
            selected.condstore = True
        indexes = selected.select(arguments.numbers, command.uid)
        uids = [selected.uids[i] for i in indexes]
        if not uids:
            return None

        def stored(update: FlagUpdate) -> IMAPStatus:
            changed = {info.uid: info for info in update.updated}
            skipped = set(update.unchanged)
            out = []
            for uid in uids:
                if uid in skipped:
                    continue
                info = changed.get(uid)
                if info is None:
                    if arguments.silent:
                        continue
                    info = selected.info(uid)
                    if info is None:
                        continue
                elif arguments.silent and not selected.condstore:
                    continue
                number = selected.sequenceNumber(uid)
                if number is not None:
                    out.append(selected.flagsResponse(number, info, command.uid))
            self.write(b"".join(out))
            if skipped:
                if command.uid:
                    named = sorted(skipped)
                else:
                    named = sorted(
                        n
                        for n in map(selected.sequenceNumber, skipped)
                        if n is not None
                    )
                code = b"MODIFIED " + E.sequenceSet(named)
                return IMAPStatus.ok("Conditional STORE failed", code.decode())
            return IMAPStatus.ok("STORE completed")

        result: Deferred[IMAPStatus] = selected.folder.setFlags(
            uids, arguments.flags, arguments.change, arguments.unchangedSince
        ).addCallback(stored)
        return result
