# -*- test-case-name: tests.test_imap4_encode -*-
"""
The IMAP4rev1 response encoder: values in, wire bytes out, no I/O.

Every string a response carries goes through here, so that the choice
between atom, quoted string and literal (RFC 3501 4.1-4.3, grammar in
section 9) is made in one place and no value a client or a message
controls can break the framing: a CR or LF reaches the wire only inside
a literal, whose length is announced before it.

Text (C{str}) is sent as UTF-8; without RFC 6855 (UTF8=ACCEPT) enabled,
anything that is not 7-bit goes as a literal, never quoted.

NUL is refused everywhere with L{ValueError}: RFC 3501 9 allows it in
neither a quoted string (C{CHAR} is C{%x01-7F}) nor a literal (C{CHAR8} is
C{%x01-FF}); only C{literal8} of RFC 3516 (BINARY) may carry it, and this
module does not write C{literal8}.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from gomail_twisted import mutf7

__all__ = [
    "MAX_NUMBER",
    "MAX_QUOTED",
    "astring",
    "atom",
    "flagList",
    "literal",
    "mailboxName",
    "nstring",
    "number",
    "parenthesized",
    "sequenceSet",
    "string",
]

MAX_QUOTED = 1000
"""
The longest value, in octets before escaping, sent as a quoted string;
longer ones go as literals, which clients read without scanning.
"""

MAX_NUMBER = 2**32 - 1
"""
The largest C{number} of RFC 3501 9: an unsigned 32-bit integer.
"""

# ATOM-CHAR: any CHAR (%x01-7F) except atom-specials, that is ( ) { SP,
# CTL (%x00-1F, %x7F), list-wildcards (% *), quoted-specials (" \) and
# resp-specials (]).  ASTRING-CHAR would also allow "]", but atoms in
# responses stay within ATOM-CHAR so that no client mistakes one for the
# end of a response code.
_ATOM = re.compile(rb'[^(){ \x00-\x1f\x7f%*"\\\]\x80-\xff]+\Z')

# QUOTED-CHAR: TEXT-CHAR (CHAR except CR and LF), with " and \ escaped.
_QUOTABLE = re.compile(rb"[\x01-\x09\x0b\x0c\x0e-\x7f]*\Z")
_QUOTED_SPECIALS = re.compile(rb'(["\\])')


def _octets(value: str | bytes) -> bytes:
    """
    The octets of a value, refusing NUL.

    @param value: text (sent as UTF-8) or octets.
    @return: the octets.
    @raise ValueError: C{value} holds NUL or a lone surrogate.
    """
    data = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    if b"\x00" in data:
        raise ValueError("NUL cannot be sent in an IMAP string (RFC 3501 9)")
    return data


def _isAtom(data: bytes) -> bool:
    """
    Whether octets form an C{atom} of RFC 3501 9.

    @param data: the octets.
    @return: C{True} when non-empty and every octet is an C{ATOM-CHAR}.
    """
    return _ATOM.match(data) is not None


def atom(value: str | bytes) -> bytes:
    """
    Encode an C{atom} (RFC 3501 4.1, 9), for keywords and response codes.

    @param value: the atom.
    @return: its octets.
    @raise ValueError: C{value} is empty or holds a character outside
        C{ATOM-CHAR}.
    """
    data = _octets(value)
    if not _isAtom(data):
        raise ValueError(f"not an IMAP atom: {value!r}")
    return data


def literal(value: str | bytes) -> bytes:
    """
    Encode a C{literal} (RFC 3501 4.3): C{{n}}, CRLF, then exactly C{n}
    octets.

    @param value: any text or octets without NUL.
    @return: the literal.
    @raise ValueError: C{value} holds NUL.
    """
    data = _octets(value)
    return b"{%d}\r\n" % (len(data),) + data


def _string(data: bytes) -> bytes:
    """
    Encode checked octets as a quoted string when that is safe and short,
    else as a literal.

    @param data: octets without NUL.
    @return: a C{string} of RFC 3501 9.
    """
    if len(data) <= MAX_QUOTED and _QUOTABLE.match(data):
        return b'"' + _QUOTED_SPECIALS.sub(rb"\\\1", data) + b'"'
    return b"{%d}\r\n" % (len(data),) + data


def string(value: str | bytes) -> bytes:
    """
    Encode a C{string} (RFC 3501 4.3): quoted when 7-bit, free of CR and
    LF and at most L{MAX_QUOTED} octets long, else a literal.

    @param value: text (sent as UTF-8) or octets.
    @return: the encoded string.
    @raise ValueError: C{value} holds NUL.
    """
    return _string(_octets(value))


def nstring(value: str | bytes | None) -> bytes:
    """
    Encode an C{nstring} (RFC 3501 4.5, 9): C{NIL} for L{None}, else a
    L{string}; never an atom, since C{nstring} has no atom form.

    @param value: text, octets or L{None}.
    @return: the encoded value.
    @raise ValueError: C{value} holds NUL.
    """
    if value is None:
        return b"NIL"
    return string(value)


def astring(value: str | bytes) -> bytes:
    """
    Encode an C{astring} (RFC 3501 9): an atom when it is one, else a
    L{string}.

    The word C{NIL}, in any case, is quoted: where an C{astring} sits
    beside C{nstring}s a client could read the bare atom as NIL.

    @param value: text (sent as UTF-8) or octets.
    @return: the encoded value.
    @raise ValueError: C{value} holds NUL.
    """
    data = _octets(value)
    if _isAtom(data) and data.upper() != b"NIL":
        return data
    return _string(data)


def mailboxName(name: str) -> bytes:
    """
    Encode a C{mailbox} (RFC 3501 5.1, 9): modified UTF-7 (5.1.3), with
    any case of C{INBOX} sent as C{INBOX}, then as an L{astring}.

    @param name: the mailbox name as text.
    @return: the encoded name.
    @raise ValueError: C{name} holds a lone surrogate.
    """
    if name.isascii() and name.upper() == "INBOX":
        return b"INBOX"
    # Modified UTF-7 is printable US-ASCII, so NUL and CR/LF never remain.
    return astring(mutf7.encode(name))


def number(value: int) -> bytes:
    """
    Encode a C{number} (RFC 3501 4.2, 9): an unsigned 32-bit integer.

    @param value: the number.
    @return: its decimal digits.
    @raise ValueError: C{value} is not an L{int} (a L{bool} included) or
        lies outside 0..L{MAX_NUMBER}.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"not an IMAP number: {value!r}")
    if not 0 <= value <= MAX_NUMBER:
        raise ValueError(f"IMAP number out of range: {value!r}")
    return b"%d" % (value,)


def parenthesized(items: Iterable[bytes]) -> bytes:
    """
    Join already encoded items into a parenthesized list (RFC 3501 4.4).

    @param items: encoded items, each from this module's functions.
    @return: C{(item item ...)}; C{()} for none.
    """
    return b"(" + b" ".join(items) + b")"


def _flag(value: str | bytes, allowWildcard: bool) -> bytes:
    """
    Check and encode one flag (RFC 3501 2.3.2, C{flag} in 9).

    @param value: a keyword atom, or a backslash and an atom.
    @param allowWildcard: whether C{\\*} is allowed (C{flag-perm}).
    @return: the flag's octets.
    @raise ValueError: C{value} is not a valid flag.
    """
    data = _octets(value)
    if allowWildcard and data == b"\\*":
        return data
    if data.startswith(b"\\"):
        if _isAtom(data[1:]):
            return data
    elif _isAtom(data):
        return data
    raise ValueError(f"not an IMAP flag: {value!r}")


def flagList(flags: Iterable[str | bytes], *, allowWildcard: bool = False) -> bytes:
    """
    Encode a C{flag-list} (RFC 3501 7.2.6, 9): flags are atoms, system
    flags and flag extensions with a leading backslash.

    @param flags: the flags, in the order to send them.
    @param allowWildcard: allow C{\\*}, for the C{PERMANENTFLAGS} response
        code (RFC 3501 7.1).
    @return: the parenthesized list.
    @raise ValueError: a flag is not a valid C{flag} (or C{flag-perm}).
    """
    return parenthesized(_flag(flag, allowWildcard) for flag in flags)


def sequenceSet(numbers: Iterable[int]) -> bytes:
    """
    Encode numbers as a C{sequence-set} (RFC 3501 9), in the order given,
    with runs of consecutive ascending numbers as ranges: C{3:5,9}.

    @param numbers: positive numbers, at least one.
    @return: the set.
    @raise ValueError: C{numbers} is empty or holds a number out of
        range.
    """
    pieces: list[bytes] = []
    first = last = -1
    for n in numbers:
        number(n)
        if n < 1:
            raise ValueError("a sequence set holds positive numbers")
        if n == last + 1 and last >= 1:
            last = n
            continue
        if last >= 1:
            pieces.append(_run(first, last))
        first = last = n
    if last < 1:
        raise ValueError("an empty sequence set cannot be sent")
    pieces.append(_run(first, last))
    return b",".join(pieces)


def _run(first: int, last: int) -> bytes:
    if first == last:
        return b"%d" % (first,)
    return b"%d:%d" % (first, last)
