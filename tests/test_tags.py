# -*- test-case-name: tests.test_tags -*-
"""
Tests for L{gomail_twisted.parseTags}, the tag=value list parser of
RFC 6376 section 3.2.
"""

from __future__ import annotations

import operator

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

import gomail_twisted
from gomail_twisted.dkim import TagSyntaxError, parseTags

VALID: list[tuple[str | bytes, list[tuple[str, str]]]] = [
    ("v=1", [("v", "1")]),
    ("v=1;", [("v", "1")]),
    ("v=1; a=rsa-sha256", [("v", "1"), ("a", "rsa-sha256")]),
    ("  v = 1 ;\ta\t=\tb ;  ", [("v", "1"), ("a", "b")]),
    ("v=1;\r\n\ta=b", [("v", "1"), ("a", "b")]),
    ("n=", [("n", "")]),
    ("n= ; p=", [("n", ""), ("p", "")]),
    ("h=from : to", [("h", "from : to")]),
    ("b=abc\r\n def", [("b", "abc\r\n def")]),
    ("k_1=x=y", [("k_1", "x=y")]),
    (b"v=DKIM1; p=abc", [("v", "DKIM1"), ("p", "abc")]),
    ("A=1; a=2", [("A", "1"), ("a", "2")]),
]

INVALID: list[tuple[str, str | bytes]] = [
    ("empty", ""),
    ("only whitespace", "   "),
    ("only semicolon", ";"),
    ("empty tag-spec", "a=1;;b=2"),
    ("no equals", "a=1; b"),
    ("no name", "=1"),
    ("name starting with a digit", "1a=1"),
    ("name with a dash", "a-b=1"),
    ("space inside a name", "a b=1"),
    ("duplicate", "a=1; b=2; a=3"),
    ("non-ASCII text", "a=caf\u00e9"),
    ("non-ASCII bytes", b"a=caf\xc3\xa9"),
    ("control character", "a=b\x00c"),
    ("DEL", "a=b\x7f"),
    ("bare LF", "a=1;\nb=2"),
    ("CRLF without whitespace", "a=1;\r\nb=2"),
    ("bare CR", "a=1;\rb=2"),
]


class ParseTagsTests(SynchronousTestCase):
    """
    Tables of valid and invalid tag lists.
    """

    def test_reexported(self) -> None:
        """
        The parser is public at the package top.
        """
        self.assertIs(gomail_twisted.parseTags, parseTags)
        self.assertIn("parseTags", gomail_twisted.__all__)

    def test_validLists(self) -> None:
        """
        Each valid list parses to its pairs, in order, and to a mapping.
        """
        for text, pairs in VALID:
            with self.subTest(text=text):
                tags = parseTags(text)
                self.assertEqual(list(tags.pairs), pairs)
                self.assertEqual(dict(tags.mapping), dict(pairs))
                self.assertEqual(list(tags), [name for name, _ in pairs])
                self.assertEqual(len(tags), len(pairs))

    def test_invalidLists(self) -> None:
        """
        Each invalid list raises L{TagSyntaxError}, a L{ValueError}.
        """
        for description, text in INVALID:
            with self.subTest(description):
                self.assertRaises(TagSyntaxError, parseTags, text)
        self.assertTrue(issubclass(TagSyntaxError, ValueError))

    def test_duplicateNamed(self) -> None:
        """
        The error for a duplicate tag names the tag.
        """
        error = self.assertRaises(TagSyntaxError, parseTags, "s=a; s=b")
        self.assertIn("'s'", str(error))

    def test_namesAreCaseSensitive(self) -> None:
        """
        Tag names are compared case-sensitively (RFC 6376 3.2).
        """
        tags = parseTags("A=1; a=2")
        self.assertEqual((tags["A"], tags["a"]), ("1", "2"))
        self.assertIsNone(tags.get("b"))
        self.assertNotIn("b", tags)

    def test_mappingIsReadOnly(self) -> None:
        """
        The mapping of a parsed list cannot be changed.
        """
        tags = parseTags("a=1")
        self.assertRaises(TypeError, operator.setitem, tags.mapping, "a", "2")


_names = st.from_regex(r"\A[A-Za-z][A-Za-z0-9_]{0,5}\Z")
_values = st.from_regex(
    r"\A(?:[\x21-\x3a\x3c-\x7e]{1,6}(?: [\x21-\x3a\x3c-\x7e]{1,6})?)?\Z"
)
_spaces = st.sampled_from(["", " ", "\t", "  ", "\r\n ", " \r\n\t"])


class ParseTagsPropertyTests(SynchronousTestCase):
    """
    Properties of L{parseTags} over generated input.
    """

    @given(
        st.lists(
            st.tuples(_names, _values), min_size=1, max_size=8, unique_by=lambda p: p[0]
        ),
        st.data(),
    )
    def test_roundTrip(self, pairs: list[tuple[str, str]], data: st.DataObject) -> None:
        """
        A list formatted with any legal whitespace parses back to its pairs.
        """
        parts = []
        for name, value in pairs:
            a, b, c, d = (data.draw(_spaces) for _ in range(4))
            parts.append(f"{a}{name}{b}={c}{value}{d}")
        text = ";".join(parts) + data.draw(st.sampled_from(["", ";", "; "]))
        self.assertEqual(list(parseTags(text).pairs), pairs)

    @given(st.text(max_size=60) | st.binary(max_size=60))
    def test_anyInput(self, text: str | bytes) -> None:
        """
        Any input parses or raises L{TagSyntaxError}, never anything else,
        and what parses has no duplicate and only ASCII.
        """
        try:
            tags = parseTags(text)
        except TagSyntaxError:
            return
        names = [name for name, _ in tags.pairs]
        self.assertEqual(len(names), len(set(names)))
        for name, value in tags.pairs:
            self.assertTrue(name.isascii() and value.isascii())
            self.assertNotIn(";", value)
