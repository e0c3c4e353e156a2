# -*- test-case-name: tests.test_imap4_server -*-
"""
Ready-made IMAP4 backends: a base session with safe defaults, and
L{StoreBackend}, which serves the accounts of the mail store to the users
a C{twisted.cred} checker lets in.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.error import UnauthorizedLogin
from twisted.cred.portal import IRealm, Portal
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from gomail_twisted.connection import SessionBackend
from gomail_twisted.imap4._status import AUTHENTICATION_FAILED, TEMPORARY_FAILURE
from gomail_twisted.imap4._values import ConnectionInfo, IMAPCredentials, LoginFailure
from gomail_twisted.imap4.interfaces import IIMAPBackend, IIMAPSession
from gomail_twisted.maildir.errors import StoreError
from gomail_twisted.maildir.interfaces import IAccount, IMailStore
from gomail_twisted.users import LoginUnavailable, UsersRealm, loginAccount


@implementer(IIMAPSession)
class IMAPSession:
    """
    A session that refuses every login: subclass it and override
    L{login}.

    @ivar info: the connection.
    """

    def __init__(self, info: ConnectionInfo) -> None:
        """
        @param info: the connection.
        """
        self.info = info

    def login(self, credentials: IMAPCredentials) -> Any:
        """
        Refuse.
        """
        raise AUTHENTICATION_FAILED

    def loginFailed(self, failure: LoginFailure) -> Any:
        """
        Do nothing.
        """

    def logout(self) -> Any:
        """
        Do nothing.
        """


@implementer(IIMAPBackend)
class IMAPBackend(SessionBackend):
    """
    A backend that makes one session per connection from a callable.
    """

    def __init__(self, sessionFactory: Callable[[ConnectionInfo], Any]) -> None:
        """
        @param sessionFactory: such as a subclass of L{IMAPSession}.
        """
        super().__init__(sessionFactory)


@implementer(IIMAPSession)
class _StoreSession:
    _log = Logger()

    def __init__(self, backend: StoreBackend, info: ConnectionInfo) -> None:
        self._backend = backend
        self.info = info

    def login(self, credentials: IMAPCredentials) -> Deferred[IAccount]:
        def refused(failure: Failure) -> Failure:
            if failure.check(UnauthorizedLogin):
                raise AUTHENTICATION_FAILED
            if failure.check(LoginUnavailable, StoreError):
                self._log.info(
                    "IMAP login could not be checked: {error}", error=failure.value
                )
                raise TEMPORARY_FAILURE
            return failure

        return loginAccount(self._backend.portal, credentials).addErrback(refused)

    def loginFailed(self, failure: LoginFailure) -> None:
        pass

    def logout(self) -> None:
        pass


@implementer(IIMAPBackend)
class StoreBackend:
    """
    Serve each user their account in the mail store, logged in through
    C{twisted.cred}: a L{Portal} over the checker (such as
    L{UsersChecker<gomail_twisted.users.UsersChecker>}) and a realm giving
    L{IAccount} avatars (by default L{UsersRealm}, which makes the account
    at its first login).

    A wrong password is C{NO [AUTHENTICATIONFAILED]}; a check that could
    not be made (hashing busy, the login's line of the users file skipped,
    a store error) C{NO [UNAVAILABLE]} (RFC 5530), which access control
    does not count as a failed login.  Several sessions may have one
    account open at once: the store tells each of the others' changes.

    @ivar portal: the portal logins go through.
    @ivar store: the mail store.
    """

    def __init__(
        self,
        checker: ICredentialsChecker,
        store: IMailStore,
        *,
        realm: IRealm | None = None,
    ) -> None:
        """
        @param checker: checks L{IUsernamePassword
            <twisted.cred.credentials.IUsernamePassword>} credentials and
            gives the user's address (UTF-8 bytes) as avatar ID.
        @param store: the mail store.
        @param realm: gives L{IAccount} avatars; by default a L{UsersRealm}
            over C{store}.
        """
        self.store = store
        self.portal = Portal(realm or UsersRealm(store), [checker])

    def newSession(self, info: ConnectionInfo) -> _StoreSession:
        """
        @param info: the connection.
        @return: a new session.
        """
        return _StoreSession(self, info)


__all__ = ["IMAPBackend", "IMAPSession", "StoreBackend"]
