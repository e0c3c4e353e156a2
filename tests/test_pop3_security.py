# -*- test-case-name: tests.test_pop3_security -*-
"""
Bad input against the POP3 server: each case gets a clear C{-ERR} (and a
clean close where needed), nothing is deleted that should not be, no
password reaches a hook it should not, and the server serves the next
connection normally.
"""

from __future__ import annotations

import socket
import ssl
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.interfaces import IListeningPort
from twisted.internet.task import Clock
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import SynchronousTestCase, TestCase

from gomail_twisted.pop3 import POP3ServerFactory, replies
from gomail_twisted.pop3._wire import MAX_AUTH_LINE
from gomail_twisted.tls import selfSignedCertificate, serverContextFactory
from tests.test_pop3_server import (
    MESSAGES,
    PASSWORD,
    Connection,
    RecordingBackend,
    SlowTransport,
    makeFactory,
    plain,
)

TIMEOUT = 10.0


class BadInputTests(SynchronousTestCase):
    """
    Each case on its own connection, then a normal session on a new one.
    """

    def setUp(self) -> None:
        self.backend = RecordingBackend()
        self.clock = Clock()
        self.factory = makeFactory(self.backend, reactor=self.clock, maxErrors=5)

    def tearDown(self) -> None:
        c = Connection(self.factory)
        self.assertTrue(c.login().startswith(b"+OK Logged in"))
        self.assertTrue(c.command(b"STAT").startswith(b"+OK 3 "))

    def loggedIn(self) -> Connection:
        c = Connection(self.factory)
        c.login()
        return c

    def test_overlongCommand(self) -> None:
        """
        A command line past 255 octets is refused; the connection goes on.
        """
        c = Connection(self.factory)
        self.assertEqual(
            c.command(b"USER " + b"a" * 300), replies.LINE_TOO_LONG.format()
        )
        self.assertFalse(c.closing)
        self.assertEqual(self.backend.calls, [])

    def test_longAuthLine(self) -> None:
        """
        An AUTH line may pass 255 octets: a long password is checked, not
        refused as too long.
        """
        c = Connection(self.factory)
        reply = c.command(b"AUTH PLAIN " + plain("alice", "p" * 2000))
        self.assertEqual(reply, replies.AUTH_FAILED.format())

    def test_endlessLine(self) -> None:
        """
        Bytes without a line end past the hard bound close the connection
        after C{-ERR}; nothing is buffered beyond it.
        """
        c = Connection(self.factory)
        out = c.send(b"A" * (MAX_AUTH_LINE + 10))
        self.assertEqual(out, replies.LINE_TOO_LONG.format())
        self.assertTrue(c.closing)

    def test_unknownCommands(self) -> None:
        """
        Unknown commands, binary garbage and empty lines are C{-ERR Unknown
        command}.
        """
        c = Connection(self.factory)
        for line in (b"XYZZY", b"\x00\xff\xfe", b"", b"RETR1"):
            self.assertEqual(c.command(line), replies.UNKNOWN_COMMAND.format(), line)

    def test_wrongState(self) -> None:
        """
        Transaction commands before login, and login commands after it, are
        refused and change nothing.
        """
        c = Connection(self.factory)
        for line in (b"STAT", b"RETR 1", b"DELE 1", b"NOOP"):
            self.assertEqual(c.command(line), replies.NOT_AUTHENTICATED.format())
        c = self.loggedIn()
        self.assertEqual(c.command(b"STLS"), replies.BAD_SEQUENCE.format())
        self.assertEqual(c.command(b"USER bob"), replies.ALREADY_AUTHENTICATED.format())

    def test_badMessageNumbers(self) -> None:
        """
        Zero, negative, signed, non-numeric, overlong, out-of-range and
        deleted message numbers each get a clear C{-ERR}.
        """
        c = self.loggedIn()
        c.command(b"DELE 2")
        cases = [
            (b"RETR 0", replies.NO_SUCH_MESSAGE),
            (b"RETR 4", replies.NO_SUCH_MESSAGE),
            (b"LIST 9999999999", replies.NO_SUCH_MESSAGE),
            (b"RETR -1", replies.BAD_NUMBER),
            (b"UIDL +1", replies.BAD_NUMBER),
            (b"RETR abc", replies.BAD_NUMBER),
            (b"RETR 1x", replies.BAD_NUMBER),
            (b"DELE 99999999999", replies.BAD_NUMBER),
            (b"RETR 2", replies.MESSAGE_DELETED),
            (b"LIST 2", replies.MESSAGE_DELETED),
            (
                b"RETR",
                replies.SYNTAX_ERROR.withText("Wrong number of arguments to RETR"),
            ),
        ]
        for i, (line, expected) in enumerate(cases):
            if i and i % 4 == 0:
                # Stay under the error limit.
                c = self.loggedIn()
                c.command(b"DELE 2")
            self.assertEqual(c.command(line), expected.format(), line)
        self.assertEqual(self.backend.maildrops[0].committed, [])

    def test_topLineCounts(self) -> None:
        """
        TOP with a negative or malformed count is refused; a huge one sends
        the whole message.
        """
        c = self.loggedIn()
        invalid = replies.SYNTAX_ERROR.withText("Invalid line count").format()
        self.assertEqual(c.command(b"TOP 1 -1"), invalid)
        self.assertEqual(c.command(b"TOP 1 1e3"), invalid)
        self.assertEqual(c.command(b"TOP 1 " + b"9" * 30), invalid)
        whole = c.command(b"TOP 2 9999999999")
        self.assertEqual(
            whole, b"+OK Top of message follows\r\n" + MESSAGES[1] + b".\r\n"
        )

    def test_malformedBase64(self) -> None:
        """
        AUTH responses that are not base64, or not PLAIN's form, get C{-ERR}
        and reach no hook.
        """
        c = Connection(self.factory)
        self.assertTrue(c.command(b"AUTH PLAIN !!!").startswith(b"-ERR Cannot decode"))
        c.command(b"AUTH PLAIN")
        self.assertTrue(c.command(b"%%%").startswith(b"-ERR Cannot decode"))
        reply = c.command(b"AUTH PLAIN " + b"bm8gbnVscw==")  # "no nuls"
        self.assertTrue(reply.startswith(b"-ERR Cannot decode"))
        self.assertEqual(self.backend.calls, [])

    def test_wrongPasswordsReported(self) -> None:
        """
        Every failed login is reported to the hook, and the passwords are
        in no reply.
        """
        c = Connection(self.factory)
        for password in (b"one", b"two"):
            c.command(b"USER alice")
            reply = c.command(b"PASS " + password)
            self.assertEqual(reply, replies.AUTH_FAILED.format())
        reply = c.command(b"AUTH PLAIN " + plain("alice", "three"))
        self.assertEqual(reply, replies.AUTH_FAILED.format())
        self.assertEqual(
            [(f.mechanism, f.login) for f in self.backend.failures],
            [("USER", "alice"), ("USER", "alice"), ("PLAIN", "alice")],
        )

    def test_tooManyErrors(self) -> None:
        """
        At the error limit the client is told and the connection closed.
        """
        c = Connection(self.factory)
        out = b"".join(c.command(b"BAD") for _ in range(5))
        self.assertTrue(out.endswith(replies.TOO_MANY_ERRORS.format()), out)
        self.assertTrue(c.closing)
        self.assertEqual(c.command(b"CAPA"), b"")

    def test_missingMessagesDoNotCount(self) -> None:
        """
        Asking for a message that is not there, or was deleted, is answered
        -ERR but does not count toward the error limit: a client working
        through its maildrop meets it in normal use.
        """
        c = self.loggedIn()
        c.command(b"DELE 1")
        for _ in range(12):
            self.assertEqual(c.command(b"LIST 99"), b"-ERR No such message\r\n")
            self.assertEqual(c.command(b"RETR 1"), b"-ERR Message already deleted\r\n")
        self.assertFalse(c.closing)
        self.assertEqual(c.command(b"NOOP"), b"+OK\r\n")

    def test_failedLoginsCount(self) -> None:
        """
        Failed logins count toward the error limit: one connection cannot
        guess passwords for ever.
        """
        c = Connection(self.factory)
        for _ in range(5):
            c.command(b"USER alice")
            c.command(b"PASS guess")
        self.assertTrue(c.closing)
        self.assertEqual(len(self.backend.failures), 5)

    def test_idleTimeout(self) -> None:
        """
        A client silent for the timeout (10 minutes by default) is told and
        closed; one that speaks in time is not.
        """
        c = Connection(self.factory)
        self.clock.advance(599)
        self.assertEqual(c.command(b"CAPA")[:3], b"+OK")
        self.clock.advance(599)
        self.assertFalse(c.closing)
        self.clock.advance(2)
        self.assertEqual(c.read(), replies.IDLE_TIMEOUT.format())
        self.assertTrue(c.closing)

    def test_idleTimeoutConfigurable(self) -> None:
        """
        The timeout is the factory's C{timeout}.
        """
        factory = makeFactory(self.backend, reactor=self.clock, timeout=30)
        c = Connection(factory)
        self.clock.advance(31)
        self.assertTrue(c.closing)

    def test_vanishMidRetr(self) -> None:
        """
        A peer that vanishes while a message is being sent deletes nothing,
        and its maildrop is closed.
        """
        transport = SlowTransport(highWater=1024)
        backend = RecordingBackend(messages=[b"x" * 100000 + b"\r\n", b"y\r\n"])
        factory = makeFactory(backend, reactor=self.clock, chunkSize=512)
        c = Connection(factory, transport)
        c.login()
        c.command(b"DELE 2")
        c.protocol.dataReceived(b"RETR 1\r\nQUIT\r\n")
        self.assertTrue(transport.paused)
        c.lose()
        maildrop = backend.maildrops[0]
        self.assertEqual(maildrop.committed, [])
        self.assertTrue(maildrop.closed)

    def test_stlsWithoutTLS(self) -> None:
        """
        STLS on a server without TLS is not supported.
        """
        c = Connection(self.factory)
        self.assertEqual(c.command(b"STLS"), replies.NOT_SUPPORTED.format())


class RawClient:
    """
    A blocking client that sends exactly the bytes it is given.
    """

    def __init__(self, port: int) -> None:
        self.sock: socket.socket | ssl.SSLSocket = socket.create_connection(
            ("127.0.0.1", port), timeout=TIMEOUT
        )
        self.buffer = b""

    def line(self) -> bytes:
        for _ in range(10000):
            if b"\r\n" in self.buffer:
                line, self.buffer = self.buffer.split(b"\r\n", 1)
                return line
            data = self.sock.recv(65536)
            if not data:
                return b"(closed)"
            self.buffer += data
        raise AssertionError("no line end")

    def multiline(self) -> list[bytes]:
        lines = []
        for _ in range(1000):
            line = self.line()
            if line == b".":
                return lines
            lines.append(line)
        raise AssertionError("no end of response")

    def command(self, line: bytes) -> bytes:
        self.sock.sendall(line + b"\r\n")
        return self.line()

    def close(self) -> None:
        self.sock.close()


class STLSTests(TestCase):
    """
    STLS over a real loopback socket (RFC 2595).
    """

    timeout = 60

    def setUp(self) -> Deferred[None]:
        self.backend = RecordingBackend()
        key, cert = selfSignedCertificate("127.0.0.1")
        self.cert = cert
        self.factory = POP3ServerFactory(
            self.backend.backend,
            hostname="pop.test",
            tls=serverContextFactory(key, cert),
        )

        def listening(port: IListeningPort) -> None:
            self.port = port
            self.addCleanup(port.stopListening)

        endpoint = TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1")
        return endpoint.listen(self.factory).addCallback(listening)

    def tearDown(self) -> Deferred[None]:
        return self.factory.shutdown()

    @inlineCallbacks
    def test_pipelinedBytesDiscarded(self) -> Any:
        """
        Commands sent with STLS in one packet are discarded, never run
        inside TLS; after the handshake the session starts over, and
        passwords are accepted.
        """
        cert = self.cert
        port = self.port.getHost().port  # type: ignore[attr-defined]

        def scenario() -> list[Any]:
            client = RawClient(port)
            try:
                out: list[Any] = [client.line()[:3]]
                out.append(client.command(b"USER alice"))
                client.sock.sendall(b"STLS\r\nUSER alice\r\n")
                out.append(client.line())
                context = ssl.create_default_context(cadata=cert.decode())
                client.sock = context.wrap_socket(
                    client.sock, server_hostname="127.0.0.1"
                )
                client.buffer = b""
                out.append(client.command(b"PASS " + PASSWORD.encode()))
                client.sock.sendall(b"CAPA\r\n")
                out.append(client.multiline())
                out.append(client.command(b"USER alice"))
                out.append(client.command(b"PASS " + PASSWORD.encode())[:13])
                out.append(client.command(b"QUIT"))
                return out
            finally:
                client.close()

        out = yield deferToThread(scenario)
        self.assertEqual(out[0], b"+OK")
        self.assertEqual(out[1], replies.TLS_REQUIRED.format()[:-2])
        self.assertEqual(out[2], b"+OK Begin TLS negotiation")
        self.assertEqual(out[3], b"-ERR Send USER first")
        caps = out[4]
        self.assertIn(b"USER", caps)
        self.assertIn(b"SASL PLAIN", caps)
        self.assertNotIn(b"STLS", caps)
        self.assertEqual(out[5], b"+OK Send your password")
        self.assertEqual(out[6], b"+OK Logged in")
        self.assertEqual(out[7], b"+OK Bye")
        # The first session ended at STLS, before any login.
        self.assertEqual(self.backend.names()[:2], ["logout", "login"])
