# -*- test-case-name: tests.test_dkim_authres -*-
"""
Tests for reading and writing Authentication-Results fields (RFC 8601):
the authserv-id parser, the renaming of received fields that claim our
name, and the folded field we add.
"""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from gomail_twisted.dkim import (
    DKIMResult,
    DKIMStatus,
    authenticationResultsField,
    formatAuthenticationResults,
    obscureForgedResults,
    parseAuthservID,
)

# Field values (after the colon) and the authserv-id each names.
VALID: list[tuple[bytes, bytes]] = [
    (b" mx.test; dkim=pass", b"mx.test"),
    (b"mx.test;dkim=pass", b"mx.test"),
    (b" mx.test ; dkim=pass", b"mx.test"),
    (b" mx.test 1; dkim=pass", b"mx.test"),
    (b" mx.test; none", b"mx.test"),
    (b" mx.test", b"mx.test"),
    (b" (trusted) mx.test; dkim=pass", b"mx.test"),
    (b" (a (nested \\) comment)) mx.test; dkim=pass", b"mx.test"),
    (b" mx.test (comment); dkim=pass", b"mx.test"),
    (b" mx.test(comment); dkim=pass", b"mx.test"),
    (b' "mx.test"; dkim=pass', b"mx.test"),
    (b' "mx\\.test"; dkim=pass', b"mx.test"),
    (b' (x) "MX.test" (y); dkim=pass', b"MX.test"),
    (b"\r\n mx.test;\r\n\tdkim=pass", b"mx.test"),
    (b" \r\n (folded\r\n comment)\r\n mx.test; dkim=pass", b"mx.test"),
    (b" other.test; dkim=fail", b"other.test"),
    (b" mx.test.other; dkim=pass", b"mx.test.other"),
    (" b\u00fccher.test; dkim=pass".encode(), "b\u00fccher.test".encode()),
]

# Field values that do not start with an authserv-id.
INVALID: list[bytes] = [
    b"",
    b"   ",
    b" ; dkim=pass",
    b" (unclosed comment mx.test; dkim=pass",
    b' "unclosed quote; dkim=pass',
    b' ""; dkim=pass',
    b" mx.test@evil; dkim=pass",
    b" mx.test/x; dkim=pass",
    b" mx.test=x; dkim=pass",
    b" mx.test, other; dkim=pass",
    b" (only a comment)",
]


class ParseAuthservIDTests(SynchronousTestCase):
    """
    Tests for L{parseAuthservID}.
    """

    def test_valid(self) -> None:
        """
        Comments, folding and quoting around the authserv-id are skipped
        and undone (RFC 8601 2.2).
        """
        for value, expected in VALID:
            with self.subTest(value=value):
                self.assertEqual(parseAuthservID(value), expected)

    def test_invalid(self) -> None:
        """
        A value that does not start with a token or quoted-string followed
        by a separator gives L{None}.
        """
        for value in INVALID:
            with self.subTest(value=value):
                self.assertIsNone(parseAuthservID(value))

    @settings(max_examples=300, deadline=None)
    @given(st.binary(max_size=120))
    def test_anyBytes(self, value: bytes) -> None:
        """
        Any bytes give an authserv-id or L{None}, never an error.
        """
        result = parseAuthservID(value)
        self.assertIsInstance(result, (bytes, type(None)))

    @settings(max_examples=200, deadline=None)
    @given(
        st.from_regex(rb"\A[a-z0-9]{1,10}(\.[a-z0-9]{1,10}){0,3}\Z"),
        st.text(alphabet='abc ()\\;"', max_size=20),
        st.booleans(),
    )
    def test_wrappedAnyhow(self, name: bytes, comment: str, quote: bool) -> None:
        """
        A name behind any comment, quoted or not, is read back as itself.
        """
        escaped = re.sub(r"([()\\])", r"\\\1", comment).encode()
        word = b'"' + name + b'"' if quote else name
        value = b" (" + escaped + b") " + word + b" (" + escaped + b"); dkim=pass"
        self.assertEqual(parseAuthservID(value), name)


SENDER = b"From: a@example.com\r\nSubject: hi\r\n"
BODY = b"\r\nAuthentication-Results: mx.test; dkim=pass\r\n"


class ObscureForgedResultsTests(SynchronousTestCase):
    """
    Tests for L{obscureForgedResults}.
    """

    def obscure(self, field: bytes) -> bytes:
        trace = b"Received: from x\r\n\tby mx.test; date\r\n"
        raw = trace + field + SENDER + BODY
        out = obscureForgedResults(raw, len(trace), "mx.test")
        self.assertTrue(out.startswith(trace))
        self.assertTrue(out.endswith(SENDER + BODY))
        return out[len(trace) : -len(SENDER + BODY)]

    def test_forgedRenamed(self) -> None:
        """
        Fields claiming our name however it is written are renamed, their
        value kept (RFC 8601 5).
        """
        for field in [
            b"Authentication-Results: mx.test; dkim=pass\r\n",
            b"Authentication-Results: (trusted) mx.test; dkim=pass\r\n",
            b'Authentication-Results: "mx.test"; dkim=pass\r\n',
            b"Authentication-Results: mx.test (comment); dkim=pass\r\n",
            b"Authentication-Results: MX.TEST; dkim=pass\r\n",
            b"authentication-results : mx.test; dkim=pass\r\n",
            b"Authentication-Results:\r\n (folded)\r\n mx.test;\r\n dkim=pass\r\n",
            b"Authentication-Results: (unreadable mx.test; dkim=pass\r\n",
        ]:
            with self.subTest(field=field):
                self.assertEqual(self.obscure(field), b"X-Original-" + field)

    def test_othersLeftAlone(self) -> None:
        """
        Fields naming another authserv-id, and fields that only look alike,
        are left as they are.
        """
        for field in [
            b"Authentication-Results: other.test; dkim=pass\r\n",
            b"Authentication-Results: (mx.test) other.test; dkim=pass\r\n",
            b'Authentication-Results: "other.test" (mx.test); dkim=pass\r\n',
            b"Authentication-Results: mx.test.evil; dkim=pass\r\n",
            b"X-Authentication-Results: mx.test; dkim=pass\r\n",
            b"Subject: Authentication-Results: mx.test; dkim=pass\r\n",
        ]:
            with self.subTest(field=field):
                self.assertEqual(self.obscure(field), field)

    def test_several(self) -> None:
        """
        Every forged field is renamed, others between them kept.
        """
        fields = (
            b"Authentication-Results: mx.test; dkim=pass\r\n"
            b"Authentication-Results: other.test; dkim=pass\r\n"
            b"Authentication-Results: (x) mx.test; spf=pass\r\n"
        )
        self.assertEqual(
            self.obscure(fields),
            b"X-Original-Authentication-Results: mx.test; dkim=pass\r\n"
            b"Authentication-Results: other.test; dkim=pass\r\n"
            b"X-Original-Authentication-Results: (x) mx.test; spf=pass\r\n",
        )

    def test_bodyLeftAlone(self) -> None:
        """
        A message with no header block of its own does not have its body
        searched: the body is not a header.
        """
        trace = b"Received: x\r\n"
        raw = trace + BODY + b"\r\nAuthentication-Results: mx.test;\r\n"
        self.assertEqual(obscureForgedResults(raw, len(trace), "mx.test"), raw)


RESULTS = [
    DKIMResult(
        DKIMStatus.PASS,
        "signature verified",
        domain="example.com",
        selector="sel",
        algorithm="rsa-sha256",
        identity="@example.com",
        signatureStart="AbCd1234",
    ),
    DKIMResult(DKIMStatus.PERMERROR, "x" * 500, identity="a" * 2000 + "@b.test"),
    DKIMResult(DKIMStatus.POLICY, "not checked: limit"),
    DKIMResult(DKIMStatus.TEMPERROR, "key lookup failed", domain="example.org"),
    DKIMResult(DKIMStatus.POLICY, "not checked: limit"),
    DKIMResult(DKIMStatus.POLICY, "not checked: limit"),
]


def unfold(field: bytes) -> str:
    """
    @return: a field's value unfolded, white space runs made single spaces.
    """
    value = field.decode().split(":", 1)[1]
    return " ".join(value.replace("\r\n", "").split())


class AuthenticationResultsFieldTests(SynchronousTestCase):
    """
    Tests for L{authenticationResultsField} and what it shares with
    L{formatAuthenticationResults}.
    """

    def test_sameAsOneLine(self) -> None:
        """
        Unfolded, the field is the value L{formatAuthenticationResults}
        gives.
        """
        for results in ([], RESULTS[:1], RESULTS):
            field = authenticationResultsField("mx.test", results)
            self.assertTrue(field.startswith(b"Authentication-Results: mx.test;"))
            self.assertTrue(field.endswith(b"\r\n"))
            self.assertEqual(
                unfold(field),
                " ".join(formatAuthenticationResults("mx.test", results).split()),
            )

    def test_lineLengths(self) -> None:
        """
        Each resinfo starts a line, lines stay within 78 characters where
        the words allow, and never pass 998 (RFC 5322 2.1.1).
        """
        field = authenticationResultsField("mx.test", RESULTS)
        lines = field.split(b"\r\n")[:-1]
        self.assertTrue(all(len(line) <= 998 for line in lines))
        self.assertEqual(
            [line.split()[0] for line in lines if line.startswith(b"\tdkim=")],
            [b"dkim=pass", b"dkim=permerror", b"dkim=policy", b"dkim=temperror"],
        )
        [first] = [line for line in lines if b"dkim=pass" in line]
        self.assertLessEqual(len(first), 78)

    def test_longValuesCut(self) -> None:
        """
        A long reason is cut to 200 characters and a property too long for
        a line is left out.
        """
        value = formatAuthenticationResults("mx.test", RESULTS[1:2])
        self.assertEqual(value, 'mx.test; dkim=permerror reason="' + "x" * 197 + '..."')

    def test_notCheckedTogether(self) -> None:
        """
        The signatures that were not checked share one C{dkim=policy}
        resinfo, where the first of them was, saying how many there were.
        """
        value = formatAuthenticationResults("mx.test", RESULTS)
        self.assertEqual(value.count("dkim=policy"), 1)
        self.assertIn(
            'dkim=policy reason="3 signatures: not checked: limit"; dkim=temperror',
            value,
        )
        one = formatAuthenticationResults("mx.test", RESULTS[2:3])
        self.assertEqual(one, 'mx.test; dkim=policy reason="not checked: limit"')
