# -*- test-case-name: tests.test_dkim_canon -*-
"""
Tests for DKIM canonicalization (RFC 6376 3.4), message splitting, key
records and the keygen command.
"""

from __future__ import annotations

import base64
import io
import os
import stat

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from twisted.trial.unittest import SynchronousTestCase

from gomail_twisted.dkim import (
    KeyRecordError,
    canonicalizeBody,
    canonicalizeHeader,
    loadPrivateKey,
    parseKeyRecord,
)
from gomail_twisted.dkim.__main__ import main
from gomail_twisted.dkim._canon import parseMessage

BODIES: list[tuple[bytes, bytes, bytes]] = [
    # body, simple, relaxed
    (b"", b"\r\n", b""),
    (b"\r\n", b"\r\n", b""),
    (b"\r\n\r\n\r\n", b"\r\n", b""),
    (b"abc", b"abc\r\n", b"abc\r\n"),
    (b"abc\r\n", b"abc\r\n", b"abc\r\n"),
    (b"abc\r\n\r\n\r\n", b"abc\r\n", b"abc\r\n"),
    (b" C \r\nD \t E\r\n\r\n\r\n", b" C \r\nD \t E\r\n", b" C\r\nD E\r\n"),
    (b"a\r\n \t \r\n", b"a\r\n \t \r\n", b"a\r\n"),
    (b"a   ", b"a   \r\n", b"a\r\n"),
    (b"a\r\r\n\r\n", b"a\r\r\n", b"a\r\r\n"),
    (b"x" + b" " * 40 + b"y\r\n", b"x" + b" " * 40 + b"y\r\n", b"x y\r\n"),
    (b"\t\tz\r\n", b"\t\tz\r\n", b" z\r\n"),
]

HEADERS: list[tuple[bytes, bytes]] = [
    (b"Subject: hello\r\n", b"subject:hello\r\n"),
    (b"SubJect :  A \t  B  \r\n", b"subject:A B\r\n"),
    (b"To: a,\r\n  b\r\n", b"to:a, b\r\n"),
    (b"X-Empty:\r\n", b"x-empty:\r\n"),
    (b"X-Fold:\r\n\tvalue \r\n", b"x-fold:value\r\n"),
]


class CanonicalizationTests(SynchronousTestCase):
    """
    Tables of bodies and header fields in both canonical forms.
    """

    def test_bodies(self) -> None:
        """
        Bodies canonicalize as RFC 6376 3.4.3 and 3.4.4 say.
        """
        for body, simple, relaxed in BODIES:
            with self.subTest(body=body):
                self.assertEqual(canonicalizeBody(body, "simple"), simple)
                self.assertEqual(canonicalizeBody(body, "relaxed"), relaxed)

    def test_headers(self) -> None:
        """
        Header fields canonicalize as RFC 6376 3.4.1 and 3.4.2 say.
        """
        for raw, relaxed in HEADERS:
            with self.subTest(raw=raw):
                self.assertEqual(canonicalizeHeader(raw, "simple"), raw)
                self.assertEqual(canonicalizeHeader(raw, "relaxed"), relaxed)

    def test_parseMessage(self) -> None:
        """
        A message splits into fields (folding kept, names lower-cased) and
        body; LF line ends become CRLF; a line without a colon is skipped.
        """
        parsed = parseMessage(b"From  a\nSubject: x\n  y\nTo: z\n\nbody\n")
        self.assertEqual(
            [(f.name, f.raw) for f in parsed.headers],
            [("subject", b"Subject: x\r\n  y\r\n"), ("to", b"To: z\r\n")],
        )
        self.assertEqual(parsed.body, b"body\r\n")
        self.assertEqual(parseMessage(b"\r\nonly body").headers, ())
        self.assertEqual(parseMessage(b"A: b").headers[0].raw, b"A: b\r\n")


class KeyRecordTests(SynchronousTestCase):
    """
    Tests for L{parseKeyRecord}.
    """

    def test_flagsAndDefaults(self) -> None:
        """
        Defaults are k=rsa, any hash, any service, no flags; C{t=} flags and
        lists are read whatever the whitespace.
        """
        key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
        der = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        p = base64.b64encode(der).decode()
        plain = parseKeyRecord(f"p={p}")
        self.assertEqual(
            (plain.keyType, plain.hashAlgorithms, plain.services, plain.testing),
            ("rsa", None, ("*",), False),
        )
        self.assertEqual(plain.bits, 1024)
        flagged = parseKeyRecord(f"v=DKIM1; h=sha1 : sha256; s=email; t=y:s; p={p}")
        self.assertEqual(flagged.hashAlgorithms, ("sha1", "sha256"))
        self.assertTrue(flagged.testing and flagged.strict)
        pkcs1 = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.PKCS1
        )
        bare = parseKeyRecord(b"k=rsa; p=" + base64.b64encode(pkcs1))
        self.assertEqual(bare.bits, 1024)

    def test_revoked(self) -> None:
        """
        An empty C{p=} is a revoked key.
        """
        error = self.assertRaises(KeyRecordError, parseKeyRecord, "v=DKIM1; p=")
        self.assertIn("revoked", str(error))


class LoadPrivateKeyTests(SynchronousTestCase):
    """
    Tests for L{loadPrivateKey}.
    """

    def test_pemLoadedOnce(self) -> None:
        """
        The same PEM gives the same key object, so a signer handed PEM for
        every message does not check the RSA key again each time; other
        PEM gives another key, and junk is a L{ValueError}.
        """
        first = rsa.generate_private_key(public_exponent=65537, key_size=1024)
        second = ed25519.Ed25519PrivateKey.generate()
        pems = [
            k.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            for k in (first, second)
        ]
        loaded = loadPrivateKey(pems[0])
        self.assertIs(loadPrivateKey(pems[0]), loaded)
        assert isinstance(loaded, rsa.RSAPrivateKey)
        self.assertEqual(loaded.private_numbers(), first.private_numbers())
        self.assertIsInstance(loadPrivateKey(pems[1]), ed25519.Ed25519PrivateKey)
        self.assertRaises(ValueError, loadPrivateKey, b"not a key")


class KeygenTests(SynchronousTestCase):
    """
    Tests for C{python -m gomail_twisted.dkim keygen}.
    """

    def keygen(self, *args: str) -> tuple[str, str]:
        directory = self.mktemp()
        os.makedirs(directory)
        path = os.path.join(directory, "key.pem")
        out = io.StringIO()
        status = main(
            [
                "keygen",
                "--domain",
                "example.com",
                "--selector",
                "s1",
                "--output",
                path,
                *args,
            ],
            out,
        )
        self.assertEqual(status, 0)
        return path, out.getvalue()

    def test_ed25519(self) -> None:
        """
        An Ed25519 key is written with mode 0600, and the printed record
        publishes its public half.
        """
        path, output = self.keygen("--algorithm", "ed25519")
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        with open(path, "rb") as f:
            key = serialization.load_pem_private_key(f.read(), None)
        assert isinstance(key, ed25519.Ed25519PrivateKey)
        line = output.splitlines()[-1]
        self.assertTrue(line.startswith('s1._domainkey.example.com. IN TXT ( "'))
        record = parseKeyRecord(line.split('"')[1])
        self.assertEqual(record.publicKey, key.public_key())

    def test_rsaSplitsStrings(self) -> None:
        """
        A 2048-bit RSA record is split into strings of at most 255 bytes
        that join back to a record of the key; an existing file is never
        overwritten.
        """
        path, output = self.keygen("--algorithm", "rsa", "--bits", "2048")
        strings = output.splitlines()[-1].split('"')[1::2]
        self.assertGreater(len(strings), 1)
        self.assertTrue(all(len(s) <= 255 for s in strings))
        self.assertEqual(parseKeyRecord("".join(strings)).bits, 2048)
        with open(path, "rb") as f:
            before = f.read()
        status = main(
            ["keygen", "--domain", "example.com", "--selector", "s1", "--output", path],
            io.StringIO(),
        )
        self.assertEqual(status, 1)
        with open(path, "rb") as f:
            self.assertEqual(f.read(), before)
