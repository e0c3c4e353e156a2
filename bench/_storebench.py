# -*- test-case-name: tests.test_maildir_store -*-
"""
The pieces of C{store.py}: realistic messages and folders written straight
to disk in our store's file-name form, the standard library's cheapest
equivalents of our operations, the floors, and timing helpers.
"""

from __future__ import annotations

import cProfile
import io
import mailbox
import os
import pstats
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure


def makeMessages(variants: int, crlf: bool) -> list[bytes]:
    """
    @param variants: how many different messages.
    @param crlf: whether lines end in CRLF (else LF).
    @return: plain-text messages of 2-4 KiB with typical headers.
    """
    line = b"Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod\n"
    messages = []
    for n in range(variants):
        headers = (
            b"Return-Path: <sender%d@example.net>\n"
            b"Received: from mx.example.net (mx.example.net [192.0.2.%d])\n"
            b"\tby mail.example.com with ESMTPS id %08x\n"
            b"\tfor <bench@example.com>; Mon, 1 Jan 2024 12:%02d:00 +0000\n"
            b"From: Sender %d <sender%d@example.net>\n"
            b"To: Bench <bench@example.com>\n"
            b"Subject: Message number %d of the benchmark\n"
            b"Date: Mon, 1 Jan 2024 12:%02d:00 +0000\n"
            b"Message-ID: <%d.bench@example.net>\n"
            b"MIME-Version: 1.0\n"
            b"Content-Type: text/plain; charset=us-ascii\n\n"
        ) % (n, n % 250, n * 7919, n % 60, n, n, n, n % 60, n)
        body = line * (24 + (n * 5) % 28)
        message = headers + body
        messages.append(message.replace(b"\n", b"\r\n") if crlf else message)
    return messages


@dataclass
class Layout:
    """
    How our store keeps a message on disk, learnt from one delivery.

    @ivar crlf: whether files keep CRLF line ends.
    @ivar sizeField: what C{,S=} counts (C{"disk"} or C{"crlf"}), or
        L{None} when names carry no size.
    @ivar wideField: whether names carry Dovecot's C{,W=} (the CRLF size).
    @ivar sample: the delivered file's name.
    """

    crlf: bool
    sizeField: str | None
    wideField: bool
    sample: str


def learnLayout(inbox: str, message: bytes) -> Layout:
    """
    Look at the one file our store delivered into C{inbox}.

    @param inbox: the folder's directory.
    @param message: the message delivered, with CRLF line ends.
    """
    found = [
        os.path.join(sub, name)
        for sub in ("new", "cur")
        for name in os.listdir(os.path.join(inbox, sub))
    ]
    if len(found) != 1:
        raise RuntimeError(f"expected one delivered file in {inbox}, found {found}")
    with open(os.path.join(inbox, found[0]), "rb") as f:
        data = f.read()
    name = os.path.basename(found[0])
    crlf = b"\r\n" in data
    sizeField = None
    size = re.search(r",S=(\d+)", name)
    if size:
        sizeField = "disk" if int(size.group(1)) == len(data) else "crlf"
        if int(size.group(1)) not in (len(data), len(message)):
            raise RuntimeError(f"cannot tell what S= counts in {name!r}")
    return Layout(crlf, sizeField, ",W=" in name, name)


def findInbox(root: str) -> str:
    """
    @return: the directory under C{root} whose C{new/} or C{cur/} holds a
        file (the only message delivered so far).
    """
    for directory, subdirectories, files in os.walk(root):
        if os.path.basename(directory) in ("new", "cur") and files:
            return os.path.dirname(directory)
        subdirectories.sort()
    raise RuntimeError(f"no delivered message under {root}")


def fileName(n: int, data: bytes, layout: Layout, flags: str) -> str:
    """
    @return: a Maildir name for message C{n}, in the form our store uses.
    """
    name = f"{1_700_000_000 + n}.M{n % 1_000_000}P4242Q{n}.bench"
    crlfSize = len(data) + (0 if layout.crlf else data.count(b"\n"))
    if layout.sizeField is not None:
        name += f",S={len(data) if layout.sizeField == 'disk' else crlfSize}"
    if layout.wideField:
        name += f",W={crlfSize}"
    return f"{name}:2,{flags}"


def populate(
    directories: Sequence[str],
    numbers: range,
    messages: Sequence[bytes],
    layout: Layout,
) -> None:
    """
    Write the same messages, with the same names, into C{cur/} of each
    Maildir in C{directories}, without fsync.

    @param numbers: the messages' numbers, which choose their names,
        contents and flags.
    """
    for directory in directories:
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(directory, sub), exist_ok=True)
    for n in numbers:
        data = messages[n % len(messages)]
        flags = ("R" if n % 20 == 0 else "") + ("S" if n % 10 < 7 else "")
        name = fileName(n, data, layout, flags)
        for directory in directories:
            with open(os.path.join(directory, "cur", name), "wb") as f:
                f.write(data)


def spread(items: Sequence[Any], count: int, offset: int = 0) -> list[Any]:
    """
    @return: C{count} of C{items} spread evenly over them.
    """
    step = max(1, len(items) // count)
    return [items[(offset + i * step) % len(items)] for i in range(count)]


def scanFloor(directory: str) -> list[str]:
    names = [e.name for e in os.scandir(os.path.join(directory, "cur"))]
    names += [e.name for e in os.scandir(os.path.join(directory, "new"))]
    return names


def stdlibFlag(box: mailbox.Maildir, key: str, flag: str, add: bool = True) -> None:
    """
    Python 3.13's C{Maildir.add_flag} (or C{remove_flag}): one rename, the
    message unread.
    """
    if hasattr(box, "add_flag"):
        getattr(box, "add_flag" if add else "remove_flag")(key, flag)
        return
    old = box._lookup(key)  # type: ignore[attr-defined]
    base, _, info = old.partition(box.colon)
    flags = set(info[2:] if info.startswith("2,") else "")
    flags = flags | set(flag) if add else flags - set(flag)
    new = f"{base}{box.colon}2,{''.join(sorted(flags))}"
    if new != old:
        path = box._path
        os.rename(os.path.join(path, old), os.path.join(path, new))
        box._toc[key] = new  # type: ignore[attr-defined]


def stdlibList(box: mailbox.Maildir) -> list[tuple[str, str, int]]:
    """
    Every message's key, flags and size, the cheapest way the standard
    library allows: its table of contents and one stat per message.
    """
    path = box._path
    rows = []
    for key, sub in box._toc.items():  # type: ignore[attr-defined]
        info = sub.rpartition(box.colon)[2] if box.colon in sub else ""
        flags = info[2:] if info.startswith("2,") else ""
        rows.append((key, flags, os.stat(os.path.join(path, sub)).st_size))
    return rows


def floorDeliver(directory: str, messages: Sequence[bytes], count: int) -> None:
    new = os.path.join(directory, "new")
    for n in range(count):
        name = f"{time.time():.6f}.floor{n}.bench"
        temporary = os.path.join(directory, "tmp", name)
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, messages[n % len(messages)])
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(temporary, os.path.join(new, name))
        fd = os.open(new, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def each(f: Callable[[Any], object], items: Sequence[Any]) -> Callable[[], None]:
    """
    @return: a function calling C{f} on each of C{items}.
    """

    def run() -> None:
        for item in items:
            f(item)

    return run


class InlinePool:
    """
    A thread pool that runs the work at once, on the calling thread.
    """

    def callInThreadWithCallback(
        self,
        onResult: Callable[[bool, object], object],
        func: Callable[..., object],
        *args: object,
        **kw: object,
    ) -> None:
        try:
            result = func(*args, **kw)
        except BaseException:
            onResult(False, Failure())
        else:
            onResult(True, result)


def show(profiler: cProfile.Profile, title: str, rows: int) -> None:
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(rows)
    print(f"Profile: {title} (by own time)")
    text = out.getvalue()
    print(text[text.find("   ncalls") :].rstrip(), flush=True)
    print()


async def inTurn(number: int, steps: Sequence[Callable[[], Awaitable[None]]]) -> None:
    """
    Run C{steps} one after another, round C{number} starting with a
    different one, so that none is always first (or last) after the work
    that came before.
    """
    start = number % len(steps)
    for step in [*steps[start:], *steps[:start]]:
        await step()


def clock(f: Callable[[], object]) -> float:
    start = time.perf_counter()
    f()
    return time.perf_counter() - start


async def aclock(f: Callable[[], Deferred[Any]]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = await f()
    return time.perf_counter() - start, result
