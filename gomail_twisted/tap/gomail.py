# -*- test-case-name: tests.test_tap_gomail -*-
"""
C{twistd gomail}: the whole mail server over one data directory.

    twistd -n gomail                        # development, on loopback
    twistd -n gomail --config /etc/gomail/gomail.toml

It serves, each on the endpoints of L{gomail_twisted.tap._config}:

  - C{smtp}: incoming mail (RFC 5321), STARTTLS (RFC 3207), no AUTH, for
    the users and aliases of the users file only (never a relay), DKIM
    signatures verified with the verdict in C{Authentication-Results:}
    (RFC 6376, RFC 8601);
  - C{submission} and C{submissions}: mail from the users (RFC 6409, RFC
    8314 implicit TLS), AUTH required, delivered to local users at once
    and to other domains through the outbound queue, DKIM-signed with the
    sending domain's key;
  - C{pop3} (STLS) and C{pop3s}; C{imap} (STARTTLS) and C{imaps}.

Every server shares one L{MaildirStore} (an IMAP client in IDLE hears of
a delivery as it lands), one users file and its checker, one certificate
and one L{IPAccessControl}.  The data directory holds C{users} (the file
C{python -m gomail_twisted users} edits), C{mail/} (the store),
C{queue/} (the spool) and C{tls/} (the development certificate, made on
the first run and kept, when no C{[tls]} certificate is configured).

When the users file declares no domain (as on the first run), C{localhost}
is declared in it, so that C{python -m gomail_twisted users add
you@localhost} works at once; the C{domains} of the configuration are
declared in it when missing.

C{SIGHUP} reads the certificate and key again: new connections present
the renewed certificate, with no restart.  Stopping closes the ports,
ends every session politely, then stops the queue (deliveries in flight
finish or resume at the next start), then closes the store.
"""

from __future__ import annotations

import datetime
import os
import signal
from typing import Any

from twisted.application.service import MultiService
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python import usage

from gomail_twisted.connection import LimitedServerFactory
from gomail_twisted.ipac import IPAccessControl
from gomail_twisted.maildir import MaildirStore
from gomail_twisted.tap._common import ListeningService, listeningService
from gomail_twisted.tap._config import (
    IMPLICIT_TLS,
    ConfigError,
    GomailConfig,
    loadConfig,
)
from gomail_twisted.tap._servers import buildServers
from gomail_twisted.tls import ReloadingServerTLS, writeSelfSignedFiles
from gomail_twisted.users import (
    PasswordHashing,
    UsersChecker,
    UsersDatabase,
    UsersFileError,
    editUsersFile,
)

__all__ = ["ConfigError", "GomailService", "Options", "makeService"]

#: The plugin's name, which starts its one-line errors.
PLUGIN = "gomail"

#: How each port is reported once it listens.
LISTENING = "gomail: {protocol} listening on {address} ({endpoint})"

#: How each service is named in the log.
LABELS = {
    "smtp": "SMTP",
    "submission": "submission",
    "submissions": "submissions",
    "pop3": "POP3",
    "pop3s": "POP3S",
    "imap": "IMAP",
    "imaps": "IMAPS",
}


class Options(usage.Options):
    """
    The command line of C{twistd gomail}.  After parsing,
    C{options["config"]} is the checked L{GomailConfig} (and
    C{options["file"]} the file it came from, or L{None}).

    @raise ConfigError: from C{parseOptions}, for any value that cannot be
        used: one line naming the key.
    """

    synopsis = "[options]"
    longdesc = (
        "A complete small mail server over one data directory: SMTP for "
        "incoming mail, submission (STARTTLS and implicit TLS) with an "
        "outbound queue, POP3 and IMAP (STARTTLS and implicit TLS). With no "
        "options it serves localhost on loopback ports, with a development "
        "certificate. --config reads a TOML file (see the README); the "
        "options here override it. The services of --listen: smtp, "
        "submission, submissions, pop3, pop3s, imap, imaps."
    )

    optParameters = [
        ["config", "c", None, "A TOML configuration file."],
        [
            "data",
            None,
            None,
            "The data directory: users file, mail, queue, development "
            "certificate (default: ./gomail-data).",
        ],
        [
            "users",
            None,
            None,
            "The users file (default: $GOMAIL_USERS, or DATA/users).",
        ],
        [
            "hostname",
            None,
            None,
            "Our host name, as the servers name themselves (default: this machine's).",
        ],
        ["tls-cert", None, None, "PEM certificate (chain); re-read on SIGHUP."],
        ["tls-key", None, None, "PEM private key; re-read on SIGHUP."],
    ]

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self["domain"] = []
        self["listen"] = []

    def opt_domain(self, domain: str) -> None:
        """A domain to take mail for (declared in the users file); repeatable."""
        self["domain"].append(domain)

    def opt_listen(self, listen: str) -> None:
        """SERVICE=ENDPOINT instead of the service's default; SERVICE= for none."""
        self["listen"].append(listen)

    def postOptions(self) -> None:
        """
        Read the configuration file and check everything.

        @raise ConfigError: naming the key at fault.
        """
        self["file"] = self["config"]
        config = loadConfig(
            self["file"],
            data=self["data"],
            users=self["users"],
            hostname=self["hostname"],
            domains=self["domain"],
            tlsCert=self["tls-cert"],
            tlsKey=self["tls-key"],
            listen=self["listen"],
        )
        self["config"] = config
        if config.tlsCert is not None and config.tlsKey is not None:
            try:
                ReloadingServerTLS(config.tlsKey, config.tlsCert)
            except OSError as e:
                key = "key" if e.filename == str(config.tlsKey) else "cert"
                raise _tlsError(self, key, f"cannot read {e.filename}: {e.strerror}")
            except ValueError as e:
                raise _tlsError(self, "cert", str(e))


def _tlsError(options: Options, key: str, problem: str) -> ConfigError:
    if options["tls-cert"] is not None:
        return ConfigError("command line", f"--tls-{key}", problem)
    return ConfigError(options["file"], f"[tls] {key}", problem)


class GomailService(MultiService):
    """
    The mail server: a L{ListeningService} per protocol as children, and
    the pieces they share.

    @ivar tls: the certificate every server presents.
    @ivar store: the mail store.
    @ivar queue: the outbound queue, or L{None}.
    @ivar accessControl: the IP access control of every server.
    """

    _log = Logger()

    def __init__(
        self,
        reactor: Any,
        tls: ReloadingServerTLS,
        store: MaildirStore,
        accessControl: IPAccessControl,
        queue: Any = None,
        handleSignals: bool = True,
    ) -> None:
        """
        @param reactor: the reactor, which runs L{reload} after C{SIGHUP}.
        @param tls: the certificate, read again by L{reload}.
        @param store: the store, closed last when the service stops.
        @param accessControl: the IP access control.
        @param queue: the outbound queue (C{start}, C{stop}), or L{None}.
        @param handleSignals: install a C{SIGHUP} handler while running.
        """
        MultiService.__init__(self)
        self._reactor = reactor
        self.tls = tls
        self.store = store
        self.accessControl = accessControl
        self.queue = queue
        self._handleSignals = handleSignals
        self._previous: Any = None

    def reload(self) -> bool:
        """
        Read the certificate and key again, as on C{SIGHUP}; on error keep
        the ones in use, and say why in the log.

        @return: whether the new files are in use.
        """
        try:
            self.tls.reload()
        except (OSError, ValueError) as e:
            self._log.error(
                "gomail: cannot reload the TLS certificate, keeping the one in "
                "use: {error}",
                error=str(e),
            )
            return False
        self._log.info(
            "gomail: TLS certificate reloaded from {cert}: SHA-256 {fingerprint}, "
            "valid until {expiry}",
            cert=str(self.tls.certPath),
            fingerprint=self.tls.fingerprint,
            expiry=self.tls.expiry.isoformat(),
        )
        return True

    def _hangup(self, signum: int, frame: object) -> None:
        # A signal handler runs between two bytecodes of the main thread:
        # hand the work to the reactor.
        self._reactor.callFromThread(self.reload)

    def startService(self) -> None:
        """
        Start the queue, then listen; handle C{SIGHUP} from now on.
        """
        if self._handleSignals and hasattr(signal, "SIGHUP"):
            self._previous = signal.signal(signal.SIGHUP, self._hangup)
        if self.queue is not None:
            self.queue.start()
        MultiService.startService(self)

    def stopService(self) -> Deferred[None]:
        """
        Stop every server politely, then the queue, then close the store.

        @return: a Deferred that fires once all of it is done.
        """
        servers = MultiService.stopService(self)

        async def stop() -> None:
            # Each step happens even when the one before it failed.
            try:
                await servers
            finally:
                try:
                    if self.queue is not None:
                        await self.queue.stop()
                finally:
                    self.store.close()
                    if self._previous is not None:
                        signal.signal(signal.SIGHUP, self._previous)
                        self._previous = None

        return Deferred.fromCoroutine(stop())


_log = Logger()


def _serverTLS(config: GomailConfig) -> ReloadingServerTLS:
    """
    The certificate to serve: the configured one, or the development one
    kept in the data directory, made on the first run.
    """
    if config.tlsCert is not None and config.tlsKey is not None:
        tls = ReloadingServerTLS(config.tlsKey, config.tlsCert)
        _checkCertificate(tls, config.hostname)
        return tls
    key, cert = config.developmentKey, config.developmentCert
    try:
        made = writeSelfSignedFiles(
            key, cert, config.hostname, ("localhost", "127.0.0.1", "::1")
        )
        tls = ReloadingServerTLS(key, cert)
    except (OSError, ValueError) as e:
        raise ConfigError("command line", f"development certificate {cert}", str(e))
    _log.warn(
        "gomail: TLS uses a self-signed DEVELOPMENT certificate for {hostname} "
        "({state} {cert}, SHA-256 {fingerprint}); clients cannot verify it. "
        "Configure [tls] cert and key for real use.",
        hostname=config.hostname,
        state="made" if made else "kept in",
        cert=str(cert),
        fingerprint=tls.fingerprint,
    )
    return tls


def _checkCertificate(
    tls: ReloadingServerTLS, hostname: str, now: datetime.datetime | None = None
) -> None:
    """
    Warn when a configured certificate is not valid for our host name
    (clients that check it refuse it), or expires within two weeks.
    """
    from cryptography import x509
    from service_identity import VerificationError
    from service_identity.cryptography import verify_certificate_hostname

    certificate = x509.load_pem_x509_certificate(tls.certPath.read_bytes())
    try:
        verify_certificate_hostname(certificate, hostname)
    except VerificationError:
        _log.warn(
            "gomail: the certificate {cert} is not valid for the host name "
            "{hostname}: clients that check it will refuse it",
            cert=str(tls.certPath),
            hostname=hostname,
        )
    now = now or datetime.datetime.now(datetime.timezone.utc)
    if tls.expiry < now + datetime.timedelta(days=14):
        _log.warn(
            "gomail: the certificate {cert} expires on {expiry}: renew it, "
            "then send SIGHUP",
            cert=str(tls.certPath),
            expiry=tls.expiry.isoformat(),
        )


def _usersFile(config: GomailConfig) -> UsersDatabase:
    """
    The users file, with the configured domains declared, and C{localhost}
    when it would otherwise declare none.
    """
    path = str(config.users)
    try:
        with editUsersFile(path) as editor:
            declared = editor.snapshot.domains
            wanted = list(config.domains)
            if not wanted and not declared:
                wanted = ["localhost"]
            for domain in wanted:
                if domain not in declared:
                    editor.addDomain(domain)
                    _log.info(
                        "gomail: declared the domain {domain} in {path}",
                        domain=domain,
                        path=path,
                    )
    except (OSError, UsersFileError) as e:
        raise ConfigError("command line", f"users file {path}", str(e))
    users = UsersDatabase(path)
    if not users.users():
        _log.warn(
            "gomail: the users file {path} has no user: add one with "
            "python -m gomail_twisted users add ADDRESS",
            path=path,
        )
    return users


def _serve(
    service: GomailService,
    factory: LimitedServerFactory,
    config: GomailConfig,
    names: tuple[str, ...],
    reactor: Any,
    closing: tuple[Any, ...] = (),
) -> None:
    """
    Add the ports of C{names} (a protocol's plain and implicit-TLS
    services) serving C{factory}, unless none of them has an endpoint.
    """
    if not any(config.listen[name] for name in names):
        return
    listening = ListeningService(factory, reactor, closing=closing)
    for name in names:
        listeningService(
            listening,
            config.listen[name],
            reactor,
            LABELS[name],
            PLUGIN,
            tls=service.tls if name in IMPLICIT_TLS else None,
            template=LISTENING,
        )
    MultiService.addService(service, listening)


def makeService(options: Options, reactor: Any = None) -> GomailService:
    """
    The mail server, as the configuration says.

    Making it writes to the data directory: the development certificate
    on the first run, the users file's domains.  Starting it raises
    L{gomail_twisted.tap._common.ListenError} when an endpoint cannot
    listen.

    @param options: parsed L{Options}.
    @param reactor: the reactor; by default the global one.
    @return: the service.
    @raise ConfigError: the data directory cannot be written.
    """
    if reactor is None:
        from twisted.internet import reactor

    config: GomailConfig = options["config"]
    try:
        os.makedirs(config.data, mode=0o700, exist_ok=True)
    except OSError as e:
        problem = e.strerror or str(e)
        raise ConfigError("command line", f"data directory {config.data}", problem)
    tls = _serverTLS(config)
    users = _usersFile(config)
    store = MaildirStore(config.mail, reactor=reactor)
    access = IPAccessControl(reactor, **config.access.arguments())
    checker = UsersChecker(users, PasswordHashing(reactor))
    servers = buildServers(config, reactor, tls, store, users, checker, access)
    service = GomailService(reactor, tls, store, access, servers.queue)
    _serve(service, servers.smtp, config, ("smtp",), reactor)
    _serve(service, servers.submission, config, ("submission", "submissions"), reactor)
    _serve(service, servers.pop3, config, ("pop3", "pop3s"), reactor)
    _serve(service, servers.imap, config, ("imap", "imaps"), reactor)
    _log.info(
        "gomail: {hostname} serving the users of {users} from {mail}",
        hostname=config.hostname,
        users=str(config.users),
        mail=str(config.mail),
    )
    return service
