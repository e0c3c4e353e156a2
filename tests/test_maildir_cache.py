# -*- test-case-name: tests.test_maildir_cache -*-
"""
Tests for L{IFolder.scan} of the Maildir store: work on messages' contents
in batches in the store's threads.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from typing import Any

from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool
from twisted.trial.unittest import TestCase

from gomail_twisted.maildir import (
    INBOX,
    SEEN,
    MaildirStore,
    NoSuchFolder,
    StoreFailed,
    _derived,
    _files,
)
from tests.test_maildir_store import USER, StoreTestCase, SyncPool, SyncReactor


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
        The function gets each message whole, as C{read} gives it; the
        results come in the order of the UIDs asked for, each once.
        """
        results = self.result(self.folder.scan([3, 1, 5, 3], lambda m: m))
        self.assertEqual(
            results,
            [(3, self.messages[3]), (1, self.messages[1]), (5, self.messages[5])],
        )
        for uid, data in results:
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
            results = dict(self.result(self.folder.scan([6, 2], lambda m: m, limit)))
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
        results = self.result(self.folder.scan([1, 2, 3, 99], len))
        self.assertEqual(
            results, [(1, len(self.messages[1])), (3, len(self.messages[3]))]
        )
        self.assertEqual([m.uid for m in self.folder.messages()], [1, 3, 4, 5])
        self.assertEqual(self.folder.messages()[1].flags, {SEEN})

    def test_functionRaises(self) -> None:
        """
        What the function raises fails the scan with that very exception.
        """

        def f(data: bytes) -> int:
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
        self.failureResultOf(self.folder.scan([1], len), StoreFailed)
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
        self.assertEqual(len(self.result(folder.scan(range(1, 6), len))), 5)
        self.assertEqual(pool.jobs, 3)
        pool.jobs = 0
        self.result(folder.scan(range(1, 6), len, limit=size // 2))
        self.assertEqual(pool.jobs, 2)
        self.patch(_derived, "BATCH_MESSAGES", 1)
        pool.jobs = 0
        self.result(folder.scan(range(1, 6), len, limit=10))
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
        scanned = folder.scan(range(1, 6), len)
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
        scanned = folder.scan(range(1, 6), len)
        pool.runOne()
        folder.close()
        pool.runAll()
        self.failureResultOf(scanned, NoSuchFolder)
        self.failureResultOf(folder.scan([1], len), NoSuchFolder)


class RealThreadsTests(TestCase):
    """
    With the real reactor and the store's own threads.
    """

    timeout = 20

    async def test_scan(self) -> None:
        """
        A scan in several batches gives every message's result, in order,
        as the synchronous store does.
        """
        store = MaildirStore(self.mktemp())
        self.addCleanup(store.close)
        account = await store.openAccount(USER, create=True)
        for i in range(1, 31):
            await account.append(INBOX, message(i))
        folder = await account.openFolder(INBOX)
        self.patch(_derived, "BATCH_MESSAGES", 7)
        uids = list(range(30, 0, -1))
        scanned = await folder.scan(uids, lambda m: m.split(b"\r\n", 1)[0])
        self.assertEqual(scanned, [(i, b"Subject: message %d" % i) for i in uids])
        folder.close()
