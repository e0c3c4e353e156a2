# -*- test-case-name: tests.test_dns -*-
"""
Tests for L{gomail_twisted.dns}, against a real DNS server on loopback.
"""

from __future__ import annotations

import random
from typing import Any

import dns.message
import dns.query
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import TestCase

from gomail_twisted.dkim import DKIMStatus, sign, verify
from gomail_twisted.dns import (
    DNSNameError,
    DNSNullMXError,
    DNSPermanentError,
    DNSTemporaryError,
    DNSTimeoutError,
    MailExchanger,
    Resolver,
)
from tests._dnsserver import LoopbackDNSServer
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
