# -*- test-case-name: tests.test_readme -*-
"""
Tests that README.rst works as written: its commands and code blocks are
taken from the file and run against the C{gomail-smtp} server on loopback.

The only change made to them is the port: the server listens on one the
system chooses rather than 2525, which may be taken, and the snippets'
C{2525} is replaced by it.  C{.venv/bin/} means the directory of the
interpreter running the tests.  The server gets C{--domain example.net}, so
that the Internet example can be delivered to it, and C{--no-dkim}, so that
no test asks the DNS.
"""

from __future__ import annotations

import ast
import imaplib
import os
import re
import shlex
import smtplib
import socket
import ssl
import textwrap
import time
from pathlib import Path

from twisted.internet.defer import Deferred, succeed
from twisted.trial.unittest import SynchronousTestCase

from gomail_twisted.dkim import DKIMStatus, verify
from gomail_twisted.maildir import MaildirStore
from tests._certs import testCA
from tests._twistd import (
    DEADLINE,
    LISTENING,
    Output,
    binary,
    run,
    spawn,
    stop,
    twistd,
)

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.rst"
_BLOCK = re.compile(r"^\.\. code-block:: (\w+)\n\n((?:(?:    .*)?\n)+)", re.MULTILINE)

#: What marks the quick start's server command among the README's blocks.
QUICK_START = "install . && .venv/bin/twistd -n gomail-smtp"


def blocks() -> list[tuple[str, str]]:
    """
    The README's code blocks.

    @return: (language, text) pairs, the text dedented.
    """
    text = README.read_text(encoding="utf-8")
    return [
        (m.group(1), textwrap.dedent(m.group(2)).strip() + "\n")
        for m in _BLOCK.finditer(text)
    ]


def block(language: str, marker: str) -> str:
    """
    The one README block of C{language} containing C{marker}.
    """
    [found] = [text for lang, text in blocks() if lang == language and marker in text]
    return found


def onPort(text: str, port: int) -> str:
    """
    C{text} with the README's port, which it must name, replaced by C{port}.
    """
    assert "2525" in text, text
    return text.replace("2525", str(port))


def delivered(maildir: Path, address: str) -> list[bytes]:
    new = maildir / address / "new"
    return [p.read_bytes() for p in sorted(new.iterdir())] if new.is_dir() else []


class BlocksTests(SynchronousTestCase):
    """
    Every block of the README is one these tests run or check.
    """

    def test_everyBlockKnown(self) -> None:
        """
        The README holds exactly the blocks the tests below know, so a new
        one cannot go untested.
        """
        markers = [
            ("sh", QUICK_START),
            ("sh", "twisted.trial tests"),
            ("sh", "import smtplib"),
            ("python", "Smarthost("),
            ("sh", "users domain add"),
            ("sh", "gomail-smtp --users"),
            ("sh", "gomail-imap4 --listen"),
            ("sh", "gomail_twisted.dkim keygen"),
            ("python", "DKIMSettings("),
            ("python", "reactor.run()"),
        ]
        self.assertEqual([lang for lang, _ in blocks()], [lang for lang, _ in markers])
        for lang, marker in markers:
            block(lang, marker)

    def test_quickStart(self) -> None:
        """
        The two quick-start commands are word for word what a fresh machine
        needs, and CI runs the test command as the README writes it.
        """
        self.assertEqual(
            block("sh", QUICK_START),
            "python3 -m venv .venv && .venv/bin/pip install . "
            "&& .venv/bin/twistd -n gomail-smtp\n",
        )
        command = block("sh", "twisted.trial tests")
        self.assertEqual(
            command,
            "python3 -m venv .venv && .venv/bin/pip install '.[test]' "
            "&& .venv/bin/python -m twisted.trial tests\n",
        )
        self.assertIn("\n" + command, (ROOT / ".ci" / "run").read_text())

    def test_pythonBlocksParse(self) -> None:
        """
        Every Python block is valid Python.
        """
        for lang, text in blocks():
            if lang == "python":
                ast.parse(text)


class ServerTests(SynchronousTestCase):
    """
    The quick start's server, and the README's ways of sending to it.
    """

    def setUp(self) -> None:
        self.cwd = Path(self.mktemp()).resolve()
        self.cwd.mkdir()
        words = shlex.split(block("sh", QUICK_START).split("&&")[-1])
        self.assertEqual(words, [".venv/bin/twistd", "-n", "gomail-smtp"])
        process = spawn(
            [
                *twistd(),
                *words[1:],
                "--listen=tcp:0:interface=127.0.0.1",
                "--domain=localhost",
                "--domain=example.net",
                "--no-dkim",
            ],
            self.cwd,
        )
        self.addCleanup(stop, process)
        assert process.stdout is not None
        self.port = int(Output(process.stdout).waitFor(LISTENING, DEADLINE).group(2))
        self.maildir = self.cwd / "maildir"

    def test_smtplib(self) -> None:
        """
        The smtplib one-liner puts its message in maildir/you@localhost/new/.
        """
        command = onPort(block("sh", "import smtplib"), self.port)
        result = run(["sh", "-c", command], self.cwd)
        self.assertEqual(result.returncode, 0, result.stderr)
        [message] = delivered(self.maildir, "you@localhost")
        self.assertTrue(message.endswith(b"\nSubject: hi\n\nhello\n"), message)

    def test_smarthost(self) -> None:
        """
        send.py, run with the virtual environment's python, prints what the
        README says and delivers to maildir/you@localhost/new/.
        """
        (self.cwd / "send.py").write_text(
            onPort(block("python", "Smarthost("), self.port)
        )
        result = run([binary("python"), "send.py"], self.cwd)
        self.assertEqual(result.returncode, 0, result.stderr)
        text = README.read_text(encoding="utf-8")
        promised = re.search(r"It prints ``(.+?)``", text, re.DOTALL)
        assert promised is not None
        expected = re.escape(onPort(" ".join(promised.group(1).split()), self.port))
        self.assertRegex(
            result.stdout, "\\A" + expected.replace(r"\.\.\.", r"\S+") + "\n\\Z"
        )
        [message] = delivered(self.maildir, "you@localhost")
        self.assertIn(b"\nSubject: Hello\n", message)
        self.assertIn(b"<p>HTML alternative</p>", message)

    def test_toTheWorld(self) -> None:
        """
        The keygen command writes the key file the Internet example opens;
        that mail, routed here, arrives signed, and the signature verifies
        against the record keygen printed.
        """
        keygen = block("sh", "gomail_twisted.dkim keygen")
        self.assertTrue(keygen.startswith(".venv/bin/python "), keygen)
        result = run(
            [
                "sh",
                "-c",
                keygen.replace(".venv/bin/python", shlex.quote(binary("python")), 1),
            ],
            self.cwd,
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        text = README.read_text(encoding="utf-8")
        promised = re.search(r"writes the private key to ``(\S+)``", text)
        assert promised is not None
        self.assertTrue((self.cwd / promised.group(1)).is_file(), os.listdir(self.cwd))
        record = "".join(result.stdout.splitlines()[-1].split('"')[1::2])

        # The README's send.py with its mail replaced by the Internet one, as
        # it says; only the route differs, since example.net's MX is not here.
        send = onPort(block("python", "Smarthost("), self.port)
        tree = ast.parse(send)
        [assign] = [
            node
            for node in tree.body
            if isinstance(node, ast.Assign)
            and [getattr(t, "id", None) for t in node.targets] == ["mail"]
        ]
        lines = send.splitlines(keepends=True)
        route = (
            "import dataclasses\n"
            "mail = dataclasses.replace(\n"
            f"    mail, smarthost=Smarthost('127.0.0.1', {self.port}),\n"
            "    requireServerNameOfReceivingAddresses=False,\n"
            ")\n"
        )
        assert assign.end_lineno is not None
        script = (
            "".join(lines[: assign.lineno - 1])
            + block("python", "DKIMSettings(")
            + route
            + "".join(lines[assign.end_lineno :])
        )
        (self.cwd / "world.py").write_text(script)
        result = run([binary("python"), "world.py"], self.cwd)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("('you@example.net',) 250 2.0.0", result.stdout)
        [message] = delivered(self.maildir, "you@example.net")

        def lookupTXT(name: str) -> Deferred[list[bytes]]:
            self.assertEqual(name, "mail._domainkey.example.com")
            return succeed([record.encode()])

        [dkim] = self.successResultOf(verify(message, lookupTXT))
        self.assertEqual(
            (dkim.status, dkim.domain, dkim.selector),
            (DKIMStatus.PASS, "example.com", "mail"),
            dkim.reason,
        )


class UsersTests(SynchronousTestCase):
    """
    The users section: its commands make a users file, and the server given
    it delivers to users and aliases and lets them log in.
    """

    def test_usersFile(self) -> None:
        """
        The commands run as written; the server started with the file takes
        mail for the alias into the user's Maildir, refuses an unknown
        address of the domain with 550 5.1.1, and accepts the user's login
        after STARTTLS.
        """
        cwd = Path(self.mktemp()).resolve()
        cwd.mkdir()
        for line in block("sh", "users domain add").splitlines():
            command = line.replace(".venv/bin/python", shlex.quote(binary("python")))
            result = run(["sh", "-c", command], cwd)
            self.assertEqual(result.returncode, 0, (line, result.stderr))
        self.assertIn(
            b"user alice@example.com $argon2id$",
            (cwd / "gomail-data" / "users").read_bytes(),
        )
        words = shlex.split(block("sh", "gomail-smtp --users"))
        self.assertEqual(words[:3], [".venv/bin/twistd", "-n", "gomail-smtp"])
        process = spawn(
            [*twistd(), *words[1:], "--listen=tcp:0:interface=127.0.0.1", "--no-dkim"],
            cwd,
        )
        self.addCleanup(stop, process)
        assert process.stdout is not None
        port = int(Output(process.stdout).waitFor(LISTENING, DEADLINE).group(2))
        with smtplib.SMTP("127.0.0.1", port, timeout=DEADLINE) as client:
            client.starttls(context=ssl._create_unverified_context())
            client.login("alice@example.com", "a long passphrase")
            refused = client.sendmail(
                "alice@example.com",
                ["postmaster@example.com", "bob@example.com"],
                b"Subject: users\r\n\r\nhello\r\n",
            )
        self.assertEqual(
            refused, {"bob@example.com": (550, b"5.1.1 No such recipient here")}
        )
        [message] = delivered(cwd / "maildir", "alice@example.com")
        self.assertTrue(message.endswith(b"\nSubject: users\n\nhello\n"), message)


class IMAPTests(SynchronousTestCase):
    """
    The IMAP section: its command serves the users file's users.
    """

    def test_imapServer(self) -> None:
        """
        The command, on system-chosen ports and with a certificate made
        here as C{key.pem} and C{cert.pem}, serves Alice's mail over
        implicit TLS and over STARTTLS, and refuses her password in clear
        text.
        """
        cwd = Path(self.mktemp()).resolve()
        cwd.mkdir()
        for line in block("sh", "users domain add").splitlines():
            command = line.replace(".venv/bin/python", shlex.quote(binary("python")))
            result = run(["sh", "-c", command], cwd)
            self.assertEqual(result.returncode, 0, (line, result.stderr))
        key, cert = testCA().issue("localhost")
        (cwd / "key.pem").write_bytes(key)
        (cwd / "cert.pem").write_bytes(cert)
        store = MaildirStore(cwd / "maildir")
        self.addCleanup(store.close)
        store.deliver(["alice@example.com"], b"Subject: over IMAP\r\n\r\nhi\r\n")
        # The shell joins the lines ending in a backslash.
        words = shlex.split(block("sh", "gomail-imap4 --listen").replace("\\\n", " "))
        self.assertEqual(words[:3], [".venv/bin/twistd", "-n", "gomail-imap4"])
        local = "tcp:0:interface=127.0.0.1"
        words = [
            w.replace("tcp:143", local).replace("ssl:993", "ssl:0:interface=127.0.0.1")
            for w in words
        ]
        process = spawn([*twistd(), *words[1:]], cwd)
        self.addCleanup(stop, process)
        assert process.stdout is not None
        output = Output(process.stdout)
        ports = {
            "ssl" if "(ssl:" in m.string else "tcp": int(m.group(2))
            for m in (output.waitFor(LISTENING, DEADLINE) for _ in range(2))
        }
        context = ssl.create_default_context(cadata=testCA().certPEM.decode())
        with imaplib.IMAP4_SSL(
            "localhost", ports["ssl"], ssl_context=context, timeout=DEADLINE
        ) as client:
            client.login("alice@example.com", "a long passphrase")
            self.assertEqual(client.select("INBOX"), ("OK", [b"1"]))
        with imaplib.IMAP4("localhost", ports["tcp"], timeout=DEADLINE) as client:
            self.assertIn("LOGINDISABLED", client.capabilities)
            client.starttls(ssl_context=context)
            client.login("alice@example.com", "a long passphrase")
            self.assertEqual(client.select("INBOX"), ("OK", [b"1"]))


class EmbeddingTests(SynchronousTestCase):
    """
    The embedding example, run as a program.
    """

    def test_embedded(self) -> None:
        """
        The example serves on loopback, stores mail for example.com in
        received.eml and refuses other recipients with its 550 5.1.1.
        """
        cwd = Path(self.mktemp()).resolve()
        cwd.mkdir()
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        (cwd / "server.py").write_text(onPort(block("python", "reactor.run()"), port))
        process = spawn([binary("python"), "server.py"], cwd)
        self.addCleanup(stop, process)
        deadline = time.monotonic() + DEADLINE
        while True:
            self.assertIsNone(process.poll(), "the example exited")
            try:
                client = smtplib.SMTP("127.0.0.1", port, timeout=10)
                break
            except OSError:
                self.assertLess(
                    time.monotonic(), deadline, "the example never listened"
                )
                time.sleep(0.1)
        with client:
            self.assertIn(b"mx.example.com", client.ehlo()[1])
            refused = client.sendmail(
                "me@example.net",
                ["alice@example.com", "bob@example.org"],
                b"Subject: embedded\r\n\r\nhello\r\n",
            )
        self.assertEqual(
            refused, {"bob@example.org": (550, b"5.1.1 No such user here")}
        )
        received = (cwd / "received.eml").read_bytes()
        self.assertTrue(
            received.endswith(b"Subject: embedded\r\n\r\nhello\r\n"), received
        )
