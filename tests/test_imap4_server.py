"""
Tests for L{gomail_twisted.imap4.server}: the connection, its framing of
commands and literals, the states, logging in and out, limits and
timeouts, as a client sees them on the wire.
"""

from __future__ import annotations

import base64
from typing import Any

from twisted.internet.defer import Deferred, fail
from twisted.trial.unittest import SynchronousTestCase

from gomail_twisted.imap4 import _status as S
from gomail_twisted.imap4._status import IMAPStatus
from gomail_twisted.imap4._values import ConnectionInfo, IMAPCredentials, LoginFailure
from gomail_twisted.imap4.backend import IMAPBackend, IMAPSession
from gomail_twisted.imap4.factory import IMAP4ServerFactory
from tests._imaphelpers import (
    ALICE,
    ALICE_PASSWORD,
    BOB,
    Connection,
    StoreTestCase,
)


def plain(authzid: str, user: str, password: str) -> bytes:
    """
    A SASL PLAIN response, base64-encoded.
    """
    return base64.b64encode(f"{authzid}\0{user}\0{password}".encode())


class _RecordingSession(IMAPSession):
    """
    A session that refuses every login, recording what it is told.
    """

    failures: list[LoginFailure]
    logouts: int

    def __init__(self, info: ConnectionInfo) -> None:
        super().__init__(info)
        self.failures = []
        self.logouts = 0
        self.logins: list[IMAPCredentials] = []

    def login(self, credentials: IMAPCredentials) -> Any:
        self.logins.append(credentials)
        return super().login(credentials)

    def loginFailed(self, failure: LoginFailure) -> None:
        self.failures.append(failure)

    def logout(self) -> None:
        self.logouts += 1


class GreetingTests(StoreTestCase):
    """
    What a client is told on connecting, and CAPABILITY.
    """

    def test_greetingNamesCapabilities(self) -> None:
        """
        The greeting is an untagged OK carrying the capabilities, so a
        client need not ask (RFC 3501 7.1, 7.2.1).
        """
        c = self.connect()
        self.assertEqual(
            c.greeting,
            b"* OK [CAPABILITY IMAP4rev1 SASL-IR ID ENABLE IDLE LITERAL+"
            b" AUTH=PLAIN AUTH=LOGIN] imap.example.com IMAP4rev1 server ready\r\n",
        )

    def test_loginDisabledWithoutTLS(self) -> None:
        """
        Without TLS, and without the operator's leave, passwords are not
        offered: LOGINDISABLED and no AUTH= mechanism (RFC 3501 6.2.3).
        """
        c = self.connect(self.makeFactory(allowPlaintextAuth=False))
        self.assertEqual(
            c.lines(b"a CAPABILITY"),
            [
                b"* CAPABILITY IMAP4rev1 SASL-IR ID ENABLE IDLE LITERAL+ LOGINDISABLED",
                b"a OK CAPABILITY completed",
            ],
        )

    def test_startTLSOffered(self) -> None:
        """
        With a TLS context, STARTTLS is offered on a plain connection.
        """
        c = self.connect(self.makeFactory(allowPlaintextAuth=False, tls=object()))
        self.assertIn(b" STARTTLS ", c.lines(b"a CAPABILITY")[0] + b" ")

    def test_fullCapabilitiesOnceLoggedIn(self) -> None:
        """
        Once logged in, the extensions are listed, with APPENDLIMIT, and no
        login mechanism.
        """
        c = self.login()
        line = c.lines(b"b CAPABILITY")[0]
        for name in (b"IDLE", b"UIDPLUS", b"MOVE", b"CONDSTORE", b"APPENDLIMIT="):
            self.assertIn(b" " + name, line)
        self.assertNotIn(b"AUTH=", line)

    def test_refusedSession(self) -> None:
        """
        A backend that refuses the connection has its status sent as BYE,
        and the connection closed.
        """

        def refuse(info: ConnectionInfo) -> Any:
            raise IMAPStatus.no("Not from there", "UNAVAILABLE")

        c = Connection(IMAP4ServerFactory(IMAPBackend(refuse), reactor=self.reactor))
        self.assertEqual(c.greeting, b"* BYE [UNAVAILABLE] Not from there\r\n")
        self.assertTrue(c.closed)

    def test_brokenBackend(self) -> None:
        """
        A backend whose newSession fails unexpectedly gives BYE
        [UNAVAILABLE], and the failure is logged.
        """

        def broken(info: ConnectionInfo) -> Any:
            raise RuntimeError("oops")

        c = Connection(IMAP4ServerFactory(IMAPBackend(broken), reactor=self.reactor))
        self.assertEqual(c.greeting, b"* BYE [UNAVAILABLE] Service not available\r\n")
        self.assertTrue(c.closed)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)


class LoginTests(StoreTestCase):
    """
    LOGIN and AUTHENTICATE against the users file.
    """

    def test_login(self) -> None:
        """
        LOGIN with the right password enters the authenticated state and
        says the new capabilities.
        """
        c = self.connect()
        answer = c.command(b'a LOGIN alice@example.com "correct horse"')
        self.assertTrue(answer.startswith(b"a OK [CAPABILITY IMAP4rev1 "), answer)
        self.assertTrue(answer.endswith(b"] Logged in\r\n"))

    def test_loginWithLiterals(self) -> None:
        """
        The user name and password may be literals; the client is told to
        go on after each synchronizing one.
        """
        c = self.connect()
        self.assertEqual(c.command(b"a LOGIN {17}"), b"+ Ready for literal data\r\n")
        self.assertEqual(
            c.command(b"alice@example.com {13}"), b"+ Ready for literal data\r\n"
        )
        self.assertTrue(c.command(b"correct horse").startswith(b"a OK"))

    def test_loginWithNonSynchronizingLiterals(self) -> None:
        """
        LITERAL+ (RFC 7888): no continuation is sent, and the command is
        read whole.
        """
        c = self.connect()
        answer = c.send(
            b"a LOGIN {17+}\r\nalice@example.com {13+}\r\ncorrect horse\r\n"
        )
        self.assertTrue(answer.startswith(b"a OK [CAPABILITY"), answer)

    def test_wrongPassword(self) -> None:
        """
        A wrong password is NO [AUTHENTICATIONFAILED] (RFC 5530), and the
        session stays unauthenticated.
        """
        c = self.connect()
        self.assertEqual(
            c.lines(b'a LOGIN alice@example.com "wrong"'),
            [b"a NO [AUTHENTICATIONFAILED] Authentication failed"],
        )
        self.assertEqual(
            c.lines(b"b SELECT INBOX"), [b"b BAD SELECT needs a login first"]
        )

    def test_unknownUser(self) -> None:
        """
        An unknown user gets the same answer as a wrong password.
        """
        c = self.connect()
        self.assertEqual(
            c.lines(b'a LOGIN nobody@example.com "wrong"'),
            [b"a NO [AUTHENTICATIONFAILED] Authentication failed"],
        )

    def test_privacyRequired(self) -> None:
        """
        Without TLS and the operator's leave, LOGIN is refused with
        PRIVACYREQUIRED, and the password is never checked.
        """
        sessions: list[_RecordingSession] = []

        def session(info: ConnectionInfo) -> _RecordingSession:
            sessions.append(_RecordingSession(info))
            return sessions[-1]

        c = Connection(IMAP4ServerFactory(IMAPBackend(session), reactor=self.reactor))
        self.addCleanup(c.lose)
        self.assertEqual(
            c.lines(b"a LOGIN alice secret"),
            [
                b"a NO [PRIVACYREQUIRED] Plaintext authentication disallowed"
                b" on non-secure connection"
            ],
        )
        self.assertEqual(sessions[0].logins, [])
        self.assertEqual(
            [(f.mechanism, f.login, f.status) for f in sessions[0].failures],
            [("LOGIN", "alice", S.PRIVACY_REQUIRED)],
        )

    def test_loginFailedHook(self) -> None:
        """
        Every refused login is told to the session's loginFailed, with what
        the client was told and where it came from.
        """
        sessions: list[_RecordingSession] = []

        def session(info: ConnectionInfo) -> _RecordingSession:
            sessions.append(_RecordingSession(info))
            return sessions[-1]

        factory = IMAP4ServerFactory(
            IMAPBackend(session), reactor=self.reactor, allowPlaintextAuth=True
        )
        c = Connection(factory)
        self.addCleanup(c.lose)
        c.command(b"a LOGIN alice secret")
        c.command(b"b AUTHENTICATE PLAIN " + plain("", "bob", "pw"))
        [failure1, failure2] = sessions[0].failures
        self.assertEqual(
            (failure1.mechanism, failure1.login, failure1.status),
            ("LOGIN", "alice", S.AUTHENTICATION_FAILED),
        )
        self.assertEqual((failure2.mechanism, failure2.login), ("PLAIN", "bob"))
        self.assertEqual(failure1.connection.peerHost, "192.0.2.7")
        self.assertEqual([c.password for c in sessions[0].logins], ["secret", "pw"])

    def test_hookFailure(self) -> None:
        """
        A login hook that fails unexpectedly gives NO [UNAVAILABLE]; the
        failure is logged and counted as a refused login.
        """
        sessions: list[_RecordingSession] = []

        class Broken(_RecordingSession):
            def login(self, credentials: IMAPCredentials) -> Any:
                return fail(RuntimeError("database down"))

        def session(info: ConnectionInfo) -> _RecordingSession:
            sessions.append(Broken(info))
            return sessions[-1]

        factory = IMAP4ServerFactory(
            IMAPBackend(session), reactor=self.reactor, allowPlaintextAuth=True
        )
        c = Connection(factory)
        self.addCleanup(c.lose)
        self.assertEqual(
            c.lines(b"a LOGIN alice secret"),
            [b"a NO [UNAVAILABLE] Temporary server failure, try again later"],
        )
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertEqual(
            [f.status for f in sessions[0].failures], [S.TEMPORARY_FAILURE]
        )

    def test_slowLoginHoldsInput(self) -> None:
        """
        While a login is being checked, pipelined commands wait, and are
        answered in order after it.
        """
        pending: Deferred[Any] = Deferred()

        class Slow(_RecordingSession):
            def login(self, credentials: IMAPCredentials) -> Any:
                return pending

        factory = IMAP4ServerFactory(
            IMAPBackend(Slow), reactor=self.reactor, allowPlaintextAuth=True
        )
        c = Connection(factory)
        self.addCleanup(c.lose)
        self.assertEqual(c.send(b"a LOGIN alice secret\r\nb NOOP\r\n"), b"")
        pending.errback(S.AUTHENTICATION_FAILED)
        self.assertEqual(
            c.read(),
            b"a NO [AUTHENTICATIONFAILED] Authentication failed\r\n"
            b"b OK NOOP completed\r\n",
        )

    def test_authenticatePlainInitialResponse(self) -> None:
        """
        AUTHENTICATE PLAIN with an initial response (SASL-IR, RFC 4959)
        logs in in one round trip.
        """
        c = self.connect()
        answer = c.command(b"a AUTHENTICATE PLAIN " + plain("", ALICE, ALICE_PASSWORD))
        self.assertTrue(answer.startswith(b"a OK [CAPABILITY"), answer)

    def test_authenticatePlainContinuation(self) -> None:
        """
        Without an initial response the server sends an empty challenge and
        reads the response from the next line.
        """
        c = self.connect()
        self.assertEqual(c.command(b"a AUTHENTICATE PLAIN"), b"+ \r\n")
        answer = c.command(plain("", ALICE, ALICE_PASSWORD))
        self.assertTrue(answer.startswith(b"a OK [CAPABILITY"), answer)
        self.assertEqual(c.lines(b"b NOOP"), [b"b OK NOOP completed"])

    def test_authenticateLogin(self) -> None:
        """
        The LOGIN mechanism asks for the user name and the password in
        turn.
        """
        c = self.connect()
        self.assertEqual(
            c.command(b"a AUTHENTICATE LOGIN"),
            b"+ " + base64.b64encode(b"Username:") + b"\r\n",
        )
        self.assertEqual(
            c.command(base64.b64encode(ALICE.encode())),
            b"+ " + base64.b64encode(b"Password:") + b"\r\n",
        )
        answer = c.command(base64.b64encode(ALICE_PASSWORD.encode()))
        self.assertTrue(answer.startswith(b"a OK [CAPABILITY"), answer)

    def test_authenticateEmptyInitialResponse(self) -> None:
        """
        C{=} is an empty initial response (RFC 4959 3), which PLAIN
        refuses as malformed.
        """
        c = self.connect()
        self.assertEqual(
            c.lines(b"a AUTHENTICATE PLAIN ="),
            [b"a BAD Cannot decode response: malformed PLAIN response"],
        )

    def test_authenticateCancelled(self) -> None:
        """
        A client that answers a challenge with C{*} cancels: BAD, and the
        session reads commands again.
        """
        c = self.connect()
        c.command(b"a AUTHENTICATE PLAIN")
        self.assertEqual(c.lines(b"*"), [b"a BAD Authentication cancelled"])
        self.assertEqual(c.lines(b"b NOOP"), [b"b OK NOOP completed"])

    def test_authenticateBadBase64(self) -> None:
        """
        A response that is not base64 is BAD.
        """
        c = self.connect()
        c.command(b"a AUTHENTICATE PLAIN")
        [line] = c.lines(b"!!!")
        self.assertTrue(line.startswith(b"a BAD Cannot decode response"), line)

    def test_authenticateUnknownMechanism(self) -> None:
        """
        A mechanism not offered is NO.
        """
        c = self.connect()
        self.assertEqual(
            c.lines(b"a AUTHENTICATE CRAM-MD5"),
            [b"a NO [CANNOT] Unsupported authentication mechanism"],
        )

    def test_authenticateAsAnother(self) -> None:
        """
        A PLAIN authorization identity naming another user is refused: no
        user may act as another.
        """
        c = self.connect()
        self.assertEqual(
            c.lines(b"a AUTHENTICATE PLAIN " + plain(BOB, ALICE, ALICE_PASSWORD)),
            [b"a NO [AUTHENTICATIONFAILED] Authentication failed"],
        )

    def test_authenticateAsSelf(self) -> None:
        """
        A PLAIN authorization identity naming the user itself is fine.
        """
        c = self.connect()
        answer = c.command(
            b"a AUTHENTICATE PLAIN " + plain(ALICE, ALICE, ALICE_PASSWORD)
        )
        self.assertTrue(answer.startswith(b"a OK"), answer)

    def test_noSecondLogin(self) -> None:
        """
        A session never switches users: LOGIN once logged in is BAD.
        """
        c = self.login()
        self.assertEqual(
            c.lines(b"b LOGIN bob@example.com x"),
            [b"b BAD LOGIN is not allowed once logged in"],
        )


class LogoutTests(StoreTestCase):
    """
    LOGOUT, and the end of a connection.
    """

    def test_logout(self) -> None:
        """
        LOGOUT: an untagged BYE, the tagged OK, and the server closes.
        """
        c = self.connect()
        self.assertEqual(
            c.command(b"a LOGOUT"), b"* BYE Logging out\r\na OK Logout completed\r\n"
        )
        self.assertTrue(c.closed)

    def test_nothingAfterLogout(self) -> None:
        """
        Commands pipelined after LOGOUT are not answered.
        """
        c = self.connect()
        answer = c.send(b"a LOGOUT\r\nb NOOP\r\n")
        self.assertNotIn(b"b OK", answer)

    def test_logoutHook(self) -> None:
        """
        The session is told once when the connection ends.
        """
        sessions: list[_RecordingSession] = []

        def session(info: ConnectionInfo) -> _RecordingSession:
            sessions.append(_RecordingSession(info))
            return sessions[-1]

        c = Connection(IMAP4ServerFactory(IMAPBackend(session), reactor=self.reactor))
        c.command(b"a LOGOUT")
        c.protocol.connectionLost()
        self.assertEqual(sessions[0].logouts, 1)


class FramingTests(StoreTestCase):
    """
    Tags, malformed commands, literals and their limits.
    """

    def test_unknownCommand(self) -> None:
        """
        An unknown command is BAD, tagged.
        """
        c = self.connect()
        [line] = c.lines(b"a FROBNICATE")
        self.assertTrue(line.startswith(b"a BAD "), line)

    def test_noTag(self) -> None:
        """
        A line that has no tag gets an untagged BAD.
        """
        c = self.connect()
        [line] = c.lines(b"")
        self.assertTrue(line.startswith(b"* BAD "), line)

    def test_wrongState(self) -> None:
        """
        A command of another state is BAD, naming why.
        """
        c = self.login()
        self.assertEqual(
            c.lines(b"b FETCH 1 FLAGS"), [b"b BAD FETCH needs a selected mailbox"]
        )
        self.assertEqual(
            c.lines(b"c STARTTLS"), [b"c BAD STARTTLS is not allowed once logged in"]
        )

    def test_tooManyErrors(self) -> None:
        """
        After C{maxErrors} BAD commands, the server says BYE and closes.
        """
        c = self.connect(self.makeFactory(maxErrors=3))
        c.command(b"a X")
        c.command(b"b X")
        answer = c.command(b"c X")
        self.assertTrue(answer.endswith(b"* BYE Too many invalid commands\r\n"), answer)
        self.assertTrue(c.closed)

    def test_lineTooLong(self) -> None:
        """
        A line past the limit cannot be framed: BYE [TOOBIG], close.
        """
        c = self.connect(self.makeFactory(maxLineLength=1024))
        answer = c.send(b"a NOOP " + b"x" * 2000)
        self.assertEqual(answer, b"* BYE [TOOBIG] Command line too long\r\n")
        self.assertTrue(c.closed)

    def test_literalTooLargeBeforeLogin(self) -> None:
        """
        Before a login, a synchronizing literal past the small pre-login
        limit is refused at once, with no continuation, and the session
        goes on.
        """
        c = self.connect()
        self.assertEqual(
            c.lines(b"a LOGIN {100000}"), [b"a BAD [TOOBIG] Command too large"]
        )
        self.assertEqual(c.lines(b"b NOOP"), [b"b OK NOOP completed"])

    def test_nonSynchronizingLiteralTooLarge(self) -> None:
        """
        A non-synchronizing literal past the limit is already on its way:
        BAD [TOOBIG], BYE, close (RFC 7888 4).
        """
        c = self.connect()
        answer = c.command(b"a LOGIN {100000+}")
        self.assertEqual(
            answer,
            b"a BAD [TOOBIG] Command too large\r\n* BYE [TOOBIG] Literal too large\r\n",
        )
        self.assertTrue(c.closed)

    def test_literalsCountTowardTheCommand(self) -> None:
        """
        Literals of one command add up: past C{maxCommandSize} the command
        is refused, though each literal alone fits.
        """
        c = self.login()
        c.protocol.factory.maxCommandSize = 2048  # type: ignore[attr-defined]
        self.assertEqual(c.command(b"b LIST {1000}"), b"+ Ready for literal data\r\n")
        self.assertEqual(
            c.lines(b"x" * 1000 + b" {1500}"), [b"b BAD [TOOBIG] Command too large"]
        )

    def test_appendTooLarge(self) -> None:
        """
        An APPEND message past C{maxAppendSize} is refused before it is
        sent, with NO [TOOBIG] (RFC 7889).
        """
        c = self.connect(self.makeFactory(maxAppendSize=100))
        c.command(b'a LOGIN alice@example.com "correct horse"')
        self.assertEqual(
            c.lines(b"b APPEND INBOX {101}"),
            [b"b NO [TOOBIG] Message too large (at most 100 octets)"],
        )

    def test_literalSplitAcrossReads(self) -> None:
        """
        A literal arriving a byte at a time is read whole.
        """
        c = self.connect()
        c.command(b"a LOGIN alice@example.com {13}")
        answer = b"".join(c.send(bytes([b])) for b in b"correct horse\r\n")
        self.assertTrue(answer.startswith(b"a OK"), answer)

    def test_pipelinedCommandsAnsweredInOrder(self) -> None:
        """
        Commands sent together are answered in order.
        """
        c = self.connect()
        self.assertEqual(
            c.send(b"a NOOP\r\nb CAPABILITY\r\nc NOOP\r\n").split(b"\r\n")[::2],
            [b"a OK NOOP completed", b"b OK CAPABILITY completed", b""],
        )


class SessionCommandTests(StoreTestCase):
    """
    ID and ENABLE.
    """

    def test_id(self) -> None:
        """
        ID answers with the server's name and version (RFC 2971).
        """
        c = self.connect()
        [line, ok] = c.lines(b'a ID ("name" "imaplib")')
        self.assertTrue(line.startswith(b'* ID ("name" "gomail_twisted" "version" '))
        self.assertEqual(ok, b"a OK ID completed")

    def test_enableCondstore(self) -> None:
        """
        ENABLE turns on CONDSTORE and says so; unknown names are passed
        over (RFC 5161 3.1).
        """
        c = self.login()
        self.assertEqual(
            c.lines(b"b ENABLE CONDSTORE X-UNKNOWN"),
            [b"* ENABLED CONDSTORE", b"b OK ENABLE completed"],
        )
        self.assertEqual(
            c.lines(b"c ENABLE CONDSTORE"), [b"* ENABLED", b"c OK ENABLE completed"]
        )


class TimeoutTests(StoreTestCase):
    """
    The idle timer and polite shutdown.
    """

    def test_idleTimeout(self) -> None:
        """
        After 30 minutes of silence, BYE and close (RFC 3501 5.4).
        """
        c = self.login()
        self.reactor.advance(30 * 60 - 1)
        self.assertFalse(c.closed)
        self.reactor.advance(1)
        self.assertEqual(c.read(), b"* BYE Disconnected for inactivity\r\n")
        self.assertTrue(c.closed)

    def test_idleCommandRearmsTimer(self) -> None:
        """
        In IDLE the client is silent by design; the timer still ends a
        client gone for 30 minutes, and each command starts it over.
        """
        c = self.login()
        self.reactor.advance(29 * 60)
        c.command(b"b IDLE")
        self.reactor.advance(29 * 60)
        self.assertFalse(c.closed)
        self.assertEqual(c.lines(b"DONE"), [b"b OK IDLE terminated"])
        self.reactor.advance(29 * 60)
        self.assertFalse(c.closed)

    def test_shutdown(self) -> None:
        """
        A stopping server tells each idle client BYE [UNAVAILABLE] and
        closes.
        """
        c = self.login()
        d = self.factory.shutdown()
        self.assertEqual(c.read(), b"* BYE [UNAVAILABLE] Server shutting down\r\n")
        self.assertTrue(c.closed)
        c.protocol.connectionLost()
        self.successResultOf(d)


class StateTableTests(SynchronousTestCase):
    """
    The state table (L{gomail_twisted.imap4._state}).
    """

    def test_everyCommandHasAHandler(self) -> None:
        """
        Every command of the table is run by a method of the server.
        """
        from gomail_twisted.imap4._state import COMMANDS
        from gomail_twisted.imap4.server import HANDLERS, IMAP4Server

        self.assertEqual(set(COMMANDS), set(HANDLERS))
        for name in HANDLERS.values():
            self.assertTrue(callable(getattr(IMAP4Server, name, None)), name)
