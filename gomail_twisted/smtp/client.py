# -*- test-case-name: tests.test_smtp_client -*-
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
from collections import deque
from collections.abc import Callable, Sequence
from typing import Literal

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import (
    IDelayedCall,
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

from gomail_twisted.smtp._clienttls import (
    ClientTLSPolicy,
    TLSFacts,
    describeTLSError,
)
from gomail_twisted.smtp._clientvalues import (
    DATA_BLOCK,
    Attempt,
    DataProducer,
    DeliveryResult,
    Transaction,
)
from gomail_twisted.smtp._clientwire import (
    MAX_REPLY_LINE,
    Extensions,
    ReplyAssembler,
    SMTPProtocolError,
    SMTPTimeouts,
    checkAddress,
    dotStuff,
    needsSMTPUTF8,
    wireAddress,
)
from gomail_twisted.smtp._reply import SMTPReply

__all__ = [
    "ClientTLSPolicy",
    "DeliveryResult",
    "ESMTPSender",
    "ESMTPSenderFactory",
    "SMTPTimeouts",
    "TLSFacts",
    "Transaction",
]

_Handler = Callable[[SMTPReply], None]


@implementer(IHandshakeListener)
class ESMTPSender(Protocol):
    """
    One client connection: greeting, EHLO (HELO when refused), STARTTLS,
    AUTH, then the factory's transactions, then QUIT.

    With PIPELINING (RFC 2920 3.1) each transaction's MAIL, RCPT and DATA
    go in one write, and a message's content goes in the same write as the
    next transaction's commands (or QUIT): one write and one read per
    message.

    @ivar factory: the factory, holding the transactions and settings.
    @ivar _expected: the replies awaited, oldest first: handler, timeout,
        and what the reply answers.
    @ivar _attempt: the transaction whose MAIL, RCPT and DATA replies are
        awaited, if any.
    @ivar _sentAttempt: the transaction whose content is sent and whose
        final reply is awaited, if any.
    @ivar _tlsState: C{"none"}, C{"handshake"}, C{"active"} or
        C{"refused"}.
    """

    factory: ESMTPSenderFactory
    _log = Logger()

    def __init__(self) -> None:
        self._buffer = b""
        self._bufferEpoch = 0
        self._assembler: ReplyAssembler | None = None
        self._expected: deque[tuple[_Handler, float, str]] = deque()
        self._timer: IDelayedCall | None = None
        self._deadline: float | None = None
        self._waitingFor: tuple[float, str] = (0.0, "")
        self._extensions = Extensions()
        self._maxSize: int | None = None
        self._declareSize = False
        self._eightBit = False
        self._smtputf8 = False
        self._tls: TLSFacts | None = None
        self._tlsState: Literal["none", "handshake", "active", "refused"] = "none"
        self._queue: deque[Transaction] = deque()
        self._attempt: Attempt | None = None
        self._sentAttempt: Attempt | None = None
        self._pipelined = False
        self._rcptLines: list[bytes] = []
        self._producer: DataProducer | None = None
        self._closing = False
        self._peer: tuple[str, int] = ("", 0)

    # Connection life.

    def connectionMade(self) -> None:
        assert self.transport is not None
        peer = self.transport.getPeer()
        self._peer = (str(getattr(peer, "host", "")), int(getattr(peer, "port", 0)))
        self._assembler = ReplyAssembler(self.factory.maxReplyLines)
        self._queue = deque(self.factory.transactions)
        if ISSLTransport.providedBy(self.transport):
            # Implicit TLS (RFC 8314 3.3): the greeting follows the handshake.
            self._tlsState = "handshake"
        self._expect(self._greeted, self.factory.timeouts.greeting, "greeting")

    def handshakeCompleted(self) -> None:
        """
        TLS is up: check the certificate as the policy asks, then (after
        STARTTLS) say EHLO again (RFC 3207 4.2).
        """
        starttls = self._tlsState == "handshake" and not self._expected
        self._tlsState = "active"
        self._tls, error = self.factory.tls.inspect(self.transport)
        if self._tls is not None:
            self._log.debug(
                "SMTP TLS to {host}: {version} {cipher}, name {name} matched {matched}",
                host=self.factory.host,
                version=self._tls.version,
                cipher=self._tls.cipher,
                name=self._tls.serverName,
                matched=self._tls.nameMatched,
            )
        if error is not None:
            self._failAll(f"TLS: {error}", permanent=False, quit=True)
            return
        if starttls:
            self._hello()

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._cancelTimer(now=True)
        if self._producer is not None:
            self._producer.stopProducing()
        if self._tlsState == "handshake":
            error = f"TLS handshake failed: {describeTLSError(reason)}"
        else:
            error = f"connection lost: {reason.getErrorMessage()}"
        self._failAll(error, permanent=False, quit=False)
        self.factory._finished()

    # Replies.

    def dataReceived(self, data: bytes) -> None:
        if self._buffer:
            data = self._buffer + data
        lines = data.split(b"\r\n")
        self._buffer = lines.pop()
        epoch = self._bufferEpoch
        assembler = self._assembler
        assert assembler is not None
        for line in lines:
            if epoch != self._bufferEpoch or (self._closing and not self._expected):
                return
            try:
                reply = assembler.feed(line)
            except SMTPProtocolError as e:
                self._protocolError(str(e))
                return
            if reply is not None:
                self._replyReceived(reply)
        if len(self._buffer) + 2 > MAX_REPLY_LINE and epoch == self._bufferEpoch:
            self._buffer = b""
            self._protocolError(f"reply line over {MAX_REPLY_LINE} octets")

    def _clearBuffer(self) -> None:
        # RFC 3207 4.2: nothing the server sent before TLS may be used.
        self._buffer = b""
        self._bufferEpoch += 1

    def _replyReceived(self, reply: SMTPReply) -> None:
        expected = self._expected
        if not expected:
            self._protocolError(f"unexpected reply {reply}")
            return
        handler = expected.popleft()[0]
        if expected:
            _, timeout, what = expected[0]
            self._arm(timeout, what)
        else:
            self._deadline = None
        handler(reply)

    def _protocolError(self, error: str) -> None:
        if self._closing and not self._expected:
            return
        self._log.info(
            "SMTP protocol error from {host}: {error}",
            host=self.factory.host,
            error=error,
        )
        self._failAll(f"protocol error: {error}", permanent=False, quit=False)
        self._abort()

    # Timers.

    def _expect(self, handler: _Handler, timeout: float, what: str) -> None:
        self._expected.append((handler, timeout, what))
        if len(self._expected) == 1:
            self._arm(timeout, what)

    def _arm(self, timeout: float, what: str) -> None:
        # One delayed call serves every wait: moving the deadline later
        # costs no reactor call, and the call re-checks when it fires.
        reactor = self.factory.reactor
        self._deadline = reactor.seconds() + timeout
        self._waitingFor = (timeout, what)
        timer = self._timer
        if timer is None:
            self._timer = reactor.callLater(timeout, self._checkDeadline)
        elif timer.getTime() > self._deadline:
            timer.reset(timeout)

    def _cancelTimer(self, now: bool = False) -> None:
        self._deadline = None
        timer = self._timer
        if now and timer is not None:
            self._timer = None
            if timer.active():
                timer.cancel()

    def _checkDeadline(self) -> None:
        self._timer = None
        if self._deadline is None:
            return
        remaining = self._deadline - self.factory.reactor.seconds()
        if remaining > 0:
            self._timer = self.factory.reactor.callLater(remaining, self._checkDeadline)
            return
        timeout, what = self._waitingFor
        self._failAll(
            f"timed out after {timeout:g}s waiting for {what}",
            permanent=False,
            quit=False,
        )
        self._abort()

    # Sending.

    def _send(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.write(data)

    def _abort(self) -> None:
        self._closing = True
        self._expected.clear()
        self._cancelTimer()
        if self.transport is not None:
            self.transport.abortConnection()  # type: ignore[attr-defined]

    def _quit(self) -> None:
        if not self._closing:
            self._send(self._quitCommand())

    def _quitCommand(self) -> bytes:
        self._closing = True
        self._expect(self._close, self.factory.timeouts.command, "QUIT reply")
        return b"QUIT\r\n"

    def _close(self, reply: SMTPReply | None = None) -> None:
        self._cancelTimer()
        if self.transport is not None:
            self.transport.loseConnection()

    def _finish(
        self,
        attempt: Attempt,
        reply: SMTPReply | None,
        error: str | None,
        permanent: bool = False,
    ) -> None:
        """
        Record the outcome of one transaction.
        """
        t = attempt.transaction
        self.factory._results.append(
            DeliveryResult(
                host=self.factory.host,
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
                domain=self.factory.domain,
            )
        )
        if self._attempt is attempt:
            self._attempt = None
        elif self._sentAttempt is attempt:
            self._sentAttempt = None

    def _failAll(
        self,
        error: str,
        reply: SMTPReply | None = None,
        permanent: bool = False,
        quit: bool = True,
    ) -> None:
        """
        End every transaction not yet ended with the same failure.
        """
        attempts = [a for a in (self._sentAttempt, self._attempt) if a is not None]
        attempts.extend(Attempt(t) for t in self._queue)
        self._queue.clear()
        for attempt in attempts:
            self._finish(attempt, reply, error, permanent)
        if quit:
            self._quit()

    def _refused(self, reply: SMTPReply, what: str) -> None:
        self._failAll(f"{what}: {reply}", reply, reply.code >= 500)

    # The session.

    def _greeted(self, reply: SMTPReply) -> None:
        if reply.code != 220:
            self._refused(reply, "greeting refused")
            return
        self._hello()

    def _hello(self) -> None:
        self._send(b"EHLO " + self._heloName() + b"\r\n")
        self._expect(self._ehloReply, self.factory.timeouts.command, "EHLO reply")

    def _heloName(self) -> bytes:
        name = self.factory.heloName
        if name is None:
            assert self.transport is not None
            host = str(getattr(self.transport.getHost(), "host", "127.0.0.1"))
            name = f"[IPv6:{host}]" if ":" in host else f"[{host}]"
        return name.encode("idna") if not name.startswith("[") else name.encode()

    def _ehloReply(self, reply: SMTPReply) -> None:
        if reply.code == 250:
            self._setExtensions(Extensions.fromReply(reply))
            self._afterHello()
        elif reply.code >= 500:
            # RFC 5321 4.1.4: a server that does not know EHLO gets HELO.
            self._send(b"HELO " + self._heloName() + b"\r\n")
            self._expect(self._heloReply, self.factory.timeouts.command, "HELO reply")
        else:
            self._refused(reply, "EHLO refused")

    def _heloReply(self, reply: SMTPReply) -> None:
        if reply.code != 250:
            self._refused(reply, "HELO refused")
            return
        self._setExtensions(Extensions())
        self._afterHello()

    def _setExtensions(self, extensions: Extensions) -> None:
        # Looked up once here rather than for every transaction.
        self._extensions = extensions
        self._pipelined = "PIPELINING" in extensions
        self._maxSize = extensions.maxSize
        self._declareSize = "SIZE" in extensions
        self._eightBit = "8BITMIME" in extensions
        self._smtputf8 = "SMTPUTF8" in extensions

    def _afterHello(self) -> None:
        policy = self.factory.tls
        if self._tlsState == "none" and policy.startTLS != "never":
            if "STARTTLS" in self._extensions:
                self._send(b"STARTTLS\r\n")
                self._expect(
                    self._starttlsReply, self.factory.timeouts.command, "STARTTLS reply"
                )
                return
            if policy.startTLS == "required":
                self._failAll("TLS is required but the server does not offer STARTTLS")
                return
        self._authenticate()

    def _starttlsReply(self, reply: SMTPReply) -> None:
        if reply.code != 220:
            if self.factory.tls.startTLS == "required":
                self._failAll(f"TLS is required but STARTTLS was refused: {reply}")
                return
            # RFC 3207 4: carry on without TLS, as the policy allows.
            self._tlsState = "refused"
            self._authenticate()
            return
        # RFC 3207 4.2: nothing the server sent before TLS may be used.
        self._clearBuffer()
        self._tlsState = "handshake"
        self._arm(self.factory.timeouts.tlsHandshake, "TLS handshake")
        ITLSTransport(self.transport).startTLS(self.factory.tls.connectionCreator())

    def _authenticate(self) -> None:
        factory = self.factory
        if factory.login is None:
            self._nextTransaction()
            return
        if self._tlsState != "active":
            self._failAll("will not send a password without TLS", permanent=True)
            return
        mechanism = factory.mechanism
        if mechanism not in self._extensions.authMechanisms:
            self._failAll(f"server does not offer AUTH {mechanism}", permanent=True)
            return
        self._log.info(
            "SMTP AUTH {mechanism} to {host}", mechanism=mechanism, host=factory.host
        )
        password = factory.password or ""
        timeout = factory.timeouts.command
        if mechanism == "PLAIN":
            token = _b64(f"\0{factory.login}\0{password}")
            self._send(b"AUTH PLAIN " + token + b"\r\n")
            self._expect(self._authReply, timeout, "AUTH reply")
            return
        login = _b64(factory.login)

        def passwordStep(reply: SMTPReply) -> None:
            if reply.code != 334:
                self._authReply(reply)
                return
            self._send(_b64(password) + b"\r\n")
            self._expect(self._authReply, timeout, "AUTH reply")

        def loginStep(reply: SMTPReply) -> None:
            if reply.code != 334:
                self._authReply(reply)
                return
            self._send(login + b"\r\n")
            self._expect(passwordStep, timeout, "AUTH challenge")

        self._send(b"AUTH LOGIN\r\n")
        self._expect(loginStep, timeout, "AUTH challenge")

    def _authReply(self, reply: SMTPReply) -> None:
        if reply.code != 235:
            self._refused(reply, "authentication failed")
            return
        self._nextTransaction()

    # Transactions.

    def _nextTransaction(self) -> None:
        while self._queue:
            transaction = self._queue.popleft()
            commands = self._commands(transaction)
            if isinstance(commands, str):
                self._finish(Attempt(transaction), None, commands, permanent=True)
                continue
            self._send(self._begin(transaction, commands))
            return
        self._quit()

    def _commands(self, transaction: Transaction) -> list[bytes] | str:
        """
        The MAIL and RCPT commands of a transaction, with the parameters the
        server's extensions call for.

        @return: the commands, or why the transaction cannot be sent to
            this server at all (a permanent failure).
        """
        message = transaction.message
        size = len(message)
        maxSize = self._maxSize
        if maxSize is not None and size > maxSize:
            return f"message of {size} octets exceeds the server's SIZE {maxSize}"
        sender = wireAddress(transaction.sender)
        recipients = [wireAddress(a) for a in transaction.recipients]
        utf8 = [a for a in (sender, *recipients) if needsSMTPUTF8(a)]
        if utf8 and not self._smtputf8:
            return f"server does not support SMTPUTF8 (RFC 6531), needed for {utf8[0]}"
        mail = b"MAIL FROM:<" + sender.encode() + b">"
        if self._declareSize:
            mail += b" SIZE=%d" % size
        if self._eightBit and not message.isascii():
            mail += b" BODY=8BITMIME"
        if self._smtputf8 and (utf8 or not _headerBlock(transaction).isascii()):
            mail += b" SMTPUTF8"
        return [mail, *[b"RCPT TO:<" + a.encode() + b">" for a in recipients]]

    def _begin(self, transaction: Transaction, commands: list[bytes]) -> bytes:
        """
        Make C{transaction} the current attempt and await its replies.

        @param commands: its MAIL and RCPT commands, from L{_commands}.
        @return: what to write: MAIL, every RCPT and DATA with PIPELINING
            (RFC 2920 3.1), else MAIL alone.
        """
        self._attempt = Attempt(transaction)
        timeouts = self.factory.timeouts
        self._expect(self._mailReply, timeouts.mail, "MAIL reply")
        if not self._pipelined:
            self._rcptLines = commands[1:]
            return commands[0] + b"\r\n"
        for _ in range(len(commands) - 1):
            self._expect(self._rcptReply, timeouts.rcpt, "RCPT reply")
        self._expect(self._dataReply, timeouts.dataInit, "DATA reply")
        commands.append(b"DATA\r\n")
        return b"\r\n".join(commands)

    def _mailReply(self, reply: SMTPReply) -> None:
        attempt = self._attempt
        assert attempt is not None
        if reply.code // 100 != 2:
            attempt.mailRefusal = reply
            if not self._pipelined:
                self._endTransaction(attempt, reply, "sender refused", reset=False)
            return
        if not self._pipelined:
            self._sendRcpt(0)

    def _sendRcpt(self, index: int) -> None:
        self._send(self._rcptLines[index] + b"\r\n")
        self._expect(self._rcptReply, self.factory.timeouts.rcpt, "RCPT reply")

    def _rcptReply(self, reply: SMTPReply) -> None:
        attempt = self._attempt
        assert attempt is not None
        recipients = attempt.transaction.recipients
        index = len(attempt.accepted) + len(attempt.refused)
        if reply.code // 100 == 2:
            attempt.accepted.append(recipients[index])
        else:
            attempt.refused.append((recipients[index], reply))
        if self._pipelined:
            return
        if index + 1 < len(recipients):
            self._sendRcpt(index + 1)
        elif attempt.accepted:
            self._send(b"DATA\r\n")
            self._expect(self._dataReply, self.factory.timeouts.dataInit, "DATA reply")
        else:
            self._noRecipients(attempt)

    def _noRecipients(self, attempt: Attempt) -> None:
        replies = [r for _, r in attempt.refused]
        last = replies[-1] if replies else None
        permanent = all(r.code >= 500 for r in replies)
        self._endTransaction(
            attempt, last, "all recipients refused", permanent=permanent
        )

    def _ignoreReply(self, reply: SMTPReply) -> None:
        pass

    def _dataReply(self, reply: SMTPReply) -> None:
        attempt = self._attempt
        assert attempt is not None
        if reply.code != 354:
            if attempt.mailRefusal is not None:
                self._endTransaction(attempt, attempt.mailRefusal, "sender refused")
            elif not attempt.accepted:
                self._noRecipients(attempt)
            else:
                self._endTransaction(attempt, reply, "DATA refused")
            return
        timeouts = self.factory.timeouts
        if not attempt.accepted or attempt.mailRefusal is not None:
            # RFC 2920 3.1: DATA was taken though no recipient was; end it
            # with an empty message the server will not deliver.
            self._send(b".\r\n")
            self._expect(self._ignoreReply, timeouts.dataEnd, "end of data")
            if attempt.mailRefusal is not None:
                self._endTransaction(attempt, attempt.mailRefusal, "sender refused")
            else:
                self._noRecipients(attempt)
            return
        self._attempt = None
        self._sentAttempt = attempt
        data = dotStuff(attempt.transaction.message)
        self._expect(self._finalReply, timeouts.dataEnd, "reply to end of data")
        if len(data) > DATA_BLOCK:
            self._arm(timeouts.dataBlock, "sending data")
            producer = self._producer = DataProducer(
                self.transport,
                data,
                lambda: self._arm(timeouts.dataBlock, "sending data"),
                self._dataSent,
            )
            producer.start()
            return
        if not self._pipelined:
            self._send(data)
            return
        # RFC 2920 3.1: the content may open the next group of commands,
        # so the next transaction (or QUIT) goes in the same write.
        after = b""
        if not self._queue:
            after = self._quitCommand()
        else:
            commands = self._commands(self._queue[0])
            if not isinstance(commands, str):
                after = self._begin(self._queue.popleft(), commands)
        assert self.transport is not None
        self.transport.writeSequence([data, after])

    def _dataSent(self) -> None:
        self._producer = None
        self._arm(self.factory.timeouts.dataEnd, "reply to end of data")

    def _finalReply(self, reply: SMTPReply) -> None:
        attempt = self._sentAttempt
        assert attempt is not None
        if self._producer is not None and self._producer.active:
            # The server answered before the data was all sent: the
            # stream is out of step, so end the connection.
            self._producer.stopProducing()
            self._finish(
                attempt,
                reply,
                f"message refused during DATA: {reply}",
                reply.code >= 500,
            )
            self._abort()
            return
        if reply.code // 100 == 2:
            self._finish(attempt, reply, None)
        else:
            self._finish(attempt, reply, f"message refused: {reply}", reply.code >= 500)
        if self._attempt is None and not self._closing:
            self._nextTransaction()

    def _endTransaction(
        self,
        attempt: Attempt,
        reply: SMTPReply | None,
        what: str,
        permanent: bool | None = None,
        reset: bool = True,
    ) -> None:
        """
        Record a failed transaction and go on with the next, after RSET
        (RFC 5321 4.1.1.5) when a transaction may still be open.
        """
        if permanent is None:
            permanent = reply is not None and reply.code >= 500
        error = f"{what}: {reply}" if reply is not None else what
        self._finish(attempt, reply, error, permanent)
        if reset and self._queue and not self._closing:
            self._send(b"RSET\r\n")
            self._expect(self._resetReply, self.factory.timeouts.command, "RSET reply")
            return
        if not self._closing:
            self._nextTransaction()

    def _resetReply(self, reply: SMTPReply) -> None:
        if reply.code // 100 != 2:
            self._refused(reply, "RSET refused")
            return
        self._nextTransaction()


def _b64(text: str) -> bytes:
    return base64.b64encode(text.encode("utf-8"))


def _headerBlock(transaction: Transaction) -> bytes:
    end = transaction.message.find(b"\r\n\r\n")
    return transaction.message if end == -1 else transaction.message[:end]


class ESMTPSenderFactory(ClientFactory):
    """
    Makes the L{ESMTPSender} of one connection and holds what it sends.

    @ivar deferred: fires, once the connection has closed, with one
        L{DeliveryResult} per transaction, in order.
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
        self.deferred: Deferred[list[DeliveryResult]] = Deferred()
        self._results: list[DeliveryResult] = []

    def _finished(self) -> None:
        if not self.deferred.called:
            self.deferred.callback(list(self._results))

    def connectionFailed(self, address: str, port: int, reason: Failure) -> None:
        """
        Report every transaction failed because no connection was made.

        @param address: the address tried.
        @param port: the port tried.
        @param reason: why.
        """
        if self.deferred.called:
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
        return self.deferred
