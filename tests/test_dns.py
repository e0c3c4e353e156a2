# -*- test-case-name: tests.test_dns -*-
"""
Tests for L{gomail_twisted.dns}, against a real DNS server on loopback.
"""

from __future__ import annotations

import random
import struct
from typing import Any

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.resolver
import dns.rrset
from twisted.internet import reactor
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.error import ConnectionDone, ConnectionRefusedError
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.internet.threads import deferToThread
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool
from twisted.trial.unittest import SynchronousTestCase, TestCase

from gomail_twisted.dkim import DKIMStatus, sign, verify
from gomail_twisted.dns import (
    EDNS_PAYLOAD,
    MAX_DATAGRAM,
    DNSNameError,
    DNSNullMXError,
    DNSPermanentError,
    DNSTemporaryError,
    DNSTimeoutError,
    MailExchanger,
    Resolver,
)
from tests._dnsserver import LoopbackDNSServer, ScriptedDNSServer
from tests.test_dkim import DOMAIN, MESSAGE, ed25519Key, recordFor


class ResolverTests(TestCase):
    """
    Tests for L{Resolver} against L{LoopbackDNSServer}.
    """

    timeout = 20

    def setUp(self) -> None:
        self.server = LoopbackDNSServer()
        s = self.server
        s.addMX("example.com", 20, "mx2.example.com")
        s.addMX("example.com", 10, "mx1.example.com")
        s.addMX("example.com", 30, "mx3.example.com")
        s.addA("mx1.example.com", "127.0.0.2")
        s.addA("implicit.example", "127.0.0.3")
        s.addAAAA("implicit6.example", "::1")
        s.addA("dual.example", "127.0.0.4")
        s.addAAAA("dual.example", "::1")
        s.addMX("nullmx.example", 0, ".")
        s.addTXT("txt.example", b"v=spf1 ", b"-all")
        s.addTXT("txt.example", b"second")
        s.addTXT("nothing.example", b"")
        s.addServerFailure("broken.example")
        s.addNoResponse("slow.example")
        s.start(reactor)
        self.addCleanup(s.stop)
        self.resolver = Resolver(
            reactor,
            nameservers=["127.0.0.1"],
            port=s.port,
            timeout=0.3,
            lifetime=0.8,
            randomSource=random.Random(1),
        )

    async def test_mxSortedByPreference(self) -> None:
        """
        MX hosts come sorted by preference, without the final dot.
        """
        hosts = await self.resolver.lookupMX("example.com")
        self.assertEqual(
            hosts,
            [
                MailExchanger(10, "mx1.example.com"),
                MailExchanger(20, "mx2.example.com"),
                MailExchanger(30, "mx3.example.com"),
            ],
        )
        self.assertIn(("example.com", "MX"), self.server.queries)

    async def test_equalPreferenceShuffled(self) -> None:
        """
        Hosts of equal preference are all returned, in a varying order.
        """
        for i in range(6):
            self.server.addMX("many.example", 5, f"h{i}.example")
        orders = set()
        for _ in range(6):
            hosts = await self.resolver.lookupMX("many.example")
            self.assertEqual({h.preference for h in hosts}, {5})
            orders.add(tuple(h.host for h in hosts))
        self.assertEqual(
            {frozenset(o) for o in orders},
            {frozenset(f"h{i}.example" for i in range(6))},
        )
        self.assertGreater(len(orders), 1)

    async def test_implicitMX(self) -> None:
        """
        A domain with an address but no MX is its own implicit MX
        (RFC 5321 5.1), for IPv4 and IPv6.
        """
        for name in ("implicit.example", "implicit6.example"):
            hosts = await self.resolver.lookupMX(name)
            self.assertEqual(hosts, [MailExchanger(0, name, implicit=True)])

    async def test_nullMX(self) -> None:
        """
        A null MX is a permanent error of its own class (RFC 7505).
        """
        d = self.resolver.lookupMX("nullmx.example")
        error = await self.assertFailure(d, DNSNullMXError)
        self.assertIsInstance(error, DNSPermanentError)

    async def test_nxdomain(self) -> None:
        """
        A name that does not exist is a permanent L{DNSNameError}, for every
        lookup.
        """
        for lookup in (
            self.resolver.lookupMX,
            self.resolver.lookupTXT,
            self.resolver.lookupA,
            self.resolver.lookupAddresses,
        ):
            d: Deferred[Any] = lookup("missing.example")  # type: ignore[operator]
            error = await self.assertFailure(d, DNSNameError)
            self.assertNotIsInstance(error, DNSTemporaryError)

    async def test_noMXNoAddress(self) -> None:
        """
        A domain that exists with neither MX nor address takes no mail.
        """
        await self.assertFailure(self.resolver.lookupMX("txt.example"), DNSNameError)

    async def test_serverFailure(self) -> None:
        """
        SERVFAIL is a temporary error, not a permanent one.
        """
        d = self.resolver.lookupMX("broken.example")
        error = await self.assertFailure(d, DNSTemporaryError)
        self.assertNotIsInstance(error, DNSPermanentError)

    async def test_timeout(self) -> None:
        """
        A server that never answers gives a L{DNSTimeoutError}, which is
        temporary.
        """
        d = self.resolver.lookupTXT("slow.example")
        error = await self.assertFailure(d, DNSTimeoutError)
        self.assertIsInstance(error, DNSTemporaryError)

    async def test_txt(self) -> None:
        """
        Each TXT record comes back with its strings joined; a name with no
        TXT record gives an empty list.
        """
        records = await self.resolver.lookupTXT("txt.example")
        self.assertEqual(sorted(records), [b"second", b"v=spf1 -all"])
        self.assertEqual(await self.resolver.lookupTXT("mx1.example.com"), [])
        self.assertEqual(await self.resolver.lookupTXT("nothing.example"), [b""])

    async def test_addresses(self) -> None:
        """
        A and AAAA lookups return the addresses; the combined lookup returns
        IPv6 first, and a family without records is no error.
        """
        self.assertEqual(await self.resolver.lookupA("dual.example"), ["127.0.0.4"])
        self.assertEqual(await self.resolver.lookupAAAA("dual.example"), ["::1"])
        self.assertEqual(
            await self.resolver.lookupAddresses("dual.example"), ["::1", "127.0.0.4"]
        )
        self.assertEqual(
            await self.resolver.lookupAddresses("mx1.example.com"), ["127.0.0.2"]
        )

    async def test_dkimOverDNS(self) -> None:
        """
        L{Resolver.lookupTXT} serves L{verify}: a published key verifies,
        a missing one is a permerror and a failing server a temperror.
        """
        self.server.addTXT(f"sel._domainkey.{DOMAIN}", recordFor("ed25519"))
        self.server.addServerFailure(f"bad._domainkey.{DOMAIN}")
        message = MESSAGE
        for selector in ("sel", "gone", "bad"):
            message = sign(message, DOMAIN, selector, ed25519Key()) + message
        results = await verify(message, self.resolver.lookupTXT)
        self.assertEqual(
            [(r.selector, r.status) for r in results],
            [
                ("bad", DKIMStatus.TEMPERROR),
                ("gone", DKIMStatus.PERMERROR),
                ("sel", DKIMStatus.PASS),
            ],
        )

    async def test_longTXTOverTCP(self) -> None:
        """
        The loopback server answers over TCP too, on the same port, with
        records too long for one string.
        """
        strings = [b"a" * 255, b"b" * 255, b"c" * 100]
        self.server.addTXT("long.example", *strings)

        def query() -> Any:
            request = dns.message.make_query("long.example.", "TXT")
            return dns.query.tcp(request, "127.0.0.1", port=self.server.port, timeout=2)

        response = await deferToThread(query)
        [rrset] = response.answer
        self.assertEqual([b"".join(r.strings) for r in rrset], [b"".join(strings)])
        self.assertEqual(
            await self.resolver.lookupTXT("long.example"), [b"".join(strings)]
        )


SERVER = ("192.0.2.53", 53)
OTHER_SERVER = ("192.0.2.54", 53)


class _FakeUDPPort:
    """
    A UDP socket that records what it sends and whether it is open.
    """

    def __init__(self, protocol: Any, interface: str, maxPacketSize: int) -> None:
        self.protocol = protocol
        self.interface = interface
        self.maxPacketSize = maxPacketSize
        self.peer: tuple[str, int] | None = None
        self.sent: list[bytes] = []
        self.open = True

    def connect(self, host: str, port: int) -> None:
        self.peer = (host, port)

    def write(self, datagram: bytes, addr: Any = None) -> None:
        assert addr is None and self.peer is not None
        self.sent.append(datagram)

    def stopListening(self) -> None:
        self.open = False

    def request(self) -> dns.message.Message:
        """
        @return: the query sent.
        """
        [datagram] = self.sent
        return dns.message.from_wire(datagram)

    def receive(self, datagram: bytes, addr: tuple[str, int] | None = None) -> None:
        """
        Deliver a datagram, from the server unless told otherwise.
        """
        self.protocol.datagramReceived(datagram, addr or self.peer)


class _FakeReactor(Clock):
    """
    A clock that hands out L{_FakeUDPPort}s and records TCP connections.
    """

    def __init__(self) -> None:
        super().__init__()
        self.udp: list[_FakeUDPPort] = []
        self.tcp: list[tuple[str, int, Any, float]] = []

    def listenUDP(
        self, port: int, protocol: Any, interface: str = "", maxPacketSize: int = 8192
    ) -> _FakeUDPPort:
        udp = _FakeUDPPort(protocol, interface, maxPacketSize)
        self.udp.append(udp)
        protocol.makeConnection(udp)
        return udp

    def connectTCP(
        self, host: str, port: int, factory: Any, timeout: float = 30
    ) -> Any:
        self.tcp.append((host, port, factory, timeout))
        return _FakeConnector()

    def openPorts(self) -> list[_FakeUDPPort]:
        return [p for p in self.udp if p.open]


class _FakeConnector:
    def disconnect(self) -> None:
        pass


def answerA(request: dns.message.Message, *addresses: str) -> bytes:
    """
    A reply to C{request} giving these IPv4 addresses.
    """
    reply = dns.message.make_response(request)
    question = request.question[0]
    reply.answer.append(
        dns.rrset.from_text_list(question.name, 60, "IN", "A", list(addresses))
    )
    return reply.to_wire()


def answerRcode(request: dns.message.Message, rcode: int) -> bytes:
    """
    A reply to C{request} with this error code and no records.
    """
    reply = dns.message.make_response(request)
    reply.set_rcode(rcode)
    return reply.to_wire()


class TransportTests(SynchronousTestCase):
    """
    How L{Resolver} carries queries, with a fake reactor and a clock.
    """

    def setUp(self) -> None:
        self.reactor = _FakeReactor()

    def resolver(self, *servers: tuple[str, int], **kwargs: Any) -> Resolver:
        kwargs.setdefault("timeout", 1.0)
        kwargs.setdefault("lifetime", 3.5)
        return Resolver(
            self.reactor,
            nameservers=[host for host, _ in servers] or [SERVER[0]],
            port=53,
            **kwargs,
        )

    def test_onlyTheServersReplyCounts(self) -> None:
        """
        Junk, replies from another address or port, with another ID or for
        another question are ignored; the server's own reply is taken, and
        its socket closed.
        """
        d = self.resolver().lookupA("host.example")
        [port] = self.reactor.udp
        self.assertEqual(port.peer, SERVER)
        self.assertEqual(port.interface, "")
        request = port.request()
        self.assertEqual(str(request.question[0].name), "host.example.")
        forged = answerA(request, "203.0.113.66")
        port.receive(forged, ("192.0.2.99", 53))
        port.receive(forged, (SERVER[0], 5353))
        port.receive(b"\x00\x01junk")
        otherID = dns.message.from_wire(forged)
        otherID.id ^= 1
        port.receive(otherID.to_wire())
        otherName = dns.message.make_query("elsewhere.example", "A")
        otherName.id = request.id
        port.receive(answerA(otherName, "203.0.113.66"))
        self.assertNoResult(d)
        port.receive(answerA(request, "192.0.2.1"))
        self.assertEqual(self.successResultOf(d), ["192.0.2.1"])
        self.assertFalse(port.open)

    def test_readLimit(self) -> None:
        """
        A UDP reply is read up to L{MAX_DATAGRAM} octets, and the query
        advertises EDNS with L{EDNS_PAYLOAD}.
        """
        self.resolver().lookupA("host.example")
        [port] = self.reactor.udp
        self.assertEqual(port.maxPacketSize, MAX_DATAGRAM)
        self.assertEqual(port.request().payload, EDNS_PAYLOAD)

    def test_retriesEachServerUntilLifetime(self) -> None:
        """
        A silent server is asked again after the others, with a pause
        between rounds, until the lifetime ends in L{DNSTimeoutError};
        every socket is then closed.
        """
        resolver = self.resolver(SERVER, OTHER_SERVER)
        d = resolver.lookupTXT("slow.example")
        self.assertEqual([p.peer for p in self.reactor.udp], [SERVER])
        self.reactor.advance(1.0)
        self.assertEqual([p.peer for p in self.reactor.udp], [SERVER, OTHER_SERVER])
        self.reactor.advance(1.0)
        self.assertEqual(len(self.reactor.udp), 2)
        self.reactor.advance(0.1)
        self.assertEqual(self.reactor.udp[-1].peer, SERVER)
        self.assertEqual(len(self.reactor.openPorts()), 1)
        self.reactor.advance(1.0)
        # 3.1 seconds gone: the last try gets the 0.4 left.
        self.assertEqual(self.reactor.udp[-1].peer, OTHER_SERVER)
        self.assertNoResult(d)
        self.reactor.advance(0.4)
        self.failureResultOf(d, DNSTimeoutError)
        self.assertEqual(self.reactor.openPorts(), [])
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_failingServerSkipped(self) -> None:
        """
        A server that answers SERVFAIL, REFUSED or a malformed answer is
        not asked again; the next one is asked at once.  When none is left
        the lookup fails with L{DNSTemporaryError} without waiting for the
        lifetime.
        """
        d = self.resolver(SERVER, OTHER_SERVER).lookupA("host.example")
        first = self.reactor.udp[0]
        first.receive(answerRcode(first.request(), dns.rcode.SERVFAIL))
        second = self.reactor.udp[1]
        self.assertEqual(second.peer, OTHER_SERVER)
        second.receive(answerA(second.request(), "192.0.2.7"))
        self.assertEqual(self.successResultOf(d), ["192.0.2.7"])

        d = self.resolver(SERVER, OTHER_SERVER).lookupA("host.example")
        first = self.reactor.udp[2]
        first.receive(answerRcode(first.request(), dns.rcode.REFUSED))
        second = self.reactor.udp[3]
        second.protocol.connectionRefused()
        error = self.failureResultOf(d, DNSTemporaryError).value
        self.assertNotIsInstance(error, DNSTimeoutError)
        self.assertEqual(len(self.reactor.udp), 4)
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_truncatedAskedOverTCP(self) -> None:
        """
        A truncated UDP reply sends the same question to the same server
        over TCP, length-prefixed, and the TCP answer is taken even when it
        arrives in pieces.
        """
        d = self.resolver().lookupA("host.example")
        [port] = self.reactor.udp
        request = port.request()
        truncated = dns.message.make_response(request)
        truncated.flags |= dns.flags.TC
        port.receive(truncated.to_wire())
        [(host, portNumber, factory, _)] = self.reactor.tcp
        self.assertEqual((host, portNumber), SERVER)
        protocol = factory.buildProtocol(None)
        transport = StringTransport()
        protocol.makeConnection(transport)
        sent = transport.value()
        (length,) = struct.unpack("!H", sent[:2])
        self.assertEqual(length, len(sent) - 2)
        asked = dns.message.from_wire(sent[2:])
        self.assertEqual(asked.question, request.question)
        reply = answerA(asked, "192.0.2.8")
        framed = struct.pack("!H", len(reply)) + reply
        protocol.dataReceived(framed[:1])
        protocol.dataReceived(framed[1:9])
        self.assertNoResult(d)
        protocol.dataReceived(framed[9:] + b"trailing junk")
        self.assertTrue(transport.disconnecting)
        protocol.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.successResultOf(d), ["192.0.2.8"])

    def test_tcpRefusedSkipsServer(self) -> None:
        """
        A server whose TCP port refuses the connection after a truncated
        reply is not asked again: with no other server the lookup fails
        with L{DNSTemporaryError} at once.
        """
        d = self.resolver().lookupA("host.example")
        [port] = self.reactor.udp
        truncated = dns.message.make_response(port.request())
        truncated.flags |= dns.flags.TC
        port.receive(truncated.to_wire())
        [(_, _, factory, _)] = self.reactor.tcp
        factory.clientConnectionFailed(None, Failure(ConnectionRefusedError()))
        error = self.failureResultOf(d, DNSTemporaryError).value
        self.assertNotIsInstance(error, DNSTimeoutError)
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_outstandingBounded(self) -> None:
        """
        At most C{maxOutstanding} lookups have a query in flight; the rest
        wait, and one that waits past its lifetime fails with
        L{DNSTimeoutError} without sending anything.
        """
        resolver = self.resolver(maxOutstanding=2, lifetime=1.5)
        lookups = [resolver.lookupA(f"h{i}.example") for i in range(4)]
        self.assertEqual(len(self.reactor.udp), 2)
        first = self.reactor.udp[0]
        first.receive(answerA(first.request(), "192.0.2.1"))
        self.assertEqual(self.successResultOf(lookups[0]), ["192.0.2.1"])
        self.assertEqual(len(self.reactor.udp), 3)
        self.assertEqual(len(self.reactor.openPorts()), 2)
        self.reactor.advance(1.5)
        for d in lookups[1:]:
            self.failureResultOf(d, DNSTimeoutError)
        names = [str(p.request().question[0].name) for p in self.reactor.udp]
        self.assertEqual(names, ["h0.example.", "h1.example.", "h2.example."])
        self.assertEqual(self.reactor.openPorts(), [])
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_cancelClosesSocket(self) -> None:
        """
        Cancelling a lookup closes its socket and frees its turn.
        """
        resolver = self.resolver(maxOutstanding=1)
        d = resolver.lookupA("host.example")
        waiting = resolver.lookupA("other.example")
        d.cancel()
        self.failureResultOf(d, CancelledError)
        self.assertFalse(self.reactor.udp[0].open)
        self.assertEqual(len(self.reactor.udp), 2)
        waiting.cancel()
        self.failureResultOf(waiting, CancelledError)
        self.assertEqual(self.reactor.openPorts(), [])
        self.assertEqual(self.reactor.getDelayedCalls(), [])

    def test_ipv6Server(self) -> None:
        """
        An IPv6 nameserver is queried from an IPv6 socket.
        """
        resolver = Resolver(self.reactor, nameservers=["::1"], port=5353)
        resolver.lookupA("host.example")
        [port] = self.reactor.udp
        self.assertEqual((port.interface, port.peer), ("::", ("::1", 5353)))

    def test_addressesCompared(self) -> None:
        """
        A server configured in a long IPv6 form is still recognised as the
        sender of its reply.
        """
        resolver = Resolver(self.reactor, nameservers=["2001:db8:0:0::1"])
        d = resolver.lookupA("host.example")
        [port] = self.reactor.udp
        port.receive(answerA(port.request(), "192.0.2.1"), ("2001:db8::1", 53))
        self.assertEqual(self.successResultOf(d), ["192.0.2.1"])

    def test_serverWithoutEDNS(self) -> None:
        """
        A server that answers FORMERR without EDNS (RFC 6891 7) is asked
        the same question again without EDNS.
        """
        d = self.resolver().lookupA("host.example")
        first = self.reactor.udp[0]
        request = first.request()
        self.assertEqual(request.edns, 0)
        formerr = dns.message.make_response(request)
        formerr.use_edns(False)
        formerr.set_rcode(dns.rcode.FORMERR)
        first.receive(formerr.to_wire())
        second = self.reactor.udp[1]
        retry = second.request()
        self.assertEqual((retry.edns, retry.question), (-1, request.question))
        second.receive(answerA(retry, "192.0.2.9"))
        self.assertEqual(self.successResultOf(d), ["192.0.2.9"])

    def test_badArguments(self) -> None:
        """
        A nameserver must be an IP address, and C{maxOutstanding} at least
        one; a thread pool is no longer used, and passing one warns.
        """
        self.assertRaises(ValueError, Resolver, self.reactor, ["ns.example"])
        self.assertRaises(ValueError, Resolver, self.reactor, ["::1"], maxOutstanding=0)
        Resolver(self.reactor, ["::1"], threadPool=ThreadPool())
        [warning] = self.flushWarnings([self.test_badArguments])
        self.assertEqual(warning["category"], DeprecationWarning)

    def test_systemConfiguration(self) -> None:
        """
        Without nameservers, the system's are read through dnspython.
        """

        class Configured:
            nameservers = ["192.0.2.10", "2001:db8::10"]

            def __init__(self, configure: bool) -> None:
                assert configure

        self.patch(dns.resolver, "Resolver", Configured)
        resolver = Resolver(self.reactor)
        self.assertIsNone(resolver.nameservers)
        resolver.lookupA("host.example")
        self.reactor.advance(2.0)
        self.assertEqual(
            [p.peer for p in self.reactor.udp],
            [("192.0.2.10", 53), ("2001:db8::10", 53)],
        )


class RealTransportTests(TestCase):
    """
    The resolver against a scripted nameserver on loopback.
    """

    timeout = 20

    async def test_truncatedOverTCP(self) -> None:
        """
        A record set too large for UDP is fetched whole over TCP after a
        truncated UDP reply.
        """
        strings = [bytes([97 + i]) * 250 for i in range(8)]

        def script(request: dns.message.Message, transport: str) -> list[bytes]:
            reply = dns.message.make_response(request)
            if transport == "udp":
                reply.flags |= dns.flags.TC
            else:
                name = request.question[0].name
                rdata = " ".join(f'"{s.decode()}"' for s in strings)
                reply.answer.append(
                    dns.rrset.from_text_list(name, 60, "IN", "TXT", [rdata])
                )
            return [reply.to_wire(max_size=65535)]

        server = ScriptedDNSServer(script)
        server.start(reactor)
        self.addCleanup(server.stop)
        resolver = Resolver(
            reactor, nameservers=["127.0.0.1"], port=server.port, timeout=2
        )
        self.assertEqual(await resolver.lookupTXT("big.example"), [b"".join(strings)])
        self.assertEqual([t for t, _ in server.received], ["udp", "tcp"])
