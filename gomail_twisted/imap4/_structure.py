# -*- test-case-name: tests.test_imap4_structure -*-
"""
The structure of a message, parsed once, from which the IMAP4 server
answers C{FETCH ENVELOPE}, C{BODY}, C{BODYSTRUCTURE} and C{BODY[section]}
(RFC 3501 6.4.5, 7.4.2) without parsing the message again.

L{parseStructure} finds every part's header and body as byte offsets into
the message, so the server reads a section from the store with ranged
reads (L{sectionRange}). L{MessageStructure.encode} and
L{MessageStructure.decode} give a compact, versioned form for the store to
cache.

The MIME rules follow RFC 2045, 2046 and 2231, and Dovecot where they
leave a choice, so that clients see what they see from Dovecot:

  - A multipart's parts are found by their boundary lines (RFC 2046
    5.1.1): a line that starts with C{--} and the boundary; the longest
    boundary of the enclosing multiparts wins, and a boundary of an outer
    multipart ends the inner ones. The line end before a boundary line
    belongs to it. A missing final boundary ends the last part at the end
    of its parent.
  - The Content-* fields of a message's own header count only when it has
    C{MIME-Version} or C{Content-Type}; those of a multipart's parts always
    count. The first occurrence of a field counts.
  - No or a malformed C{Content-Type} means C{text/plain} (RFC 2045 5.2),
    or C{message/rfc822} in a C{multipart/digest} (RFC 2046 5.1.5). Here
    Dovecot sends what it could read (C{"text" ""}); we follow the RFC.
  - Parameters and the other MIME fields are read as
    L{gomail_twisted.imap4._mimeheader} says.
  - Sizes are octets of the stored message and line counts are LF counts,
    which agree with Dovecot's for a message with CRLF line ends.

Work is bounded: every scan is linear in the message, nesting stops at
L{MAX_NESTING} levels and the count of parts at L{MAX_PARTS}. A multipart
or message/rfc822 part that would pass either limit is a leaf of type
C{application/octet-stream}, as in Dovecot; once the count is reached, a
boundary line no longer starts a part (only a closing one is seen).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gomail_twisted.imap4._envelope import Envelope, fieldBody, parseEnvelope
from gomail_twisted.imap4._mimeheader import MimeFields, Params, TokenBudget, readMime

__all__ = [
    "MAX_NESTING",
    "MAX_PARTS",
    "MESSAGE",
    "MULTIPART",
    "SINGLE",
    "BodyPart",
    "MessageStructure",
    "parseStructure",
]

#: The deepest level a part may sit at; the message itself is level 1.
MAX_NESTING = 100
#: The most parts a message may have, itself and encapsulated messages
#: included.
MAX_PARTS = 10_000
#: The longest boundary taken (the longest line of RFC 5322 2.1.1); RFC
#: 2046 5.1.1 allows 70 octets.
MAX_BOUNDARY = 998

#: A part with a body of its own.
SINGLE = "single"
#: A multipart: its children are its parts.
MULTIPART = "multipart"
#: A message/rfc822 part: its one child is the encapsulated message.
MESSAGE = "message"


@dataclass(frozen=True, slots=True)
class BodyPart:
    """
    One part of a message, or the message itself.

    The header runs from L{headerStart} to L{headerEnd} (with its blank
    line, when it has one) and the body from L{headerEnd} to L{bodyEnd},
    offsets into the message.

    @ivar kind: L{SINGLE}, L{MULTIPART} or L{MESSAGE}.
    @ivar headerStart: where the header starts.
    @ivar headerEnd: where the header ends and the body starts.
    @ivar bodyEnd: where the body ends.
    @ivar type: the media type as written (RFC 2045 5.1), or the default.
    @ivar subtype: the subtype as written, or the default.
    @ivar params: the C{Content-Type} parameters, in order.
    @ivar contentID: C{Content-ID} (RFC 2045 7).
    @ivar description: C{Content-Description} (RFC 2045 8).
    @ivar encoding: C{Content-Transfer-Encoding} (RFC 2045 6); L{None}
        means the default, 7bit.
    @ivar md5: C{Content-MD5} (RFC 1864).
    @ivar disposition: the C{Content-Disposition} type (RFC 2183).
    @ivar dispositionParams: its parameters.
    @ivar language: the C{Content-Language} tags (RFC 3282).
    @ivar location: C{Content-Location} (RFC 2557 4).
    @ivar lines: the body's line count, for text parts and messages.
    @ivar children: a multipart's parts, or a message part's encapsulated
        message.
    @ivar envelope: the envelope, for the message and encapsulated
        messages.
    """

    kind: str
    headerStart: int
    headerEnd: int
    bodyEnd: int
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
    lines: int = 0
    children: tuple[BodyPart, ...] = ()
    envelope: Envelope | None = None

    @property
    def bodyStart(self) -> int:
        """
        @return: where the body starts: L{headerEnd}.
        """
        return self.headerEnd

    @property
    def size(self) -> int:
        """
        @return: the body's size in octets (C{body-fld-octets}).
        """
        return self.bodyEnd - self.headerEnd

    @property
    def isText(self) -> bool:
        """
        @return: whether this is a C{text/*} leaf, which has a line count
            (C{body-type-text}).
        """
        return self.kind == SINGLE and self.type.lower() == b"text"


@dataclass(frozen=True, slots=True)
class MessageStructure:
    """
    The parsed structure of a message.

    @ivar size: the message's size in octets.
    @ivar root: the message as a part: its header, body and envelope.
    """

    size: int
    root: BodyPart

    @property
    def envelope(self) -> Envelope:
        """
        @return: the message's envelope.
        """
        return self.root.envelope or Envelope()

    def encode(self) -> bytes:
        """
        @return: the compact serialised form, for the store to cache.
        """
        from gomail_twisted.imap4._structurecodec import encodeStructure

        return encodeStructure(self)

    @classmethod
    def decode(cls, data: bytes) -> MessageStructure:
        """
        Read back the form L{encode} gave.

        @param data: the serialised form.
        @return: the structure.
        @raise ValueError: C{data} is of an unknown version or malformed;
            the caller parses the message again.
        """
        from gomail_twisted.imap4._structurecodec import decodeStructure

        return decodeStructure(data)


# The fields a part's header is read for; names are matched in any case,
# with white space allowed before the colon (RFC 5322 4.5).
_FIELDS = re.compile(
    rb"^(content-(?:type|transfer-encoding|id|description|disposition|language"
    rb"|location|md5)|mime-version|date|subject|from|sender|reply-to|to|cc|bcc"
    rb"|in-reply-to|message-id)[ \t]*:",
    re.I | re.M,
)
_BLANK_LINE = re.compile(rb"\n\r?\n")


class _Builder:
    """A part while it is parsed."""

    __slots__ = (
        "bodyEnd",
        "boundary",
        "children",
        "envelope",
        "headerEnd",
        "headerStart",
        "inDigest",
        "isMessage",
        "kind",
        "level",
        "mime",
        "parent",
    )

    def __init__(
        self,
        parent: _Builder | None,
        headerStart: int,
        isMessage: bool,
        inDigest: bool,
    ) -> None:
        self.parent = parent
        self.level: int = 1 if parent is None else parent.level + 1
        self.headerStart = headerStart
        self.headerEnd = headerStart
        self.bodyEnd = headerStart
        self.isMessage = isMessage
        self.inDigest = inDigest
        self.kind = SINGLE
        self.mime = MimeFields()
        self.boundary: bytes | None = None
        self.children: list[_Builder] = []
        self.envelope: Envelope | None = None


class _OpenMultipart:
    """
    A multipart whose closing boundary has not been seen, with what is
    known of where its next boundary line is.

    No boundary line starts in C{[low, high)}; C{hit} is the one at
    C{high}, when found.
    """

    __slots__ = ("boundary", "high", "hit", "low", "needle", "part")

    def __init__(self, part: _Builder, boundary: bytes, position: int) -> None:
        self.part = part
        self.boundary = boundary
        self.needle = b"\n--" + boundary
        self.low = self.high = position
        self.hit: int | None = None


class _Parser:
    """
    One pass over a message, without recursion: the open multiparts form
    a stack, and the part being read points to its parents.
    """

    def __init__(self, message: bytes) -> None:
        self.message = message
        self.size = len(message)
        self.stack: list[_OpenMultipart] = []
        self.parts = 0
        self.closingOnly = False
        self.budget = TokenBudget()

    def newPart(
        self, parent: _Builder | None, start: int, isMessage: bool, inDigest: bool
    ) -> _Builder:
        part = _Builder(parent, start, isMessage, inDigest)
        if parent is not None:
            parent.children.append(part)
        self.parts += 1
        if self.parts >= MAX_PARTS and not self.closingOnly:
            # From here on only closing boundaries are looked for.
            self.closingOnly = True
            for entry in self.stack:
                entry.needle += b"--"
                entry.hit = None
                entry.low = entry.high = start
        return part

    def firstBoundary(
        self, entry: _OpenMultipart, position: int, limit: int
    ) -> int | None:
        """
        @return: the start of C{entry}'s first boundary line in
            C{[position, limit]}, or L{None}.
        """
        if entry.hit is not None and entry.low <= position <= entry.hit:
            return entry.hit if entry.hit <= limit else None
        if entry.hit is not None or not entry.low <= position <= entry.high:
            entry.hit = None
            entry.low = entry.high = position
        start = max(position, entry.high)
        if start > limit:
            return None
        needle = entry.needle
        found = self.message.find(
            needle, max(start - 1, 0), min(self.size, limit - 1 + len(needle))
        )
        if found == -1:
            entry.high = limit + 1
            return None
        entry.hit = entry.high = found + 1
        return found + 1

    def nextBoundary(self, position: int) -> tuple[int, int] | None:
        """
        @param position: where to look from.
        @return: the start of the next boundary line of an open multipart
            and the index in the stack of the multipart it belongs to, or
            L{None} when no boundary line follows.
        """
        best: int | None = None
        owners: list[int] = []
        limit = self.size
        for index, entry in enumerate(self.stack):
            found = self.firstBoundary(entry, position, limit)
            if found is None:
                continue
            if best is None or found < best:
                best = limit = found
                owners = [index]
            elif found == best:
                owners.append(index)
        if best is None:
            return None
        # The longest boundary that matches wins; the innermost on a tie.
        owner = max(owners, key=lambda index: (len(self.stack[index].boundary), index))
        return best, owner

    def newlineBefore(self, position: int) -> int:
        return 2 if self.message[position - 2 : position] == b"\r\n" else 1

    def readHeader(self, part: _Builder, match: tuple[int, int] | None) -> None:
        """
        Find the end of C{part}'s header and read its fields.

        @param match: the next boundary line, which the header cannot pass.
        """
        message = self.message
        start = part.headerStart
        if match is not None:
            limit = match[0] - self.newlineBefore(match[0])
            if start >= limit:
                part.headerEnd = start
                self.classify(part, {})
                return
        else:
            limit = self.size
        if message.startswith(b"\n", start):
            end = start + 1
        elif message.startswith(b"\r\n", start):
            end = start + 2
        else:
            blank = _BLANK_LINE.search(message, start, match[0] if match else limit)
            end = blank.end() if blank is not None else limit
        part.headerEnd = end
        values: dict[bytes, bytes] = {}
        for field in _FIELDS.finditer(message, start, end):
            name = field.group(1).lower()
            if name not in values:
                values[name] = fieldBody(message, field.end(), end)
        self.classify(part, values)

    def classify(self, part: _Builder, values: dict[bytes, bytes]) -> None:
        """
        Set C{part}'s MIME fields, kind and envelope from its header.
        """
        if part.isMessage:
            part.envelope = parseEnvelope(values, self.budget)
        isMime = (
            not part.isMessage or b"mime-version" in values or b"content-type" in values
        )
        part.mime = mime = readMime(
            values if isMime else {}, part.inDigest, self.budget
        )
        kind = SINGLE
        mediaType = mime.type.lower()
        if mediaType == b"multipart":
            kind = MULTIPART
        elif mediaType == b"message" and mime.subtype.lower() == b"rfc822":
            kind = MESSAGE
        if kind != SINGLE and (part.level >= MAX_NESTING or self.parts >= MAX_PARTS):
            kind = SINGLE
            mime.type, mime.subtype = b"application", b"octet-stream"
        part.kind = kind
        if kind == MULTIPART:
            boundary = next(
                (value for name, value in mime.params if name.lower() == b"boundary"),
                None,
            )
            if boundary and len(boundary) <= MAX_BOUNDARY:
                part.boundary = boundary

    def close(self, part: _Builder, stop: _Builder | None, end: int) -> None:
        """
        End C{part} and its parents up to C{stop} (excluded) at C{end}.
        """
        current: _Builder | None = part
        while current is not None and current is not stop:
            current.bodyEnd = end
            current = current.parent

    def parse(self) -> _Builder:
        message = self.message
        root = part = self.newPart(None, 0, True, False)
        while True:
            self.readHeader(part, self.nextBoundary(part.headerStart))
            if part.kind == MESSAGE:
                part = self.newPart(part, part.headerEnd, True, False)
                continue
            if part.boundary is not None:
                self.stack.append(_OpenMultipart(part, part.boundary, part.headerEnd))
                if self.closingOnly:
                    self.stack[-1].needle += b"--"
            position = part.headerEnd
            while True:
                match = self.nextBoundary(position)
                if match is None:
                    self.close(part, None, self.size)
                    return root
                line, owner = match
                entry = self.stack[owner]
                if line <= position:
                    # The line end before it ended a header or a boundary
                    # line already (RFC 2046 5.1.1 gives it to neither).
                    end = line
                else:
                    end = max(part.headerEnd, line - self.newlineBefore(line))
                self.close(part, entry.part, end)
                del self.stack[owner + 1 :]
                newline = message.find(b"\n", line)
                position = self.size if newline == -1 else newline + 1
                after = line + 2 + len(entry.boundary)
                if message.startswith(b"--", after):
                    self.stack.pop()
                    part = entry.part
                    continue
                multipart = entry.part
                part = self.newPart(
                    multipart,
                    position,
                    False,
                    multipart.mime.subtype.lower() == b"digest",
                )
                break


def _freeze(part: _Builder, message: bytes) -> BodyPart:
    """
    @return: the value of a parsed part and its children, which are at
        most L{MAX_NESTING} levels deep.
    """
    mime = part.mime
    children = tuple(_freeze(child, message) for child in part.children)
    lines = 0
    if part.kind == MESSAGE or (part.kind == SINGLE and mime.type.lower() == b"text"):
        lines = message.count(b"\n", part.headerEnd, part.bodyEnd)
    return BodyPart(
        kind=part.kind,
        headerStart=part.headerStart,
        headerEnd=part.headerEnd,
        bodyEnd=part.bodyEnd,
        type=mime.type,
        subtype=mime.subtype,
        params=mime.params,
        contentID=mime.contentID,
        description=mime.description,
        encoding=mime.encoding,
        md5=mime.md5,
        disposition=mime.disposition,
        dispositionParams=mime.dispositionParams,
        language=mime.language,
        location=mime.location,
        lines=lines,
        children=children,
        envelope=part.envelope,
    )


def parseStructure(message: bytes) -> MessageStructure:
    """
    Parse a message's structure (RFC 2045, 2046, RFC 5322).

    Any octets are taken: a missing or broken boundary, a truncated part,
    garbage or 8-bit header lines, bare LF line ends, no blank line or no
    octets at all give a structure, never an exception.

    @param message: the message as stored, lines ending in CRLF.
    @return: its structure.
    """
    root = _Parser(message).parse()
    return MessageStructure(size=len(message), root=_freeze(root, message))
