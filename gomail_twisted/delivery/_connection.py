# -*- test-case-name: tests.test_delivery_client -*-
"""
The ESMTP client's reply channel: replies read from the stream and handed,
in order, to the handlers awaiting them (RFC 5321 4.2), one timer for every
wait (RFC 5321 4.5.3.2), and the writes and closes of the connection.

The channel knows nothing of sessions or transactions: whoever sends a
command says which handler takes its reply with L{ReplyChannel.expect}.
When the server breaks the protocol or a wait times out, the channel tells
its owner (C{onError}) and aborts the connection.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

from gomail_twisted.delivery._wire import (
    MAX_REPLY_LINE,
    ReplyAssembler,
    SMTPProtocolError,
    SMTPTimeouts,
)
from gomail_twisted.smtpreply import SMTPReply

#: What handles one awaited reply.
Handler = Callable[[SMTPReply], None]


class ReplyChannel:
    """
    One client connection's replies, timer and writes.

    @ivar transport: the connection's transport.
    @ivar closing: whether QUIT was sent or the connection aborted; replies
        that nothing awaits are then ignored.
    """

    _log = Logger()

    def __init__(
        self,
        transport: Any,
        reactor: IReactorTime,
        timeouts: SMTPTimeouts,
        onError: Callable[[str], None],
        host: str = "",
        maxReplyLines: int = 100,
    ) -> None:
        """
        @param transport: the connection's transport.
        @param reactor: the clock for timeouts.
        @param timeouts: the client's timeouts; the QUIT reply waits for
            C{command}.
        @param onError: called with a description when the server breaks
            the protocol or a wait times out, just before the connection is
            aborted.
        @param host: the server's name, for logs.
        @param maxReplyLines: the most lines one reply may have.
        """
        self.transport = transport
        self.closing = False
        self._reactor = reactor
        self._quitTimeout = timeouts.command
        self._onError = onError
        self._host = host
        self._assembler = ReplyAssembler(maxReplyLines)
        self._buffer = b""
        self._bufferEpoch = 0
        self._expected: deque[tuple[Handler, float, str]] = deque()
        self._timer: IDelayedCall | None = None
        self._deadline: float | None = None
        self._waitingFor: tuple[float, str] = (0.0, "")

    @property
    def expecting(self) -> bool:
        """
        Whether a reply is awaited.
        """
        return bool(self._expected)

    # Replies.

    def dataReceived(self, data: bytes) -> None:
        """
        Assemble replies from what the server sent and hand each to its
        handler.

        @param data: bytes from the connection.
        """
        if self._buffer:
            data = self._buffer + data
        lines = data.split(b"\r\n")
        self._buffer = lines.pop()
        epoch = self._bufferEpoch
        assembler = self._assembler
        for line in lines:
            if epoch != self._bufferEpoch or (self.closing and not self._expected):
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

    def clearBuffer(self) -> None:
        """
        Forget what the server sent and was not read yet, including what is
        still being split in L{dataReceived}: RFC 3207 4.2, nothing the
        server sent before TLS may be used.
        """
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
            self.arm(timeout, what)
        else:
            self._deadline = None
        handler(reply)

    def _protocolError(self, error: str) -> None:
        if self.closing and not self._expected:
            return
        self._log.info(
            "SMTP protocol error from {host}: {error}", host=self._host, error=error
        )
        self._onError(f"protocol error: {error}")
        self.abort()

    # Timers.

    def expect(self, handler: Handler, timeout: float, what: str) -> None:
        """
        Await one more reply, after those already awaited (RFC 2920 3.1:
        replies come in the order of the commands).

        @param handler: takes the reply.
        @param timeout: seconds to wait for it once it is the next reply.
        @param what: what is awaited, for the timeout's error.
        """
        self._expected.append((handler, timeout, what))
        if len(self._expected) == 1:
            self.arm(timeout, what)

    def arm(self, timeout: float, what: str) -> None:
        """
        Set the deadline of the current wait to C{timeout} seconds from now.

        @param timeout: seconds.
        @param what: what is awaited, for the timeout's error.
        """
        # One delayed call serves every wait: moving the deadline later
        # costs no reactor call, and the call re-checks when it fires.
        reactor = self._reactor
        self._deadline = reactor.seconds() + timeout
        self._waitingFor = (timeout, what)
        timer = self._timer
        if timer is None:
            self._timer = reactor.callLater(timeout, self._checkDeadline)
        elif timer.getTime() > self._deadline:
            timer.reset(timeout)

    def cancelTimer(self, now: bool = False) -> None:
        """
        Stop waiting.

        @param now: also cancel the delayed call, rather than letting it
            find no deadline when it fires.
        """
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
        remaining = self._deadline - self._reactor.seconds()
        if remaining > 0:
            self._timer = self._reactor.callLater(remaining, self._checkDeadline)
            return
        timeout, what = self._waitingFor
        self._onError(f"timed out after {timeout:g}s waiting for {what}")
        self.abort()

    # Sending.

    def send(self, data: bytes) -> None:
        """
        Write to the connection.

        @param data: commands or message content.
        """
        if self.transport is not None:
            self.transport.write(data)

    def sendSequence(self, parts: Sequence[bytes]) -> None:
        """
        Write several pieces in one go.

        @param parts: commands or message content.
        """
        if self.transport is not None:
            self.transport.writeSequence(parts)

    def abort(self) -> None:
        """
        Close the connection at once, awaiting nothing more.
        """
        self.closing = True
        self._expected.clear()
        self.cancelTimer()
        if self.transport is not None:
            self.transport.abortConnection()

    def quit(self) -> None:
        """
        Send QUIT, unless the connection is closing already.
        """
        if not self.closing:
            self.send(self.quitCommand())

    def quitCommand(self) -> bytes:
        """
        Await the reply to QUIT, for the caller to send it with other data.

        @return: the command.
        """
        self.closing = True
        self.expect(self._close, self._quitTimeout, "QUIT reply")
        return b"QUIT\r\n"

    def _close(self, reply: SMTPReply | None = None) -> None:
        self.cancelTimer()
        if self.transport is not None:
            self.transport.loseConnection()


__all__ = ["Handler", "ReplyChannel"]
