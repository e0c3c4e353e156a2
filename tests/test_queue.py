"""
Tests for L{gomail_twisted.queue.OutboundQueue}: spooling, scheduling,
retries, per-recipient state, restarts and limits, with a fake clock,
disk work done at once, and a fake C{sendMail} whose results the tests
give.  The real delivery client is used in L{tests.test_queue_delivery}.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any, TypeVar

from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from gomail_twisted.delivery import DeliveryResult, OutboundMail, SentMail
from gomail_twisted.queue import OutboundQueue, Spool
from gomail_twisted.smtpreply import SMTPReply

_T = TypeVar("_T")

MESSAGE = (
    b"From: alice@example.com\r\nTo: bob@example.net\r\n"
    b"Subject: hello\r\nMessage-ID: <1@example.com>\r\n\r\nHi Bob.\r\n"
)


def runHere(f: Callable[[], _T]) -> Deferred[_T]:
    """
    Run disk work at once, in this thread.
    """
    return maybeDeferred(f)


class FakeReactor(Clock):
    """
    A clock that is also enough of a reactor for the queue.
    """


class FakeSender:
    """
    Stands for C{sendMail}: records each mail and returns an unfired
    Deferred the test fires with L{FakeSender.answer}.

    @ivar calls: the mails, with their Deferreds, in order.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[OutboundMail, Deferred[SentMail]]] = []

    def __call__(self, reactor: Any, mail: OutboundMail) -> Deferred[SentMail]:
        d: Deferred[SentMail] = Deferred()
        self.calls.append((mail, d))
        return d

    def recipients(self, index: int) -> tuple[str, ...]:
        """
        @return: the envelope recipients of the call at C{index}.
        """
        return self.calls[index][0].envelopeRecipients

    def answer(
        self,
        index: int,
        accepted: tuple[str, ...] = (),
        refused: tuple[tuple[str, SMTPReply], ...] = (),
        code: int | None = 250,
        enhanced: str | None = "2.0.0",
        text: str = "OK",
        error: str | None = None,
        permanent: bool = False,
    ) -> None:
        """
        Fire the Deferred of the call at C{index} with one server's result.
        """
        mail, d = self.calls[index]
        result = DeliveryResult(
            host="mx.example.net",
            address="127.0.0.1",
            port=25,
            recipients=mail.envelopeRecipients,
            accepted=accepted,
            refused=refused,
            code=code,
            enhanced=enhanced,
            text=text,
            error=error,
            permanent=permanent,
        )
        d.callback(SentMail(None, (result,)))

    def acceptAll(self, index: int) -> None:
        """
        The server takes the call's message for every recipient.
        """
        self.answer(index, accepted=self.recipients(index))

    def deferAll(self, index: int, text: str = "Try again later") -> None:
        """
        The server refuses the call's message temporarily.
        """
        self.answer(index, code=451, enhanced="4.3.0", text=text, error="451")


class LocalDeliveries:
    """
    Stands for the local store: records reports delivered to local
    senders.
    """

    def __init__(self) -> None:
        self.delivered: list[tuple[str, bytes]] = []

    def __call__(self, address: str, data: bytes) -> Deferred[None]:
        self.delivered.append((address, data))
        return succeed(None)


def makeQueue(
    case: SynchronousTestCase,
    directory: str | None = None,
    clock: Clock | None = None,
    sender: FakeSender | None = None,
    **kwargs: Any,
) -> tuple[OutboundQueue, Clock, FakeSender]:
    """
    Make a queue over a new (or the given) spool directory, started, with
    a fake clock, disk work done at once, and a fake C{sendMail}.
    """
    directory = directory or case.mktemp()
    clock = clock or Clock()
    clock.advance(1_000_000)
    sender = sender or FakeSender()
    queue = OutboundQueue(
        directory,
        reactor=clock,
        hostname="mx.example.com",
        runInThread=runHere,
        send=sender,
        **kwargs,
    )
    queue.start()
    case.addCleanup(queue.spool.unlock)
    return queue, clock, sender


def submitted(case: SynchronousTestCase, queue: OutboundQueue, *recipients: str) -> str:
    """
    Submit L{MESSAGE} from alice@example.com.

    @return: its queue identifier.
    """
    return case.successResultOf(
        queue.submit("alice@example.com", recipients or ("bob@example.net",), MESSAGE)
    )


def stateOf(queue: OutboundQueue, queueID: str) -> dict[str, Any]:
    """
    @return: the message's state file, parsed.
    """
    with open(queue.spool.statePath(queueID), "rb") as f:
        document: dict[str, Any] = json.load(f)
    return document


class SubmitTests(SynchronousTestCase):
    """
    L{OutboundQueue.submit} spools the message durably.
    """

    def test_submitWritesMessageAndState(self) -> None:
        """
        When submit's Deferred fires, the message and its state are in the
        spool, every recipient pending.
        """
        queue, _clock, _sender = makeQueue(self)
        queueID = submitted(self, queue, "bob@example.net", "carol@example.org")
        with open(queue.spool.messagePath(queueID), "rb") as f:
            self.assertEqual(f.read(), MESSAGE)
        state = stateOf(queue, queueID)
        self.assertEqual(state["sender"], "alice@example.com")
        self.assertEqual(
            [(r["address"], r["status"]) for r in state["recipients"]],
            [("bob@example.net", "pending"), ("carol@example.org", "pending")],
        )
        self.assertEqual(os.listdir(os.path.join(queue.spool.root, "tmp")), [])

    def test_submitWithoutRecipientFails(self) -> None:
        """
        A message without recipients is refused.
        """
        queue, _clock, _sender = makeQueue(self)
        self.failureResultOf(queue.submit("a@example.com", [], MESSAGE), ValueError)

    def test_submitFailsWhenTheDiskDoes(self) -> None:
        """
        When the spool cannot be written, submit fails and leaves nothing.
        """
        queue, _clock, _sender = makeQueue(self)
        # A file where the directory must be: every write fails, as on a
        # broken disk (permissions would not stop root).
        tmp = os.path.join(queue.spool.root, "tmp")
        os.rmdir(tmp)
        with open(tmp, "wb"):
            pass
        self.failureResultOf(queue.submit("a@example.com", ["b@example.net"], MESSAGE))
        self.assertEqual(Spool(queue.spool.root).queueIDs(), [])


class DeliveryTests(SynchronousTestCase):
    """
    Queued messages are delivered, and taken out of the queue.
    """

    def test_deliveredAndRemoved(self) -> None:
        """
        A queued message is handed to sendMail with its sender and
        recipients and bytes; once accepted, its files are gone.
        """
        queue, clock, sender = makeQueue(self)
        queueID = submitted(self, queue)
        clock.advance(0)
        [(mail, _)] = sender.calls
        self.assertEqual(mail.raw, MESSAGE)
        self.assertEqual(mail.envelopeSender, "alice@example.com")
        self.assertEqual(mail.envelopeRecipients, ("bob@example.net",))
        sender.acceptAll(0)
        self.assertFalse(os.path.exists(queue.spool.statePath(queueID)))
        self.assertFalse(os.path.exists(queue.spool.messagePath(queueID)))
