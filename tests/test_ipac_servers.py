# -*- test-case-name: tests.test_ipac_servers -*-
"""
Tests for IP access control in the servers: L{gomail_twisted.ipac} wired
into L{gomail_twisted.connection.LimitedServerFactory} and each protocol's
logins, seen on the wire of the SMTP, POP3 and IMAP4 servers over
L{StringTransport}, with one L{IPAccessControl} shared by the three and
time on a L{Clock}.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from twisted.internet.address import IPv4Address, IPv6Address
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import ISSLTransport
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import LogLevel, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import directlyProvides, implementer

from gomail_twisted.connection import LimitedServerFactory, Refusal
from gomail_twisted.imap4 import _status as S
from gomail_twisted.imap4._values import ConnectionInfo as IMAPConnectionInfo
from gomail_twisted.imap4._values import IMAPCredentials
from gomail_twisted.imap4.backend import IMAPBackend, IMAPSession
from gomail_twisted.imap4.factory import IMAP4ServerFactory
from gomail_twisted.imap4.interfaces import IIMAPBackend
from gomail_twisted.ipac import AccessEvent, EventKind, IPAccessControl
from gomail_twisted.maildir import IAccount
from gomail_twisted.pop3 import FunctionBackend as POP3FunctionBackend
from gomail_twisted.pop3 import MemoryMaildrop, POP3Credentials, POP3ServerFactory
from gomail_twisted.pop3 import replies as pop3Replies
from gomail_twisted.pop3.interfaces import IPOP3Backend
from gomail_twisted.smtp import FunctionBackend as SMTPFunctionBackend
from gomail_twisted.smtp import SMTPCredentials, SMTPServerFactory
from gomail_twisted.smtp import replies as smtpReplies

PEER = "192.0.2.7"
OTHER = "198.51.100.9"
USER = "alice"
PASSWORD = "secret"
#: What a login with this password gets: a temporary failure, a check
#: that could not be made.
BUSY = "busy"

SMTP_BLOCKED = b"554 Access denied: too many failed logins or connections from you\r\n"
POP3_BLOCKED = (
    b"-ERR [SYS/TEMP] Access denied: too many failed logins or connections from you\r\n"
)
IMAP_BLOCKED = (
    b"* BYE [UNAVAILABLE] Access denied: too many failed logins or connections"
    b" from you\r\n"
)


def plain(login: str, password: str) -> bytes:
    """
    A SASL PLAIN response, base64-encoded.
    """
    return base64.b64encode(f"\0{login}\0{password}".encode())


@implementer(IAccount)
class _Account:
    """
    What a good IMAP login gives; the tests never open a folder.
    """


class _IMAPSession(IMAPSession):
    """
    Logs in L{USER} with L{PASSWORD}; L{BUSY} is C{NO [UNAVAILABLE]}.
    """

    def __init__(self, info: IMAPConnectionInfo, servers: Servers) -> None:
        super().__init__(info)
        self.servers = servers

    def login(self, credentials: IMAPCredentials) -> Any:
        return self.servers.check("imap", credentials.login, credentials.password)


@implementer(IIMAPBackend, IPOP3Backend)
class _CountingBackend:
    """
    A backend that records each new session, then asks another.
    """

    def __init__(self, backend: Any, name: str, calls: list[tuple[str, str]]) -> None:
        self.backend = backend
        self.name = name
        self.calls = calls

    def newSession(self, info: Any) -> Any:
        self.calls.append((self.name, "newSession"))
        return self.backend.newSession(info)


class Connection:
    """
    A client of one of the servers over a L{StringTransport}.

    @ivar greeting: what the server said on connecting.
    """

    def __init__(
        self,
        factory: LimitedServerFactory,
        peer: IPv4Address | IPv6Address,
        implicitTLS: bool = False,
    ) -> None:
        local = type(peer)("TCP", peer.host, 25)
        self.transport = StringTransport(hostAddress=local, peerAddress=peer)
        if implicitTLS:
            directlyProvides(self.transport, ISSLTransport)
        protocol = factory.buildProtocol(peer)
        assert protocol is not None
        self.protocol = protocol
        protocol.makeConnection(self.transport)
        self.greeting = self.read()

    def read(self) -> bytes:
        """
        Everything the server wrote since the last read.
        """
        data = self.transport.value()
        self.transport.clear()
        return data

    def send(self, line: bytes) -> bytes:
        """
        Send one line (CRLF added); return what the server wrote.
        """
        self.protocol.dataReceived(line + b"\r\n")
        return self.read()

    @property
    def closed(self) -> bool:
        """
        Whether the server closed (or dropped) the connection.
        """
        return bool(self.transport.disconnecting or self.transport.disconnected)

    def lose(self) -> None:
        """
        Go away, as a client does.
        """
        if self.transport.connected:
            self.transport.connected = False
            self.protocol.connectionLost()


class Servers:
    """
    The three servers on one clock, sharing one L{IPAccessControl}, with
    backends that log in L{USER} with L{PASSWORD} and record every call.

    @ivar calls: C{(protocol, hook)} for every backend call.
    @ivar events: what access control told its notify hook.
    @ivar held: when set, each check returns an unfired Deferred kept here.
    @ivar returnRefusals: the SMTP and POP3 checks return their refusal
        rather than raise it, as a hook may.
    """

    def __init__(self, test: SynchronousTestCase, **settings: Any) -> None:
        self.test = test
        self.clock = Clock()
        self.calls: list[tuple[str, str]] = []
        self.events: list[AccessEvent] = []
        self.held: list[Deferred[None]] | None = None
        self.returnRefusals = False
        settings.setdefault("allow", ())
        self.control = IPAccessControl(
            self.clock, notify=self.events.append, **settings
        )
        self.smtp = SMTPServerFactory(
            SMTPFunctionBackend(
                connect=lambda info: self.calls.append(("smtp", "newSession")),
                authenticate=self._smtpAuthenticate,
            ),
            hostname="mx.test",
            reactor=self.clock,
            allowPlaintextAuth=True,
            accessControl=self.control,
        )
        self.pop3 = POP3ServerFactory(
            _CountingBackend(
                POP3FunctionBackend(login=self._pop3Login, apop=self._pop3Apop),
                "pop3",
                self.calls,
            ),
            hostname="pop.test",
            reactor=self.clock,
            allowPlaintextAuth=True,
            accessControl=self.control,
        )
        self.imap = IMAP4ServerFactory(
            _CountingBackend(
                IMAPBackend(lambda info: _IMAPSession(info, self)), "imap", self.calls
            ),
            hostname="imap.test",
            reactor=self.clock,
            allowPlaintextAuth=True,
            accessControl=self.control,
        )

    def check(self, protocol: str, login: str, password: str) -> Any:
        """
        The login hooks' check.
        """
        self.calls.append((protocol, "login"))
        if self.held is not None:
            d: Deferred[None] = Deferred()
            self.held.append(d)
            return d
        if password == BUSY:
            raise _TEMPORARY[protocol]
        if login != USER or password != PASSWORD:
            if self.returnRefusals and protocol != "imap":
                return _REFUSED[protocol]
            raise _REFUSED[protocol]
        return _SUCCESS[protocol]()

    def _smtpAuthenticate(self, info: object, credentials: SMTPCredentials) -> Any:
        return self.check("smtp", credentials.login, credentials.password)

    def _pop3Login(self, info: object, credentials: POP3Credentials) -> Any:
        return self.check("pop3", credentials.login, credentials.password)

    def _pop3Apop(self, info: object, value: tuple[str, str, str]) -> Any:
        # No digest is ever right here: the password is not kept in clear.
        return self.check("pop3", value[0], "")

    def connect(
        self, factory: LimitedServerFactory, peer: str = PEER, implicitTLS: bool = False
    ) -> Connection:
        """
        A new connection from C{peer}, dropped at the end of the test.
        """
        address: IPv4Address | IPv6Address = (
            IPv6Address("TCP", peer, 40000)
            if ":" in peer
            else IPv4Address("TCP", peer, 40000)
        )
        connection = Connection(factory, address, implicitTLS)
        self.test.addCleanup(connection.lose)
        return connection

    def failSMTP(self, connection: Connection, password: str = "wrong") -> bytes:
        """
        EHLO, then one AUTH PLAIN on an SMTP connection.

        @return: the answer to AUTH.
        """
        connection.send(b"EHLO client.test")
        return connection.send(b"AUTH PLAIN " + plain(USER, password))

    def failPOP3(self, connection: Connection, password: str = "wrong") -> bytes:
        """
        One USER and PASS on a POP3 connection.
        """
        connection.send(b"USER " + USER.encode())
        return connection.send(b"PASS " + password.encode())

    def failIMAP(self, connection: Connection, password: str = "wrong") -> bytes:
        """
        One LOGIN on an IMAP connection.
        """
        return connection.send(
            b'a LOGIN "' + USER.encode() + b'" "' + password.encode() + b'"'
        )

    def failures(self, kind: str, count: int, peer: str = PEER) -> None:
        """
        C{count} failed logins on one protocol, ten to a connection (below
        each server's error limit).
        """
        factory = {"smtp": self.smtp, "pop3": self.pop3, "imap": self.imap}[kind]
        fail: Callable[[Connection], bytes] = {
            "smtp": self.failSMTP,
            "pop3": self.failPOP3,
            "imap": self.failIMAP,
        }[kind]
        left = count
        while left > 0:
            connection = self.connect(factory, peer)
            for _ in range(min(10, left)):
                answer = fail(connection)
                self.test.assertIn(_REFUSAL_BYTES[kind], answer)
            left -= 10
            connection.lose()


_REFUSED: dict[str, Exception] = {
    "smtp": smtpReplies.AUTH_FAILED,
    "pop3": pop3Replies.AUTH_FAILED,
    "imap": S.AUTHENTICATION_FAILED,
}
_TEMPORARY: dict[str, Exception] = {
    "smtp": smtpReplies.AUTH_TEMPORARY_FAILURE,
    "pop3": pop3Replies.TEMPORARY_FAILURE,
    "imap": S.TEMPORARY_FAILURE,
}
_SUCCESS: dict[str, Callable[[], Any]] = {
    "smtp": lambda: USER,
    "pop3": lambda: MemoryMaildrop([]),
    "imap": _Account,
}
_REFUSAL_BYTES = {
    "smtp": b"535 5.7.8 ",
    "pop3": b"-ERR [AUTH] ",
    "imap": b"a NO [AUTHENTICATIONFAILED] ",
}


class AdmissionTests(SynchronousTestCase):
    """
    Who is let in: a blocked peer is refused with each protocol's short
    error before any work; others are counted.
    """

    def setUp(self) -> None:
        self.servers = Servers(self)

    def block(self, peer: str = PEER) -> None:
        """
        Block C{peer} through thirty failed POP3 logins.
        """
        self.servers.failures("pop3", 30, peer)
        self.assertTrue(self.servers.control.isBlocked(peer))

    def test_refusedOnEveryProtocol(self) -> None:
        """
        After 30 failed POP3 logins, the next connection on each protocol
        gets its short error instead of the greeting and is closed: SMTP
        554 (RFC 5321 3.1), POP3 C{-ERR [SYS/TEMP]}, IMAP C{* BYE
        [UNAVAILABLE]}.
        """
        s = self.servers
        self.block()
        for factory, expected in [
            (s.smtp, SMTP_BLOCKED),
            (s.pop3, POP3_BLOCKED),
            (s.imap, IMAP_BLOCKED),
        ]:
            connection = s.connect(factory)
            self.assertEqual(connection.greeting, expected)
            self.assertTrue(connection.closed)

    def test_noWorkForBlockedPeer(self) -> None:
        """
        A blocked peer's connection makes no backend call: no session, no
        login.
        """
        s = self.servers
        self.block()
        s.calls.clear()
        for factory in (s.smtp, s.pop3, s.imap):
            connection = s.connect(factory)
            connection.send(b"USER alice")
        self.assertEqual(s.calls, [])

    def test_otherPeersAdmitted(self) -> None:
        """
        A block is for its address only: another peer is greeted.
        """
        s = self.servers
        self.block()
        connection = s.connect(s.smtp, OTHER)
        self.assertEqual(connection.greeting, b"220 mx.test ESMTP gomail_twisted\r\n")
        self.assertFalse(connection.closed)

    def test_blockExpires(self) -> None:
        """
        Once the block's hour has passed the peer is greeted again.
        """
        s = self.servers
        self.block()
        s.clock.advance(3599)
        self.assertEqual(s.connect(s.pop3).greeting, POP3_BLOCKED)
        s.clock.advance(1)
        connection = s.connect(s.pop3)
        self.assertTrue(connection.greeting.startswith(b"+OK "), connection.greeting)

    def test_connectionsCounted(self) -> None:
        """
        New connections on any server count toward the connection
        threshold; the one after it is refused.
        """
        s = Servers(self, warnAfterConnections=2, blockAfterConnections=4)
        greetings = [
            s.connect(factory).greeting[:3]
            for factory in (s.smtp, s.pop3, s.imap, s.smtp, s.pop3)
        ]
        self.assertEqual(greetings, [b"220", b"+OK", b"* O", b"220", b"-ER"])
        self.assertEqual(
            [e.kind for e in s.events], [EventKind.IP_WARNED, EventKind.IP_BLOCKED]
        )
        self.assertEqual(s.events[-1].reason, "4 new connections")

    def test_blockedConnectionsNotCounted(self) -> None:
        """
        Connections refused as blocked are not counted: a blocked peer
        that keeps knocking is not blocked longer for it, and adds nothing
        to access control's memory.
        """
        s = self.servers
        self.block()
        size = s.control.size
        for _ in range(50):
            s.connect(s.smtp).lose()
        self.assertEqual(s.control.size, size)
        s.clock.advance(3600)
        self.assertTrue(s.connect(s.smtp).greeting.startswith(b"220 "))

    def test_refusedByNumbersStillCounted(self) -> None:
        """
        A connection refused because the peer has too many open is still
        a new connection to access control.
        """
        s = Servers(self, warnAfterConnections=2, blockAfterConnections=3)
        s.smtp.maxConnectionsPerPeer = 1
        first = s.connect(s.smtp)
        self.assertEqual(first.greeting[:4], b"220 ")
        second = s.connect(s.smtp)
        self.assertEqual(second.greeting[:4], b"421 ")
        s.connect(s.smtp)
        self.assertEqual(s.events[-1].kind, EventKind.IP_BLOCKED)

    def test_blockedConnectionsNotLogged(self) -> None:
        """
        A blocked peer's connections log nothing at info or above: the
        block was logged once, and a flood of knocks must not fill the log.
        """
        s = self.servers
        self.block()
        events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        for _ in range(5):
            for factory in (s.smtp, s.pop3, s.imap):
                s.connect(factory).lose()
        levels = {e["log_level"] for e in events}
        self.assertEqual(levels, {LogLevel.debug})

    def test_shuttingDownBeforeBlocked(self) -> None:
        """
        While the server stops, even a blocked peer is told so: that is
        checked first.
        """
        s = self.servers
        self.block()
        s.smtp.shutdown()
        connection = s.connect(s.smtp)
        self.assertEqual(
            connection.greeting,
            b"421 Server shutting down, closing connection\r\n",
        )

    def test_allowListedNeverBlocked(self) -> None:
        """
        With the default allow-list, loopback is never counted nor blocked,
        however many logins fail.
        """
        s = Servers(self, allow=("127.0.0.0/8", "::1/128"))
        for kind in ("smtp", "pop3", "imap"):
            s.failures(kind, 40, "127.0.0.1")
        s.failures("imap", 40, "::1")
        self.assertEqual(s.events, [])
        self.assertEqual(s.connect(s.imap, "127.0.0.1").greeting[:4], b"* OK")
        self.assertEqual(s.connect(s.smtp, "::1").greeting[:4], b"220 ")

    def test_implicitTLSDroppedWithoutHandshake(self) -> None:
        """
        On implicit TLS a blocked peer is dropped at once with no word: a
        refusal could only be said after a TLS handshake.
        """
        s = self.servers
        self.block()
        for factory in (s.smtp, s.pop3, s.imap):
            connection = s.connect(factory, implicitTLS=True)
            self.assertEqual(connection.greeting, b"")
            self.assertTrue(connection.transport.disconnected)
            self.assertFalse(connection.protocol.handshaking)

    def test_implicitTLSOtherRefusalsSaid(self) -> None:
        """
        Other refusals on implicit TLS are still said (after the
        handshake), as before.
        """
        s = self.servers
        s.smtp.shutdown()
        connection = s.connect(s.smtp, implicitTLS=True)
        self.assertEqual(connection.greeting[:4], b"421 ")

    def test_ipv6Peer(self) -> None:
        """
        An IPv6 peer is blocked by its address, and refused on every
        protocol.
        """
        s = self.servers
        peer = "2001:db8::7"
        self.block(peer)
        self.assertEqual(s.connect(s.imap, peer).greeting, IMAP_BLOCKED)
        self.assertEqual(s.connect(s.smtp, "2001:db8::8").greeting[:4], b"220 ")

    def test_ipv6SubnetBlocked(self) -> None:
        """
        Once three addresses of a /64 are blocked, a fourth address in it
        is refused without a failure of its own.
        """
        s = self.servers
        for i in (1, 2, 3):
            self.block(f"2001:db8::{i}")
        self.assertEqual(s.events[-1].kind, EventKind.SUBNET_BLOCKED)
        self.assertEqual(s.connect(s.smtp, "2001:db8::99").greeting, SMTP_BLOCKED)
        self.assertEqual(s.connect(s.smtp, "2001:db8:0:1::1").greeting[:4], b"220 ")

    def test_refusalEnum(self) -> None:
        """
        The factory gives L{Refusal.BLOCKED} for a blocked peer.
        """
        s = self.servers
        self.block()
        connection = s.connect(s.smtp)
        self.assertEqual(s.smtp.admit(connection.protocol), Refusal.BLOCKED)  # type: ignore[arg-type]


class LoginCountingTests(SynchronousTestCase):
    """
    Which logins count, on each protocol and each way of logging in.
    """

    def setUp(self) -> None:
        self.servers = Servers(self)

    def failures(self, peer: str = PEER) -> list[AccessEvent]:
        return [e for e in self.servers.events if e.address == peer]

    def test_thirtiethFailureBlocks(self) -> None:
        """
        On each protocol alone, the 30th failed login blocks the peer; 29
        do not.
        """
        for kind, peer in [
            ("smtp", "192.0.2.1"),
            ("pop3", "192.0.2.2"),
            ("imap", "192.0.2.3"),
        ]:
            self.servers.failures(kind, 29, peer)
            self.assertFalse(self.servers.control.isBlocked(peer), kind)
            self.servers.failures(kind, 1, peer)
            self.assertTrue(self.servers.control.isBlocked(peer), kind)
            self.assertEqual(
                self.servers.events[-1],
                AccessEvent(EventKind.IP_BLOCKED, peer, "30 failed logins", 3600.0),
            )

    def test_failuresAddUpAcrossProtocols(self) -> None:
        """
        Ten failures on each protocol block the peer on all of them.
        """
        s = self.servers
        for kind in ("smtp", "pop3", "imap"):
            s.failures(kind, 10)
        self.assertEqual(s.connect(s.smtp).greeting, SMTP_BLOCKED)

    def test_everyMechanismCounts(self) -> None:
        """
        SMTP AUTH PLAIN and LOGIN, POP3 USER/PASS, APOP and AUTH PLAIN,
        IMAP LOGIN and AUTHENTICATE PLAIN (with an initial response or
        after a challenge) each count one failure.
        """
        s = self.servers
        smtp = s.connect(s.smtp)
        s.failSMTP(smtp)
        self.assertEqual(smtp.send(b"AUTH LOGIN"), b"334 VXNlcm5hbWU6\r\n")
        smtp.send(base64.b64encode(USER.encode()))
        self.assertIn(b"535 ", smtp.send(base64.b64encode(b"wrong")))
        pop3 = s.connect(s.pop3)
        s.failPOP3(pop3)
        self.assertIn(b"-ERR [AUTH]", pop3.send(b"APOP alice " + b"0" * 32))
        self.assertIn(b"-ERR [AUTH]", pop3.send(b"AUTH PLAIN " + plain(USER, "x")))
        self.assertEqual(pop3.send(b"AUTH PLAIN"), b"+ \r\n")
        self.assertIn(b"-ERR [AUTH]", pop3.send(plain(USER, "y")))
        imap = s.connect(s.imap)
        s.failIMAP(imap)
        self.assertIn(b"b NO ", imap.send(b"b AUTHENTICATE PLAIN " + plain(USER, "x")))
        self.assertEqual(imap.send(b"c AUTHENTICATE PLAIN"), b"+ \r\n")
        self.assertIn(b"c NO ", imap.send(plain(USER, "y")))
        # Nine so far: 21 more block, 20 do not.
        s.failures("imap", 20)
        self.assertFalse(s.control.isBlocked(PEER))
        s.failures("imap", 1)
        self.assertTrue(s.control.isBlocked(PEER))

    def test_returnedRefusalsCount(self) -> None:
        """
        A refusal the hook returns, rather than raises, counts too (SMTP
        and POP3 hooks may answer so).
        """
        s = self.servers
        s.returnRefusals = True
        s.failures("smtp", 15)
        s.failures("pop3", 15)
        self.assertTrue(s.control.isBlocked(PEER))

    def test_temporaryFailuresNotCounted(self) -> None:
        """
        A check that could not be made (SMTP 454, POP3 C{-ERR [SYS/TEMP]},
        IMAP C{NO [UNAVAILABLE]}) is not a failed login, however many.
        """
        s = self.servers
        for _ in range(4):
            smtp, pop3, imap = (s.connect(f) for f in (s.smtp, s.pop3, s.imap))
            for _ in range(10):
                self.assertIn(b"454 4.7.0 ", s.failSMTP(smtp, BUSY))
                self.assertIn(b"-ERR [SYS/TEMP] ", s.failPOP3(pop3, BUSY))
                self.assertIn(b"a NO [UNAVAILABLE] ", s.failIMAP(imap, BUSY))
        self.assertFalse(s.control.isBlocked(PEER))
        self.assertEqual(s.events, [])

    def test_successDoesNotForgive(self) -> None:
        """
        A good login between failures does not reset their count: 29
        failures, a success on each protocol, one more failure blocks.
        """
        s = self.servers
        s.failures("imap", 29)
        self.assertIn(b"235 ", s.failSMTP(s.connect(s.smtp), PASSWORD))
        self.assertIn(b"+OK Logged in", s.failPOP3(s.connect(s.pop3), PASSWORD))
        self.assertIn(b"a OK ", s.failIMAP(s.connect(s.imap), PASSWORD))
        self.assertFalse(s.control.isBlocked(PEER))
        s.failures("smtp", 1)
        self.assertTrue(s.control.isBlocked(PEER))
        self.assertIn(EventKind.FAILING_AFTER_SUCCESS, [e.kind for e in s.events])

    def test_successForgivesConnections(self) -> None:
        """
        A good login forgives the peer's count of new connections: a
        client that logs in on each is never blocked for connecting.
        """
        s = Servers(self, warnAfterConnections=3, blockAfterConnections=4)
        for _ in range(10):
            connection = s.connect(s.pop3)
            self.assertIn(b"+OK Logged in", s.failPOP3(connection, PASSWORD))
            connection.lose()
        self.assertFalse(s.control.isBlocked(PEER))

    def test_failureCountedAfterHangUp(self) -> None:
        """
        A peer that hangs up before its login is answered is counted all
        the same, on every protocol: hanging up is no way round.
        """
        s = self.servers
        s.held = []
        for kind, factory, fail in [
            ("smtp", s.smtp, s.failSMTP),
            ("pop3", s.pop3, s.failPOP3),
            ("imap", s.imap, s.failIMAP),
        ]:
            for _ in range(10):
                connection = s.connect(factory)
                fail(connection)
                connection.lose()
                s.held.pop().errback(_REFUSED[kind])
        self.assertTrue(s.control.isBlocked(PEER))

    def test_blockedWhileConnected(self) -> None:
        """
        A connection opened before its peer was blocked gets the short
        error at its next login, and is closed; the credentials are not
        checked.
        """
        s = self.servers
        smtp, pop3, imap = (s.connect(f) for f in (s.smtp, s.pop3, s.imap))
        s.failSMTP(smtp)
        s.failures("pop3", 29)
        s.calls.clear()
        self.assertEqual(
            s.failSMTP(smtp, PASSWORD),
            b"421 4.7.1 Access denied: too many failed logins, closing connection\r\n",
        )
        self.assertEqual(s.failPOP3(pop3, PASSWORD), POP3_BLOCKED)
        self.assertEqual(s.failIMAP(imap, PASSWORD), IMAP_BLOCKED)
        for connection in (smtp, pop3, imap):
            self.assertTrue(connection.closed)
        self.assertEqual(s.calls, [])

    def test_blockedDuringSASLExchange(self) -> None:
        """
        A peer blocked in the middle of a SASL exchange gets the short
        error when the exchange yields its credentials: SMTP AUTH LOGIN,
        POP3 AUTH PLAIN and IMAP AUTHENTICATE PLAIN after a challenge.
        """
        s = self.servers
        smtp, pop3, imap = (s.connect(f) for f in (s.smtp, s.pop3, s.imap))
        smtp.send(b"EHLO client.test")
        self.assertEqual(smtp.send(b"AUTH LOGIN"), b"334 VXNlcm5hbWU6\r\n")
        self.assertEqual(smtp.send(base64.b64encode(b"alice")), b"334 UGFzc3dvcmQ6\r\n")
        self.assertEqual(pop3.send(b"AUTH PLAIN"), b"+ \r\n")
        self.assertEqual(imap.send(b"c AUTHENTICATE PLAIN"), b"+ \r\n")
        s.failures("imap", 30)
        s.calls.clear()
        self.assertEqual(
            smtp.send(base64.b64encode(PASSWORD.encode()))[:10], b"421 4.7.1 "
        )
        self.assertEqual(pop3.send(plain(USER, PASSWORD)), POP3_BLOCKED)
        self.assertEqual(imap.send(plain(USER, PASSWORD)), IMAP_BLOCKED)
        for connection in (smtp, pop3, imap):
            self.assertTrue(connection.closed)
        self.assertEqual(s.calls, [])
