# -*- test-case-name: tests.test_imap4_search -*-
"""
What SEARCH reads in a message (RFC 3501 6.4.4): header fields unfolded
and decoded (RFC 5322 2.2.3, RFC 2047, RFC 6532), and the text of the body
(RFC 2045, RFC 2046), decoded once per message however many keys ask.

Header fields are split and decoded here, in time linear in their length,
rather than with C{email.header.decode_header} or the C{email} package's
header parser, which are quadratic in the number of encoded words, a
number the sender chooses.  The body's MIME tree is walked with the
standard library's parser (C{compat32}), which undoes the transfer
encodings.

A message of one part whose header block is plain is read without
the parser, to the same texts (L{messageTexts}).

What the store keeps of each message for SEARCH is in
L{gomail_twisted.imap4._searchindex}; L{SearchedMessage} reads it when
given it instead of the message.
"""

from __future__ import annotations

import binascii
import datetime
import email.parser
import email.policy
import email.utils
import functools
import re
from dataclasses import dataclass
from email.message import Message
from typing import TYPE_CHECKING

from gomail_twisted.maildir.interfaces import MessageInfo

if TYPE_CHECKING:
    from gomail_twisted.imap4._searchindex import CachedFields, Needle, TextIndex

__all__ = [
    "MAX_TEXT",
    "MessageTexts",
    "SearchedMessage",
    "fieldValue",
    "messageTexts",
    "splitFields",
]

MAX_TEXT = 10 * 2**20
"""
The default bound on the decoded text searched per message, in characters:
a body search reads no further.
"""

# Encoded words (RFC 2047 2) hold no white space and no "?", so a scan
# never backtracks past the next "?": linear in the field's length.
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?\s]*)\?=")
_PARSER = email.parser.BytesParser(policy=email.policy.compat32)
_EMPTY_LINE = re.compile(rb"(?:^|\n)\r?\n")


def _text(data: bytes, charset: str | None) -> str:
    """
    Decode octets in a charset, never failing.

    @param data: the octets.
    @param charset: the charset named, or L{None} for none.
    @return: the text: undecodable octets replaced in a known charset; an
        unknown charset read as ISO-8859-1; without a charset, UTF-8 if
        valid, else ISO-8859-1.
    """
    if charset:
        try:
            return data.decode(charset, "replace")
        except (LookupError, ValueError, TypeError):
            return data.decode("latin-1")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _decodeWord(encoding: str, encoded: str) -> bytes | None:
    """
    The octets of one encoded word's text (RFC 2047 4).

    @return: the octets, or L{None} when the base64 is broken.
    """
    data = encoded.encode("utf-8")
    if encoding in "bB":
        try:
            return binascii.a2b_base64(data + b"=" * (-len(data) % 4))
        except binascii.Error:
            return None
    return binascii.a2b_qp(data, header=True)


def _decodeWords(value: str) -> str:
    """
    Replace a field value's RFC 2047 encoded words by their text: white
    space between two encoded words is dropped (6.2), and adjacent words
    in one charset are decoded together, so that a character split across
    two words survives.  A word that does not decode stays as written.

    @param value: the unfolded value.
    @return: the decoded value.
    """
    out: list[str] = []
    pending: list[bytes] = []
    pendingCharset = ""

    def flush() -> None:
        if pending:
            out.append(_text(b"".join(pending), pendingCharset))
            pending.clear()

    afterWord = False
    position = 0
    for match in _ENCODED_WORD.finditer(value):
        between = value[position : match.start()]
        position = match.end()
        charset = match.group(1).split("*", 1)[0].lower()
        data = _decodeWord(match.group(2), match.group(3))
        if data is None:
            flush()
            out.append(between + match.group(0))
            afterWord = False
            continue
        if between and not (afterWord and between.isspace()):
            flush()
            out.append(between)
        elif charset != pendingCharset:
            flush()
        pending.append(data)
        pendingCharset = charset
        afterWord = True
    flush()
    out.append(value[position:])
    return "".join(out)


def fieldValue(raw: bytes) -> str:
    """
    A header field's value as a search compares it.

    @param raw: the value's octets after the colon, possibly folded.
    @return: the value unfolded (RFC 5322 2.2.3), trimmed, decoded (UTF-8
        or ISO-8859-1, then RFC 2047), and case-folded.
    """
    value = _text(raw.replace(b"\r", b"").replace(b"\n", b"").strip(b" \t"), None)
    if "=?" in value:
        value = _decodeWords(value)
    return value.casefold()


def splitFields(block: bytes) -> list[tuple[str, bytes]]:
    """
    The fields of a header block, in order, up to its empty line.

    @param block: the header block, lines ending in CRLF (or LF); the
        empty line and anything after it may be present.
    @return: C{(name, value)} pairs: the name case-folded, the value's
        octets unfolded.  Lines that are not fields are skipped.
    """
    fields: list[tuple[str, list[bytes]]] = []
    current: list[bytes] | None = None
    for line in block.split(b"\n"):
        if line.endswith(b"\r"):
            line = line[:-1]
        if not line:
            break
        if line[:1] in (b" ", b"\t"):
            if current is not None:
                current.append(line)
            continue
        name, colon, value = line.partition(b":")
        if not colon:
            current = None
            continue
        current = [value]
        fields.append((name.rstrip(b" \t").decode("latin-1").casefold(), current))
    return [(name, b"".join(parts)) for name, parts in fields]


def _splitMessage(full: bytes) -> tuple[bytes, bytes]:
    """
    Split a whole message at the empty line that ends its header block.

    @param full: the message, lines ending in CRLF (or LF).
    @return: the header block (its last line's end kept) and the body; a
        message without an empty line is all header.
    """
    match = _EMPTY_LINE.search(full)
    if match is None:
        return full, b""
    if match.group().startswith(b"\n"):
        return full[: match.start() + 1], full[match.end() :]
    return b"", full[match.end() :]


@dataclass(frozen=True, slots=True)
class MessageTexts:
    """
    The decoded, case-folded text of a message below its own header.

    @ivar body: the content of its text parts.
    @ivar headers: the header blocks of its parts and attached messages.
    """

    body: str
    headers: str


def _partText(part: Message) -> str:
    """
    @param part: a leaf of the MIME tree.
    @return: its content, transfer-decoded and charset-decoded.
    """
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        return ""
    return _text(data, part.get_content_charset())


# A header block that the standard library's parser splits as
# L{_singlePartTexts} does: each line a field (a name of printable ASCII
# without ":", then ":") or a continuation of one, each ending in CRLF,
# then the empty line.  Whatever else (a bare CR, a line that is neither,
# an mbox "From " line, no empty line) goes to the parser.
_PLAIN_HEADER = re.compile(
    rb"(?:[\x21-\x39\x3b-\x7e]+:[^\r\n]*\r\n(?:[ \t][^\r\n]*\r\n)*)*\r\n"
)
# A field's value from after its colon: its first line and continuations.
_FIELD_VALUE = re.compile(rb"[^\r\n]*\r\n(?:[ \t][^\r\n]*\r\n)*")
# The longest values whose facts are kept (L{_leafFacts}).
_KEPT_VALUES = 512
# The transfer encodings C{Message.get_payload(decode=True)} undoes.
_DECODED = frozenset(
    ("quoted-printable", "base64", "x-uuencode", "uuencode", "uue", "x-uue")
)


def _firstValue(block: bytes, lowered: bytes, name: bytes) -> str | None:
    """
    The value of a plain header block's first field of a name, as the
    standard library's parser keeps it (C{compat32} C{header_source_parse}):
    after the colon, leading blanks dropped, the line ends of continuation
    lines kept, the last one dropped.

    @param block: the header block (L{_PLAIN_HEADER}).
    @param lowered: C{b"\\n"} and the block in lower case.
    @param name: the name, lower case, with its colon.
    @return: the value, or L{None} without the field.
    """
    # A line start is a field's start: continuation lines begin with a
    # blank.
    start = lowered.find(b"\n" + name)
    if start < 0:
        return None
    start += len(name)
    match = _FIELD_VALUE.match(block, start)
    assert match is not None
    value = match.group().lstrip(b" \t").rstrip(b"\r\n")
    return value.decode("ascii", "surrogateescape")


def _leafPart(contentType: str | None, transferEncoding: str | None) -> Message:
    part = Message()
    if contentType is not None:
        part.set_raw("Content-Type", contentType)
    if transferEncoding is not None:
        part.set_raw("Content-Transfer-Encoding", transferEncoding)
    return part


def _leafFacts(
    contentType: str | None, transferEncoding: str | None
) -> tuple[str, str | None, bool]:
    """
    What the standard library makes of a part's first C{Content-Type} and
    C{Content-Transfer-Encoding} fields: a mailbox holds few distinct
    values, so the facts of short ones are kept.

    @return: the main type, the charset (or L{None}), and whether
        C{get_payload} undoes the transfer encoding.
    """
    if len(contentType or "") + len(transferEncoding or "") <= _KEPT_VALUES:
        return _keptLeafFacts(contentType, transferEncoding)
    return _readLeafFacts(contentType, transferEncoding)


def _readLeafFacts(
    contentType: str | None, transferEncoding: str | None
) -> tuple[str, str | None, bool]:
    part = _leafPart(contentType, transferEncoding)
    encoding = str(part.get("content-transfer-encoding", "")).lower()
    return (
        part.get_content_maintype(),
        part.get_content_charset(),
        encoding in _DECODED,
    )


_keptLeafFacts = functools.lru_cache(maxsize=256)(_readLeafFacts)


def _singlePartTexts(full: bytes, limit: int) -> MessageTexts | None:
    """
    L{messageTexts} without the C{email} parser, for a message of one part
    whose header block is plain (L{_PLAIN_HEADER}): the same texts, made
    with the steps the parser's path takes for such a message (its root's
    C{Content-Type} and C{Content-Transfer-Encoding} read by a L{Message}),
    at a fraction of the cost.

    @return: the texts, or L{None} when the message is not such a one.
    """
    header = _PLAIN_HEADER.match(full)
    if header is None:
        return None
    end = header.end()
    block = full[:end]
    lowered = b"\n" + block.lower()
    contentType = _firstValue(block, lowered, b"content-type:")
    transferEncoding = _firstValue(block, lowered, b"content-transfer-encoding:")
    maintype, charset, decoded = _leafFacts(contentType, transferEncoding)
    if maintype in ("multipart", "message"):
        return None
    if maintype != "text" or limit <= 0:
        return MessageTexts("", "")
    body = full[end:]
    if decoded:
        part = _leafPart(contentType, transferEncoding)
        part.set_payload(body.decode("ascii", "surrogateescape"))
        payload = part.get_payload(decode=True)
        assert isinstance(payload, bytes)
        body = payload
    return MessageTexts(_text(body, charset)[:limit].casefold(), "")


def messageTexts(full: bytes, limit: int) -> MessageTexts:
    """
    Extract the text C{BODY} and C{TEXT} search from a whole message.

    @param full: the message.
    @param limit: the most characters kept, body and headers together.
    @return: the texts, case-folded.
    """
    try:
        simple = _singlePartTexts(full, limit)
    except Exception:
        # Whatever the short cut trips on, the parser's path decides.
        simple = None
    return _parsedTexts(full, limit) if simple is None else simple


def _parsedTexts(full: bytes, limit: int) -> MessageTexts:
    """
    L{messageTexts} through the standard library's MIME parser.
    """
    try:
        root = _PARSER.parsebytes(full)
        body: list[str] = []
        headers: list[str] = []
        left = limit
        stack: list[Message] = [root]
        while stack and left > 0:
            part = stack.pop()
            if part is not root:
                for name, value in part.raw_items():
                    raw = str(value).encode("ascii", "surrogateescape")
                    line = f"{name.casefold()}: {fieldValue(raw)}"[: max(left, 0)]
                    headers.append(line)
                    left -= len(line) + 1
            if part.is_multipart():
                children = part.get_payload()
                if isinstance(children, list):
                    stack.extend(
                        child
                        for child in reversed(children)
                        if isinstance(child, Message)
                    )
                continue
            # A part that claims to be multipart or a message but did not
            # parse as one is searched as text, as is anything text/*.
            if part.get_content_maintype() in ("text", "multipart", "message"):
                text = _partText(part)[: max(left, 0)].casefold()
                body.append(text)
                left -= len(text) + 1
        return MessageTexts("\n".join(body), "\n".join(headers))
    except Exception:
        # The bytes are the sender's: a MIME tree nested deep enough
        # exhausts the parser's recursion, and the parser has had bugs on
        # hostile input.  Search the body as plain text rather than fail.
        text = _text(_splitMessage(full)[1][:limit], None)
        return MessageTexts(text[:limit].casefold(), "")


def _sentDate(value: str) -> datetime.date | None:
    """
    @param value: a C{Date:} field's value (RFC 5322 3.3).
    @return: its calendar date as written, in the sender's zone, or
        L{None} when it does not parse.
    """
    try:
        parsed = email.utils.parsedate_tz(value)
        if parsed is None:
            return None
        return datetime.date(parsed[0], parsed[1], parsed[2])
    except (ValueError, TypeError, IndexError, OverflowError):
        return None


_NOT_READ = object()


class SearchedMessage:
    """
    One message while one evaluation looks at it: what was given, and
    what has been decoded from it, so that several keys decode it once.
    It lives for one evaluation, so it needs no lock.

    @ivar info: the message as the store knows it.
    @ivar seq: its message sequence number.
    @ivar full: the whole message, or L{None} when not read.
    """

    __slots__ = (
        "_cached",
        "_fields",
        "_header",
        "_headerText",
        "_maxText",
        "_sent",
        "_textIndex",
        "_texts",
        "_values",
        "full",
        "info",
        "seq",
    )

    def __init__(
        self,
        info: MessageInfo,
        seq: int,
        header: bytes | None,
        full: bytes | None,
        maxText: int,
        cached: CachedFields | None = None,
        textIndex: TextIndex | None = None,
    ) -> None:
        """
        @param info: the message as the store knows it.
        @param seq: its message sequence number.
        @param header: its header block, or L{None} when not read.
        @param full: the whole message, or L{None} when not read.
        @param maxText: the most characters of body text to search.
        @param cached: the store's record of its header fields, or
            L{None}; the header block or the whole message, when given,
            is read instead.
        @param textIndex: the store's index of its text, or L{None}; the
            whole message, when given, is read instead.
        """
        self.info = info
        self.seq = seq
        self.full = full
        self._maxText = maxText
        self._header = header
        self._fields: dict[str, list[bytes]] | None = None
        self._values: dict[str, list[str]] = {}
        self._headerText: str | None = None
        self._sent: object = _NOT_READ
        self._texts: MessageTexts | None = None
        self._cached = cached
        self._textIndex = textIndex

    def _index(self) -> dict[str, list[bytes]] | None:
        if self._fields is None:
            header = self._header
            if header is None:
                if self.full is None:
                    return None
                header = _splitMessage(self.full)[0]
            self._fields = {}
            for name, value in splitFields(header):
                self._fields.setdefault(name, []).append(value)
        return self._fields

    def values(self, name: str) -> list[str] | None:
        """
        @param name: a field name, case-folded.
        @return: the decoded, case-folded values of every occurrence of
            the field, or L{None} without the header.
        """
        cached = self._cached
        if cached is not None and self._header is None and self.full is None:
            return cached.values(name)
        found = self._values.get(name)
        if found is None:
            index = self._index()
            if index is None:
                return None
            found = self._values[name] = [
                fieldValue(raw) for raw in index.get(name, ())
            ]
        return found

    def has(self, name: str) -> bool | None:
        """
        @param name: a field name, case-folded.
        @return: whether the message has the field, or L{None} when not
            known without the header.
        """
        index = self._index()
        if index is not None:
            return name in index
        cached = self._cached
        return None if cached is None else cached.has(name)

    def headerText(self) -> str | None:
        """
        @return: the whole header block decoded and case-folded, a field a
            line, or L{None} without the header.
        """
        if self._headerText is None:
            index = self._index()
            if index is None:
                return None
            self._headerText = "\n".join(
                f"{name}: {value}"
                for name in index
                for value in self.values(name) or ()
            )
        return self._headerText

    def sentDate(self) -> datetime.date | None:
        """
        @return: the first C{Date:} field's date, or L{None} when it is
            missing or does not parse.  Call only when L{values} knows the
            C{Date:} fields.
        """
        if self._sent is _NOT_READ:
            dates = self.values("date")
            self._sent = _sentDate(dates[0]) if dates else None
        assert self._sent is None or isinstance(self._sent, datetime.date)
        return self._sent

    def texts(self) -> MessageTexts | None:
        """
        @return: the body's texts, or L{None} without the whole message.
        """
        if self._texts is None and self.full is not None:
            self._texts = messageTexts(self.full, self._maxText)
        return self._texts

    def mayHold(self, needle: Needle, headers: bool) -> bool:
        """
        Whether the text C{BODY} (or C{TEXT}, with C{headers}) searches
        may hold a string, as far as the store's index of the message's
        text tells (it tells nothing when not given, or made for another
        bound than this search's).

        @param needle: the string.
        @param headers: whether the header blocks count (C{TEXT}).
        @return: C{False} when the string is surely absent.
        """
        index = self._textIndex
        if index is None or self._maxText != MAX_TEXT:
            return True
        return index.mayHold(needle, headers)
