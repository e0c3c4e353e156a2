# -*- test-case-name: tests.test_dkim -*-
"""
Tests for L{gomail_twisted.dkim}: signing, verifying, the RFC 8463 example,
interoperation with dkimpy both ways, and Authentication-Results.

Keys are made when first asked for and kept for the test run; none is ever
written to disk. The helpers at the top are shared with the other DKIM test
modules.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any
from unittest import SkipTest

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from twisted.internet.defer import Deferred, fail, succeed
from twisted.trial.unittest import SynchronousTestCase

from gomail_twisted.dkim import (
    DKIMResult,
    DKIMStatus,
    canonicalizeBody,
    formatAuthenticationResults,
    keyRecordFor,
    parseTags,
    sign,
    verify,
)
from gomail_twisted.dns import DNSNameError, DNSTemporaryError, DNSTimeoutError

DOMAIN = "example.com"

MESSAGE = (
    b"Received: from client.example.org by mx.example.net; Mon, 1 Jan 2024\r\n"
    b"From: Alice Example <alice@example.com>\r\n"
    b"To: Bob <bob@example.net>,\r\n"
    b"  Carol <carol@example.net>\r\n"
    b"Subject:   Lunch \t on   Friday?  \r\n"
    b"Date: Mon, 1 Jan 2024 12:00:00 +0000\r\n"
    b"Message-ID: <lunch-1@example.com>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"Hi Bob,\r\n"
    b"\r\n"
    b"Lunch  at   noon?\t \r\n"
    b"  Indented line.\r\n"
    b".leading dot\r\n"
    b"\r\n"
    b"\r\n"
)


@cache
def rsaKey(bits: int = 2048) -> rsa.RSAPrivateKey:
    """
    @return: an RSA key made for this test run.
    """
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


@cache
def ed25519Key() -> ed25519.Ed25519PrivateKey:
    """
    @return: an Ed25519 key made for this test run.
    """
    return ed25519.Ed25519PrivateKey.generate()


def keyFor(algorithm: str) -> rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey:
    """
    @param algorithm: C{"rsa"} or C{"ed25519"}.
    @return: the test key of that kind.
    """
    return rsaKey() if algorithm == "rsa" else ed25519Key()


def dkimpyPrivateKey(algorithm: str) -> bytes:
    """
    @param algorithm: C{"rsa"} or C{"ed25519"}.
    @return: the test key in the form dkimpy's C{sign} takes: PKCS#1 PEM
        for RSA, the base64 seed for Ed25519.
    """
    if algorithm == "rsa":
        return rsaKey().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    raw = ed25519Key().private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    return base64.b64encode(raw)


def recordFor(algorithm: str, extra: str = "") -> bytes:
    """
    @param algorithm: C{"rsa"} or C{"ed25519"}.
    @param extra: tags to add after the key, such as C{"; t=y"}.
    @return: the key record of the test key.
    """
    return (keyRecordFor(keyFor(algorithm)) + extra).encode("ascii")


class FakeDNS:
    """
    A C{lookupTXT} answering from a mapping, recording what it was asked.

    @ivar queries: the names looked up, in order.
    """

    def __init__(self, records: Mapping[str, Sequence[bytes] | Exception]) -> None:
        self._records = records
        self.queries: list[str] = []

    def lookupTXT(self, name: str) -> Deferred[Sequence[bytes]]:
        """
        @param name: the name.
        @return: its records; a name not in the mapping does not exist.
        """
        self.queries.append(name)
        found = self._records.get(name)
        if isinstance(found, Exception):
            return fail(found)
        if found is None:
            return fail(DNSNameError(name))
        return succeed(found)


def dnsFor(selector: str, algorithm: str, extra: str = "") -> FakeDNS:
    """
    @return: a lookup publishing the test key of C{algorithm} at C{selector}.
    """
    return FakeDNS({f"{selector}._domainkey.{DOMAIN}": [recordFor(algorithm, extra)]})


try:
    import dkim as dkimpy
except ImportError:
    dkimpy = None
try:
    import nacl.signing  # noqa: F401

    _haveNaCl = True
except ImportError:
    _haveNaCl = False

CANONICALIZATIONS = [
    (h, b) for h in ("simple", "relaxed") for b in ("simple", "relaxed")
]
ALGORITHMS = ["rsa", "ed25519"]
NOW = 1_704_110_400


def header(signed: bytes) -> bytes:
    """
    @param signed: a signed message.
    @return: its first field (the signature), unfolded.
    """
    lines = signed.split(b"\r\n")
    out = [lines[0]]
    for line in lines[1:]:
        if not line.startswith((b" ", b"\t")):
            break
        out.append(line)
    return b"".join(out)


def tagsOf(signed: bytes) -> dict[str, str]:
    """
    @param signed: a signed message.
    @return: the tags of its first signature.
    """
    value = header(signed).split(b":", 1)[1]
    return dict(parseTags(value).pairs)


class _VerifyMixin:
    """
    Run L{verify} and return its results.
    """

    def verifyNow(
        self: Any, message: bytes, dns: FakeDNS, now: float = NOW
    ) -> list[DKIMResult]:
        results: list[DKIMResult] = self.successResultOf(
            verify(message, dns.lookupTXT, now=now)
        )
        return results


class SignTests(SynchronousTestCase):
    """
    Tests for L{sign}.
    """

    def test_fieldFormat(self) -> None:
        """
        The signature is one folded field ending in CRLF, with the required
        tags and no line over 78 characters.
        """
        field = sign(MESSAGE, DOMAIN, "sel", rsaKey(), timestamp=NOW)
        self.assertTrue(field.startswith(b"DKIM-Signature: v=1; a=rsa-sha256;"))
        self.assertTrue(field.endswith(b"\r\n"))
        lines = field[:-2].split(b"\r\n")
        self.assertGreater(len(lines), 1)
        for line in lines:
            self.assertLessEqual(len(line), 78)
        for line in lines[1:]:
            self.assertTrue(line.startswith(b" "))
        tags = tagsOf(field + MESSAGE)
        self.assertEqual(tags["c"], "relaxed/relaxed")
        self.assertEqual((tags["d"], tags["s"], tags["t"]), (DOMAIN, "sel", str(NOW)))
        self.assertNotIn("l", tags)
        self.assertNotIn("x", tags)
        self.assertNotIn("i", tags)

    def test_defaultHeadersOverSignFrom(self) -> None:
        """
        By default the fields present are signed and From once more; fields
        absent or not meant for signing are left out.
        """
        tags = tagsOf(sign(MESSAGE, DOMAIN, "sel", ed25519Key()) + MESSAGE)
        names = [n.strip() for n in tags["h"].split(":")]
        self.assertEqual(names.count("from"), 2)
        for name in ("to", "subject", "date", "message-id", "mime-version"):
            self.assertEqual(names.count(name), 1, name)
        self.assertNotIn("received", names)
        self.assertNotIn("cc", names)

    def test_optionalTags(self) -> None:
        """
        C{i=}, C{t=}, C{x=} and C{l=} appear when asked for, C{l=} with the
        canonical body length.
        """
        field = sign(
            MESSAGE,
            DOMAIN,
            "sel",
            ed25519Key(),
            identity="alice@mail.example.com",
            timestamp=NOW,
            expiration=NOW + 3600,
            bodyLength=True,
            canonicalization=("simple", "relaxed"),
            headers=["From", "Subject"],
        )
        tags = tagsOf(field + MESSAGE)
        self.assertEqual(tags["a"], "ed25519-sha256")
        self.assertEqual(tags["i"], "alice@mail.example.com")
        self.assertEqual(tags["x"], str(NOW + 3600))
        body = MESSAGE.split(b"\r\n\r\n", 1)[1]
        self.assertEqual(tags["l"], str(len(canonicalizeBody(body, "relaxed"))))
        self.assertEqual(tags["h"].replace(" ", ""), "from:subject")

    def test_pemKeys(self) -> None:
        """
        A key given as PEM bytes (PKCS#1 or PKCS#8) signs like the key object.
        """
        for fmt in (
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.PrivateFormat.PKCS8,
        ):
            pem = rsaKey().private_bytes(
                serialization.Encoding.PEM, fmt, serialization.NoEncryption()
            )
            signed = sign(MESSAGE, DOMAIN, "sel", pem, timestamp=NOW) + MESSAGE
            self.assertEqual(
                sign(MESSAGE, DOMAIN, "sel", rsaKey(), timestamp=NOW) + MESSAGE,
                signed,
            )

    def test_refusals(self) -> None:
        """
        A message without From, a header list without From, an identity
        outside the domain, an unknown canonicalization and a non-key are
        refused with L{ValueError}.
        """
        key = ed25519Key()
        noFrom = MESSAGE.replace(b"From: Alice", b"X-From: Alice")
        cases: list[tuple[bytes, dict[str, Any]]] = [
            (noFrom, {}),
            (MESSAGE, {"headers": ["To", "Subject"]}),
            (MESSAGE, {"identity": "alice@example.org"}),
            (MESSAGE, {"identity": "alice@badexample.com"}),
            (MESSAGE, {"canonicalization": ("relaxed", "nofws")}),
            (MESSAGE, {"timestamp": NOW, "expiration": NOW}),
        ]
        for message, kwargs in cases:
            with self.subTest(kwargs=kwargs):
                self.assertRaises(
                    ValueError, sign, message, DOMAIN, "sel", key, **kwargs
                )
        self.assertRaises(ValueError, sign, MESSAGE, "bad domain", "sel", key)
        self.assertRaises(ValueError, sign, MESSAGE, DOMAIN, "sel", b"not a key")


class VerifyTests(_VerifyMixin, SynchronousTestCase):
    """
    Tests for L{verify} with keys given directly.
    """

    def signed(self, algorithm: str = "rsa", **kwargs: Any) -> bytes:
        kwargs.setdefault("timestamp", NOW)
        return sign(MESSAGE, DOMAIN, "sel", keyFor(algorithm), **kwargs) + MESSAGE

    def test_roundTrip(self) -> None:
        """
        Our signatures verify, for both algorithms, every canonicalization
        pair, with and without C{l=}; the result names the signature.
        """
        for algorithm in ALGORITHMS:
            dns = dnsFor("sel", algorithm)
            for canon in CANONICALIZATIONS:
                for length in (False, True):
                    with self.subTest(algo=algorithm, canon=canon, length=length):
                        message = self.signed(
                            algorithm, canonicalization=canon, bodyLength=length
                        )
                        [result] = self.verifyNow(message, dns)
                        self.assertEqual(result.status, DKIMStatus.PASS, result)
                        self.assertEqual(result.domain, DOMAIN)
                        self.assertEqual(result.selector, "sel")
                        self.assertEqual(result.algorithm, f"{algorithm}-sha256")
                        self.assertEqual(result.unsignedBytes, 0 if length else None)
                        b = "".join(tagsOf(message)["b"].split())
                        self.assertEqual(result.signatureStart, b[:8])
        self.assertEqual(dns.queries[0], "sel._domainkey.example.com")

    def test_noSignature(self) -> None:
        """
        A message without signatures gives no results.
        """
        self.assertEqual(self.verifyNow(MESSAGE, FakeDNS({})), [])

    def test_everySignature(self) -> None:
        """
        Every signature gives a result, top to bottom, each on its own.
        """
        inner = self.signed("rsa")
        outer = (
            sign(inner, DOMAIN, "ed", ed25519Key(), timestamp=NOW)
            + sign(inner, DOMAIN, "gone", ed25519Key(), timestamp=NOW)
            + inner
        )
        dns = FakeDNS(
            {
                f"sel._domainkey.{DOMAIN}": [recordFor("rsa")],
                f"ed._domainkey.{DOMAIN}": [recordFor("ed25519")],
            }
        )
        results = self.verifyNow(outer, dns)
        self.assertEqual(
            [(r.selector, r.status) for r in results],
            [
                ("ed", DKIMStatus.PASS),
                ("gone", DKIMStatus.PERMERROR),
                ("sel", DKIMStatus.PASS),
            ],
        )

    def test_alteredBody(self) -> None:
        """
        A changed body byte fails with a body hash reason.
        """
        for algorithm in ALGORITHMS:
            message = self.signed(algorithm).replace(b"noon", b"nooN")
            [result] = self.verifyNow(message, dnsFor("sel", algorithm))
            self.assertEqual(result.status, DKIMStatus.FAIL)
            self.assertEqual(result.reason, "body hash did not verify")

    def test_alteredSignedHeader(self) -> None:
        """
        A changed signed field fails the signature itself.
        """
        for algorithm in ALGORITHMS:
            message = self.signed(algorithm).replace(b"Friday", b"Monday")
            [result] = self.verifyNow(message, dnsFor("sel", algorithm))
            self.assertEqual(result.status, DKIMStatus.FAIL)
            self.assertEqual(result.reason, "signature did not verify")

    def test_addedFrom(self) -> None:
        """
        A second From added anywhere breaks the over-signed signature.
        """
        signed = self.signed("ed25519")
        evil = b"From: Mallory <mallory@example.com>\r\n"
        top = evil + signed
        cut = signed.index(b"\r\n\r\n") + 2
        bottom = signed[:cut] + evil + signed[cut:]
        for message in (top, bottom):
            [result] = self.verifyNow(message, dnsFor("sel", "ed25519"))
            self.assertEqual(result.status, DKIMStatus.FAIL)
            self.assertEqual(result.reason, "signature did not verify")

    def test_addedUnsignedField(self) -> None:
        """
        A field that was not signed may be added without breaking anything.
        """
        message = b"Received: by relay.example.net\r\n" + self.signed("rsa")
        [result] = self.verifyNow(message, dnsFor("sel", "rsa"))
        self.assertEqual(result.status, DKIMStatus.PASS)

    def test_appendedAfterLength(self) -> None:
        """
        With C{l=}, appended body text still passes and is reported as
        unsigned bytes.
        """
        message = self.signed("rsa", bodyLength=True) + b"Buy now!\r\n"
        [result] = self.verifyNow(message, dnsFor("sel", "rsa"))
        self.assertEqual(result.status, DKIMStatus.PASS)
        # The empty lines that ended the signed body now count too.
        self.assertEqual(result.unsignedBytes, len(b"\r\n\r\nBuy now!\r\n"))
        self.assertIn("14 body bytes after l= are not signed", result.reason)

    def test_relaxedSurvivesRewrapping(self) -> None:
        """
        Relaxed canonicalization survives whitespace changes and refolding
        that break simple canonicalization.
        """

        def mangle(m: bytes) -> bytes:
            return m.replace(b"Lunch  at   noon?", b"Lunch at noon?  ").replace(
                b"Subject:   Lunch", b"SUBJECT: Lunch"
            )

        dns = dnsFor("sel", "rsa")
        relaxed = mangle(self.signed(canonicalization=("relaxed", "relaxed")))
        simple = mangle(self.signed(canonicalization=("simple", "simple")))
        self.assertEqual(self.verifyNow(relaxed, dns)[0].status, DKIMStatus.PASS)
        self.assertEqual(self.verifyNow(simple, dns)[0].status, DKIMStatus.FAIL)

    def test_localLineEnds(self) -> None:
        """
        A signed message handed over with LF line ends still verifies.
        """
        message = self.signed("ed25519").replace(b"\r\n", b"\n")
        [result] = self.verifyNow(message, dnsFor("sel", "ed25519"))
        self.assertEqual(result.status, DKIMStatus.PASS)

    def test_timestamps(self) -> None:
        """
        An expired signature and one from the future are permerrors; one
        not yet expired passes.
        """
        dns = dnsFor("sel", "rsa")
        message = self.signed(timestamp=NOW, expiration=NOW + 60)
        self.assertEqual(
            self.verifyNow(message, dns, NOW + 30)[0].status, DKIMStatus.PASS
        )
        [expired] = self.verifyNow(message, dns, NOW + 61)
        self.assertEqual(
            (expired.status, expired.reason),
            (DKIMStatus.PERMERROR, "signature expired (x=)"),
        )
        [future] = self.verifyNow(self.signed(timestamp=NOW + 3600), dns, NOW)
        self.assertEqual(future.status, DKIMStatus.PERMERROR)
        self.assertIn("future", future.reason)

    def test_testingKey(self) -> None:
        """
        A failing signature whose key is in testing mode is neutral; a good
        one still passes.
        """
        dns = dnsFor("sel", "rsa", "; t=y")
        self.assertEqual(self.verifyNow(self.signed(), dns)[0].status, DKIMStatus.PASS)
        [result] = self.verifyNow(self.signed().replace(b"noon", b"ten"), dns)
        self.assertEqual(result.status, DKIMStatus.NEUTRAL)
        self.assertIn("testing", result.reason)

    def test_strictKey(self) -> None:
        """
        A key with C{t=s} refuses an identity in a subdomain of C{d=} and
        accepts one in C{d=} itself.
        """
        dns = dnsFor("sel", "ed25519", "; t=s")
        sub = self.signed("ed25519", identity="a@mail.example.com")
        same = self.signed("ed25519", identity="a@example.com")
        self.assertEqual(self.verifyNow(sub, dns)[0].status, DKIMStatus.PERMERROR)
        self.assertEqual(self.verifyNow(same, dns)[0].status, DKIMStatus.PASS)

    def test_keyLookupFailures(self) -> None:
        """
        A name that does not exist or holds no record is a permerror; a
        temporary DNS failure, or a lookup that raises, is a temperror.
        """
        name = f"sel._domainkey.{DOMAIN}"
        message = self.signed()
        cases = [
            (FakeDNS({}), DKIMStatus.PERMERROR),
            (FakeDNS({name: []}), DKIMStatus.PERMERROR),
            (FakeDNS({name: DNSTemporaryError("SERVFAIL")}), DKIMStatus.TEMPERROR),
            (FakeDNS({name: DNSTimeoutError("timeout")}), DKIMStatus.TEMPERROR),
        ]
        for dns, status in cases:
            [result] = self.verifyNow(message, dns)
            self.assertEqual(result.status, status, result)
            self.assertEqual(result.domain, DOMAIN)

        def broken(name: str) -> Deferred[Sequence[bytes]]:
            raise RuntimeError("resolver exploded")

        [result] = self.successResultOf(verify(message, broken, now=NOW))
        self.assertEqual(result.status, DKIMStatus.TEMPERROR)

    def test_firstUsableRecord(self) -> None:
        """
        When the selector has several records, the first valid one is used.
        """
        name = f"sel._domainkey.{DOMAIN}"
        dns = FakeDNS({name: [b"v=spf1 -all", recordFor("rsa")]})
        self.assertEqual(self.verifyNow(self.signed(), dns)[0].status, DKIMStatus.PASS)


RFC8463_MESSAGE = (
    b"DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;\r\n"
    b" d=football.example.com; i=@football.example.com;\r\n"
    b" q=dns/txt; s=brisbane; t=1528637909; h=from : to :\r\n"
    b" subject : date : message-id : from : subject : date;\r\n"
    b" bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n"
    b" b=/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11Bus\r\n"
    b" Fa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==\r\n"
    b"DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;\r\n"
    b" d=football.example.com; i=@football.example.com;\r\n"
    b" q=dns/txt; s=test; t=1528637909; h=from : to : subject :\r\n"
    b" date : message-id : from : subject : date;\r\n"
    b" bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;\r\n"
    b" b=F45dVWDfMbQDGHJFlXUNB2HKfbCeLRyhDXgFpEL8GwpsRe0IeIixNTe3\r\n"
    b" DhCVlUrSjV4BwcVcOF6+FF3Zo9Rpo1tFOeS9mPYQTnGdaSGsgeefOsk2Jz\r\n"
    b" dA+L10TeYt9BgDfQNZtKdN1WO//KgIqXP7OdEFE4LjFYNcUxZQ4FADY+8=\r\n"
    b"From: Joe SixPack <joe@football.example.com>\r\n"
    b"To: Suzie Q <suzie@shopping.example.net>\r\n"
    b"Subject: Is dinner ready?\r\n"
    b"Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)\r\n"
    b"Message-ID: <20030712040037.46341.5F8J@football.example.com>\r\n"
    b"\r\n"
    b"Hi.\r\n"
    b"\r\n"
    b"We lost the game.  Are you hungry yet?\r\n"
    b"\r\n"
    b"Joe.\r\n"
)
"""
The signed message of RFC 8463 appendix A.3.
"""

RFC8463_DNS = FakeDNS(
    {
        "brisbane._domainkey.football.example.com": [
            b"v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
        ],
        "test._domainkey.football.example.com": [
            b"v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWR"
            b"iGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutAC"
            b"DfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3"
            b"Ip3G+2kryOTIKT+l/K4w3QIDAQAB"
        ],
    }
)
"""
The key records of RFC 8463 appendix A.2.
"""


class RFC8463Tests(_VerifyMixin, SynchronousTestCase):
    """
    The example of RFC 8463 appendix A.
    """

    def test_exampleVerifies(self) -> None:
        """
        Both signatures of the example pass.
        """
        results = self.verifyNow(RFC8463_MESSAGE, RFC8463_DNS, now=1528637909)
        self.assertEqual(
            [(r.algorithm, r.selector, r.status) for r in results],
            [
                ("ed25519-sha256", "brisbane", DKIMStatus.PASS),
                ("rsa-sha256", "test", DKIMStatus.PASS),
            ],
        )
        self.assertEqual(results[0].identity, "@football.example.com")

    def test_exampleAltered(self) -> None:
        """
        Changing the example's body or subject fails both signatures.
        """
        body = RFC8463_MESSAGE.replace(b"hungry", b"thirsty")
        subject = RFC8463_MESSAGE.replace(b"dinner ready", b"lunch ready")
        for message, reason in [
            (body, "body hash did not verify"),
            (subject, "signature did not verify"),
        ]:
            results = self.verifyNow(message, RFC8463_DNS, now=1528637909)
            self.assertEqual(
                [(r.status, r.reason) for r in results], [(DKIMStatus.FAIL, reason)] * 2
            )

    def test_signLikeExample(self) -> None:
        """
        Signing the example's message with the example's key and tags gives
        the example's body hash and a signature the example key verifies.
        """
        seed = base64.b64decode("nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=")
        key = ed25519.Ed25519PrivateKey.from_private_bytes(seed)
        unsigned = RFC8463_MESSAGE[RFC8463_MESSAGE.index(b"From:") :]
        field = sign(
            unsigned,
            "football.example.com",
            "brisbane",
            key,
            headers=[
                "from",
                "to",
                "subject",
                "date",
                "message-id",
                "from",
                "subject",
                "date",
            ],
            identity="@football.example.com",
            timestamp=1528637909,
        )
        tags = tagsOf(field + unsigned)
        self.assertEqual(tags["bh"], "2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=")
        [result] = self.verifyNow(field + unsigned, RFC8463_DNS, now=1528637909)
        self.assertEqual(result.status, DKIMStatus.PASS)


class DkimpyInteropTests(_VerifyMixin, SynchronousTestCase):
    """
    Signatures made here verify with dkimpy, and dkimpy's verify here.
    """

    if dkimpy is None:
        skip = "dkimpy is not installed"

    def algorithms(self) -> list[str]:
        return ALGORITHMS if _haveNaCl else ["rsa"]

    def test_dkimpyVerifiesOurs(self) -> None:
        """
        dkimpy accepts our signatures, for every algorithm, canonicalization
        pair, with and without C{l=}, and rejects them once altered.
        """
        for algorithm in self.algorithms():
            record = recordFor(algorithm)

            def dnsfunc(name: bytes, timeout: int = 5, record: bytes = record) -> bytes:
                self.assertEqual(name, b"sel._domainkey.example.com.")
                return record

            for canon in CANONICALIZATIONS:
                for length in (False, True):
                    with self.subTest(algo=algorithm, canon=canon, length=length):
                        message = (
                            sign(
                                MESSAGE,
                                DOMAIN,
                                "sel",
                                keyFor(algorithm),
                                canonicalization=canon,
                                bodyLength=length,
                            )
                            + MESSAGE
                        )
                        self.assertTrue(dkimpy.verify(message, dnsfunc=dnsfunc))
                        bad = message.replace(b"noon", b"NOON")
                        self.assertFalse(dkimpy.verify(bad, dnsfunc=dnsfunc))

    def test_oursVerifyDkimpy(self) -> None:
        """
        We accept dkimpy's signatures, for every algorithm, canonicalization
        pair, with and without C{l=}, and fail them once altered.
        """
        for algorithm in self.algorithms():
            dns = dnsFor("sel", algorithm)
            for canon in CANONICALIZATIONS:
                for length in (False, True):
                    with self.subTest(algo=algorithm, canon=canon, length=length):
                        field = dkimpy.sign(
                            MESSAGE,
                            b"sel",
                            DOMAIN.encode(),
                            dkimpyPrivateKey(algorithm),
                            canonicalize=(canon[0].encode(), canon[1].encode()),
                            signature_algorithm=f"{algorithm}-sha256".encode(),
                            length=length,
                        )
                        [result] = self.verifyNow(field + MESSAGE, dns, time.time())
                        self.assertEqual(result.status, DKIMStatus.PASS, result)
                        bad = (field + MESSAGE).replace(b"noon", b"NOON")
                        [result] = self.verifyNow(bad, dns, time.time())
                        self.assertEqual(result.status, DKIMStatus.FAIL)

    def test_ed25519Available(self) -> None:
        """
        dkimpy can do ed25519 here (it needs PyNaCl); otherwise the
        ed25519 half of the interoperation tests cannot run.
        """
        if not _haveNaCl:
            raise SkipTest("PyNaCl is not installed: dkimpy cannot do ed25519")
        self.assertIn("ed25519", self.algorithms())


class AuthenticationResultsTests(SynchronousTestCase):
    """
    Tests for L{formatAuthenticationResults}.
    """

    def test_none(self) -> None:
        """
        No signature is reported as C{dkim=none}.
        """
        self.assertEqual(
            formatAuthenticationResults("mx.example.net", []),
            "mx.example.net; dkim=none",
        )

    def test_results(self) -> None:
        """
        Each result becomes one C{dkim=} resinfo with its reason and
        properties; values that are not tokens are quoted.
        """
        results = [
            DKIMResult(
                DKIMStatus.PASS,
                "signature verified",
                domain="example.com",
                selector="sel",
                algorithm="rsa-sha256",
                identity="@example.com",
                signatureStart="AbCd1234",
            ),
            DKIMResult(
                DKIMStatus.FAIL,
                'body "hash" did not verify',
                domain="example.org",
                selector="s",
                algorithm="ed25519-sha256",
                signatureStart="ab/+cd=",
            ),
            DKIMResult(DKIMStatus.PERMERROR, "signature syntax: bad"),
        ]
        self.assertEqual(
            formatAuthenticationResults("mx.example.net", results),
            "mx.example.net; "
            'dkim=pass reason="signature verified" header.d=example.com'
            " header.i=@example.com header.s=sel header.a=rsa-sha256"
            " header.b=AbCd1234; "
            'dkim=fail reason="body \\"hash\\" did not verify" header.d=example.org'
            ' header.s=s header.a=ed25519-sha256 header.b="ab/+cd="; '
            'dkim=permerror reason="signature syntax: bad"',
        )

    def test_verifiedResults(self) -> None:
        """
        The results of L{verify} format directly.
        """
        message = sign(MESSAGE, DOMAIN, "sel", ed25519Key()) + MESSAGE
        results = self.successResultOf(
            verify(message, dnsFor("sel", "ed25519").lookupTXT)
        )
        value = formatAuthenticationResults("mx.example.net", results)
        self.assertTrue(value.startswith('mx.example.net; dkim=pass reason="'))
        self.assertIn(" header.d=example.com header.s=sel ", value)
