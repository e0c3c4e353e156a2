# -*- test-case-name: tests.test_dkim_bad -*-
"""
Malformed DKIM-Signature fields and key records: each must give a clear
permerror from L{gomail_twisted.dkim.verify}, never an exception.
"""

from __future__ import annotations

import base64

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from gomail_twisted.dkim import DKIMStatus, sign, verify
from tests.test_dkim import DOMAIN, MESSAGE, NOW, FakeDNS, recordFor, rsaKey

_GOOD_TAGS = [
    ("v", "1"),
    ("a", "rsa-sha256"),
    ("c", "relaxed/relaxed"),
    ("d", DOMAIN),
    ("s", "sel"),
    ("h", "from:to:subject"),
    ("bh", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="),
    ("b", "AAAA"),
]


def signatureWith(
    changes: dict[str, str | None], order: list[str] | None = None
) -> bytes:
    """
    @param changes: tags to replace (or, with L{None}, to drop).
    @param order: put these tags first, in this order.
    @return: a DKIM-Signature field built from good tags and the changes.
    """
    tags = [(k, changes.get(k, v)) for k, v in _GOOD_TAGS]
    tags += [(k, v) for k, v in changes.items() if k not in dict(_GOOD_TAGS)]
    if order:
        tags.sort(key=lambda kv: order.index(kv[0]) if kv[0] in order else 99)
    value = "; ".join(f"{k}={v}" for k, v in tags if v is not None)
    return b"DKIM-Signature: " + value.encode("utf-8") + b"\r\n"


BAD_SIGNATURES: list[tuple[str, bytes, str]] = [
    ("no v=", signatureWith({"v": None}), "no v= tag"),
    ("no a=", signatureWith({"a": None}), "no a= tag"),
    ("no b=", signatureWith({"b": None}), "no b= tag"),
    ("no bh=", signatureWith({"bh": None}), "no bh= tag"),
    ("no d=", signatureWith({"d": None}), "no d= tag"),
    ("no h=", signatureWith({"h": None}), "no h= tag"),
    ("no s=", signatureWith({"s": None}), "no s= tag"),
    ("version 2", signatureWith({"v": "2"}), "unsupported signature version"),
    ("unknown algorithm", signatureWith({"a": "rsa-md5"}), "unknown algorithm"),
    ("rsa-sha1", signatureWith({"a": "rsa-sha1"}), "RFC 8301"),
    ("bad canonicalization", signatureWith({"c": "nowsp/simple"}), "canonicalization"),
    ("From not signed", signatureWith({"h": "to:subject"}), "does not include From"),
    ("empty h= item", signatureWith({"h": "from::to"}), "empty header name"),
    ("bad base64 b=", signatureWith({"b": "!!!!"}), "b= is not valid base64"),
    ("bad base64 bh=", signatureWith({"bh": "abc"}), "bh= is not valid base64"),
    ("huge l=", signatureWith({"l": "9" * 100}), "l= is not a number"),
    ("negative l=", signatureWith({"l": "-1"}), "l= is not a number"),
    ("l= past the body", signatureWith({"l": "999999"}), "l= is longer than the body"),
    ("bad t=", signatureWith({"t": "yesterday"}), "t= is not a number"),
    (
        "x= before t=",
        signatureWith({"t": str(NOW), "x": str(NOW - 10)}),
        "x= is before t=",
    ),
    (
        "i= outside d=",
        signatureWith({"i": "a@example.org"}),
        "i= is not in the d= domain",
    ),
    ("i= without @", signatureWith({"i": "example.com"}), "i= is not in the d= domain"),
    ("q= without dns/txt", signatureWith({"q": "http"}), "q= does not offer dns/txt"),
    ("bad d=", signatureWith({"d": "exa mple.com"}), "invalid d= or s="),
    ("d= with a slash", signatureWith({"d": "../etc"}), "invalid d= or s="),
    (
        "duplicate tag",
        signatureWith({}).replace(b"; s=sel", b"; s=sel; s=other"),
        "duplicate tag 's'",
    ),
    ("non-ASCII", signatureWith({"s": "s\u00e9l"}), "signature syntax"),
    ("no tags", b"DKIM-Signature: \r\n", "signature syntax"),
    ("garbage", b"DKIM-Signature: ;;;===\r\n", "signature syntax"),
]


class BadSignatureTests(SynchronousTestCase):
    """
    A table of malformed DKIM-Signature fields.
    """

    def test_table(self) -> None:
        """
        Each malformed signature is a permerror whose reason says what is
        wrong, and the other signatures of the message are still checked.
        """
        good = sign(MESSAGE, DOMAIN, "sel", rsaKey(), timestamp=NOW)
        dns = FakeDNS({f"sel._domainkey.{DOMAIN}": [recordFor("rsa")]})
        for description, field, reason in BAD_SIGNATURES:
            with self.subTest(description):
                results = self.successResultOf(
                    verify(field + good + MESSAGE, dns.lookupTXT, now=NOW)
                )
                self.assertEqual(len(results), 2)
                bad, ok = results
                self.assertEqual(bad.status, DKIMStatus.PERMERROR, bad)
                self.assertIn(reason, bad.reason)
                self.assertEqual(ok.status, DKIMStatus.PASS)

    def test_describesWhatItCan(self) -> None:
        """
        A permerror still names the domain, selector and algorithm when the
        signature's tags could be read.
        """
        [result] = self.successResultOf(
            verify(signatureWith({"h": "to"}) + MESSAGE, FakeDNS({}).lookupTXT, now=NOW)
        )
        self.assertEqual(
            (result.domain, result.selector, result.algorithm),
            (DOMAIN, "sel", "rsa-sha256"),
        )

    @settings(max_examples=200, deadline=None)
    @given(st.binary(max_size=200))
    def test_fuzzedField(self, value: bytes) -> None:
        """
        Any bytes as a DKIM-Signature value give one result, never an error.
        """
        value = value.replace(b"\r\n\r\n", b"")
        message = b"DKIM-Signature:" + value + b"\r\n" + MESSAGE
        d = verify(message, FakeDNS({}).lookupTXT, now=NOW)
        results = self.successResultOf(d)
        self.assertGreaterEqual(len(results), 1)


def _withRecord(record: bytes) -> FakeDNS:
    return FakeDNS({f"sel._domainkey.{DOMAIN}": [record]})


_RSA = recordFor("rsa").decode("ascii")
_P = _RSA.split("p=", 1)[1]

BAD_RECORDS: list[tuple[str, bytes, str]] = [
    ("revoked", b"v=DKIM1; k=rsa; p=", "key revoked"),
    ("no p=", b"v=DKIM1; k=rsa", "no p= tag"),
    ("bad version", f"v=DKIM2; p={_P}".encode(), "unknown key record version"),
    ("v= not first", f"k=rsa; v=DKIM1; p={_P}".encode(), "v= is not the first tag"),
    ("unknown key type", f"v=DKIM1; k=dsa; p={_P}".encode(), "unknown key type"),
    ("key type mismatch", recordFor("ed25519"), "does not match a="),
    ("bad base64", b"v=DKIM1; p=!!notbase64!!", "not valid base64"),
    ("not a key", b"v=DKIM1; p=AAAAAAAA", "not a DER RSA public key"),
    ("sha1 only", f"v=DKIM1; h=sha1; p={_P}".encode(), "h= does not allow sha256"),
    ("other service", f"v=DKIM1; s=tlsrpt; p={_P}".encode(), "s= does not allow email"),
    ("duplicate tag", f"v=DKIM1; p={_P}; p={_P}".encode(), "duplicate tag"),
    ("non-ASCII", f"v=DKIM1; n=caf\u00e9; p={_P}".encode(), "non-ASCII"),
    ("malformed", b"this is not a key record", "key record syntax"),
    ("ed25519 wrong size", b"v=DKIM1; k=ed25519; p=AAAA", "not 32 bytes"),
]


class BadKeyRecordTests(SynchronousTestCase):
    """
    A table of malformed or unusable key records.
    """

    def test_table(self) -> None:
        """
        Each bad record is a permerror whose reason says what is wrong.
        """
        message = sign(MESSAGE, DOMAIN, "sel", rsaKey(), timestamp=NOW) + MESSAGE
        for description, record, reason in BAD_RECORDS:
            with self.subTest(description):
                [result] = self.successResultOf(
                    verify(message, _withRecord(record).lookupTXT, now=NOW)
                )
                self.assertEqual(result.status, DKIMStatus.PERMERROR, result)
                self.assertIn(reason, result.reason)

    def test_goodRecordControl(self) -> None:
        """
        The same message passes with the good record, so the table's
        failures come from the records alone.
        """
        message = sign(MESSAGE, DOMAIN, "sel", rsaKey(), timestamp=NOW) + MESSAGE
        [result] = self.successResultOf(
            verify(message, _withRecord(_RSA.encode()).lookupTXT, now=NOW)
        )
        self.assertEqual(result.status, DKIMStatus.PASS)

    def test_shortRSAKey(self) -> None:
        """
        An RSA key under 1024 bits is refused (RFC 8301 3.2), even when the
        signature would verify with it.
        """
        # cryptography will not make such a key; any odd 512-bit modulus
        # makes a loadable public key, which is all the check needs.
        numbers = rsa.RSAPublicNumbers(65537, (1 << 511) | 0xF1)
        der = numbers.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        record = b"v=DKIM1; p=" + base64.b64encode(der)
        message = sign(MESSAGE, DOMAIN, "sel", rsaKey(), timestamp=NOW) + MESSAGE
        [result] = self.successResultOf(
            verify(message, _withRecord(record).lookupTXT, now=NOW)
        )
        self.assertEqual(result.status, DKIMStatus.PERMERROR)
        self.assertIn("512 bits is too short (RFC 8301 3.2)", result.reason)
