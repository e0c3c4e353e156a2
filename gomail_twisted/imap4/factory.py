# -*- test-case-name: tests.test_imap4_server -*-
"""
The IMAP4 server's factory: one protocol per connection, and the
configuration and limits they share.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.interfaces import IReactorTime

from gomail_twisted._hostname import localHostName
from gomail_twisted.connection import LimitedServerFactory
from gomail_twisted.imap4 import _commands  # noqa: F401  (the handlers' types)
from gomail_twisted.imap4.interfaces import IIMAPBackend
from gomail_twisted.imap4.server import IMAP4Server
from gomail_twisted.ipac import IPAccessControl

#: The longest command line, CRLF included: Dovecot's default.
DEFAULT_MAX_LINE = 64 * 1024
#: The most a command other than APPEND may send, lines and literals.
DEFAULT_MAX_COMMAND = 1024 * 1024
#: The most a command may send before a login (RFC 7888 5 warns of
#: literals from clients not yet known).
DEFAULT_MAX_LOGIN_COMMAND = 8 * 1024
#: The largest message APPEND takes (RFC 7889 APPENDLIMIT).
DEFAULT_MAX_APPEND = 50 * 1024 * 1024
#: The size of the pieces a FETCH response is written in.
DEFAULT_CHUNK_SIZE = 64 * 1024

#: The extensions announced once logged in, each implemented in full.
EXTENSIONS = (
    "LITERAL+",
    "SASL-IR",
    "ID",
    "ENABLE",
    "IDLE",
    "NAMESPACE",
    "UNSELECT",
    "UIDPLUS",
    "MOVE",
    "CHILDREN",
    "SPECIAL-USE",
    "LIST-EXTENDED",
    "LIST-STATUS",
    "STATUS=SIZE",
    "CONDSTORE",
)
#: The extensions announced before a login: those a client needs to log in.
LOGIN_EXTENSIONS = ("SASL-IR", "ID", "ENABLE", "IDLE", "LITERAL+")


class IMAP4ServerFactory(LimitedServerFactory):
    """
    Makes one L{IMAP4Server} per connection and holds the configuration;
    every limit is an argument here.

    Stopping politely (L{shutdown}): each connection is told C{* BYE
    [UNAVAILABLE] Server shutting down} and closed once the command in hand
    is answered.

    @ivar backend: the application's L{IIMAPBackend}.
    @ivar hostname: our host name, in the greeting.
    @ivar tls: the server TLS context factory for STARTTLS, or L{None}.
    @ivar allowPlaintextAuth: whether LOGIN and AUTHENTICATE PLAIN are
        offered without TLS.
    @ivar maxLineLength: the longest command line, CRLF included.
    @ivar maxCommandSize: the most one command (not APPEND's message) may
        send, lines and literals, once logged in.
    @ivar maxLoginCommandSize: the same before a login.
    @ivar maxAppendSize: the largest message APPEND takes.
    @ivar chunkSize: the size of the pieces FETCH writes a message in.
    """

    protocol = IMAP4Server  # type: ignore[assignment]

    def __init__(
        self,
        backend: IIMAPBackend,
        hostname: str | None = None,
        tls: Any = None,
        *,
        allowPlaintextAuth: bool = False,
        reactor: IReactorTime | None = None,
        timeout: float = 30 * 60.0,
        tlsHandshakeTimeout: float = 30.0,
        closeTimeout: float = 10.0,
        maxErrors: int = 20,
        maxConnections: int = 1000,
        maxConnectionsPerPeer: int = 20,
        accessControl: IPAccessControl | None = None,
        maxLineLength: int = DEFAULT_MAX_LINE,
        maxCommandSize: int = DEFAULT_MAX_COMMAND,
        maxLoginCommandSize: int = DEFAULT_MAX_LOGIN_COMMAND,
        maxAppendSize: int = DEFAULT_MAX_APPEND,
        chunkSize: int = DEFAULT_CHUNK_SIZE,
    ) -> None:
        """
        @param backend: hands out the per-connection sessions.
        @param hostname: our host name; default this machine's.
        @param tls: an C{IOpenSSLServerConnectionCreator} (such as
            L{twisted.internet.ssl.CertificateOptions}): STARTTLS is
            offered with it.  For implicit TLS (port 993, RFC 8314), put the
            factory behind an C{ssl:} endpoint instead (or as well).
        @param allowPlaintextAuth: offer LOGIN and AUTHENTICATE PLAIN
            without TLS (otherwise C{LOGINDISABLED}, RFC 3501 6.2.3).
            Passwords then cross the network in clear text.
        @param reactor: provides the clock; default the global reactor.
        @param timeout: seconds of client silence before C{* BYE} and
            close; RFC 3501 5.4 asks for at least 30 minutes.  The clock
            stops while the server is working on a command.
        @param tlsHandshakeTimeout: seconds a TLS handshake may take.
        @param closeTimeout: seconds a closing connection may take to go
            before it is aborted.
        @param maxErrors: C{BAD} commands per connection before C{* BYE}
            and close.
        @param maxConnections: simultaneous connections in all.
        @param maxConnectionsPerPeer: simultaneous connections from one IP
            address.
        @param accessControl: IP access control
            (L{gomail_twisted.ipac.IPAccessControl}), which may be shared
            with the other servers' factories: every new connection is
            reported to it, every checked credential too, and a peer it
            blocks is refused with the protocol's short error before any
            work (L{gomail_twisted.connection.LimitedServerFactory.admit}).
        @param maxLineLength: see L{maxLineLength}.
        @param maxCommandSize: see L{maxCommandSize}.
        @param maxLoginCommandSize: see L{maxLoginCommandSize}.
        @param maxAppendSize: see L{maxAppendSize}; announced as
            C{APPENDLIMIT} (RFC 7889).
        @param chunkSize: see L{chunkSize}.
        @raise ValueError: when a limit is out of range.
        """
        if maxLineLength < 1024:
            raise ValueError("maxLineLength must be at least 1024")
        if maxCommandSize < maxLineLength or maxLoginCommandSize < 1024:
            raise ValueError(
                "maxCommandSize must be at least maxLineLength,"
                " maxLoginCommandSize at least 1024"
            )
        if maxAppendSize < 1 or chunkSize < 1:
            raise ValueError("maxAppendSize and chunkSize must be positive")
        super().__init__(
            reactor=reactor,
            timeout=timeout,
            tlsHandshakeTimeout=tlsHandshakeTimeout,
            closeTimeout=closeTimeout,
            maxErrors=maxErrors,
            maxConnections=maxConnections,
            maxConnectionsPerPeer=maxConnectionsPerPeer,
            accessControl=accessControl,
        )
        self.backend = backend
        self.hostname = hostname or localHostName()
        self.tls = tls
        self.allowPlaintextAuth = allowPlaintextAuth
        self.maxLineLength = maxLineLength
        self.maxCommandSize = maxCommandSize
        self.maxLoginCommandSize = maxLoginCommandSize
        self.maxAppendSize = maxAppendSize
        self.chunkSize = chunkSize
        self._capabilities: dict[tuple[bool, bool, bool], list[str]] = {}

    def capabilities(
        self, authenticated: bool, passwords: bool, startTLS: bool
    ) -> list[str]:
        """
        The capabilities to announce (RFC 3501 7.2.1) in one situation.

        @param authenticated: logged in: the full list, and no login
            mechanisms.
        @param passwords: LOGIN and AUTHENTICATE PLAIN may be used now;
            otherwise C{LOGINDISABLED}.
        @param startTLS: STARTTLS is offered now.
        @return: the capability names, C{IMAP4rev1} first.
        """
        key = (authenticated, passwords, startTLS)
        cached = self._capabilities.get(key)
        if cached is not None:
            return cached
        caps = ["IMAP4rev1"]
        if authenticated:
            caps += EXTENSIONS
            caps.append(f"APPENDLIMIT={self.maxAppendSize}")
        else:
            caps += LOGIN_EXTENSIONS
            if startTLS:
                caps.append("STARTTLS")
            if passwords:
                caps += ["AUTH=PLAIN", "AUTH=LOGIN"]
            else:
                caps.append("LOGINDISABLED")
        self._capabilities[key] = caps
        return caps
