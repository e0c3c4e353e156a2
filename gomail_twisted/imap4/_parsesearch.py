# -*- test-case-name: tests.test_imap4_parse -*-
"""
The arguments of SEARCH (RFC 3501 6.4.4, grammar in 9), with CONDSTORE's
C{MODSEQ} key (RFC 7162 3.1.5), parsed into L{SearchKey} values.

Recursion is bounded: every parenthesised list, C{NOT} and C{OR} is one
level, and a key deeper than L{MAX_DEPTH} levels is refused before the
parser goes down into it, so no client can exhaust the stack of the parser
or of whatever walks the keys after it.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable

from gomail_twisted.imap4._commands import (
    Search,
    SearchAll,
    SearchAnd,
    SearchDate,
    SearchFlag,
    SearchHeader,
    SearchKey,
    SearchModSeq,
    SearchNot,
    SearchOr,
    SearchRecent,
    SearchSequence,
    SearchSize,
    SearchText,
)
from gomail_twisted.imap4._parsereader import (
    ATOM,
    DIGITS,
    DQUOTE,
    LBRACE,
    LPAREN,
    MAX_MODSEQ,
    RPAREN,
    SP,
    Reader,
    show,
)
from gomail_twisted.maildir.interfaces import (
    ANSWERED,
    DELETED,
    DRAFT,
    FLAGGED,
    SEEN,
)

__all__ = ["MAX_DEPTH", "MONTHS", "date", "searchArguments"]

#: The deepest nesting of parenthesised lists, C{NOT} and C{OR} accepted.
MAX_DEPTH = 64

#: The charsets SEARCH takes (RFC 3501 6.4.4: US-ASCII and UTF-8 must be),
#: with the codecs that decode their strings.
_CHARSETS = {b"US-ASCII": "ascii", b"UTF-8": "utf-8"}
_BADCHARSET = "BADCHARSET (US-ASCII UTF-8)"

#: The months of C{date-month} (RFC 3501 9), in upper case.
MONTHS = {
    name.encode("ascii"): number
    for number, name in enumerate(
        (
            "JAN",
            "FEB",
            "MAR",
            "APR",
            "MAY",
            "JUN",
            "JUL",
            "AUG",
            "SEP",
            "OCT",
            "NOV",
            "DEC",
        ),
        start=1,
    )
}

# Keys without arguments.
_SIMPLE: dict[bytes, SearchKey] = {
    b"ALL": SearchAll(),
    b"ANSWERED": SearchFlag(ANSWERED, True),
    b"DELETED": SearchFlag(DELETED, True),
    b"DRAFT": SearchFlag(DRAFT, True),
    b"FLAGGED": SearchFlag(FLAGGED, True),
    b"SEEN": SearchFlag(SEEN, True),
    b"UNANSWERED": SearchFlag(ANSWERED, False),
    b"UNDELETED": SearchFlag(DELETED, False),
    b"UNDRAFT": SearchFlag(DRAFT, False),
    b"UNFLAGGED": SearchFlag(FLAGGED, False),
    b"UNSEEN": SearchFlag(SEEN, False),
    b"RECENT": SearchRecent(True),
    b"OLD": SearchRecent(False),
    b"NEW": SearchAnd((SearchRecent(True), SearchFlag(SEEN, False))),
}

# FROM, TO, ... are HEADER of these fields.
_HEADERS = {
    b"BCC": "Bcc",
    b"CC": "Cc",
    b"FROM": "From",
    b"SUBJECT": "Subject",
    b"TO": "To",
}

_DATES = {
    b"BEFORE": (False, "before"),
    b"ON": (False, "on"),
    b"SINCE": (False, "since"),
    b"SENTBEFORE": (True, "before"),
    b"SENTON": (True, "on"),
    b"SENTSINCE": (True, "since"),
}

_ENTRY_TYPES = frozenset({b"PRIV", b"SHARED", b"ALL"})


def date(reader: Reader) -> datetime.date:
    """
    A C{date} (RFC 3501 9): C{d-Mon-yyyy}, the day in one or two digits,
    the month's name in any case, bare or in double quotes.

    @param reader: the position.
    @return: the date.
    @raise ParseError: no valid date comes next.
    """
    start = reader.pos
    quoted = reader.skip(DQUOTE)
    day = reader.match(DIGITS)
    month = year = None
    if day is not None and len(day) <= 2 and reader.skip(0x2D):
        month = MONTHS.get(reader.line[reader.pos : reader.pos + 3].upper())
        reader.pos += 3
        if month is not None and reader.skip(0x2D):
            year = reader.match(DIGITS)
    valid = (
        day is not None
        and month is not None
        and year is not None
        and len(year) == 4
        and (not quoted or reader.skip(DQUOTE))
        and reader.delimited()
    )
    if valid:
        assert day is not None and year is not None and month is not None
        try:
            return datetime.date(int(year), month, int(day))
        except ValueError:
            pass
    reader.pos = start
    reader.missingOr("date")


class _SearchParser:
    """
    The keys of one SEARCH command, with their strings decoded by its
    charset.

    @ivar reader: the position.
    @ivar codec: the Python codec of the charset.
    @ivar charset: the charset's name, for error texts.
    """

    __slots__ = ("charset", "codec", "reader")

    def __init__(self, reader: Reader, charset: str) -> None:
        self.reader = reader
        self.charset = charset
        self.codec = _CHARSETS[charset.encode("ascii")]

    def text(self, what: str) -> str:
        """
        @param what: the argument's name, for the error text.
        @return: an C{astring} decoded by the charset.
        @raise ParseError: none comes next, or it is not in the charset.
        """
        raw = self.reader.astring(what)
        try:
            return raw.decode(self.codec)
        except UnicodeDecodeError:
            self.reader.fail(f"{what.capitalize()} is not valid {self.charset}")

    def keys(self, depth: int) -> SearchKey:
        """
        Keys side by side, separated by single spaces.

        @param depth: the nesting level they stand at.
        @return: the key, or a L{SearchAnd} of several.
        """
        reader = self.reader
        keys = [self.key(depth)]
        while reader.skip(SP):
            keys.append(self.key(depth))
        return keys[0] if len(keys) == 1 else SearchAnd(tuple(keys))

    def nested(self, depth: int) -> None:
        """
        Check that one more level of nesting is allowed.

        @param depth: the level of the key being parsed.
        @raise ParseError: the level is past L{MAX_DEPTH}.
        """
        if depth >= MAX_DEPTH:
            self.reader.fail("Too deeply nested")

    def key(self, depth: int) -> SearchKey:
        """
        One C{search-key} (RFC 3501 9).

        @param depth: the nesting level it stands at.
        @return: the key.
        @raise ParseError: no valid key comes next.
        """
        reader = self.reader
        octet = reader.peek()
        if octet == LPAREN:
            self.nested(depth)
            reader.pos += 1
            keys = self.keys(depth + 1)
            reader.expect(RPAREN, '")"')
            return keys
        if 0x30 <= octet <= 0x39 or octet == 0x2A:
            return SearchSequence(reader.sequenceSet(), False)
        word = reader.match(ATOM)
        if word is None:
            reader.missingOr("search key")
        name = word.upper()
        simple = _SIMPLE.get(name)
        if simple is not None:
            return simple
        parse = _KEYS.get(name)
        if parse is None:
            reader.fail(f"Unknown search key {show(word)}")
        reader.space(f"argument of {name.decode('ascii')}")
        return parse(self, name, depth)

    def header(self, name: bytes, depth: int) -> SearchKey:
        """C{FROM}, C{TO}, C{CC}, C{BCC}, C{SUBJECT}."""
        return SearchHeader(_HEADERS[name], self.text("search string"))

    def headerField(self, name: bytes, depth: int) -> SearchKey:
        """C{HEADER field-name string}."""
        field = self.text("header field name")
        self.reader.space("search string")
        return SearchHeader(field, self.text("search string"))

    def body(self, name: bytes, depth: int) -> SearchKey:
        """C{BODY} and C{TEXT}."""
        return SearchText(self.text("search string"), name == b"TEXT")

    def keyword(self, name: bytes, depth: int) -> SearchKey:
        """C{KEYWORD} and C{UNKEYWORD}: C{flag-keyword} is an atom."""
        flag = self.reader.atom("keyword").decode("ascii")
        return SearchFlag(flag, name == b"KEYWORD")

    def date(self, name: bytes, depth: int) -> SearchKey:
        """C{BEFORE}, C{ON}, C{SINCE} and their C{SENT} forms."""
        sent, comparison = _DATES[name]
        return SearchDate(sent, comparison, date(self.reader))

    def size(self, name: bytes, depth: int) -> SearchKey:
        """C{LARGER} and C{SMALLER}."""
        return SearchSize(name == b"LARGER", self.reader.number("size"))

    def uid(self, name: bytes, depth: int) -> SearchKey:
        """C{UID sequence-set}."""
        return SearchSequence(self.reader.sequenceSet(), True)

    def not_(self, name: bytes, depth: int) -> SearchKey:
        """C{NOT key}."""
        self.nested(depth)
        return SearchNot(self.key(depth + 1))

    def or_(self, name: bytes, depth: int) -> SearchKey:
        """C{OR key key}."""
        self.nested(depth)
        left = self.key(depth + 1)
        self.reader.space("second key of OR")
        return SearchOr(left, self.key(depth + 1))

    def modSeq(self, name: bytes, depth: int) -> SearchKey:
        """
        C{MODSEQ [entry-name entry-type-req] mod-sequence-valzer} (RFC
        7162 3.1.5); the metadata entry is checked and ignored, since
        this server keeps one mod-sequence per message.
        """
        reader = self.reader
        octet = reader.peek()
        if octet == DQUOTE or octet == LBRACE:
            reader.string("entry name")
            reader.space("entry type")
            entryType = reader.atom("entry type")
            if entryType.upper() not in _ENTRY_TYPES:
                reader.fail(f"Invalid entry type {show(entryType)}")
            reader.space("mod-sequence")
        return SearchModSeq(reader.number("mod-sequence", MAX_MODSEQ))


_KEYS: dict[bytes, Callable[[_SearchParser, bytes, int], SearchKey]] = {
    **dict.fromkeys(_HEADERS, _SearchParser.header),
    **dict.fromkeys(_DATES, _SearchParser.date),
    b"HEADER": _SearchParser.headerField,
    b"BODY": _SearchParser.body,
    b"TEXT": _SearchParser.body,
    b"KEYWORD": _SearchParser.keyword,
    b"UNKEYWORD": _SearchParser.keyword,
    b"LARGER": _SearchParser.size,
    b"SMALLER": _SearchParser.size,
    b"UID": _SearchParser.uid,
    b"NOT": _SearchParser.not_,
    b"OR": _SearchParser.or_,
    b"MODSEQ": _SearchParser.modSeq,
}


def searchArguments(reader: Reader) -> Search:
    """
    The arguments of SEARCH (RFC 3501 6.4.4): C{[CHARSET name]} and one
    or more keys, after the command's name.

    Without C{CHARSET}, strings must be UTF-8, which US-ASCII is too and
    which clients send anyway.

    @param reader: the position, before the space after the name.
    @return: the arguments.
    @raise ParseError: they are malformed; with the C{BADCHARSET} code when
        the charset is neither US-ASCII nor UTF-8.
    """
    reader.space("search key")
    charset = None
    found = ATOM.match(reader.line, reader.pos)
    if found is not None and found.group().upper() == b"CHARSET":
        reader.pos = found.end()
        reader.space("charset")
        name = reader.astring("charset")
        if name.upper() not in _CHARSETS:
            reader.fail(f"Unsupported charset {show(name)}", _BADCHARSET)
        charset = name.upper().decode("ascii")
        reader.space("search key")
    return Search(_SearchParser(reader, charset or "UTF-8").keys(0), charset)
