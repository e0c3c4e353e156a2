# -*- test-case-name: tests.test_dkim_canon -*-
"""
Message splitting and the canonicalization algorithms of RFC 6376 3.4.

Everything here is linear in the size of the message: bodies are rewritten
with a few compiled regular expressions and C{bytes} methods over the whole
buffer, never with a Python loop over lines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "Canonicalization",
    "HeaderField",
    "ParsedMessage",
    "canonicalizeBody",
    "canonicalizeHeader",
    "parseMessage",
]

Canonicalization = Literal["simple", "relaxed"]

_BARE_LF = re.compile(rb"(?<!\r)\n")
# A header field ends at a CRLF that is not followed by folding whitespace.
_FIELD_END = re.compile(rb"\r\n(?![ \t])")
_FIELD_NAME = re.compile(rb"\A([\x21-\x39\x3b-\x7e]+)[ \t]*:")
_WSP_RUN = re.compile(rb"[ \t]+")
# After tabs become spaces, only runs of two or more need rewriting; single
# spaces, by far the most common, are left alone.
_SPACE_RUN = re.compile(rb"  +")


@dataclass(frozen=True)
class HeaderField:
    """
    One header field of a message, as received.

    @ivar name: the field name, lower-cased, as text.
    @ivar raw: the whole field, from its name to its final CRLF inclusive,
        with any folding left as it was.
    """

    name: str
    raw: bytes


@dataclass(frozen=True)
class ParsedMessage:
    """
    A message split into its header fields and its body.

    @ivar headers: the header fields, top to bottom.
    @ivar body: the body (everything after the empty line), with CRLF line
        ends.
    """

    headers: tuple[HeaderField, ...]
    body: bytes


def normalizeLineEnds(message: bytes) -> bytes:
    """
    Turn bare LF line ends into CRLF, as a message handed over with local
    line ends must be before it is signed or verified (RFC 6376 5.3).

    @param message: the message.
    @return: the message with every LF preceded by CR.
    """
    if b"\n" not in message or message.count(b"\n") == message.count(b"\r\n"):
        return message
    return _BARE_LF.sub(b"\r\n", message)


def parseMessage(message: bytes) -> ParsedMessage:
    """
    Split a message into header fields and body (RFC 5322 2.1).

    Line ends are normalised to CRLF first. A header line without a colon
    (an mbox C{From } line, say) is not a field and is skipped.

    @param message: the whole message.
    @return: the parsed message.
    """
    message = normalizeLineEnds(message)
    if message.startswith(b"\r\n"):
        return ParsedMessage((), message[2:])
    end = message.find(b"\r\n\r\n")
    if end < 0:
        block, body = message, b""
        if block and not block.endswith(b"\r\n"):
            block += b"\r\n"
    else:
        block, body = message[: end + 2], message[end + 4 :]
    fields: list[HeaderField] = []
    start = 0
    for match in _FIELD_END.finditer(block):
        raw = block[start : match.end()]
        start = match.end()
        nameMatch = _FIELD_NAME.match(raw)
        if nameMatch is not None:
            fields.append(HeaderField(nameMatch.group(1).decode("ascii").lower(), raw))
    return ParsedMessage(tuple(fields), body)


def canonicalizeHeader(raw: bytes, algorithm: Canonicalization) -> bytes:
    """
    Canonicalize one header field (RFC 6376 3.4.1 and 3.4.2).

    @param raw: the whole field including its final CRLF (the field may also
        come without one, as the DKIM-Signature field being verified does).
    @param algorithm: C{"simple"} or C{"relaxed"}.
    @return: the canonical form, ending in CRLF exactly when C{raw} did.
    """
    if algorithm == "simple":
        return raw
    crlf = raw.endswith(b"\r\n")
    if crlf:
        raw = raw[:-2]
    colon = raw.index(b":")
    name = raw[:colon].rstrip(b" \t").lower()
    value = _WSP_RUN.sub(b" ", raw[colon + 1 :].replace(b"\r\n", b"")).strip(b" ")
    return name + b":" + value + (b"\r\n" if crlf else b"")


def _trailingEmptyLines(body: bytes) -> int:
    """
    Find where the run of empty lines at the end of a body starts.

    @param body: a body.
    @return: the offset of the first of the trailing C{CRLF}s that make up
        empty lines, or C{len(body)} when the body does not end in CRLF.
    """
    if not body.endswith(b"\r\n"):
        return len(body)
    tailStart = len(body.rstrip(b"\r\n"))
    tail = body[tailStart:]
    # The tail holds only CR and LF; its longest suffix made of CRLF pairs
    # starts after the last place the alternation breaks.
    brk = max(tail.rfind(b"\r\r"), tail.rfind(b"\n\n"))
    start = brk + 1 if brk >= 0 else 0
    if tail[start : start + 1] == b"\n":
        start += 1
    # The first CRLF of the run ends the last non-empty line, unless the body
    # holds nothing before it.
    if tailStart > 0 or start > 0:
        start += 2
    return tailStart + start


def canonicalizeBody(body: bytes, algorithm: Canonicalization) -> bytes:
    """
    Canonicalize a message body (RFC 6376 3.4.3 and 3.4.4, with erratum 3192
    for the relaxed empty body).

    @param body: the body, with CRLF line ends.
    @param algorithm: C{"simple"} or C{"relaxed"}.
    @return: the canonical body: trailing empty lines removed, a final CRLF
        added when missing; C{"simple"} turns an empty body into one CRLF,
        C{"relaxed"} leaves it empty.
    """
    if algorithm == "relaxed":
        if b"\t" in body:
            body = body.replace(b"\t", b" ")
        # Each replace halves every run of spaces; a few C-speed passes
        # settle ordinary text, and one regex pass takes any longer runs.
        for _ in range(4):
            if b"  " not in body:
                break
            body = body.replace(b"  ", b" ")
        else:
            if b"  " in body:
                body = _SPACE_RUN.sub(b" ", body)
        body = body.replace(b" \r\n", b"\r\n")
        if body.endswith(b" "):
            body = body[:-1]
    body = body[: _trailingEmptyLines(body)]
    if not body:
        return b"\r\n" if algorithm == "simple" else b""
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    return body
