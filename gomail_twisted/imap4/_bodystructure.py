# -*- test-case-name: tests.test_imap4_structure -*-
"""
What C{FETCH} sends from a message's structure: C{ENVELOPE}, C{BODY} and
C{BODYSTRUCTURE} (RFC 3501 7.4.2), and where in the message each
C{BODY[section]} lies (RFC 3501 6.4.5).

Every value goes through L{gomail_twisted.imap4._encode}, so no header
octet can break the response's framing.

Case is Dovecot's: types, subtypes, parameter names and values as written
in the message; the defaults in lower case (C{"text" "plain"
("charset" "us-ascii")}, C{"7bit"}); a message/rfc822 part always as
C{"message" "rfc822"}.

Sections follow Dovecot's reading of RFC 3501 6.4.5: part 1 of a part
that is not a multipart is that part itself; C{HEADER}, C{HEADER.FIELDS},
C{HEADER.FIELDS.NOT} and C{TEXT} after a part number need a
message/rfc822 part and then mean the encapsulated message's; C{MIME} is
the part's own header. A section that does not exist is sent as an empty
string, as Dovecot and go-imap send it.
"""

from __future__ import annotations

from collections.abc import Sequence

from gomail_twisted.imap4._commands import BodySection
from gomail_twisted.imap4._encode import MAX_NUMBER, nstring, number, string
from gomail_twisted.imap4._envelope import headerFields, writeEnvelope
from gomail_twisted.imap4._mimeheader import Params
from gomail_twisted.imap4._structure import (
    MESSAGE,
    MULTIPART,
    BodyPart,
    MessageStructure,
)

__all__ = [
    "applyPartial",
    "bodyStructure",
    "envelope",
    "sectionBytes",
    "sectionRange",
]

# What Dovecot sends for a multipart without parts, which the grammar
# does not allow (RFC 3501 9, body-type-mpart needs one body).
_EMPTY_BODY = b'("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0)'
_EMPTY_BODYSTRUCTURE = _EMPTY_BODY[:-1] + b" NIL NIL NIL NIL)"
_HEADERS = ("HEADER", "HEADER.FIELDS", "HEADER.FIELDS.NOT")


def envelope(structure: MessageStructure) -> bytes:
    """
    The C{ENVELOPE} of a message (RFC 3501 7.4.2).

    @param structure: the message's structure.
    @return: the parenthesized envelope.
    """
    return writeEnvelope(structure.root.envelope)


def _params(params: Params, defaultCharset: bool) -> bytes:
    """
    @param params: parameters.
    @param defaultCharset: add C{charset=us-ascii} when there is no
        charset (a text part, RFC 2045 5.2).
    @return: C{body-fld-param}: the list, or C{NIL} when empty.
    """
    items = [string(name) + b" " + string(value) for name, value in params]
    if defaultCharset and not any(name.lower() == b"charset" for name, _ in params):
        items.append(b'"charset" "us-ascii"')
    return b"(" + b" ".join(items) + b")" if items else b"NIL"


def _count(value: int) -> bytes:
    return number(min(value, MAX_NUMBER))


def _extension(part: BodyPart) -> bytes:
    """
    @return: C{body-fld-dsp SP body-fld-lang SP body-fld-loc} of the
        extension data (RFC 3501 7.4.2, RFC 2183, RFC 3282, RFC 2557).
    """
    if part.disposition is None:
        disposition = b"NIL"
    else:
        disposition = b"(%s %s)" % (
            string(part.disposition),
            _params(part.dispositionParams, False),
        )
    if part.language:
        language = b"(" + b" ".join(string(tag) for tag in part.language) + b")"
    else:
        language = b"NIL"
    return b" ".join((disposition, language, nstring(part.location)))


def _body(part: BodyPart, extended: bool) -> bytes:
    """
    @param part: a part of a structure, nested at most as deep as
        L{parseStructure} and L{MessageStructure.decode} allow.
    @return: its C{body} without the outer parentheses.
    """
    if part.kind == MULTIPART:
        if part.children:
            children = b"".join(
                b"(" + _body(child, extended) + b")" for child in part.children
            )
        else:
            children = _EMPTY_BODYSTRUCTURE if extended else _EMPTY_BODY
        written = children + b" " + string(part.subtype)
        if extended:
            written += b" " + _params(part.params, False) + b" " + _extension(part)
        return written
    isText = part.isText
    if part.kind == MESSAGE:
        fields = [b'"message" "rfc822"']
    else:
        fields = [string(part.type) + b" " + string(part.subtype)]
    fields += [
        _params(part.params, isText),
        nstring(part.contentID),
        nstring(part.description),
        string(part.encoding if part.encoding is not None else b"7bit"),
        _count(part.size),
    ]
    if isText:
        fields.append(_count(part.lines))
    elif part.kind == MESSAGE:
        encapsulated = part.children[0]
        fields += [
            writeEnvelope(encapsulated.envelope),
            b"(" + _body(encapsulated, extended) + b")",
            _count(part.lines),
        ]
    if extended:
        fields += [nstring(part.md5), _extension(part)]
    return b" ".join(fields)


def bodyStructure(structure: MessageStructure, extended: bool) -> bytes:
    """
    The C{BODY} or C{BODYSTRUCTURE} value of a message (RFC 3501 7.4.2).

    @param structure: the message's structure.
    @param extended: C{True} for C{BODYSTRUCTURE} (with extension data),
        C{False} for C{BODY}.
    @return: the parenthesized C{body}.
    """
    return b"(" + _body(structure.root, extended) + b")"


def _findPart(root: BodyPart, path: Sequence[int]) -> BodyPart | None:
    """
    The part a section's part numbers name (RFC 3501 6.4.5), as Dovecot
    finds it.

    @param root: the message.
    @param path: the part numbers, at least one.
    @return: the part, or L{None} when there is no such part.
    """
    part = root
    last = len(path) - 1
    for index, partNumber in enumerate(path):
        more = index < last
        if part.kind == MULTIPART:
            if not 1 <= partNumber <= len(part.children):
                return None
            part = part.children[partNumber - 1]
        elif partNumber != 1 or (more and part.kind != MESSAGE):
            return None
        if more and part.kind == MESSAGE:
            part = part.children[0]
    return part


def _span(start: int, end: int) -> list[tuple[int, int]]:
    return [(start, end)] if end > start else []


def sectionRange(
    structure: MessageStructure, section: BodySection
) -> list[tuple[int, int]] | None:
    """
    Where a C{BODY[section]} lies in the message (RFC 3501 6.4.5).

    For C{HEADER.FIELDS} and C{HEADER.FIELDS.NOT} the range is the whole
    header, which the server filters with L{headerFields} before applying
    C{<partial>}; for every other section the server sends the octets of
    the ranges, narrowed by L{applyPartial}.

    @param structure: the message's structure.
    @param section: the section; its C{partial} is ignored here.
    @return: C{(start, end)} offsets into the message, none for an empty
        section; L{None} when the section does not exist, which the
        server sends as an empty string.
    """
    specifier = section.specifier
    root = structure.root
    if not section.part:
        if specifier == "":
            return _span(0, structure.size)
        message = root
    else:
        found = _findPart(root, section.part)
        if found is None:
            return None
        if specifier == "":
            return _span(found.headerEnd, found.bodyEnd)
        if specifier == "MIME":
            return _span(found.headerStart, found.headerEnd)
        if found.kind != MESSAGE:
            return None
        message = found.children[0]
    if specifier in _HEADERS:
        return _span(message.headerStart, message.headerEnd)
    if specifier == "TEXT":
        return _span(message.headerEnd, message.bodyEnd)
    return None


def applyPartial(
    ranges: Sequence[tuple[int, int]], partial: tuple[int, int] | None
) -> list[tuple[int, int]]:
    """
    Narrow ranges to the octets a C{<start.count>} asks for (RFC 3501
    6.4.5), so that only those are read.

    @param ranges: C{(start, end)} offsets, as L{sectionRange} gives them.
    @param partial: C{(start, count)} into the ranges' octets taken
        together, or L{None} for all of them.
    @return: the narrowed ranges; none when C{start} is past the end.
    """
    if partial is None:
        return list(ranges)
    first, count = partial
    last = first + count
    narrowed: list[tuple[int, int]] = []
    offset = 0
    for start, end in ranges:
        low = max(first - offset, 0)
        high = min(last - offset, end - start)
        if low < high:
            narrowed.append((start + low, start + high))
        offset += end - start
        if offset >= last:
            break
    return narrowed


def sectionBytes(
    structure: MessageStructure, section: BodySection, message: bytes
) -> bytes:
    """
    The octets of a C{BODY[section]<partial>} of a message held whole.

    @param structure: the message's structure.
    @param section: the section.
    @param message: the message the structure was parsed from.
    @return: the octets to send; empty for a section that does not exist.
    """
    ranges = sectionRange(structure, section)
    if ranges is None:
        return b""
    if section.specifier in ("HEADER.FIELDS", "HEADER.FIELDS.NOT"):
        header = b"".join(message[start:end] for start, end in ranges)
        data = headerFields(
            header, section.fields, section.specifier == "HEADER.FIELDS.NOT"
        )
        if section.partial is None:
            return data
        first, count = section.partial
        return data[first : first + count]
    return b"".join(
        message[start:end] for start, end in applyPartial(ranges, section.partial)
    )
