"""
The connection base every server shares, tried over real loopback sockets
through the SMTP server: closing closes (TLS peers that never finish a
handshake, or go silent), a client that never reads costs bounded memory,
the error budget counts only protocol errors, and a shutdown neither cuts
a message in flight nor acts on bytes that arrive after it.

The servers' timers run on a L{Clock}, so no test waits on real time; the
sockets are real, and every wait for them is bounded.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Callable
from typing import Any

from twisted.internet import reactor
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.endpoints import SSL4ServerEndpoint, TCP4ServerEndpoint
from twisted.internet.interfaces import IListeningPort
from twisted.internet.protocol import ClientFactory, Protocol
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import SynchronousTestCase, TestCase

from gomail_twisted.connection import ConnectionInfo, LineServerProtocol, SessionBackend
from gomail_twisted.smtp import SMTPServerFactory, SMTPServerProtocol
from gomail_twisted.tls import selfSignedCertificate, serverContextFactory
from tests._smtphelpers import RecordingBackend

WAIT = 10.0


def _clientContext() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class _Conversation:
    """
    A blocking client for scripted exchanges, in the clear or over TLS,
    run in a thread; it never closes its socket until told to, so it can
    play a peer that goes silent.
    """

    def __init__(self, port: int, implicitTLS: bool = False) -> None:
        self.port = port
        self.implicitTLS = implicitTLS
        self._sock: socket.socket | None = None
        self.buffer = b""

    @property
    def sock(self) -> socket.socket:
        # Connected on first use, in the calling thread: a TLS handshake
        # must never block the reactor.
        if self._sock is None:
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=WAIT)
            if self.implicitTLS:
                sock = _clientContext().wrap_socket(sock)
            self._sock = sock
        return self._sock

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def reply(self) -> str:
        """
        @return: the first line of the next whole reply, or C{"closed"}.
        """
        first = None
        while True:
            while b"\r\n" in self.buffer:
                line, self.buffer = self.buffer.split(b"\r\n", 1)
                first = first or line.decode()
                if line[3:4] != b"-":
                    return first
            try:
                data = self.sock.recv(65536)
            except (ConnectionError, ssl.SSLError):
                data = b""
            if not data:
                return "closed"
            self.buffer += data

    def command(self, line: bytes) -> str:
        self.send(line + b"\r\n")
        return self.reply()

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()


class _ObservedFactory(SMTPServerFactory):
    """
    An SMTP server factory that says when its connections come and go.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.built: list[SMTPServerProtocol] = []
        self._waiters: list[tuple[Callable[[], bool], Deferred[None]]] = []

    def buildProtocol(self, addr: Any) -> Any:
        protocol = super().buildProtocol(addr)
        self.built.append(protocol)
        return protocol

    def admit(self, protocol: LineServerProtocol) -> Any:
        refusal = super().admit(protocol)
        self._changed()
        return refusal

    def connectionClosed(self, protocol: LineServerProtocol) -> None:
        super().connectionClosed(protocol)
        self._changed()

    def _changed(self) -> None:
        waiting = self._waiters
        self._waiters = [(c, d) for c, d in waiting if not c()]
        for condition, waiter in waiting:
            if condition():
                # Later, so the test never runs inside the server's code.
                reactor.callLater(0, waiter.callback, None)

    def _when(self, condition: Callable[[], bool]) -> Deferred[None]:
        waiter: Deferred[None] = Deferred()
        self._waiters.append((condition, waiter))
        self._changed()
        return waiter.addTimeout(WAIT, reactor)

    def whenOpen(self, count: int) -> Deferred[None]:
        """
        @return: fires once at least C{count} connections are open.
        """
        return self._when(lambda: self.openConnections >= count)

    def whenClosed(self, count: int = 0) -> Deferred[None]:
        """
        @return: fires once at most C{count} connections are open.
        """
        return self._when(lambda: self.openConnections <= count)


class _Server(TestCase):
    """
    A real SMTP server on loopback whose timers run on a L{Clock}.
    """

    timeout = 60
    implicitTLS = False

    def makeServer(self, **options: Any) -> Deferred[None]:
        self.clock = Clock()
        self.backend = RecordingBackend()
        key, cert = selfSignedCertificate("127.0.0.1")
        context = serverContextFactory(key, cert)
        self.factory = _ObservedFactory(
            self.backend,
            hostname="mx.test",
            tls=None if self.implicitTLS else context,
            reactor=self.clock,
            **options,
        )
        endpoint: Any
        if self.implicitTLS:
            endpoint = SSL4ServerEndpoint(reactor, 0, context, interface="127.0.0.1")
        else:
            endpoint = TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1")

        def listening(port: IListeningPort) -> None:
            self.port = port
            self.addCleanup(port.stopListening)
            self.addCleanup(self.factory.abortAll)

        return endpoint.listen(self.factory).addCallback(listening)

    @property
    def portNumber(self) -> int:
        return int(self.port.getHost().port)  # type: ignore[attr-defined]

    def conversation(self) -> _Conversation:
        conversation = _Conversation(self.portNumber, self.implicitTLS)
        self.addCleanup(conversation.close)
        return conversation

    def inThread(self, f: Callable[[], Any]) -> Deferred[Any]:
        return deferToThread(f).addTimeout(WAIT, reactor)


class ClosingTests(_Server):
    """
    A closed connection frees its slot even when the peer does not help:
    over TLS, C{loseConnection} waits for the peer, so the base aborts.
    """

    implicitTLS = True

    @inlineCallbacks
    def test_silentHandshakesDoNotKeepClientsOut(self) -> Any:
        """
        Connections that never send a ClientHello are dropped after the
        handshake timeout, and a real client then gets in.
        """
        yield self.makeServer(maxConnectionsPerPeer=3, tlsHandshakeTimeout=5)
        silent = []
        for _ in range(3):
            sock = socket.create_connection(("127.0.0.1", self.portNumber))
            self.addCleanup(sock.close)
            silent.append(sock)
        yield self.factory.whenOpen(3)
        self.clock.advance(5)
        yield self.factory.whenClosed()
        greeting = yield self.inThread(lambda: self.conversation().reply())
        self.assertTrue(greeting.startswith("220 mx.test"), greeting)

    @inlineCallbacks
    def test_silentAfterSTARTTLS(self) -> Any:
        """
        A client that asks for STARTTLS and then never sends a ClientHello
        is dropped after the handshake timeout.
        """
        self.implicitTLS = False
        yield self.makeServer(tlsHandshakeTimeout=5)
        conversation = self.conversation()

        def startTLS() -> list[str]:
            return [
                conversation.reply(),
                conversation.command(b"EHLO c.test"),
                conversation.command(b"STARTTLS"),
            ]

        replies = yield self.inThread(startTLS)
        self.assertEqual([r[:3] for r in replies], ["220", "250", "220"])
        self.clock.advance(4)
        self.assertEqual(self.factory.openConnections, 1)
        self.clock.advance(1)
        yield self.factory.whenClosed()

    @inlineCallbacks
    def test_silentAfterQuit(self) -> Any:
        """
        A TLS client that reads the QUIT reply but never answers the close
        is aborted after the close timeout.
        """
        yield self.makeServer(closeTimeout=7)
        conversation = self.conversation()

        def quit() -> list[str]:
            return [conversation.reply(), conversation.command(b"QUIT")]

        replies = yield self.inThread(quit)
        self.assertEqual([r[:3] for r in replies], ["220", "221"])
        self.assertEqual(self.factory.openConnections, 1)
        self.clock.advance(7)
        yield self.factory.whenClosed()

    @inlineCallbacks
    def test_silentAfterIdleTimeout(self) -> Any:
        """
        A TLS client that goes silent is told 421 after the idle
        timeout and is gone after the close timeout, though it never closes.
        """
        yield self.makeServer(timeout=60, closeTimeout=7)
        conversation = self.conversation()
        yield self.inThread(conversation.reply)
        self.clock.advance(60)
        notice = yield self.inThread(conversation.reply)
        self.assertEqual(notice, "421 Idle timeout, closing connection")
        self.assertEqual(self.factory.openConnections, 1)
        self.clock.advance(7)
        yield self.factory.whenClosed()

    @inlineCallbacks
    def test_shutdownWithClientsGone(self) -> Any:
        """
        Once TLS clients have quit and closed their sockets, a shutdown is
        done without waiting for any timer.
        """
        yield self.makeServer()

        def quitAndClose() -> str:
            conversation = self.conversation()
            conversation.reply()
            reply = conversation.command(b"QUIT")
            conversation.close()
            return reply

        for _ in range(3):
            reply = yield self.inThread(quitAndClose)
            self.assertTrue(reply.startswith("221"), reply)
        yield self.factory.shutdown().addTimeout(WAIT, reactor)
        self.assertEqual(self.factory.openConnections, 0)


class _NonReader(Protocol):
    """
    Pipelines C{count} EHLO commands without reading a reply until told to,
    then reads them all.
    """

    def __init__(self, count: int, done: Deferred[bytes]) -> None:
        self.count = count
        self.done = done
        self.received: list[bytes] = []
        self.size = 0
        self.expected = 0

    def connectionMade(self) -> None:
        assert self.transport is not None
        sock = self.transport.getHandle()  # type: ignore[attr-defined]
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 32768)
        self.transport.pauseProducing()  # type: ignore[attr-defined]
        self.transport.write(b"EHLO x\r\n" * self.count)

    def startReading(self) -> None:
        assert self.transport is not None
        self.transport.resumeProducing()  # type: ignore[attr-defined]

    def dataReceived(self, data: bytes) -> None:
        self.received.append(data)
        self.size += len(data)
        if self.expected and self.size >= self.expected:
            assert self.transport is not None
            self.transport.loseConnection()

    def connectionLost(self, reason: object) -> None:
        self.done.callback(b"".join(self.received))


class NoDelayTests(_Server):
    """
    Replies are not held back by Nagle's algorithm.
    """

    @inlineCallbacks
    def test_noDelay(self) -> Any:
        """
        The server's end of a TCP connection has C{TCP_NODELAY} set.
        """
        yield self.makeServer()
        conversation = self.conversation()
        yield self.inThread(conversation.reply)
        [protocol] = self.factory.built
        assert protocol.transport is not None
        sock = protocol.transport.getHandle()  # type: ignore[attr-defined]
        self.assertTrue(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))


class NoDelayTLSTests(NoDelayTests):
    """
    Implicit TLS, too.
    """

    implicitTLS = True

    @inlineCallbacks
    def test_noDelay(self) -> Any:
        """
        Under implicit TLS, the TCP connection below has C{TCP_NODELAY}
        set.
        """
        yield self.makeServer()
        conversation = self.conversation()
        yield self.inThread(conversation.reply)
        [protocol] = self.factory.built
        tls: Any = protocol.transport
        sock = tls.transport.getHandle()
        self.assertTrue(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))


class BackpressureTests(_Server):
    """
    Replies waiting in the transport are bounded: a client that pipelines
    without reading stops being read.
    """

    @inlineCallbacks
    def test_clientThatNeverReads(self) -> Any:
        """
        While a client pipelines 200,000 EHLO commands without reading, the
        server's unsent replies never pass its high-water mark by more than
        one reply; once the client reads, every reply comes, in order.
        """
        count = 200_000
        yield self.makeServer()
        self.port.socket.setsockopt(  # type: ignore[attr-defined]
            socket.SOL_SOCKET, socket.SO_SNDBUF, 32768
        )
        held: Deferred[None] = Deferred()
        most = 0
        limit = 0
        helos = 0

        def helo(greeting: object) -> None:
            nonlocal most, limit, helos
            helos += 1
            transport: Any = self.factory.built[0].transport
            limit = transport.bufferSize
            buffered = len(transport.dataBuffer) - transport.offset
            buffered += transport._tempDataLen
            most = max(most, buffered)
            if buffered > 4 * limit and not held.called:
                # Past any bound: stop the test now rather than at the end.
                held.callback(None)

        self.backend.behaviour["helo"] = helo
        built = self.factory.buildProtocol

        def buildProtocol(addr: Any) -> Any:
            protocol = built(addr)
            hold = protocol.hold

            def holdAndSay(reason: str) -> None:
                hold(reason)
                if reason == "write" and not held.called:
                    held.callback(None)

            protocol.hold = holdAndSay
            return protocol

        self.factory.buildProtocol = buildProtocol  # type: ignore[method-assign]
        done: Deferred[bytes] = Deferred()
        client = _NonReader(count, done)
        factory = ClientFactory.forProtocol(lambda: client)
        connector = reactor.connectTCP("127.0.0.1", self.portNumber, factory)
        self.addCleanup(connector.disconnect)
        yield held.addTimeout(WAIT, reactor)
        self.assertLess(most, limit + 512)
        self.assertLess(helos, count)
        reply = b"250-mx.test Hello x [127.0.0.1]\r\n"
        greeting = b"220 mx.test ESMTP gomail_twisted\r\n"
        ehlo = self.factory.capabilityLines(True, False)
        client.expected = len(greeting) + count * (len(reply) + len(ehlo))
        client.startReading()
        data = yield done.addTimeout(30, reactor)
        self.assertEqual(data, greeting + (reply + ehlo) * count)
        self.assertLess(most, limit + 512)


class ErrorBudgetTests(_Server):
    """
    The error budget counts protocol errors, not the backend's refusals.
    """

    @inlineCallbacks
    def test_refusedRecipientsAreNotErrors(self) -> Any:
        """
        A client that sends 30 messages, each with one recipient the
        backend refuses, delivers them all on one connection.
        """
        yield self.makeServer(maxErrors=5)

        def deliver() -> list[str]:
            conversation = self.conversation()
            replies = [conversation.reply(), conversation.command(b"EHLO c.test")]
            for i in range(30):
                replies += [
                    conversation.command(b"MAIL FROM:<a@example.com>"),
                    conversation.command(b"RCPT TO:<nobody@example.net>"),
                    conversation.command(b"RCPT TO:<b@example.net>"),
                    conversation.command(b"DATA"),
                    conversation.command(b"Subject: %d\r\n\r\nhi\r\n." % i),
                ]
            replies.append(conversation.command(b"QUIT"))
            return [r[:3] for r in replies]

        replies = yield self.inThread(deliver)
        self.assertEqual(
            replies, ["220", "250"] + ["250", "550", "250", "354", "250"] * 30 + ["221"]
        )
        self.assertEqual(len(self.backend.messages), 30)

    @inlineCallbacks
    def test_protocolErrorsAreCounted(self) -> Any:
        """
        Unknown and out-of-sequence commands use the budget up: the fifth
        gets its reply, then 421, then the close.
        """
        yield self.makeServer(maxErrors=5)

        def misbehave() -> list[str]:
            conversation = self.conversation()
            replies = [conversation.reply()]
            for verb in (b"FOO", b"RCPT TO:<a@b.test>", b"DATA", b"BAR", b"BAZ"):
                replies.append(conversation.command(verb))
            replies += [conversation.reply(), conversation.reply()]
            return replies

        replies = yield self.inThread(misbehave)
        self.assertEqual(
            [r[:3] for r in replies[:6]], ["220", "500", "503", "503", "500", "500"]
        )
        self.assertEqual(replies[6], "421 Too many errors, closing connection")
        self.assertEqual(replies[7], "closed")


class ShutdownTests(_Server):
    """
    A shutdown lets the message in flight finish, and acts on nothing that
    arrives after its notice: a 4xx or 5xx always means nothing was stored.
    """

    implicitTLS = True

    @inlineCallbacks
    def test_messageInFlightFinishes(self) -> Any:
        """
        A shutdown in the middle of DATA waits for the end of the message,
        answers 250, then 421 4.3.2; what the client pipelined after the
        message is not acted on, and only the one message is stored.
        """
        yield self.makeServer()
        conversation = self.conversation()

        def start() -> list[str]:
            return [
                conversation.reply(),
                conversation.command(b"EHLO c.test"),
                conversation.command(b"MAIL FROM:<a@example.com>"),
                conversation.command(b"RCPT TO:<b@example.net>"),
                conversation.command(b"DATA"),
            ]

        replies = yield self.inThread(start)
        self.assertEqual([r[:3] for r in replies], ["220", "250", "250", "250", "354"])
        yield self.inThread(
            lambda: conversation.send(b"Subject: one\r\n\r\nfirst part\r\n")
        )
        closing = self.factory.shutdown()

        def finish() -> list[str]:
            conversation.send(
                b"second part\r\n.\r\n"
                b"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n"
                b"Subject: two\r\n\r\nduplicate\r\n.\r\n"
            )
            return [conversation.reply(), conversation.reply(), conversation.reply()]

        replies = yield self.inThread(finish)
        self.assertEqual(replies[0][:9], "250 2.0.0")
        self.assertEqual(replies[1][:9], "421 4.3.2")
        self.assertEqual(replies[2], "closed")
        self.clock.advance(self.factory.closeTimeout)
        yield closing.addTimeout(WAIT, reactor)
        self.assertEqual(len(self.backend.messages), 1)
        self.assertIn(b"second part", self.backend.messages[0].raw)

    @inlineCallbacks
    def test_nothingStoredAfterNotice(self) -> Any:
        """
        A client that pipelines a whole message right after a shutdown
        notice reaches the server gets nothing stored.
        """
        yield self.makeServer()
        conversation = self.conversation()
        greeting = yield self.inThread(conversation.reply)
        self.assertEqual(greeting[:3], "220")
        self.factory.shutdown()

        def pipeline() -> list[str]:
            conversation.send(
                b"EHLO c.test\r\nMAIL FROM:<a@example.com>\r\n"
                b"RCPT TO:<b@example.net>\r\nDATA\r\nSubject: x\r\n\r\nx\r\n.\r\n"
            )
            return [conversation.reply(), conversation.reply()]

        replies = yield self.inThread(pipeline)
        self.assertEqual(replies[0], "421 Server shutting down, closing connection")
        self.assertEqual(replies[1], "closed")
        self.assertEqual(self.backend.messages, [])


class ConnectionInfoTests(SynchronousTestCase):
    """
    L{LineServerProtocol.connectionInfo} tells a backend who is connected.
    """

    def test_plainConnection(self) -> None:
        """
        The peer's and our address and port, the given host name, and no
        TLS facts on a plain connection.
        """
        protocol = LineServerProtocol()
        protocol.transport = StringTransport(
            hostAddress=IPv4Address("TCP", "192.0.2.1", 25),
            peerAddress=IPv4Address("TCP", "198.51.100.7", 40000),
        )
        protocol.peer = ("198.51.100.7", 40000)
        self.assertEqual(
            protocol.connectionInfo("mx.example.com"),
            ConnectionInfo("198.51.100.7", 40000, "192.0.2.1", 25, "mx.example.com"),
        )


class SessionBackendTests(SynchronousTestCase):
    """
    L{SessionBackend} makes one session per connection.
    """

    def test_newSessionPerConnection(self) -> None:
        """
        Each connection gets a new session made from its L{ConnectionInfo}.
        """
        info = ConnectionInfo("198.51.100.7", 40000, "192.0.2.1", 25, "mx")
        backend = SessionBackend(lambda i: [i])
        first, second = backend.newSession(info), backend.newSession(info)
        self.assertEqual(first, [info])
        self.assertIsNot(first, second)
