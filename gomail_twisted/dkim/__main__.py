# -*- test-case-name: tests.test_dkim_keys -*-
"""
C{python -m gomail_twisted.dkim keygen}: make a DKIM signing key and print
the DNS record that publishes it (RFC 6376 3.6.2.1).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import TextIO

from cryptography.hazmat.primitives import serialization

from gomail_twisted.dkim._keys import MINIMUM_RSA_BITS, generatePrivateKey, keyRecordFor

__all__ = ["formatTXTRecord", "main"]


def formatTXTRecord(domain: str, selector: str, record: str) -> str:
    """
    Format a zone-file line publishing a key record, split into quoted
    character-strings of at most 255 octets (RFC 1035 3.3.14).

    @param domain: the signing domain.
    @param selector: the selector.
    @param record: the key record text.
    @return: the zone-file line.
    """
    chunks = [record[i : i + 255] for i in range(0, len(record), 255)]
    quoted = " ".join(f'"{chunk}"' for chunk in chunks)
    return f"{selector}._domainkey.{domain}. IN TXT ( {quoted} )"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m gomail_twisted.dkim")
    commands = parser.add_subparsers(dest="command", required=True)
    keygen = commands.add_parser("keygen", help="make a signing key")
    keygen.add_argument("--domain", required=True, help="the signing domain (d=)")
    keygen.add_argument("--selector", required=True, help="the selector (s=)")
    keygen.add_argument(
        "--algorithm", choices=("rsa", "ed25519"), default="rsa", help="key type"
    )
    keygen.add_argument("--bits", type=int, default=2048, help="RSA key size")
    keygen.add_argument(
        "--output",
        help="where to write the private key (default: SELECTOR.DOMAIN.pem)",
    )
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """
    Run the command line.

    The private key is written as unencrypted PKCS#8 PEM, created with mode
    0600 and never over an existing file.

    @param argv: the arguments, without the program name; by default
        C{sys.argv[1:]}.
    @param out: where to print the record; by default standard output.
    @return: the exit status.
    """
    out = sys.stdout if out is None else out
    args = _parser().parse_args(argv)
    if args.algorithm == "rsa" and args.bits < MINIMUM_RSA_BITS:
        print(f"error: RSA keys need at least {MINIMUM_RSA_BITS} bits", file=sys.stderr)
        return 2
    path = args.output or f"{args.selector}.{args.domain}.pem"
    key = generatePrivateKey(args.algorithm, args.bits)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as e:
        print(f"error: cannot create {path}: {e.strerror}", file=sys.stderr)
        return 1
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    print(f"; private key written to {path}", file=out)
    print(formatTXTRecord(args.domain, args.selector, keyRecordFor(key)), file=out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
