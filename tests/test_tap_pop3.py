# -*- test-case-name: tests.test_tap_pop3 -*-
"""
Tests for L{gomail_twisted.tap.pop3} and the C{gomail-pop3} twistd plugin:
what each option makes the server do, seen by a client over a memory
reactor, and the service started for real in this process and by C{twistd}
in another, read with stdlib poplib (plain, STLS, implicit TLS) after the
SMTP server delivered into the same store.
"""

from __future__ import annotations

import os
import poplib
import smtplib
import socket
import ssl
from collections.abc import Callable
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

from gomail_twisted.pop3 import POP3ServerFactory
from gomail_twisted.tap import smtp as tapSMTP
from gomail_twisted.tap.pop3 import DEFAULT_LISTEN, ListenError, Options, makeService
from gomail_twisted.tls import selfSignedCertificate
from tests._memoryclient import MemoryClient
from tests._twistd import LISTENING, Output, environment, run, spawn, stop, twistd

ALICE = "alice@example.com"
PASSWORD = "correct horse"

#: Messages with a line that starts with a dot, to see it unstuffed.
MESSAGES = [
    (
        f"From: sender@example.net\r\nTo: {ALICE}\r\nSubject: number {n}\r\n\r\n"
        f"Hello {n}.\r\n.a line with a leading dot\r\nbye\r\n"
    ).encode()
    for n in range(3)
]


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


def _body(lines: list[bytes]) -> bytes:
    """
    A message as poplib returns it, its lines joined with CRLF.
    """
    return b"".join(line + b"\r\n" for line in lines)


class OptionsTests(SynchronousTestCase):
    """
    The command line of C{twistd gomail-pop3} refuses what it cannot use,
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
            (["--listen=nonsense:110"], "--listen 'nonsense:110'"),
            (["--listen=tcp:notaport"], "--listen 'tcp:notaport'"),
            (["--hostname=pop example"], "--hostname 'pop example'"),
            (["--hostname=bücher.example"], "not an ASCII domain name"),
            (["--max-size=1K"], "max-size"),
            (["--domain=example.com"], "domain"),
            (["--no-such-option"], "no-such-option"),
        ]
        for args, expected in cases:
            with self.assertRaises(UsageError, msg=str(args)) as caught:
                _parse("--users", self.users, *args)
            self.assertIn(expected, str(caught.exception))

    def test_defaults(self) -> None:
        """
        Without options the server listens on loopback port 1110, reads
        C{./maildir}, refuses passwords before TLS, and waits the ten minutes
        of RFC 1939 3 for an idle client.
        """
        options = _parse("--users", self.users)
        self.assertEqual(options["listen"], [DEFAULT_LISTEN])
        self.assertEqual(DEFAULT_LISTEN, "tcp:1110:interface=127.0.0.1")
        self.assertEqual(options["maildir"], "./maildir")
        self.assertFalse(options["allow-plaintext-auth"])
        self.assertIsNone(options["tls"])
        self.assertGreaterEqual(options["timeout"], 600)

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
        C{--help} names every option of the plugin.
        """
        text = str(Options())
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
        ):
            self.assertIn(option, text)


class WiringTests(SynchronousTestCase):
    """
    What each option makes the server do, on a memory reactor and its
    clock: the ports it listens on and the replies a client gets.
    """

    def serve(self, *args: str) -> tuple[MemoryReactorClock, POP3ServerFactory]:
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
        assert isinstance(factory, POP3ServerFactory)
        return reactor, factory

    def test_listenDefault(self) -> None:
        """
        Without C{--listen} the server listens on 127.0.0.1 port 1110 only.
        """
        reactor, _ = self.serve()
        self.assertEqual(
            [(port, interface) for port, _, _, interface in reactor.tcpServers],
            [(1110, "127.0.0.1")],
        )
        self.assertEqual(reactor.sslServers, [])

    def test_listenEach(self) -> None:
        """
        Each C{--listen} is a port of its own, all serving one factory:
        C{tcp:} ones in plain text, C{ssl:} ones with TLS.
        """
        cert, key = _certificate(Path(self.mktemp()))
        reactor, _ = self.serve(
            "--listen=tcp:1111:interface=127.0.0.2",
            f"--listen=ssl:1995:interface=127.0.0.1:privateKey={key}:certKey={cert}",
        )
        self.assertEqual(
            [(port, interface) for port, _, _, interface in reactor.tcpServers],
            [(1111, "127.0.0.2")],
        )
        self.assertEqual(
            [(server[0], server[-1]) for server in reactor.sslServers],
            [(1995, "127.0.0.1")],
        )

    def test_hostname(self) -> None:
        """
        C{--hostname} is the name in the greeting.
        """
        _, factory = self.serve("--hostname=pop.example.com")
        greeting = MemoryClient(factory, 1110).read()
        self.assertTrue(greeting.startswith(b"+OK "), greeting)
        self.assertIn(b"pop.example.com", greeting)

    def test_tlsAndPlaintextAuth(self) -> None:
        """
        STLS is offered either way; USER is refused before TLS, and accepted
        with C{--allow-plaintext-auth}.
        """
        for args, userReply in (((), b"-ERR "), (("--allow-plaintext-auth",), b"+OK ")):
            _, factory = self.serve(*args)
            client = MemoryClient(factory, 1110)
            client.read()
            capabilities = client.send(b"CAPA\r\n")
            self.assertIn(b"\r\nSTLS\r\n", capabilities, args)
            answer = client.send(f"USER {ALICE}\r\n".encode())
            self.assertTrue(answer.startswith(userReply), (args, answer))

    def test_timeout(self) -> None:
        """
        After C{--timeout} seconds of client silence the server says -ERR and
        hangs up, not before.
        """
        reactor, factory = self.serve("--timeout=30")
        client = MemoryClient(factory, 1110)
        client.send(b"CAPA\r\n")
        reactor.advance(29.5)
        self.assertEqual(client.read(), b"")
        self.assertFalse(client.transport.disconnecting)
        reactor.advance(1)
        self.assertTrue(client.read().startswith(b"-ERR "))
        self.assertTrue(client.transport.disconnecting)

    def test_tlsHandshakeTimeout(self) -> None:
        """
        An implicit-TLS client that does not finish its handshake within
        C{--tls-handshake-timeout} seconds is dropped without a word.
        """
        reactor, factory = self.serve("--tls-handshake-timeout=5")
        client = MemoryClient(factory, 1110, tls=True)
        reactor.advance(4.5)
        self.assertFalse(client.transport.disconnecting)
        reactor.advance(1)
        self.assertTrue(client.transport.disconnecting)
        self.assertEqual(client.read(), b"")

    def test_maxErrors(self) -> None:
        """
        At C{--max-errors} protocol errors the server says -ERR and hangs
        up, not before.
        """
        _, factory = self.serve("--max-errors=2")
        client = MemoryClient(factory, 1110)
        client.read()
        self.assertTrue(client.send(b"FOO\r\n").startswith(b"-ERR "))
        self.assertFalse(client.transport.disconnecting)
        last = client.send(b"BAR\r\n")
        self.assertTrue(last.startswith(b"-ERR "), last)
        self.assertTrue(client.transport.disconnecting)

    def test_maxConnections(self) -> None:
        """
        Past C{--max-connections} in all, a client is greeted
        C{-ERR [SYS/TEMP]}.
        """
        _, factory = self.serve("--max-connections=2")
        greetings = [
            MemoryClient(factory, 1110, peer).read()
            for peer in ("192.0.2.1", "192.0.2.2", "192.0.2.3")
        ]
        self.assertEqual([g[:4] for g in greetings], [b"+OK ", b"+OK ", b"-ERR"])
        self.assertTrue(greetings[2].startswith(b"-ERR [SYS/TEMP] "), greetings[2])

    def test_maxConnectionsPerPeer(self) -> None:
        """
        Past C{--max-connections-per-peer} from one address, a client is
        refused, while another address is still served.
        """
        _, factory = self.serve("--max-connections-per-peer=2")
        greetings = [
            MemoryClient(factory, 1110, peer).read()[:4]
            for peer in ("192.0.2.1", "192.0.2.1", "192.0.2.1", "192.0.2.2")
        ]
        self.assertEqual(greetings, [b"+OK ", b"+OK ", b"-ERR", b"+OK "])


class ServiceTests(TestCase):
    """
    The service started in this process beside C{gomail-smtp} over the same
    store and users file, driven by smtplib and poplib in threads.
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
        Start the POP3 service of C{args} on the test's store and users.

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
        ports = self.startService(self.service, "POP3")
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
        With C{--allow-plaintext-auth}, poplib logs in with USER/PASS over
        plain TCP and reads what the SMTP server delivered; deletions made
        in a session that ends without QUIT are forgotten, and those of a
        session that QUITs are gone from disk.
        """
        yield self.deliver(*MESSAGES)
        self.assertEqual(len(_stored(self.maildir)), 3)
        [port] = self.start(
            "--listen=tcp:0:interface=127.0.0.1", "--allow-plaintext-auth"
        )

        def dropped() -> None:
            client = poplib.POP3("127.0.0.1", port, timeout=10)
            client.user(ALICE)
            client.pass_(PASSWORD)
            client.dele(1)
            client.dele(2)
            client.sock.close()

        def read() -> tuple[tuple[int, int], list[bytes], bytes]:
            client = poplib.POP3("127.0.0.1", port, timeout=10)
            client.user(ALICE)
            client.pass_(PASSWORD)
            stat = client.stat()
            bodies = [_body(client.retr(n)[1]) for n in (1, 2, 3)]
            client.dele(1)
            client.dele(3)
            bye = client.quit()
            return stat, bodies, bye

        yield self.inThread(dropped)
        self.assertEqual(len(_stored(self.maildir)), 3)
        stat, bodies, bye = yield self.inThread(read)
        self.assertEqual(stat[0], 3)
        self.assertTrue(bye.startswith(b"+OK"), bye)
        self.assertEqual(
            sorted(m for m in MESSAGES for b in bodies if b.endswith(m)), MESSAGES
        )
        [left] = _stored(self.maildir)
        self.assertTrue(left.replace(b"\n", b"\r\n").endswith(bodies[1]), left)

    @inlineCallbacks
    def test_passwordsNeedTLS(self) -> Any:
        """
        Without C{--allow-plaintext-auth}, USER before STLS is refused.
        """
        [port] = self.start("--listen=tcp:0:interface=127.0.0.1")

        def login() -> str:
            client = poplib.POP3("127.0.0.1", port, timeout=10)
            try:
                client.user(ALICE)
            except poplib.error_proto as e:
                return bytes(e.args[0]).decode()
            finally:
                client.close()
            return "accepted"

        refusal = yield self.inThread(login)
        self.assertTrue(refusal.startswith("-ERR "), refusal)

    @inlineCallbacks
    def test_stlsDevelopmentCertificate(self) -> Any:
        """
        Without certificate files, STLS works with a certificate made at
        startup for the host name, and the log says it is for development;
        after it the user logs in and deletes a message.
        """
        yield self.deliver(MESSAGES[0])
        [port] = self.start("--listen=tcp:0:interface=127.0.0.1")
        warnings = [line for line in self.logged() if "DEVELOPMENT" in line]
        self.assertEqual(len(warnings), 1)

        def session() -> tuple[bytes, int]:
            client = poplib.POP3("127.0.0.1", port, timeout=10)
            client.stls(context=ssl._create_unverified_context())
            assert isinstance(client.sock, ssl.SSLSocket)
            presented = client.sock.getpeercert(binary_form=True)
            assert presented is not None
            client.user(ALICE)
            client.pass_(PASSWORD)
            count = client.stat()[0]
            client.dele(1)
            client.quit()
            return presented, count

        presented, count = yield self.inThread(session)
        subject = x509.load_der_x509_certificate(presented).subject
        self.assertEqual(subject.rfc4514_string(), "CN=localhost")
        self.assertEqual(count, 1)
        self.assertEqual(_stored(self.maildir), [])

    @inlineCallbacks
    def test_stlsWithFiles(self) -> Any:
        """
        With C{--tls-cert} and C{--tls-key}, STLS presents that certificate,
        which a client trusting it verifies, and no development certificate
        is made.
        """
        cert, key = _certificate(Path(self.mktemp()))
        [port] = self.start(
            "--listen=tcp:0:interface=127.0.0.1", "--tls-cert", cert, "--tls-key", key
        )
        self.assertFalse(any("DEVELOPMENT" in line for line in self.logged()))

        def session() -> tuple[int, int]:
            client = poplib.POP3("127.0.0.1", port, timeout=10)
            client.stls(context=ssl.create_default_context(cafile=cert))
            client.user(ALICE)
            client.pass_(PASSWORD)
            stat = client.stat()
            client.quit()
            return stat

        self.assertEqual((yield self.inThread(session)), (0, 0))

    @inlineCallbacks
    def test_implicitTLS(self) -> Any:
        """
        An C{ssl:} endpoint is implicit TLS (RFC 8314): POP3_SSL logs in
        without C{--allow-plaintext-auth} and fetches a delivered message.
        """
        yield self.deliver(MESSAGES[1])
        cert, key = _certificate(Path(self.mktemp()))
        [port] = self.start(
            f"--listen=ssl:0:interface=127.0.0.1:privateKey={key}:certKey={cert}"
        )
        context = ssl.create_default_context(cafile=cert)

        def session() -> bytes:
            client = poplib.POP3_SSL("127.0.0.1", port, timeout=10, context=context)
            client.user(ALICE)
            client.pass_(PASSWORD)
            body = _body(client.retr(1)[1])
            client.quit()
            return body

        body = yield self.inThread(session)
        self.assertTrue(body.endswith(MESSAGES[1]), body)
        self.assertEqual(len(_stored(self.maildir)), 1)

    @inlineCallbacks
    def test_wrongPassword(self) -> Any:
        """
        A wrong password is refused with C{-ERR [AUTH]}.
        """
        [port] = self.start(
            "--listen=tcp:0:interface=127.0.0.1", "--allow-plaintext-auth"
        )

        def login() -> str:
            client = poplib.POP3("127.0.0.1", port, timeout=10)
            client.user(ALICE)
            try:
                client.pass_("wrong")
            except poplib.error_proto as e:
                return bytes(e.args[0]).decode()
            finally:
                client.close()
            return "accepted"

        self.assertTrue((yield self.inThread(login)).startswith("-ERR [AUTH]"))

    @inlineCallbacks
    def test_stopSaysGoodbye(self) -> Any:
        """
        Stopping the service tells a connected client C{-ERR [SYS/TEMP]} and
        closes its connection; the stop completes once the session is gone.
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
        self.assertTrue(greeted.startswith(b"+OK "))
        rest = self.inThread(read)
        yield self.service.stopService()
        self.assertTrue((yield rest).startswith(b"-ERR [SYS/TEMP] "))

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
            f"gomail-pop3: cannot listen on {endpoint}: Address already in use",
        )
        self.assertIsInstance(caught.exception, SystemExit)


class TwistdTests(SynchronousTestCase):
    """
    The plugin as operators meet it: the C{twistd} command.
    """

    def test_helpListsPlugin(self) -> None:
        """
        C{twistd --help}, run from an empty directory, lists gomail-pop3.
        """
        cwd = self.mktemp()
        os.mkdir(cwd)
        result = run([*twistd(), "--help"], cwd)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertRegex(result.stdout, r"\n\s+gomail-pop3\s+A POP3 server")

    def test_noUsersFile(self) -> None:
        """
        Run where there is no users file, C{twistd -n gomail-pop3} exits with
        status 1 and says how to make one.
        """
        cwd = Path(self.mktemp())
        cwd.mkdir()
        env = {k: v for k, v in environment().items() if k != "GOMAIL_USERS"}
        result = run([*twistd(), "-n", "gomail-pop3"], cwd, env)
        self.assertEqual(result.returncode, 1)
        self.assertIn(
            "no users file at gomail-data/users: give --users",
            result.stdout + result.stderr,
        )

    def test_runsServer(self) -> None:
        """
        C{twistd -n gomail-pop3}, given only a port and plain-text logins,
        takes the users file from C{gomail-data/users}, logs the port it
        bound, and serves Alice the message a mail delivery agent left in
        C{./maildir}; after she deletes it and QUITs, the file is gone.
        """
        cwd = Path(self.mktemp())
        _usersFile(cwd / "gomail-data" / "users")
        new = cwd / "maildir" / ALICE / "new"
        new.mkdir(parents=True)
        for sub in ("cur", "tmp"):
            (new.parent / sub).mkdir()
        (new / "1700000000.M1P1.test").write_bytes(MESSAGES[2].replace(b"\r\n", b"\n"))
        process = spawn(
            [
                *twistd(),
                "-n",
                "--pidfile=",
                "--logfile=-",
                "gomail-pop3",
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
        client = poplib.POP3("127.0.0.1", port, timeout=10)
        client.user(ALICE)
        client.pass_(PASSWORD)
        body = _body(client.retr(1)[1])
        client.dele(1)
        client.quit()
        self.assertEqual(body, MESSAGES[2])
        self.assertEqual(_stored(cwd / "maildir"), [])
