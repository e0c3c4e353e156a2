# -*- test-case-name: tests.test_dkim -*-
"""
DKIM verification (RFC 6376 6): every DKIM-Signature field of a message is
checked, each giving one L{DKIMResult}.

Looking keys up is the only I/O, and it goes through the C{lookupTXT}
callable the caller gives, so the cryptographic path can be driven with
records held in memory.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from twisted.internet.defer import Deferred, gatherResults, maybeDeferred, succeed
from twisted.logger import Logger
from twisted.python.failure import Failure

from gomail_twisted.dkim._canon import (
    Canonicalization,
    HeaderField,
    canonicalizeBody,
    canonicalizeHeader,
    parseMessage,
)
from gomail_twisted.dkim._keys import (
    MINIMUM_RSA_BITS,
    KeyRecord,
    KeyRecordError,
    parseKeyRecord,
)
from gomail_twisted.dkim._results import DKIMResult, DKIMStatus
from gomail_twisted.dkim._sign import headerHashInput
from gomail_twisted.dns import DNSPermanentError
from gomail_twisted.tags import TagList, TagSyntaxError, parseTags

__all__ = ["LookupTXT", "verify"]

LookupTXT = Callable[[str], "Deferred[Sequence[bytes]]"]
"""
The key lookup L{verify} calls: given a DNS name, a Deferred firing with the
TXT records there, each one's strings joined, or failing with
L{gomail_twisted.dns.DNSPermanentError} when the name does not exist (any
other failure is taken as temporary).
"""

FUTURE_TIMESTAMP_ALLOWANCE = 300
"""
How many seconds into the future a C{t=} may lie before the signature is
refused (RFC 6376 3.5 lets verifiers refuse future timestamps; clocks
drift).
"""

_log = Logger()
_REQUIRED = ("v", "a", "b", "bh", "d", "h", "s")
_NAME = re.compile(r"\A[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*\Z")
_DIGITS = re.compile(r"\A[0-9]{1,76}\Z")
_B_TAG = re.compile(rb"(?:\A|;)[ \t\r\n]*b[ \t\r\n]*=")


class _PermError(Exception):
    """
    The signature cannot be checked and never will be.
    """


@dataclass(frozen=True)
class _Signature:
    """
    A DKIM-Signature field that passed the checks of RFC 6376 6.1.1.
    """

    field: HeaderField
    algorithm: str
    domain: str
    selector: str
    headerCanon: Canonicalization
    bodyCanon: Canonicalization
    names: tuple[str, ...]
    bodyHash: bytes
    signature: bytes
    length: int | None
    identity: str | None
    signatureStart: str


def _base64(value: str, tag: str) -> bytes:
    """
    @param value: a base64 tag value, perhaps folded.
    @param tag: its tag name, for the error.
    @return: the decoded bytes.
    @raise _PermError: the value is not valid base64.
    """
    try:
        return base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        raise _PermError(f"{tag}= is not valid base64")


def _number(value: str, tag: str) -> int:
    """
    @param value: a decimal tag value.
    @param tag: its tag name, for the error.
    @return: the number.
    @raise _PermError: the value is not 1 to 76 digits (RFC 6376 3.5).
    """
    if not _DIGITS.match(value):
        raise _PermError(f"{tag}= is not a number")
    return int(value)


@dataclass(frozen=True)
class _About:
    """
    What names a signature in its result, as far as it is readable.
    """

    domain: str = ""
    selector: str = ""
    algorithm: str = ""
    identity: str | None = None
    signatureStart: str = ""

    def result(
        self, status: DKIMStatus, reason: str, unsignedBytes: int | None = None
    ) -> DKIMResult:
        """
        @return: a result for this signature.
        """
        return DKIMResult(
            status,
            reason,
            domain=self.domain,
            selector=self.selector,
            algorithm=self.algorithm,
            identity=self.identity,
            signatureStart=self.signatureStart,
            unsignedBytes=unsignedBytes,
        )


def _describe(tags: TagList) -> _About:
    """
    @param tags: the tags of a signature, valid or not.
    @return: the names that identify it in a result, where they are readable.
    """
    b = "".join((tags.get("b") or "").split())
    return _About(
        domain=(tags.get("d") or "").lower(),
        selector=tags.get("s") or "",
        algorithm=(tags.get("a") or "").lower(),
        identity=tags.get("i"),
        signatureStart=b[:8],
    )


def _parseSignature(field: HeaderField, tags: TagList, now: float) -> _Signature:
    """
    Check a signature's tags (RFC 6376 6.1.1, RFC 8301 3.1).

    @param field: the DKIM-Signature field.
    @param tags: its parsed value.
    @param now: the current time, for C{t=} and C{x=}.
    @return: the checked signature.
    @raise _PermError: a check failed.
    """
    for name in _REQUIRED:
        if name not in tags:
            raise _PermError(f"signature has no {name}= tag")
    if tags["v"] != "1":
        raise _PermError(f"unsupported signature version v={tags['v']}")
    algorithm = tags["a"].lower()
    if algorithm == "rsa-sha1":
        raise _PermError("rsa-sha1 is not accepted (RFC 8301 3.1)")
    if algorithm not in ("rsa-sha256", "ed25519-sha256"):
        raise _PermError(f"unknown algorithm a={tags['a']}")
    domain = tags["d"].lower()
    selector = tags["s"]
    if not _NAME.match(domain) or not _NAME.match(selector):
        raise _PermError("invalid d= or s=")
    canon = tags.get("c", "simple/simple") or ""
    headerCanon, _, bodyCanon = canon.lower().partition("/")
    bodyCanon = bodyCanon or "simple"
    if headerCanon not in ("simple", "relaxed") or bodyCanon not in (
        "simple",
        "relaxed",
    ):
        raise _PermError(f"unknown canonicalization c={canon}")
    if "q" in tags and "dns/txt" not in _split(tags["q"], ":"):
        raise _PermError("q= does not offer dns/txt")
    names = _split(tags["h"], ":")
    if "" in names:
        raise _PermError("empty header name in h=")
    if "from" not in names:
        raise _PermError("h= does not include From (RFC 6376 5.4)")
    identity = tags.get("i")
    if identity is not None:
        _, at, identityDomain = identity.rpartition("@")
        identityDomain = identityDomain.lower()
        if not at or not (
            identityDomain == domain or identityDomain.endswith("." + domain)
        ):
            raise _PermError("i= is not in the d= domain")
    length = _number(tags["l"], "l") if "l" in tags else None
    timestamp = _number(tags["t"], "t") if "t" in tags else None
    expiration = _number(tags["x"], "x") if "x" in tags else None
    if timestamp is not None and timestamp > now + FUTURE_TIMESTAMP_ALLOWANCE:
        raise _PermError("signature timestamp t= is in the future")
    if expiration is not None:
        if timestamp is not None and expiration < timestamp:
            raise _PermError("x= is before t=")
        if expiration < now:
            raise _PermError("signature expired (x=)")
    return _Signature(
        field=field,
        algorithm=algorithm,
        domain=domain,
        selector=selector,
        headerCanon=headerCanon,  # type: ignore[arg-type]
        bodyCanon=bodyCanon,  # type: ignore[arg-type]
        names=tuple(names),
        bodyHash=_base64(tags["bh"], "bh"),
        signature=_base64(tags["b"], "b"),
        length=length,
        identity=identity,
        signatureStart=_describe(tags).signatureStart,
    )


def _split(value: str, separator: str) -> list[str]:
    """
    @param value: a list-valued tag.
    @param separator: the list separator.
    @return: the items, lower-cased, whitespace removed.
    """
    return ["".join(item.split()).lower() for item in value.split(separator)]


def _chooseKey(signature: _Signature, records: Sequence[bytes | str]) -> KeyRecord:
    """
    Pick and check the key for a signature (RFC 6376 6.1.2, RFC 8301 3.2).

    @param signature: the signature.
    @param records: the TXT records found for its selector.
    @return: the first record that parses.
    @raise _PermError: no record parses, or the key does not fit the
        signature.
    """
    if not records:
        raise _PermError("no key record found")
    errors = []
    for record in records:
        try:
            key = parseKeyRecord(record)
            break
        except KeyRecordError as e:
            errors.append(str(e))
    else:
        raise _PermError(errors[0])
    expected = "ed25519" if signature.algorithm == "ed25519-sha256" else "rsa"
    if key.keyType != expected:
        raise _PermError(f"key type k={key.keyType} does not match a=")
    if key.hashAlgorithms is not None and "sha256" not in key.hashAlgorithms:
        raise _PermError("key record h= does not allow sha256")
    if "*" not in key.services and "email" not in key.services:
        raise _PermError("key record s= does not allow email")
    if key.strict and signature.identity is not None:
        if signature.identity.rpartition("@")[2].lower() != signature.domain:
            raise _PermError("key requires i= in exactly the d= domain (t=s)")
    if key.keyType == "rsa" and key.bits < MINIMUM_RSA_BITS:
        raise _PermError(f"RSA key of {key.bits} bits is too short (RFC 8301 3.2)")
    return key


def _signatureInput(signature: _Signature, fields: Sequence[HeaderField]) -> bytes:
    """
    @param signature: the signature.
    @param fields: the message's header fields.
    @return: the data the signature covers (RFC 6376 3.7): the selected
        fields, then the signature field with its C{b=} value emptied and no
        final CRLF.
    """
    raw = signature.field.raw
    if raw.endswith(b"\r\n"):
        raw = raw[:-2]
    colon = raw.index(b":") + 1
    value = raw[colon:]
    match = _B_TAG.search(value)
    assert match is not None
    end = value.find(b";", match.end())
    stripped = value[: match.end()] + (value[end:] if end >= 0 else b"")
    return headerHashInput(fields, signature.names, signature.headerCanon) + (
        canonicalizeHeader(raw[:colon] + stripped, signature.headerCanon)
    )


def _verifySignature(key: KeyRecord, data: bytes, signature: bytes) -> bool:
    """
    @param key: the key record.
    @param data: the signed data.
    @param signature: the C{b=} bytes.
    @return: whether the signature is valid for C{data} under the key.
    """
    try:
        if isinstance(key.publicKey, rsa.RSAPublicKey):
            key.publicKey.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        else:
            assert isinstance(key.publicKey, ed25519.Ed25519PublicKey)
            key.publicKey.verify(signature, hashlib.sha256(data).digest())
    except InvalidSignature:
        return False
    return True


class _Verifier:
    """
    The state one call to L{verify} shares between its signatures.

    @ivar _bodies: canonical bodies already computed, by algorithm.
    """

    def __init__(self, message: bytes, lookupTXT: LookupTXT, now: float) -> None:
        self._parsed = parseMessage(message)
        self._lookupTXT = lookupTXT
        self._now = now
        self._bodies: dict[str, bytes] = {}

    def _body(self, algorithm: Canonicalization) -> bytes:
        if algorithm not in self._bodies:
            self._bodies[algorithm] = canonicalizeBody(self._parsed.body, algorithm)
        return self._bodies[algorithm]

    def signatureFields(self) -> list[HeaderField]:
        return [f for f in self._parsed.headers if f.name == "dkim-signature"]

    def verifyOne(self, field: HeaderField) -> Deferred[DKIMResult]:
        """
        @param field: a DKIM-Signature field.
        @return: a Deferred that fires with its result and never fails.
        """
        perm = DKIMStatus.PERMERROR
        colon = field.raw.index(b":") + 1
        try:
            tags = parseTags(field.raw[colon:].removesuffix(b"\r\n"))
        except TagSyntaxError as e:
            return succeed(_About().result(perm, f"signature syntax: {e}"))
        about = _describe(tags)
        try:
            signature = _parseSignature(field, tags, self._now)
        except _PermError as e:
            return succeed(about.result(perm, str(e)))
        name = f"{signature.selector}._domainkey.{signature.domain}"
        d: Deferred[Sequence[bytes]] = maybeDeferred(self._lookupTXT, name)

        def lookupFailed(failure: Failure) -> DKIMResult:
            if isinstance(failure.value, DNSPermanentError):
                return about.result(perm, f"no key record at {name}")
            return about.result(
                DKIMStatus.TEMPERROR, f"key lookup failed: {failure.getErrorMessage()}"
            )

        def gotRecords(records: Sequence[bytes]) -> Deferred[DKIMResult]:
            inner: Deferred[DKIMResult] = maybeDeferred(
                self._check, signature, about, records
            )
            return inner.addErrback(checkFailed)

        def checkFailed(failure: Failure) -> DKIMResult:
            if isinstance(failure.value, _PermError):
                return about.result(perm, failure.getErrorMessage())
            _log.failure("DKIM verification error", failure)
            return about.result(perm, "verification error")

        return d.addCallbacks(gotRecords, lookupFailed)

    def _check(
        self, signature: _Signature, about: _About, records: Sequence[bytes]
    ) -> DKIMResult:
        """
        Check a signature against its key records (RFC 6376 6.1.2, 6.1.3).
        """
        key = _chooseKey(signature, records)
        body = self._body(signature.bodyCanon)
        unsigned = None
        if signature.length is not None:
            if signature.length > len(body):
                raise _PermError("l= is longer than the body")
            unsigned = len(body) - signature.length
            body = body[: signature.length]
        if hashlib.sha256(body).digest() != signature.bodyHash:
            status, reason = DKIMStatus.FAIL, "body hash did not verify"
        else:
            data = _signatureInput(signature, self._parsed.headers)
            if _verifySignature(key, data, signature.signature):
                reason = "signature verified"
                if unsigned:
                    reason += f"; {unsigned} body bytes after l= are not signed"
                return about.result(DKIMStatus.PASS, reason, unsigned)
            status, reason = DKIMStatus.FAIL, "signature did not verify"
        if key.testing:
            status, reason = DKIMStatus.NEUTRAL, reason + " (key in testing mode)"
        return about.result(status, reason, unsigned)


def verify(
    message: bytes, lookupTXT: LookupTXT, now: float | None = None
) -> Deferred[list[DKIMResult]]:
    """
    Verify every DKIM signature of a message (RFC 6376 6, 6.1: all of them,
    not only the first).

    Malformed signatures and key records, policy refusals (RFC 8301) and
    lookup failures all become results; the Deferred never fails.

    @param message: the whole message, as received; bare LF line ends are
        read as CRLF.
    @param lookupTXT: fetches the TXT records of a name; see L{LookupTXT}.
        L{gomail_twisted.dns.Resolver.lookupTXT} fits.
    @param now: the current time in seconds since the epoch, for C{t=} and
        C{x=}; L{None} for the system clock.
    @return: a Deferred firing with one L{DKIMResult} per DKIM-Signature
        field, top to bottom; an empty list when the message has none.
    """
    verifier = _Verifier(message, lookupTXT, time.time() if now is None else now)
    return gatherResults(
        [verifier.verifyOne(field) for field in verifier.signatureFields()]
    )
