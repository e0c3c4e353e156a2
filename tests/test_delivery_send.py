# -*- test-case-name: tests.test_delivery_send -*-
"""
Tests for L{gomail_twisted.delivery.sendMail}: MX routing against a real DNS
server on loopback, TLS policies with certificates made at test time, a
smarthost, and DKIM signatures checked with dkimpy.

Every MX host is one of our servers on its own loopback address
(127.0.0.2, 127.0.0.3, ...), all on one port, which the mail's C{port}
override points delivery at.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Any

import dns.resolver
from OpenSSL import SSL
from twisted.internet import reactor as _reactor
from twisted.internet.defer import CancelledError, Deferred, ensureDeferred, succeed
from twisted.internet.endpoints import SSL4ServerEndpoint, TCP4ServerEndpoint
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.ssl import optionsForClientTLS
from twisted.internet.threads import deferToThread
from twisted.logger import LogLevel, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase, TestCase

from gomail_twisted.delivery import (
    DKIMSettings,
    OutboundMail,
    SentMail,
    Smarthost,
    SMTPReply,
    SMTPTimeouts,
    sendMail,
)
from gomail_twisted.delivery._mx import MAX_ADDRESSES, MXRoute, unrouted
from gomail_twisted.delivery._tls import ClientTLSPolicy
from gomail_twisted.delivery._values import DeliveryResult, Transaction
from gomail_twisted.dkim import generatePrivateKey, keyRecordFor
from gomail_twisted.dns import MailExchanger, Resolver
from gomail_twisted.smtp import SMTPServerFactory
from gomail_twisted.tls import selfSignedCertificate, serverContextFactory
from tests._certs import testCA
from tests._dnsserver import LoopbackDNSServer
from tests._smtphelpers import RecordingBackend
from tests._twistd import environment
from tests.test_delivery_client import _Tracked, waitUntil
from tests.test_delivery_tls import CountingTrustRoot

reactor: Any = _reactor
DOMAIN = "example.test"
TIMEOUTS = SMTPTimeouts.uniform(5.0)


class _Host:
    """
    One of our servers on one loopback address.
    """

    def __init__(self, address: str, tls: Any = None, **kwargs: Any) -> None:
        self.address = address
        self.backend = RecordingBackend()
        self.factory = SMTPServerFactory(
            self.backend, hostname=f"mx-{address}", tls=tls, reactor=reactor, **kwargs
        )
        self.tracked = _Tracked(self.factory)


class DeliveryTestsMixin:
    """
    A loopback DNS zone and servers on one shared port.
    """

    addCleanup: Any

    def setUp(self) -> None:
        self.dns = LoopbackDNSServer()
        self.dns.start(reactor)
        self.addCleanup(self.dns.stop)
        self.resolver = Resolver(
            reactor,
            nameservers=["127.0.0.1"],
            port=self.dns.port,
            timeout=1,
            lifetime=2,
        )
        self.port = 0

    async def serve(self, *hosts: _Host, implicitTLS: Any = None) -> None:
        """
        Listen on each host's address, all on one port.
        """
        for _attempt in range(20):
            listening: list[_Host] = []
            try:
                for host in hosts:
                    endpoint = (
                        SSL4ServerEndpoint(
                            reactor, self.port, implicitTLS, interface=host.address
                        )
                        if implicitTLS is not None
                        else TCP4ServerEndpoint(
                            reactor, self.port, interface=host.address
                        )
                    )
                    port = await host.tracked.listen(endpoint)
                    self.port = self.port or port
                    listening.append(host)
            except Exception:
                for host in listening:
                    await host.tracked.close()
                self.port = 0
                continue
            for host in hosts:
                self.addCleanup(lambda h=host: ensureDeferred(h.tracked.close()))
            return
        raise RuntimeError("no port free on every address")

    async def serveTwoMX(self, first: _Host, second: _Host) -> None:
        """
        Serve both hosts and publish them as the domain's MX hosts,
        C{first} (127.0.0.2) preferred over C{second} (127.0.0.3).
        """
        await self.serve(first, second)
        self.dns.addMX(DOMAIN, 10, "mx1.example.test")
        self.dns.addMX(DOMAIN, 20, "mx2.example.test")
        self.dns.addA("mx1.example.test", first.address)
        self.dns.addA("mx2.example.test", second.address)

    def mail(self, **kwargs: Any) -> OutboundMail:
        fields: dict[str, Any] = {
            "sender": "Alice <alice@sender.test>",
            "to": [f"bob@{DOMAIN}"],
            "subject": "Hello",
            "text": "Hello, Bob.\n",
            "port": self.port,
            "resolver": self.resolver,
            "timeouts": TIMEOUTS,
            "heloName": "client.sender.test",
        }
        fields.update(kwargs)
        return OutboundMail(**fields)

    async def send(self, **kwargs: Any) -> SentMail:
        return await sendMail(reactor, self.mail(**kwargs))


def refuse(code: int, enhanced: str) -> Any:
    """
    A recording-backend behaviour that refuses every recipient.
    """

    def behaviour(value: object) -> None:
        raise SMTPReply(code, enhanced, "refused for the test")

    return behaviour


class RoutingTests(DeliveryTestsMixin, TestCase):
    """
    MX routing (RFC 5321 5.1, RFC 7505) against a real DNS server.
    """

    async def test_preferredHostDelivers(self) -> None:
        """
        The host with the lowest preference gets the mail; the result names
        it and its address.
        """
        first, second = _Host("127.0.0.2"), _Host("127.0.0.3")
        await self.serve(first, second)
        self.dns.addMX(DOMAIN, 20, "mx2.example.test")
        self.dns.addMX(DOMAIN, 10, "mx1.example.test")
        self.dns.addA("mx1.example.test", "127.0.0.2")
        self.dns.addA("mx2.example.test", "127.0.0.3")
        sent = await self.send()
        [result] = sent.results
        self.assertTrue(result.delivered, result.error)
        self.assertEqual(
            (result.host, result.address, result.port, result.domain),
            ("mx1.example.test", "127.0.0.2", self.port, DOMAIN),
        )
        self.assertEqual(len(first.backend.messages), 1)
        self.assertEqual(second.backend.messages, [])
        self.assertEqual(sent.accepted, (f"bob@{DOMAIN}",))
        self.assertEqual(sent.failed, ())
        raw = first.backend.messages[0].raw
        self.assertIn(b"Subject: Hello\r\n", raw)
        self.assertIn(f"Message-ID: {sent.messageID}".encode(), raw)

    async def test_fallbackOnTemporaryRefusal(self) -> None:
        """
        A 4xx refusal at the first host sends the mail to the next.
        """
        first, second = _Host("127.0.0.2"), _Host("127.0.0.3")
        first.backend.behaviour["rcptTo"] = refuse(451, "4.3.0")
        await self.serveTwoMX(first, second)
        sent = await self.send()
        refused, delivered = sent.results
        self.assertEqual((refused.code, refused.permanent), (451, False))
        self.assertEqual(refused.refused[0][1].enhanced, "4.3.0")
        self.assertTrue(delivered.delivered)
        self.assertEqual(delivered.host, "mx2.example.test")
        self.assertEqual(len(second.backend.messages), 1)

    async def test_fallbackWhenHostDown(self) -> None:
        """
        A host nobody listens on is a connection error; the next host gets
        the mail.
        """
        second = _Host("127.0.0.3")
        await self.serve(second)
        self.dns.addMX(DOMAIN, 10, "down.example.test")
        self.dns.addMX(DOMAIN, 20, "mx2.example.test")
        self.dns.addA("down.example.test", "127.0.0.9")
        self.dns.addA("mx2.example.test", "127.0.0.3")
        sent = await self.send()
        down, delivered = sent.results
        assert down.error is not None
        self.assertTrue(down.error.startswith("connection failed"), down.error)
        self.assertEqual(down.address, "127.0.0.9")
        self.assertTrue(delivered.delivered)

    async def test_mxLookupFailureIsTemporary(self) -> None:
        """
        A SERVFAIL for the MX lookup is a temporary failure that names the
        lookup (RFC 3463 4.4.3, directory server failure), and nothing is
        sent.
        """
        self.dns.addServerFailure(DOMAIN)
        sent = await self.send()
        [result] = sent.results
        self.assertFalse(result.permanent)
        self.assertEqual((result.code, result.enhanced), (None, "4.4.3"))
        assert result.error is not None
        self.assertIn(f"MX lookup for {DOMAIN} failed", result.error)
        self.assertEqual(sent.failed, (f"bob@{DOMAIN}",))

    async def test_hostAddressLookupFailure(self) -> None:
        """
        An MX host whose address cannot be looked up is reported, and the
        next host gets the mail.
        """
        second = _Host("127.0.0.3")
        await self.serve(second)
        self.dns.addMX(DOMAIN, 10, "broken.example.test")
        self.dns.addMX(DOMAIN, 20, "mx2.example.test")
        self.dns.addServerFailure("broken.example.test")
        self.dns.addA("mx2.example.test", "127.0.0.3")
        sent = await self.send()
        broken, delivered = sent.results
        self.assertEqual(broken.host, "broken.example.test")
        self.assertIn("address lookup for broken.example.test", broken.error or "")
        self.assertFalse(broken.permanent)
        self.assertTrue(delivered.delivered)

    async def test_addressLiteral(self) -> None:
        """
        A recipient at an address literal (RFC 5321 4.1.3) is delivered to
        that address with no DNS lookup.
        """
        host = _Host("127.0.0.2")
        await self.serve(host)
        sent = await self.send(to=["bob@[127.0.0.2]"])
        [result] = sent.results
        self.assertTrue(result.delivered, result.error)
        self.assertEqual(result.address, "127.0.0.2")
        self.assertEqual(self.dns.queries, [])
        self.assertEqual(
            [r.address for r in host.backend.messages[0].envelope.recipients],
            ["bob@[127.0.0.2]"],
        )

    async def test_permanentRefusalStops(self) -> None:
        """
        A 5xx refusal is final: the next host is not tried.
        """
        first, second = _Host("127.0.0.2"), _Host("127.0.0.3")
        first.backend.behaviour["rcptTo"] = refuse(550, "5.1.1")
        await self.serveTwoMX(first, second)
        sent = await self.send()
        [result] = sent.results
        self.assertTrue(result.permanent)
        self.assertEqual((result.code, result.enhanced), (550, "5.1.1"))
        self.assertEqual(sent.failed, (f"bob@{DOMAIN}",))
        self.assertIs(sent.resultFor(f"bob@{DOMAIN}"), result)

    async def test_implicitMX(self) -> None:
        """
        A domain without MX but with an address is its own mail host.
        """
        host = _Host("127.0.0.2")
        await self.serve(host)
        self.dns.addA(DOMAIN, "127.0.0.2")
        [result] = (await self.send()).results
        self.assertTrue(result.delivered, result.error)
        self.assertEqual(result.host, DOMAIN)

    async def test_nullMX(self) -> None:
        """
        A null MX (RFC 7505) is a permanent failure, 556 5.1.10.
        """
        self.dns.addMX(DOMAIN, 0, ".")
        [result] = (await self.send()).results
        self.assertTrue(result.permanent)
        self.assertEqual((result.code, result.enhanced), (556, "5.1.10"))
        self.assertEqual(result.error, f"{DOMAIN} accepts no mail (null MX, RFC 7505)")

    async def test_missingDomain(self) -> None:
        """
        A domain that does not exist is a permanent failure (RFC 3463
        5.1.2, bad destination system address).
        """
        [result] = (await self.send()).results
        self.assertTrue(result.permanent)
        self.assertEqual((result.code, result.enhanced), (None, "5.1.2"))
        assert result.error is not None
        self.assertIn("no mail host", result.error)

    async def test_dnsServerFailure(self) -> None:
        """
        SERVFAIL is a temporary failure.
        """
        self.dns.addServerFailure(DOMAIN)
        [result] = (await self.send()).results
        self.assertFalse(result.permanent)
        assert result.error is not None
        self.assertIn("MX lookup", result.error)

    async def test_recipientsGroupedByDomain(self) -> None:
        """
        Each domain gets one transaction with all its recipients; Bcc
        recipients get the mail without appearing in it.
        """
        first, second = _Host("127.0.0.2"), _Host("127.0.0.3")
        await self.serve(first, second)
        self.dns.addMX(DOMAIN, 10, "mx1.example.test")
        self.dns.addA("mx1.example.test", "127.0.0.2")
        self.dns.addMX("other.test", 10, "mx.other.test")
        self.dns.addA("mx.other.test", "127.0.0.3")
        sent = await self.send(
            to=[f"bob@{DOMAIN}", "carol@other.test"],
            cc=[f"dave@{DOMAIN}"],
            bcc=[f"eve@{DOMAIN}"],
        )
        self.assertEqual(len(sent.results), 2)
        self.assertEqual(
            sorted(sent.accepted),
            sorted(
                [f"bob@{DOMAIN}", f"dave@{DOMAIN}", f"eve@{DOMAIN}", "carol@other.test"]
            ),
        )
        [message] = first.backend.messages
        self.assertEqual(
            [r.address for r in message.envelope.recipients],
            [f"bob@{DOMAIN}", f"dave@{DOMAIN}", f"eve@{DOMAIN}"],
        )
        self.assertNotIn(b"eve@", message.raw)

    async def test_unsendableMailFails(self) -> None:
        """
        The Deferred fails only for mail that cannot be sent at all.
        """
        for kwargs in (
            {"sender": ""},
            {"to": [], "cc": [], "bcc": []},
            {"to": ["bob@example.test\r\nRCPT TO:<x@y.test>"]},
            {"dkim": DKIMSettings(DOMAIN, "s1", b"not a key")},
        ):
            with self.assertRaises(ValueError):
                await self.send(**kwargs)


class TLSPolicyTests(DeliveryTestsMixin, TestCase):
    """
    The TLS policies give the documented outcomes.
    """

    def zone(self, host: str = "mx.provider.test") -> None:
        self.dns.addMX(DOMAIN, 10, host)
        self.dns.addA(host, "127.0.0.2")

    async def test_opportunisticSelfSigned(self) -> None:
        """
        By default STARTTLS is used when offered, with any certificate; the
        facts say it was not verified, and why.
        """
        host = _Host(
            "127.0.0.2", tls=serverContextFactory(*selfSignedCertificate("x.test"))
        )
        await self.serve(host)
        self.zone()
        [result] = (await self.send()).results
        self.assertTrue(result.delivered, result.error)
        tls = result.tls
        assert tls is not None
        self.assertFalse(tls.verified)
        self.assertEqual(
            tls.verifyError, "certificate verify failed: self-signed certificate"
        )
        self.assertEqual((tls.serverName, tls.nameMatched), ("mx.provider.test", False))
        self.assertEqual(tls.certificateNames, ("x.test",))

    async def test_opportunisticVerifiable(self) -> None:
        """
        Opportunistic STARTTLS to a server whose certificate verifies against
        the trust root reports it verified; one whose certificate names
        another host is reported unverified, and why, and still gets the
        mail.
        """
        ca = testCA()
        right = _Host("127.0.0.2", tls=ca.serverContext("mx.provider.test"))
        wrong = _Host("127.0.0.3", tls=ca.serverContext("x.test"))
        await self.serve(right, wrong)
        self.zone()
        self.dns.addMX("other.test", 10, "mx.other.test")
        self.dns.addA("mx.other.test", "127.0.0.3")
        sent = await self.send(
            to=[f"bob@{DOMAIN}", "carol@other.test"], trustRoot=ca.trustRoot()
        )
        verified, unverified = sorted(sent.results, key=lambda r: r.address)
        self.assertTrue(verified.delivered, verified.error)
        self.assertTrue(unverified.delivered, unverified.error)
        assert verified.tls is not None and unverified.tls is not None
        self.assertEqual(
            (verified.tls.verified, verified.tls.verifyError), (True, None)
        )
        self.assertEqual(
            (unverified.tls.verified, unverified.tls.verifyError),
            (False, "certificate is not valid for mx.other.test (it names x.test)"),
        )
        self.assertEqual([len(h.backend.messages) for h in (right, wrong)], [1, 1])

    async def test_opportunisticWithoutTLS(self) -> None:
        """
        Without STARTTLS on offer, opportunistic mail goes in the clear.
        """
        await self.serve(_Host("127.0.0.2"))
        self.zone()
        [result] = (await self.send()).results
        self.assertTrue(result.delivered, result.error)
        self.assertIsNone(result.tls)

    async def test_requireTLSWithoutTLS(self) -> None:
        """
        C{requireTLS} and no STARTTLS: no delivery, a temporary failure
        saying why.
        """
        host = _Host("127.0.0.2")
        await self.serve(host)
        self.zone()
        [result] = (await self.send(requireTLS=True)).results
        self.assertFalse(result.delivered)
        self.assertFalse(result.permanent)
        self.assertEqual(
            result.error, "TLS is required but the server does not offer STARTTLS"
        )
        self.assertEqual(host.backend.messages, [])

    def unacceptableTLS(self) -> Any:
        """
        A server TLS configuration no client of ours can agree with: TLS 1.2
        only, with nothing but ciphers that encrypt nothing (C{eNULL}),
        which no TLS client offers, so every handshake fails.
        """
        options = serverContextFactory(*selfSignedCertificate("x.test"))
        context = options.getContext()
        context.set_max_proto_version(SSL.TLS1_2_VERSION)
        context.set_cipher_list(b"eNULL:@SECLEVEL=0")
        return options

    async def test_opportunisticFallsBackAfterFailedHandshake(self) -> None:
        """
        When the STARTTLS handshake fails, opportunistic mail is sent again
        to the same server without TLS (RFC 7435 4), and delivered; both
        attempts are reported.
        """
        host = _Host("127.0.0.2", tls=self.unacceptableTLS())
        await self.serve(host)
        self.zone()
        sent = await self.send()
        failed, plain = sent.results
        self.assertFalse(failed.delivered)
        assert failed.error is not None
        self.assertTrue(failed.error.startswith("TLS handshake failed"), failed.error)
        self.assertFalse(failed.permanent)
        self.assertTrue(plain.delivered, plain.error)
        self.assertIsNone(plain.tls)
        self.assertEqual((plain.address, plain.code), ("127.0.0.2", 250))
        [message] = host.backend.messages
        self.assertIn(b"Hello, Bob.", message.raw)
        self.assertIsNone(message.connection.tls)

    async def test_requireTLSAfterFailedHandshake(self) -> None:
        """
        With C{requireTLS} the same failed handshake is a temporary failure
        saying so, and nothing is sent in the clear.
        """
        host = _Host("127.0.0.2", tls=self.unacceptableTLS())
        await self.serve(host)
        self.zone()
        [result] = (await self.send(requireTLS=True)).results
        self.assertFalse(result.delivered)
        self.assertFalse(result.permanent)
        assert result.error is not None
        self.assertTrue(result.error.startswith("TLS handshake failed"), result.error)
        self.assertEqual(host.backend.messages, [])

    async def test_serverNameOfRecipientDomain(self) -> None:
        """
        A certificate valid for the recipients' domain satisfies
        C{requireServerNameOfReceivingAddresses}, whatever the MX host.
        """
        ca = testCA()
        await self.serve(_Host("127.0.0.2", tls=ca.serverContext(DOMAIN)))
        self.zone()
        [result] = (
            await self.send(
                requireServerNameOfReceivingAddresses=True, trustRoot=ca.trustRoot()
            )
        ).results
        self.assertTrue(result.delivered, result.error)
        tls = result.tls
        assert tls is not None
        self.assertEqual(
            (tls.serverName, tls.nameMatched, tls.verified), (DOMAIN, True, True)
        )

    async def test_serverNameOfMXUnderDomain(self) -> None:
        """
        An MX host under the recipients' domain may prove itself with its
        own name.
        """
        ca = testCA()
        await self.serve(_Host("127.0.0.2", tls=ca.serverContext("mx.example.test")))
        self.zone("mx.example.test")
        [result] = (
            await self.send(
                requireServerNameOfReceivingAddresses=True, trustRoot=ca.trustRoot()
            )
        ).results
        self.assertTrue(result.delivered, result.error)
        assert result.tls is not None
        self.assertEqual(result.tls.serverName, "mx.example.test")

    async def test_serverNameMismatch(self) -> None:
        """
        A CA-signed certificate for another name fails with a clear error,
        and nothing is delivered.
        """
        ca = testCA()
        host = _Host("127.0.0.2", tls=ca.serverContext("mx.provider.test"))
        await self.serve(host)
        self.zone()
        [result] = (
            await self.send(
                requireServerNameOfReceivingAddresses=True, trustRoot=ca.trustRoot()
            )
        ).results
        self.assertFalse(result.delivered)
        self.assertEqual(
            result.error,
            f"TLS: certificate is not valid for {DOMAIN} (it names mx.provider.test)",
        )
        assert result.tls is not None
        self.assertFalse(result.tls.nameMatched)
        self.assertEqual(host.backend.messages, [])

    async def test_trustRootLoadedOnce(self) -> None:
        """
        Deliveries with one trust root load it into one context: two
        verified deliveries and a third to a server whose certificate names
        another host, which is still refused, load it once.
        """
        ca = testCA()
        root = CountingTrustRoot(ca.trustRoot())
        first = _Host("127.0.0.2", tls=ca.serverContext(DOMAIN))
        second = _Host("127.0.0.3", tls=ca.serverContext("mx.provider.test"))
        await self.serve(first, second)
        self.zone()
        strict = {"requireServerNameOfReceivingAddresses": True, "trustRoot": root}
        for _ in range(2):
            [result] = (await self.send(**strict)).results
            self.assertTrue(result.delivered, result.error)
        self.dns.addMX("other.test", 10, "mx.other.test")
        self.dns.addA("mx.other.test", "127.0.0.3")
        [result] = (await self.send(to=["carol@other.test"], **strict)).results
        self.assertEqual(
            result.error,
            "TLS: certificate is not valid for mx.other.test or other.test "
            "(it names mx.provider.test)",
        )
        self.assertEqual(len(first.backend.messages), 2)
        self.assertEqual(second.backend.messages, [])
        self.assertEqual(root.loads, 1)

    async def test_serverNameSelfSigned(self) -> None:
        """
        A self-signed certificate, even for the right name, fails the
        chain verification.
        """
        tls = serverContextFactory(*selfSignedCertificate(DOMAIN))
        await self.serve(_Host("127.0.0.2", tls=tls))
        self.zone()
        [result] = (
            await self.send(
                requireServerNameOfReceivingAddresses=True,
                trustRoot=testCA().trustRoot(),
            )
        ).results
        self.assertFalse(result.delivered)
        assert result.error is not None
        self.assertEqual(
            result.error,
            "TLS handshake failed: certificate verify failed (self-signed certificate)",
        )

    async def test_serverNameContradictions(self) -> None:
        """
        C{requireServerNameOfReceivingAddresses} with C{tlsOptions}, or with
        recipients in two domains, is refused with a clear error.
        """
        with self.assertRaises(ValueError) as caught:
            await self.send(
                requireServerNameOfReceivingAddresses=True,
                tlsOptions=optionsForClientTLS("mx.example.test"),
            )
        self.assertIn("tlsOptions", str(caught.exception))
        with self.assertRaises(ValueError) as caught:
            await self.send(
                requireServerNameOfReceivingAddresses=True,
                to=[f"bob@{DOMAIN}", "carol@other.test"],
            )
        self.assertIn("one domain", str(caught.exception))

    async def test_callerTLSOptions(self) -> None:
        """
        A caller's TLS options are used as they are: here a private CA
        verifying the MX host.
        """
        ca = testCA()
        await self.serve(_Host("127.0.0.2", tls=ca.serverContext("mx.provider.test")))
        self.zone()
        options = optionsForClientTLS("mx.provider.test", trustRoot=ca.trustRoot())
        [result] = (await self.send(tlsOptions=options, requireTLS=True)).results
        self.assertTrue(result.delivered, result.error)
        assert result.tls is not None
        self.assertEqual((result.tls.nameMatched, result.tls.verified), (True, True))


class SmarthostAndDKIMTests(DeliveryTestsMixin, TestCase):
    """
    Relaying through a smarthost, and DKIM signatures that dkimpy verifies.
    """

    async def test_smarthostSTARTTLSAuth(self) -> None:
        """
        Submission with STARTTLS and AUTH: every recipient, whatever its
        domain, goes to the smarthost in one transaction.
        """
        ca = testCA()
        host = _Host("127.0.0.1", tls=ca.serverContext("localhost"))
        await self.serve(host)
        sent = await self.send(
            to=["bob@one.test", "carol@two.test"],
            smarthost=Smarthost(
                "localhost", self.port, login="alice", password="secret"
            ),
            trustRoot=ca.trustRoot(),
        )
        [result] = sent.results
        self.assertTrue(result.delivered, result.error)
        self.assertEqual(result.accepted, ("bob@one.test", "carol@two.test"))
        self.assertEqual(host.backend.messages[0].login, "alice")

    async def test_smarthostImplicitTLSLogin(self) -> None:
        """
        Submission with implicit TLS and AUTH LOGIN.
        """
        ca = testCA()
        host = _Host("127.0.0.1")
        await self.serve(host, implicitTLS=ca.serverContext("localhost"))
        smarthost = Smarthost(
            "localhost",
            self.port,
            implicitTLS=True,
            login="alice",
            password="secret",
            mechanism="LOGIN",
        )
        [result] = (
            await self.send(smarthost=smarthost, trustRoot=ca.trustRoot())
        ).results
        self.assertTrue(result.delivered, result.error)
        assert result.tls is not None
        self.assertTrue(result.tls.verified)

    async def test_dkimSignatureVerifiesWithDkimpy(self) -> None:
        """
        A signed, delivered message verifies with dkimpy against the key
        record published in DNS.
        """
        import dkim

        key = generatePrivateKey("rsa", 2048)
        record = keyRecordFor(key).encode()
        chunks = [record[i : i + 255] for i in range(0, len(record), 255)]
        self.dns.addTXT("s1._domainkey.sender.test", *chunks)
        host = _Host("127.0.0.2")
        await self.serve(host)
        self.dns.addMX(DOMAIN, 10, "mx.example.test")
        self.dns.addA("mx.example.test", "127.0.0.2")
        [result] = (
            await self.send(
                dkim=DKIMSettings("sender.test", "s1", key), html="<p>Hi</p>"
            )
        ).results
        self.assertTrue(result.delivered, result.error)
        raw = host.backend.messages[0].raw
        self.assertIn(b"DKIM-Signature:", raw)
        port = self.dns.port

        def lookup(name: bytes, timeout: int = 5) -> bytes:
            resolver = dns.resolver.Resolver(configure=False)
            resolver.nameservers = ["127.0.0.1"]
            resolver.port = port
            answer = resolver.resolve(name.decode().rstrip("."), "TXT")
            return b"".join(next(iter(answer)).strings)

        self.assertTrue(await deferToThread(dkim.verify, raw, dnsfunc=lookup))


def _alarming(event: dict[str, Any]) -> bool:
    """
    Whether a log event would alarm an operator: a warning or worse, or a
    traceback.
    """
    level = event.get("log_level")
    return "log_failure" in event or level in (
        LogLevel.warn,
        LogLevel.error,
        LogLevel.critical,
    )


class _Silent:
    """
    A server on one loopback address that takes connections, reads what
    comes, and never answers.
    """

    def __init__(self, address: str) -> None:
        self.address = address
        self.tracked = _Tracked(Factory.forProtocol(Protocol))


class CancelTests(DeliveryTestsMixin, TestCase):
    """
    Cancelling L{sendMail}'s Deferred fails it with L{CancelledError} and
    closes every connection it opened at once, quietly.
    """

    def setUp(self) -> None:
        super().setUp()
        self.events: list[dict[str, Any]] = []
        observer = self.events.append
        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)

    def assertQuiet(self) -> None:
        """
        Nothing alarming was logged, and no Deferred failed unhandled.
        """
        gc.collect()
        self.assertEqual(self.flushLoggedErrors(), [])
        self.assertEqual([e for e in self.events if _alarming(e)], [])

    async def cancelWhenConnected(self, mail: OutboundMail, *hosts: _Silent) -> None:
        """
        Send C{mail}, cancel once every host has a connection, and check
        that the Deferred fails with L{CancelledError} and that every host
        sees its connection closed, quietly.
        """
        sending = sendMail(reactor, mail)
        await waitUntil(lambda: all(h.tracked.open for h in hosts))
        sending.cancel()
        with self.assertRaises(CancelledError):
            await sending
        await waitUntil(lambda: not any(h.tracked.open for h in hosts))
        self.assertQuiet()

    async def test_cancelClosesEveryConnection(self) -> None:
        """
        Cancelling while two servers say nothing fails the Deferred with
        L{CancelledError}, and both servers see their connection closed,
        long before the client's own timeout.
        """
        hosts = _Silent("127.0.0.2"), _Silent("127.0.0.3")
        await self.serve(*hosts)  # type: ignore[arg-type]
        mail = self.mail(
            to=["bob@[127.0.0.2]", "carol@[127.0.0.3]"],
            timeouts=SMTPTimeouts.uniform(60.0),
        )
        await self.cancelWhenConnected(mail, *hosts)

    async def test_cancelSmarthost(self) -> None:
        """
        Cancelling a delivery to a smarthost that never greets closes the
        connection at once.
        """
        host = _Silent("127.0.0.1")
        await self.serve(host)  # type: ignore[arg-type]
        mail = self.mail(
            smarthost=Smarthost("127.0.0.1", self.port),
            timeouts=SMTPTimeouts.uniform(60.0),
        )
        await self.cancelWhenConnected(mail, host)

    async def test_cancelDuringLookup(self) -> None:
        """
        Cancelling while the MX lookup runs fails the Deferred with
        L{CancelledError}, quietly.
        """
        sending = sendMail(reactor, self.mail())
        sending.cancel()
        with self.assertRaises(CancelledError):
            await sending
        self.assertQuiet()


_LOADED = """
import json, sys
import {module}
print(json.dumps(sorted(m for m in sys.modules if m.startswith("gomail_twisted."))))
"""


class _ManyHostsResolver:
    """
    A resolver for a domain that publishes C{hosts} mail exchangers of
    C{perHost} addresses each, counting the address lookups.
    """

    def __init__(self, hosts: int, perHost: int) -> None:
        self.hosts = hosts
        self.perHost = perHost
        self.addressLookups: list[str] = []

    def lookupMX(self, domain: str) -> Deferred[list[MailExchanger]]:
        return succeed(
            [MailExchanger(10, f"mx{n}.{domain}") for n in range(self.hosts)]
        )

    def lookupAddresses(self, name: str) -> Deferred[list[str]]:
        self.addressLookups.append(name)
        n = len(self.addressLookups)
        return succeed(
            [f"192.0.2.{n}"] + [f"2001:db8::{n}:{k}" for k in range(1, self.perHost)]
        )


@dataclass(frozen=True)
class _RefusedRoute(MXRoute):
    """
    An L{MXRoute} whose every connection fails temporarily, recording the
    addresses it was asked to connect to.
    """

    connected: list[str] = field(default_factory=list)

    def _connect(
        self,
        domain: str,
        host: str,
        address: str,
        batch: list[Transaction],
        policy: ClientTLSPolicy,
    ) -> Deferred[list[DeliveryResult]]:
        self.connected.append(address)
        return succeed(
            [unrouted(domain, t, "connection refused", False, host) for t in batch]
        )


class AddressLimitTests(SynchronousTestCase):
    """
    One delivery looks up and connects to at most L{MAX_ADDRESSES} mail
    exchanger addresses (RFC 5321 5.1), however many the domain publishes.
    """

    def test_manyUnreachableHostsCostAFewConnections(self) -> None:
        """
        A domain publishing 50 hosts of 3 addresses each, none reachable,
        gets at most L{MAX_ADDRESSES} lookups and connections, and its
        message a temporary failure.
        """
        resolver = _ManyHostsResolver(hosts=50, perHost=3)
        route = _RefusedRoute(
            reactor=None,
            resolver=lambda: resolver,  # type: ignore[arg-type,return-value]
            heloName="client.test",
            port=25,
            timeouts=TIMEOUTS,
        )
        transaction = Transaction("a@client.test", (f"b@{DOMAIN}",), b"Hi\r\n")
        results = self.successResultOf(
            Deferred.fromCoroutine(route.deliver(DOMAIN, [transaction]))
        )
        self.assertEqual(len(route.connected), MAX_ADDRESSES)
        self.assertLessEqual(len(resolver.addressLookups), MAX_ADDRESSES)
        self.assertEqual(len(results[0]), MAX_ADDRESSES)
        self.assertFalse(results[0][-1].delivered)
        self.assertFalse(results[0][-1].permanent)

    def test_fewAddressesAllTried(self) -> None:
        """
        Below the limit every address of every host is tried, in order.
        """
        resolver = _ManyHostsResolver(hosts=2, perHost=2)
        route = _RefusedRoute(
            reactor=None,
            resolver=lambda: resolver,  # type: ignore[arg-type,return-value]
            heloName="client.test",
            port=25,
            timeouts=TIMEOUTS,
        )
        transaction = Transaction("a@client.test", (f"b@{DOMAIN}",), b"Hi\r\n")
        self.successResultOf(
            Deferred.fromCoroutine(route.deliver(DOMAIN, [transaction]))
        )
        self.assertEqual(
            route.connected,
            ["192.0.2.1", "2001:db8::1:1", "192.0.2.2", "2001:db8::2:1"],
        )


class LayoutTests(SynchronousTestCase):
    """
    The delivery client and the SMTP server are separate packages: a
    program that sends mail does not load the server, and a server does not
    load the client.
    """

    def loaded(self, module: str) -> list[str]:
        """
        The gomail_twisted modules a fresh interpreter holds after importing
        C{module}.
        """
        result = subprocess.run(
            [sys.executable, "-c", _LOADED.format(module=module)],
            env=environment(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        modules: list[str] = json.loads(result.stdout)
        return modules

    def test_deliveryWithoutServer(self) -> None:
        """
        Importing L{gomail_twisted.delivery} loads nothing of
        L{gomail_twisted.smtp}.
        """
        loaded = self.loaded("gomail_twisted.delivery")
        self.assertIn("gomail_twisted.delivery.send", loaded)
        self.assertEqual(
            [m for m in loaded if m.split(".")[:2] == ["gomail_twisted", "smtp"]], []
        )

    def test_serverWithoutDelivery(self) -> None:
        """
        Importing L{gomail_twisted.smtp} loads nothing of
        L{gomail_twisted.delivery}, nor DNS or DKIM signing.
        """
        loaded = self.loaded("gomail_twisted.smtp")
        self.assertIn("gomail_twisted.smtp.server", loaded)
        self.assertEqual(
            [m for m in loaded if m.split(".")[:2] == ["gomail_twisted", "delivery"]],
            [],
        )
        self.assertNotIn("gomail_twisted.dns", loaded)
