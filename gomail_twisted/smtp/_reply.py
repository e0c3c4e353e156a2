# -*- test-case-name: tests.test_smtp_reply -*-
"""
SMTP replies: one type that is both the reply and the rejection exception.

A hook refuses a step by raising (or failing its Deferred with) an
L{SMTPReply}; the protocol formats it in one place, L{SMTPReply.format}, so
multi-line continuation and enhanced status codes (RFC 2034, RFC 3463) are
right everywhere.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_ENHANCED = re.compile(r"\A[245]\.[0-9]{1,3}\.[0-9]{1,3}\Z")


class SMTPReply(Exception):
    """
    An SMTP reply (RFC 5321 4.2), raised by a hook to refuse a step.

    @ivar code: the three-digit reply code.
    @ivar enhanced: the enhanced status code (RFC 3463) such as C{"5.1.1"},
        or L{None} to have one derived from the reply code when the client
        used EHLO.
    @ivar lines: the text lines of the reply; never empty.
    """

    code: int
    enhanced: str | None
    lines: tuple[str, ...]

    def __init__(
        self, code: int, enhanced: str | None, text: str | Sequence[str]
    ) -> None:
        """
        @param code: the reply code, 200 to 599.
        @param enhanced: the enhanced status code, or L{None}.
        @param text: one line of text, or a sequence of lines for a
            multi-line reply.
        @raise ValueError: when the code or enhanced code is malformed, or a
            line contains CR or LF.
        """
        if not 200 <= code <= 599:
            raise ValueError(f"SMTP reply code out of range: {code!r}")
        if enhanced is not None:
            if not _ENHANCED.match(enhanced) or enhanced[0] != str(code)[0]:
                raise ValueError(f"bad enhanced status code {enhanced!r} for {code}")
        lines = (text,) if isinstance(text, str) else tuple(text)
        if not lines:
            lines = ("",)
        for line in lines:
            if "\r" in line or "\n" in line:
                raise ValueError("SMTP reply text may not contain CR or LF")
        super().__init__(code, enhanced, lines)
        self.code = code
        self.enhanced = enhanced
        self.lines = lines
        self._formatted: dict[bool, bytes] = {}

    @property
    def text(self) -> str:
        """
        The reply text, its lines joined with a space.
        """
        return " ".join(self.lines)

    @property
    def isPositive(self) -> bool:
        """
        Whether this reply accepts (2xx and 3xx) rather than refuses.
        """
        return self.code < 400

    def format(self, enhancedCodes: bool) -> bytes:
        """
        Format the reply for the wire.

        @param enhancedCodes: whether to prefix each line with an enhanced
            status code (the client used EHLO and the reply is neither the
            greeting nor the EHLO reply, RFC 2034 3).  A reply without one of
            its own gets C{X.0.0}; 3xx replies never carry one.
        @return: the reply, each line ending in CRLF.
        """
        cached = self._formatted.get(enhancedCodes)
        if cached is not None:
            return cached
        prefix = ""
        if enhancedCodes and self.code // 100 != 3:
            prefix = (self.enhanced or f"{self.code // 100}.0.0") + " "
        code = str(self.code)
        last = len(self.lines) - 1
        out = [
            f"{code}{' ' if i == last else '-'}{prefix}{line}\r\n"
            for i, line in enumerate(self.lines)
        ]
        formatted = self._formatted[enhancedCodes] = "".join(out).encode("utf-8")
        return formatted

    def withText(self, text: str | Sequence[str]) -> SMTPReply:
        """
        The same codes with other text.

        @param text: the new text.
        @return: a new reply.
        """
        return SMTPReply(self.code, self.enhanced, text)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SMTPReply):
            return NotImplemented
        return (self.code, self.enhanced, self.lines) == (
            other.code,
            other.enhanced,
            other.lines,
        )

    def __hash__(self) -> int:
        return hash((self.code, self.enhanced, self.lines))

    def __repr__(self) -> str:
        return f"SMTPReply({self.code!r}, {self.enhanced!r}, {self.text!r})"

    def __str__(self) -> str:
        enhanced = f" {self.enhanced}" if self.enhanced else ""
        return f"{self.code}{enhanced} {self.text}"


# Positive replies.
OK = SMTPReply(250, "2.0.0", "OK")
SENDER_OK = SMTPReply(250, "2.1.0", "Sender OK")
RECIPIENT_OK = SMTPReply(250, "2.1.5", "Recipient OK")
RESET_OK = SMTPReply(250, "2.0.0", "Reset OK")
START_DATA = SMTPReply(354, None, "End data with <CR><LF>.<CR><LF>")
READY_FOR_TLS = SMTPReply(220, "2.0.0", "Ready to start TLS")
AUTH_OK = SMTPReply(235, "2.7.0", "Authentication successful")
BYE = SMTPReply(221, "2.0.0", "Bye")
CANNOT_VRFY = SMTPReply(
    252, "2.5.0", "Cannot VRFY user, but will accept message and attempt delivery"
)


def helpReply(startTLS: bool, auth: bool) -> SMTPReply:
    """
    The reply to HELP (RFC 5321 4.1.1.8): the commands this session may
    use, naming STARTTLS (RFC 3207) and AUTH (RFC 4954) only when they are
    offered, as the EHLO keywords say.

    @param startTLS: STARTTLS is offered.
    @param auth: AUTH is offered.
    @return: a 214 reply; the four possible replies are made once.
    """
    return _HELP_REPLIES[startTLS, auth]


def _help(startTLS: bool, auth: bool) -> SMTPReply:
    commands = ["HELO", "EHLO", "MAIL", "RCPT", "DATA", "RSET", "NOOP", "QUIT"]
    commands += ["VRFY", "HELP"]
    if startTLS:
        commands.append("STARTTLS")
    if auth:
        commands.append("AUTH")
    return SMTPReply(214, "2.0.0", ["Commands: " + " ".join(commands), "See RFC 5321"])


_HELP_REPLIES = {
    (startTLS, auth): _help(startTLS, auth)
    for startTLS in (False, True)
    for auth in (False, True)
}

# Refusals and errors.
NOT_AVAILABLE = SMTPReply(421, "4.3.2", "Service not available, closing connection")
TOO_MANY_CONNECTIONS = SMTPReply(421, "4.7.0", "Too many connections, try again later")
TOO_MANY_ERRORS = SMTPReply(421, "4.7.0", "Too many errors, closing connection")
IDLE_TIMEOUT = SMTPReply(421, "4.4.2", "Idle timeout, closing connection")
SHUTTING_DOWN = SMTPReply(421, "4.3.2", "Server shutting down, closing connection")
TEMPORARY_FAILURE = SMTPReply(451, "4.3.0", "Temporary failure, please try again")
TOO_MANY_RECIPIENTS = SMTPReply(452, "4.5.3", "Too many recipients")

COMMAND_UNRECOGNIZED = SMTPReply(500, "5.5.2", "Command unrecognized")
LINE_TOO_LONG = SMTPReply(500, "5.5.2", "Line too long")
SYNTAX_ERROR = SMTPReply(501, "5.5.2", "Syntax error in parameters or arguments")
BAD_SENDER_SYNTAX = SMTPReply(501, "5.1.7", "Bad sender address syntax")
BAD_RECIPIENT_SYNTAX = SMTPReply(501, "5.1.3", "Bad recipient address syntax")
NOT_IMPLEMENTED = SMTPReply(502, "5.5.1", "Command not implemented")
BAD_SEQUENCE = SMTPReply(503, "5.5.1", "Bad sequence of commands")
HELO_FIRST = SMTPReply(503, "5.5.1", "Send HELO or EHLO first")
NESTED_MAIL = SMTPReply(503, "5.5.1", "Sender already given")
NEED_MAIL = SMTPReply(503, "5.5.1", "Need MAIL before RCPT")
NEED_RCPT = SMTPReply(503, "5.5.1", "Need RCPT before DATA")
ALREADY_AUTHENTICATED = SMTPReply(503, "5.5.1", "Already authenticated")
ALREADY_TLS = SMTPReply(503, "5.5.1", "TLS already active")
UNKNOWN_PARAMETER = SMTPReply(555, "5.5.4", "Unsupported MAIL/RCPT parameter")
BAD_PARAMETER = SMTPReply(501, "5.5.4", "Invalid parameter value")
UNKNOWN_MECHANISM = SMTPReply(504, "5.5.4", "Unrecognized authentication mechanism")
AUTH_CANCELLED = SMTPReply(501, "5.0.0", "Authentication cancelled")
AUTH_BAD_BASE64 = SMTPReply(501, "5.5.2", "Cannot decode response")
AUTH_FAILED = SMTPReply(535, "5.7.8", "Authentication credentials invalid")
ENCRYPTION_REQUIRED = SMTPReply(
    538, "5.7.11", "Encryption required for requested authentication mechanism"
)
MUST_ISSUE_STARTTLS = SMTPReply(530, "5.7.0", "Must issue a STARTTLS command first")
NEED_SMTPUTF8 = SMTPReply(
    553, "5.6.7", "Non-ASCII address requires the SMTPUTF8 parameter"
)
UNKNOWN_RECIPIENT = SMTPReply(550, "5.1.1", "No such recipient here")
RELAY_DENIED = SMTPReply(554, "5.7.1", "Relay access denied")
MESSAGE_TOO_BIG = SMTPReply(552, "5.3.4", "Message size exceeds fixed limit")
DATA_LINE_TOO_LONG = SMTPReply(500, "5.5.2", "Message line too long")
BARE_LINE_ENDING = SMTPReply(
    550, "5.6.0", "Message contains bare CR or LF; lines must end with CRLF"
)
AUTH_TEMPORARY_FAILURE = SMTPReply(454, "4.7.0", "Temporary authentication failure")
