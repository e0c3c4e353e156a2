# -*- test-case-name: tests.test_imap4_parse -*-
"""
The arguments of FETCH (RFC 3501 6.4.5, grammar in 9), with CONDSTORE's
C{MODSEQ} item and C{CHANGEDSINCE} modifier (RFC 7162 3.1.4), parsed
into L{FetchItem} values, macros expanded.
"""

from __future__ import annotations

import re

from gomail_twisted.imap4._commands import (
    MAX_NUMBER,
    BodySection,
    Fetch,
    FetchAttribute,
    FetchItem,
)
from gomail_twisted.imap4._parsereader import (
    ATOM,
    DIGITS,
    LPAREN,
    MAX_MODSEQ,
    RPAREN,
    SP,
    Reader,
    show,
)

__all__ = ["fetchArguments"]

LBRACKET = 0x5B
RBRACKET = 0x5D
DOT = 0x2E

# A data item's name: letters, digits and dots (RFC822.SIZE, BODY.PEEK).
_NAME = re.compile(rb"[A-Za-z0-9.]+")
# A section-text's name (HEADER.FIELDS.NOT, MIME, ...).
_SECTION_TEXT = re.compile(rb"[A-Za-z.]+")
# A header field name (RFC 5322 3.6.8: printable US-ASCII except ":"),
# and ATOM-CHAR, since the response's item name repeats it unquoted.
_FIELD_NAME = re.compile(rb'[^(){ \x00-\x1f\x7f-\xff%*"\\\]:]+\Z')

_ATTRIBUTES = {
    name.encode("ascii"): FetchAttribute(name)
    for name in (
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
    )
}

_FAST = tuple(_ATTRIBUTES[name] for name in (b"FLAGS", b"INTERNALDATE", b"RFC822.SIZE"))
_ALL = (*_FAST, _ATTRIBUTES[b"ENVELOPE"])
#: The macros of RFC 3501 6.4.5, which stand alone, never in a list.
_MACROS: dict[bytes, tuple[FetchItem, ...]] = {
    b"ALL": _ALL,
    b"FAST": _FAST,
    b"FULL": (*_ALL, _ATTRIBUTES[b"BODY"]),
}

_MESSAGE_TEXTS = frozenset({b"HEADER", b"TEXT"})
_FIELD_TEXTS = frozenset({b"HEADER.FIELDS", b"HEADER.FIELDS.NOT"})


def _attribute(reader: Reader) -> FetchItem:
    """
    One C{fetch-att} (RFC 3501 9, RFC 7162 7).

    @param reader: the position.
    @return: the item.
    @raise ParseError: no valid item comes next; BINARY (RFC 3516) is not
        supported.
    """
    start = reader.pos
    word = reader.match(_NAME)
    if word is None:
        reader.missingOr("FETCH attribute")
    name = word.upper()
    octet = reader.peek()
    if name.startswith(b"BINARY"):
        reader.fail("BINARY is not supported")
    if octet == LBRACKET and (name == b"BODY" or name == b"BODY.PEEK"):
        return _section(reader, name == b"BODY.PEEK")
    if octet == SP or octet == RPAREN or octet == -1:
        attribute = _ATTRIBUTES.get(name)
        if attribute is not None:
            return attribute
        if name in _MACROS:
            reader.fail(f"FETCH macro {name.decode('ascii')} must stand alone")
    found = ATOM.match(reader.line, start)
    assert found is not None  # the name's characters are ATOM-CHARs
    reader.fail(f"Unknown FETCH attribute {show(found.group())}")


def _section(reader: Reader, peek: bool) -> BodySection:
    """
    C{section} and its partial range (RFC 3501 9), the position at C{[}:
    C{section-spec = section-msgtext / (section-part ["." section-text])}.

    @param reader: the position.
    @param peek: the item is C{BODY.PEEK}.
    @return: the item.
    @raise ParseError: the section or its range is malformed.
    """
    reader.pos += 1
    start = reader.pos
    parts: list[int] = []
    afterDot = False
    while True:
        digits = reader.match(DIGITS)
        if digits is None:
            break
        if len(digits) > 10 or not 0 < int(digits) <= MAX_NUMBER:
            reader.fail(f"Invalid section part: {show(digits)}")
        parts.append(int(digits))
        afterDot = reader.skip(DOT)
        if not afterDot:
            break
    specifier = b""
    fields: tuple[str, ...] = ()
    if afterDot or not parts:
        text = reader.match(_SECTION_TEXT)
        if text is not None:
            specifier = text.upper()
        valid = (
            specifier in _MESSAGE_TEXTS
            or specifier in _FIELD_TEXTS
            or (specifier == b"MIME" and parts)
            or (specifier == b"" and not afterDot)
        )
        if not valid:
            reader.pos = start
            reader.fail(f"Invalid section: {reader.rest()}")
        if specifier in _FIELD_TEXTS:
            reader.space("header field list")
            fields = _fieldNames(reader)
    reader.expect(RBRACKET, '"]"')
    partial = None
    if reader.skip(0x3C):
        first = reader.number("partial start")
        reader.expect(DOT, '"."')
        count = reader.number("partial length")
        if count == 0:
            reader.fail("Invalid partial length: 0")
        reader.expect(0x3E, '">"')
        partial = (first, count)
    return BodySection(peek, tuple(parts), specifier.decode("ascii"), fields, partial)


def _fieldNames(reader: Reader) -> tuple[str, ...]:
    """
    A C{header-list} (RFC 3501 9): header field names, each an
    C{astring}.

    @param reader: the position, at C{(}.
    @return: the names in upper case.
    @raise ParseError: the list is malformed or empty, or a name is not a
        possible header field name.
    """
    reader.expect(LPAREN, '"("')
    names = []
    while True:
        raw = reader.astring("header field name")
        if _FIELD_NAME.match(raw) is None:
            reader.fail(f"Invalid header field name: {show(raw)}")
        names.append(raw.decode("ascii").upper())
        if not reader.skip(SP):
            break
    reader.expect(RPAREN, '")"')
    return tuple(names)


def _items(reader: Reader) -> tuple[FetchItem, ...]:
    """
    The data items: a macro, one item, or a parenthesised list of them.

    @param reader: the position.
    @return: the items, macros expanded.
    @raise ParseError: they are malformed.
    """
    if reader.skip(LPAREN):
        items = [_attribute(reader)]
        while reader.skip(SP):
            items.append(_attribute(reader))
        reader.expect(RPAREN, '")"')
        return tuple(items)
    found = _NAME.match(reader.line, reader.pos)
    if found is not None:
        macro = _MACROS.get(found.group().upper())
        if macro is not None:
            reader.pos = found.end()
            return macro
    return (_attribute(reader),)


def _changedSince(reader: Reader) -> int:
    """
    The FETCH modifiers (RFC 4466 2.4), of which only C{CHANGEDSINCE}
    (RFC 7162 3.1.4) is known, the position at C{(}.

    @param reader: the position.
    @return: the C{CHANGEDSINCE} value.
    @raise ParseError: the list is malformed, or holds another modifier
        (C{VANISHED} needs QRESYNC, which this server does not offer).
    """
    reader.expect(LPAREN, '"("')
    changedSince = None
    while True:
        word = reader.atom("FETCH modifier")
        name = word.upper()
        if name == b"VANISHED":
            reader.fail("VANISHED is not supported")
        if name != b"CHANGEDSINCE":
            reader.fail(f"Unknown FETCH modifier {show(word)}")
        if changedSince is not None:
            reader.fail("CHANGEDSINCE given twice")
        reader.space("mod-sequence")
        # RFC 7162 7 asks for a non-zero mod-sequence; 0 (every message)
        # is harmless and some clients send it.
        changedSince = reader.number("mod-sequence", MAX_MODSEQ)
        if not reader.skip(SP):
            break
    reader.expect(RPAREN, '")"')
    assert changedSince is not None
    return changedSince


def fetchArguments(reader: Reader) -> Fetch:
    """
    The arguments of FETCH: C{sequence-set SP items [SP modifiers]}.

    @param reader: the position, before the space after the name.
    @return: the arguments.
    @raise ParseError: they are malformed.
    """
    reader.space("sequence set")
    numbers = reader.sequenceSet()
    reader.space("FETCH attributes")
    items = _items(reader)
    changedSince = None
    if reader.skip(SP):
        changedSince = _changedSince(reader)
    return Fetch(numbers, items, changedSince)
