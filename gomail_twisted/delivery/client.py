# -*- test-case-name: tests.test_delivery_client -*-
"""
The ESMTP client (RFC 5321): one connection that delivers one or more
transactions and reports, for each, what the server said.

Extensions used when offered: PIPELINING (RFC 2920), SIZE (RFC 1870),
8BITMIME (RFC 6152), SMTPUTF8 (RFC 6531), ENHANCEDSTATUSCODES (RFC 2034),
STARTTLS (RFC 3207) and AUTH PLAIN and LOGIN (RFC 4954).  Usable on its own
over any client endpoint::

    factory = ESMTPSenderFactory(reactor, [Transaction(sender, rcpts, msg)])
    results = await factory.deliverVia(endpoint)
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Literal

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import (
    IHandshakeListener,
    IProtocol,
    IReactorTime,
    ISSLTransport,
    IStreamClientEndpoint,
    ITLSTransport,
)
from twisted.internet.protocol import ClientFactory, Protocol, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from gomail_twisted.delivery._connection import ReplyChannel
from gomail_twisted.delivery._tls import ClientTLSPolicy, TLSFacts, describeTLSError
from gomail_twisted.delivery._transaction import TransactionSender
from gomail_twisted.delivery._values import Attempt, DeliveryResult, Transaction
from gomail_twisted.delivery._wire import (
    Extensions,
    SMTPTimeouts,
    checkAddress,
)
from gomail_twisted.smtpreply import SMTPReply

__all__ = [
    "ClientTLSPolicy",
    "DeliveryResult",
    "ESMTPSender",
    "ESMTPSenderFactory",
    "SMTPTimeouts",
    "TLSFacts",
    "Transaction",
]


@implementer(IHandshakeListener)
class ESMTPSender(Protocol):
    """
    One client connection: greeting, EHLO (HELO when refused), STARTTLS,
    AUTH, then the factory's transactions, then QUIT.

    This class holds the session.  It reads and writes through a
    L{ReplyChannel} (replies in order, the timer, closing), and once the
    session is established a L{TransactionSender} sends the transactions
    (pipelined, one write per message when the server offers PIPELINING)
    and reports each outcome back here, where it becomes a
    L{DeliveryResult}.

    @ivar factory: the factory, holding the transactions and settings.
    """

    factory: ESMTPSenderFactory
    _log = Logger()
    _channel: ReplyChannel
    _transactions: TransactionSender

    def __init__(self) -> None:
        self._extensions = Extensions()
        self._tls: TLSFacts | None = None
        self._tlsState: Literal["none", "handshake", "active", "refused"] = "none"
        self._peer: tuple[str, int] = ("", 0)

    # Connection life.

    def connectionMade(self) -> None:
        assert self.transport is not None
        factory = self.factory
        channel = self._channel = ReplyChannel(
            self.transport,
            factory.reactor,
            factory.timeouts,
            self._failed,
            factory.host,
            factory.maxReplyLines,
        )
        cancelled = factory._connected(self)
        self._transactions = TransactionSender(
            channel,
            () if cancelled else factory.transactions,
            factory.timeouts,
            self._record,
        )
        if cancelled:
            channel.abort()
            return
        peer = self.transport.getPeer()
        self._peer = (str(getattr(peer, "host", "")), int(getattr(peer, "port", 0)))
        if ISSLTransport.providedBy(self.transport):
            # Implicit TLS (RFC 8314 3.3): the greeting follows the handshake.
            self._tlsState = "handshake"
        channel.expect(self._greeted, factory.timeouts.greeting, "greeting")

    def dataReceived(self, data: bytes) -> None:
        self._channel.dataReceived(data)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._channel.cancelTimer(now=True)
        self._transactions.stopProducing()
        if self._tlsState == "handshake":
            reasons = describeTLSError(reason, self.transport)
            error = f"TLS handshake failed: {reasons}"
        else:
            error = f"connection lost: {reason.getErrorMessage()}"
        self._transactions.failAll(error, permanent=False, quit=False)
        self.factory._finished()

    def handshakeCompleted(self) -> None:
        """
        TLS is up: check the certificate as the policy asks, then (after
        STARTTLS) say EHLO again (RFC 3207 4.2).
        """
        starttls = self._tlsState == "handshake" and not self._channel.expecting
        self._tlsState = "active"
        self._tls, error = self.factory.tls.inspect(self.transport)
        if self._tls is not None:
            self._log.debug(
                "SMTP TLS to {host}: {version} {cipher}, name {name} matched "
                "{matched}, verified {verified} ({why})",
                host=self.factory.host,
                version=self._tls.version,
                cipher=self._tls.cipher,
                name=self._tls.serverName,
                matched=self._tls.nameMatched,
                verified=self._tls.verified,
                why=self._tls.verifyError or "chain and name checked",
            )
        if error is not None:
            self._transactions.failAll(f"TLS: {error}", permanent=False, quit=True)
            return
        if starttls:
            self._hello()

    def _cancel(self) -> None:
        """
        Close the connection at once: the factory's Deferred was cancelled.
        """
        self._channel.cancelTimer(now=True)
        self._channel.abort()

    def _failed(self, error: str) -> None:
        # The channel aborts the connection right after.
        self._transactions.failAll(error, permanent=False, quit=False)

    def _record(
        self,
        attempt: Attempt,
        reply: SMTPReply | None,
        error: str | None,
        permanent: bool,
    ) -> None:
        t = attempt.transaction
        factory = self.factory
        factory._results.append(
            DeliveryResult(
                host=factory.host,
                address=self._peer[0],
                port=self._peer[1],
                recipients=t.recipients,
                accepted=tuple(attempt.accepted) if error is None else (),
                refused=tuple(attempt.refused),
                code=reply.code if reply is not None else None,
                enhanced=reply.enhanced if reply is not None else None,
                text=reply.text if reply is not None else "",
                error=error,
                permanent=permanent,
                tls=self._tls,
                domain=factory.domain,
            )
        )

    # The session.

    def _greeted(self, reply: SMTPReply) -> None:
        if reply.code != 220:
            self._transactions.refused(reply, "greeting refused")
            return
        self._hello()

    def _hello(self) -> None:
        self._channel.send(b"EHLO " + self._heloName() + b"\r\n")
        self._channel.expect(
            self._ehloReply, self.factory.timeouts.command, "EHLO reply"
        )

    def _heloName(self) -> bytes:
        name = self.factory.heloName
        if name is None:
            assert self.transport is not None
            host = str(getattr(self.transport.getHost(), "host", "127.0.0.1"))
            name = f"[IPv6:{host}]" if ":" in host else f"[{host}]"
        return name.encode("idna") if not name.startswith("[") else name.encode()

    def _ehloReply(self, reply: SMTPReply) -> None:
        if reply.code == 250:
            self._useExtensions(Extensions.fromReply(reply))
            self._afterHello()
        elif reply.code >= 500:
            # RFC 5321 4.1.4: a server that does not know EHLO gets HELO.
            self._channel.send(b"HELO " + self._heloName() + b"\r\n")
            self._channel.expect(
                self._heloReply, self.factory.timeouts.command, "HELO reply"
            )
        else:
            self._transactions.refused(reply, "EHLO refused")

    def _heloReply(self, reply: SMTPReply) -> None:
        if reply.code != 250:
            self._transactions.refused(reply, "HELO refused")
            return
        self._useExtensions(Extensions())
        self._afterHello()

    def _useExtensions(self, extensions: Extensions) -> None:
        self._extensions = extensions
        self._transactions.useExtensions(extensions)

    def _afterHello(self) -> None:
        policy = self.factory.tls
        if self._tlsState == "none" and policy.startTLS != "never":
            if "STARTTLS" in self._extensions:
                self._channel.send(b"STARTTLS\r\n")
                self._channel.expect(
                    self._starttlsReply, self.factory.timeouts.command, "STARTTLS reply"
                )
                return
            if policy.startTLS == "required":
                self._transactions.failAll(
                    "TLS is required but the server does not offer STARTTLS"
                )
                return
        self._authenticate()

    def _starttlsReply(self, reply: SMTPReply) -> None:
        if reply.code != 220:
            if self.factory.tls.startTLS == "required":
                self._transactions.failAll(
                    f"TLS is required but STARTTLS was refused: {reply}"
                )
                return
            # RFC 3207 4: carry on without TLS, as the policy allows.
            self._tlsState = "refused"
            self._authenticate()
            return
        # RFC 3207 4.2: nothing the server sent before TLS may be used.
        self._channel.clearBuffer()
        self._tlsState = "handshake"
        self._channel.arm(self.factory.timeouts.tlsHandshake, "TLS handshake")
        ITLSTransport(self.transport).startTLS(self.factory.tls.connectionCreator())

    def _authenticate(self) -> None:
        factory = self.factory
        if factory.login is None:
            self._transactions.start()
            return
        if self._tlsState != "active":
            self._transactions.failAll(
                "will not send a password without TLS", permanent=True
            )
            return
        mechanism = factory.mechanism
        if mechanism not in self._extensions.authMechanisms:
            self._transactions.failAll(
                f"server does not offer AUTH {mechanism}", permanent=True
            )
            return
        self._log.info(
            "SMTP AUTH {mechanism} to {host}", mechanism=mechanism, host=factory.host
        )
        password = factory.password or ""
        timeout = factory.timeouts.command
        if mechanism == "PLAIN":
            token = _b64(f"\0{factory.login}\0{password}")
            self._channel.send(b"AUTH PLAIN " + token + b"\r\n")
            self._channel.expect(self._authReply, timeout, "AUTH reply")
            return
        login = _b64(factory.login)

        def passwordStep(reply: SMTPReply) -> None:
            if reply.code != 334:
                self._authReply(reply)
                return
            self._channel.send(_b64(password) + b"\r\n")
            self._channel.expect(self._authReply, timeout, "AUTH reply")

        def loginStep(reply: SMTPReply) -> None:
            if reply.code != 334:
                self._authReply(reply)
                return
            self._channel.send(login + b"\r\n")
            self._channel.expect(passwordStep, timeout, "AUTH challenge")

        self._channel.send(b"AUTH LOGIN\r\n")
        self._channel.expect(loginStep, timeout, "AUTH challenge")

    def _authReply(self, reply: SMTPReply) -> None:
        if reply.code != 235:
            self._transactions.refused(reply, "authentication failed")
            return
        self._transactions.start()


def _b64(text: str) -> bytes:
    return base64.b64encode(text.encode("utf-8"))


class ESMTPSenderFactory(ClientFactory):
    """
    Makes the L{ESMTPSender} of one connection and holds what it sends.

    @ivar deferred: fires, once the connection has closed, with one
        L{DeliveryResult} per transaction, in order.  Cancelling it stops
        the connection attempt, aborts the connection when there is one,
        and fails it with L{twisted.internet.defer.CancelledError}.
    @ivar host: the server's name, for results and logs.
    """

    protocol = ESMTPSender  # type: ignore[assignment]

    def __init__(
        self,
        reactor: IReactorTime,
        transactions: Sequence[Transaction],
        *,
        host: str = "",
        domain: str = "",
        heloName: str | None = None,
        tls: ClientTLSPolicy | None = None,
        login: str | None = None,
        password: str | None = None,
        mechanism: Literal["PLAIN", "LOGIN"] = "PLAIN",
        timeouts: SMTPTimeouts | None = None,
        maxReplyLines: int = 100,
    ) -> None:
        """
        @param reactor: the clock for timeouts.
        @param transactions: what to send, in order, on one connection.
        @param host: the server's name, reported in results.
        @param domain: the recipients' domain, reported in results.
        @param heloName: our name for EHLO; default the address literal of
            our end (RFC 5321 4.1.4).
        @param tls: the L{ClientTLSPolicy}; default opportunistic STARTTLS.
        @param login: the AUTH identity (RFC 4954), sent only over TLS.
        @param password: the password; never logged.
        @param mechanism: C{"PLAIN"} or C{"LOGIN"}.
        @param timeouts: L{SMTPTimeouts}; default those of RFC 5321
            4.5.3.2.
        @param maxReplyLines: the most lines one reply may have.
        @raise ValueError: an address has CR or LF or is not a mailbox, or
            a transaction has no recipient; nothing is sent then.
        """
        for transaction in transactions:
            checkAddress(transaction.sender, allowNull=True)
            if not transaction.recipients:
                raise ValueError("a transaction needs at least one recipient")
            for recipient in transaction.recipients:
                checkAddress(recipient)
        if heloName is not None and any(c in heloName for c in "\r\n "):
            raise ValueError("bad EHLO name")
        self.reactor = reactor
        self.transactions = tuple(transactions)
        self.host = host
        self.domain = domain
        self.heloName = heloName
        self.tls = tls if tls is not None else ClientTLSPolicy()
        self.login = login
        self.password = password
        self.mechanism = mechanism
        self.timeouts = timeouts if timeouts is not None else SMTPTimeouts()
        self.maxReplyLines = maxReplyLines
        self.deferred: Deferred[list[DeliveryResult]] = Deferred(self._cancel)
        self._results: list[DeliveryResult] = []
        self._connecting: Deferred[IProtocol] | None = None
        self._protocols: list[ESMTPSender] = []
        self._cancelled = False

    def _connected(self, protocol: ESMTPSender) -> bool:
        """
        Keep a connection's protocol, so that cancelling L{deferred} can
        close it.

        @return: whether L{deferred} was cancelled already, so the
            connection must close at once.
        """
        self._protocols.append(protocol)
        return self._cancelled

    def _cancel(self, deferred: Deferred[list[DeliveryResult]]) -> None:
        # Nothing is logged: cancelling is what the caller asked for, and
        # the results of the abandoned transactions are nobody's to read;
        # the flag keeps them from firing the Deferred before
        # CancelledError does.
        self._cancelled = True
        if self._connecting is not None:
            self._connecting.cancel()
        for protocol in self._protocols:
            protocol._cancel()

    def _finished(self) -> None:
        if not (self.deferred.called or self._cancelled):
            self.deferred.callback(list(self._results))

    def connectionFailed(self, address: str, port: int, reason: Failure) -> None:
        """
        Report every transaction failed because no connection was made.

        @param address: the address tried.
        @param port: the port tried.
        @param reason: why.
        """
        if self.deferred.called or self._cancelled:
            return
        error = f"connection failed: {reason.getErrorMessage()}"
        self.deferred.callback(
            [
                DeliveryResult(
                    host=self.host,
                    address=address,
                    port=port,
                    recipients=t.recipients,
                    error=error,
                    domain=self.domain,
                )
                for t in self.transactions
            ]
        )

    def deliverVia(
        self, endpoint: IStreamClientEndpoint, address: str = "", port: int = 0
    ) -> Deferred[list[DeliveryResult]]:
        """
        Connect with C{endpoint} and deliver.

        @param endpoint: any client endpoint (TCP, an implicit-TLS wrapper,
            a UNIX socket).
        @param address: the address it connects to, for the results when
            the connection fails.
        @param port: the port, likewise.
        @return: L{deferred}; it fires with results also when the
            connection cannot be made.
        """

        def failed(reason: Failure) -> None:
            self.connectionFailed(address, port, reason)

        connecting: Deferred[IProtocol] = endpoint.connect(self)
        connecting.addErrback(failed)
        if not connecting.called:
            self._connecting = connecting

            def connected(result: object) -> object:
                self._connecting = None
                return result

            connecting.addBoth(connected)
        return self.deferred
