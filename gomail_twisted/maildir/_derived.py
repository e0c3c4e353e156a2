# -*- test-case-name: tests.test_maildir_cache -*-
"""
Work on the contents of many messages, in the store's threads and in
batches (L{IFolder.scan}, L{IFolder.cachedData}
<gomail_twisted.maildir.interfaces.IFolder.cachedData>), and the store's
memory cache of data derived from messages (L{MemoryCache}).

A batch is a run of messages of at most L{BATCH_BYTES} (or
L{BATCH_MESSAGES} messages), read and worked on by one job in the disk
pool with the folder's lock held; the lock is let go between batches, so
that the work other sessions queued on the folder meanwhile goes first.
A job holds one message's bytes at a time.

Derived data is looked for in memory first (L{MemoryCache}, one per
store, bounded by size), then in the folder's cache file
(L{gomail_twisted.maildir._cachefile}), and is computed from the message
only when neither has it.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, TypeVar

from twisted.internet.defer import Deferred, fail, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure

from gomail_twisted.maildir import _files
from gomail_twisted.maildir._cachefile import CacheFile, validKind
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
#: The default bound of a store's memory cache of derived data, in bytes:
#: enough for FETCH's and SEARCH's records of a few 10,000-message folders.
DEFAULT_CACHE_MEMORY = 32 * 1024 * 1024
#: What an entry of the memory cache costs besides its data.
ENTRY_OVERHEAD = 128
#: How often one job looks at the folder again for files renamed behind
#: its back.
_RESCANS = 3

_log = Logger()


class MemoryCache:
    """
    Derived data in memory, for all the folders of a store: the least
    recently used goes first when the total passes the bound.  Used on
    the reactor thread.

    @ivar limit: the bound, in bytes (each entry's data and
        L{ENTRY_OVERHEAD}).
    @ivar size: what the entries cost now.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self._entries: collections.OrderedDict[tuple[object, int, str], bytes] = (
            collections.OrderedDict()
        )
        self._kinds: set[str] = set()

    def get(self, folder: object, uid: int, kind: str) -> bytes | None:
        """
        A message's data of a kind, if kept.

        @param folder: the folder's state.
        """
        key = (folder, uid, kind)
        data = self._entries.get(key)
        if data is not None:
            self._entries.move_to_end(key)
        return data

    def put(self, folder: object, uid: int, kind: str, data: bytes) -> None:
        """
        Keep a message's data of a kind (unless it alone passes the bound).
        """
        cost = len(data) + ENTRY_OVERHEAD
        if cost > self.limit:
            return
        key = (folder, uid, kind)
        old = self._entries.pop(key, None)
        if old is not None:
            self.size -= len(old) + ENTRY_OVERHEAD
        self._entries[key] = data
        self._kinds.add(kind)
        self.size += cost
        while self.size > self.limit:
            _, dropped = self._entries.popitem(last=False)
            self.size -= len(dropped) + ENTRY_OVERHEAD

    def forgetMessages(self, folder: object, uids: Iterable[int]) -> None:
        """
        Drop the data of messages that left a folder.
        """
        entries = self._entries
        for uid in uids:
            for kind in self._kinds:
                dropped = entries.pop((folder, uid, kind), None)
                if dropped is not None:
                    self.size -= len(dropped) + ENTRY_OVERHEAD

    def forgetFolder(self, folder: object) -> None:
        """
        Drop the data of a folder that went away (or whose UIDs changed).
        """
        for key in [key for key in self._entries if key[0] is folder]:
            self.size -= len(self._entries.pop(key)) + ENTRY_OVERHEAD


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
    disk: FolderDisk, uids: list[int], f: Callable[[int, bytes], _T], limit: int | None
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
                value = f(uid, message)
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


def cacheJob(
    disk: FolderDisk,
    cacheFile: CacheFile,
    uids: list[int],
    kind: str,
    compute: Callable[[bytes], bytes],
) -> Outcome[bytes]:
    """
    Find or compute one batch of messages' data; blocking.
    """
    outcome: Outcome[bytes] = Outcome()
    reader = _Reader(disk, None, outcome.changes)
    validity = disk.uidlist.uidValidity
    computed: list[tuple[int, bytes]] = []
    with cacheFile.opened(validity):
        try:
            for uid in uids:
                if uid not in disk.files:
                    continue
                data = cacheFile.get(uid, kind)
                if data is None:
                    message = reader.read(uid)
                    if message is None:
                        continue
                    try:
                        data = compute(message)
                        if not isinstance(data, bytes):
                            raise TypeError(f"{compute!r} returned no bytes")
                    except Exception:
                        outcome.failure = Failure()
                        break
                    del message
                    computed.append((uid, data))
                outcome.results.append((uid, data))
        except _FolderChanged:
            outcome.results, outcome.changed = [], True
            computed = []
        except OSError:
            outcome.diskFailure = Failure()
        if computed and disk.uidlist.uidValidity == validity:
            cacheFile.add(kind, computed, disk.uidlist.keys)
        cacheFile.compactIfDead(disk.uidlist.keys)
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
    f: Callable[[int, bytes], _T],
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


def cachedData(
    view: FolderView,
    state: FolderState,
    uids: Sequence[int],
    kind: str,
    compute: Callable[[bytes], bytes],
) -> Deferred[dict[int, bytes]]:
    """
    L{IFolder.cachedData} for a view of a folder.
    """
    if not validKind(kind):
        return fail(ValueError(f"not a kind of cached data: {kind!r}"))
    memory = state.store.memoryCache
    wanted = [uid for uid in dict.fromkeys(uids) if uid in state.infos]
    found: dict[int, bytes] = {}
    missing: list[int] = []
    for uid in wanted:
        data = memory.get(state, uid, kind)
        if data is None:
            missing.append(uid)
        else:
            found[uid] = data
    if not missing:
        return succeed(found)
    batches = planBatches(state.infos, missing, None)

    def job(batch: list[int]) -> Outcome[bytes]:
        return cacheJob(state.disk, state.cacheFile, batch, kind, compute)

    run = runBatch(view, state, job)

    async def computeAll() -> dict[int, bytes]:
        for batch in batches:
            for uid, data in await run(batch):
                memory.put(state, uid, kind, data)
                found[uid] = data
        return {uid: found[uid] for uid in wanted if uid in found}

    return Deferred.fromCoroutine(computeAll())


__all__ = [
    "BATCH_BYTES",
    "BATCH_MESSAGES",
    "DEFAULT_CACHE_MEMORY",
    "MemoryCache",
    "cachedData",
    "planBatches",
    "scan",
]
