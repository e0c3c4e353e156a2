# -*- test-case-name: tests.test_imap4_fetch -*-
"""
FETCH and UID FETCH (RFC 3501 6.4.5, 6.4.8, 7.4.2), with CONDSTORE's
C{CHANGEDSINCE} modifier and C{MODSEQ} item (RFC 7162 3.1.4).

The answer is streamed: responses are joined into writes of the
factory's C{chunkSize}, and between writes the command waits while the
transport is past its high-water mark (L{ServerBase.whenWritable}), so
a client that does not read holds the server to about one chunk beyond
it.  Items that need only the store's listing (C{UID}, C{FLAGS},
C{RFC822.SIZE}, ...) are made in one loop with no Deferred per message.
Messages are otherwise taken in batches: what FETCH keeps of them
(L{FetchData}: C{ENVELOPE}, C{BODYSTRUCTURE}, ... as sent, and the
structure), from the store's cache, computed once per message
(L{IFolder.cachedData}); then the octets their C{BODY[...]} items need,
read for many messages at once in the store's threads (L{IFolder.scan});
an item larger than a chunk is read a chunk at a time, in order, through
a reader of the store (L{IFolder.openMessage}), which reads ahead of the
command in its threads (a few hundred KiB a job) while the transport
drains.  The reader is closed when the item is sent, or the command
stops.

C{BODY[...]} (not C{PEEK}), C{RFC822} and C{RFC822.TEXT} set C{\\Seen}
on a read-write mailbox (RFC 3501 6.4.5): with one store call for the
whole command, before the first response.  Those messages' responses
then carry C{FLAGS} when it was not asked for (as Dovecot does) and,
once CONDSTORE is on, C{UID} and C{MODSEQ} (RFC 7162 3.1).

The items come in the order asked, each once; C{UID} first in UID
FETCH; the added C{FLAGS} and C{MODSEQ} last.  C{CHANGEDSINCE} (or the
C{MODSEQ} item) turns CONDSTORE on; it keeps the messages whose
mod-sequence is above it and adds C{MODSEQ} to each response.

A message another session expunged, the client not told yet, is
answered from what the session last knew of it when only that is asked
(UID, FLAGS, RFC822.SIZE, INTERNALDATE, MODSEQ), and the command ends with
C{OK [EXPUNGEISSUED]} (RFC 2180 4.1.3, as Dovecot); when its content is
asked, it gets no response: the others are answered and the command ends
with C{NO [EXPUNGEISSUED]} (RFC 2180 4.1.2, RFC 5530 3).  So does one that
goes while the command runs; if it goes in the middle of a literal
already announced, nothing can mend the response and the connection is
closed, as Dovecot does.  FETCH never sends EXPUNGE (RFC 3501 7.4.1); UID FETCH
sends the pending ones first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from gomail_twisted.imap4._base import ServerBase
from gomail_twisted.imap4._commands import Command, Fetch, FetchAttribute
from gomail_twisted.imap4._fetchbody import (
    CONTENT,
    FETCH_DATA_KIND,
    INFO,
    STRUCTURE,
    Extract,
    FetchData,
    FetchPlan,
    computeFetchData,
    extract,
    extractBytes,
    planFetch,
)
from gomail_twisted.imap4._selected import SelectedMailbox
from gomail_twisted.imap4._status import IMAPStatus
from gomail_twisted.imap4._structure import MessageStructure, parseStructure
from gomail_twisted.maildir.errors import NoSuchMessage, StoreError
from gomail_twisted.maildir.interfaces import (
    SEEN,
    FlagChange,
    IFolder,
    IMessageReader,
    MessageInfo,
)

#: How FETCH ends when messages it named no longer exist (RFC 2180
#: 4.1.2, RFC 5530 3).
EXPUNGE_ISSUED = IMAPStatus.no(
    "Some of the requested messages no longer exist", "EXPUNGEISSUED"
)
#: How FETCH ends when it answered such messages from what it knew of
#: them (RFC 2180 4.1.3).
EXPUNGED_ANSWERED = IMAPStatus.ok(
    "Some of the requested messages no longer exist", "EXPUNGEISSUED"
)

#: Messages whose structures are asked of the store at once.
BATCH = 256
#: The octets read for many small messages in one store call, at most.
GROUP_BYTES = 256 * 1024

_MODSEQ = FetchAttribute("MODSEQ")


class _Stop(Exception):
    """
    The connection is gone or closing: the command stops sending.
    """


class FetchCommands(ServerBase):
    """
    FETCH.
    """

    def doFetch(self, command: Command) -> object:
        arguments = command.arguments
        assert isinstance(arguments, Fetch)
        selected = self.selected
        assert selected is not None
        if arguments.changedSince is not None or _MODSEQ in arguments.items:
            # A CONDSTORE-enabling command (RFC 7162 3.1).
            self.enabled.add("CONDSTORE")
            selected.condstore = True
        if command.uid:
            self.write(selected.flushExpunges())
        indexes = selected.select(arguments.numbers, command.uid)
        answer = _FetchAnswer(self, selected, command.uid, arguments, indexes)
        return Deferred.fromCoroutine(answer.run())


class _FetchAnswer:
    """
    The answer to one FETCH, being sent.

    @ivar messages: the messages to answer: sequence number and info.
    @ivar gone: some message named no longer exists.
    @ivar seen: the UIDs whose C{\\Seen} this command set.
    """

    _log = Logger()

    def __init__(
        self,
        server: ServerBase,
        selected: SelectedMailbox,
        uid: bool,
        arguments: Fetch,
        indexes: list[int],
    ) -> None:
        self.server = server
        self.selected = selected
        self.folder: IFolder = selected.folder
        self.chunkSize: int = server.factory.chunkSize
        self._flagCache: dict[tuple[frozenset[str], bool], bytes] = {}
        self.plan: FetchPlan = planFetch(
            arguments.items, uid, arguments.changedSince is not None, self.flags
        )
        self.gone = False
        self.ghosts = False
        self.seen: set[int] = set()
        self._out: list[bytes] = []
        self._size = 0
        uids = selected.uids
        infos = _infos(selected, [uids[i] for i in indexes])
        since = arguments.changedSince
        self.messages: list[tuple[int, MessageInfo]] = []
        fromInfo = self.plan.needs == INFO and not self.plan.contents
        for i, info in zip(indexes, infos, strict=True):
            if info is None:
                info = selected.ghost(uids[i]) if fromInfo else None
                if info is None:
                    self.gone = True
                    continue
                self.ghosts = True
            if since is None or info.modSeq > since:
                self.messages.append((i + 1, info))

    def flags(self, info: MessageInfo) -> bytes:
        """
        @return: the C{FLAGS} item of a message; the same flags are encoded
            once per command.
        """
        recent = self.selected.isRecent(info.uid)
        key = (info.flags, recent)
        found = self._flagCache.get(key)
        if found is None:
            found = b"FLAGS " + self.selected.flagList(info.uid, info.flags)
            self._flagCache[key] = found
        return found

    async def run(self) -> IMAPStatus | None:
        """
        Send the responses.

        @return: the tagged status.
        """
        try:
            await self._setSeen()
            if self.plan.needs == INFO and not self.plan.contents:
                await self._sendInfos()
            else:
                for start in range(0, len(self.messages), BATCH):
                    await self._sendBatch(self.messages[start : start + BATCH])
            await self._drain()
        except _Stop:
            return None
        except StoreError:
            if self.server.closed:
                # The view closed with the connection.
                return None
            raise
        if self.gone:
            return EXPUNGE_ISSUED
        return EXPUNGED_ANSWERED if self.ghosts else None

    # Writing.

    def _add(self, data: bytes) -> None:
        self._out.append(data)
        self._size += len(data)

    async def _drain(self) -> None:
        """
        Write what is gathered, a chunk at a time, waiting while the
        transport is full.

        @raise _Stop: the connection went or is closing.
        """
        data = b"".join(self._out)
        self._out = []
        self._size = 0
        server = self.server
        chunk = self.chunkSize
        for start in range(0, len(data), chunk):
            if server.closed:
                raise _Stop()
            server.write(data[start : start + chunk] if len(data) > chunk else data)
            waiting = server.whenWritable()
            if waiting is not None:
                await waiting
        if server.closed:
            raise _Stop()

    async def _check(self, d: Deferred[Any]) -> Any:
        """
        Wait for a store call.

        @raise _Stop: the connection went meanwhile.
        """
        result = await d
        if self.server.closed:
            raise _Stop()
        return result

    # The \Seen side effect.

    async def _setSeen(self) -> None:
        """
        Set C{\\Seen} on the messages that lack it, when an item asks it
        and the mailbox is read-write (RFC 3501 6.4.5).
        """
        if not self.plan.setsSeen or self.folder.readOnly:
            return
        unseen = [info.uid for _, info in self.messages if SEEN not in info.flags]
        if not unseen:
            return
        update = await self._check(
            self.folder.setFlags(unseen, (SEEN,), FlagChange.ADD)
        )
        announced = self.selected.stored(update.updated)
        if announced:
            self.server.write(announced)
        changed = {info.uid: info for info in update.updated}
        self.seen = set(changed)
        self.messages = [
            (seq, changed.get(info.uid, info)) for seq, info in self.messages
        ]

    def _extras(self, info: MessageInfo) -> tuple[list[bytes], list[bytes]]:
        """
        The items added to the response of a message whose C{\\Seen} this
        command set: C{FLAGS}, and with CONDSTORE C{UID} and C{MODSEQ}
        (RFC 7162 3.1).

        @return: those to put first, and those to put last.
        """
        plan = self.plan
        if info.uid not in self.seen:
            return [], []
        first: list[bytes] = []
        last: list[bytes] = []
        condstore = self.selected.condstore
        if condstore and not plan.hasUID:
            first.append(b"UID %d" % (info.uid,))
        if not plan.hasFlags:
            last.append(self.flags(info))
        if condstore and not plan.hasModSeq:
            last.append(b"MODSEQ (%d)" % (info.modSeq,))
        return first, last

    # Items from the listing alone.

    async def _sendInfos(self) -> None:
        """
        Answer items that need only the listing: one loop making lines,
        a write each chunk.
        """
        makers: list[Callable[[MessageInfo], bytes]] = [
            maker for _, maker in self.plan.steps
        ]
        chunk = self.chunkSize
        out = self._out
        size = self._size
        for seq, info in self.messages:
            line = b"* %d FETCH (%s)\r\n" % (seq, b" ".join([f(info) for f in makers]))
            out.append(line)
            size += len(line)
            if size >= chunk:
                self._size = size
                await self._drain()
                out = self._out
                size = 0
        self._size = size

    # Items from the structure and the octets.

    async def _load(self, batch: list[tuple[int, MessageInfo]]) -> dict[int, _Loaded]:
        """
        What the store keeps of messages for FETCH (L{FetchData}), and
        their structures when a part is asked for; those the store no
        longer has are left out.  A damaged entry is computed again.
        """
        cached: dict[int, bytes] = await self._check(
            self.folder.cachedData(
                [info.uid for _, info in batch], FETCH_DATA_KIND, computeFetchData
            )
        )
        parts = self.plan.needs == STRUCTURE
        found: dict[int, _Loaded] = {}
        damaged: list[int] = []
        for uid, encoded in cached.items():
            try:
                data = FetchData.decode(encoded)
                found[uid] = (data, data.structure() if parts else None)
            except ValueError:
                damaged.append(uid)
        if damaged:
            parsed: list[tuple[int, MessageStructure]] = await self._check(
                self.folder.scan(damaged, _parse)
            )
            for uid, structure in parsed:
                found[uid] = (FetchData.fromStructure(structure), structure)
        return found

    async def _sendBatch(self, batch: list[tuple[int, MessageInfo]]) -> None:
        """
        Answer a batch of messages: their cached data loaded at once, then
        runs of messages with small items read together, and each message
        with a large item on its own.
        """
        plan = self.plan
        loaded = await self._load(batch) if plan.needs != INFO else {}
        chunk = self.chunkSize
        group: list[_Pending] = []
        groupBytes = 0
        for seq, info in batch:
            data, structure = loaded.get(info.uid, _UNLOADED)
            if data is None and plan.needs != INFO:
                self.gone = True
                continue
            extracts = [extract(c, info, data, structure) for c in plan.contents]
            if any(e.section is None and e.size > chunk for e in extracts):
                await self._sendGroup(group)
                group, groupBytes = [], 0
                await self._sendStreamed(seq, info, data, extracts)
                continue
            group.append((seq, info, data, extracts))
            groupBytes += sum(e.size for e in extracts)
            if groupBytes >= GROUP_BYTES:
                await self._sendGroup(group)
                group, groupBytes = [], 0
        await self._sendGroup(group)

    async def _sendGroup(self, group: list[_Pending]) -> None:
        """
        Answer messages whose items are all small: their octets read in
        one store call.
        """
        wanted = {
            info.uid: extracts
            for _, info, _, extracts in group
            if any(e.ranges for e in extracts)
        }
        read: dict[int, list[bytes]] = {}
        if wanted:
            limit = max(e.end for extracts in wanted.values() for e in extracts)

            def extractAll(uid: int, message: bytes) -> list[bytes]:
                return [extractBytes(e, message) for e in wanted[uid]]

            found: list[tuple[int, list[bytes]]] = await self._check(
                self.folder.scan(list(wanted), extractAll, limit)
            )
            read = dict(found)
        empty = [b""] * len(self.plan.contents)
        for seq, info, data, _ in group:
            contents = read.get(info.uid)
            if contents is None:
                if info.uid in wanted:
                    self.gone = True
                    continue
                contents = empty
            self._add(self._line(seq, info, data, contents))
            if self._size >= self.chunkSize:
                await self._drain()

    def _line(
        self,
        seq: int,
        info: MessageInfo,
        data: FetchData | None,
        contents: list[bytes],
    ) -> bytes:
        """
        A message's whole response.
        """
        first, items = self._extras(info)
        parts = first
        labels = self.plan.contents
        for kind, maker in self.plan.steps:
            if kind == INFO:
                parts.append(maker(info))
            elif kind == CONTENT:
                octets = contents[maker]
                label = labels[maker].label
                parts.append(b"%s {%d}\r\n%s" % (label, len(octets), octets))
            else:
                parts.append(maker(data))
        parts += items
        return b"* %d FETCH (%s)\r\n" % (seq, b" ".join(parts))

    async def _sendStreamed(
        self,
        seq: int,
        info: MessageInfo,
        data: FetchData | None,
        extracts: list[Extract],
    ) -> None:
        """
        Answer a message with an item larger than a chunk: each item read
        on its own, a large one in order through a reader of the store.
        """
        first, last = self._extras(info)
        # What is not yet gathered for writing: the response's start, and
        # the items since the last literal.
        pending = b"* %d FETCH (" % (seq,)
        parts = first
        sent = False
        labels = self.plan.contents
        for kind, maker in self.plan.steps:
            if kind == INFO:
                parts.append(maker(info))
                continue
            if kind != CONTENT:
                parts.append(maker(data))
                continue
            item = extracts[maker]
            label = labels[maker].label
            reader: IMessageReader | None = None
            try:
                try:
                    if item.section is not None or item.size <= self.chunkSize:
                        octets = await self._readSmall(info.uid, item)
                        parts.append(b"%s {%d}\r\n%s" % (label, len(octets), octets))
                        continue
                    reader = await self._open(info.uid)
                    start, end = item.ranges[0]
                    reader.seek(start)
                    head = await self._readPiece(
                        reader, min(self.chunkSize, end - start)
                    )
                except NoSuchMessage:
                    self.gone = True
                    if not sent:
                        # Nothing of it went out: no response at all.
                        return
                    parts.append(label + b" NIL")
                    continue
                parts.append(b"%s {%d}\r\n" % (label, item.size))
                self._add(pending + (b" " if sent else b"") + b" ".join(parts))
                pending, parts, sent = b"", [], True
                await self._stream(reader, item, head)
            finally:
                if reader is not None:
                    reader.close()
        parts += last
        tail = b" ".join(parts)
        if sent and parts:
            tail = b" " + tail
        self._add(pending + tail + b")\r\n")
        if self._size >= self.chunkSize:
            await self._drain()

    async def _open(self, uid: int) -> IMessageReader:
        """
        Open a message to read it in order.

        @raise NoSuchMessage: the message is gone.
        @raise _Stop: the connection went meanwhile (the reader closed).
        """
        reader: IMessageReader = await self.folder.openMessage(uid)
        if self.server.closed:
            reader.close()
            raise _Stop()
        return reader

    async def _readPiece(self, reader: IMessageReader, length: int) -> bytes:
        """
        Read the next octets of a message through its reader.

        @raise NoSuchMessage: the message is gone, or shorter than it was.
        """
        return _whole(reader, length, await self._check(reader.read(length)))

    async def _read(self, uid: int, start: int, length: int) -> bytes:
        """
        Read octets of a message.

        @raise NoSuchMessage: the message is gone, or shorter than it was.
        """
        data: bytes = await self._check(self.folder.read(uid, start, length))
        if len(data) != length:
            # The message is shorter than the store said.
            raise NoSuchMessage(f"message {uid} was cut short")
        return data

    async def _readSmall(self, uid: int, item: Extract) -> bytes:
        """
        Read a small item of a message on its own.
        """
        pieces = [
            await self._read(uid, start, end - start) for start, end in item.ranges
        ]
        data = b"".join(pieces)
        return extractBytes(Extract(((0, len(data)),), len(data), item.section), data)

    async def _stream(self, reader: IMessageReader, item: Extract, head: bytes) -> None:
        """
        Send a large item's octets, its first piece read already, a chunk
        at a time.  The store's reader reads ahead of the command, so that
        most pieces are there when asked for: the store reads while the
        transport drains.
        """
        data = head
        ranges = list(item.ranges)
        _, end = ranges.pop(0)
        position = reader.position
        chunk = self.chunkSize
        try:
            while True:
                self._add(data.replace(b"\x00", b"\x80"))
                if self._size >= chunk:
                    await self._drain()
                if position >= end:
                    if not ranges:
                        return
                    position, end = ranges.pop(0)
                    reader.seek(position)
                data = await self._readPiece(reader, min(chunk, end - position))
                position += len(data)
        except NoSuchMessage:
            # The literal's size is sent: no way to go on.
            self._log.info(
                "IMAP FETCH of UID {uid} for {peer} cut: the message went",
                uid=reader.uid,
                peer=self.server.peer[0],
            )
            self.server.closeConnection()
            raise _Stop() from None


def _whole(reader: IMessageReader, length: int, data: bytes) -> bytes:
    """
    Check that a read gave all it was asked.

    @raise NoSuchMessage: the message is shorter than the store said.
    """
    if len(data) != length:
        raise NoSuchMessage(f"message {reader.uid} was cut short")
    return data


#: A message waiting in a group: sequence number, info, FETCH data, and
#: where its items lie.
_Pending = tuple[int, MessageInfo, FetchData | None, list[Extract]]
#: What L{_FetchAnswer._load} gives of a message: its FETCH data, and its
#: structure when parts are asked for.
_Loaded = tuple[FetchData, MessageStructure | None]
_UNLOADED: tuple[None, None] = (None, None)


def _infos(selected: SelectedMailbox, uids: list[int]) -> list[MessageInfo | None]:
    """
    L{SelectedMailbox.infos}, faster for many messages: looked up in a
    table of the folder's listing rather than each found by bisection.
    """
    listing = selected.folder.messages()
    if len(uids) * 16 < len(listing):
        return selected.infos(uids)
    found = {info.uid: info for info in listing}
    return [found.get(uid) for uid in uids]


def _parse(uid: int, message: bytes) -> MessageStructure:
    """
    Parse a message whose cached structure could not be read back.
    """
    return parseStructure(message)
