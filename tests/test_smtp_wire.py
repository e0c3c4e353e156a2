# -*- test-case-name: tests.test_smtp_wire -*-
"""
Tests for L{gomail_twisted.smtp._wire}: command lines, MAIL/RCPT paths and
parameters (RFC 5321 4.1.2, RFC 6531 3.3), the HELO name and the trace
header (RFC 5321 4.4, RFC 3848).
"""

from __future__ import annotations

import operator
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from gomail_twisted.smtp import _reply as R
from gomail_twisted.smtp import _wire
from gomail_twisted.smtp._reply import SMTPReply
from gomail_twisted.smtp._wire import (
    Command,
    MailParameters,
    checkHeloName,
    checkMailParameters,
    checkRcptParameters,
    parseCommand,
    parseParameters,
    parsePathArgument,
    receivedHeader,
    receivedProtocol,
    requireASCII,
)


class ParseCommandTests(SynchronousTestCase):
    """
    L{parseCommand} splits a line into an upper-case verb and its argument.
    """

    TABLE: list[tuple[bytes, Command]] = [
        (b"QUIT", Command("QUIT", b"")),
        (b"quit", Command("QUIT", b"")),
        (b"QUIT ", Command("QUIT", b"")),
        (b"MAIL FROM:<a@b.c>", Command("MAIL", b"FROM:<a@b.c>")),
        (b"mail FROM:<a@b.c> SIZE=1", Command("MAIL", b"FROM:<a@b.c> SIZE=1")),
        (b"rCpT TO:<x@y>", Command("RCPT", b"TO:<x@y>")),
        (b"EHLO  two spaces", Command("EHLO", b" two spaces")),
        (b"", Command("", b"")),
        (b" NOOP", Command("", b"NOOP")),
        (b"NOOP\tx", Command("NOOP\tX", b"")),
        (b"\xff\xfe x", Command("\ufffd\ufffd", b"x")),
        (b"AUTH PLAIN AGFAYg==", Command("AUTH", b"PLAIN AGFAYg==")),
    ]

    def test_table(self) -> None:
        """
        Each line splits into the expected verb and undecoded argument.
        """
        for line, expected in self.TABLE:
            self.assertEqual(parseCommand(line), expected, line)


# (argument, keyword, isSender, address, params)
VALID_PATHS: list[tuple[bytes, str, bool, str, dict[str, str | None]]] = [
    (b"FROM:<a@example.com>", "FROM", True, "a@example.com", {}),
    (b"from:<a@example.com>", "FROM", True, "a@example.com", {}),
    (b"From:<a@example.com>", "FROM", True, "a@example.com", {}),
    (b"FROM:<>", "FROM", True, "", {}),
    (b"FROM: <a@example.com>", "FROM", True, "a@example.com", {}),
    (b"FROM: <>", "FROM", True, "", {}),
    (b"TO:<b@example.com>", "TO", False, "b@example.com", {}),
    (b"to: <b@example.com>", "TO", False, "b@example.com", {}),
    (b"TO:<postmaster>", "TO", False, "postmaster", {}),
    (b"TO:<PostMaster>", "TO", False, "PostMaster", {}),
    (b"TO:<Postmaster@example.com>", "TO", False, "Postmaster@example.com", {}),
    # Source routes are accepted and dropped (RFC 5321 appendix C).
    (b"TO:<@relay.example:b@example.com>", "TO", False, "b@example.com", {}),
    (
        b"TO:<@one.example,@two.example:b@example.com>",
        "TO",
        False,
        "b@example.com",
        {},
    ),
    (b"FROM:<@relay.example:a@example.com>", "FROM", True, "a@example.com", {}),
    # Dot-strings and quoted local parts.
    (b"TO:<first.last@example.com>", "TO", False, "first.last@example.com", {}),
    (
        b"TO:<a!#$%&'*+/=?^_`{|}~-z@example.com>",
        "TO",
        False,
        "a!#$%&'*+/=?^_`{|}~-z@example.com",
        {},
    ),
    (b'TO:<"john doe"@example.com>', "TO", False, '"john doe"@example.com', {}),
    (b'TO:<"a@b"@example.com>', "TO", False, '"a@b"@example.com', {}),
    (b'TO:<"a\\"b"@example.com>', "TO", False, '"a\\"b"@example.com', {}),
    (b'TO:<"a\\\\b"@example.com>', "TO", False, '"a\\\\b"@example.com', {}),
    (b'TO:<""@example.com>', "TO", False, '""@example.com', {}),
    (b'TO:<"a>b"@example.com>', "TO", False, '"a>b"@example.com', {}),
    (b'TO:<"a<b"@example.com>', "TO", False, '"a<b"@example.com', {}),
    (b'TO:<"a>b"@example.com> X=1', "TO", False, '"a>b"@example.com', {"X": "1"}),
    # Address literals.
    (b"TO:<a@[192.0.2.1]>", "TO", False, "a@[192.0.2.1]", {}),
    (b"TO:<a@[IPv6:2001:db8::1]>", "TO", False, "a@[IPv6:2001:db8::1]", {}),
    (b"TO:<a@[ipv6:::1]>", "TO", False, "a@[ipv6:::1]", {}),
    (
        b"TO:<a@[IPv6:::ffff:192.0.2.1]>",
        "TO",
        False,
        "a@[IPv6:::ffff:192.0.2.1]",
        {},
    ),
    (b"TO:<a@[x-tag:some-content]>", "TO", False, "a@[x-tag:some-content]", {}),
    # Syntactically a general literal whose tag is "2001".
    (b"TO:<a@[2001:db8::1]>", "TO", False, "a@[2001:db8::1]", {}),
    # UTF-8 (RFC 6531 3.3): accepted here, checked by requireASCII.
    (
        "TO:<j\u00f6rg@b\u00fccher.example>".encode(),
        "TO",
        False,
        "j\u00f6rg@b\u00fccher.example",
        {},
    ),
    (
        "FROM:<\u7528\u6237@\u4f8b\u5b50.\u5e7f\u544a>".encode(),
        "FROM",
        True,
        "\u7528\u6237@\u4f8b\u5b50.\u5e7f\u544a",
        {},
    ),
    # Domains.
    (b"TO:<a@localhost>", "TO", False, "a@localhost", {}),
    (b"TO:<a@x-y.example>", "TO", False, "a@x-y.example", {}),
    (b"TO:<a@1.2.3.4>", "TO", False, "a@1.2.3.4", {}),
    # Parameters.
    (
        b"FROM:<a@example.com> SIZE=1000 BODY=8BITMIME",
        "FROM",
        True,
        "a@example.com",
        {"SIZE": "1000", "BODY": "8BITMIME"},
    ),
    (b"FROM:<> smtputf8", "FROM", True, "", {"SMTPUTF8": None}),
    (b"FROM:<a@b.c>  SIZE=1 ", "FROM", True, "a@b.c", {"SIZE": "1"}),
    # The length limits, exactly reached.
    (
        b"TO:<" + b"l" * 64 + b"@example.com>",
        "TO",
        False,
        "l" * 64 + "@example.com",
        {},
    ),
    (
        b"TO:<a@"
        + b"d" * 63
        + b"."
        + b"e" * 63
        + b"."
        + b"f" * 63
        + b"."
        + b"g" * 59
        + b">",
        "TO",
        False,
        "a@" + "d" * 63 + "." + "e" * 63 + "." + "f" * 63 + "." + "g" * 59,
        {},
    ),
]

_LONG_DOMAIN = "d" * 63 + "." + "e" * 63 + "." + "f" * 63 + "." + "g" * 63

# (name, argument, keyword, isSender, expected reply code and enhanced code)
INVALID_PATHS: list[tuple[str, bytes, str, bool, tuple[int, str]]] = [
    ("no keyword", b"<a@b.c>", "FROM", True, (501, "5.5.2")),
    ("wrong keyword", b"TO:<a@b.c>", "FROM", True, (501, "5.5.2")),
    ("keyword without colon", b"FROM <a@b.c>", "FROM", True, (501, "5.5.2")),
    ("empty", b"", "TO", False, (501, "5.5.2")),
    ("missing brackets", b"FROM:a@b.c", "FROM", True, (501, "5.1.7")),
    ("missing brackets rcpt", b"TO:b@b.c", "TO", False, (501, "5.1.3")),
    ("missing closing bracket", b"FROM:<a@b.c", "FROM", True, (501, "5.1.7")),
    ("missing opening bracket", b"FROM:a@b.c>", "FROM", True, (501, "5.1.7")),
    ("closing before opening", b"FROM:>a@b.c<", "FROM", True, (501, "5.1.7")),
    ("closing first inside", b"FROM:<>a@b.c<", "FROM", True, (501, "5.1.7")),
    ("nested brackets", b"FROM:<<a@b.c>>", "FROM", True, (501, "5.1.7")),
    ("two spaces after colon", b"FROM:  <a@b.c>", "FROM", True, (501, "5.1.7")),
    ("space before colon", b"FROM :<a@b.c>", "FROM", True, (501, "5.5.2")),
    ("trailing junk", b"FROM:<a@b.c>junk", "FROM", True, (501, "5.1.7")),
    ("trailing bracket", b"TO:<a@b.c>>", "TO", False, (501, "5.1.3")),
    ("null recipient", b"TO:<>", "TO", False, (501, "5.1.3")),
    ("bare postmaster sender", b"FROM:<postmaster>", "FROM", True, (501, "5.1.7")),
    ("no at", b"TO:<ab.c>", "TO", False, (501, "5.1.3")),
    ("empty local", b"TO:<@b.c>", "TO", False, (501, "5.1.3")),
    ("empty domain", b"TO:<a@>", "TO", False, (501, "5.1.3")),
    ("space in local", b"TO:<a b@c.d>", "TO", False, (501, "5.1.3")),
    ("leading dot", b"TO:<.a@c.d>", "TO", False, (501, "5.1.3")),
    ("trailing dot", b"TO:<a.@c.d>", "TO", False, (501, "5.1.3")),
    ("double dot", b"TO:<a..b@c.d>", "TO", False, (501, "5.1.3")),
    ("unclosed quote", b'TO:<"ab@c.d>', "TO", False, (501, "5.1.3")),
    ("quote in dot-string", b'TO:<a"b@c.d>', "TO", False, (501, "5.1.3")),
    ("control char in quote", b'TO:<"a\x01b"@c.d>', "TO", False, (501, "5.1.3")),
    ("domain trailing dot", b"TO:<a@c.d.>", "TO", False, (501, "5.1.3")),
    ("domain leading hyphen", b"TO:<a@-c.d>", "TO", False, (501, "5.1.3")),
    ("domain trailing hyphen", b"TO:<a@c-.d>", "TO", False, (501, "5.1.3")),
    ("domain underscore", b"TO:<a@c_d.e>", "TO", False, (501, "5.1.3")),
    ("domain space", b"TO:<a@c d.e>", "TO", False, (501, "5.1.3")),
    ("bad IPv4 literal", b"TO:<a@[192.0.2.256]>", "TO", False, (501, "5.1.3")),
    ("short IPv4 literal", b"TO:<a@[192.0.2]>", "TO", False, (501, "5.1.3")),
    ("bad IPv6 literal", b"TO:<a@[IPv6:2001:db8:::1]>", "TO", False, (501, "5.1.3")),
    ("IPv6 zone", b"TO:<a@[IPv6:fe80::1%eth0]>", "TO", False, (501, "5.1.3")),
    ("empty literal", b"TO:<a@[]>", "TO", False, (501, "5.1.3")),
    ("unclosed literal", b"TO:<a@[192.0.2.1>", "TO", False, (501, "5.1.3")),
    ("general literal no tag", b"TO:<a@[:x]>", "TO", False, (501, "5.1.3")),
    ("route without mailbox", b"TO:<@relay.example:>", "TO", False, (501, "5.1.3")),
    ("route without sender", b"FROM:<@relay.example:>", "FROM", True, (501, "5.1.7")),
    ("route bad literal", b"TO:<@[x:a@b.c>", "TO", False, (501, "5.1.3")),
    ("quote outside brackets", b'TO:"<a@b.c>"', "TO", False, (501, "5.1.3")),
    ("bracket after quote", b'TO:<"a"<b@c.d>', "TO", False, (501, "5.1.3")),
    ("route bad domain", b"TO:<@bad!domain:a@b.c>", "TO", False, (501, "5.1.3")),
    (
        "route missing at",
        b"TO:<@a.example,b.example:a@b.c>",
        "TO",
        False,
        (501, "5.1.3"),
    ),
    ("not UTF-8", b"TO:<\xff@b.c>", "TO", False, (501, "5.1.3")),
    ("not UTF-8 sender", b"FROM:<\xc3@b.c>", "FROM", True, (501, "5.1.7")),
    (
        "local part too long",
        b"TO:<" + b"l" * 65 + b"@b.c>",
        "TO",
        False,
        (501, "5.1.3"),
    ),
    ("label too long", b"TO:<a@" + b"l" * 64 + b".c>", "TO", False, (501, "5.1.3")),
    (
        "domain too long",
        b"TO:<a@" + _LONG_DOMAIN.encode() + b">",
        "TO",
        False,
        (501, "5.1.3"),
    ),
    (
        "path too long",
        b"TO:<" + b"l" * 64 + b"@" + b"d." * 94 + b"example>",
        "TO",
        False,
        (501, "5.1.3"),
    ),
    ("malformed parameter", b"FROM:<a@b.c> =x", "FROM", True, (501, "5.5.4")),
]


class ParsePathArgumentTests(SynchronousTestCase):
    """
    L{parsePathArgument} parses the argument of MAIL and RCPT or raises the
    exact reply.
    """

    def test_valid(self) -> None:
        """
        Each valid argument gives the expected address and parameters.
        """
        for argument, keyword, isSender, address, params in VALID_PATHS:
            parsed = parsePathArgument(argument, keyword, isSender)
            self.assertEqual(parsed.address, address, argument)
            self.assertEqual(dict(parsed.params), params, argument)

    def test_invalid(self) -> None:
        """
        Each invalid argument raises the reply with the expected code and
        enhanced code.
        """
        for name, argument, keyword, isSender, (code, enhanced) in INVALID_PATHS:
            with self.assertRaises(SMTPReply, msg=name) as caught:
                parsePathArgument(argument, keyword, isSender)
            self.assertEqual(
                (caught.exception.code, caught.exception.enhanced),
                (code, enhanced),
                name,
            )

    def test_exactReplies(self) -> None:
        """
        The refusals are the named replies with explanatory text.
        """
        cases = [
            (
                b"FROM:a@b.c",
                "FROM",
                True,
                R.BAD_SENDER_SYNTAX,
                "Address must be in angle brackets",
            ),
            (
                b"FROM:<a@b.c",
                "FROM",
                True,
                R.BAD_SENDER_SYNTAX,
                "Missing closing angle bracket",
            ),
            (
                b"TO:<>",
                "TO",
                False,
                R.BAD_RECIPIENT_SYNTAX,
                "Recipient address required",
            ),
            (
                b"TO:<a@b.c>x",
                "TO",
                False,
                R.BAD_RECIPIENT_SYNTAX,
                "Unexpected text after address",
            ),
            (b"RCPT:<a@b.c>", "TO", False, R.SYNTAX_ERROR, "Syntax: RCPT TO:<address>"),
            (b"X", "FROM", True, R.SYNTAX_ERROR, "Syntax: MAIL FROM:<address>"),
            (
                b"TO:<\xff>",
                "TO",
                False,
                R.BAD_RECIPIENT_SYNTAX,
                "Address is not valid UTF-8",
            ),
            (
                b'TO:<"a@b.c>',
                "TO",
                False,
                R.BAD_RECIPIENT_SYNTAX,
                "Unterminated quoted string in address",
            ),
            (
                b"TO:<a<b@c.d>",
                "TO",
                False,
                R.BAD_RECIPIENT_SYNTAX,
                "Unexpected angle bracket in address",
            ),
            (
                b"TO:<@x_y:b@c.d>",
                "TO",
                False,
                R.BAD_RECIPIENT_SYNTAX,
                "Invalid source route",
            ),
            (
                b"FROM:<@x.y:>",
                "FROM",
                True,
                R.BAD_SENDER_SYNTAX,
                "Source route without a mailbox",
            ),
        ]
        for argument, keyword, isSender, reply, text in cases:
            with self.assertRaises(SMTPReply) as caught:
                parsePathArgument(argument, keyword, isSender)
            self.assertEqual(caught.exception, reply.withText(text), argument)

    def test_pathLengthLimit(self) -> None:
        """
        A path of exactly 256 octets with its brackets is accepted, 257 is not
        (RFC 5321 4.5.3.1.3).
        """
        domain = ".".join(["d" * 60] * 3) + "." + "e" * 60  # 243 octets
        local = "l" * (256 - 2 - 1 - len(domain))
        parsed = parsePathArgument(f"TO:<{local}@{domain}>".encode(), "TO", False)
        self.assertEqual(parsed.address, f"{local}@{domain}")
        with self.assertRaises(SMTPReply) as caught:
            parsePathArgument(f"TO:<{local}l@{domain}>".encode(), "TO", False)
        self.assertEqual(
            caught.exception, R.BAD_RECIPIENT_SYNTAX.withText("Path too long")
        )

    def test_utf8LengthInOctets(self) -> None:
        """
        The local part limit counts UTF-8 octets, not characters.
        """
        ok = "\u00e9" * 32 + "@b.c"
        self.assertEqual(
            parsePathArgument(f"TO:<{ok}>".encode(), "TO", False).address, ok
        )
        with self.assertRaises(SMTPReply):
            parsePathArgument(f"TO:<\u00e9{ok}>".encode(), "TO", False)

    def test_paramsReadOnlyAndOrdered(self) -> None:
        """
        Parameters keep their order and cannot be changed by the caller.
        """
        parsed = parsePathArgument(b"FROM:<> Z=1 A=2 M", "FROM", True)
        self.assertEqual(
            list(parsed.params.items()), [("Z", "1"), ("A", "2"), ("M", None)]
        )
        self.assertRaises(TypeError, operator.setitem, parsed.params, "X", "1")

    @settings(max_examples=300, deadline=None)
    @given(st.binary(max_size=300), st.sampled_from(["FROM", "TO"]), st.booleans())
    def test_arbitraryBytesOnlySMTPReply(
        self, data: bytes, keyword: str, isSender: bool
    ) -> None:
        """
        On arbitrary bytes the parser returns or raises an L{SMTPReply}, never
        anything else.
        """
        try:
            parsePathArgument(data, keyword, isSender)
        except SMTPReply as e:
            self.assertGreaterEqual(e.code, 500)

    @settings(max_examples=300, deadline=None)
    @given(
        st.sampled_from(["FROM", "TO"]),
        st.booleans(),
        st.text(
            alphabet=st.sampled_from(list('<>@:,."\\[] =-aZ9\u00e9\x00')),
            max_size=40,
        ),
    )
    def test_nearMissesOnlySMTPReply(
        self, keyword: str, isSender: bool, rest: str
    ) -> None:
        """
        Arguments built from the syntax's own punctuation return or raise an
        L{SMTPReply}, and an accepted address contains no angle bracket.
        """
        try:
            parsed = parsePathArgument(f"{keyword}:{rest}".encode(), keyword, isSender)
        except SMTPReply as e:
            self.assertIn(e.code, (501, 555))
        else:
            self.assertNotIn(">", parsed.address.replace('">', "").split('"')[-1])


class ParseParametersTests(SynchronousTestCase):
    """
    L{parseParameters} parses ESMTP parameters (RFC 5321 4.1.2).
    """

    VALID: list[tuple[str, list[tuple[str, str | None]]]] = [
        ("", []),
        (" ", []),
        (" SIZE=10", [("SIZE", "10")]),
        (" size=10", [("SIZE", "10")]),
        (" body=8bitmime", [("BODY", "8bitmime")]),
        (" SMTPUTF8", [("SMTPUTF8", None)]),
        (" A=1 B=2 C", [("A", "1"), ("B", "2"), ("C", None)]),
        ("  A=1   B=2", [("A", "1"), ("B", "2")]),
        (" X-FOO=a+3Db", [("X-FOO", "a+3Db")]),
        (" AUTH=<>", [("AUTH", "<>")]),
        (" 1X=y", [("1X", "y")]),
        (" K=\u00e9", [("K", "\u00e9")]),
    ]

    INVALID: list[str] = [
        " =1",
        " -A=1",
        " A_B=1",
        " A=",
        " A=b=",
        " A==",
        " \u00e9=1",
        " A=\x01",
        " A=x\x7f",
        " SIZE=1 SIZE=2",
        " size=1 SIZE=2",
        " SMTPUTF8 smtputf8",
        " A\t=1",
    ]

    def test_valid(self) -> None:
        """
        Each valid text gives the expected keywords (upper case) and values
        (as given), in order.
        """
        for text, expected in self.VALID:
            self.assertEqual(list(parseParameters(text).items()), expected, text)

    def test_invalid(self) -> None:
        """
        Malformed and repeated parameters raise 501 5.5.4.
        """
        for text in self.INVALID:
            with self.assertRaises(SMTPReply, msg=text) as caught:
                parseParameters(text)
            self.assertEqual(
                (caught.exception.code, caught.exception.enhanced), (501, "5.5.4"), text
            )

    def test_duplicateText(self) -> None:
        """
        A repeated keyword is named in the refusal.
        """
        with self.assertRaises(SMTPReply) as caught:
            parseParameters(" size=1 Size=2")
        self.assertEqual(
            caught.exception, R.BAD_PARAMETER.withText("Duplicate parameter SIZE")
        )


class CheckMailParametersTests(SynchronousTestCase):
    """
    L{checkMailParameters} checks MAIL parameters against what we offer.
    """

    VALID: list[tuple[dict[str, str | None], MailParameters]] = [
        ({}, MailParameters(None, "7BIT", False, None)),
        ({"SIZE": "0"}, MailParameters(0, "7BIT", False, None)),
        ({"SIZE": "12345"}, MailParameters(12345, "7BIT", False, None)),
        ({"SIZE": "9" * 20}, MailParameters(int("9" * 20), "7BIT", False, None)),
        ({"BODY": "8BITMIME"}, MailParameters(None, "8BITMIME", False, None)),
        ({"BODY": "8bitmime"}, MailParameters(None, "8BITMIME", False, None)),
        ({"BODY": "7bit"}, MailParameters(None, "7BIT", False, None)),
        ({"SMTPUTF8": None}, MailParameters(None, "7BIT", True, None)),
        ({"AUTH": "<>"}, MailParameters(None, "7BIT", False, "<>")),
        ({"AUTH": "a+2Bb@c.d"}, MailParameters(None, "7BIT", False, "a+2Bb@c.d")),
        (
            {"SIZE": "5", "BODY": "8BITMIME", "SMTPUTF8": None, "AUTH": "x@y"},
            MailParameters(5, "8BITMIME", True, "x@y"),
        ),
    ]

    INVALID: list[tuple[dict[str, str | None], SMTPReply]] = [
        ({"SIZE": None}, R.BAD_PARAMETER.withText("SIZE needs a number")),
        ({"SIZE": ""}, R.BAD_PARAMETER.withText("SIZE needs a number")),
        ({"SIZE": "-1"}, R.BAD_PARAMETER.withText("SIZE needs a number")),
        ({"SIZE": "1e3"}, R.BAD_PARAMETER.withText("SIZE needs a number")),
        ({"SIZE": "9" * 21}, R.BAD_PARAMETER.withText("SIZE needs a number")),
        ({"SIZE": "\u00b2"}, R.BAD_PARAMETER.withText("SIZE needs a number")),
        ({"SIZE": "\u0661\u0662"}, R.BAD_PARAMETER.withText("SIZE needs a number")),
        ({"BODY": None}, R.BAD_PARAMETER.withText("BODY must be 7BIT or 8BITMIME")),
        (
            {"BODY": "BINARYMIME"},
            R.BAD_PARAMETER.withText("BODY must be 7BIT or 8BITMIME"),
        ),
        ({"SMTPUTF8": "yes"}, R.BAD_PARAMETER.withText("SMTPUTF8 takes no value")),
        ({"AUTH": None}, R.BAD_PARAMETER.withText("AUTH needs a value")),
        ({"RET": "HDRS"}, R.UNKNOWN_PARAMETER.withText("Unsupported parameter RET")),
        (
            {"X-UNKNOWN": None},
            R.UNKNOWN_PARAMETER.withText("Unsupported parameter X-UNKNOWN"),
        ),
        (
            {"SIZE": "1", "ENVID": "x"},
            R.UNKNOWN_PARAMETER.withText("Unsupported parameter ENVID"),
        ),
    ]

    def test_valid(self) -> None:
        """
        Each valid set of parameters after EHLO gives the expected values.
        """
        for params, expected in self.VALID:
            self.assertEqual(checkMailParameters(params, True), expected, params)

    def test_invalid(self) -> None:
        """
        Bad values raise 501 5.5.4 and unknown keywords 555 5.5.4, with the
        exact text.
        """
        for params, reply in self.INVALID:
            with self.assertRaises(SMTPReply, msg=repr(params)) as caught:
                checkMailParameters(params, True)
            self.assertEqual(caught.exception, reply, params)

    def test_unknownIs555(self) -> None:
        """
        An unknown parameter is 555 5.5.4 (RFC 5321 4.1.1.11), not 501.
        """
        with self.assertRaises(SMTPReply) as caught:
            checkMailParameters({"FOO": "1"}, True)
        self.assertEqual(
            (caught.exception.code, caught.exception.enhanced), (555, "5.5.4")
        )

    def test_noParametersAfterHelo(self) -> None:
        """
        After HELO any parameter, even a known one, is 555 5.5.4; none is fine.
        """
        for params in ({"SIZE": "1"}, {"BODY": "8BITMIME"}, {"SMTPUTF8": None}):
            with self.assertRaises(SMTPReply) as caught:
                checkMailParameters(params, False)
            self.assertEqual(
                caught.exception, R.UNKNOWN_PARAMETER.withText("Parameters need EHLO")
            )
        self.assertEqual(
            checkMailParameters({}, False), MailParameters(None, "7BIT", False, None)
        )

    def test_fromParsedArgument(self) -> None:
        """
        The parameters as parsed from a real MAIL argument check out.
        """
        parsed = parsePathArgument(
            b"FROM:<a@b.c> size=42 body=8BitMime smtputf8 auth=<>", "FROM", True
        )
        self.assertEqual(
            checkMailParameters(parsed.params, True),
            MailParameters(42, "8BITMIME", True, "<>"),
        )

    def test_rcptParameters(self) -> None:
        """
        RCPT takes no parameter: any is 555 5.5.4, none is fine.
        """
        self.assertIsNone(checkRcptParameters({}, True))
        with self.assertRaises(SMTPReply) as caught:
            checkRcptParameters({"NOTIFY": "NEVER"}, True)
        self.assertEqual(
            caught.exception,
            R.UNKNOWN_PARAMETER.withText("Unsupported parameter NOTIFY"),
        )


class RequireASCIITests(SynchronousTestCase):
    """
    L{requireASCII} refuses non-ASCII addresses outside SMTPUTF8 (RFC 6531 3.5).
    """

    def test_asciiAlwaysAccepted(self) -> None:
        """
        ASCII and null addresses pass with or without SMTPUTF8.
        """
        for address in ("a@b.c", "", "postmaster", '"x y"@b.c'):
            self.assertIsNone(requireASCII(address, False))
            self.assertIsNone(requireASCII(address, True))

    def test_nonASCIIWithoutSMTPUTF8(self) -> None:
        """
        A non-ASCII local part or domain without SMTPUTF8 is 553 5.6.7.
        """
        for address in ("j\u00f6rg@b.c", "a@b\u00fccher.example", "\u7528@\u4f8b.cn"):
            with self.assertRaises(SMTPReply) as caught:
                requireASCII(address, False)
            self.assertEqual(caught.exception, R.NEED_SMTPUTF8)
            self.assertEqual(
                (caught.exception.code, caught.exception.enhanced), (553, "5.6.7")
            )

    def test_nonASCIIWithSMTPUTF8(self) -> None:
        """
        A non-ASCII address is accepted in an SMTPUTF8 transaction.
        """
        self.assertIsNone(requireASCII("j\u00f6rg@b\u00fccher.example", True))


class CheckHeloNameTests(SynchronousTestCase):
    """
    L{checkHeloName} takes printable names without spaces.
    """

    def test_valid(self) -> None:
        """
        Domains, literals and odd but harmless names are returned stripped.
        """
        table = [
            (b"mx.example.com", "mx.example.com"),
            (b"[192.0.2.1]", "[192.0.2.1]"),
            (b"[IPv6:2001:db8::1]", "[IPv6:2001:db8::1]"),
            (b" client ", "client"),
            (b"localhost", "localhost"),
            (b"under_score", "under_score"),
            ("b\u00fccher.example".encode(), "b\u00fccher.example"),
            (b"x" * 255, "x" * 255),
        ]
        for argument, name in table:
            self.assertEqual(checkHeloName(argument), name, argument)

    def test_invalid(self) -> None:
        """
        Empty, spaced, unprintable, non-UTF-8 or overlong names are 501 5.5.2.
        """
        table = [
            (b"", "Syntax: EHLO domain"),
            (b"   ", "Syntax: EHLO domain"),
            (b"two words", "Syntax: EHLO domain"),
            (b"a\tb", "Syntax: EHLO domain"),
            (b"a\x00b", "Syntax: EHLO domain"),
            (b"a\rb", "Syntax: EHLO domain"),
            (b"a\x1bb", "Syntax: EHLO domain"),
            (b"x" * 256, "Syntax: EHLO domain"),
            (b"\xff", "HELO name is not valid UTF-8"),
            (b"x;", "Syntax: EHLO domain"),
            (b"a(b)", "Syntax: EHLO domain"),
            (b"<a>", "Syntax: EHLO domain"),
            (b'"q"', "Syntax: EHLO domain"),
            (b"back\\slash", "Syntax: EHLO domain"),
        ]
        for argument, text in table:
            with self.assertRaises(SMTPReply, msg=repr(argument)) as caught:
                checkHeloName(argument)
            self.assertEqual(caught.exception, R.SYNTAX_ERROR.withText(text), argument)


class ReceivedTests(SynchronousTestCase):
    """
    The trace header (RFC 5321 4.4) and its protocol names (RFC 3848,
    RFC 6531 4.3).
    """

    def test_protocolNames(self) -> None:
        """
        Every combination gives the registered C{with} name.
        """
        table = [
            ((False, False, False, False), "SMTP"),
            ((True, False, False, False), "ESMTP"),
            ((True, True, False, False), "ESMTPS"),
            ((True, False, True, False), "ESMTPA"),
            ((True, True, True, False), "ESMTPSA"),
            ((True, False, False, True), "UTF8SMTP"),
            ((True, True, False, True), "UTF8SMTPS"),
            ((True, False, True, True), "UTF8SMTPA"),
            ((True, True, True, True), "UTF8SMTPSA"),
        ]
        for (extended, tls, authenticated, utf8), name in table:
            self.assertEqual(receivedProtocol(extended, tls, authenticated, utf8), name)

    def _header(self, **kw: object) -> bytes:
        args: dict[str, object] = {
            "heloName": "client.example",
            "peerHost": "192.0.2.1",
            "hostname": "mx.example.com",
            "protocol": "ESMTP",
            "queueID": "ABC123",
            "recipients": ["a@example.com"],
            "date": "Mon, 01 Jan 2024 00:00:00 +0000",
            "tlsComment": None,
        }
        args.update(kw)
        return receivedHeader(**args)  # type: ignore[arg-type]

    def test_oneRecipient(self) -> None:
        """
        With one recipient the header names it in a C{for} clause.
        """
        self.assertEqual(
            self._header(),
            b"Received: from client.example ([192.0.2.1])\r\n"
            b"\tby mx.example.com (gomail_twisted) with ESMTP id ABC123\r\n"
            b"\tfor <a@example.com>;\r\n"
            b"\tMon, 01 Jan 2024 00:00:00 +0000\r\n",
        )

    def test_severalRecipientsStayPrivate(self) -> None:
        """
        With several recipients no C{for} clause names them.
        """
        self.assertEqual(
            self._header(recipients=["a@x.example", "b@y.example"]),
            b"Received: from client.example ([192.0.2.1])\r\n"
            b"\tby mx.example.com (gomail_twisted) with ESMTP id ABC123;\r\n"
            b"\tMon, 01 Jan 2024 00:00:00 +0000\r\n",
        )

    def test_ipv6AndTLS(self) -> None:
        """
        An IPv6 peer is an IPv6 address literal and the TLS facts are a comment.
        """
        self.assertEqual(
            self._header(
                peerHost="2001:db8::1",
                protocol="ESMTPS",
                tlsComment="using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384",
            ),
            b"Received: from client.example ([IPv6:2001:db8::1])\r\n"
            b"\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384)\r\n"
            b"\tby mx.example.com (gomail_twisted) with ESMTPS id ABC123\r\n"
            b"\tfor <a@example.com>;\r\n"
            b"\tMon, 01 Jan 2024 00:00:00 +0000\r\n",
        )

    def test_utf8(self) -> None:
        """
        UTF-8 names and recipients are encoded as UTF-8 (RFC 6532).
        """
        header = self._header(recipients=["j\u00f6rg@example.com"], protocol="UTF8SMTP")
        self.assertIn("for <j\u00f6rg@example.com>;".encode(), header)
        self.assertIn(b" with UTF8SMTP id ", header)

    def test_nonASCIIHeloName(self) -> None:
        """
        A U-label HELO name is written in its ASCII (A-label) form, so the
        header stays ASCII for a message sent without SMTPUTF8.
        """
        header = self._header(heloName="b\u00fccher.example")
        self.assertTrue(
            header.startswith(b"Received: from xn--bcher-kva.example ([192.0.2.1])")
        )

    def test_foldedLinesStartWithTab(self) -> None:
        """
        Every line after the first is a continuation line and the last ends in
        CRLF.
        """
        header = self._header(recipients=[], tlsComment="x")
        lines = header.split(b"\r\n")
        self.assertEqual(lines[-1], b"")
        self.assertTrue(all(line.startswith(b"\t") for line in lines[1:-1]))
        self.assertTrue(lines[0].startswith(b"Received: "))


class FastPathTests(SynchronousTestCase):
    """
    The fast path for plain ASCII paths gives what the full parser gives.
    """

    @settings(max_examples=300, deadline=None)
    @given(
        keyword=st.sampled_from(["FROM", "TO"]),
        written=st.sampled_from(["FROM", "TO", "from", "To", "XX"]),
        space=st.booleans(),
        local=st.from_regex(rb"[A-Za-z0-9._+-]{1,70}", fullmatch=True),
        domain=st.from_regex(rb"[A-Za-z0-9.-]{1,70}", fullmatch=True),
        tail=st.sampled_from(
            [b"", b" SIZE=10", b" BODY=8BITMIME SMTPUTF8", b"x", b" "]
        ),
    )
    def test_sameAsFullParser(
        self,
        keyword: str,
        written: str,
        space: bool,
        local: bytes,
        domain: bytes,
        tail: bytes,
    ) -> None:
        """
        For any near-simple argument both parsers return the same value or
        refuse with the same reply.
        """
        argument = (
            written.encode()
            + b":"
            + (b" " if space else b"")
            + b"<"
            + local
            + b"@"
            + domain
            + b">"
            + tail
        )
        isSender = keyword == "FROM"

        def outcome(parse: Any) -> object:
            try:
                return parse(argument, keyword, isSender)
            except SMTPReply as e:
                return e

        self.assertEqual(
            outcome(parsePathArgument), outcome(_wire._parsePathArgumentInFull)
        )
