# -*- test-case-name: tests.test_dkim, tests.test_smtp_dkim -*-
"""
The outcome of verifying DKIM signatures, and its report in an
Authentication-Results header field (RFC 8601).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "DKIMResult",
    "DKIMStatus",
    "formatAuthenticationResults",
    "obscureForgedResults",
]


class DKIMStatus(enum.Enum):
    """
    The result of one signature, with the names RFC 8601 2.7.1 gives them.

    @cvar PASS: the signature verified.
    @cvar FAIL: the signature was well formed but did not verify (the body
        hash or the signature itself did not match).
    @cvar NEUTRAL: the signature did not verify, but its key is in testing
        mode (C{t=y}, RFC 6376 3.6.1), so it must count as no signature.
    @cvar TEMPERROR: the key could not be fetched for a reason that may pass
        (a DNS timeout or server failure); the message may verify later.
    @cvar PERMERROR: the signature or its key record is malformed, refused by
        policy (RFC 8301) or missing; trying again will not help.
    @cvar POLICY: the signature was not checked: it came past the number of
        signatures this verifier checks (RFC 6376 6.1 allows the limit;
        RFC 8601 2.7.1 names the result of a signature not acceptable to
        the verifier's policy C{policy}).
    """

    PASS = "pass"
    FAIL = "fail"
    NEUTRAL = "neutral"
    TEMPERROR = "temperror"
    PERMERROR = "permerror"
    POLICY = "policy"


@dataclass(frozen=True)
class DKIMResult:
    """
    What verifying one DKIM-Signature field found (RFC 6376 6.1, 6.3).

    @ivar status: the result.
    @ivar reason: a human-readable explanation, fit for logs and for the
        C{reason=} of an Authentication-Results field.
    @ivar domain: the C{d=} signing domain, or C{""} when unreadable.
    @ivar selector: the C{s=} selector, or C{""} when unreadable.
    @ivar algorithm: the C{a=} algorithm, or C{""} when unreadable.
    @ivar identity: the C{i=} agent or user identifier, when given.
    @ivar signatureStart: the first characters of the C{b=} value, which
        name the signature in an Authentication-Results field (RFC 6008).
    @ivar unsignedBytes: with C{l=}, how many bytes of the canonical body
        follow the signed part (RFC 6376 8.2); L{None} without C{l=}.
    """

    status: DKIMStatus
    reason: str
    domain: str = ""
    selector: str = ""
    algorithm: str = ""
    identity: str | None = None
    signatureStart: str = ""
    unsignedBytes: int | None = None


_PVALUE_UNSAFE = re.compile(r"[^\x21-\x7e]|[()<>@,;:\\\"/\[\]?=]")


def _quote(text: str) -> str:
    """
    @param text: a reason text.
    @return: it as an RFC 5322 quoted-string, control characters dropped.
    """
    text = "".join(c for c in text if c == " " or (c.isprintable() and c.isascii()))
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _pvalue(text: str) -> str:
    """
    @param text: a property value.
    @return: it bare when it is a token or domain, else quoted (RFC 8601 2.2).
    """
    if text and not _PVALUE_UNSAFE.search(text.replace("@", "", 1)):
        return text
    return _quote(text)


def formatAuthenticationResults(authservID: str, results: Sequence[DKIMResult]) -> str:
    """
    Format the value of an Authentication-Results header field reporting
    DKIM results (RFC 8601 2.2, 2.7.1; C{header.b} from RFC 6008).

    The caller prepends C{"Authentication-Results: "} and appends CRLF; the
    value is one line, which RFC 5322 allows up to 998 characters.

    @param authservID: the authserv-id, normally the host name of the
        server that verified.
    @param results: the results of L{verify}, one per signature; an empty
        sequence reports C{dkim=none}.
    @return: the field value, such as C{'mx.example.net; dkim=pass
        header.d=example.com header.s=sel header.a=rsa-sha256 header.b=AbCd1234'}.
    """
    if not results:
        return f"{authservID}; dkim=none"
    parts = [authservID]
    for result in results:
        words = [f"dkim={result.status.value}", f"reason={_quote(result.reason)}"]
        if result.domain:
            words.append(f"header.d={_pvalue(result.domain)}")
        if result.identity:
            words.append(f"header.i={_pvalue(result.identity)}")
        if result.selector:
            words.append(f"header.s={_pvalue(result.selector)}")
        if result.algorithm:
            words.append(f"header.a={_pvalue(result.algorithm)}")
        if result.signatureStart:
            words.append(f"header.b={_pvalue(result.signatureStart)}")
        parts.append(" ".join(words))
    return "; ".join(parts)


_RESULTS_FIELD = re.compile(
    rb"^Authentication-Results[ \t]*:[ \t]*(?:\r\n[ \t]+)?([^;\s]+)",
    re.IGNORECASE | re.MULTILINE,
)


def obscureForgedResults(raw: bytes, start: int, hostname: str) -> bytes:
    """
    Rename the C{Authentication-Results:} fields of a received message that
    claim our authserv-id: only we may add those (RFC 8601 5), and a peer's
    would be trusted as ours.  They become C{X-Original-Authentication-
    Results:}, so nothing is lost.

    @param raw: the message.
    @param start: where the sender's header block starts (after our trace
        headers).
    @param hostname: our authserv-id.
    @return: the message, unchanged when no field claims C{hostname}.
    """
    end = raw.find(b"\r\n\r\n", start)
    end = len(raw) if end == -1 else end + 2
    ours = hostname.encode("utf-8").lower()
    forged = [
        match.start()
        for match in _RESULTS_FIELD.finditer(raw, start, end)
        if match.group(1).lower() == ours
    ]
    if not forged:
        return raw
    pieces = []
    previous = 0
    for at in forged:
        pieces += [raw[previous:at], b"X-Original-"]
        previous = at
    pieces.append(raw[previous:])
    return b"".join(pieces)
