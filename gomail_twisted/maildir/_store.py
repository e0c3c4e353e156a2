# -*- test-case-name: tests.test_maildir_store -*-
"""
The Maildir store: every account a Maildir++ directory under one root,
named after its address (L{mailboxDirectoryName}), so that the SMTP sink's
C{ROOT/you@localhost/new/} is the INBOX of C{you@localhost}.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

from twisted.internet.defer import Deferred, DeferredLock, fail
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool
from zope.interface import implementer

from gomail_twisted.address import normalizeDomain
from gomail_twisted.maildir import _files
from gomail_twisted.maildir._account import MaildirAccount, makeAccount
from gomail_twisted.maildir._derived import DEFAULT_CACHE_MEMORY, MemoryCache
from gomail_twisted.maildir._folder import FolderState
from gomail_twisted.maildir._writer import DEFAULT_APPEND_BUFFER
from gomail_twisted.maildir.errors import (
    InvalidName,
    NameTooLong,
    NoSuchAccount,
    StoreError,
    StoreFailed,
)
from gomail_twisted.maildir.interfaces import IAccount, IMailStore

_T = TypeVar("_T")

#: The threads of a store's own pool: enough for a few deliveries to
#: overlap their fsyncs, few enough not to flood the disk.
DEFAULT_DISK_THREADS = 4
#: The longest directory name most file systems allow, in bytes.
MAX_NAME = 255
# How many users' account directories the store remembers.
_ACCOUNT_PATHS = 4096


def mailboxDirectoryName(local: str, domain: str) -> str:
    """
    The directory name of an account: one path component that never leaves
    its parent and never names another account.

    The local part is lower-cased: local parts are matched without regard
    to case, as Postfix and Dovecot do by default (RFC 5321 2.4 lets the
    receiving host decide).  Then letters, digits and C{._-~+=} are kept;
    everything else, and a leading dot, is percent-encoded as UTF-8, so the
    name is ASCII and C{urllib.parse.unquote} gives back the address in
    lower case.

    @param local: the local part, unquoted.
    @param domain: the domain, normalized with L{normalizeDomain}.
    @return: C{local@domain}, encoded.
    """
    encodedLocal = quote(local.lower(), safe="+=")
    if encodedLocal.startswith("."):
        encodedLocal = "%2E" + encodedLocal[1:]
    return f"{encodedLocal}@{quote(domain, safe='')}"


def storeError(reason: Failure) -> StoreError:
    """
    The store's error for a failure of disk work.
    """
    exc = reason.value
    if isinstance(exc, StoreError):
        return exc
    if isinstance(exc, OSError):
        return _files.storeErrorFor(exc)
    return StoreFailed(f"could not store: {exc}")


@implementer(IMailStore)
class MaildirStore:
    """
    Accounts in Maildir++ directories under one root (L{IMailStore}).

    @ivar root: the directory holding the accounts.
    """

    _log = Logger()

    def __init__(
        self,
        root: str | os.PathLike[str],
        reactor: Any = None,
        threadPool: ThreadPool | None = None,
        diskThreads: int = DEFAULT_DISK_THREADS,
        pollInterval: float = 1.0,
        cacheMemory: int = DEFAULT_CACHE_MEMORY,
        appendBuffer: int = DEFAULT_APPEND_BUFFER,
    ) -> None:
        """
        @param root: the directory for the accounts; made when the first
            one is.  A relative path is taken from the current directory now.
        @param reactor: an C{IReactorFromThreads} to report back to and,
            unless C{threadPool} is given, an C{IReactorCore} whose
            shutdown stops the store's pool; default the global reactor.
        @param threadPool: a started pool, owned by the caller, to do the
            disk work in.  By default the store makes its own of
            C{diskThreads} threads at its first disk work, apart from the
            reactor's pool, and stops it when the reactor shuts down.
        @param diskThreads: the most disk calls run at once by the store's
            own pool.
        @param pollInterval: how often, in seconds, to look for other
            processes' changes to folders with listeners where the platform
            cannot tell (no inotify).
        @param cacheMemory: how many bytes of data derived from messages
            (C{IFolder.cachedData}) to keep in memory, for all folders;
            the rest is read from the folders' cache files.
        @param appendBuffer: how many bytes of a message being appended a
            piece at a time (L{IAccount.appendStream}) may wait for the
            disk before the writer asks its caller to pause.
        @raise ValueError: when C{diskThreads} or C{appendBuffer} is less
            than one.
        """
        if diskThreads < 1:
            raise ValueError("MaildirStore needs at least one disk thread")
        if appendBuffer < 1:
            raise ValueError("MaildirStore needs an append buffer")
        self.root = Path(os.path.abspath(root))
        self._reactor = reactor
        self._threadPool = threadPool
        self._diskThreads = diskThreads
        self._pollInterval = pollInterval
        #: Derived data of all folders, in memory.
        self.memoryCache = MemoryCache(cacheMemory)
        #: How much of a message being appended may wait for the disk.
        self.appendBuffer = appendBuffer
        self._states: dict[Path, FolderState] = {}
        self._accountLocks: dict[Path, DeferredLock] = {}
        self._watcher: Any = None
        self._watched: dict[str, FolderState] = {}
        self._ownPool: ThreadPool | None = None
        self._trigger: Any = None
        # Account directories by user, as accountDirectory makes them.
        self._accountPaths: dict[str, Path] = {}

    # Threads.

    def _getReactor(self) -> Any:
        if self._reactor is None:
            from twisted.internet import reactor

            self._reactor = reactor
        return self._reactor

    def inThread(self, f: Callable[..., _T], *args: Any) -> Deferred[_T]:
        """
        Run C{f(*args)} in the disk pool (starting the store's own first if
        needed); fail with a L{StoreError}.
        """
        reactor = self._getReactor()
        pool = self._threadPool
        if pool is None:
            pool = ThreadPool(
                minthreads=0, maxthreads=self._diskThreads, name="gomail-maildir"
            )
            pool.start()
            self._trigger = reactor.addSystemEventTrigger(
                "during", "shutdown", pool.stop
            )
            self._threadPool = self._ownPool = pool
        d = deferToThreadPool(reactor, pool, f, *args)
        return d.addErrback(self._failed)

    def close(self) -> None:
        """
        Stop watching folders, and stop the store's own thread pool (one
        given to the store is the caller's to stop).  Open views stay
        usable only while a pool is running.
        """
        if self._watcher is not None:
            self._watcher.stop()
            self._watcher = None
            self._watched.clear()
        if self._ownPool is not None:
            pool, self._ownPool = self._ownPool, None
            self._threadPool = None
            if pool.joined:
                # The reactor's shutdown stopped it already.
                return
            pool.stop()
            self._getReactor().removeSystemEventTrigger(self._trigger)

    def _failed(self, reason: Failure) -> Failure:
        exc = reason.value
        if isinstance(exc, OSError) and exc.errno in _files.DISK_ERRORS:
            self._log.warn("Maildir store disk work failed: {reason}", reason=str(exc))
        elif not reason.check(StoreError):
            self._log.failure("Maildir store disk work failed", failure=reason)
        return Failure(storeError(reason))

    # Names.

    def accountDirectory(self, user: str) -> Path:
        """
        Where an account lives.

        @param user: a normalized address.
        @raise InvalidName: for a name that is no address.
        @raise NameTooLong: when the directory name would be too long.
        """
        known = self._accountPaths.get(user)
        if known is not None:
            return known
        local, at, domain = user.rpartition("@")
        if not at or not local or not domain:
            raise InvalidName(f"not an address: {user!r}")
        name = mailboxDirectoryName(local, normalizeDomain(domain))
        if len(name) > MAX_NAME:
            raise NameTooLong("account name too long")
        path = self.root / name
        if path.parent != self.root or name in (".", ".."):
            raise InvalidName(f"unsafe account name {name!r}")
        if len(self._accountPaths) >= _ACCOUNT_PATHS:
            self._accountPaths.clear()
        self._accountPaths[user] = path
        return path

    def accountLock(self, path: Path) -> DeferredLock:
        """
        The lock serializing changes to an account's folder list.
        """
        return self._accountLocks.setdefault(path, DeferredLock())

    # Folder states.

    def folderState(self, name: str, path: Path) -> FolderState:
        """
        The one state of a folder in this store.
        """
        state = self._states.get(path)
        if state is None:
            state = self._states[path] = FolderState(self, name, path)
        return state

    def forgetState(self, state: FolderState) -> None:
        if self._states.get(state.path) is state:
            del self._states[state.path]

    def folderGone(self, path: Path) -> None:
        """
        A folder was deleted or renamed by this process: close its views.
        """
        state = self._states.get(path)
        if state is not None:
            state.markGone()

    def folderChanged(self, path: Path) -> None:
        """
        A folder was changed by this process outside its views (a delivery,
        INBOX renamed): tell the views at once.
        """
        state = self._states.get(path)
        if state is not None and state.views:
            state.refresh().addErrback(
                lambda f: self._log.failure("Refresh failed", failure=f)
            )

    def watch(self, state: FolderState) -> None:
        """
        Look for other processes' changes to a folder with listeners.
        """
        if self._watcher is None:
            from gomail_twisted.maildir._watch import DirectoryWatcher

            self._watcher = DirectoryWatcher(
                self._getReactor(), self._changed, pollInterval=self._pollInterval
            )
        for sub in ("new", "cur"):
            path = str(state.path / sub)
            self._watched[path] = state
            self._watcher.watch(path)

    def unwatch(self, state: FolderState) -> None:
        for sub in ("new", "cur"):
            path = str(state.path / sub)
            if self._watched.get(path) is state:
                del self._watched[path]
                self._watcher.unwatch(path)

    def _changed(self, path: str) -> None:
        state = self._watched.get(path)
        if state is not None:
            # List the directory the watcher named, even if its time stamp
            # seems unchanged.
            sub = os.path.basename(path)
            state.refresh(force=(sub,)).addErrback(lambda _: None)

    # IMailStore.

    def openAccount(self, user: str, create: bool = False) -> Deferred[IAccount]:
        """
        See L{IMailStore.openAccount}.
        """
        try:
            path = self.accountDirectory(user)
        except InvalidName as e:
            return fail(e)

        def check() -> None:
            if (path / "cur").is_dir():
                return
            if not create:
                raise NoSuchAccount(f"no account {user}")
            makeAccount(path)

        def opened(_: object) -> IAccount:
            return MaildirAccount(self, user, path)

        return self.inThread(check).addCallback(opened)

    def deliver(
        self, users: Sequence[str], message: bytes, internalDate: float | None = None
    ) -> Deferred[None]:
        """
        See L{IMailStore.deliver}.
        """
        try:
            paths = list(dict.fromkeys(self.accountDirectory(u) for u in users))
        except InvalidName as e:
            return fail(e)
        data = _files.diskForm(message)

        def delivered(_: object) -> None:
            for path in paths:
                self.folderChanged(path)

        return self.inThread(deliverToMaildirs, paths, data, internalDate).addCallback(
            delivered
        )


def deliverToMaildirs(
    accounts: Sequence[Path], data: bytes, internalDate: float | None = None
) -> list[Path]:
    """
    Deliver one message to the INBOX of several accounts, all or nothing,
    blocking; call it in a thread.

    Every account is made as needed, then every copy is written and
    fsynced under its C{tmp/}; only then is each renamed into C{new/}, and
    each C{new/} fsynced.  If any step fails, the copies made so far are
    removed from C{tmp/} and from C{new/}, so a failure leaves nothing for a
    retry to duplicate.  (A reader that scans C{new/} in the instant
    between a rename and its withdrawal may still see the copy.)

    @param accounts: the accounts' directories (their INBOX Maildirs).
    @param data: the message, lines ending in LF.
    @param internalDate: the files' modification time; now by default.
    @return: the delivered files.
    @raise OSError: when the disk refuses; nothing is delivered.
    """
    for account in accounts:
        if not (
            (account / "new").is_dir()
            and (account / "tmp").is_dir()
            and (account / "cur").is_dir()
        ):
            makeAccount(account)
    crlf = _files.crlfSize(data)
    staged: list[tuple[Path, Path]] = []
    published: list[Path] = []
    try:
        for account in accounts:
            unique = _files.uniqueName()
            temporary = account / "tmp" / unique
            _files.writeSynced(temporary, data, internalDate)
            name = _files.baseName(unique, len(data), crlf)
            staged.append((temporary, account / "new" / name))
        for temporary, final in staged:
            os.rename(temporary, final)
            published.append(final)
        for account in accounts:
            _files.fsyncDirectory(account / "new")
    except BaseException:
        for final in published:
            _files.unlinkQuietly(final)
        for temporary, _ in staged[len(published) :]:
            _files.unlinkQuietly(temporary)
        raise
    return published


__all__ = [
    "DEFAULT_APPEND_BUFFER",
    "DEFAULT_CACHE_MEMORY",
    "DEFAULT_DISK_THREADS",
    "MaildirStore",
    "deliverToMaildirs",
    "mailboxDirectoryName",
]
