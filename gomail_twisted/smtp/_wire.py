# -*- test-case-name: tests.test_smtp_wire -*-
"""
SMTP on the wire, without I/O: split a command line, parse the paths and
parameters of MAIL and RCPT (RFC 5321 4.1.2, RFC 6531 3.3), build the
C{Received:} trace header (RFC 5321 4.4).

Every parser here raises L{SMTPReply} with the exact reply for the peer, so
the protocol passes the refusal on unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from gomail_twisted.address import (
    MAX_DOMAIN,
    MAX_LOCAL_PART,
    checkDomain,
    parseMailbox,
)
from gomail_twisted.smtp._reply import (
    BAD_PARAMETER,
    BAD_RECIPIENT_SYNTAX,
    BAD_SENDER_SYNTAX,
    NEED_SMTPUTF8,
    SYNTAX_ERROR,
    UNKNOWN_PARAMETER,
    SMTPReply,
)

#: RFC 5321 4.5.3.1.3: the longest path, angle brackets included.
MAX_PATH = 256

_UTF8 = "\u0080-\U0010ffff"
_KEYWORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]*\Z")
_VALUE = re.compile(rf"[\x21-\x3c\x3e-\x7e{_UTF8}]+\Z")
_SOURCE_ROUTE = re.compile(r"(?:@[^,:]+)(?:,@[^,:]+)*:")
# What may stand between the angle brackets: anything but brackets and quotes,
# and whole quoted strings, which may hold brackets (RFC 5321 4.1.2 qtextSMTP).
_PATH_TEXT = re.compile(r'(?:[^<>"]+|"(?:[^"\\]|\\.)*")*')
_SIZE = re.compile(r"[0-9]{1,20}\Z")


@dataclass(frozen=True)
class Command:
    """
    One command line, split.

    @ivar verb: the command verb in upper case, such as C{"MAIL"}.
    @ivar argument: what follows the verb and one space, undecoded.
    """

    verb: str
    argument: bytes


#: The verbs of RFC 5321 and its extensions, as clients spell them (upper
#: or lower case), to their upper-case names: most lines are split without
#: decoding.
_VERBS = {
    spelling: verb
    for verb in (
        "HELO EHLO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP STARTTLS AUTH"
        " EXPN TURN ETRN BDAT SEND SOML SAML"
    ).split()
    for spelling in (verb.encode(), verb.lower().encode())
}


def splitCommand(line: bytes) -> tuple[str, bytes]:
    """
    Split a command line (without its CRLF) into verb and argument, as
    L{parseCommand} does, without making a L{Command}.

    @param line: the line.
    @return: the upper-case verb and the argument.
    """
    verb, _, argument = line.partition(b" ")
    name = _VERBS.get(verb)
    if name is None:
        # A verb is letters only; anything else (binary junk, a lone space)
        # is still a command the table will not know.
        name = verb.decode("ascii", "replace").upper()
    return name, argument


def parseCommand(line: bytes) -> Command:
    """
    Split a command line (without its CRLF) into verb and argument.

    @param line: the line.
    @return: the command; an unknown verb is still returned, for the state
        table to refuse.
    """
    return Command(*splitCommand(line))


@dataclass(frozen=True)
class PathArgument:
    """
    The argument of MAIL or RCPT, parsed.

    @ivar address: the mailbox, or C{""} for the null reverse-path C{<>}.
    @ivar params: the ESMTP parameters, keywords upper-cased, in order;
        a keyword without a value maps to L{None}.
    """

    address: str
    params: Mapping[str, str | None]


_LABEL_ASCII = rb"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
#: C{FROM:<a.b@c.d>} with a dot-atom of letters, digits and C{_+-} and an
#: ASCII domain of two or more labels, then nothing or a space.
_SIMPLE_PATH = re.compile(
    rb"([A-Za-z]{2,4}): ?<(([A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*)@"
    + _LABEL_ASCII
    + rb"(?:\."
    + _LABEL_ASCII
    + rb")+)>(?= |\Z)"
)
_NO_PARAMETERS: Mapping[str, str | None] = MappingProxyType({})
_KEYWORDS = {"FROM": b"FROM", "TO": b"TO"}


def parsePathArgument(argument: bytes, keyword: str, isSender: bool) -> PathArgument:
    """
    Parse C{FROM:<path> params} or C{TO:<path> params}.

    One space after the colon is tolerated, as most servers do; the source
    route of RFC 5321 4.1.2 is accepted and dropped (its appendix C).

    @param argument: what follows C{MAIL } or C{RCPT }.
    @param keyword: C{"FROM"} or C{"TO"}.
    @param isSender: whether the null path C{<>} is allowed.
    @return: the parsed path and parameters; non-ASCII mailboxes are
        returned as they are, for the caller to check against SMTPUTF8.
    @raise SMTPReply: 501 for a syntax error or a malformed parameter.
    """
    simple = _SIMPLE_PATH.match(argument)
    if simple is not None:
        word, path, local = simple.groups()
        if (
            word.upper() == (_KEYWORDS.get(keyword) or keyword.encode())
            and len(local) <= MAX_LOCAL_PART
            and len(path) + 2 <= MAX_PATH
        ):
            # The common case, plain ASCII <local@domain>, which the checks
            # below would accept unchanged.
            end = simple.end()
            if end == len(argument):
                return PathArgument(path.decode("ascii"), _NO_PARAMETERS)
            params = argument[end:]
            if params.isascii():
                return PathArgument(
                    path.decode("ascii"), parseParameters(params.decode())
                )
    return _parsePathArgumentInFull(argument, keyword, isSender)


def _parsePathArgumentInFull(
    argument: bytes, keyword: str, isSender: bool
) -> PathArgument:
    bad = BAD_SENDER_SYNTAX if isSender else BAD_RECIPIENT_SYNTAX
    try:
        text = argument.decode("utf-8")
    except UnicodeDecodeError:
        raise bad.withText("Address is not valid UTF-8")
    prefix = keyword + ":"
    if text[: len(prefix)].upper() != prefix:
        raise SYNTAX_ERROR.withText(
            f"Syntax: {'MAIL FROM' if isSender else 'RCPT TO'}:<address>"
        )
    rest = text[len(prefix) :]
    if rest.startswith(" "):
        rest = rest[1:]
    if not rest.startswith("<"):
        raise bad.withText("Address must be in angle brackets")
    match = _PATH_TEXT.match(rest, 1)
    assert match is not None
    close = match.end()
    if close == len(rest):
        raise bad.withText("Missing closing angle bracket")
    if rest[close] == "<":
        raise bad.withText("Unexpected angle bracket in address")
    if rest[close] == '"':
        raise bad.withText("Unterminated quoted string in address")
    path = rest[1:close]
    tail = rest[close + 1 :]
    if len(path.encode("utf-8")) + 2 > MAX_PATH:
        raise bad.withText("Path too long")
    if tail and not tail.startswith(" "):
        raise bad.withText("Unexpected text after address")
    route = _SOURCE_ROUTE.match(path)
    if route is not None:
        domains = path[: route.end() - 1].split(",")
        if not all(checkDomain(d[1:]) for d in domains):
            raise bad.withText("Invalid source route")
        path = path[route.end() :]
        if path == "":
            raise bad.withText("Source route without a mailbox")
    if path == "":
        if not isSender:
            raise bad.withText("Recipient address required")
    elif not isSender and path.lower() == "postmaster":
        # RFC 5321 4.5.1: a bare Postmaster must always be accepted.
        pass
    else:
        try:
            parseMailbox(path)
        except ValueError as e:
            raise bad.withText(f"Invalid address: {e}")
    return PathArgument(path, parseParameters(tail))


def parseParameters(text: str) -> Mapping[str, str | None]:
    """
    Parse ESMTP parameters (RFC 5321 4.1.2 C{Mail-parameters}).

    @param text: the parameters, each preceded by a space.
    @return: keyword (upper case) to value, in order.
    @raise SMTPReply: 501 5.5.4 on a malformed or repeated parameter.
    """
    params: dict[str, str | None] = {}
    for item in text.split(" "):
        if not item:
            continue
        key, eq, value = item.partition("=")
        if not _KEYWORD.match(key) or (eq and not _VALUE.match(value)):
            raise BAD_PARAMETER.withText(f"Malformed parameter {item[:40]!r}")
        key = key.upper()
        if key in params:
            raise BAD_PARAMETER.withText(f"Duplicate parameter {key}")
        params[key] = value if eq else None
    return MappingProxyType(params)


@dataclass(frozen=True)
class MailParameters:
    """
    The checked parameters of MAIL FROM.

    @ivar size: the declared size (RFC 1870), or L{None}.
    @ivar body: C{"7BIT"} or C{"8BITMIME"} (RFC 6152).
    @ivar smtputf8: whether SMTPUTF8 was given (RFC 6531).
    @ivar auth: the AUTH= mailbox (RFC 4954 5), or L{None}.
    """

    size: int | None
    body: str
    smtputf8: bool
    auth: str | None


_NO_MAIL_PARAMETERS = MailParameters(None, "7BIT", False, None)


def checkMailParameters(
    params: Mapping[str, str | None], extended: bool
) -> MailParameters:
    """
    Check the parameters of MAIL FROM against the extensions we offer.

    @param params: from L{parsePathArgument}.
    @param extended: whether the client said EHLO; after HELO no parameter
        is allowed.
    @return: the checked parameters.
    @raise SMTPReply: 555 5.5.4 for an unknown parameter, 501 5.5.4 for a
        bad value.
    """
    if not params:
        return _NO_MAIL_PARAMETERS
    size: int | None = None
    body = "7BIT"
    smtputf8 = False
    auth: str | None = None
    for key, value in params.items():
        if not extended:
            raise UNKNOWN_PARAMETER.withText("Parameters need EHLO")
        if key == "SIZE":
            # Not str.isdigit: it takes digits int() cannot read, such as "²".
            if value is None or not _SIZE.match(value):
                raise BAD_PARAMETER.withText("SIZE needs a number")
            size = int(value)
        elif key == "BODY":
            if value is None or value.upper() not in ("7BIT", "8BITMIME"):
                raise BAD_PARAMETER.withText("BODY must be 7BIT or 8BITMIME")
            body = value.upper()
        elif key == "SMTPUTF8":
            if value is not None:
                raise BAD_PARAMETER.withText("SMTPUTF8 takes no value")
            smtputf8 = True
        elif key == "AUTH":
            if value is None:
                raise BAD_PARAMETER.withText("AUTH needs a value")
            auth = value
        else:
            raise UNKNOWN_PARAMETER.withText(f"Unsupported parameter {key}")
    return MailParameters(size, body, smtputf8, auth)


def checkRcptParameters(params: Mapping[str, str | None], extended: bool) -> None:
    """
    Check the parameters of RCPT TO: we offer none.

    @param params: from L{parsePathArgument}.
    @param extended: whether the client said EHLO.
    @raise SMTPReply: 555 5.5.4 for any parameter.
    """
    for key in params:
        raise UNKNOWN_PARAMETER.withText(f"Unsupported parameter {key}")


def requireASCII(address: str, smtputf8: bool) -> None:
    """
    Refuse a non-ASCII address outside an SMTPUTF8 transaction (RFC 6531 3.5).

    @param address: the address.
    @param smtputf8: whether the transaction was opened with SMTPUTF8.
    @raise SMTPReply: 553 5.6.7.
    """
    if not smtputf8 and not address.isascii():
        raise NEED_SMTPUTF8


#: Characters that would change the meaning of a trace header's clause.
_HELO_FORBIDDEN = frozenset(';()<>"\\')


def checkHeloName(argument: bytes) -> str:
    """
    Check the argument of HELO or EHLO: a domain or an address literal
    (RFC 5321 4.1.1.1).  Real clients send odd names, so anything printable
    without spaces is taken; what is refused is what could corrupt the
    C{Received:} header it goes into.  A non-ASCII name (a U-label domain)
    is kept; L{receivedHeader} writes it in its ASCII form.

    @param argument: the argument.
    @return: the name.
    @raise SMTPReply: 501 when it is empty, not printable, or holds one of
        C{;()<>"\\}.
    """
    try:
        name = argument.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise SYNTAX_ERROR.withText("HELO name is not valid UTF-8")
    if (
        not name
        or " " in name
        or not name.isprintable()
        or len(name) > MAX_DOMAIN
        or not _HELO_FORBIDDEN.isdisjoint(name)
    ):
        raise SYNTAX_ERROR.withText("Syntax: EHLO domain")
    return name


def _asciiName(name: str) -> str:
    """
    A HELO name as it may stand in a header of a message without SMTPUTF8.
    """
    if name.isascii():
        return name
    try:
        return name.encode("idna").decode("ascii")
    except UnicodeError:
        return name.encode("ascii", "backslashreplace").decode("ascii")


def receivedProtocol(extended: bool, tls: bool, authenticated: bool, utf8: bool) -> str:
    """
    The C{with} protocol name of the trace header (RFC 3848, RFC 6531 4.3).

    @param extended: EHLO was used.
    @param tls: the session is encrypted.
    @param authenticated: the client authenticated.
    @param utf8: the transaction used SMTPUTF8.
    @return: such as C{"ESMTPSA"} or C{"UTF8SMTPS"}.
    """
    if not extended:
        return "SMTP"
    base = "UTF8SMTP" if utf8 else "ESMTP"
    return base + ("S" if tls else "") + ("A" if authenticated else "")


def receivedHeader(
    *,
    heloName: str,
    peerHost: str,
    hostname: str,
    protocol: str,
    queueID: str,
    recipients: list[str],
    date: str,
    tlsComment: str | None,
) -> bytes:
    """
    Build a C{Received:} header (RFC 5321 4.4), folded, ending in CRLF.

    @param heloName: the name the client gave.
    @param peerHost: the client's IP address.
    @param hostname: our host name.
    @param protocol: from L{receivedProtocol}.
    @param queueID: the message's identifier.
    @param recipients: the accepted recipients; named (C{for}) only when
        there is exactly one, so other recipients stay private.
    @param date: the RFC 5322 date.
    @param tlsComment: such as C{"using TLSv1.3 with cipher X"}, or L{None}.
    @return: the header.
    """
    head = receivedHeaderHead(
        heloName=heloName,
        peerHost=peerHost,
        hostname=hostname,
        protocol=protocol,
        tlsComment=tlsComment,
    )
    return head + receivedHeaderTail(queueID, recipients, date)


def receivedHeaderHead(
    *,
    heloName: str,
    peerHost: str,
    hostname: str,
    protocol: str,
    tlsComment: str | None,
) -> bytes:
    """
    The start of a L{receivedHeader}, up to the message's identifier: the
    same for every message of a session, so made once.

    @param heloName: the name the client gave.
    @param peerHost: the client's IP address.
    @param hostname: our host name.
    @param protocol: from L{receivedProtocol}.
    @param tlsComment: such as C{"using TLSv1.3 with cipher X"}, or L{None}.
    @return: the start, to be followed by L{receivedHeaderTail}.
    """
    literal = f"[IPv6:{peerHost}]" if ":" in peerHost else f"[{peerHost}]"
    head = f"Received: from {_asciiName(heloName)} ({literal})\r\n"
    if tlsComment:
        head += f"\t({tlsComment})\r\n"
    head += f"\tby {hostname} (gomail_twisted) with {protocol} id "
    return head.encode("utf-8")


def receivedHeaderTail(queueID: str, recipients: list[str], date: str) -> bytes:
    """
    The rest of a L{receivedHeader}, from the message's identifier.

    @param queueID: the message's identifier.
    @param recipients: the accepted recipients; named only when there is
        exactly one.
    @param date: the RFC 5322 date.
    @return: the end of the header, CRLF included.
    """
    if len(recipients) == 1:
        tail = f"{queueID}\r\n\tfor <{recipients[0]}>;\r\n\t{date}\r\n"
    else:
        tail = f"{queueID};\r\n\t{date}\r\n"
    return tail.encode("utf-8")


__all__ = [
    "MAX_DOMAIN",
    "MAX_LOCAL_PART",
    "MAX_PATH",
    "Command",
    "MailParameters",
    "PathArgument",
    "SMTPReply",
    "checkDomain",
    "checkHeloName",
    "checkMailParameters",
    "checkRcptParameters",
    "parseCommand",
    "parseMailbox",
    "parseParameters",
    "parsePathArgument",
    "receivedHeader",
    "receivedHeaderHead",
    "receivedHeaderTail",
    "receivedProtocol",
    "requireASCII",
    "splitCommand",
]
