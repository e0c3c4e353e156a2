# -*- test-case-name: tests.test_dkim_canon,tests.test_dkim -*-
"""
DKIM keys: private keys for signing, key records (RFC 6376 3.6.1) for
verifying, and the algorithm rules of RFC 8301 and RFC 8463.
"""

from __future__ import annotations

import base64
import binascii
import functools
from dataclasses import dataclass
from typing import Literal, Union

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from gomail_twisted.tags import TagSyntaxError, parseTags

__all__ = [
    "MINIMUM_RSA_BITS",
    "KeyRecord",
    "KeyRecordError",
    "PrivateKey",
    "PublicKey",
    "algorithmForKey",
    "generatePrivateKey",
    "keyRecordFor",
    "loadPrivateKey",
    "parseKeyRecord",
]

PrivateKey = Union[rsa.RSAPrivateKey, ed25519.Ed25519PrivateKey]
PublicKey = Union[rsa.RSAPublicKey, ed25519.Ed25519PublicKey]
KeyType = Literal["rsa", "ed25519"]

MINIMUM_RSA_BITS = 1024
"""
The smallest RSA key a verifier accepts and a signer uses (RFC 8301 3.2).
"""


class KeyRecordError(ValueError):
    """
    A DKIM key record is malformed, revoked, or unusable for a signature
    (RFC 6376 3.6.1, 6.1.2).
    """


@dataclass(frozen=True)
class KeyRecord:
    """
    A parsed DKIM key record (RFC 6376 3.6.1).

    @ivar keyType: the C{k=} key type, C{"rsa"} or C{"ed25519"}.
    @ivar publicKey: the key from C{p=}.
    @ivar hashAlgorithms: the C{h=} list, or L{None} when any hash is allowed.
    @ivar services: the C{s=} service types.
    @ivar testing: whether the C{t=y} flag is set (RFC 6376 3.6.1).
    @ivar strict: whether the C{t=s} flag is set: the C{i=} domain must then
        equal C{d=}, not be a subdomain of it.
    """

    keyType: KeyType
    publicKey: PublicKey
    hashAlgorithms: tuple[str, ...] | None
    services: tuple[str, ...]
    testing: bool
    strict: bool

    @property
    def bits(self) -> int:
        """
        @return: the size of the key in bits.
        """
        if isinstance(self.publicKey, rsa.RSAPublicKey):
            return self.publicKey.key_size
        return 256


def _colonList(value: str) -> tuple[str, ...]:
    """
    @param value: a colon-separated list from a key record.
    @return: its items, whitespace dropped, lower-cased, empty ones left out.
    """
    items = ("".join(item.split()).lower() for item in value.split(":"))
    return tuple(item for item in items if item)


def _decodeBase64(value: str) -> bytes:
    """
    @param value: base64 text that may hold folding whitespace (RFC 6376 3.5).
    @return: the decoded bytes.
    @raise KeyRecordError: the text is not valid base64.
    """
    try:
        return base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        raise KeyRecordError("key data is not valid base64")


def _loadRSAPublicKey(data: bytes) -> rsa.RSAPublicKey:
    """
    Load an RSA public key as SubjectPublicKeyInfo, or as a bare PKCS#1
    RSAPublicKey (which RFC 6376 3.6.1 names, and some publishers use).

    @param data: DER bytes.
    @return: the key.
    @raise KeyRecordError: the bytes are neither form, or not RSA.
    """
    key: object
    try:
        key = serialization.load_der_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        pem = (
            b"-----BEGIN RSA PUBLIC KEY-----\n"
            + base64.encodebytes(data)
            + b"-----END RSA PUBLIC KEY-----\n"
        )
        try:
            key = serialization.load_pem_public_key(pem)
        except (ValueError, UnsupportedAlgorithm):
            raise KeyRecordError("p= is not a DER RSA public key")
    if not isinstance(key, rsa.RSAPublicKey):
        raise KeyRecordError("p= is not an RSA key")
    return key


def parseKeyRecord(record: str | bytes) -> KeyRecord:
    """
    Parse a DKIM key record (RFC 6376 3.6.1, RFC 8463 4.2).

    @param record: the TXT record, its strings joined.
    @return: the parsed record.
    @raise KeyRecordError: the tag list is malformed, C{v=} is present but
        not first or not C{DKIM1}, C{p=} is missing or empty (a revoked key,
        RFC 6376 3.6.1), C{k=} is unknown, or the key data does not decode
        to a key of that type.
    """
    try:
        tags = parseTags(record)
    except TagSyntaxError as e:
        raise KeyRecordError(f"key record syntax: {e}")
    if "v" in tags:
        if tags.pairs[0][0] != "v":
            raise KeyRecordError("v= is not the first tag of the key record")
        if tags["v"] != "DKIM1":
            raise KeyRecordError(f"unknown key record version {tags['v']!r}")
    if "p" not in tags:
        raise KeyRecordError("key record has no p= tag")
    keyData = "".join(tags["p"].split())
    if not keyData:
        raise KeyRecordError("key revoked (empty p=)")
    keyType = tags.get("k") or "rsa"
    raw = _decodeBase64(keyData)
    publicKey: PublicKey
    if keyType == "rsa":
        publicKey = _loadRSAPublicKey(raw)
    elif keyType == "ed25519":
        if len(raw) != 32:
            raise KeyRecordError("ed25519 p= is not 32 bytes (RFC 8463 4.2)")
        publicKey = ed25519.Ed25519PublicKey.from_public_bytes(raw)
    else:
        raise KeyRecordError(f"unknown key type k={keyType}")
    hashes = _colonList(tags["h"]) if "h" in tags else None
    services = _colonList(tags.get("s", "*") or "*")
    flags = _colonList(tags.get("t", "") or "")
    return KeyRecord(
        keyType="rsa" if keyType == "rsa" else "ed25519",
        publicKey=publicKey,
        hashAlgorithms=hashes,
        services=services,
        testing="y" in flags,
        strict="s" in flags,
    )


def loadPrivateKey(
    key: bytes | PrivateKey, password: bytes | None = None
) -> PrivateKey:
    """
    Load a signing key.

    @param key: a key object, or PEM bytes (PKCS#8, or PKCS#1 for RSA).
    @param password: the passphrase of an encrypted PEM key.
    @return: the key object.
    @raise ValueError: the bytes are not a PEM RSA or Ed25519 private key.
    """
    if isinstance(key, (rsa.RSAPrivateKey, ed25519.Ed25519PrivateKey)):
        return key
    return _loadPEM(bytes(key), password)


@functools.lru_cache(maxsize=32)
def _loadPEM(key: bytes, password: bytes | None) -> PrivateKey:
    # Loading checks an RSA key's consistency, which takes tens of
    # milliseconds; a signer given the same PEM for every message pays once.
    try:
        loaded = serialization.load_pem_private_key(key, password=password)
    except (TypeError, UnsupportedAlgorithm) as e:
        raise ValueError(f"cannot load private key: {e}")
    if not isinstance(loaded, (rsa.RSAPrivateKey, ed25519.Ed25519PrivateKey)):
        raise ValueError("DKIM signs with RSA or Ed25519 keys only")
    return loaded


def algorithmForKey(key: PrivateKey) -> str:
    """
    @param key: a signing key.
    @return: the C{a=} value a signature made with it carries:
        C{"rsa-sha256"} or C{"ed25519-sha256"} (RFC 8301 3.1, RFC 8463 3).
    @raise ValueError: an RSA key is smaller than L{MINIMUM_RSA_BITS}
        (RFC 8301 3.2).
    """
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < MINIMUM_RSA_BITS:
            raise ValueError(
                f"RSA key of {key.key_size} bits is under {MINIMUM_RSA_BITS}"
                " (RFC 8301 3.2)"
            )
        return "rsa-sha256"
    return "ed25519-sha256"


def generatePrivateKey(algorithm: KeyType = "rsa", bits: int = 2048) -> PrivateKey:
    """
    Make a new signing key.

    @param algorithm: C{"rsa"} or C{"ed25519"}.
    @param bits: the RSA modulus size; ignored for Ed25519.
    @return: the key.
    @raise ValueError: C{bits} is under L{MINIMUM_RSA_BITS} (RFC 8301 3.2).
    """
    if algorithm == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if bits < MINIMUM_RSA_BITS:
        raise ValueError(f"RSA keys must have at least {MINIMUM_RSA_BITS} bits")
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def keyRecordFor(key: PrivateKey | PublicKey) -> str:
    """
    Format the key record to publish for a key (RFC 6376 3.6.1, RFC 8463 4.2).

    @param key: the private key, or its public half.
    @return: the record text, such as C{"v=DKIM1; k=ed25519; p=..."}.
    """
    public = (
        key.public_key()
        if isinstance(key, (rsa.RSAPrivateKey, ed25519.Ed25519PrivateKey))
        else key
    )
    if isinstance(public, ed25519.Ed25519PublicKey):
        keyType = "ed25519"
        raw = public.public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
    else:
        keyType = "rsa"
        raw = public.public_bytes(
            serialization.Encoding.DER,
            serialization.PublicFormat.SubjectPublicKeyInfo,
        )
    return f"v=DKIM1; k={keyType}; p={base64.b64encode(raw).decode('ascii')}"
