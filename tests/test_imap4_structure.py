# -*- test-case-name: tests.test_imap4_structure -*-
"""
Tests for L{gomail_twisted.imap4._structure} and the modules beside it:
a message parsed once into its structure, from which C{ENVELOPE},
C{BODY}, C{BODYSTRUCTURE} and C{BODY[section]} are answered as RFC 3501
6.4.5 and 7.4.2 say and as Dovecot answers.

The expected responses are written out by hand from the RFCs; where a
comment says so, Dovecot 2.3 sends the same bytes for the same message.
"""

from __future__ import annotations

import json
import re

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from gomail_twisted.imap4._bodystructure import (
    applyPartial,
    bodyStructure,
    envelope,
    sectionBytes,
    sectionRange,
)
from gomail_twisted.imap4._commands import BodySection
from gomail_twisted.imap4._envelope import (
    Address,
    headerFields,
    headerValues,
    parseAddressList,
)
from gomail_twisted.imap4._structure import (
    MAX_NESTING,
    MAX_PARTS,
    MESSAGE,
    MULTIPART,
    BodyPart,
    MessageStructure,
    parseStructure,
)
from gomail_twisted.imap4._structurecodec import VERSION


def _message(*lines: bytes) -> bytes:
    """
    @param lines: the message's lines, without line ends.
    @return: the lines, each ending in CRLF.
    """
    return b"".join(line + b"\r\n" for line in lines)


_LITERAL = re.compile(rb"\{(\d+)\}\r\n")
_ATOM = re.compile(rb'[^(){ \x00-\x1f\x7f%*"\\\]]+')

Value = bytes | None | list["Value"]


def _read(data: bytes, position: int = 0) -> tuple[Value, int]:
    """
    Read one value as a client following RFC 3501 9 would: a
    parenthesized list, NIL, a quoted string, a literal or an atom.

    @param data: the response bytes.
    @param position: where the value starts.
    @return: the value (a list, L{None} for NIL, bytes otherwise) and
        where it ends.
    @raise ValueError: the bytes are not a value.
    """
    if data[position : position + 1] == b"(":
        items: list[Value] = []
        position += 1
        while data[position : position + 1] != b")":
            if items:
                # Lists of lists (bodies, addresses) have no space between.
                if data[position : position + 1] == b" ":
                    position += 1
                elif data[position : position + 1] != b"(":
                    raise ValueError("no space between items")
            if position >= len(data):
                raise ValueError("unbalanced list")
            item, position = _read(data, position)
            items.append(item)
        return items, position + 1
    literal = _LITERAL.match(data, position)
    if literal is not None:
        end = literal.end() + int(literal.group(1))
        if end > len(data):
            raise ValueError("short literal")
        return data[literal.end() : end], end
    if data[position : position + 1] == b'"':
        out = bytearray()
        position += 1
        while True:
            char = data[position : position + 1]
            if char == b"":
                raise ValueError("unterminated quoted string")
            if char in (b"\r", b"\n", b"\x00"):
                raise ValueError("CR, LF or NUL in a quoted string")
            if char == b'"':
                return bytes(out), position + 1
            if char == b"\\":
                escaped = data[position + 1 : position + 2]
                if escaped not in (b'"', b"\\"):
                    raise ValueError("bad escape")
                out += escaped
                position += 2
            else:
                out += char
                position += 1
    atom = _ATOM.match(data, position)
    if atom is None:
        raise ValueError(f"no value at {position}: {data[position : position + 20]!r}")
    value = atom.group()
    return (None if value == b"NIL" else value), atom.end()


def _parse(data: bytes) -> Value:
    """
    @param data: one complete value.
    @return: the value.
    @raise ValueError: C{data} is not exactly one value.
    """
    value, end = _read(data)
    if end != len(data):
        raise ValueError("trailing bytes")
    return value


def _checkNString(value: Value) -> None:
    if isinstance(value, list):
        raise ValueError("list where a string belongs")


def _checkParams(value: Value) -> None:
    if value is None:
        return
    if not isinstance(value, list) or not value or len(value) % 2:
        raise ValueError("bad body-fld-param")
    for item in value:
        if not isinstance(item, bytes):
            raise ValueError("bad parameter")


def _checkExtension(items: list[Value]) -> None:
    """
    Check C{body-fld-dsp body-fld-lang body-fld-loc}.
    """
    if len(items) != 3:
        raise ValueError("bad extension data")
    disposition, language, location = items
    if disposition is not None:
        if not isinstance(disposition, list) or len(disposition) != 2:
            raise ValueError("bad disposition")
        _checkNString(disposition[0])
        _checkParams(disposition[1])
    if isinstance(language, list):
        for tag in language:
            if not isinstance(tag, bytes):
                raise ValueError("bad language")
    _checkNString(location)


def _checkAddresses(value: Value) -> None:
    if value is None:
        return
    if not isinstance(value, list) or not value:
        raise ValueError("bad address list")
    for address in value:
        if not isinstance(address, list) or len(address) != 4:
            raise ValueError("bad address")
        for item in address:
            _checkNString(item)


def _checkEnvelope(value: Value) -> None:
    """
    Check an C{envelope} against RFC 3501 9.
    """
    if not isinstance(value, list) or len(value) != 10:
        raise ValueError("an envelope has 10 items")
    for index in (0, 1, 8, 9):
        _checkNString(value[index])
    for index in range(2, 8):
        _checkAddresses(value[index])


def _checkBody(value: Value, extended: bool) -> None:
    """
    Check a C{body} against RFC 3501 9 (C{body-type-mpart},
    C{body-type-1part} and their extension data).
    """
    if not isinstance(value, list) or not value:
        raise ValueError("a body is a list")
    if isinstance(value[0], list):
        children = 0
        while children < len(value) and isinstance(value[children], list):
            _checkBody(value[children], extended)
            children += 1
        rest = value[children:]
        if not rest or not isinstance(rest[0], bytes):
            raise ValueError("no multipart subtype")
        if extended:
            if len(rest) != 5:
                raise ValueError("bad multipart extension data")
            _checkParams(rest[1])
            _checkExtension(rest[2:])
        elif len(rest) != 1:
            raise ValueError("BODY has no extension data")
        return
    if len(value) < 7:
        raise ValueError("short body-type-1part")
    mediaType, subtype, params, contentID, description, encoding, size = value[:7]
    if not isinstance(mediaType, bytes) or not isinstance(subtype, bytes):
        raise ValueError("bad media type")
    _checkParams(params)
    _checkNString(contentID)
    _checkNString(description)
    if not isinstance(encoding, bytes) or not isinstance(size, bytes):
        raise ValueError("bad encoding or size")
    int(size)
    rest = value[7:]
    if mediaType.lower() == b"text":
        if not rest or not isinstance(rest[0], bytes):
            raise ValueError("no line count")
        int(rest[0])
        rest = rest[1:]
    elif (mediaType.lower(), subtype.lower()) == (b"message", b"rfc822"):
        if len(rest) < 3:
            raise ValueError("short message/rfc822")
        _checkEnvelope(rest[0])
        _checkBody(rest[1], extended)
        if not isinstance(rest[2], bytes):
            raise ValueError("no line count")
        int(rest[2])
        rest = rest[3:]
    if extended:
        if len(rest) != 4:
            raise ValueError("bad extension data")
        _checkNString(rest[0])
        _checkExtension(rest[1:])
    elif rest:
        raise ValueError("BODY has no extension data")


def _parts(part: BodyPart) -> list[BodyPart]:
    """
    @return: C{part} and every part under it.
    """
    found = [part]
    for child in part.children:
        found.extend(_parts(child))
    return found


def _depth(part: BodyPart) -> int:
    return 1 + max((_depth(child) for child in part.children), default=0)


SIMPLE = _message(
    b"From: Alice <alice@example.com>",
    b"To: Bob <bob@example.org>",
    b"Subject: Hello",
    b"Date: Mon, 1 Jan 2024 10:00:00 +0000",
    b"Message-ID: <1@example.com>",
    b"",
    b"Hi Bob.",
)

ATTACHMENT = _message(
    b"MIME-Version: 1.0",
    b'Content-Type: multipart/mixed; boundary="XYZ"',
    b"",
    b"--XYZ",
    b"Content-Type: text/plain; charset=us-ascii",
    b"",
    b"See attached.",
    b"--XYZ",
    b'Content-Type: application/pdf; name="r.pdf"',
    b"Content-Transfer-Encoding: base64",
    b"Content-Disposition: attachment;",
    b" filename*0*=utf-8''%E2%82%AC;",
    b" filename*1*=.pdf",
    b"Content-ID: <part2@x>",
    b"Content-Description: The report",
    b"",
    b"JVBERi0=",
    b"--XYZ--",
)

NESTED = _message(
    b"Content-Type: multipart/mixed; boundary=outer",
    b"",
    b"This is a preamble.",
    b"--outer",
    b"Content-Type: multipart/alternative; boundary=inner",
    b"",
    b"--inner",
    b"",
    b"plain",
    b"--inner",
    b"Content-Type: text/html; charset=utf-8",
    b"",
    b"<b>html</b>",
    b"--inner--",
    b"--outer",
    b"Content-Type: image/png",
    b"Content-Transfer-Encoding: base64",
    b"",
    b"iVBORw==",
    b"--outer--",
    b"Epilogue.",
)

FORWARD = _message(
    b"From: a@example.com",
    b"Subject: Fwd",
    b"Content-Type: multipart/mixed; boundary=b",
    b"",
    b"--b",
    b"",
    b"See below.",
    b"--b",
    b"Content-Type: message/rfc822",
    b"",
    b'From: "Carol C." <carol@example.net>',
    b"Subject: Inner",
    b"Content-Type: multipart/alternative; boundary=c",
    b"",
    b"--c",
    b"",
    b"x",
    b"--c",
    b"Content-Type: text/html",
    b"",
    b"<i>y</i>",
    b"--c--",
    b"",
    b"--b--",
)

DIGEST = _message(
    b"Content-Type: multipart/digest; boundary=d",
    b"",
    b"--d",
    b"",
    b"Subject: one",
    b"",
    b"first",
    b"--d",
    b"Content-Type: text/plain",
    b"",
    b"second",
    b"--d--",
)

_TEXT = b'"text" "plain" ("charset" "us-ascii") NIL NIL "7bit"'
_NO_EXTENSION = b" NIL NIL NIL NIL"

# (name, message, ENVELOPE, BODYSTRUCTURE)
STRUCTURES: list[tuple[str, bytes, bytes, bytes]] = [
    (
        "simple text (Dovecot agrees)",
        SIMPLE,
        b'("Mon, 1 Jan 2024 10:00:00 +0000" "Hello"'
        b' (("Alice" NIL "alice" "example.com"))'
        b' (("Alice" NIL "alice" "example.com"))'
        b' (("Alice" NIL "alice" "example.com"))'
        b' (("Bob" NIL "bob" "example.org")) NIL NIL NIL "<1@example.com>")',
        b"(" + _TEXT + b" 9 1" + _NO_EXTENSION + b")",
    ),
    (
        "MIME text with parameters",
        _message(
            b"MIME-Version: 1.0",
            b"Content-Type: text/plain; charset=UTF-8; format=flowed",
            b"Content-Transfer-Encoding: quoted-printable",
            b"",
            b"caf=C3=A9",
        ),
        b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)",
        b'("text" "plain" ("charset" "UTF-8" "format" "flowed") NIL NIL'
        b' "quoted-printable" 11 1' + _NO_EXTENSION + b")",
    ),
    (
        "no Content-Type: text/plain in us-ascii (RFC 2045 5.2)",
        _message(b"Subject: plain", b"", b"one", b"two"),
        b'(NIL "plain" NIL NIL NIL NIL NIL NIL NIL NIL)',
        b"(" + _TEXT + b" 10 2" + _NO_EXTENSION + b")",
    ),
    (
        "attachment with an RFC 2231 filename (Dovecot agrees)",
        ATTACHMENT,
        b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)",
        b"((" + _TEXT + b" 13 0" + _NO_EXTENSION + b")"
        b'("application" "pdf" ("name" "r.pdf") "<part2@x>" "The report"'
        b' "base64" 8 NIL ("attachment" ("filename*" "utf-8\'\'%E2%82%AC.pdf"))'
        b' NIL NIL) "mixed" ("boundary" "XYZ") NIL NIL NIL)',
    ),
    (
        "alternative in mixed, preamble and epilogue (Dovecot agrees)",
        NESTED,
        b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)",
        b"(((" + _TEXT + b" 5 0" + _NO_EXTENSION + b")"
        b'("text" "html" ("charset" "utf-8") NIL NIL "7bit" 11 0'
        + _NO_EXTENSION
        + b') "alternative" ("boundary" "inner") NIL NIL NIL)'
        b'("image" "png" NIL NIL NIL "base64" 8 NIL NIL NIL NIL)'
        b' "mixed" ("boundary" "outer") NIL NIL NIL)',
    ),
    (
        "forwarded message with its own multipart (Dovecot agrees)",
        FORWARD,
        b'(NIL "Fwd" ((NIL NIL "a" "example.com")) ((NIL NIL "a" "example.com"))'
        b' ((NIL NIL "a" "example.com")) NIL NIL NIL NIL NIL)',
        b"((" + _TEXT + b" 10 0" + _NO_EXTENSION + b")"
        b'("message" "rfc822" NIL NIL NIL "7bit" 164'
        b' (NIL "Inner" (("Carol C." NIL "carol" "example.net"))'
        b' (("Carol C." NIL "carol" "example.net"))'
        b' (("Carol C." NIL "carol" "example.net")) NIL NIL NIL NIL NIL)'
        b" ((" + _TEXT + b" 1 0" + _NO_EXTENSION + b")"
        b'("text" "html" ("charset" "us-ascii") NIL NIL "7bit" 8 0'
        + _NO_EXTENSION
        + b') "alternative" ("boundary" "c") NIL NIL NIL) 12 NIL NIL NIL NIL)'
        b' "mixed" ("boundary" "b") NIL NIL NIL)',
    ),
    (
        "digest parts default to message/rfc822 (RFC 2046 5.1.5)",
        DIGEST,
        b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)",
        b'(("message" "rfc822" NIL NIL NIL "7bit" 21'
        b' (NIL "one" NIL NIL NIL NIL NIL NIL NIL NIL)'
        b" (" + _TEXT + b" 5 0" + _NO_EXTENSION + b") 2 NIL NIL NIL NIL)"
        b"(" + _TEXT + b" 6 0" + _NO_EXTENSION + b")"
        b' "digest" ("boundary" "d") NIL NIL NIL)',
    ),
    (
        "missing final boundary: the last part runs to the end",
        _message(
            b"Content-Type: multipart/mixed; boundary=m",
            b"",
            b"--m",
            b"",
            b"one",
            b"--m",
            b"Content-Type: text/plain",
            b"",
            b"truncated part",
        ),
        b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)",
        b"((" + _TEXT + b" 3 0" + _NO_EXTENSION + b")"
        b"(" + _TEXT + b" 16 1" + _NO_EXTENSION + b")"
        b' "mixed" ("boundary" "m") NIL NIL NIL)',
    ),
    (
        "a part header cut by a boundary (Dovecot agrees)",
        _message(
            b"Content-Type: multipart/mixed; boundary=b",
            b"",
            b"--b",
            b"Content-Type: text/html",
            b"--b",
            b"X-Other: 1",
            b"--b--",
        ),
        b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)",
        b'(("text" "html" ("charset" "us-ascii") NIL NIL "7bit" 0 0'
        + _NO_EXTENSION
        + b")("
        + _TEXT
        + b" 0 0"
        + _NO_EXTENSION
        + b")"
        b' "mixed" ("boundary" "b") NIL NIL NIL)',
    ),
    (
        "the longest boundary wins, an outer one ends the inner multipart",
        _message(
            b"Content-Type: multipart/mixed; boundary=foo",
            b"",
            b"--foo",
            b"Content-Type: multipart/mixed; boundary=foobar",
            b"",
            b"--foobar",
            b"",
            b"inner",
            b"--foo",
            b"",
            b"outer two",
            b"--foo--",
        ),
        b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)",
        b"(((" + _TEXT + b" 5 0" + _NO_EXTENSION + b")"
        b' "mixed" ("boundary" "foobar") NIL NIL NIL)'
        b"(" + _TEXT + b" 9 0" + _NO_EXTENSION + b")"
        b' "mixed" ("boundary" "foo") NIL NIL NIL)',
    ),
    (
        "a multipart without a boundary gets Dovecot's empty part",
        _message(b"Content-Type: multipart/mixed", b"", b"--b", b"", b"one", b"--b--"),
        b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)",
        b"((" + _TEXT + b" 0 0" + _NO_EXTENSION + b') "mixed" NIL NIL NIL NIL)',
    ),
    (
        "empty body",
        _message(b"Subject: empty", b""),
        b'(NIL "empty" NIL NIL NIL NIL NIL NIL NIL NIL)',
        b"(" + _TEXT + b" 0 0" + _NO_EXTENSION + b")",
    ),
    (
        "header only, no blank line",
        _message(b"Subject: no body"),
        b'(NIL "no body" NIL NIL NIL NIL NIL NIL NIL NIL)',
        b"(" + _TEXT + b" 0 0" + _NO_EXTENSION + b")",
    ),
    (
        "empty message",
        b"",
        b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)",
        b"(" + _TEXT + b" 0 0" + _NO_EXTENSION + b")",
    ),
    (
        "LF line ends: sizes are the stored octets",
        b"Subject: lf\nContent-Type: text/plain\n\nline one\nline two\n",
        b'(NIL "lf" NIL NIL NIL NIL NIL NIL NIL NIL)',
        b"(" + _TEXT + b" 18 2" + _NO_EXTENSION + b")",
    ),
    (
        "encoded words stay encoded; folding is undone (RFC 5322 2.2.3)",
        _message(
            b"Subject: =?UTF-8?B?w6k=?=",
            b" =?ISO-8859-1?Q?caf=E9?=",
            b"From: =?UTF-8?Q?J=C3=BCrgen?= <j@example.de>",
            b"",
        ),
        b'(NIL "=?UTF-8?B?w6k=?= =?ISO-8859-1?Q?caf=E9?="'
        b' (("=?UTF-8?Q?J=C3=BCrgen?=" NIL "j" "example.de"))'
        b' (("=?UTF-8?Q?J=C3=BCrgen?=" NIL "j" "example.de"))'
        b' (("=?UTF-8?Q?J=C3=BCrgen?=" NIL "j" "example.de")) NIL NIL NIL NIL NIL)',
        b"(" + _TEXT + b" 0 0" + _NO_EXTENSION + b")",
    ),
    (
        "groups, quoted local parts, Sender and Reply-To (Dovecot agrees)",
        _message(
            b'To: Friends: alice@example.com, "Bob B" <bob@example.com>;,'
            b" undisclosed-recipients:;",
            b'Cc: "john doe"@example.com, "a\\"b"@x.y',
            b"From: a@b.c",
            b"Sender: s@b.c",
            b"Reply-To:",
            b"",
        ),
        b'(NIL NIL ((NIL NIL "a" "b.c")) ((NIL NIL "s" "b.c")) ((NIL NIL "a" "b.c"))'
        b' ((NIL NIL "Friends" NIL)(NIL NIL "alice" "example.com")'
        b'("Bob B" NIL "bob" "example.com")(NIL NIL NIL NIL)'
        b'(NIL NIL "undisclosed-recipients" NIL)(NIL NIL NIL NIL))'
        b' ((NIL NIL "john doe" "example.com")(NIL NIL "a\\"b" "x.y"))'
        b" NIL NIL NIL)",
        b"(" + _TEXT + b" 0 0" + _NO_EXTENSION + b")",
    ),
    (
        "8-bit header octets go as literals",
        _message(
            b"Subject: caf\xc3\xa9",
            b"From: J\xc3\xbcrgen <j@example.de>",
            b"Content-Type: text/plain; name=\xc3\xa9",
            b"",
        ),
        b'(NIL {5}\r\ncaf\xc3\xa9 (({7}\r\nJ\xc3\xbcrgen NIL "j" "example.de"))'
        b' (({7}\r\nJ\xc3\xbcrgen NIL "j" "example.de"))'
        b' (({7}\r\nJ\xc3\xbcrgen NIL "j" "example.de"))'
        b" NIL NIL NIL NIL NIL)",
        b'("text" "plain" ("name" {2}\r\n\xc3\xa9 "charset" "us-ascii") NIL NIL'
        b' "7bit" 0 0' + _NO_EXTENSION + b")",
    ),
    (
        "NUL in a header becomes U+FFFD (the encoder refuses NUL)",
        _message(b"Subject: a\x00b", b"From: x\x00y@example.com", b""),
        b"(NIL {5}\r\na\xef\xbf\xbdb ((NIL NIL {5}\r\nx\xef\xbf\xbdy"
        b' "example.com")) ((NIL NIL {5}\r\nx\xef\xbf\xbdy "example.com"))'
        b' ((NIL NIL {5}\r\nx\xef\xbf\xbdy "example.com")) NIL NIL NIL NIL NIL)',
        b"(" + _TEXT + b" 0 0" + _NO_EXTENSION + b")",
    ),
    (
        "Content-Language, Content-Location, Content-MD5 (Dovecot agrees)",
        _message(
            b"MIME-Version: 1.0",
            b"Content-Type: text/html; charset=utf-8",
            b"Content-Language: en, de-AT (Austrian)",
            b"Content-Location: http://example.com/",
            b" page.html",
            b"Content-MD5: Q2hlY2sgSW50ZWdyaXR5IQ==",
            b"Content-Disposition: inline",
            b"",
            b"<p>x</p>",
        ),
        b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)",
        b'("text" "html" ("charset" "utf-8") NIL NIL "7bit" 10 1'
        b' "Q2hlY2sgSW50ZWdyaXR5IQ==" ("inline" NIL) ("en" "de-AT")'
        b' "http://example.com/ page.html")',
    ),
    (
        "Content-* without MIME-Version or Content-Type do not count",
        _message(
            b"Content-Transfer-Encoding: base64",
            b"Content-Disposition: attachment",
            b"",
            b"x",
        ),
        b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)",
        b"(" + _TEXT + b" 3 1" + _NO_EXTENSION + b")",
    ),
    (
        "a malformed Content-Type is text/plain (RFC 2045 5.2)",
        _message(b"Content-Type: garbage; charset=x", b"", b"x"),
        b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)",
        b"(" + _TEXT + b" 3 1" + _NO_EXTENSION + b")",
    ),
    (
        "case as written; continuations, comments and junk in parameters",
        _message(
            b"MIME-Version: 1.0",
            b'Content-Type: Text/HTML (comment); Charset="UTF-8"; junk;'
            b' title*0="a "; title*1="b"; boundary=----=_Part_1',
            b"Content-Transfer-Encoding: BASE64",
            b"",
        ),
        b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)",
        b'("Text" "HTML" ("Charset" "UTF-8" "boundary" "----=_Part_1"'
        b' "title" "a b") NIL NIL "BASE64" 0 0' + _NO_EXTENSION + b")",
    ),
    (
        "top-level message/rfc822 (Dovecot agrees)",
        _message(
            b"Content-Type: message/rfc822",
            b"",
            b"Subject: inner",
            b"",
            b"body",
        ),
        b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)",
        b'("message" "rfc822" NIL NIL NIL "7bit" 24'
        b' (NIL "inner" NIL NIL NIL NIL NIL NIL NIL NIL)'
        b" (" + _TEXT + b" 6 1" + _NO_EXTENSION + b") 3 NIL NIL NIL NIL)",
    ),
]


class StructureTableTests(SynchronousTestCase):
    """
    The ENVELOPE and BODYSTRUCTURE of a table of messages.
    """

    def test_envelope(self) -> None:
        """
        Each message's ENVELOPE is the expected one.
        """
        for name, message, expected, _ in STRUCTURES:
            self.assertEqual(
                envelope(parseStructure(message)), expected, f"{name}: {message!r}"
            )

    def test_bodyStructure(self) -> None:
        """
        Each message's BODYSTRUCTURE is the expected one.
        """
        for name, message, _, expected in STRUCTURES:
            self.assertEqual(
                bodyStructure(parseStructure(message), True),
                expected,
                f"{name}: {message!r}",
            )

    def test_responsesParse(self) -> None:
        """
        Every ENVELOPE, BODY and BODYSTRUCTURE of the table reads back as
        RFC 3501 9 writes them.
        """
        for _name, message, _, _ in STRUCTURES:
            structure = parseStructure(message)
            _checkEnvelope(_parse(envelope(structure)))
            _checkBody(_parse(bodyStructure(structure, False)), False)
            _checkBody(_parse(bodyStructure(structure, True)), True)

    def test_body(self) -> None:
        """
        BODY is BODYSTRUCTURE without the extension data (RFC 3501 7.4.2).
        """
        self.assertEqual(
            bodyStructure(parseStructure(SIMPLE), False), b"(" + _TEXT + b" 9 1)"
        )
        self.assertEqual(
            bodyStructure(parseStructure(NESTED), False),
            b"(((" + _TEXT + b' 5 0)("text" "html" ("charset" "utf-8") NIL NIL'
            b' "7bit" 11 0) "alternative")("image" "png" NIL NIL NIL "base64" 8)'
            b' "mixed")',
        )
        self.assertEqual(
            bodyStructure(
                parseStructure(_message(b"Content-Type: multipart/x")), False
            ),
            b"((" + _TEXT + b' 0 0) "x")',
        )

    def test_offsets(self) -> None:
        """
        A part's header and body offsets delimit its octets in the message.
        """
        structure = parseStructure(FORWARD)
        self.assertEqual(structure.size, len(FORWARD))
        forwarded = structure.root.children[1]
        self.assertEqual(forwarded.kind, MESSAGE)
        self.assertEqual(
            FORWARD[forwarded.headerStart : forwarded.headerEnd],
            b"Content-Type: message/rfc822\r\n\r\n",
        )
        inner = forwarded.children[0]
        self.assertEqual(inner.kind, MULTIPART)
        self.assertEqual(
            (inner.headerStart, inner.bodyEnd),
            (forwarded.bodyStart, forwarded.bodyEnd),
        )
        self.assertEqual(forwarded.size, 164)
        self.assertEqual(FORWARD[inner.children[1].bodyStart :][:8], b"<i>y</i>")


class EnvelopeTests(SynchronousTestCase):
    """
    Address lists and the envelope's fields.
    """

    # (header value, the written address list)
    ADDRESSES = [
        (b"alice@example.com", b'((NIL NIL "alice" "example.com"))'),
        (b"Alice <alice@example.com>", b'(("Alice" NIL "alice" "example.com"))'),
        (b'"Doe, John" <j@x.y>', b'(("Doe, John" NIL "j" "x.y"))'),
        (b"John   Q.   Public <q@x>", b'(("John Q. Public" NIL "q" "x"))'),
        (b"J.R.R. Tolkien <t@x>", b'(("J.R.R. Tolkien" NIL "t" "x"))'),
        (b"a@b (Alice Smith)", b'(("Alice Smith" NIL "a" "b"))'),
        (b"(c1) Bob (c2) <bob (c3) @ ex.com>", b'(("Bob" NIL "bob" "ex.com"))'),
        (b"<@r1,@r2:joe@x.y>", b'((NIL "@r1,@r2" "joe" "x.y"))'),
        (b'"" <e@x>', b'((NIL NIL "e" "x"))'),
        (b"bob", b'((NIL NIL "bob" "MISSING_DOMAIN"))'),
        (b"<>", b'((NIL NIL "MISSING_MAILBOX" "MISSING_DOMAIN"))'),
        (b"a@", b'((NIL NIL "a" "MISSING_DOMAIN"))'),
        (b"@b", b'((NIL NIL "MISSING_MAILBOX" "b"))'),
        (b"a b c", b'(("a b c" NIL "MISSING_MAILBOX" "MISSING_DOMAIN"))'),
        (b'"x"@[1.2.3.4]', b'((NIL NIL "x" "[1.2.3.4]"))'),
        (b"a@b,,c@d, ,", b'((NIL NIL "a" "b")(NIL NIL "c" "d"))'),
        (b"g:;", b'((NIL NIL "g" NIL)(NIL NIL NIL NIL))'),
        (b"g: a@b", b'((NIL NIL "g" NIL)(NIL NIL "a" "b")(NIL NIL NIL NIL))'),
        (b"broken <a@b", b'(("broken" NIL "a" "b"))'),
        (b'"unterminated <a@b>', b'((NIL NIL "unterminated <a@b>" "MISSING_DOMAIN"))'),
        (b"((((", b"NIL"),
        (b"", b"NIL"),
        (b",;:<>@.\\", b'((NIL NIL "MISSING_MAILBOX" "MISSING_DOMAIN"))'),
        (b":;", b"NIL"),
        (b"(only a comment)", b"NIL"),
    ]

    def test_addresses(self) -> None:
        """
        Address lists are read per RFC 5322 3.4, leniently, and written as
        Dovecot writes them.
        """
        for value, expected in self.ADDRESSES:
            self.assertEqual(
                envelope(parseStructure(b"To: " + value + b"\r\n\r\n")),
                b"(NIL NIL NIL NIL NIL " + expected + b" NIL NIL NIL NIL)",
                value,
            )

    def test_groupMarkers(self) -> None:
        """
        A group is its start marker (host NIL, mailbox the name), its
        members and its end marker (all NIL), RFC 3501 7.4.2.
        """
        self.assertEqual(
            parseAddressList(b"Team: a@b.c;"),
            (
                Address(None, None, b"Team", None),
                Address(None, None, b"a", b"b.c"),
                Address(None, None, None, None),
            ),
        )

    def test_firstOccurrence(self) -> None:
        """
        The first occurrence of a field counts; values are trimmed.
        """
        structure = parseStructure(
            _message(
                b"Subject: first",
                b"Subject: second",
                b"Date:   d1  ",
                b"Message-ID:\t<x@y>",
                b"In-Reply-To: <a@b>",
                b" <c@d>",
                b"",
            )
        )
        self.assertEqual(
            envelope(structure),
            b'("d1" "first" NIL NIL NIL NIL NIL NIL "<a@b> <c@d>" "<x@y>")',
        )

    def test_emptyFields(self) -> None:
        """
        A field that is present but empty is an empty string; an empty
        address list is NIL, and Sender and Reply-To then take From's.
        """
        structure = parseStructure(
            _message(b"Subject:", b"From: a@b", b"Sender:", b"Cc:", b"")
        )
        self.assertEqual(
            envelope(structure),
            b'(NIL "" ((NIL NIL "a" "b")) ((NIL NIL "a" "b")) ((NIL NIL "a" "b"))'
            b" NIL NIL NIL NIL NIL)",
        )

    def test_encapsulatedOnly(self) -> None:
        """
        The envelope of a message/rfc822 part comes from the encapsulated
        message's header, not from the part's MIME header.
        """
        structure = parseStructure(FORWARD)
        forwarded = structure.root.children[1]
        self.assertIsNone(forwarded.envelope)
        inner = forwarded.children[0].envelope
        assert inner is not None
        self.assertEqual(inner.subject, b"Inner")


class SectionTests(SynchronousTestCase):
    """
    Where each C{BODY[section]} lies (RFC 3501 6.4.5).
    """

    def section(self, text: str, message: bytes = FORWARD) -> bytes:
        """
        @param text: a section, as in C{BODY[text]}.
        @return: its octets.
        """
        part: tuple[int, ...] = ()
        specifier = ""
        fields: tuple[str, ...] = ()
        pieces = text.split(" (", 1)
        if len(pieces) == 2:
            fields = tuple(pieces[1].rstrip(")").split())
        for piece in pieces[0].split(".") if pieces[0] else []:
            if piece.isdigit() and not specifier:
                part += (int(piece),)
            else:
                specifier = f"{specifier}.{piece}" if specifier else piece
        section = BodySection(peek=True, part=part, specifier=specifier, fields=fields)
        return sectionBytes(parseStructure(message), section, message)

    # Dovecot sends the same octets for each of these.
    FORWARD_SECTIONS = [
        ("", FORWARD),
        ("1", b"See below."),
        (
            "2",
            b'From: "Carol C." <carol@example.net>\r\nSubject: Inner\r\n'
            b"Content-Type: multipart/alternative; boundary=c\r\n\r\n"
            b"--c\r\n\r\nx\r\n--c\r\nContent-Type: text/html\r\n\r\n"
            b"<i>y</i>\r\n--c--\r\n",
        ),
        ("2.MIME", b"Content-Type: message/rfc822\r\n\r\n"),
        (
            "2.HEADER",
            b'From: "Carol C." <carol@example.net>\r\nSubject: Inner\r\n'
            b"Content-Type: multipart/alternative; boundary=c\r\n\r\n",
        ),
        (
            "2.TEXT",
            b"--c\r\n\r\nx\r\n--c\r\nContent-Type: text/html\r\n\r\n"
            b"<i>y</i>\r\n--c--\r\n",
        ),
        ("2.1", b"x"),
        ("2.2", b"<i>y</i>"),
        ("2.2.MIME", b"Content-Type: text/html\r\n\r\n"),
        ("2.HEADER.FIELDS (SUBJECT)", b"Subject: Inner\r\n\r\n"),
        (
            "2.HEADER.FIELDS.NOT (FROM CONTENT-TYPE)",
            b"Subject: Inner\r\n\r\n",
        ),
        (
            "HEADER",
            b"From: a@example.com\r\nSubject: Fwd\r\n"
            b"Content-Type: multipart/mixed; boundary=b\r\n\r\n",
        ),
        ("HEADER.FIELDS (SUBJECT)", b"Subject: Fwd\r\n\r\n"),
        ("1.MIME", b"\r\n"),
        # Part 1 of a part that is not a multipart is the part (Dovecot).
        ("1.1", b"See below."),
        ("2.1.1", b"x"),
        # Sections that do not exist are empty, as in Dovecot.
        ("3", b""),
        ("0", b""),
        ("2.3", b""),
        ("1.2", b""),
        ("1.1.1", b""),
        ("1.HEADER", b""),
        ("1.TEXT", b""),
        ("2.1.HEADER", b""),
    ]

    def test_forwardSections(self) -> None:
        """
        Sections of a message with a forwarded multipart message.
        """
        for text, expected in self.FORWARD_SECTIONS:
            self.assertEqual(self.section(text), expected, text)

    def test_textAndNested(self) -> None:
        """
        TEXT is the body, parts nest through multiparts, a multipart's body
        keeps its closing boundary line.
        """
        self.assertEqual(self.section("TEXT", SIMPLE), b"Hi Bob.\r\n")
        self.assertEqual(self.section("1", SIMPLE), b"Hi Bob.\r\n")
        self.assertEqual(self.section("1.MIME", SIMPLE), SIMPLE[:-9])
        self.assertEqual(self.section("1.2", NESTED), b"<b>html</b>")
        self.assertEqual(
            self.section("1.2.MIME", NESTED),
            b"Content-Type: text/html; charset=utf-8\r\n\r\n",
        )
        self.assertEqual(
            self.section("1", NESTED),
            b"--inner\r\n\r\nplain\r\n--inner\r\nContent-Type: text/html;"
            b" charset=utf-8\r\n\r\n<b>html</b>\r\n--inner--\r\n",
        )
        self.assertEqual(self.section("2", NESTED), b"iVBORw==")
        self.assertEqual(self.section("1.1", DIGEST), b"first")
        self.assertEqual(self.section("1.HEADER", DIGEST), b"Subject: one\r\n\r\n")

    def test_rangesAreOffsets(self) -> None:
        """
        L{sectionRange} gives offsets into the message, L{None} for a
        section that does not exist, and no range for an empty one.
        """
        structure = parseStructure(FORWARD)
        ranges = sectionRange(structure, BodySection(peek=False, part=(2, 2)))
        assert ranges is not None
        self.assertEqual([FORWARD[start:end] for start, end in ranges], [b"<i>y</i>"])
        self.assertIsNone(sectionRange(structure, BodySection(peek=False, part=(9,))))
        self.assertIsNone(
            sectionRange(structure, BodySection(peek=False, specifier="MIME"))
        )
        empty = parseStructure(_message(b"Subject: x", b""))
        self.assertEqual(
            sectionRange(empty, BodySection(peek=False, specifier="TEXT")), []
        )

    def test_applyPartial(self) -> None:
        """
        A partial fetch narrows the ranges to the octets wanted.
        """
        ranges = [(10, 20), (30, 40)]
        self.assertEqual(applyPartial(ranges, None), ranges)
        self.assertEqual(applyPartial(ranges, (0, 100)), ranges)
        self.assertEqual(applyPartial(ranges, (5, 10)), [(15, 20), (30, 35)])
        self.assertEqual(applyPartial(ranges, (10, 3)), [(30, 33)])
        self.assertEqual(applyPartial(ranges, (19, 1)), [(39, 40)])
        self.assertEqual(applyPartial(ranges, (20, 5)), [])
        self.assertEqual(applyPartial(ranges, (3, 0)), [])
        self.assertEqual(applyPartial([], (0, 5)), [])

    def test_partialSection(self) -> None:
        """
        C{<start.count>} applies after HEADER.FIELDS filtering.
        """
        structure = parseStructure(FORWARD)
        fields = BodySection(
            peek=True, specifier="HEADER.FIELDS", fields=("SUBJECT",), partial=(9, 3)
        )
        self.assertEqual(sectionBytes(structure, fields, FORWARD), b"Fwd")
        whole = BodySection(peek=True, partial=(6, 13))
        self.assertEqual(sectionBytes(structure, whole, FORWARD), b"a@example.com")


class HeaderFieldsTests(SynchronousTestCase):
    """
    L{headerFields} and L{headerValues}.
    """

    HEADER = (
        b"Subject: a\r\n b\r\n"
        b"garbage line\r\n"
        b"To: x\r\n"
        b"subject : again\r\n"
        b"X-A: 1\r\n"
        b"\r\n"
    )

    def test_fields(self) -> None:
        """
        HEADER.FIELDS keeps the named fields with their continuation lines,
        in any case, then the blank line.
        """
        self.assertEqual(
            headerFields(self.HEADER, ("SUBJECT", "x-a"), False),
            b"Subject: a\r\n b\r\nsubject : again\r\nX-A: 1\r\n\r\n",
        )

    def test_fieldsNot(self) -> None:
        """
        HEADER.FIELDS.NOT keeps every other line, lines that are not fields
        included.
        """
        self.assertEqual(
            headerFields(self.HEADER, ("SUBJECT",), True),
            b"garbage line\r\nTo: x\r\nX-A: 1\r\n\r\n",
        )

    def test_noMatch(self) -> None:
        """
        With no field kept, the result is the blank line.
        """
        self.assertEqual(headerFields(self.HEADER, ("CC", "a(b"), False), b"\r\n")

    def test_noBlankLine(self) -> None:
        """
        A header without a blank line gives none back (RFC 3501 6.4.5), and
        a last line without a line end gets one.
        """
        self.assertEqual(
            headerFields(b"Subject: x", ("SUBJECT",), False), b"Subject: x\r\n"
        )
        self.assertEqual(
            headerFields(b"Subject: x\r\nTo: y", ("SUBJECT",), True), b"To: y\r\n"
        )

    def test_prefixNames(self) -> None:
        """
        A name matches the whole field name, not a prefix of it.
        """
        self.assertEqual(
            headerFields(b"To-Do: x\r\nTo: y\r\n\r\n", ("TO",), False),
            b"To: y\r\n\r\n",
        )

    def test_values(self) -> None:
        """
        L{headerValues} gives every value of a field, unfolded.
        """
        self.assertEqual(headerValues(self.HEADER, "Subject"), [b"a b", b"again"])
        self.assertEqual(headerValues(self.HEADER, "cc"), [])
        self.assertEqual(headerValues(self.HEADER, "bad name"), [])


class CodecTests(SynchronousTestCase):
    """
    The serialised form the store caches.
    """

    def test_roundTrip(self) -> None:
        """
        Every structure of the table reads back equal to itself.
        """
        for name, message, _, _ in STRUCTURES:
            structure = parseStructure(message)
            data = structure.encode()
            self.assertEqual(data[0], VERSION)
            self.assertEqual(MessageStructure.decode(data), structure, name)

    def test_compact(self) -> None:
        """
        Fields a part lacks are left out of the form.
        """
        data = parseStructure(SIMPLE).encode()
        self.assertEqual(json.loads(data[1:])[1][9:], [])

    def corrupt(self, data: bytes) -> None:
        """
        Assert that C{data} is refused with L{ValueError}.
        """
        self.assertRaises(ValueError, MessageStructure.decode, data)

    def form(self, message: bytes = FORWARD) -> list[object]:
        loaded: list[object] = json.loads(parseStructure(message).encode()[1:])
        return loaded

    def encoded(self, form: object) -> bytes:
        return bytes((VERSION,)) + json.dumps(form).encode()

    def test_versionAndSyntax(self) -> None:
        """
        An empty form, an unknown version and bad JSON are refused.
        """
        data = parseStructure(SIMPLE).encode()
        for bad in (
            b"",
            bytes((VERSION + 1,)) + data[1:],
            data[:1],
            data[:-1],
            data + b"x",
            data[:1] + b"\xff",
            data[:1] + b"[" * 100_000 + b"]" * 100_000,
            data[:1] + b"[1]",
            data[:1] + b'{"a": 1}',
        ):
            self.corrupt(bad)

    def test_badFields(self) -> None:
        """
        Offsets out of order or out of the message, wrong types, NUL, code
        points past Latin-1 and kinds that disagree with their type are
        refused.
        """
        mutations = [
            lambda f: f[1].__setitem__(2, f[1][3] + 1),  # header end past body end
            lambda f: f[1].__setitem__(3, f[0] + 1),  # body end past the message
            lambda f: f.__setitem__(0, f[0] - 1),  # size
            lambda f: f[1].__setitem__(0, 3),  # kind
            lambda f: f[1].__setitem__(1, True),  # a bool for an int
            lambda f: f[1].__setitem__(1, 0.0),  # a float for an int
            lambda f: f[1].__setitem__(4, 10**6),  # lines past the size
            lambda f: f[1].__setitem__(5, "te\u0000xt"),
            lambda f: f[1].__setitem__(6, "\u0100"),
            lambda f: f[1].__setitem__(5, "text"),  # a multipart that says text
            lambda f: f[1].__setitem__(8, None),  # no envelope on the message
            lambda f: f[1][7][0].__setitem__(8, f[1][8]),  # envelope on a part
            lambda f: f[1][7][1].__setitem__(7, []),  # message without its child
            lambda f: f[1][7][0].__setitem__(7, [f[1][7][1]]),  # leaf with children
            lambda f: f[1].__setitem__(7, f[1][7][::-1]),  # parts out of order
            lambda f: f[1].__setitem__(9, ["boundary"]),  # odd parameters
            lambda f: f[1][8].__setitem__(2, ["a", "b", "c"]),  # short address
            lambda f: f[1][8].__setitem__(2, "a"),
            lambda f: f[1].__setitem__(1, -1),
            lambda f: f[1].extend([None] * 18),  # too many fields
            lambda f: f[1].__setitem__(slice(8, None), []),  # too few fields
        ]
        for mutation in mutations:
            form = self.form()
            mutation(form)
            self.corrupt(self.encoded(form))

    def test_limits(self) -> None:
        """
        A form with more parts or levels than a parse can give is refused.
        """
        envelope = [None, None, [], [], [], [], [], [], None, None]
        leaf = [0, 0, 0, 0, 0, "text", "plain", [], None]

        def wide(count: int) -> bytes:
            root = [1, 0, 0, 0, 0, "multipart", "mixed", [leaf] * count, envelope]
            return self.encoded([0, root])

        self.assertEqual(
            len(MessageStructure.decode(wide(MAX_PARTS - 1)).root.children),
            MAX_PARTS - 1,
        )
        self.corrupt(wide(MAX_PARTS))

        def deep(levels: int) -> bytes:
            part: list[object] = [0, 0, 0, 0, 0, "text", "plain", [], envelope]
            for _ in range(levels - 1):
                part = [2, 0, 0, 0, 0, "message", "rfc822", [part], envelope]
            return self.encoded([0, part])

        self.assertIsInstance(
            MessageStructure.decode(deep(MAX_NESTING)), MessageStructure
        )
        self.corrupt(deep(MAX_NESTING + 1))


class BoundsTests(SynchronousTestCase):
    """
    Hostile structures are cut at L{MAX_NESTING} levels and
    L{MAX_PARTS} parts.
    """

    def test_deepMultiparts(self) -> None:
        """
        A thousand nested multiparts give a hundred levels, the deepest an
        opaque application/octet-stream leaf, as in Dovecot.
        """
        message = (
            b"".join(
                b"Content-Type: multipart/mixed; boundary=x%dy\r\n\r\n--x%dy\r\n"
                % (i, i)
                for i in range(1000)
            )
            + b"\r\nleaf\r\n"
        )
        structure = parseStructure(message)
        self.assertEqual(_depth(structure.root), MAX_NESTING)
        deepest = structure.root
        while deepest.children:
            deepest = deepest.children[0]
        self.assertEqual(
            (deepest.type, deepest.subtype), (b"application", b"octet-stream")
        )
        self.assertEqual(deepest.params, ((b"boundary", b"x99y"),))
        written = bodyStructure(structure, True)
        _checkBody(_parse(written), True)
        self.assertTrue(written.startswith(b"(" * MAX_NESTING + b'"application"'))

    def test_deepMessages(self) -> None:
        """
        A thousand nested message/rfc822 parts give a hundred levels.
        """
        message = b"Content-Type: message/rfc822\r\n\r\n" * 1000 + b"leaf"
        structure = parseStructure(message)
        self.assertEqual(_depth(structure.root), MAX_NESTING)
        _checkBody(_parse(bodyStructure(structure, True)), True)
        MessageStructure.decode(structure.encode())

    def test_sameBoundaryNested(self) -> None:
        """
        Nested multiparts with one boundary nest to the limit: the
        innermost claims each boundary line.
        """
        message = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n" * 500
        structure = parseStructure(message)
        self.assertEqual(_depth(structure.root), MAX_NESTING)
        _checkBody(_parse(bodyStructure(structure, False)), False)

    def test_manyParts(self) -> None:
        """
        Past L{MAX_PARTS} parts, boundary lines no longer start parts: the
        last part runs to the closing boundary.
        """
        message = (
            b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
            + b"--b\r\n\r\npart\r\n" * (MAX_PARTS + 500)
            + b"--b--\r\nepilogue\r\n"
        )
        structure = parseStructure(message)
        self.assertEqual(len(_parts(structure.root)), MAX_PARTS)
        last = structure.root.children[-1]
        self.assertTrue(
            message[last.bodyStart : last.bodyEnd].endswith(b"part\r\n--b\r\n\r\npart")
        )
        self.assertEqual(message[last.bodyEnd :], b"\r\n--b--\r\nepilogue\r\n")
        _checkBody(_parse(bodyStructure(structure, False)), False)
        self.assertEqual(MessageStructure.decode(structure.encode()), structure)

    def test_longFields(self) -> None:
        """
        Very long structured fields are read only up to a bound, and the
        result is still a well-formed response.
        """
        message = (
            b"To: " + b"a@b, " * 100_000 + b"\r\n"
            b"Content-Type: text/plain" + b"; a=b" * 100_000 + b"\r\n\r\n"
        )
        structure = parseStructure(message)
        _checkEnvelope(_parse(envelope(structure)))
        _checkBody(_parse(bodyStructure(structure, True)), True)


# Pieces hostile and ordinary messages are made of.
_LINES = st.sampled_from(
    [
        b"Content-Type: multipart/mixed; boundary=b",
        b"Content-Type: multipart/alternative; boundary=bb",
        b"Content-Type: multipart/digest; boundary=b",
        b'Content-Type: multipart/mixed; boundary="b"; x*0=a; x*1*=%41',
        b"Content-Type: multipart/mixed",
        b"Content-Type: message/rfc822",
        b"Content-Type: text/plain; charset=utf-8",
        b"Content-Type: text",
        b"Content-Type: (",
        b'Content-Type: a/b; c="',
        b"Content-Disposition: attachment; filename*0*=x; filename*1=y",
        b"Content-Language: en, fr",
        b"Content-Transfer-Encoding: base64",
        b"MIME-Version: 1.0",
        b"From: A <a@b>, g: c@d;",
        b'To: <@r:x@y>, (c) "q\\"" <>',
        b"Subject: =?utf-8?q?x?=",
        b" folded",
        b"",
        b"--b",
        b"--b--",
        b"--bb",
        b"--bb--",
        b"body \x00 \xff",
        b"no colon",
    ]
)
_MESSAGES = st.lists(
    st.tuples(_LINES, st.sampled_from([b"\r\n", b"\n", b""])), max_size=40
).map(lambda lines: b"".join(line + end for line, end in lines))


def _checkStructure(test: SynchronousTestCase, message: bytes) -> None:
    """
    Assert what must hold of any message's structure.
    """
    structure = parseStructure(message)
    for part in _parts(structure.root):
        test.assertTrue(0 <= part.headerStart <= part.headerEnd <= part.bodyEnd)
        test.assertTrue(part.bodyEnd <= len(message))
        for child in part.children:
            test.assertTrue(part.bodyStart <= child.headerStart)
            test.assertTrue(child.bodyEnd <= part.bodyEnd)
    test.assertLessEqual(_depth(structure.root), MAX_NESTING)
    _checkEnvelope(_parse(envelope(structure)))
    _checkBody(_parse(bodyStructure(structure, False)), False)
    _checkBody(_parse(bodyStructure(structure, True)), True)
    test.assertEqual(MessageStructure.decode(structure.encode()), structure)
    whole = BodySection(peek=True)
    test.assertEqual(sectionBytes(structure, whole, message), message)


class PropertyTests(SynchronousTestCase):
    """
    Properties over any input.
    """

    @given(st.binary(max_size=3000))
    @settings(max_examples=300, deadline=None)
    def test_anyBytes(self, message: bytes) -> None:
        """
        Any octets parse, and give well-formed responses and a form that
        reads back.
        """
        _checkStructure(self, message)

    @given(_MESSAGES)
    @settings(max_examples=500, deadline=None)
    def test_mimeLike(self, message: bytes) -> None:
        """
        Messages made of MIME pieces in any order parse, and give
        well-formed responses and a form that reads back.
        """
        _checkStructure(self, message)

    @given(_MESSAGES, st.lists(st.integers(1, 4), min_size=1, max_size=4))
    @settings(max_examples=200, deadline=None)
    def test_sections(self, message: bytes, path: list[int]) -> None:
        """
        Every section lies within the message.
        """
        structure = parseStructure(message)
        for specifier in ("", "MIME", "HEADER", "TEXT", "HEADER.FIELDS"):
            section = BodySection(peek=True, part=tuple(path), specifier=specifier)
            ranges = sectionRange(structure, section)
            for start, end in ranges or []:
                self.assertTrue(0 <= start < end <= len(message))

    @given(st.binary(max_size=500), st.integers(0, 400), st.binary(max_size=3))
    @settings(max_examples=300, deadline=None)
    def test_damagedForm(self, message: bytes, where: int, junk: bytes) -> None:
        """
        A damaged form is refused with L{ValueError} or reads back as a
        structure whose responses are well formed.
        """
        data = parseStructure(message).encode()
        damaged = data[:where] + junk + data[where + len(junk) :]
        try:
            structure = MessageStructure.decode(damaged)
        except ValueError:
            return
        _checkEnvelope(_parse(envelope(structure)))
        _checkBody(_parse(bodyStructure(structure, True)), True)
