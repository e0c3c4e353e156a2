# -*- test-case-name: tests.test_maildir_append -*-
"""
Tests for L{IAccount.appendStream}: a message appended to a Maildir folder
a piece at a time, as an IMAP APPEND literal arrives.
"""

from __future__ import annotations

import errno
import os
import random
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet.defer import Deferred
from twisted.trial.unittest import TestCase
from zope.interface.verify import verifyObject

from gomail_twisted.maildir import (
    INBOX,
    SEEN,
    IMessageWriter,
    InvalidName,
    MaildirStore,
    NoSuchFolder,
    StoreFailed,
    StoreFull,
    TooManyKeywords,
    _files,
)
from gomail_twisted.maildir._writer import (
    DEFAULT_APPEND_BUFFER,
    FLUSH_SIZE,
    DiskFormEncoder,
)
from tests.test_maildir_bad import _fullAfter
from tests.test_maildir_cache import QueuedPool
from tests.test_maildir_store import (
    MESSAGE,
    USER,
    Recorder,
    StoreTestCase,
    SyncReactor,
)

MiB = 1024 * 1024


def bigMessage(size: int) -> bytes:
    """
    A message of about C{size} bytes: CRLF lines of many lengths, with a
    few bare LFs, bare CRs and CR CR LF among them.
    """
    rng = random.Random(5)
    lines = [b"Subject: big\r\n", b"\r\n"]
    total = 0
    while total < size:
        line = b"%x" % rng.getrandbits(64) * rng.randrange(0, 30)
        end = rng.choice([b"\r\n"] * 20 + [b"\n", b"\r", b"\r\r\n"])
        lines.append(line + end)
        total += len(line) + len(end)
    return b"".join(lines)


def chunked(data: bytes, rng: random.Random) -> list[bytes]:
    """
    C{data} cut in pieces of 1 byte to 64 KiB, with runs of single bytes.
    """
    pieces = []
    i = 0
    while i < len(data):
        if rng.random() < 0.02:
            for _ in range(rng.randrange(1, 50)):
                pieces.append(data[i : i + 1])
                i += 1
            continue
        n = rng.randrange(1, 64 * 1024 + 1)
        pieces.append(data[i : i + n])
        i += n
    return [p for p in pieces if p]


class WriterTestCase(StoreTestCase):
    """
    An account, its INBOX, and what its folders' C{tmp/} and C{cur/}
    hold.
    """

    def setUp(self) -> None:
        super().setUp()
        self.acct = self.account()
        self.inbox = self.root / USER

    def tmp(self, folder: str = "") -> list[str]:
        return os.listdir(self.inbox / folder / "tmp")

    def cur(self, folder: str = "") -> list[Path]:
        directory = self.inbox / folder / "cur"
        return sorted(directory / name for name in os.listdir(directory))

    def stream(self, writer: Any, pieces: list[bytes]) -> None:
        for piece in pieces:
            self.assertIsNone(writer.write(piece))


class StreamTests(WriterTestCase):
    """
    Messages written a piece at a time are stored as L{IAccount.append}
    stores them.
    """

    def test_interface(self) -> None:
        """
        The writer provides L{IMessageWriter}.
        """
        writer = self.acct.appendStream(INBOX)
        self.assertTrue(verifyObject(IMessageWriter, writer))
        writer.abort()

    def test_sameAsAppend(self) -> None:
        """
        A 5 MiB message written in pieces of 1 byte to 64 KiB gives the
        file (content, C{S=}, C{W=}, flags, date) and the size that
        C{append} gives for the same bytes.
        """
        data = bigMessage(5 * MiB)
        self.result(self.acct.createFolder("Streamed"))
        appended = self.result(self.acct.append(INBOX, data, [SEEN], 1e9))
        writer = self.acct.appendStream("Streamed")
        self.stream(writer, chunked(data, random.Random(1)))
        streamed = self.result(writer.finish([SEEN], 1e9))
        self.assertEqual(streamed.destinationUIDs, appended.destinationUIDs)
        self.assertEqual(streamed.sourceUIDs, ())
        [mine] = self.cur(".Streamed")
        [theirs] = self.cur()
        self.assertEqual(mine.read_bytes(), theirs.read_bytes())
        self.assertEqual(mine.name.partition(",")[2], theirs.name.partition(",")[2])
        self.assertEqual(mine.stat().st_mtime, 1e9)
        self.assertEqual(self.tmp(".Streamed"), [])
        folder = self.result(self.acct.openFolder("Streamed"))
        [info] = folder.messages()
        crlf = _files.toCRLF(_files.diskForm(data))
        self.assertEqual(
            (info.size, info.flags, info.internalDate), (len(crlf), {SEEN}, 1e9)
        )
        self.assertEqual(self.result(folder.read(1)), crlf)

    def test_crlfSplit(self) -> None:
        """
        A CRLF split between writes, or a CR alone at a write's end, gives
        the same file as the whole message.
        """
        table = [
            [b"a\r", b"\nb"],
            [b"a\r", b"\r\n"],
            [b"a\r\r", b"\n"],
            [b"a\r", b"", b"\n"],
            [b"\r", b"\n", b"\r", b"\n"],
            [b"a\r"],
            [b"a\r", b"b"],
            [b"\r\r\r", b"\n\n"],
        ]
        for i, pieces in enumerate(table):
            name = self.result(self.acct.createFolder(f"Case{i}"))
            writer = self.acct.appendStream(name)
            self.stream(writer, pieces)
            self.result(writer.finish())
            disk = _files.diskForm(b"".join(pieces))
            [path] = self.cur(f".{name}")
            self.assertEqual(path.read_bytes(), disk, pieces)
            self.assertTrue(
                path.name.endswith(f",S={len(disk)},W={_files.crlfSize(disk)}:2,"),
                pieces,
            )

    @settings(max_examples=150, deadline=None)
    @given(
        st.lists(st.sampled_from([b"a", b"\n", b"\r", b"\r\n", b"\r\r"]), max_size=40)
    )
    def test_encoderProperty(self, parts: list[bytes]) -> None:
        """
        However a message is cut, the pieces' file form is the whole's,
        and its sizes are the file's and the CRLF form's.
        """
        encoder = DiskFormEncoder()
        out = b"".join(encoder.feed(part) for part in parts) + encoder.end()
        whole = _files.diskForm(b"".join(parts))
        self.assertEqual(out, whole)
        self.assertEqual(
            (encoder.size, encoder.crlfSize), (len(whole), _files.crlfSize(whole))
        )

    def test_emptyMessage(self) -> None:
        """
        A message with no bytes at all is stored as an empty file.
        """
        writer = self.acct.appendStream(INBOX)
        self.assertEqual(self.result(writer.finish()).destinationUIDs, (1,))
        [path] = self.cur()
        self.assertTrue(path.name.endswith(",S=0,W=0:2,"))
        self.assertEqual(path.read_bytes(), b"")

    def test_toldAndRecent(self) -> None:
        """
        Other views' listeners are told of the message; it is recent to a
        writable view; a new keyword gets its letter.
        """
        folder = self.result(self.acct.openFolder(INBOX))
        recorder = Recorder()
        folder.addListener(recorder)
        writer = self.acct.appendStream("inbox")
        self.stream(writer, [MESSAGE])
        result = self.result(writer.finish(["$Label"]))
        self.assertEqual(result.uidValidity, folder.uidValidity)
        self.assertEqual(recorder.events, [("added", (1,))])
        self.assertEqual(folder.recent, {1})
        self.assertEqual(folder.messages()[0].flags, {"$Label"})
        self.assertEqual((self.inbox / "dovecot-keywords").read_text(), "0 $Label\n")
        self.assertTrue(self.cur()[0].name.endswith(":2,a"))
        self.assertEqual(self.result(folder.read(1)), MESSAGE)

    def test_appendStillWorks(self) -> None:
        """
        C{append}, which shares the writer's last step, stores CRLF or LF
        messages alike, and gives consecutive UIDs with the writer.
        """
        self.result(self.acct.append(INBOX, MESSAGE))
        writer = self.acct.appendStream(INBOX)
        self.stream(writer, [MESSAGE])
        self.assertEqual(self.result(writer.finish()).destinationUIDs, (2,))
        self.result(self.acct.append(INBOX, MESSAGE.replace(b"\r\n", b"\n")))
        folder = self.result(self.acct.openFolder(INBOX))
        for uid in (1, 2, 3):
            self.assertEqual(self.result(folder.read(uid)), MESSAGE)


class LifecycleTests(WriterTestCase):
    """
    Aborts, misuse, and failures leave nothing behind.
    """

    def test_abort(self) -> None:
        """
        An abort, at any time and as often as called, removes the file;
        writes after it are dropped; after C{finish} succeeded it does
        nothing.
        """
        writer = self.acct.appendStream(INBOX)
        self.stream(writer, [MESSAGE * 5000])
        self.assertEqual(len(self.tmp()), 1)
        writer.abort()
        writer.abort()
        self.assertEqual(self.tmp(), [])
        self.assertIsNone(writer.write(b"more"))
        self.assertEqual(self.tmp(), [])
        self.failureResultOf(writer.finish(), RuntimeError)
        done = self.acct.appendStream(INBOX)
        self.stream(done, [MESSAGE])
        self.result(done.finish())
        done.abort()
        self.assertEqual(len(self.cur()), 1)
        self.assertEqual(self.tmp(), [])

    def test_abortBeforeOpen(self) -> None:
        """
        An abort while the file is being made, or a write is under way,
        removes the file once that is done.
        """
        pool = QueuedPool()
        store = MaildirStore(self.root, reactor=SyncReactor(), threadPool=pool)
        opening = store.openAccount(USER)
        pool.runAll()
        account = self.result(opening)
        early = account.appendStream(INBOX)
        early.write(b"x" * FLUSH_SIZE)
        early.abort()
        self.assertEqual(pool.runAll(), ["_openFile", "_removeFile"])
        self.assertEqual(self.tmp(), [])
        late = account.appendStream(INBOX)
        pool.runOne()
        late.write(b"x" * FLUSH_SIZE)
        late.abort()
        self.assertEqual(pool.runAll(), ["_writeAll", "_removeFile"])
        self.assertEqual(self.tmp(), [])

    def test_misuse(self) -> None:
        """
        A second C{finish}, or a write after C{finish}, is refused.
        """
        writer = self.acct.appendStream(INBOX)
        self.result(writer.finish())
        self.failureResultOf(writer.finish(), RuntimeError)
        self.assertRaises(RuntimeError, writer.write, b"late")

    def test_invalidName(self) -> None:
        """
        A name no folder can have is refused at once.
        """
        for name in ("", "a/../b", "a\x00b"):
            self.assertRaises(InvalidName, self.acct.appendStream, name)

    def test_noSuchFolder(self) -> None:
        """
        Writing to a folder that does not exist drops the bytes and fails
        C{finish} with L{NoSuchFolder}; nothing is left anywhere.
        """
        writer = self.acct.appendStream("Nowhere")
        self.stream(writer, [MESSAGE] * 3)
        self.failureResultOf(writer.finish(), NoSuchFolder)
        self.assertFalse((self.inbox / ".Nowhere").exists())
        self.assertEqual(self.tmp(), [])
        self.assertEqual(self.cur(), [])

    def test_folderDeletedMeanwhile(self) -> None:
        """
        A folder deleted while its message is written fails C{finish} with
        L{NoSuchFolder}.
        """
        self.result(self.acct.createFolder("Work"))
        writer = self.acct.appendStream("Work")
        self.stream(writer, [MESSAGE * 3000])
        self.result(self.acct.deleteFolder("Work"))
        self.stream(writer, [MESSAGE])
        self.failureResultOf(writer.finish(), NoSuchFolder)
        self.assertFalse((self.inbox / ".Work").exists())

    def test_diskFull(self) -> None:
        """
        A disk that fills up while the message is written fails C{finish}
        with L{StoreFull}; the file is removed at once, and what follows is
        dropped.
        """
        self.patch(os, "write", _fullAfter("/tmp/", 100_000))
        writer = self.acct.appendStream(INBOX)
        self.stream(writer, [b"x" * FLUSH_SIZE] * 2)
        self.assertEqual(self.tmp(), [])
        self.stream(writer, [b"y" * FLUSH_SIZE] * 2)
        self.failureResultOf(writer.finish(), StoreFull)
        self.flushLoggedErrors(OSError)
        self.assertEqual(self.cur(), [])

    def test_fsyncFails(self) -> None:
        """
        A file that cannot be made durable fails C{finish} with
        L{StoreFailed}, and is removed.
        """
        realFsync = os.fsync

        def fsync(fd: int) -> None:
            if "/tmp/" in os.readlink(f"/proc/self/fd/{fd}"):
                raise OSError(errno.EIO, os.strerror(errno.EIO))
            realFsync(fd)

        self.patch(os, "fsync", fsync)
        writer = self.acct.appendStream(INBOX)
        self.stream(writer, [MESSAGE])
        failure = self.failureResultOf(writer.finish(), StoreFailed)
        self.assertNotIsInstance(failure.value, StoreFull)
        self.flushLoggedErrors(OSError)
        self.assertEqual((self.tmp(), self.cur()), ([], []))

    def test_tooManyKeywords(self) -> None:
        """
        A keyword the folder has no letter left for fails C{finish} with
        L{TooManyKeywords}, and the file is removed.
        """
        words = [f"k{i}" for i in range(26)]
        self.result(self.acct.append(INBOX, MESSAGE, words))
        writer = self.acct.appendStream(INBOX)
        self.stream(writer, [MESSAGE])
        self.failureResultOf(writer.finish(["one-more"]), TooManyKeywords)
        self.assertEqual(self.tmp(), [])
        self.assertEqual(len(self.cur()), 1)


class BackpressureTests(WriterTestCase):
    """
    The writer holds a bounded buffer: past it, C{write} asks its caller
    to wait until the disk caught up.
    """

    def setUp(self) -> None:
        super().setUp()
        self.pool = QueuedPool()
        store = MaildirStore(self.root, reactor=SyncReactor(), threadPool=self.pool)
        opening = store.openAccount(USER)
        self.pool.runAll()
        self.queued = self.result(opening)

    def test_pauseAndResume(self) -> None:
        """
        C{write} returns L{None} while at most the buffer waits, then a
        Deferred that fires once the pending bytes were written, in order.
        """
        writer = self.queued.appendStream(INBOX)
        piece = 64 * 1024
        count = DEFAULT_APPEND_BUFFER // piece
        for i in range(count):
            self.assertIsNone(writer.write(b"%d" % i * piece))
        paused = writer.write(b"z" * piece)
        self.assertIsInstance(paused, Deferred)
        assert isinstance(paused, Deferred)
        self.assertNoResult(paused)
        self.assertEqual(self.pool.runOne(), "_openFile")
        self.assertNoResult(paused)
        self.assertEqual(self.pool.runOne(), "_writeAll")
        self.assertIsNone(self.successResultOf(paused))
        self.assertIsNone(writer.write(b"end\r\n"))
        finished = writer.finish()
        self.pool.runAll()
        self.assertEqual(self.successResultOf(finished).destinationUIDs, (1,))
        expected = b"".join(b"%d" % i * piece for i in range(count))
        [path] = self.cur()
        self.assertEqual(path.read_bytes(), expected + b"z" * piece + b"end\n")

    def test_pausedWhileWriting(self) -> None:
        """
        Bytes being written count toward the buffer: while a large write
        is under way, more bytes past the buffer are held back.
        """
        writer = self.queued.appendStream(INBOX)
        self.pool.runOne()
        self.assertIsNone(writer.write(b"a" * DEFAULT_APPEND_BUFFER))
        self.assertEqual(len(self.pool.queue), 1)
        paused = writer.write(b"b")
        assert isinstance(paused, Deferred)
        self.assertNoResult(paused)
        self.pool.runOne()
        self.successResultOf(paused)

    def test_abortReleases(self) -> None:
        """
        An abort lets a paused caller go on at once.
        """
        writer = self.queued.appendStream(INBOX)
        paused = writer.write(b"a" * (DEFAULT_APPEND_BUFFER + 1))
        assert isinstance(paused, Deferred)
        writer.abort()
        self.successResultOf(paused)
        self.pool.runAll()
        self.assertEqual(self.tmp(), [])

    def test_failureReleases(self) -> None:
        """
        A failed write lets a paused caller go on, and C{finish} fails.
        """
        self.patch(os, "write", _fullAfter("/tmp/", 10))
        writer = self.queued.appendStream(INBOX)
        paused = writer.write(b"a" * (DEFAULT_APPEND_BUFFER + 1))
        assert isinstance(paused, Deferred)
        self.pool.runAll()
        self.successResultOf(paused)
        self.assertEqual(self.tmp(), [])
        finished = writer.finish()
        self.pool.runAll()
        self.failureResultOf(finished, StoreFull)
        self.flushLoggedErrors(OSError)


class RealThreadsTests(TestCase):
    """
    With the real reactor and the store's own threads.
    """

    timeout = 20

    async def test_streamAndWait(self) -> None:
        """
        A caller that waits whenever C{write} asks it to stores a 3 MiB
        message whole, as C{append} would.
        """
        root = Path(self.mktemp())
        store = MaildirStore(root, appendBuffer=100_000)
        self.addCleanup(store.close)
        account = await store.openAccount(USER, create=True)
        data = bigMessage(3 * MiB)
        writer = account.appendStream(INBOX)
        paused = 0
        for piece in chunked(data, random.Random(2)):
            d = writer.write(piece)
            if d is not None:
                paused += 1
                await d
        result = await writer.finish()
        self.assertGreater(paused, 0)
        folder = await account.openFolder(INBOX)
        [uid] = result.destinationUIDs
        self.assertEqual(await folder.read(uid), _files.toCRLF(_files.diskForm(data)))
        self.assertEqual(os.listdir(root / USER / "tmp"), [])
        folder.close()
