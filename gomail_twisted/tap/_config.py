# -*- test-case-name: tests.test_tap_gomail_config -*-
"""
The configuration of C{twistd gomail}: one TOML file (read with the
standard library's C{tomllib}, or C{tomli} before Python 3.11), the
command line over it, and the embedded defaults under both.

    data = "/var/lib/gomail"        # the users file, mail, queue, tls/
    hostname = "mx.example.com"
    domains = ["example.com"]

    [tls]
    cert = "/etc/letsencrypt/live/mx.example.com/fullchain.pem"
    key = "/etc/letsencrypt/live/mx.example.com/privkey.pem"

    [listen]                        # lists of Twisted endpoint strings
    smtp = ["tcp:25"]
    submission = ["tcp:587"]
    submissions = ["tcp:465"]       # implicit TLS added by the server
    pop3 = []                       # empty: not served
    pop3s = ["tcp:995"]
    imap = ["tcp:143"]
    imaps = ["tcp:993"]

    [dkim."example.com"]
    selector = "mail"
    key = "/etc/gomail/mail.example.com.pem"

    [smtp]                          # also [submission], [pop3], [imap]
    max-message-size = "25M"
    timeout = 300

    [queue]
    lifetime = "5d"
    delay-warning = "4h"

    [access]
    allow = ["127.0.0.0/8", "::1"]
    block-after-failures = 30

    [dns]                           # default: /etc/resolv.conf
    nameservers = ["127.0.0.53"]

Relative paths in the file are taken from the file's directory; on the
command line, from the current directory.  Every key is checked: an
unknown key, a value of the wrong kind or out of range is a
L{ConfigError} whose one line names the file, the table and the key.
"""

from __future__ import annotations

import ipaddress
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gomail_twisted._hostname import localHostName
from gomail_twisted.address import checkDomain
from gomail_twisted.tap._toml import ConfigError, Reader, Table, show

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

__all__ = [
    "DEFAULT_DATA",
    "DEFAULT_LISTEN",
    "IMPLICIT_TLS",
    "SERVICES",
    "AccessSettings",
    "ConfigError",
    "DKIMKey",
    "GomailConfig",
    "QueueSettings",
    "ServerSettings",
    "loadConfig",
]

#: The data directory when none is given.
DEFAULT_DATA = "gomail-data"

#: The services, in the order they are started and reported.
SERVICES = ("smtp", "submission", "submissions", "pop3", "pop3s", "imap", "imaps")

#: The services whose endpoints the server wraps in TLS (RFC 8314).
IMPLICIT_TLS = frozenset({"submissions", "pop3s", "imaps"})

_PORTS = (2525, 2587, 2465, 1110, 1995, 1143, 1993)

#: Where each service listens by default: loopback, unprivileged ports.
DEFAULT_LISTEN: Mapping[str, tuple[str, ...]] = {
    name: (f"tcp:{port}:interface=127.0.0.1",)
    for name, port in zip(
        SERVICES, (2525, 2587, 2465, 1110, 1995, 1143, 1993), strict=True
    )
}


@dataclass(frozen=True)
class ServerSettings:
    """
    The limits of one server (C{[smtp]}, C{[submission]}, C{[pop3]},
    C{[imap]}); L{None} keeps the server factory's default.

    @ivar timeout: seconds of client silence before the server hangs up.
    @ivar tlsHandshakeTimeout: seconds a TLS handshake may take.
    @ivar maxErrors: protocol errors per connection.
    @ivar maxConnections: simultaneous connections in all.
    @ivar maxConnectionsPerPeer: simultaneous connections from one address.
    @ivar maxMessageSize: largest message (SMTP and submission).
    @ivar maxRecipients: recipients per message (SMTP and submission).
    @ivar maxAppendSize: largest APPEND (IMAP).
    @ivar maxLineLength: longest command line (IMAP).
    @ivar dkimVerify: verify inbound DKIM signatures (SMTP).
    @ivar senderPolicy: which MAIL FROM a user may give (submission):
        C{"own"} addresses only, or C{"any"}.
    @ivar sentCopy: keep a copy of submitted mail in the sender's Sent
        folder (submission).
    """

    timeout: float | None = None
    tlsHandshakeTimeout: float | None = None
    maxErrors: int | None = None
    maxConnections: int | None = None
    maxConnectionsPerPeer: int | None = None
    maxMessageSize: int | None = None
    maxRecipients: int | None = None
    maxAppendSize: int | None = None
    maxLineLength: int | None = None
    dkimVerify: bool = True
    senderPolicy: str = "own"
    sentCopy: bool = False

    def limits(self) -> dict[str, Any]:
        """
        @return: the factory keyword arguments of the limits that are set.
        """
        names = (
            "timeout",
            "tlsHandshakeTimeout",
            "maxErrors",
            "maxConnections",
            "maxConnectionsPerPeer",
        )
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}


@dataclass(frozen=True)
class DKIMKey:
    """
    How mail from one domain is signed (C{[dkim."DOMAIN"]}).

    @ivar selector: the selector (C{s=}).
    @ivar keyPath: the PEM private key, as
        C{python -m gomail_twisted.dkim keygen} writes it.
    @ivar privateKey: the key's PEM bytes, read when the file was checked.
    """

    selector: str
    keyPath: Path
    privateKey: bytes = field(repr=False)


@dataclass(frozen=True)
class QueueSettings:
    """
    The outbound queue (C{[queue]}); L{None} keeps the queue's default.

    @ivar lifetime: seconds a message is retried before it bounces.
    @ivar delayWarning: seconds after which the sender is told of a delay.
    @ivar maxDeliveries: deliveries at once.
    @ivar maxPerDomain: deliveries at once to one domain.
    @ivar retryDelay: seconds before the first retry.
    @ivar maxRetryDelay: the longest delay between two attempts.
    @ivar requireTLS: deliver only over TLS.
    @ivar port: the port of the receiving servers (25); another only where
        outbound port 25 is redirected, or for a test.
    """

    lifetime: float | None = None
    delayWarning: float | None = None
    maxDeliveries: int | None = None
    maxPerDomain: int | None = None
    retryDelay: float | None = None
    maxRetryDelay: float | None = None
    requireTLS: bool | None = None
    port: int | None = None

    def arguments(self) -> dict[str, Any]:
        """
        @return: the queue's keyword arguments for the settings that are set.
        """
        names = (
            "lifetime",
            "delayWarning",
            "maxDeliveries",
            "maxPerDomain",
            "retryDelay",
            "maxRetryDelay",
            "requireTLS",
            "port",
        )
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}


@dataclass(frozen=True)
class DNSSettings:
    """
    The resolver of DKIM verification and the queue (C{[dns]}).

    @ivar nameservers: the IP addresses of the servers to ask, or L{None}
        for the system's configuration (C{/etc/resolv.conf}).
    @ivar port: the port to ask them on.
    """

    nameservers: tuple[str, ...] | None = None
    port: int = 53


@dataclass(frozen=True)
class AccessSettings:
    """
    The IP access control (C{[access]}), as
    L{gomail_twisted.ipac.IPAccessControl} takes it; L{None} keeps its
    default.

    @ivar allow: networks never counted nor blocked; L{None} for loopback.
    """

    window: float | None = None
    warnAfterConnections: int | None = None
    blockAfterConnections: int | None = None
    blockAfterFailures: int | None = None
    blockFor: float | None = None
    subnetThreshold: int | None = None
    allow: tuple[str, ...] | None = None

    def arguments(self) -> dict[str, Any]:
        """
        @return: the keyword arguments for the settings that are set.
        """
        names = (
            "window",
            "warnAfterConnections",
            "blockAfterConnections",
            "blockAfterFailures",
            "blockFor",
            "subnetThreshold",
            "allow",
        )
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}


@dataclass(frozen=True)
class GomailConfig:
    """
    Everything C{twistd gomail} is told, checked, defaults filled in.

    @ivar source: the configuration file, or L{None}.
    @ivar data: the data directory.
    @ivar users: the users file.
    @ivar hostname: the server's host name.
    @ivar domains: domains to declare in the users file if it lacks them.
    @ivar tlsCert: the PEM certificate chain, or L{None} for the
        development certificate kept in C{DATA/tls/}.
    @ivar tlsKey: its private key, or L{None}.
    @ivar listen: the endpoints of every service in L{SERVICES}; empty for
        a service not served.
    @ivar servers: the settings of C{smtp}, C{submission}, C{pop3} and
        C{imap}.
    @ivar dkim: signing keys by (lower-case) domain.
    @ivar queue: the outbound queue's settings.
    @ivar access: the IP access control's settings.
    @ivar dns: the resolver's settings.
    """

    source: Path | None
    data: Path
    users: Path
    hostname: str
    domains: tuple[str, ...]
    tlsCert: Path | None
    tlsKey: Path | None
    listen: Mapping[str, tuple[str, ...]]
    servers: Mapping[str, ServerSettings]
    dkim: Mapping[str, DKIMKey]
    queue: QueueSettings
    access: AccessSettings
    dns: DNSSettings = DNSSettings()

    @property
    def mail(self) -> Path:
        """
        The root of the Maildir store.
        """
        return self.data / "mail"

    @property
    def spool(self) -> Path:
        """
        The outbound queue's spool directory.
        """
        return self.data / "queue"

    @property
    def developmentKey(self) -> Path:
        """
        Where the development certificate's key is kept.
        """
        return self.data / "tls" / "key.pem"

    @property
    def developmentCert(self) -> Path:
        """
        Where the development certificate is kept.
        """
        return self.data / "tls" / "cert.pem"


_LIMITS = (
    "timeout",
    "tls-handshake-timeout",
    "max-errors",
    "max-connections",
    "max-connections-per-peer",
)
_SERVER_KEYS = {
    "smtp": (*_LIMITS, "max-message-size", "max-recipients", "dkim-verify"),
    "submission": (
        *_LIMITS,
        "max-message-size",
        "max-recipients",
        "sender-policy",
        "sent-copy",
    ),
    "pop3": _LIMITS,
    "imap": (*_LIMITS, "max-append-size", "max-line-length"),
}
_QUEUE_KEYS = (
    "lifetime",
    "delay-warning",
    "max-deliveries",
    "max-per-domain",
    "retry-delay",
    "max-retry-delay",
    "require-tls",
    "port",
)
_DNS_KEYS = ("nameservers", "port")
_ACCESS_KEYS = (
    "allow",
    "window",
    "warn-after-connections",
    "block-after-connections",
    "block-after-failures",
    "block-for",
    "subnet-threshold",
)
_TOP_KEYS = (
    "data",
    "users",
    "hostname",
    "domains",
    "tls",
    "listen",
    "dkim",
    "smtp",
    "submission",
    "pop3",
    "imap",
    "queue",
    "access",
    "dns",
)


def _port(table: Table, key: str) -> int | None:
    port = table.count(key)
    if port is not None and port > 65535:
        raise table.fail(key, f"expected a port from 1 to 65535, got {port}")
    return port


def _dns(table: Table) -> DNSSettings:
    servers = table.strings("nameservers")
    if servers is not None:
        for server in servers:
            try:
                ipaddress.ip_address(server)
            except ValueError:
                raise table.fail(
                    "nameservers", f"expected IP addresses, got {show(server)}"
                ) from None
    port = _port(table, "port")
    table.done(_DNS_KEYS)
    return DNSSettings(servers, 53 if port is None else port)


def _server(table: Table) -> ServerSettings:
    known = _SERVER_KEYS[table.name]
    table.done(known, allowed=known)
    policy = table.string("sender-policy") or "own"
    if policy not in ("own", "any"):
        raise table.fail(
            "sender-policy", f'expected "own" or "any", got {show(policy)}'
        )
    settings = ServerSettings(
        timeout=table.seconds("timeout"),
        tlsHandshakeTimeout=table.seconds("tls-handshake-timeout"),
        maxErrors=table.count("max-errors"),
        maxConnections=table.count("max-connections"),
        maxConnectionsPerPeer=table.count("max-connections-per-peer"),
        maxMessageSize=table.size("max-message-size"),
        maxRecipients=table.count("max-recipients"),
        maxAppendSize=table.size("max-append-size"),
        maxLineLength=table.size("max-line-length"),
        dkimVerify=table.boolean("dkim-verify", True),
        senderPolicy=policy,
        sentCopy=table.boolean("sent-copy", False),
    )
    length = settings.maxLineLength
    if length is not None and not 1024 <= length <= 2**20:
        raise table.fail("max-line-length", f"expected 1K to 1M bytes, got {length}")
    table.done(_SERVER_KEYS[table.name])
    return settings


def _checkDomain(table: Table, key: str, domain: str) -> str:
    name = domain.rstrip(".").lower()
    if not (name.isascii() and checkDomain(name)):
        raise table.fail(key, f"{show(domain)} is not an ASCII domain name")
    return name


def _dkim(table: Table) -> dict[str, DKIMKey]:
    keys: dict[str, DKIMKey] = {}
    for domain in list(table.values):
        name = _checkDomain(table, domain, domain)
        entry = table.table(domain)
        entry.name = f'dkim."{domain}"'
        selector = entry.string("selector")
        path = entry.path("key")
        if selector is None:
            raise entry.fail("selector", "missing")
        if path is None:
            raise entry.fail("key", "missing")
        entry.done(("selector", "key"))
        keys[name] = DKIMKey(selector, path, _readKey(entry, path))
    return keys


def _readKey(table: Table, path: Path) -> bytes:
    from gomail_twisted.dkim import loadPrivateKey

    try:
        data = path.read_bytes()
    except OSError as e:
        raise table.fail("key", f"cannot read {path}: {e.strerror}")
    try:
        loadPrivateKey(data)
    except Exception as e:
        raise table.fail("key", f"{path} is not a DKIM private key: {e}")
    return data


def _access(table: Table) -> AccessSettings:
    allow = table.strings("allow")
    for network in allow or ():
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError:
            raise table.fail("allow", f"{show(network)} is not an IP network")
    settings = AccessSettings(
        window=table.seconds("window"),
        warnAfterConnections=table.count("warn-after-connections"),
        blockAfterConnections=table.count("block-after-connections"),
        blockAfterFailures=table.count("block-after-failures"),
        blockFor=table.seconds("block-for"),
        subnetThreshold=table.count("subnet-threshold"),
        allow=allow,
    )
    table.done(_ACCESS_KEYS)
    return settings


def _listen(table: Table, listen: dict[str, tuple[str, ...]]) -> None:
    for service in SERVICES:
        endpoints = table.strings(service)
        if endpoints is not None:
            listen[service] = tuple(
                _checkEndpoint(table, service, e) for e in endpoints
            )
    table.done(SERVICES)


def _checkEndpoint(table: Table, service: str, description: str) -> str:
    """
    @return: C{description}, which Twisted parses as a server endpoint
        that is not C{ssl:} (TLS is the server's: see L{IMPLICIT_TLS}).
    """
    # twistd has installed its reactor before it parses a plugin's options;
    # parsing an endpoint only records it.
    from twisted.internet import endpoints, reactor

    if description.split(":", 1)[0].strip().lower() == "ssl":
        implicit = service if service in IMPLICIT_TLS else f"{service}s"
        raise table.fail(
            service,
            f"{show(description)}: give a plain endpoint such as "
            f'"tcp:{description.split(":")[1] if ":" in description else "PORT"}"; '
            f"the server adds TLS on {implicit} with the [tls] certificate",
        )
    try:
        endpoints.serverFromString(reactor, description)
    except Exception as e:
        raise table.fail(service, f"{show(description)}: {e}")
    return description


def loadConfig(
    path: str | None,
    *,
    data: str | None = None,
    users: str | None = None,
    hostname: str | None = None,
    domains: Sequence[str] = (),
    tlsCert: str | None = None,
    tlsKey: str | None = None,
    listen: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
) -> GomailConfig:
    """
    Read the configuration file, if any, put the command line over it, and
    check the whole.

    @param path: the TOML file, or L{None} for the defaults alone.
    @param data: C{--data}.
    @param users: C{--users}.
    @param hostname: C{--hostname}.
    @param domains: each C{--domain}; any replace the file's C{domains}.
    @param tlsCert: C{--tls-cert}.
    @param tlsKey: C{--tls-key}.
    @param listen: each C{--listen SERVICE=ENDPOINT}; C{SERVICE=} with no
        endpoint turns the service off; the endpoints given for a service
        replace its others.
    @param environ: the environment, for C{$GOMAIL_USERS}; default
        C{os.environ}.
    @return: the configuration.
    @raise ConfigError: naming the key at fault.
    """

    from gomail_twisted.users import USERS_FILE_VARIABLE

    environ = os.environ if environ is None else environ
    here = Reader("command line", Path.cwd())
    line = Table(here, "", {})
    if path is None:
        values: dict[str, Any] = {}
        reader = here
    else:
        reader = Reader(path, Path(path).expanduser().resolve().parent)
        try:
            with open(path, "rb") as f:
                values = tomllib.load(f)
        except OSError as e:
            raise ConfigError("command line", "--config", f"{path}: {e.strerror}")
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(path, "TOML", str(e))
    top = Table(reader, "", values)

    dataPath = top.path("data")
    usersPath = top.path("users")
    host = top.string("hostname")
    names = top.strings("domains") or ()
    tls = top.table("tls")
    cert, key = tls.path("cert"), tls.path("key")
    tls.done(("cert", "key"))
    endpoints = dict(DEFAULT_LISTEN)
    _listen(top.table("listen"), endpoints)
    dkim = _dkim(top.table("dkim"))
    servers = {name: _server(top.table(name)) for name in _SERVER_KEYS}
    queueTable = top.table("queue")
    queue = QueueSettings(
        lifetime=queueTable.seconds("lifetime"),
        delayWarning=queueTable.seconds("delay-warning"),
        maxDeliveries=queueTable.count("max-deliveries"),
        maxPerDomain=queueTable.count("max-per-domain"),
        retryDelay=queueTable.seconds("retry-delay"),
        maxRetryDelay=queueTable.seconds("max-retry-delay"),
        requireTLS=queueTable.boolean("require-tls", False) or None,
        port=_port(queueTable, "port"),
    )
    queueTable.done(_QUEUE_KEYS)
    access = _access(top.table("access"))
    dns = _dns(top.table("dns"))
    top.done(_TOP_KEYS)
    domainTable = top
    if domains:
        names, domainTable = tuple(domains), Table(here, "", {})
    checked = tuple(
        dict.fromkeys(
            _checkDomain(domainTable, "--domain" if domains else "domains", d)
            for d in names
        )
    )

    if data is not None:
        dataPath = here.base / data
    if users is not None:
        usersPath = here.base / users
    if hostname is not None:
        host = hostname
    if tlsCert is not None or tlsKey is not None:
        cert = here.base / tlsCert if tlsCert else None
        key = here.base / tlsKey if tlsKey else None
        if (cert is None) != (key is None):
            raise line.fail("--tls-cert", "--tls-cert and --tls-key go together")
    elif (cert is None) != (key is None):
        raise tls.fail("cert" if cert is None else "key", "cert and key go together")
    given: dict[str, list[str]] = {}
    for item in listen:
        service, equals, endpoint = item.partition("=")
        service = service.strip().lower()
        if not equals or service not in SERVICES:
            raise line.fail(
                "--listen",
                f"{item!r}: expected SERVICE=ENDPOINT, SERVICE one of "
                f"{', '.join(SERVICES)}",
            )
        given.setdefault(service, [])
        if endpoint:
            given[service].append(endpoint)
    for service, descriptions in given.items():
        endpoints[service] = tuple(
            _checkEndpoint(Table(here, "", {}), service, d) for d in descriptions
        )

    if host is None:
        host = localHostName()
    elif not (host.isascii() and checkDomain(host.rstrip("."))):
        table = line if hostname is not None else top
        raise table.fail(
            "--hostname" if hostname is not None else "hostname",
            f"{show(host)} is not an ASCII domain name",
        )
    dataPath = (dataPath or here.base / DEFAULT_DATA).absolute()
    if usersPath is None:
        variable = environ.get(USERS_FILE_VARIABLE)
        usersPath = here.base / variable if variable else dataPath / "users"
    return GomailConfig(
        source=Path(path) if path is not None else None,
        data=dataPath,
        users=usersPath.absolute(),
        hostname=host.rstrip("."),
        domains=checked,
        tlsCert=cert,
        tlsKey=key,
        listen=endpoints,
        servers=servers,
        dkim=dkim,
        queue=queue,
        access=access,
        dns=dns,
    )
