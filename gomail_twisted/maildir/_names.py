# -*- test-case-name: tests.test_maildir_names -*-
"""
Folder names and the Maildir++ directories that hold them, laid out as
Dovecot's default Maildir++ layout and mutt do.

In the store's API a folder name is text with C{/} between the levels of
the hierarchy; C{INBOX}, in any case, is the account's root Maildir.  On
disk every other folder is a directory directly under that root, named by
a dot, then the levels in IMAP's modified UTF-7 (RFC 3501 5.1.3) joined by
dots::

    INBOX           (the root itself)
    Sent            .Sent
    Archive/2024    .Archive.2024
    Entwürfe        .Entw&APw-rfe
    INBOX/x         .INBOX.x

Since the dot is the separator on disk, no level may hold one (Dovecot
refuses it too in this layout), and with it C{.} and C{..} are gone.  The
encoded levels hold printable US-ASCII without C{/}, so a directory name is
always one path component that starts with a dot and is neither C{.} nor
C{..}: no name reaches outside the account's directory.

The mapping is one to one: L{folderNameFromDirectory} accepts a directory
name only when it is the one L{folderDirectoryName} gives for the name it
decodes to, so two directories never claim one folder.
"""

from __future__ import annotations

import os
import re

from gomail_twisted import mutf7
from gomail_twisted.maildir.errors import InvalidName, NameTooLong

__all__ = [
    "INBOX",
    "MAX_DEPTH",
    "MAX_DIRECTORY_NAME",
    "SEPARATOR",
    "checkFolderName",
    "folderDirectoryName",
    "folderNameFromDirectory",
    "folderPath",
    "isInferior",
    "parentNames",
]

#: The account's root folder; its name is matched without regard to case
#: (RFC 3501 5.1).
INBOX = "INBOX"

#: The hierarchy separator of folder names in the store's API.
SEPARATOR = "/"

#: The most levels a folder name may have.
MAX_DEPTH = 16

#: The longest directory name, in bytes (NAME_MAX of the common file
#: systems).
MAX_DIRECTORY_NAME = 255

# C0 controls (NUL included), DEL, C1 controls, the hierarchy separator on
# disk, IMAP's LIST wildcards (RFC 3501 6.3.8), and surrogates (which have
# no UTF-8 or UTF-16 form).
_FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f.%*\ud800-\udfff]")

_REASONS = {
    ".": "a dot (the separator on disk)",
    "%": "the wildcard %",
    "*": "the wildcard *",
}


def _refusal(char: str) -> str:
    """
    Say why a character is refused in a folder name.

    @param char: a character that L{_FORBIDDEN} matches.
    @return: a short reason.
    """
    if char in _REASONS:
        return _REASONS[char]
    if "\ud800" <= char <= "\udfff":
        return f"a lone surrogate (U+{ord(char):04X})"
    return f"a control character (U+{ord(char):04X})"


def checkFolderName(name: str) -> str:
    """
    Check a folder name and give its canonical form.

    C{INBOX} as the first level, in any case, becomes C{INBOX} (RFC 3501
    5.1); every other level keeps its case.

    @param name: the name, levels separated by C{/}.
    @return: the canonical name.
    @raise InvalidName: the name is empty, has an empty level (a leading,
        trailing or doubled C{/}), a level that starts with C{~} (Dovecot
        refuses it, lest it be read as a home directory), or a NUL, control
        character, dot, C{%}, C{*} or lone surrogate.
    @raise NameTooLong: the name has more than L{MAX_DEPTH} levels, or its
        directory name is longer than L{MAX_DIRECTORY_NAME} bytes.
    """
    if not name:
        raise InvalidName("empty folder name")
    forbidden = _FORBIDDEN.search(name)
    if forbidden is not None:
        raise InvalidName(f"folder name with {_refusal(forbidden.group())}")
    levels = name.split(SEPARATOR)
    if len(levels) > MAX_DEPTH:
        raise NameTooLong(f"folder name deeper than {MAX_DEPTH} levels")
    for level in levels:
        if not level:
            raise InvalidName("folder name with an empty level")
        if level.startswith("~"):
            raise InvalidName("folder name with a level starting with ~")
    if levels[0].isascii() and levels[0].upper() == INBOX:
        levels[0] = INBOX
    canonical = SEPARATOR.join(levels)
    if len(folderDirectoryName(canonical).encode("ascii")) > MAX_DIRECTORY_NAME:
        raise NameTooLong(f"folder name longer than {MAX_DIRECTORY_NAME} bytes")
    return canonical


def folderDirectoryName(name: str) -> str:
    """
    The directory that holds a folder, relative to the account's root.

    @param name: a canonical name, as L{checkFolderName} gives.
    @return: C{""} for C{INBOX} (the root itself), otherwise a dot and the
        levels in modified UTF-7 joined by dots: one path component.
    """
    if name == INBOX:
        return ""
    return "." + ".".join(mutf7.encode(level) for level in name.split(SEPARATOR))


def folderPath(root: str, name: str) -> str:
    """
    Check a folder name and give the path of its directory.

    @param root: the account's root Maildir.
    @param name: the name, as the store's caller gave it.
    @return: C{root} for C{INBOX}, else the folder's directory directly in
        C{root}.
    @raise InvalidName: as L{checkFolderName} says.
    @raise NameTooLong: as L{checkFolderName} says.
    """
    directory = folderDirectoryName(checkFolderName(name))
    return os.path.join(root, directory) if directory else root


def folderNameFromDirectory(directory: str) -> str | None:
    """
    The folder that a directory entry under the account's root holds.

    @param directory: the name of an entry in the account's root directory;
        whether it is a directory at all is the caller's to check (NFS
        leaves files named C{.nfs...} behind, for one).
    @return: the folder's canonical name, or L{None} when the entry is not
        a folder: no leading dot, C{.} or C{..}, a level that is not
        canonical modified UTF-7, a name L{checkFolderName} refuses, or a
        spelling other than the one L{folderDirectoryName} gives (C{.inbox}
        or C{.INBOX}, say, which would shadow the root).
    """
    if not directory.startswith(".") or directory in (".", ".."):
        return None
    try:
        levels = [mutf7.decode(level) for level in directory[1:].split(".")]
        name = checkFolderName(SEPARATOR.join(levels))
    except (ValueError, InvalidName):
        return None
    if folderDirectoryName(name) != directory:
        return None
    return name


def parentNames(name: str) -> list[str]:
    """
    The folders above a folder, nearest last.

    @param name: a canonical name.
    @return: every proper ancestor, from the top: C{a}, C{a/b} for
        C{a/b/c}; empty for a top-level folder.
    """
    levels = name.split(SEPARATOR)
    return [SEPARATOR.join(levels[:depth]) for depth in range(1, len(levels))]


def isInferior(name: str, ancestor: str) -> bool:
    """
    Whether a folder is below another (RFC 3501 6.3.4's inferior names),
    at any depth.

    @param name: a canonical name.
    @param ancestor: another canonical name.
    @return: L{True} when C{name} starts with C{ancestor} and a C{/}.
    """
    return name.startswith(ancestor + SEPARATOR)
