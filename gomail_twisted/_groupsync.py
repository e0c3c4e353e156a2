# -*- test-case-name: tests.test_groupsync -*-
"""
Group commit of directory fsyncs: threads that each renamed a file into
one directory share one C{fsync} of it, so that a burst of deliveries pays
for a few journal commits rather than one each.

A thread's rename is durable once an fsync of the directory I{that began
after the rename} has finished; L{DirectorySyncs.sync} waits for exactly
that, and starts one itself when none is running.  While one runs, the
threads that come meanwhile wait, and the first of them starts the next
for all of them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

__all__ = ["DirectorySyncs"]


class _Directory:
    """
    The group commit of one directory.

    @ivar requested: how many syncs were asked for so far (each asker's
        ticket).
    @ivar completed: the highest ticket that a finished fsync covers.
    @ivar syncing: whether a thread is syncing now.
    """

    def __init__(self) -> None:
        self.requested = 0
        self.completed = 0
        self.syncing = False


class DirectorySyncs:
    """
    Shares the fsyncs of directories among the threads that need them (see
    the module's description).  Safe to use from any number of threads.
    """

    def __init__(self, fsync: Callable[[str], None]) -> None:
        """
        @param fsync: syncs one directory (POSIX C{fsync} of it), blocking.
        """
        self._fsync = fsync
        self._lock = threading.Condition()
        self._directories: dict[str, _Directory] = {}

    def sync(self, path: str) -> None:
        """
        Return once the entries of a directory as they are now are durable:
        after an fsync of it that began after this call, made by this
        thread or by another one.  Call it in a thread, after the renames
        that must be durable.

        @param path: the directory.
        @raise OSError: the fsync this thread made failed; nothing is
            known to be durable then.
        """
        with self._lock:
            directory = self._directories.get(path)
            if directory is None:
                directory = self._directories[path] = _Directory()
            directory.requested += 1
            ticket = directory.requested
            while directory.completed < ticket:
                if not directory.syncing:
                    break
                self._lock.wait()
            else:
                return
            directory.syncing = True
            covered = directory.requested
        try:
            self._fsync(path)
        except BaseException:
            with self._lock:
                directory.syncing = False
                self._lock.notify_all()
            raise
        with self._lock:
            directory.syncing = False
            directory.completed = max(directory.completed, covered)
            if directory.completed == directory.requested:
                # Nobody waits: keep the table small.
                del self._directories[path]
            self._lock.notify_all()
