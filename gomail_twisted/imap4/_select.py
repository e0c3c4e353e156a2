# -*- test-case-name: tests.test_imap4_select -*-
"""
Selecting a mailbox and what happens to it while selected: SELECT and
EXAMINE (RFC 3501 6.3.1, 6.3.2; CONDSTORE, RFC 7162 3.1.8), CLOSE,
UNSELECT (RFC 3691), CHECK, EXPUNGE and UID EXPUNGE (RFC 4315 2.1), NOOP
and IDLE (RFC 2177).

Changes made elsewhere (another session, an SMTP delivery, another
process) reach the client at the end of each command, as far as RFC 3501
7.4.1 allows (L{SelectedMailbox.updates}); in IDLE, as soon as the store
tells of them.
"""

from __future__ import annotations

from collections.abc import Sequence

from twisted.internet.defer import Deferred

from gomail_twisted.imap4 import _encode as E
from gomail_twisted.imap4 import _status as S
from gomail_twisted.imap4._base import ANSWERED, ServerBase
from gomail_twisted.imap4._commands import Command, Expunge, Select
from gomail_twisted.imap4._selected import SYSTEM_FLAGS, SelectedMailbox
from gomail_twisted.imap4._state import State
from gomail_twisted.imap4._status import IMAPStatus
from gomail_twisted.maildir.interfaces import SEEN, IFolder


class SelectCommands(ServerBase):
    """
    SELECT, EXAMINE, CLOSE, UNSELECT, CHECK, EXPUNGE, NOOP, IDLE.
    """

    _idling = False

    def doSelect(self, command: Command) -> Deferred[IMAPStatus]:
        arguments = command.arguments
        assert isinstance(arguments, Select)
        if self.selected is not None:
            # RFC 3501 6.3.1: the mailbox is closed first, whatever comes.
            self.deselect()
            self._untagged(IMAPStatus.ok("Previous mailbox closed", "CLOSED"))
        if arguments.condstore:
            self.enabled.add("CONDSTORE")

        def opened(folder: IFolder) -> IMAPStatus:
            if self.closed:
                folder.close()
                return S.TEMPORARY_FAILURE
            selected = SelectedMailbox(
                folder, "CONDSTORE" in self.enabled, self._mailboxChanged
            )
            self.selected = selected
            self.state = State.SELECTED
            self.write(_selectResponses(selected))
            access = "READ-ONLY" if folder.readOnly else "READ-WRITE"
            return IMAPStatus.ok(f"{command.name} completed", access)

        d: Deferred[IFolder] = self.account.openFolder(
            arguments.mailbox, arguments.readOnly
        )
        return d.addCallback(opened)

    def doClose(self, command: Command) -> object:
        selected = self.selected
        assert selected is not None
        if selected.folder.readOnly:
            self.deselect()
            return None

        def expunged(_: object) -> None:
            # RFC 3501 6.4.2: removed silently, no EXPUNGE responses.
            self.deselect()

        return selected.folder.expunge().addCallback(expunged)

    def doUnselect(self, command: Command) -> None:
        self.deselect()

    def doCheck(self, command: Command) -> Deferred[None]:
        assert self.selected is not None
        return self.selected.folder.refresh()

    def doNoop(self, command: Command) -> object:
        if self.selected is None:
            return None
        return self.selected.folder.refresh()

    def doExpunge(self, command: Command) -> Deferred[None]:
        selected = self.selected
        assert selected is not None
        uids = None
        if isinstance(command.arguments, Expunge):
            uids = [selected.uids[i] for i in selected.byUID(command.arguments.uids)]

        def expunged(removed: Sequence[int]) -> None:
            self.write(selected.expungedHere(removed))

        d: Deferred[Sequence[int]] = selected.folder.expunge(uids)
        return d.addCallback(expunged)

    # IDLE.

    def doIdle(self, command: Command) -> object:
        self.write(b"+ idling\r\n")
        self._idling = True
        self._sendUpdates()
        self.expectLine(command.tag, self._idleLine)
        return ANSWERED

    def _idleLine(self, line: bytes) -> None:
        self._idling = False
        if line.upper() == b"DONE":
            self.finishPending(IMAPStatus.ok("IDLE terminated"))
        else:
            self.finishPending(IMAPStatus.bad("Expected DONE"))

    def _mailboxChanged(self) -> None:
        """
        The store told the selected mailbox of a change: in IDLE, say it
        now (RFC 2177 3).
        """
        if self._idling and not self.closed:
            self._sendUpdates()

    def _sendUpdates(self) -> None:
        selected = self.selected
        if selected is None:
            return
        self.write(selected.updates(expunge=True))
        if selected.gone:
            self._idling = False
            self._untagged(S.MAILBOX_GONE)
            self.closeConnection()

    def deselect(self) -> None:
        self._idling = False
        super().deselect()


def _selectResponses(selected: SelectedMailbox) -> bytes:
    """
    The untagged responses of SELECT and EXAMINE (RFC 3501 6.3.1, RFC 4315
    3, RFC 7162 3.1.2.1).

    @param selected: the mailbox just selected.
    @return: the responses.
    """
    folder = selected.folder
    messages = folder.messages()
    keywords: set[str] = set()
    firstUnseen = 0
    for number, info in enumerate(messages, 1):
        if len(info.flags) > 0:
            keywords.update(f for f in info.flags if not f.startswith("\\"))
        if not firstUnseen and SEEN not in info.flags:
            firstUnseen = number
    flags = [*SYSTEM_FLAGS, *sorted(keywords)]
    try:
        flagList = E.flagList(flags)
    except ValueError:
        flagList = E.flagList(SYSTEM_FLAGS)
        flags = list(SYSTEM_FLAGS)
    permanent = (
        b"()" if folder.readOnly else E.flagList([*flags, "\\*"], allowWildcard=True)
    )
    out = [
        b"* FLAGS " + flagList + b"\r\n",
        b"* OK [PERMANENTFLAGS " + permanent + b"] Flags permitted\r\n",
        b"* %d EXISTS\r\n" % (len(selected.uids),),
        b"* %d RECENT\r\n" % (selected.recentCount(),),
    ]
    if firstUnseen:
        out.append(b"* OK [UNSEEN %d] First unseen\r\n" % (firstUnseen,))
    out += [
        b"* OK [UIDVALIDITY %d] UIDs valid\r\n" % (folder.uidValidity,),
        b"* OK [UIDNEXT %d] Predicted next UID\r\n" % (folder.uidNext,),
        b"* OK [HIGHESTMODSEQ %d] Highest\r\n" % (folder.highestModSeq,),
    ]
    return b"".join(out)
