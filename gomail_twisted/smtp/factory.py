# -*- test-case-name: tests.test_smtp_server -*-
"""
The SMTP server's factory: one protocol per connection, the configuration
and limits they share, and the connection counts per peer.
"""

from __future__ import annotations

import datetime
import email.utils
import secrets
import socket
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.internet.protocol import ServerFactory

from gomail_twisted.smtp._reply import (
    SHUTTING_DOWN,
    TOO_MANY_CONNECTIONS,
    SMTPReply,
)
from gomail_twisted.smtp.interfaces import ISMTPBackend
from gomail_twisted.smtp.server import SMTPServerProtocol

if TYPE_CHECKING:
    from gomail_twisted.dkim import LookupTXT


class SMTPServerFactory(ServerFactory):
    """
    Makes one L{SMTPServerProtocol} per connection and holds the
    configuration; every limit is an argument here.

    @ivar backend: the application's L{ISMTPBackend}.
    @ivar hostname: our host name, used in the greeting and trace headers.
    @ivar tls: the server TLS context factory for STARTTLS, or L{None}.
    """

    protocol = SMTPServerProtocol  # type: ignore[assignment]

    def __init__(
        self,
        backend: ISMTPBackend,
        hostname: str | None = None,
        tls: Any = None,
        maxMessageSize: int = 25 * 2**20,
        *,
        reactor: IReactorTime | None = None,
        maxRecipients: int = 100,
        maxErrors: int = 20,
        timeout: float = 300.0,
        maxDataLineLength: int | None = 1000,
        allowPlaintextAuth: bool = False,
        requireTLS: bool = False,
        maxConnections: int = 1000,
        maxConnectionsPerPeer: int = 20,
        dkimLookup: LookupTXT | None = None,
        logMessages: bool = True,
    ) -> None:
        """
        @param backend: hands out the per-connection sessions.
        @param hostname: our host name; default the machine's FQDN.
        @param tls: an C{IOpenSSLServerConnectionCreator} (such as
            L{twisted.internet.ssl.CertificateOptions}): STARTTLS is offered
            with it.  For implicit TLS, put the factory behind an C{ssl:}
            endpoint instead (or as well).  The protocol learns that a
            handshake is done through C{IHandshakeListener}, which the
            wrappers of L{twisted.protocols.policies} do not pass on: do
            not wrap this factory in them when it serves TLS.
        @param maxMessageSize: the largest message, in octets; advertised
            with SIZE, checked at MAIL and during DATA (552 5.3.4).
        @param reactor: provides the clock; default the global reactor.
        @param maxRecipients: recipients per message (452 4.5.3 past it);
            RFC 5321 4.5.3.1.8 asks for at least 100.
        @param maxErrors: refused commands per connection before 421 and
            close.
        @param timeout: seconds of client silence before 421 4.4.2 and
            close (RFC 5321 4.5.3.2.7 suggests 5 minutes).  The clock stops
            while a hook is working.
        @param maxDataLineLength: the longest line in a message, CRLF
            included (RFC 5321 4.5.3.1.6: 1000), or L{None} for no limit.
        @param allowPlaintextAuth: offer AUTH without TLS.  Passwords then
            cross the network in clear text.
        @param requireTLS: refuse MAIL before STARTTLS (530 5.7.0).
        @param maxConnections: simultaneous connections in all.
        @param maxConnectionsPerPeer: simultaneous connections from one IP
            address.
        @param dkimLookup: fetches TXT records (such as
            L{gomail_twisted.dns.Resolver.lookupTXT}): when given, every DKIM
            signature of each message is verified (RFC 6376), the results go
            to the message hook (L{ReceivedMessage.dkim}) and an
            C{Authentication-Results:} header (RFC 8601) naming C{hostname}
            is prepended.  A DNS failure is a C{temperror}, never a lost
            message.
        @param logMessages: log one line per accepted message (queue
            identifier, peer, sender, recipients), as operators expect.
        """
        if reactor is None:
            from twisted.internet import reactor as globalReactor

            reactor = globalReactor
        assert reactor is not None
        self.backend = backend
        self.hostname = hostname or socket.getfqdn()
        self.tls = tls
        self.maxMessageSize = maxMessageSize
        self.reactor = reactor
        self.maxRecipients = maxRecipients
        self.maxErrors = maxErrors
        self.timeout = timeout
        self.maxDataLineLength = maxDataLineLength
        self.allowPlaintextAuth = allowPlaintextAuth
        self.requireTLS = requireTLS
        self.maxConnections = maxConnections
        self.maxConnectionsPerPeer = maxConnectionsPerPeer
        self.dkimLookup = dkimLookup
        self.logMessages = logMessages
        self.greeting = SMTPReply(220, None, f"{self.hostname} ESMTP gomail_twisted")
        self._open: dict[str, int] = {}
        self._total = 0
        self._queuePrefix = secrets.token_hex(4).upper()
        self._queued = 0
        self._dateSecond = -1
        self._date = ""
        self._capabilities: dict[tuple[bool, bool], tuple[str, ...]] = {}
        self._capabilityLines: dict[tuple[bool, bool], bytes] = {}
        self._protocols: set[SMTPServerProtocol] = set()
        self._allClosed: list[Deferred[None]] = []
        self._shuttingDown = False

    def nextQueueID(self) -> str:
        """
        A new message identifier: this factory's random prefix and a
        counter, so identifiers do not repeat within a run or across runs.

        @return: such as C{"3F9A0C1B00000001"}.
        """
        self._queued += 1
        return f"{self._queuePrefix}{self._queued:08X}"

    def traceDate(self) -> str:
        """
        The current time as an RFC 5322 date, for trace headers; computed
        once a second.

        @return: such as C{"Mon, 30 Nov 2026 00:00:00 +0000"}.
        """
        second = int(self.reactor.seconds())
        if second != self._dateSecond:
            self._dateSecond = second
            self._date = email.utils.format_datetime(
                datetime.datetime.fromtimestamp(second, datetime.timezone.utc)
            )
        return self._date

    def capabilities(self, startTLS: bool, auth: bool) -> tuple[str, ...]:
        """
        The EHLO keywords (RFC 5321 4.1.1.1) in one TLS and AUTH state.

        @param startTLS: offer STARTTLS.
        @param auth: offer AUTH PLAIN and LOGIN.
        @return: the keyword lines.
        """
        key = (startTLS, auth)
        cached = self._capabilities.get(key)
        if cached is None:
            caps = [
                "PIPELINING",
                f"SIZE {self.maxMessageSize}",
                "8BITMIME",
                "SMTPUTF8",
                "ENHANCEDSTATUSCODES",
            ]
            if startTLS:
                caps.append("STARTTLS")
            if auth:
                caps.append("AUTH PLAIN LOGIN")
            caps.append("HELP")
            cached = self._capabilities[key] = tuple(caps)
        return cached

    def capabilityLines(self, startTLS: bool, auth: bool) -> bytes:
        """
        The EHLO reply's keyword lines, formatted (RFC 5321 4.2.1).

        @param startTLS: offer STARTTLS.
        @param auth: offer AUTH PLAIN and LOGIN.
        @return: C{250-} lines, the last one C{250 }, each ending in CRLF.
        """
        key = (startTLS, auth)
        cached = self._capabilityLines.get(key)
        if cached is None:
            keywords = self.capabilities(startTLS, auth)
            cached = self._capabilityLines[key] = b"".join(
                b"250"
                + (b" " if i == len(keywords) - 1 else b"-")
                + k.encode()
                + b"\r\n"
                for i, k in enumerate(keywords)
            )
        return cached

    def connectionOpened(self, protocol: SMTPServerProtocol) -> bool:
        """
        Count a new connection.

        @param protocol: the connection.
        @return: whether it is within the connection limits.
        """
        host = protocol._peer[0]
        self._total += 1
        self._open[host] = self._open.get(host, 0) + 1
        self._protocols.add(protocol)
        return (
            not self._shuttingDown
            and self._total <= self.maxConnections
            and self._open[host] <= self.maxConnectionsPerPeer
        )

    def connectionClosed(self, protocol: SMTPServerProtocol) -> None:
        """
        Forget a closed connection.

        @param protocol: the connection.
        """
        host = protocol._peer[0]
        self._total -= 1
        left = self._open.get(host, 0) - 1
        if left > 0:
            self._open[host] = left
        else:
            self._open.pop(host, None)
        self._protocols.discard(protocol)
        if not self._protocols:
            waiters, self._allClosed = self._allClosed, []
            for waiter in waiters:
                waiter.callback(None)

    def refusalReply(self) -> SMTPReply:
        """
        @return: what a connection over the limits, or one arriving during
            a shutdown, is told before it is closed.
        """
        if self._shuttingDown:
            return SHUTTING_DOWN
        return TOO_MANY_CONNECTIONS

    def shutdown(self) -> Deferred[None]:
        """
        Close every connection politely (RFC 5321 3.8): each gets C{421
        4.3.2} once its current command is answered (a message being stored
        is answered first), then is closed; new connections get the same.

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
