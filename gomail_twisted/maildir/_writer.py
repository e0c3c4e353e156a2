# -*- test-case-name: tests.test_maildir_append -*-
"""
A message appended a piece at a time (L{IAccount.appendStream}
<gomail_twisted.maildir.interfaces.IAccount.appendStream>), as an IMAP
APPEND literal arrives: each piece goes to the message's file under the
folder's C{tmp/}, in the store's threads, so the message is never held
whole in memory.

The writer opens the file at once (which also finds out whether the
folder exists), gathers what is written, with CRLF made LF as the store
keeps files (L{DiskFormEncoder}), and writes it in order, one job at a
time, once L{FLUSH_SIZE} waits.  While more than its buffer waits (or is
being written), L{MaildirMessageWriter.write} returns a Deferred that
fires once the disk caught up, for the caller to stop reading its peer
meanwhile.  L{MaildirMessageWriter.finish} writes the rest, fsyncs the
file, and puts it into the folder as L{IAccount.append} does (the same
disk code, L{FolderDisk.publish
<gomail_twisted.maildir._disk.FolderDisk.publish>}).

After a failure, or an abort, the file is removed, and what is written
afterwards is dropped.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred, fail
from twisted.python.failure import Failure
from zope.interface import implementer

from gomail_twisted.maildir import _files
from gomail_twisted.maildir._changes import Changes
from gomail_twisted.maildir.errors import NoSuchFolder
from gomail_twisted.maildir.interfaces import CopyResult, IMessageWriter

if TYPE_CHECKING:
    from gomail_twisted.maildir._folder import FolderState

#: How many bytes of a message may wait for the disk by default.
DEFAULT_APPEND_BUFFER = 256 * 1024
#: How many bytes wait before a write to the file is started.
FLUSH_SIZE = 64 * 1024


class DiskFormEncoder:
    """
    The file form of a message given a piece at a time: each CRLF made LF,
    as L{_files.diskForm} makes it of the whole message, also when a CRLF
    is split between two pieces; and the sizes its file name gives.

    @ivar size: the size of the file form so far (C{S=}).
    @ivar crlfSize: the size of its CRLF form so far (C{W=}).
    """

    def __init__(self) -> None:
        self.size = 0
        self.crlfSize = 0
        self._carry = b""
        self._lastCR = False

    def feed(self, data: bytes) -> bytes:
        """
        @param data: the next bytes of the message.
        @return: the next bytes of its file form (a CR at the end of
            C{data} waits for what follows).
        """
        if self._carry:
            data = self._carry + data
        if data.endswith(b"\r"):
            data, self._carry = data[:-1], b"\r"
        else:
            self._carry = b""
        return self._count(data.replace(b"\r\n", b"\n"))

    def end(self) -> bytes:
        """
        @return: the last bytes of the file form.
        """
        carry, self._carry = self._carry, b""
        return self._count(carry)

    def _count(self, out: bytes) -> bytes:
        if not out:
            return out
        # As _files.crlfSize counts the whole: a CRLF left in the file form
        # (from CR CR LF) stays one line end, also across pieces.
        crlf = out.count(b"\r\n") + (self._lastCR and out[0] == 0x0A)
        self._lastCR = out[-1] == 0x0D
        self.size += len(out)
        self.crlfSize += len(out) + out.count(b"\n") - crlf
        return out


def _openFile(state: FolderState, unique: str) -> int:
    if not (state.path / "cur").is_dir():
        raise NoSuchFolder(f"no folder {state.name}")
    return os.open(
        state.path / "tmp" / unique,
        os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
        0o600,
    )


def _writeAll(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _syncFile(fd: int, date: float) -> None:
    """
    Give the file its internal date, fsync and close it.
    """
    try:
        os.utime(fd, (date, date))
        os.fsync(fd)
    finally:
        os.close(fd)


def _removeFile(fd: int, state: FolderState, unique: str) -> None:
    if fd >= 0:
        try:
            os.close(fd)
        except OSError:
            pass
    _files.unlinkQuietly(state.path / "tmp" / unique)


@implementer(IMessageWriter)
class MaildirMessageWriter:
    """
    A message on its way into a Maildir folder (L{IMessageWriter}).

    At most one job of its own runs in the store's threads at a time, so
    its file is written in order.
    """

    def __init__(self, state: FolderState, bufferSize: int) -> None:
        """
        @param state: the folder's state.
        @param bufferSize: how many bytes may wait for the disk before
            L{write} asks its caller to pause.
        """
        self._state = state
        self._bufferSize = bufferSize
        self._flushSize = min(FLUSH_SIZE, bufferSize)
        self._encoder = DiskFormEncoder()
        self._unique = _files.uniqueName()
        self._pending: list[bytes] = []
        self._pendingSize = 0
        self._inFlight = 0
        self._busy = False
        #: The file's descriptor, once open (used in the jobs only).
        self._fd = -1
        #: Whether the file exists (is to be removed on failure).
        self._made = False
        self._error: Failure | None = None
        self._aborted = False
        self._waiting: list[Deferred[None]] = []
        self._finishing: tuple[frozenset[str], float, Deferred[CopyResult]] | None = (
            None
        )
        self._job(_openFile, state, self._unique).addCallbacks(
            self._opened, self._failed
        ).addCallback(self._next)

    def _job(self, f: Any, *args: Any) -> Deferred[Any]:
        self._busy = True

        def free(result: object) -> object:
            self._busy = False
            return result

        return self._state.store.inThread(f, *args).addBoth(free)

    def _opened(self, fd: int) -> None:
        self._fd = fd
        self._made = True

    def _failed(self, reason: Failure) -> None:
        if self._error is None:
            self._error = reason

    def _flushed(self, _: object) -> None:
        self._inFlight = 0

    def _removed(self, _: object) -> None:
        self._fd = -1
        self._made = False

    def _next(self, _: object = None) -> None:
        """
        Start the next job, if one is due and none runs.
        """
        if self._busy:
            return
        if self._error is not None or self._aborted:
            if self._made or self._fd >= 0:
                self._job(_removeFile, self._fd, self._state, self._unique).addBoth(
                    self._removed
                ).addCallback(self._next)
                return
            self._release()
            if self._finishing is not None and self._error is not None:
                d = self._finishing[2]
                if not d.called:
                    d.errback(self._error)
            return
        if self._pending and (
            self._pendingSize >= self._flushSize or self._finishing is not None
        ):
            data = b"".join(self._pending)
            self._pending.clear()
            self._pendingSize, self._inFlight = 0, len(data)
            self._job(_writeAll, self._fd, data).addCallbacks(
                self._flushed, self._failed
            ).addCallback(self._next)
        elif self._finishing is not None and self._fd >= 0:
            flags, date, d = self._finishing
            self._busy = True
            Deferred.fromCoroutine(self._complete(flags, date)).chainDeferred(d)
        self._release()

    def _release(self) -> None:
        """
        Let the callers that were asked to pause go on, once little enough
        waits (or nothing will be written any more).
        """
        if (
            self._pendingSize + self._inFlight <= self._bufferSize
            or self._error is not None
            or self._aborted
        ):
            waiting, self._waiting = self._waiting, []
            for d in waiting:
                d.callback(None)

    async def _complete(self, flags: frozenset[str], date: float) -> CopyResult:
        """
        fsync the file, then put it into the folder; on failure, remove it.
        """
        state = self._state
        unique = self._unique
        size, crlfSize = self._encoder.size, self._encoder.crlfSize
        fd, self._fd = self._fd, -1

        def publish() -> tuple[int, Changes]:
            if not (state.path / "cur").is_dir():
                raise NoSuchFolder(f"no folder {state.name}")
            return state.disk.publish(unique, size, crlfSize, flags, date)

        try:
            await state.store.inThread(_syncFile, fd, date)
            result = await state.locked(publish)
        except BaseException:
            await state.store.inThread(_removeFile, -1, state, unique).addErrback(
                lambda _: None
            )
            self._made = False
            raise
        self._made = False
        return state.received(result)

    # IMessageWriter.

    def write(self, data: bytes) -> Deferred[None] | None:
        """
        See L{IMessageWriter.write}.
        """
        if self._finishing is not None:
            raise RuntimeError("write after finish")
        if self._error is not None or self._aborted:
            return None
        piece = self._encoder.feed(data)
        if piece:
            self._pending.append(piece)
            self._pendingSize += len(piece)
            self._next()
        if self._pendingSize + self._inFlight > self._bufferSize:
            d: Deferred[None] = Deferred()
            self._waiting.append(d)
            return d
        return None

    def finish(
        self, flags: Iterable[str] = (), internalDate: float | None = None
    ) -> Deferred[CopyResult]:
        """
        See L{IMessageWriter.finish}.
        """
        if self._finishing is not None or self._aborted:
            return fail(RuntimeError("finish after finish or abort"))
        date = time.time() if internalDate is None else internalDate
        d: Deferred[CopyResult] = Deferred()
        self._finishing = (frozenset(flags), date, d)
        if self._error is None:
            tail = self._encoder.end()
            if tail:
                self._pending.append(tail)
                self._pendingSize += len(tail)
        self._next()
        return d

    def abort(self) -> None:
        """
        See L{IMessageWriter.abort}.
        """
        if self._finishing is not None or self._aborted:
            return
        self._aborted = True
        self._pending.clear()
        self._pendingSize = 0
        self._release()
        self._next()


__all__ = ["DEFAULT_APPEND_BUFFER", "DiskFormEncoder", "MaildirMessageWriter"]
