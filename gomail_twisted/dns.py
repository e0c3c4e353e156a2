# -*- test-case-name: tests.test_dns -*-
"""
An asynchronous DNS resolver for the whole package, on dnspython.

dnspython's queries block, so each one runs in a thread pool and its result
comes back to the reactor thread as a L{Deferred}. Failures fall into two
families that callers must treat differently: L{DNSTemporaryError} (a
timeout, SERVFAIL, no server reachable: try again later) and
L{DNSPermanentError} (the name does not exist, or the domain accepts no
mail: give up).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import dns.exception
import dns.name
import dns.rdatatype
import dns.resolver
from twisted.internet.defer import Deferred, DeferredList
from twisted.internet.threads import deferToThreadPool

if TYPE_CHECKING:
    from twisted.internet.interfaces import IReactorThreads
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

_T = TypeVar("_T")


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


class Resolver:
    """
    Look up MX, A, AAAA and TXT records without blocking the reactor.

    @ivar nameservers: the server addresses queried, or L{None} for the
        system configuration.
    @ivar port: the port they are queried on.
    """

    def __init__(
        self,
        reactor: IReactorThreads,
        nameservers: Sequence[str] | None = None,
        port: int = 53,
        timeout: float = 2.0,
        lifetime: float = 6.0,
        threadPool: ThreadPool | None = None,
        randomSource: random.Random | None = None,
    ) -> None:
        """
        @param reactor: the reactor, whose thread pool runs the queries unless
            C{threadPool} is given.
        @param nameservers: IP addresses of the servers to ask; L{None}
            reads the system configuration (C{/etc/resolv.conf}).
        @param port: the port to query them on.
        @param timeout: seconds to wait for one server's answer.
        @param lifetime: seconds a whole lookup may take, retries and
            servers included; past it the lookup fails with
            L{DNSTimeoutError}.
        @param threadPool: the pool the queries run in; by default the
            reactor's own.
        @param randomSource: the source of the shuffle among MX hosts of equal
            preference (RFC 5321 5.1).
        """
        self._reactor = reactor
        self._threadPool = threadPool
        self._random = randomSource if randomSource is not None else _systemRandom
        self.nameservers = list(nameservers) if nameservers is not None else None
        self.port = port
        resolver = dns.resolver.Resolver(configure=nameservers is None)
        if nameservers is not None:
            resolver.nameservers = list(nameservers)
        resolver.port = port
        resolver.timeout = timeout
        resolver.lifetime = lifetime
        resolver.cache = None
        self._resolver = resolver

    def _inThread(self, f: Callable[[], _T]) -> Deferred[_T]:
        """
        @param f: a blocking function.
        @return: a Deferred firing, in the reactor thread, with its result.
        """
        pool = self._threadPool
        if pool is None:
            pool = self._reactor.getThreadPool()
        return deferToThreadPool(self._reactor, pool, f)

    def _query(self, name: str, rdtype: str) -> list[Any]:
        """
        Run one query in the calling thread.

        @param name: the name to look up; it is taken as absolute.
        @param rdtype: the record type.
        @return: the records, or an empty list when the name exists but has
            none of that type.
        @raise DNSNameError: NXDOMAIN.
        @raise DNSTimeoutError: no answer in time.
        @raise DNSTemporaryError: SERVFAIL, REFUSED, or another failure.
        """
        try:
            answer = self._resolver.resolve(
                dns.name.from_text(name), rdtype, search=False
            )
        except dns.resolver.NXDOMAIN:
            raise DNSNameError(f"{name}: no such domain")
        except dns.resolver.NoAnswer:
            return []
        except dns.exception.Timeout:
            raise DNSTimeoutError(f"{name} {rdtype}: timed out")
        except dns.resolver.NoNameservers:
            raise DNSTemporaryError(f"{name} {rdtype}: no server answered")
        except dns.resolver.YXDOMAIN:
            raise DNSNameError(f"{name}: name too long after DNAME")
        except (dns.exception.DNSException, OSError) as e:
            raise DNSTemporaryError(f"{name} {rdtype}: {e}")
        return list(answer)

    def lookupTXT(self, name: str) -> Deferred[Sequence[bytes]]:
        """
        Look up TXT records, in the form L{gomail_twisted.dkim.verify} wants.

        @param name: the name.
        @return: a Deferred firing with one C{bytes} per record, its
            character-strings joined (RFC 6376 3.6.2.2), or an empty list
            when the name has no TXT record; failing with L{DNSNameError},
            L{DNSTimeoutError} or L{DNSTemporaryError}.
        """

        def query() -> Sequence[bytes]:
            return [b"".join(r.strings) for r in self._query(name, "TXT")]

        return self._inThread(query)

    def lookupA(self, name: str) -> Deferred[list[str]]:
        """
        @param name: a host name.
        @return: a Deferred firing with its IPv4 addresses (possibly none);
            failures as for L{lookupTXT}.
        """
        return self._inThread(lambda: [r.to_text() for r in self._query(name, "A")])

    def lookupAAAA(self, name: str) -> Deferred[list[str]]:
        """
        @param name: a host name.
        @return: a Deferred firing with its IPv6 addresses (possibly none);
            failures as for L{lookupTXT}.
        """
        return self._inThread(lambda: [r.to_text() for r in self._query(name, "AAAA")])

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

        def query() -> list[MailExchanger]:
            records = self._query(domain, "MX")
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
                if self._query(domain, rdtype):
                    return [MailExchanger(0, domain.rstrip("."), implicit=True)]
            raise DNSNameError(f"{domain} has no MX and no address")

        return self._inThread(query)


_systemRandom = random.SystemRandom()
