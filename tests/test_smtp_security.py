"""
Bad input against the real SMTP server on a loopback socket: each case gets
a clear reply (and a clean close where needed), nothing is delivered that
should not be, and the server serves the next connection normally.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.interfaces import IListeningPort
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import SynchronousTestCase, TestCase

from gomail_twisted.smtp import SMTPServerFactory
from gomail_twisted.tls import selfSignedCertificate, serverContextFactory
from tests._smtphelpers import RecordingBackend, codes, connect, makeFactory, take

TIMEOUT = 10.0


class RawClient:
    """
    A blocking SMTP client that sends exactly the bytes it is given.
    """

    def __init__(self, port: int) -> None:
        self.sock: socket.socket | ssl.SSLSocket = socket.create_connection(
            ("127.0.0.1", port), timeout=TIMEOUT
        )
        self.buffer = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def reply(self) -> str:
        """
        Read one whole reply; return its last line's code and enhanced code
        as L{codes} does, or C{"closed"} at end of stream.
        """
        while True:
            while b"\r\n" in self.buffer:
                line, self.buffer = self.buffer.split(b"\r\n", 1)
                if line[3:4] != b"-":
                    return codes(line + b"\r\n")[0]
            data = self.sock.recv(65536)
            if not data:
                return "closed"
            self.buffer += data

    def replies(self, n: int) -> list[str]:
        return [self.reply() for _ in range(n)]

    def command(self, line: bytes) -> str:
        self.send(line + b"\r\n")
        return self.reply()

    def startData(self, helo: bytes = b"x.test") -> list[str]:
        """
        EHLO, MAIL, RCPT and DATA, each waiting for its reply.
        """
        return [
            self.command(b"EHLO " + helo),
            self.command(b"MAIL FROM:<a@example.com>"),
            self.command(b"RCPT TO:<b@example.net>"),
            self.command(b"DATA"),
        ]

    def close(self) -> None:
        self.sock.close()


class SecurityTests(TestCase):
    """
    Each case on its own connection, then a normal transaction on a new one.
    """

    timeout = 60

    factoryOptions: dict[str, Any] = {}

    def setUp(self) -> Deferred[None]:
        self.backend = RecordingBackend()
        key, cert = selfSignedCertificate("127.0.0.1")
        self.cert = cert
        self.factory = SMTPServerFactory(
            self.backend,
            hostname="mx.test",
            tls=serverContextFactory(key, cert),
            maxMessageSize=64 * 1024,
            maxRecipients=3,
            maxErrors=5,
            **self.factoryOptions,
        )

        def listening(port: IListeningPort) -> None:
            self.port = port
            self.addCleanup(port.stopListening)

        endpoint = TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1")
        return endpoint.listen(self.factory).addCallback(listening)

    def client(self) -> RawClient:
        client = RawClient(self.port.getHost().port)  # type: ignore[attr-defined]
        self.addCleanup(client.close)
        assert client.reply() == "220"
        return client

    def session(self, *lines: bytes) -> Callable[[], list[str]]:
        """
        A scenario: a new connection sends each line and collects the
        replies.
        """

        def scenario() -> list[str]:
            client = self.client()
            return [client.command(line) for line in lines]

        return scenario

    def delivered(self) -> list[bytes]:
        return [m.raw.split(b"\r\n", 4)[4] for m in self.backend.messages]

    @inlineCallbacks
    def survive(self, scenario: Callable[[], Any]) -> Any:
        """
        Run C{scenario} in a thread, then check that a new connection can
        still send a message.
        """
        result = yield deferToThread(scenario)
        before = len(self.backend.messages)

        def normal() -> list[str]:
            client = self.client()
            out = client.startData(b"ok.test")
            client.send(b"Subject: fine\r\n\r\nfine\r\n.\r\n")
            out.append(client.reply())
            out.append(client.command(b"QUIT"))
            return out

        replies = yield deferToThread(normal)
        self.assertEqual(
            replies, ["250", "250 2.1.0", "250 2.1.5", "354", "250 2.0.0", "221 2.0.0"]
        )
        self.assertEqual(len(self.backend.messages), before + 1)
        return result

    @inlineCallbacks
    def test_longCommandLine(self) -> Any:
        """
        A command line over 512 octets gets 500 5.5.2 and the connection
        goes on.
        """

        replies = yield self.survive(
            self.session(b"EHLO x.test", b"NOOP " + b"x" * 600, b"NOOP")
        )
        self.assertEqual(replies, ["250", "500 5.5.2", "250 2.0.0"])

    @inlineCallbacks
    def test_noLineEnd(self) -> Any:
        """
        A peer that never ends its line is cut off at a bounded buffer with
        500 5.5.2 and a close.
        """

        def scenario() -> list[str]:
            client = self.client()
            client.send(b"A" * 100_000)
            return client.replies(2)

        replies = yield self.survive(scenario)
        # Before EHLO, replies carry no enhanced status codes.
        self.assertEqual(replies, ["500", "closed"])

    @inlineCallbacks
    def test_longDataLine(self) -> Any:
        """
        A text line over 1000 octets in DATA is refused at the end of the
        data, and the lines after it are data, not commands.
        """

        def scenario() -> list[str]:
            client = self.client()
            out = client.startData(b"x.test")
            client.send(b"Subject: x\r\n\r\n" + b"y" * 5000 + b"\r\nQUIT\r\n.\r\n")
            out.append(client.reply())
            out.append(client.command(b"NOOP"))
            return out

        replies = yield self.survive(scenario)
        self.assertEqual(
            replies, ["250", "250 2.1.0", "250 2.1.5", "354", "500 5.5.2", "250 2.0.0"]
        )
        # Only the check's own message arrived.
        self.assertEqual(self.delivered(), [b"Subject: fine\r\n\r\nfine\r\n"])

    @inlineCallbacks
    def test_messageTooBig(self) -> Any:
        """
        A message over the size limit is drained and refused with 552 5.3.4;
        the same connection then delivers a message.
        """

        def scenario() -> list[str]:
            client = self.client()
            out = [client.command(b"EHLO x.test")]
            for body in (b"z" * 70 + b"\r\n") * 2000, b"small\r\n":
                out += [
                    client.command(b"MAIL FROM:<a@example.com>"),
                    client.command(b"RCPT TO:<b@example.net>"),
                    client.command(b"DATA"),
                ]
                client.send(b"Subject: big\r\n\r\n" + body + b".\r\n")
                out.append(client.reply())
            return out

        replies = yield self.survive(scenario)
        self.assertEqual(
            replies,
            [
                *("250", "250 2.1.0", "250 2.1.5", "354", "552 5.3.4"),
                *("250 2.1.0", "250 2.1.5", "354", "250 2.0.0"),
            ],
        )
        self.assertEqual(self.delivered()[0], b"Subject: big\r\n\r\nsmall\r\n")

    @inlineCallbacks
    def test_declaredSizeTooBig(self) -> Any:
        """
        MAIL with SIZE over the limit is refused with 552 5.3.4 at once.
        """

        replies = yield self.survive(
            self.session(b"EHLO x.test", b"MAIL FROM:<a@example.com> SIZE=999999999")
        )
        self.assertEqual(replies, ["250", "552 5.3.4"])

    def smuggle(self, separator: bytes) -> Callable[[], list[str]]:
        def scenario() -> list[str]:
            client = self.client()
            out = client.startData(b"x.test")
            client.send(
                b"Subject: first\r\n\r\nfirst"
                + separator
                + b"MAIL FROM:<evil@example.org>\r\nRCPT TO:<victim@example.net>\r\n"
                b"DATA\r\nSubject: smuggled\r\n\r\nsmuggled\r\n.\r\n"
            )
            out.append(client.reply())
            out.append(client.command(b"NOOP"))
            return out

        return scenario

    @inlineCallbacks
    def test_smuggling(self) -> Any:
        """
        C{<LF>.<LF>}, C{<CR>.<CR>}, C{<LF>.<CRLF>} and C{<CRLF>.<LF>} never
        end the data: the bytes after them are message content, the bare
        line ending refuses the message (550 5.6.0), and no smuggled command
        runs.
        """
        for separator in (b"\n.\n", b"\r.\r", b"\n.\r\n", b"\r\n.\n", b"\r\n.\r"):
            replies = yield self.survive(self.smuggle(separator))
            self.assertEqual(
                replies,
                ["250", "250 2.1.0", "250 2.1.5", "354", "550 5.6.0", "250 2.0.0"],
                separator,
            )
        senders = [v.address for n, v in self.backend.calls if n == "mailFrom"]  # type: ignore[attr-defined]
        self.assertNotIn("evil@example.org", senders)
        self.assertNotIn(b"smuggled", b"".join(self.delivered()))

    @inlineCallbacks
    def test_startTLSDiscardsPipelinedCommands(self) -> Any:
        """
        Commands sent in the same packet as STARTTLS are discarded, never
        run inside TLS (RFC 3207 4.2).
        """
        cert = self.cert

        def scenario() -> list[str]:
            client = self.client()
            out = [client.command(b"EHLO x.test")]
            client.send(b"STARTTLS\r\nMAIL FROM:<evil@example.org>\r\n")
            out.append(client.reply())
            context = ssl.create_default_context(cadata=cert.decode())
            client.sock = context.wrap_socket(client.sock, server_hostname="127.0.0.1")
            client.buffer = b""
            out.append(client.command(b"MAIL FROM:<a@example.com>"))
            out.append(client.command(b"EHLO x.test"))
            out.append(client.command(b"MAIL FROM:<a@example.com>"))
            return out

        replies = yield self.survive(scenario)
        self.assertEqual(replies, ["250", "220 2.0.0", "503", "250", "250 2.1.0"])
        senders = [v.address for n, v in self.backend.calls if n == "mailFrom"]  # type: ignore[attr-defined]
        self.assertNotIn("evil@example.org", senders)

    @inlineCallbacks
    def test_authBeforeTLS(self) -> Any:
        """
        AUTH before STARTTLS is refused with 538 5.7.11.
        """

        replies = yield self.survive(
            self.session(b"EHLO x.test", b"AUTH PLAIN AGFsaWNlAHNlY3JldA==")
        )
        self.assertEqual(replies, ["250", "538 5.7.11"])
        self.assertNotIn("authenticate", self.backend.names())

    @inlineCallbacks
    def test_badAddresses(self) -> Any:
        """
        Malformed and overlong addresses get 501 with the sender or
        recipient syntax code; unknown parameters get 555 5.5.4.
        """
        commands = [
            (b"MAIL FROM:>a@example.com<", "501 5.1.7"),
            (b"MAIL FROM:<a@example.com", "501 5.1.7"),
            (b"MAIL FROM:a@example.com", "501 5.1.7"),
            (b"MAIL FROM:<" + b"l" * 65 + b"@example.com>", "501 5.1.7"),
            (b"MAIL FROM:<a@" + b"d" * 250 + b".com>", "501 5.1.7"),
            (b"MAIL FROM:<a@example.com> FOO=bar", "555 5.5.4"),
            (b"MAIL FROM:<a@example.com>", "250 2.1.0"),
            (b"RCPT TO:<>", "501 5.1.3"),
            (b"RCPT TO:<a@@example.com>", "501 5.1.3"),
            (b"RCPT TO:<b@example.net> NOTIFY=NEVER", "555 5.5.4"),
            (b"RCPT TO:<\xff\xfe@example.net>", "501 5.1.3"),
        ]

        def scenario() -> list[str]:
            client = self.client()
            client.command(b"EHLO x.test")
            out = []
            for i, (line, _) in enumerate(commands):
                if i and i % 4 == 0:
                    # Stay under the error limit.
                    client.close()
                    client = self.client()
                    client.command(b"EHLO x.test")
                    if i > 6:
                        client.command(b"MAIL FROM:<a@example.com>")
                out.append(client.command(line))
            return out

        replies = yield self.survive(scenario)
        self.assertEqual(replies, [expected for _, expected in commands])

    @inlineCallbacks
    def test_tooManyRecipients(self) -> Any:
        """
        Past the recipient limit RCPT gets 452 4.5.3; the accepted ones
        still get the message.
        """

        def scenario() -> list[str]:
            client = self.client()
            out = [
                client.command(b"EHLO x.test"),
                client.command(b"MAIL FROM:<a@x.test>"),
            ]
            for i in range(4):
                out.append(client.command(b"RCPT TO:<r%d@example.net>" % i))
            out.append(client.command(b"DATA"))
            client.send(b"Subject: x\r\n\r\nx\r\n.\r\n")
            out.append(client.reply())
            return out

        replies = yield self.survive(scenario)
        self.assertEqual(
            replies,
            ["250", "250 2.1.0"]
            + ["250 2.1.5"] * 3
            + ["452 4.5.3", "354", "250 2.0.0"],
        )
        self.assertEqual(len(self.backend.messages[0].envelope.recipients), 3)

    @inlineCallbacks
    def test_tooManyErrors(self) -> Any:
        """
        After the error limit the server says 421 4.7.0 and closes.
        """

        def scenario() -> list[str]:
            client = self.client()
            client.send(b"BOGUS\r\n" * 5)
            return client.replies(7)

        replies = yield self.survive(scenario)
        self.assertEqual(replies, [*["500"] * 5, "421", "closed"])

    @inlineCallbacks
    def test_garbage(self) -> Any:
        """
        NUL bytes, invalid UTF-8 and binary junk are unknown commands, not
        crashes.
        """

        def scenario() -> list[str]:
            client = self.client()
            out = [
                client.command(b"\x00\x01\x02"),
                client.command(b"\xff\xfe\xfd HELO"),
                client.command(b"EHLO \xff"),
                client.command(b""),
            ]
            return out

        replies = yield self.survive(scenario)
        self.assertEqual(replies, ["500", "500", "501", "500"])

    @inlineCallbacks
    def test_failingHooks(self) -> Any:
        """
        A hook that raises, or returns a failing Deferred, is answered
        451 4.3.0 and logged; the connection goes on.
        """
        from twisted.internet.defer import fail

        def raises(value: object) -> None:
            raise ValueError("boom")

        self.backend.behaviour["mailFrom"] = raises
        self.backend.behaviour["rcptTo"] = lambda value: fail(KeyError("boom"))

        replies = yield deferToThread(
            self.session(b"EHLO x.test", b"MAIL FROM:<a@example.com>", b"NOOP")
        )
        self.assertEqual(replies, ["250", "451 4.3.0", "250 2.0.0"])
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)
        del self.backend.behaviour["mailFrom"]

        replies = yield deferToThread(
            self.session(
                b"EHLO x.test", b"MAIL FROM:<a@example.com>", b"RCPT TO:<b@example.net>"
            )
        )
        self.assertEqual(replies, ["250", "250 2.1.0", "451 4.3.0"])
        self.assertEqual(len(self.flushLoggedErrors(KeyError)), 1)
        del self.backend.behaviour["rcptTo"]
        yield self.survive(lambda: None)

    @inlineCallbacks
    def test_disconnectMidData(self) -> Any:
        """
        A client that disconnects in the middle of DATA delivers nothing,
        and its session is logged out.
        """

        def scenario() -> None:
            client = self.client()
            client.startData()
            client.send(b"Subject: half\r\n\r\nhalf a mess")
            client.close()

        loggedOut: Deferred[None] = Deferred()

        def logout(value: object) -> None:
            if not loggedOut.called:
                loggedOut.callback(None)

        self.backend.behaviour["logout"] = logout
        yield deferToThread(scenario)
        yield loggedOut.addTimeout(TIMEOUT, reactor)
        self.assertEqual(self.backend.messages, [])
        self.assertEqual(self.backend.names()[-1], "logout")
        yield self.survive(lambda: None)


class IdleTimeoutTests(SynchronousTestCase):
    """
    The idle timeout, on a fake clock.
    """

    def test_idlePeer(self) -> None:
        """
        A silent client gets 421 4.4.2 after the timeout and is cut off.
        """
        factory, clock = makeFactory(timeout=30)
        protocol, transport = connect(factory)
        take(transport)
        clock.advance(29)
        protocol.dataReceived(b"NOOP\r\n")
        self.assertEqual(codes(take(transport)), ["250"])
        clock.advance(29)
        self.assertFalse(transport.disconnecting)
        clock.advance(1)
        self.assertEqual(take(transport), b"421 Idle timeout, closing connection\r\n")
        self.assertTrue(transport.disconnecting)

    def test_idleInData(self) -> None:
        """
        A client that stops in the middle of DATA is timed out too, and
        nothing is delivered.
        """
        backend = RecordingBackend()
        factory, clock = makeFactory(backend, timeout=30)
        protocol, transport = connect(factory)
        protocol.dataReceived(
            b"EHLO x\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\nDATA\r\npartial"
        )
        take(transport)
        clock.advance(30)
        self.assertEqual(codes(take(transport)), ["421 4.4.2"])
        protocol.connectionLost()
        self.assertEqual(backend.messages, [])
