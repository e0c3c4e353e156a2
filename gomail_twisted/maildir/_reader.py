# -*- test-case-name: tests.test_maildir_reader -*-
"""
Reading one message in order, a piece at a time (L{IFolder.openMessage}
<gomail_twisted.maildir.interfaces.IFolder.openMessage>, an
L{IMessageReader}).

A Maildir file keeps LF line ends; the store gives the message's CRLF
form.  L{CRLFFile} converts as it reads, keeping its place in the file
and in the CRLF form (and a CR that ended the last read, which may start
a CRLF): each piece costs what it reads, where a ranged
L{IFolder.read<gomail_twisted.maildir.interfaces.IFolder.read>} must
convert from the message's start.

L{MessageReader} reads ahead of its caller, L{READ_AHEAD} bytes at most
in one job in the store's threads, so that most reads are answered at
once and the store reads while its caller sends.  It holds one file
descriptor, from L{openMessageFile} until it is closed: by its caller,
when the message leaves the folder (expunged or moved through any view
of the process, or its file unlinked by another process, seen at the
next job), or when its view closes.  The descriptor is closed on the
reactor thread, never while a job uses it.
"""

from __future__ import annotations

import collections
import os
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred, fail, succeed
from twisted.python.failure import Failure
from zope.interface import implementer

from gomail_twisted.maildir._changes import Changes
from gomail_twisted.maildir._disk import FolderDisk
from gomail_twisted.maildir._files import toCRLF
from gomail_twisted.maildir.errors import NoSuchMessage, StoreFailed
from gomail_twisted.maildir.interfaces import IMessageReader

#: The least read from the file at once, so that tiny pieces do not cost
#: a system call each.
MIN_READ = 16 * 1024
#: The most converted at once while skipping to an offset.
SKIP_PIECE = 1024 * 1024
#: How much a reader reads ahead of its caller, in one job.
READ_AHEAD = 256 * 1024
#: The size of the pieces read ahead before a caller asked any, the
#: smallest, and the largest (above CPython's allocations cost more).
DEFAULT_PIECE = 64 * 1024
MIN_PIECE = 16 * 1024
MAX_PIECE = 64 * 1024


class CRLFFile:
    """
    The CRLF form of an open message file, read in order.  Blocking: used
    in the store's threads, one call at a time.

    Each LF of the file becomes CRLF; a CRLF already there is kept as it
    is, also when the CR ends one read and the LF starts the next (the
    CR waits for the next byte); a lone CR stays.  The same bytes as
    L{gomail_twisted.maildir._files.readCRLF} gives.

    @ivar fd: the file's descriptor, which this object does not close.
    @ivar position: the offset, in the CRLF form, of the next byte read.
    """

    def __init__(self, fd: int) -> None:
        """
        @param fd: a descriptor open for reading, at the file's start.
        """
        self.fd = fd
        self.position = 0
        # Converted bytes not given out yet: what a read converted past
        # what it was asked for.
        self._buffer = b""
        # The file's last byte read was a CR, not yet converted.
        self._carry = False

    def _convert(self, size: int) -> bytes | None:
        """
        Read up to C{size} bytes of the file and convert them.

        @return: their CRLF form (empty when only a CR was read), or
            L{None} at the end of the file.
        """
        data = os.read(self.fd, size)
        if not data:
            if self._carry:
                self._carry = False
                return b"\r"
            return None
        if self._carry:
            data = b"\r" + data
            self._carry = False
        if data.endswith(b"\r"):
            data = data[:-1]
            self._carry = True
        # A file of LF line ends (the Maildir convention) takes one pass.
        return data.replace(b"\n", b"\r\n") if b"\r" not in data else toCRLF(data)

    def read(self, length: int) -> bytes:
        """
        Read the next C{length} bytes of the CRLF form.

        @param length: how many, at least 0.
        @return: that many bytes, fewer only at the end of the message.
        """
        buffer = self._buffer
        if len(buffer) >= length:
            data = buffer[:length] if len(buffer) > length else buffer
            self._buffer = buffer[length:]
        else:
            pieces = [buffer]
            have = len(buffer)
            while have < length:
                # The CRLF form is no shorter than the file: reading what
                # is missing gives at least that, but for a CR kept back.
                piece = self._convert(max(length - have, MIN_READ))
                if piece is None:
                    break
                pieces.append(piece)
                have += len(piece)
            joined = b"".join(pieces)
            if have > length:
                data, self._buffer = joined[:length], joined[length:]
            else:
                data, self._buffer = joined, b""
        self.position += len(data)
        return data

    def seek(self, offset: int) -> int:
        """
        Go to an offset of the CRLF form: forward by reading the bytes
        between, backward by starting again from the file's start.

        @param offset: the offset, at least 0.
        @return: the position reached: C{offset}, or the message's size
            when it is shorter.
        """
        if offset < self.position:
            os.lseek(self.fd, 0, os.SEEK_SET)
            self.position = 0
            self._buffer = b""
            self._carry = False
        while self.position < offset:
            wanted = min(offset - self.position, SKIP_PIECE)
            if len(self.read(wanted)) < wanted:
                break
        return self.position


def openMessageFile(disk: FolderDisk, uid: int) -> tuple[int | None, Changes | None]:
    """
    Open a message's file, looking for it again if it was renamed behind
    the store's back.  Blocking; run with the folder's lock held.

    @param disk: the folder.
    @param uid: the message.
    @return: the descriptor (L{None} when the message is gone), and what a
        rescan found, if one was needed.
    """
    changes: Changes | None = None
    for attempt in range(2):
        try:
            fd = os.open(disk.pathOf(uid), os.O_RDONLY | os.O_CLOEXEC)
        except NoSuchMessage:
            return None, changes
        except FileNotFoundError:
            if attempt:
                return None, changes
            changes = disk.scan(force=True)
            continue
        if hasattr(os, "posix_fadvise"):
            # Read ahead further: the file is read to its end, in order.
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
            except OSError:
                pass
        return fd, changes
    raise AssertionError("unreachable")


def _fillJob(
    file: CRLFFile, target: int | None, size: int, wanted: int
) -> tuple[list[bytes], bool] | None:
    """
    Read ahead for a reader, in the store's threads: pieces of C{size}
    bytes, C{wanted} bytes in all.

    @param target: an offset to go to first.
    @return: the pieces and whether the message ended, or L{None} when its
        file was unlinked.
    """
    if os.fstat(file.fd).st_nlink == 0:
        return None
    if target is not None:
        file.seek(target)
    pieces: list[bytes] = []
    total = 0
    while total < wanted:
        piece = file.read(size)
        if piece:
            pieces.append(piece)
            total += len(piece)
        if len(piece) < size:
            return pieces, True
    return pieces, False


@implementer(IMessageReader)
class MessageReader:
    """
    One message read in order (L{IMessageReader}), read ahead of its
    caller.

    A job in the store's threads reads up to L{READ_AHEAD} bytes at once,
    in pieces of the size last asked for, and queues them; a read is
    answered from the queue, at once when it holds enough, and a job
    fills it again once it is half empty, so that the store reads while
    the caller sends.  Pieces of the caller's size are handed over as
    they are, and keep each allocation small (CPython's large ones cost
    page faults each time).

    @ivar uid: the message's UID.
    """

    def __init__(
        self,
        uid: int,
        fd: int,
        inThread: Callable[..., Deferred[Any]],
        forget: Callable[[MessageReader], None],
    ) -> None:
        """
        @param uid: the message.
        @param fd: its file, open; the reader closes it.
        @param inThread: runs blocking work in the store's threads.
        @param forget: called once when the reader lets go of its file, to
            stop tracking it.
        """
        self.uid = uid
        self._file: CRLFFile | None = CRLFFile(fd)
        self._inThread = inThread
        self._forget: Callable[[MessageReader], None] | None = forget
        # The offset of the next byte handed over.
        self._position = 0
        # Bytes read ahead, in order, from the file's place after the last
        # seek.
        self._ready: collections.deque[bytes] = collections.deque()
        # Where the first piece's bytes not handed over start, and how
        # many are ready in all.
        self._offset = 0
        self._readySize = 0
        self._ended = False
        # An offset the next job goes to first.
        self._target: int | None = None
        self._pieceSize = DEFAULT_PIECE
        self._busy = False
        # Raised by seeks: a job started before gives bytes of no use.
        self._generation = 0
        self._waiting: tuple[int, Deferred[bytes]] | None = None
        self._closed = False
        # Why reads fail: the message, or the view, went away, or the
        # disk failed.
        self._reason: Exception | None = None

    @property
    def position(self) -> int:
        """
        See L{IMessageReader.position}.
        """
        return self._position

    def read(self, length: int) -> Deferred[bytes]:
        """
        See L{IMessageReader.read}.
        """
        if self._closed:
            raise RuntimeError("the reader is closed")
        if self._waiting is not None:
            raise RuntimeError("a read is under way")
        if length < 0:
            raise ValueError(f"negative length {length}")
        if self._reason is not None:
            return fail(self._reason)
        if length:
            self._pieceSize = min(length, MAX_PIECE)
        if self._readySize >= length or (self._ended and self._target is None):
            data = self._take(length)
            self._fill()
            return succeed(data)
        d: Deferred[bytes] = Deferred(self._cancel)
        self._waiting = (length, d)
        self._fill()
        return d

    def seek(self, offset: int) -> None:
        """
        See L{IMessageReader.seek}.
        """
        if self._closed:
            raise RuntimeError("the reader is closed")
        if offset < 0:
            raise ValueError(f"negative offset {offset}")
        skip = offset - self._position
        if 0 <= skip <= self._readySize and self._target is None:
            self._take(skip)
            return
        self._drop()
        self._ended = False
        self._target = self._position = offset
        self._generation += 1

    def close(self) -> None:
        """
        See L{IMessageReader.close}.
        """
        if self._closed:
            return
        self._closed = True
        self._drop()
        waiting, self._waiting = self._waiting, None
        if not self._busy:
            self._release()
        if waiting is not None:
            waiting[1].cancel()

    def end(self, reason: Exception) -> None:
        """
        The message or its view went away, or the disk failed: reads fail
        with C{reason}, and the file is let go of as soon as no job uses
        it.  Called on the reactor thread.

        @param reason: what reads fail with.
        """
        if self._reason is None:
            self._reason = reason
        self._drop()
        waiting, self._waiting = self._waiting, None
        if not self._busy:
            self._release()
        if waiting is not None:
            waiting[1].errback(self._reason)

    # The queue.

    def _take(self, length: int) -> bytes:
        """
        Hand over the next C{length} bytes read ahead (fewer at the end).
        """
        ready = self._ready
        offset = self._offset
        if ready and not offset and len(ready[0]) == length:
            data = ready.popleft()
        else:
            pieces = []
            have = 0
            while ready and have < length:
                piece = ready[0]
                end = offset + length - have
                if end < len(piece):
                    pieces.append(piece[offset:end])
                    offset = end
                else:
                    pieces.append(piece[offset:] if offset else piece)
                    ready.popleft()
                    offset = 0
                have += len(pieces[-1])
            self._offset = offset
            data = b"".join(pieces)
        self._readySize -= len(data)
        self._position += len(data)
        return data

    def _drop(self) -> None:
        self._ready.clear()
        self._readySize = self._offset = 0

    def _fill(self) -> None:
        """
        Start a job reading ahead, unless one runs, or the queue is more
        than half full and no read waits.
        """
        if self._busy or self._closed or self._reason is not None:
            return
        waiting = self._waiting
        if self._ended and self._target is None:
            return
        if waiting is None and self._readySize >= READ_AHEAD // 2:
            return
        wanted = READ_AHEAD - self._readySize
        if waiting is not None:
            wanted = max(wanted, waiting[0] - self._readySize)
        file = self._file
        assert file is not None
        target, self._target = self._target, None
        generation = self._generation
        self._busy = True
        size = max(self._pieceSize, MIN_PIECE)
        d = self._inThread(_fillJob, file, target, size, wanted)
        d.addCallbacks(self._filled, self._failed, callbackArgs=(generation,))

    def _filled(self, result: tuple[list[bytes], bool] | None, generation: int) -> None:
        self._busy = False
        if self._closed or self._reason is not None:
            # Closed or ended while the job ran: the file is free now.
            self._release()
            return
        if result is None:
            self.end(NoSuchMessage(f"message {self.uid} is gone"))
            return
        if generation == self._generation:
            pieces, self._ended = result
            self._ready.extend(pieces)
            self._readySize += sum(map(len, pieces))
        waiting = self._waiting
        if waiting is not None:
            length, d = waiting
            if self._readySize >= length or (self._ended and self._target is None):
                self._waiting = None
                d.callback(self._take(length))
        self._fill()

    def _failed(self, reason: Failure) -> None:
        self._busy = False
        error = reason.value
        self.end(error if isinstance(error, Exception) else StoreFailed(str(error)))

    def _cancel(self, d: Deferred[bytes]) -> None:
        if self._waiting is not None and self._waiting[1] is d:
            self._waiting = None

    def _release(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            os.close(file.fd)
        forget, self._forget = self._forget, None
        if forget is not None:
            forget(self)
