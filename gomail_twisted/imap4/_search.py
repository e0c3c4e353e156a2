# -*- test-case-name: tests.test_imap4_search -*-
"""
The SEARCH evaluator (RFC 3501 6.4.4, with RFC 7162 3.1.5's C{MODSEQ}):
which of a mailbox's messages a parsed search key names.  Pure logic: the
caller reads the messages, and only as far as the key needs.

A key is compiled once per command, into closures that test the cheap
criteria (flags, sequence numbers, sizes, dates) before the costly ones
(header fields, then the body), and stop as soon as the answer is known.
Evaluation is three-valued: given only what the store knows without
reading (L{MessageInfo}), a message is decided (C{True} or C{False}) or
not yet (L{None}); then the caller reads the header block, or the whole
message, and asks again.  Most messages a flag excludes are never read::

    matcher = compileSearch(key, SearchContext(len(infos), largestUID, recent))
    for seq, info in enumerate(infos, 1):
        found = matcher.evaluate(info, seq)
        if found is None and matcher.needs is Needs.HEADER:
            found = matcher.evaluate(info, seq, header=readHeader(info))
        if found is None:
            found = matcher.evaluate(info, seq, full=readMessage(info))
        ...

The choices RFC 3501 leaves open, as made here:

  - C{BEFORE}, C{ON}, C{SINCE} compare the calendar date of the internal
    date in L{SearchContext.zone} (UTC unless given; Dovecot uses the
    server's local zone).  C{SENTBEFORE}, C{SENTON}, C{SENTSINCE} compare
    the date of the first C{Date:} field as written, in the sender's own
    zone.  A message without a C{Date:} field, or with one that does not
    parse, matches no C{SENT*} key (so C{NOT SENTON} matches it), as
    Dovecot does when it reads the header; falling back to the internal
    date is RFC 5256's rule for SORT, not for SEARCH.
  - C{HEADER}, C{FROM}, C{SUBJECT}...: a field's value is unfolded and its
    RFC 2047 encoded words decoded before the comparison; any occurrence
    of the field may match; an empty string matches any message that has
    the field, even empty.  Raw 8-bit header bytes are read as UTF-8
    (RFC 6532), else as ISO-8859-1.
  - C{BODY} searches the content of the C{text/*} parts, transfer-decoded
    (base64, quoted-printable) and charset-decoded, through
    C{message/rfc822} attachments; no header, MIME part header or non-text
    part is searched (as Dovecot).  C{TEXT} also searches every header
    block: the message's, its parts' and its attached messages'.  A part
    whose charset is unknown, or which names none and is not UTF-8, is
    read as ISO-8859-1, so that ASCII text is still found.  At most
    L{SearchContext.maxText} characters of text are searched per message.
  - Strings compare after C{str.casefold} on both sides; an empty C{BODY}
    or C{TEXT} string matches every message without reading it.
  - Flags and keywords compare without regard to case (RFC 3501 2.3.2).
  - C{*} is the number of messages, or the largest UID, in the mailbox (0
    when empty); C{UID 5:*} names the last message even when its UID is
    below 5 (RFC 3501 6.4.8).

Keys nest (C{NOT}, C{OR}, parentheses); compiling and evaluating recurse
once per level of nesting, after nested C{AND}s and chains of C{OR} are
flattened.  The parser refuses more than 64 levels; L{compileSearch}
refuses more than L{MAX_DEPTH}, well within Python's recursion limit.
"""

from __future__ import annotations

import datetime
import enum
from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Union

from gomail_twisted.imap4._commands import (
    SearchAll,
    SearchAnd,
    SearchDate,
    SearchFlag,
    SearchHeader,
    SearchKey,
    SearchModSeq,
    SearchNot,
    SearchOr,
    SearchRecent,
    SearchSequence,
    SearchSize,
    SearchText,
)
from gomail_twisted.imap4._encode import number
from gomail_twisted.imap4._searchindex import CachedFields, Needle, TextIndex
from gomail_twisted.imap4._searchtext import MAX_TEXT, SearchedMessage
from gomail_twisted.maildir.interfaces import MessageInfo

__all__ = [
    "MAX_DEPTH",
    "MAX_TEXT",
    "Needs",
    "SearchContext",
    "SearchMatcher",
    "compileSearch",
    "needs",
    "searchResponse",
]

MAX_DEPTH = 128
"""
The deepest nesting of C{NOT}, C{OR} and parentheses L{compileSearch}
accepts.
"""

# RFC 7162 3.1.5: mod-sequence-value, 1 to 2**63 - 1.
_MAX_MODSEQ = 2**63 - 1


class Needs(enum.IntEnum):
    """
    What of a message a search key reads, in increasing cost; a key needs
    the most any of its parts needs.

    @cvar NOTHING: flags, sizes, dates, numbers: the L{MessageInfo}.
    @cvar HEADER: header fields: the header block.
    @cvar FULL: body text: the whole message.
    """

    NOTHING = 0
    HEADER = 1
    FULL = 2


@dataclass(frozen=True, slots=True)
class SearchContext:
    """
    What a search knows of the mailbox as a whole.

    @ivar messages: the number of messages: the largest sequence number,
        and what C{*} stands for in a sequence set.
    @ivar largestUID: the largest UID in use, what C{*} stands for in
        C{UID}; 0 for an empty mailbox.
    @ivar recent: the UIDs of the messages recent in this session (RFC
        3501 2.3.2, C{\\Recent}).
    @ivar zone: the time zone in which an internal date's calendar date is
        taken, for C{BEFORE}, C{ON} and C{SINCE}.
    @ivar maxText: the most characters of decoded text searched per
        message by C{BODY} and C{TEXT}.
    """

    messages: int
    largestUID: int
    recent: frozenset[int] = frozenset()
    zone: datetime.tzinfo = datetime.timezone.utc
    maxText: int = MAX_TEXT


def _localDate(timestamp: float, zone: datetime.tzinfo) -> datetime.date | None:
    """
    @return: the calendar date of a time in a zone, or L{None} when the
        time is out of range.
    """
    try:
        return datetime.datetime.fromtimestamp(timestamp, zone).date()
    except (OverflowError, OSError, ValueError):
        return None


_Test = Callable[[SearchedMessage], Union[bool, None]]


def _true(message: SearchedMessage) -> bool | None:
    return True


def _false(message: SearchedMessage) -> bool | None:
    return False


@dataclass(frozen=True, slots=True)
class _Compiled:
    """
    A compiled key.

    @ivar needs: what it reads.
    @ivar cost: its rank when ordering siblings, cheapest first.
    @ivar test: the test: C{True}, C{False}, or L{None} when it needs what
        was not given.
    """

    needs: Needs
    cost: int
    test: _Test


_ALWAYS = _Compiled(Needs.NOTHING, 0, _true)
_NEVER = _Compiled(Needs.NOTHING, 0, _false)

_COMPARISONS: dict[str, Callable[[datetime.date, datetime.date], bool]] = {
    "before": lambda date, target: date < target,
    "on": lambda date, target: date == target,
    "since": lambda date, target: date >= target,
}


def _flatten(key: SearchKey, kind: type[SearchAnd] | type[SearchOr]) -> list[SearchKey]:
    """
    The operands of nested C{AND}s (or chains of C{OR}s), in order.

    @param key: a key.
    @param kind: L{SearchAnd} or L{SearchOr}.
    @return: the keys the nesting joins, none of them a C{kind}.
    """
    operands: list[SearchKey] = []
    stack = [key]
    while stack:
        top = stack.pop()
        if isinstance(top, SearchAnd) and kind is SearchAnd:
            stack.extend(reversed(top.keys))
        elif isinstance(top, SearchOr) and kind is SearchOr:
            stack.extend((top.right, top.left))
        else:
            operands.append(top)
    return operands


def _compileAll(
    keys: list[SearchKey], context: SearchContext, conjunction: bool
) -> _Compiled:
    """
    Compile C{AND} (C{conjunction}) or C{OR} of keys: cheapest first,
    stopping at the first operand that decides.
    """
    decisive, neutral = (_NEVER, _ALWAYS) if conjunction else (_ALWAYS, _NEVER)
    parts: list[_Compiled] = []
    for key in keys:
        part = _compile(key, context)
        if part is decisive:
            return decisive
        if part is not neutral:
            parts.append(part)
    if not parts:
        return neutral
    if len(parts) == 1:
        return parts[0]
    parts.sort(key=lambda part: part.cost)
    tests = tuple(part.test for part in parts)
    if conjunction:

        def test(message: SearchedMessage) -> bool | None:
            result: bool | None = True
            for each in tests:
                found = each(message)
                if found is False:
                    return False
                if found is None:
                    result = None
            return result

    else:

        def test(message: SearchedMessage) -> bool | None:
            result: bool | None = False
            for each in tests:
                found = each(message)
                if found:
                    return True
                if found is None:
                    result = None
            return result

    return _Compiled(
        max(part.needs for part in parts), max(part.cost for part in parts), test
    )


def _compileNot(key: SearchKey, context: SearchContext) -> _Compiled:
    inner = _compile(key, context)
    if inner is _ALWAYS:
        return _NEVER
    if inner is _NEVER:
        return _ALWAYS
    innerTest = inner.test

    def test(message: SearchedMessage) -> bool | None:
        found = innerTest(message)
        return None if found is None else not found

    return _Compiled(inner.needs, inner.cost, test)


def _compileFlag(flag: str, present: bool, context: SearchContext) -> _Compiled:
    folded = flag.casefold()
    if folded == "\\recent":
        return _compileRecent(present, context)

    def test(message: SearchedMessage) -> bool | None:
        flags = message.info.flags
        found = flag in flags or any(each.casefold() == folded for each in flags)
        return found is present

    return _Compiled(Needs.NOTHING, 1, test)


def _compileRecent(present: bool, context: SearchContext) -> _Compiled:
    recent = context.recent

    def test(message: SearchedMessage) -> bool | None:
        return (message.info.uid in recent) is present

    return _Compiled(Needs.NOTHING, 1, test)


def _compileDate(key: SearchDate, context: SearchContext) -> _Compiled:
    compare = _COMPARISONS.get(key.comparison)
    if compare is None:
        raise ValueError(f"unknown date comparison: {key.comparison!r}")
    target = key.date
    if key.sent:

        def sent(message: SearchedMessage) -> bool | None:
            if message.values("date") is None:
                return None
            date = message.sentDate()
            return date is not None and compare(date, target)

        return _Compiled(Needs.HEADER, 4, sent)
    zone = context.zone

    def internal(message: SearchedMessage) -> bool | None:
        date = _localDate(message.info.internalDate, zone)
        return date is not None and compare(date, target)

    return _Compiled(Needs.NOTHING, 2, internal)


def _compileHeader(key: SearchHeader) -> _Compiled:
    name = key.name.casefold()
    wanted = key.value.casefold()

    if not wanted:

        def present(message: SearchedMessage) -> bool | None:
            return message.has(name)

        return _Compiled(Needs.HEADER, 3, present)

    def test(message: SearchedMessage) -> bool | None:
        values = message.values(name)
        if values is None:
            return None
        for value in values:
            if wanted in value:
                return True
        return False

    return _Compiled(Needs.HEADER, 3, test)


def _compileText(key: SearchText) -> _Compiled:
    wanted = key.value.casefold()
    if not wanted:
        return _ALWAYS
    headers = key.headers
    needle = Needle(wanted)

    def test(message: SearchedMessage) -> bool | None:
        if headers:
            text = message.headerText()
            if text is not None and wanted in text:
                return True
        texts = message.texts()
        if texts is None:
            return None if message.mayHold(needle, headers) else False
        return wanted in texts.body or (headers and wanted in texts.headers)

    return _Compiled(Needs.FULL, 5, test)


def _compileSize(key: SearchSize) -> _Compiled:
    size = key.size
    if key.larger:

        def larger(message: SearchedMessage) -> bool | None:
            return message.info.size > size

        return _Compiled(Needs.NOTHING, 0, larger)

    def smaller(message: SearchedMessage) -> bool | None:
        return message.info.size < size

    return _Compiled(Needs.NOTHING, 0, smaller)


def _compileSequence(key: SearchSequence, context: SearchContext) -> _Compiled:
    spans = key.numbers.bounds(context.largestUID if key.uid else context.messages)
    lows = [low for low, _ in spans]
    highs = [high for _, high in spans]

    def contains(value: int) -> bool:
        index = bisect_right(lows, value) - 1
        return index >= 0 and value <= highs[index]

    if key.uid:

        def uid(message: SearchedMessage) -> bool | None:
            return contains(message.info.uid)

        return _Compiled(Needs.NOTHING, 0, uid)

    def seq(message: SearchedMessage) -> bool | None:
        return contains(message.seq)

    return _Compiled(Needs.NOTHING, 0, seq)


def _compileModSeq(key: SearchModSeq) -> _Compiled:
    least = key.modSeq

    def test(message: SearchedMessage) -> bool | None:
        return message.info.modSeq >= least

    return _Compiled(Needs.NOTHING, 0, test)


def _compile(key: SearchKey, context: SearchContext) -> _Compiled:
    """
    Compile one key; recursion follows the key's nesting.
    """
    if isinstance(key, SearchAnd):
        return _compileAll(_flatten(key, SearchAnd), context, True)
    if isinstance(key, SearchOr):
        return _compileAll(_flatten(key, SearchOr), context, False)
    if isinstance(key, SearchNot):
        inner: SearchKey = key.key
        negate = True
        while isinstance(inner, SearchNot):
            inner = inner.key
            negate = not negate
        return _compileNot(inner, context) if negate else _compile(inner, context)
    if isinstance(key, SearchAll):
        return _ALWAYS
    if isinstance(key, SearchFlag):
        return _compileFlag(key.flag, key.present, context)
    if isinstance(key, SearchRecent):
        return _compileRecent(key.present, context)
    if isinstance(key, SearchDate):
        return _compileDate(key, context)
    if isinstance(key, SearchHeader):
        return _compileHeader(key)
    if isinstance(key, SearchText):
        return _compileText(key)
    if isinstance(key, SearchSize):
        return _compileSize(key)
    if isinstance(key, SearchSequence):
        return _compileSequence(key, context)
    if isinstance(key, SearchModSeq):
        return _compileModSeq(key)
    raise TypeError(f"not a search key: {key!r}")


def _children(key: SearchKey) -> tuple[SearchKey, ...]:
    if isinstance(key, SearchAnd):
        return key.keys
    if isinstance(key, SearchOr):
        return (key.left, key.right)
    if isinstance(key, SearchNot):
        return (key.key,)
    return ()


def _walk(key: SearchKey) -> Iterable[tuple[SearchKey, int]]:
    """
    Every key in a tree with its depth (operands of one C{AND}, or of a
    chain of C{OR}s, at one depth), without recursion.
    """
    stack = [(key, 1)]
    while stack:
        top, depth = stack.pop()
        yield top, depth
        for child in _children(top):
            flat = isinstance(child, type(top)) and not isinstance(top, SearchNot)
            stack.append((child, depth if flat else depth + 1))


def needs(key: SearchKey) -> Needs:
    """
    What of each message a search key reads (an empty C{BODY} or C{TEXT}
    string reads nothing: it matches every message).

    @param key: the key.
    @return: L{Needs.NOTHING}, L{Needs.HEADER} or L{Needs.FULL}.
    """
    found = Needs.NOTHING
    for each, _ in _walk(key):
        if isinstance(each, SearchText) and each.value:
            return Needs.FULL
        if isinstance(each, SearchHeader) or (
            isinstance(each, SearchDate) and each.sent
        ):
            found = Needs.HEADER
    return found


class SearchMatcher:
    """
    A search key compiled for one SEARCH command.  It keeps nothing
    between calls, so a store may evaluate messages in its own threads.

    @ivar needs: what of a message the key may read; L{evaluate} may
        decide a message with less.
    @ivar usesModSeq: whether the key holds C{MODSEQ}, so that the untagged
        SEARCH response must end in C{(MODSEQ n)} (RFC 7162 3.1.5).
    @ivar readsFields: whether the key compares header fields (C{HEADER},
        C{FROM}, C{SENTON}...), so that the store's record of them
        (L{CachedFields}) may decide messages without reading them.
    @ivar decidesUnread: whether the key may decide a message with the
        L{MessageInfo} alone; when false, L{evaluate} without more gives
        L{None} for every message (each part of the key reads it).
    @ivar readsTextIndex: whether the key searches text (C{BODY}, C{TEXT})
        within the bound the store's index of it is made for, so that the
        index (L{TextIndex}) may decide messages without reading them.
    """

    def __init__(
        self,
        test: _Test,
        needs: Needs,
        usesModSeq: bool,
        context: SearchContext,
        readsFields: bool = False,
        decidesUnread: bool = True,
    ) -> None:
        """
        Use L{compileSearch}.
        """
        self._test = test
        self.needs = needs
        self.usesModSeq = usesModSeq
        self.readsFields = readsFields
        self.decidesUnread = decidesUnread
        self.readsTextIndex = needs is Needs.FULL and context.maxText == MAX_TEXT
        self._maxText = context.maxText

    def evaluate(
        self,
        info: MessageInfo,
        seq: int,
        header: bytes | None = None,
        full: bytes | None = None,
        fields: CachedFields | None = None,
        textIndex: TextIndex | None = None,
    ) -> bool | None:
        """
        Whether the key matches a message, with what is at hand.  Within
        one call, a message's header and body are decoded at most once,
        however many keys read them.

        @param info: the message as the store knows it.
        @param seq: its message sequence number.
        @param header: its header block (up to the empty line; the empty
            line may follow), or L{None} when not read.
        @param full: the whole message, or L{None} when not read; it
            serves for the header too.
        @param fields: the store's record of its header fields, used when
            neither C{header} nor C{full} is given.
        @param textIndex: the store's index of its text, used when C{full}
            is not given.
        @return: C{True} or C{False}, or L{None} when the answer depends
            on what was not given: then read the header (if L{needs} is
            L{Needs.HEADER}) or the whole message, and ask again.
        """
        return self._test(
            SearchedMessage(info, seq, header, full, self._maxText, fields, textIndex)
        )

    def matches(
        self,
        info: MessageInfo,
        seq: int,
        header: bytes | None = None,
        full: bytes | None = None,
    ) -> bool:
        """
        Whether the key matches a message, given all it needs.

        @param info: the message as the store knows it.
        @param seq: its message sequence number.
        @param header: its header block, or L{None}.
        @param full: the whole message, or L{None}.
        @return: whether it matches.
        @raise ValueError: the key needs what was not given.
        """
        found = self.evaluate(info, seq, header, full)
        if found is None:
            raise ValueError(f"the search needs the message's {self.needs.name}")
        return found

    def highestModSeq(self, matched: Iterable[MessageInfo]) -> int | None:
        """
        The mod-sequence the untagged SEARCH response ends with (RFC 7162
        3.1.5).

        @param matched: the messages that matched.
        @return: the highest of their mod-sequences when the key holds
            C{MODSEQ} and some matched, else L{None}.
        """
        if not self.usesModSeq:
            return None
        return max((info.modSeq for info in matched), default=None)


def compileSearch(key: SearchKey, context: SearchContext) -> SearchMatcher:
    """
    Compile a search key for one SEARCH command.

    @param key: the parsed key (several side by side are one L{SearchAnd}).
    @param context: the mailbox as the command sees it.
    @return: the matcher.
    @raise ValueError: the key nests deeper than L{MAX_DEPTH}, or holds a
        date comparison other than C{before}, C{on} or C{since}.
    """
    usesModSeq = readsFields = decidesUnread = False
    for each, depth in _walk(key):
        if depth > MAX_DEPTH:
            raise ValueError(f"search key nested deeper than {MAX_DEPTH}")
        usesModSeq = usesModSeq or isinstance(each, SearchModSeq)
        if isinstance(each, SearchHeader) or (
            isinstance(each, SearchDate) and each.sent
        ):
            readsFields = True
        elif not (_children(each) or (isinstance(each, SearchText) and each.value)):
            decidesUnread = True
    compiled = _compile(key, context)
    return SearchMatcher(
        compiled.test, needs(key), usesModSeq, context, readsFields, decidesUnread
    )


def searchResponse(numbers: Sequence[int], highestModSeq: int | None = None) -> bytes:
    """
    The untagged SEARCH response (RFC 3501 7.2.5), with RFC 7162 3.1.5's
    mod-sequence after the numbers; an empty result carries none.

    @param numbers: the matching sequence numbers or UIDs, in the order
        to send.
    @param highestModSeq: from L{SearchMatcher.highestModSeq}, or L{None}.
    @return: the line, CRLF included: C{* SEARCH 2 5 (MODSEQ 917)}.
    @raise ValueError: a number is outside 1..2**32-1, or the
        mod-sequence outside 1..2**63-1.
    """
    if not numbers:
        return b"* SEARCH\r\n"
    words = [b"* SEARCH"]
    for each in numbers:
        if each == 0:
            raise ValueError("sequence numbers and UIDs start at 1")
        words.append(number(each))
    if highestModSeq is not None:
        if isinstance(highestModSeq, bool) or not 1 <= highestModSeq <= _MAX_MODSEQ:
            raise ValueError(f"not a mod-sequence: {highestModSeq!r}")
        words.append(b"(MODSEQ %d)" % (highestModSeq,))
    return b" ".join(words) + b"\r\n"
