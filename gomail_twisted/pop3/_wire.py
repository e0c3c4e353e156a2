# -*- test-case-name: tests.test_pop3_wire -*-
"""
POP3 commands and message data on the wire, without I/O: splitting a
command line, strict message numbers, and the multi-line form of a message
(RETR, TOP).

Line lengths: RFC 1939 3 allows 40 octets per argument; RFC 2449 4 raises a
command line to 255 octets, CRLF included, which is our limit
(L{MAX_COMMAND_LINE}).  AUTH lines and SASL responses carry base64: RFC
5034 4 asks clients to keep an AUTH command with its initial response
within 255 octets, but a long password costs nothing to accept, so they may
reach L{MAX_AUTH_LINE}, the hard bound of the line buffer, as SMTP's AUTH
lines do (RFC 4954 4).

A message number is ASCII digits only: no sign, no space, no leading
garbage, at most L{MAX_NUMBER_DIGITS} of them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gomail_twisted.pop3._reply import BAD_NUMBER, SYNTAX_ERROR

#: RFC 2449 4: a command line, CRLF included.
MAX_COMMAND_LINE = 255
#: The longest AUTH command or SASL response line, CRLF included (as SMTP,
#: RFC 4954 4); also the hard bound of the line buffer.
MAX_AUTH_LINE = 12288
#: Digits in a message number or TOP's line count: more are refused, so no
#: number need be converted that is longer than any maildrop.
MAX_NUMBER_DIGITS = 10

_DIGITS = re.compile(rb"[0-9]{1,%d}\Z" % MAX_NUMBER_DIGITS)
_VERB = re.compile(rb"[A-Za-z]{1,8}\Z")


@dataclass(frozen=True)
class Command:
    """
    One command line, split.

    @ivar verb: the keyword in upper case (RFC 1939 3: case-insensitive),
        or C{""} when the line has none a server could know.
    @ivar arguments: the arguments, as separated by spaces.
    @ivar rest: everything after the keyword and its space, as sent (PASS
        takes it whole: RFC 1939 7 lets a password hold spaces).
    """

    verb: str
    arguments: tuple[bytes, ...]
    rest: bytes


def parseCommand(line: bytes) -> Command:
    """
    Split a command line (without its CRLF) into keyword and arguments.

    @param line: the line.
    @return: the command; a keyword that is not 1 to 8 ASCII letters is
        given as C{""}, which no command is.
    """
    verb, _, rest = line.partition(b" ")
    if not _VERB.match(verb):
        return Command("", (), rest)
    return Command(verb.decode("ascii").upper(), tuple(rest.split()), rest)


def parseNumber(argument: bytes) -> int:
    """
    A message number or line count, strictly.

    @param argument: the argument as sent.
    @return: its value, zero or more.
    @raise POP3Reply: L{BAD_NUMBER} for anything but 1 to
        L{MAX_NUMBER_DIGITS} ASCII digits.
    """
    if not _DIGITS.match(argument):
        raise BAD_NUMBER
    return int(argument)


def expectArguments(command: Command, least: int, most: int) -> tuple[bytes, ...]:
    """
    Check how many arguments a command has.

    @param command: the command.
    @param least: the fewest it takes.
    @param most: the most it takes.
    @return: the arguments.
    @raise POP3Reply: L{SYNTAX_ERROR} naming the command otherwise.
    """
    count = len(command.arguments)
    if least <= count <= most:
        return command.arguments
    if most == 0:
        raise SYNTAX_ERROR.withText(f"{command.verb} takes no argument")
    raise SYNTAX_ERROR.withText(f"Wrong number of arguments to {command.verb}")


def toCRLF(message: bytes) -> bytes:
    """
    A message with every line ending in CRLF, as RFC 1939 3 sends it.
    What already is (a store's RFC 5322 form) is returned as it is, after
    two counts: nothing is copied.

    @param message: the message.
    @return: the same message with CRLF line ends.
    """
    lf = message.count(b"\n")
    if lf == message.count(b"\r\n"):
        return message
    return re.sub(rb"\r?\n", b"\r\n", message)


def stuffedParts(message: bytes) -> tuple[bytes, bytes, bytes]:
    """
    The body of a RETR or TOP response (RFC 1939 3) in three parts, so that
    a large message is copied once, by one C{replace} over all of it (never
    per chunk, so a dot at a chunk boundary is stuffed too).

    @param message: the message, lines ending in CRLF (as
        L{IMaildrop.retrieve<gomail_twisted.pop3.IMaildrop.retrieve>} gives
        it; see L{toCRLF} for others).
    @return: C{(head, body, tail)}: C{head} is C{b"."} when the first line
        starts with a dot (its stuffing) and C{b""} otherwise; C{body} is
        the message with a dot added to every later line that starts with
        one; C{tail} is the terminating C{.} line, after a CRLF when the
        message lacks its last one.
    """
    # After any LF, not only CRLF: a line that a careless backend ended
    # with a bare LF can never pass for the terminator either.
    body = message.replace(b"\n.", b"\n..")
    head = b"." if body[:1] == b"." else b""
    if body and not body.endswith(b"\r\n"):
        return head, body, b"\r\n.\r\n"
    return head, body, b".\r\n"


def stuffMessage(message: bytes) -> bytes:
    """
    The body of a RETR or TOP response (RFC 1939 3) in one piece: see
    L{stuffedParts}.

    @param message: the message, lines ending in CRLF.
    @return: what follows the C{+OK} line, terminator included.
    """
    head, body, tail = stuffedParts(message)
    return head + body + tail


def topOfMessage(message: bytes, lines: int) -> bytes:
    """
    What TOP sends of a message (RFC 1939 7): the header block, the empty
    line after it, and the first C{lines} lines of the body.

    @param message: the message, lines ending in CRLF.
    @param lines: how many body lines; more than the body has is all of it.
    @return: that part of the message, lines ending in CRLF.
    """
    if message.startswith(b"\r\n"):
        start = 2
    else:
        end = message.find(b"\r\n\r\n")
        if end < 0:
            # Only headers: there is no body to take lines from.
            return message
        start = end + 4
    if lines >= message.count(b"\r\n", start) + 1:
        return message
    position = start
    for _ in range(lines):
        position = message.find(b"\r\n", position) + 2
    return message[:position]
