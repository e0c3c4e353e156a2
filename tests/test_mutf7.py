# -*- test-case-name: tests.test_mutf7 -*-
"""
Tests for L{gomail_twisted.mutf7}: IMAP's modified UTF-7 as RFC 3501 5.1.3
defines it, canonical forms only.
"""

from __future__ import annotations

import codecs
import re

import twisted.mail.imap4  # noqa: F401  (registers the imap4-utf-7 codec)
from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from gomail_twisted.mutf7 import decode, encode

# Any text without surrogates: the code points a str may hold and UTF-16
# can carry.
_TEXT = st.text(st.characters(exclude_categories=("Cs",)))

# The examples of RFC 3501 5.1.3 and RFC 2152, and the edges of the form.
_GOOD = [
    ("", ""),
    ("INBOX", "INBOX"),
    ("~peter/mail/\u53f0\u5317/\u65e5\u672c\u8a9e", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
    ("Entw\u00fcrfe", "Entw&APw-rfe"),
    ("&", "&-"),
    ("&&", "&-&-"),
    ("Tom & Jerry", "Tom &- Jerry"),
    ("\u263a", "&Jjo-"),
    ("\u263a!", "&Jjo-!"),
    ("\u263a-", "&Jjo--"),
    ("\u00e9&", "&AOk-&-"),
    ("&\u00e9", "&-&AOk-"),
    ("\u00e9\u00e9", "&AOkA6Q-"),
    ("\u00e9\u00e9\u00e9", "&AOkA6QDp-"),
    ("\U0001f600", "&2D3eAA-"),
    ("\x00", "&AAA-"),
    ("\t\x7f", "&AAkAfw-"),
    (" ~", " ~"),
    ("+,/", "+,/"),
]

# Malformed or non-canonical encodings, each with why it is refused.
_BAD = [
    ("&", "unterminated shift"),
    ("&Jjo", "unterminated shift"),
    ("a&AOk", "unterminated shift"),
    ("&Jjo!-", "character outside the alphabet"),
    ("&Jj/-", "/ is not in the modified alphabet"),
    ("&Jjo=-", "padding"),
    ("&AOk=-", "padding"),
    ("&J-", "one character is a partial unit"),
    ("&Jj-", "two characters are a partial unit"),
    ("&AOkA-", "four characters are a unit and a half"),
    ("&AOkA6-", "five characters are a unit and a half"),
    ("&AOkA6QD-", "seven characters leave a spare character"),
    ("&AOl-", "non-zero spare bits"),
    ("&AOkA6R-", "non-zero spare bits"),
    ("&AGE-", "encodes printable a"),
    ("&ACA-", "encodes the space"),
    ("&AH4-", "encodes ~"),
    ("&ACY-", "encodes &, whose form is &-"),
    ("&AOkAYQ-", "encodes a printable character beside another"),
    ("&AOk-&AOk-", "adjacent shifts not merged"),
    ("&Jjo-&AOk-x", "adjacent shifts not merged"),
    ("&2D0-", "lone high surrogate"),
    ("&3gA-", "lone low surrogate"),
    ("&2D3YPQ-", "two high surrogates"),
    ("\u00e9", "non-ASCII input"),
    ("Entw\u00fcrfe", "non-ASCII input"),
    ("a\x00b", "NUL stands for itself"),
    ("a\tb", "a control character stands for itself"),
    ("a\x7fb", "DEL stands for itself"),
    ("\ud800", "lone surrogate in the input"),
]


def _viaUTF7(text: str) -> str:
    """
    Build the modified UTF-7 form of C{text} from Python's UTF-7 codec
    (RFC 2152): each run of characters past US-ASCII encoded alone, C{+}
    read as C{&} and C{/} as C{,}.

    @param text: text whose characters are printable US-ASCII or past it.
    @return: the expected modified UTF-7.
    """
    out = []
    for direct, run in re.findall(r"([\x20-\x7e])|([^\x20-\x7e]+)", text):
        if direct:
            out.append("&-" if direct == "&" else direct)
        else:
            utf7 = codecs.encode(run, "utf-7").decode("ascii")
            assert utf7.startswith("+") and utf7.endswith("-"), utf7
            out.append("&" + utf7[1:-1].replace("/", ",") + "-")
    return "".join(out)


class EncodeTests(SynchronousTestCase):
    """
    L{encode} gives the canonical modified UTF-7 form of any text.
    """

    def test_examples(self) -> None:
        """
        Each name of the table encodes to its form.
        """
        for name, encoded in _GOOD:
            with self.subTest(name=name):
                self.assertEqual(encode(name), encoded)

    def test_loneSurrogate(self) -> None:
        """
        A lone surrogate has no UTF-16 form, so it cannot be encoded.
        """
        for name in ["\ud800", "a\udc00", "\udc00\ud800"]:
            with self.subTest(name=name):
                self.assertRaises(ValueError, encode, name)

    @given(_TEXT)
    def test_printableASCII(self, name: str) -> None:
        """
        The encoded form holds printable US-ASCII only.
        """
        self.assertTrue(re.fullmatch(r"[\x20-\x7e]*", encode(name)))

    @given(st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E)))
    def test_asciiUnchangedButAmpersand(self, name: str) -> None:
        """
        Printable US-ASCII stands for itself, C{&} as C{&-}.
        """
        self.assertEqual(encode(name), name.replace("&", "&-"))

    @given(
        st.text(
            st.one_of(
                st.characters(min_codepoint=0x20, max_codepoint=0x7E),
                st.characters(min_codepoint=0x80, exclude_categories=("Cs",)),
            )
        )
    )
    def test_agreesWithUTF7(self, name: str) -> None:
        """
        The form is Python's UTF-7 with C{&} for C{+} and C{,} for C{/}.
        """
        self.assertEqual(encode(name), _viaUTF7(name))

    @given(st.text(st.characters(min_codepoint=0x20, exclude_categories=("Cs",))))
    def test_agreesWithTwisted(self, name: str) -> None:
        """
        The form is the one C{twisted.mail.imap4}'s codec gives (for text
        without C0 controls, which that codec mangles: it encodes a line
        feed as C{&-}).
        """
        self.assertEqual(encode(name), codecs.encode(name, "imap4-utf-7").decode())


class DecodeTests(SynchronousTestCase):
    """
    L{decode} reads canonical modified UTF-7 and refuses anything else.
    """

    def test_examples(self) -> None:
        """
        Each form of the table decodes to its name.
        """
        for name, encoded in _GOOD:
            with self.subTest(encoded=encoded):
                self.assertEqual(decode(encoded), name)

    def test_malformed(self) -> None:
        """
        Each malformed or non-canonical form of the table is refused.
        """
        for encoded, why in _BAD:
            with self.subTest(encoded=encoded, why=why):
                self.assertRaises(ValueError, decode, encoded)

    def test_nonCanonicalAcceptedByTwisted(self) -> None:
        """
        The forms Twisted's lenient codec reads but we refuse are refused
        here, so two spellings never name one mailbox.
        """
        lenient = ["&AGE-", "&AOk-&AOk-"]
        for encoded in lenient:
            with self.subTest(encoded=encoded):
                codecs.decode(encoded.encode("ascii"), "imap4-utf-7")
                self.assertRaises(ValueError, decode, encoded)

    @given(_TEXT)
    def test_roundTrip(self, name: str) -> None:
        """
        Decoding the encoded form gives the name back.
        """
        self.assertEqual(decode(encode(name)), name)

    @given(st.text(st.sampled_from("&-AOkZQ6DpJjo2D3eAa,+ ")))
    def test_onlyCanonical(self, encoded: str) -> None:
        """
        Whatever decodes is the one form L{encode} gives for its name.
        """
        try:
            name = decode(encoded)
        except ValueError:
            return
        self.assertEqual(encode(name), encoded)
