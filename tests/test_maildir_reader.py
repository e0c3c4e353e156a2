# -*- test-case-name: tests.test_maildir_reader -*-
"""
Tests for L{gomail_twisted.maildir._reader}: reading a message in order
through L{IFolder.openMessage}, the same bytes as L{IFolder.read} of the
same ranges, and what the reader holds.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.defer import CancelledError, Deferred
from twisted.logger import LogEvent, Logger, LogLevel, formatEvent
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool
from zope.interface.verify import verifyObject

from gomail_twisted.maildir import (
    DELETED,
    INBOX,
    FlagChange,
    IMessageReader,
    MaildirStore,
    NoSuchFolder,
    NoSuchMessage,
    StoreFailed,
)
from gomail_twisted.maildir._reader import READ_AHEAD, CRLFFile
from tests.test_maildir_store import USER, StoreTestCase, SyncReactor

#: Line ends as Maildir keeps them, as a CRLF file written elsewhere keeps
#: them, and mixed, with lone CRs and a CR at the very end.
LF_MESSAGE = b"Subject: lf\n\n" + b"".join(b"line %d\n" % n for n in range(3000))
CRLF_MESSAGE = LF_MESSAGE.replace(b"\n", b"\r\n")
MIXED_MESSAGE = (
    b"".join(
        b"mixed %d%s" % (n, (b"\n", b"\r\n", b"\r", b"\r\r\n", b"\n\r")[n % 5])
        for n in range(3000)
    )
    + b"\r"
)
#: Mixed line ends over several read-aheads.
LARGE_MIXED = MIXED_MESSAGE * 20

#: Piece sizes from a byte to a MiB.
SIZES = (1, 2, 3, 7, 4095, 4096, 65535, 65536, 65537, 1024 * 1024)


def openDescriptors() -> int:
    """
    How many file descriptors the process has open.
    """
    return len(os.listdir("/proc/self/fd"))


class StepPool(ThreadPool):
    """
    A thread pool that runs work when told to, on the calling thread.

    @ivar pending: the work not run yet.
    """

    def __init__(self) -> None:
        super().__init__()
        self.pending: list[Callable[[], None]] = []

    def callInThreadWithCallback(
        self,
        onResult: Callable[[bool, object], None],
        f: Callable[..., object],
        *args: object,
        **kwargs: object,
    ) -> None:
        def work() -> None:
            try:
                result = f(*args, **kwargs)
            except BaseException:
                onResult(False, Failure())
            else:
                onResult(True, result)

        self.pending.append(work)

    def runAll(self, skip: int = 0, bound: int = 1000) -> int:
        """
        Run the work, in order, until none is left.

        @param skip: leave the first C{skip} jobs waiting.
        @return: how many jobs ran.
        """
        ran = 0
        for _ in range(bound):
            if len(self.pending) <= skip:
                return ran
            self.pending.pop(skip)()
            ran += 1
        raise AssertionError("work kept coming")


class ReaderTestCase(StoreTestCase):
    """
    An account whose INBOX holds messages written straight to its Maildir.
    """

    def setUp(self) -> None:
        super().setUp()
        self.acct = self.account()
        self.count = 0

    def put(self, message: bytes) -> int:
        """
        Write a message file as another program would, and open a view that
        sees it.

        @return: its UID.
        """
        self.count += 1
        name = f"{1000 + self.count}.M{self.count}P1.host:2,"
        (self.root / USER / "cur" / name).write_bytes(message)
        self.folder = self.result(self.acct.openFolder(INBOX))
        self.addCleanup(self.folder.close)
        return int(self.folder.messages()[-1].uid)

    def path(self, uid: int) -> Path:
        """
        The file of a message.
        """
        [name] = [
            p
            for p in (self.root / USER / "cur").iterdir()
            if p.name.startswith(f"{1000 + uid}.")
        ]
        return name

    def readAll(self, reader: Any, sizes: list[int]) -> list[bytes]:
        """
        Read a message through to its end, the pieces' sizes taken in turn.
        """
        pieces = []
        for n in range(100_000):
            piece = self.result(reader.read(sizes[n % len(sizes)]))
            if not piece:
                return pieces
            pieces.append(piece)
        raise AssertionError("the message did not end")


class SequentialTests(ReaderTestCase):
    """
    A reader gives what ranged reads of the same ranges give.
    """

    def test_interface(self) -> None:
        """
        A reader provides L{IMessageReader}, names its message and starts
        at offset 0.
        """
        uid = self.put(LF_MESSAGE)
        reader = self.result(self.folder.openMessage(uid))
        self.addCleanup(reader.close)
        self.assertTrue(verifyObject(IMessageReader, reader))
        self.assertEqual((reader.uid, reader.position), (uid, 0))

    def test_piecesEqualRangedReads(self) -> None:
        """
        Over LF, CRLF and mixed line ends, each piece of each size from a
        byte to a MiB is what L{IFolder.read} gives of the same range, and
        the pieces make the whole message.
        """
        for message in (LF_MESSAGE, CRLF_MESSAGE, MIXED_MESSAGE):
            uid = self.put(message)
            whole = self.result(self.folder.read(uid))
            self.assertEqual(len(whole), self.folder.messages()[-1].size)
            for size in SIZES:
                reader = self.result(self.folder.openMessage(uid))
                position = 0
                for piece in self.readAll(reader, [size]):
                    ranged = (
                        self.result(self.folder.read(uid, position, size))
                        if size > 4000 or position % 997 == 0
                        else whole[position : position + size]
                    )
                    self.assertEqual(piece, ranged)
                    position += len(piece)
                self.assertEqual((position, reader.position), (len(whole),) * 2)
                reader.close()

    def test_largeMessage(self) -> None:
        """
        A message of several read-aheads, read in pieces of changing sizes,
        reads back whole.
        """
        message = b"".join(b"%07d\n" % n for n in range(400_000))
        uid = self.put(message)
        reader = self.result(self.folder.openMessage(uid))
        self.addCleanup(reader.close)
        pieces = self.readAll(reader, [65536, 1000, 1024 * 1024, 7])
        self.assertEqual(b"".join(pieces), message.replace(b"\n", b"\r\n"))

    def test_crlfSplitAcrossPieces(self) -> None:
        """
        A CRLF made of an LF, or one already on disk, split between two
        pieces or between two reads of the file, is neither doubled nor
        lost.
        """
        cases = [
            (b"a\nb\n", [2, 2, 2]),
            (b"a\r\nb\r\n", [2, 2, 2]),
            (b"x" * 16383 + b"\r\n" + b"y" * 20000 + b"\n", [16383, 1, 1, 30000]),
            (b"x" * 65535 + b"\r\n" + b"z\n" * 70000, [65535, 1, 65536, 9]),
        ]
        for message, sizes in cases:
            uid = self.put(message)
            expected = message.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
            reader = self.result(self.folder.openMessage(uid))
            self.assertEqual(b"".join(self.readAll(reader, sizes)), expected)
            reader.close()

    def test_endOfMessage(self) -> None:
        """
        The last read gives what is left; reads past the end give nothing.
        """
        uid = self.put(b"ab\ncd\n")
        reader = self.result(self.folder.openMessage(uid))
        self.addCleanup(reader.close)
        self.assertEqual(self.result(reader.read(5)), b"ab\r\nc")
        self.assertEqual(self.result(reader.read(100)), b"d\r\n")
        self.assertEqual(self.result(reader.read(100)), b"")
        self.assertEqual(self.result(reader.read(0)), b"")
        self.assertEqual(reader.position, 8)

    def test_emptyMessage(self) -> None:
        """
        An empty message reads as nothing.
        """
        uid = self.put(b"")
        reader = self.result(self.folder.openMessage(uid))
        self.addCleanup(reader.close)
        self.assertEqual(self.result(reader.read(10)), b"")

    def test_seek(self) -> None:
        """
        A partial's start may be sought: forward (within what was read
        ahead or past it), back, and past the end.
        """
        uid = self.put(LARGE_MIXED)
        whole = self.result(self.folder.read(uid))
        reader = self.result(self.folder.openMessage(uid))
        self.addCleanup(reader.close)
        for offset, length in [
            (10, 5),
            (100, 3),
            (READ_AHEAD + 17, 40),
            (7, 20000),
            (0, 1),
            (len(whole) - 3, 10),
            (len(whole) + 5, 10),
            (1, 2),
        ]:
            reader.seek(offset)
            self.assertEqual(reader.position, offset)
            self.assertEqual(
                self.result(reader.read(length)), whole[offset : offset + length]
            )

    def test_badArguments(self) -> None:
        """
        A negative length or offset is refused.
        """
        uid = self.put(LF_MESSAGE)
        reader = self.result(self.folder.openMessage(uid))
        self.addCleanup(reader.close)
        self.assertRaises(ValueError, reader.read, -1)
        self.assertRaises(ValueError, reader.seek, -1)

    @settings(max_examples=60, deadline=None)
    @given(
        message=st.binary(max_size=3000).map(
            lambda b: bytes(b"ab\r\n"[c % 4] for c in b)
        ),
        steps=st.lists(
            st.tuples(st.none() | st.integers(0, 3100), st.integers(0, 1200)),
            max_size=12,
        ),
    )
    def test_sameAsRangedReads(
        self, message: bytes, steps: list[tuple[int | None, int]]
    ) -> None:
        """
        Any run of seeks and reads over any mix of CR and LF gives what
        L{IFolder.read} gives of the same ranges.
        """
        uid = self.put(message)
        whole = self.result(self.folder.read(uid))
        reader = self.result(self.folder.openMessage(uid))
        position = 0
        for offset, length in steps:
            if offset is not None:
                reader.seek(offset)
                position = offset
            piece = self.result(reader.read(length))
            self.assertEqual(piece, whole[position : position + length])
            position += len(piece)
        reader.close()
        self.folder.close()


class LifeTests(ReaderTestCase):
    """
    What a reader holds, and when it lets go of it.
    """

    def test_closeLetsGo(self) -> None:
        """
        Close releases the reader's one descriptor; reading after it is an
        error; closing again does nothing.
        """
        uid = self.put(LF_MESSAGE)
        before = openDescriptors()
        reader = self.result(self.folder.openMessage(uid))
        self.assertEqual(openDescriptors(), before + 1)
        self.result(reader.read(10))
        self.assertEqual(openDescriptors(), before + 1)
        reader.close()
        self.assertEqual(openDescriptors(), before)
        self.assertRaises(RuntimeError, reader.read, 10)
        self.assertRaises(RuntimeError, reader.seek, 0)
        reader.close()

    def test_expungedMeanwhile(self) -> None:
        """
        A message expunged through another view fails the reads that
        follow with L{NoSuchMessage}, its descriptor let go at once.
        """
        uid = self.put(LF_MESSAGE)
        before = openDescriptors()
        reader = self.result(self.folder.openMessage(uid))
        self.result(reader.read(10))
        other = self.result(self.acct.openFolder(INBOX))
        self.addCleanup(other.close)
        self.result(other.setFlags([uid], [DELETED], FlagChange.ADD))
        self.result(other.expunge())
        self.assertEqual(openDescriptors(), before)
        self.failureResultOf(reader.read(10), NoSuchMessage)
        reader.close()

    def test_movedMeanwhile(self) -> None:
        """
        A message moved to another folder has left this one: reads fail.
        """
        uid = self.put(LF_MESSAGE)
        reader = self.result(self.folder.openMessage(uid))
        other = self.result(self.acct.openFolder(INBOX))
        self.addCleanup(other.close)
        self.result(other.move([uid], "Archive"))
        self.failureResultOf(reader.read(10), NoSuchMessage)

    def test_unlinkedBehindTheStore(self) -> None:
        """
        A message file another process removed is found gone at the
        reader's next look at the disk: what was read ahead may still be
        given, then reads fail and the descriptor is let go.
        """
        message = b"".join(b"%07d\n" % n for n in range(200_000))
        uid = self.put(message)
        before = openDescriptors()
        reader = self.result(self.folder.openMessage(uid))
        first = self.result(reader.read(65536))
        self.path(uid).unlink()
        received = [first]
        failure = None
        for _ in range(100):
            outcome: list[object] = []
            reader.read(65536).addBoth(outcome.append)
            if isinstance(outcome[0], Failure):
                failure = outcome[0]
                break
            received.append(outcome[0])
        assert failure is not None
        failure.trap(NoSuchMessage)
        self.assertLess(sum(map(len, received)), READ_AHEAD * 2)
        self.assertEqual(openDescriptors(), before)
        self.failureResultOf(reader.read(1), NoSuchMessage)

    def test_renamedBehindTheStore(self) -> None:
        """
        A message file renamed by another process (its flags changed) reads
        on through the reader, and is found by a reader opened after.
        """
        uid = self.put(LF_MESSAGE)
        expected = LF_MESSAGE.replace(b"\n", b"\r\n")
        reader = self.result(self.folder.openMessage(uid))
        self.addCleanup(reader.close)
        head = self.result(reader.read(100))
        path = self.path(uid)
        path.rename(path.with_name(path.name + "S"))
        rest = b"".join(self.readAll(reader, [65536]))
        self.assertEqual(head + rest, expected)
        later = self.result(self.folder.openMessage(uid))
        self.addCleanup(later.close)
        self.assertEqual(b"".join(self.readAll(later, [65536])), expected)

    def test_noSuchMessage(self) -> None:
        """
        Opening a message not in the folder, or whose file is gone, fails
        with L{NoSuchMessage}, holding nothing.
        """
        uid = self.put(LF_MESSAGE)
        before = openDescriptors()
        self.failureResultOf(self.folder.openMessage(uid + 1), NoSuchMessage)
        self.path(uid).unlink()
        self.failureResultOf(self.folder.openMessage(uid), NoSuchMessage)
        self.assertEqual(openDescriptors(), before)

    def test_diskFailure(self) -> None:
        """
        A read the disk fails fails with L{StoreFailed}, and so do the
        reads after it; the descriptor is let go, and the store logs one
        warning line with the disk's reason, no traceback.
        """
        uid = self.put(LF_MESSAGE)
        before = openDescriptors()
        reader = self.result(self.folder.openMessage(uid))
        events: list[LogEvent] = []
        self.patch(MaildirStore, "_log", Logger(observer=events.append))

        def broken(file: CRLFFile, length: int) -> bytes:
            raise OSError(errno.EIO, "I/O error")

        self.patch(CRLFFile, "read", broken)
        self.failureResultOf(reader.read(10), StoreFailed)
        self.assertEqual(
            [(e["log_level"], formatEvent(e)) for e in events],
            [(LogLevel.warn, "Maildir store disk work failed: [Errno 5] I/O error")],
        )
        self.assertEqual(self.flushLoggedErrors(), [])
        self.assertEqual(openDescriptors(), before)
        self.failureResultOf(reader.read(10), StoreFailed)

    def test_viewClosed(self) -> None:
        """
        Closing the view ends its readers: reads fail with L{NoSuchFolder},
        descriptors let go; a closed view opens nothing.
        """
        uid = self.put(LF_MESSAGE)
        before = openDescriptors()
        readers = [self.result(self.folder.openMessage(uid)) for _ in range(3)]
        self.assertEqual(openDescriptors(), before + 3)
        self.folder.close()
        self.assertEqual(openDescriptors(), before)
        for reader in readers:
            self.failureResultOf(reader.read(10), NoSuchFolder)
        self.failureResultOf(self.folder.openMessage(uid), NoSuchFolder)

    def test_folderDeleted(self) -> None:
        """
        Deleting the folder ends the readers of its views.
        """
        self.result(self.acct.createFolder("Projects"))
        (self.root / USER / ".Projects" / "cur" / "1.M1P1.host:2,").write_bytes(
            LF_MESSAGE
        )
        folder = self.result(self.acct.openFolder("Projects"))
        before = openDescriptors()
        reader = self.result(folder.openMessage(1))
        self.result(self.acct.deleteFolder("Projects"))
        self.assertEqual(openDescriptors(), before)
        self.failureResultOf(reader.read(10), NoSuchFolder)


class ThreadTests(ReaderTestCase):
    """
    The reader's work in the store's threads: one job a read-ahead, and
    a descriptor never closed under a job.
    """

    def newStore(self) -> MaildirStore:
        self.pool = StepPool()
        return MaildirStore(self.root, reactor=SyncReactor(), threadPool=self.pool)

    def result(self, d: Deferred[Any]) -> Any:
        self.pool.runAll()
        return self.successResultOf(d)

    def test_readsAhead(self) -> None:
        """
        A job reads ahead of the caller, so that most reads are answered
        at once: a 1 MiB message read in 64 KiB pieces takes a job per
        half read-ahead or so, and the reader never holds much more than
        a read-ahead.
        """
        message = b"".join(b"%07d\n" % n for n in range(140_000))
        uid = self.put(message)
        reader = self.result(self.folder.openMessage(uid))
        self.addCleanup(reader.close)
        jobs = 0
        pieces = []
        for _ in range(100):
            d = reader.read(65536)
            jobs += self.pool.runAll()
            piece = self.successResultOf(d)
            if not piece:
                break
            pieces.append(piece)
            self.assertLessEqual(reader._readySize, READ_AHEAD)
        self.assertEqual(b"".join(pieces), message.replace(b"\n", b"\r\n"))
        self.assertLessEqual(jobs, len(message) * 2 // (READ_AHEAD // 2) + 2)

    def test_oneReadAtATime(self) -> None:
        """
        A read asked while another waits for the store is an error.
        """
        uid = self.put(LF_MESSAGE)
        reader = self.result(self.folder.openMessage(uid))
        self.addCleanup(reader.close)
        first = reader.read(10)
        self.assertRaises(RuntimeError, reader.read, 10)
        self.assertEqual(self.result(first), CRLF_MESSAGE[:10])

    def test_closeDuringJob(self) -> None:
        """
        Closing a reader while its job runs cancels the waiting read and
        lets go of the descriptor once the job is done, not before.
        """
        uid = self.put(LF_MESSAGE)
        before = openDescriptors()
        reader = self.result(self.folder.openMessage(uid))
        d = reader.read(10)
        reader.close()
        self.failureResultOf(d, CancelledError)
        self.assertEqual(openDescriptors(), before + 1)
        self.pool.runAll()
        self.assertEqual(openDescriptors(), before)

    def test_expungedDuringJob(self) -> None:
        """
        A message expunged through another view while the reader's job
        runs fails the waiting read; the descriptor is let go once the job
        is done.
        """
        uid = self.put(LF_MESSAGE)
        before = openDescriptors()
        reader = self.result(self.folder.openMessage(uid))
        other = self.result(self.acct.openFolder(INBOX))
        self.addCleanup(other.close)
        d = reader.read(10)
        self.assertEqual(len(self.pool.pending), 1)
        other.setFlags([uid], [DELETED], FlagChange.ADD)
        expunged = other.expunge()
        self.pool.runAll(skip=1)
        self.assertEqual(self.successResultOf(expunged), (uid,))
        self.failureResultOf(d, NoSuchMessage)
        self.assertEqual(openDescriptors(), before + 1)
        self.pool.runAll()
        self.assertEqual(openDescriptors(), before)

    def test_seekDuringJob(self) -> None:
        """
        A seek made while a read-ahead runs throws what it read away.
        """
        uid = self.put(LARGE_MIXED)
        whole = self.result(self.folder.read(uid))
        reader = self.result(self.folder.openMessage(uid))
        self.addCleanup(reader.close)
        self.assertEqual(self.result(reader.read(5)), whole[:5])
        half = READ_AHEAD // 2
        self.assertEqual(self.successResultOf(reader.read(half)), whole[5 : 5 + half])
        self.assertEqual(len(self.pool.pending), 1)
        reader.seek(0)
        reader.seek(READ_AHEAD + 3)
        d = reader.read(5)
        self.pool.runAll()
        self.assertEqual(
            self.successResultOf(d), whole[READ_AHEAD + 3 : READ_AHEAD + 8]
        )
