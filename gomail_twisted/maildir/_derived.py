# -*- test-case-name: tests.test_maildir_cache -*-
"""
Work on the contents of many messages, in the store's threads and in
batches (L{IFolder.scan<gomail_twisted.maildir.interfaces.IFolder.scan>}).

A batch is a run of messages of at most L{BATCH_BYTES} (or
L{BATCH_MESSAGES} messages), read and worked on by one job in the disk
pool with the folder's lock held; the lock is let go between batches, so
that the work other sessions queued on the folder meanwhile goes first.
A job holds one message's bytes at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, TypeVar

from twisted.internet.defer import Deferred, fail
from twisted.logger import Logger
from twisted.python.failure import Failure

from gomail_twisted.maildir import _files
from gomail_twisted.maildir._changes import Changes
from gomail_twisted.maildir.errors import NoSuchFolder
from gomail_twisted.maildir.interfaces import MessageInfo

if TYPE_CHECKING:
    from gomail_twisted.maildir._disk import FolderDisk
    from gomail_twisted.maildir._folder import FolderState, FolderView

_T = TypeVar("_T")

#: The most bytes of messages one job reads (a larger message is a batch
#: of its own).
BATCH_BYTES = 4 * 1024 * 1024
#: The most messages one job reads.
BATCH_MESSAGES = 1000
#: How often one job looks at the folder again for files renamed behind
#: its back.
_RESCANS = 3

_log = Logger()


def planBatches(
    infos: Mapping[int, MessageInfo], uids: Iterable[int], limit: int | None
) -> list[list[int]]:
    """
    Cut messages into batches by the bytes each job will read.

    @param infos: the folder's messages.
    @param uids: the messages wanted, each once, in order; those not in
        C{infos} are left out.
    @param limit: how much of each message is read, if not all.
    """
    batches: list[list[int]] = []
    batch: list[int] = []
    size = 0
    for uid in uids:
        info = infos.get(uid)
        if info is None:
            continue
        cost = info.size if limit is None else min(info.size, limit)
        if batch and (size + cost > BATCH_BYTES or len(batch) >= BATCH_MESSAGES):
            batches.append(batch)
            batch, size = [], 0
        batch.append(uid)
        size += cost
    if batch:
        batches.append(batch)
    return batches


class _FolderChanged(Exception):
    """
    A rescan found the folder gone or its UIDVALIDITY changed: the batch's
    UIDs no longer name the messages asked for.
    """


@dataclass
class Outcome(Generic[_T]):
    """
    What one job did, for the reactor thread.

    @ivar results: each message's UID and result, in order.
    @ivar changes: what rescans of the folder found, to apply in order.
    @ivar failure: what the caller's function raised.
    @ivar diskFailure: the error reading a message.
    @ivar changed: the folder went or its UIDs changed.
    """

    results: list[tuple[int, _T]] = field(default_factory=list)
    changes: list[Changes] = field(default_factory=list)
    failure: Failure | None = None
    diskFailure: Failure | None = None
    changed: bool = False


class _Reader:
    """
    Reads a batch's messages, looking at the folder again (a few times at
    most) when a file was renamed behind the store's back.
    """

    def __init__(self, disk: FolderDisk, limit: int | None, changes: list[Changes]):
        self._disk = disk
        self._limit = limit
        self._changes = changes

    def read(self, uid: int) -> bytes | None:
        """
        @return: the message's CRLF form (its first C{limit} bytes), or
            L{None} when it is gone.
        @raise _FolderChanged: when the folder went or its UIDs changed.
        """
        disk = self._disk
        while True:
            name = disk.files.get(uid)
            if name is None:
                return None
            try:
                return _files.readMessage(f"{disk.path}/{name}", self._limit)
            except FileNotFoundError:
                if len(self._changes) >= _RESCANS:
                    return None
            changes = disk.scan(force=True)
            self._changes.append(changes)
            if changes.gone or changes.reset:
                raise _FolderChanged()


def scanJob(
    disk: FolderDisk, uids: list[int], f: Callable[[bytes], _T], limit: int | None
) -> Outcome[_T]:
    """
    Run C{f} over one batch of messages; blocking.
    """
    outcome: Outcome[_T] = Outcome()
    reader = _Reader(disk, limit, outcome.changes)
    try:
        for uid in uids:
            message = reader.read(uid)
            if message is None:
                continue
            try:
                value = f(message)
            except Exception:
                outcome.failure = Failure()
                break
            del message
            outcome.results.append((uid, value))
    except _FolderChanged:
        outcome.results, outcome.changed = [], True
    except OSError:
        outcome.diskFailure = Failure()
    return outcome


def runBatch(
    view: FolderView, state: FolderState, job: Callable[[list[int]], Outcome[_T]]
) -> Callable[[list[int]], Deferred[list[tuple[int, _T]]]]:
    """
    What runs one batch's job with the folder's lock held, then reports
    what it found to the views.
    """

    def locked(batch: list[int]) -> Deferred[list[tuple[int, _T]]]:
        if view.closed or state.gone:
            return fail(NoSuchFolder(f"folder {state.name} is closed or gone"))

        def done(outcome: Outcome[_T]) -> list[tuple[int, _T]] | Failure:
            for changes in outcome.changes:
                state.apply(changes, None)
            if outcome.diskFailure is not None:
                error = outcome.diskFailure.value
                _log.failure("Maildir store read failed", failure=outcome.diskFailure)
                assert isinstance(error, OSError)
                raise _files.storeErrorFor(error)
            if outcome.failure is not None:
                return outcome.failure
            if outcome.changed or view.closed:
                raise NoSuchFolder(f"folder {state.name} is gone, or it changed")
            return outcome.results

        return state.store.inThread(job, batch).addCallback(done)

    def run(batch: list[int]) -> Deferred[list[tuple[int, _T]]]:
        return state.lock.run(locked, batch)

    return run


def scan(
    view: FolderView,
    state: FolderState,
    uids: Sequence[int],
    f: Callable[[bytes], _T],
    limit: int | None,
) -> Deferred[list[tuple[int, _T]]]:
    """
    L{IFolder.scan} for a view of a folder.
    """
    batches = planBatches(state.infos, dict.fromkeys(uids), limit)

    def job(batch: list[int]) -> Outcome[_T]:
        return scanJob(state.disk, batch, f, limit)

    run = runBatch(view, state, job)

    async def scanAll() -> list[tuple[int, _T]]:
        results: list[tuple[int, _T]] = []
        for batch in batches:
            results.extend(await run(batch))
        return results

    return Deferred.fromCoroutine(scanAll())


__all__ = [
    "BATCH_BYTES",
    "BATCH_MESSAGES",
    "planBatches",
    "scan",
]
