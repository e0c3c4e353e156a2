# -*- test-case-name: tests.test_dkim -*-
"""
DKIM signing (RFC 6376 5), with rsa-sha256 (RFC 8301) and ed25519-sha256
(RFC 8463), and the header selection both signing and verifying share.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Sequence

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa

from gomail_twisted.dkim._canon import (
    Canonicalization,
    HeaderField,
    canonicalizeBody,
    canonicalizeHeader,
    parseMessage,
)
from gomail_twisted.dkim._keys import PrivateKey, algorithmForKey, loadPrivateKey

__all__ = ["DEFAULT_SIGNED_HEADERS", "headerHashInput", "sign"]

DEFAULT_SIGNED_HEADERS: tuple[str, ...] = (
    "from",
    "sender",
    "reply-to",
    "subject",
    "date",
    "message-id",
    "to",
    "cc",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "content-id",
    "content-description",
    "resent-date",
    "resent-from",
    "resent-sender",
    "resent-to",
    "resent-cc",
    "resent-message-id",
    "in-reply-to",
    "references",
    "list-id",
    "list-help",
    "list-unsubscribe",
    "list-subscribe",
    "list-post",
    "list-owner",
    "list-archive",
)
"""
The header fields L{sign} covers by default, those RFC 6376 5.4.1 names as
ones a signature should cover, each signed as many times as it appears;
C{From} is signed once more (RFC 6376 8.15) so that no second C{From} can be
added without breaking the signature.
"""

_LINE_WIDTH = 78
_TOKEN = re.compile(r"\A[A-Za-z0-9._-]+\Z")
_HEADER_NAME = re.compile(r"\A[\x21-\x39\x3b-\x7e]+\Z")


def headerHashInput(
    fields: Sequence[HeaderField],
    names: Sequence[str],
    algorithm: Canonicalization,
) -> bytes:
    """
    Select and canonicalize the signed header fields (RFC 6376 5.4.2).

    Each name picks the bottom-most instance of that field not yet picked;
    a name with no instance left contributes nothing.

    @param fields: the message's header fields, top to bottom.
    @param names: the C{h=} names, in order, lower-cased.
    @param algorithm: the header canonicalization.
    @return: the canonical fields, concatenated, each ending in CRLF.
    """
    byName: dict[str, list[bytes]] = {}
    for header in fields:
        byName.setdefault(header.name, []).append(header.raw)
    out = []
    for name in names:
        instances = byName.get(name)
        if instances:
            out.append(canonicalizeHeader(instances.pop(), algorithm))
    return b"".join(out)


def signDigestInput(key: PrivateKey, data: bytes) -> bytes:
    """
    Sign the header hash input (RFC 6376 3.7).

    @param key: an RSA key (RSASSA-PKCS1-v1_5 over SHA-256, RFC 8301) or an
        Ed25519 key (PureEdDSA over the SHA-256 hash, RFC 8463 3).
    @param data: the canonical signed header fields and signature field.
    @return: the signature.
    """
    if isinstance(key, rsa.RSAPrivateKey):
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    return key.sign(hashlib.sha256(data).digest())


def _fold(tokens: Sequence[str], start: int) -> tuple[str, int]:
    """
    Join tokens with spaces, breaking lines before a token that would pass
    the line width.

    @param tokens: unbreakable pieces of a header field value.
    @param start: the length of the line before the first token.
    @return: the folded text and the length of its last line.
    """
    out: list[str] = []
    column = start
    for token in tokens:
        if column + 1 + len(token) > _LINE_WIDTH and column > 1:
            out.append("\r\n ")
            column = 1
        else:
            out.append(" ")
            column += 1
        out.append(token)
        column += len(token)
    return "".join(out), column


def _foldBase64(value: str, column: int) -> str:
    """
    Split a base64 value across lines; the folding whitespace is dropped
    again when the value is read (RFC 6376 3.5, C{b=}).

    @param value: the base64 text.
    @param column: the length of the line before it.
    @return: the folded text.
    """
    width = _LINE_WIDTH - 1
    first = _LINE_WIDTH - column
    chunks = [value[:first]] if first >= 8 else ["", value[:width]]
    consumed = len(chunks[-1])
    chunks.extend(value[i : i + width] for i in range(consumed, len(value), width))
    return "\r\n ".join(chunks)


def _checkCanonicalization(
    canonicalization: tuple[str, str],
) -> tuple[Canonicalization, Canonicalization]:
    """
    @param canonicalization: the header and body algorithms.
    @return: them, checked.
    @raise ValueError: either is neither C{"simple"} nor C{"relaxed"}.
    """
    header, body = canonicalization
    if header not in ("simple", "relaxed") or body not in ("simple", "relaxed"):
        raise ValueError(f"unknown canonicalization {canonicalization!r}")
    return header, body  # type: ignore[return-value]


def sign(
    message: bytes,
    domain: str,
    selector: str,
    privateKey: bytes | PrivateKey,
    headers: Sequence[str] | None = None,
    canonicalization: tuple[str, str] = ("relaxed", "relaxed"),
    identity: str | None = None,
    bodyLength: bool = False,
    timestamp: int | None = None,
    expiration: int | None = None,
) -> bytes:
    """
    Sign a message (RFC 6376 5).

    @param message: the whole message; bare LF line ends are read as CRLF.
    @param domain: the signing domain (C{d=}).
    @param selector: the selector (C{s=}); the key is published at
        C{<selector>._domainkey.<domain>}.
    @param privateKey: an RSA key of at least 1024 bits or an Ed25519 key,
        as a key object or PEM bytes; it chooses C{a=} (rsa-sha256 or
        ed25519-sha256).
    @param headers: the names of the fields to sign, in C{h=} order; each
        name signs one instance, from the bottom up, and a name listed more
        often than the field appears guards against additions. By default,
        L{DEFAULT_SIGNED_HEADERS} that are present, with C{From} over-signed.
    @param canonicalization: the header and body algorithms (C{c=}), each
        C{"simple"} or C{"relaxed"}.
    @param identity: the agent or user identifier (C{i=}), such as
        C{"user@example.com"} or C{"@mail.example.com"}; its domain must be
        C{domain} or a subdomain of it.
    @param bodyLength: whether to add C{l=} with the canonical body's length
        (RFC 6376 3.5; it lets content be appended, see 8.2).
    @param timestamp: the signing time for C{t=}, in seconds since the
        epoch, or L{None} to leave C{t=} out.
    @param expiration: the expiry time for C{x=}, or L{None} to leave it out.
    @return: the C{DKIM-Signature} field, folded and ending in CRLF, to be
        put at the top of the message.
    @raise ValueError: the key cannot be used, the message has no C{From}
        field, the header list leaves C{From} out, or a parameter is not
        valid in a signature.
    """
    key = loadPrivateKey(privateKey)
    algorithm = algorithmForKey(key)
    headerCanon, bodyCanon = _checkCanonicalization(canonicalization)
    if not _TOKEN.match(domain) or not _TOKEN.match(selector):
        raise ValueError("domain and selector must be ASCII names")
    if identity is not None:
        _, at, identityDomain = identity.rpartition("@")
        identityDomain = identityDomain.lower()
        if (
            not at
            or not identity.isascii()
            or re.search(r"[\s;]", identity)
            or not (
                identityDomain == domain.lower()
                or identityDomain.endswith("." + domain.lower())
            )
        ):
            raise ValueError("identity must be an address in the signing domain")
    if expiration is not None and timestamp is not None and expiration <= timestamp:
        raise ValueError("expiration must come after timestamp")
    parsed = parseMessage(message)
    present = [field.name for field in parsed.headers]
    if "from" not in present:
        raise ValueError("the message has no From field (RFC 6376 5.4)")
    if headers is None:
        names: list[str] = []
        for name in DEFAULT_SIGNED_HEADERS:
            names.extend([name] * present.count(name))
        names.append("from")
    else:
        names = [name.strip().lower() for name in headers]
        if "from" not in names:
            raise ValueError("the From field must be signed (RFC 6376 5.4)")
        for name in names:
            if not _HEADER_NAME.match(name):
                raise ValueError(f"invalid header field name {name!r}")

    body = canonicalizeBody(parsed.body, bodyCanon)
    bodyHash = base64.b64encode(hashlib.sha256(body).digest()).decode("ascii")

    tokens = [
        "v=1;",
        f"a={algorithm};",
        f"c={headerCanon}/{bodyCanon};",
        f"d={domain};",
        f"s={selector};",
    ]
    if identity is not None:
        tokens.append(f"i={identity};")
    if timestamp is not None:
        tokens.append(f"t={int(timestamp)};")
    if expiration is not None:
        tokens.append(f"x={int(expiration)};")
    if bodyLength:
        tokens.append(f"l={len(body)};")
    hTokens = [f"{name}:" for name in names]
    hTokens[0] = "h=" + hTokens[0]
    hTokens[-1] = hTokens[-1][:-1] + ";"
    tokens.extend(hTokens)
    tokens.append(f"bh={bodyHash};")
    tokens.append("b=")
    folded, column = _fold(tokens, len("DKIM-Signature:"))
    unsigned = "DKIM-Signature:" + folded

    data = headerHashInput(parsed.headers, names, headerCanon) + canonicalizeHeader(
        unsigned.encode("ascii"), headerCanon
    )
    signature = base64.b64encode(signDigestInput(key, data)).decode("ascii")
    return (unsigned + _foldBase64(signature, column) + "\r\n").encode("ascii")
