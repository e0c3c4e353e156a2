# -*- test-case-name: tests.test_delivery_client -*-
"""
The values of the SMTP client: a transaction to send, the result of one
server's handling of it, and the producer that writes large messages.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from twisted.internet.interfaces import IConsumer, IPullProducer
from zope.interface import implementer

from gomail_twisted.delivery._tls import TLSFacts
from gomail_twisted.smtpreply import SMTPReply

#: Messages larger than this are written in blocks by a producer, each
#: block under the data-block timeout (RFC 5321 4.5.3.2.5).
DATA_BLOCK = 2**18


@dataclass(frozen=True)
class Transaction:
    """
    One mail transaction (RFC 5321 3.3): an envelope and the message.

    @ivar sender: the reverse-path, or C{""} for the null path.
    @ivar recipients: the forward-paths.
    @ivar message: the message, lines ending in CRLF, not dot-stuffed.
    """

    sender: str
    recipients: tuple[str, ...]
    message: bytes = field(repr=False)


@dataclass(frozen=True)
class DeliveryResult:
    """
    What one server did with one transaction.

    @ivar host: the server's host name (MX host or smarthost), as given.
    @ivar address: the IP address connected to.
    @ivar port: the port connected to.
    @ivar recipients: the recipients offered to it.
    @ivar accepted: those it accepted (RCPT 250).
    @ivar refused: those it refused, each with its reply.
    @ivar code: the final reply code (after the message, or the reply that
        ended the attempt), or L{None} when no reply decided it.
    @ivar enhanced: that reply's enhanced status code (RFC 3463), if any;
        when the domain's mail exchangers could not be found, the code of
        why: C{5.1.2} (no such domain), C{4.4.3} (the lookup failed),
        C{5.1.10} (null MX).
    @ivar text: that reply's text.
    @ivar error: why the message was not delivered, or L{None} when it was.
    @ivar permanent: whether that failure is permanent (a 5yz reply or a
        condition that trying again cannot change).
    @ivar tls: the TLS facts, or L{None} without TLS.
    @ivar domain: the recipients' domain, in MX delivery.
    """

    host: str
    address: str
    port: int
    recipients: tuple[str, ...]
    accepted: tuple[str, ...] = ()
    refused: tuple[tuple[str, SMTPReply], ...] = ()
    code: int | None = None
    enhanced: str | None = None
    text: str = ""
    error: str | None = None
    permanent: bool = False
    tls: TLSFacts | None = None
    domain: str = ""

    @property
    def delivered(self) -> bool:
        """
        Whether the server took the message for at least one recipient.
        """
        return self.error is None and bool(self.accepted)


@dataclass
class Attempt:
    transaction: Transaction
    accepted: list[str] = field(default_factory=list)
    refused: list[tuple[str, SMTPReply]] = field(default_factory=list)
    mailRefusal: SMTPReply | None = None


@implementer(IPullProducer)
class DataProducer:
    """
    Write a large message in blocks as the transport drains, re-arming the
    data-block timeout for each.
    """

    def __init__(
        self,
        consumer: Any,
        data: bytes,
        onBlock: Callable[[], None],
        onDone: Callable[[], None],
    ) -> None:
        self._consumer = cast(IConsumer, consumer)
        self._onBlock = onBlock
        self._onDone = onDone
        self._data = data
        self._offset = 0
        self.active = True

    def resumeProducing(self) -> None:
        if not self.active:
            return
        if self._offset >= len(self._data):
            self.active = False
            self._consumer.unregisterProducer()
            self._onDone()
            return
        block = self._data[self._offset : self._offset + DATA_BLOCK]
        self._offset += DATA_BLOCK
        self._onBlock()
        self._consumer.write(block)

    def start(self) -> None:
        """
        Register with the consumer, which then pulls the blocks.
        """
        self._consumer.registerProducer(self, False)

    def stopProducing(self) -> None:
        self.active = False
