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
from twisted.python.failure import Failure

from gomail_twisted.imap4 import _status as S
from gomail_twisted.imap4._base import ANSWERED, ServerBase, storeStatus
from gomail_twisted.imap4._commands import Command, Expunge, Select
from gomail_twisted.imap4._selected import SelectedMailbox
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
            # RFC 3501 6.3.1: the mailbox is closed first, whatever comes;
            # [CLOSED] (from QRESYNC, RFC 7162) says where its responses end.
            self.deselect()
            self._untagged(IMAPStatus.ok("Previous mailbox closed", "CLOSED"))
        if arguments.condstore:
            # A CONDSTORE-enabling command (RFC 7162 3.1.8).
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
            # RFC 3501 6.4.2: nothing is removed, and no error is given.
            self.deselect()
            return None

        def expunged(result: object) -> None:
            # RFC 3501 6.4.2: removed silently, no EXPUNGE responses; the
            # mailbox is closed even when that failed (as Dovecot does, with
            # the error untagged).
            self.deselect()
            if isinstance(result, Failure) and not selected.gone:
                status = storeStatus(result)
                if not isinstance(status, IMAPStatus):
                    self._log.failure(
                        "IMAP CLOSE failed to expunge for {peer}",
                        failure=result,
                        peer=self.peer[0],
                    )
                    status = S.TEMPORARY_FAILURE
                self._untagged(status)

        d: Deferred[Sequence[int]] = selected.folder.expunge()
        return d.addBoth(expunged)

    def doUnselect(self, command: Command) -> None:
        # RFC 3691 2: as CLOSE, without expunging.
        self.deselect()

    def doCheck(self, command: Command) -> Deferred[None]:
        # RFC 3501 6.4.1: the store is always checkpointed; look for what
        # other processes did, as NOOP does.
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
            # UID EXPUNGE (RFC 4315 2.1): only these of the \Deleted ones.
            self.write(selected.flushExpunges())
            uids = selected.named(command.arguments.uids, uid=True)

        def expunged(removed: Sequence[int]) -> None:
            self.write(selected.expungedHere(removed))

        d: Deferred[Sequence[int]] = selected.folder.expunge(uids)
        return d.addCallback(expunged)

    # IDLE.

    def doIdle(self, command: Command) -> object:
        self.write(b"+ idling\r\n")
        self._idling = True
        self._sendUpdates()
        if not self.closed:
            self.expectLine(command.tag, self._idleLine)
        return ANSWERED

    def _idleLine(self, line: bytes) -> None:
        # RFC 2177 3: DONE ends IDLE; anything else is an error, and ends
        # it too.
        self._idling = False
        if line.upper() == b"DONE":
            self.finishPending(IMAPStatus.ok("IDLE terminated"))
        else:
            self.finishPending(IMAPStatus.bad("Expected DONE"))

    def _mailboxChanged(self) -> None:
        """
        The store told the selected mailbox of a change: in IDLE, say it
        now (RFC 2177 3); otherwise at the end of the next command.
        """
        if self._idling and not self.closed:
            self._sendUpdates()

    def _sendUpdates(self) -> None:
        selected = self.selected
        if selected is None:
            return
        self.write(selected.updates(expunge=True))
        if selected.gone:
            # RFC 2180 3.3, RFC 3501 7.1.5.
            self._idling = False
            self._untagged(S.MAILBOX_GONE)
            self.closeConnection()

    def deselect(self) -> None:
        self._idling = False
        super().deselect()


def _selectResponses(selected: SelectedMailbox) -> bytes:
    """
    The untagged responses of SELECT and EXAMINE (RFC 3501 6.3.1, RFC 4315
    3, RFC 7162 3.1.2.1), in Dovecot's order.

    @param selected: the mailbox just selected.
    @return: the responses.
    """
    folder = selected.folder
    firstUnseen = next(
        (n for n, info in enumerate(folder.messages(), 1) if SEEN not in info.flags),
        0,
    )
    out = [
        selected.flagsResponses(),
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
