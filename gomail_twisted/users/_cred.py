# -*- test-case-name: tests.test_users -*-
"""
The users file in C{twisted.cred}: a checker of user names and passwords,
and a realm that opens the user's account in the mail store.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.credentials import IUsernamePassword, UsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.cred.portal import IRealm, Portal
from twisted.internet.defer import Deferred, fail
from twisted.logger import Logger
from zope.interface import Interface, implementer

from gomail_twisted.address import normalizeAddress, parseMailbox
from gomail_twisted.maildir.interfaces import IAccount, IMailStore
from gomail_twisted.sasl import PasswordCredentials
from gomail_twisted.users._database import UsersDatabase
from gomail_twisted.users._hashing import LoginUnavailable, PasswordHashing
from gomail_twisted.users._snapshot import Problem, User

# What IRealm.requestAvatar gives: the interface, the avatar, the logout.
_AvatarResult = tuple[type[Interface], object, Callable[[], None]]


class UserUnavailable(LoginUnavailable):
    """
    The users file line of a login (or of its domain) was skipped, so
    whether the login is right cannot be known until the operator fixes
    it: a temporary failure, never a failed login, so that access control
    does not block a user because of an operator's typo.

    @ivar problem: the skipped line.
    """

    def __init__(self, problem: Problem) -> None:
        """
        @param problem: the skipped line.
        """
        super().__init__(f"line {problem.line} of the users file was skipped")
        self.problem = problem


def _text(value: str | bytes) -> str | None:
    if isinstance(value, str):
        return value
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _loginName(login: str | None) -> str | None:
    """
    The normalized address a login names, or L{None} when it names none.
    """
    if login is None:
        return None
    try:
        parseMailbox(login)
    except ValueError:
        return None
    return normalizeAddress(login)


@implementer(ICredentialsChecker)
class UsersChecker:
    """
    Check a user's address and password against the users file.

    The login name is the user's own address, normalized
    (L{gomail_twisted.address.normalizeAddress}: C{Alice@Example.COM} is
    C{alice@example.com}); an alias does not log in, since it names a
    mailbox, not a person, and a domain alias would otherwise let every
    address of its domain log in.  A disabled user is refused.

    Every refusal costs one password check, whatever its cause (no such
    user, an alias, a malformed name, a disabled user, a wrong password),
    so its timing does not tell which.  Passwords and hashes are never
    logged; refusals are logged with the login name and the reason.

    A login whose own line of the users file, or whose domain's line, was
    skipped (L{UsersDatabase.loginDamage}) is not refused: it fails with
    L{UserUnavailable}, a temporary failure, logged once with the file and
    line number, after the same password check.

    The avatar ID is the user's address as UTF-8 bytes, as
    L{twisted.cred.portal.IRealm} expects.

    @ivar credentialInterfaces: L{IUsernamePassword}.
    """

    credentialInterfaces = (IUsernamePassword,)
    log = Logger()

    def __init__(self, database: UsersDatabase, hashing: PasswordHashing) -> None:
        """
        @param database: the users.
        @param hashing: where passwords are checked.
        """
        self._database = database
        self._hashing = hashing

    def __repr__(self) -> str:
        return f"<UsersChecker {self._database.path!r}>"

    def checkPassword(
        self, login: str | bytes, password: str | bytes
    ) -> Deferred[User]:
        """
        Check a login and password.

        @param login: the login name (bytes are decoded as UTF-8).
        @param password: the password (text is encoded as UTF-8).
        @return: a Deferred firing with the user, or failing with
            L{UnauthorizedLogin}; with L{UserUnavailable} when the login's
            line was skipped, or
            L{HashingBusy<gomail_twisted.users.HashingBusy>} when too many
            checks wait (both L{LoginUnavailable}: try again later).
        """
        name = _loginName(_text(login))
        found = None if name is None else self._database.loginHash(name)
        damage = None
        if found is None and name is not None:
            damage = self._database.loginDamage(name)
        d = self._hashing.verify(None if found is None else found[1], password)

        def checked(matches: bool) -> User:
            if damage is not None:
                self.log.warn(
                    "Login for {login} cannot be checked: {path}:{line} was "
                    "skipped ({reason}); answering with a temporary failure "
                    "until it is fixed",
                    login=name,
                    path=self._database.path,
                    line=damage.line,
                    reason=damage.reason,
                )
                raise UserUnavailable(damage)
            reason = None
            if found is None:
                reason = "no such user"
            elif not matches:
                reason = "wrong password"
            elif not found[0].enabled:
                reason = "user disabled"
            if reason is not None:
                self.log.info(
                    "Login refused for {login}: {reason}",
                    login=name if name is not None else "(malformed name)",
                    reason=reason,
                )
                raise UnauthorizedLogin("authentication failed")
            assert found is not None
            return found[0]

        return d.addCallback(checked)

    def requestAvatarId(
        self, credentials: IUsernamePassword
    ) -> Deferred[bytes | tuple[()]]:
        """
        Check credentials (L{ICredentialsChecker}).

        @param credentials: a user name and password.
        @return: a Deferred firing with the user's address as UTF-8 bytes,
            or failing with L{UnauthorizedLogin} or L{LoginUnavailable}.
        """
        d = self.checkPassword(credentials.username, credentials.password)

        def avatarId(user: User) -> bytes | tuple[()]:
            return user.address.encode("utf-8")

        return d.addCallback(avatarId)

    def authenticate(self, credentials: PasswordCredentials) -> Deferred[User]:
        """
        Check what a SASL exchange (L{gomail_twisted.sasl}) gave, as the
        AUTH command of SMTP, POP3 or IMAP does.  An authorization
        identity (PLAIN's authzid) other than the login itself is refused:
        no user may act as another.

        @param credentials: the exchange's credentials.
        @return: a Deferred firing with the user, or failing with
            L{UnauthorizedLogin} or L{LoginUnavailable}.
        """
        d = self.checkPassword(credentials.login, credentials.password)
        authzid = credentials.authorizationID

        def authorized(user: User) -> User:
            if authzid and _loginName(authzid) != user.address:
                self.log.info(
                    "Login refused for {login}: may not act as another user",
                    login=user.address,
                )
                raise UnauthorizedLogin("authentication failed")
            return user

        return d.addCallback(authorized)


@implementer(IRealm)
class UsersRealm:
    """
    Give a logged-in user their account in the mail store, made at the
    first login (INBOX and the special-use folders).

    Only L{IAccount} is offered.  The logout does nothing: the folders a
    session opens are the session's to close.
    """

    def __init__(self, store: IMailStore) -> None:
        """
        @param store: the mail store.
        """
        self._store = store

    def requestAvatar(
        self, avatarId: bytes | tuple[()], mind: object, *interfaces: type[Interface]
    ) -> Deferred[_AvatarResult]:
        """
        Open the user's account (L{IRealm}).

        @param avatarId: the user's address as UTF-8 bytes, as
            L{UsersChecker} gives it.
        @param mind: not used.
        @param interfaces: what the caller wants; it must include
            L{IAccount}.
        @return: a Deferred firing with C{(IAccount, account, logout)}, or
            failing with L{NotImplementedError} when L{IAccount} is not
            asked for, or with the store's error.
        """
        if IAccount not in interfaces:
            return fail(NotImplementedError("only IAccount avatars are offered"))
        if not isinstance(avatarId, bytes):
            return fail(UnauthorizedLogin("anonymous logins are not offered"))
        user = avatarId.decode("utf-8")

        def opened(
            account: IAccount,
        ) -> _AvatarResult:
            return (IAccount, account, lambda: None)

        return self._store.openAccount(user, create=True).addCallback(opened)


def loginAccount(
    portal: Portal, credentials: PasswordCredentials
) -> Deferred[IAccount]:
    """
    Log in with a password through a portal whose realm gives L{IAccount}
    avatars, as the POP3 and IMAP4 servers' store backends do.

    @param portal: the portal.
    @param credentials: what the client sent.
    @return: a Deferred firing with the account; failing with
        L{UnauthorizedLogin} for a wrong login, or for an authorization
        identity (PLAIN's authzid) naming another user: no user may act as
        another; with L{LoginUnavailable} when the login cannot be checked
        now.
    """
    d = portal.login(
        UsernamePassword(
            credentials.login.encode("utf-8"), credentials.password.encode("utf-8")
        ),
        None,
        IAccount,
    )
    authzid = credentials.authorizationID

    def loggedIn(result: _AvatarResult) -> IAccount:
        account = cast(IAccount, result[1])
        if authzid and _loginName(authzid) != account.user:
            raise UnauthorizedLogin("cannot act as another user")
        return account

    return d.addCallback(loggedIn)
