# -*- test-case-name: tests.test_queue_delivery -*-
"""
Delivering several queued messages for one domain over one connection:
the domain's mail exchangers are looked up once (RFC 5321 5.1), and the
messages go as successive transactions (RFC 5321 3.3) with
L{ESMTPSenderFactory}; what a host did not take (a temporary failure, a
connection error) goes to the next host, as
L{gomail_twisted.delivery.sendMail} does for one message.

One connection per message costs a TCP handshake, a greeting and EHLO
(and a TLS handshake) each; many messages to one busy domain are the
queue's common case after an outage or a burst.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP6ClientEndpoint
from twisted.internet.interfaces import IStreamClientEndpoint

from gomail_twisted.delivery import (
    ClientTLSPolicy,
    DeliveryResult,
    ESMTPSenderFactory,
    SentMail,
    SMTPTimeouts,
    Transaction,
)
from gomail_twisted.dns import (
    DNSError,
    DNSNullMXError,
    DNSPermanentError,
    MailExchanger,
    Resolver,
)

__all__ = ["DeliverBatch", "MXDelivery"]

#: What the queue delivers with: given the recipients' domain and the
#: transactions for it, a Deferred of one L{SentMail} per transaction.
DeliverBatch = Callable[[str, Sequence[Transaction]], "Deferred[list[SentMail]]"]

_TLS_FAILED = "TLS handshake failed"


def _isIP(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _unrouted(
    domain: str,
    transaction: Transaction,
    error: str,
    permanent: bool,
    host: str = "",
    code: int | None = None,
    enhanced: str | None = None,
) -> DeliveryResult:
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


class MXDelivery:
    """
    Delivers batches of transactions to a domain's mail exchangers
    (L{DeliverBatch}).
    """

    def __init__(
        self,
        reactor: Any,
        hostname: str,
        *,
        resolver: Resolver | None = None,
        port: int = 25,
        trustRoot: Any = None,
        requireTLS: bool = False,
        timeouts: SMTPTimeouts | None = None,
    ) -> None:
        """
        @param reactor: provides C{IReactorTCP} and C{IReactorTime}.
        @param hostname: our name, given in EHLO.
        @param resolver: finds mail exchangers; by default one on the
            system configuration, made at the first delivery.
        @param port: the port of mail exchangers.
        @param trustRoot: the certificate authorities for TLS, or L{None}
            for the platform's.
        @param requireTLS: deliver only over TLS (a temporary failure
            otherwise); without it STARTTLS is opportunistic (RFC 7435).
        @param timeouts: the client's timeouts, or L{None} for RFC 5321's.
        """
        self._reactor = reactor
        self._hostname = hostname
        self._resolver = resolver
        self._port = port
        self._trustRoot = trustRoot
        self._requireTLS = requireTLS
        self._timeouts = timeouts or SMTPTimeouts()

    def __call__(
        self, domain: str, transactions: Sequence[Transaction]
    ) -> Deferred[list[SentMail]]:
        """
        Deliver the transactions, all for recipients in C{domain}.

        @return: a Deferred firing with one L{SentMail} per transaction,
            in order; cancelling it closes the connection.
        """
        return Deferred.fromCoroutine(self._deliver(domain, list(transactions)))

    async def _findHosts(
        self, domain: str, transactions: list[Transaction]
    ) -> list[MailExchanger] | list[DeliveryResult]:
        if domain.startswith("[") and domain.endswith("]"):
            literal = domain[1:-1]
            if literal.lower().startswith("ipv6:"):
                literal = literal[5:]
            return [MailExchanger(0, literal, implicit=True)]
        if self._resolver is None:
            self._resolver = Resolver(self._reactor)
        try:
            return await self._resolver.lookupMX(domain)
        except DNSNullMXError:
            # RFC 7505 4.1: 556 5.1.10.
            why = f"{domain} accepts no mail (null MX, RFC 7505)"
            return [
                _unrouted(domain, t, why, True, "", 556, "5.1.10") for t in transactions
            ]
        except DNSPermanentError as e:
            why = f"no mail host for {domain}: {e}"
            return [_unrouted(domain, t, why, True) for t in transactions]
        except DNSError as e:
            why = f"MX lookup for {domain} failed: {e}"
            return [_unrouted(domain, t, why, False) for t in transactions]

    async def _deliver(
        self, domain: str, transactions: list[Transaction]
    ) -> list[SentMail]:
        found = await self._findHosts(domain, transactions)
        if found and isinstance(found[0], DeliveryResult):
            return [
                SentMail(None, (r,)) for r in found if isinstance(r, DeliveryResult)
            ]
        results: list[list[DeliveryResult]] = [[] for _ in transactions]
        remaining = list(range(len(transactions)))
        for mx in found:
            if not remaining:
                break
            assert isinstance(mx, MailExchanger)
            try:
                addresses = (
                    [mx.host]
                    if _isIP(mx.host)
                    else await self._resolver.lookupAddresses(mx.host)  # type: ignore[union-attr]
                )
            except DNSError as e:
                why = f"address lookup for {mx.host} failed: {e}"
                for i in remaining:
                    results[i].append(
                        _unrouted(domain, transactions[i], why, False, mx.host)
                    )
                continue
            for address in addresses:
                batch = [transactions[i] for i in remaining]
                tried = await self._toAddress(domain, mx.host, address, batch)
                for i, got in zip(remaining, tried, strict=True):
                    results[i].extend(got)
                remaining = [
                    i
                    for i in remaining
                    if not (results[i][-1].delivered or results[i][-1].permanent)
                ]
                if not remaining:
                    break
        return [SentMail(None, tuple(rs)) for rs in results]

    def _endpoint(self, address: str) -> IStreamClientEndpoint:
        timeout = self._timeouts.connect
        if ipaddress.ip_address(address).version == 6:
            return TCP6ClientEndpoint(
                self._reactor, address, self._port, timeout=timeout
            )
        return TCP4ClientEndpoint(self._reactor, address, self._port, timeout=timeout)

    async def _toAddress(
        self, domain: str, host: str, address: str, batch: list[Transaction]
    ) -> list[list[DeliveryResult]]:
        """
        One connection to one address for the batch; when opportunistic
        TLS fails in the handshake, once more without TLS (RFC 7435 4).

        @return: per transaction, the results of its attempts.
        """
        policy = ClientTLSPolicy(
            startTLS="required" if self._requireTLS else "opportunistic",
            serverName=host,
            trustRoot=self._trustRoot,
        )
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
            self._reactor,
            batch,
            host=host,
            domain=domain,
            heloName=self._hostname,
            tls=policy,
            timeouts=self._timeouts,
        )
        return factory.deliverVia(self._endpoint(address), address, self._port)
