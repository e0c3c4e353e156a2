# -*- test-case-name: tests.test_imap4_fetch -*-
"""
What FETCH sends for each data item (RFC 3501 6.4.5, 7.4.2; RFC 7162
3.1.4), without I/O: the plan of a command's items, the values made from
what the store knows of a message, and where its C{BODY[section]} items
lie in it.

Items fall in three kinds, by what they need:

  - the store's listing (L{MessageInfo}) alone: C{UID}, C{FLAGS},
    C{INTERNALDATE}, C{RFC822.SIZE}, C{MODSEQ};
  - what FETCH keeps of each message (L{FetchData}), computed once from
    its structure and cached by the store: C{ENVELOPE}, C{BODY} and
    C{BODYSTRUCTURE} as sent, and where the header ends, for
    C{BODY[HEADER]}, C{BODY[TEXT]}, C{BODY[HEADER.FIELDS ...]} (so
    C{RFC822.HEADER} and C{RFC822.TEXT}); the sections of parts need the
    whole structure, which it holds too;
  - the message's octets, for every C{BODY[section]} item and C{RFC822}:
    where they lie (L{Extract}) is worked out first, so that only those
    octets are read.

Keeping the values as sent, rather than the structure alone, spares
every later FETCH of a mailbox's structures the work of reading the
structure back and writing it out: what a client that lists a mailbox
does most.

The octets go out as literals (C{{n}}), always, as Dovecot sends them;
a section that does not exist is C{{0}}.  A NUL octet, which no literal
may carry (RFC 3501 9, C{CHAR8}), is sent as 0x80, as Dovecot does.

C{INTERNALDATE} is in UTC (C{+0000}), as the SEARCH date keys read it.
"""

from __future__ import annotations

import re
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from gomail_twisted.imap4._bodystructure import (
    applyPartial,
    bodyStructure,
    envelope,
    sectionRange,
)
from gomail_twisted.imap4._commands import BodySection, FetchAttribute, FetchItem
from gomail_twisted.imap4._envelope import headerFields
from gomail_twisted.imap4._structure import MessageStructure, parseStructure
from gomail_twisted.maildir.interfaces import MessageInfo

__all__ = [
    "FETCH_DATA_KIND",
    "Content",
    "Extract",
    "FetchData",
    "FetchPlan",
    "computeFetchData",
    "extract",
    "extractBytes",
    "internalDate",
    "planFetch",
]

#: The store's name for what FETCH keeps of each message (L{FetchData}).
FETCH_DATA_KIND = "imap4.fetch.1"

#: What an item of the plan is made from.
INFO = 0
DATA = 1
STRUCTURE = 2
CONTENT = 3

_MONTHS = (
    b"Jan",
    b"Feb",
    b"Mar",
    b"Apr",
    b"May",
    b"Jun",
    b"Jul",
    b"Aug",
    b"Sep",
    b"Oct",
    b"Nov",
    b"Dec",
)
# The last second a four-digit year holds (RFC 3501 9, date-year).
_LAST_SECOND = 253402300799

_FIELDS = ("HEADER.FIELDS", "HEADER.FIELDS.NOT")

# The cached form: a version octet, the message's size and header end,
# the lengths of the three values, then the values and the structure's
# own compact form (L{MessageStructure.encode}).
_VERSION = 1
_HEAD = struct.Struct(">BQQIII")
# A line end in a value, which only a literal's announcement may end.
_LINE_END = re.compile(rb"[\r\n]")
_LITERAL_END = re.compile(rb"\{([0-9]{1,10})\}\Z")


@dataclass(frozen=True, slots=True)
class FetchData:
    """
    What FETCH keeps of a message, computed once (L{computeFetchData}) and
    cached by the store: the values sent for C{ENVELOPE}, C{BODY} and
    C{BODYSTRUCTURE} as they go on the wire, where the header ends (for
    C{BODY[HEADER]}, C{BODY[TEXT]} and C{BODY[HEADER.FIELDS ...]}), and the
    whole structure, read back only for the sections of parts.

    @ivar size: the message's size.
    @ivar headerEnd: where its header ends, blank line included.
    @ivar envelope: the C{ENVELOPE} value.
    @ivar body: the C{BODY} value.
    @ivar bodyStructure: the C{BODYSTRUCTURE} value.
    @ivar encodedStructure: the structure's compact form.
    """

    size: int
    headerEnd: int
    envelope: bytes
    body: bytes
    bodyStructure: bytes
    encodedStructure: bytes

    @classmethod
    def fromStructure(cls, structure: MessageStructure) -> FetchData:
        """
        @param structure: a message's structure.
        @return: what FETCH keeps of the message.
        """
        return cls(
            structure.size,
            structure.root.headerEnd,
            envelope(structure),
            bodyStructure(structure, False),
            bodyStructure(structure, True),
            structure.encode(),
        )

    def encode(self) -> bytes:
        """
        @return: the form the store caches.
        """
        values = (self.envelope, self.body, self.bodyStructure)
        head = _HEAD.pack(_VERSION, self.size, self.headerEnd, *map(len, values))
        return b"".join((head, *values, self.encodedStructure))

    @classmethod
    def decode(cls, data: bytes) -> FetchData:
        """
        Read back the form L{encode} gave, checking that no value could
        break a response's framing: a damaged cache entry is refused.

        @param data: the cached form.
        @return: the data.
        @raise ValueError: C{data} is of an unknown version or damaged.
        """
        if len(data) < _HEAD.size:
            raise ValueError("fetch data too short")
        version, size, headerEnd, *lengths = _HEAD.unpack_from(data)
        if version != _VERSION or headerEnd > size:
            raise ValueError("unknown or damaged fetch data")
        values = []
        position = _HEAD.size
        for length in lengths:
            value = data[position : position + length]
            position += length
            if len(value) != length or not _framed(value):
                raise ValueError("damaged fetch data")
            values.append(value)
        envelopeValue, bodyValue, structureValue = values
        return cls(
            size, headerEnd, envelopeValue, bodyValue, structureValue, data[position:]
        )

    def structure(self) -> MessageStructure:
        """
        @return: the whole structure.
        @raise ValueError: its form is damaged or of another version.
        """
        structure = MessageStructure.decode(self.encodedStructure)
        if structure.size != self.size:
            raise ValueError("structure and fetch data disagree")
        return structure


def _framed(value: bytes) -> bool:
    """
    Whether a cached value keeps a response's framing: no NUL, and a line
    end only where a literal's announcement ends, the literal whole.

    @param value: the value.
    """
    if b"\x00" in value:
        return False
    if b"\n" not in value and b"\r" not in value:
        return True
    position = 0
    while True:
        found = _LINE_END.search(value, position)
        if found is None:
            return True
        end = found.start()
        announced = _LITERAL_END.search(value, position, end)
        if announced is None or value[end : end + 2] != b"\r\n":
            return False
        position = end + 2 + int(announced.group(1))
        if position > len(value):
            return False


def computeFetchData(message: bytes) -> bytes:
    """
    What the store caches for a message (L{FetchData}).  Run in the
    store's threads.

    @param message: the message's octets.
    @return: the encoded L{FetchData}.
    """
    return FetchData.fromStructure(parseStructure(message)).encode()


def internalDate(timestamp: float) -> bytes:
    """
    An C{INTERNALDATE} value (RFC 3501 7.4.2, 9 C{date-time}), in UTC.

    @param timestamp: seconds since the epoch.
    @return: the quoted date, such as C{"17-Jul-1996 09:44:25 +0000"}.
    """
    t = time.gmtime(min(max(int(timestamp), 0), _LAST_SECOND))
    return b'"%02d-%s-%04d %02d:%02d:%02d +0000"' % (
        t.tm_mday,
        _MONTHS[t.tm_mon - 1],
        t.tm_year,
        t.tm_hour,
        t.tm_min,
        t.tm_sec,
    )


@dataclass(frozen=True, slots=True)
class Content:
    """
    An item sent from the message's octets, as a literal.

    @ivar label: its name in the response (C{BODY[1.MIME]<0>}, C{RFC822}).
    @ivar section: the section it stands for (C{RFC822.TEXT} is
        C{BODY[TEXT]}, RFC 3501 6.4.5).
    @ivar needs: what finds it: L{INFO} for the whole message, L{DATA}
        for the message's header or text (L{FetchData.headerEnd}),
        L{STRUCTURE} for a part.
    """

    label: bytes
    section: BodySection
    needs: int


@dataclass(frozen=True, slots=True)
class Extract:
    """
    Where a L{Content} item lies in one message.

    @ivar ranges: C{(start, end)} offsets to read, in order; for
        C{HEADER.FIELDS[.NOT]}, the whole header block.
    @ivar size: the octets to send; for C{HEADER.FIELDS[.NOT]}, at most
        the header block's size and its CRLF.
    @ivar section: for C{HEADER.FIELDS[.NOT]}, the section to filter the
        header with (L{headerFields}), then cut to its partial range;
        L{None} otherwise.
    """

    ranges: tuple[tuple[int, int], ...]
    size: int
    section: BodySection | None = None

    @property
    def end(self) -> int:
        """
        @return: the offset past the last octet to read.
        """
        return self.ranges[-1][1] if self.ranges else 0


_NOTHING = Extract((), 0)


def extract(
    content: Content,
    info: MessageInfo,
    data: FetchData | None,
    structure: MessageStructure | None,
) -> Extract:
    """
    Where an item lies in a message (RFC 3501 6.4.5).

    @param content: the item.
    @param info: the message.
    @param data: its L{FetchData}, unless the item is the whole message.
    @param structure: its structure, when the item is in a part.
    @return: the octets to read and how to send them.
    """
    section = content.section
    found: list[tuple[int, int]] | None
    if content.needs == INFO:
        found = [(0, info.size)]
    elif content.needs == DATA:
        assert data is not None
        if section.specifier == "TEXT":
            found = [(data.headerEnd, data.size)]
        else:
            found = [(0, data.headerEnd)]
    else:
        assert structure is not None
        found = sectionRange(structure, section)
    if found is None:
        return _NOTHING
    found = [(start, end) for start, end in found if end > start]
    if not found:
        return _NOTHING
    if section.specifier in _FIELDS:
        size = sum(end - start for start, end in found) + 2
        return Extract(tuple(found), size, section)
    ranges = tuple(applyPartial(found, section.partial))
    return Extract(ranges, sum(end - start for start, end in ranges))


def extractBytes(item: Extract, message: bytes) -> bytes:
    """
    The octets of an item, from the message (or its first L{Extract.end}
    octets), NUL sent as 0x80.  Run in the store's threads.

    @param item: where the item lies.
    @param message: the message's octets.
    @return: what to send in the literal.
    """
    data = b"".join(message[start:end] for start, end in item.ranges)
    section = item.section
    if section is not None:
        data = headerFields(data, section.fields, section.specifier.endswith(".NOT"))
        if section.partial is not None:
            first, count = section.partial
            data = data[first : first + count]
    return data.replace(b"\x00", b"\x80")


def _uid(info: MessageInfo) -> bytes:
    return b"UID %d" % (info.uid,)


def _size(info: MessageInfo) -> bytes:
    return b"RFC822.SIZE %d" % (info.size,)


def _date(info: MessageInfo) -> bytes:
    return b"INTERNALDATE " + internalDate(info.internalDate)


def _modSeq(info: MessageInfo) -> bytes:
    return b"MODSEQ (%d)" % (info.modSeq,)


def _envelope(data: FetchData) -> bytes:
    return b"ENVELOPE " + data.envelope


def _body(data: FetchData) -> bytes:
    return b"BODY " + data.body


def _bodyStructure(data: FetchData) -> bytes:
    return b"BODYSTRUCTURE " + data.bodyStructure


_FROM_DATA: dict[str, Callable[[FetchData], bytes]] = {
    "ENVELOPE": _envelope,
    "BODY": _body,
    "BODYSTRUCTURE": _bodyStructure,
}
_AS_SECTION = {
    "RFC822": BodySection(peek=False),
    "RFC822.HEADER": BodySection(peek=True, specifier="HEADER"),
    "RFC822.TEXT": BodySection(peek=False, specifier="TEXT"),
}

#: One item of a plan: what it is made from (L{INFO}, L{DATA},
#: L{CONTENT}) and what makes it: a function of the message's
#: L{MessageInfo}, a function of its L{FetchData}, or the index of its
#: L{Content}.
Step = tuple[int, Any]


@dataclass(frozen=True, slots=True)
class FetchPlan:
    """
    How to answer one FETCH: its items in the order sent.

    @ivar steps: the items, as L{Step}s.
    @ivar contents: the L{Content} items, in order.
    @ivar needs: what the items need of a message, at most: L{INFO} (the
        store's listing), L{DATA} (the cached L{FetchData}) or
        L{STRUCTURE} (the whole structure too).
    @ivar setsSeen: some item sets C{\\Seen} (RFC 3501 6.4.5: C{BODY[...]},
        C{RFC822}, C{RFC822.TEXT}).
    @ivar hasUID: C{UID} is among the items.
    @ivar hasFlags: C{FLAGS} is among the items.
    @ivar hasModSeq: C{MODSEQ} is among the items.
    """

    steps: tuple[Step, ...]
    contents: tuple[Content, ...]
    needs: int
    setsSeen: bool
    hasUID: bool
    hasFlags: bool
    hasModSeq: bool


def _needs(section: BodySection) -> int:
    if section.part:
        return STRUCTURE
    return DATA if section.specifier else INFO


def planFetch(
    items: Sequence[FetchItem],
    uid: bool,
    modSeq: bool,
    flags: Callable[[MessageInfo], bytes],
) -> FetchPlan:
    """
    The plan of a FETCH: C{UID} first when it is a UID command (RFC 3501
    6.4.8, first as Dovecot sends it), then the items in the order asked,
    each once, then C{MODSEQ} when C{CHANGEDSINCE} asked for it (RFC
    7162 3.1.4.1).

    @param items: the items, as parsed.
    @param uid: a UID command.
    @param modSeq: add C{MODSEQ} (C{CHANGEDSINCE} was given).
    @param flags: makes the C{FLAGS} item of a message.
    @return: the plan.
    """
    wanted = list(dict.fromkeys(items))
    steps: list[Step] = []
    contents: list[Content] = []
    needs = INFO
    setsSeen = False
    uidItem = FetchAttribute("UID")
    modSeqItem = FetchAttribute("MODSEQ")
    if uid:
        steps.append((INFO, _uid))
        if uidItem in wanted:
            wanted.remove(uidItem)
    if modSeq and modSeqItem not in wanted:
        wanted.append(modSeqItem)
    fromInfo: dict[str, Callable[[MessageInfo], bytes]] = {
        "UID": _uid,
        "FLAGS": flags,
        "INTERNALDATE": _date,
        "RFC822.SIZE": _size,
        "MODSEQ": _modSeq,
    }
    for item in wanted:
        if isinstance(item, BodySection):
            section, label = item, item.label()
        elif item.name in _AS_SECTION:
            section, label = _AS_SECTION[item.name], item.name.encode("ascii")
        elif item.name in _FROM_DATA:
            needs = max(needs, DATA)
            steps.append((DATA, _FROM_DATA[item.name]))
            continue
        else:
            steps.append((INFO, fromInfo[item.name]))
            continue
        content = Content(label, section, _needs(section))
        needs = max(needs, content.needs)
        setsSeen = setsSeen or not section.peek
        steps.append((CONTENT, len(contents)))
        contents.append(content)
    return FetchPlan(
        tuple(steps),
        tuple(contents),
        needs,
        setsSeen,
        hasUID=uid or uidItem in wanted,
        hasFlags=FetchAttribute("FLAGS") in wanted,
        hasModSeq=modSeqItem in wanted,
    )
