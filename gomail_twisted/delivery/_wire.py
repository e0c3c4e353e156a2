# -*- test-case-name: tests.test_delivery_client -*-
"""
The SMTP client on the wire, without I/O: assemble replies from lines
(RFC 5321 4.2), read the EHLO keywords (RFC 5321 4.1.1.1), check and format
envelope addresses (RFC 5321 4.1.2, RFC 6531 3.3), dot-stuff a message
(RFC 5321 4.5.2), and the timeouts of RFC 5321 4.5.3.2.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from gomail_twisted.address import parseMailbox
from gomail_twisted.smtpreply import SMTPReply

#: RFC 5321 4.5.3.1.5: the longest reply line, CRLF included.
MAX_REPLY_LINE = 512

#: An enhanced status code (RFC 3463 2) at the start of a reply's text:
#: ASCII digits only, so nothing else passes for one.
_ENHANCED = re.compile(r"([245])\.([0-9]{1,3})\.([0-9]{1,3})(?: |\Z)")

#: How many distinct one-line replies a L{ReplyAssembler} remembers.
_KNOWN_REPLIES = 32

#: The first digit of a reply code, as an octet (RFC 5321 4.2).
_FIRST_DIGITS = frozenset(b"2345")


class SMTPProtocolError(Exception):
    """
    The server broke the protocol: a malformed or overlong reply line, a
    multi-line reply that does not end, a reply nobody asked for.
    """


@dataclass(frozen=True)
class SMTPTimeouts:
    """
    How long the client waits for each reply, in seconds; the defaults are
    the minimums of RFC 5321 4.5.3.2.

    @ivar connect: to establish the TCP connection.
    @ivar greeting: the 220 greeting (4.5.3.2.1, 5 minutes).
    @ivar command: EHLO, HELO, STARTTLS, AUTH, RSET and QUIT.
    @ivar tlsHandshake: the TLS handshake.
    @ivar mail: the reply to MAIL (4.5.3.2.2, 5 minutes).
    @ivar rcpt: the reply to each RCPT (4.5.3.2.3, 5 minutes).
    @ivar dataInit: the 354 reply to DATA (4.5.3.2.4, 2 minutes).
    @ivar dataBlock: each block of message data to be sent (4.5.3.2.5,
        3 minutes).
    @ivar dataEnd: the reply to the final dot (4.5.3.2.6, 10 minutes).
    """

    connect: float = 60.0
    greeting: float = 300.0
    command: float = 300.0
    tlsHandshake: float = 60.0
    mail: float = 300.0
    rcpt: float = 300.0
    dataInit: float = 120.0
    dataBlock: float = 180.0
    dataEnd: float = 600.0

    @classmethod
    def uniform(cls, seconds: float) -> SMTPTimeouts:
        """
        @param seconds: one timeout for every step, for tests and impatient
            callers.
        @return: the timeouts.
        """
        return cls(*([seconds] * 9))


def _splitEnhanced(code: int, lines: list[str]) -> tuple[str | None, list[str]]:
    """
    Take the enhanced status code (RFC 2034 4) off the lines of a reply.

    @param code: the reply code; an enhanced code of another class is text.
    @param lines: the text lines.
    @return: the enhanced code, or L{None}, and the lines without it.
    """
    first = lines[0]
    if first[:1] != str(code // 100):
        return None, lines
    match = _ENHANCED.match(first)
    if match is None:
        return None, lines
    enhanced = ".".join(match.groups())
    prefix = match.group(0)
    size = len(prefix)
    if len(lines) == 1:
        return enhanced, [first[size:]]
    out = [line[size:] if line.startswith(prefix) else line for line in lines]
    return enhanced, out


class ReplyAssembler:
    """
    Collect reply lines into L{SMTPReply}s (RFC 5321 4.2.1), within bounds.

    Whatever the lines hold, L{feed} either returns or raises
    L{SMTPProtocolError}; after an error the assembler starts afresh.

    @ivar maxLines: the most lines one reply may have.
    """

    def __init__(self, maxLines: int = 100) -> None:
        """
        @param maxLines: past this many lines a reply is a protocol error,
            so an endless multi-line reply cannot fill memory.
        """
        self.maxLines = maxLines
        self._code = 0
        self._lines: list[str] = []
        self._known: dict[bytes, tuple[int, str | None, str]] = {}

    def _error(self, message: str) -> SMTPProtocolError:
        self._code = 0
        self._lines = []
        return SMTPProtocolError(message)

    def feed(self, line: bytes) -> SMTPReply | None:
        """
        Take one line, without its CRLF.

        @param line: the line.
        @return: the reply, once its last line is in; else L{None}.
        @raise SMTPProtocolError: the line is not a reply line (three digits,
            the first 2 to 5, then a space, a hyphen or nothing), holds a
            bare CR or LF, is too long, changes the code in mid-reply, or
            one reply has too many lines.
        """
        known = self._known.get(line)
        if known is not None and not self._lines:
            return SMTPReply(*known)
        if len(line) + 2 > MAX_REPLY_LINE:
            raise self._error(
                f"reply line of {len(line) + 2} octets, over {MAX_REPLY_LINE}"
            )
        digits = line[:3]
        separator = line[3:4]
        if (
            len(digits) != 3
            or not digits.isdigit()
            or digits[0] not in _FIRST_DIGITS
            or separator not in (b" ", b"-", b"")
        ):
            raise self._error(f"malformed reply line {line[:80]!r}")
        if b"\r" in line or b"\n" in line:
            raise self._error(f"bare CR or LF in reply line {line[:80]!r}")
        code = int(digits)
        if self._code and code != self._code:
            raise self._error("reply code changed within a multi-line reply")
        text = line[4:].decode("utf-8", "replace")
        if separator == b"-":
            self._code = code
            self._lines.append(text)
            if len(self._lines) > self.maxLines:
                raise self._error(f"multi-line reply of over {self.maxLines} lines")
            return None
        if self._lines:
            if len(self._lines) >= self.maxLines:
                raise self._error(f"multi-line reply of over {self.maxLines} lines")
            lines = self._lines
            lines.append(text)
            self._lines = []
            self._code = 0
            enhanced, lines = _splitEnhanced(code, lines)
            return SMTPReply(code, enhanced, lines)
        # A one-line reply, the common case: the enhanced code is looked
        # for only when the text starts with the reply's class digit.
        parts: tuple[int, str | None, str] = (code, None, text)
        if line[4:5] == digits[:1]:
            match = _ENHANCED.match(text)
            if match is not None:
                parts = (code, ".".join(match.groups()), text[match.end() :])
        # Servers repeat their replies ("250 2.1.5 Ok" to every RCPT): keep
        # the parts of a few, so each is parsed once.
        if len(self._known) >= _KNOWN_REPLIES:
            self._known.clear()
        self._known[line] = parts
        return SMTPReply(*parts)


@dataclass(frozen=True)
class Extensions:
    """
    The service extensions a server listed in its EHLO reply
    (RFC 5321 4.1.1.1), keywords upper-cased.

    @ivar keywords: each keyword and its parameters.
    """

    keywords: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: MappingProxyType({})
    )

    @classmethod
    def fromReply(cls, reply: SMTPReply) -> Extensions:
        """
        @param reply: the 250 reply to EHLO; its first line is the greeting.
        @return: the extensions.
        """
        keywords: dict[str, tuple[str, ...]] = {}
        for line in reply.lines[1:]:
            words = line.split()
            if words:
                keywords[words[0].upper()] = tuple(words[1:])
        return cls(MappingProxyType(keywords))

    def __contains__(self, keyword: object) -> bool:
        return isinstance(keyword, str) and keyword.upper() in self.keywords

    @property
    def maxSize(self) -> int | None:
        """
        The SIZE limit (RFC 1870 4), or L{None} when none is declared.
        """
        params = self.keywords.get("SIZE")
        if not params:
            return None
        try:
            size = int(params[0])
        except ValueError:
            return None
        return size if size > 0 else None

    @property
    def authMechanisms(self) -> frozenset[str]:
        """
        The SASL mechanisms offered with AUTH (RFC 4954 3).
        """
        return frozenset(m.upper() for m in self.keywords.get("AUTH", ()))


def checkAddress(address: str, allowNull: bool = False) -> None:
    """
    Check an envelope address before anything is sent (RFC 5321 4.1.2).

    @param address: a mailbox, C{local@domain}.
    @param allowNull: whether the null path C{""} is allowed (a sender).
    @raise ValueError: the address has CR, LF or angle brackets, or is not a
        mailbox.
    """
    if any(c in address for c in "\r\n\0<>"):
        raise ValueError(f"address {address!r} contains CR, LF, NUL or <>")
    if address == "" and allowNull:
        return
    parseMailbox(address)


def wireAddress(address: str) -> str:
    """
    The address as it goes on the wire: a non-ASCII domain with an ASCII
    local part becomes its A-label form (RFC 5890), so no SMTPUTF8 is
    needed for it.

    @param address: a checked mailbox, or C{""}.
    @return: the address to send.
    """
    if address.isascii():
        return address
    local, _, domain = address.rpartition("@")
    if local.isascii() and not domain.startswith("["):
        try:
            return f"{local}@{domain.encode('idna').decode('ascii')}"
        except UnicodeError:
            return address
    return address


def needsSMTPUTF8(address: str) -> bool:
    """
    @param address: an address as returned by L{wireAddress}.
    @return: whether sending it needs SMTPUTF8 (RFC 6531 3.2).
    """
    return not address.isascii()


def dotStuff(message: bytes) -> bytes:
    """
    Prepare a message for DATA in one pass over the whole buffer
    (RFC 5321 4.5.2): line ends made CRLF (a bare CR or LF becomes CRLF,
    so no line end is ever doubled), a leading dot on any line doubled, a
    final CRLF added when missing, and the end-of-data C{.CRLF} appended.

    @param message: the message.
    @return: the bytes to send after the 354 reply.
    """
    # Every CR and LF is part of a CRLF exactly when there are twice as
    # many of them as CRLFs: two passes in C, and no copy when all is well.
    crlf = message.count(b"\r\n")
    if len(message) - len(message.translate(None, b"\r\n")) != 2 * crlf:
        message = message.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        message = message.replace(b"\n", b"\r\n")
    if message and not message.endswith(b"\r\n"):
        message += b"\r\n"
    if message.startswith(b"."):
        message = b"." + message
    if b"\r\n." in message:
        # One pass where replace() takes two (it counts, then copies).
        message = b"\r\n..".join(message.split(b"\r\n."))
    return message + b".\r\n"


def isPermanent(reply: SMTPReply) -> bool:
    """
    @param reply: a negative reply.
    @return: whether it is a permanent refusal (5yz, RFC 5321 4.2.1).
    """
    return reply.code >= 500
