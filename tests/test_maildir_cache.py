# -*- test-case-name: tests.test_maildir_cache -*-
"""
Tests for L{IFolder.scan} and L{IFolder.cachedData} of the Maildir store:
work on messages' contents in batches in the store's threads, and data
derived from messages kept in memory and in each folder's C{gomail-cache}.
"""

from __future__ import annotations

import errno
import os
import shutil
import struct
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool
from twisted.trial.unittest import TestCase

from gomail_twisted.maildir import (
    DELETED,
    INBOX,
    SEEN,
    FlagChange,
    MaildirStore,
    NoSuchFolder,
    StoreFailed,
    _derived,
    _files,
)
from gomail_twisted.maildir._cachefile import FILE_NAME, MAX_DATA, encodeRecord
from gomail_twisted.maildir._uidlist import FILE_NAME as UIDLIST
from tests.test_maildir_store import USER, StoreTestCase, SyncPool, SyncReactor


def _size(uid: int, message: bytes) -> int:
    """
    What a scan gives for a message in these tests: its size.
    """
    return len(message)


class QueuedPool(ThreadPool):
    """
    A thread pool whose work waits, in order, until the test runs it.
    """

    def __init__(self) -> None:
        super().__init__()
        self.queue: list[tuple[Callable[[bool, object], None], Any, Any, Any]] = []

    def callInThreadWithCallback(
        self,
        onResult: Callable[[bool, object], None],
        f: Callable[..., object],
        *args: object,
        **kwargs: object,
    ) -> None:
        self.queue.append((onResult, f, args, kwargs))

    def runOne(self) -> str:
        """
        Run the oldest job waiting; return its function's name.
        """
        onResult, f, args, kwargs = self.queue.pop(0)
        try:
            result = f(*args, **kwargs)
        except BaseException:
            onResult(False, Failure())
        else:
            onResult(True, result)
        return str(getattr(f, "__name__", f))

    def runAll(self) -> list[str]:
        """
        Run jobs until none waits (a few hundred at most).
        """
        done: list[str] = []
        for _ in range(500):
            if not self.queue:
                return done
            done.append(self.runOne())
        raise AssertionError("jobs keep coming")


class CountingPool(SyncPool):
    """
    A pool that runs work at once and counts the jobs.
    """

    jobs = 0

    def callInThreadWithCallback(
        self,
        onResult: Callable[[bool, object], None],
        f: Callable[..., object],
        *args: object,
        **kwargs: object,
    ) -> None:
        self.jobs += 1
        super().callInThreadWithCallback(onResult, f, *args, **kwargs)


def message(i: int, body: bytes = b"") -> bytes:
    return b"Subject: message %d\r\nX-N: %d\r\n\r\nBody %d\r\n%s" % (i, i, i, body)


class Counter:
    """
    A C{compute} that counts its calls and gives each message's subject.
    """

    def __init__(self) -> None:
        self.calls: list[bytes] = []

    def __call__(self, data: bytes) -> bytes:
        self.calls.append(data)
        return data.split(b"\r\n", 1)[0]


def parseCache(path: Path) -> tuple[int, list[tuple[int, str, bytes]], int]:
    """
    The UIDVALIDITY, records and size of a cache file, read as its format
    says (every record's CRC checked).
    """
    data = path.read_bytes()
    magic, validity = struct.unpack(">8sQ", data[:16])
    assert magic == b"GMCACHE1", magic
    records = []
    offset = 16
    while offset < len(data):
        uid, kindLength, length, crc = struct.unpack(
            ">IBII", data[offset : offset + 13]
        )
        kind = data[offset + 13 : offset + 13 + kindLength]
        value = data[offset + 13 + kindLength : offset + 13 + kindLength + length]
        assert len(value) == length
        expected = zlib.crc32(kind + value, zlib.crc32(data[offset : offset + 9]))
        assert crc == expected, (uid, kind)
        records.append((uid, kind.decode(), value))
        offset += 13 + kindLength + length
    return validity, records, len(data)


class FolderTestCase(StoreTestCase):
    """
    An account whose INBOX holds five messages, and a view of it.
    """

    def setUp(self) -> None:
        super().setUp()
        self.acct = self.account()
        self.messages = {i: message(i) for i in range(1, 6)}
        for i in range(1, 6):
            self.result(self.acct.append(INBOX, self.messages[i]))
        self.folder = self.result(self.acct.openFolder(INBOX))
        self.inbox = self.root / USER

    def fileOf(self, i: int) -> str:
        """
        The name of the file in C{cur/} that holds C{message(i)}.
        """
        body = message(i).replace(b"\r\n", b"\n")
        cur = self.inbox / "cur"
        [name] = [n for n in os.listdir(cur) if (cur / n).read_bytes() == body]
        return name

    def storeWith(self, pool: ThreadPool, **kwargs: Any) -> MaildirStore:
        return MaildirStore(self.root, reactor=SyncReactor(), threadPool=pool, **kwargs)


class ScanTests(FolderTestCase):
    """
    L{IFolder.scan}.
    """

    def test_wholeMessages(self) -> None:
        """
        The function gets each message's UID and the message whole, as
        C{read} gives it; the results come in the order of the UIDs asked
        for, each once.
        """
        results = self.result(self.folder.scan([3, 1, 5, 3], lambda uid, m: (uid, m)))
        self.assertEqual(
            [uid for uid, _ in results], [given for _, (given, _) in results]
        )
        self.assertEqual(
            [(uid, m) for uid, (_, m) in results],
            [(3, self.messages[3]), (1, self.messages[1]), (5, self.messages[5])],
        )
        for uid, (_, data) in results:
            self.assertEqual(self.result(self.folder.read(uid)), data)

    def test_limit(self) -> None:
        """
        With a limit, the function gets the first bytes of each message's
        CRLF form, also when the limit falls inside a CRLF made from an LF.
        """
        (self.inbox / "new" / "9.M1P1.host").write_bytes(b"ab\ncd\nef\n")
        self.result(self.folder.refresh())
        table = [(1, b"a"), (3, b"ab\r"), (4, b"ab\r\n"), (5, b"ab\r\nc"), (99, None)]
        for limit, expected in table:
            scanned = self.folder.scan([6, 2], lambda uid, m: m, limit)
            results = dict(self.result(scanned))
            self.assertEqual(results[6], expected or b"ab\r\ncd\r\nef\r\n", limit)
            self.assertEqual(results[2], self.messages[2][:limit], limit)

    def test_goneLeftOut(self) -> None:
        """
        Messages no longer in the folder are left out; one whose file was
        renamed behind the store's back (a flag set by mutt) is found.
        """
        cur = self.inbox / "cur"
        os.unlink(cur / self.fileOf(2))
        os.rename(cur / self.fileOf(3), cur / (self.fileOf(3) + "S"))
        results = self.result(self.folder.scan([1, 2, 3, 99], _size))
        self.assertEqual(
            results, [(1, len(self.messages[1])), (3, len(self.messages[3]))]
        )
        self.assertEqual([m.uid for m in self.folder.messages()], [1, 3, 4, 5])
        self.assertEqual(self.folder.messages()[1].flags, {SEEN})

    def test_functionRaises(self) -> None:
        """
        What the function raises fails the scan with that very exception.
        """

        def f(uid: int, data: bytes) -> int:
            if b"message 2" in data:
                raise ZeroDivisionError("two")
            return 1

        failure = self.failureResultOf(
            self.folder.scan([1, 2, 3], f), ZeroDivisionError
        )
        self.assertEqual(str(failure.value), "two")

    def test_readFails(self) -> None:
        """
        A message that cannot be read fails the scan with L{StoreFailed}.
        """

        def broken(path: str, limit: int | None = None) -> bytes:
            raise OSError(errno.EIO, "I/O error")

        self.patch(_files, "readMessage", broken)
        self.failureResultOf(self.folder.scan([1], _size), StoreFailed)
        self.assertEqual(len(self.flushLoggedErrors(OSError)), 1)

    def test_batches(self) -> None:
        """
        Messages are read in batches of bounded size and count, one job
        each, not one job per message; with a limit, batches hold more.
        """
        pool = CountingPool()
        store = self.storeWith(pool)
        folder = self.result(self.account(store).openFolder(INBOX))
        size = len(self.messages[1])
        self.patch(_derived, "BATCH_BYTES", 2 * size)
        pool.jobs = 0
        self.assertEqual(len(self.result(folder.scan(range(1, 6), _size))), 5)
        self.assertEqual(pool.jobs, 3)
        pool.jobs = 0
        self.result(folder.scan(range(1, 6), _size, limit=size // 2))
        self.assertEqual(pool.jobs, 2)
        self.patch(_derived, "BATCH_MESSAGES", 1)
        pool.jobs = 0
        self.result(folder.scan(range(1, 6), _size, limit=10))
        self.assertEqual(pool.jobs, 5)

    def test_otherWorkBetweenBatches(self) -> None:
        """
        Work queued on the folder while a batch runs goes before the next
        batch.
        """
        pool = QueuedPool()
        store = self.storeWith(pool)
        opened = self.openedAccount(store, pool).openFolder(INBOX)
        pool.runAll()
        folder = self.result(opened)
        self.patch(_derived, "BATCH_MESSAGES", 2)
        scanned = folder.scan(range(1, 6), _size)
        read = folder.read(5)
        self.assertEqual(pool.runOne(), "job")
        self.assertEqual(pool.runOne(), "read")
        self.assertEqual(self.result(read), self.messages[5])
        self.assertEqual(pool.runAll(), ["job", "job"])
        self.assertEqual([uid for uid, _ in self.result(scanned)], [1, 2, 3, 4, 5])

    def openedAccount(self, store: MaildirStore, pool: QueuedPool) -> Any:
        opening = store.openAccount(USER)
        pool.runAll()
        return self.result(opening)

    def test_closedView(self) -> None:
        """
        A scan of a closed view fails with L{NoSuchFolder}, also when the
        view is closed between batches.
        """
        pool = QueuedPool()
        store = self.storeWith(pool)
        opened = self.openedAccount(store, pool).openFolder(INBOX)
        pool.runAll()
        folder = self.result(opened)
        self.patch(_derived, "BATCH_MESSAGES", 2)
        scanned = folder.scan(range(1, 6), _size)
        pool.runOne()
        folder.close()
        pool.runAll()
        self.failureResultOf(scanned, NoSuchFolder)
        self.failureResultOf(folder.scan([1], _size), NoSuchFolder)


class DeletedUnderWorkTests(FolderTestCase):
    """
    A folder deleted on disk while work on it waits for a thread.
    """

    def test_noSuchFolder(self) -> None:
        """
        Work that finds its folder gone fails with L{NoSuchFolder}, not a
        logged disk failure.
        """
        pool = QueuedPool()
        store = self.storeWith(pool)
        opening = store.openAccount(USER)
        pool.runAll()
        opened = self.result(opening).openFolder(INBOX)
        pool.runAll()
        folder = self.result(opened)
        flagged = folder.setFlags([1], [SEEN], FlagChange.ADD)
        shutil.rmtree(self.inbox / "cur")
        pool.runAll()
        self.failureResultOf(flagged, NoSuchFolder)
        self.assertEqual(self.flushLoggedErrors(), [])


class CachedDataTests(FolderTestCase):
    """
    L{IFolder.cachedData}.
    """

    KIND = "test.subject.1"

    def setUp(self) -> None:
        super().setUp()
        self.compute = Counter()

    def cached(self, folder: Any, uids: Any, kind: str = KIND) -> dict[int, bytes]:
        return self.result(folder.cachedData(uids, kind, self.compute))

    def subjects(self, *uids: int) -> dict[int, bytes]:
        return {uid: b"Subject: message %d" % uid for uid in uids}

    def freshFolder(self, name: str = INBOX) -> Any:
        return self.result(self.account(self.newStore()).openFolder(name))

    def test_computedOnce(self) -> None:
        """
        Data is computed once per message from its whole CRLF form, and
        given back from then on; messages not in the folder are left out.
        """
        result = self.cached(self.folder, [3, 1, 99])
        self.assertEqual(result, self.subjects(3, 1))
        self.assertEqual(list(result), [3, 1])
        self.assertEqual(self.compute.calls, [self.messages[3], self.messages[1]])
        self.assertEqual(self.cached(self.folder, [1, 2, 3]), self.subjects(1, 2, 3))
        self.assertEqual(len(self.compute.calls), 3)
        other = self.result(self.acct.openFolder(INBOX))
        self.assertEqual(self.cached(other, [2]), self.subjects(2))
        self.assertEqual(len(self.compute.calls), 3)

    def test_keptAcrossRestarts(self) -> None:
        """
        A new store (a restarted server) reads the data from the folder's
        cache file instead of computing it again.
        """
        self.cached(self.folder, [1, 2, 3, 4, 5])
        self.compute.calls.clear()
        self.assertEqual(self.cached(self.freshFolder(), [5, 1]), self.subjects(5, 1))
        self.assertEqual(self.compute.calls, [])

    def test_fileFormat(self) -> None:
        """
        The cache file is a header of magic and UIDVALIDITY, then one
        record a message and kind: UID, kind length, data length, CRC-32,
        kind, data.
        """
        self.result(self.folder.cachedData([2], "k.1", lambda m: b"xyz"))
        data = (self.inbox / FILE_NAME).read_bytes()
        head = struct.pack(">IBI", 2, 3, 3)
        crc = zlib.crc32(b"k.1xyz", zlib.crc32(head))
        self.assertEqual(
            data,
            b"GMCACHE1"
            + struct.pack(">Q", self.folder.uidValidity)
            + head
            + struct.pack(">I", crc)
            + b"k.1xyz",
        )

    def test_kinds(self) -> None:
        """
        Each kind is computed and kept apart: a new version of a format is
        computed anew.
        """
        self.cached(self.folder, [1], "test.subject.1")
        self.assertEqual(
            self.result(
                self.folder.cachedData([1], "test.length.1", lambda m: b"%d" % len(m))
            ),
            {1: b"%d" % len(self.messages[1])},
        )
        self.cached(self.folder, [1], "test.subject.2")
        self.assertEqual(len(self.compute.calls), 2)
        _, records, _ = parseCache(self.inbox / FILE_NAME)
        self.assertEqual(
            [kind for _, kind, _ in records],
            ["test.subject.1", "test.length.1", "test.subject.2"],
        )

    def test_badKind(self) -> None:
        """
        A kind that is empty, too long, or not printable ASCII without
        spaces is refused with L{ValueError}.
        """
        for kind in ("", "a b", "caf\xe9", "x" * 65, "tab\t", "nl\n"):
            self.failureResultOf(
                self.folder.cachedData([1], kind, self.compute), ValueError
            )
        self.assertEqual(self.cached(self.folder, [1], "x" * 64), self.subjects(1))

    def test_computeFails(self) -> None:
        """
        What C{compute} raises fails the call with it; data that is not
        C{bytes} fails it with L{TypeError}.
        """

        def broken(data: bytes) -> bytes:
            raise KeyError("nope")

        self.failureResultOf(self.folder.cachedData([1], self.KIND, broken), KeyError)
        self.failureResultOf(
            self.folder.cachedData([1], self.KIND, lambda m: "text"),
            TypeError,
        )
        self.assertEqual(self.cached(self.folder, [1]), self.subjects(1))

    def test_largeDataInMemoryOnly(self) -> None:
        """
        Data over 1 MiB is kept in memory, not in the file.
        """
        big = b"x" * (MAX_DATA + 1)
        store = self.storeWith(SyncPool(), cacheMemory=4 * MAX_DATA)
        folder = self.result(self.account(store).openFolder(INBOX))
        calls = []

        def compute(data: bytes) -> bytes:
            calls.append(1)
            return big

        for _ in range(2):
            self.assertEqual(
                self.result(folder.cachedData([1], "big.1", compute)), {1: big}
            )
        self.assertEqual(len(calls), 1)
        self.assertFalse((self.inbox / FILE_NAME).exists())
        self.result(self.freshFolder().cachedData([1], "big.1", compute))
        self.assertEqual(len(calls), 2)

    def test_memoryBounded(self) -> None:
        """
        The memory kept is bounded by the store's C{cacheMemory}; what was
        dropped from memory is read from the file, not computed again.
        """
        limit = 3 * (_derived.ENTRY_OVERHEAD + 20)
        store = self.storeWith(SyncPool(), cacheMemory=limit)
        folder = self.result(self.account(store).openFolder(INBOX))
        self.assertEqual(self.cached(folder, range(1, 6)), self.subjects(1, 2, 3, 4, 5))
        self.assertLessEqual(store.memoryCache.size, limit)
        self.assertGreater(store.memoryCache.size, 0)
        self.assertEqual(self.cached(folder, range(1, 6)), self.subjects(1, 2, 3, 4, 5))
        self.assertEqual(len(self.compute.calls), 5)

    def test_expunged(self) -> None:
        """
        An expunged message's data goes with it: it is no longer given,
        and is dropped from memory.
        """
        store = self.store
        self.cached(self.folder, [1, 2])
        before = store.memoryCache.size
        self.result(self.folder.setFlags([2], [DELETED], FlagChange.ADD))
        self.result(self.folder.expunge())
        self.assertLess(store.memoryCache.size, before)
        self.assertEqual(self.cached(self.folder, [1, 2]), self.subjects(1))
        self.assertEqual(len(self.compute.calls), 2)

    def test_compaction(self) -> None:
        """
        When the records of expunged messages outnumber the live ones, the
        file is written anew with the live ones only, and they still read.
        """
        for i in range(6, 101):
            self.result(self.acct.append(INBOX, message(i)))
        self.result(self.folder.refresh())
        self.cached(self.folder, range(1, 101))
        _, records, size = parseCache(self.inbox / FILE_NAME)
        self.assertEqual(len(records), 100)
        self.result(self.folder.setFlags(range(1, 91), [DELETED], FlagChange.ADD))
        self.result(self.folder.expunge())
        self.assertEqual(self.cached(self.freshFolder(), [95]), self.subjects(95))
        validity, records, smaller = parseCache(self.inbox / FILE_NAME)
        self.assertEqual(validity, self.folder.uidValidity)
        self.assertEqual([uid for uid, _, _ in records], list(range(91, 101)))
        self.assertLess(smaller, size / 5)
        self.compute.calls.clear()
        fresh = self.freshFolder()
        self.assertEqual(
            self.cached(fresh, range(1, 101)), self.subjects(*range(91, 101))
        )
        self.assertEqual(self.compute.calls, [])

    def test_tornTail(self) -> None:
        """
        A record cut short (a writer killed mid-write) is ignored, and cut
        off by the next writer.
        """
        self.cached(self.folder, [1, 2])
        path = self.inbox / FILE_NAME
        whole = path.read_bytes()
        torn = encodeRecord(3, self.KIND.encode(), b"Subject: message 3")[:-3]
        for tail in (b"\x00\x00\x00\x03\x0e", b"\x00" * 40, torn):
            path.write_bytes(whole + tail)
            self.compute.calls.clear()
            fresh = self.freshFolder()
            self.assertEqual(self.cached(fresh, [1, 2, 3]), self.subjects(1, 2, 3))
            self.assertEqual(self.compute.calls, [self.messages[3]])
            _, records, _ = parseCache(path)
            self.assertEqual([uid for uid, _, _ in records], [1, 2, 3])

    def test_damagedRecord(self) -> None:
        """
        A record whose bytes changed fails its CRC: its data is computed
        again and kept anew.
        """
        self.cached(self.folder, [1])
        path = self.inbox / FILE_NAME
        data = bytearray(path.read_bytes())
        data[-2] ^= 0xFF
        path.write_bytes(bytes(data))
        fresh = self.freshFolder()
        self.assertEqual(self.cached(fresh, [1]), self.subjects(1))
        self.assertEqual(len(self.compute.calls), 2)
        self.assertEqual(self.cached(self.freshFolder(), [1]), self.subjects(1))
        self.assertEqual(len(self.compute.calls), 2)

    def test_damagedHeader(self) -> None:
        """
        A file whose header cannot be read, or whose UIDVALIDITY is older
        than the folder's, is started anew; one of a newer UIDVALIDITY (as
        another process may see the folder) is left alone.
        """
        path = self.inbox / FILE_NAME
        validity = self.folder.uidValidity
        for header, kept in [
            (b"GARBAGE!" + struct.pack(">Q", validity), False),
            (b"GMCA", False),
            (b"GMCACHE1" + struct.pack(">Q", validity - 1), False),
            (b"GMCACHE1" + struct.pack(">Q", validity + 1), True),
        ]:
            self.cached(self.freshFolder(), [1])
            body = path.read_bytes()[16:] if len(header) == 16 else b""
            path.write_bytes(header + body)
            self.compute.calls.clear()
            self.assertEqual(
                self.cached(self.freshFolder(), [1, 2]), self.subjects(1, 2)
            )
            self.assertEqual(len(self.compute.calls), 2, header)
            if kept:
                self.assertEqual(path.read_bytes()[:16], header)
                path.unlink()
            else:
                written, records, _ = parseCache(path)
                self.assertEqual(written, validity)
                self.assertEqual([uid for uid, _, _ in records], [1, 2])
        self.flushLoggedErrors()

    def test_newUIDValidity(self) -> None:
        """
        When the folder gets a new UIDVALIDITY, the data kept under the old
        one is not given for the new UIDs.
        """
        self.cached(self.folder, [1, 2])
        path = self.inbox / UIDLIST
        path.write_bytes(path.read_bytes().replace(b"+2", b"?2"))
        self.result(self.acct.append(INBOX, message(6)))
        self.flushLoggedErrors()
        view = self.freshFolder()
        self.assertEqual(len(view.messages()), 6)
        self.compute.calls.clear()
        result = self.cached(view, [m.uid for m in view.messages()])
        self.assertEqual(
            sorted(result.values()), sorted(self.subjects(1, 2, 3, 4, 5, 6).values())
        )
        self.assertEqual(len(self.compute.calls), 6)
        validity, records, _ = parseCache(self.inbox / FILE_NAME)
        self.assertEqual(validity, view.uidValidity)
        self.assertEqual(len(records), 6)

    def test_unusableFile(self) -> None:
        """
        A cache file that cannot be opened costs a log line, never the
        data.
        """
        (self.inbox / FILE_NAME).mkdir()
        self.assertEqual(self.cached(self.folder, [1, 2]), self.subjects(1, 2))
        self.assertEqual(self.cached(self.freshFolder(), [1]), self.subjects(1))
        self.assertEqual(len(self.compute.calls), 3)

    def test_oneRecordForTwoWriters(self) -> None:
        """
        Two processes computing the same message at once keep one record.
        """
        theirs = self.freshFolder()

        def compute(data: bytes) -> bytes:
            self.result(theirs.cachedData([1], self.KIND, Counter()))
            return Counter()(data)

        self.assertEqual(
            self.result(self.folder.cachedData([1], self.KIND, compute)),
            self.subjects(1),
        )
        _, records, _ = parseCache(self.inbox / FILE_NAME)
        self.assertEqual(records, [(1, self.KIND, b"Subject: message 1")])

    def test_oneComputationInProcess(self) -> None:
        """
        Two views asking for the same message at once in one process: the
        second finds what the first computed.
        """
        pool = QueuedPool()
        store = self.storeWith(pool)
        opening = store.openAccount(USER)
        pool.runAll()
        account = self.result(opening)
        views = [account.openFolder(INBOX), account.openFolder(INBOX)]
        pool.runAll()
        first, second = [
            self.result(v).cachedData([1], self.KIND, self.compute) for v in views
        ]
        pool.runAll()
        self.assertEqual(self.result(first), self.result(second))
        self.assertEqual(len(self.compute.calls), 1)

    def test_folderDeleted(self) -> None:
        """
        A deleted folder takes its data along: a new folder of that name
        computes its messages' data afresh.
        """
        self.result(self.acct.createFolder("Work"))
        self.result(self.acct.append("Work", message(1)))
        work = self.result(self.acct.openFolder("Work"))
        self.result(work.cachedData([1], self.KIND, lambda m: b"old"))
        self.result(self.acct.deleteFolder("Work"))
        self.assertEqual(self.store.memoryCache.size, 0)
        self.result(self.acct.createFolder("Work"))
        self.result(self.acct.append("Work", message(7)))
        again = self.result(self.acct.openFolder("Work"))
        self.assertEqual(self.cached(again, [1]), {1: b"Subject: message 7"})

    def test_folderRenamed(self) -> None:
        """
        A renamed folder keeps its data.
        """
        self.result(self.acct.createFolder("Work"))
        self.result(self.acct.append("Work", message(1)))
        self.cached(self.result(self.acct.openFolder("Work")), [1])
        self.result(self.acct.renameFolder("Work", "Play"))
        self.assertTrue((self.inbox / ".Play" / FILE_NAME).exists())
        play = self.result(self.acct.openFolder("Play"))
        self.assertEqual(self.cached(play, [1]), self.subjects(1))
        self.assertEqual(len(self.compute.calls), 1)

    def test_closedView(self) -> None:
        """
        A closed view's cached data is refused with L{NoSuchFolder}.
        """
        self.folder.close()
        self.failureResultOf(
            self.folder.cachedData([1], self.KIND, self.compute), NoSuchFolder
        )


class MemoryCacheTests(StoreTestCase):
    """
    L{_derived.MemoryCache}, the store's derived data in memory.
    """

    def test_leastRecentlyUsedGoes(self) -> None:
        """
        Past the bound, the entry used least recently is dropped; one
        larger than the bound is not kept.
        """
        cache = _derived.MemoryCache(3 * (_derived.ENTRY_OVERHEAD + 10))
        folder = object()
        for uid in (1, 2, 3):
            cache.put(folder, uid, "k", b"%010d" % uid)
        self.assertEqual(cache.get(folder, 1, "k"), b"0000000001")
        cache.put(folder, 4, "k", b"0000000004")
        self.assertIsNone(cache.get(folder, 2, "k"))
        self.assertEqual(cache.get(folder, 1, "k"), b"0000000001")
        cache.put(folder, 5, "k", b"x" * 1000)
        self.assertIsNone(cache.get(folder, 5, "k"))
        self.assertEqual(cache.size, 3 * (_derived.ENTRY_OVERHEAD + 10))

    def test_forget(self) -> None:
        """
        A folder's messages, or all of its entries, can be dropped.
        """
        cache = _derived.MemoryCache(10_000)
        one, two = object(), object()
        for folder in (one, two):
            for uid in (1, 2):
                cache.put(folder, uid, "a", b"x")
                cache.put(folder, uid, "b", b"y")
        cache.forgetMessages(one, [1])
        self.assertIsNone(cache.get(one, 1, "a"))
        self.assertIsNone(cache.get(one, 1, "b"))
        self.assertEqual(cache.get(one, 2, "b"), b"y")
        cache.forgetFolder(one)
        self.assertIsNone(cache.get(one, 2, "a"))
        self.assertEqual(cache.get(two, 1, "a"), b"x")
        self.assertEqual(cache.size, 4 * (_derived.ENTRY_OVERHEAD + 1))


class RealThreadsTests(TestCase):
    """
    With the real reactor and the store's own threads.
    """

    timeout = 20

    async def test_scanAndCache(self) -> None:
        """
        A scan in several batches and cached data give every message's
        result, in order, as the synchronous store does.
        """
        store = MaildirStore(self.mktemp())
        self.addCleanup(store.close)
        account = await store.openAccount(USER, create=True)
        for i in range(1, 31):
            await account.append(INBOX, message(i))
        folder = await account.openFolder(INBOX)
        self.patch(_derived, "BATCH_MESSAGES", 7)
        uids = list(range(30, 0, -1))
        scanned = await folder.scan(uids, lambda uid, m: m.split(b"\r\n", 1)[0])
        self.assertEqual(scanned, [(i, b"Subject: message %d" % i) for i in uids])
        compute = Counter()
        cached = await folder.cachedData(uids, "test.subject.1", compute)
        self.assertEqual(list(cached.items()), scanned)
        self.assertEqual(len(compute.calls), 30)
        folder.close()
