# -*- test-case-name: tests.test_dns -*-
"""
An asynchronous DNS resolver for the whole package: dnspython builds the
queries and parses the answers, Twisted carries them.

No lookup takes a thread.  Each query goes out over UDP from a fresh socket
on an ephemeral port, connected to the nameserver so that the kernel drops
datagrams from anywhere else; a reply counts only when it comes from that
server and port, parses, and answers our question with our random ID.  A
truncated reply (TC, RFC 1035 4.2.1) is asked again over TCP (RFC 7766).
A server that does not answer within the per-server timeout is asked again
later (after the other servers, with a growing pause), until the lookup's
lifetime runs out.  This follows the rules of dnspython's own stub
resolver, so answers and errors are what its blocking C{resolve} gives.

What a hostile or broken server can cost is bounded: one socket per lookup
in flight and at most C{maxOutstanding} lookups in flight per resolver
(the rest wait their turn, within their lifetime); a UDP reply is read up
to L{MAX_DATAGRAM} octets and a TCP one is at most 65,535 octets (its
length prefix); every lookup ends by its lifetime.

Failures fall into two families that callers must treat differently:
L{DNSTemporaryError} (a timeout, SERVFAIL, no server reachable: try again
later) and L{DNSPermanentError} (the name does not exist, or the domain
accepts no mail: give up).
"""

from __future__ import annotations

import ipaddress
import random
import socket
import struct
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import dns.exception
import dns.flags
import dns.inet
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.resolver
from twisted.internet.defer import (
    Deferred,
    DeferredList,
    DeferredSemaphore,
    TimeoutError,
)
from twisted.internet.error import ConnectError
from twisted.internet.protocol import (
    ClientFactory,
    DatagramProtocol,
    Protocol,
    connectionDone,
)
from twisted.internet.task import deferLater
from twisted.python.failure import Failure

if TYPE_CHECKING:
    from twisted.internet.interfaces import IAddress, IConnector
    from twisted.python.threadpool import ThreadPool

__all__ = [
    "DNSError",
    "DNSNameError",
    "DNSNullMXError",
    "DNSPermanentError",
    "DNSTemporaryError",
    "DNSTimeoutError",
    "MailExchanger",
    "Resolver",
]

#: The EDNS0 UDP payload size advertised (RFC 6891 6.2.5): the DNS Flag
#: Day 2020 value, which keeps replies clear of IP fragmentation; longer
#: answers come truncated and are fetched over TCP.
EDNS_PAYLOAD = 1232
#: The longest UDP reply read; the kernel cuts a longer datagram, which
#: then fails to parse and is ignored.
MAX_DATAGRAM = 4096
#: The lookups a resolver runs at once by default.
DEFAULT_MAX_OUTSTANDING = 100


class DNSError(Exception):
    """
    A DNS lookup failed.
    """


class DNSTemporaryError(DNSError):
    """
    A lookup failed in a way that may pass: the servers answered SERVFAIL or
    REFUSED, or none could be reached. Mail delivery defers (RFC 5321 5.1).
    """


class DNSTimeoutError(DNSTemporaryError):
    """
    No answer came within the resolver's lifetime.
    """


class DNSPermanentError(DNSError):
    """
    A lookup failed for good: trying again will not help.
    """


class DNSNameError(DNSPermanentError):
    """
    The name does not exist (NXDOMAIN, RFC 8020).
    """


class DNSNullMXError(DNSPermanentError):
    """
    The domain publishes a null MX (RFC 7505 3): it accepts no mail.
    """


@dataclass(frozen=True)
class MailExchanger:
    """
    One host to try when delivering to a domain (RFC 5321 5.1).

    @ivar preference: the MX preference; lower is tried first.
    @ivar host: the host name, without the final dot.
    @ivar implicit: whether the domain has no MX records and this is the
        domain itself, taken as its implicit MX because it has an address.
    """

    preference: int
    host: str
    implicit: bool = False


class _Unusable(Exception):
    """
    A server gave an answer we cannot use (a malformed reply, a refusal, a
    failure): it is asked no more during this lookup.
    """


class _UDPQuery(DatagramProtocol):
    """
    One query over UDP, from its own socket connected to the server.

    @ivar result: fires with the reply, or fails with L{OSError} when the
        server's port is unreachable; cancelling it closes the socket.
    """

    def __init__(self, request: dns.message.Message, server: tuple[str, int]) -> None:
        self._request = request
        self._server = server
        self._done = False
        self.result: Deferred[dns.message.Message] = Deferred(self._cancel)

    def startProtocol(self) -> None:
        assert self.transport is not None
        try:
            self.transport.connect(*self._server)
            self.transport.write(self._request.to_wire(), None)
        except OSError:
            self._finish(Failure())

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        # The kernel filters a connected socket's peers; check anyway.
        if self._done or tuple(addr[:2]) != self._server:
            return
        try:
            reply = dns.message.from_wire(datagram)
        except Exception:
            # Junk or a forgery: the real answer may still come.
            return
        if self._request.is_response(reply):
            self._finish(reply)

    def connectionRefused(self) -> None:
        if not self._done:
            self._finish(Failure(ConnectionRefusedError("port unreachable")))

    def _finish(self, result: dns.message.Message | Failure) -> None:
        """
        Close the socket, then deliver the result, so no socket outlives
        its query.
        """
        self._done = True
        assert self.transport is not None
        closed = self.transport.stopListening()

        def deliver(_: object) -> None:
            if isinstance(result, Failure):
                self.result.errback(result)
            else:
                self.result.callback(result)

        if closed is None:
            deliver(None)
        else:
            closed.addBoth(deliver)

    def _cancel(self, result: Deferred[dns.message.Message]) -> None:
        if not self._done:
            self._done = True
            if self.transport is not None:
                self.transport.stopListening()


class _TCPQuery(Protocol):
    """
    One query over TCP (RFC 7766): a two-octet length, then the message,
    each way.
    """

    def __init__(self, request: dns.message.Message, result: Deferred[Any]) -> None:
        self._request = request
        self._result = result
        self._buffer = b""
        self._reply: Any = None

    def connectionMade(self) -> None:
        assert self.transport is not None
        wire = self._request.to_wire()
        self.transport.write(struct.pack("!H", len(wire)) + wire)

    def dataReceived(self, data: bytes) -> None:
        assert self.transport is not None
        if self._reply is not None:
            return
        # The length prefix bounds what is kept to 65,537 octets.
        self._buffer += data
        if len(self._buffer) < 2:
            return
        (length,) = struct.unpack("!H", self._buffer[:2])
        if len(self._buffer) < 2 + length:
            return
        try:
            reply = dns.message.from_wire(self._buffer[2 : 2 + length])
        except Exception as e:
            self._reply = Failure(_Unusable(f"malformed reply over TCP: {e}"))
        else:
            if self._request.is_response(reply):
                self._reply = reply
            else:
                self._reply = Failure(_Unusable("unrelated reply over TCP"))
        self._buffer = b""
        self.transport.loseConnection()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        if self._result.called:
            return
        reply = self._reply
        if reply is None:
            self._result.errback(
                Failure(_Unusable("connection closed before the reply"))
            )
        elif isinstance(reply, Failure):
            self._result.errback(reply)
        else:
            self._result.callback(reply)


class _TCPQueryFactory(ClientFactory):
    """
    Makes the one L{_TCPQuery} of a connection, and reports a failed
    connection.
    """

    def __init__(self, request: dns.message.Message) -> None:
        self.result: Deferred[dns.message.Message] = Deferred(self._cancel)
        self.connector: IConnector | None = None
        self._request = request

    def buildProtocol(self, addr: IAddress | None) -> Protocol:
        return _TCPQuery(self._request, self.result)

    def clientConnectionFailed(self, connector: IConnector, reason: Failure) -> None:
        if not self.result.called:
            self.result.errback(reason)

    def _cancel(self, result: Deferred[dns.message.Message]) -> None:
        if self.connector is not None:
            self.connector.disconnect()


class Resolver:
    """
    Look up MX, A, AAAA and TXT records without blocking the reactor, and
    without threads.

    @ivar nameservers: the server addresses queried, or L{None} for the
        system configuration.
    @ivar port: the port they are queried on.
    """

    def __init__(
        self,
        reactor: Any,
        nameservers: Sequence[str] | None = None,
        port: int = 53,
        timeout: float = 2.0,
        lifetime: float = 6.0,
        threadPool: ThreadPool | None = None,
        randomSource: random.Random | None = None,
        maxOutstanding: int = DEFAULT_MAX_OUTSTANDING,
    ) -> None:
        """
        @param reactor: provides C{IReactorUDP}, C{IReactorTCP} and
            C{IReactorTime}.
        @param nameservers: IP addresses of the servers to ask; L{None}
            reads the system configuration (C{/etc/resolv.conf}), now.
        @param port: the port to query them on.
        @param timeout: seconds to wait for one server's answer.
        @param lifetime: seconds a whole lookup of one record type may
            take, waiting for its turn, retries and servers included; past
            it the lookup fails with L{DNSTimeoutError}.
        @param threadPool: unused, and deprecated: lookups take no thread.
        @param randomSource: the source of the shuffle among MX hosts of equal
            preference (RFC 5321 5.1).
        @param maxOutstanding: the most queries in flight at once; more
            wait for a turn.
        @raise ValueError: when C{maxOutstanding} is less than one or a
            nameserver is not an IP address.
        """
        if threadPool is not None:
            warnings.warn(
                "Resolver's threadPool is unused: lookups take no thread",
                DeprecationWarning,
                stacklevel=2,
            )
        if maxOutstanding < 1:
            raise ValueError("maxOutstanding must be at least 1")
        self._reactor = reactor
        self._random = randomSource if randomSource is not None else _systemRandom
        self.nameservers = list(nameservers) if nameservers is not None else None
        self.port = port
        if nameservers is None:
            servers = dns.resolver.Resolver(configure=True).nameservers
            addresses = [s for s in servers if isinstance(s, str)]
        else:
            addresses = list(nameservers)
        # In the form the socket reports a sender's address in, for the
        # check that a reply comes from the server asked.
        self._servers = [(_canonicalAddress(address), port) for address in addresses]
        self._timeout = timeout
        self._lifetime = lifetime
        self._turns = DeferredSemaphore(maxOutstanding)

    async def _query(self, name: str, rdtype: str) -> list[Any]:
        """
        Run one lookup: wait for a turn, then ask the servers.

        @param name: the name to look up; it is taken as absolute.
        @param rdtype: the record type.
        @return: the records, or an empty list when the name exists but has
            none of that type.
        @raise DNSNameError: NXDOMAIN.
        @raise DNSTimeoutError: no answer in time.
        @raise DNSTemporaryError: SERVFAIL, REFUSED, or another failure.
        """
        deadline = self._reactor.seconds() + self._lifetime
        try:
            qname = dns.name.from_text(name)
        except dns.exception.DNSException as e:
            raise DNSTemporaryError(f"{name} {rdtype}: {e}")
        turn = self._turns.acquire()
        turn.addTimeout(self._lifetime, self._reactor)
        try:
            await turn
        except TimeoutError:
            raise DNSTimeoutError(f"{name} {rdtype}: timed out")
        try:
            return await self._ask(name, qname, rdtype, deadline)
        finally:
            self._turns.release()

    async def _ask(
        self, name: str, qname: dns.name.Name, rdtype: str, deadline: float
    ) -> list[Any]:
        """
        Ask the servers in turn, as dnspython's stub resolver does: each
        server once per round, a pause between rounds, a server dropped for
        the rest of the lookup once its answer is unusable.
        """
        servers = list(self._servers)
        pause = 0.1
        while servers:
            for server in list(servers):
                remaining = deadline - self._reactor.seconds()
                if remaining <= 0:
                    raise DNSTimeoutError(f"{name} {rdtype}: timed out")
                try:
                    reply = await self._exchange(
                        qname, rdtype, server, min(self._timeout, remaining)
                    )
                    return self._records(name, reply)
                except TimeoutError:
                    continue
                except (_Unusable, OSError, ConnectError, dns.exception.DNSException):
                    servers.remove(server)
            remaining = deadline - self._reactor.seconds()
            if servers and remaining > 0:
                await deferLater(self._reactor, min(pause, remaining))
                pause = min(pause * 2, 2.0)
        raise DNSTemporaryError(f"{name} {rdtype}: no server answered")

    async def _exchange(
        self, qname: dns.name.Name, rdtype: str, server: tuple[str, int], timeout: float
    ) -> dns.message.Message:
        """
        One question to one server: over UDP, then TCP if the reply was
        truncated.

        @raise TimeoutError: no reply in C{timeout} seconds.
        @raise _Unusable: the server cannot answer.
        """
        request = dns.message.make_query(qname, rdtype)
        request.use_edns(0, 0, EDNS_PAYLOAD)
        deadline = self._reactor.seconds() + timeout
        reply = await self._overUDP(request, server, timeout)
        if reply.rcode() == dns.rcode.FORMERR and reply.edns < 0:
            # A server from before EDNS (RFC 6891 7): ask it plainly.
            request = dns.message.make_query(qname, rdtype)
            reply = await self._overUDP(
                request, server, deadline - self._reactor.seconds()
            )
        if reply.flags & dns.flags.TC:
            reply = await self._overTCP(
                request, server, deadline - self._reactor.seconds()
            )
            if reply.flags & dns.flags.TC:
                raise _Unusable("truncated reply over TCP")
        return reply

    def _overUDP(
        self, request: dns.message.Message, server: tuple[str, int], timeout: float
    ) -> Deferred[dns.message.Message]:
        query = _UDPQuery(request, server)
        interface = "" if dns.inet.af_for_address(server[0]) == socket.AF_INET else "::"
        try:
            self._reactor.listenUDP(
                0, query, interface=interface, maxPacketSize=MAX_DATAGRAM
            )
        except Exception as e:
            raise OSError(f"no UDP socket: {e}") from e
        return query.result.addTimeout(max(timeout, 0), self._reactor)

    def _overTCP(
        self, request: dns.message.Message, server: tuple[str, int], timeout: float
    ) -> Deferred[dns.message.Message]:
        factory = _TCPQueryFactory(request)
        factory.connector = self._reactor.connectTCP(
            server[0], server[1], factory, timeout=max(timeout, 0.001)
        )
        return factory.result.addTimeout(max(timeout, 0), self._reactor)

    def _records(self, name: str, reply: dns.message.Message) -> list[Any]:
        """
        The records of a reply, or its error.

        @raise DNSNameError: NXDOMAIN, or YXDOMAIN (RFC 6672 2.2).
        @raise _Unusable: any other error code, or a malformed answer.
        """
        if not isinstance(reply, dns.message.QueryMessage):
            raise _Unusable("not a reply to a query")
        rcode = reply.rcode()
        if rcode not in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN, dns.rcode.YXDOMAIN):
            raise _Unusable(dns.rcode.to_text(rcode))
        if rcode == dns.rcode.YXDOMAIN:
            raise DNSNameError(f"{name}: name too long after DNAME")
        try:
            # Follows CNAMEs within the reply, and checks it (an answer
            # along with NXDOMAIN is malformed).
            chain = reply.resolve_chaining()
        except Exception as e:
            raise _Unusable(f"malformed answer: {e}")
        if rcode == dns.rcode.NXDOMAIN:
            raise DNSNameError(f"{name}: no such domain")
        return list(chain.answer) if chain.answer is not None else []

    def lookupTXT(self, name: str) -> Deferred[Sequence[bytes]]:
        """
        Look up TXT records, in the form L{gomail_twisted.dkim.verify} wants.

        @param name: the name.
        @return: a Deferred firing with one C{bytes} per record, its
            character-strings joined (RFC 6376 3.6.2.2), or an empty list
            when the name has no TXT record; failing with L{DNSNameError},
            L{DNSTimeoutError} or L{DNSTemporaryError}.
        """

        async def lookup() -> Sequence[bytes]:
            return [b"".join(r.strings) for r in await self._query(name, "TXT")]

        return Deferred.fromCoroutine(lookup())

    def lookupA(self, name: str) -> Deferred[list[str]]:
        """
        @param name: a host name.
        @return: a Deferred firing with its IPv4 addresses (possibly none);
            failures as for L{lookupTXT}.
        """
        return Deferred.fromCoroutine(self._addresses(name, "A"))

    def lookupAAAA(self, name: str) -> Deferred[list[str]]:
        """
        @param name: a host name.
        @return: a Deferred firing with its IPv6 addresses (possibly none);
            failures as for L{lookupTXT}.
        """
        return Deferred.fromCoroutine(self._addresses(name, "AAAA"))

    async def _addresses(self, name: str, rdtype: str) -> list[str]:
        return [r.to_text() for r in await self._query(name, rdtype)]

    def lookupAddresses(self, name: str) -> Deferred[list[str]]:
        """
        @param name: a host name.
        @return: a Deferred firing with its IPv6 then IPv4 addresses; a
            failure of one family is ignored when the other has addresses.
        """

        def combine(results: list[tuple[bool, Any]]) -> list[str]:
            addresses = [a for ok, r in results if ok for a in r]
            if not addresses:
                for ok, r in results:
                    if not ok:
                        r.raiseException()
            return addresses

        both = DeferredList(
            [self.lookupAAAA(name), self.lookupA(name)], consumeErrors=True
        )
        return both.addCallback(combine)

    def lookupMX(self, domain: str) -> Deferred[list[MailExchanger]]:
        """
        Find the hosts that take mail for a domain (RFC 5321 5.1).

        Hosts come sorted by preference, those of equal preference
        shuffled. Without MX records, the domain itself is the implicit MX
        when it has an address.

        @param domain: the mail domain.
        @return: a Deferred firing with the hosts to try, in order; failing
            with L{DNSNullMXError} when the domain has a null MX (RFC 7505),
            L{DNSNameError} when it does not exist or has neither MX nor
            address, or a L{DNSTemporaryError}.
        """

        async def lookup() -> list[MailExchanger]:
            records = await self._query(domain, "MX")
            hosts = [
                MailExchanger(
                    r.preference,
                    r.exchange.to_text(omit_final_dot=True),
                )
                for r in records
            ]
            if hosts and all(h.host in ("", ".") for h in hosts):
                raise DNSNullMXError(f"{domain} accepts no mail (null MX)")
            hosts = [h for h in hosts if h.host not in ("", ".")]
            if hosts:
                self._random.shuffle(hosts)
                hosts.sort(key=lambda h: h.preference)
                return hosts
            for rdtype in ("AAAA", "A"):
                if await self._query(domain, rdtype):
                    return [MailExchanger(0, domain.rstrip("."), implicit=True)]
            raise DNSNameError(f"{domain} has no MX and no address")

        return Deferred.fromCoroutine(lookup())


def _canonicalAddress(address: str) -> str:
    """
    @param address: an IPv4 or IPv6 address.
    @return: the address as the socket reports it (IPv6 compressed).
    @raise ValueError: when it is not an IP address.
    """
    try:
        return ipaddress.ip_address(address).compressed
    except ValueError:
        raise ValueError(f"nameserver {address!r} is not an IP address") from None


_systemRandom = random.SystemRandom()
