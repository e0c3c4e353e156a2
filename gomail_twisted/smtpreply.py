# -*- test-case-name: tests.test_smtp_reply -*-
"""
The SMTP reply (RFC 5321 4.2): one type for what a server says, used by
both sides of the protocol.

The server (L{gomail_twisted.smtp}) raises it from a hook to refuse a step
and formats it in one place, L{SMTPReply.format}, so multi-line
continuation and enhanced status codes (RFC 2034, RFC 3463) are right
everywhere; the delivery client (L{gomail_twisted.delivery}) reports what
the receiving server said with it.  It lives here, beside neither, so that
each side can use it without loading the other.
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


__all__ = ["SMTPReply"]
