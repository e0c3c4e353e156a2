# -*- test-case-name: tests.test_groupsync -*-
"""
Tests for L{gomail_twisted._groupsync.DirectorySyncs}: threads that need a
directory synced share the fsyncs, and none returns before an fsync that
began after its call has finished.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from twisted.trial.unittest import SynchronousTestCase

from gomail_twisted._groupsync import DirectorySyncs

#: Seconds a test waits for a thread before it fails.
WAIT = 10.0


class _HeldFsync:
    """
    An fsync that records each call and, while held, blocks until released.

    @ivar calls: the directories synced, in order of the calls' start.
    @ivar finished: how many calls have returned.
    @ivar failures: errors for the next calls to raise, in order.
    """

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.finished = 0
        self.failures: list[OSError] = []
        self._condition = threading.Condition()
        self._held = 0

    def hold(self) -> None:
        """
        Make the calls from now on wait for L{release}.
        """
        with self._condition:
            self._held += 1

    def release(self) -> None:
        """
        Let the waiting calls return.
        """
        with self._condition:
            self._held = 0
            self._condition.notify_all()

    def waitForCalls(self, count: int) -> None:
        """
        Wait until C{count} calls have started.
        """
        with self._condition:
            if not self._condition.wait_for(lambda: len(self.calls) >= count, WAIT):
                raise AssertionError(f"{len(self.calls)} calls, not {count}")

    def __call__(self, path: str) -> None:
        with self._condition:
            self.calls.append(path)
            self._condition.notify_all()
            self._condition.wait_for(lambda: not self._held, WAIT)
            self.finished += 1
            if self.failures:
                raise self.failures.pop(0)


class _Caller:
    """
    A thread that calls L{DirectorySyncs.sync} once.

    @ivar outcome: L{None} once it returned, the exception it raised, or
        C{"running"}.
    """

    def __init__(self, syncs: DirectorySyncs, path: str) -> None:
        self.outcome: object = "running"
        self._thread = threading.Thread(target=self._run, args=(syncs, path))
        self._thread.start()

    def _run(self, syncs: DirectorySyncs, path: str) -> None:
        try:
            syncs.sync(path)
        except OSError as e:
            self.outcome = e
        else:
            self.outcome = None

    def join(self) -> object:
        self._thread.join(WAIT)
        assert not self._thread.is_alive(), "the caller still waits"
        return self.outcome


def _until(condition: Callable[[], bool]) -> None:
    """
    Wait, a bounded time, until C{condition} holds.
    """
    event = threading.Event()
    for _ in range(int(WAIT / 0.01)):
        if condition():
            return
        event.wait(0.01)
    raise AssertionError("condition not met in time")


class DirectorySyncsTests(SynchronousTestCase):
    """
    L{DirectorySyncs} with a recording fsync and real threads.
    """

    def setUp(self) -> None:
        self.fsync = _HeldFsync()
        self.syncs = DirectorySyncs(self.fsync)

    def test_aloneSyncsOnce(self) -> None:
        """
        A caller alone syncs the directory itself, once per call.
        """
        self.syncs.sync("/spool/messages")
        self.syncs.sync("/spool/messages")
        self.assertEqual(self.fsync.calls, ["/spool/messages"] * 2)

    def test_waitersShareTheNextSync(self) -> None:
        """
        Callers that come while an fsync runs are not covered by it: they
        wait, and one fsync, begun after it, covers them all.
        """
        self.fsync.hold()
        first = _Caller(self.syncs, "/d")
        self.fsync.waitForCalls(1)
        later = [_Caller(self.syncs, "/d") for _ in range(5)]
        # They wait for the running fsync to end, and start none meanwhile.
        _until(lambda: self._waiting("/d") == 6)
        self.assertEqual(self.fsync.calls, ["/d"])
        self.assertEqual([c.outcome for c in later], ["running"] * 5)
        self.fsync.release()
        self.assertIsNone(first.join())
        self.assertEqual([c.join() for c in later], [None] * 5)
        self.assertEqual(self.fsync.calls, ["/d", "/d"])
        self.assertEqual(self.fsync.finished, 2)

    def test_directoriesApart(self) -> None:
        """
        A caller for another directory does not wait for a running fsync.
        """
        self.fsync.hold()
        first = _Caller(self.syncs, "/a")
        self.fsync.waitForCalls(1)
        other = _Caller(self.syncs, "/b")
        self.fsync.waitForCalls(2)
        self.assertEqual(self.fsync.calls, ["/a", "/b"])
        self.fsync.release()
        self.assertEqual((first.join(), other.join()), (None, None))

    def test_failureNotShared(self) -> None:
        """
        A failed fsync fails the call that made it; those that waited for
        it sync again, and return once that succeeds.
        """
        failure = OSError(5, "Input/output error")
        self.fsync.failures.append(failure)
        self.fsync.hold()
        first = _Caller(self.syncs, "/d")
        self.fsync.waitForCalls(1)
        later = [_Caller(self.syncs, "/d") for _ in range(3)]
        _until(lambda: self._waiting("/d") == 4)
        self.fsync.release()
        self.assertIs(first.join(), failure)
        self.assertEqual([c.join() for c in later], [None] * 3)
        self.assertEqual(self.fsync.calls, ["/d", "/d"])

    def test_failureAlone(self) -> None:
        """
        A caller alone whose fsync fails gets the error, and the next call
        syncs again.
        """
        self.fsync.failures.append(OSError(28, "No space left on device"))
        with self.assertRaises(OSError):
            self.syncs.sync("/d")
        self.syncs.sync("/d")
        self.assertEqual(self.fsync.calls, ["/d", "/d"])

    def _waiting(self, path: str) -> int:
        """
        How many calls for C{path} have taken a ticket.
        """
        with self.syncs._lock:
            directory = self.syncs._directories.get(path)
            return 0 if directory is None else directory.requested
