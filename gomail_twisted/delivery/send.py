# -*- test-case-name: tests.test_delivery_send -*-
"""
Deliver an L{OutboundMail}: build and sign the message, group the
recipients by domain, find each domain's mail exchangers (RFC 5321 5.1)
or use a smarthost, and report what every server tried said.

    sent = await sendMail(reactor, OutboundMail(sender=..., to=[...], ...))
    for result in sent.results:
        print(result.host, result.code, result.error)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from twisted.internet.defer import (
    CancelledError,
    Deferred,
    FirstError,
    fail,
    gatherResults,
)
from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger

from gomail_twisted.delivery._mx import MXRoute, endpointFor, unrouted
from gomail_twisted.delivery._tls import ClientTLSPolicy, isIPAddress
from gomail_twisted.delivery.client import (
    DeliveryResult,
    ESMTPSenderFactory,
    Transaction,
)
from gomail_twisted.delivery.outbound import OutboundMail, buildMessage
from gomail_twisted.dkim import loadPrivateKey, sign
from gomail_twisted.dns import Resolver
from gomail_twisted.message import Headers, splitHeaderBlock

__all__ = ["SentMail", "sendMail"]

_log = Logger()


@dataclass(frozen=True)
class SentMail:
    """
    What became of a mail: one L{DeliveryResult} per server tried (or per
    domain whose servers could not be found), in the order tried.

    @ivar messageID: the message's Message-ID, or L{None}.
    @ivar results: the results.
    """

    messageID: str | None
    results: tuple[DeliveryResult, ...]

    @property
    def accepted(self) -> tuple[str, ...]:
        """
        The recipients some server took the message for.
        """
        return tuple(
            r for result in self.results if result.delivered for r in result.accepted
        )

    @property
    def failed(self) -> tuple[str, ...]:
        """
        The recipients no server took the message for.
        """
        accepted = set(self.accepted)
        out: dict[str, None] = {}
        for result in self.results:
            for recipient in result.recipients:
                if recipient not in accepted:
                    out.setdefault(recipient, None)
        return tuple(out)

    def resultFor(self, recipient: str) -> DeliveryResult | None:
        """
        @param recipient: an envelope recipient.
        @return: the last result that concerned it, or L{None}.
        """
        for result in reversed(self.results):
            if recipient in result.recipients:
                return result
        return None


@dataclass(frozen=True)
class _Plan:
    sender: str
    groups: tuple[tuple[str, tuple[str, ...]], ...]
    key: Any


def _domainOf(address: str) -> str:
    return address.rpartition("@")[2].lower()


def _plan(mail: OutboundMail) -> _Plan:
    """
    Check that the mail can be sent at all, and group its recipients.

    @raise ValueError: no or bad sender, no or bad recipient, a bad DKIM
        key, or contradictory settings.
    """
    if not mail.sender:
        raise ValueError("the mail has no sender")
    sender = mail.envelopeSender
    recipients = mail.envelopeRecipients
    if not recipients:
        raise ValueError("the mail has no recipient")
    groups: dict[str, list[str]] = {}
    for recipient in recipients:
        groups.setdefault(_domainOf(recipient), []).append(recipient)
    if mail.requireServerNameOfReceivingAddresses:
        if mail.tlsOptions is not None:
            raise ValueError(
                "requireServerNameOfReceivingAddresses cannot be used with "
                "tlsOptions: the server name to verify comes from the "
                "recipients' domain, not from the caller's TLS options"
            )
        if mail.smarthost is not None:
            raise ValueError(
                "requireServerNameOfReceivingAddresses cannot be used with a "
                "smarthost: the smarthost is not the recipients' domain"
            )
        if len(groups) != 1:
            raise ValueError(
                "requireServerNameOfReceivingAddresses needs every recipient "
                f"(To, Cc and Bcc) in one domain, not {sorted(groups)}"
            )
    key = loadPrivateKey(mail.dkim.privateKey) if mail.dkim is not None else None
    return _Plan(sender, tuple((d, tuple(rs)) for d, rs in groups.items()), key)


def sendMail(reactor: Any, mail: OutboundMail) -> Deferred[SentMail]:
    """
    Send a mail (RFC 5321): to each recipient domain's MX hosts in order of
    preference (the next on a temporary failure or connection error), or
    through the mail's smarthost; TLS as the mail's policy says; DKIM
    signature added when configured (RFC 6376).

    @param reactor: provides C{IReactorTCP}, C{IReactorTime} and
        C{IReactorThreads} (DNS and signing run in its thread pool).
    @param mail: the mail.
    @return: a Deferred firing with a L{SentMail}; it fails only when the
        mail cannot be sent at all (L{ValueError}: no sender, no recipient,
        a malformed address or header, a bad key, contradictory settings).
        Every server's refusal or error is a result, not a failure.
        Cancelling it closes every connection it opened at once and fails
        it with L{CancelledError}.
    """
    try:
        plan = _plan(mail)
        message = buildMessage(mail)
    except ValueError as e:
        return fail(e)
    return Deferred.fromCoroutine(_send(reactor, mail, plan, message))


async def _send(
    reactor: Any, mail: OutboundMail, plan: _Plan, message: bytes
) -> SentMail:
    if mail.dkim is not None:
        settings = mail.dkim
        signature: bytes = await deferToThreadPool(
            reactor,
            reactor.getThreadPool(),
            sign,
            message,
            settings.domain,
            settings.selector,
            plan.key,
            settings.headers,
        )
        message = signature + message
    messageID = Headers(splitHeaderBlock(message)[0]).get("Message-ID")
    if mail.smarthost is not None:
        recipients = tuple(r for _, rs in plan.groups for r in rs)
        results = await _viaSmarthost(
            reactor, mail, Transaction(plan.sender, recipients, message)
        )
        return SentMail(messageID, tuple(results))
    resolver = mail.resolver if mail.resolver is not None else Resolver(reactor)
    route = MXRoute(
        reactor,
        lambda: resolver,
        heloName=mail.heloName,
        port=mail.port,
        timeouts=mail.timeouts,
        requireTLS=mail.requireTLS,
        trustRoot=mail.trustRoot,
        tlsOptions=mail.tlsOptions,
        verifyDomain=mail.requireServerNameOfReceivingAddresses,
    )
    domains = [
        Deferred.fromCoroutine(
            _toDomain(route, domain, Transaction(plan.sender, rs, message))
        )
        for domain, rs in plan.groups
    ]
    try:
        perDomain = await gatherResults(domains, consumeErrors=True)
    except FirstError as e:
        # Only cancelling fails a domain's delivery: fail as it did.
        e.subFailure.raiseException()
    return SentMail(messageID, tuple(r for results in perDomain for r in results))


async def _viaSmarthost(
    reactor: Any, mail: OutboundMail, transaction: Transaction
) -> list[DeliveryResult]:
    """
    Hand the whole mail to the smarthost. With AUTH or C{requireTLS} the
    connection must be TLS and the certificate valid for the smarthost's
    name (RFC 8314 3); without them TLS is opportunistic.
    """
    smarthost = mail.smarthost
    assert smarthost is not None
    strict = smarthost.login is not None or mail.requireTLS or smarthost.implicitTLS
    policy = ClientTLSPolicy(
        startTLS="required" if strict else "opportunistic",
        serverName=smarthost.host,
        verify=strict,
        trustRoot=mail.trustRoot,
        options=mail.tlsOptions,
    )
    endpoint: IStreamClientEndpoint = (
        endpointFor(reactor, smarthost.host, smarthost.port, mail.timeouts.connect)
        if isIPAddress(smarthost.host)
        else HostnameEndpoint(
            reactor, smarthost.host, smarthost.port, timeout=mail.timeouts.connect
        )
    )
    if smarthost.implicitTLS:
        endpoint = wrapClientTLS(policy.connectionCreator(), endpoint)
    factory = ESMTPSenderFactory(
        reactor,
        [transaction],
        host=smarthost.host,
        heloName=mail.heloName,
        tls=policy,
        login=smarthost.login,
        password=smarthost.password,
        mechanism=smarthost.mechanism,
        timeouts=mail.timeouts,
    )
    return await factory.deliverVia(endpoint, smarthost.host, smarthost.port)


async def _toDomain(
    route: MXRoute, domain: str, transaction: Transaction
) -> list[DeliveryResult]:
    """
    Deliver to one domain's hosts in order until one takes the message or
    refuses it for good; a bug on the way is a temporary failure of this
    domain alone, not of the other domains' deliveries.
    """
    try:
        [results] = await route.deliver(domain, [transaction])
    except CancelledError:
        raise
    except Exception as e:
        _log.failure("SMTP delivery to {domain} failed", domain=domain)
        return [unrouted(domain, transaction, f"internal error: {e!r}", False)]
    return results
