# -*- test-case-name: tests.test_imap4_selected -*-
"""
The selected mailbox of one session: the folder view, the message
sequence numbers as the client knows them, and the changes made elsewhere
that it has not been told yet.

Message sequence numbers (RFC 3501 2.3.1.2) must stay what the client was
told: a message that another session expunged keeps its number until this
session sends C{EXPUNGE} for it, which it may not do during FETCH, STORE or
SEARCH (RFC 3501 7.4.1; UID commands may).  So the store's changes are
gathered here as they come (the view's L{IFolderListener}), and sent by
L{SelectedMailbox.updates} where the protocol allows.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Sequence

from zope.interface import implementer

from gomail_twisted.imap4 import _encode as E
from gomail_twisted.imap4._commands import SequenceSet
from gomail_twisted.imap4._status import IMAPStatus
from gomail_twisted.maildir.interfaces import IFolder, IFolderListener, MessageInfo

#: Flags that every mailbox accepts, with C{\\*} for new keywords.
SYSTEM_FLAGS = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")


@implementer(IFolderListener)
class SelectedMailbox:
    """
    One session's selected mailbox.

    @ivar folder: the open view.
    @ivar uids: the UIDs as the client knows them: message sequence number
        C{n} is C{uids[n - 1]}.
    @ivar gone: the folder was deleted or renamed, or its UIDVALIDITY
        changed: the session must end (RFC 3501 7.1.5).
    @ivar condstore: CONDSTORE is on for the mailbox (RFC 7162 3.1):
        unsolicited FETCH responses carry UID and MODSEQ.
    """

    def __init__(
        self,
        folder: IFolder,
        condstore: bool = False,
        onChange: Callable[[], None] | None = None,
    ) -> None:
        """
        @param folder: the open view.
        @param condstore: see L{condstore}.
        @param onChange: called when a change arrives (for IDLE).
        """
        self.folder = folder
        self.condstore = condstore
        self.onChange = onChange
        self.gone = False
        messages = folder.messages()
        self.uids: list[int] = [m.uid for m in messages]
        self._infoSource: object = None
        self._info: dict[int, MessageInfo] = {}
        self._expunged: set[int] = set()
        self._flagged: dict[int, MessageInfo] = {}
        self._recentTold = self.recentCount()
        folder.addListener(self)

    def close(self) -> None:
        """
        Deselect: stop listening and close the view.
        """
        self.folder.removeListener(self)
        self.folder.close()

    # What the store says.

    def messagesAdded(self, folder: IFolder, messages: Sequence[MessageInfo]) -> None:
        self._changed()

    def flagsChanged(self, folder: IFolder, messages: Sequence[MessageInfo]) -> None:
        for info in messages:
            self._flagged[info.uid] = info
        self._changed()

    def messagesExpunged(self, folder: IFolder, uids: Sequence[int]) -> None:
        self._expunged.update(uids)
        for uid in uids:
            self._flagged.pop(uid, None)
        self._changed()

    def folderGone(self, folder: IFolder) -> None:
        self.gone = True
        self._changed()

    def _changed(self) -> None:
        if self.onChange is not None:
            self.onChange()

    # Looking messages up.

    def info(self, uid: int) -> MessageInfo | None:
        """
        @param uid: a UID.
        @return: what the store knows of the message now, or L{None} when
            it is gone.
        """
        messages = self.folder.messages()
        if messages is not self._infoSource:
            self._info = {m.uid: m for m in messages}
            self._infoSource = messages
        return self._info.get(uid)

    def sequenceNumber(self, uid: int) -> int | None:
        """
        @param uid: a UID.
        @return: its message sequence number as the client knows it, or
            L{None}.
        """
        i = bisect_left(self.uids, uid)
        if i < len(self.uids) and self.uids[i] == uid:
            return i + 1
        return None

    def bySequence(self, numbers: SequenceSet) -> list[int]:
        """
        The messages a set of sequence numbers names.

        @param numbers: the set, from the client.
        @return: the indexes into L{uids}, ascending.
        @raise IMAPStatus: (C{BAD}) a number is past the last message
            (RFC 3501 6.4.8 makes that an error; C{*} on an empty mailbox
            too).
        """
        count = len(self.uids)
        found: list[int] = []
        for low, high in numbers.bounds(count):
            if low < 1 or high > count:
                raise IMAPStatus.bad("Invalid message sequence number")
            found.extend(range(low - 1, high))
        return found

    def byUID(self, numbers: SequenceSet) -> list[int]:
        """
        The messages a set of UIDs names; UIDs of no message are passed
        over (RFC 3501 6.4.8).

        @param numbers: the set, from the client.
        @return: the indexes into L{uids}, ascending.
        """
        return numbers.indexes(self.uids)

    def select(self, numbers: SequenceSet, uid: bool) -> list[int]:
        """
        L{byUID} or L{bySequence}.
        """
        return self.byUID(numbers) if uid else self.bySequence(numbers)

    def recentCount(self) -> int:
        """
        @return: how many of the messages the client knows are recent to
            this session.
        """
        recent = self.folder.recent
        if not recent:
            return 0
        return sum(1 for uid in recent if self.sequenceNumber(uid) is not None)

    # What the client is told.

    def expungedHere(self, uids: Iterable[int]) -> bytes:
        """
        This session expunged messages: forget them and say so.

        @param uids: their UIDs.
        @return: the untagged C{EXPUNGE} responses.
        """
        self._expunged.update(uids)
        return self._sendExpunges()

    def _sendExpunges(self) -> bytes:
        gone = self._expunged
        self._expunged = set()
        if not gone:
            return b""
        kept: list[int] = []
        out: list[bytes] = []
        # Each EXPUNGE lowers the numbers after it at once (RFC 3501
        # 7.4.1): the n-th one removed is sent as its number less n.
        for index, uid in enumerate(self.uids):
            if uid in gone:
                out.append(b"* %d EXPUNGE\r\n" % (index + 1 - len(out),))
            else:
                kept.append(uid)
        self.uids = kept
        return b"".join(out)

    def updates(self, expunge: bool) -> bytes:
        """
        What the client has not been told: C{EXPUNGE} (when C{expunge}),
        C{EXISTS} and C{RECENT} for new messages, C{FETCH} for others'
        flag changes.

        @param expunge: whether C{EXPUNGE} responses may be sent now.
        @return: the untagged responses.
        """
        out = [self._sendExpunges()] if expunge else []
        messages = self.folder.messages()
        last = self.uids[-1] if self.uids else 0
        exists = False
        if messages and messages[-1].uid > last:
            start = bisect_right([m.uid for m in messages], last)
            pending = self._expunged
            self.uids.extend(m.uid for m in messages[start:] if m.uid not in pending)
            out.append(b"* %d EXISTS\r\n" % (len(self.uids),))
            exists = True
        recent = self.recentCount()
        if exists or recent != self._recentTold:
            out.append(b"* %d RECENT\r\n" % (recent,))
            self._recentTold = recent
        if self._flagged:
            flagged, self._flagged = self._flagged, {}
            for uid in sorted(flagged):
                number = self.sequenceNumber(uid)
                if number is not None:
                    out.append(self.flagsResponse(number, flagged[uid], uid=False))
        return b"".join(out)

    def flagsResponse(self, number: int, info: MessageInfo, uid: bool) -> bytes:
        """
        An untagged C{FETCH} of a message's flags, with its UID when asked
        for (a UID command) or when CONDSTORE is on, and its MODSEQ when
        CONDSTORE is on (RFC 7162 3.2).

        @param number: its sequence number.
        @param info: the message.
        @param uid: include the UID.
        @return: the response line.
        """
        items = []
        if uid or self.condstore:
            items.append(b"UID %d" % (info.uid,))
        items.append(b"FLAGS " + self.flagList(info.uid, info.flags))
        if self.condstore:
            items.append(b"MODSEQ (%d)" % (info.modSeq,))
        return b"* %d FETCH (%s)\r\n" % (number, b" ".join(items))

    def flagList(self, uid: int, flags: Iterable[str]) -> bytes:
        """
        A message's flags as the client sees them: the store's, and
        C{\\Recent} when it is recent to this session.

        @param uid: the message.
        @param flags: its flags in the store.
        @return: the encoded flag list.
        """
        ordered = sorted(flags)
        if uid in self.folder.recent:
            ordered.append("\\Recent")
        try:
            return E.flagList(ordered)
        except ValueError:
            # A keyword no client could read (from a foreign writer).
            return E.flagList(f for f in ordered if _isFlag(f))


def _isFlag(flag: str) -> bool:
    try:
        E.flagList([flag])
    except ValueError:
        return False
    return True
