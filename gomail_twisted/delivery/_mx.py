# -*- test-case-name: tests.test_delivery_send,tests.test_queue_delivery -*-
"""
Routing to a domain's mail exchangers (RFC 5321 5.1): find them, try them
in order of preference, the next on a temporary failure or a connection
error, each with the TLS policy the caller asked for.

L{gomail_twisted.delivery.sendMail} routes one transaction per domain this
way; the outbound queue routes several, sent one after the other over each
connection (RFC 5321 3.3).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP6ClientEndpoint
from twisted.internet.interfaces import IStreamClientEndpoint

from gomail_twisted.delivery._tls import ClientTLSPolicy, StartTLS, isIPAddress
from gomail_twisted.delivery._values import DeliveryResult, Transaction
from gomail_twisted.delivery._wire import SMTPTimeouts
from gomail_twisted.delivery.client import ESMTPSenderFactory
from gomail_twisted.dns import (
    DNSError,
    DNSNullMXError,
    DNSPermanentError,
    MailExchanger,
    Resolver,
)

__all__ = ["MAX_ADDRESSES", "MXRoute", "endpointFor", "unrouted"]

#: The most addresses one delivery connects to, and the most mail
#: exchangers it looks up (RFC 5321 5.1 asks for a limit): a domain that
#: publishes hundreds of unreachable hosts would otherwise hold a delivery
#: for hours, one connection timeout after the other.
MAX_ADDRESSES = 10

# How the client reports a failed handshake; see ESMTPSender.
_TLS_FAILED = "TLS handshake failed"


def endpointFor(
    reactor: Any, address: str, port: int, timeout: float
) -> IStreamClientEndpoint:
    """
    @param reactor: provides C{IReactorTCP}.
    @param address: an IPv4 or IPv6 address.
    @param port: the port.
    @param timeout: seconds to wait for the connection.
    @return: a TCP endpoint of the address's family.
    """
    if ipaddress.ip_address(address).version == 6:
        return TCP6ClientEndpoint(reactor, address, port, timeout=timeout)
    return TCP4ClientEndpoint(reactor, address, port, timeout=timeout)


def unrouted(
    domain: str,
    transaction: Transaction,
    error: str,
    permanent: bool,
    host: str = "",
    code: int | None = None,
    enhanced: str | None = None,
) -> DeliveryResult:
    """
    @return: the result for a transaction that reached no server: the
        domain has no usable mail exchanger, a lookup failed, or the
        delivery went wrong before any connection.
    """
    return DeliveryResult(
        host=host,
        address="",
        port=0,
        recipients=transaction.recipients,
        code=code,
        enhanced=enhanced,
        error=error,
        permanent=permanent,
        domain=domain,
    )


class _NoRoute(Exception):
    """
    The domain's mail exchangers could not be found, or it has none.
    """

    def __init__(
        self,
        error: str,
        permanent: bool,
        code: int | None = None,
        enhanced: str | None = None,
    ) -> None:
        super().__init__(error)
        self.error = error
        self.permanent = permanent
        self.code = code
        self.enhanced = enhanced


@dataclass(frozen=True)
class MXRoute:
    """
    How to reach the mail exchangers of a domain, and what to send there.

    @ivar reactor: provides C{IReactorTCP} and C{IReactorTime}.
    @ivar resolver: gives the L{Resolver}; called only when something must
        be looked up, so that a default one reads the system configuration
        only then.
    @ivar heloName: our name in EHLO, or L{None} for our address literal.
    @ivar port: the port of mail exchangers.
    @ivar timeouts: the client's timeouts.
    @ivar requireTLS: deliver only over TLS (a temporary failure
        otherwise); without it STARTTLS is opportunistic (RFC 7435).
    @ivar trustRoot: the certificate authorities, or L{None} for the
        platform's.
    @ivar tlsOptions: a caller's C{IOpenSSLClientConnectionCreator}, or
        L{None}.
    @ivar verifyDomain: require TLS with a certificate valid for the
        recipients' domain (or a host under it), whatever C{requireTLS}
        and C{tlsOptions} say.
    """

    reactor: Any
    resolver: Callable[[], Resolver]
    heloName: str | None
    port: int
    timeouts: SMTPTimeouts
    requireTLS: bool = False
    trustRoot: Any = None
    tlsOptions: Any = None
    verifyDomain: bool = False

    def tlsPolicy(self, domain: str, host: str) -> ClientTLSPolicy:
        """
        The TLS policy for one mail exchanger.

        With L{verifyDomain} the certificate must be valid for the
        recipients' domain, or for the host when it lies under that domain
        (which is then also the name sent with SNI).

        @param domain: the recipients' domain, in lower case.
        @param host: the mail exchanger's name.
        """
        if self.verifyDomain:
            lowered = host.lower()
            under = lowered == domain or lowered.endswith("." + domain)
            names = (lowered, domain) if under and lowered != domain else (domain,)
            return ClientTLSPolicy(
                startTLS="required",
                serverName=names[0],
                acceptableNames=names,
                verify=True,
                trustRoot=self.trustRoot,
            )
        # Not enforced, but checked against the trust root all the same, so
        # the result tells whether the server could have been verified.
        startTLS: StartTLS = "required" if self.requireTLS else "opportunistic"
        return ClientTLSPolicy(
            startTLS=startTLS,
            serverName=host,
            trustRoot=self.trustRoot,
            options=self.tlsOptions,
        )

    async def deliver(
        self, domain: str, transactions: Sequence[Transaction]
    ) -> list[list[DeliveryResult]]:
        """
        Deliver the transactions, all for recipients in C{domain}, to its
        hosts in order, each until a host takes it or refuses it for good;
        those still to go share each connection; at most L{MAX_ADDRESSES}
        hosts are looked up and addresses connected to.

        @param domain: the recipients' domain, or an address literal in
            brackets (RFC 5321 4.1.3).
        @return: per transaction, in order, the result of every attempt;
            a failed lookup is a result too.
        """
        batch = list(transactions)
        try:
            hosts = await self._findHosts(domain)
        except _NoRoute as e:
            return [
                [unrouted(domain, t, e.error, e.permanent, "", e.code, e.enhanced)]
                for t in batch
            ]
        results: list[list[DeliveryResult]] = [[] for _ in batch]
        remaining = list(range(len(batch)))
        tried = 0
        for mx in hosts[:MAX_ADDRESSES]:
            if not remaining or tried >= MAX_ADDRESSES:
                break
            try:
                addresses = (
                    [mx.host]
                    if isIPAddress(mx.host)
                    else await self.resolver().lookupAddresses(mx.host)
                )
            except DNSError as e:
                why = f"address lookup for {mx.host} failed: {e}"
                for i in remaining:
                    results[i].append(unrouted(domain, batch[i], why, False, mx.host))
                continue
            for address in addresses[: MAX_ADDRESSES - tried]:
                tried += 1
                attempts = await self._toAddress(
                    domain, mx.host, address, [batch[i] for i in remaining]
                )
                for i, got in zip(remaining, attempts, strict=True):
                    results[i].extend(got)
                remaining = [
                    i
                    for i in remaining
                    if not (results[i][-1].delivered or results[i][-1].permanent)
                ]
                if not remaining:
                    break
        return results

    async def _findHosts(self, domain: str) -> list[MailExchanger]:
        """
        @return: the mail exchangers in order (RFC 5321 5.1).
        @raise _NoRoute: there are none, or the lookup failed.
        """
        if domain.startswith("[") and domain.endswith("]"):
            literal = domain[1:-1]
            if literal.lower().startswith("ipv6:"):
                literal = literal[5:]
            return [MailExchanger(0, literal, implicit=True)]
        try:
            return await self.resolver().lookupMX(domain)
        except DNSNullMXError:
            # RFC 7505 4.1: 556 5.1.10.
            why = f"{domain} accepts no mail (null MX, RFC 7505)"
            raise _NoRoute(why, True, 556, "5.1.10") from None
        except DNSPermanentError as e:
            # RFC 3463 X.1.2: the destination system does not exist.
            why = f"no mail host for {domain}: {e}"
            raise _NoRoute(why, True, None, "5.1.2") from None
        except DNSError as e:
            # RFC 3463 X.4.3: directory server failure.
            why = f"MX lookup for {domain} failed: {e}"
            raise _NoRoute(why, False, None, "4.4.3") from None

    async def _toAddress(
        self, domain: str, host: str, address: str, batch: list[Transaction]
    ) -> list[list[DeliveryResult]]:
        """
        One connection to one address for the batch; when opportunistic
        TLS fails in the handshake, once more without TLS (RFC 7435 4).

        @return: per transaction, the results of its attempts.
        """
        policy = self.tlsPolicy(domain, host)
        first = await self._connect(domain, host, address, batch, policy)
        out = [[r] for r in first]
        again = [
            k
            for k, r in enumerate(first)
            if policy.startTLS == "opportunistic"
            and r.error is not None
            and r.error.startswith(_TLS_FAILED)
        ]
        if again:
            plain = replace(policy, startTLS="never")
            second = await self._connect(
                domain, host, address, [batch[k] for k in again], plain
            )
            for k, r in zip(again, second, strict=True):
                out[k].append(r)
        return out

    def _connect(
        self,
        domain: str,
        host: str,
        address: str,
        batch: list[Transaction],
        policy: ClientTLSPolicy,
    ) -> Deferred[list[DeliveryResult]]:
        factory = ESMTPSenderFactory(
            self.reactor,
            batch,
            host=host,
            domain=domain,
            heloName=self.heloName,
            tls=policy,
            timeouts=self.timeouts,
        )
        endpoint = endpointFor(self.reactor, address, self.port, self.timeouts.connect)
        return factory.deliverVia(endpoint, address, self.port)
