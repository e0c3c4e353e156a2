# -*- test-case-name: tests.test_dns -*-
"""
A real DNS server on loopback for tests: C{twisted.names} serving an
in-memory zone over UDP and TCP on one OS-chosen port of 127.0.0.1.

Tests that resolve names (MX for delivery, TXT for DKIM) point a
L{gomail_twisted.dns.Resolver} at it::

    server = LoopbackDNSServer()
    server.addMX("example.com", 10, "mx.example.com")
    server.addA("mx.example.com", "127.0.0.1")
    server.start(reactor)
    self.addCleanup(server.stop)
    resolver = Resolver(reactor, nameservers=["127.0.0.1"], port=server.port)
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from dns import message as dnsmessage
from twisted.internet.defer import Deferred, fail, gatherResults, succeed
from twisted.internet.protocol import DatagramProtocol, Factory, Protocol
from twisted.names import common, dns, server
from twisted.python.failure import Failure

if TYPE_CHECKING:
    from twisted.internet.interfaces import IListeningPort

__all__ = ["LoopbackDNSServer", "ScriptedDNSServer"]


class _ServerFailure(Exception):
    """
    Answer this query with SERVFAIL.
    """


class _ZoneResolver(common.ResolverBase):
    """
    Answer from the server's in-memory records.
    """

    def __init__(self, owner: LoopbackDNSServer) -> None:
        common.ResolverBase.__init__(self)
        self._owner = owner

    def _lookup(self, name: bytes, cls: int, type: int, timeout: Any) -> Deferred[Any]:
        key = name.decode("ascii").lower().rstrip(".")
        self._owner.queries.append((key, dns.QUERY_TYPES.get(type, str(type))))
        if key in self._owner._silent:
            return Deferred()
        if key in self._owner._failing:
            return fail(_ServerFailure(key))
        found = self._owner._records.get(key)
        if found is None:
            return fail(dns.DomainError(name))
        answers = [
            dns.RRHeader(name=name, type=rtype, payload=payload, ttl=60, auth=True)
            for rtype, payload in found
            if rtype == type
        ]
        return succeed((answers, [], []))


class _Factory(server.DNSServerFactory):
    """
    A server factory that answers SERVFAIL quietly when told to.
    """

    def gotResolverError(
        self, failure: Failure, protocol: Any, message: Any, address: Any
    ) -> None:
        if failure.check(_ServerFailure):
            response = self._responseFromMessage(message=message, rCode=dns.ESERVER)
            self.sendReply(protocol, response, address)
            return
        server.DNSServerFactory.gotResolverError(
            self, failure, protocol, message, address
        )


class _BothTransports:
    """
    A server listening for UDP and TCP on one port number.

    @ivar port: the UDP and TCP port, once started.
    """

    _ports: list[IListeningPort]
    port: int

    def _listen(
        self,
        reactor: Any,
        udp: Callable[[], DatagramProtocol],
        tcp: Factory,
        interface: str = "127.0.0.1",
        port: int = 0,
    ) -> int:
        """
        Listen on UDP and TCP, on the same port of C{interface}.

        @param reactor: a reactor providing C{IReactorUDP} and
            C{IReactorTCP}.
        @param udp: makes the UDP protocol; a protocol keeps its transport
            even after stopListening, so each attempt needs its own.
        @param tcp: the TCP factory.
        @param interface: the loopback address to listen on.
        @param port: the port, or 0 for one the OS chooses.
        @return: the port.
        @raise RuntimeError: no port free for both protocols was found.
        """
        for _ in range(20):
            udpPort = reactor.listenUDP(port, udp(), interface=interface)
            chosen = udpPort.getHost().port
            try:
                tcpPort = reactor.listenTCP(chosen, tcp, interface=interface)
            except Exception:
                udpPort.stopListening()
                if port:
                    raise
                continue
            self._ports = [udpPort, tcpPort]
            self.port = chosen
            return int(chosen)
        raise RuntimeError("no port free for both UDP and TCP")

    def stop(self) -> Deferred[Any]:
        """
        Stop listening.

        @return: a Deferred that fires when both ports are closed.
        """
        ports, self._ports = self._ports, []
        return gatherResults([d for d in (p.stopListening() for p in ports) if d])


class LoopbackDNSServer(_BothTransports):
    """
    An authoritative DNS server for an in-memory zone, on 127.0.0.1.

    Names are case-insensitive and given without the final dot. A name
    with no record at all does not exist (NXDOMAIN); a name with records of
    other types answers with no records (NOERROR, no data).

    @ivar port: the UDP and TCP port, once started.
    @ivar queries: the C{(name, type)} pairs asked so far.
    """

    def __init__(self) -> None:
        self._records: dict[str, list[tuple[int, Any]]] = {}
        self._failing: set[str] = set()
        self._silent: set[str] = set()
        self._ports: list[IListeningPort] = []
        self.port = 0
        self.queries: list[tuple[str, str]] = []

    def _add(self, name: str, rtype: int, payload: Any) -> None:
        self._records.setdefault(name.lower().rstrip("."), []).append((rtype, payload))

    def addA(self, name: str, address: str) -> None:
        """
        @param name: the owner name.
        @param address: an IPv4 address.
        """
        self._add(name, dns.A, dns.Record_A(address, ttl=60))

    def addAAAA(self, name: str, address: str) -> None:
        """
        @param name: the owner name.
        @param address: an IPv6 address.
        """
        self._add(name, dns.AAAA, dns.Record_AAAA(address, ttl=60))

    def addMX(self, name: str, preference: int, exchange: str) -> None:
        """
        @param name: the mail domain.
        @param preference: the MX preference.
        @param exchange: the host; C{"."} makes a null MX (RFC 7505).
        """
        host = b"" if exchange == "." else exchange.encode("ascii")
        self._add(name, dns.MX, dns.Record_MX(preference, host, ttl=60))

    def addTXT(self, name: str, *strings: bytes) -> None:
        """
        @param name: the owner name.
        @param strings: the character-strings of one record, each at most
            255 bytes (RFC 1035 3.3).
        @raise ValueError: for a longer string, which the wire cannot carry.
        """
        for string in strings:
            if len(string) > 255:
                raise ValueError(
                    f"TXT character-string of {len(string)} bytes; split it "
                    "into strings of at most 255"
                )
        self._add(name, dns.TXT, dns.Record_TXT(*strings, ttl=60))

    def addServerFailure(self, name: str) -> None:
        """
        @param name: a name every query for which is answered SERVFAIL.
        """
        self._failing.add(name.lower().rstrip("."))

    def addNoResponse(self, name: str) -> None:
        """
        @param name: a name queries for which are never answered, so the
            client times out.
        """
        self._silent.add(name.lower().rstrip("."))

    def start(self, reactor: Any) -> int:
        """
        Listen on UDP and TCP, on the same port of 127.0.0.1.

        @param reactor: a reactor providing C{IReactorUDP} and
            C{IReactorTCP}.
        @return: the port.
        @raise RuntimeError: no port free for both protocols was found.
        """
        factory = _Factory(authorities=[_ZoneResolver(self)])
        return self._listen(reactor, lambda: dns.DNSDatagramProtocol(factory), factory)


#: What a L{ScriptedDNSServer} does with a query: given the request and
#: C{"udp"} or C{"tcp"}, the messages to send back, in order (none for
#: silence).
Script = Callable[[dnsmessage.Message, str], list[bytes]]


class _ScriptedUDP(DatagramProtocol):
    def __init__(self, owner: ScriptedDNSServer) -> None:
        self._owner = owner

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        request = dnsmessage.from_wire(datagram)
        self._owner.received.append(("udp", request))
        assert self.transport is not None
        for reply in self._owner._script(request, "udp"):
            self.transport.write(reply, addr)


class _ScriptedTCP(Protocol):
    def __init__(self, owner: ScriptedDNSServer) -> None:
        self._owner = owner
        self._buffer = b""

    def dataReceived(self, data: bytes) -> None:
        self._buffer += data
        if len(self._buffer) < 2:
            return
        (length,) = struct.unpack("!H", self._buffer[:2])
        if len(self._buffer) < 2 + length:
            return
        request = dnsmessage.from_wire(self._buffer[2 : 2 + length])
        self._buffer = self._buffer[2 + length :]
        self._owner.received.append(("tcp", request))
        assert self.transport is not None
        for reply in self._owner._script(request, "tcp"):
            self.transport.write(struct.pack("!H", len(reply)) + reply)


class ScriptedDNSServer(_BothTransports):
    """
    A nameserver on loopback, over UDP and TCP on one port, whose replies
    the test writes as wire bytes: for trying how a client takes truncated,
    forged or missing answers.

    @ivar port: the UDP and TCP port, once started.
    @ivar received: the C{("udp" | "tcp", request)} pairs received so far.
    """

    def __init__(self, script: Script) -> None:
        """
        @param script: what to answer to each query.
        """
        self._script = script
        self._ports: list[IListeningPort] = []
        self.port = 0
        self.received: list[tuple[str, dnsmessage.Message]] = []

    def start(self, reactor: Any, interface: str = "127.0.0.1", port: int = 0) -> int:
        """
        Listen on UDP and TCP, on the same port of C{interface}.

        @param reactor: a reactor providing C{IReactorUDP} and
            C{IReactorTCP}.
        @param interface: the loopback address to listen on.
        @param port: the port, or 0 for one the OS chooses.
        @return: the port.
        @raise RuntimeError: no port free for both protocols was found.
        """
        factory = Factory.forProtocol(lambda: _ScriptedTCP(self))
        return self._listen(
            reactor, lambda: _ScriptedUDP(self), factory, interface, port
        )
