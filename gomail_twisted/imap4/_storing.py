# -*- test-case-name: tests.test_imap4_messages -*-
"""
STORE and UID STORE (RFC 3501 6.4.6, 6.4.8), with CONDSTORE's
C{UNCHANGEDSINCE} (RFC 7162 3.1.3).

Each message named gets an untagged FETCH of its flags as they are now
(unless C{.SILENT}), with its UID for UID STORE and its UID and MODSEQ once
CONDSTORE is on; with CONDSTORE even C{.SILENT} reports the messages whose
mod-sequence changed (RFC 7162 3.1.3).  Messages left alone because they
changed since C{UNCHANGEDSINCE} are named in C{[MODIFIED ...]}.  A keyword
new to the mailbox is announced with C{FLAGS} first (RFC 3501 7.2.6).

A message that another session expunged, the client not told yet (a ghost,
L{SelectedMailbox.isExpunged}), cannot be stored: the others are, and the
command ends with C{NO [EXPUNGEISSUED]}, or C{OK [EXPUNGEISSUED]} with
C{.SILENT} (RFC 2180 4.2, RFC 5530 3).  UID STORE sends the pending
C{EXPUNGE}s first, after which a ghost's UID names nothing.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred

from gomail_twisted.imap4 import _encode as E
from gomail_twisted.imap4 import _status as S
from gomail_twisted.imap4._base import ServerBase
from gomail_twisted.imap4._commands import Command, Store
from gomail_twisted.imap4._selected import SelectedMailbox
from gomail_twisted.imap4._status import IMAPStatus
from gomail_twisted.maildir.interfaces import FlagUpdate

#: How a STORE that named ghosts ends (RFC 2180 4.2.2, 4.2.3), and with
#: C{.SILENT} (4.2.1).
EXPUNGE_ISSUED = IMAPStatus.no("Some of the messages no longer exist", "EXPUNGEISSUED")
EXPUNGE_ISSUED_SILENT = IMAPStatus.ok(
    "Some of the messages no longer exist", "EXPUNGEISSUED"
)


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
            return S.READ_ONLY
        if arguments.unchangedSince is not None:
            # A CONDSTORE-enabling command (RFC 7162 3.1).
            self.enabled.add("CONDSTORE")
            selected.condstore = True
        if command.uid:
            self.write(selected.flushExpunges())
        uids = selected.named(arguments.numbers, command.uid)
        if not uids:
            return None

        def stored(update: FlagUpdate) -> IMAPStatus | None:
            self.write(_responses(selected, command.uid, arguments, uids, update))
            return _status(selected, command.uid, arguments, uids, update)

        d: Deferred[FlagUpdate] = selected.folder.setFlags(
            uids, arguments.flags, arguments.change, arguments.unchangedSince
        )
        return d.addCallback(stored)


def _responses(
    selected: SelectedMailbox,
    uid: bool,
    arguments: Store,
    uids: list[int],
    update: FlagUpdate,
) -> bytes:
    """
    The untagged responses of a STORE done.

    @param selected: the mailbox.
    @param uid: whether it was UID STORE.
    @param arguments: its arguments.
    @param uids: the messages it named, ascending.
    @param update: what the store did.
    @return: C{FLAGS} for a new keyword, and the C{FETCH} responses.
    """
    out = [selected.stored(update.updated)]
    changed = {info.uid: info for info in update.updated}
    if arguments.silent:
        if not selected.condstore:
            return out[0]
        shown = list(update.updated)
    else:
        skipped = set(update.unchanged)
        rest = [u for u in uids if u not in changed and u not in skipped]
        found = zip(rest, selected.infos(rest), strict=True)
        unchanged = {u: info for u, info in found if info is not None}
        shown = [
            info
            for info in (changed.get(u) or unchanged.get(u) for u in uids)
            if info is not None
        ]
    for info in shown:
        number = selected.sequenceNumber(info.uid)
        if number is not None:
            out.append(selected.flagsResponse(number, info, uid))
    return b"".join(out)


def _status(
    selected: SelectedMailbox,
    uid: bool,
    arguments: Store,
    uids: list[int],
    update: FlagUpdate,
) -> IMAPStatus | None:
    """
    How a STORE done ends: C{[MODIFIED]} for messages left alone (RFC 7162
    3.1.3), C{[EXPUNGEISSUED]} for ghosts (RFC 2180 4.2).

    @return: the status, or L{None} for a plain C{OK}.
    """
    if update.unchanged:
        if uid:
            named = sorted(update.unchanged)
        else:
            numbers = map(selected.sequenceNumber, update.unchanged)
            named = sorted(n for n in numbers if n is not None)
        if named:
            code = "MODIFIED " + E.sequenceSet(named).decode()
            return IMAPStatus.ok("Conditional STORE failed", code)
    if uid:
        # The ghosts were expunged before the command looked: their UIDs
        # name nothing (RFC 3501 6.4.8), and their EXPUNGE ends it.
        return None
    if any(map(selected.isExpunged, uids)):
        if arguments.silent:
            return IMAPStatus.ok(
                "Some of the messages no longer exist", "EXPUNGEISSUED"
            )
        return EXPUNGE_ISSUED
    return None
