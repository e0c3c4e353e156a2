# -*- test-case-name: tests.test_tap_gomail -*-
"""
Tests for L{gomail_twisted.tap.gomail}, the C{twistd gomail} plugin: the
service tree each configuration makes, the files it keeps in the data
directory, the certificate read again on reload, the order of a polite
stop, and the server run by C{twistd} in another process and used with
stdlib clients (in L{tests.test_tap_gomail_twistd}).
"""

from __future__ import annotations

import datetime
import gc
import os
import signal
import ssl
import stat
from pathlib import Path
from typing import Any

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import MultiService
from twisted.internet import reactor as globalReactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.interfaces import IOpenSSLServerConnectionCreator
from twisted.internet.task import deferLater
from twisted.internet.testing import MemoryReactorClock
from twisted.internet.threads import deferToThread
from twisted.logger import LogEvent, formatEvent, globalLogPublisher
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.python.threadpool import ThreadPool
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface.verify import verifyObject

from gomail_twisted.imap4.factory import IMAP4ServerFactory
from gomail_twisted.ipac import IPAccessControl
from gomail_twisted.smtp.dkimcheck import DKIMVerifyingBackend
from gomail_twisted.smtp.maildir import MaildirBackend
from gomail_twisted.smtp.submission import SubmissionBackend
from gomail_twisted.tap._common import ListeningService
from gomail_twisted.tap._config import ConfigError
from gomail_twisted.tap.gomail import GomailService, Options, makeService
from gomail_twisted.tls import (
    ReloadingServerTLS,
    certificateFingerprint,
    selfSignedCertificate,
    writeSelfSignedFiles,
)
from gomail_twisted.users import UsersDatabase


def _parse(cwd: Path, *args: str) -> Options:
    options = Options()
    options.parseOptions([f"--data={cwd / 'gomail-data'}", *args])
    return options


def _ports(service: GomailService) -> dict[str, list[tuple[str, bool]]]:
    """
    What each protocol's service listens on: its label, endpoint strings,
    and whether the port adds TLS.
    """
    found: dict[str, list[tuple[str, bool]]] = {}
    for child in service:
        assert isinstance(child, ListeningService)
        for port in child:
            assert isinstance(port, StreamServerEndpointService)
            endpoint: Any = port.endpoint
            found.setdefault(endpoint._protocol, []).append(
                (endpoint._description, endpoint._tls is not None)
            )
    return found


def _writeCertificate(directory: Path, name: str) -> tuple[Path, Path]:
    """
    Write a new self-signed key and certificate.

    @return: the key's path and the certificate's.
    """
    keyPEM, certPEM = selfSignedCertificate(name)
    key, cert = directory / "key.pem", directory / "cert.pem"
    key.write_bytes(keyPEM)
    cert.write_bytes(certPEM)
    return key, cert


class _Reactor(MemoryReactorClock):
    """
    A memory reactor with a thread pool, never started, as the queue wants
    one.
    """

    def __init__(self) -> None:
        super().__init__()
        self._pool = ThreadPool()

    def getThreadPool(self) -> ThreadPool:
        return self._pool


class ServiceTreeTests(SynchronousTestCase):
    """
    What L{makeService} makes of each configuration, over a memory reactor.
    """

    def setUp(self) -> None:
        self.cwd = Path(self.mktemp()).resolve()
        self.cwd.mkdir()
        self.reactor = _Reactor()

    def make(self, *args: str) -> GomailService:
        service = makeService(
            _parse(self.cwd, "--hostname=mx.example.com", *args), self.reactor
        )
        self.addCleanup(service.store.close)
        return service

    def test_defaultPorts(self) -> None:
        """
        With no options, every service listens on its loopback port, the
        implicit-TLS ones through the server's TLS.
        """
        local = "tcp:{}:interface=127.0.0.1"
        self.assertEqual(
            _ports(self.make()),
            {
                "SMTP": [(local.format(2525), False)],
                "submission": [(local.format(2587), False)],
                "submissions": [(local.format(2465), True)],
                "POP3": [(local.format(1110), False)],
                "POP3S": [(local.format(1995), True)],
                "IMAP": [(local.format(1143), False)],
                "IMAPS": [(local.format(1993), True)],
            },
        )

    def test_servicesOff(self) -> None:
        """
        A service given no endpoint is not served; a protocol with neither
        of its services has no service at all.
        """
        service = self.make(
            "--listen=pop3=",
            "--listen=pop3s=",
            "--listen=imap=",
            "--listen=smtp=tcp:25",
        )
        ports = _ports(service)
        self.assertEqual(sorted(ports), ["IMAPS", "SMTP", "submission", "submissions"])
        self.assertEqual(ports["SMTP"], [("tcp:25", False)])
        self.assertEqual(len(list(service)), 3)

    def test_sharedPieces(self) -> None:
        """
        Every server shares the one store, certificate and access control;
        inbound SMTP verifies DKIM over a backend without AUTH, submission
        is the submission backend in front of the queue.
        """
        service = self.make()
        factories = {type(c.factory.backend): c.factory for c in service}
        smtp = factories[DKIMVerifyingBackend]
        inbound = smtp.backend.backend
        self.assertIsInstance(inbound, MaildirBackend)
        self.assertIsNone(inbound.checker)
        self.assertIs(inbound.store, service.store)
        submission = factories[SubmissionBackend].backend
        self.assertIs(submission.local.store, service.store)
        self.assertIs(submission.outbound, service.queue)
        self.assertIsNotNone(submission.local.checker)
        for child in service:
            self.assertIs(child.factory.accessControl, service.accessControl)
            self.assertIs(child.factory.tls, service.tls)
            self.assertIs(child.factory.reactor, self.reactor)
        imap = [c.factory for c in service if isinstance(c.factory, IMAP4ServerFactory)]
        self.assertEqual(len(imap), 1)
        self.assertIsInstance(service.accessControl, IPAccessControl)

    def test_noDKIMVerification(self) -> None:
        """
        C{[smtp] dkim-verify = false} leaves inbound mail unverified.
        """
        config = self.cwd / "gomail.toml"
        config.write_text("[smtp]\ndkim-verify = false\n")
        service = self.make(f"--config={config}")
        backends = [type(c.factory.backend) for c in service]
        self.assertIn(MaildirBackend, backends)
        self.assertNotIn(DKIMVerifyingBackend, backends)

    def test_limits(self) -> None:
        """
        The limits of the file reach each server's factory.
        """
        config = self.cwd / "gomail.toml"
        config.write_text(
            '[smtp]\nmax-message-size = "1M"\ntimeout = 60\n'
            "[submission]\nmax-recipients = 7\n"
            "[pop3]\nmax-connections = 3\n"
            '[imap]\nmax-append-size = "2M"\nmax-errors = 4\n'
            "[access]\nblock-after-failures = 5\nallow = []\n"
        )
        service = self.make(f"--config={config}")
        factories = {
            type(c.factory).__name__ + str(i): c.factory for i, c in enumerate(service)
        }
        smtp, submission, pop3, imap = factories.values()
        self.assertEqual((smtp.maxMessageSize, smtp.timeout), (2**20, 60.0))
        self.assertEqual(submission.maxRecipients, 7)
        self.assertEqual(pop3.maxConnections, 3)
        self.assertEqual((imap.maxAppendSize, imap.maxErrors), (2 * 2**20, 4))
        self.assertEqual(service.accessControl.blockAfterFailures, 5)

    def test_localhostDeclared(self) -> None:
        """
        A new users file declares C{localhost}, so that a first user can be
        added for it at once.
        """
        self.make()
        users = self.cwd / "gomail-data" / "users"
        self.assertEqual(users.read_text(), "domain localhost\n")
        self.make()
        self.assertEqual(users.read_text(), "domain localhost\n")

    def test_domainsDeclared(self) -> None:
        """
        The configured domains are added to the users file when missing,
        after what it has, and C{localhost} is then not added.
        """
        users = self.cwd / "gomail-data" / "users"
        users.parent.mkdir()
        users.write_text("# ours\ndomain example.com\n")
        self.make("--domain=example.com", "--domain=example.org")
        self.assertEqual(
            users.read_text(), "# ours\ndomain example.com\ndomain example.org\n"
        )
        self.assertEqual(UsersDatabase(users).domains(), ("example.com", "example.org"))

    def test_fileDomainsKept(self) -> None:
        """
        A users file that declares a domain is left as it is.
        """
        users = self.cwd / "gomail-data" / "users"
        users.parent.mkdir()
        users.write_text("domain example.com\n")
        self.make()
        self.assertEqual(users.read_text(), "domain example.com\n")

    def test_developmentCertificateKept(self) -> None:
        """
        Without a configured certificate, one is made in C{DATA/tls/} on
        the first run, its key readable by its owner only, and kept by the
        next run.
        """
        first = self.make().tls
        key = self.cwd / "gomail-data" / "tls" / "key.pem"
        cert = self.cwd / "gomail-data" / "tls" / "cert.pem"
        self.assertEqual((first.keyPath, first.certPath), (key, cert))
        self.assertEqual(stat.S_IMODE(key.stat().st_mode), 0o600)
        self.assertEqual(first.fingerprint, certificateFingerprint(cert.read_bytes()))
        self.assertEqual(self.make().tls.fingerprint, first.fingerprint)

    def warnings(self, *args: str) -> list[str]:
        """
        The service's warnings about its certificate, made with C{args}.
        """
        events: list[LogEvent] = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        self.make(*args)
        return [
            formatEvent(e)
            for e in events
            if "gomail: the certificate" in formatEvent(e)
        ]

    def test_certificateForAnotherName(self) -> None:
        """
        A configured certificate not valid for the host name is warned
        about; one that is valid is not.
        """
        key, cert = _writeCertificate(self.cwd, "other.example.com")
        files = (f"--tls-cert={cert}", f"--tls-key={key}")
        [warning] = self.warnings(*files)
        self.assertIn("is not valid for the host name mx.example.com", warning)
        _writeCertificate(self.cwd, "mx.example.com")
        self.assertEqual(self.warnings(*files), [])

    def test_certificateExpiring(self) -> None:
        """
        A configured certificate that expires within two weeks is warned
        about.
        """
        keyPEM, certPEM = selfSignedCertificate("mx.example.com", days=7)
        (self.cwd / "key.pem").write_bytes(keyPEM)
        (self.cwd / "cert.pem").write_bytes(certPEM)
        [warning] = self.warnings(
            f"--tls-cert={self.cwd / 'cert.pem'}", f"--tls-key={self.cwd / 'key.pem'}"
        )
        self.assertIn("expires on", warning)

    def test_dataNotWritable(self) -> None:
        """
        A data directory that cannot be made is one line naming it.
        """
        (self.cwd / "file").write_text("")
        options = Options()
        options.parseOptions([f"--data={self.cwd / 'file' / 'data'}"])
        error = self.assertRaises(ConfigError, makeService, options, self.reactor)
        self.assertEqual(
            str(error), f"gomail: data directory {self.cwd}/file/data: Not a directory"
        )

    def test_usersFileNotWritable(self) -> None:
        """
        A users file that cannot be made is one line naming it.
        """
        (self.cwd / "file").write_text("")
        users = self.cwd / "file" / "users"
        error = self.assertRaises(ConfigError, self.make, f"--users={users}")
        self.assertTrue(
            str(error).startswith(f"gomail: users file {users}: "), str(error)
        )

    def test_configuredCertificate(self) -> None:
        """
        A configured certificate is served, and no development one made.
        """
        key, cert = _writeCertificate(self.cwd, "mx.example.com")
        service = self.make(f"--tls-cert={cert}", f"--tls-key={key}")
        self.assertEqual(
            service.tls.fingerprint, certificateFingerprint(cert.read_bytes())
        )
        self.assertFalse((self.cwd / "gomail-data" / "tls").exists())


class SelfSignedFilesTests(SynchronousTestCase):
    """
    L{writeSelfSignedFiles}: the development certificate kept in files.
    """

    def setUp(self) -> None:
        directory = Path(self.mktemp())
        self.key, self.cert = (
            directory / "tls" / "key.pem",
            directory / "tls" / "cert.pem",
        )

    def names(self) -> list[str]:
        from cryptography import x509

        cert = x509.load_pem_x509_certificate(self.cert.read_bytes())
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        return [str(name.value) for name in san.value]

    def test_made(self) -> None:
        """
        Missing files are made, valid for the host name and the other names.
        """
        self.assertTrue(
            writeSelfSignedFiles(self.key, self.cert, "mx.test", ["localhost", "::1"])
        )
        self.assertEqual(self.names(), ["mx.test", "localhost", "::1"])
        ReloadingServerTLS(self.key, self.cert)

    def test_renewedNearExpiry(self) -> None:
        """
        A certificate that expires within a day is replaced; one that does
        not is kept.
        """
        old = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(
            days=364, hours=12
        )
        writeSelfSignedFiles(self.key, self.cert, "mx.test", now=old)
        self.assertFalse(writeSelfSignedFiles(self.key, self.cert, "mx.test", now=old))
        first = self.cert.read_bytes()
        self.assertTrue(writeSelfSignedFiles(self.key, self.cert, "mx.test"))
        self.assertNotEqual(self.cert.read_bytes(), first)

    def test_unreadableReplaced(self) -> None:
        """
        A file that holds no certificate is replaced.
        """
        self.cert.parent.mkdir(parents=True)
        self.key.write_text("junk")
        self.cert.write_text("junk")
        self.assertTrue(writeSelfSignedFiles(self.key, self.cert, "mx.test"))
        ReloadingServerTLS(self.key, self.cert)


class ReloadingServerTLSTests(TestCase):
    """
    L{ReloadingServerTLS} and L{GomailService.reload}: a renewed
    certificate is served to new connections, over real handshakes.
    """

    def setUp(self) -> None:
        self.directory = Path(self.mktemp()).resolve()
        self.directory.mkdir()
        self.key, self.cert = _writeCertificate(self.directory, "localhost")
        self.tls = ReloadingServerTLS(self.key, self.cert)
        from twisted.internet.protocol import Factory, Protocol

        port = globalReactor.listenTCP(  # type: ignore[attr-defined]
            0,
            TLSMemoryBIOFactory(self.tls, False, Factory.forProtocol(Protocol)),
            interface="127.0.0.1",
        )
        self.addCleanup(port.stopListening)
        self.port = port.getHost().port

    def served(self) -> Deferred[str]:
        """
        The fingerprint of the certificate a new connection is shown.
        """

        def handshake() -> str:
            pem = ssl.get_server_certificate(("127.0.0.1", self.port), timeout=10)
            return certificateFingerprint(pem.encode("ascii"))

        return deferToThread(handshake)

    def test_provides(self) -> None:
        """
        It provides L{IOpenSSLServerConnectionCreator}.
        """
        self.assertTrue(verifyObject(IOpenSSLServerConnectionCreator, self.tls))

    @inlineCallbacks
    def test_reload(self) -> Any:
        """
        After the files change and L{GomailService.reload}, new handshakes
        present the new certificate.
        """
        before = yield self.served()
        self.assertEqual(before, certificateFingerprint(self.cert.read_bytes()))
        _writeCertificate(self.directory, "localhost")
        renewed = certificateFingerprint(self.cert.read_bytes())
        self.assertNotEqual(renewed, before)
        self.assertEqual((yield self.served()), before)
        service = GomailService(globalReactor, self.tls, _Store(), _access())
        self.assertTrue(service.reload())
        self.assertEqual((yield self.served()), renewed)

    @inlineCallbacks
    def test_reloadRefused(self) -> Any:
        """
        Files that are not a certificate and its key are refused, logged,
        and the certificate in use stays.
        """
        events: list[LogEvent] = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        before = yield self.served()
        self.key.write_bytes(selfSignedCertificate("localhost")[0])
        service = GomailService(globalReactor, self.tls, _Store(), _access())
        self.assertFalse(service.reload())
        self.assertEqual((yield self.served()), before)
        [line] = [formatEvent(e) for e in events if "cannot reload" in formatEvent(e)]
        self.assertIn("keeping the one in use", line)

    @inlineCallbacks
    def test_hangup(self) -> Any:
        """
        While the service runs, C{SIGHUP} reloads the certificate; once it
        has stopped, the previous handler is back.
        """
        previous = signal.getsignal(signal.SIGHUP)
        service = GomailService(globalReactor, self.tls, _Store(), _access())
        service.startService()
        self.addCleanup(lambda: service.running and service.stopService())
        _writeCertificate(self.directory, "localhost")
        renewed = certificateFingerprint(self.cert.read_bytes())
        os.kill(os.getpid(), signal.SIGHUP)
        for _ in range(100):
            if self.tls.fingerprint == renewed:
                break
            yield deferLater(globalReactor, 0.05, lambda: None)
        self.assertEqual((yield self.served()), renewed)
        yield service.stopService()
        self.assertEqual(signal.getsignal(signal.SIGHUP), previous)


def _access() -> IPAccessControl:
    return IPAccessControl(MemoryReactorClock())


class _Store:
    """
    Records when the service closes it.
    """

    def __init__(self, calls: list[str] | None = None) -> None:
        self.calls = [] if calls is None else calls

    def close(self) -> None:
        self.calls.append("store closed")


class _Queue:
    """
    Records starts and stops; a stop fires when the test says.
    """

    def __init__(self, calls: list[str]) -> None:
        self.calls = calls
        self.stopped: Deferred[None] = Deferred()

    def start(self) -> None:
        self.calls.append("queue started")

    def stop(self) -> Deferred[None]:
        self.calls.append("queue stopping")
        return self.stopped


class _Server(MultiService):
    """
    A server whose stop fires when the test says.
    """

    def __init__(self, calls: list[str]) -> None:
        super().__init__()
        self.calls = calls
        self.stopped: Deferred[None] = Deferred()

    def startService(self) -> None:
        self.calls.append("server started")
        self.running = True

    def stopService(self) -> Deferred[None]:
        self.calls.append("server stopping")
        self.running = False
        return self.stopped


class StopOrderTests(SynchronousTestCase):
    """
    L{GomailService} starts the queue before the servers, and stops the
    servers, then the queue, then the store.
    """

    def gomailService(self, calls: list[str]) -> tuple[GomailService, _Queue]:
        """
        A service over a queue and a store that log to C{calls}, with no
        server yet.
        """
        directory = Path(self.mktemp())
        directory.mkdir()
        tls = ReloadingServerTLS(*_writeCertificate(directory, "localhost"))
        queue = _Queue(calls)
        service = GomailService(
            MemoryReactorClock(),
            tls,
            _Store(calls),  # type: ignore[arg-type]
            _access(),
            queue,
            handleSignals=False,
        )
        return service, queue

    def test_order(self) -> None:
        """
        The queue's stop waits for every server's sessions to end, and the
        store closes only after the queue has stopped.
        """
        calls: list[str] = []
        service, queue = self.gomailService(calls)
        servers = [_Server(calls), _Server(calls)]
        for server in servers:
            server.setServiceParent(service)
        service.startService()
        self.assertEqual(calls, ["queue started", "server started", "server started"])
        del calls[:]
        stopped = service.stopService()
        self.assertEqual(calls, ["server stopping", "server stopping"])
        servers[0].stopped.callback(None)
        self.assertEqual(len(calls), 2)
        servers[1].stopped.callback(None)
        self.assertEqual(calls[2:], ["queue stopping"])
        self.assertNoResult(stopped)
        queue.stopped.callback(None)
        self.assertEqual(calls[3:], ["store closed"])
        self.assertIsNone(self.successResultOf(stopped))

    def test_serverStopFails(self) -> None:
        """
        A server whose stop fails does not keep the queue from stopping
        nor the store from closing.
        """
        calls: list[str] = []
        service, queue = self.gomailService(calls)
        server = _Server(calls)
        server.setServiceParent(service)
        service.startService()
        stopped = service.stopService()
        server.stopped.errback(RuntimeError("port would not close"))
        queue.stopped.callback(None)
        self.assertEqual(
            calls[-3:], ["server stopping", "queue stopping", "store closed"]
        )
        self.successResultOf(stopped)
        # MultiService leaves the server's failure to be logged.
        del server
        gc.collect()
        self.flushLoggedErrors(RuntimeError)
