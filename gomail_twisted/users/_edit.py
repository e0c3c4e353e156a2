# -*- test-case-name: tests.test_users -*-
"""
Changing the users file: under a lock, checked by the same rules the
servers read it with, written back atomically with every line it does not
change kept as it was.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Callable, Iterator
from typing import TypeVar

from gomail_twisted.users._database import readUsersFile
from gomail_twisted.users._format import (
    AliasEntry,
    DomainEntry,
    Entry,
    MalformedLine,
    ParsedLine,
    UserEntry,
    checkPasswordHash,
    formatEntry,
    parseAddress,
    parseAlias,
    parseDomain,
    parseText,
)
from gomail_twisted.users._snapshot import Snapshot, buildSnapshot

_T = TypeVar("_T")

#: The mode of a new users file: it holds password hashes.
FILE_MODE = 0o600


class UsersFileError(Exception):
    """
    A change that cannot be made; the message says why, in one line, and
    never holds a password or a hash.
    """


def _keepOwner(fd: int, st: os.stat_result) -> None:
    """
    Give the new file the old one's owner and group when they differ from
    ours: root editing the file of a server that runs as C{mail} must not
    leave it unreadable to the server.  Only root may give a file away, so
    anyone else keeps what they have.
    """
    if (st.st_uid, st.st_gid) != (os.geteuid(), os.getegid()):
        with contextlib.suppress(PermissionError):
            os.fchown(fd, st.st_uid, st.st_gid)


def writeAtomically(path: str, text: str) -> None:
    """
    Replace a file so that a reader sees the old or the new one, whole,
    even across a crash: write a temporary file in the same directory,
    C{fsync} it, rename it over the file, C{fsync} the directory.  The
    file keeps its mode, owner and group (when we may set them); a new one
    gets L{FILE_MODE}.

    @param path: the file.
    @param text: its new content; bytes that were not UTF-8 come back as
        they were read (C{surrogateescape}).
    """
    directory = os.path.dirname(os.path.abspath(path))
    try:
        st: os.stat_result | None = os.stat(path)
    except FileNotFoundError:
        st = None
    fd, temporary = tempfile.mkstemp(prefix=".users-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            if st is None:
                os.fchmod(f.fileno(), FILE_MODE)
            else:
                os.fchmod(f.fileno(), st.st_mode & 0o7777)
                _keepOwner(f.fileno(), st)
            f.write(text.encode("utf-8", "surrogateescape"))
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    dirfd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dirfd)
    finally:
        os.close(dirfd)


class UsersFileEditor:
    """
    The lines of a users file being changed.  Each change checks the file
    as the servers will read it and raises L{UsersFileError} if it is
    wrong; new lines go at the end.

    @ivar changed: whether anything changed.
    """

    def __init__(self, text: str) -> None:
        """
        @param text: the file's content (empty for a new file).
        """
        self._lines: list[ParsedLine] = parseText(text)
        self._snapshot = buildSnapshot(self._lines)
        self.changed = False

    @property
    def snapshot(self) -> Snapshot:
        """
        What the file means now.
        """
        return self._snapshot

    def text(self) -> str:
        """
        @return: the file's content, each untouched line as it was.
        """
        return "".join(line.text + "\n" for line in self._lines)

    def _update(self, lines: list[ParsedLine], action: str) -> None:
        # Number the lines again, so that problems name the lines as written.
        renumbered = [
            ParsedLine(n, line.text, line.entry, line.problem, line.comment)
            for n, line in enumerate(lines, 1)
        ]
        snapshot = buildSnapshot(renumbered)
        if len(snapshot.problems) > len(self._snapshot.problems):
            # The change breaks a line that was fine (an alias that led
            # through a removed one, say): refuse it, whatever it was.
            before = {problem.reason for problem in self._snapshot.problems}
            reason = next(
                (p.reason for p in snapshot.problems if p.reason not in before),
                snapshot.problems[-1].reason,
            )
            raise UsersFileError(f"cannot {action}: {reason}")
        self._lines = renumbered
        self._snapshot = snapshot
        self.changed = True

    def _append(self, entry: Entry, action: str) -> None:
        text = formatEntry(entry)
        self._update([*self._lines, ParsedLine(0, text, entry)], action)

    def _withoutEntries(self, matches: type[Entry], key: str) -> list[ParsedLine]:
        return [
            line
            for line in self._lines
            if not (isinstance(line.entry, matches) and _key(line.entry) == key)
        ]

    def _checkLocal(self, address: str) -> None:
        domain = address.rpartition("@")[2]
        if domain not in self._snapshot.domains:
            raise UsersFileError(
                f"{domain} is not a local domain (add it with: domain add {domain})"
            )

    def _checkFree(self, address: str) -> None:
        if address in self._snapshot.users:
            raise UsersFileError(f"{address} is already a user")
        if address in self._snapshot.aliases:
            raise UsersFileError(f"{address} is already an alias")

    def _checkUser(self, address: str) -> None:
        if address not in self._snapshot.users:
            raise UsersFileError(f"no such user: {address}")

    def addDomain(self, domain: str) -> str:
        """
        Declare a local domain.

        @param domain: the domain.
        @return: it, normalized.
        @raise UsersFileError: when it is malformed or already declared.
        """
        normal = _checked(parseDomain, domain)
        if normal in self._snapshot.domains:
            raise UsersFileError(f"{normal} is already a local domain")
        self._append(DomainEntry(normal), f"add domain {normal}")
        return normal

    def removeDomain(self, domain: str) -> str:
        """
        Remove a local domain that has no users and no aliases.

        @param domain: the domain.
        @return: it, normalized.
        @raise UsersFileError: when it is not declared or still in use.
        """
        normal = _checked(parseDomain, domain)
        if normal not in self._snapshot.domains:
            raise UsersFileError(f"{normal} is not a local domain")
        used = [
            address
            for address in (*self._snapshot.users, *self._snapshot.aliases)
            if address.rpartition("@")[2] == normal
        ]
        if used:
            raise UsersFileError(
                f"{normal} still has users or aliases ({', '.join(used[:3])}"
                f"{', ...' if len(used) > 3 else ''}): remove them first"
            )
        self._update(
            self._withoutEntries(DomainEntry, normal), f"remove domain {normal}"
        )
        return normal

    def addUser(self, address: str, passwordHash: str, enabled: bool = True) -> str:
        """
        Add a user.

        @param address: the user's address.
        @param passwordHash: their password's hash.
        @param enabled: whether they may log in.
        @return: the address, normalized.
        @raise UsersFileError: when the address is malformed, not in a local
            domain, or taken.
        """
        normal = self.checkNewUser(address)
        _checked(checkPasswordHash, passwordHash)
        self._append(UserEntry(normal, passwordHash, enabled), f"add user {normal}")
        return normal

    def checkNewUser(self, address: str) -> str:
        """
        Whether a user could be added, before asking for a password.

        @param address: the address.
        @return: it, normalized.
        @raise UsersFileError: when it could not.
        """
        normal = _checked(parseAddress, address)
        self._checkLocal(normal)
        self._checkFree(normal)
        return normal

    def checkUser(self, address: str) -> str:
        """
        Whether a user exists.

        @param address: the address.
        @return: it, normalized.
        @raise UsersFileError: when it is malformed or no user's.
        """
        normal = _checked(parseAddress, address)
        self._checkUser(normal)
        return normal

    def removeUser(self, address: str) -> str:
        """
        Remove a user who is no alias's target.

        @param address: the user's address.
        @return: it, normalized.
        @raise UsersFileError: when there is no such user, or aliases lead
            to them.
        """
        normal = self.checkUser(address)
        aliases = [a.alias for a in self._snapshot.aliases.values() if a.user == normal]
        if aliases:
            raise UsersFileError(
                f"{normal} still receives mail for aliases ({', '.join(aliases[:3])}"
                f"{', ...' if len(aliases) > 3 else ''}): remove them first"
            )
        # Every line of the address goes, so that a duplicate skipped until
        # now does not bring the user back.
        self._update(self._withoutEntries(UserEntry, normal), f"remove user {normal}")
        return normal

    def _replaceUser(
        self, address: str, passwordHash: str | None, enabled: bool | None
    ) -> None:
        for i, line in enumerate(self._lines):
            entry = line.entry
            if isinstance(entry, UserEntry) and entry.address == address:
                new = UserEntry(
                    address,
                    entry.passwordHash if passwordHash is None else passwordHash,
                    entry.enabled if enabled is None else enabled,
                )
                if new == entry:
                    return
                text = formatEntry(new, line.comment)
                lines = list(self._lines)
                lines[i] = ParsedLine(line.number, text, new, None, line.comment)
                self._update(lines, f"change user {address}")
                return

    def setPassword(self, address: str, passwordHash: str) -> str:
        """
        Change a user's password hash.

        @param address: the user's address.
        @param passwordHash: the new hash.
        @return: the address, normalized.
        @raise UsersFileError: when there is no such user.
        """
        normal = self.checkUser(address)
        _checked(checkPasswordHash, passwordHash)
        self._replaceUser(normal, passwordHash, None)
        return normal

    def setEnabled(self, address: str, enabled: bool) -> str:
        """
        Enable or disable a user.

        @param address: the user's address.
        @param enabled: whether they may log in.
        @return: the address, normalized.
        @raise UsersFileError: when there is no such user.
        """
        normal = self.checkUser(address)
        self._replaceUser(normal, None, enabled)
        return normal

    def addAlias(self, alias: str, target: str) -> tuple[str, str]:
        """
        Add an alias that leads to a user.

        @param alias: an address, or C{@domain} for a whole domain.
        @param target: a user's or an alias's address.
        @return: both, normalized.
        @raise UsersFileError: when either is malformed, the alias is not in
            a local domain or is taken, or the target leads to no user.
        """
        normal = _checked(parseAlias, alias)
        normalTarget = _checked(parseAddress, target)
        self._checkLocal(normal)
        self._checkFree(normal)
        self._append(AliasEntry(normal, normalTarget), f"add alias {normal}")
        return normal, normalTarget

    def removeAlias(self, alias: str) -> str:
        """
        Remove an alias.

        @param alias: the alias, as it was added.
        @return: it, normalized.
        @raise UsersFileError: when there is no such alias.
        """
        normal = _checked(parseAlias, alias)
        if not any(
            isinstance(line.entry, AliasEntry) and line.entry.alias == normal
            for line in self._lines
        ):
            raise UsersFileError(f"no such alias: {normal}")
        self._update(self._withoutEntries(AliasEntry, normal), f"remove alias {normal}")
        return normal


def _key(entry: Entry) -> str:
    if isinstance(entry, DomainEntry):
        return entry.domain
    if isinstance(entry, UserEntry):
        return entry.address
    return entry.alias


def _checked(check: Callable[[str], _T], value: str) -> _T:
    try:
        return check(value)
    except MalformedLine as e:
        raise UsersFileError(str(e))


@contextlib.contextmanager
def editUsersFile(path: str) -> Iterator[UsersFileEditor]:
    """
    Change a users file: take its lock (an exclusive C{flock} on
    C{PATH.lock}, so that two commands never lose each other's change),
    read it, let the caller change it, and write it back atomically if
    anything changed and the caller raised nothing.

    @param path: the users file; it and its directory are made if missing.
    @return: a context manager giving the editor.
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, mode=0o700, exist_ok=True)
    lockfd = os.open(path + ".lock", os.O_RDWR | os.O_CREAT, FILE_MODE)
    try:
        fcntl.flock(lockfd, fcntl.LOCK_EX)
        read = readUsersFile(path)
        editor = UsersFileEditor("" if read is None else read[0])
        yield editor
        if editor.changed:
            writeAtomically(path, editor.text())
    finally:
        os.close(lockfd)
