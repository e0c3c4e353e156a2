# -*- test-case-name: tests.test_pop3_server -*-
"""
The POP3 server's factory: one protocol per connection, and the
configuration and limits they share.
"""

from __future__ import annotations

import itertools
import os
from typing import Any

from twisted.internet.interfaces import IReactorTime

from gomail_twisted._hostname import localHostName
from gomail_twisted._version import __version__
from gomail_twisted.connection import LimitedServerFactory
from gomail_twisted.ipac import IPAccessControl
from gomail_twisted.pop3._reply import CAPABILITIES, multiline
from gomail_twisted.pop3._wire import MAX_AUTH_LINE, MAX_COMMAND_LINE
from gomail_twisted.pop3.interfaces import IPOP3Backend
from gomail_twisted.pop3.server import POP3ServerProtocol

#: Greeting timestamps are numbered across every factory of the process,
#: so that no two greetings of one process and second are alike.
_timestamps = itertools.count(1)

#: The default size of the pieces a message is written in.
DEFAULT_CHUNK_SIZE = 64 * 1024


class POP3ServerFactory(LimitedServerFactory):
    """
    Makes one L{POP3ServerProtocol} per connection and holds the
    configuration; every limit is an argument here.

    Stopping politely (L{shutdown}): each connection is told C{-ERR
    [SYS/TEMP] Server shutting down} and closed once the command in hand is
    answered; a message being sent is sent whole first, and a QUIT being
    committed (the UPDATE state) finishes its commit and is answered first.

    @ivar backend: the application's L{IPOP3Backend}.
    @ivar hostname: our host name, in the greeting and APOP timestamps.
    @ivar tls: the server TLS context factory for STLS, or L{None}.
    @ivar allowPlaintextAuth: whether USER/PASS and AUTH are offered
        without TLS.
    @ivar maxLineLength: the longest command line, CRLF included.
    @ivar chunkSize: the size of the pieces a message is written in.
    """

    protocol = POP3ServerProtocol  # type: ignore[assignment]

    def __init__(
        self,
        backend: IPOP3Backend,
        hostname: str | None = None,
        tls: Any = None,
        *,
        allowPlaintextAuth: bool = False,
        reactor: IReactorTime | None = None,
        timeout: float = 600.0,
        tlsHandshakeTimeout: float = 30.0,
        closeTimeout: float = 10.0,
        maxErrors: int = 10,
        maxConnections: int = 1000,
        maxConnectionsPerPeer: int = 20,
        accessControl: IPAccessControl | None = None,
        maxLineLength: int = MAX_COMMAND_LINE,
        chunkSize: int = DEFAULT_CHUNK_SIZE,
    ) -> None:
        """
        @param backend: hands out the per-connection sessions.
        @param hostname: our host name; default this machine's.
        @param tls: an C{IOpenSSLServerConnectionCreator} (such as
            L{twisted.internet.ssl.CertificateOptions}): STLS is offered
            with it.  For implicit TLS (port 995, RFC 8314), put the factory
            behind an C{ssl:} endpoint instead (or as well); do not wrap it
            in the wrappers of L{twisted.protocols.policies}, which hide the
            end of the handshake from the protocol.
        @param allowPlaintextAuth: offer USER/PASS and AUTH PLAIN without
            TLS.  Passwords then cross the network in clear text.  APOP,
            which sends no password, is offered either way when the
            backend can check it.
        @param reactor: provides the clock; default the global reactor.
        @param timeout: seconds of client silence before C{-ERR} and close;
            RFC 1939 3 asks for at least 10 minutes.  The clock stops while
            a hook is working; while a message is being sent, it restarts
            whenever the client has read more of it.
        @param tlsHandshakeTimeout: seconds a TLS handshake (implicit, or
            after STLS) may take before the connection is dropped.
        @param closeTimeout: seconds a closing connection may take to go
            before it is aborted.
        @param maxErrors: protocol errors per connection (unknown, malformed
            or out-of-state commands, bad message numbers, failed logins)
            before C{-ERR} and close.
        @param maxConnections: simultaneous connections in all.
        @param maxConnectionsPerPeer: simultaneous connections from one IP
            address.
        @param accessControl: IP access control
            (L{gomail_twisted.ipac.IPAccessControl}), which may be shared
            with the other servers' factories: every new connection is
            reported to it, every checked credential too, and a peer it
            blocks is refused with the protocol's short error before any
            work (L{gomail_twisted.connection.LimitedServerFactory.admit}).
        @param maxLineLength: the longest command line, CRLF included (RFC
            2449 4: 255).  AUTH lines and SASL responses may reach
            L{MAX_AUTH_LINE<gomail_twisted.pop3._wire.MAX_AUTH_LINE>}
            whatever this says.
        @param chunkSize: the size of the pieces RETR and TOP write a
            message in.
        @raise ValueError: when C{maxLineLength} or C{chunkSize} is out of
            range.
        """
        if not 6 <= maxLineLength <= MAX_AUTH_LINE:
            raise ValueError(f"maxLineLength must be 6 to {MAX_AUTH_LINE}")
        if chunkSize < 1:
            raise ValueError("chunkSize must be positive")
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
        self.chunkSize = chunkSize
        self._capabilities: dict[tuple[bool, bool], bytes] = {}

    def newTimestamp(self) -> str:
        """
        A new APOP timestamp (RFC 1939 7), unique to this greeting: the
        process ID, a counter shared by every factory of the process, and
        the time.

        @return: such as C{"<4242.7.1764460800@pop.example.com>"}.
        """
        count = next(_timestamps)
        now = int(self.reactor.seconds())
        return f"<{os.getpid()}.{count}.{now}@{self.hostname}>"

    def capabilities(self, passwords: bool, stls: bool) -> tuple[str, ...]:
        """
        The CAPA lines (RFC 2449 5, 6) for a session in one state: once
        logged in, neither passwords nor STLS are offered.

        @param passwords: USER/PASS and SASL PLAIN are offered now.
        @param stls: STLS is offered now.
        @return: the capability lines.
        """
        caps = ["TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"]
        if passwords:
            caps += ["USER", "SASL PLAIN"]
        if stls:
            caps.append("STLS")
        caps.append(f"IMPLEMENTATION gomail_twisted-{__version__}")
        return tuple(caps)

    def capabilityResponse(self, passwords: bool, stls: bool) -> bytes:
        """
        The CAPA response, formatted once per combination.

        @param passwords: see L{capabilities}.
        @param stls: see L{capabilities}.
        @return: the multi-line response.
        """
        key = (passwords, stls)
        cached = self._capabilities.get(key)
        if cached is None:
            lines = [c.encode("ascii") for c in self.capabilities(*key)]
            cached = self._capabilities[key] = multiline(CAPABILITIES, lines)
        return cached
