# -*- test-case-name: tests.test_tap_smtp -*-
"""
Tests for L{gomail_twisted.tap.smtp} and the C{gomail-smtp} twistd plugin:
what each option makes the server do, seen by a client over a memory
reactor, the service started for real in this process and by C{twistd} in
another, each checked with stdlib smtplib and the files on disk.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import smtplib
import socket
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.testing import MemoryReactorClock
from twisted.internet.threads import deferToThread
from twisted.logger import LogEvent, formatEvent, globalLogPublisher
from twisted.python.usage import UsageError
from twisted.trial.unittest import SkipTest, SynchronousTestCase, TestCase

from gomail_twisted.smtp import SMTPServerFactory
from gomail_twisted.tap.smtp import ListenError, Options, makeService
from gomail_twisted.tls import selfSignedCertificate
from tests._memoryclient import MemoryClient
from tests._twistd import LISTENING as _LISTENING
from tests._twistd import Output, assertBusyPortRefused, run, spawn, stop, twistd

MESSAGE = b"From: sender@example.net\r\nSubject: tap\r\n\r\nHello from the tap.\r\n"


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


def _machineName(banner: bytes) -> str:
    """
    The host name in a C{220 NAME ESMTP ...} greeting.
    """
    match = re.match(rb"220 (\S+) ESMTP ", banner)
    assert match is not None, banner
    return match.group(1).decode("ascii")


def _isThisMachine(name: str) -> bool:
    """
    Whether C{name} is this machine's own name, as its administrator set it
    (C{/etc/hostname}, C{hostnamectl}): the same first label as
    C{socket.gethostname()}, and C{localhost} only when that is all it is
    called.
    """
    given = socket.gethostname().split(".")[0].lower()
    if given in ("", "localhost"):
        return name == "localhost"
    return name.split(".")[0].lower() == given


class OptionsTests(SynchronousTestCase):
    """
    The command line of C{twistd gomail-smtp} refuses what it cannot use,
    with a message naming the problem.
    """

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

    def test_noPlaintextAuthOption(self) -> None:
        """
        C{--help} speaks of AUTH only with C{--users}, after STARTTLS, and
        C{--allow-plaintext-auth} is refused.
        """
        mentions = re.findall(r"(?i)[^.]*\bauth\b[^.]*", str(Options()))
        self.assertTrue(mentions)
        for mention in mentions:
            self.assertIn("--users", mention)
        with self.assertRaises(UsageError):
            _parse("--allow-plaintext-auth")

    def test_usersFile(self) -> None:
        """
        C{--users} must name a readable file, and takes the domains from it:
        C{--domain} beside it is a usage error naming the command that
        declares a domain.
        """
        missing = self.mktemp()
        with self.assertRaises(UsageError) as caught:
            _parse("--users", missing)
        self.assertEqual(
            str(caught.exception), f"--users {missing}: No such file or directory"
        )
        users = Path(self.mktemp())
        users.write_text("domain example.com\n")
        with self.assertRaises(UsageError) as caught:
            _parse("--users", str(users), "--domain=example.com")
        self.assertIn("users domain add", str(caught.exception))
        self.assertEqual(_parse("--users", str(users))["domain"], [])

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
        plain-text endpoint, is a usage error naming that endpoint; on an
        C{ssl:} endpoint it is fine.
        """
        cert, key = _certificate(Path(self.mktemp()))
        with self.assertRaises(UsageError):
            _parse("--no-tls", "--tls-cert", cert, "--tls-key", key)
        with self.assertRaises(UsageError) as caught:
            _parse("--no-tls", "--require-tls")
        self.assertIn("tcp:2525:interface=127.0.0.1", str(caught.exception))
        sslListen = f"ssl:2465:privateKey={key}:certKey={cert}"
        _parse("--no-tls", "--require-tls", "--listen", sslListen)


class WiringTests(SynchronousTestCase):
    """
    What each option makes the server do, on a memory reactor and its
    clock: the ports it listens on and the replies a client gets.
    """

    def serve(self, *args: str) -> tuple[MemoryReactorClock, SMTPServerFactory]:
        """
        Start the service of C{args} (and a Maildir in a temporary
        directory) on a memory reactor.

        @return: the reactor and the factory every port serves.
        """
        reactor = MemoryReactorClock()
        if not any(arg.startswith("--maildir") for arg in args):
            args = (f"--maildir={self.mktemp()}", *args)
        service = makeService(_parse("--no-dkim", *args), reactor)
        service.startService()
        self.addCleanup(service.stopService)
        factories = {factory for _, factory, _, _ in reactor.tcpServers}
        [factory] = factories
        assert isinstance(factory, SMTPServerFactory)
        return reactor, factory

    def test_listenDefault(self) -> None:
        """
        Without C{--listen} the server listens on 127.0.0.1 port 2525 only.
        """
        reactor, _ = self.serve()
        self.assertEqual(
            [(port, interface) for port, _, _, interface in reactor.tcpServers],
            [(2525, "127.0.0.1")],
        )

    def test_listenEach(self) -> None:
        """
        Each C{--listen} is a port of its own, all serving one factory.
        """
        reactor, _ = self.serve(
            "--listen=tcp:2526:interface=127.0.0.2", "--listen=tcp:2527"
        )
        self.assertEqual(
            [(port, interface) for port, _, _, interface in reactor.tcpServers],
            [(2526, "127.0.0.2"), (2527, "")],
        )

    def test_defaultNameAndDomains(self) -> None:
        """
        By default the greeting names this machine as its administrator named
        it, and mail for that name and for localhost is accepted; mail for
        other domains is refused as relaying.
        """
        _, factory = self.serve()
        client = MemoryClient(factory, 2525)
        name = _machineName(client.read())
        self.assertTrue(_isThisMachine(name), name)
        client.send(b"EHLO client.test\r\nMAIL FROM:<a@example.net>\r\n")
        for domain, reply in [
            (name, b"250 2.1.5 "),
            ("localhost", b"250 2.1.5 "),
            ("LOCALHOST", b"250 2.1.5 "),
            ("example.org", b"554 5.7.1 "),
        ]:
            answer = client.send(f"RCPT TO:<you@{domain}>\r\n".encode())
            self.assertTrue(answer.startswith(reply), (domain, answer))

    def test_hostnameAndDomain(self) -> None:
        """
        C{--hostname} is the name in the greeting, and C{--domain}s replace
        the default domains.
        """
        _, factory = self.serve(
            "--hostname=mx.example.com", "--domain=example.com", "--domain=example.org"
        )
        client = MemoryClient(factory, 2525)
        self.assertTrue(client.read().startswith(b"220 mx.example.com ESMTP "))
        client.send(b"EHLO client.test\r\nMAIL FROM:<a@example.net>\r\n")
        for domain, reply in [
            ("example.com", b"250 "),
            ("example.org", b"250 "),
            ("mx.example.com", b"554 "),
            ("localhost", b"554 "),
        ]:
            answer = client.send(f"RCPT TO:<you@{domain}>\r\n".encode())
            self.assertTrue(answer.startswith(reply), (domain, answer))

    def test_hostnameIsTheDefaultDomain(self) -> None:
        """
        With C{--hostname} and no C{--domain}, mail for that name and for
        localhost is accepted.
        """
        _, factory = self.serve("--hostname=mx.example.com")
        client = MemoryClient(factory, 2525)
        client.send(b"EHLO client.test\r\nMAIL FROM:<a@example.net>\r\n")
        for domain in ("mx.example.com", "localhost"):
            answer = client.send(f"RCPT TO:<you@{domain}>\r\n".encode())
            self.assertTrue(answer.startswith(b"250 "), (domain, answer))

    def test_maxSize(self) -> None:
        """
        C{--max-size} is advertised with SIZE and enforced: a larger declared
        size is refused at MAIL, a larger message after DATA.
        """
        _, factory = self.serve("--max-size=1K")
        client = MemoryClient(factory, 2525)
        self.assertIn(b"250-SIZE 1024\r\n", client.send(b"EHLO client.test\r\n"))
        self.assertTrue(
            client.send(b"MAIL FROM:<a@example.net> SIZE=1025\r\n").startswith(
                b"552 5.3.4 "
            )
        )
        client.send(b"MAIL FROM:<a@example.net>\r\nRCPT TO:<b@localhost>\r\n")
        self.assertTrue(client.send(b"DATA\r\n").startswith(b"354 "))
        answer = client.send(
            b"Subject: big\r\n\r\n" + (b"x" * 98 + b"\r\n") * 11 + b".\r\n"
        )
        self.assertTrue(answer.startswith(b"552 5.3.4 "), answer)

    def test_maxRecipients(self) -> None:
        """
        Past C{--max-recipients}, RCPT is answered 452 4.5.3.
        """
        _, factory = self.serve("--max-recipients=2")
        client = MemoryClient(factory, 2525)
        client.send(b"EHLO client.test\r\nMAIL FROM:<a@example.net>\r\n")
        answers = [
            client.send(f"RCPT TO:<r{i}@localhost>\r\n".encode())[:4] for i in range(3)
        ]
        self.assertEqual(answers, [b"250 ", b"250 ", b"452 "])

    def test_timeout(self) -> None:
        """
        After C{--timeout} seconds of client silence the server says 421
        4.4.2 and hangs up, not before.
        """
        reactor, factory = self.serve("--timeout=30")
        client = MemoryClient(factory, 2525)
        client.send(b"EHLO client.test\r\n")
        reactor.advance(29.5)
        self.assertEqual(client.read(), b"")
        self.assertFalse(client.transport.disconnecting)
        reactor.advance(1)
        self.assertTrue(client.read().startswith(b"421 4.4.2 "))
        self.assertTrue(client.transport.disconnecting)

    def test_maxErrors(self) -> None:
        """
        At C{--max-errors} protocol errors the server says 421 4.7.0 and
        hangs up; a refused recipient is not one.
        """
        _, factory = self.serve("--max-errors=2")
        client = MemoryClient(factory, 2525)
        client.send(b"EHLO client.test\r\nMAIL FROM:<a@example.net>\r\n")
        refused = client.send(b"RCPT TO:<x@example.org>\r\n")
        self.assertTrue(refused.startswith(b"554 5.7.1 "), refused)
        self.assertTrue(client.send(b"FOO\r\n").startswith(b"500 5.5.2 "))
        self.assertFalse(client.transport.disconnecting)
        last = client.send(b"BAR\r\n")
        self.assertIn(b"\r\n421 4.7.0 ", last)
        self.assertTrue(client.transport.disconnecting)

    def test_maxConnections(self) -> None:
        """
        Past C{--max-connections} in all, a client is greeted 421 4.7.0.
        """
        _, factory = self.serve("--max-connections=2")
        greetings = [
            MemoryClient(factory, 2525, peer).read()
            for peer in ("192.0.2.1", "192.0.2.2", "192.0.2.3")
        ]
        self.assertEqual([g[:4] for g in greetings], [b"220 ", b"220 ", b"421 "])
        self.assertIn(b"Too many connections", greetings[2])

    def test_maxConnectionsPerPeer(self) -> None:
        """
        Past C{--max-connections-per-peer} from one address, a client is
        greeted 421 4.7.0, while another address is still served.
        """
        _, factory = self.serve("--max-connections-per-peer=2")
        greetings = [
            MemoryClient(factory, 2525, peer).read()[:4]
            for peer in ("192.0.2.1", "192.0.2.1", "192.0.2.1", "192.0.2.2")
        ]
        self.assertEqual(greetings, [b"220 ", b"220 ", b"421 ", b"220 "])

    def test_requireTLS(self) -> None:
        """
        With C{--require-tls}, MAIL before STARTTLS is refused 530 5.7.0.
        """
        _, factory = self.serve("--require-tls")
        client = MemoryClient(factory, 2525)
        client.send(b"EHLO client.test\r\n")
        answer = client.send(b"MAIL FROM:<a@example.net>\r\n")
        self.assertTrue(answer.startswith(b"530 5.7.0 "), answer)

    def test_tlsOffered(self) -> None:
        """
        STARTTLS is offered by default and not with C{--no-tls}, when the
        command is refused; AUTH is never offered, and refused.
        """
        for args, offered in (((), True), (("--no-tls",), False)):
            _, factory = self.serve(*args)
            client = MemoryClient(factory, 2525)
            client.read()
            keywords = client.send(b"EHLO client.test\r\n")
            self.assertEqual(b"250-STARTTLS\r\n" in keywords, offered, args)
            self.assertNotIn(b"AUTH", keywords)
            answer = client.send(b"AUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n")
            self.assertTrue(answer.startswith(b"502 5.5.1 "), answer)
        answer = client.send(b"STARTTLS\r\n")
        self.assertTrue(answer.startswith(b"502 5.5.1 "), answer)


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
        before = len(self.events)
        service.startService()
        self.addCleanup(lambda: service.stopService() if service.running else None)
        logged = self.logged()[before:]
        ports = [int(m.group(2)) for m in map(_LISTENING.search, logged) if m]
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
    def test_usersFile(self) -> Any:
        """
        With C{--users}, a user logs in after STARTTLS with their password
        and sends to an alias, which lands in the aliased user's Maildir;
        an unknown local address is refused with 550 5.1.1, and AUTH is not
        offered before STARTTLS.
        """
        from argon2 import PasswordHasher

        users = Path(self.mktemp())
        hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
        users.write_text(
            "domain example.com\n"
            f"user alice@example.com {hasher.hash('correct horse')}\n"
            "alias sales@example.com alice@example.com\n"
        )
        options = _parse(
            "--hostname=localhost",
            f"--maildir={self.maildir}",
            "--listen=tcp:0:interface=127.0.0.1",
            "--users",
            str(users),
        )
        service = makeService(options)
        before = len(self.events)
        service.startService()
        self.addCleanup(lambda: service.stopService() if service.running else None)
        [port] = [
            int(m.group(2)) for m in map(_LISTENING.search, self.logged()[before:]) if m
        ]

        def send() -> Any:
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
                client.ehlo()
                before = client.has_extn("auth")
                client.starttls(context=ssl._create_unverified_context())
                client.ehlo()
                client.login("alice@example.com", "correct horse")
                refused = client.sendmail(
                    "alice@example.com",
                    ["sales@example.com", "nobody@example.com"],
                    MESSAGE,
                )
                return before, refused

        authBeforeTLS, refused = yield self.inThread(send)
        self.assertFalse(authBeforeTLS)
        self.assertEqual(
            refused, {"nobody@example.com": (550, b"5.1.1 No such recipient here")}
        )
        [stored] = _delivered(self.maildir, "alice@example.com")
        self.assertTrue(stored.endswith(b"\n" + MESSAGE.replace(b"\r\n", b"\n")))
        self.assertFalse((self.maildir / "sales@example.com").exists())

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
    def test_dkim(self) -> Any:
        """
        DKIM is verified by default, which puts an Authentication-Results
        header naming us on every message, and not with C{--no-dkim}.
        """
        for flags, header in (((), True), (("--no-dkim",), False)):
            self.maildir = Path(self.mktemp())
            [port] = self.start(
                "--listen=tcp:0:interface=127.0.0.1", "--no-tls", *flags
            )
            if header and any("DKIM verification is off" in e for e in self.logged()):
                raise SkipTest("this machine has no DNS resolver configuration")

            def send(port: int = port) -> None:
                with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
                    client.sendmail("sender@example.net", ["ann@example.com"], MESSAGE)

            yield self.inThread(send)
            [stored] = _delivered(self.maildir, "ann@example.com")
            self.assertEqual(
                b"\nAuthentication-Results: localhost; dkim=none\n" in stored,
                header,
                (flags, stored),
            )

    def test_portInUse(self) -> None:
        """
        Starting the service on a port in use raises L{ListenError}, which
        names the endpoint as given and the operating system's reason.
        """
        with socket.socket() as occupier:
            occupier.bind(("127.0.0.1", 0))
            occupier.listen()
            endpoint = f"tcp:{occupier.getsockname()[1]}:interface=127.0.0.1"
            service = makeService(
                _parse(f"--listen={endpoint}", "--no-tls", f"--maildir={self.maildir}")
            )
            with self.assertRaises(ListenError) as caught:
                service.startService()
        self.assertEqual(
            str(caught.exception),
            f"gomail-smtp: cannot listen on {endpoint}: Address already in use",
        )
        self.assertEqual(caught.exception.description, endpoint)
        self.assertIsInstance(caught.exception, SystemExit)

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
        result = run([*twistd(), "--help"], cwd)
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
        result = run([*twistd(), "--help"], cwd, env)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertRegex(result.stdout, r"\n\s+gomail-smtp\s+An ESMTP server")

    def test_runsServer(self) -> None:
        """
        C{twistd -n gomail-smtp}, given only a port, logs the port it bound
        and the development certificate, greets a client with this machine's
        own name, and writes mail for that name and for localhost to
        C{./maildir}.
        """
        cwd = Path(self.mktemp())
        cwd.mkdir()
        process = spawn(
            [
                *twistd(),
                "-n",
                "--pidfile=",
                "--logfile=-",
                "gomail-smtp",
                "--listen=tcp:0:interface=127.0.0.1",
            ],
            cwd,
        )
        self.addCleanup(stop, process)
        assert process.stdout is not None
        output = Output(process.stdout)
        port = int(output.waitFor(_LISTENING, 20).group(2))
        self.assertTrue(any("DEVELOPMENT" in line for line in output.lines))
        with smtplib.SMTP(timeout=10) as client:
            _, banner = client.connect("127.0.0.1", port)
            name = banner.split()[0].decode("ascii")
            self.assertTrue(_isThisMachine(name), banner)
            refused = client.sendmail(
                "sender@example.net", [f"erin@{name}", "frank@localhost"], MESSAGE
            )
        self.assertEqual(refused, {})
        for address in (f"erin@{name}", "frank@localhost"):
            [stored] = _delivered(cwd / "maildir", address)
            self.assertTrue(stored.endswith(b"\n" + MESSAGE.replace(b"\r\n", b"\n")))

    def test_portInUse(self) -> None:
        """
        A port already in use ends twistd with status 1 and one line naming
        the endpoint and the reason; no traceback, no pid file left behind.
        """
        cwd = Path(self.mktemp())
        cwd.mkdir()
        assertBusyPortRefused(
            self,
            "gomail-smtp",
            lambda endpoint: [
                *twistd(),
                "-n",
                "gomail-smtp",
                f"--listen={endpoint}",
                "--no-dkim",
            ],
            cwd,
        )
        self.assertEqual(os.listdir(cwd), [])
