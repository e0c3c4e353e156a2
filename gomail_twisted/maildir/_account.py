# -*- test-case-name: tests.test_maildir_store -*-
"""
One user's Maildir++ account: the root Maildir is INBOX, every other
folder a directory under it named as L{folderDirectoryName} says, with an
empty C{maildirfolder} file as Maildir++ asks; the subscriptions in a
C{subscriptions} file, as Dovecot keeps it (see L{_subscriptions}).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

from twisted.internet.defer import Deferred, DeferredLock, fail
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from gomail_twisted.maildir import _files
from gomail_twisted.maildir._changes import Changes
from gomail_twisted.maildir._folder import FolderServices, FolderState, FolderView
from gomail_twisted.maildir._names import (
    checkFolderName,
    folderDirectoryName,
    folderNameFromDirectory,
    isInferior,
)
from gomail_twisted.maildir._subscriptions import (
    SUBSCRIPTIONS,
    changeSubscription,
    readSubscriptions,
    writeSubscriptions,
)
from gomail_twisted.maildir._writer import MaildirMessageWriter
from gomail_twisted.maildir.errors import (
    FolderExists,
    InvalidName,
    NoSuchFolder,
)
from gomail_twisted.maildir.interfaces import (
    INBOX,
    SEEN,
    SPECIAL_USE_FOLDERS,
    CopyResult,
    FolderInfo,
    FolderStatus,
    IAccount,
    IFolder,
    IMessageWriter,
)

_T = TypeVar("_T")

MAILDIRFOLDER = "maildirfolder"
_SPECIAL = dict(SPECIAL_USE_FOLDERS)
#: Where a deleted folder goes before it is removed: a name that
#: L{folderNameFromDirectory} never takes for a folder.
_TRASH = ".~gomail-deleted."


def makeAccount(path: Path) -> None:
    """
    Make an account's directories, durably: INBOX and the special-use
    folders, subscribed.  Blocking.
    """
    root = path.parent
    if not root.is_dir():
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        _files.fsyncDirectory(root.parent)
    if _files.ensureMaildir(path):
        _files.fsyncDirectory(root)
    made = False
    for name, _ in SPECIAL_USE_FOLDERS:
        made = makeFolder(path / folderDirectoryName(name)) or made
    if made:
        if not (path / SUBSCRIPTIONS).exists():
            writeSubscriptions(
                path, [INBOX, *(name for name, _ in SPECIAL_USE_FOLDERS)]
            )
        _files.fsyncDirectory(path)


def makeFolder(path: Path) -> bool:
    """
    Make a Maildir++ sub-folder; blocking.

    @return: whether it was made.
    """
    made = _files.ensureMaildir(path)
    marker = path / MAILDIRFOLDER
    if not marker.exists():
        marker.touch(0o600)
    return made


def _folderNames(path: Path) -> list[str]:
    names = []
    with os.scandir(path) as entries:
        for entry in entries:
            name = folderNameFromDirectory(entry.name)
            if (
                name is not None
                and entry.is_dir()
                and os.path.isdir(entry.path + "/cur")
            ):
                names.append(name)
    return names


class AccountServices(FolderServices, Protocol):
    """
    What an account needs from its store.

    @ivar appendBuffer: how much of a message appended a piece at a time
        may wait for the disk.
    """

    appendBuffer: int

    def accountLock(self, path: Path) -> DeferredLock:
        """
        The lock that orders changes to an account's folders.
        """

    def folderState(self, name: str, path: Path) -> FolderState:
        """
        The shared state of a folder, made on first use.
        """

    def folderGone(self, path: Path) -> None:
        """
        A folder was deleted or renamed: close its views.
        """

    def folderChanged(self, path: Path) -> None:
        """
        A folder changed on disk (messages moved in or out): look again.
        """


@implementer(IAccount)
class MaildirAccount:
    """
    One user's folders in a L{MaildirStore} (L{IAccount}).

    @ivar user: the account's user.
    @ivar path: its directory, the root Maildir (INBOX).
    """

    _log = Logger()

    def __init__(self, store: AccountServices, user: str, path: Path) -> None:
        self.store = store
        self.user = user
        self.path = path
        self._lock: DeferredLock = store.accountLock(path)

    def _resolve(self, name: str) -> tuple[str, Path]:
        canonical = checkFolderName(name)
        return canonical, self.path / folderDirectoryName(canonical)

    def _inLock(self, f: Callable[[], _T]) -> Deferred[_T]:
        return self._lock.run(self.store.inThread, f)

    def listFolders(self) -> Deferred[Sequence[FolderInfo]]:
        """
        See L{IAccount.listFolders}.
        """

        def listing() -> list[FolderInfo]:
            names = sorted(_folderNames(self.path))
            subscribed = set(readSubscriptions(self.path))
            result = []
            for name in [INBOX, *names]:
                result.append(
                    FolderInfo(
                        name,
                        _SPECIAL.get(name),
                        name in subscribed,
                        any(isInferior(other, name) for other in names),
                    )
                )
            return result

        return self.store.inThread(listing)

    def createFolder(self, name: str) -> Deferred[str]:
        """
        See L{IAccount.createFolder}.
        """
        try:
            canonical, path = self._resolve(name)
        except InvalidName as e:
            return _failed(e)

        def create() -> str:
            if canonical == INBOX or path.exists():
                raise FolderExists(f"folder {canonical} exists")
            makeFolder(path)
            _files.fsyncDirectory(self.path)
            return canonical

        return self._inLock(create)

    def deleteFolder(self, name: str) -> Deferred[None]:
        """
        See L{IAccount.deleteFolder}.
        """
        try:
            canonical, path = self._resolve(name)
        except InvalidName as e:
            return _failed(e)
        if canonical == INBOX:
            return _failed(InvalidName("INBOX cannot be deleted"))

        def delete() -> None:
            if not (path / "cur").is_dir():
                raise NoSuchFolder(f"no folder {canonical}")
            trash = self.path / f"{_TRASH}{_files.uniqueName()}"
            os.rename(path, trash)
            _files.fsyncDirectory(self.path)
            shutil.rmtree(trash, ignore_errors=True)

        def deleted(_: object) -> None:
            self.store.folderGone(path)

        return self._inLock(delete).addCallback(deleted)

    def renameFolder(self, old: str, new: str) -> Deferred[None]:
        """
        See L{IAccount.renameFolder}.
        """
        try:
            oldName, oldPath = self._resolve(old)
            newName, newPath = self._resolve(new)
        except InvalidName as e:
            return _failed(e)
        if newName == INBOX or isInferior(newName, oldName):
            return _failed(InvalidName(f"cannot rename {oldName} to {newName}"))
        gone: list[Path] = []

        def rename() -> None:
            if not (oldPath / "cur").is_dir():
                raise NoSuchFolder(f"no folder {oldName}")
            if newPath.exists():
                raise FolderExists(f"folder {newName} exists")
            if oldName == INBOX:
                self._renameInbox(newPath)
                return
            moves = [(oldName, newName)]
            moves += [
                (n, newName + n[len(oldName) :])
                for n in _folderNames(self.path)
                if isInferior(n, oldName)
            ]
            for _, target in moves:
                targetPath = self.path / folderDirectoryName(target)
                if targetPath.exists():
                    raise FolderExists(f"folder {target} exists")
            for source, target in moves:
                sourcePath = self.path / folderDirectoryName(source)
                os.rename(sourcePath, self.path / folderDirectoryName(target))
                gone.append(sourcePath)
            _files.fsyncDirectory(self.path)

        def renamed(_: object) -> None:
            for path in gone:
                self.store.folderGone(path)
            if oldName == INBOX:
                self.store.folderChanged(oldPath)

        return self._inLock(rename).addCallback(renamed)

    def _renameInbox(self, newPath: Path) -> None:
        """
        RFC 3501 6.3.5: move INBOX's messages to a new folder, leave it
        empty.  Blocking.
        """
        makeFolder(newPath)
        _files.fsyncDirectory(self.path)
        for sub in ("cur", "new"):
            with os.scandir(self.path / sub) as entries:
                names = [e.name for e in entries if not e.name.startswith(".")]
            for name in names:
                target = name if sub == "cur" or ":2," in name else name + ":2,"
                try:
                    os.rename(self.path / sub / name, newPath / "cur" / target)
                except FileNotFoundError:
                    pass
        _files.fsyncDirectory(newPath / "cur")

    def _subscriptions(self, name: str, add: bool) -> Deferred[None]:
        try:
            canonical = checkFolderName(name)
        except InvalidName as e:
            return _failed(e)

        def change() -> None:
            changeSubscription(self.path, canonical, add)

        return self._inLock(change)

    def listSubscriptions(self) -> Deferred[Sequence[str]]:
        """
        See L{IAccount.listSubscriptions}.
        """
        return self._inLock(lambda: readSubscriptions(self.path))

    def subscribe(self, name: str) -> Deferred[None]:
        """
        See L{IAccount.subscribe}.
        """
        return self._subscriptions(name, True)

    def unsubscribe(self, name: str) -> Deferred[None]:
        """
        See L{IAccount.unsubscribe}.
        """
        return self._subscriptions(name, False)

    def _state(self, name: str) -> FolderState:
        canonical, path = self._resolve(name)
        return self.store.folderState(canonical, path)

    def folderStatus(self, name: str) -> Deferred[FolderStatus]:
        """
        See L{IAccount.folderStatus}.
        """
        try:
            state = self._state(name)
        except InvalidName as e:
            return _failed(e)

        def status(_: object) -> FolderStatus:
            messages = state.messages()
            recent = len(state.unclaimedRecent())
            return FolderStatus(
                messages=len(messages),
                recent=recent,
                unseen=sum(1 for m in messages if SEEN not in m.flags),
                uidNext=state.uidNext,
                uidValidity=state.uidValidity,
                highestModSeq=state.highestModSeq,
                size=sum(m.size for m in messages),
            )

        return state.refresh().addCallback(status)

    def openFolder(self, name: str, readOnly: bool = False) -> Deferred[IFolder]:
        """
        See L{IAccount.openFolder}.
        """
        try:
            state = self._state(name)
        except InvalidName as e:
            return _failed(e)
        view = FolderView(state, readOnly, self)
        state.views.append(view)

        def opened(_: object) -> IFolder:
            if view not in state.views:
                raise NoSuchFolder(f"folder {state.name} is gone")
            return view

        def failed(reason: Failure) -> Failure:
            if view in state.views:
                state.views.remove(view)
            return reason

        return state.refresh(view, force=not state.loaded).addCallbacks(opened, failed)

    def append(
        self,
        name: str,
        message: bytes,
        flags: Iterable[str] = (),
        internalDate: float | None = None,
    ) -> Deferred[CopyResult]:
        """
        See L{IAccount.append}.
        """
        try:
            state = self._state(name)
        except InvalidName as e:
            return _failed(e)
        date = time.time() if internalDate is None else internalDate
        wanted = frozenset(flags)

        def append() -> tuple[int, Changes]:
            if not (state.path / "cur").is_dir():
                raise NoSuchFolder(f"no folder {state.name}")
            return state.disk.append(message, wanted, date)

        return state.locked(append).addCallback(state.received)

    def appendStream(self, name: str) -> IMessageWriter:
        """
        See L{IAccount.appendStream}.
        """
        return MaildirMessageWriter(self._state(name), self.store.appendBuffer)

    def transfer(
        self,
        source: FolderState,
        view: FolderView,
        uids: list[int],
        destination: str,
        move: bool,
    ) -> Deferred[CopyResult]:
        """
        Copy or move messages from an open folder to another of this
        account (L{IFolder.copy}, L{IFolder.move}).
        """
        try:
            target = self._state(destination)
        except InvalidName as e:
            return _failed(e)
        same = target is source

        def work() -> tuple[list[int], list[int], Changes, Changes | None]:
            if not (target.path / "cur").is_dir():
                raise NoSuchFolder(f"no folder {target.name}")
            before = source.disk.curStat()
            sources = source.disk.snapshot(uids)
            taken, new, changes = target.disk.receive(sources, move)
            released = source.disk.release(taken, before) if move else None
            return taken, new, changes, released

        def done(
            result: tuple[list[int], list[int], Changes, Changes | None],
        ) -> CopyResult:
            taken, new, changes, released = result
            if released is not None:
                source.apply(released, view)
            target.giveRecent(new)
            target.apply(changes, None)
            return CopyResult(target.uidValidity, tuple(taken), tuple(new))

        if same:
            return source.locked(work).addCallback(done)

        # Both folders' locks, always in the same order, lest two transfers
        # in opposite directions wait for each other.
        first, second = sorted({source, target}, key=lambda s: str(s.path))

        def inSecond() -> Deferred[CopyResult]:
            return _checkGone(source, target) or self.store.inThread(work).addCallback(
                done
            )

        return first.lock.run(second.lock.run, inSecond)


def _checkGone(*states: FolderState) -> Deferred[CopyResult] | None:
    for state in states:
        if state.gone:
            return _failed(NoSuchFolder(f"folder {state.name} is gone"))
    return None


def _failed(error: Exception) -> Deferred[Any]:
    return fail(error)
