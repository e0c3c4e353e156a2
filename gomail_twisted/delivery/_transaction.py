# -*- test-case-name: tests.test_delivery_client -*-
"""
The ESMTP client's mail transactions (RFC 5321 3.3): MAIL, RCPT and DATA,
pipelined when the server offers PIPELINING (RFC 2920), the parameters of
SIZE (RFC 1870), 8BITMIME (RFC 6152) and SMTPUTF8 (RFC 6531), the message
content, and RSET (RFC 5321 4.1.1.5) after a failed transaction.

L{TransactionSender} works over any L{Channel} (in the client, a
L{gomail_twisted.delivery._connection.ReplyChannel}) and reports how each
transaction ended through a L{Report} callback; it knows nothing of the
session (greeting, EHLO, STARTTLS, AUTH) that came before.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from gomail_twisted.delivery._values import (
    DATA_BLOCK,
    Attempt,
    DataProducer,
    Transaction,
)
from gomail_twisted.delivery._wire import (
    Extensions,
    SMTPTimeouts,
    dotStuff,
    needsSMTPUTF8,
    wireAddress,
)
from gomail_twisted.smtpreply import SMTPReply


class Channel(Protocol):
    """
    What the transactions need of the connection: write, await replies in
    order, and close (L{gomail_twisted.delivery._connection.ReplyChannel}).

    @ivar transport: the transport, the consumer of large messages.
    @ivar closing: whether QUIT was sent or the connection aborted.
    """

    transport: Any
    closing: bool

    def send(self, data: bytes) -> None:
        """
        Write C{data}.
        """

    def sendSequence(self, parts: Sequence[bytes]) -> None:
        """
        Write C{parts} in one go.
        """

    def expect(
        self, handler: Callable[[SMTPReply], None], timeout: float, what: str
    ) -> None:
        """
        Await one more reply, for C{handler}, within C{timeout} seconds.
        """

    def arm(self, timeout: float, what: str) -> None:
        """
        Set the current wait's deadline to C{timeout} seconds from now.
        """

    def abort(self) -> None:
        """
        Close the connection at once.
        """

    def quit(self) -> None:
        """
        Send QUIT unless closing already.
        """

    def quitCommand(self) -> bytes:
        """
        Await the reply to QUIT and return the command, to send with more.
        """


#: Records how one transaction ended: the attempt, the reply that decided
#: it (if any), the error (L{None} when delivered) and whether the failure
#: is permanent.
Report = Callable[[Attempt, SMTPReply | None, str | None, bool], None]


class TransactionSender:
    """
    Send transactions, one after the other, on a connection whose session
    (greeting, EHLO, STARTTLS, AUTH) is established, and report how each
    ended.

    With PIPELINING (RFC 2920 3.1) each transaction's MAIL, RCPT and DATA
    go in one write, and a message's content goes in the same write as the
    next transaction's commands (or QUIT): one write and one read per
    message.
    """

    def __init__(
        self,
        channel: Channel,
        transactions: Iterable[Transaction],
        timeouts: SMTPTimeouts,
        report: Report,
    ) -> None:
        """
        @param channel: the connection.
        @param transactions: what to send, in order.
        @param timeouts: how long to wait for each reply.
        @param report: called once for every transaction as it ends.
        """
        self._channel = channel
        self._queue: deque[Transaction] = deque(transactions)
        self._timeouts = timeouts
        self._report = report
        self._attempt: Attempt | None = None
        self._sentAttempt: Attempt | None = None
        self._pipelined = False
        self._maxSize: int | None = None
        self._declareSize = False
        self._eightBit = False
        self._smtputf8 = False
        self._rcptLines: list[bytes] = []
        self._producer: DataProducer | None = None

    def useExtensions(self, extensions: Extensions) -> None:
        """
        Use what the server said it offers in its EHLO reply (none after
        HELO): PIPELINING, SIZE, 8BITMIME, SMTPUTF8.

        @param extensions: the server's extensions.
        """
        # Looked up once here rather than for every transaction.
        self._pipelined = "PIPELINING" in extensions
        self._maxSize = extensions.maxSize
        self._declareSize = "SIZE" in extensions
        self._eightBit = "8BITMIME" in extensions
        self._smtputf8 = "SMTPUTF8" in extensions

    def start(self) -> None:
        """
        Send the first transaction (or QUIT when there is none).
        """
        self._nextTransaction()

    def _nextTransaction(self) -> None:
        while self._queue:
            transaction = self._queue.popleft()
            commands = self._commands(transaction)
            if isinstance(commands, str):
                self._finish(Attempt(transaction), None, commands, permanent=True)
                continue
            self._channel.send(self._begin(transaction, commands))
            return
        self._channel.quit()

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
        eightBit = not message.isascii()
        utf8Headers = eightBit and not _headerBlock(transaction).isascii()
        if utf8Headers and not self._smtputf8:
            # RFC 6531 3.2: UTF-8 header fields go only to SMTPUTF8 servers.
            return (
                "server does not support SMTPUTF8 (RFC 6531), needed for the "
                "message's UTF-8 header fields"
            )
        if eightBit and not self._eightBit and not self._smtputf8:
            return "server does not support 8BITMIME (RFC 6152), needed for 8-bit data"
        mail = b"MAIL FROM:<" + sender.encode() + b">"
        if self._declareSize:
            mail += b" SIZE=%d" % size
        if eightBit and self._eightBit:
            mail += b" BODY=8BITMIME"
        if self._smtputf8 and (utf8 or utf8Headers):
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
        timeouts = self._timeouts
        expect = self._channel.expect
        expect(self._mailReply, timeouts.mail, "MAIL reply")
        if not self._pipelined:
            self._rcptLines = commands[1:]
            return commands[0] + b"\r\n"
        for _ in range(len(commands) - 1):
            expect(self._rcptReply, timeouts.rcpt, "RCPT reply")
        expect(self._dataReply, timeouts.dataInit, "DATA reply")
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
        self._channel.send(self._rcptLines[index] + b"\r\n")
        self._channel.expect(self._rcptReply, self._timeouts.rcpt, "RCPT reply")

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
            self._channel.send(b"DATA\r\n")
            self._channel.expect(self._dataReply, self._timeouts.dataInit, "DATA reply")
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
        timeouts = self._timeouts
        if not attempt.accepted or attempt.mailRefusal is not None:
            # RFC 2920 3.1: DATA was taken though no recipient was; end it
            # with an empty message the server will not deliver.
            self._channel.send(b".\r\n")
            self._channel.expect(self._ignoreReply, timeouts.dataEnd, "end of data")
            if attempt.mailRefusal is not None:
                self._endTransaction(attempt, attempt.mailRefusal, "sender refused")
            else:
                self._noRecipients(attempt)
            return
        self._attempt = None
        self._sentAttempt = attempt
        data = dotStuff(attempt.transaction.message)
        self._channel.expect(self._finalReply, timeouts.dataEnd, "reply to end of data")
        if len(data) > DATA_BLOCK:
            self._channel.arm(timeouts.dataBlock, "sending data")
            producer = self._producer = DataProducer(
                self._channel.transport,
                data,
                lambda: self._channel.arm(timeouts.dataBlock, "sending data"),
                self._dataSent,
            )
            producer.start()
            return
        if not self._pipelined:
            self._channel.send(data)
            return
        # RFC 2920 3.1: the content may open the next group of commands,
        # so the next transaction (or QUIT) goes in the same write.
        after = b""
        if not self._queue:
            after = self._channel.quitCommand()
        else:
            commands = self._commands(self._queue[0])
            if not isinstance(commands, str):
                after = self._begin(self._queue.popleft(), commands)
        self._channel.sendSequence([data, after])

    def _dataSent(self) -> None:
        self._producer = None
        self._channel.arm(self._timeouts.dataEnd, "reply to end of data")

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
            self._channel.abort()
            return
        if reply.code // 100 == 2:
            self._finish(attempt, reply, None)
        else:
            self._finish(attempt, reply, f"message refused: {reply}", reply.code >= 500)
        if self._attempt is None and not self._channel.closing:
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
        if reset and self._queue and not self._channel.closing:
            self._channel.send(b"RSET\r\n")
            self._channel.expect(self._resetReply, self._timeouts.command, "RSET reply")
            return
        if not self._channel.closing:
            self._nextTransaction()

    def _resetReply(self, reply: SMTPReply) -> None:
        if reply.code // 100 != 2:
            self.refused(reply, "RSET refused")
            return
        self._nextTransaction()

    # Outcomes.

    def stopProducing(self) -> None:
        """
        Stop writing a large message, as the connection is gone.
        """
        if self._producer is not None:
            self._producer.stopProducing()

    def _finish(
        self,
        attempt: Attempt,
        reply: SMTPReply | None,
        error: str | None,
        permanent: bool = False,
    ) -> None:
        """
        Report the outcome of one transaction.
        """
        self._report(attempt, reply, error, permanent)
        if self._attempt is attempt:
            self._attempt = None
        elif self._sentAttempt is attempt:
            self._sentAttempt = None

    def failAll(
        self,
        error: str,
        reply: SMTPReply | None = None,
        permanent: bool = False,
        quit: bool = True,
    ) -> None:
        """
        End every transaction not yet ended with the same failure.

        @param error: what went wrong.
        @param reply: the reply that said so, if any.
        @param permanent: whether retrying cannot help.
        @param quit: whether to send QUIT afterwards.
        """
        attempts = [a for a in (self._sentAttempt, self._attempt) if a is not None]
        attempts.extend(Attempt(t) for t in self._queue)
        self._queue.clear()
        for attempt in attempts:
            self._finish(attempt, reply, error, permanent)
        if quit:
            self._channel.quit()

    def refused(self, reply: SMTPReply, what: str) -> None:
        """
        End every transaction because the server refused C{what}.

        @param reply: the refusal; 5xx makes the failure permanent.
        @param what: such as C{"EHLO refused"}.
        """
        self.failAll(f"{what}: {reply}", reply, reply.code >= 500)


def _headerBlock(transaction: Transaction) -> bytes:
    end = transaction.message.find(b"\r\n\r\n")
    return transaction.message if end == -1 else transaction.message[:end]
