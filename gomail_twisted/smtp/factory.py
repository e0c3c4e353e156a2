# -*- test-case-name: tests.test_smtp_server -*-
"""
The SMTP server's factory: one protocol per connection, and the
configuration and limits they share.
"""

from __future__ import annotations

import datetime
import email.utils
import secrets
from typing import TYPE_CHECKING, Any

from twisted.internet.interfaces import IReactorTime

from gomail_twisted._hostname import localHostName
from gomail_twisted.connection import LimitedServerFactory
from gomail_twisted.smtp._reply import SMTPReply
from gomail_twisted.smtp.interfaces import ISMTPBackend
from gomail_twisted.smtp.server import SMTPServerProtocol

if TYPE_CHECKING:
    from gomail_twisted.dkim import LookupTXT
    from gomail_twisted.ipac import IPAccessControl


class SMTPServerFactory(LimitedServerFactory):
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
        tlsHandshakeTimeout: float = 30.0,
        closeTimeout: float = 10.0,
        maxDataLineLength: int | None = 1000,
        allowPlaintextAuth: bool = False,
        requireTLS: bool = False,
        maxConnections: int = 1000,
        maxConnectionsPerPeer: int = 20,
        accessControl: IPAccessControl | None = None,
        dkimLookup: LookupTXT | None = None,
        dkimMaxSignatures: int | None = None,
        dkimTimeout: float | None = 30.0,
        logMessages: bool = True,
    ) -> None:
        """
        @param backend: hands out the per-connection sessions.
        @param hostname: our host name; default this machine's (see
            L{gomail_twisted._hostname.localHostName}).
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
        @param maxErrors: protocol errors per connection (unknown, malformed
            or out-of-sequence commands, failed authentications) before
            C{421 4.7.0} and close.  Refusals by the backend's hooks do not
            count: a client that delivers is never cut off for it.
        @param timeout: seconds of client silence before 421 4.4.2 and
            close (RFC 5321 4.5.3.2.7 suggests 5 minutes).  The clock stops
            while a hook is working.
        @param tlsHandshakeTimeout: seconds a TLS handshake (implicit, or
            after STARTTLS) may take before the connection is dropped.
        @param closeTimeout: seconds a closing connection may take to go
            (a TLS peer that does not answer the close, a client that does
            not read) before it is aborted.
        @param maxDataLineLength: the longest line in a message, CRLF
            included (RFC 5321 4.5.3.1.6: 1000), or L{None} for no limit.
        @param allowPlaintextAuth: offer AUTH without TLS.  Passwords then
            cross the network in clear text.
        @param requireTLS: refuse MAIL before STARTTLS (530 5.7.0).
        @param maxConnections: simultaneous connections in all.
        @param maxConnectionsPerPeer: simultaneous connections from one IP
            address.
        @param accessControl: IP access control
            (L{gomail_twisted.ipac.IPAccessControl}), which may be shared
            with the other servers' factories: every new connection is
            reported to it, every checked credential too, and a peer it
            blocks is refused with the protocol's short error before any
            work (L{gomail_twisted.connection.LimitedServerFactory.admit}).
        @param dkimLookup: fetches TXT records (such as
            L{gomail_twisted.dns.Resolver.lookupTXT}): when given, the
            backend is wrapped in a
            L{gomail_twisted.smtp.dkimcheck.DKIMVerifyingBackend}, so the
            DKIM signatures of each message are verified (RFC 6376) off the
            reactor thread, the results go to the message hook
            (L{ReceivedMessage.dkim}) and an C{Authentication-Results:}
            header (RFC 8601) naming C{hostname} is prepended.  A DNS
            failure is a C{temperror}, never a lost message.
        @param dkimMaxSignatures: signatures checked per message (RFC 6376
            6.1); later ones are reported as not checked.  L{None} for
            L{gomail_twisted.dkim.DEFAULT_MAX_SIGNATURES}.
        @param dkimTimeout: seconds one message's verification may take
            before what is unfinished is a C{temperror}; L{None} for no
            bound.
        @param logMessages: log one line per accepted message (queue
            identifier, peer, sender, recipients), as operators expect.
        """
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
        self.hostname = hostname or localHostName()
        if dkimLookup is not None:
            from gomail_twisted.smtp.dkimcheck import DKIMVerifyingBackend

            backend = DKIMVerifyingBackend(
                backend,
                dkimLookup,
                self.hostname,
                reactor=self.reactor,
                maxSignatures=dkimMaxSignatures,
                timeout=dkimTimeout,
            )
        self.backend = backend
        self.tls = tls
        self.maxMessageSize = maxMessageSize
        self.maxRecipients = maxRecipients
        self.maxDataLineLength = maxDataLineLength
        self.allowPlaintextAuth = allowPlaintextAuth
        self.requireTLS = requireTLS
        self.dkimLookup = dkimLookup
        self.logMessages = logMessages
        self.greeting = SMTPReply(220, None, f"{self.hostname} ESMTP gomail_twisted")
        self._queuePrefix = secrets.token_hex(4).upper()
        self._queued = 0
        self._dateSecond = -1
        self._date = ""
        self._capabilities: dict[tuple[bool, bool], tuple[str, ...]] = {}
        self._capabilityLines: dict[tuple[bool, bool], bytes] = {}

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
