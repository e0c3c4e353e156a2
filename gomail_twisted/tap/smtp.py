# -*- test-case-name: tests.test_tap_smtp -*-
"""
C{twistd gomail-smtp}: the ESMTP server on the Maildir backend, as a mail
sink for some domains.

    twistd -n gomail-smtp --domain example.com --maildir /var/mail/sink \\
        --listen tcp:25 --listen ssl:465:privateKey=key.pem:certKey=cert.pem \\
        --tls-cert cert.pem --tls-key key.pem

Each C{--listen} is a Twisted server endpoint string: C{tcp:} endpoints
offer STARTTLS (RFC 3207), C{ssl:} endpoints are implicit TLS (RFC 8314).
Without C{--tls-cert} and C{--tls-key}, STARTTLS uses a self-signed
certificate made at startup, for development only.

The host name defaults to L{gomail_twisted._hostname.localHostName}: the
name set on the machine, completed with its domain when the resolver
knows it, never C{localhost} merely because C{/etc/hosts} says so.  Mail is
accepted for that name and C{localhost} unless C{--domain} says otherwise.

AUTH is not offered: it comes with a users file, which this plugin does
not have yet.

A port that cannot be bound ends C{twistd} at startup with one line naming
the endpoint and the reason (L{ListenError}), and a non-zero exit status.
"""

from __future__ import annotations

import inspect
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from dns.exception import DNSException
from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import MultiService
from twisted.internet import endpoints
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.interfaces import (
    IListeningPort,
    IProtocolFactory,
    IReactorTime,
    IStreamServerEndpoint,
)
from twisted.internet.ssl import CertificateOptions
from twisted.logger import Logger
from twisted.python import usage
from twisted.python.failure import Failure
from zope.interface import implementer

from gomail_twisted._hostname import localHostName
from gomail_twisted.address import checkDomain
from gomail_twisted.dns import Resolver
from gomail_twisted.smtp import SMTPServerFactory
from gomail_twisted.smtp.maildir import MaildirBackend
from gomail_twisted.tls import (
    selfSignedCertificate,
    serverContextFactory,
    serverContextFromFiles,
)
from gomail_twisted.users import PasswordHashing, UsersChecker, UsersDatabase

#: Where the server listens when no C{--listen} is given: loopback only, on
#: an unprivileged port.
DEFAULT_LISTEN = "tcp:2525:interface=127.0.0.1"

_N = TypeVar("_N", int, float)

_FACTORY = inspect.signature(SMTPServerFactory).parameters
_SIZE = re.compile(r"\A\s*([0-9]+)\s*([KMG]?)i?B?\s*\Z", re.IGNORECASE)
_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30}


def _size(value: str) -> int:
    match = _SIZE.match(value)
    if match is None or int(match.group(1)) <= 0:
        raise ValueError(f"--max-size wants a positive size, not {value!r}")
    return int(match.group(1)) * _UNITS[match.group(2).upper()]


_size.coerceDoc = "Bytes, or with a K, M or G suffix (powers of 1024)."  # type: ignore[attr-defined]


def _positive(option: str, kind: Callable[[str], _N]) -> Callable[[str], _N]:
    """
    A coercer for C{--option}: a positive number of type C{kind}.
    """

    def coerce(value: str) -> _N:
        try:
            number = kind(value)
        except ValueError:
            number = kind("0")
        if not number > 0:
            raise ValueError(f"--{option} wants a positive number, not {value!r}")
        return number

    return coerce


class Options(usage.Options):
    """
    The command line of C{twistd gomail-smtp}.

    After parsing, C{options["listen"]} and C{options["domain"]} are lists
    with their defaults filled in, C{options["hostname"]} is set, and
    C{options["tls"]} holds the context factory loaded from C{--tls-cert}
    and C{--tls-key}, or L{None}.
    """

    synopsis = "[options]"
    longdesc = (
        "An ESMTP server that delivers mail for its domains to Maildir "
        "folders, one per address (MAILDIR/<address>/new/), and refuses all "
        "other recipients. With --users, only the users and aliases of the "
        "users file get mail, and they may log in with AUTH. --listen takes "
        "Twisted server endpoint strings: tcp:... offers STARTTLS, ssl:... is "
        "implicit TLS."
    )

    optFlags = [
        ["no-tls", None, "Offer no STARTTLS."],
        [
            "no-dkim",
            None,
            "Do not verify DKIM signatures (verified by default, with the result "
            "in an Authentication-Results header).",
        ],
        ["require-tls", None, "Refuse MAIL before STARTTLS (530 5.7.0)."],
    ]
    optParameters = [
        [
            "hostname",
            None,
            None,
            "Our host name, in the greeting and trace headers (default: the "
            "host name set on this machine, with its domain if the resolver "
            "knows it).",
        ],
        ["maildir", None, "./maildir", "Directory holding the Maildir folders."],
        [
            "users",
            None,
            None,
            "A users file (python -m gomail_twisted users): take mail for its "
            "domains, users and aliases only, and offer AUTH (after STARTTLS) "
            "against it. Without one, every address of the --domain domains "
            "gets a mailbox.",
        ],
        ["tls-cert", None, None, "PEM certificate (chain) for STARTTLS."],
        ["tls-key", None, None, "PEM private key for STARTTLS."],
        [
            "max-size",
            None,
            _FACTORY["maxMessageSize"].default,
            "Largest message accepted.",
            _size,
        ],
        [
            "max-recipients",
            None,
            _FACTORY["maxRecipients"].default,
            "Recipients per message.",
            _positive("max-recipients", int),
        ],
        [
            "timeout",
            None,
            _FACTORY["timeout"].default,
            "Seconds of client silence before the server hangs up.",
            _positive("timeout", float),
        ],
        [
            "tls-handshake-timeout",
            None,
            _FACTORY["tlsHandshakeTimeout"].default,
            "Seconds a TLS handshake may take before the connection is dropped.",
            _positive("tls-handshake-timeout", float),
        ],
        [
            "max-errors",
            None,
            _FACTORY["maxErrors"].default,
            "Protocol errors (bad or out-of-sequence commands, failed logins) "
            "per connection before the server hangs up.",
            _positive("max-errors", int),
        ],
        [
            "max-connections",
            None,
            _FACTORY["maxConnections"].default,
            "Simultaneous connections in all.",
            _positive("max-connections", int),
        ],
        [
            "max-connections-per-peer",
            None,
            _FACTORY["maxConnectionsPerPeer"].default,
            "Simultaneous connections from one IP address.",
            _positive("max-connections-per-peer", int),
        ],
    ]

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self["listen"] = []
        self["domain"] = []
        self["tls"] = None

    def opt_listen(self, endpoint: str) -> None:
        """
        A server endpoint to listen on; repeatable
        (default: tcp:2525:interface=127.0.0.1).
        """
        self["listen"].append(endpoint)

    def opt_domain(self, domain: str) -> None:
        """
        A domain to accept mail for; repeatable (default: the host name and
        localhost).
        """
        self["domain"].append(domain)

    def postOptions(self) -> None:
        """
        Fill in the defaults and check what was given.

        @raise usage.UsageError: for an endpoint Twisted cannot parse, a
            malformed host name or domain, a lone or unreadable C{--tls-cert} or
            C{--tls-key}, or options that contradict each other.
        """
        if not self["listen"]:
            self["listen"] = [DEFAULT_LISTEN]
        for description in self["listen"]:
            _checkEndpoint(description)
        if not self["hostname"]:
            self["hostname"] = localHostName()
        elif not (self["hostname"].isascii() and checkDomain(self["hostname"])):
            raise usage.UsageError(
                f"--hostname {self['hostname']!r} is not an ASCII domain name"
            )
        if self["users"] is not None:
            self._checkUsers()
        elif not self["domain"]:
            self["domain"] = [self["hostname"]]
            if self["hostname"].lower() != "localhost":
                self["domain"].append("localhost")
        for domain in self["domain"]:
            if not checkDomain(domain.rstrip(".")):
                raise usage.UsageError(f"--domain {domain!r} is not a domain")
        cert, key = self["tls-cert"], self["tls-key"]
        if (cert is None) != (key is None):
            raise usage.UsageError("--tls-cert and --tls-key go together")
        if cert is not None:
            if self["no-tls"]:
                raise usage.UsageError("--no-tls contradicts --tls-cert and --tls-key")
            self["tls"] = _loadTLS(cert, key)
        if self["require-tls"] and self["no-tls"]:
            plain = [d for d in self["listen"] if not d.lower().startswith("ssl:")]
            if plain:
                raise usage.UsageError(
                    f"--require-tls with --no-tls leaves {plain[0]} unusable"
                )

    def _checkUsers(self) -> None:
        if self["domain"]:
            raise usage.UsageError(
                "--domain and --users: the users file declares the domains "
                "(python -m gomail_twisted users domain add DOMAIN)"
            )
        path = self["users"]
        try:
            with open(path, "rb"):
                pass
        except OSError as e:
            raise usage.UsageError(f"--users {path}: {e.strerror}")


def _checkEndpoint(description: str) -> None:
    # twistd has installed the reactor it was asked for (--reactor) before it
    # parses a plugin's options; parsing an endpoint only records it.
    from twisted.internet import reactor

    try:
        endpoints.serverFromString(reactor, description)
    except Exception as e:
        raise usage.UsageError(f"--listen {description!r}: {e}")


def _loadTLS(cert: str, key: str) -> CertificateOptions:
    try:
        tls = serverContextFromFiles(Path(key), Path(cert))
        # Builds the OpenSSL context now, so a key that does not match the
        # certificate is a usage error rather than a failed handshake later.
        tls.getContext()
    except OSError as e:
        raise usage.UsageError(f"cannot read {e.filename}: {e.strerror}")
    except Exception as e:
        raise usage.UsageError(
            f"--tls-cert {cert} and --tls-key {key} are not a PEM certificate "
            f"and its private key: {e}"
        )
    return tls


class ListenError(SystemExit, Exception):
    """
    An endpoint could not listen; C{str()} of it is the one line C{twistd}
    prints before it exits with status 1.

    It is an L{Exception}, so that C{twistd} cleans up as after any failure
    to start (it removes the pid file, and a daemon reports the message to
    the process that started it), and a L{SystemExit}, so that Python then
    prints the message alone instead of a traceback.

    @ivar description: the endpoint string, as given to C{--listen}.
    @ivar reason: why it could not listen, such as C{"Address already in
        use"}.
    """

    def __init__(self, description: str, reason: str) -> None:
        """
        @param description: the endpoint string.
        @param reason: why it could not listen.
        """
        super().__init__(f"gomail-smtp: cannot listen on {description}: {reason}")
        self.description = description
        self.reason = reason


def _reason(error: BaseException) -> str:
    # CannotListenError's text repeats the address and appends the errno;
    # the operator knows the endpoint and wants the operating system's words.
    socketError = getattr(error, "socketError", error)
    if isinstance(socketError, OSError) and socketError.strerror:
        return socketError.strerror
    return str(error) or type(error).__name__


@implementer(IStreamServerEndpoint)
class _ReportingEndpoint:
    """
    An endpoint that logs the address it listens on, which for C{tcp:0}
    only the bound port tells, and turns a failure to listen into a
    L{ListenError} naming the endpoint as it was given.
    """

    _log = Logger()

    def __init__(self, endpoint: IStreamServerEndpoint, description: str) -> None:
        self._endpoint = endpoint
        self._description = description

    def listen(self, protocolFactory: IProtocolFactory) -> Deferred[IListeningPort]:
        d = self._endpoint.listen(protocolFactory)
        d.addCallbacks(self._listening, self._failed)
        return d

    def _failed(self, failure: Failure) -> Failure:
        if failure.check(CancelledError):
            return failure
        error = failure.value
        reason = _reason(error) if error is not None else "unknown error"
        return Failure(ListenError(self._description, reason))

    def _listening(self, port: IListeningPort) -> IListeningPort:
        address = port.getHost()
        self._log.info(
            "SMTP listening on {host} port {port} ({endpoint})",
            host=getattr(address, "host", str(address)),
            port=getattr(address, "port", 0),
            endpoint=self._description,
        )
        return port


# makeService is a function, so its events get a module-level logger.
_log = Logger()


class SMTPService(MultiService):
    """
    The listening ports of one L{SMTPServerFactory}; stopping it stops the
    ports, then closes the open sessions politely (421 4.3.2), dropping
    whatever is left after C{graceSeconds}.
    """

    def __init__(
        self,
        factory: SMTPServerFactory,
        reactor: IReactorTime,
        graceSeconds: float = 10.0,
    ) -> None:
        """
        @param factory: the factory behind every port.
        @param reactor: provides the clock for the grace period.
        @param graceSeconds: how long sessions have to finish.
        """
        MultiService.__init__(self)
        self.factory = factory
        self._reactor = reactor
        self.graceSeconds = graceSeconds

    def stopService(self) -> Deferred[None]:
        """
        @return: a Deferred that fires once the ports are closed and every
            session has ended.
        """
        stopped = MultiService.stopService(self)

        async def stop() -> None:
            await stopped
            closing = self.factory.shutdown()
            timer = self._reactor.callLater(self.graceSeconds, self.factory.abortAll)
            await closing
            if timer.active():
                timer.cancel()

        return Deferred.fromCoroutine(stop())


def makeService(options: Options, reactor: Any = None) -> MultiService:
    """
    The SMTP server, delivering to Maildir folders, on every endpoint.

    Starting the service raises L{ListenError} when an endpoint cannot
    listen.

    @param options: parsed L{Options}.
    @param reactor: the reactor to listen with and take time from; by
        default the global one.
    @return: a L{MultiService} with one L{StreamServerEndpointService} per
        C{--listen}, all sharing one L{SMTPServerFactory}.
    """
    if reactor is None:
        from twisted.internet import reactor

    hostname = options["hostname"]
    tls = options["tls"]
    if tls is None and not options["no-tls"]:
        tls = serverContextFactory(*selfSignedCertificate(hostname))
        _log.warn(
            "STARTTLS uses a self-signed DEVELOPMENT certificate for {hostname}, "
            "made at startup; clients cannot verify it. Give --tls-cert and "
            "--tls-key for real use, or --no-tls.",
            hostname=hostname,
        )
    maildir = os.path.abspath(options["maildir"])
    if options["users"] is not None:
        users = UsersDatabase(os.path.abspath(options["users"]))
        checker = UsersChecker(users, PasswordHashing(reactor))
        backend = MaildirBackend(maildir, users=users, checker=checker, reactor=reactor)
        domains = list(users.domains())
        if not domains:
            _log.warn(
                "The users file {path} declares no domain: all mail is refused",
                path=users.path,
            )
    else:
        backend = MaildirBackend(maildir, options["domain"], reactor=reactor)
        domains = list(backend.domains)
    dkimLookup = None
    if not options["no-dkim"]:
        try:
            dkimLookup = Resolver(reactor).lookupTXT
        except DNSException as e:
            _log.warn(
                "DKIM verification is off: no DNS resolver configuration ({error})",
                error=str(e),
            )
    factory = SMTPServerFactory(
        backend,
        hostname=hostname,
        tls=tls,
        maxMessageSize=options["max-size"],
        maxRecipients=options["max-recipients"],
        timeout=options["timeout"],
        requireTLS=bool(options["require-tls"]),
        maxConnections=options["max-connections"],
        maxConnectionsPerPeer=options["max-connections-per-peer"],
        maxErrors=options["max-errors"],
        tlsHandshakeTimeout=options["tls-handshake-timeout"],
        dkimLookup=dkimLookup,
        reactor=reactor,
    )
    _log.info(
        "SMTP server {hostname} accepting mail for {domains} into {maildir}",
        hostname=hostname,
        domains=domains,
        maildir=maildir,
    )
    service = SMTPService(factory, reactor)
    for description in options["listen"]:
        endpoint = endpoints.serverFromString(reactor, description)
        child = StreamServerEndpointService(
            _ReportingEndpoint(endpoint, description), factory
        )
        # As twisted.application.strports does: a port that cannot be bound
        # stops twistd at startup instead of being logged and ignored.
        child._raiseSynchronously = True
        child.setServiceParent(service)
    return service
