# -*- test-case-name: tests.test_imap4_parse -*-
"""
The typed values of IMAP4rev1 commands (RFC 3501 6, grammar in 9), as the
parser gives them to the server.

Every string argument is decoded: mailbox names from modified UTF-7 to
text, with any case of C{INBOX} as C{INBOX}; search strings with the
command's charset.  Macros are expanded (C{FETCH ... ALL}, C{SEARCH NEW}),
so the server never sees them.
"""

from __future__ import annotations

import datetime
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Union

from gomail_twisted.imap4._encode import astring, parenthesized
from gomail_twisted.maildir.interfaces import FlagChange

#: The largest sequence number or UID (RFC 3501 9, C{nz-number}).
MAX_NUMBER = 2**32 - 1

#: C{*} in a sequence set: the largest number in use (RFC 3501 9).
STAR = 0


@dataclass(frozen=True, slots=True)
class SequenceSet:
    """
    A C{sequence-set} (RFC 3501 9): ranges of message sequence numbers or
    UIDs, kept as written, never expanded number by number, so that
    C{1:4294967295} costs what C{1:2} does.

    @ivar ranges: C{(first, last)} pairs as written, either order; L{STAR}
        stands for C{*}.  A single number is C{(n, n)}.
    """

    ranges: tuple[tuple[int, int], ...]

    def bounds(self, largest: int) -> list[tuple[int, int]]:
        """
        The ranges with C{*} replaced, low end first, sorted and merged.

        @param largest: what C{*} stands for: the number of messages, or
            the largest UID in use (0 for an empty mailbox).
        @return: disjoint C{(low, high)} pairs in ascending order.
        """
        spans = sorted(
            (min(a, b), max(a, b))
            for a, b in (
                (largest if x == STAR else x, largest if y == STAR else y)
                for x, y in self.ranges
            )
        )
        merged: list[tuple[int, int]] = []
        for low, high in spans:
            if merged and low <= merged[-1][1] + 1:
                if high > merged[-1][1]:
                    merged[-1] = (merged[-1][0], high)
            else:
                merged.append((low, high))
        return merged

    def indexes(self, numbers: Sequence[int]) -> list[int]:
        """
        Which of an ascending list of numbers the set names: the work
        grows with the ranges and the matches, not with the numbers the
        ranges span.

        @param numbers: ascending UIDs (or, for sequence numbers, C{1..n}).
        @return: the indexes into C{numbers} of those in the set, ascending.
        """
        largest = numbers[-1] if numbers else 0
        found: list[int] = []
        for low, high in self.bounds(largest):
            start = bisect_left(numbers, low)
            end = bisect_right(numbers, high)
            found.extend(range(start, end))
        return found

    def contains(self, number: int, largest: int) -> bool:
        """
        @param number: a sequence number or UID.
        @param largest: what C{*} stands for.
        @return: whether the set names C{number}.
        """
        return any(low <= number <= high for low, high in self.bounds(largest))


# FETCH (RFC 3501 6.4.5)


@dataclass(frozen=True, slots=True)
class FetchAttribute:
    """
    A FETCH data item without a section: C{UID}, C{FLAGS}, C{INTERNALDATE},
    C{RFC822.SIZE}, C{ENVELOPE}, C{BODY} (structure without extension
    data), C{BODYSTRUCTURE}, C{RFC822}, C{RFC822.HEADER}, C{RFC822.TEXT},
    or C{MODSEQ} (RFC 7162 3.1.4.1).

    @ivar name: the item's name, in upper case.
    """

    name: str


@dataclass(frozen=True, slots=True)
class BodySection:
    """
    C{BODY[section]<partial>} or C{BODY.PEEK[...]} (RFC 3501 6.4.5).

    @ivar peek: C{BODY.PEEK}: the C{\\Seen} flag is not set.
    @ivar part: the part numbers, C{()} for the whole message.
    @ivar specifier: C{""}, C{HEADER}, C{HEADER.FIELDS},
        C{HEADER.FIELDS.NOT}, C{TEXT} or C{MIME} (only after a part).
    @ivar fields: the header field names of C{HEADER.FIELDS[.NOT]}, in
        upper case, as given.
    @ivar partial: C{(start, count)} of C{<start.count>}, or L{None}.
    """

    peek: bool
    part: tuple[int, ...] = ()
    specifier: str = ""
    fields: tuple[str, ...] = ()
    partial: tuple[int, int] | None = None

    def label(self) -> bytes:
        """
        The item's name in the FETCH response: C{BODY[section]}, with
        C{<start>} when partial (C{PEEK} never appears, 7.4.2).

        @return: the name's octets.
        """
        pieces = [b".".join(b"%d" % (n,) for n in self.part)] if self.part else []
        if self.specifier:
            text = self.specifier
            data = text.encode("ascii")
            if self.fields:
                data += b" " + parenthesized(astring(f) for f in self.fields)
            pieces.append(data)
        name = b"BODY[" + b".".join(pieces) + b"]"
        if self.partial is not None:
            name += b"<%d>" % (self.partial[0],)
        return name


FetchItem = Union[FetchAttribute, BodySection]


# SEARCH (RFC 3501 6.4.4)


@dataclass(frozen=True, slots=True)
class SearchAll:
    """C{ALL}: every message."""


@dataclass(frozen=True, slots=True)
class SearchFlag:
    """
    C{ANSWERED}, C{UNSEEN}, C{KEYWORD x}, ...: whether a flag is set.

    @ivar flag: a system flag (C{\\Seen}) or a keyword.
    @ivar present: C{True} for set, C{False} for not set.
    """

    flag: str
    present: bool


@dataclass(frozen=True, slots=True)
class SearchRecent:
    """
    C{RECENT} (C{present}) or C{OLD} (not); C{NEW} is C{RECENT UNSEEN}.

    @ivar present: C{True} for recent.
    """

    present: bool


@dataclass(frozen=True, slots=True)
class SearchDate:
    """
    C{BEFORE}, C{ON}, C{SINCE} (internal date) and C{SENTBEFORE},
    C{SENTON}, C{SENTSINCE} (the C{Date:} header), compared by date only,
    without time or zone (RFC 3501 6.4.4).

    @ivar sent: the C{Date:} header rather than the internal date.
    @ivar comparison: C{"before"}, C{"on"} or C{"since"}.
    @ivar date: the date.
    """

    sent: bool
    comparison: str
    date: datetime.date


@dataclass(frozen=True, slots=True)
class SearchHeader:
    """
    C{HEADER name value}, and C{FROM}, C{TO}, C{CC}, C{BCC}, C{SUBJECT}
    as C{HEADER} of those fields: a substring of the field's decoded
    value, without regard to case; an empty value matches any message
    with the field.

    @ivar name: the field's name, as given.
    @ivar value: the substring.
    """

    name: str
    value: str


@dataclass(frozen=True, slots=True)
class SearchText:
    """
    C{BODY} (the body only) or C{TEXT} (header and body): a substring,
    without regard to case, of the decoded text.

    @ivar value: the substring.
    @ivar headers: C{TEXT}: search the header too.
    """

    value: str
    headers: bool


@dataclass(frozen=True, slots=True)
class SearchSize:
    """
    C{LARGER n} or C{SMALLER n}: RFC822.SIZE compared with C{n}.

    @ivar larger: C{LARGER}: size above C{n}; else below.
    @ivar size: C{n}.
    """

    larger: bool
    size: int


@dataclass(frozen=True, slots=True)
class SearchSequence:
    """
    A sequence set (sequence numbers), or C{UID} and a set of UIDs.

    @ivar numbers: the set.
    @ivar uid: whether it names UIDs.
    """

    numbers: SequenceSet
    uid: bool


@dataclass(frozen=True, slots=True)
class SearchModSeq:
    """
    C{MODSEQ n} (RFC 7162 3.1.5): mod-sequence at least C{n}.

    @ivar modSeq: C{n}.
    """

    modSeq: int


@dataclass(frozen=True, slots=True)
class SearchNot:
    """C{NOT key}."""

    key: SearchKey


@dataclass(frozen=True, slots=True)
class SearchOr:
    """C{OR key key}."""

    left: SearchKey
    right: SearchKey


@dataclass(frozen=True, slots=True)
class SearchAnd:
    """Keys side by side, or a parenthesised list of them: all must hold."""

    keys: tuple[SearchKey, ...]


SearchKey = Union[
    SearchAll,
    SearchFlag,
    SearchRecent,
    SearchDate,
    SearchHeader,
    SearchText,
    SearchSize,
    SearchSequence,
    SearchModSeq,
    SearchNot,
    SearchOr,
    SearchAnd,
]


# The commands' arguments (RFC 3501 6).  Commands without arguments
# (CAPABILITY, NOOP, LOGOUT, STARTTLS, CHECK, CLOSE, EXPUNGE, UNSELECT,
# IDLE, NAMESPACE) have L{None}.


@dataclass(frozen=True, slots=True)
class Login:
    """LOGIN (6.2.3): the user name and password, as UTF-8 text."""

    user: str
    password: str


@dataclass(frozen=True, slots=True)
class Authenticate:
    """
    AUTHENTICATE (6.2.2), with RFC 4959's initial response.

    @ivar mechanism: the SASL mechanism, in upper case.
    @ivar initial: the initial response as sent (base64, or C{=} for an
        empty one), or L{None}.
    """

    mechanism: str
    initial: bytes | None


@dataclass(frozen=True, slots=True)
class Select:
    """
    SELECT or EXAMINE (6.3.1, 6.3.2).

    @ivar mailbox: the mailbox.
    @ivar readOnly: EXAMINE.
    @ivar condstore: the C{(CONDSTORE)} parameter (RFC 7162 3.1.8).
    """

    mailbox: str
    readOnly: bool
    condstore: bool = False


@dataclass(frozen=True, slots=True)
class Mailbox:
    """CREATE, DELETE, SUBSCRIBE, UNSUBSCRIBE: one mailbox name."""

    mailbox: str


@dataclass(frozen=True, slots=True)
class Rename:
    """RENAME (6.3.5)."""

    old: str
    new: str


@dataclass(frozen=True, slots=True)
class ListMailboxes:
    """
    LIST or LSUB (6.3.8, 6.3.9), with LIST-EXTENDED (RFC 5258) and
    LIST-STATUS (RFC 5819).

    @ivar reference: the reference name, decoded.
    @ivar patterns: the mailbox patterns, decoded; more than one only with
        LIST-EXTENDED's parenthesised form.
    @ivar lsub: LSUB.
    @ivar selection: selection options in upper case (C{SUBSCRIBED},
        C{REMOTE}, C{RECURSIVEMATCH}, C{SPECIAL-USE}).
    @ivar returns: return options in upper case (C{SUBSCRIBED},
        C{CHILDREN}, C{SPECIAL-USE}, C{STATUS}).
    @ivar statusItems: with C{RETURN (STATUS (...))}, the status items in
        upper case.
    @ivar extended: whether the LIST-EXTENDED syntax was used (selection
        options, a pattern list, or return options), which changes what
        the response may carry.
    """

    reference: str
    patterns: tuple[str, ...]
    lsub: bool = False
    selection: frozenset[str] = frozenset()
    returns: frozenset[str] = frozenset()
    statusItems: tuple[str, ...] = ()
    extended: bool = False


@dataclass(frozen=True, slots=True)
class Status:
    """
    STATUS (6.3.10).

    @ivar mailbox: the mailbox.
    @ivar items: the items in upper case, as given (C{MESSAGES},
        C{RECENT}, C{UIDNEXT}, C{UIDVALIDITY}, C{UNSEEN}, C{HIGHESTMODSEQ},
        C{SIZE}).
    """

    mailbox: str
    items: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Append:
    """
    APPEND (6.3.11).

    @ivar mailbox: the mailbox.
    @ivar flags: the flags given, as written.
    @ivar date: the internal date given, or L{None}.
    @ivar message: the message literal: its bytes, or whatever the
        protocol put in its place while streaming it to the store.
    """

    mailbox: str
    flags: tuple[str, ...]
    date: datetime.datetime | None
    message: object


@dataclass(frozen=True, slots=True)
class Search:
    """
    SEARCH (6.4.4).

    @ivar key: the criteria, as one key (several side by side are a
        L{SearchAnd}).
    @ivar charset: the C{CHARSET} given, in upper case, or L{None}.
    """

    key: SearchKey
    charset: str | None = None


@dataclass(frozen=True, slots=True)
class Fetch:
    """
    FETCH (6.4.5), with CONDSTORE's C{CHANGEDSINCE} (RFC 7162 3.1.4).

    @ivar numbers: the messages.
    @ivar items: the data items, macros expanded, in the order given.
    @ivar changedSince: C{CHANGEDSINCE n}, or L{None}.
    """

    numbers: SequenceSet
    items: tuple[FetchItem, ...]
    changedSince: int | None = None


@dataclass(frozen=True, slots=True)
class Store:
    """
    STORE (6.4.6), with CONDSTORE's C{UNCHANGEDSINCE} (RFC 7162 3.1.3).

    @ivar numbers: the messages.
    @ivar change: C{FLAGS}, C{+FLAGS} or C{-FLAGS}.
    @ivar silent: the C{.SILENT} suffix.
    @ivar flags: the flags, as written.
    @ivar unchangedSince: C{UNCHANGEDSINCE n}, or L{None}.
    """

    numbers: SequenceSet
    change: FlagChange
    silent: bool
    flags: tuple[str, ...]
    unchangedSince: int | None = None


@dataclass(frozen=True, slots=True)
class Transfer:
    """
    COPY (6.4.7) or MOVE (RFC 6851).

    @ivar numbers: the messages.
    @ivar mailbox: the destination.
    """

    numbers: SequenceSet
    mailbox: str


@dataclass(frozen=True, slots=True)
class Expunge:
    """
    UID EXPUNGE (RFC 4315 2.1); plain EXPUNGE has no arguments.

    @ivar uids: the UIDs.
    """

    uids: SequenceSet


@dataclass(frozen=True, slots=True)
class Enable:
    """ENABLE (RFC 5161): the capabilities, in upper case."""

    capabilities: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Id:
    """
    ID (RFC 2971).

    @ivar fields: the client's field/value pairs, or L{None} for C{NIL}.
    """

    fields: tuple[tuple[str, str | None], ...] | None


Arguments = Union[
    None,
    Login,
    Authenticate,
    Select,
    Mailbox,
    Rename,
    ListMailboxes,
    Status,
    Append,
    Search,
    Fetch,
    Store,
    Transfer,
    Expunge,
    Enable,
    Id,
]


@dataclass(frozen=True, slots=True)
class Command:
    """
    One parsed command.

    @ivar tag: the client's tag.
    @ivar name: the command's name in upper case, without C{UID}
        (C{EXAMINE} and C{LSUB} keep their names).
    @ivar uid: the C{UID} prefix was given (COPY, MOVE, FETCH, STORE,
        SEARCH, EXPUNGE).
    @ivar arguments: the command's arguments.
    """

    tag: str
    name: str
    arguments: Arguments = None
    uid: bool = False


@dataclass
class ParseError(Exception):
    """
    What could not be parsed, answered with C{BAD} (RFC 3501 7.1.3).

    @ivar tag: the command's tag, or L{None} when even the tag could not
        be read (answered C{* BAD}).
    @ivar text: human-readable text, naming what was wrong.
    @ivar code: a response code (C{BADCHARSET}, C{TOOBIG}...) or L{None}.
    """

    tag: str | None
    text: str
    code: str | None = None
