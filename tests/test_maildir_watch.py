# -*- test-case-name: tests.test_maildir_watch -*-
"""
Tests for L{gomail_twisted.maildir._watch}: directories whose entries
change are reported once per change, by polling on a L{Clock} and by
inotify on the real reactor.

The polling tests run on real directories.  A directory's times have a
granularity, so two changes made one right after the other may leave them
as the first left them; each step of these tests therefore also moves the
directory's modification time to a new value, as the next tick of the file
system's clock would, and the watcher's wall clock is set far ahead so that
no change counts as racy.  L{RacyTests} covers what happens within a tick.
"""

from __future__ import annotations

import os
import shutil
import sys
from itertools import count

from twisted.internet import defer, task
from twisted.internet.defer import Deferred
from twisted.trial.unittest import SynchronousTestCase, TestCase

from gomail_twisted.maildir._watch import DirectoryWatcher

_FAR_FUTURE = 2.0**40
_ticks = count(1)


def _tick(path: str) -> None:
    """
    Give a directory a modification time it never had, as a change a tick
    of the file system's clock later would.

    @param path: the directory.
    """
    when = 1_000_000_000 * (1_500_000_000 + next(_ticks))
    os.utime(path, ns=(when, when))


class PollingTests(SynchronousTestCase):
    """
    Without inotify, each watched directory is looked at every poll
    interval and reported once when its entries changed.
    """

    def setUp(self) -> None:
        self.root = self.mktemp()
        self.new = os.path.join(self.root, "new")
        self.cur = os.path.join(self.root, "cur")
        os.makedirs(self.new)
        os.makedirs(self.cur)
        self.clock = task.Clock()
        self.changes: list[str] = []
        self.watcher = DirectoryWatcher(
            self.clock,
            self.changes.append,
            pollInterval=1.0,
            useINotify=False,
            wallClock=lambda: _FAR_FUTURE,
        )
        self.addCleanup(self.watcher.stop)

    def _write(self, directory: str, name: str) -> str:
        path = os.path.join(directory, name)
        with open(path, "wb") as f:
            f.write(b"Subject: x\r\n\r\nx\r\n")
        _tick(directory)
        return path

    def test_clockInterface(self) -> None:
        """
        Without a reactor that reads descriptors, inotify is not used.
        """
        watcher = DirectoryWatcher(self.clock, self.changes.append)
        self.assertFalse(watcher.usesINotify)
        self.assertRaises(
            TypeError, DirectoryWatcher, self.clock, self.changes.append, 1.0, True
        )

    def test_unchanged(self) -> None:
        """
        A directory whose entries do not change is never reported.
        """
        self.watcher.watch(self.new)
        for _ in range(5):
            self.clock.advance(1)
        self.assertEqual(self.changes, [])

    def test_created(self) -> None:
        """
        A file created is reported once, at the next poll.
        """
        self.watcher.watch(self.new)
        self._write(self.new, "1")
        self.clock.advance(0.5)
        self.assertEqual(self.changes, [])
        self.clock.advance(0.5)
        self.assertEqual(self.changes, [self.new])
        self.clock.advance(1)
        self.clock.advance(1)
        self.assertEqual(self.changes, [self.new])

    def test_eachChange(self) -> None:
        """
        Created, renamed, and deleted: one report for each, none between.
        """
        self.watcher.watch(self.cur)
        path = self._write(self.cur, "1:2,")
        self.clock.advance(1)
        self.assertEqual(self.changes, [self.cur])
        os.rename(path, path + "S")
        _tick(self.cur)
        self.clock.advance(1)
        self.assertEqual(self.changes, [self.cur] * 2)
        self.clock.advance(1)
        os.remove(path + "S")
        _tick(self.cur)
        self.clock.advance(1)
        self.assertEqual(self.changes, [self.cur] * 3)
        self.clock.advance(1)
        self.assertEqual(self.changes, [self.cur] * 3)

    def test_movedBetween(self) -> None:
        """
        A message moved from C{new/} to C{cur/} reports both, once each.
        """
        self.watcher.watch(self.new)
        self.watcher.watch(self.cur)
        path = self._write(self.new, "1")
        self.clock.advance(1)
        os.rename(path, os.path.join(self.cur, "1:2,"))
        _tick(self.new)
        _tick(self.cur)
        del self.changes[:]
        self.clock.advance(1)
        self.assertEqual(sorted(self.changes), sorted([self.new, self.cur]))

    def test_coalesced(self) -> None:
        """
        Many changes between two polls are one report.
        """
        self.watcher.watch(self.new)
        for name in range(20):
            self._write(self.new, str(name))
        self.clock.advance(1)
        self.assertEqual(self.changes, [self.new])

    def test_referenceCounted(self) -> None:
        """
        A directory watched twice is reported once per change, and watched
        until it is unwatched twice.
        """
        self.watcher.watch(self.new)
        self.watcher.watch(self.new)
        self._write(self.new, "1")
        self.clock.advance(1)
        self.assertEqual(self.changes, [self.new])
        self.watcher.unwatch(self.new)
        self._write(self.new, "2")
        self.clock.advance(1)
        self.assertEqual(self.changes, [self.new] * 2)
        self.watcher.unwatch(self.new)
        self._write(self.new, "3")
        self.clock.advance(1)
        self.assertEqual(self.changes, [self.new] * 2)
        self.assertEqual(self.clock.getDelayedCalls(), [])

    def test_unwatchUnknown(self) -> None:
        """
        Unwatching a path never watched does nothing.
        """
        self.watcher.unwatch(self.new)
        self.watcher.watch(self.new)
        self.watcher.unwatch(self.cur)
        self._write(self.new, "1")
        self.clock.advance(1)
        self.assertEqual(self.changes, [self.new])

    def test_spellings(self) -> None:
        """
        A directory watched under two spellings is reported under each.
        """
        other = self.new + os.sep
        self.watcher.watch(self.new)
        self.watcher.watch(other)
        self._write(self.new, "1")
        self.clock.advance(1)
        self.assertEqual(sorted(self.changes), sorted([self.new, other]))

    def test_deleted(self) -> None:
        """
        A watched directory deleted is reported once, then no longer
        looked at; nothing raises.
        """
        self.watcher.watch(self.new)
        self.watcher.watch(self.cur)
        shutil.rmtree(self.new)
        self.clock.advance(1)
        self.assertEqual(self.changes, [self.new])
        for _ in range(3):
            self.clock.advance(1)
        self.assertEqual(self.changes, [self.new])
        self._write(self.cur, "1")
        self.clock.advance(1)
        self.assertEqual(self.changes, [self.new, self.cur])

    def test_watchedAgain(self) -> None:
        """
        A directory deleted and made again is watched afresh when watched
        again, and its old count still holds it.
        """
        self.watcher.watch(self.new)
        shutil.rmtree(self.new)
        self.clock.advance(1)
        os.mkdir(self.new)
        self.watcher.watch(self.new)
        self.watcher.unwatch(self.new)
        self._write(self.new, "1")
        self.clock.advance(1)
        self.assertEqual(self.changes, [self.new] * 2)

    def test_missing(self) -> None:
        """
        Watching a directory that does not exist reports it once, in a
        later turn, and does not raise.
        """
        missing = os.path.join(self.root, "nothing")
        self.watcher.watch(missing)
        self.assertEqual(self.changes, [])
        self.clock.advance(0)
        self.assertEqual(self.changes, [missing])
        self.clock.advance(5)
        self.assertEqual(self.changes, [missing])

    def test_replaced(self) -> None:
        """
        A directory renamed away and replaced by another is reported.
        """
        self.watcher.watch(self.new)
        os.rename(self.new, self.new + ".old")
        os.mkdir(self.new)
        self.clock.advance(1)
        self.assertEqual(self.changes, [self.new])

    def test_onChangeFails(self) -> None:
        """
        An error from the function is logged; the others are still told.
        """
        calls: list[str] = []

        def onChange(path: str) -> None:
            calls.append(path)
            raise RuntimeError("boom")

        watcher = DirectoryWatcher(
            self.clock, onChange, useINotify=False, wallClock=lambda: _FAR_FUTURE
        )
        watcher.watch(self.new)
        watcher.watch(self.cur)
        self._write(self.new, "1")
        self._write(self.cur, "1")
        self.clock.advance(1)
        self.assertEqual(sorted(calls), sorted([self.new, self.cur]))
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 2)
        watcher.stop()

    def test_unwatchFromOnChange(self) -> None:
        """
        The function may unwatch a directory reported in the same turn; it
        is then not reported.
        """
        calls: list[str] = []

        def onChange(path: str) -> None:
            calls.append(path)
            watcher.unwatch(self.cur if path == self.new else self.new)

        watcher = DirectoryWatcher(
            self.clock, onChange, useINotify=False, wallClock=lambda: _FAR_FUTURE
        )
        watcher.watch(self.new)
        watcher.watch(self.cur)
        self._write(self.new, "1")
        self._write(self.cur, "1")
        self.clock.advance(1)
        self.assertEqual(len(calls), 1)
        watcher.stop()

    def test_stop(self) -> None:
        """
        After L{DirectoryWatcher.stop} nothing is reported and no timer is
        left; the watcher may be used again.
        """
        self.watcher.watch(self.new)
        self._write(self.new, "1")
        self.watcher.stop()
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.clock.advance(5)
        self.assertEqual(self.changes, [])
        self.watcher.watch(self.new)
        self._write(self.new, "2")
        self.clock.advance(1)
        self.assertEqual(self.changes, [self.new])

    def test_pollInterval(self) -> None:
        """
        The poll interval is what was asked for.
        """
        watcher = DirectoryWatcher(
            self.clock,
            self.changes.append,
            pollInterval=2.5,
            useINotify=False,
            wallClock=lambda: _FAR_FUTURE,
        )
        watcher.watch(self.new)
        self._write(self.new, "1")
        self.clock.advance(2.4)
        self.assertEqual(self.changes, [])
        self.clock.advance(0.1)
        self.assertEqual(self.changes, [self.new])
        watcher.stop()


class RacyTests(SynchronousTestCase):
    """
    A change seen while the directory's times are recent is reported once
    more, for a second change within the same tick of the file system's
    clock.
    """

    def setUp(self) -> None:
        self.directory = self.mktemp()
        os.makedirs(self.directory)
        self.clock = task.Clock()
        self.changes: list[str] = []
        self.now = _FAR_FUTURE
        self.watcher = DirectoryWatcher(
            self.clock,
            self.changes.append,
            useINotify=False,
            wallClock=lambda: self.now,
        )
        self.addCleanup(self.watcher.stop)

    def _newest(self) -> float:
        status = os.stat(self.directory)
        return max(status.st_mtime_ns, status.st_ctime_ns) / 1e9

    def test_sameTick(self) -> None:
        """
        A change seen within the window is reported at the next poll and
        once more at the one after, then no more.
        """
        self.watcher.watch(self.directory)
        _tick(self.directory)
        self.now = self._newest() + 0.5
        self.clock.advance(1)
        self.assertEqual(self.changes, [self.directory])
        self.clock.advance(1)
        self.assertEqual(self.changes, [self.directory] * 2)
        self.clock.advance(1)
        self.clock.advance(1)
        self.assertEqual(self.changes, [self.directory] * 2)

    def test_watchedInTick(self) -> None:
        """
        A directory changed just before it was watched is reported once,
        for a change after the watch in the same tick.
        """
        self.now = self._newest() + 0.5
        self.watcher.watch(self.directory)
        self.clock.advance(1)
        self.assertEqual(self.changes, [self.directory])
        self.clock.advance(1)
        self.assertEqual(self.changes, [self.directory])

    def test_settled(self) -> None:
        """
        A change seen after the window is reported once.
        """
        self.watcher.watch(self.directory)
        _tick(self.directory)
        self.now = self._newest() + 1.5
        self.clock.advance(1)
        self.clock.advance(1)
        self.assertEqual(self.changes, [self.directory])


class INotifyTests(TestCase):
    """
    With inotify, the real reactor reports a change as soon as it reads the
    event, without polling.
    """

    if not sys.platform.startswith("linux"):
        skip = "inotify is Linux's"

    timeout = 10

    def setUp(self) -> None:
        from twisted.internet import reactor

        self.reactor = reactor
        self.root = os.path.abspath(self.mktemp())
        self.new = os.path.join(self.root, "new")
        self.cur = os.path.join(self.root, "cur")
        os.makedirs(self.new)
        os.makedirs(self.cur)
        self.changes: list[str] = []
        self.waiting: list[tuple[int, Deferred[None]]] = []
        self.watcher = DirectoryWatcher(
            reactor,
            self._changed,
            useINotify=True,
            safetyPollInterval=None,
        )
        self.addCleanup(self.watcher.stop)

    def _changed(self, path: str) -> None:
        self.changes.append(path)
        for waiting in self.waiting[:]:
            if len(self.changes) >= waiting[0]:
                self.waiting.remove(waiting)
                waiting[1].callback(None)

    def _until(self, reports: int) -> Deferred[None]:
        """
        Wait until there are this many reports, then a little more, for
        any report that should not come; at most a few seconds.
        """
        d: Deferred[None] = Deferred()
        self.waiting.append((reports, d))
        if len(self.changes) >= reports:
            self.waiting.remove((reports, d))
            d.callback(None)
        d.addTimeout(5, self.reactor)
        d.addCallback(lambda _: task.deferLater(self.reactor, 0.2, lambda: None))
        return d

    def test_uses(self) -> None:
        """
        On Linux with the default reactor, inotify is used by default.
        """
        watcher = DirectoryWatcher(self.reactor, self.changes.append)
        self.assertTrue(watcher.usesINotify)

    @defer.inlineCallbacks
    def test_created(self) -> defer.Generator[Deferred[object], object, None]:
        """
        Files created in one turn are one report, at once.
        """
        self.watcher.watch(self.new)
        for name in range(10):
            with open(os.path.join(self.new, str(name)), "wb") as f:
                f.write(b"x")
        yield self._until(1)
        self.assertEqual(self.changes, [self.new])

    @defer.inlineCallbacks
    def test_moved(self) -> defer.Generator[Deferred[object], object, None]:
        """
        A message moved from C{new/} to C{cur/} reports both.
        """
        path = os.path.join(self.new, "1")
        with open(path, "wb") as f:
            f.write(b"x")
        self.watcher.watch(self.new)
        self.watcher.watch(self.cur)
        os.rename(path, os.path.join(self.cur, "1:2,"))
        yield self._until(2)
        self.assertEqual(sorted(self.changes), sorted([self.new, self.cur]))

    @defer.inlineCallbacks
    def test_deleted(self) -> defer.Generator[Deferred[object], object, None]:
        """
        A watched directory deleted is reported, and the other directories
        are still watched afterwards.
        """
        self.watcher.watch(self.new)
        self.watcher.watch(self.cur)
        shutil.rmtree(self.new)
        yield self._until(1)
        self.assertIn(self.new, self.changes)
        del self.changes[:]
        with open(os.path.join(self.cur, "1:2,"), "wb") as f:
            f.write(b"x")
        yield self._until(1)
        self.assertEqual(self.changes, [self.cur])

    @defer.inlineCallbacks
    def test_renamedAway(self) -> defer.Generator[Deferred[object], object, None]:
        """
        A watched directory renamed away is reported once, and changes in
        it, now elsewhere, are not.
        """
        self.watcher.watch(self.new)
        moved = os.path.join(self.root, "moved")
        os.rename(self.new, moved)
        yield self._until(1)
        self.assertEqual(self.changes, [self.new])
        with open(os.path.join(moved, "1"), "wb") as f:
            f.write(b"x")
        yield task.deferLater(self.reactor, 0.2, lambda: None)
        self.assertEqual(self.changes, [self.new])

    @defer.inlineCallbacks
    def test_unwatched(self) -> defer.Generator[Deferred[object], object, None]:
        """
        A directory no longer watched is not reported.
        """
        self.watcher.watch(self.new)
        self.watcher.watch(self.cur)
        self.watcher.unwatch(self.new)
        with open(os.path.join(self.new, "1"), "wb") as f:
            f.write(b"x")
        with open(os.path.join(self.cur, "1:2,"), "wb") as f:
            f.write(b"x")
        yield self._until(1)
        self.assertEqual(self.changes, [self.cur])
