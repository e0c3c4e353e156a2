# -*- test-case-name: tests.test_imap4_updates -*-
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

Until then such a message is a ghost: the client still names it, the store
no longer has it, nor its flags (L{SelectedMailbox.isExpunged}).  What a
command does with a ghost follows RFC 2180 4: STORE stores the other
messages and ends with C{NO [EXPUNGEISSUED]} (4.2.2, 4.2.3; C{OK
[EXPUNGEISSUED]} with C{.SILENT}, 4.2.1); COPY and MOVE copy nothing and
end with C{NO [EXPUNGEISSUED]} (4.4.1, as Dovecot does).  FETCH, which
cannot keep a ghost readable (4.1.1), answers the other messages, sends
nothing for the ghost, and ends with C{NO [EXPUNGEISSUED]} (4.1.2, RFC 5530
3); Dovecot, which keeps a ghost's flags in its index, answers them and
gives its body parts as C{NIL} (4.1.3).  A UID command sends the pending
C{EXPUNGE}s first (L{SelectedMailbox.flushExpunges}), after which the
ghosts' UIDs name nothing (RFC 3501 6.4.8).

The work of a command that finds no change is constant: nothing here walks
the whole mailbox except selecting it, and sending C{EXPUNGE}s (one copy of
the UID list, in C).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from operator import attrgetter

from zope.interface import implementer

from gomail_twisted.imap4 import _encode as E
from gomail_twisted.imap4._commands import SequenceSet
from gomail_twisted.imap4._status import IMAPStatus
from gomail_twisted.maildir.interfaces import IFolder, IFolderListener, MessageInfo

#: Flags that every mailbox accepts, with C{\\*} for new keywords.
SYSTEM_FLAGS = ("\\Answered", "\\Flagged", "\\Deleted", "\\Seen", "\\Draft")

_UID = attrgetter("uid")
_FLAGS = attrgetter("flags")


@implementer(IFolderListener)
class SelectedMailbox:
    """
    One session's selected mailbox.

    @ivar folder: the open view.
    @ivar uids: the UIDs as the client knows them: message sequence number
        C{n} is C{uids[n - 1]}.  Ghosts (L{isExpunged}) stay until their
        C{EXPUNGE} is sent.
    @ivar keywords: the keywords the client was told of in C{FLAGS}
        (RFC 3501 7.2.6): those in use at SELECT, and each new one since.
    @ivar gone: the folder was deleted or renamed, or its UIDVALIDITY
        changed: the session must end (RFC 3501 7.1.5).
    @ivar condstore: CONDSTORE is on for the mailbox (RFC 7162 3.1):
        unsolicited FETCH responses carry UID and MODSEQ.
    @ivar onChange: called when the store tells of a change (for IDLE).
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
        @param onChange: see L{onChange}.
        """
        self.folder = folder
        self.condstore = condstore
        self.onChange = onChange
        self.gone = False
        messages = folder.messages()
        self.uids: list[int] = list(map(_UID, messages))
        inUse: frozenset[str] = frozenset().union(*map(_FLAGS, messages))
        self.keywords: set[str] = {
            f for f in inUse if not f.startswith("\\") and _isFlag(f)
        }
        # What this session was given as \Recent (RFC 3501 2.3.2), of the
        # messages the client knows: kept here, since the store forgets a
        # message at once when another session expunges it.
        self._recent = {uid for uid in folder.recent if self._index(uid) is not None}
        self._recentTold = len(self._recent)
        # What the store told and the client was not told yet.
        self._added: list[int] = []
        self._expunged: set[int] = set()
        self._flagged: dict[int, MessageInfo] = {}
        self._keywordsChanged = False
        # The messages as last seen, to remember what a message was once
        # another session expunged it (the store forgets it at once).
        self._seen = messages
        self._ghosts: dict[int, MessageInfo] = {}
        folder.addListener(self)

    def close(self) -> None:
        """
        Deselect: stop listening and close the view.
        """
        if not self.gone:
            # A view told its folder is gone has dropped its listeners.
            self.folder.removeListener(self)
        self.folder.close()

    # What the store says.

    def messagesAdded(self, folder: IFolder, messages: Sequence[MessageInfo]) -> None:
        self._seen = folder.messages()
        self._added.extend(map(_UID, messages))
        self._noteKeywords(messages)
        self._changed()

    def flagsChanged(self, folder: IFolder, messages: Sequence[MessageInfo]) -> None:
        flagged = self._flagged
        for info in messages:
            flagged[info.uid] = info
        self._noteKeywords(messages)
        self._changed()

    def messagesExpunged(self, folder: IFolder, uids: Sequence[int]) -> None:
        self._expunged.update(uids)
        seen = self._seen
        for uid in uids:
            last = self._flagged.pop(uid, None)
            if last is None:
                i = bisect_left(seen, uid, key=_UID)
                if i < len(seen) and seen[i].uid == uid:
                    last = seen[i]
            if last is not None:
                self._ghosts[uid] = last
        self._changed()

    def folderGone(self, folder: IFolder) -> None:
        self.gone = True
        self._changed()

    def _changed(self) -> None:
        if self.onChange is not None:
            self.onChange()

    def _noteKeywords(self, messages: Iterable[MessageInfo]) -> None:
        keywords = self.keywords
        for info in messages:
            for flag in info.flags:
                if flag not in keywords and not flag.startswith("\\") and _isFlag(flag):
                    keywords.add(flag)
                    self._keywordsChanged = True

    # Looking messages up.

    def _index(self, uid: int) -> int | None:
        uids = self.uids
        i = bisect_left(uids, uid)
        if i < len(uids) and uids[i] == uid:
            return i
        return None

    def info(self, uid: int) -> MessageInfo | None:
        """
        @param uid: a UID.
        @return: what the store knows of the message now, or L{None} when
            it is gone.
        """
        messages = self.folder.messages()
        i = bisect_left(messages, uid, key=_UID)
        if i < len(messages) and messages[i].uid == uid:
            info: MessageInfo = messages[i]
            return info
        return None

    def infos(self, uids: Sequence[int]) -> list[MessageInfo | None]:
        """
        L{info} of many messages at once.

        @param uids: UIDs, ascending.
        @return: for each, what the store knows of it, or L{None}.
        """
        if not uids:
            return []
        messages = self.folder.messages()
        found: list[MessageInfo | None] = []
        low, count = 0, len(messages)
        for uid in uids:
            low = bisect_left(messages, uid, low, count, key=_UID)
            if low < count and messages[low].uid == uid:
                found.append(messages[low])
            else:
                found.append(None)
        return found

    def ghost(self, uid: int) -> MessageInfo | None:
        """
        What a message another session expunged was when last seen, while
        the client still numbers it (RFC 2180 4.1.3: FETCH may answer its
        UID and flags).

        @param uid: a UID from L{uids}.
        @return: the message as last seen, or L{None}.
        """
        return self._ghosts.get(uid)

    def isExpunged(self, uid: int) -> bool:
        """
        Whether a message the client knows was expunged by another session
        (or process) and the client not told yet: a ghost.

        @param uid: a UID from L{uids}.
        """
        return uid in self._expunged

    def sequenceNumber(self, uid: int) -> int | None:
        """
        @param uid: a UID.
        @return: its message sequence number as the client knows it, or
            L{None}.
        """
        i = self._index(uid)
        return None if i is None else i + 1

    def bySequence(self, numbers: SequenceSet) -> list[int]:
        """
        The messages a set of sequence numbers names.

        @param numbers: the set, from the client.
        @return: the indexes into L{uids}, ascending.
        @raise IMAPStatus: (C{BAD}) a number is past the last message
            (RFC 3501 9, C{seq-number}; C{*} on an empty mailbox too).
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
        The messages a set of UIDs names, found by bisection whatever the
        ranges span; UIDs of no message are passed over (RFC 3501 6.4.8).

        @param numbers: the set, from the client.
        @return: the indexes into L{uids}, ascending.
        """
        return numbers.indexes(self.uids)

    def select(self, numbers: SequenceSet, uid: bool) -> list[int]:
        """
        L{byUID} or L{bySequence}.
        """
        return self.byUID(numbers) if uid else self.bySequence(numbers)

    def named(self, numbers: SequenceSet, uid: bool) -> list[int]:
        """
        The UIDs of the messages a command names, ghosts included.

        @param numbers: the set, from the client.
        @param uid: whether it holds UIDs (a UID command).
        @return: the UIDs, ascending.
        @raise IMAPStatus: see L{bySequence}.
        """
        uids = self.uids
        return [uids[i] for i in self.select(numbers, uid)]

    def recentCount(self) -> int:
        """
        @return: how many of the messages the client knows are recent to
            this session.
        """
        return len(self._recent)

    def isRecent(self, uid: int) -> bool:
        """
        @param uid: a UID.
        @return: whether the message is recent to this session.
        """
        return uid in self._recent

    # What the client is told.

    def expungedHere(self, uids: Iterable[int]) -> bytes:
        """
        This session expunged messages: forget them and say so, with those
        other sessions expunged.

        @param uids: their UIDs.
        @return: the untagged C{EXPUNGE} responses.
        """
        self._expunged.update(uids)
        return self._sendExpunges()

    def flushExpunges(self) -> bytes:
        """
        Send the C{EXPUNGE}s of others' expunges now: what a UID command
        does before it looks its messages up (RFC 3501 7.4.1).

        @return: the untagged C{EXPUNGE} responses.
        """
        return self._sendExpunges()

    def _sendExpunges(self) -> bytes:
        gone, self._expunged = self._expunged, set()
        for uid in gone:
            self._ghosts.pop(uid, None)
        if not gone or self.gone:
            return b""
        uids = self.uids
        indexes = [i for i in map(self._index, sorted(gone)) if i is not None]
        if len(indexes) < len(gone) and self._added:
            # Messages that came and went before they were numbered.
            self._added = [uid for uid in self._added if uid not in gone]
        if not indexes:
            return b""
        # Each EXPUNGE lowers the numbers after it at once (RFC 3501
        # 7.4.1): the n-th one sent is its number less n.
        out = [b"* %d EXPUNGE\r\n" % (i + 1 - n,) for n, i in enumerate(indexes)]
        kept: list[int] = []
        start = 0
        for i in indexes:
            kept += uids[start:i]
            start = i + 1
        kept += uids[start:]
        for i in indexes:
            self._recent.discard(uids[i])
            self._flagged.pop(uids[i], None)
        self.uids = kept
        return b"".join(out)

    def updates(self, expunge: bool) -> bytes:
        """
        What the client has not been told: C{EXPUNGE} (when C{expunge}),
        C{FLAGS} when a new keyword came into use, C{EXISTS} and C{RECENT}
        for new messages, C{FETCH} for others' flag changes (RFC 3501 7.4.1,
        7.3.1, 7.3.2, 7.2.6, 7.4.2).

        @param expunge: whether C{EXPUNGE} responses may be sent now.
        @return: the untagged responses.
        """
        if self.gone:
            return b""
        new = self._takeAdded() if self._added else []
        out = [self._sendExpunges()] if expunge and self._expunged else []
        out.append(self.announceKeywords())
        if new:
            self.uids += new
            recent = self.folder.recent
            self._recent.update(uid for uid in new if uid in recent)
            out.append(b"* %d EXISTS\r\n" % (len(self.uids),))
        recent = len(self._recent)
        if new or recent != self._recentTold:
            out.append(b"* %d RECENT\r\n" % (recent,))
            self._recentTold = recent
        if self._flagged:
            flagged, self._flagged = self._flagged, {}
            for uid in sorted(flagged):
                number = self.sequenceNumber(uid)
                if number is not None:
                    out.append(self.flagsResponse(number, flagged[uid], uid=False))
        return b"".join(out)

    def _takeAdded(self) -> list[int]:
        """
        The new messages to number, ascending.
        """
        added, self._added = self._added, []
        last = self.uids[-1] if self.uids else 0
        pending = self._expunged
        # A message added and expunged since the last command is never
        # told of.  A UID below the last known one cannot be given a
        # number without renumbering: the store hands out UIDs ascending.
        fresh = {uid for uid in added if uid > last}
        if pending:
            gone = fresh & pending
            pending -= gone
            fresh -= gone
        return sorted(fresh)

    def announceKeywords(self) -> bytes:
        """
        C{FLAGS} and C{PERMANENTFLAGS} again when a keyword came into use
        since they were last sent (RFC 3501 7.2.6), as Dovecot does.

        @return: the responses, or nothing.
        """
        if not self._keywordsChanged:
            return b""
        self._keywordsChanged = False
        return self.flagsResponses()

    def flagsResponses(self) -> bytes:
        """
        The C{FLAGS} response and the C{OK [PERMANENTFLAGS]} one (RFC 3501
        6.3.1): the system flags and the keywords in use; any new keyword
        may be stored, unless the mailbox is read-only.

        @return: the two responses.
        """
        flags = [*SYSTEM_FLAGS, *sorted(self.keywords)]
        out = b"* FLAGS " + E.flagList(flags) + b"\r\n"
        if self.folder.readOnly:
            return out + b"* OK [PERMANENTFLAGS ()] Read-only mailbox\r\n"
        permanent = E.flagList([*flags, "\\*"], allowWildcard=True)
        return out + b"* OK [PERMANENTFLAGS " + permanent + b"] Flags permitted\r\n"

    def stored(self, infos: Iterable[MessageInfo]) -> bytes:
        """
        This session changed flags (its own changes come back from its own
        calls, not from the store's listener): note new keywords, and bring
        up to date the flag changes of others still to be told, so they
        never undo the client's own.

        @param infos: the messages changed, as they are now.
        @return: C{FLAGS} and C{PERMANENTFLAGS} when a keyword is new, to
            send before the messages' C{FETCH} responses.
        """
        infos = list(infos)
        flagged = self._flagged
        for info in infos:
            pending = flagged.get(info.uid)
            if pending is not None and pending.modSeq <= info.modSeq:
                flagged[info.uid] = info
        self._noteKeywords(infos)
        return self.announceKeywords()

    def flagsResponse(self, number: int, info: MessageInfo, uid: bool) -> bytes:
        """
        An untagged C{FETCH} of a message's flags, with its UID when asked
        for (a UID command) or when CONDSTORE is on, and its MODSEQ when
        CONDSTORE is on (RFC 7162 3.1: both in every FETCH response once
        it is on).  See L{flagsTold}.

        @param number: its sequence number.
        @param info: the message.
        @param uid: include the UID.
        @return: the response line.
        """
        self.flagsTold(info)
        items = []
        if uid or self.condstore:
            items.append(b"UID %d" % (info.uid,))
        items.append(b"FLAGS " + self.flagList(info.uid, info.flags))
        if self.condstore:
            items.append(b"MODSEQ (%d)" % (info.modSeq,))
        return b"* %d FETCH (%s)\r\n" % (number, b" ".join(items))

    def flagsTold(self, info: MessageInfo) -> None:
        """
        The client was just sent a message's flags as they are in C{info}
        (a FETCH of C{FLAGS}): a flag change of another session still to
        be told that this supersedes is dropped.

        @param info: the message as sent.
        """
        pending = self._flagged.get(info.uid)
        if pending is not None and pending.modSeq <= info.modSeq:
            del self._flagged[info.uid]

    def flagList(self, uid: int, flags: Iterable[str]) -> bytes:
        """
        A message's flags as the client sees them: the store's, and
        C{\\Recent} when it is recent to this session.

        @param uid: the message.
        @param flags: its flags in the store.
        @return: the encoded flag list.
        """
        ordered = sorted(flags)
        if uid in self._recent:
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
