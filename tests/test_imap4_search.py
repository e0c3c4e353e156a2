# -*- test-case-name: tests.test_imap4_search -*-
"""
Tests for L{gomail_twisted.imap4._search} and
L{gomail_twisted.imap4._searchtext}: which messages a SEARCH key names
(RFC 3501 6.4.4, RFC 7162 3.1.5), over real RFC 5322 messages.
"""

from __future__ import annotations

import datetime

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from gomail_twisted.imap4 import _searchtext
from gomail_twisted.imap4._commands import (
    STAR,
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
    SequenceSet,
)
from gomail_twisted.imap4._search import (
    MAX_DEPTH,
    Needs,
    SearchContext,
    compileSearch,
    needs,
    searchResponse,
)
from gomail_twisted.imap4._searchindex import (
    CachedFields,
    TextIndex,
    searchFields,
    textIndex,
)
from gomail_twisted.maildir.interfaces import MessageInfo


def _message(*lines: str | bytes) -> bytes:
    """
    @return: the lines joined with CRLF, text as UTF-8.
    """
    return b"".join(
        (line.encode("utf-8") if isinstance(line, str) else line) + b"\r\n"
        for line in lines
    )


def _at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> float:
    """
    @return: the epoch time of a UTC date and time.
    """
    return datetime.datetime(
        year, month, day, hour, minute, tzinfo=datetime.timezone.utc
    ).timestamp()


PLAIN = _message(
    "From: Alice <alice@example.com>",
    "To: Bob <bob@example.com>",
    "Subject: Quarterly report",
    "Date: Mon, 15 Jan 2024 09:30:00 +0000",
    "Message-ID: <1@example.com>",
    "",
    "Please find the figures below.",
)

ALTERNATIVE = _message(
    "From: =?ISO-8859-1?Q?Ren=E9?= <rene@example.fr>",
    "To: alice@example.com",
    "Subject: =?UTF-8?B?R3LDvMOfZSBhdXMgTcO8bmNoZW4=?=",
    "Date: Tue, 16 Jan 2024 23:30:00 -0800",
    "MIME-Version: 1.0",
    'Content-Type: multipart/alternative; boundary="alt"',
    "",
    "This is the preamble, never searched.",
    "--alt",
    "Content-Type: text/plain; charset=ISO-8859-1",
    "Content-Transfer-Encoding: quoted-printable",
    "",
    "Caf=E9 cr=E8me, a very long=",
    "word split by a soft line break.",
    "--alt",
    "Content-Type: text/html; charset=utf-8",
    "Content-Transfer-Encoding: base64",
    "",
    "PHA+U2Now7ZuZSBHcsO8w59lPC9wPg==",
    "--alt--",
)

MIXED = _message(
    "From: carol@example.org",
    "To: alice@example.com",
    "Subject: A very long subject line that",
    " is folded",
    "Date: 17 Jan 2024 01:15:00 +0900",
    "MIME-Version: 1.0",
    'Content-Type: multipart/mixed; boundary="mix"',
    "",
    "--mix",
    "Content-Type: text/plain; charset=utf-8",
    "Content-Transfer-Encoding: 8bit",
    "",
    "Ünïcödé body text.",
    "--mix",
    "Content-Type: text/plain; charset=us-ascii",
    "Content-Transfer-Encoding: base64",
    "",
    "TWFnaWMgd29yZA==",
    "--mix",
    'Content-Type: application/octet-stream; name="secret.bin"',
    "Content-Transfer-Encoding: base64",
    'Content-Disposition: attachment; filename="secret.bin"',
    "",
    "U2VjcmV0IHN0dWZm",
    "--mix--",
)

FORWARD = _message(
    "From: dave@example.net",
    "To: alice@example.com",
    "Subject: Fwd: forwarded note",
    "Date: Thu, 01 Feb 2024 10:00:00 +0100",
    "MIME-Version: 1.0",
    'Content-Type: multipart/mixed; boundary="fwd"',
    "",
    "--fwd",
    "Content-Type: text/plain",
    "",
    "See the forwarded message.",
    "--fwd",
    "Content-Type: message/rfc822",
    "",
    "From: erin@example.com",
    "Subject: Inner subject",
    "Content-Type: text/plain; charset=utf-8",
    "Content-Transfer-Encoding: quoted-printable",
    "",
    "Nested secret =C3=A9t=C3=A9 text.",
    "--fwd--",
)

UNDATED = _message(
    "Received: from mx1.example.net by mx.example.com",
    "Received: from mx2.example.net by mx1.example.net",
    "From: frank@example.com",
    "To: alice@example.com,",
    "\tcarol@example.org",
    "Cc: Dave <dave@example.net>",
    "X-Empty:",
    "Subject: Zürich",
    "",
    "No date here.",
)

BROKEN = _message(
    "From: grace@example.com",
    "Subject: =?x-klingon?q?Qapla=27?= =?utf-8?b?a?=",
    "Date: sometime next week",
    "Content-Type: text/plain; charset=x-unknown",
    "",
    b"Un caf\xe9 noir.",
)

#: (bytes, uid, flags, internal date, mod-sequence), in sequence order.
TABLE = [
    (PLAIN, 10, {"\\Seen"}, _at(2024, 1, 15, 23, 30), 5),
    (ALTERNATIVE, 11, {"\\Seen", "\\Answered", "Work"}, _at(2024, 1, 16, 12), 12),
    (MIXED, 15, {"\\Flagged"}, _at(2024, 1, 17), 7),
    (FORWARD, 20, {"\\Seen", "\\Deleted"}, _at(2024, 2, 1, 8), 20),
    (UNDATED, 21, set(), _at(2023, 12, 31, 23, 59), 3),
    (BROKEN, 30, {"\\Draft", "$Junk"}, _at(2024, 3, 10, 10), 12),
]

MESSAGES = [
    (
        MessageInfo(
            uid=uid,
            flags=frozenset(flags),
            size=len(raw),
            internalDate=date,
            modSeq=modSeq,
        ),
        raw,
    )
    for raw, uid, flags, date, modSeq in TABLE
]

RECENT = frozenset({21, 30})
CONTEXT = SearchContext(messages=6, largestUID=30, recent=RECENT)


def _header(raw: bytes) -> bytes:
    """
    @return: a message's header block with its empty line, as a server
        reads it.
    """
    return raw[: raw.index(b"\r\n\r\n") + 4]


def _matching(key: SearchKey, context: SearchContext = CONTEXT) -> list[int]:
    """
    @return: the sequence numbers of the table's messages the key
        matches, each message given whole.
    """
    matcher = compileSearch(key, context)
    return [
        seq
        for seq, (info, raw) in enumerate(MESSAGES, 1)
        if matcher.matches(info, seq, full=raw)
    ]


def _fields(raw: bytes) -> CachedFields:
    """
    @return: the store's record of a message's header fields, read back.
    """
    return CachedFields(searchFields(raw))


def _index(raw: bytes) -> TextIndex:
    """
    @return: the store's index of a message's text, read back.
    """
    return TextIndex(textIndex(raw))


def _staged(key: SearchKey, context: SearchContext = CONTEXT) -> list[int]:
    """
    @return: the same as L{_search}, reading each message only when the
        matcher asks: first nothing, then the record of its header fields,
        then that and the index of its text, then the header, then all of
        it.
    """
    matcher = compileSearch(key, context)
    found = []
    for seq, (info, raw) in enumerate(MESSAGES, 1):
        result = matcher.evaluate(info, seq)
        if result is None:
            result = matcher.evaluate(info, seq, fields=_fields(raw))
        if result is None:
            result = matcher.evaluate(
                info, seq, fields=_fields(raw), textIndex=_index(raw)
            )
        if result is None:
            result = matcher.evaluate(info, seq, header=_header(raw))
        if result is None:
            result = matcher.evaluate(info, seq, full=raw)
        assert result is not None
        if result:
            found.append(seq)
    return found


def _numbers(*ranges: tuple[int, int]) -> SequenceSet:
    return SequenceSet(tuple(ranges))


SEEN = SearchFlag("\\Seen", True)
UNSEEN = SearchFlag("\\Seen", False)


def _date(sent: bool, comparison: str, day: int, month: int = 1) -> SearchDate:
    return SearchDate(sent, comparison, datetime.date(2024, month, day))


#: (key, the sequence numbers it matches in TABLE).
CASES: list[tuple[SearchKey, list[int]]] = [
    (SearchAll(), [1, 2, 3, 4, 5, 6]),
    # Flags and keywords, without regard to case.
    (SEEN, [1, 2, 4]),
    (UNSEEN, [3, 5, 6]),
    (SearchFlag("\\seen", True), [1, 2, 4]),
    (SearchFlag("\\Answered", True), [2]),
    (SearchFlag("\\Flagged", True), [3]),
    (SearchFlag("\\Deleted", True), [4]),
    (SearchFlag("\\Draft", True), [6]),
    (SearchFlag("work", True), [2]),
    (SearchFlag("WORK", True), [2]),
    (SearchFlag("$junk", False), [1, 2, 3, 4, 5]),
    (SearchRecent(True), [5, 6]),
    (SearchRecent(False), [1, 2, 3, 4]),
    (SearchFlag("\\Recent", True), [5, 6]),
    (SearchAnd((SearchRecent(True), UNSEEN)), [5, 6]),
    # Internal dates, in UTC.
    (_date(False, "on", 15), [1]),
    (_date(False, "on", 16), [2]),
    (_date(False, "on", 17), [3]),
    (_date(False, "before", 16), [1, 5]),
    (_date(False, "since", 17), [3, 4, 6]),
    # The Date: field's date as written, in the sender's zone.
    (_date(True, "on", 16), [2]),
    (_date(True, "on", 17), [3]),
    (_date(True, "before", 17), [1, 2]),
    (_date(True, "since", 16), [2, 3, 4]),
    (_date(True, "on", 1, 2), [4]),
    (SearchNot(SearchDate(True, "since", datetime.date(1970, 1, 1))), [5, 6]),
    # Header fields: unfolded, RFC 2047 decoded, case-folded.
    (SearchHeader("Subject", "report"), [1]),
    (SearchHeader("Subject", "grüße"), [2]),
    (SearchHeader("Subject", "GRÜSSE AUS"), [2]),
    (SearchHeader("From", "rené"), [2]),
    (SearchHeader("From", "rene@example.fr"), [2]),
    (SearchHeader("From", "example"), [1, 2, 3, 4, 5, 6]),
    (SearchHeader("Subject", "that is folded"), [3]),
    (SearchHeader("Subject", "zürich"), [5]),
    (SearchHeader("To", "carol@example.org"), [5]),
    (SearchHeader("Cc", "dave"), [5]),
    (SearchHeader("Bcc", "a"), []),
    (SearchHeader("received", "mx2.example.net"), [5]),
    (SearchHeader("Received", "mx1.example.net"), [5]),
    (SearchHeader("X-Empty", ""), [5]),
    (SearchHeader("x-empty", ""), [5]),
    (SearchHeader("X-Missing", ""), []),
    (SearchHeader("Subject", ""), [1, 2, 3, 4, 5, 6]),
    (SearchHeader("Subject", "qapla'"), [6]),
    (SearchHeader("Subject", "=?utf-8?b?a?="), [6]),
    (SearchHeader("Subject", "inner subject"), []),
    (SearchHeader("Subject", "R3LDvMOfZSBhdXMgTcO8bmNoZW4"), []),
    # Body text: decoded text parts only.
    (SearchText("figures", False), [1]),
    (SearchText("café crème", False), [2]),
    (SearchText("longword", False), [2]),
    (SearchText("schöne grüsse", False), [2]),
    (SearchText("Caf=E9", False), []),
    (SearchText("preamble", False), []),
    (SearchText("ünïcödé", False), [3]),
    (SearchText("magic word", False), [3]),
    (SearchText("TWFnaWMgd29yZA", False), []),
    (SearchText("U2VjcmV0", False), []),
    (SearchText("secret stuff", False), []),
    (SearchText("nested secret été", False), [4]),
    (SearchText("inner subject", False), []),
    (SearchText("quarterly", False), []),
    (SearchText("café", False), [2, 6]),
    (SearchText("", False), [1, 2, 3, 4, 5, 6]),
    # TEXT: every header block too.
    (SearchText("quarterly", True), [1]),
    (SearchText("figures", True), [1]),
    (SearchText("inner subject", True), [4]),
    (SearchText("secret.bin", True), [3]),
    (SearchText("mx2.example", True), [5]),
    # Sizes (162 to 601 octets): strict comparisons.
    (SearchSize(True, len(PLAIN)), [2, 3, 4, 5]),
    (SearchSize(False, len(PLAIN)), [6]),
    (SearchSize(True, 600), [3]),
    # Sequence numbers: * is the number of messages, ranges either way.
    (SearchSequence(_numbers((2, 4)), False), [2, 3, 4]),
    (SearchSequence(_numbers((4, 2)), False), [2, 3, 4]),
    (SearchSequence(_numbers((STAR, STAR)), False), [6]),
    (SearchSequence(_numbers((5, STAR)), False), [5, 6]),
    (SearchSequence(_numbers((STAR, 5)), False), [5, 6]),
    (SearchSequence(_numbers((9, STAR)), False), [6]),
    (SearchSequence(_numbers((1, 1), (3, 3), (5, 5)), False), [1, 3, 5]),
    (SearchSequence(_numbers((100, 100)), False), []),
    # UIDs: * is the largest UID; n:* names it even above it.
    (SearchSequence(_numbers((11, 20)), True), [2, 3, 4]),
    (SearchSequence(_numbers((20, 11)), True), [2, 3, 4]),
    (SearchSequence(_numbers((STAR, STAR)), True), [6]),
    (SearchSequence(_numbers((25, STAR)), True), [6]),
    (SearchSequence(_numbers((31, STAR)), True), [6]),
    (SearchSequence(_numbers((16, 19)), True), []),
    (SearchSequence(_numbers((1, 10)), True), [1]),
    (SearchSequence(_numbers((6, 6)), True), []),
    # MODSEQ: at least n.
    (SearchModSeq(12), [2, 4, 6]),
    (SearchModSeq(0), [1, 2, 3, 4, 5, 6]),
    (SearchModSeq(21), []),
    # Combinations.
    (SearchAnd((SEEN, SearchText("figures", False))), [1]),
    (SearchOr(SearchFlag("\\Flagged", True), SearchFlag("\\Draft", True)), [3, 6]),
    (SearchNot(SEEN), [3, 5, 6]),
    (SearchNot(SearchNot(SEEN)), [1, 2, 4]),
    (SearchNot(SearchNot(SearchNot(SEEN))), [3, 5, 6]),
    (
        SearchOr(
            SearchHeader("Subject", "report"),
            SearchOr(SearchText("magic", False), SearchRecent(True)),
        ),
        [1, 3, 5, 6],
    ),
    (SearchNot(SearchOr(SEEN, SearchRecent(True))), [3]),
    (SearchAnd((UNSEEN, SearchNot(SearchText("magic", False)))), [5, 6]),
    (SearchAnd((SearchAnd((SEEN, SearchModSeq(6))), SearchAnd(()))), [2, 4]),
    (SearchAnd(()), [1, 2, 3, 4, 5, 6]),
    (SearchNot(SearchAll()), []),
    (SearchOr(SearchNot(SearchAll()), SearchText("", True)), [1, 2, 3, 4, 5, 6]),
    (
        SearchAnd(
            (
                SearchSequence(_numbers((1, 4)), False),
                SearchOr(SearchHeader("To", "bob"), SearchText("nested", False)),
            )
        ),
        [1, 4],
    ),
]


class SearchCasesTests(SynchronousTestCase):
    """
    Every key of L{CASES} over the table of messages.
    """

    def test_keysMatchTheirMessages(self) -> None:
        """
        Each key matches exactly the sequence numbers listed for it.
        """
        for key, expected in CASES:
            self.assertEqual((key, _matching(key)), (key, expected))

    def test_stagedReadingAgrees(self) -> None:
        """
        Reading a message only as far as the matcher asks gives the same
        matches as handing it every message whole.
        """
        for key, expected in CASES:
            self.assertEqual((key, _staged(key)), (key, expected))

    def test_headerGivenWithBody(self) -> None:
        """
        A header block followed by the body is read only up to its empty
        line.
        """
        matcher = compileSearch(SearchHeader("Subject", "below"), CONTEXT)
        info, raw = MESSAGES[0]
        self.assertIs(matcher.evaluate(info, 1, header=raw), False)
        matcher = compileSearch(SearchHeader("Subject", "report"), CONTEXT)
        self.assertIs(matcher.evaluate(info, 1, header=raw), True)


class HeaderDecodingTests(SynchronousTestCase):
    """
    Header values are compared unfolded and decoded (RFC 5322 2.2.3, RFC
    2047), whatever the encoded words hold.
    """

    def test_decodedValues(self) -> None:
        """
        Each Subject value is found by its decoded text, case-folded.
        """
        for raw, text in [
            (b"=?utf-8?q?J=C3=B6rg?= <j@x>", "jörg <j@x>"),
            (b'"=?utf-8?q?J=C3=B6rg?=" <j@x>', '"jörg" <j@x>'),
            (b"=?utf-8?b?SsO2cmc?= =?utf-8?b?IE3DvGxsZXI=?=", "jörg müller"),
            (b"=?utf-8?b?w6k?= =?iso-8859-1?q?=E9?=", "éé"),
            (b"=?utf-8?q?=C3?= =?utf-8?q?=A9?=", "é"),
            (b"=?utf-8?q?x?=  \t =?UTF-8?Q?y?=", "xy"),
            (b"=?utf-8?q?a_b?=", "a b"),
            (b"a =?utf-8?q?b?= c", "a b c"),
            (b"a=?utf-8?q?b?=c", "abc"),
            (b"=?x-unknown?q?caf=E9?=", "café"),
            (b"=?base64?q?caf=E9?=", "café"),
            (b"=?iso-8859-1*fr?q?caf=E9?=", "café"),
            (b"=?utf-8?q?bad=ZZ?=", "bad=zz"),
            (b"=?utf-8?b?a?= tail", "=?utf-8?b?a?= tail"),
            (b"Caf\xe9 latin", "café latin"),
            (b"Z\xc3\xbcrich", "zürich"),
            (b"  spaced  ", "spaced"),
        ]:
            message = b"Subject: " + raw + b"\r\n\r\nbody\r\n"
            info = MessageInfo(1, frozenset(), len(message), 0.0, 1)
            whole = compileSearch(SearchHeader("subject", text), SearchContext(1, 1))
            self.assertEqual((raw, whole.matches(info, 1, full=message)), (raw, True))
            longer = compileSearch(
                SearchHeader("subject", text + "!"), SearchContext(1, 1)
            )
            self.assertEqual((raw, longer.matches(info, 1, full=message)), (raw, False))


_CONTENT_TYPES = [
    b"text/plain",
    b"text/plain; charset=utf-8",
    b"TEXT/HTML; CHARSET=US-ASCII",
    b'text/plain; charset="iso-8859-1"',
    b"text/plain;\r\n\tcharset=utf-8",
    b"text/plain; charset=utf-16",
    b"text/plain; charset=x-unknown",
    b"text/plain; charset*=utf-8''utf-8",
    b"text/plain; charset=\xe9",
    b"text",
    b"text/plain/x",
    b" text/plain",
    b"application/octet-stream",
    b"image/png; name=a.png",
    b'multipart/mixed; boundary="b"',
    b"multipart/alternative",
    b"message/rfc822",
    b"",
]
_TRANSFER_ENCODINGS = [
    b"7bit",
    b"8bit",
    b"binary",
    b"base64",
    b"BASE64",
    b"base64 ",
    b" quoted-printable",
    b"quoted-printable",
    b"x-uuencode",
    b"x-unknown",
    b"",
]
_OTHER_LINES = [
    b"Subject: hello",
    b"X-Folded: a\r\n b",
    b"From foo@example.com Mon Jan 1 00:00:00 2024",
    b"no colon here",
    b" continuation",
    b": empty name",
    b"Bare: cr\rinside",
    b"Bare: lf\ninside",
    b"Name : spaced",
    b"X-8bit: caf\xc3\xa9",
]
_BODY_PIECES = [
    b"plain words ",
    b"Caf=E9 =\r\n",
    b"VGhlIG51bWJlcnM=",
    b"\r\n",
    b"\n",
    b"\r",
    b"caf\xc3\xa9 ",
    b"caf\xe9 ",
    b"--b\r\n",
    b"begin 644 x\r\n",
    b"=?utf-8?q?x?=",
    b"\xef\xac\x81 \xc3\x9f ",
]


@st.composite
def _singleParts(draw: st.DrawFn) -> bytes:
    """
    @return: messages, most of one part, with the fields that decide how
        a part is read, some twice or folded, and some lines that make a
        header block other than plain.
    """
    lines: list[bytes] = []
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.integers(0, 2))
        if kind == 0:
            lines.append(b"Content-Type: " + draw(st.sampled_from(_CONTENT_TYPES)))
        elif kind == 1:
            encoding = draw(st.sampled_from(_TRANSFER_ENCODINGS))
            lines.append(b"Content-Transfer-Encoding: " + encoding)
        else:
            lines.append(draw(st.sampled_from(_OTHER_LINES)))
    body = b"".join(draw(st.lists(st.sampled_from(_BODY_PIECES), max_size=8)))
    end = draw(st.sampled_from([b"\r\n", b"\r\n\r\n", b""]))
    return b"".join(line + b"\r\n" for line in lines) + end + body


class SinglePartTests(SynchronousTestCase):
    """
    A message of one part with a plain header block is read without the
    C{email} parser, to the same texts.
    """

    def test_shortCutTaken(self) -> None:
        """
        Common single-part messages take the short cut; multipart ones,
        and headers the parser reads otherwise, do not.
        """
        taken = [
            PLAIN,
            BROKEN,
            _message("Content-Type: text/html; charset=utf-8", "", "<p>x</p>"),
            _message("Content-Transfer-Encoding: base64", "", "eA=="),
            _message("Content-Type: application/pdf", "", "%PDF"),
            _message("", "no header"),
        ]
        for raw in taken:
            self.assertIsNotNone(_searchtext._singlePartTexts(raw, 100), raw)
        for raw in [
            ALTERNATIVE,
            MIXED,
            FORWARD,
            _message("Content-Type: message/rfc822", "", "Subject: x", "", "y"),
            _message("From x@y Mon Jan 1 00:00:00 2024", "Subject: x", "", "y"),
            _message("Subject: x", "not a field", "", "y"),
            b"Subject: x\r\nno empty line\r\n",
            b"Subject: bare\n\nlf",
        ]:
            self.assertIsNone(_searchtext._singlePartTexts(raw, 100), raw)

    def test_texts(self) -> None:
        """
        The short cut's texts: the body decoded in its charset and its
        transfer encoding; nothing of a part not text.
        """
        cases = [
            (PLAIN, "please find the figures below.\r\n"),
            (BROKEN, "un café noir.\r\n"),
            (
                _message(
                    "Content-Type: text/plain; charset=iso-8859-1",
                    "Content-Transfer-Encoding: quoted-printable",
                    "",
                    "Caf=E9 =",
                    "cr=E8me",
                ),
                "café crème\r\n",
            ),
            (_message("Content-Type: image/png", "", "text"), ""),
        ]
        for raw, body in cases:
            self.assertEqual(
                _searchtext._singlePartTexts(raw, 1000),
                _searchtext.MessageTexts(body, ""),
            )
        self.assertEqual(
            _searchtext._singlePartTexts(PLAIN, 6),
            _searchtext.MessageTexts("please", ""),
        )

    def test_longValuesNotKept(self) -> None:
        """
        What a long Content-Type value gives is worked out each time, not
        kept: a sender cannot fill memory with them.
        """
        _searchtext._keptLeafFacts.cache_clear()
        name = "x" * 1000
        raw = _message(f"Content-Type: text/plain; name={name}", "", "Words")
        texts = _searchtext._singlePartTexts(raw, 100)
        self.assertEqual(texts, _searchtext.MessageTexts("words\r\n", ""))
        self.assertEqual(_searchtext._keptLeafFacts.cache_info().currsize, 0)
        _searchtext._singlePartTexts(_message("Content-Type: text/x-new", "", ""), 9)
        self.assertEqual(_searchtext._keptLeafFacts.cache_info().currsize, 1)

    @given(_singleParts(), st.sampled_from([0, 5, 10_000]))
    @settings(max_examples=500, deadline=None)
    def test_sameAsParser(self, raw: bytes, limit: int) -> None:
        """
        Whenever the short cut answers, it gives the texts the parser's
        path gives.
        """
        texts = _searchtext._singlePartTexts(raw, limit)
        if texts is not None:
            self.assertEqual(texts, _searchtext._parsedTexts(raw, limit))
        self.assertEqual(
            _searchtext.messageTexts(raw, limit), _searchtext._parsedTexts(raw, limit)
        )


class DateZoneTests(SynchronousTestCase):
    """
    Internal dates are compared in the context's zone.
    """

    def test_zoneEast(self) -> None:
        """
        In UTC+2, a message that arrived at 23:30 UTC arrived the next day.
        """
        east = datetime.timezone(datetime.timedelta(hours=2))
        context = SearchContext(6, 30, RECENT, zone=east)
        self.assertEqual(_matching(_date(False, "on", 16), context), [1, 2])
        self.assertEqual(_matching(_date(False, "on", 15), context), [])
        self.assertEqual(_matching(_date(False, "before", 1), context), [])

    def test_zoneWest(self) -> None:
        """
        In UTC-5, a message that arrived at midnight UTC arrived the day
        before.
        """
        west = datetime.timezone(datetime.timedelta(hours=-5))
        context = SearchContext(6, 30, RECENT, zone=west)
        self.assertEqual(_matching(_date(False, "on", 16), context), [2, 3])
        self.assertEqual(_matching(_date(False, "on", 15), context), [1])

    def test_sentDateIgnoresZone(self) -> None:
        """
        The context's zone does not move a C{Date:} field's date.
        """
        east = datetime.timezone(datetime.timedelta(hours=14))
        context = SearchContext(6, 30, RECENT, zone=east)
        self.assertEqual(_matching(_date(True, "on", 16), context), [2])

    def test_unknownComparison(self) -> None:
        """
        A date comparison other than before, on and since is refused.
        """
        key = SearchDate(False, "after", datetime.date(2024, 1, 1))
        self.assertRaises(ValueError, compileSearch, key, CONTEXT)


class SizeTests(SynchronousTestCase):
    """
    C{LARGER} and C{SMALLER} compare RFC822.SIZE strictly.
    """

    def test_strict(self) -> None:
        """
        A message of exactly n octets is neither larger nor smaller than n.
        """
        infos = [
            MessageInfo(n, frozenset(), size, 0.0, 1)
            for n, size in ((1, 99), (2, 100), (3, 101))
        ]
        context = SearchContext(3, 3)
        for key, expected in [
            (SearchSize(True, 100), [3]),
            (SearchSize(False, 100), [1]),
            (SearchSize(True, 0), [1, 2, 3]),
            (SearchSize(False, 0), []),
            (SearchNot(SearchSize(True, 100)), [1, 2]),
        ]:
            matcher = compileSearch(key, context)
            found = [
                seq for seq, info in enumerate(infos, 1) if matcher.matches(info, seq)
            ]
            self.assertEqual((key, found), (key, expected))


class NeedsTests(SynchronousTestCase):
    """
    L{needs} says what of a message a key reads.
    """

    def test_classification(self) -> None:
        """
        Flags, numbers, sizes and internal dates need nothing; header
        fields and sent dates the header; body text the whole message.
        """
        table: list[tuple[SearchKey, Needs]] = [
            (SearchAll(), Needs.NOTHING),
            (SEEN, Needs.NOTHING),
            (SearchRecent(True), Needs.NOTHING),
            (_date(False, "since", 1), Needs.NOTHING),
            (SearchSize(True, 1), Needs.NOTHING),
            (SearchSequence(_numbers((1, STAR)), True), Needs.NOTHING),
            (SearchModSeq(1), Needs.NOTHING),
            (SearchText("", False), Needs.NOTHING),
            (SearchText("", True), Needs.NOTHING),
            (_date(True, "since", 1), Needs.HEADER),
            (SearchHeader("Subject", "x"), Needs.HEADER),
            (SearchHeader("X-Any", ""), Needs.HEADER),
            (SearchText("x", False), Needs.FULL),
            (SearchText("x", True), Needs.FULL),
            (SearchOr(SEEN, SearchHeader("From", "a")), Needs.HEADER),
            (SearchNot(SearchText("x", False)), Needs.FULL),
            (
                SearchAnd((SEEN, SearchOr(SearchModSeq(1), SearchText("x", True)))),
                Needs.FULL,
            ),
        ]
        for key, expected in table:
            self.assertEqual((key, needs(key)), (key, expected))
            self.assertEqual((key, compileSearch(key, CONTEXT).needs), (key, expected))


class ThreeValuedTests(SynchronousTestCase):
    """
    Evaluation without the message's bytes decides what it can, so that a
    server reads only the messages it must.
    """

    def test_flagExcludesWithoutReading(self) -> None:
        """
        C{SEEN BODY x} on an unseen message is false before any read; on a
        seen one it is undecided.
        """
        matcher = compileSearch(SearchAnd((SEEN, SearchText("x", False))), CONTEXT)
        self.assertIs(matcher.evaluate(MESSAGES[2][0], 3), False)
        self.assertIsNone(matcher.evaluate(MESSAGES[0][0], 1))
        self.assertIsNone(matcher.evaluate(MESSAGES[0][0], 1, header=_header(PLAIN)))
        self.assertIs(matcher.evaluate(MESSAGES[0][0], 1, full=PLAIN), False)

    def test_flagIncludesWithoutReading(self) -> None:
        """
        C{OR SEEN BODY x} on a seen message is true before any read.
        """
        matcher = compileSearch(SearchOr(SEEN, SearchText("x", False)), CONTEXT)
        self.assertIs(matcher.evaluate(MESSAGES[0][0], 1), True)
        self.assertIsNone(matcher.evaluate(MESSAGES[2][0], 3))

    def test_textFoundInHeader(self) -> None:
        """
        C{TEXT} found in the header block is decided without the body;
        not found there, it needs the body.
        """
        info = MESSAGES[0][0]
        header = _header(PLAIN)
        found = compileSearch(SearchText("QUARTERLY", True), CONTEXT)
        self.assertIs(found.evaluate(info, 1, header=header), True)
        later = compileSearch(SearchText("figures", True), CONTEXT)
        self.assertIsNone(later.evaluate(info, 1, header=header))
        self.assertIs(later.evaluate(info, 1, full=PLAIN), True)

    def test_notUndecided(self) -> None:
        """
        C{NOT} of an undecided key stays undecided.
        """
        matcher = compileSearch(SearchNot(SearchHeader("To", "bob")), CONTEXT)
        info = MESSAGES[0][0]
        self.assertIsNone(matcher.evaluate(info, 1))
        self.assertIs(matcher.evaluate(info, 1, header=_header(PLAIN)), False)

    def test_matchesRefusesMissingBytes(self) -> None:
        """
        L{SearchMatcher.matches} refuses to guess when the key needs what
        was not given.
        """
        matcher = compileSearch(SearchText("x", False), CONTEXT)
        self.assertRaises(ValueError, matcher.matches, MESSAGES[0][0], 1)
        matcher = compileSearch(SearchHeader("To", "x"), CONTEXT)
        self.assertRaises(ValueError, matcher.matches, MESSAGES[0][0], 1)

    def test_decodedOncePerEvaluation(self) -> None:
        """
        Several body keys in one key decode the message once.
        """
        calls = []
        original = _searchtext.messageTexts

        def counting(full: bytes, limit: int) -> _searchtext.MessageTexts:
            calls.append(full)
            return original(full, limit)

        self.patch(_searchtext, "messageTexts", counting)
        key = SearchAnd(
            (
                SearchText("magic", False),
                SearchText("ünïcödé", True),
                SearchOr(SearchText("nothing", False), SearchText("word", True)),
            )
        )
        matcher = compileSearch(key, CONTEXT)
        info, raw = MESSAGES[2]
        self.assertIs(matcher.evaluate(info, 3, full=raw), True)
        self.assertEqual(calls, [raw])

    def test_cheapKeysFirst(self) -> None:
        """
        A flag that excludes a message is tested before its body is
        decoded, whatever the order of the keys.
        """
        calls = []
        original = _searchtext.messageTexts

        def counting(full: bytes, limit: int) -> _searchtext.MessageTexts:
            calls.append(full)
            return original(full, limit)

        self.patch(_searchtext, "messageTexts", counting)
        key = SearchAnd((SearchText("figures", True), UNSEEN))
        matcher = compileSearch(key, CONTEXT)
        self.assertIs(matcher.evaluate(MESSAGES[0][0], 1, full=PLAIN), False)
        self.assertEqual(calls, [])


class ModSeqTests(SynchronousTestCase):
    """
    C{MODSEQ} and the mod-sequence the response reports (RFC 7162 3.1.5).
    """

    def test_highestOfMatches(self) -> None:
        """
        With C{MODSEQ} in the key, the highest mod-sequence of the matches
        is reported.
        """
        matcher = compileSearch(SearchModSeq(6), CONTEXT)
        self.assertTrue(matcher.usesModSeq)
        matched = [
            info
            for seq, (info, _) in enumerate(MESSAGES, 1)
            if matcher.matches(info, seq)
        ]
        self.assertEqual(matcher.highestModSeq(matched), 20)
        self.assertEqual(
            searchResponse([2, 3, 4, 6], matcher.highestModSeq(matched)),
            b"* SEARCH 2 3 4 6 (MODSEQ 20)\r\n",
        )

    def test_noMatches(self) -> None:
        """
        With no match there is no mod-sequence to report.
        """
        matcher = compileSearch(SearchModSeq(100), CONTEXT)
        self.assertIsNone(matcher.highestModSeq([]))
        self.assertEqual(searchResponse([], matcher.highestModSeq([])), b"* SEARCH\r\n")

    def test_withoutModSeqKey(self) -> None:
        """
        Without C{MODSEQ} in the key, no mod-sequence is reported.
        """
        matcher = compileSearch(SEEN, CONTEXT)
        self.assertFalse(matcher.usesModSeq)
        self.assertIsNone(matcher.highestModSeq([MESSAGES[0][0]]))

    def test_modSeqAnywhere(self) -> None:
        """
        C{MODSEQ} counts wherever it is in the key, even under C{NOT}.
        """
        key = SearchOr(SEEN, SearchNot(SearchModSeq(10)))
        matcher = compileSearch(key, CONTEXT)
        self.assertTrue(matcher.usesModSeq)
        self.assertEqual(matcher.highestModSeq([MESSAGES[0][0]]), 5)


class SearchResponseTests(SynchronousTestCase):
    """
    L{searchResponse} writes the untagged SEARCH line.
    """

    def test_lines(self) -> None:
        """
        Numbers in the order given, the mod-sequence in parentheses, CRLF.
        """
        for numbers, modSeq, expected in [
            ([], None, b"* SEARCH\r\n"),
            ([], 5, b"* SEARCH\r\n"),
            ([1], None, b"* SEARCH 1\r\n"),
            ([1, 2, 3], None, b"* SEARCH 1 2 3\r\n"),
            ([9, 4], 917162500, b"* SEARCH 9 4 (MODSEQ 917162500)\r\n"),
            (
                [2**32 - 1],
                2**63 - 1,
                b"* SEARCH 4294967295 (MODSEQ 9223372036854775807)\r\n",
            ),
        ]:
            self.assertEqual(searchResponse(numbers, modSeq), expected)

    def test_invalid(self) -> None:
        """
        Numbers outside 1..2**32-1 and mod-sequences outside 1..2**63-1
        are refused.
        """
        for numbers, modSeq in [
            ([0], None),
            ([-1], None),
            ([2**32], None),
            ([1], 0),
            ([1], 2**63),
            ([1], -5),
        ]:
            self.assertRaises(ValueError, searchResponse, numbers, modSeq)


class EmptyMailboxTests(SynchronousTestCase):
    """
    C{*} in an empty mailbox.
    """

    def test_starNamesNothing(self) -> None:
        """
        With no messages, C{*} stands for 0, which names no message.
        """
        context = SearchContext(0, 0)
        info = MessageInfo(1, frozenset(), 10, 0.0, 1)
        for uid in (False, True):
            matcher = compileSearch(
                SearchSequence(_numbers((STAR, STAR)), uid), context
            )
            self.assertIs(matcher.matches(info, 1), False)
        self.assertEqual(searchResponse([]), b"* SEARCH\r\n")

    def test_starAfterExpunge(self) -> None:
        """
        C{*} is the largest number in use, not the count of messages ever
        held: the last message's UID.
        """
        info = MessageInfo(7, frozenset(), 10, 0.0, 1)
        matcher = compileSearch(
            SearchSequence(_numbers((STAR, STAR)), True), SearchContext(1, 7)
        )
        self.assertTrue(matcher.matches(info, 1))


class HostileMessageTests(SynchronousTestCase):
    """
    Messages built to cost time or break a parser are searched, within
    bounds, and never raise.
    """

    def _one(
        self, key: SearchKey, raw: bytes, context: SearchContext | None = None
    ) -> bool:
        info = MessageInfo(1, frozenset(), len(raw), 0.0, 1)
        matcher = compileSearch(key, context or SearchContext(1, 1))
        return matcher.matches(info, 1, full=raw)

    def test_manyEncodedWords(self) -> None:
        """
        A field of 20,000 encoded words is decoded (in time linear in its
        length), adjacent words joined without their white space.
        """
        raw = _message("Subject: " + "=?utf-8?q?ab?= " * 20000 + "end", "", "x")
        self.assertTrue(self._one(SearchHeader("Subject", "abababab end"), raw))
        self.assertFalse(self._one(SearchHeader("Subject", "ab ab"), raw))

    def test_unterminatedEncodedWords(self) -> None:
        """
        Thousands of encoded-word openings that never close are kept as
        written.
        """
        raw = _message("Subject: " + "=?a?q?" * 20000, "", "x")
        self.assertTrue(self._one(SearchHeader("Subject", "=?a?q?=?a?q?"), raw))

    def test_deepMultipart(self) -> None:
        """
        A MIME tree nested past the parser's recursion is searched as
        plain text.
        """
        head = b"".join(
            b'Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n--b%d\r\n' % (i, i)
            for i in range(2000)
        )
        tail = b"".join(b"\r\n--b%d--\r\n" % (i,) for i in reversed(range(2000)))
        raw = (
            b"Subject: deep\r\n"
            + head
            + b"Content-Type: text/plain\r\n\r\nhello"
            + tail
        )
        self.assertTrue(self._one(SearchText("hello", False), raw))
        self.assertFalse(self._one(SearchText("absent", False), raw))

    def test_textBound(self) -> None:
        """
        Text past the context's bound is not searched.
        """
        raw = _message("Subject: long", "", "x" * 100 + "needle")
        self.assertTrue(self._one(SearchText("needle", False), raw))
        small = SearchContext(1, 1, maxText=50)
        self.assertFalse(self._one(SearchText("needle", False), raw, small))
        self.assertTrue(self._one(SearchText("xxxx", False), raw, small))

    def test_badBase64TextPart(self) -> None:
        """
        A text part whose base64 is broken is searched as it decodes,
        without failing.
        """
        raw = _message(
            "Content-Type: text/plain",
            "Content-Transfer-Encoding: base64",
            "",
            "!!!not base64 at all",
        )
        self.assertFalse(self._one(SearchText("zzz", False), raw))

    def test_multipartWithoutBoundary(self) -> None:
        """
        A part that claims to be multipart but names no boundary is
        searched as text.
        """
        raw = _message("Content-Type: multipart/mixed", "", "plain words")
        self.assertTrue(self._one(SearchText("plain words", False), raw))

    def test_noHeader(self) -> None:
        """
        A message that starts with its empty line has no fields.
        """
        raw = _message("", "Subject: not a field")
        self.assertFalse(self._one(SearchHeader("Subject", ""), raw))
        self.assertTrue(self._one(SearchText("not a field", False), raw))

    def test_bareLineFeeds(self) -> None:
        """
        Lines ending in a bare LF are read as lines.
        """
        raw = b"Subject: bare\n folded\nX-Other: y\n\nthe body\n"
        self.assertTrue(self._one(SearchHeader("Subject", "bare folded"), raw))
        self.assertTrue(self._one(SearchText("the body", False), raw))
        self.assertFalse(self._one(SearchText("x-other", False), raw))


def _nest(depth: int) -> SearchKey:
    """
    @return: a key nesting C{NOT} and C{OR} alternately C{depth} levels
        deep, around C{SEEN}.
    """
    key: SearchKey = SEEN
    for level in range(depth):
        key = SearchNot(key) if level % 2 else SearchOr(SearchRecent(True), key)
    return key


class DepthTests(SynchronousTestCase):
    """
    Nesting is bounded, and what the parser allows evaluates.
    """

    def test_deepKeyEvaluates(self) -> None:
        """
        A key nested L{MAX_DEPTH} levels deep compiles and evaluates as
        the reference evaluation does.
        """
        key = _nest(MAX_DEPTH - 1)
        expected = [
            seq
            for seq, (info, _) in enumerate(MESSAGES, 1)
            if _reference(key, info, seq, CONTEXT)
        ]
        self.assertEqual(_matching(key), expected)
        self.assertNotEqual(expected, [])

    def test_tooDeep(self) -> None:
        """
        A key nested deeper than L{MAX_DEPTH} is refused.
        """
        self.assertRaises(ValueError, compileSearch, _nest(MAX_DEPTH + 1), CONTEXT)
        deepNot: SearchKey = SEEN
        for _ in range(MAX_DEPTH + 1):
            deepNot = SearchNot(deepNot)
        self.assertRaises(ValueError, compileSearch, deepNot, CONTEXT)

    def test_longChainsAreFlat(self) -> None:
        """
        A chain of C{OR}s, or C{AND}s within C{AND}s, counts as one level
        however long.
        """
        chain: SearchKey = SearchSequence(_numbers((1, 1)), False)
        nested: SearchKey = SEEN
        for seq in range(2, 1000):
            chain = SearchOr(SearchSequence(_numbers((seq, seq)), False), chain)
            nested = SearchAnd((nested, SearchModSeq(0)))
        self.assertEqual(_matching(chain), [1, 2, 3, 4, 5, 6])
        self.assertEqual(_matching(nested), [1, 2, 4])
        self.assertEqual(needs(nested), Needs.NOTHING)


def _reference(
    key: SearchKey, info: MessageInfo, seq: int, context: SearchContext
) -> bool:
    """
    Whether a key of flags, sizes, numbers and mod-sequences matches a
    message, written from RFC 3501 6.4.4 as plainly as possible.
    """
    if isinstance(key, SearchAll):
        return True
    if isinstance(key, SearchNot):
        return not _reference(key.key, info, seq, context)
    if isinstance(key, SearchOr):
        return _reference(key.left, info, seq, context) or _reference(
            key.right, info, seq, context
        )
    if isinstance(key, SearchAnd):
        return all(_reference(each, info, seq, context) for each in key.keys)
    if isinstance(key, SearchRecent):
        return (info.uid in context.recent) == key.present
    if isinstance(key, SearchFlag):
        if key.flag.lower() == "\\recent":
            has = info.uid in context.recent
        else:
            has = key.flag.lower() in [flag.lower() for flag in info.flags]
        return has == key.present
    if isinstance(key, SearchSize):
        return info.size > key.size if key.larger else info.size < key.size
    if isinstance(key, SearchModSeq):
        return info.modSeq >= key.modSeq
    if isinstance(key, SearchSequence):
        value = info.uid if key.uid else seq
        star = context.largestUID if key.uid else context.messages
        for first, last in key.numbers.ranges:
            first = star if first == STAR else first
            last = star if last == STAR else last
            if min(first, last) <= value <= max(first, last):
                return True
        return False
    raise AssertionError(f"no reference for {key!r}")


_FLAGS = ["\\Seen", "\\Flagged", "\\Deleted", "Work", "$Junk"]

_CHEAP_LEAVES = st.one_of(
    st.just(SearchAll()),
    st.builds(
        SearchFlag,
        st.sampled_from([*_FLAGS, "\\seen", "WORK", "$junk", "\\Recent"]),
        st.booleans(),
    ),
    st.builds(SearchRecent, st.booleans()),
    st.builds(SearchSize, st.booleans(), st.integers(0, 200)),
    st.builds(SearchModSeq, st.integers(0, 30)),
    st.builds(
        SearchSequence,
        st.lists(
            st.tuples(st.integers(0, 45), st.integers(0, 45)), min_size=1, max_size=3
        ).map(lambda ranges: SequenceSet(tuple(ranges))),
        st.booleans(),
    ),
)


def _trees(leaves: st.SearchStrategy[SearchKey]) -> st.SearchStrategy[SearchKey]:
    """
    @return: key trees over some leaves, with C{NOT}, C{OR} and C{AND}.
    """
    return st.recursive(
        leaves,
        lambda children: st.one_of(
            children.map(SearchNot),
            st.builds(SearchOr, children, children),
            st.lists(children, max_size=3).map(lambda keys: SearchAnd(tuple(keys))),
        ),
        max_leaves=16,
    )


@st.composite
def _mailboxes(draw: st.DrawFn) -> tuple[list[MessageInfo], SearchContext]:
    """
    @return: messages with random UIDs, flags, sizes and mod-sequences,
        and the context that goes with them.
    """
    uids = sorted(draw(st.sets(st.integers(1, 40), max_size=8)))
    infos = [
        MessageInfo(
            uid,
            frozenset(draw(st.sets(st.sampled_from(_FLAGS)))),
            draw(st.integers(0, 200)),
            0.0,
            draw(st.integers(1, 30)),
        )
        for uid in uids
    ]
    recent = draw(st.sets(st.sampled_from(uids))) if uids else set()
    context = SearchContext(len(infos), uids[-1] if uids else 0, frozenset(recent))
    return infos, context


class PropertyTests(SynchronousTestCase):
    """
    The compiled matcher against a plain reference, and staged reading
    against whole messages.
    """

    @given(_trees(_CHEAP_LEAVES), _mailboxes())
    @settings(max_examples=300, deadline=None)
    def test_matchesReference(
        self, key: SearchKey, mailbox: tuple[list[MessageInfo], SearchContext]
    ) -> None:
        """
        Over flags, sizes, numbers and mod-sequences, the matcher decides
        every message without reading it, as the reference does.
        """
        infos, context = mailbox
        matcher = compileSearch(key, context)
        self.assertEqual(matcher.needs, Needs.NOTHING)
        for seq, info in enumerate(infos, 1):
            self.assertEqual(
                matcher.evaluate(info, seq), _reference(key, info, seq, context)
            )

    @given(_trees(st.one_of(_CHEAP_LEAVES, st.sampled_from([k for k, _ in CASES]))))
    @settings(max_examples=150, deadline=None)
    def test_stagedIsSound(self, key: SearchKey) -> None:
        """
        Whatever evaluation decides with less than the whole message, it
        decides as it does with the whole message; and it decides with
        what L{needs} names.
        """
        matcher = compileSearch(key, CONTEXT)
        for seq, (info, raw) in enumerate(MESSAGES, 1):
            whole = matcher.evaluate(info, seq, full=raw)
            self.assertIsNotNone(whole)
            bare = matcher.evaluate(info, seq)
            cached = matcher.evaluate(info, seq, fields=_fields(raw))
            indexed = matcher.evaluate(
                info, seq, fields=_fields(raw), textIndex=_index(raw)
            )
            header = matcher.evaluate(info, seq, header=_header(raw))
            self.assertIn(bare, (None, whole))
            self.assertIn(cached, (None, whole))
            self.assertIn(indexed, (None, whole))
            self.assertIn(header, (None, whole))
            if matcher.needs <= Needs.HEADER:
                self.assertEqual(header, whole)
            if matcher.needs is Needs.NOTHING:
                self.assertEqual(bare, whole)
            if not matcher.decidesUnread:
                self.assertIsNone(bare)
