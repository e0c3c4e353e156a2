# -*- test-case-name: tests.test_maildir_store -*-
"""
Open folders: one shared state per folder and store, and the per-session
views on top of it.

The state runs the folder's disk work (L{FolderDisk}) in the store's
thread pool, one call at a time, and afterwards, on the reactor thread,
updates what the views see and tells their listeners.  A change made
through one view is told to the listeners of every other view; a change
found on disk (made by another process) to all of them.

What the state asks of its store is L{FolderServices}, so this module
needs nothing of the store's.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

from twisted.internet.defer import Deferred, DeferredLock, fail
from twisted.logger import Logger
from zope.interface import implementer

from gomail_twisted.maildir import _derived
from gomail_twisted.maildir._cachefile import CacheFile
from gomail_twisted.maildir._changes import Changes
from gomail_twisted.maildir._derived import MemoryCache
from gomail_twisted.maildir._disk import FolderDisk
from gomail_twisted.maildir._reader import MessageReader, openMessageFile
from gomail_twisted.maildir.errors import NoSuchFolder, NoSuchMessage, ReadOnlyFolder
from gomail_twisted.maildir.interfaces import (
    CopyResult,
    FlagChange,
    FlagUpdate,
    IFolder,
    IFolderListener,
    IMessageReader,
    MessageInfo,
)

_T = TypeVar("_T")


class FolderServices(Protocol):
    """
    What a folder's shared state needs from its store.

    @ivar memoryCache: the store's derived data in memory.
    """

    memoryCache: MemoryCache

    def inThread(self, f: Callable[..., _T], *args: Any) -> Deferred[_T]:
        """
        Run blocking disk work in the store's thread pool.
        """

    def forgetState(self, state: FolderState) -> None:
        """
        The folder is gone: drop its state.
        """

    def watch(self, state: FolderState) -> None:
        """
        Watch the folder's directories for other processes' changes.
        """

    def unwatch(self, state: FolderState) -> None:
        """
        Stop watching the folder.
        """


class FolderState:
    """
    What one store knows of one folder, shared by all its views.

    @ivar views: the open views.
    @ivar infos: the messages by UID, ascending, as the views see them.
    @ivar gone: whether the folder was deleted or renamed.
    @ivar cacheFile: its cache of derived data on disk, used with the lock
        held.
    @ivar readers: the open readers (L{IFolder.openMessage}) by UID, ended
        when their message leaves the folder.
    """

    _log = Logger()

    def __init__(self, store: FolderServices, name: str, path: Path) -> None:
        """
        @param store: the store.
        @param name: the folder's name.
        @param path: its Maildir.
        """
        #: Messages that arrived (appended, copied, moved in) while no
        #: writable view was open: recent to the next one (RFC 3501
        #: 2.3.2), as messages in C{new/} are.  Kept in memory only.
        self.unclaimed: set[int] = set()
        self.store = store
        self.name = name
        self.path = path
        self.disk = FolderDisk(path)
        self.cacheFile = CacheFile(path)
        self.lock = DeferredLock()
        self.views: list[FolderView] = []
        self.infos: dict[int, MessageInfo] = {}
        self.readers: dict[int, set[MessageReader]] = {}
        self._messages: tuple[MessageInfo, ...] | None = ()
        self.uidValidity = 0
        self.uidNext = 1
        self.highestModSeq = 1
        self.gone = False
        self.loaded = False
        self._watching = False
        self._compacting = False

    def messages(self) -> tuple[MessageInfo, ...]:
        """
        @return: the messages, ascending by UID.
        """
        if self._messages is None:
            self._messages = tuple(self.infos.values())
        return self._messages

    def locked(
        self, work: Callable[..., _T], *args: Any, ignoreGone: bool = False
    ) -> Deferred[_T]:
        """
        Run C{work(*args)} in the disk pool while holding the folder's lock.
        """

        path = self.path

        def guarded() -> _T:
            try:
                return work(*args)
            except FileNotFoundError:
                # The folder was deleted under the queued work (by another
                # session, or another process).
                if not (path / "cur").is_dir():
                    raise NoSuchFolder(f"folder {self.name} is gone") from None
                raise

        def run() -> Deferred[_T]:
            if self.gone and not ignoreGone:
                return fail(NoSuchFolder(f"folder {self.name} is gone"))
            return self.store.inThread(guarded)

        return self.lock.run(run)

    def refresh(
        self,
        origin: FolderView | None = None,
        force: bool | tuple[str, ...] = False,
    ) -> Deferred[None]:
        """
        Look at the disk again and tell every view what changed.

        @param origin: the view that asked (it gets the messages it claims
            from C{new/} as recent).
        @param force: list both directories (or these) even if they seem
            unchanged.
        """
        claimer = origin if origin is not None and not origin.readOnly else None
        if claimer is None:
            claimer = next((v for v in self.views if not v.readOnly), None)

        def scanned(changes: Changes) -> None:
            self.apply(changes, None, claimer)
            if changes.gone or (origin is not None and origin.closed):
                raise NoSuchFolder(f"no folder {self.name}, or it changed")
            self.loaded = True

        def run() -> Deferred[None]:
            if self.gone:
                return fail(NoSuchFolder(f"folder {self.name} is gone"))
            d = self.store.inThread(self.disk.scan, force, claimer is not None)
            return d.addCallback(scanned)

        return self.lock.run(run)

    def apply(
        self,
        changes: Changes,
        origin: FolderView | None,
        claimer: FolderView | None = None,
    ) -> None:
        """
        Update the views from what the disk work changed and tell their
        listeners; called on the reactor thread with the lock held.

        @param origin: the view whose own call made the changes (its
            listeners are not told).
        """
        if changes.gone:
            self.markGone()
            return
        if changes.reset:
            self.store.memoryCache.forgetFolder(self)
            self.endReaders(None, NoSuchFolder(f"folder {self.name} changed"))
            for view in list(self.views):
                view.folderGone()
            self.views.clear()
            self.infos = dict(self.disk.infos)
            self._messages = None
            changes.added.clear()
        infos = self.infos
        if changes.expunged:
            self.store.memoryCache.forgetMessages(self, changes.expunged)
            if self.readers:
                self.endReaders(changes.expunged)
            for uid in changes.expunged:
                infos.pop(uid, None)
            self.unclaimed.difference_update(changes.expunged)
            for view in self.views:
                view.recent.difference_update(changes.expunged)
        for info in changes.changed:
            if info.uid in infos:
                infos[info.uid] = info
        if changes.added:
            if infos and changes.added[0].uid < next(reversed(infos)):
                merged = sorted([*infos.values(), *changes.added], key=lambda m: m.uid)
                self.infos = infos = {m.uid: m for m in merged}
            else:
                for info in changes.added:
                    infos[info.uid] = info
        if claimer is not None:
            if changes.claimed:
                claimer.recent.update(changes.claimed)
            if self.unclaimed:
                claimer.recent.update(self.unclaimed)
                self.unclaimed.clear()
        self.uidValidity, self.uidNext, self.highestModSeq = self.disk.counts()
        if changes.added or changes.changed or changes.expunged or changes.reset:
            self._messages = None
        if changes.added or changes.changed or changes.expunged:
            # A refresh that found nothing costs nothing per open view.
            for view in list(self.views):
                if view is not origin:
                    view.tell(changes)
        if not self._compacting and self.disk.uidlist.needsCompaction():
            # After the change is reported, not before: the rewrite's cost
            # is the folder's, not the caller's.
            self._compacting = True

            def compacted(result: object) -> None:
                self._compacting = False

            self.locked(self.disk.uidlist.compact, ignoreGone=False).addErrback(
                lambda f: None
            ).addBoth(compacted)

    def giveRecent(self, uids: Iterable[int]) -> None:
        """
        Messages put in the folder are recent to its first writable view,
        or to the next one opened.

        @param uids: their UIDs.
        """
        view = next((v for v in self.views if not v.readOnly), None)
        if view is not None:
            view.recent.update(uids)
        else:
            self.unclaimed.update(uids)

    def unclaimedRecent(self) -> frozenset[int]:
        """
        The messages recent to no view yet: in C{new/}, or put in the
        folder while no writable view was open.  A read-only view (IMAP
        EXAMINE) shows them as recent without claiming them, and STATUS
        counts them (RFC 3501 6.3.2, 6.3.10).
        """
        return frozenset(self.disk.inNew) | self.unclaimed

    def received(self, result: tuple[int, Changes]) -> CopyResult:
        """
        A message was appended through this process: make it recent, tell
        every view, and say where it went.

        @param result: its UID, and what its disk work changed.
        """
        uid, changes = result
        self.giveRecent([uid])
        self.apply(changes, None)
        return CopyResult(self.uidValidity, (), (uid,))

    def markGone(self) -> None:
        """
        The folder was deleted or renamed: close every view.
        """
        self.gone = True
        self.store.memoryCache.forgetFolder(self)
        self.endReaders(None, NoSuchFolder(f"folder {self.name} is gone"))
        self.unwatch()
        views, self.views = self.views, []
        for view in views:
            view.folderGone()
        self.store.forgetState(self)

    def endReaders(
        self, uids: Iterable[int] | None, reason: Exception | None = None
    ) -> None:
        """
        End the readers of messages that left the folder, or of all.

        @param uids: the messages; all when L{None}.
        @param reason: what their reads fail with; L{NoSuchMessage} by
            default.
        """
        readers = self.readers
        found = [
            reader
            for uid in (list(readers) if uids is None else uids)
            for reader in readers.get(uid, ())
        ]
        for reader in found:
            reader.end(reason or NoSuchMessage(f"message {reader.uid} is gone"))

    def forgetReader(self, reader: MessageReader) -> None:
        """
        A reader closed: stop tracking it.
        """
        readers = self.readers.get(reader.uid)
        if readers is not None:
            readers.discard(reader)
            if not readers:
                del self.readers[reader.uid]

    def listenersChanged(self) -> None:
        """
        Watch the folder while some view has listeners.
        """
        if any(view.listeners for view in self.views):
            if not self._watching and not self.gone:
                self._watching = True
                self.store.watch(self)
        else:
            self.unwatch()

    def unwatch(self) -> None:
        if self._watching:
            self._watching = False
            self.store.unwatch(self)


@implementer(IFolder)
class FolderView:
    """
    One session's open view of a folder (L{IFolder}).
    """

    _log = Logger()

    def __init__(self, state: FolderState, readOnly: bool, account: Any) -> None:
        self._state = state
        self._account = account
        self.name = state.name
        self.readOnly = readOnly
        self._recent: set[int] = set()
        self.listeners: list[IFolderListener] = []
        #: Whether the view was closed, or told its folder is gone.
        self.closed = False
        #: The readers opened through the view and not closed yet.
        self.readers: set[MessageReader] = set()

    @property
    def recent(self) -> set[int]:
        """
        See L{IFolder.recent}: what this view claimed; for a read-only view,
        what no view has claimed yet.
        """
        if self.readOnly:
            return set(self._state.unclaimedRecent())
        return self._recent

    @property
    def uidValidity(self) -> int:
        """
        See L{IFolder.uidValidity}.
        """
        return self._state.uidValidity

    @property
    def uidNext(self) -> int:
        """
        See L{IFolder.uidNext}.
        """
        return self._state.uidNext

    @property
    def highestModSeq(self) -> int:
        """
        See L{IFolder.highestModSeq}.
        """
        return self._state.highestModSeq

    def messages(self) -> Sequence[MessageInfo]:
        """
        See L{IFolder.messages}.
        """
        return self._state.messages()

    def _check(self, write: bool = False) -> Deferred[Any] | None:
        if self.closed:
            return fail(NoSuchFolder(f"folder {self.name} is closed or gone"))
        if write and self.readOnly:
            return fail(ReadOnlyFolder(f"folder {self.name} is open read-only"))
        return None

    def refresh(self) -> Deferred[None]:
        """
        See L{IFolder.refresh}.
        """
        return self._check() or self._state.refresh(self)

    def addListener(self, listener: IFolderListener) -> None:
        """
        See L{IFolder.addListener}.
        """
        self.listeners.append(listener)
        self._state.listenersChanged()

    def removeListener(self, listener: IFolderListener) -> None:
        """
        See L{IFolder.removeListener}.
        """
        self.listeners.remove(listener)
        self._state.listenersChanged()

    def read(
        self, uid: int, start: int = 0, length: int | None = None
    ) -> Deferred[bytes]:
        """
        See L{IFolder.read}.
        """
        state = self._state

        def read() -> Deferred[bytes]:
            def done(result: tuple[bytes | None, Changes | None]) -> bytes:
                data, changes = result
                if changes is not None:
                    state.apply(changes, None)
                if data is None:
                    raise NoSuchMessage(f"no message with UID {uid}")
                return data

            return state.store.inThread(
                state.disk.read, uid, start, length
            ).addCallback(done)

        return self._check() or state.lock.run(read)

    def openMessage(self, uid: int) -> Deferred[IMessageReader]:
        """
        See L{IFolder.openMessage}.
        """
        state = self._state

        def forget(reader: MessageReader) -> None:
            self.readers.discard(reader)
            state.forgetReader(reader)

        def opened(result: tuple[int | None, Changes | None]) -> IMessageReader:
            fd, changes = result
            if changes is not None:
                state.apply(changes, None)
            if fd is None:
                raise NoSuchMessage(f"no message with UID {uid}")
            if self.closed or uid not in state.infos:
                os.close(fd)
                if self.closed:
                    raise NoSuchFolder(f"folder {self.name} is closed or gone")
                raise NoSuchMessage(f"no message with UID {uid}")
            reader = MessageReader(uid, fd, state.store.inThread, forget)
            self.readers.add(reader)
            state.readers.setdefault(uid, set()).add(reader)
            return reader

        def run() -> Deferred[IMessageReader]:
            if self.closed:
                return fail(NoSuchFolder(f"folder {self.name} is closed or gone"))
            return state.store.inThread(openMessageFile, state.disk, uid).addCallback(
                opened
            )

        return self._check() or state.lock.run(run)

    def scan(
        self,
        uids: Sequence[int],
        f: Callable[[int, bytes], _T],
        limit: int | None = None,
    ) -> Deferred[list[tuple[int, _T]]]:
        """
        See L{IFolder.scan}.
        """
        return self._check() or _derived.scan(self, self._state, uids, f, limit)

    def cachedData(
        self, uids: Sequence[int], kind: str, compute: Callable[[bytes], bytes]
    ) -> Deferred[dict[int, bytes]]:
        """
        See L{IFolder.cachedData}.
        """
        return self._check() or _derived.cachedData(
            self, self._state, uids, kind, compute
        )

    def setFlags(
        self,
        uids: Iterable[int],
        flags: Iterable[str],
        change: FlagChange,
        unchangedSince: int | None = None,
    ) -> Deferred[FlagUpdate]:
        """
        See L{IFolder.setFlags}.
        """
        state = self._state

        def done(result: tuple[Changes, list[int], Changes | None]) -> FlagUpdate:
            changes, unchanged, rescanned = result
            state.apply(changes, self)
            if rescanned is not None:
                state.apply(rescanned, None)
            return FlagUpdate(tuple(changes.changed), tuple(unchanged))

        return self._check(True) or state.locked(
            state.disk.setFlagsAndRescan,
            list(uids),
            frozenset(flags),
            change,
            unchangedSince,
        ).addCallback(done)

    def expunge(self, uids: Iterable[int] | None = None) -> Deferred[Sequence[int]]:
        """
        See L{IFolder.expunge}.
        """
        state = self._state

        def done(result: tuple[Changes, Changes | None]) -> Sequence[int]:
            changes, rescanned = result
            state.apply(changes, self)
            if rescanned is not None:
                state.apply(rescanned, None)
            return tuple(changes.expunged)

        return self._check(True) or state.locked(
            state.disk.expungeAndRescan, None if uids is None else list(uids)
        ).addCallback(done)

    def copy(self, uids: Iterable[int], destination: str) -> Deferred[CopyResult]:
        """
        See L{IFolder.copy}.
        """
        return self._check() or self._account.transfer(
            self._state, self, list(uids), destination, False
        )

    def move(self, uids: Iterable[int], destination: str) -> Deferred[CopyResult]:
        """
        See L{IFolder.move}.
        """
        return self._check(True) or self._account.transfer(
            self._state, self, list(uids), destination, True
        )

    def close(self) -> None:
        """
        See L{IFolder.close}.
        """
        if self.closed:
            return
        self.closed = True
        self.listeners = []
        self._endReaders()
        if self in self._state.views:
            self._state.views.remove(self)
        self._state.listenersChanged()

    def _endReaders(self) -> None:
        for reader in list(self.readers):
            reader.end(NoSuchFolder(f"folder {self.name} is closed or gone"))

    # Telling the listeners.

    def folderGone(self) -> None:
        """
        The folder went away: close, and say so.
        """
        listeners = self.listeners
        self.closed = True
        self.listeners = []
        self._endReaders()
        for listener in listeners:
            self._call(listener.folderGone, self)

    def tell(self, changes: Changes) -> None:
        """
        Tell this view's listeners of changes.
        """
        for listener in list(self.listeners):
            if changes.expunged:
                self._call(listener.messagesExpunged, self, tuple(changes.expunged))
            if changes.added:
                self._call(listener.messagesAdded, self, tuple(changes.added))
            if changes.changed:
                self._call(listener.flagsChanged, self, tuple(changes.changed))

    def _call(self, method: Callable[..., object], *args: object) -> None:
        try:
            method(*args)
        except Exception:
            self._log.failure("Folder listener {method} failed", method=method)
