# -*- test-case-name: tests.test_imap4_parse -*-
"""
The tokens of IMAP4rev1 commands (RFC 3501 9) and the position the
command parser reads them from: atoms, numbers, the three forms of a
string, sequence sets, mailbox names and flags.

A command reaches the parser as lines and literals (RFC 3501 4.3, RFC
7888): the protocol reads a line up to the literal it announces, the
literal's octets, then the next line.  L{Reader} walks them in that order,
so a literal stands wherever a C{string} may, and nothing is joined or
copied.

Runs of octets are taken with compiled patterns whose alternatives never
overlap, so the work is linear in the input; Python code runs per token,
not per octet (but for the rare mailbox name with shifted characters,
which L{mutf7.decode} reads a character at a time).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NoReturn

from gomail_twisted import mutf7
from gomail_twisted.imap4._commands import (
    MAX_NUMBER,
    STAR,
    ParseError,
    SequenceSet,
)
from gomail_twisted.maildir.interfaces import SYSTEM_FLAGS

__all__ = [
    "ATOM",
    "DIGITS",
    "DQUOTE",
    "LBRACE",
    "LPAREN",
    "MAX_MODSEQ",
    "RPAREN",
    "SP",
    "Reader",
    "mailboxName",
    "readTag",
    "show",
]

#: The largest mod-sequence (RFC 7162 7, C{mod-sequence-value}: 63 bits).
MAX_MODSEQ = 2**63 - 1

#: How much client input an error text may quote.
_SHOWN = 40

SP = 0x20
DQUOTE = 0x22
LPAREN = 0x28
RPAREN = 0x29
LBRACE = 0x7B
BACKSLASH = 0x5C

# ATOM-CHAR: CHAR (%x01-7F) except atom-specials: ( ) { SP CTL % * " \ ].
ATOM = re.compile(rb'[^(){ \x00-\x1f\x7f-\xff%*"\\\]]+')
# ASTRING-CHAR: ATOM-CHAR and "]".
_ASTRING = re.compile(rb'[^(){ \x00-\x1f\x7f-\xff%*"\\]+')
# list-char: ATOM-CHAR, list-wildcards and "]" (RFC 3501 9, LIST).
_LIST_CHARS = re.compile(rb'[^(){ \x00-\x1f\x7f-\xff"\\]+')
# tag: ASTRING-CHAR except "+".
_TAG = re.compile(rb'[^(){ \x00-\x1f\x7f-\xff%*"\\+]+')
DIGITS = re.compile(rb"[0-9]+")
# The inside of a quoted string: QUOTED-CHAR runs with \" and \\ escapes
# (8-bit octets too, refused later unless UTF8=ACCEPT is on).
_QUOTED = re.compile(rb'[^"\\\x00\r\n]*(?:\\["\\][^"\\\x00\r\n]*)*')
_ESCAPE = re.compile(rb'\\(["\\])')
# A literal's announcement, which ends its line (RFC 3501 4.3, RFC 7888).
_LITERAL = re.compile(rb"\{([0-9]+)(\+?)\}\Z")
_SEQUENCE_SET = re.compile(
    rb"(?:[0-9]+|\*)(?::(?:[0-9]+|\*))?(?:,(?:[0-9]+|\*)(?::(?:[0-9]+|\*))?)*"
)

# Printable US-ASCII without "&": modified UTF-7 that stands for itself.
_PLAIN_NAME = re.compile(rb"[\x20-\x25\x27-\x7e]*\Z")

_PRINTABLE = bytes(c if 0x20 <= c < 0x7F else 0x3F for c in range(256))

_SYSTEM_FLAGS = {flag.upper().encode("ascii"): flag for flag in SYSTEM_FLAGS}


def show(data: bytes) -> str:
    """
    Client input made safe to quote in a response's text: at most
    C{_SHOWN} octets, anything outside printable US-ASCII as C{?}.

    @param data: the input.
    @return: the text, with C{...} when cut short.
    """
    text = data[:_SHOWN].translate(_PRINTABLE).decode("ascii")
    return text + "..." if len(data) > _SHOWN else text


def readTag(line: bytes) -> str | None:
    """
    The tag at the start of a command line (RFC 3501 9, C{tag}).

    @param line: the command's first line.
    @return: the tag, or L{None} when the line does not start with a tag
        followed by a space or the line's end.
    """
    match = _TAG.match(line)
    if match is None:
        return None
    end = match.end()
    if end < len(line) and line[end] != SP:
        return None
    return match.group().decode("ascii")


def mailboxName(raw: bytes, utf8: bool, what: str, tag: str | None) -> str:
    """
    Decode a mailbox name (RFC 3501 5.1): modified UTF-7 (5.1.3), or
    UTF-8 once UTF8=ACCEPT is enabled (RFC 6855 3); any case of C{INBOX}
    is C{INBOX}.

    @param raw: the name's octets.
    @param utf8: UTF8=ACCEPT is enabled.
    @param what: what the name is, for the error text.
    @param tag: the command's tag, for the error.
    @return: the name.
    @raise ParseError: the name is not valid in its encoding, or holds
        NUL, CR or LF.
    """
    try:
        if utf8:
            name = raw.decode("utf-8")
        elif _PLAIN_NAME.match(raw):
            name = raw.decode("ascii")
        else:
            name = mutf7.decode(raw.decode("ascii"))
    except ValueError:
        encoding = "UTF-8" if utf8 else "modified UTF-7"
        raise ParseError(tag, f"{what.capitalize()} is not valid {encoding}")
    if "\x00" in name or "\r" in name or "\n" in name:
        raise ParseError(tag, f"{what.capitalize()} contains NUL, CR or LF")
    # ASCII case only: "\u0131nbox".upper() is "INBOX" too.
    if len(name) == 5 and name.isascii() and name.upper() == "INBOX":
        return "INBOX"
    return name


class Reader:
    """
    The parser's position in a command: the line being read and the index
    of its next octet, and the literals still to come.

    Line C{i} is followed by literal C{i} (announced at the line's end),
    then line C{i + 1}; reading a literal moves to the next line.

    @ivar tag: the command's tag once read, for L{ParseError}.
    @ivar utf8: RFC 6855 UTF8=ACCEPT is enabled: quoted strings may carry
        UTF-8 and mailbox names are UTF-8.
    @ivar line: the line being read.
    @ivar pos: the index of the next octet in C{line}.
    """

    __slots__ = ("_index", "_lines", "_literals", "line", "pos", "tag", "utf8")

    def __init__(
        self, lines: Sequence[bytes], literals: Sequence[object], utf8: bool
    ) -> None:
        """
        @param lines: the command's lines, without their CRLF.
        @param literals: the literals between them.
        @param utf8: UTF8=ACCEPT is enabled.
        """
        self._lines = lines
        self._literals = literals
        self._index = 0
        self.line = lines[0]
        self.pos = 0
        self.tag: str | None = None
        self.utf8 = utf8

    # Errors

    def fail(self, text: str, code: str | None = None) -> NoReturn:
        """
        @param text: what is wrong.
        @param code: the response code, if any.
        @raise ParseError: always, with the command's tag.
        """
        raise ParseError(self.tag, text, code)

    def rest(self) -> str:
        """
        @return: the rest of the line, made safe by L{show}.
        """
        return show(self.line[self.pos :])

    def missingOr(self, what: str) -> NoReturn:
        """
        Fail at an argument that could not be read.

        @param what: the argument's name.
        @raise ParseError: C{Missing <what>} at the line's end, else
            C{Invalid <what>} and what stands there.
        """
        if self.pos >= len(self.line):
            self.fail(f"Missing {what}")
        self.fail(f"Invalid {what}: {self.rest()}")

    # Single octets

    def peek(self) -> int:
        """
        @return: the next octet, or -1 at the line's end.
        """
        pos = self.pos
        return self.line[pos] if pos < len(self.line) else -1

    def skip(self, octet: int) -> bool:
        """
        Step over an octet if it comes next.

        @param octet: the octet.
        @return: whether it came next.
        """
        pos = self.pos
        if pos < len(self.line) and self.line[pos] == octet:
            self.pos = pos + 1
            return True
        return False

    def expect(self, octet: int, what: str) -> None:
        """
        Step over an octet that must come next.

        @param octet: the octet.
        @param what: how to name it in the error text.
        @raise ParseError: it does not come next.
        """
        if not self.skip(octet):
            if self.pos >= len(self.line):
                self.fail(f"Missing {what}")
            self.fail(f"Expected {what} instead of: {self.rest()}")

    def space(self, what: str) -> None:
        """
        Step over the single space (RFC 3501 9: C{SP}) before an argument.

        @param what: the argument that follows, for the error text.
        @raise ParseError: no space comes next.
        """
        if not self.skip(SP):
            if self.pos >= len(self.line):
                self.fail(f"Missing {what}")
            self.fail(f"Expected a space before {what}: {self.rest()}")

    def delimited(self) -> bool:
        """
        @return: whether a token may end here: a space, C{)} or the line's
            end comes next.
        """
        octet = self.peek()
        return octet == SP or octet == RPAREN or octet == -1

    def expectEnd(self) -> None:
        """
        Check that the whole command was read.

        @raise ParseError: octets or literals are left.
        """
        line, pos = self.line, self.pos
        if pos < len(line):
            if line[pos] == SP and pos + 1 < len(line):
                pos += 1
            self.fail(f"Unexpected characters after command: {show(line[pos:])}")
        if self._index + 1 < len(self._lines):
            self.fail("Unexpected literal after command")

    # Atoms and numbers

    def match(self, pattern: re.Pattern[bytes]) -> bytes | None:
        """
        Take the run a pattern matches at the position.

        @param pattern: the pattern.
        @return: the run, or L{None} when it does not match.
        """
        found = pattern.match(self.line, self.pos)
        if found is None:
            return None
        self.pos = found.end()
        return found.group()

    def atom(self, what: str) -> bytes:
        """
        @param what: the argument's name, for the error text.
        @return: an C{atom} (RFC 3501 9).
        @raise ParseError: none comes next.
        """
        found = self.match(ATOM)
        if found is None:
            self.missingOr(what)
        return found

    def number(self, what: str, limit: int = MAX_NUMBER) -> int:
        """
        @param what: the argument's name, for the error text.
        @param limit: the largest value allowed.
        @return: a C{number} (RFC 3501 9): ASCII digits.
        @raise ParseError: no digits come next, or their value is above
            C{limit}.
        """
        digits = self.match(DIGITS)
        if digits is None:
            self.missingOr(what)
        if len(digits) > 19 or int(digits) > limit:
            self.fail(f"{what.capitalize()} is too large: {show(digits)}")
        return int(digits)

    def sequenceSet(self) -> SequenceSet:
        """
        A C{sequence-set} (RFC 3501 9), kept as ranges.

        @return: the set.
        @raise ParseError: none comes next, it names 0 or a number above
            L{MAX_NUMBER}, or it does not end at a space, C{)} or the
            line's end.
        """
        start = self.pos
        text = self.match(_SEQUENCE_SET)
        if text is None or not self.delimited():
            self.pos = start
            self.missingOr("sequence set")
        ranges = []
        for item in text.split(b","):
            first, colon, last = item.partition(b":")
            low = self._sequenceNumber(first)
            ranges.append((low, self._sequenceNumber(last) if colon else low))
        return SequenceSet(tuple(ranges))

    def _sequenceNumber(self, text: bytes) -> int:
        """
        @param text: a C{seq-number}: digits or C{*}.
        @return: its value, L{STAR} for C{*}.
        @raise ParseError: it is 0 or above L{MAX_NUMBER}.
        """
        if text == b"*":
            return STAR
        if len(text) > 10 or int(text) > MAX_NUMBER:
            self.fail(f"Invalid sequence set: {show(text)} is too large")
        value = int(text)
        if value == 0:
            self.fail("Invalid sequence set: 0 is not a message number")
        return value

    # Strings

    def quoted(self) -> bytes:
        """
        A C{quoted} string (RFC 3501 9), the position at its C{DQUOTE}:
        only C{\\"} and C{\\\\} are escapes; 8-bit octets only as UTF-8
        with UTF8=ACCEPT (RFC 6855 3).

        @return: its octets, unescaped.
        @raise ParseError: it is unterminated or holds NUL, CR, LF, a
            backslash before another character, or 8-bit octets that are
            not allowed.
        """
        line = self.line
        found = _QUOTED.match(line, self.pos + 1)
        assert found is not None  # the pattern matches the empty run
        end = found.end()
        if end >= len(line):
            self.fail("Unterminated quoted string")
        if line[end] != DQUOTE:
            if line[end] == BACKSLASH:
                self.fail("Invalid escape in quoted string")
            self.fail("Invalid character in quoted string")
        self.pos = end + 1
        value = found.group()
        if not value.isascii():
            if not self.utf8:
                self.fail("8-bit characters in quoted string")
            try:
                value.decode("utf-8")
            except UnicodeDecodeError:
                self.fail("Quoted string is not valid UTF-8")
        if BACKSLASH in value:
            value = _ESCAPE.sub(rb"\1", value)
        return value

    def literalNext(self) -> bool:
        """
        @return: whether a literal's announcement ends the last line here,
            its octets still to be read: APPEND's message, whose reading
            the protocol must prepare.
        """
        return (
            self._index == len(self._literals)
            and _LITERAL.match(self.line, self.pos) is not None
        )

    def literal(self, anyObject: bool = False) -> object:
        """
        A C{literal} (RFC 3501 4.3, RFC 7888), the position at its C{{}:
        the literal announced at the line's end, then the next line.

        @param anyObject: whether the literal may be something other than
            L{bytes} (APPEND's message, which the protocol may keep
            elsewhere), taken as it is.
        @return: the literal.
        @raise ParseError: the announcement is malformed or does not end
            the line, or the literal is missing, not bytes when it must
            be, of another size than announced, or holds NUL.
        """
        announced = _LITERAL.match(self.line, self.pos)
        if announced is None:
            self.fail(f"Invalid literal: {self.rest()}")
        index = self._index
        if index >= len(self._literals):
            self.fail("Missing literal data")
        value = self._literals[index]
        if isinstance(value, bytes):
            digits = announced.group(1)
            if len(digits) > 10 or int(digits) != len(value):
                self.fail("Literal size does not match its announcement")
            if not anyObject and b"\x00" in value:
                self.fail("NUL in literal")
        elif not anyObject:
            self.fail("Unexpected literal")
        self._index = index + 1
        self.line = self._lines[index + 1]
        self.pos = 0
        return value

    def string(self, what: str) -> bytes:
        """
        @param what: the argument's name, for the error text.
        @return: a C{string} (RFC 3501 9): quoted or literal.
        @raise ParseError: neither comes next, or it is malformed.
        """
        octet = self.peek()
        if octet == DQUOTE:
            return self.quoted()
        if octet == LBRACE:
            value = self.literal()
            assert isinstance(value, bytes)
            return value
        self.missingOr(what)

    def astring(self, what: str, chars: re.Pattern[bytes] = _ASTRING) -> bytes:
        """
        @param what: the argument's name, for the error text.
        @param chars: the pattern of the unquoted form's characters.
        @return: an C{astring} (RFC 3501 9): unquoted, quoted or literal.
        @raise ParseError: none comes next, or it is malformed.
        """
        octet = self.peek()
        if octet == DQUOTE:
            return self.quoted()
        if octet == LBRACE:
            value = self.literal()
            assert isinstance(value, bytes)
            return value
        found = self.match(chars)
        if found is None:
            self.missingOr(what)
        return found

    def nstring(self, what: str) -> bytes | None:
        """
        @param what: the argument's name, for the error text.
        @return: an C{nstring} (RFC 3501 9): a string, or L{None} for
            C{NIL}.
        @raise ParseError: neither comes next.
        """
        octet = self.peek()
        if octet == DQUOTE or octet == LBRACE:
            return self.string(what)
        start = self.pos
        found = self.match(ATOM)
        if found is None or found.upper() != b"NIL":
            self.pos = start
            self.missingOr(what)
        return None

    def text(self, raw: bytes, what: str) -> str:
        """
        @param raw: a string's octets.
        @param what: what it is, for the error text.
        @return: the octets decoded as UTF-8.
        @raise ParseError: they are not UTF-8.
        """
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            self.fail(f"{what.capitalize()} is not valid UTF-8")

    # Mailboxes and flags

    def mailbox(self, what: str = "mailbox name") -> str:
        """
        A C{mailbox} (RFC 3501 9): an C{astring}, decoded by
        L{mailboxName}.

        @param what: what the name is, for the error text.
        @return: the name.
        @raise ParseError: none comes next, or it is not a valid name.
        """
        return mailboxName(self.astring(what), self.utf8, what, self.tag)

    def listMailbox(self, what: str, wildcards: bool = True) -> str:
        """
        A LIST reference or pattern (RFC 3501 6.3.8, 9: C{list-mailbox}):
        unquoted with wildcards, or a string.

        A name that is not valid modified UTF-7 is kept as written (its
        7-bit octets as characters), as Dovecot does: it then matches only
        a mailbox of that exact name, which L{mailboxName} never gives, so
        none.

        @param what: what it is, for the error text.
        @param wildcards: whether the unquoted form may hold C{%} and C{*}
            (a pattern's may; a reference is a C{mailbox}).
        @return: the decoded reference or pattern.
        @raise ParseError: none comes next, it holds NUL, CR or LF, or
            8-bit octets that are not valid in its encoding.
        """
        raw = self.astring(what, _LIST_CHARS if wildcards else _ASTRING)
        if b"\x00" in raw or b"\r" in raw or b"\n" in raw:
            self.fail(f"{what.capitalize()} contains NUL, CR or LF")
        try:
            return mailboxName(raw, self.utf8, what, self.tag)
        except ParseError:
            if self.utf8 or not raw.isascii():
                raise
            return raw.decode("ascii")

    def flag(self) -> str:
        """
        A C{flag} to store (RFC 3501 9): a system flag, in the case of
        L{SYSTEM_FLAGS} whatever the client's, or a keyword as written.

        @return: the flag.
        @raise ParseError: none comes next, or it is another flag with a
            backslash (C{\\Recent} included: no client may set it).
        """
        if self.skip(BACKSLASH):
            name = self.match(ATOM)
            if name is None:
                self.pos -= 1
                self.missingOr("flag")
            flag = _SYSTEM_FLAGS.get(b"\\" + name.upper())
            if flag is None:
                self.fail(f"Flag \\{show(name)} cannot be stored")
            return flag
        return self.atom("flag").decode("ascii")

    def flagList(self) -> tuple[str, ...]:
        """
        A C{flag-list} (RFC 3501 9), the position at its C{(}.

        @return: the flags, in the order given.
        @raise ParseError: it is malformed.
        """
        self.expect(LPAREN, '"("')
        flags: list[str] = []
        if not self.skip(RPAREN):
            flags.append(self.flag())
            while self.skip(SP):
                flags.append(self.flag())
            self.expect(RPAREN, '")"')
        return tuple(flags)
