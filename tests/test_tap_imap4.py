# -*- test-case-name: tests.test_tap_imap4 -*-
"""
Tests for L{gomail_twisted.tap.imap4} and the C{gomail-imap4} twistd plugin:
what each option makes the server do, seen by a client over a memory
reactor.
"""

from __future__ import annotations

import os
from pathlib import Path

from argon2 import PasswordHasher
from twisted.internet.testing import MemoryReactorClock
from twisted.python.usage import UsageError
from twisted.trial.unittest import SynchronousTestCase

from gomail_twisted.imap4.factory import IMAP4ServerFactory
from gomail_twisted.tap.imap4 import DEFAULT_LISTEN, Options, makeService
from gomail_twisted.tls import selfSignedCertificate
from tests._memoryclient import MemoryClient

ALICE = "alice@example.com"
PASSWORD = "correct horse"


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
