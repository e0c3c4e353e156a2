# -*- test-case-name: tests.test_maildir_cache -*-
"""
A folder's cache of data derived from its messages (L{IFolder.cachedData}
<gomail_twisted.maildir.interfaces.IFolder.cachedData>), on disk:
C{gomail-cache}, beside C{gomail-uidlist} in the folder's Maildir, so that
a renamed folder keeps it and a deleted one takes it along.

The file is binary, all integers unsigned and big-endian: a header, then
records one after the other::

    header (16 bytes)
        magic       8 bytes   b"GMCACHE1" (the 1 is the format's version)
        validity    8 bytes   the folder's UIDVALIDITY
    record (13 bytes, then its kind and data)
        uid         4 bytes   the message's UID, not 0
        kindLength  1 byte    1 to 64
        dataLength  4 bytes   at most 1 MiB (L{MAX_DATA})
        crc         4 bytes   CRC-32 (zlib's) of the uid, kindLength and
                              dataLength fields, then kind, then data
        kind        kindLength bytes of printable ASCII, no space
        data        dataLength bytes

A later record for the same UID and kind replaces an earlier one.  UIDs
are never reused while the UIDVALIDITY lasts, so a record needs no
removal: one whose message was expunged is dead, and when dead records
outnumber live ones (and there are more than L{COMPACT_MINIMUM}), the file
is written anew with the live ones only.

Records are appended with one C{pwrite}, without fsync (it is a cache),
under an exclusive C{flock} of the file itself, after reading what other
processes appended; whoever replaces the file (a new one, or a compacted
one: a temporary file renamed over it) does so under that lock, and a
locker checks that the file it locked is still the one at the path.
Readers need no lock: they read each record whole, and check its CRC.

This process reads the file once per folder state into an index of
offsets (not the data), then only what was appended since.  What it cannot
trust it leaves alone while unlocked, and under the lock:

  - a torn or malformed tail (a writer killed mid-record, a crash that
    left zeros) is cut off at the last good record;
  - a header that cannot be read, or an older UIDVALIDITY than the
    folder's, means the file is started anew;
  - a record whose CRC fails is passed over (and computed again).

A file of a I{newer} UIDVALIDITY than the one this process knows belongs
to the folder as another process sees it: it is used by no one here and
left alone until this process catches up.  Nothing here ever fails the
caller: every I/O error is logged and the data is computed instead.
"""

from __future__ import annotations

import errno
import fcntl
import io
import os
import re
import struct
import zlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from twisted.logger import Logger

from gomail_twisted.maildir._files import unlinkQuietly

FILE_NAME = "gomail-cache"
MAGIC = b"GMCACHE1"
HEADER = struct.Struct(">8sQ")
RECORD = struct.Struct(">IBII")
#: The most data kept on disk for one message and kind: more is kept in
#: memory only.
MAX_DATA = 1024 * 1024
#: The longest kind.
MAX_KIND = 64
#: Below this many records the file is never compacted.
COMPACT_MINIMUM = 64
#: The bytes of a record's head that its CRC covers (all but the CRC).
_CRC_HEAD = 9
_KIND = re.compile(rb"[!-~]{1,64}")
#: An index entry packs a record's offset and its data's length.
_LENGTH_BITS = 24
_LENGTH_MASK = (1 << _LENGTH_BITS) - 1
#: How often to try locking a file that others keep replacing.
_ATTEMPTS = 8
#: How much to gather before writing, when writing the file whole.
_WRITE_CHUNK = 1024 * 1024


def validKind(kind: str) -> bool:
    """
    Whether a kind can name cached data: 1 to 64 printable ASCII
    characters, no space.
    """
    return kind.isascii() and _KIND.fullmatch(kind.encode("ascii")) is not None


def encodeRecord(uid: int, kind: bytes, data: bytes) -> bytes:
    """
    One record, as the file holds it.

    @param uid: the message's UID.
    @param kind: the data's kind, in ASCII.
    @param data: the data, at most L{MAX_DATA} bytes.
    """
    head = RECORD.pack(uid, len(kind), len(data), 0)[:_CRC_HEAD]
    crc = zlib.crc32(data, zlib.crc32(kind, zlib.crc32(head)))
    return b"".join((head, crc.to_bytes(4, "big"), kind, data))


def _writeAll(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class CacheFile:
    """
    One folder's C{gomail-cache}, as this process last read it.  Blocking:
    used in the store's threads with the folder's lock held.

    Work on it runs inside L{opened}, which opens the file for the work's
    span (no descriptor stays open between pieces of work) and reads what
    changed.

    @ivar path: the file.
    @ivar validity: the UIDVALIDITY its header gives (0 when unknown).
    @ivar records: how many records it holds, live or dead.
    """

    _log = Logger()

    def __init__(self, directory: Path) -> None:
        """
        @param directory: the folder's Maildir.
        """
        self.directory = directory
        self.path = directory / FILE_NAME
        self._fd = -1
        self._wanted = 0
        #: What the last count of live records was made for.
        self._checked: tuple[object, ...] | None = None
        self._forget()

    def _forget(self) -> None:
        self._identity: tuple[int, int] | None = None
        self.validity = 0
        self.records = 0
        #: Where the records read end.
        self._offset = 0
        #: Kind to UID to the record's offset and data length, packed.
        self._index: dict[str, dict[int, int]] = {}

    # Reading.

    @contextmanager
    def opened(self, validity: int) -> Iterator[None]:
        """
        Open the file for a piece of work on a folder of this UIDVALIDITY,
        reading what was appended since the last time.
        """
        self._wanted = validity
        try:
            if validity:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CLOEXEC)
                self._catchUp(self._fd, os.fstat(self._fd))
        except OSError as e:
            self._closeFD()
            self._forget()
            self._failed("read", e)
        try:
            yield
        finally:
            self._closeFD()

    def _closeFD(self) -> None:
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)

    def _failed(self, what: str, error: OSError) -> None:
        if error.errno != errno.ENOENT:
            self._log.warn(
                "Cache file {path}: could not {what}: {error}",
                path=str(self.path),
                what=what,
                error=error,
            )

    def _usable(self) -> bool:
        return self._fd >= 0 and self._offset > 0 and self.validity == self._wanted

    def _catchUp(self, fd: int, st: os.stat_result) -> None:
        """
        Read the header if need be, then the records appended since the
        last read, as far as they are whole and well formed.
        """
        identity = (st.st_dev, st.st_ino)
        if identity != self._identity or st.st_size < self._offset:
            self._forget()
            self._identity = identity
        if self._offset == 0:
            if st.st_size < HEADER.size:
                return
            magic, validity = HEADER.unpack(os.pread(fd, HEADER.size, 0))
            if magic != MAGIC:
                return
            self.validity = validity
            self._offset = HEADER.size
        if st.st_size > self._offset:
            self._readRecords(fd, st.st_size)

    def _readRecords(self, fd: int, end: int) -> None:
        offset = self._offset
        index = self._index
        count = 0
        head = RECORD.size
        with io.BufferedReader(io.FileIO(fd, "r", closefd=False), 65536) as reader:
            reader.seek(offset)
            while offset + head <= end:
                fields = reader.read(head)
                if len(fields) < head:
                    break
                uid, kindLength, dataLength, _ = RECORD.unpack(fields)
                if uid == 0 or not 0 < kindLength <= MAX_KIND or dataLength > MAX_DATA:
                    break
                kind = reader.read(kindLength)
                recordEnd = offset + head + kindLength + dataLength
                if recordEnd > end or _KIND.fullmatch(kind) is None:
                    break
                byUID = index.get(kind.decode("ascii"))
                if byUID is None:
                    byUID = index[kind.decode("ascii")] = {}
                byUID[uid] = offset << _LENGTH_BITS | dataLength
                count += 1
                reader.seek(dataLength, io.SEEK_CUR)
                offset = recordEnd
        self.records += count
        self._offset = offset

    def get(self, uid: int, kind: str) -> bytes | None:
        """
        The data of a message and kind, if the file holds it whole and
        sound.
        """
        if not self._usable():
            return None
        byUID = self._index.get(kind)
        packed = None if byUID is None else byUID.get(uid)
        if byUID is None or packed is None:
            return None
        offset, length = packed >> _LENGTH_BITS, packed & _LENGTH_MASK
        start = RECORD.size + len(kind)
        try:
            raw = os.pread(self._fd, start + length, offset)
        except OSError as e:
            self._failed("read", e)
            return None
        view = memoryview(raw)
        if (
            len(raw) != start + length
            or zlib.crc32(view[RECORD.size :], zlib.crc32(view[:_CRC_HEAD]))
            != RECORD.unpack_from(raw)[3]
        ):
            del byUID[uid]
            return None
        return raw[start:]

    # Writing.

    @contextmanager
    def _locked(self) -> Iterator[tuple[int, os.stat_result]]:
        """
        Hold the lock of the file now at the path (made if missing), and
        give its descriptor and stat.
        """
        for _ in range(_ATTEMPTS):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                st = os.fstat(fd)
                try:
                    now = os.stat(self.path)
                except FileNotFoundError:
                    continue
                if (now.st_dev, now.st_ino) == (st.st_dev, st.st_ino):
                    yield fd, st
                    return
            finally:
                os.close(fd)
        raise OSError(errno.EAGAIN, "the file kept being replaced")

    def add(
        self,
        kind: str,
        entries: Sequence[tuple[int, bytes]],
        live: Mapping[int, object],
    ) -> None:
        """
        Keep the data of some messages, unless the file has some already,
        or it is too large (it stays in memory only), or the message is no
        longer live.  Inside L{opened}; failures are logged.

        @param kind: the data's kind.
        @param entries: each message's UID and data.
        @param live: the folder's live UIDs.
        """
        entries = [(uid, data) for uid, data in entries if len(data) <= MAX_DATA]
        if not entries or not self._wanted:
            return
        try:
            with self._locked() as (fd, st):
                self._addLocked(fd, st, kind, entries, live)
        except OSError as e:
            self._failed("write", e)
        self._adopt()

    def _addLocked(
        self,
        fd: int,
        st: os.stat_result,
        kind: str,
        entries: Sequence[tuple[int, bytes]],
        live: Mapping[int, object],
    ) -> None:
        self._catchUp(fd, st)
        validity = self._wanted
        if self._offset and self.validity > validity:
            # Written for the folder as another process sees it since.
            return
        # What the file holds counts only if it is of this UIDVALIDITY.
        current = self._offset and self.validity == validity
        byUID = self._index.get(kind, {}) if current else {}
        fresh: dict[int, bytes] = {}
        for uid, data in entries:
            if uid in live and uid not in byUID:
                fresh.setdefault(uid, data)
        if not fresh:
            return
        parts: list[bytes] = []
        if self._offset == 0 and st.st_size == 0:
            # A new file: ours to start, under the lock.
            parts.append(HEADER.pack(MAGIC, validity))
            start = 0
        elif self._offset == 0 or self.validity < validity:
            if self._offset == 0:
                self._log.warn(
                    "Cache file {path} damaged: started anew", path=str(self.path)
                )
            self._rewrite(fd, validity, {}, kind, fresh)
            return
        else:
            start = self._offset
            if st.st_size > start:
                # A torn tail: no writer is at work while we hold the lock.
                os.ftruncate(fd, start)
        kindBytes = kind.encode("ascii")
        records = [encodeRecord(uid, kindBytes, data) for uid, data in fresh.items()]
        parts.extend(records)
        data = b"".join(parts)
        view = memoryview(data)
        written = 0
        try:
            while written < len(data):
                written += os.pwrite(fd, view[written:], start + written)
        except BaseException:
            os.ftruncate(fd, start)
            raise
        if start == 0:
            self.validity = validity
        offset = start + len(data) - sum(map(len, records))
        byUID = self._index.setdefault(kind, {})
        for (uid, value), record in zip(fresh.items(), records, strict=True):
            byUID[uid] = offset << _LENGTH_BITS | len(value)
            offset += len(record)
        self._offset = offset
        self.records += len(records)

    def _adopt(self) -> None:
        """
        After a change under the lock: read from the file now at the path
        for the rest of the work.
        """
        if self._fd < 0:
            return
        self._closeFD()
        try:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CLOEXEC)
            self._catchUp(self._fd, os.fstat(self._fd))
        except OSError as e:
            self._closeFD()
            self._forget()
            self._failed("read", e)

    def _rewrite(
        self,
        fd: int,
        validity: int,
        keep: Mapping[int, object],
        kind: str = "",
        extra: Mapping[int, bytes] | None = None,
    ) -> None:
        """
        Write the file anew, atomically, under the lock: a header, the live
        records of the file locked as C{fd} (those of C{keep}'s UIDs), then
        C{extra} records of C{kind}.
        """
        temporary = self.directory / f"{FILE_NAME}.{os.getpid()}.tmp"
        unlinkQuietly(temporary)
        out = os.open(
            temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600
        )
        index: dict[str, dict[int, int]] = {}
        try:
            try:
                pending = [HEADER.pack(MAGIC, validity)]
                size = offset = HEADER.size

                def put(uid: int, kindName: str, record: bytes, length: int) -> None:
                    nonlocal size, offset
                    index.setdefault(kindName, {})[uid] = (
                        offset << _LENGTH_BITS | length
                    )
                    pending.append(record)
                    offset += len(record)
                    size += len(record)
                    if size >= _WRITE_CHUNK:
                        _writeAll(out, b"".join(pending))
                        pending.clear()
                        size = 0

                for uid, kindName, record, length in self._liveRecords(fd, keep):
                    put(uid, kindName, record, length)
                kindBytes = kind.encode("ascii")
                for uid, data in (extra or {}).items():
                    put(uid, kind, encodeRecord(uid, kindBytes, data), len(data))
                _writeAll(out, b"".join(pending))
                st = os.fstat(out)
            finally:
                os.close(out)
            os.rename(temporary, self.path)
        except BaseException:
            unlinkQuietly(temporary)
            raise
        self._forget()
        self._identity = (st.st_dev, st.st_ino)
        self.validity = validity
        self._index = index
        self._offset = offset
        self.records = sum(len(byUID) for byUID in index.values())

    def _liveRecords(
        self, fd: int, keep: Mapping[int, object]
    ) -> Iterator[tuple[int, str, bytes, int]]:
        """
        The sound records of the file locked as C{fd} whose UID is in
        C{keep}, in file order, one at a time.
        """
        entries = sorted(
            (packed, kind, uid)
            for kind, byUID in self._index.items()
            for uid, packed in byUID.items()
            if uid in keep
        )
        for packed, kind, uid in entries:
            offset, length = packed >> _LENGTH_BITS, packed & _LENGTH_MASK
            size = RECORD.size + len(kind) + length
            raw = os.pread(fd, size, offset)
            view = memoryview(raw)
            if (
                len(raw) == size
                and zlib.crc32(view[RECORD.size :], zlib.crc32(view[:_CRC_HEAD]))
                == RECORD.unpack_from(raw)[3]
            ):
                yield uid, kind, raw, length

    # Compaction.

    def compactIfDead(self, live: Mapping[int, object]) -> None:
        """
        Write the file anew without its dead records when they outnumber
        the live ones; inside L{opened}.  Failures are logged.

        @param live: the folder's live UIDs.
        """
        if not self._usable() or self.records <= COMPACT_MINIMUM:
            return
        # Counting the live records costs a pass over the index: only when
        # the file was replaced or the folder's message count changed.  (Our
        # own additions are live: they never make the dead dominate.)
        signature = (self._identity, len(live))
        if signature == self._checked:
            return
        self._checked = signature
        if self.records <= 2 * self._liveCount(live):
            return
        try:
            with self._locked() as (fd, st):
                self._catchUp(fd, st)
                if (
                    self.validity == self._wanted
                    and self.records > COMPACT_MINIMUM
                    and self.records > 2 * self._liveCount(live)
                ):
                    self._rewrite(fd, self._wanted, live)
        except OSError as e:
            self._failed("compact", e)
        self._adopt()

    def _liveCount(self, live: Mapping[int, object]) -> int:
        return sum(len(byUID.keys() & live.keys()) for byUID in self._index.values())


__all__ = ["FILE_NAME", "MAX_DATA", "CacheFile", "encodeRecord", "validKind"]
