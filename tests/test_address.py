# -*- test-case-name: tests.test_address -*-
"""
Tests for L{gomail_twisted.address}: domains and mailboxes checked as RFC
5321 4.1.2 and RFC 6531 3.3 say, and the normal form under which an
address is looked up.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from gomail_twisted.address import (
    MAX_DOMAIN,
    MAX_LOCAL_PART,
    checkDomain,
    normalizeAddress,
    normalizeDomain,
    parseMailbox,
    unquoteLocalPart,
)

_LABELS = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True)


class CheckDomainTests(SynchronousTestCase):
    """
    L{checkDomain} accepts the domains and address literals of RFC 5321
    4.1.2 and nothing else.
    """

    def test_valid(self) -> None:
        """
        Each of these domains and address literals is accepted.
        """
        good = [
            "a",
            "example.com",
            "a-b.c",
            "1.2.3.4",
            "[1.2.3.4]",
            "[IPv6:::1]",
            "[ipv6:2001:db8::1]",
            "b\u00fccher.example",
            "x" * 63 + ".com",
            "[tag:x]",
            ".".join(["a" * 63] * 4),
        ]
        self.assertEqual([d for d in good if not checkDomain(d)], [])

    def test_invalid(self) -> None:
        """
        Each of these is refused: empty or misplaced labels, bad characters,
        malformed literals, a label over 63 octets, a domain over 255.
        """
        bad = [
            "",
            "-a",
            "a-",
            "a..b",
            ".a",
            "a.",
            "a b",
            "a_b",
            "a@b",
            "[1.2.3.4",
            "[1.2.3.4.5]",
            "[IPv6:1::2::3]",
            "[IPv6:fe80::1%1]",
            "[:x]",
            "x" * 64 + ".com",
            "\u00fc" * 32 + ".com",
            ".".join(["a" * 63] * 4) + "a",
        ]
        self.assertEqual([d for d in bad if checkDomain(d)], [])

    @settings(max_examples=50)
    @given(st.lists(_LABELS, min_size=1, max_size=4))
    def test_labelsJoined(self, labels: list[str]) -> None:
        """
        Any dot-joined list of letter-digit-hyphen labels that fits in
        L{MAX_DOMAIN} is a domain.
        """
        domain = ".".join(labels)
        self.assertEqual(checkDomain(domain), len(domain) <= MAX_DOMAIN)


class ParseMailboxTests(SynchronousTestCase):
    """
    L{parseMailbox} splits a mailbox at its last C{@} and checks both parts.
    """

    def test_valid(self) -> None:
        """
        Each mailbox splits into the local part as given and the domain.
        """
        table = [
            ("a.b@c", ("a.b", "c")),
            ('"a@b"@c.d', ('"a@b"', "c.d")),
            ('"a b"@c.d', ('"a b"', "c.d")),
            ('"a\\"b"@c.d', ('"a\\"b"', "c.d")),
            ("Alice+tag@Example.COM", ("Alice+tag", "Example.COM")),
            ("j\u00f6rg@b\u00fccher.example", ("j\u00f6rg", "b\u00fccher.example")),
            ("x" * MAX_LOCAL_PART + "@c", ("x" * MAX_LOCAL_PART, "c")),
            ("a@[192.0.2.1]", ("a", "[192.0.2.1]")),
        ]
        self.assertEqual([(text, parseMailbox(text)) for text, _ in table], table)

    def test_invalid(self) -> None:
        """
        Each of these raises L{ValueError}: no C{@}, an empty part, a bad
        local part or domain, a local part over 64 octets.
        """
        bad = [
            "",
            "a",
            "@c",
            "a@",
            "a@@c",
            "a b@c",
            ".a@c",
            "a..b@c",
            '"a@c',
            "a@-c",
            "x" * (MAX_LOCAL_PART + 1) + "@c",
        ]
        accepted = []
        for text in bad:
            try:
                parseMailbox(text)
            except ValueError:
                continue
            accepted.append(text)
        self.assertEqual(accepted, [])


class NormalizeTests(SynchronousTestCase):
    """
    L{normalizeDomain}, L{unquoteLocalPart} and L{normalizeAddress} give one
    form to every spelling of a mailbox.
    """

    def test_normalizeDomain(self) -> None:
        """
        Domains lose their case and trailing dot; internationalized ones
        take their A-label form; literals are only lower-cased.
        """
        table = [
            ("Example.COM.", "example.com"),
            (" example.com ", "example.com"),
            ("B\u00dcCHER.Example", "xn--bcher-kva.example"),
            ("XN--BCHER-KVA.example", "xn--bcher-kva.example"),
            ("_dmarc.Example.com", "_dmarc.example.com"),
            ("[IPv6:::1]", "[ipv6:::1]"),
        ]
        self.assertEqual([(d, normalizeDomain(d)) for d, _ in table], table)

    @settings(max_examples=50)
    @given(st.text(max_size=30))
    def test_normalizeDomainIdempotent(self, domain: str) -> None:
        """
        A normalized domain is its own normal form.
        """
        once = normalizeDomain(domain)
        self.assertEqual(normalizeDomain(once), once)

    def test_unquoteLocalPart(self) -> None:
        """
        A quoted local part gives its content, backslash escapes undone; an
        unquoted one is returned unchanged.
        """
        table = [
            ("alice", "alice"),
            ('"alice"', "alice"),
            ('"a\\"b"', 'a"b'),
            ('"a\\\\b"', "a\\b"),
            ('"a b"', "a b"),
            ('"', '"'),
            ('""', ""),
        ]
        self.assertEqual([(q, unquoteLocalPart(q)) for q, _ in table], table)

    def test_normalizeAddress(self) -> None:
        """
        Spellings of one mailbox share a normal form: case, quoting and
        the domain's form do not matter.
        """
        table = [
            ("alice@example.com", "alice@example.com"),
            ("Alice@Example.COM", "alice@example.com"),
            ('"Alice"@example.com.', "alice@example.com"),
            ("alice@B\u00fccher.example", "alice@xn--bcher-kva.example"),
            ("J\u00d6RG@example.com", "j\u00f6rg@example.com"),
            ('"a@b"@example.com', "a@b@example.com"),
            ("Postmaster", "postmaster"),
            ("POSTMASTER@Example.com", "postmaster@example.com"),
        ]
        self.assertEqual([(a, normalizeAddress(a)) for a, _ in table], table)

    def test_normalizeAddressWithoutAt(self) -> None:
        """
        An address without C{@}, other than C{postmaster}, raises
        L{ValueError}.
        """
        self.assertRaises(ValueError, normalizeAddress, "alice")
        self.assertRaises(ValueError, normalizeAddress, "")
