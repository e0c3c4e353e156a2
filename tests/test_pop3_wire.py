# -*- test-case-name: tests.test_pop3_wire -*-
"""
Tests for L{gomail_twisted.pop3._wire} and L{gomail_twisted.pop3._reply}:
command lines, message numbers, the multi-line form of a message, and the
reply type.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from gomail_twisted.pop3 import _reply as R
from gomail_twisted.pop3._reply import POP3Reply, multiline
from gomail_twisted.pop3._wire import (
    MAX_NUMBER_DIGITS,
    Command,
    expectArguments,
    parseCommand,
    parseNumber,
    stuffMessage,
    toCRLF,
    topOfMessage,
)

_COMMANDS = [
    (b"STAT", Command("STAT", (), b"")),
    (b"stat", Command("STAT", (), b"")),
    (b"LiSt 3", Command("LIST", (b"3",), b"3")),
    (b"TOP 1 10", Command("TOP", (b"1", b"10"), b"1 10")),
    (b"PASS my secret ", Command("PASS", (b"my", b"secret"), b"my secret ")),
    (
        b"USER alice@example.com",
        Command("USER", (b"alice@example.com",), b"alice@example.com"),
    ),
    (b"", Command("", (), b"")),
    (b" STAT", Command("", (), b"STAT")),
    (b"ST4T", Command("", (), b"")),
    (b"\xffSTAT", Command("", (), b"")),
    (b"STATISTICS", Command("", (), b"")),
    (b"ST\x00T 1", Command("", (), b"1")),
]

_NUMBERS = [(b"1", 1), (b"0", 0), (b"007", 7), (b"9999999999", 9999999999)]

_BAD_NUMBERS = [
    b"",
    b"-1",
    b"+1",
    b" 1",
    b"1 ",
    b"1a",
    b"a1",
    b"0x10",
    b"1.0",
    b"\xd9\xa1",  # ARABIC-INDIC DIGIT ONE: not an ASCII digit
    b"1" * (MAX_NUMBER_DIGITS + 1),
]


class ParseCommandTests(SynchronousTestCase):
    """
    L{parseCommand} and L{expectArguments}.
    """

    def test_table(self) -> None:
        """
        Each line splits into the upper-case verb, its arguments and the
        rest of the line as sent; a verb that is not letters is C{""}.
        """
        for line, expected in _COMMANDS:
            self.assertEqual(parseCommand(line), expected, line)

    def test_argumentCounts(self) -> None:
        """
        Too few or too many arguments is a syntax error naming the command.
        """
        command = parseCommand(b"LIST 1 2")
        with self.assertRaises(POP3Reply) as caught:
            expectArguments(command, 0, 1)
        self.assertEqual(
            caught.exception.format(), b"-ERR Wrong number of arguments to LIST\r\n"
        )
        with self.assertRaises(POP3Reply) as caught:
            expectArguments(parseCommand(b"STAT x"), 0, 0)
        self.assertEqual(caught.exception.format(), b"-ERR STAT takes no argument\r\n")
        self.assertEqual(expectArguments(parseCommand(b"TOP 1 2"), 2, 2), (b"1", b"2"))

    @given(st.binary(max_size=300))
    def test_anyLine(self, line: bytes) -> None:
        """
        Any line parses without an exception, to a verb of ASCII capitals.
        """
        command = parseCommand(line)
        self.assertTrue(command.verb == "" or command.verb.isupper())
        self.assertTrue(command.verb.isascii())


class ParseNumberTests(SynchronousTestCase):
    """
    L{parseNumber}.
    """

    def test_valid(self) -> None:
        """
        ASCII digits, leading zeros allowed, give their value.
        """
        for text, value in _NUMBERS:
            self.assertEqual(parseNumber(text), value)

    def test_invalid(self) -> None:
        """
        Signs, spaces, other characters, other digits and too many digits
        are refused with C{-ERR Invalid message number}.
        """
        for text in _BAD_NUMBERS:
            with self.assertRaises(POP3Reply, msg=text) as caught:
                parseNumber(text)
            self.assertEqual(caught.exception, R.BAD_NUMBER)

    @given(st.integers(min_value=0, max_value=10**MAX_NUMBER_DIGITS - 1))
    def test_roundTrip(self, value: int) -> None:
        """
        Every number the limit allows parses to itself.
        """
        self.assertEqual(parseNumber(str(value).encode()), value)


class MessageFormTests(SynchronousTestCase):
    """
    L{toCRLF}, L{stuffMessage} and L{topOfMessage}.
    """

    def test_toCRLF(self) -> None:
        """
        Bare LF becomes CRLF; a message already in CRLF form is the same
        object.
        """
        crlf = b"a\r\nb\r\n"
        self.assertIs(toCRLF(crlf), crlf)
        self.assertEqual(toCRLF(b"a\nb\r\nc\n"), b"a\r\nb\r\nc\r\n")

    def test_stuffing(self) -> None:
        """
        Every line starting with a dot, the first included and one after a
        bare LF, gets another; the terminator follows, after a CRLF if the
        message lacks one.
        """
        table = [
            (b"", b".\r\n"),
            (b"a\r\n", b"a\r\n.\r\n"),
            (b".\r\n", b"..\r\n.\r\n"),
            (b"a\r\n.\r\n..b\r\n", b"a\r\n..\r\n...b\r\n.\r\n"),
            (b"no end", b"no end\r\n.\r\n"),
            (b"x\r\n.", b"x\r\n..\r\n.\r\n"),
            (b"bare\n.\nLF\n", b"bare\n..\nLF\n\r\n.\r\n"),
        ]
        for message, expected in table:
            self.assertEqual(stuffMessage(message), expected, message)

    @given(st.lists(st.sampled_from([b"", b".", b"..", b"a", b". x"]), max_size=20))
    def test_stuffingRoundTrip(self, lines: list[bytes]) -> None:
        """
        Un-stuffing what L{stuffMessage} gives, as a client does, yields the
        message.
        """
        message = b"".join(line + b"\r\n" for line in lines)
        wire = stuffMessage(message)
        self.assertTrue(wire.endswith(b".\r\n"))
        received = wire[:-3].split(b"\r\n")[:-1]
        unstuffed = [line[1:] if line.startswith(b".") else line for line in received]
        self.assertEqual(unstuffed, lines)

    def test_top(self) -> None:
        """
        TOP keeps the header block, the empty line and the first n lines of
        the body; more lines than there are is the whole message.
        """
        message = b"A: 1\r\nB: 2\r\n\r\none\r\ntwo\r\nthree\r\n"
        self.assertEqual(topOfMessage(message, 0), b"A: 1\r\nB: 2\r\n\r\n")
        self.assertEqual(
            topOfMessage(message, 2), b"A: 1\r\nB: 2\r\n\r\none\r\ntwo\r\n"
        )
        self.assertEqual(topOfMessage(message, 3), message)
        self.assertEqual(topOfMessage(message, 9999999999), message)

    def test_topWithoutBody(self) -> None:
        """
        A message of headers only is all header block; one that starts
        with the empty line has no headers.
        """
        self.assertEqual(topOfMessage(b"A: 1\r\n", 5), b"A: 1\r\n")
        self.assertEqual(topOfMessage(b"\r\nx\r\ny\r\n", 1), b"\r\nx\r\n")
        self.assertEqual(topOfMessage(b"A: 1\r\n\r\nlast", 0), b"A: 1\r\n\r\n")
        self.assertEqual(topOfMessage(b"A: 1\r\n\r\nlast", 1), b"A: 1\r\n\r\nlast")


class ReplyTests(SynchronousTestCase):
    """
    L{POP3Reply}.
    """

    def test_format(self) -> None:
        """
        The indicator, the bracketed code and the text, in one CRLF line.
        """
        self.assertEqual(R.OK.format(), b"+OK\r\n")
        self.assertEqual(
            R.IN_USE.format(), b"-ERR [IN-USE] Maildrop already in use\r\n"
        )
        self.assertEqual(
            POP3Reply(False, "SYS/TEMP", "x").format(), b"-ERR [SYS/TEMP] x\r\n"
        )
        self.assertEqual(str(R.AUTH_FAILED), "-ERR [AUTH] Authentication failed")

    def test_codes(self) -> None:
        """
        The named response codes are those of RFC 2449 and RFC 3206.
        """
        self.assertEqual(
            (R.AUTH_FAILED.code, R.IN_USE.code, R.TEMPORARY_FAILURE.code),
            ("AUTH", "IN-USE", "SYS/TEMP"),
        )
        self.assertEqual(R.PERMANENT_FAILURE.code, "SYS/PERM")
        self.assertEqual(R.LOGIN_DELAY_CODE, "LOGIN-DELAY")

    def test_invalid(self) -> None:
        """
        A code with brackets or spaces, or text with CR or LF, is refused.
        """
        for code, text in [("A B", "x"), ("[AUTH]", "x"), ("", "x"), (None, "a\r\nb")]:
            self.assertRaises(ValueError, POP3Reply, False, code, text)

    def test_equality(self) -> None:
        """
        Replies are equal by value, and C{withText} keeps the code.
        """
        self.assertEqual(R.IN_USE, POP3Reply(False, "IN-USE", R.IN_USE.text))
        self.assertEqual(R.IN_USE.withText("busy").format(), b"-ERR [IN-USE] busy\r\n")
        self.assertEqual(len({R.OK, POP3Reply(True, None, "")}), 1)

    def test_multiline(self) -> None:
        """
        A multi-line response stuffs its lines and ends with a lone dot.
        """
        self.assertEqual(
            multiline(R.CAPABILITIES, [b"TOP", b".x"]),
            b"+OK Capability list follows\r\nTOP\r\n..x\r\n.\r\n",
        )
