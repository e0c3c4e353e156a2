# -*- test-case-name: tests.test_queue -*-
"""
Saving the queue's state: one writer at a time takes every change made
meanwhile (group commit), writes and fsyncs each changed state file, moves
the files of finished messages to the trash, and fsyncs the directory once
for all (L{Spool.commit}); then the trash is emptied, a few files at a
time, while no delivery runs.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from functools import partial
from typing import Any, Protocol, TypeVar

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger
from twisted.python.failure import Failure

from gomail_twisted.dkim import RunInThread
from gomail_twisted.queue._entry import QueuedMessage
from gomail_twisted.queue._spool import Spool

__all__ = ["StateWriter"]

_T = TypeVar("_T")

#: Files unlinked per thread job when emptying the trash.
SWEEP_CHUNK = 64
#: Thread jobs emptying the trash at once.
SWEEPERS = 2
#: Files in the trash past which it is emptied even while deliveries run.
TRASH_BACKLOG = 4096


class Saved(Protocol):
    """
    What the writer saves: a held message.
    """

    message: QueuedMessage
    removed: bool


class StateWriter:
    """
    Saves held messages' states (see the module's description).
    """

    _log = Logger()

    def __init__(
        self,
        reactor: Any,
        spool: Spool,
        runInThread: RunInThread,
        background: Callable[[Deferred[Any], str], None],
        forget: Callable[[Any], None],
        retryDelay: float,
    ) -> None:
        """
        @param reactor: the clock.
        @param spool: the files.
        @param runInThread: runs the disk work.
        @param background: tracks work the queue waits for when stopping.
        @param forget: called with a message that is done, before its
            files are removed.
        @param retryDelay: seconds before saving again after a failure.
        """
        self._reactor = reactor
        self._spool = spool
        self._thread = runInThread
        self._background = background
        self._forget = forget
        self._retryDelay = retryDelay
        self._dirty: dict[str, Saved] = {}
        self._removals: set[str] = set()
        self._waiting: list[Deferred[None]] = []
        self._writing = False
        self._retry: IDelayedCall | None = None
        self._trash: deque[str] = deque()
        self._sweepers = 0
        self.sweeping = True

    def save(self, held: Saved) -> Deferred[None]:
        """
        Save a message's current state, or remove it when it is done.

        @return: a Deferred that fires once that is on disk (or failed and
            will be tried again).
        """
        self._dirty[held.message.queueID] = held
        return self._wait()

    def remove(self, queueID: str) -> Deferred[None]:
        """
        Remove a message's files, after any write of its state under way.

        @return: a Deferred that fires once they are removed.
        """
        self._dirty.pop(queueID, None)
        self._removals.add(queueID)
        return self._wait()

    def _wait(self) -> Deferred[None]:
        d: Deferred[None] = Deferred()
        self._waiting.append(d)
        if not self._writing and self._retry is None:
            self._write()
        return d

    def flush(self) -> None:
        """
        Write what waits for a retry now, and stop emptying the trash (what
        is left there is emptied at the next start).
        """
        self.sweeping = False
        self._trash.clear()
        if self._retry is not None:
            if self._retry.active():
                self._retry.cancel()
            self._retry = None
            if not self._writing:
                self._write()

    def _write(self) -> None:
        self._retry = None
        dirty, self._dirty = self._dirty, {}
        removals, self._removals = self._removals, set()
        waiting, self._waiting = self._waiting, []
        updates = []
        for queueID, held in dirty.items():
            if held.removed:
                continue
            if held.message.done:
                self._forget(held)
                removals.add(queueID)
            else:
                updates.append(held)
        self._writing = True
        messages = [held.message for held in updates]
        d = self._thread(partial(self._spool.commit, messages, sorted(removals)))

        def written(result: object) -> None:
            self._writing = False
            if isinstance(result, Failure):
                self._log.error(
                    "Queue: cannot save the state of {count} messages ({error}); "
                    "trying again in {delay} seconds",
                    count=len(updates) + len(removals),
                    error=result.getErrorMessage(),
                    delay=self._retryDelay,
                )
                for held in updates:
                    if not held.removed:
                        self._dirty.setdefault(held.message.queueID, held)
                self._removals |= removals
                self._retry = self._reactor.callLater(self._retryDelay, self._write)
            else:
                for queueID in sorted(removals):
                    self._log.info("Queue {queueID}: removed", queueID=queueID)
                self._trash.extend(self._spool.trashNames(sorted(removals)))
            for w in waiting:
                w.callback(None)
            if (self._dirty or self._removals) and self._retry is None:
                self._write()

        d.addBoth(written)
        self._background(d, "saving")

    def sweep(self, busy: bool) -> None:
        """
        Unlink the removed messages' files from the trash, a chunk at a
        time in up to L{SWEEPERS} threads, unless deliveries run and at
        most L{TRASH_BACKLOG} files wait: unlinking is slow on some file
        systems (those mounted with C{discard}) and would slow deliveries
        down, and the removal itself was made durable by the rename.

        @param busy: whether deliveries run.
        """
        if busy and len(self._trash) <= TRASH_BACKLOG:
            return
        while self.sweeping and self._trash and self._sweepers < SWEEPERS:
            chunk = [
                self._trash.popleft() for _ in range(min(SWEEP_CHUNK, len(self._trash)))
            ]
            self._sweepers += 1
            d = self._thread(partial(self._spool.sweep, chunk))
            d.addBoth(self._swept, busy)
            self._background(d, "emptying the trash")

    def _swept(self, result: _T, busy: bool) -> _T:
        self._sweepers -= 1
        self.sweep(busy)
        return result
