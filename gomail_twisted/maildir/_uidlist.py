# -*- test-case-name: tests.test_maildir_uidlist -*-
"""
The UID file of a Maildir folder: which message (by the unchanging key of
its file name) has which UID, the folder's UIDVALIDITY, and the
mod-sequences of RFC 7162.

The file, C{gomail-uidlist} beside C{cur/}, is text; a header, then one
record a line::

    gomail-uidlist 1 V1700000000 N43 M97
    +42 96 1700000000 1560 1700000000.M1P2Q3R0a1b2c3d.host
    *42 97
    -41 98

C{+uid modseq date size key} gives a message its UID and remembers its
internal date (seconds since the epoch) and the size of its CRLF form, so
that neither needs a stat or a read again; C{*uid modseq} raises its
mod-sequence (its flags changed); C{-uid modseq} says it left the
folder.  The header's C{N} and C{M} are the next UID and the
highest mod-sequence as of the last time the file was written whole; the
records may raise them.

Work on one message appends a record, so its cost does not grow with the
folder: each change is one C{write} of whole lines and an fsync, made
under an exclusive C{flock} on C{gomail-uidlist.lock} (a lock file apart,
since the UID file itself is replaced), after reading what other
processes appended.  A process killed in the middle of a write leaves at
most a last line without its newline; no one was told of that UID (we
answer only after the fsync), so readers ignore it and the next writer
cuts it off.  When dead records outnumber live ones the file is written
whole again (temporary file, fsync, rename, fsync of the directory), so
the cost per change stays constant on average.

A header that cannot be read, or a bad record before the last line, is
corruption: the folder gets a new UIDVALIDITY, greater than the old one
when it is known, and its messages new UIDs; a UID is never silently
given to a different message.
"""

from __future__ import annotations

import fcntl
import itertools
import operator
import os
import re
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from twisted.logger import Logger

from gomail_twisted.maildir._files import fsyncDirectory, unlinkQuietly

FILE_NAME = "gomail-uidlist"
LOCK_NAME = "gomail-uidlist.lock"
_MAGIC = "gomail-uidlist"
_VERSION = "1"
#: Below this many records the file is never compacted.
_COMPACT_MINIMUM = 64
#: The first record, after the first line, that does not start with "+".
_NOT_ADDITION = re.compile("\n[^+]")


class CorruptUIDList(Exception):
    """
    The UID file cannot be trusted.
    """


class UIDList:
    """
    One folder's UID file, as this process last read it.

    @ivar uidValidity: the folder's UIDVALIDITY (0 until loaded).
    @ivar nextUID: the UID the next message gets.
    @ivar highestModSeq: the highest mod-sequence given out.
    @ivar uids: each live message's key to its UID.
    @ivar keys: each live UID to its message's key.
    @ivar modSeqs: each live UID to its mod-sequence.
    @ivar dates: each live UID to its internal date.
    @ivar sizes: each live UID to its CRLF size.
    @ivar records: how many records the file holds.
    @ivar generation: raised whenever the file was found corrupt or missing
        and started again.
    """

    _log = Logger()

    def __init__(self, directory: Path) -> None:
        """
        @param directory: the folder's Maildir.
        """
        self.directory = directory
        self.path = directory / FILE_NAME
        self.lockPath = directory / LOCK_NAME
        self._clear()
        self.uidValidity = 0
        self.generation = 0
        self._identity: tuple[int, int] | None = None
        self._offset = 0
        self._lockFD = -1

    def _clear(self) -> None:
        self.nextUID = 1
        self.highestModSeq = 1
        self.uids: dict[str, int] = {}
        self.keys: dict[int, str] = {}
        self.modSeqs: dict[int, int] = {}
        self.dates: dict[int, int] = {}
        self.sizes: dict[int, int] = {}
        self.records = 0
        self._lastUID = 0

    @contextmanager
    def locked(self) -> Iterator[None]:
        """
        Hold the folder's lock (blocking).
        """
        fd = os.open(self.lockPath, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._lockFD = fd
            yield
        finally:
            self._lockFD = -1
            os.close(fd)

    def unchanged(self) -> bool:
        """
        Whether the file is as this process last read it (one stat).
        """
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return False
        return (st.st_dev, st.st_ino) == self._identity and st.st_size == self._offset

    def load(self) -> bool:
        """
        Read what changed since the last read; make the file, or start it
        again, when it is missing or corrupt.

        @return: whether anything changed.
        """
        try:
            return self._read()
        except (CorruptUIDList, FileNotFoundError):
            with self.locked():
                try:
                    return self._read()
                except FileNotFoundError:
                    self._restart("missing")
                except CorruptUIDList as e:
                    self._restart(str(e))
                return True

    def _read(self) -> bool:
        """
        Read the records appended since the last read (all of them when
        the file was replaced).

        @raise FileNotFoundError: when there is no file.
        @raise CorruptUIDList: when it cannot be trusted.
        """
        with open(self.path, "rb") as f:
            st = os.fstat(f.fileno())
            identity = (st.st_dev, st.st_ino)
            if identity == self._identity and st.st_size == self._offset:
                return False
            if identity != self._identity or st.st_size < self._offset:
                validity = self.uidValidity
                self._clear()
                self._offset = 0
                data = f.read()
                header, newline, _ = data.partition(b"\n")
                if not newline:
                    raise CorruptUIDList("no header")
                self._parseHeader(header.decode("ascii", "replace"), validity)
                start = len(header) + 1
            else:
                f.seek(self._offset)
                data = f.read()
                start = 0
            end = data.rfind(b"\n") + 1
            if end > start:
                self._parseRecords(data[start:end])
            self._offset += end
            self._identity = identity
        return True

    def _parseHeader(self, line: str, oldValidity: int) -> None:
        fields = line.split(" ")
        try:
            if len(fields) != 5 or fields[0] != _MAGIC or fields[1] != _VERSION:
                raise ValueError(line)
            if (fields[2][0], fields[3][0], fields[4][0]) != ("V", "N", "M"):
                raise ValueError(line)
            validity = int(fields[2][1:])
            self.nextUID = int(fields[3][1:])
            self.highestModSeq = int(fields[4][1:])
        except (ValueError, IndexError):
            raise CorruptUIDList("bad header") from None
        if validity <= 0 or self.nextUID <= 0:
            raise CorruptUIDList("bad header")
        if oldValidity and validity != oldValidity:
            self.generation += 1
        self.uidValidity = validity

    def _parseRecords(self, data: bytes) -> None:
        """
        Apply whole records (C{data} ends with a newline).

        @raise CorruptUIDList: when a record is bad.
        """
        text = data.decode("utf-8", "surrogateescape")
        # A compacted file is a run of "+" records: read the run in bulk,
        # the rest (if any) record by record.
        other = _NOT_ADDITION.search(text)
        run = len(text) if other is None else other.start() + 1
        if run and text[0] == "+":
            if self._parseAdditions(text[:run]):
                text = text[run:]
        if text:
            self._parseEach(text)

    def _parseAdditions(self, text: str) -> bool:
        """
        Apply a run of C{+} records in bulk, when every key is new and
        holds no space; otherwise do nothing.

        @return: whether the run was applied.
        @raise CorruptUIDList: when a record is bad.
        """
        lines = text.split("\n")
        lines.pop()
        count = len(lines)
        if set(map(str.count, lines, itertools.repeat(" ", count))) != {4}:
            return False
        # Every line has five fields: the columns are every fifth field.
        fields = text.replace("\n", " ").split(" ")
        fields.pop()
        keyList = fields[4::5]
        uids = self.uids
        if (
            "" in keyList
            or len(set(keyList)) != count
            or (uids and not uids.keys().isdisjoint(keyList))
        ):
            return False
        try:
            # int() takes the leading "+" (every line has it) as a sign.
            uidList = list(map(int, fields[0::5]))
            modList = list(map(int, fields[1::5]))
            dateList = list(map(int, fields[2::5]))
            sizeList = list(map(int, fields[3::5]))
        except ValueError:
            raise CorruptUIDList("bad record") from None
        if uidList[0] <= self._lastUID or not all(
            map(operator.lt, uidList, itertools.islice(uidList, 1, None))
        ):
            raise CorruptUIDList("bad record")
        uids.update(zip(keyList, uidList, strict=True))
        self.keys.update(zip(uidList, keyList, strict=True))
        self.modSeqs.update(zip(uidList, modList, strict=True))
        self.dates.update(zip(uidList, dateList, strict=True))
        self.sizes.update(zip(uidList, sizeList, strict=True))
        last = self._lastUID = uidList[-1]
        if last >= self.nextUID:
            self.nextUID = last + 1
        self.highestModSeq = max(self.highestModSeq, max(modList))
        self.records += count
        return True

    def _parseEach(self, text: str) -> None:
        uids, keys, modSeqs = self.uids, self.keys, self.modSeqs
        dates, sizes = self.dates, self.sizes
        lines = text.split("\n")
        lines.pop()
        highest = self.highestModSeq
        last = self._lastUID
        nextUID = self.nextUID
        try:
            for line in lines:
                kind = line[0]
                if kind == "+":
                    uidText, modText, dateText, sizeText, key = line.split(" ", 4)
                    uid = int(uidText[1:])
                    modSeq = int(modText)
                    if uid <= last or not key:
                        raise ValueError(line)
                    if key in uids:
                        old = uids[key]
                        del keys[old], modSeqs[old], dates[old], sizes[old]
                    uids[key] = last = uid
                    keys[uid] = key
                    modSeqs[uid] = modSeq
                    dates[uid] = int(dateText)
                    sizes[uid] = int(sizeText)
                elif kind == "*" or kind == "-":
                    uidText, modText = line[1:].split(" ")
                    uid, modSeq = int(uidText), int(modText)
                    if uid > last and uid >= nextUID:
                        raise ValueError(line)
                    if uid in keys:
                        if kind == "*":
                            modSeqs[uid] = modSeq
                        else:
                            del uids[keys.pop(uid)], modSeqs[uid], dates[uid]
                            del sizes[uid]
                else:
                    raise ValueError(line)
                if modSeq > highest:
                    highest = modSeq
        except (ValueError, IndexError):
            raise CorruptUIDList("bad record") from None
        self._lastUID = last
        if last >= nextUID:
            self.nextUID = last + 1
        self.highestModSeq = highest
        self.records += len(lines)

    def _newValidity(self, old: int) -> int:
        return max(int(time.time()), old + 1)

    def _restart(self, reason: str) -> None:
        """
        Start the file again with a new UIDVALIDITY; the lock is held.
        """
        known = [self.uidValidity, self._rememberedValidity()]
        try:
            with open(self.path, "rb") as f:
                fields = f.readline().split(b" ")
            known.append(int(fields[2][1:]) if len(fields) > 2 else 0)
        except (OSError, ValueError):
            pass
        old = max(known)
        if reason != "missing" or old:
            self._log.warn(
                "UID file {path} {reason}: new UIDVALIDITY, UIDs assigned afresh",
                path=str(self.path),
                reason=reason,
            )
        self._clear()
        self.uidValidity = self._newValidity(old)
        if old:
            self.generation += 1
        self._writeWhole()
        # The lock file, which is never replaced, remembers the UIDVALIDITY
        # given out last, lest a lost UID file bring an old one back.
        data = f"V{self.uidValidity}\n".encode()
        os.ftruncate(self._lockFD, 0)
        os.pwrite(self._lockFD, data, 0)
        os.fsync(self._lockFD)

    def _rememberedValidity(self) -> int:
        """
        The UIDVALIDITY that the lock file remembers, or 0.
        """
        try:
            text = os.pread(self._lockFD, 64, 0).decode("ascii", "replace")
            return int(text.strip()[1:]) if text.startswith("V") else 0
        except (OSError, ValueError):
            return 0

    def _writeWhole(self) -> None:
        """
        Write the file whole from memory, atomically; the lock is held.
        """
        lines = [
            f"{_MAGIC} {_VERSION} V{self.uidValidity} N{self.nextUID}"
            f" M{self.highestModSeq}\n"
        ]
        modSeqs, dates, sizes = self.modSeqs, self.dates, self.sizes
        for uid, key in self.keys.items():
            lines.append(f"+{uid} {modSeqs[uid]} {dates[uid]} {sizes[uid]} {key}\n")
        data = "".join(lines).encode("utf-8", "surrogateescape")
        temporary = self.directory / f"{FILE_NAME}.{os.getpid()}.tmp"
        unlinkQuietly(temporary)
        fd = os.open(
            temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600
        )
        try:
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
                st = os.fstat(fd)
            finally:
                os.close(fd)
            os.rename(temporary, self.path)
        except BaseException:
            unlinkQuietly(temporary)
            raise
        fsyncDirectory(self.directory)
        self._identity = (st.st_dev, st.st_ino)
        self._offset = len(data)
        self.records = len(lines) - 1

    def commit(
        self,
        added: Iterable[tuple[str, int, int]] = (),
        modified: Iterable[int] = (),
        expunged: Iterable[int] = (),
    ) -> list[int]:
        """
        Record changes durably, under the lock, after reading what others
        recorded.

        @param added: the key, internal date and CRLF size of messages to
            give UIDs, in order; a key that has one already keeps it.
        @param modified: UIDs whose mod-sequence to raise.
        @param expunged: UIDs that left the folder.
        @return: the UIDs of C{added}, in order.
        @raise OSError: when the disk refuses; nothing is recorded.
        """
        with self.locked():
            try:
                self._read()
            except FileNotFoundError:
                self._restart("missing")
            except CorruptUIDList as e:
                self._restart(str(e))
            lines: list[str] = []
            result: list[int] = []
            nextUID, modSeq = self.nextUID, self.highestModSeq
            fresh: dict[str, int] = {}
            for key, date, size in added:
                uid = self.uids.get(key) or fresh.get(key)
                if uid is None:
                    uid = fresh[key] = nextUID
                    nextUID += 1
                    modSeq += 1
                    lines.append(f"+{uid} {modSeq} {date} {size} {key}\n")
                result.append(uid)
            for uid in modified:
                if uid in self.keys:
                    modSeq += 1
                    lines.append(f"*{uid} {modSeq}\n")
            for uid in expunged:
                if uid in self.keys:
                    modSeq += 1
                    lines.append(f"-{uid} {modSeq}\n")
            # Expunges last, so a batch that starts with one holds nothing else.
            if not lines:
                return result
            data = "".join(lines).encode("utf-8", "surrogateescape")
            fd = os.open(self.path, os.O_WRONLY | os.O_CLOEXEC)
            try:
                if os.fstat(fd).st_size != self._offset:
                    # A torn last line, left by a writer that died.
                    os.ftruncate(fd, self._offset)
                view = memoryview(data)
                written = 0
                try:
                    while written < len(data):
                        written += os.pwrite(fd, view[written:], self._offset + written)
                    if lines[0][0] != "-":
                        # Expunges alone need no fsync: should they be lost,
                        # the next scan finds the files gone and records it.
                        os.fsync(fd)
                except BaseException:
                    os.ftruncate(fd, self._offset)
                    raise
            finally:
                os.close(fd)
            self._parseRecords(data)
            self._offset += len(data)
            return result

    def needsCompaction(self) -> bool:
        """
        Whether dead records outnumber live ones (and are not too few to
        matter).
        """
        return self.records > _COMPACT_MINIMUM and self.records > 2 * len(self.keys)

    def compact(self) -> None:
        """
        Write the file whole, with only its live records, if it still needs
        it once what others appended is read; under the lock.
        """
        with self.locked():
            try:
                self._read()
            except (FileNotFoundError, CorruptUIDList):
                return
            if self.needsCompaction():
                self._writeWhole()


__all__ = ["FILE_NAME", "LOCK_NAME", "CorruptUIDList", "UIDList"]
