# -*- test-case-name: tests.test_maildir_watch -*-
"""
Telling the store when a directory changed, so that a session waiting in
IMAP IDLE (RFC 2177) sees a message another process delivered within a
couple of seconds.

L{DirectoryWatcher} watches directories (a Maildir's C{new/} and C{cur/})
for entries created, deleted and renamed, and calls one function with the
path of each directory that changed.  It says only I{that} a directory
changed, never what changed: the store looks for itself.

Two ways to notice, one behaviour:

  - With inotify (Linux, C{twisted.internet.inotify}), a change is seen as
    soon as the reactor reads the event.  Each watched directory is also
    looked at every C{safetyPollInterval} seconds, as below, for what
    inotify cannot see: changes made on another NFS client, or events lost
    when the kernel's queue overflowed (which Twisted drops silently).
  - Otherwise every watched directory is C{stat}ed every C{pollInterval}
    seconds.  Adding, removing or renaming an entry changes a directory's
    modification and change times; its inode, link count and size are
    compared too.  Those times have a granularity (a few milliseconds on
    Linux, a second or two elsewhere): a second change within the tick of
    the first leaves them as the first left them.  So a directory whose
    times were that recent when its change was seen is reported once more
    at the next look, as git does with its "racily clean" index entries.

Reports are coalesced: however many events a directory has in one turn of
the reactor, the function is called once for it, in a later turn.  A
watched directory that disappears (deleted, renamed away, unmounted, or
absent when watched) is reported once and no longer watched; its
reference count is kept, and watching it again looks for it afresh.
Nothing here raises into the reactor: errors from the function are
logged.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from twisted.internet.interfaces import IDelayedCall, IReactorFDSet, IReactorTime
from twisted.logger import Logger

__all__ = ["DirectoryWatcher"]

# What changes a directory's entries (and so the messages of a Maildir),
# and the directory itself going away.  Twisted adds IN_DELETE_SELF.
_IN_CREATE = 0x00000100
_IN_DELETE = 0x00000200
_IN_DELETE_SELF = 0x00000400
_IN_MOVE_SELF = 0x00000800
_IN_UNMOUNT = 0x00002000
_IN_IGNORED = 0x00008000
_IN_MOVED_FROM = 0x00000040
_IN_MOVED_TO = 0x00000080
_IN_ONLYDIR = 0x01000000
_MASK = (
    _IN_CREATE
    | _IN_DELETE
    | _IN_MOVED_FROM
    | _IN_MOVED_TO
    | _IN_DELETE_SELF
    | _IN_MOVE_SELF
    | _IN_ONLYDIR
)
_GONE = _IN_DELETE_SELF | _IN_MOVE_SELF | _IN_UNMOUNT | _IN_IGNORED

_Snapshot = tuple[int, int, int, int, int, int]


def _snapshot(path: str) -> _Snapshot:
    """
    What of a directory's status changes when its entries change.

    @param path: the directory.
    @return: its device, inode, link count, size, and modification and
        change times in nanoseconds.
    @raise OSError: it cannot be looked at (it is gone, say).
    """
    status = os.stat(path)
    return (
        status.st_dev,
        status.st_ino,
        status.st_nlink,
        status.st_size,
        status.st_mtime_ns,
        status.st_ctime_ns,
    )


@dataclass
class _Watched:
    """
    One watched directory.

    @ivar spellings: the paths the directory was watched under, each with
        its reference count; each is reported.
    @ivar alive: whether it is being watched; L{False} once it is gone.
    @ivar snapshot: its status when last looked at.
    @ivar racy: its times were within the timestamp granularity of the
        clock when its last change was seen: report it once more.
    @ivar inotified: whether inotify watches it.
    @ivar stale: inotify reported it and its snapshot needs refreshing.
    @ivar nextPoll: when (in the reactor's time) to look at it next, or
        L{None} never.
    """

    spellings: dict[str, int] = field(default_factory=dict)
    alive: bool = False
    snapshot: _Snapshot | None = None
    racy: bool = False
    inotified: bool = False
    stale: bool = False
    nextPoll: float | None = None


def _inotifyModule() -> Any:
    """
    Import Twisted's inotify support.

    @return: C{twisted.internet.inotify}.
    @raise ImportError: the platform has no inotify.
    """
    from twisted.internet import inotify

    return inotify


class DirectoryWatcher:
    """
    Report the directories whose entries changed; see the module's
    docstring.

    @ivar reactor: gives the time and runs the timers (and, with inotify,
        reads its events).
    @ivar onChange: called with the path (as given to L{watch}) of each
        directory that changed or went away.
    @ivar pollInterval: seconds between looks at a directory without
        inotify.
    @ivar safetyPollInterval: seconds between looks at a directory that
        inotify watches, or L{None} never.
    @ivar racyWindow: seconds; a change seen while the directory's times
        were this recent is reported once more.
    @ivar usesINotify: whether inotify is used.
    """

    _log = Logger()

    def __init__(
        self,
        reactor: IReactorTime,
        onChange: Callable[[str], None],
        pollInterval: float = 1.0,
        useINotify: bool | None = None,
        safetyPollInterval: float | None = 30.0,
        racyWindow: float = 1.0,
        wallClock: Callable[[], float] = time.time,
    ) -> None:
        """
        @param reactor: the reactor; with inotify it must provide
            L{IReactorFDSet}.
        @param onChange: called with the path of each changed directory,
            once per reactor turn at most.
        @param pollInterval: seconds between looks without inotify.
        @param useINotify: L{True} to use inotify, L{False} to poll, L{None}
            to use it when it can be imported and the reactor provides
            L{IReactorFDSet}.
        @param safetyPollInterval: seconds between looks at a directory
            inotify watches, for what inotify misses; L{None} never.
        @param racyWindow: seconds; the coarsest timestamp granularity
            expected of the file system.
        @param wallClock: the time of day, to compare with file times.
        @raise ImportError: C{useINotify} is L{True} and the platform has
            no inotify.
        @raise TypeError: C{useINotify} is L{True} and the reactor does not
            provide L{IReactorFDSet}.
        """
        self.reactor = reactor
        self.onChange = onChange
        self.pollInterval = pollInterval
        self.safetyPollInterval = safetyPollInterval
        self.racyWindow = racyWindow
        self._wallClock = wallClock
        self._inotify: Any = None
        if useINotify is None:
            useINotify = IReactorFDSet.providedBy(reactor)
            if useINotify:
                try:
                    self._inotify = _inotifyModule()
                except ImportError:
                    useINotify = False
        elif useINotify:
            if not IReactorFDSet.providedBy(reactor):
                raise TypeError("inotify needs a reactor providing IReactorFDSet")
            self._inotify = _inotifyModule()
        self.usesINotify = bool(useINotify)
        self._notifier: Any = None
        self._watched: dict[str, _Watched] = {}
        self._spellings: dict[str, str] = {}
        self._pending: dict[str, None] = {}
        self._flushCall: IDelayedCall | None = None
        self._pollCall: IDelayedCall | None = None

    def watch(self, path: str) -> None:
        """
        Start watching a directory, or count one more use of a watch.

        A directory that cannot be watched (it does not exist, say) is
        reported once, in a later turn, and counted all the same.

        @param path: the directory; reported as given.
        """
        key = self._spellings.get(path)
        if key is None:
            key = os.path.realpath(path)
            self._spellings[path] = key
        entry = self._watched.setdefault(key, _Watched())
        entry.spellings[path] = entry.spellings.get(path, 0) + 1
        if not entry.alive:
            self._start(key, entry)

    def unwatch(self, path: str) -> None:
        """
        Count one use less of a watch, and stop watching the directory
        after its last.  A path not watched is ignored.

        @param path: the directory, spelled as given to L{watch}.
        """
        key = self._spellings.get(path)
        if key is None:
            return
        entry = self._watched[key]
        entry.spellings[path] -= 1
        if entry.spellings[path]:
            return
        del entry.spellings[path]
        del self._spellings[path]
        if not entry.spellings:
            self._kill(key, entry)
            del self._watched[key]
            self._pending.pop(key, None)
            self._armPoll()

    def stop(self) -> None:
        """
        Stop watching everything; nothing more is reported.  The watcher
        may be used again afterwards.
        """
        for call in (self._flushCall, self._pollCall):
            if call is not None and call.active():
                call.cancel()
        self._flushCall = self._pollCall = None
        if self._notifier is not None:
            self._notifier.loseConnection()
            self._notifier = None
        self._watched.clear()
        self._spellings.clear()
        self._pending.clear()

    def _start(self, key: str, entry: _Watched) -> None:
        """
        Begin watching a directory, or report that it cannot be watched.

        @param key: its real path.
        @param entry: its state.
        """
        try:
            entry.snapshot = _snapshot(key)
        except OSError:
            self._report(key)
            return
        entry.alive = True
        interval: float | None = self.pollInterval
        if self.usesINotify and self._inotifyWatch(key):
            entry.inotified = True
            interval = self.safetyPollInterval
        else:
            # A change later in the tick of this snapshot would leave it
            # as it is.
            entry.racy = self._isRacy(entry.snapshot)
        entry.nextPoll = None if interval is None else self.reactor.seconds() + interval
        self._armPoll()

    def _inotifyWatch(self, key: str) -> bool:
        """
        Ask inotify to watch a directory.

        @param key: its real path.
        @return: whether inotify watches it; if not, it is polled.
        """
        from twisted.python.filepath import FilePath

        try:
            if self._notifier is None or not self._notifier.connected:
                self._notifier = self._inotify.INotify(reactor=self.reactor)
                self._notifier.startReading()

            def event(ignored: object, filepath: object, mask: int) -> None:
                self._event(key, mask)

            self._notifier.watch(FilePath(key), mask=_MASK, callbacks=[event])
        except (OSError, self._inotify.INotifyError) as error:
            self._log.warn(
                "Cannot watch {path} with inotify, polling it: {error}",
                path=key,
                error=error,
            )
            return False
        return True

    def _kill(self, key: str, entry: _Watched, inotifyGone: bool = False) -> None:
        """
        Stop watching a directory, keeping its reference counts.

        @param key: its real path.
        @param entry: its state.
        @param inotifyGone: inotify dropped the watch itself.
        """
        if entry.inotified and not inotifyGone and self._notifier is not None:
            from twisted.python.filepath import FilePath

            try:
                self._notifier.ignore(FilePath(key))
            except KeyError:
                pass
        entry.alive = entry.inotified = entry.racy = entry.stale = False
        entry.snapshot = entry.nextPoll = None

    def _event(self, key: str, mask: int) -> None:
        """
        Take an inotify event for a watched directory.

        @param key: the directory's real path.
        @param mask: the event's mask.
        """
        entry = self._watched.get(key)
        if entry is None or not entry.alive:
            return
        if mask & _GONE:
            # Twisted forgets a deleted directory's watch by itself (and
            # closes its inotify descriptor: see _flush).
            self._kill(key, entry, inotifyGone=bool(mask & _IN_DELETE_SELF))
        else:
            entry.stale = True
        self._report(key)

    def _report(self, key: str) -> None:
        """
        Report a directory in a later turn, once however often this is
        called before then.

        @param key: its real path.
        """
        self._pending[key] = None
        if self._flushCall is None:
            self._flushCall = self.reactor.callLater(0, self._flush)

    def _flush(self) -> None:
        """
        Call L{onChange} for each directory reported since the last call.
        """
        self._flushCall = None
        if self._notifier is not None and not self._notifier.connected:
            self._reviveINotify()
        pending, self._pending = self._pending, {}
        for key in pending:
            entry = self._watched.get(key)
            if entry is not None and entry.stale:
                entry.stale = False
                try:
                    entry.snapshot = _snapshot(key)
                except OSError:
                    # Gone: this report says so, and the next look would
                    # say it again.
                    self._kill(key, entry)
        for key in pending:
            entry = self._watched.get(key)
            for path in list(entry.spellings) if entry is not None else []:
                if path not in self._spellings:
                    continue
                try:
                    self.onChange(path)
                except Exception:
                    self._log.failure("Error reporting a change to {path}", path=path)

    def _reviveINotify(self) -> None:
        """
        Replace an inotify descriptor that Twisted closed (it does when any
        watched directory is deleted), watch everything again, and report
        everything, since events may have been lost in between.
        """
        self._notifier = None
        for key, entry in self._watched.items():
            if entry.alive and entry.inotified:
                self._kill(key, entry, inotifyGone=True)
                self._start(key, entry)
                self._pending[key] = None

    def _armPoll(self) -> None:
        """
        Set the timer for the next directory due to be looked at.
        """
        due = [e.nextPoll for e in self._watched.values() if e.nextPoll is not None]
        call = self._pollCall
        if not due:
            if call is not None and call.active():
                call.cancel()
            self._pollCall = None
            return
        when = min(due)
        if call is not None and call.active():
            if call.getTime() <= when:
                return
            call.cancel()
        delay = max(0.0, when - self.reactor.seconds())
        self._pollCall = self.reactor.callLater(delay, self._poll)

    def _poll(self) -> None:
        """
        Look at each directory that is due, and report those that changed.
        """
        self._pollCall = None
        now = self.reactor.seconds()
        for key, entry in list(self._watched.items()):
            if entry.nextPoll is None or entry.nextPoll > now:
                continue
            interval = self.safetyPollInterval if entry.inotified else self.pollInterval
            entry.nextPoll = None if interval is None else now + interval
            self._look(key, entry)
        self._armPoll()

    def _look(self, key: str, entry: _Watched) -> None:
        """
        Compare a directory with its last snapshot.

        @param key: its real path.
        @param entry: its state.
        """
        try:
            snapshot = _snapshot(key)
        except OSError:
            self._kill(key, entry)
            self._report(key)
            return
        if snapshot != entry.snapshot:
            entry.snapshot = snapshot
            entry.racy = self._isRacy(snapshot)
            self._report(key)
        elif entry.racy:
            entry.racy = False
            self._report(key)

    def _isRacy(self, snapshot: _Snapshot) -> bool:
        """
        Whether a directory's times are so recent that a change in the same
        tick of the file system's clock could still leave them unchanged.

        @param snapshot: the directory's status.
        @return: L{True} when its modification or change time is within
            C{racyWindow} of now (or in the future).
        """
        newest = max(snapshot[4], snapshot[5]) / 1e9
        return self._wallClock() - newest < self.racyWindow
