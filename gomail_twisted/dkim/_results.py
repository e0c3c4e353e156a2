# -*- test-case-name: tests.test_dkim_authres, tests.test_dkim, tests.test_smtp_dkim -*-
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
    "authenticationResultsField",
    "formatAuthenticationResults",
    "obscureForgedResults",
    "parseAuthservID",
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


_MAX_REASON = 200
_MAX_WORD = 900


def _resinfos(results: Sequence[DKIMResult]) -> list[list[str]]:
    """
    @param results: the results of L{verify}.
    @return: the words of each C{dkim=} resinfo (RFC 8601 2.2, 2.7.1;
        C{header.b} from RFC 6008).  The signatures that were not checked
        (L{DKIMStatus.POLICY}) share one resinfo, where the first of them
        was, so a message with thousands of signatures does not make a
        field as long.  Reasons are cut to 200 characters and a property
        value too long to fit on a line is left out.
    """
    out = []
    unchecked = sum(1 for r in results if r.status is DKIMStatus.POLICY)
    for result in results:
        if result.status is DKIMStatus.POLICY:
            if unchecked == 0:
                continue
            if unchecked > 1:
                reason = f"{unchecked} signatures: {result.reason}"
                result = DKIMResult(DKIMStatus.POLICY, reason)
            unchecked = 0
        reason = result.reason
        if len(reason) > _MAX_REASON:
            reason = reason[: _MAX_REASON - 3] + "..."
        words = [f"dkim={result.status.value}", f"reason={_quote(reason)}"]
        for name, value in (
            ("header.d", result.domain),
            ("header.i", result.identity),
            ("header.s", result.selector),
            ("header.a", result.algorithm),
            ("header.b", result.signatureStart),
        ):
            if value:
                word = f"{name}={_pvalue(value)}"
                if len(word) <= _MAX_WORD:
                    words.append(word)
        out.append(words)
    return out


def formatAuthenticationResults(authservID: str, results: Sequence[DKIMResult]) -> str:
    """
    Format the value of an Authentication-Results header field reporting
    DKIM results (RFC 8601 2.2, 2.7.1; C{header.b} from RFC 6008), on one
    line.  L{authenticationResultsField} gives the whole field, folded.

    @param authservID: the authserv-id, normally the host name of the
        server that verified.
    @param results: the results of L{verify}, one per signature; an empty
        sequence reports C{dkim=none}; the signatures that were not checked
        share one C{dkim=policy}.
    @return: the field value, such as C{'mx.example.net; dkim=pass
        header.d=example.com header.s=sel header.a=rsa-sha256 header.b=AbCd1234'}.
    """
    if not results:
        return f"{authservID}; dkim=none"
    return "; ".join([authservID] + [" ".join(w) for w in _resinfos(results)])


def authenticationResultsField(authservID: str, results: Sequence[DKIMResult]) -> bytes:
    """
    The whole C{Authentication-Results:} header field reporting DKIM results
    (RFC 8601 2.2), folded so that each resinfo starts a line and no line
    passes 78 characters where words allow, nor 998 ever (RFC 5322 2.1.1).

    @param authservID: the authserv-id, normally our host name.
    @param results: the results of L{verify}; see
        L{formatAuthenticationResults}.
    @return: the field, ending in CRLF.
    """
    if not results:
        return f"Authentication-Results: {authservID}; dkim=none\r\n".encode()
    lines = [f"Authentication-Results: {authservID};"]
    resinfos = _resinfos(results)
    for n, words in enumerate(resinfos):
        line = "\t" + words[0]
        for word in words[1:]:
            if len(line) + 1 + len(word) > 78:
                lines.append(line)
                line = "\t" + word
            else:
                line += " " + word
        lines.append(line + (";" if n < len(resinfos) - 1 else ""))
    return ("\r\n".join(lines) + "\r\n").encode("utf-8")


_RESULTS_NAME = re.compile(
    rb"^Authentication-Results[ \t]*:", re.IGNORECASE | re.MULTILINE
)
# A header field ends at a CRLF that is not followed by folding whitespace.
_FIELD_END = re.compile(rb"\r\n(?![ \t])")
# RFC 2045 5.1: any CHAR but SPACE, CTLs and tspecials; 8-bit bytes are
# allowed for UTF-8 names (RFC 8601 2.2 with RFC 6532).
_TOKEN = re.compile(rb'[^\x00-\x20\x7f()<>@,;:\\"/\[\]?=]+')
_AFTER_ID = re.compile(rb"[0-9;]")


def _skipCFWS(value: bytes, at: int) -> int | None:
    """
    @param value: a field value.
    @param at: an offset in it.
    @return: the offset after any folding white space and comments there
        (RFC 5322 3.2.2; comments nest and take quoted-pairs), or L{None}
        when a comment is not closed.
    """
    depth = 0
    while at < len(value):
        c = value[at : at + 1]
        if c in (b" ", b"\t", b"\r", b"\n"):
            at += 1
        elif c == b"(":
            depth += 1
            at += 1
        elif depth and c == b")":
            depth -= 1
            at += 1
        elif depth and c == b"\\":
            at += 2
        elif depth:
            at += 1
        else:
            break
    return None if depth else at


def parseAuthservID(value: bytes) -> bytes | None:
    """
    Read the authserv-id of an Authentication-Results field (RFC 8601 2.2):
    after any comments and folding white space, a token or a quoted-string
    (RFC 2045 5.1), followed by white space, a comment, a version or the
    C{;} before the results.

    @param value: the field value (after the colon), folding and all.
    @return: the authserv-id, unquoted; or L{None} when the value does not
        start with one.
    """
    at = _skipCFWS(value, 0)
    if at is None or at >= len(value):
        return None
    if value[at : at + 1] == b'"':
        out = bytearray()
        at += 1
        while at < len(value):
            c = value[at : at + 1]
            if c == b'"':
                break
            if c == b"\\" and at + 1 < len(value):
                out += value[at + 1 : at + 2]
                at += 2
                continue
            if c not in (b"\r", b"\n"):
                out += c
            at += 1
        else:
            return None
        authservID = bytes(out)
        at += 1
    else:
        match = _TOKEN.match(value, at)
        if match is None:
            return None
        authservID = match.group()
        at = match.end()
    after = _skipCFWS(value, at)
    if after is None or not authservID:
        return None
    if after < len(value) and not _AFTER_ID.match(value, after):
        return None
    return authservID


def obscureForgedResults(raw: bytes, start: int, hostname: str) -> bytes:
    """
    Rename the C{Authentication-Results:} fields of a received message that
    claim our authserv-id: only we may add those (RFC 8601 5), and a peer's
    would be trusted as ours.  They become C{X-Original-Authentication-
    Results:}, so nothing is lost.

    The authserv-id is read as RFC 8601 2.2 says, so comments and quoting
    do not hide it (C{(x) "MX.example"; dkim=pass} claims C{mx.example}),
    and names are compared without regard to case.  A field whose
    authserv-id cannot be read at all is renamed too: a more lenient
    reader downstream might take it for ours.

    @param raw: the message, with CRLF line ends.
    @param start: where the sender's header block starts (after our trace
        headers).
    @param hostname: our authserv-id.
    @return: the message, unchanged when no field claims C{hostname}.
    """
    if raw[start : start + 2] == b"\r\n":
        return raw
    end = raw.find(b"\r\n\r\n", start)
    end = len(raw) if end == -1 else end + 2
    ours = hostname.encode("utf-8").lower()
    forged = []
    for match in _RESULTS_NAME.finditer(raw, start, end):
        fieldEnd = _FIELD_END.search(raw, match.end(), end)
        value = raw[match.end() : fieldEnd.start() if fieldEnd else end]
        authservID = parseAuthservID(value)
        if authservID is None or authservID.lower() == ours:
            forged.append(match.start())
    if not forged:
        return raw
    pieces = []
    previous = 0
    for at in forged:
        pieces += [raw[previous:at], b"X-Original-"]
        previous = at
    pieces.append(raw[previous:])
    return b"".join(pieces)
