# -*- test-case-name: tests.test_imap4_encode -*-
"""
Tests for L{gomail_twisted.imap4._encode}: IMAP4rev1 response values as
RFC 3501 9 writes them, with no value able to break the framing.
"""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from gomail_twisted.imap4._encode import (
    MAX_NUMBER,
    MAX_QUOTED,
    astring,
    atom,
    flagList,
    literal,
    mailboxName,
    nstring,
    number,
    parenthesized,
    string,
)
from gomail_twisted.mutf7 import decode as mutf7Decode

_LITERAL = re.compile(rb"\{(\d+)\}\r\n")
_ATOM = re.compile(rb'[^(){ \x00-\x1f\x7f%*"\\\]\x80-\xff]+')


def _decode(data: bytes) -> tuple[bytes | None, bytes]:
    """
    Read one atom, NIL, quoted string or literal from the front of C{data},
    as a client following RFC 3501 9 would.

    @param data: the wire bytes.
    @return: the value (L{None} for NIL) and the bytes after it.
    @raise ValueError: C{data} does not start with such a value.
    """
    match = _LITERAL.match(data)
    if match is not None:
        size = int(match.group(1))
        end = match.end() + size
        if len(data) < end:
            raise ValueError("short literal")
        return data[match.end() : end], data[end:]
    if data.startswith(b'"'):
        out = bytearray()
        index = 1
        while index < len(data):
            char = data[index : index + 1]
            if char == b"\\":
                escaped = data[index + 1 : index + 2]
                if escaped not in (b"\\", b'"'):
                    raise ValueError("bad escape")
                out += escaped
                index += 2
            elif char == b'"':
                return bytes(out), data[index + 1 :]
            elif char in (b"\r", b"\n", b"\x00") or char[0] > 0x7F:
                raise ValueError("bad quoted character")
            else:
                out += char
                index += 1
        raise ValueError("unterminated quoted string")
    match = _ATOM.match(data)
    if match is None:
        raise ValueError("no value")
    if match.group().upper() == b"NIL":
        return None, data[match.end() :]
    return match.group(), data[match.end() :]


def _outsideLiterals(data: bytes) -> bytes:
    """
    The bytes of a single encoded value with any literal's content removed.

    @param data: one encoded value.
    @return: what a client reads as protocol syntax.
    """
    match = _LITERAL.match(data)
    if match is None:
        return data
    return data[: match.start()] + b"{" + match.group(1) + b"}"


def _roundTrip(encoded: bytes) -> bytes | None:
    """
    Decode one whole encoded value, insisting nothing follows it.

    @param encoded: the encoding.
    @return: the value.
    """
    value, rest = _decode(encoded)
    assert rest == b"", rest
    return value


_VALUES = st.one_of(
    st.text(),
    st.binary(),
    st.text(alphabet=st.sampled_from('ab\r\n"\\ ]{}()%*\x7f\x01'), max_size=20),
    st.text(alphabet='a"', min_size=MAX_QUOTED - 1, max_size=MAX_QUOTED + 1),
    st.text(min_size=MAX_QUOTED - 2, max_size=MAX_QUOTED + 2).map(
        lambda text: text.encode("utf-8", "replace")[: MAX_QUOTED + 1]
    ),
)


def _noNul(value: str | bytes) -> bool:
    """
    Whether a value is free of NUL and lone surrogates.

    @param value: text or octets.
    @return: C{True} when it can be encoded.
    """
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return "\x00" not in value
    return b"\x00" not in value


def _octets(value: str | bytes) -> bytes:
    """
    The octets a value should decode to.

    @param value: text or octets.
    @return: text as UTF-8, octets as they are.
    """
    return value.encode("utf-8") if isinstance(value, str) else value


class AstringTests(SynchronousTestCase):
    """
    L{astring} picks the atom, quoted or literal form.
    """

    table: list[tuple[str | bytes, bytes]] = [
        ("INBOX", b"INBOX"),
        (b"Sent", b"Sent"),
        ("a.b-c_d+e/f~g&h!#$'", b"a.b-c_d+e/f~g&h!#$'"),
        ("", b'""'),
        ("two words", b'"two words"'),
        ("a]b", b'"a]b"'),
        ("(x)", b'"(x)"'),
        ("{5}", b'"{5}"'),
        ("50%", b'"50%"'),
        ("*", b'"*"'),
        ('say "hi"', b'"say \\"hi\\""'),
        ("back\\slash", b'"back\\\\slash"'),
        ("tab\there", b'"tab\there"'),
        ("del\x7f", b'"del\x7f"'),
        ("NIL", b'"NIL"'),
        ("nil", b'"nil"'),
        ("NILS", b"NILS"),
        ("line\r\nbreak", b"{11}\r\nline\r\nbreak"),
        ("cr\r", b"{3}\r\ncr\r"),
        ("lf\n", b"{3}\r\nlf\n"),
        ("caf\u00e9", b"{5}\r\ncaf\xc3\xa9"),
        (b"\xff", b"{1}\r\n\xff"),
        ("x" * MAX_QUOTED + " ", b"{1001}\r\n" + b"x" * MAX_QUOTED + b" "),
        (" " * MAX_QUOTED, b'"' + b" " * MAX_QUOTED + b'"'),
    ]

    def test_table(self) -> None:
        """
        Each value encodes to exactly the bytes of the table.
        """
        for value, expected in self.table:
            self.assertEqual((value, astring(value)), (value, expected))

    def test_nulRefused(self) -> None:
        """
        NUL, which no IMAP string may carry, raises L{ValueError}.
        """
        for value in ["a\x00b", b"\x00", "\x00\r\n"]:
            self.assertRaises(ValueError, astring, value)

    def test_loneSurrogateRefused(self) -> None:
        """
        Text that is not valid Unicode raises L{ValueError}.
        """
        self.assertRaises(ValueError, astring, "\ud800")

    @given(st.binary(), st.binary())
    def test_anyNulRefused(self, before: bytes, after: bytes) -> None:
        """
        A NUL anywhere makes L{astring}, L{string}, L{nstring} and
        L{literal} raise L{ValueError} rather than write it.
        """
        value = before + b"\x00" + after
        for encode in (astring, string, nstring, literal):
            self.assertRaises(ValueError, encode, value)
            self.assertRaises(ValueError, encode, value.decode("latin-1"))

    @given(_VALUES.filter(_noNul))
    def test_roundTrip(self, value: str | bytes) -> None:
        """
        Any value decodes back to its octets and has CR or LF only inside
        a literal.
        """
        encoded = astring(value)
        self.assertEqual(_roundTrip(encoded), _octets(value))
        syntax = _outsideLiterals(encoded)
        self.assertNotIn(b"\r", syntax)
        self.assertNotIn(b"\n", syntax)


class StringTests(SynchronousTestCase):
    """
    L{string} and L{nstring} never use the atom form.
    """

    table: list[tuple[str | bytes | None, bytes]] = [
        (None, b"NIL"),
        ("NIL", b'"NIL"'),
        ("INBOX", b'"INBOX"'),
        ("", b'""'),
        ('a"b', b'"a\\"b"'),
        ("a\r\nb", b"{4}\r\na\r\nb"),
        ("\u00e9", b"{2}\r\n\xc3\xa9"),
    ]

    def test_table(self) -> None:
        """
        Each value encodes to exactly the bytes of the table, through
        L{nstring} and, unless L{None}, through L{string}.
        """
        for value, expected in self.table:
            self.assertEqual((value, nstring(value)), (value, expected))
            if value is not None:
                self.assertEqual((value, string(value)), (value, expected))

    def test_nulRefused(self) -> None:
        """
        NUL raises L{ValueError} through L{string}, L{nstring} and
        L{literal}.
        """
        for encode in (string, nstring, literal):
            self.assertRaises(ValueError, encode, b"a\x00")

    def test_literal(self) -> None:
        """
        L{literal} always writes the literal form with the octet count.
        """
        self.assertEqual(literal("abc"), b"{3}\r\nabc")
        self.assertEqual(literal(b""), b"{0}\r\n")
        self.assertEqual(literal("\u00e9"), b"{2}\r\n\xc3\xa9")

    @given(_VALUES.filter(_noNul))
    def test_roundTrip(self, value: str | bytes) -> None:
        """
        Any value decodes back to its octets, is never a bare atom, and
        has CR or LF only inside a literal.
        """
        encoded = nstring(value)
        self.assertEqual(_roundTrip(encoded), _octets(value))
        self.assertIn(encoded[:1], (b'"', b"{"))
        syntax = _outsideLiterals(encoded)
        self.assertNotIn(b"\r", syntax)
        self.assertNotIn(b"\n", syntax)


class AtomTests(SynchronousTestCase):
    """
    L{atom} accepts atoms only.
    """

    def test_valid(self) -> None:
        """
        Atoms come back as their octets.
        """
        self.assertEqual(atom("UIDNEXT"), b"UIDNEXT")
        self.assertEqual(atom(b"X-GM-EXT-1"), b"X-GM-EXT-1")

    def test_invalid(self) -> None:
        """
        Empty values and atom-specials raise L{ValueError}.
        """
        for value in [
            "",
            "a b",
            "a]",
            "(",
            "{",
            "%",
            "*",
            '"',
            "\\",
            "\r",
            "\x7f",
            "\u00e9",
        ]:
            self.assertRaises(ValueError, atom, value)


class MailboxNameTests(SynchronousTestCase):
    """
    L{mailboxName} writes modified UTF-7 and INBOX.
    """

    table: list[tuple[str, bytes]] = [
        ("INBOX", b"INBOX"),
        ("inbox", b"INBOX"),
        ("InBoX", b"INBOX"),
        ("INBOX/Sub", b"INBOX/Sub"),
        ("Archive", b"Archive"),
        ("Sent Items", b'"Sent Items"'),
        ("Entw\u00fcrfe", b"Entw&APw-rfe"),
        ("Tom & Jerry", b'"Tom &- Jerry"'),
        ("a\r\nb", b"a&AA0ACg-b"),
        ("a\x00b", b"a&AAA-b"),
        ("", b'""'),
        ("NIL", b'"NIL"'),
        ("50%", b'"50%"'),
        ('"q"', b'"\\"q\\""'),
    ]

    def test_table(self) -> None:
        """
        Each name encodes to exactly the bytes of the table.
        """
        for name, expected in self.table:
            self.assertEqual((name, mailboxName(name)), (name, expected))

    def test_loneSurrogateRefused(self) -> None:
        """
        A name holding a lone surrogate raises L{ValueError}.
        """
        self.assertRaises(ValueError, mailboxName, "a\udc00")

    @given(st.text(st.characters(exclude_categories=("Cs",))))
    def test_roundTrip(self, name: str) -> None:
        """
        Any name decodes back through modified UTF-7 and never needs a
        literal.
        """
        encoded = mailboxName(name)
        self.assertFalse(encoded.startswith(b"{"))
        value = _roundTrip(encoded)
        assert value is not None
        expected = "INBOX" if name.upper() == "INBOX" else name
        self.assertEqual(mutf7Decode(value.decode("ascii")), expected)


class NumberTests(SynchronousTestCase):
    """
    L{number} writes unsigned 32-bit integers.
    """

    def test_valid(self) -> None:
        """
        Numbers in range come back as their decimal digits.
        """
        self.assertEqual(number(0), b"0")
        self.assertEqual(number(42), b"42")
        self.assertEqual(number(MAX_NUMBER), b"4294967295")

    def test_invalid(self) -> None:
        """
        Negative, too large and non-integer values raise L{ValueError}.
        """
        for value in [-1, MAX_NUMBER + 1, True, 1.0, "1"]:
            self.assertRaises(ValueError, number, value)


class ListTests(SynchronousTestCase):
    """
    L{parenthesized} and L{flagList} write parenthesized lists.
    """

    def test_parenthesized(self) -> None:
        """
        Encoded items are joined by single spaces inside parentheses.
        """
        self.assertEqual(parenthesized([]), b"()")
        self.assertEqual(parenthesized([b"NIL"]), b"(NIL)")
        self.assertEqual(
            parenthesized([nstring(None), string("a b"), number(3)]),
            b'(NIL "a b" 3)',
        )

    def test_flagList(self) -> None:
        """
        System flags, flag extensions and keywords are written as given.
        """
        self.assertEqual(flagList([]), b"()")
        self.assertEqual(
            flagList(["\\Seen", b"\\Answered", "$Forwarded", "\\X-Ext"]),
            b"(\\Seen \\Answered $Forwarded \\X-Ext)",
        )

    def test_flagListWildcard(self) -> None:
        """
        C{\\*} is allowed only when asked for, as PERMANENTFLAGS needs.
        """
        self.assertEqual(
            flagList(["\\Deleted", "\\*"], allowWildcard=True), b"(\\Deleted \\*)"
        )
        self.assertRaises(ValueError, flagList, ["\\*"])

    def test_flagListInvalid(self) -> None:
        """
        Anything that is not a flag raises L{ValueError}.
        """
        bad = [
            "",
            "\\",
            "\\\\Seen",
            "two words",
            "a]",
            "(x",
            "{1}",
            "a\r\n",
            "%",
            "*",
            '"',
            "\u00e9",
            "a\x00",
            "\\Se\x00en",
            "\\*x",
        ]
        for flag in bad:
            self.assertRaises(ValueError, flagList, [flag])
            self.assertRaises(ValueError, flagList, [flag], allowWildcard=True)
