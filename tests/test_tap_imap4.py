# -*- test-case-name: tests.test_tap_imap4 -*-
"""
Tests for L{gomail_twisted.tap.imap4} and the C{gomail-imap4} twistd plugin:
what each option makes the server do, seen by a client over a memory
reactor, and the service started for real in this process and by C{twistd}
in another, read with stdlib imaplib (plain, STARTTLS, implicit TLS) after
the SMTP server delivered into the same store.
"""

from __future__ import annotations

import imaplib
import os
import re
import signal
import smtplib
import socket
import ssl
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from cryptography import x509
from twisted.application.service import IService
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.testing import MemoryReactorClock
from twisted.internet.threads import deferToThread
from twisted.logger import LogEvent, formatEvent, globalLogPublisher
from twisted.python.usage import UsageError
from twisted.trial.unittest import SynchronousTestCase, TestCase

from gomail_twisted.imap4.factory import IMAP4ServerFactory
from gomail_twisted.tap import smtp as tapSMTP
from gomail_twisted.tap.imap4 import DEFAULT_LISTEN, ListenError, Options, makeService
from gomail_twisted.tls import selfSignedCertificate
from tests._memoryclient import MemoryClient
from tests._twistd import (
    LISTENING,
    Output,
    assertBusyPortRefused,
    environment,
    run,
    spawn,
    stop,
    twistd,
)

ALICE = "alice@example.com"
PASSWORD = "correct horse"

MESSAGE = (
    f"From: sender@example.net\r\nTo: {ALICE}\r\nSubject: over IMAP\r\n\r\nHello.\r\n"
).encode()

#: The line twistd logs once the reactor has stopped.
SHUT_DOWN = re.compile(r"Server Shut Down")


def _usersFile(path: Path) -> str:
    """
    Write a users file with Alice (cheap argon2 parameters), return its path.
    """
    hasher = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"domain example.com\nuser {ALICE} {hasher.hash(PASSWORD)}\n")
    return str(path)


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


def _stored(maildir: Path, address: str = ALICE) -> list[bytes]:
    """
    The messages in C{address}'s INBOX on disk, new and seen.
    """
    found = []
    for sub in ("new", "cur"):
        directory = maildir / address / sub
        if directory.is_dir():
            found += [p.read_bytes() for p in directory.iterdir()]
    return sorted(found)


@contextmanager
def _connected(client: imaplib.IMAP4) -> Iterator[imaplib.IMAP4]:
    """
    Use C{client}, then close its connection unless it logged out.
    """
    try:
        yield client
    finally:
        if client.state != "LOGOUT":
            client.shutdown()


def _refusal(command: Callable[[], object]) -> str:
    """
    Run an imaplib command that the server must refuse with NO.

    @return: the text of the refusal, response code first.
    """
    try:
        command()
    except imaplib.IMAP4.error as e:
        return bytes(e.args[0]).decode()
    raise AssertionError("the server accepted the command")


def _capabilities(client: imaplib.IMAP4) -> list[str]:
    """
    Ask for the server's capabilities now (imaplib keeps those of the
    greeting).
    """
    typ, data = client.capability()
    assert typ == "OK", (typ, data)
    return bytes(data[-1]).decode("ascii").split()


def _exists(client: imaplib.IMAP4, mailbox: str = "INBOX") -> int:
    """
    SELECT C{mailbox}, return its C{EXISTS} count.
    """
    typ, data = client.select(mailbox)
    count = data[-1]
    assert typ == "OK" and count is not None, (typ, data)
    return int(count)


class OptionsTests(SynchronousTestCase):
    """
    The command line of C{twistd gomail-imap4} refuses what it cannot use,
    with a message naming the problem.
    """

    def setUp(self) -> None:
        self.users = _usersFile(Path(self.mktemp()))

    def test_badValues(self) -> None:
        """
        Malformed values are usage errors that name the problem.
        """
        cases = [
            (["--timeout=0"], "--timeout wants a positive number, not '0'"),
            (["--timeout=soon"], "--timeout wants a positive number, not 'soon'"),
            (["--tls-handshake-timeout=-1"], "--tls-handshake-timeout wants a"),
            (["--max-errors=0"], "--max-errors wants a positive number"),
            (["--max-connections=1.5"], "--max-connections wants a positive"),
            (["--max-connections-per-peer=x"], "--max-connections-per-peer wants"),
            (["--max-append-size=0"], "--max-append-size wants a positive size"),
            (["--max-append-size=big"], "--max-append-size wants a positive size"),
            (["--max-line-length=-1"], "--max-line-length wants a positive size"),
            (
                ["--max-line-length=1023"],
                "--max-line-length wants 1024 to 1048576 bytes (1K to 1M), not 1023",
            ),
            (["--max-line-length=2M"], "not 2097152"),
            (["--listen=nonsense:143"], "--listen 'nonsense:143'"),
            (["--listen=tcp:notaport"], "--listen 'tcp:notaport'"),
            (["--hostname=imap example"], "--hostname 'imap example'"),
            (["--hostname=bücher.example"], "not an ASCII domain name"),
            (["--max-size=1K"], "max-size"),
            (["--no-such-option"], "no-such-option"),
        ]
        for args, expected in cases:
            with self.assertRaises(UsageError, msg=str(args)) as caught:
                _parse("--users", self.users, *args)
            self.assertIn(expected, str(caught.exception))

    def test_sizes(self) -> None:
        """
        C{--max-append-size} and C{--max-line-length} take bytes, or K, M
        and G in powers of 1024; the line length's bounds are inclusive.
        """
        cases = [
            (["--max-append-size=1000"], "max-append-size", 1000),
            (["--max-append-size=10M"], "max-append-size", 10 * 2**20),
            (["--max-append-size=1G"], "max-append-size", 2**30),
            (["--max-line-length=1K"], "max-line-length", 1024),
            (["--max-line-length=1M"], "max-line-length", 2**20),
            (["--max-line-length=8192"], "max-line-length", 8192),
        ]
        for args, option, expected in cases:
            self.assertEqual(_parse("--users", self.users, *args)[option], expected)

    def test_defaults(self) -> None:
        """
        Without options the server listens on loopback port 1143, reads
        C{./maildir}, refuses passwords before TLS, waits the thirty minutes
        of RFC 3501 5.4 for an idle client, and takes the factory's limits.
        """
        options = _parse("--users", self.users)
        self.assertEqual(options["listen"], [DEFAULT_LISTEN])
        self.assertEqual(DEFAULT_LISTEN, "tcp:1143:interface=127.0.0.1")
        self.assertEqual(options["maildir"], "./maildir")
        self.assertFalse(options["allow-plaintext-auth"])
        self.assertIsNone(options["tls"])
        self.assertEqual(options["timeout"], 1800)
        self.assertEqual(options["max-append-size"], 50 * 2**20)
        self.assertEqual(options["max-line-length"], 64 * 2**10)

    def test_usersFileRequired(self) -> None:
        """
        C{--users} must name a readable file; without it the users file of
        C{python -m gomail_twisted users} is taken, and when there is none
        the usage error says how to make one.
        """
        missing = self.mktemp()
        with self.assertRaises(UsageError) as caught:
            _parse("--users", missing)
        self.assertEqual(
            str(caught.exception), f"--users {missing}: No such file or directory"
        )
        self.patch(os, "environ", {**os.environ, "GOMAIL_USERS": missing})
        with self.assertRaises(UsageError) as caught:
            _parse()
        self.assertEqual(
            str(caught.exception),
            f"no users file at {missing}: give --users, or make one "
            "(python -m gomail_twisted users add ADDRESS)",
        )
        self.patch(os, "environ", {**os.environ, "GOMAIL_USERS": self.users})
        self.assertEqual(_parse()["users"], self.users)

    def test_certificateAndKey(self) -> None:
        """
        C{--tls-cert} and C{--tls-key} go together, must be readable, and
        must be a certificate and its key; then they are loaded.
        """
        directory = Path(self.mktemp())
        cert, key = _certificate(directory / "one")
        _, otherKey = _certificate(directory / "two")
        missing = str(directory / "missing.pem")
        cases = [
            (["--tls-cert", cert], "--tls-cert and --tls-key go together"),
            (["--tls-key", key], "--tls-cert and --tls-key go together"),
            (["--tls-cert", missing, "--tls-key", key], f"cannot read {missing}"),
            (["--tls-cert", cert, "--tls-key", otherKey], "are not a PEM certificate"),
        ]
        for args, expected in cases:
            with self.assertRaises(UsageError, msg=str(args)) as caught:
                _parse("--users", self.users, *args)
            self.assertIn(expected, str(caught.exception))
        options = _parse("--users", self.users, "--tls-cert", cert, "--tls-key", key)
        self.assertIsNotNone(options["tls"])

    def test_help(self) -> None:
        """
        C{--help} names every option of the plugin, the standard ports, and
        the thirty minutes RFC 3501 asks of the idle timeout.
        """
        text = " ".join(str(Options()).split())
        for option in (
            "--listen",
            "--hostname",
            "--maildir",
            "--users",
            "--tls-cert",
            "--tls-key",
            "--allow-plaintext-auth",
            "--timeout",
            "--tls-handshake-timeout",
            "--max-errors",
            "--max-connections",
            "--max-connections-per-peer",
            "--max-append-size",
            "--max-line-length",
            "default: tcp:1143:interface=127.0.0.1",
            "STARTTLS (standard port 143)",
            "implicit TLS (standard port 993)",
            "RFC 3501 5.4 asks for at least 1800",
            "APPENDLIMIT",
        ):
            self.assertIn(option, text)


class WiringTests(SynchronousTestCase):
    """
    What each option makes the server do, on a memory reactor and its
    clock: the ports it listens on and the replies a client gets.
    """

    def serve(self, *args: str) -> tuple[MemoryReactorClock, IMAP4ServerFactory]:
        """
        Start the service of C{args} (with a users file and a Maildir in
        temporary directories) on a memory reactor.

        @return: the reactor and the factory every port serves.
        """
        reactor = MemoryReactorClock()
        users = _usersFile(Path(self.mktemp()))
        options = _parse(f"--maildir={self.mktemp()}", "--users", users, *args)
        service = makeService(options, reactor)
        service.startService()
        self.addCleanup(service.stopService)
        ports = reactor.tcpServers + reactor.sslServers
        factories = {port[1] for port in ports}
        [factory] = factories
        assert isinstance(factory, IMAP4ServerFactory)
        return reactor, factory

    def test_listenDefault(self) -> None:
        """
        Without C{--listen} the server listens on 127.0.0.1 port 1143 only.
        """
        reactor, _ = self.serve()
        self.assertEqual(
            [(port, interface) for port, _, _, interface in reactor.tcpServers],
            [(1143, "127.0.0.1")],
        )
        self.assertEqual(reactor.sslServers, [])

    def test_listenEach(self) -> None:
        """
        Each C{--listen} is a port of its own, all serving one factory:
        C{tcp:} ones in plain text, C{ssl:} ones with TLS.
        """
        cert, key = _certificate(Path(self.mktemp()))
        reactor, _ = self.serve(
            "--listen=tcp:1144:interface=127.0.0.2",
            f"--listen=ssl:1993:interface=127.0.0.1:privateKey={key}:certKey={cert}",
        )
        self.assertEqual(
            [(port, interface) for port, _, _, interface in reactor.tcpServers],
            [(1144, "127.0.0.2")],
        )
        self.assertEqual(
            [(server[0], server[-1]) for server in reactor.sslServers],
            [(1993, "127.0.0.1")],
        )

    def test_hostname(self) -> None:
        """
        C{--hostname} is the name in the greeting.
        """
        _, factory = self.serve("--hostname=imap.example.com")
        greeting = MemoryClient(factory, 1143).read()
        self.assertTrue(greeting.startswith(b"* OK "), greeting)
        self.assertIn(b" imap.example.com ", greeting)

    def test_tlsAndPlaintextAuth(self) -> None:
        """
        STARTTLS is offered either way; before TLS, LOGIN is disabled and
        refused with C{PRIVACYREQUIRED}, and offered (C{AUTH=PLAIN}) with
        C{--allow-plaintext-auth}.
        """
        _, factory = self.serve()
        client = MemoryClient(factory, 1143)
        client.read()
        capabilities = client.send(b"a CAPABILITY\r\n").split(b"\r\n")[0].split()
        self.assertIn(b"STARTTLS", capabilities)
        self.assertIn(b"LOGINDISABLED", capabilities)
        self.assertNotIn(b"AUTH=PLAIN", capabilities)
        answer = client.send(f"b LOGIN {ALICE} secret\r\n".encode())
        self.assertTrue(answer.startswith(b"b NO [PRIVACYREQUIRED] "), answer)

        _, factory = self.serve("--allow-plaintext-auth")
        client = MemoryClient(factory, 1143)
        client.read()
        capabilities = client.send(b"a CAPABILITY\r\n").split(b"\r\n")[0].split()
        self.assertIn(b"STARTTLS", capabilities)
        self.assertIn(b"AUTH=PLAIN", capabilities)
        self.assertNotIn(b"LOGINDISABLED", capabilities)

    def test_timeoutDefault(self) -> None:
        """
        By default an idle client is given the thirty minutes of RFC 3501
        5.4, then told C{* BYE} and hung up on.
        """
        reactor, factory = self.serve()
        client = MemoryClient(factory, 1143)
        client.send(b"a NOOP\r\n")
        reactor.advance(30 * 60 - 0.5)
        self.assertEqual(client.read(), b"")
        self.assertFalse(client.transport.disconnecting)
        reactor.advance(1)
        self.assertTrue(client.read().startswith(b"* BYE "))
        self.assertTrue(client.transport.disconnecting)

    def test_timeout(self) -> None:
        """
        After C{--timeout} seconds of client silence the server says
        C{* BYE} and hangs up, not before.
        """
        reactor, factory = self.serve("--timeout=30")
        client = MemoryClient(factory, 1143)
        client.send(b"a CAPABILITY\r\n")
        reactor.advance(29.5)
        self.assertEqual(client.read(), b"")
        self.assertFalse(client.transport.disconnecting)
        reactor.advance(1)
        self.assertTrue(client.read().startswith(b"* BYE "))
        self.assertTrue(client.transport.disconnecting)

    def test_tlsHandshakeTimeout(self) -> None:
        """
        An implicit-TLS client that does not finish its handshake within
        C{--tls-handshake-timeout} seconds is dropped without a word.
        """
        reactor, factory = self.serve("--tls-handshake-timeout=5")
        client = MemoryClient(factory, 1143, tls=True)
        reactor.advance(4.5)
        self.assertFalse(client.transport.disconnecting)
        reactor.advance(1)
        self.assertTrue(client.transport.disconnecting)
        self.assertEqual(client.read(), b"")

    def test_maxErrors(self) -> None:
        """
        At C{--max-errors} BAD replies the server says C{* BYE} and hangs
        up, not before.
        """
        _, factory = self.serve("--max-errors=2")
        client = MemoryClient(factory, 1143)
        client.read()
        self.assertTrue(client.send(b"a FOO\r\n").startswith(b"a BAD "))
        self.assertFalse(client.transport.disconnecting)
        last = client.send(b"b BAR\r\n")
        self.assertTrue(last.startswith(b"b BAD "), last)
        self.assertIn(b"\r\n* BYE ", last)
        self.assertTrue(client.transport.disconnecting)

    def test_maxConnections(self) -> None:
        """
        Past C{--max-connections} in all, a client is greeted
        C{* BYE [UNAVAILABLE]}.
        """
        _, factory = self.serve("--max-connections=2")
        greetings = [
            MemoryClient(factory, 1143, peer).read()
            for peer in ("192.0.2.1", "192.0.2.2", "192.0.2.3")
        ]
        self.assertEqual([g[:5] for g in greetings], [b"* OK ", b"* OK ", b"* BYE"])
        self.assertTrue(greetings[2].startswith(b"* BYE [UNAVAILABLE] "), greetings[2])

    def test_maxConnectionsPerPeer(self) -> None:
        """
        Past C{--max-connections-per-peer} from one address, a client is
        refused, while another address is still served.
        """
        _, factory = self.serve("--max-connections-per-peer=2")
        greetings = [
            MemoryClient(factory, 1143, peer).read()[:5]
            for peer in ("192.0.2.1", "192.0.2.1", "192.0.2.1", "192.0.2.2")
        ]
        self.assertEqual(greetings, [b"* OK ", b"* OK ", b"* BYE", b"* OK "])

    def test_maxLineLength(self) -> None:
        """
        A command line longer than C{--max-line-length} is answered
        C{* BYE [TOOBIG]} and the connection closed; a shorter one is read.
        """
        _, factory = self.serve("--max-line-length=1K")
        client = MemoryClient(factory, 1143)
        client.read()
        answer = client.send(b"a NOOP " + b"x" * 900 + b"\r\n")
        self.assertTrue(answer.startswith(b"a BAD "), answer)
        self.assertFalse(client.transport.disconnecting)
        answer = client.send(b"b NOOP " + b"x" * 1100 + b"\r\n")
        self.assertEqual(answer, b"* BYE [TOOBIG] Command line too long\r\n")
        self.assertTrue(client.transport.disconnecting)


class ServiceTests(TestCase):
    """
    The service started in this process beside C{gomail-smtp} over the same
    store and users file, driven by smtplib and imaplib in threads.
    """

    timeout = 30

    def setUp(self) -> None:
        self.events: list[LogEvent] = []
        globalLogPublisher.addObserver(self.events.append)
        self.addCleanup(globalLogPublisher.removeObserver, self.events.append)
        self.maildir = Path(self.mktemp())
        self.users = _usersFile(Path(self.mktemp()))

    def startService(self, service: IService, protocol: str) -> list[int]:
        """
        Start a service, stop it at the end.

        @return: the ports it says it listens on for C{protocol}.
        """
        before = len(self.events)
        service.startService()
        self.addCleanup(lambda: service.stopService() if service.running else None)
        return [
            int(event["port"])
            for event in self.events[before:]
            if event.get("protocol") == protocol and "port" in event
        ]

    def start(self, *args: str) -> list[int]:
        """
        Start the IMAP4 service of C{args} on the test's store and users.

        @return: the ports it listens on.
        """
        options = _parse(
            "--hostname=localhost",
            f"--maildir={self.maildir}",
            "--users",
            self.users,
            *args,
        )
        self.service = makeService(options)
        ports = self.startService(self.service, "IMAP4")
        self.assertEqual(len(ports), len(options["listen"]))
        return ports

    def deliver(self, *messages: bytes) -> Deferred[None]:
        """
        Start C{gomail-smtp} on the same store and users, and send it
        C{messages} for Alice.
        """
        options = tapSMTP.Options()
        options.parseOptions(
            [
                "--hostname=localhost",
                f"--maildir={self.maildir}",
                "--users",
                self.users,
                "--listen=tcp:0:interface=127.0.0.1",
                "--no-tls",
                "--no-dkim",
            ]
        )
        [port] = self.startService(tapSMTP.makeService(options), "SMTP")

        def send() -> None:
            with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
                for message in messages:
                    client.sendmail("sender@example.net", [ALICE], message)

        return deferToThread(send)

    def logged(self) -> list[str]:
        return [formatEvent(e) for e in self.events]

    def inThread(self, f: Callable[[], Any]) -> Deferred[Any]:
        return deferToThread(f)

    @inlineCallbacks
    def test_plainText(self) -> Any:
        """
        With C{--allow-plaintext-auth}, imaplib logs in over plain TCP and
        SELECT INBOX counts the message the SMTP server delivered; once
        logged in the capabilities announce C{--max-append-size} as
        C{APPENDLIMIT}.
        """
        yield self.deliver(MESSAGE)
        self.assertEqual(len(_stored(self.maildir)), 1)
        [port] = self.start(
            "--listen=tcp:0:interface=127.0.0.1",
            "--allow-plaintext-auth",
            "--max-append-size=2M",
        )

        def session() -> tuple[list[str], int, str]:
            with _connected(imaplib.IMAP4("127.0.0.1", port, timeout=10)) as client:
                client.login(ALICE, PASSWORD)
                capabilities = _capabilities(client)
                exists = _exists(client)
                bye = client.logout()[0]
            return capabilities, exists, bye

        capabilities, exists, bye = yield self.inThread(session)
        self.assertIn(f"APPENDLIMIT={2 * 2**20}", capabilities)
        self.assertEqual(exists, 1)
        self.assertEqual(bye, "BYE")

    @inlineCallbacks
    def test_passwordsNeedTLS(self) -> Any:
        """
        Without C{--allow-plaintext-auth}, the capabilities before TLS say
        C{LOGINDISABLED} and LOGIN is refused with C{PRIVACYREQUIRED}.
        """
        [port] = self.start("--listen=tcp:0:interface=127.0.0.1")

        def login() -> tuple[tuple[str, ...], str]:
            with _connected(imaplib.IMAP4("127.0.0.1", port, timeout=10)) as client:
                capabilities = client.capabilities
                return capabilities, _refusal(lambda: client.login(ALICE, PASSWORD))

        capabilities, refusal = yield self.inThread(login)
        self.assertIn("LOGINDISABLED", capabilities)
        self.assertIn("STARTTLS", capabilities)
        self.assertTrue(refusal.startswith("[PRIVACYREQUIRED] "), refusal)

    @inlineCallbacks
    def test_startTLSDevelopmentCertificate(self) -> Any:
        """
        Without certificate files, STARTTLS works with a certificate made
        at startup for the host name, and the log says it is for
        development; after it LOGIN is enabled and the user logs in.
        """
        yield self.deliver(MESSAGE)
        [port] = self.start("--listen=tcp:0:interface=127.0.0.1")
        warnings = [line for line in self.logged() if "DEVELOPMENT" in line]
        self.assertEqual(len(warnings), 1)
        self.assertIn("STARTTLS", warnings[0])

        def session() -> tuple[bytes, tuple[str, ...], int]:
            with _connected(imaplib.IMAP4("127.0.0.1", port, timeout=10)) as client:
                client.starttls(ssl_context=ssl._create_unverified_context())
                assert isinstance(client.sock, ssl.SSLSocket)
                presented = client.sock.getpeercert(binary_form=True)
                assert presented is not None
                capabilities = client.capabilities
                client.login(ALICE, PASSWORD)
                exists = _exists(client)
                client.logout()
            return presented, capabilities, exists

        presented, capabilities, exists = yield self.inThread(session)
        subject = x509.load_der_x509_certificate(presented).subject
        self.assertEqual(subject.rfc4514_string(), "CN=localhost")
        self.assertNotIn("LOGINDISABLED", capabilities)
        self.assertNotIn("STARTTLS", capabilities)
        self.assertEqual(exists, 1)

    @inlineCallbacks
    def test_startTLSWithFiles(self) -> Any:
        """
        With C{--tls-cert} and C{--tls-key}, STARTTLS presents that
        certificate, which a client trusting it verifies, and no
        development certificate is made.
        """
        cert, key = _certificate(Path(self.mktemp()))
        [port] = self.start(
            "--listen=tcp:0:interface=127.0.0.1", "--tls-cert", cert, "--tls-key", key
        )
        self.assertFalse(any("DEVELOPMENT" in line for line in self.logged()))
        context = ssl.create_default_context(cafile=cert)

        def session() -> int:
            with _connected(imaplib.IMAP4("127.0.0.1", port, timeout=10)) as client:
                client.starttls(ssl_context=context)
                client.login(ALICE, PASSWORD)
                exists = _exists(client)
                client.logout()
            return exists

        self.assertEqual((yield self.inThread(session)), 0)

    @inlineCallbacks
    def test_implicitTLS(self) -> Any:
        """
        An C{ssl:} endpoint is implicit TLS (RFC 8314): IMAP4_SSL logs in
        without C{--allow-plaintext-auth} and SELECT INBOX counts a
        delivered message.
        """
        yield self.deliver(MESSAGE)
        cert, key = _certificate(Path(self.mktemp()))
        [port] = self.start(
            f"--listen=ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}"
        )
        context = ssl.create_default_context(cafile=cert)

        def session() -> tuple[tuple[str, ...], int]:
            client = imaplib.IMAP4_SSL(
                "127.0.0.1", port, ssl_context=context, timeout=10
            )
            with _connected(client):
                capabilities = client.capabilities
                client.login(ALICE, PASSWORD)
                exists = _exists(client)
                client.logout()
            return capabilities, exists

        capabilities, exists = yield self.inThread(session)
        self.assertNotIn("LOGINDISABLED", capabilities)
        self.assertEqual(exists, 1)

    @inlineCallbacks
    def test_wrongPassword(self) -> Any:
        """
        A wrong password is refused with C{NO [AUTHENTICATIONFAILED]}.
        """
        [port] = self.start(
            "--listen=tcp:0:interface=127.0.0.1", "--allow-plaintext-auth"
        )

        def login() -> str:
            with _connected(imaplib.IMAP4("127.0.0.1", port, timeout=10)) as client:
                return _refusal(lambda: client.login(ALICE, "wrong"))

        refusal = yield self.inThread(login)
        self.assertTrue(refusal.startswith("[AUTHENTICATIONFAILED] "), refusal)

    @inlineCallbacks
    def test_stopSaysGoodbye(self) -> Any:
        """
        Stopping the service tells a connected client C{* BYE
        [UNAVAILABLE]} and closes its connection; the stop completes once
        the session is gone.
        """
        [port] = self.start("--listen=tcp:0:interface=127.0.0.1")
        client = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.addCleanup(client.close)

        def read() -> bytes:
            data = b""
            for _ in range(100):
                chunk = client.recv(4096)
                if not chunk:
                    break
                data += chunk
            return data

        greeted = yield self.inThread(lambda: client.recv(4096))
        self.assertTrue(greeted.startswith(b"* OK "))
        rest = self.inThread(read)
        yield self.service.stopService()
        self.assertEqual((yield rest), b"* BYE [UNAVAILABLE] Server shutting down\r\n")

    def test_portInUse(self) -> None:
        """
        Starting the service on a port in use raises L{ListenError}, which
        names the plugin, the endpoint as given and the reason.
        """
        with socket.socket() as occupier:
            occupier.bind(("127.0.0.1", 0))
            occupier.listen()
            endpoint = f"tcp:{occupier.getsockname()[1]}:interface=127.0.0.1"
            service = makeService(
                _parse(
                    f"--listen={endpoint}",
                    f"--maildir={self.maildir}",
                    "--users",
                    self.users,
                )
            )
            with self.assertRaises(ListenError) as caught:
                service.startService()
        self.assertEqual(
            str(caught.exception),
            f"gomail-imap4: cannot listen on {endpoint}: Address already in use",
        )
        self.assertIsInstance(caught.exception, SystemExit)


class TwistdTests(SynchronousTestCase):
    """
    The plugin as operators meet it: the C{twistd} command.
    """

    def test_helpListsPlugin(self) -> None:
        """
        C{twistd --help}, run from an empty directory, lists gomail-imap4.
        """
        cwd = self.mktemp()
        os.mkdir(cwd)
        result = run([*twistd(), "--help"], cwd)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertRegex(result.stdout, r"\n\s+gomail-imap4\s+An IMAP4 server")

    def test_noUsersFile(self) -> None:
        """
        Run where there is no users file, C{twistd -n gomail-imap4} exits
        with status 1 and says how to make one.
        """
        cwd = Path(self.mktemp())
        cwd.mkdir()
        env = {k: v for k, v in environment().items() if k != "GOMAIL_USERS"}
        result = run([*twistd(), "-n", "gomail-imap4"], cwd, env)
        self.assertEqual(result.returncode, 1)
        self.assertIn(
            "no users file at gomail-data/users: give --users",
            result.stdout + result.stderr,
        )

    def test_portInUse(self) -> None:
        """
        A port already in use ends twistd with status 1 and one line naming
        the endpoint and the reason; no traceback.
        """
        cwd = Path(self.mktemp())
        _usersFile(cwd / "gomail-data" / "users")
        assertBusyPortRefused(
            self,
            "gomail-imap4",
            lambda endpoint: [
                *twistd(),
                "-n",
                "--pidfile=",
                "gomail-imap4",
                f"--listen={endpoint}",
            ],
            cwd,
        )

    def test_runsServer(self) -> None:
        """
        C{twistd -n gomail-imap4}, given only a port and plain-text logins,
        takes the users file from C{gomail-data/users}, logs the port it
        bound, and shows Alice the message a mail delivery agent left in
        C{./maildir}; on SIGTERM it tells a connected client C{* BYE
        [UNAVAILABLE]} and shuts down without a traceback.
        """
        cwd = Path(self.mktemp())
        _usersFile(cwd / "gomail-data" / "users")
        new = cwd / "maildir" / ALICE / "new"
        new.mkdir(parents=True)
        for sub in ("cur", "tmp"):
            (new.parent / sub).mkdir()
        (new / "1700000000.M1P1.test").write_bytes(MESSAGE.replace(b"\r\n", b"\n"))
        process = spawn(
            [
                *twistd(),
                "-n",
                "--pidfile=",
                "--logfile=-",
                "gomail-imap4",
                "--listen=tcp:0:interface=127.0.0.1",
                "--allow-plaintext-auth",
            ],
            cwd,
        )
        self.addCleanup(stop, process)
        assert process.stdout is not None
        output = Output(process.stdout)
        port = int(output.waitFor(LISTENING, 20).group(2))
        self.assertTrue(any("DEVELOPMENT" in line for line in output.lines))
        with _connected(imaplib.IMAP4("127.0.0.1", port, timeout=10)) as client:
            client.login(ALICE, PASSWORD)
            exists = _exists(client)
            client.logout()
        self.assertEqual(exists, 1)

        with socket.create_connection(("127.0.0.1", port), timeout=10) as waiting:
            self.assertTrue(waiting.recv(4096).startswith(b"* OK "))
            process.terminate()
            goodbye = b""
            for _ in range(100):
                chunk = waiting.recv(4096)
                if not chunk:
                    break
                goodbye += chunk
        self.assertEqual(goodbye, b"* BYE [UNAVAILABLE] Server shutting down\r\n")
        # twistd ends with the signal it was stopped by, once shut down.
        self.assertEqual(process.wait(timeout=20), -signal.SIGTERM)
        output.waitFor(SHUT_DOWN, 10)
        self.assertFalse(any("Traceback" in line for line in output.lines))
