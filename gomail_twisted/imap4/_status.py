# -*- test-case-name: tests.test_imap4_server -*-
"""
IMAP4 status responses (RFC 3501 7.1): C{OK}, C{NO}, C{BAD}, with a
response code and text.

An L{IMAPStatus} is both what a command ends with and the exception that
refuses: a hook raises C{IMAPStatus.no("...", code="ALERT")} and the
client reads C{tag NO [ALERT] ...}.
"""

from __future__ import annotations

import re

_CODE = re.compile(r"[A-Z0-9.\-]+(?: [\x20-\x5c\x5e-\x7e]*)?\Z")
_TEXT_BAD = re.compile(r"[\x00-\x1f\x7f]")


class IMAPStatus(Exception):
    """
    A status response: the end of a command (tagged), or an untagged one.

    @ivar kind: C{"OK"}, C{"NO"}, C{"BAD"}, C{"BYE"} or C{"PREAUTH"}.
    @ivar code: the response code without brackets (C{"TRYCREATE"},
        C{"UIDNEXT 4392"}), or L{None}.
    @ivar text: human-readable text.
    """

    def __init__(self, kind: str, text: str, code: str | None = None) -> None:
        """
        @param kind: see L{kind}.
        @param text: see L{text}; control characters are replaced, so no
            text can break the line.
        @param code: see L{code}.
        @raise ValueError: C{kind} or C{code} is not well formed.
        """
        if kind not in ("OK", "NO", "BAD", "BYE", "PREAUTH"):
            raise ValueError(f"not an IMAP status: {kind!r}")
        if code is not None and not _CODE.match(code):
            raise ValueError(f"not an IMAP response code: {code!r}")
        super().__init__(kind, text, code)
        self.kind = kind
        self.code = code
        self.text = _TEXT_BAD.sub("?", text) or kind

    @classmethod
    def ok(cls, text: str, code: str | None = None) -> IMAPStatus:
        """
        @return: an C{OK} status.
        """
        return cls("OK", text, code)

    @classmethod
    def no(cls, text: str, code: str | None = None) -> IMAPStatus:
        """
        @return: a C{NO} status: the command failed.
        """
        return cls("NO", text, code)

    @classmethod
    def bad(cls, text: str, code: str | None = None) -> IMAPStatus:
        """
        @return: a C{BAD} status: the command was not understood or not
            allowed now.
        """
        return cls("BAD", text, code)

    @property
    def isOK(self) -> bool:
        """
        Whether this is an C{OK}.
        """
        return self.kind == "OK"

    def format(self, tag: str | None = None) -> bytes:
        """
        The response line.

        @param tag: the command's tag; L{None} for an untagged response.
        @return: C{tag KIND [CODE] text}, CRLF.
        """
        head = tag if tag is not None else "*"
        code = f"[{self.code}] " if self.code else ""
        line = f"{head} {self.kind} {code}{self.text}\r\n"
        return line.encode("utf-8", "replace")

    def __str__(self) -> str:
        code = f"[{self.code}] " if self.code else ""
        return f"{self.kind} {code}{self.text}"

    def __repr__(self) -> str:
        return f"IMAPStatus({self.kind!r}, {self.text!r}, {self.code!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, IMAPStatus):
            return NotImplemented
        return (self.kind, self.code, self.text) == (other.kind, other.code, other.text)

    def __hash__(self) -> int:
        return hash((self.kind, self.code, self.text))


# The statuses the server sends of its own.

TEMPORARY_FAILURE = IMAPStatus.no(
    "Temporary server failure, try again later", "UNAVAILABLE"
)
NOT_AVAILABLE = IMAPStatus("BYE", "Service not available", "UNAVAILABLE")
TOO_MANY_CONNECTIONS = IMAPStatus("BYE", "Too many connections", "UNAVAILABLE")
SHUTTING_DOWN = IMAPStatus("BYE", "Server shutting down", "UNAVAILABLE")
IDLE_TIMEOUT = IMAPStatus("BYE", "Disconnected for inactivity")
TOO_MANY_ERRORS = IMAPStatus("BYE", "Too many invalid commands")
LINE_TOO_LONG = IMAPStatus("BYE", "Command line too long", "TOOBIG")
LOGGING_OUT = IMAPStatus("BYE", "Logging out")
MAILBOX_GONE = IMAPStatus("BYE", "Selected mailbox was deleted, have to disconnect")
PRIVACY_REQUIRED = IMAPStatus.no(
    "Plaintext authentication disallowed on non-secure connection",
    "PRIVACYREQUIRED",
)
AUTHENTICATION_FAILED = IMAPStatus.no("Authentication failed", "AUTHENTICATIONFAILED")
AUTHENTICATE_CANCELLED = IMAPStatus.bad("Authentication cancelled")
NO_SUCH_MAILBOX = IMAPStatus.no("Mailbox does not exist", "NONEXISTENT")
TRY_CREATE = IMAPStatus.no("Mailbox does not exist", "TRYCREATE")
READ_ONLY = IMAPStatus.no("Mailbox is read-only", "READ-ONLY")
OVER_QUOTA = IMAPStatus.no("Not enough disk space", "OVERQUOTA")
