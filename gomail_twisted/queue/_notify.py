# -*- test-case-name: tests.test_queue_dsn -*-
"""
Telling senders what became of their mail: a delivery status notification
(RFC 3464) when recipients fail for good, and one delay warning.

A report goes to a local sender through the queue's C{localDelivery}, to
any other through the queue itself, with the null reverse-path; a message
with the null reverse-path (a report itself) never gets one (RFC 3464 2,
RFC 5321 4.5.5), its failures are only logged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from gomail_twisted.dkim import RunInThread
from gomail_twisted.message import splitHeaderBlock
from gomail_twisted.queue._dsn import Action, buildReport
from gomail_twisted.queue._entry import QueuedMessage, RecipientState
from gomail_twisted.queue._spool import Spool

if TYPE_CHECKING:
    from gomail_twisted.queue._queue import OutboundQueue

__all__ = ["Notifier"]

#: A change to a message's state, made once its reports went out.
Update = Callable[[QueuedMessage], QueuedMessage]


def _markNotified(addresses: frozenset[str], message: QueuedMessage) -> QueuedMessage:
    return message.withRecipients(
        {
            r.address: replace(r, notified=True)
            for r in message.recipients
            if r.address in addresses
        }
    )


def _markWarned(message: QueuedMessage) -> QueuedMessage:
    return replace(message, delayWarned=True)


def _readHeader(spool: Spool, queueID: str) -> bytes:
    """
    @return: the header block of a queued message (RFC 5322 2.1), its
        lines ending in CRLF, without the empty line.
    @raise OSError: it cannot be read.
    """
    return splitHeaderBlock(spool.readMessage(queueID))[0]


class Notifier:
    """
    Sends a queue's reports.
    """

    _log = Logger()

    def __init__(
        self,
        queue: OutboundQueue,
        reactor: Any,
        runInThread: RunInThread,
        hostname: str,
        localDelivery: Callable[[str, bytes], Deferred[None]] | None,
        isLocal: Callable[[str], bool],
        lifetime: float,
        delayWarning: float,
    ) -> None:
        """
        @param queue: the queue, which queues reports to remote senders.
        @param reactor: the clock.
        @param runInThread: runs disk work.
        @param hostname: our host name.
        @param localDelivery: stores a report for a local sender, or
            L{None}.
        @param isLocal: whether a sender is local.
        @param lifetime: how long messages stay queued.
        @param delayWarning: when to warn of a delay.
        """
        self._queue = queue
        self._reactor = reactor
        self._thread = runInThread
        self._hostname = hostname
        self._localDelivery = localDelivery
        self._isLocal = isLocal
        self._lifetime = lifetime
        self._delayWarning = delayWarning

    def warningTime(self, message: QueuedMessage) -> float | None:
        """
        @param message: a queued message.
        @return: when its sender is to be warned of the delay, or L{None}
            when never.
        """
        if (
            not message.sender
            or message.delayWarned
            or not message.pending
            or self._delayWarning >= self._lifetime
        ):
            return None
        return message.created + self._delayWarning

    def warningDue(self, message: QueuedMessage) -> bool:
        """
        @param message: a queued message.
        @return: whether its delay warning is due now.
        """
        when = self.warningTime(message)
        return when is not None and self._reactor.seconds() >= when

    async def _send(
        self,
        kind: Action,
        message: QueuedMessage,
        recipients: tuple[RecipientState, ...],
    ) -> None:
        queue = self._queue
        try:
            # Only its header goes in the report: the body is dropped in
            # the thread, not held while the report is queued.
            original = await self._thread(
                partial(_readHeader, queue.spool, message.queueID)
            )
        except OSError:
            original = b""
        now = self._reactor.seconds()
        try:
            report = buildReport(
                kind,
                message,
                recipients,
                original,
                self._hostname,
                now,
                message.created + self._lifetime,
            )
        except Exception:
            # Trying again would build the same report: drop it.
            self._log.failure(
                "Queue {queueID}: cannot build the {kind} report to <{sender}>; "
                "dropped",
                queueID=message.queueID,
                kind=kind,
                sender=message.sender,
            )
            return
        if self._localDelivery is not None and self._isLocal(message.sender):
            await self._localDelivery(message.sender, report)
            where = "delivered"
        else:
            where = "queued as " + await queue.submit("", [message.sender], report)
        self._log.info(
            "Queue {queueID}: {kind} report to <{sender}> {where}",
            queueID=message.queueID,
            kind=kind,
            sender=message.sender,
            where=where,
        )

    async def notify(self, message: QueuedMessage) -> Update | None:
        """
        Send the reports that are due for a message.

        @param message: its current state.
        @return: the change to make to its state (recipients marked as
            reported, the warning as sent), or L{None} when a report could
            not be sent (to be tried again later; what was sent is then
            sent again) and the message's lifetime is not over; past it,
            the report is dropped.
        """
        failed = message.unnotified
        warn = self.warningDue(message)
        addresses = frozenset(r.address for r in failed)
        if not message.sender:
            for r in failed:
                self._log.error(
                    "Queue {queueID}: report to <{recipient}> failed ({reply}); "
                    "dropped, as reports get no report",
                    queueID=message.queueID,
                    recipient=r.address,
                    reply=r.reply,
                )
            return partial(_markNotified, addresses)
        try:
            if failed:
                await self._send("failed", message, failed)
            if warn and message.pending:
                await self._send("delayed", message, message.pending)
        except Exception:
            if self._reactor.seconds() < message.created + self._lifetime:
                self._log.failure(
                    "Queue {queueID}: cannot send the report to <{sender}>; "
                    "trying again later",
                    queueID=message.queueID,
                    sender=message.sender,
                )
                return None
            # Past the lifetime, reports are given up like messages are.
            self._log.failure(
                "Queue {queueID}: cannot send the report to <{sender}>; "
                "dropped, the message's lifetime is over",
                queueID=message.queueID,
                sender=message.sender,
            )

        def update(current: QueuedMessage) -> QueuedMessage:
            current = _markNotified(addresses, current)
            return _markWarned(current) if warn else current

        return update
