# -*- test-case-name: tests.test_readme -*-
"""
Tests that README.rst works as written: its commands and code blocks are
taken from the file and run against the quick start's C{twistd gomail} on
loopback.

The changes made to them: the ports (the server listens on ones the system
chooses rather than 2525 and the others, which may be taken, and the
snippets' C{2525} is replaced by the SMTP one); C{users add} gets
C{--password-stdin} and its password on standard input rather than at a
prompt.  C{.venv/bin/} means the directory of the interpreter running the
tests.  The server is also given a configuration that declares
C{example.net}, so that the Internet example can be delivered to it, and
turns DKIM verification off, so that no test asks the DNS; paths of the
README's configuration under C{/etc/} are replaced by files made here.
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
import subprocess
import textwrap
import time
from pathlib import Path

from twisted.internet.defer import Deferred, succeed
from twisted.trial.unittest import SynchronousTestCase

from gomail_twisted.dkim import DKIMStatus, generatePrivateKey, verify
from gomail_twisted.maildir import MaildirStore
from gomail_twisted.tap._config import DEFAULT_LISTEN, SERVICES, ConfigError, loadConfig
from gomail_twisted.tap.gomail import LABELS, Options
from gomail_twisted.tap.gomail import LISTENING as LISTENING_LINE
from gomail_twisted.tls import selfSignedCertificate
from tests._certs import testCA
from tests._twistd import (
    DEADLINE,
    GOMAIL_ANY_PORT,
    GOMAIL_LISTENING,
    LISTENING,
    Output,
    binary,
    environment,
    gomailPorts,
    run,
    spawn,
    stop,
    twistd,
)
from tests.test_ipac_fail2ban import matchLine

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.rst"
_BLOCK = re.compile(r"^\.\. code-block:: (\w+)\n\n((?:(?:    .*)?\n)+)", re.MULTILINE)

#: What marks the quick start's server command among the README's blocks.
QUICK_START = "install . && .venv/bin/twistd -n gomail"

#: The password the tests give C{users add}.
PASSWORD = "a long passphrase"


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


def shell(text: str) -> str:
    """
    A README command as the tests run it: C{.venv/bin/python} is this
    interpreter.
    """
    return text.replace(".venv/bin/python", shlex.quote(binary("python")))


def addUser(cwd: Path, command: str, address: str) -> None:
    """
    Run the README's C{users add} command, given C{--password-stdin}, for
    C{address}.
    """
    command = shell(command).strip().replace("you@localhost", address)
    result = subprocess.run(
        ["sh", "-c", command + " --password-stdin"],
        cwd=cwd,
        env=environment(),
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )
    assert result.returncode == 0, (command, result.stderr)


def startGomail(test: SynchronousTestCase, cwd: Path) -> dict[str, int]:
    """
    Start the quick start's C{twistd -n gomail} in C{cwd}, on ports the
    system chooses, with DKIM verification off and C{example.net}
    declared.

    @return: each service's port, by its label.
    """
    words = shlex.split(block("sh", QUICK_START).split("&&")[-1])
    test.assertEqual(words, [".venv/bin/twistd", "-n", "gomail"])
    (cwd / "test.toml").write_text(
        'domains = ["localhost", "example.net"]\n[smtp]\ndkim-verify = false\n'
    )
    process = spawn(
        [*twistd(), *words[1:], *GOMAIL_ANY_PORT, "--config=test.toml"], cwd
    )
    test.addCleanup(stop, process)
    assert process.stdout is not None
    return gomailPorts(Output(process.stdout))


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
            ("sh", "users add you@localhost"),
            ("sh", "import smtplib"),
            ("python", "Smarthost("),
            ("sh", "users domain add"),
            ("sh", "gomail-imap4 --listen"),
            ("toml", "[dkim."),
            ("text", "_dmarc"),
            ("ini", "ExecStart="),
            ("sh", "fail2ban-client reload"),
            ("sh", "gomail_twisted.dkim keygen"),
            ("python", "DKIMSettings("),
            ("python", "FunctionBackend("),
            ("python", "IPAccessControl(reactor)"),
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
            "&& .venv/bin/twistd -n gomail\n",
        )
        command = block("sh", "twisted.trial tests")
        self.assertEqual(
            command,
            "python3 -m venv .venv && .venv/bin/pip install '.[test]' "
            "&& .venv/bin/python -m twisted.trial tests\n",
        )
        self.assertIn("\n" + command, (ROOT / ".ci" / "run").read_text())

    def test_listeningLines(self) -> None:
        """
        The lines the quick start shows are the server's, one per service,
        on the default endpoints.
        """
        text = README.read_text(encoding="utf-8")
        shown = [
            line.strip()
            for line in text.splitlines()
            if GOMAIL_LISTENING.search(line.strip())
        ]
        expected = [
            LISTENING_LINE.format(
                protocol=LABELS[name],
                address="127.0.0.1:" + DEFAULT_LISTEN[name][0].split(":")[1],
                endpoint=DEFAULT_LISTEN[name][0],
            )
            for name in SERVICES
        ]
        self.assertEqual(shown, expected)

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
        self.port = startGomail(self, self.cwd)["SMTP"]
        users = block("sh", "users add you@localhost")
        addUser(self.cwd, users, "you@localhost")
        addUser(self.cwd, users, "you@example.net")
        self.maildir = self.cwd / "gomail-data" / "mail"

    def test_smtplib(self) -> None:
        """
        The smtplib one-liner puts its message in
        gomail-data/mail/you@localhost/new/, as the README says.
        """
        command = onPort(block("sh", "import smtplib"), self.port)
        result = run(["sh", "-c", command], self.cwd)
        self.assertEqual(result.returncode, 0, result.stderr)
        [message] = delivered(self.maildir, "you@localhost")
        self.assertTrue(message.endswith(b"\nSubject: hi\n\nhello\n"), message)
        self.assertIn(
            "the message is in ``gomail-data/mail/you@localhost/new/``",
            " ".join(README.read_text(encoding="utf-8").split()),
        )

    def test_smarthost(self) -> None:
        """
        send.py, run with the virtual environment's python, prints what the
        README says and delivers to gomail-data/mail/you@localhost/new/.
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
        The commands run as written; the quick start's server, given the
        file, accepts the user's login on submission after STARTTLS, takes
        mail for the alias into the user's Maildir, and refuses an unknown
        address of the domain with 550 5.1.1.
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
        ports = startGomail(self, cwd)
        with smtplib.SMTP("127.0.0.1", ports["submission"], timeout=DEADLINE) as c:
            c.starttls(context=ssl._create_unverified_context())
            c.login("alice@example.com", PASSWORD)
            refused = c.sendmail(
                "alice@example.com",
                ["postmaster@example.com", "bob@example.com"],
                b"Subject: users\r\n\r\nhello\r\n",
            )
        self.assertEqual(
            refused, {"bob@example.com": (550, b"5.1.1 No such recipient here")}
        )
        [message] = delivered(cwd / "gomail-data" / "mail", "alice@example.com")
        self.assertIn(b"\nSubject: users\n", message)
        self.assertTrue(message.endswith(b"\n\nhello\n"), message)


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
        (cwd / "server.py").write_text(
            onPort(block("python", "FunctionBackend("), port)
        )
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


def realDomainFiles(directory: Path) -> str:
    """
    The README's configuration with its files under C{/etc/} and
    C{/var/} made in C{directory}: the certificate, its key, the DKIM key.

    @return: the configuration's text.
    """
    from cryptography.hazmat.primitives import serialization

    text = block("toml", "[dkim.")
    text = text.replace("/etc/gomail/", f"{directory}/").replace(
        "/var/lib/gomail", f"{directory}/data"
    )
    (directory / "tls").mkdir()
    key, cert = selfSignedCertificate("mx.example.com")
    (directory / "tls" / "privkey.pem").write_bytes(key)
    (directory / "tls" / "fullchain.pem").write_bytes(cert)
    (directory / "mail.example.com.pem").write_bytes(
        generatePrivateKey().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return text


class RealDomainTests(SynchronousTestCase):
    """
    The sections on running for a real domain and under systemd.
    """

    def setUp(self) -> None:
        self.directory = Path(self.mktemp()).resolve()
        self.directory.mkdir()

    def test_configuration(self) -> None:
        """
        The example configuration is valid, with its files in place, and
        means what its comments say.
        """
        config = self.directory / "gomail.toml"
        config.write_text(realDomainFiles(self.directory))
        settings = loadConfig(str(config), environ={})
        self.assertEqual(settings.hostname, "mx.example.com")
        self.assertEqual(settings.domains, ("example.com",))
        self.assertEqual(settings.users, self.directory / "data" / "users")
        self.assertEqual(settings.listen["smtp"], ("tcp:25",))
        self.assertEqual(settings.listen["pop3"], ())
        self.assertEqual(settings.dkim["example.com"].selector, "mail")
        self.assertEqual(settings.queue.lifetime, 5 * 86400)
        self.assertEqual(settings.access.blockFor, 3600)

    def test_configurationError(self) -> None:
        """
        The error line the README shows is the one the server gives.
        """
        text = " ".join(README.read_text(encoding="utf-8").split())
        shown = re.search(
            r"(gomail: config \S+: \[queue\] lifetime: [^:]+ got \"x\")", text
        )
        assert shown is not None
        path = self.directory / "gomail.toml"
        path.write_text('[queue]\nlifetime = "x"\n')
        error = self.assertRaises(ConfigError, loadConfig, str(path))
        self.assertEqual(
            str(error), shown.group(1).replace("/etc/gomail/gomail.toml", str(path))
        )

    def test_records(self) -> None:
        """
        The DNS records are those of the configuration: an MX for the
        domain naming the host name, SPF, DMARC, and the DKIM record at the
        name keygen gives for its selector.
        """
        config = self.directory / "gomail.toml"
        config.write_text(realDomainFiles(self.directory))
        settings = loadConfig(str(config), environ={})
        records = [line.split(None, 2) for line in block("text", "_dmarc").splitlines()]
        self.assertIn(["example.com.", "MX", f"10 {settings.hostname}."], records)
        self.assertIn(["example.com.", "TXT", '"v=spf1 mx -all"'], records)
        result = run(
            [
                binary("python"),
                "-m",
                "gomail_twisted.dkim",
                "keygen",
                "--domain=example.com",
                "--selector=mail",
                "--output=k.pem",
            ],
            self.directory,
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        name = result.stdout.splitlines()[-1].split()[0]
        [dkim] = [r for r in records if r[0] == name]
        self.assertTrue(dkim[2].startswith('"v=DKIM1; k=rsa; p='), dkim)
        [dmarc] = [r for r in records if r[0] == "_dmarc.example.com."]
        self.assertTrue(dmarc[2].startswith('"v=DMARC1; p='), dmarc)

    def test_systemdUnit(self) -> None:
        """
        The unit runs twistd in the foreground with the plugin's options,
        which parse, and reloads with SIGHUP.
        """
        unit = block("ini", "ExecStart=")
        fields = dict(line.split("=", 1) for line in unit.splitlines() if "=" in line)
        argv = shlex.split(fields["ExecStart"])
        self.assertEqual(
            argv[:5],
            [
                "/opt/gomail/bin/twistd",
                "--nodaemon",
                "--pidfile=",
                "--logfile=-",
                "gomail",
            ],
        )
        config = self.directory / "gomail.toml"
        config.write_text(realDomainFiles(self.directory))
        options = Options()
        options.parseOptions(
            [a.replace("/etc/gomail/gomail.toml", str(config)) for a in argv[5:]]
        )
        self.assertEqual(options["config"].hostname, "mx.example.com")
        self.assertEqual(fields["ExecReload"], "/bin/kill -HUP $MAINPID")

    def test_fail2ban(self) -> None:
        """
        The fail2ban files the README copies are in the source tree, and
        its filter bans the address of the block line the README shows.
        """
        for line in block("sh", "fail2ban-client reload").splitlines():
            words = shlex.split(line)
            if words[0] == "cp":
                self.assertTrue((ROOT / words[1]).is_file(), words[1])
        text = README.read_text(encoding="utf-8")
        shown = re.search(r"^    (\S+ \[gomail_twisted\.ipac\.\S+\] .*)$", text, re.M)
        assert shown is not None
        self.assertEqual(matchLine(shown.group(1)), "192.0.2.7")


class PiecesTests(SynchronousTestCase):
    """
    The example that embeds the pieces, run as a program.
    """

    def test_pieces(self) -> None:
        """
        With the users section's users file, the example takes mail for
        Alice over SMTP and serves it to her over IMAP after STARTTLS.
        """
        cwd = Path(self.mktemp()).resolve()
        cwd.mkdir()
        for line in block("sh", "users domain add").splitlines():
            result = run(["sh", "-c", shell(line)], cwd)
            self.assertEqual(result.returncode, 0, (line, result.stderr))
        ports = []
        for _ in range(2):
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                ports.append(probe.getsockname()[1])
        program = block("python", "IPAccessControl(reactor)")
        self.assertIn('"tcp:1143:interface=127.0.0.1"', program)
        (cwd / "pieces.py").write_text(
            onPort(program, ports[0]).replace("tcp:1143:", f"tcp:{ports[1]}:")
        )
        process = spawn([binary("python"), "pieces.py"], cwd)
        self.addCleanup(stop, process)
        deadline = time.monotonic() + DEADLINE
        while True:
            self.assertIsNone(process.poll(), "the example exited")
            try:
                client = smtplib.SMTP("127.0.0.1", ports[0], timeout=10)
                break
            except OSError:
                self.assertLess(time.monotonic(), deadline, "never listened")
                time.sleep(0.1)
        with client:
            client.sendmail(
                "me@example.net",
                ["alice@example.com"],
                b"Subject: pieces\r\n\r\nhello\r\n",
            )
        with imaplib.IMAP4("127.0.0.1", ports[1], timeout=DEADLINE) as imap:
            imap.starttls(ssl_context=ssl._create_unverified_context())
            imap.login("alice@example.com", PASSWORD)
            self.assertEqual(imap.select("INBOX"), ("OK", [b"1"]))
