# -*- test-case-name: tests.test_tap_smtp,tests.test_tap_pop3,tests.test_tap_gomail -*-
"""
What the C{twistd} plugins share: the options every server takes
(C{--listen}, C{--hostname}, C{--maildir}, C{--tls-cert}/C{--tls-key}, the
connection limits) and their checks, the development certificate, and the
service that listens on every endpoint and stops politely.

A plugin's C{Options} subclasses L{ServerOptions}, adds its own rows (the
limits with L{limitRows}, which takes their defaults from the server's
factory), and calls L{ServerOptions.checkServerOptions} from its
C{postOptions}; its C{makeService} builds the factory and hands it to
L{listeningService}.
"""

from __future__ import annotations

import inspect
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from twisted.application.internet import StreamServerEndpointService
from twisted.application.service import MultiService
from twisted.internet import endpoints
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.interfaces import (
    IListeningPort,
    IOpenSSLServerConnectionCreator,
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
from gomail_twisted.connection import LimitedServerFactory
from gomail_twisted.maildir import MaildirStore
from gomail_twisted.tls import (
    selfSignedCertificate,
    serverContextFactory,
    serverContextFromFiles,
)
from gomail_twisted.users import PasswordHashing, UsersChecker, UsersDatabase

__all__ = [
    "ListenError",
    "ListeningService",
    "ServerOptions",
    "developmentTLS",
    "limitRows",
    "listeningService",
    "positive",
    "size",
]

_N = TypeVar("_N", int, float)

_SIZE = re.compile(r"\A\s*([0-9]+)\s*([KMG]?)i?B?\s*\Z", re.IGNORECASE)
_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30}

#: An option row as C{usage.Options.optParameters} takes it.
Row = list[Any]


def size(option: str) -> Callable[[str], int]:
    """
    A coercer for C{--option}: a positive number of bytes, with an optional
    K, M or G suffix (powers of 1024).

    @param option: the option's name, without dashes, for the message.
    @return: the coercer; it raises L{ValueError} naming the option.
    """

    def coerce(value: str) -> int:
        match = _SIZE.match(value)
        if match is None or int(match.group(1)) <= 0:
            raise ValueError(f"--{option} wants a positive size, not {value!r}")
        return int(match.group(1)) * _UNITS[match.group(2).upper()]

    coerce.coerceDoc = "Bytes, or with a K, M or G suffix (powers of 1024)."  # type: ignore[attr-defined]
    return coerce


def positive(option: str, kind: Callable[[str], _N]) -> Callable[[str], _N]:
    """
    A coercer for C{--option}: a positive number of type C{kind}.

    @param option: the option's name, without dashes, for the message.
    @param kind: C{int} or C{float}.
    @return: the coercer; it raises L{ValueError} naming the option.
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


def limitRows(factory: Callable[..., LimitedServerFactory]) -> list[Row]:
    """
    The options of the limits every server has, with the defaults of
    C{factory}'s signature: C{--timeout}, C{--tls-handshake-timeout},
    C{--max-errors}, C{--max-connections}, C{--max-connections-per-peer}.

    @param factory: the server's factory class.
    @return: rows for C{optParameters}.
    """
    defaults = inspect.signature(factory).parameters
    rows = [
        ("timeout", float, "Seconds of client silence before the server hangs up."),
        (
            "tls-handshake-timeout",
            float,
            "Seconds a TLS handshake may take before the connection is dropped.",
        ),
        (
            "max-errors",
            int,
            "Protocol errors (bad or out-of-sequence commands, failed logins) "
            "per connection before the server hangs up.",
        ),
        ("max-connections", int, "Simultaneous connections in all."),
        (
            "max-connections-per-peer",
            int,
            "Simultaneous connections from one IP address.",
        ),
    ]
    argument = {
        "timeout": "timeout",
        "tls-handshake-timeout": "tlsHandshakeTimeout",
        "max-errors": "maxErrors",
        "max-connections": "maxConnections",
        "max-connections-per-peer": "maxConnectionsPerPeer",
    }
    return [
        [name, None, defaults[argument[name]].default, text, positive(name, kind)]
        for name, kind, text in rows
    ]


def checkEndpoint(description: str) -> None:
    """
    @raise usage.UsageError: Twisted cannot parse C{description} as a server
        endpoint.
    """
    # twistd has installed the reactor it was asked for (--reactor) before it
    # parses a plugin's options; parsing an endpoint only records it.
    from twisted.internet import reactor

    try:
        endpoints.serverFromString(reactor, description)
    except Exception as e:
        raise usage.UsageError(f"--listen {description!r}: {e}")


def loadTLS(cert: str, key: str) -> CertificateOptions:
    """
    Server TLS options from PEM files.

    @raise usage.UsageError: a file cannot be read, or the files are not a
        certificate and its key.
    """
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


def checkReadable(option: str, path: str) -> None:
    """
    @raise usage.UsageError: C{path}, given to C{--option}, cannot be opened
        for reading; the message names it and the reason.
    """
    try:
        with open(path, "rb"):
            pass
    except OSError as e:
        raise usage.UsageError(f"--{option} {path}: {e.strerror}")


class ServerOptions(usage.Options):
    """
    The options every server plugin takes.  A subclass sets L{defaultListen}
    and L{tlsUse}, adds its rows, defines C{opt_listen} (for its help text)
    with L{addListen}, and calls L{checkServerOptions} from C{postOptions}.

    After L{checkServerOptions}, C{self["listen"]} is a list with the
    default filled in, C{self["hostname"]} is set, and C{self["tls"]} holds
    the context factory loaded from C{--tls-cert} and C{--tls-key}, or
    L{None}.

    @cvar defaultListen: the endpoint when no C{--listen} is given.
    """

    defaultListen = ""

    optParameters: list[Row] = [
        [
            "hostname",
            None,
            None,
            "Our host name, as the server names itself to clients (default: "
            "the host name set on this machine, with its domain if the "
            "resolver knows it).",
        ],
        ["maildir", None, "./maildir", "Directory holding the Maildir folders."],
        ["tls-cert", None, None, "PEM certificate (chain) for TLS."],
        ["tls-key", None, None, "PEM private key for TLS."],
    ]

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self["listen"] = []
        self["tls"] = None

    def addListen(self, endpoint: str) -> None:
        """
        Record one C{--listen}.
        """
        self["listen"].append(endpoint)

    def checkServerOptions(self) -> None:
        """
        Fill in the defaults of the shared options and check them.

        @raise usage.UsageError: for an endpoint Twisted cannot parse, a
            malformed host name, or a lone or unreadable C{--tls-cert} or
            C{--tls-key}.
        """
        if not self["listen"]:
            self["listen"] = [self.defaultListen]
        for description in self["listen"]:
            checkEndpoint(description)
        if not self["hostname"]:
            self["hostname"] = localHostName()
        elif not (self["hostname"].isascii() and checkDomain(self["hostname"])):
            raise usage.UsageError(
                f"--hostname {self['hostname']!r} is not an ASCII domain name"
            )
        cert, key = self["tls-cert"], self["tls-key"]
        if (cert is None) != (key is None):
            raise usage.UsageError("--tls-cert and --tls-key go together")

    def loadTLSFiles(self) -> None:
        """
        Load C{--tls-cert} and C{--tls-key}, when given, into C{self["tls"]}.

        @raise usage.UsageError: see L{loadTLS}.
        """
        if self["tls-cert"] is not None:
            self["tls"] = loadTLS(self["tls-cert"], self["tls-key"])


_log = Logger()


def developmentTLS(hostname: str, command: str, fallback: str) -> CertificateOptions:
    """
    A self-signed certificate for C{hostname}, made now, with a warning that
    it is for development.

    @param hostname: the certificate's name.
    @param command: what uses it, such as C{"STARTTLS"}.
    @param fallback: what else the operator may give besides the files,
        such as C{", or --no-tls"}; may be empty.
    @return: server TLS options.
    """
    _log.warn(
        "{command} uses a self-signed DEVELOPMENT certificate for {hostname}, "
        "made at startup; clients cannot verify it. Give --tls-cert and "
        "--tls-key for real use{fallback}.",
        command=command,
        hostname=hostname,
        fallback=fallback,
    )
    return serverContextFactory(*selfSignedCertificate(hostname))


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
    @ivar plugin: the plugin that could not start, such as C{gomail-smtp}.
    """

    def __init__(self, description: str, reason: str, plugin: str) -> None:
        """
        @param description: the endpoint string.
        @param reason: why it could not listen.
        @param plugin: the plugin's name, which starts the message.
        """
        super().__init__(f"{plugin}: cannot listen on {description}: {reason}")
        self.description = description
        self.reason = reason
        self.plugin = plugin


def _reason(error: BaseException) -> str:
    # CannotListenError's text repeats the address and appends the errno;
    # the operator knows the endpoint and wants the operating system's words.
    socketError = getattr(error, "socketError", error)
    if isinstance(socketError, OSError) and socketError.strerror:
        return socketError.strerror
    return str(error) or type(error).__name__


#: How L{ReportingEndpoint} says where it listens, unless told otherwise.
LISTENING_LOG = "{protocol} listening on {host} port {port} ({endpoint})"


def hostPort(host: str, port: int) -> str:
    """
    An address as C{HOST:PORT}, with an IPv6 host in brackets (RFC 3986
    3.2.2).
    """
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@implementer(IStreamServerEndpoint)
class ReportingEndpoint:
    """
    An endpoint that logs the address it listens on, which for C{tcp:0}
    only the bound port tells, and turns a failure to listen into a
    L{ListenError} naming the endpoint as it was given.  Given TLS options,
    it serves implicit TLS (RFC 8314) over the endpoint with them.
    """

    _log = Logger()

    def __init__(
        self,
        endpoint: IStreamServerEndpoint,
        description: str,
        protocol: str,
        plugin: str,
        tls: IOpenSSLServerConnectionCreator | None = None,
        template: str = LISTENING_LOG,
    ) -> None:
        """
        @param endpoint: the endpoint to listen on.
        @param description: its string, as given to C{--listen}.
        @param protocol: the protocol served, such as C{"SMTP"}, for the log.
        @param plugin: the plugin's name, for L{ListenError}.
        @param tls: server TLS options to wrap every connection in, or
            L{None} to serve the factory's protocol as it is.
        @param template: the log line, with the fields C{protocol},
            C{host}, C{port}, C{address} (L{hostPort}), C{endpoint} and
            C{plugin}.
        """
        self._endpoint = endpoint
        self._description = description
        self._protocol = protocol
        self._plugin = plugin
        self._tls = tls
        self._template = template

    def listen(self, protocolFactory: IProtocolFactory) -> Deferred[IListeningPort]:
        """
        Listen, log where, or fail with L{ListenError}.
        """
        if self._tls is not None:
            from twisted.protocols.tls import TLSMemoryBIOFactory

            protocolFactory = TLSMemoryBIOFactory(self._tls, False, protocolFactory)
        d = self._endpoint.listen(protocolFactory)
        d.addCallbacks(self._listening, self._failed)
        return d

    def _failed(self, failure: Failure) -> Failure:
        if failure.check(CancelledError):
            return failure
        error = failure.value
        reason = _reason(error) if error is not None else "unknown error"
        return Failure(ListenError(self._description, reason, self._plugin))

    def _listening(self, port: IListeningPort) -> IListeningPort:
        address = port.getHost()
        host = getattr(address, "host", str(address))
        number = getattr(address, "port", 0)
        self._log.info(
            self._template,
            protocol=self._protocol,
            host=host,
            port=number,
            address=hostPort(host, number),
            endpoint=self._description,
            plugin=self._plugin,
        )
        return port


class ListeningService(MultiService):
    """
    The listening ports of one server factory; stopping it stops the
    ports, then closes the open sessions politely (each protocol says
    goodbye in its own words), dropping whatever is left after
    C{graceSeconds}.

    @ivar factory: the factory behind every port.
    @ivar graceSeconds: how long sessions have to finish.
    """

    def __init__(
        self,
        factory: LimitedServerFactory,
        reactor: IReactorTime,
        graceSeconds: float = 10.0,
        closing: Sequence[Callable[[], object]] = (),
    ) -> None:
        """
        @param factory: the factory behind every port.
        @param reactor: provides the clock for the grace period.
        @param graceSeconds: how long sessions have to finish.
        @param closing: called, in order, once every session has ended:
            such as the store's C{close}, which ends its watches on folders
            and its thread pool.
        """
        MultiService.__init__(self)
        self.factory = factory
        self._reactor = reactor
        self.graceSeconds = graceSeconds
        self._closing = tuple(closing)

    def stopService(self) -> Deferred[None]:
        """
        @return: a Deferred that fires once the ports are closed, every
            session has ended and what was to be closed is.
        """
        stopped = MultiService.stopService(self)

        async def stop() -> None:
            try:
                await stopped
                closing = self.factory.shutdown()
                timer = self._reactor.callLater(
                    self.graceSeconds, self.factory.abortAll
                )
                await closing
                if timer.active():
                    timer.cancel()
            finally:
                for close in self._closing:
                    close()

        return Deferred.fromCoroutine(stop())


@dataclass(frozen=True)
class StoreServing:
    """
    What a server over the Maildir store for the users of a users file is
    made of, from the options its plugin shares with the others.

    @ivar hostname: the server's host name.
    @ivar tls: the TLS context for STARTTLS and its kin.
    @ivar checker: checks passwords against the users file.
    @ivar store: the mail store.
    @ivar limits: the factory's keyword arguments for the shared limits,
        plain-text logins and the reactor.
    """

    hostname: str
    tls: CertificateOptions
    checker: UsersChecker
    store: MaildirStore
    limits: dict[str, Any]


def storeServing(
    options: usage.Options, reactor: Any, protocol: str, startTLS: str
) -> StoreServing:
    """
    Make what a server over the store and the users file needs, and log
    what it will serve.

    @param options: the plugin's parsed options (L{ServerOptions} with
        C{--maildir}, C{--users} and C{--allow-plaintext-auth}).
    @param reactor: the reactor.
    @param protocol: the protocol's name, for the log (C{"IMAP4"}).
    @param startTLS: its command that starts TLS (C{"STARTTLS"}), for the
        development certificate's warning.
    @return: the parts.
    """
    hostname = options["hostname"]
    tls = options["tls"]
    if tls is None:
        tls = developmentTLS(hostname, startTLS, "")
    maildir = os.path.abspath(options["maildir"])
    users = UsersDatabase(os.path.abspath(options["users"]))
    if not users.users():
        _log.warn(
            "The users file {path} has no user: nobody can log in until one is "
            "added (python -m gomail_twisted users add ADDRESS)",
            path=users.path,
        )
    plaintext = bool(options["allow-plaintext-auth"])
    if plaintext:
        _log.warn(
            "{protocol} accepts passwords without TLS (--allow-plaintext-auth)",
            protocol=protocol,
        )
    _log.info(
        "{protocol} server {hostname} serving the users of {users} from {maildir}",
        protocol=protocol,
        hostname=hostname,
        users=users.path,
        maildir=maildir,
    )
    return StoreServing(
        hostname=hostname,
        tls=tls,
        checker=UsersChecker(users, PasswordHashing(reactor)),
        store=MaildirStore(maildir, reactor=reactor),
        limits={
            "allowPlaintextAuth": plaintext,
            "timeout": options["timeout"],
            "tlsHandshakeTimeout": options["tls-handshake-timeout"],
            "maxErrors": options["max-errors"],
            "maxConnections": options["max-connections"],
            "maxConnectionsPerPeer": options["max-connections-per-peer"],
            "reactor": reactor,
        },
    )


def listeningService(
    service: ListeningService,
    descriptions: Sequence[str],
    reactor: Any,
    protocol: str,
    plugin: str,
    tls: IOpenSSLServerConnectionCreator | None = None,
    template: str = LISTENING_LOG,
) -> ListeningService:
    """
    Give C{service} one port per endpoint, all serving its factory.

    Starting the service raises L{ListenError} when an endpoint cannot
    listen.

    @param service: the service, with its factory.
    @param descriptions: the endpoint strings of C{--listen}.
    @param reactor: the reactor to listen with.
    @param protocol: the protocol's name for the log, such as C{"POP3"}.
    @param plugin: the plugin's name for L{ListenError}.
    @param tls: options for implicit TLS on every one of these endpoints
        (see L{ReportingEndpoint}), or L{None}.
    @param template: the log line of each port (see L{ReportingEndpoint}).
    @return: C{service}.
    """
    for description in descriptions:
        endpoint = endpoints.serverFromString(reactor, description)
        child = StreamServerEndpointService(
            ReportingEndpoint(endpoint, description, protocol, plugin, tls, template),
            service.factory,
        )
        # As twisted.application.strports does: a port that cannot be bound
        # stops twistd at startup instead of being logged and ignored.
        child._raiseSynchronously = True
        child.setServiceParent(service)
    return service
