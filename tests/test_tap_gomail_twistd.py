# -*- test-case-name: tests.test_tap_gomail_twistd -*-
"""
C{twistd gomail} as an operator runs it: a real C{twistd} process in an
empty directory, used with the users command line and stdlib C{smtplib},
C{poplib} and C{imaplib}; its data directory across restarts; its
configuration errors; C{SIGHUP}.

Every service is told to listen on a port the system chooses
(C{--listen SERVICE=tcp:0:...}), which the server's one line per port
tells.
"""

from __future__ import annotations

import imaplib
import os
import poplib
import re
import signal
import smtplib
import socket
import ssl
import subprocess
import time
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from gomail_twisted.tls import certificateFingerprint, selfSignedCertificate
from tests._twistd import (
    DEADLINE,
    GOMAIL_ANY_PORT,
    Output,
    assertBusyPortRefused,
    binary,
    gomailPorts,
    run,
    spawn,
    stop,
    twistd,
)

ANY_PORT = GOMAIL_ANY_PORT

PASSWORD = "a long passphrase"
MESSAGE = b"From: you@localhost\r\nSubject: round trip\r\n\r\nHello, me.\r\n"


def _unverified() -> ssl.SSLContext:
    """
    A client context for the development certificate.
    """
    return ssl._create_unverified_context()


def _served(port: int) -> str:
    """
    The fingerprint of the certificate an implicit-TLS port presents.
    """
    pem = ssl.get_server_certificate(("127.0.0.1", port), timeout=DEADLINE)
    return certificateFingerprint(pem.encode("ascii"))


class Server:
    """
    One C{twistd -n gomail} process.

    @ivar ports: each service's port, by its log label (C{"IMAPS"}).
    """

    def __init__(self, test: SynchronousTestCase, cwd: Path, *args: str) -> None:
        self.process = spawn(
            [*twistd(), "-n", "--pidfile=", "--logfile=-", "gomail", *ANY_PORT, *args],
            cwd,
        )
        test.addCleanup(stop, self.process)
        assert self.process.stdout is not None
        self.output = Output(self.process.stdout)
        self.ports = gomailPorts(self.output)

    def stop(self) -> int:
        """
        End the server as C{kill} does, and wait for it to shut down.

        @return: its exit status: C{-SIGTERM}, since C{twistd} ends itself
            with the signal it was stopped by once it has shut down.
        """
        self.process.send_signal(signal.SIGTERM)
        self.output.waitFor(re.compile("Server Shut Down"), DEADLINE)
        return self.process.wait(timeout=DEADLINE)


class TwistdTests(SynchronousTestCase):
    """
    The plugin run by C{twistd}.
    """

    def setUp(self) -> None:
        self.cwd = Path(self.mktemp()).resolve()
        self.cwd.mkdir()

    def addUser(self, address: str) -> None:
        result = subprocess.run(
            [
                binary("python"),
                "-m",
                "gomail_twisted",
                "users",
                "add",
                address,
                "--password-stdin",
            ],
            cwd=self.cwd,
            input=PASSWORD + "\n",
            capture_output=True,
            text=True,
            timeout=DEADLINE,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)},
        )
        self.assertEqual(result.returncode, 0, result.stderr)

    def test_roundTrip(self) -> None:
        """
        Started with no configuration, the server reports one port per
        service and its development certificate, declares C{localhost} in
        a new users file; a user added with the command line submits with
        STARTTLS and AUTH to themselves, the message lands in their Maildir
        and is read back over POP3 with STLS and IMAP with STARTTLS, and
        the implicit-TLS ports serve the same.
        """
        server = Server(self, self.cwd)
        self.assertEqual(
            sorted(server.ports),
            sorted(
                ["SMTP", "submission", "submissions", "POP3", "POP3S", "IMAP", "IMAPS"]
            ),
        )
        self.assertTrue(any("DEVELOPMENT" in line for line in server.output.lines))
        data = self.cwd / "gomail-data"
        self.assertEqual((data / "users").read_text(), "domain localhost\n")
        self.addUser("you@localhost")

        with smtplib.SMTP(
            "127.0.0.1", server.ports["submission"], timeout=DEADLINE
        ) as c:
            c.starttls(context=_unverified())
            c.login("you@localhost", PASSWORD)
            self.assertEqual(
                c.sendmail("you@localhost", ["you@localhost"], MESSAGE), {}
            )
        [stored] = sorted((data / "mail" / "you@localhost" / "new").iterdir())
        self.assertIn(b"Subject: round trip\n", stored.read_bytes())

        pop = poplib.POP3("127.0.0.1", server.ports["POP3"], timeout=DEADLINE)
        try:
            pop.stls(context=_unverified())
            pop.user("you@localhost")
            pop.pass_(PASSWORD)
            _, lines, _ = pop.retr(1)
            self.assertIn(b"Hello, me.", lines)
        finally:
            pop.quit()

        with imaplib.IMAP4("127.0.0.1", server.ports["IMAP"], timeout=DEADLINE) as i:
            i.starttls(ssl_context=_unverified())
            i.login("you@localhost", PASSWORD)
            self.assertEqual(i.select("INBOX"), ("OK", [b"1"]))
            _, fetched = i.fetch("1", "(BODY[TEXT])")
            self.assertEqual(fetched[0][1], b"Hello, me.\r\n")  # type: ignore[index]

        with imaplib.IMAP4_SSL(
            "127.0.0.1",
            server.ports["IMAPS"],
            ssl_context=_unverified(),
            timeout=DEADLINE,
        ) as i:
            i.login("you@localhost", PASSWORD)
            self.assertEqual(i.select("INBOX"), ("OK", [b"1"]))
        pop = poplib.POP3_SSL(
            "127.0.0.1", server.ports["POP3S"], context=_unverified(), timeout=DEADLINE
        )
        try:
            pop.user("you@localhost")
            pop.pass_(PASSWORD)
            self.assertEqual(pop.stat()[0], 1)
        finally:
            pop.quit()
        with smtplib.SMTP_SSL(
            "127.0.0.1",
            server.ports["submissions"],
            context=_unverified(),
            timeout=DEADLINE,
        ) as c:
            c.login("you@localhost", PASSWORD)
            c.sendmail("you@localhost", ["you@localhost"], MESSAGE)
        # IMAP has moved the first one from new/ to cur/.
        inbox = data / "mail" / "you@localhost"
        self.assertEqual(
            len([*(inbox / "new").iterdir(), *(inbox / "cur").iterdir()]), 2
        )

    def test_inboundNoRelay(self) -> None:
        """
        The inbound port takes mail for a local user without AUTH, offers
        no AUTH, and refuses other domains.
        """
        server = Server(self, self.cwd)
        self.addUser("you@localhost")
        with smtplib.SMTP("127.0.0.1", server.ports["SMTP"], timeout=DEADLINE) as c:
            c.starttls(context=_unverified())
            c.ehlo()
            self.assertFalse(c.has_extn("auth"))
            refused = c.sendmail(
                "me@example.net", ["you@localhost", "them@example.org"], MESSAGE
            )
        self.assertEqual(list(refused), ["them@example.org"])
        self.assertEqual(refused["them@example.org"][0], 554)
        [stored] = (
            self.cwd / "gomail-data" / "mail" / "you@localhost" / "new"
        ).iterdir()
        self.assertIn(b"Authentication-Results: ", stored.read_bytes())

    def test_restartKeepsCertificate(self) -> None:
        """
        A server stops when told, and restarted presents the same
        development certificate, from the same file.
        """
        server = Server(self, self.cwd)
        first = _served(server.ports["IMAPS"])
        cert = self.cwd / "gomail-data" / "tls" / "cert.pem"
        kept = cert.read_bytes()
        self.assertEqual(first, certificateFingerprint(kept))
        self.assertEqual(server.stop(), -signal.SIGTERM)
        again = Server(self, self.cwd)
        self.assertEqual(_served(again.ports["IMAPS"]), first)
        self.assertEqual(cert.read_bytes(), kept)

    def test_hangupReloads(self) -> None:
        """
        After the configured certificate files are replaced, C{SIGHUP}
        makes new connections see the new certificate.
        """
        key, cert = self.cwd / "key.pem", self.cwd / "cert.pem"
        for path, pem in zip(
            (key, cert), selfSignedCertificate("localhost"), strict=True
        ):
            path.write_bytes(pem)
        server = Server(self, self.cwd, f"--tls-cert={cert}", f"--tls-key={key}")
        before = _served(server.ports["submissions"])
        for path, pem in zip(
            (key, cert), selfSignedCertificate("localhost"), strict=True
        ):
            path.write_bytes(pem)
        renewed = certificateFingerprint(cert.read_bytes())
        self.assertNotEqual(before, renewed)
        server.process.send_signal(signal.SIGHUP)
        server.output.waitFor(re.compile("TLS certificate reloaded"), DEADLINE)
        self.assertEqual(_served(server.ports["submissions"]), renewed)
        self.assertEqual(_served(server.ports["IMAPS"]), renewed)
        self.assertIsNone(server.process.poll())

    def test_configError(self) -> None:
        """
        A bad value in the configuration file ends twistd with a non-zero
        status and one line naming the file and the key; no traceback, no
        usage text, nothing written.
        """
        (self.cwd / "gomail.toml").write_text('[queue]\nlifetime = "x"\n')
        result = run([*twistd(), "-n", "gomail", "--config", "gomail.toml"], self.cwd)
        self.assertNotEqual(result.returncode, 0)
        output = (result.stdout + result.stderr).strip()
        self.assertEqual(
            output,
            "gomail: config gomail.toml: [queue] lifetime: expected a number of "
            'seconds (or "30m", "4h", "5d"), got "x"',
        )
        self.assertEqual(os.listdir(self.cwd), ["gomail.toml"])

    def test_portInUse(self) -> None:
        """
        A port already in use ends twistd with status 1 and one line naming
        the endpoint.
        """
        assertBusyPortRefused(
            self,
            "gomail",
            lambda endpoint: [
                *twistd(),
                "-n",
                "--pidfile=",
                "gomail",
                *ANY_PORT,
                f"--listen=imap={endpoint}",
            ],
            self.cwd,
        )

    def test_stopsPolitely(self) -> None:
        """
        Stopping tells a connected IMAP client goodbye before the process
        shuts down.
        """
        server = Server(self, self.cwd)
        client = socket.create_connection(
            ("127.0.0.1", server.ports["IMAP"]), timeout=DEADLINE
        )
        self.addCleanup(client.close)
        self.assertTrue(client.recv(4096).startswith(b"* OK"))
        server.process.send_signal(signal.SIGTERM)
        received = b""
        deadline = time.monotonic() + DEADLINE
        while time.monotonic() < deadline:
            chunk = client.recv(4096)
            if not chunk:
                break
            received += chunk
        self.assertTrue(received.startswith(b"* BYE"), received)
        server.output.waitFor(re.compile("Server Shut Down"), DEADLINE)
        self.assertEqual(server.process.wait(timeout=DEADLINE), -signal.SIGTERM)

    def test_blockedEverywhere(self) -> None:
        """
        With loopback taken off the allow-list, failed IMAP logins past
        C{[access] block-after-failures} block the address on every
        service: SMTP, POP3 and IMAP refuse it at once.
        """
        (self.cwd / "gomail.toml").write_text(
            "[access]\nallow = []\nblock-after-failures = 3\n"
        )
        server = Server(self, self.cwd, "--config=gomail.toml")
        self.addUser("you@localhost")
        with imaplib.IMAP4("127.0.0.1", server.ports["IMAP"], timeout=DEADLINE) as i:
            i.starttls(ssl_context=_unverified())
            for _ in range(3):
                self.assertRaises(imaplib.IMAP4.error, i.login, "you@localhost", "no")
        greetings = {}
        for label in ("SMTP", "POP3", "IMAP"):
            with socket.create_connection(
                ("127.0.0.1", server.ports[label]), timeout=DEADLINE
            ) as client:
                greetings[label] = client.recv(4096)
        self.assertTrue(greetings["SMTP"].startswith(b"554 "), greetings)
        self.assertTrue(greetings["POP3"].startswith(b"-ERR "), greetings)
        self.assertTrue(greetings["IMAP"].startswith(b"* BYE "), greetings)
        # The block is logged on the line fail2ban reads.
        server.output.waitFor(
            re.compile(r"gomail ipac: blocked 127\.0\.0\.1 "), DEADLINE
        )
