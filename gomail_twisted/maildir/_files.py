# -*- test-case-name: tests.test_maildir_files -*-
"""
Maildir message files: their names, their contents, and writing them
durably.

A file name is the unique part, then Dovecot's fields and the flags
(U{https://cr.yp.to/proto/maildir.html}, U{https://doc.dovecot.org/main/
admin_manual/mailbox_formats/maildir.html})::

    1700000000.M123456P4242Q7R0a1b2c3d.host,S=1520,W=1560:2,FSa

C{S=} is the size of the file (lines ending in LF, the Maildir
convention), C{W=} the size of its RFC 5322 form (lines ending in CRLF),
so neither needs a stat.  The flags after C{:2,} are the letters of RFC
3501's system flags in ASCII order, then the folder's keywords as
lower-case letters (indexes into C{dovecot-keywords}).

Files keep LF line ends; the API speaks CRLF.  A file written elsewhere
may already hold CRLF: such a pair is not doubled when converting.
"""

from __future__ import annotations

import errno
import itertools
import os
import re
import secrets
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from gomail_twisted.maildir.errors import StoreError, StoreFailed, StoreFull
from gomail_twisted.maildir.interfaces import ANSWERED, DELETED, DRAFT, FLAGGED, SEEN

#: The system flags and their letters in the C{:2,} suffix.
FLAG_LETTERS = {DRAFT: "D", FLAGGED: "F", ANSWERED: "R", SEEN: "S", DELETED: "T"}
LETTER_FLAGS = {letter: flag for flag, letter in FLAG_LETTERS.items()}
#: Errors that mean the disk or a quota is full.
FULL_ERRORS = frozenset({errno.ENOSPC, errno.EDQUOT})
#: Errors of a disk that cannot take more or cannot be written: worth one
#: line in the log with the reason, since a traceback would tell nothing
#: more.
DISK_ERRORS = FULL_ERRORS | {
    errno.EFBIG,
    errno.EIO,
    errno.EROFS,
    errno.EACCES,
    errno.EPERM,
    errno.EMFILE,
    errno.ENFILE,
    errno.ESTALE,
}
#: How much of a message file is read at once.
CHUNK = 64 * 1024

_counter = itertools.count(1)
_host: str | None = None


def storeErrorFor(error: OSError) -> StoreError:
    """
    The store's error for an error of the disk: L{StoreFull} when it, or a
    quota, is full, L{StoreFailed} otherwise.
    """
    if error.errno in FULL_ERRORS:
        return StoreFull(f"disk full: {error}")
    return StoreFailed(f"could not store: {error}")


def uniqueName() -> str:
    """
    A new unique part of a file name: seconds, then microseconds, process,
    a counter and 32 random bits, then the host (C{/} and C{:} escaped as
    the Maildir specification asks).
    """
    global _host
    if _host is None:
        _host = (
            socket.gethostname()
            .replace("/", r"\057")
            .replace(":", r"\072")
            .replace(",", r"\054")
        )
    now = time.time()
    seconds = int(now)
    micro = int((now - seconds) * 1_000_000)
    return (
        f"{seconds}.M{micro}P{os.getpid()}Q{next(_counter)}"
        f"R{secrets.token_hex(4)}.{_host}"
    )


def temporaryPath(directory: Path, name: str) -> Path:
    """
    A name in C{directory} for a file to write and then rename over
    C{name}, unique to this writer: to this process and, within it, to this
    call, so that two threads replacing the same file never share one.

    @param directory: where the file goes.
    @param name: the file it will replace.
    @return: the temporary file's path.
    """
    return directory / f"{name}.{os.getpid()}.{next(_counter)}.tmp"


_ARRIVAL = re.compile(r"(\d+)\.(?:[^.]*?M(\d+))?")


def arrivalKey(name: str) -> tuple[float, int, str]:
    """
    Order Maildir file names by arrival, as Dovecot does: the leading
    seconds, then the microseconds of an C{M} field, compared as numbers
    (C{M99999} before C{M100000}), then the name itself; names without
    leading seconds last.

    @param name: a file's unique name (or its whole name).
    @return: a sort key.
    """
    match = _ARRIVAL.match(name)
    if match is None:
        return (float("inf"), 0, name)
    micro = match.group(2)
    return (int(match.group(1)), int(micro) if micro else 0, name)


def baseName(unique: str, diskSize: int, crlfSize: int) -> str:
    """
    A file name without flags, as C{new/} holds it.

    @param unique: from L{uniqueName}.
    @param diskSize: the file's size.
    @param crlfSize: the size of its CRLF form.
    """
    return f"{unique},S={diskSize},W={crlfSize}"


def messageKey(name: str) -> str:
    """
    The part of a file name that never changes: before the first C{,} or
    C{:}.
    """
    colon = name.find(":")
    if colon >= 0:
        name = name[:colon]
    comma = name.find(",")
    return name if comma < 0 else name[:comma]


def parseName(name: str) -> tuple[str, str, int | None, int | None]:
    """
    Take a file name apart.

    @param name: a name in C{new/} or C{cur/}.
    @return: the key (L{messageKey}), the letters after C{:2,} (empty when
        there are none), the C{S=} and C{W=} sizes or L{None}.
    """
    base, sep, info = name.partition(":")
    letters = info[2:] if sep and info.startswith("2,") else ""
    size: int | None = None
    wsize: int | None = None
    key, comma, fields = base.partition(",")
    if comma:
        for field in fields.split(","):
            if field.startswith("S=") and field[2:].isdigit():
                size = int(field[2:])
            elif field.startswith("W=") and field[2:].isdigit():
                wsize = int(field[2:])
    return key, letters, size, wsize


def flagsFromLetters(letters: str, keywords: list[str]) -> frozenset[str]:
    """
    The flags of a C{:2,} suffix.

    @param letters: the letters after C{:2,}.
    @param keywords: the folder's keywords, by index (C{a} is 0).
    @return: the system flags and keywords they stand for; letters with no
        meaning (C{P}, an unknown keyword index) are left out.
    """
    flags = set()
    for letter in letters:
        flag = LETTER_FLAGS.get(letter)
        if flag is not None:
            flags.add(flag)
        elif "a" <= letter <= "z":
            index = ord(letter) - 97
            if index < len(keywords) and keywords[index]:
                flags.add(keywords[index])
    return frozenset(flags)


def lettersFromFlags(flags: frozenset[str], keywordIndex: dict[str, int]) -> str:
    """
    The C{:2,} letters of some flags, in ASCII order as the Maildir
    specification asks.

    @param flags: system flags and keywords, each keyword in C{keywordIndex}.
    @param keywordIndex: the folder's keywords to their index.
    """
    letters = [
        FLAG_LETTERS[f] if f in FLAG_LETTERS else chr(97 + keywordIndex[f])
        for f in flags
    ]
    return "".join(sorted(letters))


def withLetters(name: str, letters: str) -> str:
    """
    A C{cur/} file name with other flag letters.

    @param name: the current name.
    @param letters: the new letters (sorted).
    """
    return f"{name.partition(':')[0]}:2,{letters}"


def diskForm(message: bytes) -> bytes:
    """
    A message as a file holds it: lines ending in LF.
    """
    return message.replace(b"\r\n", b"\n")


def crlfSize(data: bytes) -> int:
    """
    The size of the CRLF form of file contents.
    """
    return len(data) + data.count(b"\n") - data.count(b"\r\n")


def toCRLF(chunk: bytes) -> bytes:
    """
    A chunk with each LF made CRLF, an existing CRLF kept as it is.
    """
    return chunk.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def crlfChunks(f: BinaryIO) -> Iterator[bytes]:
    """
    The CRLF form of a file, a chunk at a time: a CR at the end of a chunk
    waits for the next, so a CRLF split between reads is not doubled.
    """
    carry = b""
    while True:
        chunk = f.read(CHUNK)
        if not chunk:
            if carry:
                yield carry
            return
        chunk = carry + chunk
        if chunk.endswith(b"\r"):
            chunk, carry = chunk[:-1], b"\r"
        else:
            carry = b""
        # A file of LF line ends (the Maildir convention) takes one pass.
        yield chunk.replace(b"\n", b"\r\n") if b"\r" not in chunk else toCRLF(chunk)


def readCRLF(path: str, start: int, length: int | None) -> bytes:
    """
    Read part of a message's CRLF form, holding only that part.

    @param path: the file.
    @param start: the first byte of the CRLF form.
    @param length: how many bytes at most, or L{None} for the rest.
    """
    out: list[bytes] = []
    position = 0
    wanted = None if length is None else start + length
    with open(path, "rb") as f:
        for chunk in crlfChunks(f):
            end = position + len(chunk)
            if end > start:
                lo = max(start - position, 0)
                hi = (
                    len(chunk) if wanted is None else min(wanted - position, len(chunk))
                )
                if hi > lo:
                    out.append(chunk[lo:hi])
            position = end
            if wanted is not None and position >= wanted:
                break
    return b"".join(out)


def readFile(path: str, limit: int | None = None) -> bytes:
    """
    Read a file whole (as large as it was when opened: a message file
    never grows), or its first C{limit} bytes, in one system call, without
    a Python file object (which costs more than the read for the small
    files most messages are).

    @param path: the file.
    @param limit: how many bytes at most, or L{None} for all.
    """
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        wanted = os.fstat(fd).st_size
        if limit is not None:
            wanted = min(wanted, limit)
        pieces: list[bytes] = []
        have = 0
        while have < wanted:
            piece = os.read(fd, wanted - have)
            if not piece:
                return b"".join(pieces)
            pieces.append(piece)
            have += len(piece)
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)
    finally:
        os.close(fd)


def readMessage(path: str, limit: int | None = None) -> bytes:
    """
    Read a message's CRLF form whole, or its first C{limit} bytes, in one
    read: the same bytes as L{readCRLF} gives, with less work per chunk.

    @param path: the file.
    @param limit: how many bytes at most, or L{None} for all.
    """
    # The CRLF form is no shorter than the file: C{limit} bytes of the
    # file give at least C{limit} of it.
    data = readFile(path, limit)
    data = data.replace(b"\n", b"\r\n") if b"\r" not in data else toCRLF(data)
    return data if limit is None or len(data) <= limit else data[:limit]


def fileCRLFSize(path: str) -> int:
    """
    The size of a file's CRLF form, by reading it.
    """
    total = 0
    with open(path, "rb") as f:
        for chunk in crlfChunks(f):
            total += len(chunk)
    return total


def fsyncDirectory(path: str | Path) -> None:
    """
    Make a directory's entries durable.
    """
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def unlinkQuietly(path: str | Path) -> None:
    """
    Remove a file if it is there.
    """
    try:
        os.unlink(path)
    except OSError:
        pass


def writeSynced(path: str | Path, data: bytes, mtime: float | None = None) -> None:
    """
    Create C{path} (it must not exist), write C{data} and fsync it; on
    failure, remove what was written.

    @param mtime: the file's modification time (a message's internal
        date), set before the fsync.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            if mtime is not None:
                os.utime(fd, (mtime, mtime))
            os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException:
        unlinkQuietly(path)
        raise


def makeDirectory(path: Path) -> bool:
    """
    Make one directory if it is missing.

    @return: whether it was made (so its parent needs an fsync).
    @raise FileExistsError: when a file that is not a directory is there.
    """
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        if not path.is_dir():
            raise
        return False
    return True


def ensureMaildir(path: Path) -> bool:
    """
    Make a Maildir (the directory and its C{tmp}, C{new} and C{cur})
    durably; its parent must exist.

    @return: whether the directory itself was made (so its parent needs an
        fsync).
    """
    if (path / "cur").is_dir() and (path / "new").is_dir() and (path / "tmp").is_dir():
        return False
    made = makeDirectory(path)
    subs = [makeDirectory(path / sub) for sub in ("tmp", "new", "cur")]
    if any(subs):
        fsyncDirectory(path)
    return made


def hardLinkOrCopy(source: str, destination: str) -> None:
    """
    Put a copy of a file at C{destination} (which must not exist) durably:
    a hard link, or a real copy where the file system allows none.
    """
    try:
        os.link(source, destination)
        return
    except OSError as e:
        if e.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
            raise
    with open(source, "rb") as f:
        data = f.read()
    writeSynced(destination, data, os.stat(source).st_mtime)
