# -*- test-case-name: tests.test_pop3_server -*-
"""
Tests for L{gomail_twisted.pop3}: the server over a L{StringTransport}
with a fake clock, its backends in memory, seen as the bytes on the wire
and the calls the hooks get.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, fail
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from gomail_twisted.pop3 import (
    ConnectionInfo,
    FunctionBackend,
    IPOP3Backend,
    LoginFailure,
    MemoryMaildrop,
    POP3Credentials,
    POP3Reply,
    POP3ServerFactory,
    POP3ServerProtocol,
    replies,
)

PEER = IPv4Address("TCP", "192.0.2.1", 40000)
LOCAL = IPv4Address("TCP", "127.0.0.1", 110)
PASSWORD = "s3cret pass"

MESSAGES = [
    b"From: a@example.com\r\nSubject: one\r\n\r\nHello.\r\n.dot line\r\n",
    b"Subject: two\r\n\r\nline 1\r\nline 2\r\nline 3\r\n",
    b".Subject: three\r\n\r\nbody\r\n",
]


def plain(login: str, password: str, authzid: str = "") -> bytes:
    """
    A SASL PLAIN response, base64-encoded.
    """
    return base64.b64encode(f"{authzid}\0{login}\0{password}".encode())


class RecordingBackend:
    """
    Logs in C{alice} with L{PASSWORD} to a L{MemoryMaildrop} of
    L{MESSAGES}; records every hook call in C{calls}; a hook named in
    C{hold} returns an unfired Deferred kept in C{held}; C{fail} maps a
    hook name to an exception it raises.
    """

    def __init__(self, apop: bool = False, messages: list[bytes] | None = None) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.hold: set[str] = set()
        self.held: list[Deferred[Any]] = []
        self.fail: dict[str, BaseException] = {}
        self.messages = list(MESSAGES if messages is None else messages)
        self.maildrops: list[MemoryMaildrop] = []
        self.failures: list[LoginFailure] = []
        self.backend = FunctionBackend(
            login=self._login,
            apop=self._apop if apop else None,
            loginFailed=self._loginFailed,
            logout=lambda info, _: self._record("logout", info),
        )

    def _record(
        self, name: str, value: Any, result: Callable[[], Any] = lambda: None
    ) -> Any:
        self.calls.append((name, value))
        if name in self.fail:
            raise self.fail[name]
        if name in self.hold:
            d: Deferred[Any] = Deferred()
            self.held.append(d)
            return d.addCallback(lambda _: result())
        return result()

    def _maildrop(self) -> MemoryMaildrop:
        maildrop = MemoryMaildrop(self.messages)
        self.maildrops.append(maildrop)
        return maildrop

    def _login(self, info: ConnectionInfo, credentials: POP3Credentials) -> Any:
        def check() -> MemoryMaildrop:
            if credentials.login != "alice" or credentials.password != PASSWORD:
                raise replies.AUTH_FAILED
            return self._maildrop()

        return self._record("login", credentials, check)

    def _apop(self, info: ConnectionInfo, value: tuple[str, str, str]) -> Any:
        user, timestamp, digest = value

        def check() -> MemoryMaildrop:
            expected = hashlib.md5((timestamp + PASSWORD).encode()).hexdigest()
            if user != "alice" or digest != expected:
                raise replies.AUTH_FAILED
            return self._maildrop()

        return self._record("apop", value, check)

    def _loginFailed(self, info: ConnectionInfo, failure: LoginFailure) -> None:
        self.failures.append(failure)

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


class Connection:
    """
    The real server on a L{StringTransport}.
    """

    def __init__(
        self, factory: POP3ServerFactory, transport: StringTransport | None = None
    ) -> None:
        self.transport = transport or StringTransport(
            hostAddress=LOCAL, peerAddress=PEER
        )
        protocol = factory.buildProtocol(PEER)
        assert isinstance(protocol, POP3ServerProtocol)
        self.protocol = protocol
        protocol.makeConnection(self.transport)
        self.greeting = self.read()

    def read(self) -> bytes:
        data = self.transport.value()
        self.transport.clear()
        return data

    def send(self, data: bytes) -> bytes:
        self.protocol.dataReceived(data)
        return self.read()

    def command(self, line: bytes) -> bytes:
        return self.send(line + b"\r\n")

    def login(self) -> bytes:
        self.command(b"USER alice")
        return self.command(b"PASS " + PASSWORD.encode())

    def lose(self) -> None:
        self.protocol.connectionLost()

    @property
    def closing(self) -> bool:
        return bool(self.transport.disconnecting)


def makeFactory(
    backend: IPOP3Backend | RecordingBackend, **kwargs: Any
) -> POP3ServerFactory:
    if isinstance(backend, RecordingBackend):
        backend = backend.backend
    kwargs.setdefault("reactor", Clock())
    kwargs.setdefault("allowPlaintextAuth", True)
    return POP3ServerFactory(backend, hostname="pop.example.com", **kwargs)


def multilineBody(data: bytes) -> list[bytes]:
    """
    The lines of a multi-line response after its status line, checked to
    end with the terminator.
    """
    assert data.endswith(b"\r\n.\r\n"), data
    return data.split(b"\r\n")[1:-2]


class GreetingTests(SynchronousTestCase):
    """
    The greeting and the APOP timestamp.
    """

    def test_greeting(self) -> None:
        """
        Without APOP the greeting is a plain C{+OK} naming the host.
        """
        connection = Connection(makeFactory(RecordingBackend()))
        self.assertEqual(
            connection.greeting, b"+OK pop.example.com POP3 server ready\r\n"
        )

    def test_apopTimestamp(self) -> None:
        """
        With APOP each greeting carries its own C{<pid.counter.time@host>}
        timestamp.
        """
        factory = makeFactory(RecordingBackend(apop=True))
        stamps = set()
        for _ in range(3):
            greeting = Connection(factory).greeting
            self.assertRegex(
                greeting,
                rb"\A\+OK pop.example.com POP3 server ready"
                rb" <\d+\.\d+\.\d+@pop.example.com>\r\n\Z",
            )
            stamps.add(greeting.split(b" ")[-1])
        self.assertEqual(len(stamps), 3)

    def test_refusedSession(self) -> None:
        """
        A backend that refuses the connection has its reply sent, then the
        connection closes.
        """

        def connect(info: ConnectionInfo) -> None:
            raise replies.PERMANENT_FAILURE.withText("Go away")

        connection = Connection(makeFactory(FunctionBackend(connect=connect)))
        self.assertEqual(connection.greeting, b"-ERR [SYS/PERM] Go away\r\n")
        self.assertTrue(connection.closing)

    def test_brokenSessionFactory(self) -> None:
        """
        A backend whose newSession fails gets C{-ERR [SYS/TEMP]}, not its
        exception's text, and the failure is logged.
        """

        @implementer(IPOP3Backend)
        class Broken:
            def newSession(self, info: ConnectionInfo) -> Any:
                raise RuntimeError("secret internals")

        connection = Connection(makeFactory(Broken()))
        self.assertEqual(connection.greeting, replies.NOT_AVAILABLE.format())
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_goneBeforeSession(self) -> None:
        """
        A session that arrives after the client went is logged out at once,
        and nothing is written.
        """
        backend = RecordingBackend()
        later: Deferred[None] = Deferred()
        factory = makeFactory(
            FunctionBackend(
                connect=lambda info: later,
                logout=lambda info, _: backend.calls.append(("logout", info)),
            )
        )
        connection = Connection(factory)
        self.assertEqual(connection.greeting, b"")
        connection.lose()
        later.callback(None)
        self.assertEqual(backend.names(), ["logout"])
        self.assertEqual(connection.read(), b"")

    def test_tooManyConnections(self) -> None:
        """
        Past the per-peer limit a connection is refused with C{[SYS/TEMP]}.
        """
        factory = makeFactory(RecordingBackend(), maxConnectionsPerPeer=1)
        Connection(factory)
        second = Connection(factory)
        self.assertEqual(second.greeting, replies.TOO_MANY_CONNECTIONS.format())
        self.assertTrue(second.closing)


class CapabilityTests(SynchronousTestCase):
    """
    CAPA (RFC 2449).
    """

    def capa(self, **kwargs: Any) -> list[bytes]:
        connection = Connection(makeFactory(RecordingBackend(), **kwargs))
        return multilineBody(connection.command(b"CAPA"))

    def test_plaintextAllowed(self) -> None:
        """
        With plain-text logins allowed and no TLS, USER and SASL PLAIN are
        offered and STLS is not.
        """
        self.assertEqual(
            self.capa()[:-1],
            [
                b"TOP",
                b"UIDL",
                b"RESP-CODES",
                b"AUTH-RESP-CODE",
                b"PIPELINING",
                b"USER",
                b"SASL PLAIN",
            ],
        )
        self.assertTrue(self.capa()[-1].startswith(b"IMPLEMENTATION gomail_twisted-"))

    def test_tlsOffered(self) -> None:
        """
        With TLS configured and plain text not allowed, STLS is offered and
        no password login is, until TLS is on.
        """
        caps = self.capa(tls=object(), allowPlaintextAuth=False)
        self.assertIn(b"STLS", caps)
        self.assertNotIn(b"USER", caps)
        self.assertNotIn(b"SASL PLAIN", caps)

    def test_afterLogin(self) -> None:
        """
        Once logged in, neither logins nor STLS are offered.
        """
        connection = Connection(makeFactory(RecordingBackend(), tls=object()))
        connection.login()
        caps = multilineBody(connection.command(b"CAPA"))
        self.assertIn(b"TOP", caps)
        for absent in (b"USER", b"SASL PLAIN", b"STLS"):
            self.assertNotIn(absent, caps)

    def test_plaintextRefused(self) -> None:
        """
        Without TLS and without C{allowPlaintextAuth}, USER, PASS and AUTH
        are refused before any hook sees a password.
        """
        backend = RecordingBackend()
        connection = Connection(makeFactory(backend, allowPlaintextAuth=False))
        for line in (
            b"USER alice",
            b"PASS x",
            b"AUTH PLAIN " + plain("alice", PASSWORD),
        ):
            self.assertEqual(
                connection.command(line), b"-ERR Use STLS before logging in\r\n"
            )
        self.assertEqual(backend.calls, [])


class LoginTests(SynchronousTestCase):
    """
    USER/PASS, AUTH PLAIN and APOP.
    """

    def setUp(self) -> None:
        self.backend = RecordingBackend()
        self.connection = Connection(makeFactory(self.backend))

    def test_userPass(self) -> None:
        """
        USER then PASS logs in; the reply counts the maildrop, and the hook
        got the whole password, spaces included.
        """
        c = self.connection
        self.assertEqual(c.command(b"USER alice"), b"+OK Send your password\r\n")
        size = sum(len(m) for m in MESSAGES)
        self.assertEqual(
            c.command(b"PASS " + PASSWORD.encode()),
            b"+OK Logged in, 3 messages (%d octets)\r\n" % size,
        )
        credentials = self.backend.calls[0][1]
        self.assertEqual(
            (credentials.mechanism, credentials.login, credentials.password),
            ("USER", "alice", PASSWORD),
        )

    def test_wrongPassword(self) -> None:
        """
        A wrong password is C{-ERR [AUTH]}, reported to C{loginFailed}, and
        USER must be sent again.
        """
        c = self.connection
        c.command(b"USER alice")
        self.assertEqual(
            c.command(b"PASS wrong"), b"-ERR [AUTH] Authentication failed\r\n"
        )
        self.assertEqual(
            c.command(b"PASS " + PASSWORD.encode()), b"-ERR Send USER first\r\n"
        )
        [failure] = self.backend.failures
        self.assertEqual((failure.mechanism, failure.login), ("USER", "alice"))
        self.assertEqual(failure.reply, replies.AUTH_FAILED)
        self.assertEqual(failure.connection.peerHost, "192.0.2.1")

    def test_passFirst(self) -> None:
        """
        PASS without USER is refused without calling the hook.
        """
        self.assertEqual(
            self.connection.command(b"PASS x"), b"-ERR Send USER first\r\n"
        )
        self.assertEqual(self.backend.calls, [])

    def test_authPlainInitialResponse(self) -> None:
        """
        AUTH PLAIN with an initial response (RFC 5034) logs in.
        """
        reply = self.connection.command(b"AUTH PLAIN " + plain("alice", PASSWORD))
        self.assertTrue(reply.startswith(b"+OK Logged in, 3 messages"))
        self.assertEqual(self.backend.calls[0][1].mechanism, "PLAIN")

    def test_authPlainChallenge(self) -> None:
        """
        AUTH PLAIN alone gets an empty challenge, then the response logs in.
        """
        c = self.connection
        self.assertEqual(c.command(b"AUTH PLAIN"), b"+ \r\n")
        self.assertTrue(
            c.command(plain("alice", PASSWORD)).startswith(b"+OK Logged in")
        )

    def test_authCancelled(self) -> None:
        """
        C{*} cancels the exchange; the session stays in AUTHORIZATION.
        """
        c = self.connection
        c.command(b"AUTH PLAIN")
        self.assertEqual(c.command(b"*"), b"-ERR Authentication cancelled\r\n")
        self.assertEqual(c.command(b"STAT"), b"-ERR Log in first\r\n")

    def test_authMechanisms(self) -> None:
        """
        AUTH without a mechanism lists them; an unknown one is refused.
        """
        c = self.connection
        self.assertEqual(c.command(b"AUTH"), b"+OK Mechanisms follow\r\nPLAIN\r\n.\r\n")
        self.assertEqual(
            c.command(b"AUTH CRAM-MD5"),
            b"-ERR Unrecognized authentication mechanism\r\n",
        )

    def test_authWrongPassword(self) -> None:
        """
        A wrong AUTH password is C{-ERR [AUTH]} and reported.
        """
        reply = self.connection.command(b"AUTH PLAIN " + plain("alice", "nope"))
        self.assertEqual(reply, b"-ERR [AUTH] Authentication failed\r\n")
        self.assertEqual(self.backend.failures[0].mechanism, "PLAIN")

    def test_apopNotOffered(self) -> None:
        """
        Without an APOP hook, APOP is not supported.
        """
        reply = self.connection.command(b"APOP alice " + b"0" * 32)
        self.assertEqual(reply, b"-ERR Command not supported\r\n")

    def test_apop(self) -> None:
        """
        APOP passes the greeting's timestamp and the digest to the hook.
        """
        backend = RecordingBackend(apop=True)
        c = Connection(makeFactory(backend, allowPlaintextAuth=False))
        timestamp = c.greeting.split(b" ")[-1].strip().decode()
        digest = hashlib.md5((timestamp + PASSWORD).encode()).hexdigest()
        self.assertTrue(
            c.command(b"APOP alice " + digest.encode()).startswith(b"+OK Logged in")
        )
        self.assertEqual(backend.calls[0], ("apop", ("alice", timestamp, digest)))

    def test_apopWrong(self) -> None:
        """
        A wrong APOP digest is C{-ERR [AUTH]} and reported; a malformed one
        is a syntax error.
        """
        backend = RecordingBackend(apop=True)
        c = Connection(makeFactory(backend))
        self.assertEqual(
            c.command(b"APOP alice " + b"0" * 32), replies.AUTH_FAILED.format()
        )
        self.assertEqual(backend.failures[0].mechanism, "APOP")
        self.assertEqual(
            c.command(b"APOP alice xyz"), b"-ERR Syntax: APOP name digest\r\n"
        )

    def test_noSecondLogin(self) -> None:
        """
        Once logged in, USER, PASS, APOP and AUTH are refused.
        """
        c = self.connection
        c.login()
        for line in (b"USER bob", b"PASS x", b"APOP bob " + b"0" * 32, b"AUTH PLAIN"):
            self.assertEqual(c.command(line), b"-ERR Already logged in\r\n")
        self.assertEqual(self.backend.names(), ["login"])

    def test_hookCrash(self) -> None:
        """
        A login hook that raises something else is logged and answered
        C{-ERR [SYS/TEMP]}, without its text; the failure is reported.
        """
        self.backend.fail["login"] = RuntimeError("database password is hunter2")
        c = self.connection
        c.command(b"USER alice")
        reply = c.command(b"PASS x")
        self.assertEqual(reply, replies.TEMPORARY_FAILURE.format())
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertEqual(self.backend.failures[0].reply, replies.TEMPORARY_FAILURE)

    def test_notAMaildrop(self) -> None:
        """
        A login hook that returns something else than a maildrop gets
        C{-ERR [SYS/TEMP]}, and the session stays logged out.
        """
        c = Connection(makeFactory(FunctionBackend(login=lambda info, creds: "oops")))
        c.command(b"USER a")
        self.assertEqual(c.command(b"PASS b"), replies.TEMPORARY_FAILURE.format())
        self.assertEqual(c.command(b"STAT"), b"-ERR Log in first\r\n")


class TransactionTests(SynchronousTestCase):
    """
    The TRANSACTION state (RFC 1939 5) and UPDATE (RFC 1939 6).
    """

    def setUp(self) -> None:
        self.backend = RecordingBackend()
        self.connection = Connection(makeFactory(self.backend))
        self.connection.login()
        self.maildrop = self.backend.maildrops[0]

    def test_stat(self) -> None:
        """
        STAT counts the messages not deleted and their sizes.
        """
        c = self.connection
        total = sum(len(m) for m in MESSAGES)
        self.assertEqual(c.command(b"STAT"), b"+OK 3 %d\r\n" % total)
        c.command(b"DELE 2")
        self.assertEqual(
            c.command(b"STAT"), b"+OK 2 %d\r\n" % (total - len(MESSAGES[1]))
        )

    def test_list(self) -> None:
        """
        LIST gives each message's number and size; LIST n one of them.
        """
        c = self.connection
        self.assertEqual(
            multilineBody(c.command(b"LIST")),
            [b"%d %d" % (i + 1, len(m)) for i, m in enumerate(MESSAGES)],
        )
        self.assertEqual(c.command(b"LIST 2"), b"+OK 2 %d\r\n" % len(MESSAGES[1]))
        c.command(b"DELE 1")
        self.assertEqual(
            multilineBody(c.command(b"LIST")),
            [b"2 %d" % len(MESSAGES[1]), b"3 %d" % len(MESSAGES[2])],
        )

    def test_uidl(self) -> None:
        """
        UIDL gives each message's unique-id; UIDL n one of them.
        """
        c = self.connection
        self.assertEqual(multilineBody(c.command(b"UIDL")), [b"1 1", b"2 2", b"3 3"])
        self.assertEqual(c.command(b"UIDL 3"), b"+OK 3 3\r\n")

    def test_retr(self) -> None:
        """
        RETR sends the message's size, the message dot-stuffed, and the
        terminator.
        """
        reply = self.connection.command(b"RETR 1")
        self.assertEqual(
            reply,
            b"+OK %d octets\r\n" % len(MESSAGES[0])
            + MESSAGES[0].replace(b"\r\n.", b"\r\n..")
            + b".\r\n",
        )
        self.assertEqual(
            self.connection.command(b"RETR 3"),
            b"+OK %d octets\r\n." % len(MESSAGES[2]) + MESSAGES[2] + b".\r\n",
        )

    def test_top(self) -> None:
        """
        TOP sends the headers, the empty line and the first n body lines.
        """
        c = self.connection
        self.assertEqual(
            c.command(b"TOP 2 1"),
            b"+OK Top of message follows\r\nSubject: two\r\n\r\nline 1\r\n.\r\n",
        )
        self.assertEqual(
            c.command(b"TOP 2 0"),
            b"+OK Top of message follows\r\nSubject: two\r\n\r\n.\r\n",
        )

    def test_deleAndRset(self) -> None:
        """
        DELE only marks: the message is refused afterwards, RSET unmarks it,
        and nothing is committed.
        """
        c = self.connection
        self.assertEqual(c.command(b"DELE 1"), b"+OK Message 1 deleted\r\n")
        self.assertEqual(c.command(b"DELE 1"), b"-ERR Message already deleted\r\n")
        self.assertEqual(c.command(b"RETR 1"), b"-ERR Message already deleted\r\n")
        total = sum(len(m) for m in MESSAGES)
        self.assertEqual(
            c.command(b"RSET"), b"+OK Maildrop has 3 messages (%d octets)\r\n" % total
        )
        self.assertTrue(c.command(b"RETR 1").startswith(b"+OK"))
        self.assertEqual(self.maildrop.committed, [])

    def test_noop(self) -> None:
        """
        NOOP answers C{+OK}.
        """
        self.assertEqual(self.connection.command(b"NOOP"), b"+OK\r\n")

    def test_quitCommits(self) -> None:
        """
        QUIT commits the deleted messages' indexes, in order, then closes
        the maildrop, logs out and closes the connection.
        """
        c = self.connection
        c.command(b"DELE 3")
        c.command(b"DELE 1")
        self.assertEqual(c.command(b"QUIT"), b"+OK Bye, 2 messages deleted\r\n")
        self.assertEqual(self.maildrop.committed, [(0, 2)])
        self.assertTrue(self.maildrop.closed)
        self.assertTrue(c.closing)
        c.lose()
        self.assertEqual(self.backend.names()[-1], "logout")

    def test_quitWithoutDeletions(self) -> None:
        """
        QUIT with nothing deleted commits nothing.
        """
        c = self.connection
        self.assertEqual(c.command(b"QUIT"), b"+OK Bye\r\n")
        self.assertEqual(self.maildrop.committed, [])
        self.assertTrue(self.maildrop.closed)

    def test_quitBeforeLogin(self) -> None:
        """
        QUIT in AUTHORIZATION says goodbye and closes.
        """
        c = Connection(makeFactory(self.backend))
        self.assertEqual(c.command(b"QUIT"), b"+OK Bye\r\n")
        self.assertTrue(c.closing)

    def test_commitFails(self) -> None:
        """
        A commit that fails is C{-ERR [SYS/TEMP]} saying nothing was
        deleted; the maildrop is still closed.
        """
        c = self.connection
        self.maildrop.commit = lambda deleted, retrieved: fail(RuntimeError("disk"))  # type: ignore[method-assign]
        c.command(b"DELE 1")
        self.assertEqual(c.command(b"QUIT"), replies.COMMIT_FAILED.format())
        self.assertIn(b"none were deleted", replies.COMMIT_FAILED.format())
        self.assertTrue(self.maildrop.closed)
        self.assertTrue(c.closing)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_commitPending(self) -> None:
        """
        While a commit is pending (UPDATE) nothing else is read; the reply
        comes once it is done.
        """
        c = self.connection
        done: Deferred[None] = Deferred()
        self.maildrop.commit = lambda deleted, retrieved: done  # type: ignore[method-assign]
        c.command(b"DELE 1")
        self.assertEqual(c.send(b"QUIT\r\nNOOP\r\n"), b"")
        self.assertFalse(self.maildrop.closed)
        done.callback(None)
        self.assertEqual(c.read(), b"+OK Bye, 1 message deleted\r\n")
        self.assertTrue(self.maildrop.closed)

    def test_droppedDuringCommit(self) -> None:
        """
        A connection lost during the commit lets it finish, then closes the
        maildrop and logs out.
        """
        c = self.connection
        done: Deferred[None] = Deferred()
        self.maildrop.commit = lambda deleted, retrieved: done  # type: ignore[method-assign]
        c.command(b"DELE 1")
        c.command(b"QUIT")
        c.lose()
        self.assertFalse(self.maildrop.closed)
        self.assertNotIn("logout", self.backend.names())
        done.callback(None)
        self.assertTrue(self.maildrop.closed)
        self.assertEqual(self.backend.names()[-1], "logout")

    def test_droppedConnectionCommitsNothing(self) -> None:
        """
        A connection lost in TRANSACTION deletes nothing and closes the
        maildrop.
        """
        c = self.connection
        c.command(b"DELE 1")
        c.lose()
        self.assertEqual(self.maildrop.committed, [])
        self.assertTrue(self.maildrop.closed)

    def test_retrieveFails(self) -> None:
        """
        A retrieve hook that raises a reply has it sent; another exception
        is C{-ERR [SYS/TEMP]}; the session goes on.
        """
        c = self.connection

        def retrieve(index: int) -> bytes:
            if index == 0:
                raise POP3Reply(False, None, "Message vanished")
            raise OSError("disk")

        self.maildrop.retrieve = retrieve  # type: ignore[method-assign]
        self.assertEqual(c.command(b"RETR 1"), b"-ERR Message vanished\r\n")
        self.assertEqual(c.command(b"TOP 2 1"), replies.TEMPORARY_FAILURE.format())
        self.assertEqual(len(self.flushLoggedErrors(OSError)), 1)
        self.assertEqual(c.command(b"NOOP"), b"+OK\r\n")


class PipeliningTests(SynchronousTestCase):
    """
    Commands sent together are answered in order, even when hooks answer
    later (RFC 2449 6.6).
    """

    def test_pendingLogin(self) -> None:
        """
        While the login hook is pending, later commands wait; they are
        answered in order once it fires.
        """
        backend = RecordingBackend()
        backend.hold.add("login")
        c = Connection(makeFactory(backend))
        out = c.send(
            b"USER alice\r\nPASS "
            + PASSWORD.encode()
            + b"\r\nSTAT\r\nLIST 1\r\nQUIT\r\n"
        )
        self.assertEqual(out, b"+OK Send your password\r\n")
        backend.held[0].callback(None)
        lines = c.read().split(b"\r\n")
        self.assertTrue(lines[0].startswith(b"+OK Logged in"))
        self.assertTrue(lines[1].startswith(b"+OK 3 "))
        self.assertEqual(lines[2], b"+OK 1 %d" % len(MESSAGES[0]))
        self.assertEqual(lines[3], b"+OK Bye")

    def test_pendingRetrieve(self) -> None:
        """
        A RETR whose message comes later keeps the commands after it
        waiting.
        """
        backend = RecordingBackend()
        c = Connection(makeFactory(backend))
        c.login()
        maildrop = backend.maildrops[0]
        later: Deferred[bytes] = Deferred()
        maildrop.retrieve = lambda index: later  # type: ignore[method-assign]
        self.assertEqual(c.send(b"RETR 1\r\nNOOP\r\n"), b"")
        later.callback(b"x\r\n")
        self.assertEqual(c.read(), b"+OK 3 octets\r\nx\r\n.\r\n+OK\r\n")


class SlowTransport(StringTransport):
    """
    A transport with a high-water mark, as a TCP transport has: past it the
    producer is paused until the test drains the buffer.

    @ivar most: the most bytes that were ever waiting in it.
    """

    def __init__(self, highWater: int) -> None:
        super().__init__(hostAddress=LOCAL, peerAddress=PEER)
        self.highWater = highWater
        self.most = 0
        self.paused = False

    def write(self, data: bytes) -> None:
        super().write(data)
        waiting = len(self.io.getvalue())
        self.most = max(self.most, waiting)
        if waiting > self.highWater and not self.paused and self.producer:
            self.paused = True
            self.producer.pauseProducing()

    def drain(self) -> bytes:
        data = self.value()
        self.clear()
        if self.paused:
            self.paused = False
            self.producer.resumeProducing()
        return data


class StreamingTests(SynchronousTestCase):
    """
    RETR writes through the transport's backpressure, holding one message.
    """

    chunk = 1024
    highWater = 4096

    def setUp(self) -> None:
        self.big = [
            b"Subject: %d\r\n\r\n" % i + b".dotted line of text\r\n" * 2000
            for i in range(3)
        ]
        self.backend = RecordingBackend(messages=self.big)
        self.clock = Clock()
        self.factory = makeFactory(
            self.backend, chunkSize=self.chunk, reactor=self.clock, timeout=600
        )
        self.transport = SlowTransport(self.highWater)
        self.connection = Connection(self.factory, self.transport)
        self.connection.login()
        self.retrieved: list[int] = []
        maildrop = self.backend.maildrops[0]
        original = maildrop.retrieve

        def retrieve(index: int) -> bytes:
            self.retrieved.append(index)
            return original(index)

        maildrop.retrieve = retrieve  # type: ignore[method-assign]

    def drainAll(self) -> bytes:
        out = []
        for _ in range(10000):
            data = self.transport.drain()
            if not data:
                break
            out.append(data)
        return b"".join(out)

    def test_backpressure(self) -> None:
        """
        Pipelined RETRs are sent one after the other, each only as fast as
        the transport drains: the transport never holds more than its
        high-water mark and a chunk, and the next message is not read
        before the previous one is sent.
        """
        self.connection.protocol.dataReceived(b"RETR 1\r\nRETR 2\r\nRETR 3\r\nNOOP\r\n")
        self.assertEqual(self.retrieved, [0])
        out = self.drainAll()
        self.assertEqual(self.retrieved, [0, 1, 2])
        self.assertLessEqual(self.transport.most, self.highWater + self.chunk + 100)
        expected = b"".join(
            b"+OK %d octets\r\n" % len(m) + m.replace(b"\r\n.", b"\r\n..") + b".\r\n"
            for m in self.big
        )
        self.assertEqual(out, expected + b"+OK\r\n")

    def test_heldMessagesAtMostOne(self) -> None:
        """
        While a message waits on a slow reader, the next one has not been
        retrieved.
        """
        self.connection.protocol.dataReceived(b"RETR 1\r\nRETR 2\r\n")
        for _ in range(2):
            self.transport.drain()
            self.assertEqual(self.retrieved, [0])

    def test_slowReaderKept(self) -> None:
        """
        A reader that keeps draining, however slowly, is never timed out,
        even when the whole message takes longer than the idle timeout.
        """
        self.connection.protocol.dataReceived(b"RETR 1\r\n")
        for _ in range(4):
            self.clock.advance(500)
            self.assertTrue(self.transport.drain())
        self.assertEqual(self.retrieved, [0])
        self.assertFalse(self.transport.disconnecting)
        self.assertFalse(
            self.transport.aborted if hasattr(self.transport, "aborted") else False
        )
        self.drainAll()
        self.assertEqual(self.connection.command(b"NOOP"), b"+OK\r\n")

    def test_stalledReaderDropped(self) -> None:
        """
        A reader that stops reading mid-message is dropped after the idle
        timeout, without a word in the middle of the message.
        """
        aborted = []
        self.transport.abortConnection = lambda: aborted.append(True)  # type: ignore[method-assign]
        self.connection.protocol.dataReceived(b"RETR 1\r\n")
        before = self.transport.value()
        self.clock.advance(601)
        self.assertEqual(aborted, [True])
        self.assertEqual(self.transport.value(), before)


class ShutdownTests(SynchronousTestCase):
    """
    L{POP3ServerFactory.shutdown}.
    """

    def test_idleConnectionTold(self) -> None:
        """
        A connection between commands is told and closed at once.
        """
        factory = makeFactory(RecordingBackend())
        c = Connection(factory)
        d = factory.shutdown()
        self.assertEqual(c.read(), replies.SHUTTING_DOWN.format())
        self.assertTrue(c.closing)
        c.lose()
        self.assertIsNone(self.successResultOf(d))

    def test_commitFinishesFirst(self) -> None:
        """
        A QUIT being committed finishes and is answered before the
        connection closes.
        """
        backend = RecordingBackend()
        factory = makeFactory(backend)
        c = Connection(factory)
        c.login()
        done: Deferred[None] = Deferred()
        backend.maildrops[0].commit = lambda deleted, retrieved: done  # type: ignore[method-assign]
        c.command(b"DELE 1")
        c.command(b"QUIT")
        factory.shutdown()
        self.assertFalse(c.closing)
        done.callback(None)
        self.assertEqual(c.read(), b"+OK Bye, 1 message deleted\r\n")
        self.assertTrue(c.closing)

    def test_newConnectionsRefused(self) -> None:
        """
        After shutdown, a new connection is refused with C{[SYS/TEMP]}.
        """
        factory = makeFactory(RecordingBackend())
        factory.shutdown()
        c = Connection(factory)
        self.assertEqual(c.greeting, replies.SHUTTING_DOWN.format())


class FactoryTests(SynchronousTestCase):
    """
    L{POP3ServerFactory}'s arguments.
    """

    def test_defaults(self) -> None:
        """
        The idle timeout is 10 minutes (RFC 1939 3) and the command line
        255 octets (RFC 2449 4).
        """
        factory = POP3ServerFactory(RecordingBackend().backend, reactor=Clock())
        self.assertEqual(factory.timeout, 600)
        self.assertEqual(factory.maxLineLength, 255)
        self.assertFalse(factory.allowPlaintextAuth)
        self.assertIsNone(factory.tls)
        self.assertTrue(factory.hostname)

    def test_badLimits(self) -> None:
        """
        A line limit or chunk size out of range is refused.
        """
        backend = RecordingBackend().backend
        self.assertRaises(ValueError, POP3ServerFactory, backend, maxLineLength=2)
        self.assertRaises(ValueError, POP3ServerFactory, backend, chunkSize=0)
