# -*- test-case-name: tests.test_message -*-
"""
Tests for L{gomail_twisted.message}: header blocks (RFC 5322 2.2), the split
at the empty line, and lazily parsed MIME parts.
"""

from __future__ import annotations

import base64

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from gomail_twisted.message import Headers, MessagePart, ParsedMessage, splitHeaderBlock


class HeadersTests(SynchronousTestCase):
    """
    L{Headers} keeps every field in order with case-insensitive lookup.
    """

    BLOCK = (
        b"Received: from a\r\n"
        b"Subject: Hello\r\n"
        b"Received: from b\r\n"
        b"X-Empty:\r\n"
        b"received: from c\r\n"
    )

    def test_orderAndAllOccurrences(self) -> None:
        """
        C{items} and iteration give every field in order, repeated ones
        included.
        """
        headers = Headers(self.BLOCK)
        expected = [
            ("Received", "from a"),
            ("Subject", "Hello"),
            ("Received", "from b"),
            ("X-Empty", ""),
            ("received", "from c"),
        ]
        self.assertEqual(headers.items(), expected)
        self.assertEqual(list(headers), expected)
        self.assertEqual(len(headers), 5)

    def test_caseInsensitiveLookup(self) -> None:
        """
        Lookups ignore case; C{get} and C{[]} give the first occurrence,
        C{getAll} every one in order.
        """
        headers = Headers(self.BLOCK)
        self.assertEqual(headers.getAll("RECEIVED"), ["from a", "from b", "from c"])
        self.assertEqual(headers.get("received"), "from a")
        self.assertEqual(headers["subject"], "Hello")
        self.assertIn("SUBJECT", headers)
        self.assertNotIn("To", headers)
        self.assertNotIn(1, headers)

    def test_missing(self) -> None:
        """
        An absent field gives the default, an empty list, or L{KeyError}.
        """
        headers = Headers(self.BLOCK)
        self.assertIsNone(headers.get("To"))
        self.assertEqual(headers.get("To", "x"), "x")
        self.assertEqual(headers.getAll("To"), [])
        self.assertRaises(KeyError, headers.__getitem__, "To")

    def test_emptyValueIsPresent(self) -> None:
        """
        A field with an empty value is present, with the empty string.
        """
        headers = Headers(self.BLOCK)
        self.assertEqual(headers.get("x-empty", "default"), "")
        self.assertEqual(headers["X-Empty"], "")

    def test_getAllIsACopy(self) -> None:
        """
        Changing a returned list does not change the headers.
        """
        headers = Headers(self.BLOCK)
        headers.getAll("Received").append("x")
        headers.items().clear()
        self.assertEqual(len(headers.getAll("Received")), 3)
        self.assertEqual(len(headers), 5)

    def test_unfolding(self) -> None:
        """
        Continuation lines join the field before them (RFC 5322 2.2.3).
        """
        headers = Headers(
            b"Subject: a long\r\n  subject\r\n\tline\r\nTo: x@y\r\n"
            b"References: <a@b>\r\n <c@d>\r\n"
        )
        self.assertEqual(
            headers.items(),
            [
                ("Subject", "a long subject line"),
                ("To", "x@y"),
                ("References", "<a@b> <c@d>"),
            ],
        )

    def test_foldAfterEmptyFirstLine(self) -> None:
        """
        A value that starts on a continuation line has no leading space.
        """
        headers = Headers(b"Subject:\r\n hello\r\n world\r\nTo:\r\n \r\n")
        self.assertEqual(headers.items(), [("Subject", "hello world"), ("To", "")])

    def test_rawKept(self) -> None:
        """
        The exact bytes are in C{raw}.
        """
        block = b"Subject: a\r\n b\r\n"
        self.assertEqual(Headers(block).raw, block)

    def test_nonUTF8(self) -> None:
        """
        UTF-8 is decoded (RFC 6532); other bytes become U+FFFD, not an error.
        """
        headers = Headers(b"Subject: caf\xc3\xa9\r\nX-Latin1: caf\xe9\r\nX-\xff: v\r\n")
        self.assertEqual(
            headers.items(),
            [
                ("Subject", "caf\u00e9"),
                ("X-Latin1", "caf\ufffd"),
                ("X-\ufffd", "v"),
            ],
        )

    def test_lineWithoutColon(self) -> None:
        """
        A line without a colon is kept with an empty name, in order.
        """
        headers = Headers(b"From: a\r\nnot a header\r\nTo: b\r\n")
        self.assertEqual(
            headers.items(), [("From", "a"), ("", "not a header"), ("To", "b")]
        )
        self.assertEqual(headers.getAll(""), ["not a header"])

    def test_bareLFAndWhitespace(self) -> None:
        """
        Bare LF ends lines too; spaces around the name and value are dropped;
        the first colon splits.
        """
        headers = Headers(b"A: 1\nB : 2 \r\nC:x:y\r\n")
        self.assertEqual(headers.items(), [("A", "1"), ("B", "2"), ("C", "x:y")])

    def test_leadingContinuation(self) -> None:
        """
        A continuation line with nothing to continue is read as a line of its
        own.
        """
        headers = Headers(b" Subject: x\r\n")
        self.assertEqual(headers.items(), [("Subject", "x")])

    def test_empty(self) -> None:
        """
        An empty block has no fields.
        """
        headers = Headers(b"")
        self.assertEqual(headers.items(), [])
        self.assertEqual(len(headers), 0)
        self.assertEqual(repr(headers), "<Headers []>")

    def test_repr(self) -> None:
        """
        C{repr} lists the field names in order.
        """
        self.assertEqual(repr(Headers(b"A: 1\r\nb: 2\r\n")), "<Headers ['A', 'b']>")

    @settings(max_examples=300, deadline=None)
    @given(st.binary(max_size=300))
    def test_arbitraryBytes(self, raw: bytes) -> None:
        """
        Any bytes make a header block whose lookups agree with its items.
        """
        headers = Headers(raw)
        items = headers.items()
        self.assertEqual(len(headers), len(items))
        for name, value in items:
            self.assertIn(name, headers)
            self.assertIn(value, headers.getAll(name.upper()))
            self.assertNotIn("\n", value)

    @settings(max_examples=200, deadline=None)
    @given(
        st.lists(
            st.tuples(
                st.from_regex(r"[A-Za-z][A-Za-z0-9-]{0,10}", fullmatch=True),
                st.from_regex(r"[!-~]{1,8}( [!-~]{1,8}){0,3}", fullmatch=True),
                st.booleans(),
            ),
            max_size=8,
        )
    )
    def test_foldedRoundTrip(self, fields: list[tuple[str, str, bool]]) -> None:
        """
        Fields written with or without folding at their spaces read back as
        written.
        """
        raw = b"".join(
            f"{name}: {value.replace(' ', chr(13) + chr(10) + ' ') if fold else value}"
            "\r\n".encode()
            for name, value, fold in fields
        )
        self.assertEqual(
            Headers(raw).items(), [(name, value) for name, value, _ in fields]
        )


class SplitHeaderBlockTests(SynchronousTestCase):
    """
    L{splitHeaderBlock} splits at the first empty line.
    """

    TABLE: list[tuple[bytes, tuple[bytes, bytes]]] = [
        (b"A: 1\r\n\r\nbody\r\n", (b"A: 1\r\n", b"body\r\n")),
        (b"A: 1\r\nB: 2\r\n\r\n", (b"A: 1\r\nB: 2\r\n", b"")),
        (b"A: 1\r\n\r\nb\r\n\r\nc\r\n", (b"A: 1\r\n", b"b\r\n\r\nc\r\n")),
        (b"\r\nbody\r\n", (b"", b"body\r\n")),
        (b"\r\n\r\nbody\r\n", (b"", b"\r\nbody\r\n")),
        (b"A: 1\r\nB: 2\r\n", (b"A: 1\r\nB: 2\r\n", b"")),
        (b"", (b"", b"")),
        (b"A: 1\r\n\r\n", (b"A: 1\r\n", b"")),
    ]

    def test_table(self) -> None:
        """
        Each message splits into the expected header block and body.
        """
        for message, expected in self.TABLE:
            self.assertEqual(splitHeaderBlock(message), expected, message)


def _mime(*lines: str) -> bytes:
    return "\r\n".join(lines).encode() + b"\r\n"


ALTERNATIVE = _mime(
    "From: a@example.com",
    "To: b@example.com",
    "Subject: parts",
    "MIME-Version: 1.0",
    'Content-Type: multipart/mixed; boundary="outer"',
    "",
    "preamble",
    "--outer",
    'Content-Type: multipart/alternative; boundary="inner"',
    "",
    "--inner",
    "Content-Type: text/plain; charset=utf-8",
    "Content-Transfer-Encoding: quoted-printable",
    "",
    "caf=C3=A9",
    "--inner",
    "Content-Type: text/html; charset=utf-8",
    "",
    "<p>cafe</p>",
    "--inner--",
    "--outer",
    "Content-Type: application/octet-stream",
    'Content-Disposition: attachment; filename="data.bin"',
    "Content-Transfer-Encoding: base64",
    "",
    base64.b64encode(bytes(range(256))).decode(),
    "--outer",
    "Content-Type: text/plain",
    "Content-Disposition: attachment; filename*=utf-8''r%C3%A9sum%C3%A9.txt",
    "",
    "hello",
    "--outer--",
)


class ParsedMessageTests(SynchronousTestCase):
    """
    L{ParsedMessage} gives headers, body and MIME leaves of its bytes.
    """

    def test_headersAndBody(self) -> None:
        """
        C{headers} and C{body} are the two sides of the first empty line.
        """
        message = ParsedMessage(b"Subject: x\r\nTo: y\r\n\r\nbody\r\n")
        self.assertEqual(message.headers.items(), [("Subject", "x"), ("To", "y")])
        self.assertEqual(message.body, b"body\r\n")
        self.assertEqual(message.raw, b"Subject: x\r\nTo: y\r\n\r\nbody\r\n")

    def test_lazy(self) -> None:
        """
        Nothing is parsed until asked, and each view is parsed once.
        """
        message = ParsedMessage(b"Subject: x\r\n\r\nbody\r\n")
        self.assertEqual(vars(message), {"raw": b"Subject: x\r\n\r\nbody\r\n"})
        self.assertIs(message.headers, message.headers)
        self.assertIs(message.parts, message.parts)
        self.assertEqual(set(vars(message)), {"raw", "headers", "parts", "email"})

    def test_singlePart(self) -> None:
        """
        A plain message is one text/plain part, not an alternative.
        """
        message = ParsedMessage(b"Subject: x\r\n\r\nhello\r\n")
        self.assertEqual(
            message.parts,
            (
                MessagePart(
                    headers=(("Subject", "x"),),
                    contentType="text/plain",
                    payload=b"hello\r\n",
                    filename=None,
                    alternative=False,
                ),
            ),
        )

    def test_alternativeMarked(self) -> None:
        """
        The leaves of a multipart/alternative are marked, other leaves are
        not, in depth-first order.
        """
        parts = ParsedMessage(ALTERNATIVE).parts
        self.assertEqual(
            [(p.contentType, p.alternative) for p in parts],
            [
                ("text/plain", True),
                ("text/html", True),
                ("application/octet-stream", False),
                ("text/plain", False),
            ],
        )

    def test_payloadsDecoded(self) -> None:
        """
        Payloads are transfer-decoded: quoted-printable and base64.
        """
        parts = ParsedMessage(ALTERNATIVE).parts
        self.assertEqual(parts[0].payload, b"caf\xc3\xa9")
        self.assertEqual(parts[1].payload, b"<p>cafe</p>")
        self.assertEqual(parts[2].payload, bytes(range(256)))
        self.assertEqual(parts[3].payload, b"hello")

    def test_attachmentFilenames(self) -> None:
        """
        Attachments carry their file names, RFC 2231 encoding decoded.
        """
        parts = ParsedMessage(ALTERNATIVE).parts
        self.assertEqual(
            [p.filename for p in parts],
            [None, None, "data.bin", "r\u00e9sum\u00e9.txt"],
        )

    def test_partHeaders(self) -> None:
        """
        Each part has its own headers, in order.
        """
        parts = ParsedMessage(ALTERNATIVE).parts
        self.assertEqual(
            parts[2].headers,
            (
                ("Content-Type", "application/octet-stream"),
                ("Content-Disposition", 'attachment; filename="data.bin"'),
                ("Content-Transfer-Encoding", "base64"),
            ),
        )

    def test_topHeadersWithTrace(self) -> None:
        """
        The top-level headers include a prepended trace header first.
        """
        message = ParsedMessage(b"Received: from x\r\n\tby y; date\r\n" + ALTERNATIVE)
        self.assertEqual(message.headers.items()[0], ("Received", "from x by y; date"))
        self.assertEqual(message.headers.get("subject"), "parts")
        self.assertEqual(len(message.parts), 4)

    def test_malformedStructuredHeader(self) -> None:
        """
        A structured header the standard library cannot parse is given as
        its text instead of making C{parts} raise.
        """
        message = ParsedMessage(
            b"Message-ID: <[>\r\nSubject: =?utf-8?q?caf=C3=A9?=\r\n\r\nx\r\n"
        )
        self.assertEqual(
            message.parts[0].headers,
            (("Message-ID", "<[>"), ("Subject", "caf\u00e9")),
        )
        self.assertEqual(message.parts[0].payload, b"x\r\n")

    @settings(max_examples=75, deadline=None)
    @given(
        st.lists(
            st.sampled_from(
                [
                    b"Content-Type: multipart/mixed; boundary=b\r\n",
                    b'Content-Type: multipart/alternative; boundary="b"\r\n',
                    b"Content-Type: message/rfc822\r\n",
                    b"Content-Type: ;;;\r\n",
                    b"Content-Transfer-Encoding: base64\r\n",
                    b"Content-Transfer-Encoding: quoted-printable\r\n",
                    b"Content-Disposition: attachment; filename*=utf-8''%ff%C3\r\n",
                    b"Content-Disposition: attachment; filename*0*=x'y'%\r\n",
                    b"Message-ID: <[>\r\n",
                    b'To: "a" <@>, b@[\r\n',
                    b"Subject: =?x?b?\xff?=\r\n",
                    b" folded\r\n",
                    b"\r\n",
                    b"--b\r\n",
                    b"--b--\r\n",
                    b"=ZZ abc==\r\n",
                    b"\xff\xfe\r\n",
                ]
            ),
            max_size=16,
        )
    )
    def test_arbitraryStructureNeverRaises(self, fragments: list[bytes]) -> None:
        """
        Messages built from malformed MIME fragments give headers and parts
        without raising, every payload as bytes.
        """
        message = ParsedMessage(b"".join(fragments))
        self.assertIsInstance(message.headers.items(), list)
        for part in message.parts:
            self.assertIsInstance(part.payload, bytes)
            self.assertIsInstance(part.contentType, str)
