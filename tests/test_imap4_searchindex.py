# -*- test-case-name: tests.test_imap4_searchindex -*-
"""
Tests for L{gomail_twisted.imap4._searchindex}: what the store keeps of
each message for SEARCH, and that evaluating a key on it decides as
reading the message does, or not at all.
"""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from gomail_twisted.imap4 import _searchindex
from gomail_twisted.imap4._commands import SearchAnd, SearchHeader, SearchOr, SearchText
from gomail_twisted.imap4._search import SearchContext, compileSearch
from gomail_twisted.imap4._searchindex import (
    CACHED_FIELDS,
    HEADER_LIMIT,
    MAX_BITS,
    MAX_FIELD,
    MAX_INDEXED,
    MAX_NAMES,
    CachedFields,
    Needle,
    TextIndex,
    searchFields,
    textIndex,
)
from gomail_twisted.imap4._searchtext import SearchedMessage
from gomail_twisted.maildir.interfaces import MessageInfo
from tests.test_imap4_search import (
    ALTERNATIVE,
    FORWARD,
    MESSAGES,
    MIXED,
    PLAIN,
    UNDATED,
    _fields,
    _index,
    _message,
    _singleParts,
)


def _fieldValues(raw: bytes, name: str) -> list[str] | None:
    """
    @return: a field's values as a search of the header block reads them.
    """
    info = MessageInfo(1, frozenset(), len(raw), 0.0, 1)
    header = raw[:HEADER_LIMIT]
    return SearchedMessage(info, 1, header, None, 0).values(name)


class CachedFieldsTests(SynchronousTestCase):
    """
    The store's record of a message's header fields (L{searchFields},
    L{CachedFields}) gives the values a search of the header block reads,
    or says it does not know.
    """

    def test_recordedValues(self) -> None:
        """
        For each message of the table, every kept field has the values the
        header gives (none when absent), another field present is not
        known, and a field absent is known absent.
        """
        for _, raw in MESSAGES:
            fields = _fields(raw)
            for name in CACHED_FIELDS:
                self.assertEqual(
                    (name, fields.values(name)), (name, _fieldValues(raw, name))
                )
                self.assertEqual(fields.has(name), bool(_fieldValues(raw, name)))
            self.assertEqual(fields.values("x-absent"), [])
            self.assertIs(fields.has("x-absent"), False)
        undated = _fields(UNDATED)
        self.assertEqual(
            undated.values("to"), ["alice@example.com,\tcarol@example.org"]
        )
        self.assertEqual(undated.values("date"), [])
        self.assertIsNone(undated.values("received"))
        self.assertIs(undated.has("received"), True)
        self.assertIs(undated.has("x-empty"), True)

    def test_cutValueIsNotKnown(self) -> None:
        """
        A kept field whose values pass L{MAX_FIELD} octets is recorded by
        name only: its values are read from the message.
        """
        long = "word " * (MAX_FIELD // 5) + "needle"
        raw = _message(f"Subject: {long}", "To: bob@example.com", "", "body")
        fields = _fields(raw)
        self.assertIsNone(fields.values("subject"))
        self.assertIs(fields.has("subject"), True)
        self.assertEqual(fields.values("to"), ["bob@example.com"])
        info = MessageInfo(1, frozenset(), len(raw), 0.0, 1)
        matcher = compileSearch(SearchHeader("Subject", "needle"), SearchContext(1, 1))
        self.assertIsNone(matcher.evaluate(info, 1, fields=fields))
        self.assertIs(matcher.evaluate(info, 1, header=raw), True)
        # Two occurrences count together.
        half = "x" * (MAX_FIELD // 2)
        twice = _message(f"Cc: {half}", f"Cc: {half}", "", "body")
        self.assertIsNone(_fields(twice).values("cc"))
        fits = _message(f"Cc: {half[:-1]}", "", "body")
        self.assertEqual(_fields(fits).values("cc"), [half[:-1]])

    def test_separatorsAreNotRecorded(self) -> None:
        """
        A value that decodes to one of the record's separators is not
        kept, nor is a name holding one; a name asked for that holds one
        is not known.
        """
        raw = _message(
            "Subject: =?utf-8?q?a=1Eb?=", "X-Odd\x1fName: v", "From: a@b", "", "x"
        )
        fields = _fields(raw)
        self.assertIsNone(fields.values("subject"))
        self.assertEqual(fields.values("from"), ["a@b"])
        self.assertIsNone(fields.values("x-odd\x1fname"))
        self.assertIsNone(fields.has("x-odd\x1fname"))
        self.assertIsNone(fields.values("x-other"))
        self.assertEqual(fields.values("to"), [])
        self.assertIsNone(_fields(PLAIN).values("from\x1falice"))

    def test_manyNames(self) -> None:
        """
        Past L{MAX_NAMES} octets of other fields' names, the record says
        its list is cut: other names are then not known, kept fields are.
        """
        names = [f"X-Field-{n:04d}: v" for n in range(MAX_NAMES // 10)]
        raw = _message(*names, "Subject: hi", "X-Last: v", "", "x")
        fields = _fields(raw)
        self.assertIs(fields.has("x-field-0000"), True)
        self.assertIsNone(fields.values("x-field-0000"))
        self.assertIsNone(fields.has("x-last"))
        self.assertIsNone(fields.has("x-absent"))
        self.assertEqual(fields.values("subject"), ["hi"])
        self.assertEqual(fields.values("cc"), [])
        self.assertIs(fields.has("cc"), False)
        self.assertLessEqual(len(searchFields(raw)), MAX_NAMES + 100)

    def test_emptyHeader(self) -> None:
        """
        A message without fields has an empty record, which knows every
        field is absent.
        """
        self.assertEqual(searchFields(_message("", "Subject: no")), b"")
        fields = CachedFields(b"")
        self.assertEqual(fields.values("subject"), [])
        self.assertIs(fields.has("x-anything"), False)
        self.assertIs(CachedFields(b"\x1e").has(""), True)

    def test_headerLimit(self) -> None:
        """
        A field past the first L{HEADER_LIMIT} octets is not in the
        record, as a search of the header block does not see it.
        """
        filler = [f"X-Filler: {'f' * 990}" for _ in range(HEADER_LIMIT // 1000 + 1)]
        raw = _message(*filler, "Subject: late", "", "x")
        self.assertEqual(_fields(raw).values("subject"), [])
        self.assertEqual(_fieldValues(raw, "subject"), [])

    def test_notUTF8(self) -> None:
        """
        A record that is not UTF-8 is refused.
        """
        self.assertRaises(ValueError, CachedFields, b"\x1efrom\x1f\xff")

    def test_surrogates(self) -> None:
        """
        A value that decodes to a lone surrogate (a charset of Python's
        own) is kept as it is.
        """
        raw = _message("Subject: =?raw-unicode-escape?q?=5Cud800x?=", "", "x")
        self.assertEqual(_fields(raw).values("subject"), _fieldValues(raw, "subject"))
        self.assertEqual(_fieldValues(raw, "subject"), ["\ud800x"])

    @given(
        st.lists(
            st.tuples(
                st.sampled_from(
                    ["From", "to", "SUBJECT", "Date", "X-A", "x-b", "Received", "\x1e"]
                ),
                st.lists(
                    st.sampled_from(["a", "\u00e9", " ", "=?utf-8?q?=1F?=", "\x1d"]),
                    max_size=6,
                ).map("".join),
                st.booleans(),
            ),
            max_size=8,
        )
    )
    @settings(max_examples=200, deadline=None)
    def test_recordAgreesWithHeader(self, lines: list[tuple[str, str, bool]]) -> None:
        """
        Whatever the fields, the record gives a field's values and
        presence as the header block does, or says it does not know; it
        always knows the kept fields' presence.
        """
        raw = _message(
            *(
                f"{name}: {value}" if not folded else f"{name}:\r\n {value}"
                for name, value, folded in lines
            ),
            "",
            "body",
        )
        fields = _fields(raw)
        for name in ["from", "to", "subject", "date", "x-a", "x-b", "received", "cc"]:
            values = _fieldValues(raw, name)
            self.assertIn(fields.values(name), (None, values))
            self.assertIn(fields.has(name), (None, bool(values)))
            if name in CACHED_FIELDS:
                self.assertEqual(fields.has(name), bool(values))


def _mayHold(raw: bytes, text: str, headers: bool = False) -> bool:
    """
    @return: whether a message's text index may hold a string.
    """
    return _index(raw).mayHold(Needle(text.casefold()), headers)


class TextIndexTests(SynchronousTestCase):
    """
    The store's index of a message's text (L{textIndex}, L{TextIndex})
    says which strings its text surely lacks.
    """

    def test_bodyAndHeaders(self) -> None:
        """
        A string in the body's text may be there for BODY and TEXT; one in
        a header block only for TEXT; one nowhere is absent for both.
        """
        self.assertTrue(_mayHold(PLAIN, "figures"))
        self.assertTrue(_mayHold(PLAIN, "figures", True))
        self.assertFalse(_mayHold(PLAIN, "quarterly"))
        self.assertTrue(_mayHold(PLAIN, "quarterly", True))
        self.assertFalse(_mayHold(PLAIN, "xylophone", True))
        # Decoded text, and the headers of parts and attached messages.
        self.assertTrue(_mayHold(ALTERNATIVE, "café crème"))
        self.assertFalse(_mayHold(ALTERNATIVE, "caf=e9"))
        self.assertTrue(_mayHold(MIXED, "magic word"))
        self.assertTrue(_mayHold(MIXED, "secret.bin", True))
        self.assertFalse(_mayHold(MIXED, "secret.bin"))
        self.assertTrue(_mayHold(FORWARD, "inner subject", True))

    def test_shortStrings(self) -> None:
        """
        A string of less than three octets may be anywhere.
        """
        self.assertTrue(_mayHold(PLAIN, "z"))
        self.assertTrue(_mayHold(PLAIN, "zq"))
        self.assertTrue(_mayHold(_message("", ""), "q"))
        self.assertFalse(_mayHold(_message("", ""), "zqj"))

    def test_emptyText(self) -> None:
        """
        A message without text lacks every longer string.
        """
        raw = _message("Content-Type: image/png", "", "abc")
        self.assertFalse(_mayHold(raw, "abc"))
        self.assertTrue(_mayHold(raw, "image/png", True))

    def test_tooLong(self) -> None:
        """
        A text longer than L{MAX_INDEXED} octets has no map: any string
        may be in it.
        """
        raw = _message("Subject: long", "", "x" * MAX_INDEXED, "end")
        record = textIndex(raw)
        self.assertEqual(record[0], 0)
        self.assertTrue(_mayHold(raw, "absent"))

    def test_tooVaried(self) -> None:
        """
        A text with more distinct pairs of octets than half L{MAX_BITS}
        has no map either.
        """
        rng = random.Random(7)
        text = "".join(chr(rng.randrange(0x20, 0x7F)) for _ in range(100_000))
        self.assertGreater(len(_searchindex._pairs(text.encode())), MAX_BITS // 2)
        self.assertEqual(_searchindex._map(text), b"")

    def test_form(self) -> None:
        """
        An index is the body map's size as a power of two, then the two
        maps, each of 32 to 2,048 octets.
        """
        record = textIndex(PLAIN)
        size = 1 << record[0]
        self.assertIn(size, (32, 64, 128, 256, 512, 1024, 2048))
        self.assertIn(len(record) - 1 - size, (32, 64, 128, 256, 512, 1024, 2048))

    def test_damaged(self) -> None:
        """
        What is not an index is refused.
        """
        for record in [
            b"",
            b"\x05" + b"\0" * 31,
            b"\x05" + b"\0" * 32 + b"\0" * 33,
            b"\x04" + b"\0" * 16,
            b"\x0c" + b"\0" * 4096,
            b"\xff",
        ]:
            self.assertRaises(ValueError, TextIndex, record)
        TextIndex(b"\x05" + b"\0" * 32)
        TextIndex(b"\x00")

    def test_otherBound(self) -> None:
        """
        A search with another bound on text than the index's does not use
        it.
        """
        info = MESSAGES[0][0]
        key = SearchText("xylophone", False)
        default = compileSearch(key, SearchContext(1, 10))
        self.assertTrue(default.readsTextIndex)
        self.assertIs(default.evaluate(info, 1, textIndex=_index(PLAIN)), False)
        small = compileSearch(key, SearchContext(1, 10, maxText=50))
        self.assertFalse(small.readsTextIndex)
        self.assertIsNone(small.evaluate(info, 1, textIndex=_index(PLAIN)))

    def test_withFields(self) -> None:
        """
        A key of header fields and text is decided with both records.
        """
        info = MESSAGES[0][0]
        context = SearchContext(1, 10)
        both = SearchAnd((SearchHeader("From", "alice"), SearchText("zzzz", False)))
        matcher = compileSearch(both, context)
        self.assertIsNone(matcher.evaluate(info, 1, fields=_fields(PLAIN)))
        self.assertIs(
            matcher.evaluate(info, 1, fields=_fields(PLAIN), textIndex=_index(PLAIN)),
            False,
        )
        either = SearchOr(SearchHeader("From", "bob"), SearchText("figures", False))
        matcher = compileSearch(either, context)
        self.assertIsNone(
            matcher.evaluate(info, 1, fields=_fields(PLAIN), textIndex=_index(PLAIN))
        )

    @given(
        st.text(st.sampled_from("ab\u00e9\u4e00 \n\ud800"), max_size=60),
        st.text(st.sampled_from("ab\u00e9\u4e00 \n\ud800"), max_size=6),
        st.integers(0, 60),
    )
    @settings(max_examples=300, deadline=None)
    def test_substringsMayBeThere(self, text: str, other: str, start: int) -> None:
        """
        Every substring of a text is in its map; so is any string the map
        says is absent, truly absent.
        """
        bitmap = _searchindex._map(text)
        self.assertNotEqual(bitmap, b"")
        for part in [text[start : start + 5], other]:
            found = Needle(part).inMap(bitmap)
            if part in text:
                self.assertTrue(found)

    @given(_singleParts(), st.integers(0, 40), st.integers(1, 8), st.booleans())
    @settings(max_examples=200, deadline=None)
    def test_indexAgreesWithMessage(
        self, raw: bytes, start: int, length: int, headers: bool
    ) -> None:
        """
        Whatever the message, a search of text decided with its index
        decides as a search of the whole message does.
        """
        raw = raw + b"\r\n" + FORWARD
        info = MessageInfo(1, frozenset(), len(raw), 0.0, 1)
        searched = SearchedMessage(info, 1, None, raw, 1 << 30).texts()
        assert searched is not None
        index = _index(raw)
        for text in [searched.body, searched.headers, "zqj"]:
            wanted = text[start : start + length]
            matcher = compileSearch(SearchText(wanted, headers), SearchContext(1, 1))
            indexed = matcher.evaluate(info, 1, textIndex=index)
            self.assertIn(indexed, (None, matcher.evaluate(info, 1, full=raw)))
