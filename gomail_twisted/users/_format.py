# -*- test-case-name: tests.test_users -*-
"""
One line of the users file: parsed into an entry, or written from one.

No I/O and no cross-line rules (those are in L{_snapshot}): a line is a
comment, a blank, a C{domain}, C{user} or C{alias} entry, or malformed, and
a malformed line's reason never quotes the line, since it may hold a
password hash.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import argon2

from gomail_twisted.address import (
    checkDomain,
    normalizeAddress,
    normalizeDomain,
    parseMailbox,
)

#: The flag that keeps a user from logging in.
DISABLED = "disabled"

# Every bcrypt variant that libraries still write: $2a$, $2b$, $2y$; a cost
# of 4 to 31; 22 characters of salt and 31 of hash in bcrypt's base64.
_BCRYPT = re.compile(r"\$2[aby]\$(0[4-9]|[12][0-9]|3[01])\$[./A-Za-z0-9]{53}\Z")
_KEYWORD = re.compile(r"[a-z][a-z0-9_-]*\Z")
# Whitespace separates the fields, so a field can hold none; a leading "#"
# would start a comment; control characters have no place in a text file
# an operator edits.
_UNWRITABLE = re.compile(r"[\x00-\x20\x7f]|\A#")


class MalformedLine(ValueError):
    """
    A line of the users file that means nothing, or nothing valid.  The
    message says why and never quotes the line.
    """


@dataclass(frozen=True)
class DomainEntry:
    """
    C{domain DOMAIN}: mail for the domain is ours.

    @ivar domain: the domain, normalized.
    """

    domain: str


@dataclass(frozen=True)
class UserEntry:
    """
    C{user ADDRESS HASH [disabled]}: a mailbox that can log in.

    @ivar address: the address, normalized.
    @ivar passwordHash: the argon2 or bcrypt hash; never shown by C{repr}.
    @ivar enabled: L{False} when the line says C{disabled}.
    """

    address: str
    passwordHash: str = field(repr=False)
    enabled: bool = True


@dataclass(frozen=True)
class AliasEntry:
    """
    C{alias ALIAS TARGET}: mail for C{ALIAS} goes to C{TARGET}.

    @ivar alias: an address, normalized, or C{@domain} for every address
        of the domain.
    @ivar target: a user's or another alias's address, normalized.
    """

    alias: str
    target: str

    @property
    def isDomainAlias(self) -> bool:
        """
        Whether the alias is a whole domain (C{@domain}).
        """
        return self.alias.startswith("@")

    @property
    def domain(self) -> str:
        """
        The domain the alias is in.
        """
        return self.alias.rpartition("@")[2]


Entry = DomainEntry | UserEntry | AliasEntry


@dataclass(frozen=True)
class ParsedLine:
    """
    A line of the file as read, and what it means.

    @ivar number: its line number, from 1.
    @ivar text: the line as it was, without its line end, so that a rewrite
        keeps what it does not change byte for byte.
    @ivar entry: its entry; L{None} for a comment, a blank or a malformed
        line.
    @ivar problem: why it is malformed, or L{None}.
    @ivar comment: a trailing comment (from C{#} on), kept when the entry is
        rewritten.
    @ivar name: for a malformed line, the address, C{@domain} or domain it
        names when that much can still be read (see L{namedBy}); else
        L{None}.
    """

    number: int
    text: str = field(repr=False)
    entry: Entry | None
    problem: str | None = None
    comment: str = ""
    name: str | None = None


def checkWritable(address: str) -> None:
    """
    Refuse a normalized address that a whitespace-separated line cannot
    hold (a quoted local part with spaces, say).

    @param address: a normalized address.
    @raise MalformedLine: when it cannot be written.
    """
    if _UNWRITABLE.search(address):
        raise MalformedLine(
            "the address has spaces, control characters or a leading #, "
            "which the users file cannot hold"
        )


def _shown(text: str) -> str:
    """
    A value for a message: quoted, unless it may be a password hash (a
    field put in the wrong place), which is never shown.
    """
    if text.startswith("$") or len(text) > 300:
        return "the value"
    return repr(text)


def parseAddress(text: str) -> str:
    """
    Check and normalize an address given in the file or on the command line.

    @param text: C{local@domain}.
    @return: its normal form (L{gomail_twisted.address.normalizeAddress}).
    @raise MalformedLine: when it is not a mailbox (RFC 5321 4.1.2).
    """
    try:
        parseMailbox(text)
    except ValueError as e:
        raise MalformedLine(f"{_shown(text)} is not a mail address ({e})")
    address = normalizeAddress(text)
    checkWritable(address)
    return address


def parseDomain(text: str) -> str:
    """
    Check and normalize a domain.

    @param text: a domain or address literal (RFC 5321 4.1.2).
    @return: its normal form (L{gomail_twisted.address.normalizeDomain}).
    @raise MalformedLine: when it is not one.
    """
    domain = normalizeDomain(text)
    if not checkDomain(domain) or _UNWRITABLE.search(domain):
        raise MalformedLine(f"{_shown(text)} is not a domain")
    return domain


def parseAlias(text: str) -> str:
    """
    Check and normalize the left side of an alias.

    @param text: an address, or C{@domain} for a whole domain.
    @return: its normal form.
    @raise MalformedLine: when it is neither.
    """
    if text.startswith("@"):
        return "@" + parseDomain(text[1:])
    return parseAddress(text)


def checkPasswordHash(passwordHash: str) -> None:
    """
    Whether a hash is one we can check a password against: argon2 (argon2id,
    argon2i or argon2d, in the PHC string format) or bcrypt (C{$2a$},
    C{$2b$}, C{$2y$}).

    @param passwordHash: the hash.
    @raise MalformedLine: when it is neither; the message does not quote it.
    """
    if _BCRYPT.match(passwordHash):
        return
    if passwordHash.startswith("$argon2"):
        try:
            argon2.extract_parameters(passwordHash)
        except argon2.exceptions.InvalidHashError:
            raise MalformedLine("the argon2 password hash is malformed")
        return
    raise MalformedLine("the password hash is neither argon2 nor bcrypt")


def _splitComment(line: str) -> tuple[str, str]:
    """
    Split a line into its fields' text and a trailing comment, which starts
    with a C{#} at the start of a field.
    """
    match = re.search(r"(?:\A|\s)#", line)
    if match is None:
        return line, ""
    start = match.start() if line[match.start()] == "#" else match.start() + 1
    return line[:start], line[start:]


def _parseFields(fields: list[str]) -> Entry:
    keyword = fields[0].lower()
    args = fields[1:]
    if keyword == "domain":
        if len(args) != 1:
            raise MalformedLine("'domain' takes one domain")
        return DomainEntry(parseDomain(args[0]))
    if keyword == "user":
        if len(args) < 2:
            raise MalformedLine("'user' takes an address and a password hash")
        address = parseAddress(args[0])
        checkPasswordHash(args[1])
        flags = [flag.lower() for flag in args[2:]]
        for flag in flags:
            if flag != DISABLED:
                # A flag we do not know might restrict the user; ignoring it
                # could let in someone the operator meant to keep out.
                raise MalformedLine(
                    f"unknown flag {flag!r}" if _KEYWORD.match(flag) else "unknown flag"
                )
        return UserEntry(address, args[1], DISABLED not in flags)
    if keyword == "alias":
        if len(args) != 2:
            raise MalformedLine("'alias' takes an alias and a target address")
        return AliasEntry(parseAlias(args[0]), parseAddress(args[1]))
    if _KEYWORD.match(keyword):
        raise MalformedLine(f"unknown keyword {keyword!r}")
    raise MalformedLine("a line must start with domain, user or alias")


def namedBy(fields: list[str]) -> str | None:
    """
    What a malformed line names, when that much of it can still be read:
    the field after a keyword (or, when the first field is no keyword, the
    first field) if it is an address, C{@domain} or a domain.  A field that
    is neither (a password hash in the wrong place, say) names nothing.

    @param fields: the line's fields, without its comment; not empty.
    @return: the name, normalized, or L{None}.
    """
    keyword = fields[0].lower()
    if _KEYWORD.match(keyword):
        if len(fields) < 2:
            return None
        candidate = fields[1]
    else:
        candidate = fields[0]
    if any("\udc80" <= c <= "\udcff" for c in candidate):
        return None
    try:
        if "@" in candidate:
            return parseAlias(candidate)
        if keyword in ("user", "alias"):
            return None
        return parseDomain(candidate)
    except (MalformedLine, ValueError):
        return None


def parseLine(number: int, text: str) -> ParsedLine:
    """
    Parse one line of the users file.

    @param number: its line number, from 1.
    @param text: the line, without its C{LF} (a C{CR} before it is kept in
        C{text} and ignored).
    @return: the parsed line; a malformed one has a C{problem}.
    """
    body, comment = _splitComment(text.rstrip("\r"))
    fields = body.split()
    if any("\udc80" <= c <= "\udcff" for c in text):
        name = namedBy(fields) if fields else None
        return ParsedLine(number, text, None, "the line is not UTF-8", comment, name)
    if not fields:
        return ParsedLine(number, text, None, None, comment)
    try:
        entry = _parseFields(fields)
    except MalformedLine as e:
        return ParsedLine(number, text, None, str(e), comment, namedBy(fields))
    return ParsedLine(number, text, entry, None, comment)


def parseText(text: str) -> list[ParsedLine]:
    """
    Parse a whole users file.

    @param text: its content, decoded from UTF-8 with C{surrogateescape} so
        that bytes that are not UTF-8 survive a rewrite.
    @return: one parsed line for each line.
    """
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [parseLine(i, line) for i, line in enumerate(lines, 1)]


def formatEntry(entry: Entry, comment: str = "") -> str:
    """
    Write an entry as a line.

    @param entry: the entry.
    @param comment: a trailing comment to keep, from its C{#}.
    @return: the line, without a line end.
    """
    if isinstance(entry, DomainEntry):
        line = f"domain {entry.domain}"
    elif isinstance(entry, UserEntry):
        line = f"user {entry.address} {entry.passwordHash}"
        if not entry.enabled:
            line += f" {DISABLED}"
    else:
        line = f"alias {entry.alias} {entry.target}"
    return f"{line} {comment}" if comment else line
