# -*- test-case-name: tests.test_imap4_list -*-
"""
What LIST and LSUB answer (RFC 3501 6.3.8, 6.3.9), with LIST-EXTENDED
(RFC 5258), CHILDREN (RFC 3348), SPECIAL-USE (RFC 6154) and the STATUS
responses of LIST-STATUS (RFC 5819): pure functions from the account's
folders and subscriptions to the responses, no I/O.

The hierarchy delimiter is C{/}, in one namespace with no prefix (RFC
2342).  The reference and the pattern are joined by putting one after the
other, as Dovecot does.  C{INBOX} is matched without regard to case, in a
name's first level only: C{inb*} finds C{INBOX} and C{INBOX/x}, never
C{INBOX/X} for C{inbox/x}.

Which names are listed follows Dovecot's answers over the same folders:

  - LIST: every folder whose name matches, and the levels above folders
    that are not folders themselves (only C{a/b} exists: C{a} is listed
    C{\\Noselect \\HasChildren}, as RFC 3501 6.3.8 asks of C{%}, and for
    C{*} too);
  - LSUB: every subscribed name that matches, existing or not; and, as
    RFC 3501 6.3.9 asks, an unsubscribed name that matches and has a
    subscribed name below it that does not (C{%}), with C{\\Noselect};
  - LIST-EXTENDED: the selection options pick the names (C{SUBSCRIBED}:
    the subscribed names, existing or not; C{SPECIAL-USE}: the folders
    with a special use; both: names meeting both); C{RECURSIVEMATCH} also
    lists a name that matches, does not meet them but has a name below it
    that does and is not matched itself, and gives C{CHILDINFO} to every
    listed name with a name below it that meets them (RFC 5258 3.5).

The attributes: C{\\HasChildren} or C{\\HasNoChildren} always, in LIST
(RFC 3348, RFC 5258 4: a server may send them unasked); a name that is no
folder is C{\\Noselect} in the base syntax, C{\\NonExistent} in the
extended one (RFC 5258 3); C{\\Subscribed} when the C{SUBSCRIBED} option
asks for it; the special use in base LIST and LSUB (as Dovecot) and, in
the extended syntax, when the C{SPECIAL-USE} option asks for it (RFC 6154
2).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass

from gomail_twisted.imap4 import _encode as E
from gomail_twisted.imap4._commands import ListMailboxes
from gomail_twisted.maildir.interfaces import INBOX, FolderInfo, FolderStatus

#: The hierarchy delimiter (RFC 3501 5.1.1).
DELIMITER = "/"

#: The status items (RFC 3501 6.3.10, RFC 7162 3.1.4, RFC 8438) and the
#: value of each in a L{FolderStatus}.
STATUS_ITEMS: dict[str, Callable[[FolderStatus], int]] = {
    "MESSAGES": lambda s: s.messages,
    "RECENT": lambda s: s.recent,
    "UIDNEXT": lambda s: s.uidNext,
    "UIDVALIDITY": lambda s: s.uidValidity,
    "UNSEEN": lambda s: s.unseen,
    "HIGHESTMODSEQ": lambda s: s.highestModSeq,
    "SIZE": lambda s: s.size,
}

#: Status items whose values may pass 32 bits: a C{mod-sequence-value}
#: (RFC 7162 7) and a C{number64} (RFC 8438 3).
_WIDE_ITEMS = frozenset({"HIGHESTMODSEQ", "SIZE"})
_MAX_WIDE = 2**63 - 1

_HAS_CHILDREN = "\\HasChildren"
_HAS_NO_CHILDREN = "\\HasNoChildren"
_NOSELECT = "\\Noselect"
_NONEXISTENT = "\\NonExistent"
_SUBSCRIBED = "\\Subscribed"

#: The selection options that pick names, in the order CHILDINFO names
#: them (RFC 5258 3.5).
_CRITERIA = ("SUBSCRIBED", "SPECIAL-USE")


def isInbox(level: str) -> bool:
    """
    Whether a name (or its first level) is C{INBOX}, in any ASCII case
    (RFC 3501 5.1); C{"\u0131nbox".upper()} is C{INBOX} too, but is no
    INBOX.

    @param level: the name.
    @return: L{True} for C{INBOX}, C{inbox}, C{InBoX}...
    """
    return len(level) == 5 and level.isascii() and level.upper() == INBOX


class Pattern:
    """
    A LIST pattern (RFC 3501 6.3.8): C{*} matches any characters, C{%} any
    but the hierarchy delimiter.

    Matching takes time in proportion to the name's length, whatever the
    wildcards: the pattern is run as a set of positions in it (a
    nondeterministic automaton, kept as the bits of an integer), never by
    trying one way and going back, so C{*a*a*a*a*b} costs on a long name
    what C{a*} does.
    """

    def __init__(self, pattern: str) -> None:
        """
        @param pattern: the reference and the pattern, joined.
        """
        tokens: list[str] = []
        for char in pattern:
            if char in "*%" and tokens and tokens[-1] in "*%":
                # A run of wildcards is one: C{*} when it holds one.
                if char == "*":
                    tokens[-1] = "*"
                continue
            tokens.append(char)
        self._plain = None if "*" in tokens or "%" in tokens else pattern
        self._literals: dict[str, int] = {}
        star = percent = 0
        for position, token in enumerate(tokens):
            bit = 1 << position
            if token == "*":
                star |= bit
            elif token == "%":
                percent |= bit
            else:
                self._literals[token] = self._literals.get(token, 0) | bit
        # Each literal takes one character: a shorter name cannot match,
        # and a long pattern is refused before any work.
        self._least = len(tokens) - (star | percent).bit_count()
        self._star = star
        self._wild = star | percent
        self._accept = 1 << len(tokens)
        self._start = self._close(1)

    def _close(self, state: int) -> int:
        # A wildcard may match nothing; no two wildcards are adjacent, so
        # one step reaches every position.
        return state | ((state & self._wild) << 1)

    def matches(self, name: str) -> bool:
        """
        @param name: a canonical mailbox name (C{INBOX} in capitals).
        @return: whether the pattern matches it.
        """
        folded = 5 if name == INBOX or name.startswith(INBOX + DELIMITER) else 0
        if self._plain is not None:
            if folded:
                return isInbox(self._plain[:5]) and self._plain[5:] == name[5:]
            return self._plain == name
        if len(name) < self._least:
            return False
        literals = self._literals
        state = self._start
        for index, char in enumerate(name):
            mask = literals.get(char, 0)
            if index < folded:
                mask |= literals.get(char.lower(), 0)
            loop = self._star if char == DELIMITER else self._wild
            state = self._close(((state & mask) << 1) | (state & loop))
            if not state:
                return False
        return bool(state & self._accept)


@dataclass(frozen=True, slots=True)
class Listed:
    """
    One line of a LIST or LSUB answer.

    @ivar name: the mailbox name.
    @ivar attributes: its attributes, in the order sent.
    @ivar childInfo: the C{CHILDINFO} tags (RFC 5258 3.5), or C{()}.
    @ivar exists: whether it is a folder (one LIST-STATUS reports on).
    """

    name: str
    attributes: tuple[str, ...]
    childInfo: tuple[str, ...] = ()
    exists: bool = True


def parents(name: str) -> list[str]:
    """
    @param name: a mailbox name.
    @return: the names above it, from the top: C{a}, C{a/b} for C{a/b/c}.
    """
    levels = name.split(DELIMITER)
    return [DELIMITER.join(levels[:depth]) for depth in range(1, len(levels))]


def _ancestors(names: Iterable[str]) -> set[str]:
    found: set[str] = set()
    for name in names:
        found.update(parents(name))
    return found


def _order(name: str) -> tuple[bool, str]:
    # INBOX and what is under it first, then by name.
    return (not (name == INBOX or name.startswith(INBOX + DELIMITER)), name)


def listing(
    arguments: ListMailboxes,
    folders: Sequence[FolderInfo],
    subscriptions: Collection[str],
) -> list[Listed]:
    """
    The lines of a LIST or LSUB answer.

    @param arguments: the command's arguments.
    @param folders: the account's folders.
    @param subscriptions: the subscribed names, existing or not.
    @return: the lines, in order: C{INBOX} and its children, then by name.
    """
    patterns = [Pattern(arguments.reference + p) for p in arguments.patterns]

    def matched(name: str) -> bool:
        return any(p.matches(name) for p in patterns)

    if arguments.lsub:
        return _lsub(folders, set(subscriptions), matched)
    if not arguments.extended and arguments.patterns == ("",):
        # RFC 3501 6.3.8: the delimiter, and the root of a reference that
        # has none.
        return [Listed("", (_NOSELECT,), exists=False)]
    if arguments.extended:
        return _extended(arguments, folders, set(subscriptions), matched)
    existing = {f.name: f for f in folders}
    names = set(existing) | _ancestors(existing)
    out = []
    for name in sorted(names, key=_order):
        if not matched(name):
            continue
        info = existing.get(name)
        if info is None:
            out.append(Listed(name, (_NOSELECT, _HAS_CHILDREN), exists=False))
        else:
            out.append(Listed(name, (_children(info.hasChildren), *_use(info))))
    return out


def _children(has: bool) -> str:
    return _HAS_CHILDREN if has else _HAS_NO_CHILDREN


def _use(info: FolderInfo | None) -> tuple[str, ...]:
    """
    The special-use attribute of a folder, when it has one the wire can
    carry.
    """
    if info is None or info.specialUse is None:
        return ()
    try:
        E.flagList([info.specialUse])
    except ValueError:
        return ()
    return (info.specialUse,)


def _lsub(
    folders: Sequence[FolderInfo],
    subscribed: set[str],
    matched: Callable[[str], bool],
) -> list[Listed]:
    """
    LSUB (RFC 3501 6.3.9): the subscribed names, and the unsubscribed
    names above subscribed ones that C{%} stopped at.
    """
    existing = {f.name: f for f in folders}
    unmatchedBelow = _ancestors(name for name in subscribed if not matched(name))
    out = []
    for name in sorted(subscribed | unmatchedBelow, key=_order):
        if not matched(name):
            continue
        if name in subscribed:
            out.append(Listed(name, _use(existing.get(name)), exists=name in existing))
        else:
            out.append(Listed(name, (_NOSELECT,), exists=name in existing))
    return out


def _extended(
    arguments: ListMailboxes,
    folders: Sequence[FolderInfo],
    subscribed: set[str],
    matched: Callable[[str], bool],
) -> list[Listed]:
    """
    LIST with LIST-EXTENDED's options (RFC 5258 3, RFC 6154 5).
    """
    selection = arguments.selection
    criteria = tuple(c for c in _CRITERIA if c in selection)
    showSubscribed = "SUBSCRIBED" in selection or "SUBSCRIBED" in arguments.returns
    showUse = "SPECIAL-USE" in selection or "SPECIAL-USE" in arguments.returns
    recursive = "RECURSIVEMATCH" in selection
    existing = {f.name: f for f in folders}
    withChildren = _ancestors(existing)

    def meets(name: str) -> bool:
        if "SUBSCRIBED" in criteria and name not in subscribed:
            return False
        if "SPECIAL-USE" in criteria:
            return bool(_use(existing.get(name)))
        return True

    if criteria:
        pool = subscribed if "SUBSCRIBED" in criteria else set(existing)
        chosen = {name for name in pool if meets(name)}
    else:
        chosen = set(existing) | withChildren
    # RECURSIVEMATCH (RFC 5258 3.5): names with a chosen name below them;
    # and those of them with one below them that no pattern matches.
    below = _ancestors(chosen) if recursive and criteria else set()
    unmatchedBelow = _ancestors(n for n in chosen if not matched(n)) if below else set()
    out = []
    for name in sorted(chosen | unmatchedBelow, key=_order):
        if not matched(name):
            continue
        attributes = []
        if showSubscribed and name in subscribed:
            attributes.append(_SUBSCRIBED)
        info = existing.get(name)
        if info is None:
            attributes.append(_NONEXISTENT)
        attributes.append(_children(name in withChildren))
        if showUse:
            attributes.extend(_use(info))
        out.append(
            Listed(
                name,
                tuple(attributes),
                criteria if name in below else (),
                exists=info is not None,
            )
        )
    return out


def encodeName(name: str, utf8: bool = False) -> bytes:
    """
    A mailbox name as the wire carries it.

    @param name: the name.
    @param utf8: UTF8=ACCEPT is on (RFC 6855 3): UTF-8 rather than
        modified UTF-7.
    @return: the encoded name.
    """
    if utf8:
        return E.astring(name)
    return E.mailboxName(name)


def listResponse(kind: bytes, entry: Listed, utf8: bool = False) -> bytes:
    """
    One C{LIST} or C{LSUB} response (RFC 3501 7.2.2, RFC 5258 6).

    @param kind: C{b"LIST"} or C{b"LSUB"}.
    @param entry: what to say.
    @param utf8: see L{encodeName}.
    @return: the response, CRLF included.
    """
    line = [
        b"* ",
        kind,
        b" ",
        E.flagList(entry.attributes),
        b" ",
        E.string(DELIMITER),
        b" ",
        encodeName(entry.name, utf8),
    ]
    if entry.childInfo:
        tags = E.parenthesized(E.string(tag) for tag in entry.childInfo)
        line += [b" (CHILDINFO ", tags, b")"]
    line.append(b"\r\n")
    return b"".join(line)


def statusResponse(
    name: str, status: FolderStatus, items: Iterable[str], utf8: bool = False
) -> bytes:
    """
    A C{STATUS} response (RFC 3501 7.2.4), the items in the order asked,
    each once.

    @param name: the mailbox.
    @param status: its counts.
    @param items: the items, in upper case, from L{STATUS_ITEMS}.
    @param utf8: see L{encodeName}.
    @return: the response, CRLF included.
    @raise ValueError: a count is out of range.
    """
    values = []
    for item in dict.fromkeys(items):
        value = STATUS_ITEMS[item](status)
        if item in _WIDE_ITEMS:
            if isinstance(value, bool) or not 0 <= value <= _MAX_WIDE:
                raise ValueError(f"{item} out of range: {value!r}")
            encoded = b"%d" % (value,)
        else:
            encoded = E.number(value)
        values.append(item.encode("ascii") + b" " + encoded)
    return (
        b"* STATUS " + encodeName(name, utf8) + b" " + E.parenthesized(values) + b"\r\n"
    )
