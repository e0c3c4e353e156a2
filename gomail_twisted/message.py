# -*- test-case-name: tests.test_message -*-
"""
Messages as hooks see them: the header block with every occurrence of every
field kept in order, and the MIME structure, parsed lazily with the standard
library's C{email} package so that a hook that only stores bytes pays
nothing for parsing.
"""

from __future__ import annotations

import email.parser
import email.policy
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage, Message
from functools import cached_property

_PARSER = email.parser.BytesParser(policy=email.policy.SMTPUTF8)


class Headers:
    """
    A header block (RFC 5322 2.2): fields in order, all occurrences kept,
    names looked up without regard to case.

    Values are unfolded (RFC 5322 2.2.3) and decoded as UTF-8 (RFC 6532),
    with undecodable bytes replaced; the exact bytes are in L{raw}.

    @ivar raw: the header block as received, without the blank line.
    """

    raw: bytes

    def __init__(self, raw: bytes) -> None:
        """
        @param raw: the header block, lines ending in CRLF (a bare LF is
            tolerated), up to but excluding the empty line that ends it.
            It is parsed when first looked at, so a hook that ignores it
            costs nothing.
        """
        self.raw = raw

    @cached_property
    def _fields(self) -> list[tuple[str, str]]:
        fields: list[tuple[str, str]] = []
        for line in self.raw.replace(b"\r\n", b"\n").split(b"\n"):
            if not line:
                continue
            if line[:1] in (b" ", b"\t") and fields:
                name, value = fields[-1]
                more = _decode(line).strip()
                # An empty first line or an empty continuation adds no space.
                fields[-1] = (
                    name,
                    f"{value} {more}" if value and more else value or more,
                )
                continue
            rawName, colon, rawValue = line.partition(b":")
            if not colon:
                # Not a field (RFC 5322 3.6.8); keep the text reachable.
                fields.append(("", _decode(line)))
                continue
            fields.append((_decode(rawName).strip(), _decode(rawValue).strip()))
        return fields

    @cached_property
    def _index(self) -> dict[str, list[str]]:
        index: dict[str, list[str]] = {}
        for name, value in self._fields:
            index.setdefault(name.lower(), []).append(value)
        return index

    def get(self, name: str, default: str | None = None) -> str | None:
        """
        The first value of a field.

        @param name: the field name, in any case.
        @param default: returned when the field is absent.
        @return: the unfolded value, or C{default}.
        """
        values = self._index.get(name.lower())
        return values[0] if values else default

    def getAll(self, name: str) -> list[str]:
        """
        Every value of a field, in order.

        @param name: the field name, in any case.
        @return: the values; empty when the field is absent.
        """
        return list(self._index.get(name.lower(), ()))

    def items(self) -> list[tuple[str, str]]:
        """
        @return: every (name, value) pair in order.
        """
        return list(self._fields)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._index

    def __getitem__(self, name: str) -> str:
        values = self._index.get(name.lower())
        if not values:
            raise KeyError(name)
        return values[0]

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __repr__(self) -> str:
        return f"<Headers {[name for name, _ in self._fields]!r}>"


def _decode(data: bytes) -> str:
    return data.decode("utf-8", "replace")


def splitHeaderBlock(message: bytes) -> tuple[bytes, bytes]:
    """
    Split a message at the empty line that ends its header block.

    @param message: the message, lines ending in CRLF.
    @return: the header block (without the empty line) and the body; a
        message without an empty line is all header.
    """
    if message.startswith(b"\r\n"):
        return b"", message[2:]
    end = message.find(b"\r\n\r\n")
    if end == -1:
        return message, b""
    return message[: end + 2], message[end + 4 :]


@dataclass(frozen=True)
class MessagePart:
    """
    One leaf of a message's MIME tree.

    @ivar headers: the part's own header fields.
    @ivar contentType: such as C{"text/plain"}.
    @ivar payload: the content, transfer-decoded (base64, quoted-printable).
    @ivar filename: the attachment's file name, or L{None}.
    @ivar alternative: whether the part is one of the alternatives of a
        C{multipart/alternative} (RFC 2046 5.1.4).
    """

    headers: tuple[tuple[str, str], ...]
    contentType: str
    payload: bytes
    filename: str | None
    alternative: bool


def _partHeaders(part: Message) -> tuple[tuple[str, str], ...]:
    out = []
    for name, raw in part.raw_items():
        try:
            value = str(part.policy.header_fetch_parse(name, str(raw)))
        except Exception:
            # The standard library's structured header parser fails on some
            # malformed values (IndexError on "Message-ID: <[>"); the peer
            # chose those bytes, so give the unfolded text instead.
            value = " ".join(str(raw).split())
        out.append((name, value))
    return tuple(out)


def _walk(part: Message, alternative: bool, out: list[MessagePart]) -> None:
    if part.is_multipart():
        inner = part.get_content_type() == "multipart/alternative"
        payload = part.get_payload()
        assert isinstance(payload, list)
        for child in payload:
            if isinstance(child, Message):
                _walk(child, inner, out)
        return
    data = part.get_payload(decode=True)
    out.append(
        MessagePart(
            headers=_partHeaders(part),
            contentType=part.get_content_type(),
            payload=data if isinstance(data, bytes) else b"",
            filename=part.get_filename(),
            alternative=alternative,
        )
    )


@dataclass(frozen=True)
class ParsedMessage:
    """
    A message's bytes with lazy views of its structure.

    @ivar raw: the message exactly as stored.
    """

    raw: bytes

    @cached_property
    def headers(self) -> Headers:
        """
        The top-level header block.
        """
        return Headers(splitHeaderBlock(self.raw)[0])

    @cached_property
    def body(self) -> bytes:
        """
        Everything after the header block's empty line.
        """
        return splitHeaderBlock(self.raw)[1]

    @cached_property
    def email(self) -> EmailMessage:
        """
        The message parsed by the standard library (policy C{SMTPUTF8}).
        """
        parsed = _PARSER.parsebytes(self.raw)
        assert isinstance(parsed, EmailMessage)
        return parsed

    @cached_property
    def parts(self) -> tuple[MessagePart, ...]:
        """
        The leaves of the MIME tree, depth first.
        """
        out: list[MessagePart] = []
        _walk(self.email, False, out)
        return tuple(out)
