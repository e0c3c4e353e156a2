# -*- test-case-name: tests.test_queue_delivery -*-
"""
Delivering several queued messages for one domain over one connection:
the domain's mail exchangers are looked up once (RFC 5321 5.1), and the
messages go as successive transactions (RFC 5321 3.3) over each
connection; what a host did not take (a temporary failure, a connection
error) goes to the next host. The routing is
L{gomail_twisted.delivery.sendMail}'s own, which sends one message so.

One connection per message costs a TCP handshake, a greeting and EHLO
(and a TLS handshake) each; many messages to one busy domain are the
queue's common case after an outage or a burst.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from twisted.internet.defer import Deferred

from gomail_twisted.delivery import SentMail, SMTPTimeouts, Transaction
from gomail_twisted.delivery._mx import MXRoute
from gomail_twisted.dns import Resolver

__all__ = ["DeliverBatch", "MXDelivery"]

#: What the queue delivers with: given the recipients' domain and the
#: transactions for it, a Deferred of one L{SentMail} per transaction.
DeliverBatch = Callable[[str, Sequence[Transaction]], "Deferred[list[SentMail]]"]


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
            system configuration, made at the first lookup.
        @param port: the port of mail exchangers.
        @param trustRoot: the certificate authorities for TLS, or L{None}
            for the platform's.
        @param requireTLS: deliver only over TLS (a temporary failure
            otherwise); without it STARTTLS is opportunistic (RFC 7435).
        @param timeouts: the client's timeouts, or L{None} for RFC 5321's.
        """
        self._reactor = reactor
        self._resolver = resolver
        self._route = MXRoute(
            reactor,
            self._getResolver,
            heloName=hostname,
            port=port,
            timeouts=timeouts or SMTPTimeouts(),
            requireTLS=requireTLS,
            trustRoot=trustRoot,
        )

    def _getResolver(self) -> Resolver:
        if self._resolver is None:
            self._resolver = Resolver(self._reactor)
        return self._resolver

    def __call__(
        self, domain: str, transactions: Sequence[Transaction]
    ) -> Deferred[list[SentMail]]:
        """
        Deliver the transactions, all for recipients in C{domain}.

        @return: a Deferred firing with one L{SentMail} per transaction,
            in order; cancelling it closes the connection.
        """
        return Deferred.fromCoroutine(self._deliver(domain, transactions))

    async def _deliver(
        self, domain: str, transactions: Sequence[Transaction]
    ) -> list[SentMail]:
        results = await self._route.deliver(domain, transactions)
        return [SentMail(None, tuple(rs)) for rs in results]
