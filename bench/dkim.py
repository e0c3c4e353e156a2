# -*- test-case-name: tests.test_dkim -*-
"""
Benchmark DKIM signing and verifying against dkimpy, side by side in one
process, on the same 10 KiB message and keys; then time relaxed body
canonicalization at growing sizes up to 50 MiB to show it is linear; then
time verifying a message that carries thousands of copies of one
signature, with the default limit on signatures checked and with every
signature checked, to show that too is linear.

Run: C{python bench/dkim.py [--seconds S] [--max-ops N]
[--copies N,N]}. dkimpy needs PyNaCl for ed25519; without it those rows
are skipped.
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
import time
from collections.abc import Callable, Sequence

# The script's own directory comes first on sys.path, where this file would
# shadow dkimpy's "dkim" package; the repository root replaces it.
sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

import dkim as dkimpy  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa  # noqa: E402
from twisted.internet.defer import Deferred, succeed  # noqa: E402

from gomail_twisted.dkim import (  # noqa: E402
    DEFAULT_MAX_SIGNATURES,
    DKIMResult,
    DKIMStatus,
    canonicalizeBody,
    keyRecordFor,
    sign,
    verify,
)

DOMAIN = "example.com"
SELECTOR = "bench"


def makeMessage(size: int = 10 * 1024) -> bytes:
    """
    @param size: the approximate body size.
    @return: a plain-text message with varied whitespace.
    """
    headers = (
        b"From: Alice <alice@example.com>\r\n"
        b"To: Bob <bob@example.net>\r\n"
        b"Subject: Quarterly   report\r\n"
        b"Date: Mon, 1 Jan 2024 12:00:00 +0000\r\n"
        b"Message-ID: <bench@example.com>\r\n"
        b"MIME-Version: 1.0\r\n"
        b"Content-Type: text/plain; charset=us-ascii\r\n\r\n"
    )
    line = b"The quick  brown fox\tjumps over the lazy dog, again and again.  \r\n"
    return headers + line * (size // len(line))


def rate(f: Callable[[], object], seconds: float, maxOps: int) -> float:
    """
    @return: calls of C{f} per second, over at most C{seconds} and
        C{maxOps} calls (at least one).
    """
    f()
    count = 0
    start = time.perf_counter()
    deadline = start + seconds
    while count < maxOps:
        f()
        count += 1
        if time.perf_counter() >= deadline:
            break
    return count / (time.perf_counter() - start)


def manySignatures(counts: list[int]) -> None:
    """
    Print how long verifying a message with many copies of one RSA
    signature takes, with the default limit and with none.
    """
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    record = keyRecordFor(key).encode()
    message = makeMessage(1024)
    field = sign(message, DOMAIN, SELECTOR, key)
    print(f"{'copies':>8}{'bytes':>10}{'limit':>8}{'seconds':>10}{'checked':>9}")
    for count in counts:
        signed = field * count + message
        for limit in (DEFAULT_MAX_SIGNATURES, count):
            lookups: list[str] = []

            def lookup(
                name: str, lookups: list[str] = lookups
            ) -> Deferred[Sequence[bytes]]:
                lookups.append(name)
                return succeed([record])

            results: list[list[DKIMResult]] = []
            start = time.perf_counter()
            verify(signed, lookup, maxSignatures=limit).addCallback(results.append)
            elapsed = time.perf_counter() - start
            [verified] = results
            checked = sum(r.status is DKIMStatus.PASS for r in verified)
            assert len(lookups) == 1 and checked == limit
            print(f"{count:>8}{len(signed):>10}{limit:>8}{elapsed:>10.3f}{checked:>9}")


def ourVerify(message: bytes, record: bytes) -> Callable[[], object]:
    def run() -> object:
        results: list[object] = []
        verify(message, lambda name: succeed([record])).addCallback(results.append)
        [[result]] = results
        assert result.status is DKIMStatus.PASS, result  # type: ignore[attr-defined]
        return result

    return run


def compare(
    label: str,
    key: object,
    dkimpyKey: bytes,
    message: bytes,
    seconds: float,
    maxOps: int,
) -> None:
    """
    Print the sign and verify rates of ours and dkimpy's for one key.
    """
    algorithm = label.split()[0].encode()
    record = keyRecordFor(key).encode()  # type: ignore[arg-type]

    def ours() -> bytes:
        return sign(message, DOMAIN, SELECTOR, key)  # type: ignore[arg-type]

    def theirs() -> bytes:
        return dkimpy.sign(  # type: ignore[no-any-return]
            message,
            SELECTOR.encode(),
            DOMAIN.encode(),
            dkimpyKey,
            canonicalize=(b"relaxed", b"relaxed"),
            signature_algorithm=algorithm,
        )

    signedOurs = ours() + message
    signedTheirs = theirs() + message

    def dnsfunc(name: bytes, timeout: int = 5) -> bytes:
        return record

    def theirVerify() -> object:
        assert dkimpy.verify(signedTheirs, dnsfunc=dnsfunc)
        return None

    for op, mine, peer in [
        ("sign", ours, theirs),
        ("verify", ourVerify(signedOurs, record), theirVerify),
    ]:
        a = rate(mine, seconds, maxOps)
        b = rate(peer, seconds, maxOps)
        print(f"{label + ' ' + op:<26}{a:>12.0f}{b:>14.0f}{a / b:>7.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=1.5)
    parser.add_argument("--max-ops", type=int, default=5000)
    parser.add_argument("--max-mib", type=int, default=50)
    parser.add_argument("--copies", default="2000,8000")
    args = parser.parse_args()
    message = makeMessage()
    try:
        import nacl.signing  # noqa: F401

        haveNaCl = True
    except ImportError:
        haveNaCl = False

    rsaKey = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    edKey = ed25519.Ed25519PrivateKey.generate()
    keys: list[tuple[str, object, bytes]] = [
        (
            "rsa-sha256 2048",
            rsaKey,
            rsaKey.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            ),
        ),
        (
            "ed25519-sha256",
            edKey,
            base64.b64encode(
                edKey.private_bytes(
                    serialization.Encoding.Raw,
                    serialization.PrivateFormat.Raw,
                    serialization.NoEncryption(),
                )
            ),
        ),
    ]
    print(f"message: {len(message)} bytes, relaxed/relaxed")
    print(f"{'operation':<26}{'ours ops/s':>12}{'dkimpy ops/s':>14}{'ratio':>8}")
    for label, key, dkimpyKey in keys:
        algorithm = label.split()[0].encode()
        if algorithm == b"ed25519-sha256" and not haveNaCl:
            print(f"{label}: skipped, dkimpy needs PyNaCl for ed25519")
            continue
        compare(label, key, dkimpyKey, message, args.seconds, args.max_ops)

    print()
    print("relaxed body canonicalization (linear time check)")
    line = b"word  word\tword   trailing  \r\n"
    sizes = [mib for mib in (1, 5, 10, 25, 50) if mib <= args.max_mib]
    for mib in sizes:
        body = line * (mib * 2**20 // len(line)) + b"\r\n" * 1000
        start = time.perf_counter()
        canonicalizeBody(body, "relaxed")
        elapsed = time.perf_counter() - start
        print(
            f"{mib:>4} MiB: {elapsed * 1000:8.1f} ms"
            f"  ({elapsed / mib * 1000:6.1f} ms/MiB)"
        )

    print()
    print("many copies of one signature (linear time check)")
    manySignatures([int(n) for n in args.copies.split(",") if n])


if __name__ == "__main__":
    main()
