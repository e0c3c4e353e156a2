# -*- test-case-name: tests.test_maildir_subscriptions -*-
"""
An account's subscriptions (RFC 3501 6.3.6), in the C{subscriptions} file
at the root of its Maildir, as Dovecot keeps it.

Dovecot reads two forms and writes the one it found:

  - version 1, one folder a line in its on-disk spelling, levels joined by
    the layout's separator, here a dot (C{Archive.2024}, modified UTF-7);
  - version 2, what Dovecot writes for a new file: the header C{V<TAB>2}
    and an empty line, then one folder a line, its levels (modified UTF-7)
    separated by TABs and each level "tab-escaped" (C{\\x01} introduces
    C{1}, C{t}, C{r} or C{n} for SOH, TAB, CR and LF)::

        V\\t2\\n\\nINBOX\\nArchive\\t2024\\nReisen\\t&ANw-bersee\\n

Both are read here; this module always writes version 2.  A line that
names no folder this store can hold (a level that is not canonical
modified UTF-7, a name L{checkFolderName} refuses, bytes that are not
ASCII) is not a subscription the store reports, but it is another
program's: a rewrite keeps it, byte for byte when the file was version 2,
and in its version-2 spelling when it was version 1.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from gomail_twisted import mutf7
from gomail_twisted.maildir import _files
from gomail_twisted.maildir._names import (
    INBOX,
    SEPARATOR,
    checkFolderName,
    folderNameFromDirectory,
)
from gomail_twisted.maildir.errors import InvalidName

__all__ = [
    "SUBSCRIPTIONS",
    "Subscription",
    "changeSubscription",
    "parseSubscriptions",
    "readSubscriptions",
    "subscriptionLine",
    "writeSubscriptions",
]

#: The file's name, in the account's root Maildir.
SUBSCRIPTIONS = "subscriptions"

#: What starts a version-2 file: the version line and an empty line.
VERSION_2_HEADER = b"V\t2\n\n"

_ESCAPES = {b"\x01": b"\x011", b"\t": b"\x01t", b"\r": b"\x01r", b"\n": b"\x01n"}


@dataclass(frozen=True)
class Subscription:
    """
    One line of the subscriptions file.

    @ivar name: the folder's canonical name, or L{None} when the line names
        no folder this store can hold.
    @ivar line: the line in the version-2 form, without its LF.
    """

    name: str | None
    line: bytes


def subscriptionLine(name: str) -> bytes:
    """
    A folder's line in the version-2 form.

    @param name: a canonical name, as L{checkFolderName} gives.
    @return: its levels in modified UTF-7 (RFC 3501 5.1.3), separated by
        TABs; printable US-ASCII, so no level needs tab-escaping.
    """
    return b"\t".join(
        mutf7.encode(level).encode("ascii") for level in name.split(SEPARATOR)
    )


def _tabEscaped(level: bytes) -> bytes:
    """
    Tab-escape one level, as Dovecot's C{str_append_tabescaped} does.
    """
    for plain, escaped in _ESCAPES.items():
        level = level.replace(plain, escaped)
    return level


def _version2Name(line: bytes) -> str | None:
    try:
        levels = [mutf7.decode(level) for level in line.decode("ascii").split("\t")]
        return checkFolderName(SEPARATOR.join(levels))
    except (ValueError, InvalidName):
        # UnicodeDecodeError is a ValueError too.
        return None


def _version1Name(line: bytes) -> str | None:
    try:
        text = line.decode("ascii")
    except UnicodeDecodeError:
        return None
    if text.upper() == INBOX:
        return INBOX
    return folderNameFromDirectory("." + text)


def parseSubscriptions(data: bytes) -> list[Subscription]:
    """
    Parse a subscriptions file of either version.

    @param data: the file's contents.
    @return: its non-empty lines, in order; a version-1 line that names no
        folder gets the version-2 spelling Dovecot gives its levels (split
        at the dots, each tab-escaped), so both versions mean the same.
    """
    if data.startswith(VERSION_2_HEADER):
        return [
            Subscription(_version2Name(line), line)
            for line in data[len(VERSION_2_HEADER) :].split(b"\n")
            if line
        ]
    result = []
    for line in data.split(b"\n"):
        if not line:
            continue
        name = _version1Name(line)
        if name is None:
            converted = b"\t".join(_tabEscaped(level) for level in line.split(b"."))
            result.append(Subscription(None, converted))
        else:
            result.append(Subscription(name, subscriptionLine(name)))
    return result


def _read(path: Path) -> list[Subscription]:
    try:
        data = (path / SUBSCRIPTIONS).read_bytes()
    except FileNotFoundError:
        return []
    return parseSubscriptions(data)


def readSubscriptions(path: Path) -> list[str]:
    """
    The account's subscriptions; blocking.

    @param path: the account's root Maildir.
    @return: the canonical names of the folders subscribed, in the file's
        order, without repeats; lines that name no folder are passed over.
    """
    names = (entry.name for entry in _read(path) if entry.name is not None)
    return list(dict.fromkeys(names))


def _write(path: Path, lines: Iterable[bytes]) -> None:
    """
    Replace the subscriptions file, atomically and durably: a temporary
    file written and fsynced, renamed over the old one, the directory
    fsynced.
    """
    data = VERSION_2_HEADER + b"".join(line + b"\n" for line in dict.fromkeys(lines))
    temporary = _files.temporaryPath(path, SUBSCRIPTIONS)
    _files.writeSynced(temporary, data)
    try:
        os.rename(temporary, path / SUBSCRIPTIONS)
    except BaseException:
        _files.unlinkQuietly(temporary)
        raise
    _files.fsyncDirectory(path)


def writeSubscriptions(path: Path, names: Iterable[str]) -> None:
    """
    Replace the subscriptions file with the given folders; blocking.

    @param path: the account's root Maildir.
    @param names: canonical names.
    """
    _write(path, (subscriptionLine(name) for name in names))


def changeSubscription(path: Path, name: str, subscribe: bool) -> bool:
    """
    Subscribe to a folder or unsubscribe from it; blocking.  Every other
    line of the file is kept, those that name no folder included.

    @param path: the account's root Maildir.
    @param name: a canonical name.
    @param subscribe: L{True} to add the folder, L{False} to remove it.
    @return: whether the file changed.
    """
    entries = _read(path)
    present = any(entry.name == name for entry in entries)
    if subscribe == present:
        return False
    if subscribe:
        lines = [entry.line for entry in entries] + [subscriptionLine(name)]
    else:
        lines = [entry.line for entry in entries if entry.name != name]
    _write(path, lines)
    return True
