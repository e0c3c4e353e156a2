# -*- test-case-name: tests.test_imap4_load -*-
"""
The IMAP4 server under many connections: thousands of sessions on one
mailbox all told of a delivery, what each costs in memory, the idle timer
closing them all, a login flood, the connection limits, and a client that
never reads a large FETCH.
"""

from __future__ import annotations

import gc
import tracemalloc

from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport

from gomail_twisted.imap4.backend import StoreBackend
from gomail_twisted.imap4.server import IMAP4Server
from gomail_twisted.users import PasswordHashing, UsersChecker
from tests._imaphelpers import HASHER, LOCAL, PEER, Connection, StoreTestCase
from tests.test_smtp_maildir import _ThreadPool

#: How many sessions the load tests open.
SESSIONS = 2000


def peerConnection(factory: object, host: str) -> Connection:
    """
    A L{Connection} from another peer address.
    """
    connection = Connection.__new__(Connection)
    peer = IPv4Address("TCP", host, 50000)
    connection.transport = StringTransport(hostAddress=LOCAL, peerAddress=peer)
    protocol = factory.buildProtocol(peer)  # type: ignore[attr-defined]
    assert isinstance(protocol, IMAP4Server)
    connection.protocol = protocol
    protocol.makeConnection(connection.transport)
    connection.greeting = connection.read()
    return connection


class _NonReadingTransport(StringTransport):
    """
    A transport whose peer reads nothing until told: past its high-water
    mark it pauses its producer, as Twisted's TCP transport does, and
    resumes it when drained.

    @ivar most: the most it ever held.
    """

    highWater = 64 * 1024
    paused = False
    most = 0

    def write(self, data: bytes) -> None:
        super().write(data)
        held = len(self.io.getvalue())
        self.most = max(self.most, held)
        if held > self.highWater and not self.paused and self.producer is not None:
            self.paused = True
            self.producer.pauseProducing()

    def drain(self) -> bytes:
        """
        The peer reads everything held; return it.
        """
        data = self.value()
        self.clear()
        if self.paused and self.producer is not None:
            self.paused = False
            self.producer.resumeProducing()
        return data


class ManySessionsTests(StoreTestCase):
    """
    Thousands of sessions over L{StringTransport}s.
    """

    def setUp(self) -> None:
        super().setUp()
        self.factory = self.makeFactory(
            maxConnections=SESSIONS + 10, maxConnectionsPerPeer=SESSIONS + 10
        )
        self.deliver(b"Subject: first\r\n\r\nfirst\r\n")

    def test_everyIdlingSessionToldOfDelivery(self) -> None:
        """
        2,000 sessions with INBOX selected, each in IDLE: one delivery is
        told to every one of them at once, and each then ends IDLE with an
        OK.  The memory a session costs is measured over 200 of them and
        stays under 64 kB.
        """
        sessions = []
        measuredFrom = SESSIONS - 200
        for i in range(SESSIONS):
            if i == measuredFrom:
                gc.collect()
                tracemalloc.start()
                before = tracemalloc.get_traced_memory()[0]
            c = self.selected()
            self.assertEqual(c.command(b"i IDLE"), b"+ idling\r\n")
            sessions.append(c)
        gc.collect()
        perSession = (tracemalloc.get_traced_memory()[0] - before) / 200
        tracemalloc.stop()
        self.assertLess(perSession, 64 * 1024)
        self.deliver(b"Subject: second\r\n\r\nsecond\r\n")
        told = [c.read() for c in sessions]
        # The first session to select INBOX has both messages as \Recent.
        self.assertEqual(told[0], b"* 2 EXISTS\r\n* 2 RECENT\r\n")
        self.assertEqual(set(told[1:]), {b"* 2 EXISTS\r\n* 0 RECENT\r\n"})
        for c in sessions:
            self.assertEqual(c.command(b"DONE"), b"i OK IDLE terminated\r\n")

    def test_idleTimerClosesThemAll(self) -> None:
        """
        2,000 logged-in sessions that say nothing are all told and closed
        after 30 minutes; their places are free again.
        """
        sessions = [self.login() for _ in range(SESSIONS)]
        self.assertEqual(self.factory.openConnections, SESSIONS)
        self.reactor.advance(30 * 60)
        for c in sessions:
            self.assertEqual(c.read(), b"* BYE Disconnected for inactivity\r\n")
            self.assertTrue(c.closed)
            c.lose()
        self.assertEqual(self.factory.openConnections, 0)


class LoginFloodTests(StoreTestCase):
    """
    More logins than passwords can be checked.
    """

    def test_loginFloodBounded(self) -> None:
        """
        Logins arriving faster than passwords are checked wait in a bounded
        queue: past it they are refused at once with C{NO [UNAVAILABLE]};
        one connection pipelining logins holds one place in it; once the
        checks are done every login was answered, and a real one works.
        """
        checks = _ThreadPool(now=False)
        hashing = PasswordHashing(
            self.reactor, hasher=HASHER, threadPool=checks, maxQueued=8
        )
        self.backend = StoreBackend(UsersChecker(self.users, hashing), self.store)
        self.factory = self.makeFactory(maxConnectionsPerPeer=1000)
        greedy = self.connect()
        self.assertEqual(
            greedy.send(
                b"".join(b"g%d LOGIN alice wrong\r\n" % (i,) for i in range(100))
            ),
            b"",
        )
        waiting = [self.connect() for _ in range(7)]
        for c in waiting:
            self.assertEqual(c.command(b"t LOGIN alice@example.com wrong"), b"")
        refused = [self.connect() for _ in range(20)]
        for c in refused:
            self.assertEqual(
                c.lines(b"t LOGIN alice@example.com wrong"),
                [b"t NO [UNAVAILABLE] Temporary server failure, try again later"],
            )
        for _ in range(200):
            if not checks.pending:
                break
            checks.runAll()
        failed = b"NO [AUTHENTICATIONFAILED] Authentication failed\r\n"
        for c in waiting:
            self.assertEqual(c.read(), b"t " + failed)
        self.assertEqual(
            greedy.read(), b"".join(b"g%d " % (i,) + failed for i in range(100))
        )
        checks.now = True
        self.assertTrue(self.login().command(b"n NOOP").startswith(b"n OK"))


class ConnectionLimitTests(StoreTestCase):
    """
    C{maxConnections} and C{maxConnectionsPerPeer}.
    """

    refused = b"* BYE [UNAVAILABLE] Too many connections\r\n"

    def test_maxConnections(self) -> None:
        """
        Past C{maxConnections} a new connection, from any peer, is told
        C{BYE [UNAVAILABLE]} and closed without a greeting; once one
        closes, the next gets in.
        """
        factory = self.makeFactory(maxConnections=3, maxConnectionsPerPeer=10)
        first = [peerConnection(factory, f"192.0.2.{i}") for i in range(3)]
        for c in first:
            self.assertTrue(c.greeting.startswith(b"* OK [CAPABILITY "), c.greeting)
        for host in ("192.0.2.0", "198.51.100.1"):
            c = peerConnection(factory, host)
            self.assertEqual(c.greeting, self.refused)
            self.assertTrue(c.closed)
            c.lose()
        first[0].lose()
        c = peerConnection(factory, "198.51.100.1")
        self.assertTrue(c.greeting.startswith(b"* OK [CAPABILITY "), c.greeting)
        answer = c.command(b'a LOGIN alice@example.com "correct horse"')
        self.assertTrue(answer.startswith(b"a OK "), answer)

    def test_maxConnectionsPerPeer(self) -> None:
        """
        Past C{maxConnectionsPerPeer} from one address a new connection from
        it is refused; other peers still get in.
        """
        factory = self.makeFactory(maxConnections=100, maxConnectionsPerPeer=2)
        mine = [peerConnection(factory, "203.0.113.5") for _ in range(2)]
        c = peerConnection(factory, "203.0.113.5")
        self.assertEqual(c.greeting, self.refused)
        self.assertTrue(c.closed)
        c.lose()
        other = peerConnection(factory, "203.0.113.6")
        self.assertTrue(other.greeting.startswith(b"* OK "), other.greeting)
        mine[1].lose()
        again = peerConnection(factory, "203.0.113.5")
        self.assertTrue(again.greeting.startswith(b"* OK "), again.greeting)

    def test_refusedConnectionsSayNothingMore(self) -> None:
        """
        A refused connection acts on nothing it sends, and a thousand of
        them leave the count where it was.
        """
        factory = self.makeFactory(maxConnections=1)
        kept = peerConnection(factory, "192.0.2.1")
        for i in range(1000):
            c = peerConnection(factory, f"198.51.100.{i % 250}")
            self.assertEqual(c.greeting, self.refused)
            login = b'a LOGIN alice@example.com "correct horse"\r\n'
            self.assertEqual(c.send(login), b"")
            c.lose()
        self.assertEqual(factory.openConnections, 1)
        self.assertEqual(kept.command(b"n NOOP"), b"n OK NOOP completed\r\n")


class NonReaderTests(StoreTestCase):
    """
    A client that sends FETCH and does not read the answer.
    """

    def test_fetchHeldToAChunk(self) -> None:
        """
        FETCH 1:* BODY[] of twenty 1 MiB messages to a client that reads
        nothing leaves no more than the high-water mark and one chunk in
        the transport, and holds well under 2 MiB in all; once the client
        reads, every message arrives whole, in order.
        """
        message = b"Subject: big\r\n\r\n" + (b"x" * 1022 + b"\r\n") * 1024
        self.deliver(*[message] * 20)
        transport = _NonReadingTransport(hostAddress=LOCAL, peerAddress=PEER)
        protocol = self.factory.buildProtocol(PEER)
        assert protocol is not None
        protocol.makeConnection(transport)
        self.addCleanup(protocol.connectionLost, None)
        protocol.dataReceived(
            b'a LOGIN alice@example.com "correct horse"\r\nb SELECT INBOX\r\n'
        )
        transport.drain()
        gc.collect()
        tracemalloc.start()
        try:
            protocol.dataReceived(b"c FETCH 1:* BODY[]\r\n")
            for _ in range(10):
                self.reactor.advance(60)
            held = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        self.assertTrue(transport.paused)
        chunk = self.factory.chunkSize
        self.assertLess(transport.most, transport.highWater + chunk + 1024)
        self.assertLess(held, 2 * 1024 * 1024)
        received = [transport.drain()]
        for _ in range(10000):
            if not (transport.paused or transport.value()):
                break
            received.append(transport.drain())
        answer = b"".join(received)
        self.assertLess(transport.most, transport.highWater + chunk + 1024)
        expected = b"".join(
            b"* %d FETCH (BODY[] {%d}\r\n%s FLAGS (\\Seen \\Recent))\r\n"
            % (n, len(message), message)
            for n in range(1, 21)
        )
        self.assertEqual(answer, expected + b"c OK FETCH completed\r\n")

    def test_stalledReaderDropped(self) -> None:
        """
        A client that reads nothing of its FETCH answer for 30 minutes is
        dropped: nothing can be said in the middle of a message.
        """
        message = b"Subject: big\r\n\r\n" + (b"x" * 1022 + b"\r\n") * 1024
        self.deliver(*[message] * 5)
        transport = _NonReadingTransport(hostAddress=LOCAL, peerAddress=PEER)
        protocol = self.factory.buildProtocol(PEER)
        assert protocol is not None
        protocol.makeConnection(transport)
        protocol.dataReceived(
            b'a LOGIN alice@example.com "correct horse"\r\nb SELECT INBOX\r\n'
        )
        transport.drain()
        protocol.dataReceived(b"c FETCH 1:* BODY[]\r\n")
        self.reactor.advance(30 * 60 - 1)
        self.assertFalse(transport.disconnecting)
        transport.drain()
        self.reactor.advance(30 * 60 - 1)
        self.assertFalse(transport.disconnecting)
        self.reactor.advance(1)
        self.assertTrue(protocol.closed)
        self.assertNotIn(b"BYE", transport.value())
