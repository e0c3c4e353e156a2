"""
Tests for L{gomail_twisted.sasl}: the PLAIN and LOGIN exchanges and the
response encoding shared by the servers' AUTH commands.
"""

from __future__ import annotations

import base64

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from gomail_twisted.sasl import (
    LoginExchange,
    PasswordCredentials,
    PlainExchange,
    SASLCancelled,
    SASLError,
    SASLMalformed,
    decodeResponse,
    encodeChallenge,
    newExchange,
)


class ResponseTests(SynchronousTestCase):
    """
    Response lines: base64, C{*} and C{=}.
    """

    def test_decode(self) -> None:
        """
        Strict base64 decodes; surrounding space is ignored.
        """
        self.assertEqual(decodeResponse(b" YWxpY2U= "), b"alice")
        self.assertEqual(decodeResponse(b"="), b"")

    def test_cancel(self) -> None:
        """
        C{*} cancels.
        """
        self.assertRaises(SASLCancelled, decodeResponse, b"*")

    def test_malformed(self) -> None:
        """
        Anything that is not strict base64 is malformed.
        """
        for line in (b"!!!", b"YWxpY2U", b"YW xpY2U=", b"\xff"):
            self.assertRaises(SASLMalformed, decodeResponse, line)

    def test_encodeChallenge(self) -> None:
        """
        Challenges go out in base64.
        """
        self.assertEqual(encodeChallenge(b"Username:"), b"VXNlcm5hbWU6")
        self.assertEqual(encodeChallenge(b""), b"")

    @settings(max_examples=200, deadline=None)
    @given(st.binary(max_size=80))
    def test_anyLine(self, line: bytes) -> None:
        """
        Any line either raises L{SASLError}, or decodes to the octets whose
        strict base64 is the line without its surrounding space (an empty
        response may also come as C{=}).
        """
        try:
            decoded = decodeResponse(line)
        except SASLError:
            return
        stripped = line.strip()
        encoded = base64.b64encode(decoded)
        self.assertIn(stripped, {encoded, b"="} if not decoded else {encoded})


class ExchangeTests(SynchronousTestCase):
    """
    The mechanisms.
    """

    def test_plain(self) -> None:
        """
        PLAIN gives authzid, authcid and password; without an initial
        response it first asks with an empty challenge.
        """
        exchange = PlainExchange()
        self.assertEqual(exchange.step(None), b"")
        self.assertEqual(
            exchange.step(b"admin\0alice\0s\xc3\xa9cret"),
            PasswordCredentials("PLAIN", "alice", "s\u00e9cret", "admin"),
        )

    def test_plainMalformed(self) -> None:
        """
        A PLAIN response without two NULs, with an empty login, or not
        UTF-8, is malformed.
        """
        for response in (b"alice\0secret", b"\0\0secret", b"a\0b\0c\0d", b"\0a\0\xff"):
            self.assertRaises(SASLMalformed, PlainExchange().step, response)

    def test_login(self) -> None:
        """
        LOGIN asks for the user name, then the password.
        """
        exchange = LoginExchange()
        self.assertEqual(exchange.step(None), b"Username:")
        self.assertEqual(exchange.step(b"bob"), b"Password:")
        self.assertEqual(
            exchange.step(b"secret"), PasswordCredentials("LOGIN", "bob", "secret")
        )

    def test_loginInitialResponse(self) -> None:
        """
        An initial response to LOGIN is the user name.
        """
        exchange = LoginExchange()
        self.assertEqual(exchange.step(base64.b64decode(b"Ym9i")), b"Password:")

    def test_passwordHidden(self) -> None:
        """
        The password never shows in C{repr}.
        """
        self.assertNotIn("hunter2", repr(PasswordCredentials("PLAIN", "a", "hunter2")))

    def test_newExchange(self) -> None:
        """
        PLAIN and LOGIN in any case; anything else is not offered.
        """
        self.assertIsInstance(newExchange("plain"), PlainExchange)
        self.assertIsInstance(newExchange("LOGIN"), LoginExchange)
        self.assertIsNone(newExchange("CRAM-MD5"))
