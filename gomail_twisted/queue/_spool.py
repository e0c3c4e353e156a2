# -*- test-case-name: tests.test_queue_spool -*-
"""
The queue's files.  Every method here blocks on the disk: the queue calls
them in a thread, the command line directly.

Under the spool directory::

    lock                  held (flock) by the running queue
    tmp/                  files being written
    messages/ID.eml       the message, as received (CRLF line ends)
    messages/ID.json      its state (L{gomail_twisted.queue._entry})
    corrupt/              state files that could not be read, with their
                          messages, moved aside for the operator
    trash/                files of finished messages, to be unlinked
    control/              requests to the running queue from the command
                          line: C{retry-ID}, C{retry-all}, C{delete-ID}

A file is written under C{tmp/}, fsynced, renamed into C{messages/}, and
the directory fsynced (so the name survives a crash too).  The state file
is the commit point: a message file without one was never acknowledged
and is removed at start.

The files of finished messages are renamed into C{trash/} (and
C{messages/} fsynced) rather than unlinked at once: on file systems
mounted with C{discard} each unlink waits for the device, while a rename
does not; the queue unlinks them afterwards, several at once, and a crash
in between leaves only trash, emptied at start.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import itertools
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from gomail_twisted.queue._entry import (
    CorruptState,
    QueuedMessage,
    decodeState,
    encodeState,
    isQueueID,
)

__all__ = ["LoadedSpool", "Spool", "SpoolLocked"]

#: The default spool directory, under C{twistd gomail}'s data directory.
DEFAULT_SPOOL = os.path.join("gomail-data", "queue")

#: Numbers the files written under tmp/ by this process.
_serial = itertools.count()

_MESSAGE = ".eml"
_STATE = ".json"


class SpoolLocked(Exception):
    """
    Another process runs a queue over this spool.
    """


@dataclass(frozen=True)
class LoadedSpool:
    """
    What L{Spool.load} found.

    @ivar messages: the queued messages, oldest first.
    @ivar problems: one line per file that was moved aside or removed.
    """

    messages: tuple[QueuedMessage, ...]
    problems: tuple[str, ...]


def _syncDirectory(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Spool:
    """
    The files of a queue (see the module's description).

    @ivar root: the spool directory.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        """
        @param root: the spool directory; made when needed.
        """
        self.root = Path(os.path.abspath(root))
        self._tmp = self.root / "tmp"
        self._messages = self.root / "messages"
        self._corrupt = self.root / "corrupt"
        self._control = self.root / "control"
        self._trash = self.root / "trash"
        self._lockFD: int | None = None
        self._made = False

    def messagePath(self, queueID: str) -> Path:
        """
        @param queueID: a queue identifier.
        @return: the path of that message's file.
        """
        return self._messages / (queueID + _MESSAGE)

    def statePath(self, queueID: str) -> Path:
        """
        @param queueID: a queue identifier.
        @return: the path of that message's state file.
        """
        return self._messages / (queueID + _STATE)

    def makeDirectories(self) -> None:
        """
        Make the directories, once.
        """
        if not self._made:
            for path in (
                self._tmp,
                self._messages,
                self._corrupt,
                self._control,
                self._trash,
            ):
                # Mail is private: only the server's user may read the spool.
                path.mkdir(mode=0o700, parents=True, exist_ok=True)
            self._made = True

    def prepare(self) -> None:
        """
        Make the directories, and empty C{tmp/} of what a crash left there.
        """
        self._made = False
        self.makeDirectories()
        for directory in (self._tmp, self._trash):
            for name in os.listdir(directory):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(directory / name)

    def lock(self) -> None:
        """
        Take the spool's lock, which the running queue holds.

        @raise SpoolLocked: another process holds it.
        """
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.root / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            if e.errno in (errno.EWOULDBLOCK, errno.EACCES):
                raise SpoolLocked(str(self.root)) from None
            raise
        self._lockFD = fd

    def unlock(self) -> None:
        """
        Release the lock, if held.
        """
        fd, self._lockFD = self._lockFD, None
        if fd is not None:
            os.close(fd)

    def _write(self, name: str, data: bytes) -> Path:
        """
        Write a file under C{tmp/} and fsync it.

        @return: its path.
        """
        path = self._tmp / f"{name}.{os.getpid()}.{next(_serial)}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            os.unlink(path)
            raise
        os.close(fd)
        return path

    def add(self, message: QueuedMessage, data: bytes) -> None:
        """
        Put a new message in the spool, durably: when this returns, a crash
        does not lose it.

        @param message: its state.
        @param data: the message.
        """
        written = self._write(message.queueID + _MESSAGE, data)
        try:
            state = self._write(message.queueID + _STATE, encodeState(message))
        except BaseException:
            os.unlink(written)
            raise
        try:
            os.rename(written, self.messagePath(message.queueID))
            os.rename(state, self.statePath(message.queueID))
            _syncDirectory(self._messages)
        except BaseException:
            for path in (
                written,
                state,
                self.statePath(message.queueID),
                self.messagePath(message.queueID),
            ):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
            raise

    def update(self, message: QueuedMessage) -> None:
        """
        Replace a message's state file, atomically and durably.

        @param message: its new state.
        """
        state = self._write(message.queueID + _STATE, encodeState(message))
        os.rename(state, self.statePath(message.queueID))
        _syncDirectory(self._messages)

    def commit(self, updates: Sequence[QueuedMessage], removals: Sequence[str]) -> None:
        """
        Save several changes at once, durably: replace the state files of
        C{updates}, move the files of C{removals} to C{trash/}, and fsync
        the directory once for all.

        @param updates: new states.
        @param removals: the identifiers of messages to remove; then
            L{sweep} their files (L{trashNames}).
        """
        written = [
            (self._write(m.queueID + _STATE, encodeState(m)), self.statePath(m.queueID))
            for m in updates
        ]
        for path, final in written:
            os.rename(path, final)
        for queueID in removals:
            for path in (self.statePath(queueID), self.messagePath(queueID)):
                with contextlib.suppress(FileNotFoundError):
                    os.rename(path, self._trash / path.name)
        if written or removals:
            _syncDirectory(self._messages)

    @staticmethod
    def trashNames(queueIDs: Sequence[str]) -> list[str]:
        """
        @param queueIDs: identifiers of messages L{commit} removed.
        @return: the names of their files in C{trash/}.
        """
        return [
            queueID + suffix for queueID in queueIDs for suffix in (_STATE, _MESSAGE)
        ]

    def sweep(self, names: Sequence[str]) -> None:
        """
        Unlink files from C{trash/}.

        @param names: their names.
        """
        for name in names:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._trash / name)

    def remove(self, queueID: str) -> None:
        """
        Remove a message and its state, durably; the state first, so that a
        crash in between leaves only a message file, which L{load} removes.

        @param queueID: its identifier.
        """
        for path in (self.statePath(queueID), self.messagePath(queueID)):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        _syncDirectory(self._messages)

    def readMessage(self, queueID: str) -> bytes:
        """
        @param queueID: a queued message's identifier.
        @return: the message.
        @raise OSError: it cannot be read.
        """
        return self.messagePath(queueID).read_bytes()

    def readState(self, queueID: str) -> QueuedMessage:
        """
        @param queueID: a queued message's identifier.
        @return: its state.
        @raise CorruptState: the state file cannot be read as one.
        @raise OSError: there is none (C{FileNotFoundError}), or it cannot
            be read.
        """
        return decodeState(self.statePath(queueID).read_bytes(), queueID)

    def moveAside(self, queueID: str) -> None:
        """
        Move a message's files to C{corrupt/}, for the operator to look at.

        @param queueID: its identifier.
        """
        self._corrupt.mkdir(mode=0o700, parents=True, exist_ok=True)
        for path in (self.statePath(queueID), self.messagePath(queueID)):
            with contextlib.suppress(FileNotFoundError):
                os.rename(path, self._corrupt / path.name)
        _syncDirectory(self._messages)

    def corruptNames(self) -> list[str]:
        """
        @return: the names of the files moved to C{corrupt/}, in order.
        """
        try:
            return sorted(os.listdir(self._corrupt))
        except FileNotFoundError:
            return []

    def queueIDs(self) -> list[str]:
        """
        @return: the identifiers that have a state file, oldest first.
        """
        try:
            names = os.listdir(self._messages)
        except FileNotFoundError:
            return []
        return sorted(n[: -len(_STATE)] for n in names if n.endswith(_STATE))

    def load(self) -> LoadedSpool:
        """
        Read every state file.  One that cannot be read is moved to
        C{corrupt/} with its message, as is one whose message is missing; a
        message without a state file (a crash during L{add}) is removed.

        @return: the messages and the problems found.
        """
        self.prepare()
        messages: list[QueuedMessage] = []
        problems: list[str] = []
        names = set(os.listdir(self._messages))
        for name in sorted(names):
            queueID, dot, suffix = name.partition(".")
            if not isQueueID(queueID) or dot + suffix not in (_STATE, _MESSAGE):
                problems.append(f"ignored unknown file {name!r}")
            elif suffix == _MESSAGE[1:] and queueID + _STATE not in names:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self._messages / name)
                problems.append(f"removed {name}: never acknowledged")
            elif suffix == _STATE[1:]:
                try:
                    message = self.readState(queueID)
                    if queueID + _MESSAGE not in names:
                        raise CorruptState("its message file is missing")
                except (CorruptState, OSError) as e:
                    self.moveAside(queueID)
                    problems.append(
                        f"moved {queueID} to {self._corrupt}: bad state file: {e}"
                    )
                else:
                    messages.append(message)
        return LoadedSpool(tuple(messages), tuple(problems))

    def request(self, name: str) -> None:
        """
        Leave a request for the running queue in C{control/}.

        @param name: C{retry-ID}, C{retry-all} or C{delete-ID}.
        """
        self._control.mkdir(mode=0o700, parents=True, exist_ok=True)
        (self._control / name).touch()

    def takeRequests(self) -> list[str]:
        """
        Take the requests left in C{control/}, removing them.

        @return: their names, in name order.
        """
        try:
            names = sorted(os.listdir(self._control))
        except FileNotFoundError:
            return []
        for name in names:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._control / name)
        return names


def iterStates(spool: Spool) -> Iterator[QueuedMessage | tuple[str, str]]:
    """
    Read the state files without changing anything (for listing).

    @param spool: the spool.
    @return: each message's state, or C{(queueID, problem)} for one that
        cannot be read.
    """
    for queueID in spool.queueIDs():
        try:
            yield spool.readState(queueID)
        except FileNotFoundError:
            continue
        except (CorruptState, OSError) as e:
            yield (queueID, str(e))
