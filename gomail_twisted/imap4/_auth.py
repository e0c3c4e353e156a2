# -*- test-case-name: tests.test_imap4_auth -*-
"""
The commands of any state and of logging in: CAPABILITY, LOGOUT, ID (RFC
2971), ENABLE (RFC 5161), STARTTLS, LOGIN and AUTHENTICATE (RFC 3501
6.1, 6.2; SASL-IR, RFC 4959).

Passwords travel only under TLS unless the operator allowed plain text:
otherwise the capabilities say C{LOGINDISABLED}, no C{AUTH=} mechanism is
offered, and LOGIN and AUTHENTICATE answer C{NO [PRIVACYREQUIRED]}.
Every refused login, whatever the reason, is told to the session's
L{loginFailed<gomail_twisted.imap4.IIMAPSession.loginFailed>}.

The factory's IP access control is told of every checked credential: a
refusal is a failed login unless its code says the credentials were not at
fault (L{NOT_A_WRONG_LOGIN}); a peer blocked since it connected is answered
C{* BYE [UNAVAILABLE]} at its next LOGIN or AUTHENTICATE and closed, its
credentials unchecked.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from gomail_twisted._hooks import callHook
from gomail_twisted._version import __version__
from gomail_twisted.imap4 import _encode as E
from gomail_twisted.imap4 import _status as S
from gomail_twisted.imap4._base import ANSWERED, BLOCKED, ServerBase
from gomail_twisted.imap4._commands import Authenticate, Command, Enable, Id, Login
from gomail_twisted.imap4._state import State
from gomail_twisted.imap4._status import IMAPStatus
from gomail_twisted.imap4._values import IMAPCredentials, LoginFailure
from gomail_twisted.maildir.interfaces import IAccount
from gomail_twisted.sasl import (
    SASLCancelled,
    SASLExchange,
    SASLMalformed,
    decodeResponse,
    encodeChallenge,
    newExchange,
)

#: The extensions ENABLE can turn on (RFC 5161 3.1).
ENABLEABLE = frozenset({"CONDSTORE"})

#: The codes of a refused login that say nothing of the credentials (RFC
#: 5530 3): a check that could not be made, a server bug, an account in
#: use; access control does not count them.
NOT_A_WRONG_LOGIN = frozenset({"UNAVAILABLE", "SERVERBUG", "INUSE"})

#: What ID tells a client of the server (RFC 2971 3.3).
SERVER_ID = (("name", "gomail_twisted"), ("version", __version__))


class AuthCommands(ServerBase):
    """
    CAPABILITY, LOGOUT, ID, ENABLE, STARTTLS, LOGIN, AUTHENTICATE.
    """

    def doCapability(self, command: Command) -> None:
        self.write(b"* CAPABILITY " + " ".join(self.capabilities()).encode() + b"\r\n")

    def doLogout(self, command: Command) -> IMAPStatus:
        self._untagged(S.LOGGING_OUT)
        self.deselect()
        self.state = State.LOGOUT
        return IMAPStatus.ok("Logout completed")

    def doId(self, command: Command) -> None:
        arguments = command.arguments
        assert isinstance(arguments, Id)
        if arguments.fields:
            self._log.info(
                "IMAP client of {peer} says ID {fields}",
                peer=self.peer[0],
                fields=" ".join(f"{k}={v}" for k, v in arguments.fields)[:300],
            )
        pairs = [E.string(x) for pair in SERVER_ID for x in pair]
        self.write(b"* ID " + E.parenthesized(pairs) + b"\r\n")

    def doEnable(self, command: Command) -> None:
        arguments = command.arguments
        assert isinstance(arguments, Enable)
        turned = [
            name
            for name in dict.fromkeys(arguments.capabilities)
            if name in ENABLEABLE and name not in self.enabled
        ]
        self.enabled.update(turned)
        if "CONDSTORE" in turned and self.selected is not None:
            self.selected.condstore = True
        self.write(b"* ENABLED" + b"".join(b" " + n.encode() for n in turned) + b"\r\n")

    def doStartTLS(self, command: Command) -> object:
        if self.factory.tls is None:
            return IMAPStatus.bad("STARTTLS is not offered")
        if self.isTLS:
            return IMAPStatus.bad("TLS is already active")
        self.write(IMAPStatus.ok("Begin TLS negotiation now").format(command.tag))
        self._endSession()
        # RFC 3501 6.2.1: nothing sent before the handshake is acted on.
        self.startTLS(self.factory.tls)
        return ANSWERED

    def doLogin(self, command: Command) -> object:
        arguments = command.arguments
        assert isinstance(arguments, Login)
        if not self.passwordsAllowed:
            return self._refuseLogin("LOGIN", arguments.user, S.PRIVACY_REQUIRED)
        return self.login(IMAPCredentials("LOGIN", arguments.user, arguments.password))

    def doAuthenticate(self, command: Command) -> object:
        arguments = command.arguments
        assert isinstance(arguments, Authenticate)
        mechanism = arguments.mechanism
        if not self.passwordsAllowed:
            return self._refuseLogin(mechanism, "", S.PRIVACY_REQUIRED)
        exchange = newExchange(mechanism)
        if exchange is None:
            return IMAPStatus.no("Unsupported authentication mechanism", "CANNOT")
        initial = arguments.initial
        if initial is None:
            return self._authStep(command.tag, exchange, None)
        # RFC 4959 3: "=" is an empty initial response.
        return self._authStep(
            command.tag, exchange, b"" if initial == b"=" else initial
        )

    def _authStep(self, tag: str, exchange: SASLExchange, line: bytes | None) -> object:
        """
        Feed one response (L{None}: none yet) to a SASL exchange: send its
        next challenge and wait for the answer, or log in with what it
        yields.

        @return: the command's outcome (L{ANSWERED} while waiting).
        """
        try:
            response = None if line is None else decodeResponse(line)
            outcome = exchange.step(response)
        except SASLCancelled:
            return S.AUTHENTICATE_CANCELLED
        except SASLMalformed as e:
            return IMAPStatus.bad(f"Cannot decode response: {e}")
        if isinstance(outcome, bytes):
            self.write(b"+ " + encodeChallenge(outcome) + b"\r\n")
            self.expectLine(tag, lambda answer: self._authAnswer(exchange, answer))
            return ANSWERED
        return self.login(outcome)

    def _authAnswer(self, exchange: SASLExchange, line: bytes) -> None:
        """
        The client answered a challenge: go on, answering the waiting
        AUTHENTICATE when the exchange ends.
        """
        if line == b"*":
            # RFC 3501 6.2.2: the client cancelled.
            self.finishPending(S.AUTHENTICATE_CANCELLED)
            return
        tag = self._pendingTag
        assert tag is not None
        outcome = self._authStep(tag, exchange, line)
        if outcome is ANSWERED:
            return
        self.awaitHook(outcome, self.finishPending, self.finishPending, hook="login")

    def login(self, credentials: IMAPCredentials) -> Deferred[IMAPStatus] | object:
        """
        Ask the session to log in; on success enter the authenticated
        state.  Access control is told of the outcome, even when the client
        has gone meanwhile.

        @param credentials: what the client sent.
        @return: a Deferred firing with the command's status, or
            L{ANSWERED} when the peer is blocked: it was told C{BYE} and is
            being closed.
        """
        mechanism, user = credentials.mechanism, credentials.login
        if self.peerBlocked:
            self._log.info("IMAP login from blocked {peer}", peer=self.peer[0])
            self._untagged(BLOCKED)
            self.closeConnection()
            return ANSWERED

        def loggedIn(account: Any) -> IMAPStatus:
            if not IAccount.providedBy(account):
                self._log.error(
                    "IMAP login returned {account!r}, not an IAccount", account=account
                )
                return self._refuseLogin(mechanism, user, S.TEMPORARY_FAILURE)
            self.reportLogin(True)
            if self.closed:
                return S.TEMPORARY_FAILURE
            self.account = account
            self.state = State.AUTHENTICATED
            self._log.info(
                "IMAP {mechanism} login ok for {login} from {peer}",
                mechanism=mechanism,
                login=user,
                peer=self.peer[0],
            )
            return IMAPStatus.ok(
                "Logged in", "CAPABILITY " + " ".join(self.capabilities())
            )

        def refused(failure: Failure) -> IMAPStatus:
            if failure.check(IMAPStatus):
                status = failure.value
                assert isinstance(status, IMAPStatus)
                if status.code not in NOT_A_WRONG_LOGIN:
                    self.reportLogin(False)
            else:
                self.logHookFailure(failure, "login")
                status = S.TEMPORARY_FAILURE
            return self._refuseLogin(mechanism, user, status)

        return callHook(self.session.login, credentials).addCallbacks(loggedIn, refused)

    def _refuseLogin(self, mechanism: str, user: str, status: IMAPStatus) -> IMAPStatus:
        """
        Log a refused login and tell the session.

        @return: C{status}, to answer the command with.
        """
        self._log.info(
            "IMAP {mechanism} login failed for {login} from {peer}: {status}",
            mechanism=mechanism,
            login=user,
            peer=self.peer[0],
            status=str(status),
        )
        session = self.session
        if session is not None and self.info is not None:
            failure = LoginFailure(mechanism, user, status, self.info)
            self.notifyHook(session.loginFailed, "loginFailed", failure)
        return status
