# -*- test-case-name: tests.test_dkim, tests.test_dkim_limits -*-
"""
DKIM verification (RFC 6376 6): the DKIM-Signature fields of a message are
checked, each giving one L{DKIMResult}.

Looking keys up is the only I/O, and it goes through the C{lookupTXT}
callable the caller gives, so the cryptographic path can be driven with
records held in memory.  The CPU work goes through a C{runInThread}
callable, so a server can keep it off the reactor thread while tests stay
synchronous.

The cost is bounded and linear in the message, whatever it holds: one
parse and one header index; one canonical body per canonicalization and
one body hash per canonicalization and C{l=}; one lookup and one key parse
per key name; at most C{maxSignatures} signatures checked; and an optional
time bound.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Protocol, TypeVar

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
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
from gomail_twisted.dns import DNSPermanentError
from gomail_twisted.tags import TagList, TagSyntaxError, parseTags

__all__ = ["DEFAULT_MAX_SIGNATURES", "LookupTXT", "RunInThread", "verify"]

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


def _parseKeys(records: Sequence[bytes | str]) -> KeyRecord:
    """
    Pick the key record of a selector (RFC 6376 6.1.2): the first that
    parses.

    @param records: the TXT records found for the selector.
    @return: the first record that parses.
    @raise _PermError: there is none, or none parses.
    """
    if not records:
        raise _PermError("no key record found")
    errors = []
    for record in records:
        try:
            return parseKeyRecord(record)
        except KeyRecordError as e:
            errors.append(str(e))
    raise _PermError(errors[0])


def _checkKey(signature: _Signature, key: KeyRecord) -> None:
    """
    Check that a key fits a signature (RFC 6376 6.1.2, RFC 8301 3.2).

    @param signature: the signature.
    @param key: the key record of its selector.
    @raise _PermError: the key does not fit the signature.
    """
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


def _strippedSignatureField(signature: _Signature) -> bytes:
    """
    @param signature: the signature.
    @return: its field as it enters the header hash (RFC 6376 3.7): the
        C{b=} value emptied, no final CRLF, not yet canonicalized.
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
    return raw[:colon] + stripped


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


DEFAULT_MAX_SIGNATURES = 10
"""
How many well-formed signatures L{verify} checks by default.  RFC 6376 6.1
lets a verifier limit the signatures it tries, against denial of service;
real mail carries one to three (author, sending service, mailing list).
"""

_T = TypeVar("_T")


class RunInThread(Protocol):
    """
    Runs a function away from the reactor thread, such as in a thread pool,
    and gives its result back on the reactor thread:
    C{functools.partial(deferToThreadPool, reactor, reactor.getThreadPool())}
    and L{twisted.internet.threads.deferToThread} fit.
    """

    def __call__(self, f: Callable[[], _T], /) -> Deferred[_T]:
        """
        @param f: the function, called without arguments.
        @return: a Deferred of its result or of its exception.
        """


def _runHere(f: Callable[[], _T]) -> Deferred[_T]:
    """
    The L{RunInThread} that does not move: C{f} runs now, in this thread.
    """
    return maybeDeferred(f)


def _notChecked(limit: int) -> DKIMResult:
    """
    @param limit: the number of signatures checked.
    @return: the result of a signature past it (RFC 6376 6.1).
    """
    return DKIMResult(
        DKIMStatus.POLICY,
        f"not checked: only the first {limit} signatures are verified (RFC 6376 6.1)",
    )


class _MessageIndex:
    """
    A message parsed once for all its signatures, and the work they share:
    the header fields by name, the canonical forms of the fields already
    selected, one canonical body per canonicalization and one body hash per
    canonicalization and C{l=} (both accepted algorithms hash with
    SHA-256).  Only the verification's one thread at a time touches it.

    @ivar signatures: the DKIM-Signature fields, top to bottom.
    """

    def __init__(self, message: bytes) -> None:
        parsed = parseMessage(message)
        self._body = parsed.body
        self._byName: dict[str, list[bytes]] = {}
        for field in parsed.headers:
            self._byName.setdefault(field.name, []).append(field.raw)
        self.signatures = [f for f in parsed.headers if f.name == "dkim-signature"]
        self._canonicalFields: dict[tuple[str, int, str], bytes] = {}
        self._bodies: dict[Canonicalization, bytes] = {}
        self._bodyHashes: dict[
            tuple[Canonicalization, int | None], tuple[bytes, int | None]
        ] = {}

    def headerInput(self, signature: _Signature) -> bytes:
        """
        @param signature: a signature.
        @return: the data it covers (RFC 6376 3.7, 5.4.2): each C{h=} name
            picks the bottom-most instance of that field not yet picked,
            canonicalized; then the signature field with its C{b=} value
            emptied and no final CRLF.
        """
        canon = signature.headerCanon
        taken: dict[str, int] = {}
        out = []
        for name in signature.names:
            instances = self._byName.get(name, ())
            picked = taken.get(name, 0)
            if picked >= len(instances):
                continue
            taken[name] = picked + 1
            at = len(instances) - 1 - picked
            key = (name, at, canon)
            canonical = self._canonicalFields.get(key)
            if canonical is None:
                canonical = canonicalizeHeader(instances[at], canon)
                self._canonicalFields[key] = canonical
            out.append(canonical)
        out.append(canonicalizeHeader(_strippedSignatureField(signature), canon))
        return b"".join(out)

    def bodyHash(
        self, canon: Canonicalization, length: int | None
    ) -> tuple[bytes, int | None]:
        """
        @param canon: the body canonicalization.
        @param length: the C{l=} value, or L{None}.
        @return: the SHA-256 of the canonical body (its first C{length}
            bytes), and how many bytes follow those (L{None} without
            C{l=}).
        @raise _PermError: C{l=} is longer than the canonical body.
        """
        known = self._bodyHashes.get((canon, length))
        if known is not None:
            return known
        body = self._bodies.get(canon)
        if body is None:
            body = self._bodies[canon] = canonicalizeBody(self._body, canon)
        unsigned = None
        view = memoryview(body)
        if length is not None:
            if length > len(body):
                raise _PermError("l= is longer than the body")
            unsigned = len(body) - length
            view = view[:length]
        known = self._bodyHashes[canon, length] = (
            hashlib.sha256(view).digest(),
            unsigned,
        )
        return known


@dataclass(frozen=True)
class _Pending:
    """
    A well-formed signature waiting for its key.

    @ivar name: the DNS name of its key record.
    """

    signature: _Signature
    about: _About
    name: str


class _Verification:
    """
    One call to L{verify}: the CPU work goes through C{runInThread}, one
    step at a time and in order, so the steps share L{_MessageIndex} and the
    parsed keys without locks; the key lookups happen on the reactor
    thread, one per distinct key name.

    @ivar _results: one per signature field; L{None} while unfinished.
    @ivar _unsettled: how many of C{_results} are still L{None}.
    @ivar _finished: whether C{done} has fired (all results known, or the
        time bound passed); steps still queued then are skipped.
    """

    def __init__(
        self,
        lookupTXT: LookupTXT,
        now: float,
        maxSignatures: int,
        runInThread: RunInThread,
    ) -> None:
        self._lookupTXT = lookupTXT
        self._now = now
        self._maxSignatures = maxSignatures
        self._runInThread = runInThread
        self._tail: Deferred[None] = succeed(None)
        self._index: _MessageIndex | None = None
        self._keys: dict[str, KeyRecord | _PermError] = {}
        self._entries: list[DKIMResult | _Pending] = []
        self._results: list[DKIMResult | None] = []
        self._unsettled = 0
        self._lookups: list[Deferred[None]] = []
        self._finished = False
        self._timer: IDelayedCall | None = None
        self.done: Deferred[list[DKIMResult]] = Deferred()

    def start(
        self, message: bytes, clock: IReactorTime | None, timeout: float | None
    ) -> None:
        """
        Begin: parse the message and the signatures, then look the keys up.

        @param message: the message.
        @param clock: schedules the time bound.
        @param timeout: the time bound in seconds, or L{None}.
        """
        if timeout is not None:
            assert clock is not None
            self._timer = clock.callLater(timeout, self._expire, timeout)
        prepared = self._serially(lambda: self._prepare(message))
        prepared.addCallback(self._lookUp).addErrback(self._crashed)

    def _serially(self, f: Callable[[], _T]) -> Deferred[_T]:
        """
        Run C{f} through C{runInThread} once every step queued before it is
        done; skip it when the verification is already over.
        """
        result: Deferred[_T] = Deferred()

        def step(ignored: object) -> Deferred[None] | None:
            if self._finished:
                return None
            # A runInThread that raises must not stop the steps after it.
            inner: Deferred[_T] = maybeDeferred(self._runInThread, f)

            def settled(outcome: _T | Failure) -> None:
                if isinstance(outcome, Failure):
                    result.errback(outcome)
                else:
                    result.callback(outcome)

            return inner.addBoth(settled)

        self._tail.addCallback(step)
        return result

    def _prepare(self, message: bytes) -> list[DKIMResult | _Pending]:
        """
        Parse the message and its signature fields, in order, up to the
        limit of well-formed ones (RFC 6376 6.1.1); later fields are not
        parsed.  Runs in the thread.
        """
        self._index = _MessageIndex(message)
        entries: list[DKIMResult | _Pending] = []
        wellFormed = 0
        for field in self._index.signatures:
            if wellFormed >= self._maxSignatures:
                entries.append(_notChecked(self._maxSignatures))
                continue
            entry = self._parse(field)
            wellFormed += isinstance(entry, _Pending)
            entries.append(entry)
        return entries

    def _parse(self, field: HeaderField) -> DKIMResult | _Pending:
        """
        @param field: a DKIM-Signature field.
        @return: its C{permerror} result, or the signature to check.
        """
        perm = DKIMStatus.PERMERROR
        colon = field.raw.index(b":") + 1
        try:
            tags = parseTags(field.raw[colon:].removesuffix(b"\r\n"))
        except TagSyntaxError as e:
            return _About().result(perm, f"signature syntax: {e}")
        about = _describe(tags)
        try:
            signature = _parseSignature(field, tags, self._now)
        except _PermError as e:
            return about.result(perm, str(e))
        name = f"{signature.selector}._domainkey.{signature.domain}"
        return _Pending(signature, about, name)

    def _lookUp(self, entries: list[DKIMResult | _Pending]) -> None:
        """
        Look up each distinct key name once; check each signature as its
        key arrives.
        """
        if self._finished:
            return
        self._entries = entries
        self._results = [e if isinstance(e, DKIMResult) else None for e in entries]
        self._unsettled = self._results.count(None)
        waiting: dict[str, list[int]] = {}
        for i, entry in enumerate(entries):
            if isinstance(entry, _Pending):
                waiting.setdefault(entry.name.lower(), []).append(i)
        for indexes in waiting.values():
            first = entries[indexes[0]]
            assert isinstance(first, _Pending)
            lookup: Deferred[Sequence[bytes]] = maybeDeferred(
                self._lookupTXT, first.name
            )
            self._lookups.append(lookup.addBoth(self._answered, indexes))
        self._maybeDone()

    def _answered(self, outcome: Sequence[bytes] | Failure, indexes: list[int]) -> None:
        """
        A key lookup finished: a failure settles its signatures, records
        are checked against each of them.
        """
        if self._finished:
            return
        for i in indexes:
            entry = self._entries[i]
            assert isinstance(entry, _Pending)
            if isinstance(outcome, Failure):
                self._settle(i, _lookupFailed(entry, outcome))
            else:
                checked = self._serially(partial(self._check, entry, outcome))
                checked.addErrback(_checkFailed, entry)
                checked.addCallback(partial(self._settle, i))

    def _key(self, name: str, records: Sequence[bytes]) -> KeyRecord:
        """
        @return: the key published at C{name}, parsed once per message.
        @raise _PermError: no record there parses.
        """
        key = self._keys.get(name)
        if key is None:
            try:
                key = _parseKeys(records)
            except _PermError as e:
                key = e
            self._keys[name] = key
        if isinstance(key, _PermError):
            raise key
        return key

    def _check(self, entry: _Pending, records: Sequence[bytes]) -> DKIMResult:
        """
        Check a signature against its key records (RFC 6376 6.1.2, 6.1.3).
        Runs in the thread.
        """
        assert self._index is not None
        signature, about = entry.signature, entry.about
        key = self._key(entry.name.lower(), records)
        _checkKey(signature, key)
        bodyHash, unsigned = self._index.bodyHash(signature.bodyCanon, signature.length)
        if bodyHash != signature.bodyHash:
            status, reason = DKIMStatus.FAIL, "body hash did not verify"
        else:
            data = self._index.headerInput(signature)
            if _verifySignature(key, data, signature.signature):
                reason = "signature verified"
                if unsigned:
                    reason += f"; {unsigned} body bytes after l= are not signed"
                return about.result(DKIMStatus.PASS, reason, unsigned)
            status, reason = DKIMStatus.FAIL, "signature did not verify"
        if key.testing:
            status, reason = DKIMStatus.NEUTRAL, reason + " (key in testing mode)"
        return about.result(status, reason, unsigned)

    def _settle(self, i: int, result: DKIMResult) -> None:
        if not self._finished:
            self._results[i] = result
            self._unsettled -= 1
            self._maybeDone()

    def _maybeDone(self) -> None:
        if not self._finished and not self._unsettled:
            self._finish([r for r in self._results if r is not None])

    def _finish(self, results: list[DKIMResult]) -> None:
        self._finished = True
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        for lookup in self._lookups:
            lookup.cancel()
        self.done.callback(results)

    def _expire(self, timeout: float) -> None:
        """
        The time bound passed: what is unfinished is a C{temperror}.
        """
        self._timer = None
        reason = f"verification took longer than {timeout:g} seconds"
        if not self._entries:
            # Still parsing: how many signatures there are is not known.
            self._finish([DKIMResult(DKIMStatus.TEMPERROR, reason)])
            return
        results = []
        for entry, result in zip(self._entries, self._results, strict=True):
            if result is None:
                assert isinstance(entry, _Pending)
                result = entry.about.result(DKIMStatus.TEMPERROR, reason)
            results.append(result)
        self._finish(results)

    def _crashed(self, failure: Failure) -> None:
        _log.failure("DKIM verification error", failure)
        if not self._finished:
            self._finish([DKIMResult(DKIMStatus.PERMERROR, "verification error")])


def _lookupFailed(entry: _Pending, failure: Failure) -> DKIMResult:
    """
    @return: the result of a signature whose key lookup failed.
    """
    if isinstance(failure.value, DNSPermanentError):
        return entry.about.result(
            DKIMStatus.PERMERROR, f"no key record at {entry.name}"
        )
    return entry.about.result(
        DKIMStatus.TEMPERROR, f"key lookup failed: {failure.getErrorMessage()}"
    )


def _checkFailed(failure: Failure, entry: _Pending) -> DKIMResult:
    """
    @return: the result of a signature whose check raised.
    """
    if isinstance(failure.value, _PermError):
        return entry.about.result(DKIMStatus.PERMERROR, failure.getErrorMessage())
    _log.failure("DKIM verification error", failure)
    return entry.about.result(DKIMStatus.PERMERROR, "verification error")


def verify(
    message: bytes,
    lookupTXT: LookupTXT,
    now: float | None = None,
    *,
    maxSignatures: int = DEFAULT_MAX_SIGNATURES,
    timeout: float | None = None,
    clock: IReactorTime | None = None,
    runInThread: RunInThread | None = None,
) -> Deferred[list[DKIMResult]]:
    """
    Verify the DKIM signatures of a message (RFC 6376 6, 6.1: all of them,
    not only the first, up to C{maxSignatures}).

    The work is linear in the message: it is parsed once, each body
    canonicalization and hash is computed once per distinct
    canonicalization and C{l=}, and each key name is looked up once.

    Malformed signatures and key records, policy refusals (RFC 8301),
    lookup failures and the time bound all become results; the Deferred
    never fails.

    @param message: the whole message, as received; bare LF line ends are
        read as CRLF.
    @param lookupTXT: fetches the TXT records of a name; see L{LookupTXT}.
        L{gomail_twisted.dns.Resolver.lookupTXT} fits.
    @param now: the current time in seconds since the epoch, for C{t=} and
        C{x=}; L{None} for C{clock}'s time, or the system clock without
        one.
    @param maxSignatures: how many well-formed signatures to check, top to
        bottom (RFC 6376 6.1 allows a limit).  Each later DKIM-Signature
        field is not parsed and gets a L{DKIMStatus.POLICY} result saying
        it was not checked.  Malformed fields do not count: they cost no
        lookup and no hashing.
    @param timeout: seconds after which verification stops: signatures
        still waiting for a key or a check become C{temperror}s (and
        pending lookups are cancelled); when the message was still being
        parsed, the only result is one C{temperror}.  L{None} for no bound.
    @param clock: schedules C{timeout}; default the global reactor.
    @param runInThread: runs the CPU work (parsing, canonicalization,
        hashing, RSA and Ed25519) one step at a time; see L{RunInThread}.
        Default: in the calling thread, synchronously.
    @return: a Deferred firing with one L{DKIMResult} per DKIM-Signature
        field, top to bottom; an empty list when the message has none.
    @raise ValueError: C{maxSignatures} is negative.
    """
    if maxSignatures < 0:
        raise ValueError("maxSignatures must not be negative")
    if timeout is not None and clock is None:
        from twisted.internet import reactor

        clock = reactor
    if now is None:
        now = clock.seconds() if clock is not None else time.time()
    verification = _Verification(lookupTXT, now, maxSignatures, runInThread or _runHere)
    verification.start(message, clock, timeout)
    return verification.done
