# -*- test-case-name: tests.test_imap4_structure -*-
"""
The syntax of structured header fields: tokens (RFC 5322 3.2, RFC 2045
5.1), and the MIME fields of a part's header (RFC 2045, RFC 2183, RFC
2231, RFC 3282, RFC 2557).

Parameters keep their names' and values' case, with quoting undone; RFC
2231 continuations are joined (C{name*0}, C{name*1} give C{name};
extended ones give C{name*} with the value still percent-encoded), after
the other parameters, as Dovecot does. An unquoted value runs to white
space or C{;} even over C{=} or C{/} (C{boundary=----=_Part_1}), which
many mailers write, where Dovecot stops at the first C{=}.

A malformed C{Content-Type} counts as absent (RFC 2045 5.2); other
fields that do not parse are left out. Every scan is a regular expression
or a loop over tokens, linear in the field; at most L{MAX_TOKENS} tokens
of a field and L{MAX_MESSAGE_TOKENS} of a whole message are read, and the
rest reads as absent, so that no header makes the work large.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import NamedTuple

__all__ = [
    "ADDRESS_TOKENS",
    "ATOM",
    "COMMENT",
    "LITERAL",
    "MAX_MESSAGE_TOKENS",
    "MAX_TOKENS",
    "MIME_TOKENS",
    "QUOTED",
    "SPECIAL",
    "MimeFields",
    "Params",
    "Token",
    "TokenBudget",
    "isSpecial",
    "readMime",
    "tokenize",
]

#: Parameters: C{(name, value)} pairs in order.
Params = tuple[tuple[bytes, bytes], ...]

#: The most tokens read from one field: thousands of parameters or
#: addresses, where real fields have a few, so that a hostile field costs
#: little.
MAX_TOKENS = 50_000
#: The most tokens read from all the fields of one message.
MAX_MESSAGE_TOKENS = 500_000

# Tokens of structured field bodies (RFC 5322 3.2, RFC 2045 5.1). Every
# octet starts some alternative, so a scan never stalls.
QUOTED = 1
LITERAL = 2
COMMENT = 3
SPECIAL = 4
ATOM = 5
_KINDS = {"q": QUOTED, "l": LITERAL, "c": COMMENT, "s": SPECIAL, "a": ATOM}

#: The tokens of an address list (RFC 5322 3.2.3 specials).
ADDRESS_TOKENS = re.compile(
    rb"[ \t\r\n]+"
    rb'|"(?P<q>(?:[^"\\]|\\.)*)"?'
    rb"|(?P<l>\[(?:[^\]\\]|\\.)*\]?)"
    rb"|(?P<c>\()"
    rb"|(?P<s>[<>@,;:.\\)\]])"
    rb'|(?P<a>[^ \t\r\n"\[\]()<>@,;:.\\]+)',
    re.S,
)
#: The tokens of a MIME field (RFC 2045 5.1 tspecials).
MIME_TOKENS = re.compile(
    rb"[ \t\r\n]+"
    rb'|"(?P<q>(?:[^"\\]|\\.)*)"?'
    rb"|(?P<c>\()"
    rb"|(?P<s>[()<>@,;:\\/\[\]?=])"
    rb'|(?P<a>[^ \t\r\n"()<>@,;:\\/\[\]?=]+)',
    re.S,
)
_COMMENT_STOP = re.compile(rb"[()\\]")
_ESCAPED = re.compile(rb"\\(.)", re.S)


class Token(NamedTuple):
    """
    One token of a structured field body (a named tuple rather than a
    dataclass: a long field has many, and tuples are made several times
    faster).

    @ivar kind: L{QUOTED}, L{LITERAL}, L{COMMENT}, L{SPECIAL} or L{ATOM}.
    @ivar text: its octets: a quoted string's or comment's content with
        quoting undone, a special's character, an atom as written.
    @ivar start: where it starts in the field body.
    @ivar end: where it ends.
    """

    kind: int
    text: bytes
    start: int
    end: int


def _skipComment(value: bytes, start: int) -> int:
    """
    @param value: a field body.
    @param start: just after a comment's opening parenthesis.
    @return: just after its closing one (comments nest, RFC 5322 3.2.2),
        or the end of C{value}.
    """
    depth = 1
    position = start
    while True:
        found = _COMMENT_STOP.search(value, position)
        if found is None:
            return len(value)
        position = found.end()
        char = value[found.start()]
        if char == 0x5C:
            position += 1
        elif char == 0x28:
            depth += 1
        else:
            depth -= 1
            if depth == 0:
                return position


def tokenize(
    value: bytes, pattern: re.Pattern[bytes], limit: int = MAX_TOKENS
) -> list[Token]:
    """
    Split a structured field body into tokens, skipping white space.

    @param value: the field body.
    @param pattern: L{ADDRESS_TOKENS} (RFC 5322 specials) or L{MIME_TOKENS}
        (RFC 2045 tspecials).
    @param limit: the most tokens read; the rest of the field is ignored.
    @return: the tokens, comments included.
    """
    tokens: list[Token] = []
    position = 0
    size = len(value)
    while position < size and len(tokens) < limit:
        found = pattern.match(value, position)
        if found is None:  # pragma: no cover - every octet starts a token
            break
        kind = found.lastgroup
        if kind is None:
            position = found.end()
            continue
        if kind == "c":
            end = _skipComment(value, found.end())
            inner = value[
                found.end() : end - 1 if value[end - 1 : end] == b")" else end
            ]
            tokens.append(Token(COMMENT, _ESCAPED.sub(rb"\1", inner), position, end))
            position = end
            continue
        text = found.group(kind)
        if kind == "q":
            text = _ESCAPED.sub(rb"\1", text)
        tokens.append(Token(_KINDS[kind], text, position, found.end()))
        position = found.end()
    return tokens


class TokenBudget:
    """
    How many more tokens the fields of one message may be split into, so
    that the work on a message's structured fields is bounded however
    many fields and parts it has. Past the budget, fields read as empty.

    @ivar remaining: the tokens left.
    """

    __slots__ = ("remaining",)

    def __init__(self, total: int = MAX_MESSAGE_TOKENS) -> None:
        self.remaining = total

    def tokenize(
        self, value: bytes, pattern: re.Pattern[bytes], limit: int = MAX_TOKENS
    ) -> list[Token]:
        """
        L{tokenize}, within the field's and the budget's limits.

        @param value: the field body.
        @param pattern: L{ADDRESS_TOKENS} or L{MIME_TOKENS}.
        @param limit: the most tokens read from this field.
        @return: the tokens, comments included.
        """
        tokens = tokenize(value, pattern, min(limit, self.remaining))
        self.remaining -= len(tokens)
        return tokens


def isSpecial(token: Token, char: bytes) -> bool:
    """
    @return: whether C{token} is the special character C{char}.
    """
    return token.kind == SPECIAL and token.text == char


def _mimeTokens(value: bytes, budget: TokenBudget) -> list[Token]:
    tokens = budget.tokenize(value, MIME_TOKENS)
    return [token for token in tokens if token.kind != COMMENT]


def _parameters(value: bytes, tokens: list[Token], start: int) -> Params:
    """
    Read C{;name=value} parameters (RFC 2045 5.1), skipping what does not
    parse up to the next C{;}, then join RFC 2231 continuations.

    @param value: the field body the tokens come from.
    @param tokens: its tokens, comments left out.
    @param start: the index of the first token after the type.
    @return: the parameters.
    """
    found: list[tuple[bytes, bytes]] = []
    index = start
    count = len(tokens)
    while index < count:
        if not isSpecial(tokens[index], b";"):
            index += 1
            continue
        name = index + 1
        if not (
            name + 2 < count
            and tokens[name].kind == ATOM
            and isSpecial(tokens[name + 1], b"=")
        ):
            index += 1
            continue
        first = tokens[name + 2]
        index = name + 3
        if first.kind == QUOTED:
            found.append((tokens[name].text, first.text))
        elif not isSpecial(first, b";"):
            end = first.end
            while (
                index < count
                and tokens[index].start == end
                and tokens[index].kind in (ATOM, SPECIAL)
                and not isSpecial(tokens[index], b";")
            ):
                end = tokens[index].end
                index += 1
            found.append((tokens[name].text, value[first.start : end]))
        else:
            index -= 1
    return _joinContinuations(found)


def _continuation(name: bytes) -> tuple[bytes, int, bool] | None:
    """
    @param name: a parameter name.
    @return: the base name, section number and whether it is extended,
        for an RFC 2231 3 section (C{name*0}, C{name*1*}); else L{None}.
    """
    extended = name.endswith(b"*")
    base, star, digits = (name[:-1] if extended else name).rpartition(b"*")
    if not (star and base and digits.isdigit() and len(digits) <= 3):
        return None
    if digits.startswith(b"0") and digits != b"0":
        return None
    return base, int(digits), extended


def _joinContinuations(params: list[tuple[bytes, bytes]]) -> Params:
    """
    Join RFC 2231 parameter continuations.

    A name whose sections run from 0 without gap or repeat becomes one
    parameter, C{name*} if a section is extended; others stay as they
    were. Joined ones come after the rest, sorted by name, as in Dovecot.

    @param params: the parameters as written.
    @return: the parameters.
    """
    sections: dict[bytes, list[tuple[int, int, bool]]] = {}
    bases: dict[bytes, bytes] = {}
    for position, (name, _) in enumerate(params):
        parsed = _continuation(name)
        if parsed is not None:
            base, number, extended = parsed
            sections.setdefault(base.lower(), []).append((number, position, extended))
            if number == 0:
                bases[base.lower()] = base
    if not sections:
        return tuple(params)
    joined: list[tuple[bytes, bytes]] = []
    absorbed: set[int] = set()
    for key in sorted(sections):
        pieces = sorted(sections[key])
        if [number for number, _, _ in pieces] != list(range(len(pieces))):
            continue
        base = bases[key]
        extended = any(piece[2] for piece in pieces)
        joined.append(
            (
                base + (b"*" if extended else b""),
                b"".join(params[position][1] for _, position, _ in pieces),
            )
        )
        absorbed.update(position for _, position, _ in pieces)
    kept = [param for position, param in enumerate(params) if position not in absorbed]
    return tuple(kept + joined)


def _contentType(
    value: bytes | None, budget: TokenBudget
) -> tuple[bytes, bytes, Params] | None:
    """
    @param value: a C{Content-Type} field body, or L{None}.
    @return: type, subtype and parameters (RFC 2045 5.1), or L{None} when
        absent or malformed.
    """
    if value is None:
        return None
    tokens = _mimeTokens(value, budget)
    if (
        len(tokens) < 3
        or tokens[0].kind != ATOM
        or not isSpecial(tokens[1], b"/")
        or tokens[2].kind != ATOM
    ):
        return None
    return tokens[0].text, tokens[2].text, _parameters(value, tokens, 3)


@dataclass(slots=True)
class MimeFields:
    """
    The MIME fields of a part's header, as read; see
    L{gomail_twisted.imap4._structure.BodyPart} for each.
    """

    type: bytes = b"text"
    subtype: bytes = b"plain"
    params: Params = ()
    contentID: bytes | None = None
    description: bytes | None = None
    encoding: bytes | None = None
    md5: bytes | None = None
    disposition: bytes | None = None
    dispositionParams: Params = ()
    language: tuple[bytes, ...] = ()
    location: bytes | None = None


def readMime(
    values: dict[bytes, bytes], inDigest: bool, budget: TokenBudget
) -> MimeFields:
    """
    @param values: a header's field values by lower-case name.
    @param inDigest: whether the part is in a C{multipart/digest}.
    @param budget: the message's token budget.
    @return: its MIME fields, defaults filled in.
    """
    mime = MimeFields()
    parsed = _contentType(values.get(b"content-type"), budget)
    if parsed is not None:
        mime.type, mime.subtype, mime.params = parsed
    elif inDigest:
        mime.type, mime.subtype = b"message", b"rfc822"
    mime.contentID = values.get(b"content-id")
    mime.description = values.get(b"content-description")
    mime.md5 = values.get(b"content-md5")
    mime.location = values.get(b"content-location")
    encoding = values.get(b"content-transfer-encoding")
    if encoding is not None:
        tokens = _mimeTokens(encoding, budget)
        if len(tokens) == 1 and tokens[0].kind == ATOM:
            mime.encoding = tokens[0].text
    disposition = values.get(b"content-disposition")
    if disposition is not None:
        tokens = _mimeTokens(disposition, budget)
        if tokens and tokens[0].kind == ATOM:
            mime.disposition = tokens[0].text
            mime.dispositionParams = _parameters(disposition, tokens, 1)
    language = values.get(b"content-language")
    if language is not None:
        tags: list[bytes] = []
        tokens = _mimeTokens(language, budget)
        index = 0
        while index < len(tokens) and tokens[index].kind == ATOM:
            tags.append(tokens[index].text)
            if index + 1 < len(tokens) and isSpecial(tokens[index + 1], b","):
                index += 2
            else:
                break
        mime.language = tuple(tags)
    return mime
