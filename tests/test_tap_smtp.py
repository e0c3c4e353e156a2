# -*- test-case-name: tests.test_tap_smtp -*-
"""
Tests for L{gomail_twisted.tap.smtp} and the C{gomail-smtp} twistd plugin:
option parsing, the service started for real in this process and by
C{twistd} in another, each checked with stdlib smtplib and the files on disk.
"""

from __future__ import annotations

import importlib.metadata
import os
import queue
import re
import smtplib
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import MultiService
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.threads import deferToThread
from twisted.logger import LogEvent, formatEvent, globalLogPublisher
from twisted.python.usage import UsageError
from twisted.trial.unittest import SynchronousTestCase, TestCase

import gomail_twisted
from gomail_twisted._hostname import localHostName
from gomail_twisted.smtp import SMTPServerFactory
from gomail_twisted.tap.smtp import DEFAULT_LISTEN, Options, makeService
from gomail_twisted.tls import selfSignedCertificate

MESSAGE = b"From: sender@example.net\r\nSubject: tap\r\n\r\nHello from the tap.\r\n"
_LISTENING = re.compile(r"listening on (\S+) port (\d+)")


def _certificate(directory: Path, name: str = "127.0.0.1") -> tuple[str, str]:
    """
    Write a new self-signed key and certificate for C{name}.

    @return: the certificate's path and the key's path.
    """
    directory.mkdir(parents=True, exist_ok=True)
    keyPEM, certPEM = selfSignedCertificate(name)
    cert, key = directory / "cert.pem", directory / "key.pem"
    cert.write_bytes(certPEM)
    key.write_bytes(keyPEM)
    return str(cert), str(key)


def _parse(*args: str) -> Options:
    options = Options()
    options.parseOptions(list(args))
    return options


def _delivered(maildir: Path, address: str) -> list[bytes]:
    new = maildir / address / "new"
    return [p.read_bytes() for p in sorted(new.iterdir())] if new.is_dir() else []


class OptionsTests(SynchronousTestCase):
    """
    The command line of C{twistd gomail-smtp}.
    """

    def test_defaults(self) -> None:
        """
        Without options the server listens on loopback port 2525, is named
        after this machine, takes mail for that name and localhost into
        C{./maildir}, with the factory's limits and a generated certificate.
        """
        options = _parse()
        self.assertEqual(options["listen"], [DEFAULT_LISTEN])
        self.assertEqual(DEFAULT_LISTEN, "tcp:2525:interface=127.0.0.1")
        self.assertEqual(options["hostname"], localHostName())
        self.assertIn("localhost", options["domain"])
        self.assertEqual(options["maildir"], "./maildir")
        self.assertEqual(options["max-size"], 25 * 2**20)
        self.assertEqual(options["max-recipients"], 100)
        self.assertEqual(options["timeout"], 300.0)
        self.assertIsNone(options["tls"])
        self.assertFalse(options["no-tls"])
        self.assertFalse(options["require-tls"])

    def test_repeatable(self) -> None:
        """
        C{--listen} and C{--domain} collect every occurrence in order, and
        C{--domain} then replaces the default domains.
        """
        options = _parse(
            "--listen=tcp:2525",
            "--listen",
            "tcp:2526:interface=0.0.0.0",
            "--domain=example.com",
            "--domain",
            "example.org",
            "--hostname=mx.example.com",
        )
        self.assertEqual(options["listen"], ["tcp:2525", "tcp:2526:interface=0.0.0.0"])
        self.assertEqual(options["domain"], ["example.com", "example.org"])
        self.assertEqual(options["hostname"], "mx.example.com")

    def test_hostnameIsTheDefaultDomain(self) -> None:
        """
        Without C{--domain}, the given host name and localhost are the
        domains.
        """
        options = _parse("--hostname=mx.example.com")
        self.assertEqual(options["domain"], ["mx.example.com", "localhost"])

    def test_numbers(self) -> None:
        """
        Sizes take bytes or K, M, G suffixes; the other limits are numbers.
        """
        options = _parse(
            "--max-size=10M",
            "--max-recipients=5",
            "--timeout=2.5",
            "--max-connections=7",
            "--max-connections-per-peer=3",
            "--require-tls",
        )
        self.assertEqual(options["max-size"], 10 * 2**20)
        self.assertEqual(options["max-recipients"], 5)
        self.assertEqual(options["timeout"], 2.5)
        self.assertEqual(options["max-connections"], 7)
        self.assertEqual(options["max-connections-per-peer"], 3)
        self.assertTrue(options["require-tls"])
        self.assertEqual(_parse("--max-size=1000")["max-size"], 1000)
        self.assertEqual(_parse("--max-size=2k")["max-size"], 2048)

    def test_badValues(self) -> None:
        """
        Malformed values are usage errors that name the problem.
        """
        cases = [
            (["--max-size=0"], "--max-size wants a positive size, not '0'"),
            (["--max-size=lots"], "--max-size wants a positive size, not 'lots'"),
            (["--max-recipients=-1"], "--max-recipients wants a positive number"),
            (["--max-recipients=x"], "--max-recipients wants a positive number"),
            (["--timeout=0"], "--timeout wants a positive number, not '0'"),
            (["--max-connections=1.5"], "--max-connections wants a positive"),
            (["--listen=nonsense:25"], "--listen 'nonsense:25'"),
            (["--listen=tcp:notaport"], "--listen 'tcp:notaport'"),
            (["--domain=not a domain"], "--domain 'not a domain'"),
            (["--hostname=mx example"], "--hostname 'mx example'"),
            (["--hostname=bücher.example"], "not an ASCII domain name"),
            (["--no-such-option"], "no-such-option"),
        ]
        for args, expected in cases:
            with self.assertRaises(UsageError, msg=str(args)) as caught:
                _parse(*args)
            self.assertIn(expected, str(caught.exception))

    def test_certificateAndKeyGoTogether(self) -> None:
        """
        C{--tls-cert} without C{--tls-key}, or the other way round, is a
        usage error.
        """
        cert, key = _certificate(Path(self.mktemp()))
        for args in (["--tls-cert", cert], ["--tls-key", key]):
            with self.assertRaises(UsageError) as caught:
                _parse(*args)
            self.assertIn("--tls-cert and --tls-key go together", str(caught.exception))

    def test_certificateLoaded(self) -> None:
        """
        With both, the options hold a server context that serves that
        certificate.
        """
        cert, key = _certificate(Path(self.mktemp()))
        options = _parse("--tls-cert", cert, "--tls-key", key)
        self.assertIsNotNone(options["tls"].getContext())

    def test_unreadableFiles(self) -> None:
        """
        A missing file is a usage error naming it, not a traceback.
        """
        cert, key = _certificate(Path(self.mktemp()))
        missing = os.path.join(os.path.dirname(cert), "missing.pem")
        for args in (["--tls-cert", missing, "--tls-key", key], ["--tls-key", missing]):
            args = args if len(args) == 4 else ["--tls-cert", cert, *args]
            with self.assertRaises(UsageError) as caught:
                _parse(*args)
            self.assertIn(f"cannot read {missing}", str(caught.exception))

    def test_notPEM(self) -> None:
        """
        Files that are not a PEM certificate and key, or a key that is not
        the certificate's, are usage errors.
        """
        directory = Path(self.mktemp())
        cert, key = _certificate(directory / "one")
        _, otherKey = _certificate(directory / "two")
        garbage = directory / "garbage.pem"
        garbage.write_bytes(b"not PEM at all\n")
        for certPath, keyPath in [
            (str(garbage), key),
            (cert, str(garbage)),
            (cert, otherKey),
        ]:
            with self.assertRaises(UsageError) as caught:
                _parse("--tls-cert", certPath, "--tls-key", keyPath)
            self.assertIn(
                "are not a PEM certificate and its private key", str(caught.exception)
            )

    def test_contradictions(self) -> None:
        """
        C{--no-tls} with a certificate, or with C{--require-tls} on a
        plain-text endpoint, is a usage error; on an C{ssl:} endpoint it is
        fine.
        """
        cert, key = _certificate(Path(self.mktemp()))
        with self.assertRaises(UsageError):
            _parse("--no-tls", "--tls-cert", cert, "--tls-key", key)
        with self.assertRaises(UsageError) as caught:
            _parse("--no-tls", "--require-tls")
        self.assertIn(DEFAULT_LISTEN, str(caught.exception))
        sslListen = f"ssl:2465:privateKey={key}:certKey={cert}"
        options = _parse("--no-tls", "--require-tls", "--listen", sslListen)
        self.assertEqual(options["listen"], [sslListen])

    def test_service(self) -> None:
        """
        The service is a L{MultiService} holding one
        L{StreamServerEndpointService} per C{--listen}.
        """
        options = _parse(
            "--listen=tcp:0:interface=127.0.0.1",
            "--listen=tcp:0:interface=127.0.0.1",
            "--no-tls",
            f"--maildir={self.mktemp()}",
        )
        service = makeService(options)
        self.assertIsInstance(service, MultiService)
        children = list(service)
        self.assertEqual(len(children), 2)
        for child in children:
            self.assertIsInstance(child, StreamServerEndpointService)

    def test_dkimByDefault(self) -> None:
        """
        DKIM verification is on unless C{--no-dkim} is given.
        """
        for flags, expected in (((), True), (("--no-dkim",), False)):
            options = _parse(
                "--listen=tcp:0:interface=127.0.0.1",
                "--no-tls",
                f"--maildir={self.mktemp()}",
                *flags,
            )
            [child] = list(makeService(options))
            assert isinstance(child, StreamServerEndpointService)
            factory = child.factory
            assert isinstance(factory, SMTPServerFactory)
            self.assertEqual(factory.dkimLookup is not None, expected, flags)


class ServiceTests(TestCase):
    """
    The service started in this process, driven by smtplib in a thread.
    """

    timeout = 20

    def setUp(self) -> None:
        self.events: list[LogEvent] = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)
        self.maildir = Path(self.mktemp())

    def start(self, *args: str) -> list[int]:
        """
        Parse C{args}, make and start the service, stop it at the end.

        @return: the ports it says it listens on.
        """
        options = _parse(
            "--hostname=localhost",
            "--domain=example.com",
            f"--maildir={self.maildir}",
            *args,
        )
        service = self.service = makeService(options)
        service.startService()
        self.addCleanup(lambda: service.stopService() if service.running else None)
        ports = [int(m.group(2)) for m in map(_LISTENING.search, self.logged()) if m]
        self.assertEqual(len(ports), len(options["listen"]))
        return ports

    def logged(self) -> list[str]:
        return [formatEvent(e) for e in self.events]

    def inThread(self, f: Callable[[], Any]) -> Deferred[Any]:
        return deferToThread(f)

    @inlineCallbacks
    def test_stopSaysGoodbye(self) -> Any:
        """
        Stopping the service tells a connected client 421 4.3.2 and closes
        its connection; the stop completes once the session is gone.
        """
        [port] = self.start("--listen=tcp:0:interface=127.0.0.1", "--no-tls")
        client = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.addCleanup(client.close)

        def read() -> bytes:
            data = b""
            while True:
                chunk = client.recv(4096)
                if not chunk:
                    return data
                data += chunk

        greeted = yield self.inThread(lambda: client.recv(4096))
        self.assertTrue(greeted.startswith(b"220 "))
        rest = self.inThread(read)
        yield self.service.stopService()
        self.assertEqual(
            (yield rest), b"421 Server shutting down, closing connection\r\n"
        )

    @inlineCallbacks
    def test_messageOnDisk(self) -> Any:
        """
        Every endpoint serves; a message sent to one is answered 250 and is
        in the recipient's Maildir, and a foreign recipient is refused.
        """
        ports = self.start(
            "--listen=tcp:0:interface=127.0.0.1",
            "--listen=tcp:0:interface=127.0.0.1",
            "--no-tls",
        )
        self.assertNotEqual(ports[0], ports[1])

        def send() -> Any:
            with smtplib.SMTP("127.0.0.1", ports[1], timeout=10) as client:
                client.ehlo()
                features = dict(client.esmtp_features)
                refused = client.sendmail(
                    "sender@example.net",
                    ["alice@example.com", "mallory@example.org"],
                    MESSAGE,
                )
                return features, refused

        features, refused = yield self.inThread(send)
        self.assertNotIn("starttls", features)
        self.assertEqual(
            refused, {"mallory@example.org": (554, b"5.7.1 Relay access denied")}
        )
        [stored] = _delivered(self.maildir, "alice@example.com")
        self.assertTrue(stored.startswith(b"Return-Path: <"))
        self.assertTrue(stored.endswith(b"\n" + MESSAGE.replace(b"\r\n", b"\n")))
        self.assertFalse(any("DEVELOPMENT" in line for line in self.logged()))

    @inlineCallbacks
    def test_startTLSWithFiles(self) -> Any:
        """
        With C{--tls-cert} and C{--tls-key}, STARTTLS presents that
        certificate, which a client trusting it verifies, and the message is
        marked as received over TLS.
        """
        cert, key = _certificate(Path(self.mktemp()))
        [port] = self.start(
            "--listen=tcp:0:interface=127.0.0.1", "--tls-cert", cert, "--tls-key", key
        )
        context = ssl.create_default_context(cafile=cert)

        def send() -> bytes:
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
                client.ehlo()
                self.assertTrue(client.has_extn("starttls"))
                client.starttls(context=context)
                assert isinstance(client.sock, ssl.SSLSocket)
                presented = client.sock.getpeercert(binary_form=True)
                assert presented is not None
                client.sendmail("sender@example.net", ["bob@example.com"], MESSAGE)
                return presented

        presented = yield self.inThread(send)
        ours = x509.load_pem_x509_certificate(Path(cert).read_bytes())
        self.assertEqual(presented, ours.public_bytes(serialization.Encoding.DER))
        [stored] = _delivered(self.maildir, "bob@example.com")
        self.assertIn(b"with ESMTPS id ", stored)
        self.assertFalse(any("DEVELOPMENT" in line for line in self.logged()))

    @inlineCallbacks
    def test_developmentCertificate(self) -> Any:
        """
        Without certificate files, STARTTLS works with a generated
        certificate for the host name, and the log says it is for
        development.
        """
        [port] = self.start("--listen=tcp:0:interface=127.0.0.1")
        warnings = [line for line in self.logged() if "DEVELOPMENT" in line]
        self.assertEqual(len(warnings), 1)
        self.assertIn("self-signed", warnings[0])

        def send() -> Any:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
                client.starttls(context=context)
                assert isinstance(client.sock, ssl.SSLSocket)
                presented = client.sock.getpeercert(binary_form=True)
                client.sendmail("sender@example.net", ["carol@example.com"], MESSAGE)
                return presented

        presented = yield self.inThread(send)
        subject = x509.load_der_x509_certificate(presented).subject
        self.assertEqual(subject.rfc4514_string(), "CN=localhost")
        self.assertEqual(len(_delivered(self.maildir, "carol@example.com")), 1)

    @inlineCallbacks
    def test_implicitTLS(self) -> Any:
        """
        An C{ssl:} endpoint is implicit TLS (RFC 8314): the client starts
        with the handshake.
        """
        cert, key = _certificate(Path(self.mktemp()))
        [port] = self.start(
            f"--listen=ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}",
            "--no-tls",
        )
        context = ssl.create_default_context(cafile=cert)

        def send() -> None:
            with smtplib.SMTP_SSL("127.0.0.1", port, timeout=10, context=context) as c:
                c.sendmail("sender@example.net", ["dave@example.com"], MESSAGE)

        yield self.inThread(send)
        [stored] = _delivered(self.maildir, "dave@example.com")
        self.assertIn(b"with ESMTPS id ", stored)


class _Output:
    """
    Collects a process's output lines in a thread, to wait for one with a
    deadline.
    """

    def __init__(self, stream: IO[str]) -> None:
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        thread.start()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self._queue.put(line)
        self._queue.put(None)

    def waitFor(self, pattern: re.Pattern[str], seconds: float) -> re.Match[str]:
        deadline = time.monotonic() + seconds
        while True:
            remaining = deadline - time.monotonic()
            try:
                line = self._queue.get(timeout=max(remaining, 0.01))
            except queue.Empty:
                line = None
                if remaining > 0:
                    continue
            if line is None:
                raise AssertionError(
                    f"no line matching {pattern.pattern!r}:\n" + "".join(self.lines)
                )
            self.lines.append(line)
            match = pattern.search(line)
            if match is not None:
                return match


def _twistd() -> list[str]:
    script = os.path.join(os.path.dirname(sys.executable), "twistd")
    if os.path.exists(script):
        return [script]
    return [sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]


def _environment() -> dict[str, str]:
    """
    This environment, with C{PYTHONPATH} only the directory holding the
    gomail_twisted these tests import: site-packages for an installed
    package, the repository for a checkout.  Either way twistd must find
    the plugin next to it.
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.path.dirname(os.path.dirname(gomail_twisted.__file__))
    return env


class TwistdTests(SynchronousTestCase):
    """
    The plugin as operators meet it: the C{twistd} command.
    """

    def test_helpListsPlugin(self) -> None:
        """
        C{twistd --help}, run from an empty directory, lists gomail-smtp.
        """
        cwd = self.mktemp()
        os.mkdir(cwd)
        result = subprocess.run(
            [*_twistd(), "--help"],
            cwd=cwd,
            env=_environment(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertRegex(result.stdout, r"\n\s+gomail-smtp\s+An ESMTP server")

    def test_installedPackageListsPlugin(self) -> None:
        """
        The installed distribution (not the checkout) carries the plugin:
        with no C{PYTHONPATH} and an empty working directory, C{twistd
        --help} still lists gomail-smtp.  The README's test command installs
        the package first, so this runs against the real install.
        """
        try:
            dist = importlib.metadata.distribution("gomail_twisted")
        except importlib.metadata.PackageNotFoundError:
            self.fail("gomail_twisted is not installed: run 'pip install .' first")
        plugin = Path(
            str(dist.locate_file("twisted/plugins/gomail_twisted_plugins.py"))
        )
        self.assertTrue(plugin.is_file(), plugin)
        cwd = self.mktemp()
        os.mkdir(cwd)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        result = subprocess.run(
            [*_twistd(), "--help"],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertRegex(result.stdout, r"\n\s+gomail-smtp\s+An ESMTP server")

    def test_runsServer(self) -> None:
        """
        C{twistd -n gomail-smtp} logs the port it bound and the development
        certificate, takes a message, and writes it to the Maildir.
        """
        cwd = Path(self.mktemp())
        cwd.mkdir()
        maildir = cwd / "mail"
        process = subprocess.Popen(
            [
                *_twistd(),
                "-n",
                "--pidfile=",
                "--logfile=-",
                "gomail-smtp",
                "--listen=tcp:0:interface=127.0.0.1",
                "--hostname=localhost",
                "--domain=example.com",
                "--maildir=mail",
            ],
            cwd=cwd,
            env=_environment(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.addCleanup(self._stop, process)
        assert process.stdout is not None
        output = _Output(process.stdout)
        port = int(output.waitFor(_LISTENING, 20).group(2))
        self.assertTrue(any("DEVELOPMENT" in line for line in output.lines))
        with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
            client.sendmail("sender@example.net", ["erin@example.com"], MESSAGE)
        [stored] = _delivered(maildir, "erin@example.com")
        self.assertTrue(stored.endswith(b"\n" + MESSAGE.replace(b"\r\n", b"\n")))

    def _stop(self, process: subprocess.Popen[str]) -> None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()
