# -*- test-case-name: tests.test_tags -*-
"""
The tag=value list syntax of RFC 6376 section 3.2.

DKIM-Signature header fields and DKIM key records are both tag lists; this
module parses them into an ordered list of pairs and a mapping, refusing
what the grammar refuses instead of guessing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = ["TagList", "TagSyntaxError", "parseTags"]

# RFC 6376 3.2: tag-name = ALPHA *ALNUMPUNC; ALNUMPUNC = ALPHA / DIGIT / "_"
_TAG_SPEC = re.compile(r"\A[ \t\r\n]*([A-Za-z][A-Za-z0-9_]*)[ \t\r\n]*=(.*)\Z", re.S)
# tag-value = [ tval *( 1*(WSP / FWS) tval ) ]; VALCHAR = %x21-3A / %x3C-7E
_TAG_VALUE = re.compile(
    r"\A(?:[\x21-\x3a\x3c-\x7e]+(?:[ \t\r\n]+[\x21-\x3a\x3c-\x7e]+)*)?\Z"
)
# FWS = [*WSP CRLF] 1*WSP: a line break must be followed by whitespace.
_BAD_FOLD = re.compile(r"\r\n(?![ \t])|\r(?!\n)|(?<!\r)\n")
_WHITESPACE = " \t\r\n"


class TagSyntaxError(ValueError):
    """
    A tag list does not follow the grammar of RFC 6376 section 3.2, or names
    one tag twice (which section 3.2 says makes the whole list invalid).
    """


@dataclass(frozen=True)
class TagList:
    """
    A parsed tag=value list (RFC 6376 section 3.2).

    Tag names are case-sensitive, as the RFC says.

    @ivar pairs: the C{(name, value)} pairs in the order they appeared.
    @ivar mapping: a read-only mapping from each name to its value.
    """

    pairs: tuple[tuple[str, str], ...]
    mapping: Mapping[str, str] = field(compare=False)

    def __getitem__(self, name: str) -> str:
        """
        @param name: a tag name.
        @return: the value of that tag.
        @raise KeyError: the list has no such tag.
        """
        return self.mapping[name]

    def __contains__(self, name: object) -> bool:
        """
        @param name: a tag name.
        @return: whether the list has that tag.
        """
        return name in self.mapping

    def __iter__(self) -> Iterator[str]:
        """
        @return: an iterator over the tag names, in order.
        """
        return (name for name, _ in self.pairs)

    def __len__(self) -> int:
        """
        @return: the number of tags.
        """
        return len(self.pairs)

    def get(self, name: str, default: str | None = None) -> str | None:
        """
        @param name: a tag name.
        @param default: what to return when the tag is absent.
        @return: the value of that tag, or C{default}.
        """
        return self.mapping.get(name, default)


def parseTags(text: str | bytes) -> TagList:
    """
    Parse a tag=value list (RFC 6376 section 3.2).

    Whitespace (including folding) around tag names, around C{=} and around
    values is dropped; whitespace inside a value is kept as it is, since its
    meaning depends on the tag (RFC 6376 3.5 drops it inside C{b=}, for
    instance). A trailing C{;} is allowed.

    @param text: the list, as text or as ASCII bytes.
    @return: the tags in order and as a mapping.
    @raise TagSyntaxError: the list is empty, a tag-spec is malformed, a value
        holds a character outside the grammar (including any non-ASCII
        character), a line break is not followed by whitespace, or a tag
        appears twice.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("ascii")
        except UnicodeDecodeError:
            raise TagSyntaxError("tag list holds non-ASCII bytes")
    if not text.isascii():
        raise TagSyntaxError("tag list holds non-ASCII characters")
    if _BAD_FOLD.search(text) is not None:
        raise TagSyntaxError("line break not followed by whitespace")
    specs = text.split(";")
    if len(specs) > 1 and not specs[-1].strip(_WHITESPACE):
        specs.pop()
    pairs: list[tuple[str, str]] = []
    mapping: dict[str, str] = {}
    for spec in specs:
        match = _TAG_SPEC.match(spec)
        if match is None:
            if not spec.strip(_WHITESPACE):
                raise TagSyntaxError("empty tag-spec")
            raise TagSyntaxError(f"malformed tag-spec {spec.strip(_WHITESPACE)!r}")
        name = match.group(1)
        value = match.group(2).strip(_WHITESPACE)
        if _TAG_VALUE.match(value) is None:
            raise TagSyntaxError(f"invalid character in the value of tag {name!r}")
        if name in mapping:
            raise TagSyntaxError(f"duplicate tag {name!r}")
        pairs.append((name, value))
        mapping[name] = value
    return TagList(tuple(pairs), MappingProxyType(mapping))
