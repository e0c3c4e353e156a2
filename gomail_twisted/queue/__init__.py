# -*- test-case-name: tests.test_queue -*-
"""
The outbound queue: mail to other domains, spooled on disk before it is
acknowledged, delivered to each domain's mail exchangers (L{MXDelivery},
with the client of L{gomail_twisted.delivery}, several messages over one
connection), retried with backoff, and reported to its sender (RFC 3464)
when it fails.

    queue = OutboundQueue("gomail-data/queue", reactor=reactor,
                          hostname="mx.example.com")
    queue.setServiceParent(application)      # or queue.start()
    queueID = await queue.submit("alice@example.com",
                                 ["bob@example.net"], message)

C{python -m gomail_twisted queue list|retry|delete} inspects and acts on
the spool; see L{gomail_twisted.queue._spool} for its files.
"""

from __future__ import annotations

from gomail_twisted.queue._dsn import buildReport
from gomail_twisted.queue._entry import (
    CorruptState,
    QueuedMessage,
    RecipientState,
    RecipientStatus,
)
from gomail_twisted.queue._queue import OutboundQueue, QueueService
from gomail_twisted.queue._route import DeliverBatch, MXDelivery
from gomail_twisted.queue._spool import DEFAULT_SPOOL, Spool, SpoolLocked

__all__ = [
    "DEFAULT_SPOOL",
    "CorruptState",
    "DeliverBatch",
    "MXDelivery",
    "OutboundQueue",
    "QueueService",
    "QueuedMessage",
    "RecipientState",
    "RecipientStatus",
    "Spool",
    "SpoolLocked",
    "buildReport",
]
