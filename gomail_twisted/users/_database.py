# -*- test-case-name: tests.test_users -*-
"""
The users file as the servers read it: checked for changes at most once a
second (and whenever a lookup finds nothing), read again whenever it
changed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from functools import partial
from typing import TypeVar

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from gomail_twisted.address import normalizeAddress, normalizeDomain
from gomail_twisted.users._format import parseText
from gomail_twisted.users._snapshot import Alias, Problem, Snapshot, User, buildSnapshot

# What identifies one version of the file: an editor that rewrites it in
# place changes the size or the modification time, and a rename (ours, or
# an editor's) changes the inode.
_Version = tuple[int, int, int, int]
_UNREAD: _Version = (-1, -1, -1, -1)
_T = TypeVar("_T")

#: Seconds during which a lookup trusts the version of the users file read
#: last without looking at the file again (see L{UsersDatabase}).
DEFAULT_CHECK_INTERVAL = 1.0


def readUsersFile(path: str) -> tuple[str, _Version] | None:
    """
    Read the users file.

    @param path: its path.
    @return: its text (UTF-8, with C{surrogateescape} so that any byte
        survives a rewrite) and its version; L{None} when there is no file.
    @raise OSError: when it exists but cannot be read.
    """
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return None
    with f:
        st = os.fstat(f.fileno())
        data = f.read()
    version = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    return data.decode("utf-8", "surrogateescape"), version


class UsersDatabase:
    """
    The users, aliases and local domains of a users file.

    A lookup first C{stat}s the file (one system call) and reads it again
    only if its inode, size or modification time changed, so an operator's
    edits, by hand or with C{python -m gomail_twisted users}, take effect
    without a restart.  A busy server makes many lookups a second, so the
    file is looked at no more than once per C{checkInterval}: an edit that
    removes or changes something takes effect within that time.  A lookup
    that finds nothing (an unknown address, domain or login; or one that
    finds a skipped line) looks at the file again at once, so a user,
    alias or domain just added, or a line just fixed, counts at the next
    lookup.  The file is small and local, so this runs on the calling
    thread.

    A line that is malformed or breaks a rule is logged with the file name,
    the line number and the reason (never the line, which may hold a hash)
    and skipped; the rest of the file still counts.  A missing file is an
    empty database; a file that cannot be read keeps the last version read
    (an error is logged once, until it can be read again).

    @ivar path: the file's path.
    """

    log = Logger()

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        clock: IReactorTime | None = None,
        checkInterval: float = DEFAULT_CHECK_INTERVAL,
    ) -> None:
        """
        @param path: the users file; it need not exist yet.
        @param clock: what tells the time between two looks at the file
            (a reactor, or L{twisted.internet.task.Clock} in tests);
            default the system's monotonic clock.
        @param checkInterval: the seconds during which lookups trust the
            version read last; 0 to look at the file at every lookup.
        @raise ValueError: C{checkInterval} is negative.
        """
        if checkInterval < 0:
            raise ValueError("checkInterval must not be negative")
        self.path = os.fspath(path)
        self._seconds: Callable[[], float] = (
            time.monotonic if clock is None else clock.seconds
        )
        self._checkInterval = checkInterval
        # When the file was last looked at, on the clock above.
        self._checkedAt: float | None = None
        # The version read last: None when there was no file, _UNREAD
        # before the first read and after a failed one.
        self._version: _Version | None = _UNREAD
        self._failing = False
        self._snapshot = Snapshot()

    def __repr__(self) -> str:
        return f"<UsersDatabase {self.path!r}>"

    def _due(self) -> bool:
        """
        @return: whether the file must be looked at before the next lookup:
            the interval has passed since the last look (or the clock went
            back).
        """
        checkedAt = self._checkedAt
        if checkedAt is None:
            return True
        elapsed = self._seconds() - checkedAt
        return not 0 <= elapsed < self._checkInterval

    def _current(self) -> Snapshot:
        if self._due():
            self._check()
        return self._snapshot

    def _lookup(
        self, find: Callable[[Snapshot], _T], found: Callable[[_T], bool]
    ) -> _T:
        """
        Look something up, looking at the file first when it is due, and
        again when the answer is a miss that an edit may have just changed.

        @param find: the lookup in one version of the file.
        @param found: whether its answer settles the question without a
            fresh look at the file.
        @return: the answer.
        """
        checked = self._due()
        if checked:
            self._check()
        answer = find(self._snapshot)
        if not checked and not found(answer):
            self._check()
            answer = find(self._snapshot)
        return answer

    def _check(self) -> None:
        """
        Look at the file, and read it again when it changed.
        """
        self._checkedAt = self._seconds()
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            version: _Version | None = None
        except OSError as e:
            self._failed(e)
            return
        else:
            version = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        if version != self._version:
            self._load()

    def _failed(self, error: OSError) -> Snapshot:
        self._version = _UNREAD
        if not self._failing:
            self.log.error(
                "Cannot read the users file {path}: {reason}; "
                "keeping what was read before",
                path=self.path,
                reason=error.strerror,
            )
            self._failing = True
        return self._snapshot

    def _load(self) -> None:
        try:
            read = readUsersFile(self.path)
        except OSError as e:
            self._failed(e)
            return
        if read is None:
            if self._version is not None:
                self.log.info("No users file at {path}", path=self.path)
            self._version = None
            self._failing = False
            self._snapshot = Snapshot()
            return
        text, self._version = read
        self._failing = False
        snapshot = buildSnapshot(parseText(text))
        for problem in snapshot.problems:
            self.log.warn(
                "{path}:{line}: {reason}; line skipped",
                path=self.path,
                line=problem.line,
                reason=problem.reason,
            )
        self.log.info(
            "Read {users} users, {aliases} aliases and {domains} domains from {path}",
            path=self.path,
            users=len(snapshot.users),
            aliases=len(snapshot.aliases),
            domains=len(snapshot.domains),
        )
        self._snapshot = snapshot

    def resolve(self, address: str) -> User | None:
        """
        The user that mail for an address is delivered to: the user with
        that address; else the user an alias of that address leads to;
        else the user an alias of the whole domain (C{@domain}) leads to.
        A disabled user still receives mail.  The bare C{postmaster}
        (RFC 5321 4.5.1) is C{postmaster@} the first local domain that has
        one.

        @param address: an address, as in C{RCPT TO}: it is normalized here
            (L{gomail_twisted.address.normalizeAddress}).
        @return: the user, or L{None} when the address is not ours.
        """
        try:
            normal = normalizeAddress(address)
        except ValueError:
            return None
        return self._lookup(partial(_resolve, normal), _isNotNone)

    def user(self, address: str) -> User | None:
        """
        The user with exactly this address (not an alias).

        @param address: an address; it is normalized here.
        @return: the user, or L{None}.
        """
        try:
            normal = normalizeAddress(address)
        except ValueError:
            return None
        found = self._lookup(lambda snapshot: snapshot.users.get(normal), _isNotNone)
        return None if found is None else found[0]

    def isLocalDomain(self, domain: str) -> bool:
        """
        Whether mail for a domain is ours: the file declares it with a
        C{domain} line.

        @param domain: a domain; it is normalized here
            (L{gomail_twisted.address.normalizeDomain}).
        @return: L{True} when it is local.
        """
        normal = normalizeDomain(domain)
        return self._lookup(lambda snapshot: normal in snapshot.domains, bool)

    def domains(self) -> tuple[str, ...]:
        """
        @return: the local domains, normalized, in file order.
        """
        return self._current().domains

    def users(self) -> tuple[User, ...]:
        """
        @return: every user, in file order.
        """
        return tuple(user for user, _ in self._current().users.values())

    def aliases(self) -> tuple[Alias, ...]:
        """
        @return: every alias that leads to a user, in file order.
        """
        return tuple(self._current().aliases.values())

    def problems(self) -> tuple[Problem, ...]:
        """
        @return: the lines of the file that were skipped, and why.
        """
        return self._current().problems

    def damage(self, address: str) -> Problem | None:
        """
        The skipped line that leaves mail for an address undecided, so that
        a server answers it with a temporary error (until the operator
        fixes the line) rather than refusing it for good: the address's own
        line (a user, or an alias, also one that was skipped because what
        it leads to was), else its domain's C{domain} line when no valid
        line declares the domain, else its domain alias (C{@domain}) line.
        An address that a valid line defines is never damaged: a skipped
        second definition of it changes nothing.  The bare C{postmaster}
        stands for C{postmaster@} the first local domain where that
        address resolves or is damaged (as in L{resolve}).

        @param address: an address, as in C{RCPT TO} or C{MAIL FROM}; it is
            normalized here.
        @return: the first such line (its C{name} says what it names), or
            L{None}.
        """
        try:
            normal = normalizeAddress(address)
        except ValueError:
            return None
        return self._lookup(partial(_damage, normal), _isNone)

    def isDamaged(self, address: str) -> bool:
        """
        Whether mail for an address is undecided because a line of the file
        that names it, or its domain, was skipped (see L{damage}).

        @param address: an address; it is normalized here.
        @return: L{True} when it is.
        """
        return self.damage(address) is not None

    def loginDamage(self, login: str) -> Problem | None:
        """
        The skipped line that leaves a login undecided: the login's own
        line, or its domain's C{domain} line (as L{damage}, but a domain
        alias does not count: an alias never logs in).

        @param login: a normalized address.
        @return: the line, or L{None}; always L{None} for a user the file
            has.
        """
        return self._lookup(
            lambda snapshot: snapshot.damage(login, domainAlias=False), _isNone
        )

    def loginHash(self, login: str) -> tuple[User, str] | None:
        """
        What a login needs: the user with that address, and their password
        hash.  Only a user's own address logs in, never an alias.

        @param login: a normalized address.
        @return: the user and their hash, or L{None}.
        """
        return self._lookup(lambda snapshot: snapshot.users.get(login), _isNotNone)


def _isNone(answer: object) -> bool:
    return answer is None


def _isNotNone(answer: object) -> bool:
    return answer is not None


def _resolve(normal: str, snapshot: Snapshot) -> User | None:
    """
    L{UsersDatabase.resolve} in one version of the file.
    """
    if normal == "postmaster":
        for domain in snapshot.domains:
            user = snapshot.resolve(f"postmaster@{domain}")
            if user is not None:
                return user
        return None
    return snapshot.resolve(normal)


def _damage(normal: str, snapshot: Snapshot) -> Problem | None:
    """
    L{UsersDatabase.damage} in one version of the file.
    """
    if normal != "postmaster":
        return snapshot.damage(normal)
    for domain in snapshot.domains:
        postmaster = f"postmaster@{domain}"
        if snapshot.resolve(postmaster) is not None:
            return None
        problem = snapshot.damage(postmaster)
        if problem is not None:
            return problem
    return None
