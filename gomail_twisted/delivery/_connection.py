# -*- test-case-name: tests.test_delivery_client -*-
"""
The machinery under the ESMTP client's protocol: replies read from the
stream and handed, in order, to the handlers awaiting them (RFC 5321 4.2),
one timer for every wait (RFC 5321 4.5.3.2), and the recording of each
transaction's outcome.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

from twisted.internet.interfaces import IDelayedCall
from twisted.internet.protocol import Protocol, connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure

from gomail_twisted.delivery._tls import TLSFacts, describeTLSError
from gomail_twisted.delivery._values import (
    Attempt,
    DataProducer,
    DeliveryResult,
    Transaction,
)
from gomail_twisted.delivery._wire import (
    MAX_REPLY_LINE,
    Extensions,
    ReplyAssembler,
    SMTPProtocolError,
)
from gomail_twisted.smtpreply import SMTPReply

if TYPE_CHECKING:
    from gomail_twisted.delivery.client import ESMTPSenderFactory

#: What handles one awaited reply.
Handler = Callable[[SMTPReply], None]


class ClientConnection(Protocol):
    """
    The state of one client connection, its replies, timer and outcomes;
    L{gomail_twisted.delivery.client.ESMTPSender} builds the session on it.

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
        self._expected: deque[tuple[Handler, float, str]] = deque()
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

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        self._cancelTimer(now=True)
        if self._producer is not None:
            self._producer.stopProducing()
        if self._tlsState == "handshake":
            reasons = describeTLSError(reason, self.transport)
            error = f"TLS handshake failed: {reasons}"
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

    def _expect(self, handler: Handler, timeout: float, what: str) -> None:
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
