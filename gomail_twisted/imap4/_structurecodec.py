# -*- test-case-name: tests.test_imap4_structure -*-
"""
The compact serialised form of a L{MessageStructure}, which the store
caches beside each message so that C{FETCH BODYSTRUCTURE} does not parse
it again.

The form is one version octet (L{VERSION}) then compact JSON: a part is a
fixed-length array, octet strings are JSON strings whose code points are
the octets (Latin-1), absent values are C{null}. Decoding checks
everything a parsed structure guarantees (offsets in order and in the
message, kinds and children, depth and count of parts, no NUL), so a
damaged cache file gives L{ValueError}, never a structure that could
break a response, and never a crash or unbounded recursion.
"""

from __future__ import annotations

import json
from typing import Any

from gomail_twisted.imap4._envelope import Address, Envelope
from gomail_twisted.imap4._mimeheader import Params
from gomail_twisted.imap4._structure import (
    MAX_NESTING,
    MAX_PARTS,
    MESSAGE,
    MULTIPART,
    SINGLE,
    BodyPart,
    MessageStructure,
)

__all__ = ["VERSION", "decodeStructure", "encodeStructure"]

#: The first octet of the form; a form of another version is refused, and
#: the caller parses the message again.
VERSION = 1

_KINDS = (SINGLE, MULTIPART, MESSAGE)
_PART_FIELDS = 18
_REQUIRED_FIELDS = 9
# What a left-out trailing field of a part stands for.
_DEFAULTS: list[Any] = [
    [] if index in (7, 9, 12, 16) else None for index in range(_PART_FIELDS)
]
_ENVELOPE_FIELDS = 10


def _text(value: bytes | None) -> str | None:
    return None if value is None else value.decode("latin-1")


def _flatPairs(pairs: Params) -> list[str]:
    return [text.decode("latin-1") for pair in pairs for text in pair]


def _addresses(addresses: tuple[Address, ...]) -> list[str | None]:
    return [
        _text(value)
        for address in addresses
        for value in (address.name, address.route, address.mailbox, address.host)
    ]


def _envelope(envelope: Envelope | None) -> list[Any] | None:
    if envelope is None:
        return None
    return [
        _text(envelope.date),
        _text(envelope.subject),
        _addresses(envelope.from_),
        _addresses(envelope.sender),
        _addresses(envelope.replyTo),
        _addresses(envelope.to),
        _addresses(envelope.cc),
        _addresses(envelope.bcc),
        _text(envelope.inReplyTo),
        _text(envelope.messageID),
    ]


def _part(part: BodyPart) -> list[Any]:
    items = [
        _KINDS.index(part.kind),
        part.headerStart,
        part.headerEnd,
        part.bodyEnd,
        part.lines,
        _text(part.type),
        _text(part.subtype),
        [_part(child) for child in part.children],
        _envelope(part.envelope),
        _flatPairs(part.params),
        _text(part.encoding),
        _text(part.disposition),
        _flatPairs(part.dispositionParams),
        _text(part.contentID),
        _text(part.description),
        _text(part.md5),
        [_text(tag) for tag in part.language],
        _text(part.location),
    ]
    # The fields most parts lack come last and are left out when empty.
    while len(items) > _REQUIRED_FIELDS and items[-1] == _DEFAULTS[len(items) - 1]:
        items.pop()
    return items


def encodeStructure(structure: MessageStructure) -> bytes:
    """
    @param structure: a structure.
    @return: its serialised form.
    """
    body = json.dumps(
        [structure.size, _part(structure.root)],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return bytes((VERSION,)) + body.encode("utf-8")


def _fail(what: str) -> ValueError:
    return ValueError(f"malformed message structure: {what}")


def _octets(value: object, what: str) -> bytes:
    if not isinstance(value, str):
        raise _fail(what)
    data = value.encode("latin-1")
    if b"\x00" in data:
        raise _fail(what)
    return data


def _optional(value: object, what: str) -> bytes | None:
    return None if value is None else _octets(value, what)


def _integer(value: object, low: int, high: int, what: str) -> int:
    if type(value) is not int or not low <= value <= high:
        raise _fail(what)
    return value


def _list(value: object, what: str, length: int | None = None) -> list[Any]:
    if type(value) is not list or (length is not None and len(value) != length):
        raise _fail(what)
    return value


def _pairs(value: object, what: str) -> Params:
    items = _list(value, what)
    if len(items) % 2:
        raise _fail(what)
    octets = [_octets(item, what) for item in items]
    return tuple(zip(octets[::2], octets[1::2], strict=True))


def _readAddresses(value: object) -> tuple[Address, ...]:
    items = _list(value, "address list")
    if len(items) % 4:
        raise _fail("address list")
    values = [_optional(item, "address") for item in items]
    return tuple(Address(*values[i : i + 4]) for i in range(0, len(values), 4))


def _readEnvelope(value: object) -> Envelope:
    items = _list(value, "envelope", _ENVELOPE_FIELDS)
    return Envelope(
        date=_optional(items[0], "date"),
        subject=_optional(items[1], "subject"),
        from_=_readAddresses(items[2]),
        sender=_readAddresses(items[3]),
        replyTo=_readAddresses(items[4]),
        to=_readAddresses(items[5]),
        cc=_readAddresses(items[6]),
        bcc=_readAddresses(items[7]),
        inReplyTo=_optional(items[8], "in-reply-to"),
        messageID=_optional(items[9], "message-id"),
    )


def _kindOf(mediaType: bytes, subtype: bytes) -> str:
    """
    @return: the kind of part a media type makes, as the parser decides.
    """
    if mediaType.lower() == b"multipart":
        return MULTIPART
    if (mediaType.lower(), subtype.lower()) == (b"message", b"rfc822"):
        return MESSAGE
    return SINGLE


class _Reader:
    """Reads parts, counting them, with their nesting bounded."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.parts = 0

    def part(
        self, value: object, level: int, start: int, end: int, isMessage: bool
    ) -> BodyPart:
        """
        @param value: the part's array.
        @param level: its level; the message is 1.
        @param start: the least offset it may start at.
        @param end: the greatest offset it may end at.
        @param isMessage: whether it is a message (with an envelope).
        """
        self.parts += 1
        if self.parts > MAX_PARTS or level > MAX_NESTING:
            raise _fail("too many parts or levels")
        items = _list(value, "part")
        if not _REQUIRED_FIELDS <= len(items) <= _PART_FIELDS:
            raise _fail("part")
        items = items + _DEFAULTS[len(items) :]
        kind = _KINDS[_integer(items[0], 0, len(_KINDS) - 1, "kind")]
        headerStart = _integer(items[1], start, end, "header start")
        headerEnd = _integer(items[2], headerStart, end, "header end")
        bodyEnd = _integer(items[3], headerEnd, end, "body end")
        lines = _integer(items[4], 0, bodyEnd - headerEnd, "lines")
        rawChildren = _list(items[7], "children")
        children: list[BodyPart] = []
        if kind == MESSAGE:
            if len(rawChildren) != 1:
                raise _fail("message part")
            child = self.part(rawChildren[0], level + 1, headerEnd, bodyEnd, True)
            if (child.headerStart, child.bodyEnd) != (headerEnd, bodyEnd):
                raise _fail("encapsulated message")
            children.append(child)
        elif kind == MULTIPART:
            position = headerEnd
            for rawChild in rawChildren:
                child = self.part(rawChild, level + 1, position, bodyEnd, False)
                children.append(child)
                position = child.bodyEnd
        elif rawChildren:
            raise _fail("single part with children")
        if isMessage != (items[8] is not None):
            raise _fail("envelope")
        mediaType = _octets(items[5], "type")
        subtype = _octets(items[6], "subtype")
        if kind != _kindOf(mediaType, subtype):
            raise _fail("kind and type disagree")
        return BodyPart(
            kind=kind,
            headerStart=headerStart,
            headerEnd=headerEnd,
            bodyEnd=bodyEnd,
            type=mediaType,
            subtype=subtype,
            params=_pairs(items[9], "parameters"),
            contentID=_optional(items[13], "content-id"),
            description=_optional(items[14], "description"),
            encoding=_optional(items[10], "encoding"),
            md5=_optional(items[15], "md5"),
            disposition=_optional(items[11], "disposition"),
            dispositionParams=_pairs(items[12], "disposition parameters"),
            language=tuple(
                _octets(tag, "language") for tag in _list(items[16], "language")
            ),
            location=_optional(items[17], "location"),
            lines=lines,
            children=tuple(children),
            envelope=None if items[8] is None else _readEnvelope(items[8]),
        )


def decodeStructure(data: bytes) -> MessageStructure:
    """
    @param data: a form L{encodeStructure} gave.
    @return: the structure.
    @raise ValueError: C{data} is of another version or malformed.
    """
    if not data or data[0] != VERSION:
        raise ValueError("unknown message structure version")
    try:
        loaded = json.loads(data[1:].decode("utf-8"))
    except RecursionError:
        raise _fail("nested too deeply")
    items = _list(loaded, "structure", 2)
    size = _integer(items[0], 0, 2**63, "size")
    root = _Reader(size).part(items[1], 1, 0, size, True)
    if root.headerStart != 0 or root.bodyEnd != size:
        raise _fail("message bounds")
    return MessageStructure(size=size, root=root)
