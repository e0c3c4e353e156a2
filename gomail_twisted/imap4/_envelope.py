# -*- test-case-name: tests.test_imap4_structure -*-
"""
Header fields as the IMAP4 server reads them, and the C{ENVELOPE} of a
message (RFC 3501 7.4.2).

Values are taken raw, as IMAP wants them: encoded words (RFC 2047) stay
encoded and 8-bit octets stay as they are (the encoder sends them as
literals). A value is unfolded by deleting every CR and LF (RFC 5322
2.2.3; Dovecot deletes bare ones too), trimmed of spaces and tabs at both
ends, and NUL, which no IMAP string may carry (RFC 3501 9), becomes
U+FFFD, as Dovecot sends it.

Address lists are read the way RFC 5322 3.4 writes them, groups included,
and leniently: no input raises. A mailbox without a local part or a
domain gets Dovecot's placeholders C{MISSING_MAILBOX} and
C{MISSING_DOMAIN}, because a NIL host would read as the start of a group
(RFC 3501 7.4.2). Empty list members (C{a@b,,c@d}) are skipped, as
RFC 5322 4.4 says of the obsolete syntax.

The first occurrence of each field counts, as in go-imap; Dovecot takes
the last C{Subject} and joins repeated C{From} fields. Dovecot also
squeezes white space in the subject and in display names; here the value
is the raw one, unfolded.

Every scan here is a regular expression or a loop over tokens, so the work
grows linearly with the header, and a message's fields are split into at
most L{gomail_twisted.imap4._mimeheader.MAX_MESSAGE_TOKENS} tokens in
all, whatever its content.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

from gomail_twisted.imap4._encode import nstring
from gomail_twisted.imap4._mimeheader import (
    ADDRESS_TOKENS,
    ATOM,
    COMMENT,
    LITERAL,
    QUOTED,
    SPECIAL,
    Token,
    TokenBudget,
    isSpecial,
)

__all__ = [
    "MISSING_DOMAIN",
    "MISSING_MAILBOX",
    "Address",
    "Envelope",
    "cleanValue",
    "headerFields",
    "headerValues",
    "parseAddressList",
    "parseEnvelope",
    "writeEnvelope",
]

#: The host Dovecot sends for a mailbox written without a domain.
MISSING_DOMAIN = b"MISSING_DOMAIN"
#: The mailbox Dovecot sends for an address written without a local part.
MISSING_MAILBOX = b"MISSING_MAILBOX"

_REPLACEMENT = "\ufffd".encode()

# The end of a field: a line end not followed by a continuation line.
_FIELD_END = re.compile(rb"\n(?![ \t])")
# ftext (RFC 5322 3.6.8): printable US-ASCII but the colon.
_FIELD_NAME = re.compile(rb"[\x21-\x39\x3b-\x7e]+\Z")


def cleanValue(raw: bytes) -> bytes:
    """
    A field body as IMAP sends it: unfolded, trimmed, NUL replaced.

    @param raw: the octets after the colon, up to the field's end.
    @return: the value.
    """
    value = raw.replace(b"\r", b"").replace(b"\n", b"").strip(b" \t")
    return value.replace(b"\x00", _REPLACEMENT)


def fieldBody(message: bytes, start: int, end: int) -> bytes:
    """
    The cleaned body of the field whose value starts at C{start}.

    @param message: the octets holding the header.
    @param start: just after the field's colon.
    @param end: the end of the header block.
    @return: the value, per L{cleanValue}.
    """
    found = _FIELD_END.search(message, start, end)
    return cleanValue(message[start : found.start() if found else end])


@functools.lru_cache(maxsize=64)
def _fieldsPattern(fields: tuple[str, ...]) -> re.Pattern[bytes] | None:
    """
    The expression that finds the fields of some names at the start of a
    line, in any case.  Built once for each set of names a client asks
    for (a FETCH asks the same for every message), not once a message.

    @param fields: the names; those that are no field name are left out.
    @return: the expression, or L{None} when no name is left.
    """
    names = sorted(
        {
            encoded
            for encoded in (field.encode("utf-8", "replace") for field in fields)
            if _FIELD_NAME.match(encoded)
        }
    )
    if not names:
        return None
    return re.compile(
        rb"^(?:" + b"|".join(re.escape(name) for name in names) + rb")[ \t]*:",
        re.I | re.M,
    )


def headerValues(header: bytes, name: str) -> list[bytes]:
    """
    Every value of a field, in order, for C{SEARCH HEADER} and friends
    (RFC 3501 6.4.4).

    @param header: a header block, as L{sectionRanges} gives it.
    @param name: the field name, in any case.
    @return: the unfolded values (L{cleanValue}); empty when the field is
        absent or C{name} is not a field name.
    """
    pattern = _fieldsPattern((name,))
    if pattern is None:
        return []
    return [
        fieldBody(header, found.end(), len(header))
        for found in pattern.finditer(header)
    ]


def _endsWithBlankLine(header: bytes) -> bool:
    return header in (b"\r\n", b"\n") or header.endswith((b"\n\r\n", b"\n\n"))


def headerFields(header: bytes, fields: Sequence[str], exclude: bool) -> bytes:
    """
    The subset of a header block that C{HEADER.FIELDS} or
    C{HEADER.FIELDS.NOT} returns (RFC 3501 6.4.5).

    Field names match without regard to case; a kept field keeps its
    continuation lines and its octets. The blank line ends the result
    unless the header had none, the case RFC 3501 6.4.5 exempts (a message
    with no body and no blank line); Dovecot adds it even then. Lines that
    are not fields are left out of C{HEADER.FIELDS} and kept by
    C{HEADER.FIELDS.NOT}. The fields are found by one regular expression,
    built once for each set of names (L{_fieldsPattern}), so a long header
    costs a scan, not a loop over its lines.

    @param header: the header block, with its blank line if it has one.
    @param fields: the field names.
    @param exclude: C{True} for C{HEADER.FIELDS.NOT}.
    @return: the kept lines, each ending in a line end, then CRLF.
    """
    blank = _endsWithBlankLine(header)
    if blank:
        header = header[: -2 if header.endswith(b"\r\n") else -1]
    pattern = _fieldsPattern(tuple(fields))
    spans: list[tuple[int, int]] = []
    if pattern is not None:
        for found in pattern.finditer(header):
            end = _FIELD_END.search(header, found.end())
            spans.append((found.start(), len(header) if end is None else end.end()))
    if exclude:
        edges = [0, *(edge for span in spans for edge in span), len(header)]
        pieces = [header[edges[i] : edges[i + 1]] for i in range(0, len(edges), 2)]
    else:
        pieces = [header[start:end] for start, end in spans]
    kept = b"".join(pieces)
    if kept and not kept.endswith(b"\n"):
        kept += b"\r\n"
    return kept + b"\r\n" if blank else kept


@dataclass(frozen=True, slots=True)
class Address:
    """
    One C{address} of an envelope (RFC 3501 7.4.2).

    A group starts with C{mailbox} set to the group's name and C{host}
    L{None}, and ends with all four L{None}.

    @ivar name: the display name (C{addr-name}), or L{None}.
    @ivar route: the obsolete source route (C{addr-adl}), or L{None}.
    @ivar mailbox: the local part (C{addr-mailbox}).
    @ivar host: the domain (C{addr-host}).
    """

    name: bytes | None
    route: bytes | None
    mailbox: bytes | None
    host: bytes | None


_GROUP_END = Address(None, None, None, None)


def _words(tokens: Sequence[Token]) -> bytes | None:
    """
    A phrase (RFC 5322 3.2.5): its words and dots, with one space where
    white space or a comment stood between them, quoting undone.

    @param tokens: the phrase's tokens.
    @return: the phrase, or L{None} when empty.
    """
    out = bytearray()
    end = -1
    for token in tokens:
        if token.kind == COMMENT or (token.kind == SPECIAL and token.text != b"."):
            continue
        if out and token.start != end:
            out += b" "
        out += token.text
        end = token.end
    return bytes(out).strip() or None


def _isPhrase(tokens: Sequence[Token]) -> bool:
    return all(token.kind != SPECIAL or token.text == b"." for token in tokens)


def _joined(tokens: Sequence[Token]) -> bytes:
    """
    A local part or domain: its pieces joined as written, without the
    comments and white space between them.

    @param tokens: its tokens.
    @return: the octets, possibly empty.
    """
    return b"".join(token.text for token in tokens if token.kind != COMMENT)


def _comment(tokens: Sequence[Token]) -> bytes | None:
    """
    @param tokens: a mailbox's tokens.
    @return: its first non-empty comment, which Dovecot and older mailers
        take as the name of C{user@host (Name)}, or L{None}.
    """
    for token in tokens:
        if token.kind == COMMENT and token.text.strip():
            return b" ".join(token.text.split())
    return None


def _mailbox(tokens: list[Token]) -> Address | None:
    """
    One mailbox (RFC 5322 3.4): C{[phrase] <[route:]local@domain>} or
    C{local@domain}.

    @param tokens: the mailbox's tokens.
    @return: the address, or L{None} when the tokens hold no word, C{<}
        or C{@}.
    """
    if not any(
        token.kind in (ATOM, QUOTED, LITERAL) or token.text in (b"<", b"@")
        for token in tokens
    ):
        return None
    opening = next((i for i, t in enumerate(tokens) if isSpecial(t, b"<")), None)
    route = None
    if opening is None:
        name = _comment(tokens)
        spec = tokens
        if not any(isSpecial(t, b"@") for t in tokens):
            words = [t for t in tokens if t.kind in (ATOM, QUOTED)]
            if len(words) > 1:
                # A phrase with no address, as Dovecot reads "a b c".
                return Address(_words(tokens), None, MISSING_MAILBOX, MISSING_DOMAIN)
    else:
        name = _words(tokens[:opening]) or _comment(tokens)
        closing = next(
            (i for i in range(opening + 1, len(tokens)) if isSpecial(tokens[i], b">")),
            len(tokens),
        )
        spec = tokens[opening + 1 : closing]
    colon = next((i for i, t in enumerate(spec) if isSpecial(t, b":")), None)
    if colon is not None:
        # An obsolete route (RFC 5322 4.4) is "@a,@b:"; anything else
        # before a colon is not part of the address.
        if spec and isSpecial(spec[0], b"@"):
            route = _joined(spec[:colon]) or None
        spec = spec[colon + 1 :]
    at = next((i for i, t in enumerate(spec) if isSpecial(t, b"@")), len(spec))
    local = _localPart(spec[:at])
    domain = _joined(spec[at + 1 :])
    return Address(name, route, local or MISSING_MAILBOX, domain or MISSING_DOMAIN)


def _localPart(tokens: Sequence[Token]) -> bytes:
    """
    @param tokens: a local part's tokens (RFC 5322 3.4.1).
    @return: its words joined by their dots; words with no dot between
        them (not valid, but seen) are joined by a space.
    """
    out = bytearray()
    previousWord = False
    for token in tokens:
        if token.kind == COMMENT:
            continue
        isWord = token.kind != SPECIAL
        if isWord and previousWord:
            out += b" "
        out += token.text
        previousWord = isWord
    return bytes(out)


def parseAddressList(
    value: bytes, budget: TokenBudget | None = None
) -> tuple[Address, ...]:
    """
    Parse an C{address-list} (RFC 5322 3.4) into envelope addresses, a
    group as its start marker, its members and its end marker
    (RFC 3501 7.4.2).

    @param value: the field body, unfolded.
    @param budget: the message's token budget; a fresh one by default.
    @return: the addresses, possibly none; never raises.
    """
    addresses: list[Address] = []
    current: list[Token] = []
    inGroup = False
    inAngle = False

    def flush() -> None:
        mailbox = _mailbox(current)
        if mailbox is not None:
            addresses.append(mailbox)
        current.clear()

    if budget is None:
        budget = TokenBudget()
    for token in budget.tokenize(value, ADDRESS_TOKENS):
        if token.kind == SPECIAL:
            char = token.text
            if char == b"<":
                inAngle = True
            elif char == b">":
                inAngle = False
            elif not inAngle and char in (b",", b";", b":"):
                if char == b":":
                    name = _words(current) if _isPhrase(current) else None
                    if not inGroup and name is not None:
                        addresses.append(Address(None, None, name, None))
                        current.clear()
                        inGroup = True
                        continue
                    # A route, or a group within a group (not allowed):
                    # the mailbox makes what it can of it.
                    current.append(token)
                    continue
                flush()
                if char == b";" and inGroup:
                    addresses.append(_GROUP_END)
                    inGroup = False
                continue
        current.append(token)
    flush()
    if inGroup:
        addresses.append(_GROUP_END)
    return tuple(addresses)


@dataclass(frozen=True, slots=True)
class Envelope:
    """
    The envelope of a message (RFC 3501 7.4.2), from the first occurrence
    of each field.

    An absent field is L{None}; a present but empty C{Date}, C{Subject},
    C{In-Reply-To} or C{Message-ID} is C{b""} (sent as C{""}); an address
    field with no address is C{()} (sent as NIL), and C{Sender} and
    C{Reply-To} then take C{From}'s value when written.

    @ivar date: C{Date}.
    @ivar subject: C{Subject}, encoded words left encoded.
    @ivar from_: C{From}.
    @ivar sender: C{Sender}.
    @ivar replyTo: C{Reply-To}.
    @ivar to: C{To}.
    @ivar cc: C{Cc}.
    @ivar bcc: C{Bcc}.
    @ivar inReplyTo: C{In-Reply-To}.
    @ivar messageID: C{Message-ID}.
    """

    date: bytes | None = None
    subject: bytes | None = None
    from_: tuple[Address, ...] = ()
    sender: tuple[Address, ...] = ()
    replyTo: tuple[Address, ...] = ()
    to: tuple[Address, ...] = ()
    cc: tuple[Address, ...] = ()
    bcc: tuple[Address, ...] = ()
    inReplyTo: bytes | None = None
    messageID: bytes | None = None


def parseEnvelope(values: dict[bytes, bytes], budget: TokenBudget) -> Envelope:
    """
    Build an envelope from a header's field values.

    @param values: the cleaned value of the first occurrence of each
        field, by lower-case name.
    @param budget: the message's token budget.
    @return: the envelope.
    """

    def addresses(name: bytes) -> tuple[Address, ...]:
        value = values.get(name)
        return parseAddressList(value, budget) if value else ()

    return Envelope(
        date=values.get(b"date"),
        subject=values.get(b"subject"),
        from_=addresses(b"from"),
        sender=addresses(b"sender"),
        replyTo=addresses(b"reply-to"),
        to=addresses(b"to"),
        cc=addresses(b"cc"),
        bcc=addresses(b"bcc"),
        inReplyTo=values.get(b"in-reply-to"),
        messageID=values.get(b"message-id"),
    )


def _writeAddresses(addresses: tuple[Address, ...]) -> bytes:
    """
    @param addresses: an address list.
    @return: C{NIL}, or the addresses in parentheses with no space between
        them (C{env-from} and the others in RFC 3501 9).
    """
    if not addresses:
        return b"NIL"
    return (
        b"("
        + b"".join(
            b"(%s %s %s %s)"
            % (
                nstring(address.name),
                nstring(address.route),
                nstring(address.mailbox),
                nstring(address.host),
            )
            for address in addresses
        )
        + b")"
    )


def writeEnvelope(envelope: Envelope | None) -> bytes:
    """
    Encode an C{envelope} (RFC 3501 7.4.2, 9).

    @param envelope: the envelope; L{None} for a message with no header.
    @return: the parenthesized envelope.
    """
    if envelope is None:
        envelope = Envelope()
    originator = envelope.from_
    return b"(%s)" % b" ".join(
        (
            nstring(envelope.date),
            nstring(envelope.subject),
            _writeAddresses(originator),
            _writeAddresses(envelope.sender or originator),
            _writeAddresses(envelope.replyTo or originator),
            _writeAddresses(envelope.to),
            _writeAddresses(envelope.cc),
            _writeAddresses(envelope.bcc),
            nstring(envelope.inReplyTo),
            nstring(envelope.messageID),
        )
    )
