# -*- test-case-name: tests.test_dkim_keygen -*-
"""
C{python -m gomail_twisted.dkim keygen}: make a DKIM signing key and print
the DNS record that publishes it (RFC 6376 3.6.2.1).

    .venv/bin/python -m gomail_twisted.dkim keygen --domain example.com \\
        --selector mail

writes the private key to C{mail.example.com.pem} (C{SELECTOR.DOMAIN.pem})
unless C{--output} names another file.  The domain and the selector must
be ASCII host names (RFC 6376 3.1 and 3.5: C{d=} is a domain name, C{s=}
dot-separated sub-domains), since they are published as
C{SELECTOR._domainkey.DOMAIN}.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import TextIO

from cryptography.hazmat.primitives import serialization

from gomail_twisted._hostname import isHostName
from gomail_twisted.dkim._keys import MINIMUM_RSA_BITS, generatePrivateKey, keyRecordFor

__all__ = ["defaultKeyPath", "formatTXTRecord", "main"]

# RFC 1035 2.3.4: a whole name, SELECTOR._domainkey.DOMAIN, is at most 253
# characters written without the trailing dot.
_MAX_NAME = 253


def defaultKeyPath(domain: str, selector: str) -> str:
    """
    Where C{keygen} writes the private key when C{--output} is not given.

    @param domain: the signing domain.
    @param selector: the selector.
    @return: C{"SELECTOR.DOMAIN.pem"}, in the working directory.
    """
    return f"{selector}.{domain}.pem"


def _checkNames(domain: str, selector: str) -> str | None:
    """
    Why C{domain} and C{selector} cannot be published, or L{None} when they
    can.
    """
    for option, value in (("--domain", domain), ("--selector", selector)):
        if not value.isascii():
            return (
                f"{option} {value!r} is not ASCII: give its A-label form "
                "(xn--...), as DNS stores it"
            )
        if not isHostName(value):
            return (
                f"{option} {value!r} is not a host name: dot-separated labels "
                "of letters, digits and inner hyphens"
            )
    name = f"{selector}._domainkey.{domain}"
    if len(name) > _MAX_NAME:
        return f"{name} is longer than {_MAX_NAME} characters"
    return None


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
        help="where to write the private key "
        f"(default: {defaultKeyPath('DOMAIN', 'SELECTOR')})",
    )
    return parser


def main(
    argv: Sequence[str] | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """
    Run the command line.

    The private key is written as unencrypted PKCS#8 PEM, created with mode
    0600 and never over an existing file.

    @param argv: the arguments, without the program name; by default
        C{sys.argv[1:]}.
    @param out: where to print the record; by default standard output.
    @param err: where to print errors; by default standard error.
    @return: the exit status: 0, 1 when the key file cannot be created, 2
        for bad arguments (argparse exits with 2 itself for unknown ones).
    """
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    args = _parser().parse_args(argv)
    problem = _checkNames(args.domain, args.selector)
    if problem is not None:
        print(f"error: {problem}", file=err)
        return 2
    if args.algorithm == "rsa" and args.bits < MINIMUM_RSA_BITS:
        print(f"error: RSA keys need at least {MINIMUM_RSA_BITS} bits", file=err)
        return 2
    path = args.output or defaultKeyPath(args.domain, args.selector)
    key = generatePrivateKey(args.algorithm, args.bits)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as e:
        print(f"error: cannot create {path}: {e.strerror}", file=err)
        return 1
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    print(f"; private key written to {path}", file=out)
    print(formatTXTRecord(args.domain, args.selector, keyRecordFor(key)), file=out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
