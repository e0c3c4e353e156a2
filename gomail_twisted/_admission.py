# -*- test-case-name: tests.test_connection,tests.test_ipac_servers -*-
"""
Admission: the one place where every connection of every server is
counted, admitted or refused (L{LimitedServerFactory.admit}), and from
which all of a server's connections are shut down.  Public through
L{gomail_twisted.connection}.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.internet.protocol import ServerFactory

if TYPE_CHECKING:
    from gomail_twisted.connection import LineServerProtocol
    from gomail_twisted.ipac import IPAccessControl


class Refusal(enum.Enum):
    """
    Why a new connection is refused.
    """

    SHUTTING_DOWN = "shutting down"
    BLOCKED = "blocked by access control"
    TOO_MANY_CONNECTIONS = "too many connections"
    TOO_MANY_FROM_PEER = "too many connections from one peer"


class LimitedServerFactory(ServerFactory):
    """
    A factory that counts its connections, overall and per peer address, and
    shuts them all down politely.

    @ivar reactor: the clock of every timer.
    @ivar timeout: seconds of peer silence before the idle notice and close.
    @ivar tlsHandshakeTimeout: seconds a TLS handshake may take.
    @ivar closeTimeout: seconds a closing connection may take to go before it
        is aborted.
    @ivar maxErrors: protocol errors per connection before it is closed.
    @ivar maxConnections: simultaneous connections in all.
    @ivar maxConnectionsPerPeer: simultaneous connections from one address.
    @ivar accessControl: the IP access control every new connection is
        reported to and blocked peers are refused by, or L{None}.  One may
        be shared by the factories of every server, so that failures on one
        protocol block the peer on all.
    """

    # Each port says where it listens (tap._common.ReportingEndpoint); the
    # factory's own "Starting factory <object at 0x...>" says nothing more.
    noisy = False

    def __init__(
        self,
        *,
        reactor: IReactorTime | None = None,
        timeout: float = 300.0,
        tlsHandshakeTimeout: float = 30.0,
        closeTimeout: float = 10.0,
        maxErrors: int = 20,
        maxConnections: int = 1000,
        maxConnectionsPerPeer: int = 20,
        accessControl: IPAccessControl | None = None,
    ) -> None:
        """
        @param reactor: provides the clock; default the global reactor.
        @param timeout: see L{timeout}.
        @param tlsHandshakeTimeout: see L{tlsHandshakeTimeout}.
        @param closeTimeout: see L{closeTimeout}.
        @param maxErrors: see L{maxErrors}.
        @param maxConnections: see L{maxConnections}.
        @param maxConnectionsPerPeer: see L{maxConnectionsPerPeer}.
        @param accessControl: see L{accessControl}.
        """
        if reactor is None:
            from twisted.internet import reactor as globalReactor

            reactor = globalReactor
        assert reactor is not None
        self.reactor = reactor
        self.timeout = timeout
        self.tlsHandshakeTimeout = tlsHandshakeTimeout
        self.closeTimeout = closeTimeout
        self.maxErrors = maxErrors
        self.maxConnections = maxConnections
        self.maxConnectionsPerPeer = maxConnectionsPerPeer
        self.accessControl = accessControl
        self._open: dict[str, int] = {}
        self._protocols: set[LineServerProtocol] = set()
        self._allClosed: list[Deferred[None]] = []
        self._shuttingDown = False

    @property
    def openConnections(self) -> int:
        """
        How many connections are open now, admitted or being refused.
        """
        return len(self._protocols)

    def admit(self, protocol: LineServerProtocol) -> Refusal | None:
        """
        Count a new connection and decide whether it may go on.  This is
        where every connection of every server is admitted or refused.

        With access control, a blocked peer is refused first (after a
        shutdown); any other connection, admitted or refused for its
        numbers, is reported to
        L{IPAccessControl.connectionMade<gomail_twisted.ipac.IPAccessControl.connectionMade>}.
        A blocked peer's connections are not counted: access control
        ignores them while the block lasts, and they cost nothing to
        refuse.

        @param protocol: the new connection; it is counted either way, until
            L{connectionClosed}.
        @return: L{None} to go on, or why not.
        """
        host = protocol.peer[0]
        self._protocols.add(protocol)
        count = self._open[host] = self._open.get(host, 0) + 1
        if self._shuttingDown:
            return Refusal.SHUTTING_DOWN
        control = self.accessControl
        if control is not None:
            if control.isBlocked(host):
                return Refusal.BLOCKED
            control.connectionMade(host)
        if len(self._protocols) > self.maxConnections:
            return Refusal.TOO_MANY_CONNECTIONS
        if count > self.maxConnectionsPerPeer:
            return Refusal.TOO_MANY_FROM_PEER
        return None

    def connectionClosed(self, protocol: LineServerProtocol) -> None:
        """
        Forget a closed connection.

        @param protocol: the connection.
        """
        if protocol not in self._protocols:
            return
        self._protocols.discard(protocol)
        host = protocol.peer[0]
        left = self._open.get(host, 0) - 1
        if left > 0:
            self._open[host] = left
        else:
            self._open.pop(host, None)
        if not self._protocols:
            waiters, self._allClosed = self._allClosed, []
            for waiter in waiters:
                waiter.callback(None)

    def shutdown(self) -> Deferred[None]:
        """
        Close every connection politely: each is told, once the command in
        hand is answered (a message in flight is received and answered
        first), then closed; new connections are refused.

        @return: a Deferred that fires once every connection is closed.
        """
        self._shuttingDown = True
        for protocol in list(self._protocols):
            protocol.shutdown()
        if not self._protocols:
            return succeed(None)
        waiter: Deferred[None] = Deferred()
        self._allClosed.append(waiter)
        return waiter

    def abortAll(self) -> None:
        """
        Drop every connection at once, as the last step of a shutdown that
        took too long.
        """
        for protocol in list(self._protocols):
            protocol.abort()
