# -*- test-case-name: tests.test_dkim_keygen -*-
"""
Tests for C{python -m gomail_twisted.dkim keygen}: which names it accepts,
where it writes the key, and the command as the README runs it.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from twisted.trial.unittest import SynchronousTestCase

import gomail_twisted
from gomail_twisted.dkim import parseKeyRecord
from gomail_twisted.dkim.__main__ import defaultKeyPath, main


class NamesTests(SynchronousTestCase):
    """
    The domain and selector are published in DNS, so keygen refuses names
    that cannot be.
    """

    def keygen(self, domain: str, selector: str) -> tuple[int, str, list[str]]:
        """
        Run keygen in an empty directory.

        @return: the exit status, what it printed as errors, and the files
            in the directory afterwards.
        """
        directory = Path(self.mktemp())
        directory.mkdir()
        out, err = io.StringIO(), io.StringIO()
        argv = ["keygen", f"--domain={domain}", f"--selector={selector}"]
        argv += ["--algorithm", "ed25519"]
        cwd = os.getcwd()
        os.chdir(directory)
        try:
            status = main(argv, out, err)
        finally:
            os.chdir(cwd)
        return status, err.getvalue(), sorted(os.listdir(directory))

    def test_refused(self) -> None:
        """
        A malformed domain or selector is exit status 2, an error naming the
        option and the value, and no key file.
        """
        cases = [
            ("exa_mple..com", "mail", "--domain 'exa_mple..com' is not a host"),
            ("example..com", "mail", "--domain 'example..com' is not a host"),
            ("example.com.", "mail", "--domain 'example.com.' is not a host"),
            ("-example.com", "mail", "--domain '-example.com' is not a host"),
            ("", "mail", "--domain '' is not a host"),
            ("b\u00fccher.example", "mail", "is not ASCII: give its A-label"),
            ("example.com", "m;x", "--selector 'm;x' is not a host"),
            ("example.com", "m x", "--selector 'm x' is not a host"),
            ("example.com", "../mail", "--selector '../mail' is not a host"),
            ("example.com", "a/b", "--selector 'a/b' is not a host"),
            ("example.com", "s_1", "--selector 's_1' is not a host"),
            ("a" * 60 + ".example", ".".join(["s" * 63] * 3), "longer than 253"),
        ]
        for domain, selector, expected in cases:
            status, err, files = self.keygen(domain, selector)
            self.assertEqual((status, files), (2, []), (domain, selector))
            self.assertTrue(err.startswith("error: "), err)
            self.assertIn(expected, err)

    def test_accepted(self) -> None:
        """
        Host names of letters, digits and hyphens, A-labels and dotted
        selectors are accepted, and the key is written to
        SELECTOR.DOMAIN.pem.
        """
        cases = [
            ("example.com", "mail"),
            ("Mail-1.Example.COM", "2026-11"),
            ("xn--bcher-kva.example", "mail"),
            ("example.com", "eu.mail"),
            ("localhost", "s"),
        ]
        for domain, selector in cases:
            status, err, files = self.keygen(domain, selector)
            self.assertEqual((status, err), (0, ""), (domain, selector))
            self.assertEqual(files, [f"{selector}.{domain}.pem"])
            self.assertEqual(defaultKeyPath(domain, selector), files[0])


class CommandTests(SynchronousTestCase):
    """
    The command as an operator runs it: C{python -m gomail_twisted.dkim}.
    """

    def test_fromCheckout(self) -> None:
        """
        Run with this interpreter from an empty directory, the command writes
        mail.example.com.pem, mode 0600, and prints a record of its public
        key; a bad name exits 2 without a traceback.
        """
        cwd = Path(self.mktemp())
        cwd.mkdir()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.path.dirname(os.path.dirname(gomail_twisted.__file__))
        command = [sys.executable, "-m", "gomail_twisted.dkim", "keygen"]
        result = subprocess.run(
            [*command, "--domain", "example.com", "--selector", "mail"],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        path = cwd / "mail.example.com.pem"
        self.assertEqual(path.stat().st_mode & 0o777, 0o600)
        key = serialization.load_pem_private_key(path.read_bytes(), None)
        record = "".join(result.stdout.splitlines()[-1].split('"')[1::2])
        self.assertEqual(
            result.stdout.splitlines()[-1].split('"')[0],
            "mail._domainkey.example.com. IN TXT ( ",
        )
        spki = (
            serialization.Encoding.DER,
            serialization.PublicFormat.SubjectPublicKeyInfo,
        )
        self.assertEqual(
            parseKeyRecord(record).publicKey.public_bytes(*spki),
            key.public_key().public_bytes(*spki),
        )
        bad = subprocess.run(
            [*command, "--domain", "exa_mple..com", "--selector", "mail"],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        self.assertEqual(bad.returncode, 2)
        self.assertEqual(
            bad.stderr,
            "error: --domain 'exa_mple..com' is not a host name: dot-separated "
            "labels of letters, digits and inner hyphens\n",
        )
