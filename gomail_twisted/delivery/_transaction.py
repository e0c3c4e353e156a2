# -*- test-case-name: tests.test_delivery_client -*-
"""
The ESMTP client's mail transactions (RFC 5321 3.3): MAIL, RCPT and DATA,
pipelined when the server offers PIPELINING (RFC 2920), the parameters of
SIZE (RFC 1870), 8BITMIME (RFC 6152) and SMTPUTF8 (RFC 6531), the message
content, and RSET (RFC 5321 4.1.1.5) after a failed transaction.
"""

from __future__ import annotations

from gomail_twisted.delivery._connection import ClientConnection
from gomail_twisted.delivery._values import (
    DATA_BLOCK,
    Attempt,
    DataProducer,
    Transaction,
)
from gomail_twisted.delivery._wire import (
    Extensions,
    dotStuff,
    needsSMTPUTF8,
    wireAddress,
)
from gomail_twisted.smtpreply import SMTPReply


class TransactionDriver(ClientConnection):
    """
    Send the factory's transactions, one after the other, on a connection
    whose session (greeting, EHLO, STARTTLS, AUTH) is established.

    With PIPELINING (RFC 2920 3.1) each transaction's MAIL, RCPT and DATA
    go in one write, and a message's content goes in the same write as the
    next transaction's commands (or QUIT): one write and one read per
    message.
    """

    def _setExtensions(self, extensions: Extensions) -> None:
        # Looked up once here rather than for every transaction.
        self._extensions = extensions
        self._pipelined = "PIPELINING" in extensions
        self._maxSize = extensions.maxSize
        self._declareSize = "SIZE" in extensions
        self._eightBit = "8BITMIME" in extensions
        self._smtputf8 = "SMTPUTF8" in extensions

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


def _headerBlock(transaction: Transaction) -> bytes:
    end = transaction.message.find(b"\r\n\r\n")
    return transaction.message if end == -1 else transaction.message[:end]
