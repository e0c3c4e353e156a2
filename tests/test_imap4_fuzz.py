# -*- test-case-name: tests.test_imap4_fuzz -*-
"""
Properties of the IMAP4 command parser (L{gomail_twisted.imap4._parse})
over generated input: whatever a client sends, the parser answers with a
command or a L{ParseError} whose text is safe to send back, and commands
generated from values parse back to those values.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from gomail_twisted import mutf7
from gomail_twisted.imap4._commands import (
    MAX_NUMBER,
    STAR,
    BodySection,
    Command,
    Fetch,
    FetchAttribute,
    FetchItem,
    Mailbox,
    ParseError,
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
    Select,
    SequenceSet,
    Store,
)
from gomail_twisted.imap4._parse import (
    announcedLiteral,
    appendMessageNext,
    parseCommand,
)
from gomail_twisted.maildir.interfaces import SYSTEM_FLAGS, FlagChange

_SETTINGS = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

_SAFE_TEXT = re.compile(r"[ -~]+")

# Pieces of commands, to get random input past the tag and the name.
_NAMES = [
    b"CAPABILITY",
    b"NOOP",
    b"LOGIN",
    b"AUTHENTICATE",
    b"SELECT",
    b"EXAMINE",
    b"CREATE",
    b"RENAME",
    b"LIST",
    b"LSUB",
    b"STATUS",
    b"APPEND",
    b"SEARCH",
    b"FETCH",
    b"STORE",
    b"COPY",
    b"MOVE",
    b"UID FETCH",
    b"UID SEARCH",
    b"UID STORE",
    b"UID EXPUNGE",
    b"ENABLE",
    b"ID",
]
_TOKENS = [
    b" ",
    b"(",
    b")",
    b'"',
    b"\\",
    b"NIL",
    b"INBOX",
    b"&AOk-",
    b"&",
    b"1",
    b"1:*",
    b"*",
    b"0",
    b",",
    b"4294967296",
    b"99999999999999999999",
    b"BODY[",
    b"BODY.PEEK[",
    b"]",
    b"<0.5>",
    b"HEADER.FIELDS",
    b"MIME",
    b"NOT",
    b"OR",
    b"SEEN",
    b"NEW",
    b"MODSEQ",
    b"CHARSET",
    b"UTF-8",
    b"1-Jan-2020",
    b'"1-Jan-2020 10:00:00 +0000"',
    b"FLAGS",
    b"+FLAGS.SILENT",
    b"\\Seen",
    b"\\Recent",
    b"(UNCHANGEDSINCE 5)",
    b"(CHANGEDSINCE 5)",
    b"RETURN",
    b"STATUS",
    b"SUBSCRIBED",
    b"\xc3\xa9",
    b"\xff",
    b"\x00",
    b"\r",
    b"{5}",
]


@dataclass(frozen=True)
class _Literal:
    """
    A literal in a generated command.
    """

    data: bytes


_Piece = bytes | _Literal


def _frame(pieces: list[_Piece], plus: bool) -> tuple[list[bytes], list[object]]:
    """
    Turn a command's pieces into the lines and literals the protocol
    would pass: each literal announced at the end of its line.
    """
    lines: list[bytes] = []
    literals: list[object] = []
    line = b""
    for piece in pieces:
        if isinstance(piece, _Literal):
            lines.append(line + b"{%d%s}" % (len(piece.data), b"+" if plus else b""))
            literals.append(piece.data)
            line = b""
        else:
            line += piece
    lines.append(line)
    return lines, literals


def _checkError(test: SynchronousTestCase, error: ParseError) -> None:
    """
    An error's text is printable ASCII and short; its tag a string or
    None.
    """
    test.assertRegex(error.text, _SAFE_TEXT)
    test.assertLess(len(error.text), 120)
    test.assertTrue(error.tag is None or isinstance(error.tag, str))


@st.composite
def _randomCommands(draw: st.DrawFn) -> tuple[list[bytes], list[object]]:
    """
    Lines and literals, mostly nonsense, some of it close to commands.
    """
    token = st.one_of(st.sampled_from(_TOKENS), st.binary(max_size=6))
    count = draw(st.integers(0, 3))
    lines: list[bytes] = []
    literals: list[object] = []
    for index in range(count + 1):
        text = b"".join(draw(st.lists(token, max_size=12)))
        if index == 0 and draw(st.booleans()):
            text = b"a1 " + draw(st.sampled_from(_NAMES)) + text
        if index < count:
            literal: object = draw(st.one_of(st.binary(max_size=12), st.builds(object)))
            size = len(literal) if isinstance(literal, bytes) else 5
            if draw(st.integers(0, 9)) == 0:
                size += 1
            text += b"{%d%s}" % (size, draw(st.sampled_from([b"", b"+"])))
            literals.append(literal)
        lines.append(text)
    return lines, literals


# Generated values and their wire form.


def _mixedCase(text: str) -> st.SearchStrategy[bytes]:
    return st.sampled_from(
        [text.upper().encode(), text.lower().encode(), text.title().encode()]
    )


_ATOM_TEXT = st.text(
    st.sampled_from("abcXYZ019-_.$:!&'+,/;<=>?@[^`|~"), min_size=1, max_size=8
)


@st.composite
def _string(draw: st.DrawFn, text: str) -> list[_Piece]:
    """
    Some wire form of a string: an atom when it is one, quoted when it
    may be, else a literal.
    """
    data = text.encode("utf-8")
    forms = [[_Literal(data)]]
    if re.fullmatch(r"[\x20-\x7e]*", text):
        quoted = data.replace(b"\\", b"\\\\").replace(b'"', b'\\"')
        forms.append([b'"' + quoted + b'"'])
        if re.fullmatch(r"[^(){ %*\"\\\]\x00-\x1f\x7f]+", text):
            forms.append([data])
    return draw(st.sampled_from(forms))


_STRING_TEXT = st.text(
    st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=12
)


@st.composite
def _sequenceSet(draw: st.DrawFn) -> tuple[bytes, SequenceSet]:
    number = st.one_of(st.just(STAR), st.integers(1, MAX_NUMBER))
    ranges = draw(st.lists(st.tuples(number, number), min_size=1, max_size=5))
    texts = []
    result = []
    for first, last in ranges:
        if first == last and draw(st.booleans()):
            texts.append(b"*" if first == STAR else b"%d" % first)
        else:
            texts.append(
                b":".join(b"*" if n == STAR else b"%d" % n for n in (first, last))
            )
        result.append((first, last))
    return b",".join(texts), SequenceSet(tuple(result))


_SIMPLE_KEYS: list[tuple[str, SearchKey]] = [
    ("ALL", SearchAll()),
    ("ANSWERED", SearchFlag("\\Answered", True)),
    ("DELETED", SearchFlag("\\Deleted", True)),
    ("DRAFT", SearchFlag("\\Draft", True)),
    ("FLAGGED", SearchFlag("\\Flagged", True)),
    ("SEEN", SearchFlag("\\Seen", True)),
    ("UNANSWERED", SearchFlag("\\Answered", False)),
    ("UNDELETED", SearchFlag("\\Deleted", False)),
    ("UNDRAFT", SearchFlag("\\Draft", False)),
    ("UNFLAGGED", SearchFlag("\\Flagged", False)),
    ("UNSEEN", SearchFlag("\\Seen", False)),
    ("RECENT", SearchRecent(True)),
    ("OLD", SearchRecent(False)),
    ("NEW", SearchAnd((SearchRecent(True), SearchFlag("\\Seen", False)))),
]
_HEADER_KEYS = {
    "FROM": "From",
    "TO": "To",
    "CC": "Cc",
    "BCC": "Bcc",
    "SUBJECT": "Subject",
}
_MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()

_Generated = tuple[list[_Piece], SearchKey]


@st.composite
def _leafKey(draw: st.DrawFn) -> _Generated:
    kind = draw(st.integers(0, 9))
    if kind == 0:
        name, key = draw(st.sampled_from(_SIMPLE_KEYS))
        return [draw(_mixedCase(name))], key
    if kind == 1:
        name = draw(st.sampled_from(sorted(_HEADER_KEYS)))
        text = draw(_STRING_TEXT)
        pieces = [draw(_mixedCase(name)), b" ", *draw(_string(text))]
        return pieces, SearchHeader(_HEADER_KEYS[name], text)
    if kind == 2:
        field = draw(_ATOM_TEXT)
        text = draw(_STRING_TEXT)
        pieces = [b"HEADER ", *draw(_string(field)), b" ", *draw(_string(text))]
        return pieces, SearchHeader(field, text)
    if kind == 3:
        name = draw(st.sampled_from(["BODY", "TEXT"]))
        text = draw(_STRING_TEXT)
        pieces = [draw(_mixedCase(name)), b" ", *draw(_string(text))]
        return pieces, SearchText(text, name == "TEXT")
    if kind == 4:
        present = draw(st.booleans())
        keyword = draw(_ATOM_TEXT)
        name = b"KEYWORD " if present else b"UNKEYWORD "
        return [name + keyword.encode()], SearchFlag(keyword, present)
    if kind == 5:
        name = draw(
            st.sampled_from(
                ["BEFORE", "ON", "SINCE", "SENTBEFORE", "SENTON", "SENTSINCE"]
            )
        )
        date = draw(st.dates())
        month = draw(_mixedCase(_MONTHS[date.month - 1]))
        text = b"%d-%s-%04d" % (date.day, month, date.year)
        if draw(st.booleans()):
            text = b'"' + text + b'"'
        sent = name.startswith("SENT")
        comparison = name[4:].lower() if sent else name.lower()
        return [name.encode() + b" " + text], SearchDate(sent, comparison, date)
    if kind == 6:
        larger = draw(st.booleans())
        size = draw(st.integers(0, MAX_NUMBER))
        name = b"LARGER" if larger else b"SMALLER"
        return [b"%s %d" % (name, size)], SearchSize(larger, size)
    if kind == 7:
        text, numbers = draw(_sequenceSet())
        if draw(st.booleans()):
            return [b"UID " + text], SearchSequence(numbers, True)
        return [text], SearchSequence(numbers, False)
    modSeq = draw(st.integers(0, 2**63 - 1))
    return [b"MODSEQ %d" % modSeq], SearchModSeq(modSeq)


def _compoundKey(
    children: st.SearchStrategy[_Generated],
) -> st.SearchStrategy[_Generated]:
    def negate(child: _Generated) -> _Generated:
        return [b"NOT ", *child[0]], SearchNot(child[1])

    def either(pair: tuple[_Generated, _Generated]) -> _Generated:
        (left, leftKey), (right, rightKey) = pair
        return [b"OR ", *left, b" ", *right], SearchOr(leftKey, rightKey)

    def group(keys: list[_Generated]) -> _Generated:
        pieces: list[_Piece] = [b"("]
        for index, (child, _) in enumerate(keys):
            if index:
                pieces.append(b" ")
            pieces.extend(child)
        pieces.append(b")")
        values = tuple(key for _, key in keys)
        return pieces, values[0] if len(values) == 1 else SearchAnd(values)

    return st.one_of(
        children.map(negate),
        st.tuples(children, children).map(either),
        st.lists(children, min_size=1, max_size=3).map(group),
    )


_SEARCH_KEYS = st.recursive(_leafKey(), _compoundKey, max_leaves=12)


_ATTRIBUTES = [
    "BODY",
    "BODYSTRUCTURE",
    "ENVELOPE",
    "FLAGS",
    "INTERNALDATE",
    "MODSEQ",
    "RFC822",
    "RFC822.HEADER",
    "RFC822.SIZE",
    "RFC822.TEXT",
    "UID",
]


@st.composite
def _fetchItem(draw: st.DrawFn) -> tuple[list[_Piece], FetchItem]:
    if draw(st.booleans()):
        name = draw(st.sampled_from(_ATTRIBUTES))
        return [draw(_mixedCase(name))], FetchAttribute(name)
    peek = draw(st.booleans())
    parts = tuple(draw(st.lists(st.integers(1, MAX_NUMBER), max_size=3)))
    choices = ["HEADER", "TEXT", "HEADER.FIELDS", "HEADER.FIELDS.NOT"]
    if parts:
        choices.append("MIME")
    specifier = draw(st.sampled_from(["", *choices]))
    pieces: list[_Piece] = [b"BODY.PEEK[" if peek else b"BODY["]
    spec = [b"%d" % n for n in parts]
    if specifier:
        spec.append(draw(_mixedCase(specifier)))
    pieces.append(b".".join(spec))
    fields: tuple[str, ...] = ()
    if specifier.startswith("HEADER.FIELDS"):
        names = draw(
            st.lists(
                st.text(st.sampled_from("abcXYZ-019"), min_size=1, max_size=6),
                min_size=1,
                max_size=3,
            )
        )
        pieces.append(b" (")
        for index, name in enumerate(names):
            if index:
                pieces.append(b" ")
            pieces.extend(draw(_string(name)))
        pieces.append(b")")
        fields = tuple(name.upper() for name in names)
    pieces.append(b"]")
    partial = draw(
        st.none() | st.tuples(st.integers(0, MAX_NUMBER), st.integers(1, MAX_NUMBER))
    )
    if partial is not None:
        pieces.append(b"<%d.%d>" % partial)
    return pieces, BodySection(peek, parts, specifier, fields, partial)


class FuzzTests(SynchronousTestCase):
    """
    Arbitrary input: only commands and L{ParseError}s come out.
    """

    @_SETTINGS
    @given(command=_randomCommands(), utf8=st.booleans())
    def test_parseCommand(
        self, command: tuple[list[bytes], list[object]], utf8: bool
    ) -> None:
        """
        Any lines and literals parse to a L{Command} or raise a
        L{ParseError} with a safe text, never anything else.
        """
        lines, literals = command
        try:
            result = parseCommand(lines, literals, utf8=utf8)
        except ParseError as e:
            _checkError(self, e)
        else:
            self.assertIsInstance(result, Command)
            self.assertTrue(lines[0].startswith(result.tag.encode() + b" "))

    @_SETTINGS
    @given(command=_randomCommands())
    def test_appendMessageNext(self, command: tuple[list[bytes], list[object]]) -> None:
        """
        L{appendMessageNext} answers a bool for any input, and only
        C{True} after an APPEND.
        """
        lines, literals = command
        answers = [appendMessageNext(lines, literals)]
        if literals:
            answers.append(appendMessageNext(lines[:-1], literals[:-1]))
        for answer in answers:
            self.assertIsInstance(answer, bool)
            if answer:
                self.assertIn(b"APPEND", lines[0].upper())

    @_SETTINGS
    @given(
        line=st.one_of(
            st.binary(max_size=40),
            st.builds(
                lambda head, digits, plus: head + b"{" + digits + plus + b"}",
                st.binary(max_size=10),
                st.text("0123456789", max_size=14).map(str.encode),
                st.sampled_from([b"", b"+", b"-"]),
            ),
        )
    )
    def test_announcedLiteral(self, line: bytes) -> None:
        """
        L{announcedLiteral} gives a size within 32 bits, L{None}, or a
        L{ParseError}, for any line.
        """
        try:
            announced = announcedLiteral(line)
        except ParseError as e:
            _checkError(self, e)
        else:
            if announced is not None:
                size, synchronizing = announced
                self.assertTrue(0 <= size <= MAX_NUMBER)
                self.assertEqual(line.endswith(b"+}"), not synchronizing, line)


class RoundTripTests(SynchronousTestCase):
    """
    Commands generated from values parse back to them.
    """

    @_SETTINGS
    @given(
        key=st.lists(_SEARCH_KEYS, min_size=1, max_size=3),
        uid=st.booleans(),
        charset=st.sampled_from([None, "UTF-8"]),
        plus=st.booleans(),
    )
    def test_search(
        self,
        key: list[_Generated],
        uid: bool,
        charset: str | None,
        plus: bool,
    ) -> None:
        """
        A SEARCH of generated keys, side by side, parses to their tree.
        """
        pieces: list[_Piece] = [b"t UID SEARCH" if uid else b"t SEARCH"]
        if charset is not None:
            pieces.append(b" CHARSET " + charset.encode())
        for child, _ in key:
            pieces.append(b" ")
            pieces.extend(child)
        values = tuple(value for _, value in key)
        expected = values[0] if len(values) == 1 else SearchAnd(values)
        lines, literals = _frame(pieces, plus)
        self.assertEqual(
            parseCommand(lines, literals),
            Command("t", "SEARCH", Search(expected, charset), uid),
        )

    @_SETTINGS
    @given(
        numbers=_sequenceSet(),
        items=st.lists(_fetchItem(), min_size=1, max_size=4),
        listed=st.booleans(),
        uid=st.booleans(),
        changedSince=st.none() | st.integers(0, 2**63 - 1),
        plus=st.booleans(),
    )
    def test_fetch(
        self,
        numbers: tuple[bytes, SequenceSet],
        items: list[tuple[list[_Piece], FetchItem]],
        listed: bool,
        uid: bool,
        changedSince: int | None,
        plus: bool,
    ) -> None:
        """
        A FETCH of a generated set and items parses to them.
        """
        if len(items) > 1:
            listed = True
        pieces: list[_Piece] = [b"t UID FETCH " if uid else b"t FETCH ", numbers[0]]
        pieces.append(b" (" if listed else b" ")
        for index, (item, _) in enumerate(items):
            if index:
                pieces.append(b" ")
            pieces.extend(item)
        if listed:
            pieces.append(b")")
        if changedSince is not None:
            pieces.append(b" (CHANGEDSINCE %d)" % changedSince)
        lines, literals = _frame(pieces, plus)
        expected = Fetch(numbers[1], tuple(item for _, item in items), changedSince)
        self.assertEqual(
            parseCommand(lines, literals), Command("t", "FETCH", expected, uid)
        )

    @_SETTINGS
    @given(
        numbers=_sequenceSet(),
        flags=st.lists(
            st.one_of(st.sampled_from(sorted(SYSTEM_FLAGS)), _ATOM_TEXT), max_size=4
        ),
        change=st.sampled_from(list(FlagChange)),
        silent=st.booleans(),
        listed=st.booleans(),
        unchangedSince=st.none() | st.integers(0, 2**63 - 1),
    )
    def test_store(
        self,
        numbers: tuple[bytes, SequenceSet],
        flags: list[str],
        change: FlagChange,
        silent: bool,
        listed: bool,
        unchangedSince: int | None,
    ) -> None:
        """
        A STORE of generated flags, system flags in any case, parses to
        them with the system flags in their canonical case.
        """
        if not flags:
            listed = True
        prefix = {FlagChange.REPLACE: b"", FlagChange.ADD: b"+"}.get(change, b"-")
        item = prefix + b"FLAGS" + (b".SILENT" if silent else b"")
        written = b" ".join(
            flag.swapcase().encode() if flag in SYSTEM_FLAGS else flag.encode()
            for flag in flags
        )
        line = b"t STORE " + numbers[0] + b" "
        if unchangedSince is not None:
            line += b"(UNCHANGEDSINCE %d) " % unchangedSince
        line += item + b" " + (b"(" + written + b")" if listed else written)
        self.assertEqual(
            parseCommand([line], []),
            Command(
                "t",
                "STORE",
                Store(numbers[1], change, silent, tuple(flags), unchangedSince),
            ),
        )

    @_SETTINGS
    @given(
        name=st.text(
            st.characters(exclude_categories=("Cs",), exclude_characters="\x00\r\n"),
            max_size=20,
        ),
        utf8=st.booleans(),
        plus=st.booleans(),
    )
    def test_mailboxName(self, name: str, utf8: bool, plus: bool) -> None:
        """
        Any mailbox name without NUL, CR or LF, sent in modified UTF-7 (or
        UTF-8 with UTF8=ACCEPT) in any form, parses back to itself, with
        any case of INBOX as C{INBOX}.
        """
        wire = name if utf8 else mutf7.encode(name)
        pieces = [b"t SELECT ", *_anyString(wire), b" (CONDSTORE)"]
        lines, literals = _frame(pieces, plus)
        inbox = name.isascii() and name.upper() == "INBOX"
        expected = "INBOX" if inbox else name
        self.assertEqual(
            parseCommand(lines, literals, utf8=utf8),
            Command("t", "SELECT", Select(expected, False, True)),
        )
        lines, literals = _frame([b"t DELETE ", _Literal(wire.encode())], plus)
        self.assertEqual(
            parseCommand(lines, literals, utf8=utf8),
            Command("t", "DELETE", Mailbox(expected)),
        )


def _anyString(text: str) -> list[_Piece]:
    """
    The shortest form of a string: an atom, quoted, or a literal.
    """
    data = text.encode("utf-8")
    if re.fullmatch(r"[^(){ %*\"\\\x00-\x1f\x7f-\U0010ffff]+", text):
        return [data]
    if re.fullmatch(r"[\x20-\x7e]*", text):
        return [b'"' + data.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"']
    return [_Literal(data)]
