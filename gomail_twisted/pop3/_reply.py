# -*- test-case-name: tests.test_pop3_wire -*-
"""
The POP3 server's replies: the L{POP3Reply} type, which is also the
exception a hook raises to refuse a step, and the replies the server gives
in its own name.

A reply is a status indicator, C{+OK} or C{-ERR} (RFC 1939 3), an optional
response code in brackets (RFC 2449 8, RFC 3206) and text.  Replies are
formatted here and nowhere else: single lines by L{POP3Reply.format},
multi-line responses by L{multiline}.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

#: The response codes of RFC 2449 8.1 and RFC 3206 that the server uses.
IN_USE_CODE = "IN-USE"
LOGIN_DELAY_CODE = "LOGIN-DELAY"
SYS_TEMP_CODE = "SYS/TEMP"
SYS_PERM_CODE = "SYS/PERM"
AUTH_CODE = "AUTH"

#: RFC 2449 8: a response code is one or more slash-separated atoms.
_CODE = re.compile(r"\A[A-Za-z0-9-]+(/[A-Za-z0-9-]+)*\Z")


class POP3Reply(Exception):
    """
    One POP3 status line, raised by a hook to refuse a step.

    @ivar ok: L{True} for C{+OK}, L{False} for C{-ERR}.
    @ivar code: the response code without its brackets, such as
        C{"IN-USE"} (RFC 2449 8), or L{None}.
    @ivar text: the text after the indicator and code; may be empty.
    """

    ok: bool
    code: str | None
    text: str

    def __init__(self, ok: bool, code: str | None, text: str) -> None:
        """
        @param ok: the indicator.
        @param code: the response code, or L{None} (RFC 2449 8 allows one
            after either indicator).
        @param text: the text; no CR or LF.
        @raise ValueError: when the code is malformed or the text holds CR
            or LF.
        """
        if code is not None and not _CODE.match(code):
            raise ValueError(f"malformed POP3 response code {code!r}")
        if "\r" in text or "\n" in text:
            raise ValueError("POP3 reply text may not contain CR or LF")
        super().__init__(ok, code, text)
        self.ok = ok
        self.code = code
        self.text = text
        self._formatted: bytes | None = None

    def format(self) -> bytes:
        """
        The status line for the wire (RFC 1939 3, RFC 2449 8).

        @return: such as C{b"-ERR [IN-USE] Maildrop locked\\r\\n"}.
        """
        formatted = self._formatted
        if formatted is None:
            parts = ["+OK" if self.ok else "-ERR"]
            if self.code is not None:
                parts.append(f"[{self.code}]")
            if self.text:
                parts.append(self.text)
            formatted = self._formatted = (" ".join(parts) + "\r\n").encode("utf-8")
        return formatted

    def withText(self, text: str) -> POP3Reply:
        """
        The same indicator and code with other text.

        @param text: the new text.
        @return: a new reply.
        """
        return POP3Reply(self.ok, self.code, text)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, POP3Reply):
            return NotImplemented
        return (self.ok, self.code, self.text) == (other.ok, other.code, other.text)

    def __hash__(self) -> int:
        return hash((self.ok, self.code, self.text))

    def __repr__(self) -> str:
        return f"POP3Reply({self.ok!r}, {self.code!r}, {self.text!r})"

    def __str__(self) -> str:
        return self.format().decode("utf-8").rstrip("\r\n")


def ok(text: str = "") -> POP3Reply:
    """
    @param text: the text.
    @return: a C{+OK} reply.
    """
    return POP3Reply(True, None, text)


def error(text: str, code: str | None = None) -> POP3Reply:
    """
    @param text: the text.
    @param code: the response code, or L{None}.
    @return: a C{-ERR} reply.
    """
    return POP3Reply(False, code, text)


def multiline(first: POP3Reply, lines: Iterable[bytes]) -> bytes:
    """
    A multi-line response (RFC 1939 3): the status line, the lines
    dot-stuffed, and the terminating C{.}.

    @param first: the status line.
    @param lines: the lines, without their CRLF.
    @return: the response, every line ending in CRLF.
    """
    body = b"".join(
        (b"." + line if line[:1] == b"." else line) + b"\r\n" for line in lines
    )
    return first.format() + body + b".\r\n"


# Positive replies.
OK = ok()
BYE = ok("Bye")
CAPABILITIES = ok("Capability list follows")
BEGIN_TLS = ok("Begin TLS negotiation")
USER_OK = ok("Send your password")
LOGIN_OK = ok("Logged in")
MECHANISMS = ok("Mechanisms follow")
UIDL_FOLLOWS = ok("Unique-ID listing follows")

# Refusals of the connection.
TOO_MANY_CONNECTIONS = error("Too many connections, try again later", SYS_TEMP_CODE)
SHUTTING_DOWN = error("Server shutting down, closing connection", SYS_TEMP_CODE)
NOT_AVAILABLE = error("Service not available, closing connection", SYS_TEMP_CODE)
#: A peer blocked by IP access control: temporary, since the block ends
#: (RFC 3206 5: the client should try again later).
BLOCKED = error(
    "Access denied: too many failed logins or connections from you", SYS_TEMP_CODE
)
IDLE_TIMEOUT = error("Idle timeout, closing connection")
TOO_MANY_ERRORS = error("Too many errors, closing connection")

# Protocol errors: the client's fault.
UNKNOWN_COMMAND = error("Unknown command")
LINE_TOO_LONG = error("Line too long")
NOT_AUTHENTICATED = error("Log in first")
ALREADY_AUTHENTICATED = error("Already logged in")
BAD_SEQUENCE = error("Command not valid now")
SYNTAX_ERROR = error("Syntax error")
BAD_NUMBER = error("Invalid message number")
NO_SUCH_MESSAGE = error("No such message")
MESSAGE_DELETED = error("Message already deleted")
USER_FIRST = error("Send USER first")
NOT_SUPPORTED = error("Command not supported")
TLS_REQUIRED = error("Use STLS before logging in")
ALREADY_TLS = error("TLS already active")
UNKNOWN_MECHANISM = error("Unrecognized authentication mechanism")
AUTH_CANCELLED = error("Authentication cancelled")
AUTH_BAD_BASE64 = error("Cannot decode response")

# Refusals a backend gives (RFC 2449 8.1, RFC 3206).
AUTH_FAILED = error("Authentication failed", AUTH_CODE)
IN_USE = error("Maildrop already in use", IN_USE_CODE)
TEMPORARY_FAILURE = error("Temporary failure, please try again later", SYS_TEMP_CODE)
PERMANENT_FAILURE = error("Permanent failure", SYS_PERM_CODE)
COMMIT_FAILED = error("Deleting messages failed; none were deleted", SYS_TEMP_CODE)
MESSAGE_GONE = error("Message no longer exists")

#: The codes of a refused login that say nothing of the credentials: a
#: check that could not be made (RFC 3206 5), a maildrop in use or a login
#: too soon (RFC 2449 8.1); access control does not count them.
NOT_A_WRONG_LOGIN = frozenset({SYS_TEMP_CODE, IN_USE_CODE, LOGIN_DELAY_CODE})
