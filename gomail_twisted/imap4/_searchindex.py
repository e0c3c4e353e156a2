# -*- test-case-name: tests.test_imap4_searchindex -*-
"""
What the store keeps of each message for SEARCH (RFC 3501 6.4.4), through
L{IFolder.cachedData} <gomail_twisted.maildir.interfaces.IFolder.cachedData>:
made once per message in the store's threads, then read from the store's
cache (its memory, or the folder's cache file) instead of the message.

Two records, each of its own kind, so that a search of header fields
never pays for the body:

  - L{FIELDS_KIND} (L{searchFields}, L{CachedFields}): the values of the
    fields most searched (L{CACHED_FIELDS}), decoded as a search compares
    them, and the names of the message's other fields.  A search of those
    fields reads no message; one of another field reads only the messages
    that have it.
  - L{TEXT_INDEX_KIND} (L{textIndex}, L{TextIndex}): which pairs of
    octets the UTF-8 form of the text C{BODY} searches holds at even
    offsets, and of what C{TEXT} searches besides (the header blocks), as
    two bit maps.  A string is absent from a text when some pair at an
    even offset of the string, and some pair at an odd one, are both
    absent from its map; only the other messages are read.

The fields record is UTF-8 text (lone surrogates passed through), a
section per field, in the order the fields first appear::

    record  = *(%x1E section)
    section = name *(%x1F value)   ; a kept field: each occurrence's value
            / name                 ; another field, or a kept one cut
            / %x1D                 ; the names of the others are not all here

A kept field whose values pass L{MAX_FIELD} octets, or hold one of the
three separators, is recorded by name only, and its values are read from
the message when asked for; so are other fields' names past L{MAX_NAMES}
octets (or holding a separator): then the record says the list is cut.
The record describes the fields of the first L{HEADER_LIMIT} octets of the
message, as a search of the header block reads them.

The text index is an octet, then the body's bit map, then the headers'::

    index = size body headers
    size  = OCTET       ; the body map's length is 2**size octets; 0: none
    body  = *OCTET      ; the body's map, when size is not 0
    headers = *OCTET    ; the headers' map: 0 or 2**n octets

A map of M bits (a power of two, 256 to L{MAX_BITS}: at least four times
the number of distinct pairs, so that at most a fifth of the bits are set)
has bit C{h(p)} set for each pair C{p} of octets at an even offset (read
as a little-endian 16-bit number), where C{h} is Fibonacci hashing to M
bits; half the pairs, as that halves the cost of making a map.  A text
with more distinct pairs than C{MAX_BITS / 2}, or longer than
L{MAX_INDEXED} octets, has no map (its message is read).  The maps are
made from the texts a search of the whole message compares
(L{messageTexts}, bounded by L{MAX_TEXT}), so an index says nothing to a
search with another bound.

Changing L{CACHED_FIELDS}, L{MAX_TEXT}, the hashing, or either record's
form needs a new kind.
"""

from __future__ import annotations

import functools
import re
import sys
from array import array

from gomail_twisted.imap4._searchtext import (
    MAX_TEXT,
    SearchedMessage,
    fieldValue,
    splitFields,
)
from gomail_twisted.maildir.interfaces import MessageInfo

__all__ = [
    "CACHED_FIELDS",
    "FIELDS_KIND",
    "HEADER_LIMIT",
    "MAX_BITS",
    "MAX_FIELD",
    "MAX_INDEXED",
    "MAX_NAMES",
    "TEXT_INDEX_KIND",
    "CachedFields",
    "Needle",
    "TextIndex",
    "searchFields",
    "textIndex",
]

#: How much of a message is read for a search of header fields: header
#: blocks are rarely longer, and fields past it are not searched.
HEADER_LIMIT = 256 * 1024

#: The store's name for the record of header fields a search keeps per
#: message (L{searchFields}).
FIELDS_KIND = "imap4.search.1"

#: The store's name for the index of a message's text (L{textIndex}).
TEXT_INDEX_KIND = "imap4.searchtext.1"

#: The fields whose values the record keeps, case-folded: the ones mail
#: clients search (C{FROM}, C{TO}, C{CC}, C{BCC}, C{SUBJECT}, C{SENT*}, and
#: C{HEADER} for threading and replies).
CACHED_FIELDS = frozenset(
    (
        "from",
        "sender",
        "reply-to",
        "to",
        "cc",
        "bcc",
        "subject",
        "date",
        "message-id",
        "in-reply-to",
        "references",
    )
)

#: The most octets a record keeps of one field's values (all its
#: occurrences together); a longer field is read from the message.
MAX_FIELD = 8 * 1024

#: The most octets a record keeps of the names of the fields not in
#: L{CACHED_FIELDS}.
MAX_NAMES = 2 * 1024

#: The most octets of text (in UTF-8) a map is made of.
MAX_INDEXED = 1024 * 1024

#: The largest map, in bits (2 KiB).
MAX_BITS = 16384

_MIN_BITS = 256
_GOLDEN = 0x9E3779B1

_SECTION = "\x1e"
_VALUE = "\x1f"
_CUT_NAMES = "\x1d"
_SEPARATORS = re.compile("[\x1d-\x1f]")

# Only the text's bound matters to what the index is made of.
_NO_INFO = MessageInfo(0, frozenset(), 0, 0.0, 0)


def searchFields(message: bytes) -> bytes:
    """
    Make the record of a message's header fields that the store keeps for
    SEARCH (kind L{FIELDS_KIND}); run in the store's threads.

    @param message: the message, or at least its first L{HEADER_LIMIT}
        octets.
    @return: the record, UTF-8.
    """
    byName: dict[str, list[bytes]] = {}
    for name, raw in splitFields(message[:HEADER_LIMIT]):
        byName.setdefault(name, []).append(raw)
    sections: list[str] = []
    names = 0
    for name, raws in byName.items():
        if name in CACHED_FIELDS:
            values = [fieldValue(raw) for raw in raws]
            joined = _VALUE.join(values)
            if (
                len(joined) <= MAX_FIELD
                and len(joined.encode("utf-8", "surrogatepass")) <= MAX_FIELD
                and _SEPARATORS.search(joined) is None
            ):
                sections.append(name + _VALUE + joined)
                continue
        elif names >= 0:
            names += len(name.encode("utf-8")) + 1
            if names > MAX_NAMES or _SEPARATORS.search(name) is not None:
                sections.append(_CUT_NAMES)
                names = -1
                continue
        else:
            continue
        sections.append(name)
    return "".join(_SECTION + section for section in sections).encode(
        "utf-8", "surrogatepass"
    )


@functools.lru_cache(maxsize=64)
def _sectionKeys(name: str) -> tuple[str, str] | None:
    """
    @return: how a field's section starts in a record, with values and
        without; or L{None} for a name that holds a separator, which is
        never recorded (nor is a value that holds one).
    """
    if _SEPARATORS.search(name) is not None:
        return None
    return _SECTION + name + _VALUE, _SECTION + name + _SECTION


class CachedFields:
    """
    A record made by L{searchFields}, read back: what a search of header
    fields can learn of a message without reading it.  Sections are
    looked up as asked for, not parsed beforehand: a search asks for one
    or two fields of thousands of records.
    """

    __slots__ = ("_complete", "_text")

    def __init__(self, record: bytes) -> None:
        """
        @param record: the record.
        @raise ValueError: it is not UTF-8.
        """
        # A section separator at the end closes every section alike.
        self._text = record.decode("utf-8", "surrogatepass") + _SECTION
        self._complete = _CUT_NAMES not in self._text

    def values(self, name: str) -> list[str] | None:
        """
        @param name: a field name, case-folded.
        @return: the decoded, case-folded values of every occurrence of the
            field (none when the message has no such field), or L{None}
            when the record does not say.
        """
        keys = _sectionKeys(name)
        if keys is None:
            return None
        text = self._text
        withValues, bare = keys
        # Values hold no separator: the name's section is the only match.
        start = text.find(withValues)
        if start >= 0:
            start += len(withValues)
            return text[start : text.index(_SECTION, start)].split(_VALUE)
        if bare in text or not (self._complete or name in CACHED_FIELDS):
            return None
        return []

    def has(self, name: str) -> bool | None:
        """
        @param name: a field name, case-folded.
        @return: whether the message has the field, or L{None} when the
            record does not say.
        """
        keys = _sectionKeys(name)
        if keys is None:
            return None
        text = self._text
        if keys[0] in text or keys[1] in text:
            return True
        if self._complete or name in CACHED_FIELDS:
            return False
        return None


def _pairs(data: bytes) -> set[int]:
    """
    @return: the distinct pairs of octets at even offsets of C{data} (the
        first and second, the third and fourth...), each as a
        little-endian 16-bit number.
    """
    pairs = array("H", data[: len(data) & ~1])
    if sys.byteorder == "big":
        pairs.byteswap()
    return set(pairs)


def _mask(pairs: set[int], bits: int) -> int:
    """
    @return: the bits of some pairs in a map of C{bits} bits.
    """
    shift = _shift(bits)
    mask = 0
    for pair in pairs:
        mask |= 1 << (((pair * _GOLDEN) & 0xFFFFFFFF) >> shift)
    return mask


def _shift(bits: int) -> int:
    """
    @return: the shift that makes a 32-bit Fibonacci hash one of C{bits}
        (a power of two) positions.
    """
    return 33 - bits.bit_length()


def _map(text: str) -> bytes:
    """
    @return: the bit map of a text's pairs of octets, or C{b""} when it
        would say too little (L{MAX_INDEXED}, L{MAX_BITS}).
    """
    data = text.encode("utf-8", "surrogatepass")
    if len(data) > MAX_INDEXED:
        return b""
    pairs = _pairs(data)
    bits = _MIN_BITS
    while bits < 4 * len(pairs) and bits < MAX_BITS:
        bits *= 2
    if 2 * len(pairs) > bits:
        return b""
    return _mask(pairs, bits).to_bytes(bits // 8, "little")


def textIndex(message: bytes) -> bytes:
    """
    Make the index of a message's text that the store keeps for SEARCH
    (kind L{TEXT_INDEX_KIND}); run in the store's threads.

    @param message: the whole message.
    @return: the index.
    """
    searched = SearchedMessage(_NO_INFO, 0, None, message, MAX_TEXT)
    texts = searched.texts()
    assert texts is not None
    body = _map(texts.body)
    headers = _map(f"{searched.headerText()}\n{texts.headers}")
    size = len(body).bit_length() - 1 if body else 0
    return bytes((size,)) + body + headers


class Needle:
    """
    A string searched for, as the text index sees it: its pairs of
    octets, and their bits in a map of each size, worked out once per
    search.

    A map holds the pairs at even offsets of a text: wherever the string
    starts in it, either the pairs at even offsets of the string, or
    those at odd ones, are at even offsets of the text.
    """

    __slots__ = ("_even", "_masks", "_odd")

    def __init__(self, text: str) -> None:
        """
        @param text: the string, case-folded.
        """
        data = text.encode("utf-8", "surrogatepass")
        self._even = _pairs(data)
        self._odd = _pairs(data[1:])
        self._masks: dict[int, tuple[int, int]] = {}

    def inMap(self, bitmap: bytes) -> bool:
        """
        @param bitmap: a text's map (not empty).
        @return: whether the text may hold the string: all its pairs at
            even offsets are in the map, or all those at odd ones (always,
            for a string of less than three octets).
        """
        bits = len(bitmap) * 8
        masks = self._masks.get(bits)
        if masks is None:
            masks = self._masks[bits] = (
                _mask(self._even, bits),
                _mask(self._odd, bits),
            )
        value = int.from_bytes(bitmap, "little")
        even, odd = masks
        return value & even == even or value & odd == odd


def _validMap(bitmap: bytes) -> bool:
    size = len(bitmap)
    return not size or (
        _MIN_BITS // 8 <= size <= MAX_BITS // 8 and size & (size - 1) == 0
    )


class TextIndex:
    """
    An index made by L{textIndex}, read back.
    """

    __slots__ = ("_body", "_headers")

    def __init__(self, record: bytes) -> None:
        """
        @param record: the index.
        @raise ValueError: it is not one.
        """
        if not record:
            raise ValueError("an empty text index")
        size = record[0]
        end = 1 + (1 << size if size else 0)
        self._body = record[1:end]
        self._headers = record[end:]
        if (
            len(self._body) != end - 1
            or not _validMap(self._body)
            or not _validMap(self._headers)
        ):
            raise ValueError("not a text index")

    def mayHold(self, needle: Needle, headers: bool) -> bool:
        """
        @param needle: a string searched for.
        @param headers: whether the header blocks count (C{TEXT}), besides
            the body's text (C{BODY}).
        @return: C{False} when the string is surely absent from the text.
        """
        body = self._body
        if not body or needle.inMap(body):
            return True
        if not headers:
            return False
        return not self._headers or needle.inMap(self._headers)
