# -*- test-case-name: tests.test_users -*-
"""
Password hashes: argon2id for new ones, argon2 and bcrypt checked; the
work done in a small thread pool of its own, never on the reactor thread.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import TypeVar

import argon2
import bcrypt
from twisted.internet.defer import Deferred, fail
from twisted.internet.interfaces import IReactorCore, IReactorFromThreads
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

_T = TypeVar("_T")

#: How many threads hash at once.  Argon2id with argon2-cffi's defaults
#: takes 64 MiB and four lanes per hash, so two at a time keep a login
#: flood from taking the machine's memory and cores.
DEFAULT_HASHING_THREADS = 2
#: How many hashes may wait for a thread before logins fail at once.
DEFAULT_MAX_QUEUED = 64
# bcrypt uses the first 72 bytes of a password; the hashes we accept were
# made by systems that cut it there, so we cut it there too.
_BCRYPT_MAX = 72


class LoginUnavailable(Exception):
    """
    A login that cannot be checked now; try again later.  A protocol
    answers this with a temporary failure (SMTP C{454 4.7.0}, POP3 C{-ERR
    [SYS/TEMP]}, IMAP C{NO [UNAVAILABLE]}), which is never counted as a
    failed login.
    """


class HashingBusy(LoginUnavailable):
    """
    Too many passwords wait to be checked; try again later.  A protocol
    answers this with a temporary failure.
    """


def _passwordBytes(password: str | bytes) -> bytes:
    return password.encode("utf-8") if isinstance(password, str) else password


class PasswordHashing:
    """
    Make and check password hashes off the reactor thread.

    New hashes are argon2id with the hasher's parameters (argon2-cffi's
    defaults, RFC 9106's second recommended option, unless a hasher is
    given).  Argon2 (id, i, d) and bcrypt (C{$2a$}, C{$2b$}, C{$2y$})
    hashes are checked.  Whether an old hash should be made again with
    newer parameters is not checked: a hash changes only with
    C{python -m gomail_twisted users passwd}.

    Checking against no hash (an unknown user) checks against a dummy
    argon2 hash made once with the same parameters, so it costs what a
    wrong password costs.

    The thread pool is made at the first use and stopped when the reactor
    shuts down, unless one is given (then its owner starts and stops it).
    """

    def __init__(
        self,
        reactor: IReactorFromThreads,
        hasher: argon2.PasswordHasher | None = None,
        threadPool: ThreadPool | None = None,
        threads: int = DEFAULT_HASHING_THREADS,
        maxQueued: int = DEFAULT_MAX_QUEUED,
    ) -> None:
        """
        @param reactor: the reactor the results are delivered on; unless
            C{threadPool} is given it must also provide L{IReactorCore},
            to stop the pool it makes at shutdown.
        @param hasher: what makes and checks argon2 hashes; tests give one
            with cheap parameters.
        @param threadPool: a started pool to run in instead of our own.
        @param threads: the size of our own pool.
        @param maxQueued: how many checks may wait; beyond it they fail with
            L{HashingBusy}.
        """
        self._reactor = reactor
        self._hasher = argon2.PasswordHasher() if hasher is None else hasher
        self._pool = threadPool
        self._threads = threads
        self._maxQueued = maxQueued
        self._pending = 0
        self._dummy: str | None = None

    def __repr__(self) -> str:
        return f"<PasswordHashing threads={self._threads}>"

    def _threadPool(self) -> ThreadPool:
        if self._pool is None:
            pool = ThreadPool(0, self._threads, "gomail-password-hashing")
            pool.start()
            IReactorCore(self._reactor).addSystemEventTrigger(
                "during", "shutdown", pool.stop
            )
            self._pool = pool
            # Make the dummy hash now, so the first unknown user does not
            # cost a hash more than a wrong password.
            pool.callInThread(self._dummyHash)
        return self._pool

    def _run(self, f: Callable[..., _T], *args: object) -> Deferred[_T]:
        if self._pending >= self._maxQueued:
            return fail(HashingBusy("too many passwords wait to be checked"))
        self._pending += 1

        def done(result: _T) -> _T:
            self._pending -= 1
            return result

        d = deferToThreadPool(self._reactor, self._threadPool(), f, *args)
        return d.addBoth(done)

    def _dummyHash(self) -> str:
        if self._dummy is None:
            # Two threads may race to make it: both make a valid one.
            self._dummy = self._hasher.hash(secrets.token_bytes(16))
        return self._dummy

    def hashNow(self, password: str | bytes) -> str:
        """
        Make a new argon2id hash, on the calling thread (for the command
        line).

        @param password: the password; text is encoded as UTF-8.
        @return: the hash, in the PHC string format.
        """
        return self._hasher.hash(_passwordBytes(password))

    def verifyNow(self, passwordHash: str | None, password: str | bytes) -> bool:
        """
        Check a password, on the calling thread.

        @param passwordHash: an argon2 or bcrypt hash, or L{None} to spend
            the time of a check and fail.
        @param password: the password; text is encoded as UTF-8.
        @return: whether it matches.
        """
        secret = _passwordBytes(password)
        if passwordHash is None:
            self._verifyArgon2(self._dummyHash(), secret)
            return False
        if passwordHash.startswith("$2"):
            try:
                return bcrypt.checkpw(
                    secret[:_BCRYPT_MAX], passwordHash.encode("ascii")
                )
            except ValueError:
                return False
        return self._verifyArgon2(passwordHash, secret)

    def _verifyArgon2(self, passwordHash: str, secret: bytes) -> bool:
        try:
            return self._hasher.verify(passwordHash, secret)
        except (
            argon2.exceptions.VerificationError,
            argon2.exceptions.InvalidHashError,
        ):
            return False

    def hash(self, password: str | bytes) -> Deferred[str]:
        """
        Make a new argon2id hash in the pool.

        @param password: the password.
        @return: a Deferred firing with the hash.
        """
        return self._run(self.hashNow, password)

    def verify(self, passwordHash: str | None, password: str | bytes) -> Deferred[bool]:
        """
        Check a password in the pool.

        @param passwordHash: the hash, or L{None} for a user who does not
            exist (the check then costs the same and fails).
        @param password: the password.
        @return: a Deferred firing with whether it matches, or failing with
            L{HashingBusy}.
        """
        return self._run(self.verifyNow, passwordHash, password)
