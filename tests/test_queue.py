"""
Tests for L{gomail_twisted.queue.OutboundQueue}: spooling, scheduling,
retries, per-recipient state, restarts and limits, with a fake clock,
disk work done at once, and a fake delivery whose results the tests
give.  The real delivery client is used in L{tests.test_queue_delivery}.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from twisted.internet.defer import (
    Deferred,
    FirstError,
    gatherResults,
    maybeDeferred,
    succeed,
)
from twisted.internet.task import Clock
from twisted.logger import formatEvent, globalLogPublisher
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from gomail_twisted.delivery import (
    DeliveryResult,
    DKIMSettings,
    SentMail,
    Transaction,
)
from gomail_twisted.dkim import generatePrivateKey
from gomail_twisted.queue import OutboundQueue, QueueService, Spool, _scheduler
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


class Call:
    """
    One transaction handed to the fake delivery, named as
    L{OutboundMail} names the same things.

    @ivar domain: the domain it was delivered to.
    """

    def __init__(self, domain: str, transaction: Transaction) -> None:
        self.domain = domain
        self.raw = transaction.message
        self.envelopeSender = transaction.sender
        self.envelopeRecipients = transaction.recipients


class FakeSender:
    """
    Stands for the queue's delivery to mail exchangers: records each
    transaction of each batch, with an unfired Deferred the test fires
    with L{FakeSender.answer}.

    @ivar calls: the transactions, with their Deferreds, in order.
    @ivar batches: the size of each batch, by domain, in order.
    """

    def __init__(self) -> None:
        self.calls: list[tuple[Call, Deferred[SentMail]]] = []
        self.batches: list[tuple[str, int]] = []

    def __call__(
        self, domain: str, transactions: Sequence[Transaction]
    ) -> Deferred[list[SentMail]]:
        waiting: list[Deferred[SentMail]] = []
        for transaction in transactions:
            d: Deferred[SentMail] = Deferred()
            self.calls.append((Call(domain, transaction), d))
            waiting.append(d)
        self.batches.append((domain, len(transactions)))

        def unwrap(reason: Failure) -> Failure:
            return reason.value.subFailure if reason.check(FirstError) else reason

        return gatherResults(waiting, consumeErrors=True).addErrback(unwrap)

    def recipients(self, index: int) -> tuple[str, ...]:
        """
        @return: the envelope recipients of the call at C{index}.
        """
        return self.calls[index][0].envelopeRecipients

    def waiting(self, domain: str | None = None) -> list[int]:
        """
        @param domain: only calls to this domain, or L{None} for all.
        @return: the indexes of the calls not answered yet, in order.
        """
        return [
            i
            for i, (call, d) in enumerate(self.calls)
            if not d.called and domain in (None, call.domain)
        ]

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


def newQueue(
    case: SynchronousTestCase,
    directory: str | None = None,
    clock: Clock | None = None,
    sender: FakeSender | None = None,
    **kwargs: Any,
) -> tuple[OutboundQueue, Clock, FakeSender]:
    """
    Make a queue over a new (or the given) spool directory, not started,
    with a fake clock, disk work done at once (unless C{runInThread} says
    otherwise), and a fake delivery.
    """
    directory = directory or case.mktemp()
    if clock is None:
        clock = Clock()
        clock.advance(1_000_000)
    sender = sender or FakeSender()
    kwargs.setdefault("deliver", sender)
    kwargs.setdefault("runInThread", runHere)
    queue = OutboundQueue(directory, reactor=clock, hostname="mx.example.com", **kwargs)
    return queue, clock, sender


def makeQueue(
    case: SynchronousTestCase,
    directory: str | None = None,
    clock: Clock | None = None,
    sender: FakeSender | None = None,
    **kwargs: Any,
) -> tuple[OutboundQueue, Clock, FakeSender]:
    """
    Make a queue as L{newQueue} does, and start it.
    """
    queue, clock, sender = newQueue(case, directory, clock, sender, **kwargs)
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
        # Only the server's user may read queued mail.
        for path in (queue.spool.root / "messages", queue.spool.messagePath(queueID)):
            self.assertEqual(os.stat(path).st_mode & 0o077, 0, path)

    def test_submitWithoutRecipientFails(self) -> None:
        """
        A message without recipients is refused.
        """
        queue, _clock, _sender = makeQueue(self)
        self.failureResultOf(queue.submit("a@example.com", [], MESSAGE), ValueError)

    def test_submitRefusesBadAddresses(self) -> None:
        """
        Addresses that could not be written back as an envelope are
        refused, and nothing is spooled.
        """
        queue, _clock, _sender = makeQueue(self)
        for sender, recipients in [
            ("a@example.com", ["b@example.net>\r\nRCPT TO:<c@example.org"]),
            ("a@example.com\r\n", ["b@example.net"]),
            ("<a@example.com>", ["b@example.net"]),
            ("a@example.com", ["postmaster"]),
        ]:
            self.failureResultOf(queue.submit(sender, recipients, MESSAGE), ValueError)
        self.assertEqual(queue.spool.queueIDs(), [])

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
        A queued message is handed to delivery with its sender and
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

    def test_oneAttemptPerDomain(self) -> None:
        """
        Recipients are grouped by domain: one delivery per domain,
        each with only that domain's recipients.
        """
        queue, clock, sender = makeQueue(self)
        submitted(
            self, queue, "bob@example.net", "carol@example.org", "dan@example.net"
        )
        clock.advance(0)
        self.assertEqual(
            sorted(sender.recipients(i) for i in range(len(sender.calls))),
            [("bob@example.net", "dan@example.net"), ("carol@example.org",)],
        )

    def test_temporaryFailureRetriedWithBackoff(self) -> None:
        """
        After temporary failures the domain is tried again after the retry
        delay, doubled each time up to the longest delay; the state file
        says when.
        """
        queue, clock, sender = makeQueue(self, retryDelay=300, maxRetryDelay=1000)
        queueID = submitted(self, queue)
        clock.advance(0)
        times = []
        for i in range(5):
            start = clock.seconds()
            sender.deferAll(i)
            state = stateOf(queue, queueID)["recipients"][0]
            self.assertEqual(state["status"], "pending")
            self.assertEqual(state["attempts"], i + 1)
            self.assertEqual(state["text"], "Try again later")
            times.append(state["nextAttempt"] - start)
            clock.advance(times[-1] - 1)
            self.assertEqual(len(sender.calls), i + 1)
            clock.advance(1)
            self.assertEqual(len(sender.calls), i + 2)
        self.assertEqual(times, [300, 600, 1000, 1000, 1000])

    def test_partialDeliveryNeverRepeated(self) -> None:
        """
        A recipient the server accepted is not sent the message again when
        another of the same message is retried, even after a restart.
        """
        directory = self.mktemp()
        queue, clock, sender = makeQueue(self, directory)
        queueID = submitted(self, queue, "bob@example.net", "carol@example.net")
        clock.advance(0)
        sender.answer(
            0,
            accepted=("bob@example.net",),
            refused=(("carol@example.net", SMTPReply(452, "4.2.2", "Mailbox full")),),
        )
        self.assertEqual(
            [
                (r["address"], r["status"])
                for r in stateOf(queue, queueID)["recipients"]
            ],
            [("bob@example.net", "delivered"), ("carol@example.net", "pending")],
        )
        [held] = queue.messages()
        self.assertEqual(
            [(r.address, r.status) for r in held.recipients],
            [("bob@example.net", "delivered"), ("carol@example.net", "pending")],
        )
        clock.advance(300)
        self.assertEqual(sender.recipients(1), ("carol@example.net",))
        # A crash, then a new queue over the same spool.
        queue.spool.unlock()
        queue2, clock2, sender2 = makeQueue(self, directory, clock=clock)
        clock2.advance(0)
        self.assertEqual(sender2.recipients(0), ("carol@example.net",))
        sender2.acceptAll(0)
        self.assertEqual(queue2.spool.queueIDs(), [])

    def test_resumesAfterRestart(self) -> None:
        """
        A new queue over the spool of one that stopped without delivering
        delivers its messages.
        """
        directory = self.mktemp()
        queue, _clock, _sender = makeQueue(self, directory)
        ids = [submitted(self, queue) for _ in range(3)]
        self.successResultOf(queue.stop())
        self.assertEqual(queue.spool.queueIDs(), sorted(ids))
        queue2, clock2, sender2 = makeQueue(self, directory)
        clock2.advance(0)
        for i in range(3):
            sender2.acceptAll(i)
        self.assertEqual(len(sender2.calls), 3)
        self.assertEqual(queue2.spool.queueIDs(), [])

    def test_deliveryErrorIsTemporary(self) -> None:
        """
        When delivery itself fails (a bug, not a server's reply), it is
        logged and the recipients are tried again later.
        """
        queue, clock, sender = makeQueue(self)
        queueID = submitted(self, queue)
        clock.advance(0)
        sender.calls[0][1].errback(RuntimeError("bug"))
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        [state] = stateOf(queue, queueID)["recipients"]
        self.assertEqual(
            (state["status"], state["text"]), ("pending", "internal error")
        )
        clock.advance(300)
        self.assertEqual(len(sender.calls), 2)

    def test_batchesPerDomain(self) -> None:
        """
        Messages due together for one domain go over one connection, up to
        maxBatch at a time; each keeps its own envelope.
        """
        queue, clock, sender = makeQueue(self, maxBatch=2, maxPerDomain=1)
        for n in range(5):
            self.successResultOf(
                queue.submit(f"s{n}@example.com", [f"r{n}@example.net"], MESSAGE)
            )
        clock.advance(0)
        self.assertEqual(sender.batches, [("example.net", 2)])
        self.assertEqual(
            [(c.envelopeSender, c.envelopeRecipients) for c, _ in sender.calls],
            [
                ("s0@example.com", ("r0@example.net",)),
                ("s1@example.com", ("r1@example.net",)),
            ],
        )
        sender.acceptAll(0)
        self.assertEqual(sender.batches, [("example.net", 2)])
        sender.acceptAll(1)
        self.assertEqual(sender.batches, [("example.net", 2), ("example.net", 2)])
        sender.acceptAll(2)
        sender.acceptAll(3)
        sender.acceptAll(4)
        self.assertEqual([n for _, n in sender.batches], [2, 2, 1])
        self.assertEqual(queue.spool.queueIDs(), [])

    def test_batchBoundedInBytes(self) -> None:
        """
        A batch holds no more than MAX_BATCH_BYTES of messages, however
        high maxBatch is, so large messages are not all read into memory at
        once; a message larger than the bound still goes, alone.
        """
        self.patch(_scheduler, "MAX_BATCH_BYTES", 2 * len(MESSAGE))
        queue, clock, sender = makeQueue(self, maxBatch=100, maxPerDomain=1)
        big = MESSAGE + b"x" * (3 * len(MESSAGE)) + b"\r\n"
        for data in [MESSAGE, MESSAGE, MESSAGE, big, MESSAGE]:
            self.successResultOf(
                queue.submit("alice@example.com", ["bob@example.net"], data)
            )
        clock.advance(0)
        for n in range(5):
            if n < len(sender.calls):
                sender.acceptAll(n)
        self.assertEqual([n for _, n in sender.batches], [2, 1, 1, 1])
        self.assertEqual(queue.spool.queueIDs(), [])


class LimitTests(SynchronousTestCase):
    """
    Attempts under way are bounded in all and per domain.
    """

    def limitedQueue(
        self, domains: Sequence[str], each: int
    ) -> tuple[OutboundQueue, FakeSender]:
        """
        A queue of three attempts at once, two per domain, one message per
        attempt, after C{each} messages to each domain are queued and due.
        """
        queue, clock, sender = makeQueue(
            self, maxDeliveries=3, maxPerDomain=2, maxBatch=1
        )
        for domain in domains:
            for _ in range(each):
                submitted(self, queue, f"bob@{domain}")
        clock.advance(0)
        return queue, sender

    def test_concurrencyBounded(self) -> None:
        """
        No more than maxDeliveries attempts run at once, nor more than
        maxPerDomain to one domain; the others start as those end.
        """
        _queue, sender = self.limitedQueue(["slow.example", "fast.example"], 4)

        def running() -> list[str]:
            return sorted(sender.calls[i][0].domain for i in sender.waiting())

        self.assertEqual(running(), ["fast.example", "slow.example", "slow.example"])
        sender.acceptAll(sender.waiting("fast.example")[0])
        self.assertEqual(running(), ["fast.example", "slow.example", "slow.example"])
        self.assertEqual(len(sender.calls), 4)

    def test_hangingDomainDoesNotHoldOthers(self) -> None:
        """
        While a domain's attempts hang, mail to other domains is delivered.
        """
        queue, sender = self.limitedQueue(["hang.example", "ok.example"], 5)
        for _ in range(10):
            for i in sender.waiting("ok.example"):
                sender.acceptAll(i)
        ok = [c for c, _ in sender.calls if c.domain == "ok.example"]
        self.assertEqual(len(ok), 5)
        self.assertEqual(len(queue.spool.queueIDs()), 5)


class StopTests(SynchronousTestCase):
    """
    L{OutboundQueue.stop} ends attempts politely.
    """

    def test_stopWaitsThenCancels(self) -> None:
        """
        stop waits for attempts under way up to stopTimeout, then cancels
        them; their recipients stay pending on disk.
        """
        queue, clock, _sender = makeQueue(self, stopTimeout=10)
        queueID = submitted(self, queue)
        clock.advance(0)
        d = queue.stop()
        self.assertNoResult(d)
        clock.advance(10)
        self.successResultOf(d)
        self.assertEqual(stateOf(queue, queueID)["recipients"][0]["status"], "pending")

    def test_stopLetsAttemptFinish(self) -> None:
        """
        An attempt that ends within stopTimeout is recorded.
        """
        queue, clock, sender = makeQueue(self, stopTimeout=10)
        queueID = submitted(self, queue)
        clock.advance(0)
        d = queue.stop()
        sender.acceptAll(0)
        self.successResultOf(d)
        self.assertEqual(queue.spool.queueIDs(), [])
        self.assertNotIn(queueID, os.listdir(queue.spool.root / "messages"))

    def test_stopGivesUpOnHangingReport(self) -> None:
        """
        A report whose local delivery never ends does not keep the queue
        from stopping: stop gives up on it a moment after stopTimeout; the
        failure is on disk, not yet reported, to be reported (not tried
        again) after the next start.
        """
        queue, clock, sender = makeQueue(
            self,
            stopTimeout=10,
            localDelivery=lambda address, data: Deferred(),
            isLocal=lambda address: True,
        )
        queueID = submitted(self, queue)
        clock.advance(0)
        sender.answer(0, refused=(("bob@example.net", SMTPReply(550, "5.1.1", "No")),))
        d = queue.stop()
        clock.advance(10)
        self.assertNoResult(d)
        clock.advance(1)
        self.successResultOf(d)
        [state] = stateOf(queue, queueID)["recipients"]
        self.assertEqual((state["status"], state["notified"]), ("failed", False))

    def test_noAttemptAfterStop(self) -> None:
        """
        A stopped queue makes no attempt, however much time passes.
        """
        queue, clock, sender = makeQueue(self)
        submitted(self, queue)
        clock.advance(0)
        sender.deferAll(0)
        self.successResultOf(queue.stop())
        clock.advance(100_000)
        self.assertEqual(len(sender.calls), 1)
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_secondQueueWaitsForTheLock(self) -> None:
        """
        A second queue over a spool in use delivers nothing until the
        first stops, then takes over; it says so once, not at every try.
        """
        logged: list[str] = []

        def observe(event: dict[str, Any]) -> None:
            logged.append(formatEvent(event))

        globalLogPublisher.addObserver(observe)
        self.addCleanup(globalLogPublisher.removeObserver, observe)
        directory = self.mktemp()
        queue, _clock, _sender = makeQueue(self, directory)
        submitted(self, queue)
        _queue2, clock2, sender2 = makeQueue(self, directory)
        clock2.advance(0)
        for _ in range(3):
            clock2.advance(5)
        self.assertEqual(sender2.calls, [])
        self.assertEqual(len([line for line in logged if "locked by" in line]), 1)
        self.successResultOf(queue.stop())
        clock2.advance(5)
        clock2.advance(0)
        self.assertEqual(len(sender2.calls), 1)


class DiskTests(SynchronousTestCase):
    """
    How the queue treats its disk: signing once, the trash, failed writes.
    """

    def test_signedWhenQueued(self) -> None:
        """
        A message from a domain with a DKIM key is signed once, when
        queued: the spool holds the signed message, and delivery sends it.
        """
        key = generatePrivateKey("ed25519")
        queue, clock, sender = makeQueue(
            self, dkim={"example.com": DKIMSettings("example.com", "sel", key)}
        )
        queueID = submitted(self, queue)
        stored = queue.spool.messagePath(queueID).read_bytes()
        self.assertTrue(stored.startswith(b"DKIM-Signature: "))
        self.assertTrue(stored.endswith(MESSAGE))
        self.assertEqual(stateOf(queue, queueID)["size"], len(stored))
        clock.advance(0)
        self.assertEqual(sender.calls[0][0].raw, stored)

    def test_unsignableQueuedUnsigned(self) -> None:
        """
        A message that cannot be signed (no From field) is queued unsigned,
        with a warning logged.
        """
        key = generatePrivateKey("ed25519")
        queue, _clock, _sender = makeQueue(
            self, dkim={"example.com": DKIMSettings("example.com", "sel", key)}
        )
        logged: list[str] = []

        def observe(event: dict[str, Any]) -> None:
            logged.append(formatEvent(event))

        globalLogPublisher.addObserver(observe)
        self.addCleanup(globalLogPublisher.removeObserver, observe)
        data = b"Subject: x\r\n\r\nno author\r\n"
        queueID = self.successResultOf(
            queue.submit("alice@example.com", ["bob@example.net"], data)
        )
        self.assertEqual(queue.spool.messagePath(queueID).read_bytes(), data)
        self.assertTrue(any("not signed with DKIM" in line for line in logged), logged)

    def test_trashEmptiedWhenIdle(self) -> None:
        """
        A delivered message's files go to trash/, which is emptied once no
        delivery runs.
        """
        queue, clock, sender = makeQueue(self)
        submitted(self, queue)
        submitted(self, queue, "carol@example.org")
        clock.advance(0)
        trash = queue.spool.root / "trash"
        sender.acceptAll(0)
        self.assertEqual(len(os.listdir(trash)), 2)
        sender.acceptAll(1)
        self.assertEqual(os.listdir(trash), [])
        self.assertEqual(os.listdir(queue.spool.root / "messages"), [])

    def test_failedSaveRetried(self) -> None:
        """
        When a state cannot be saved, the failure is logged and the save is
        tried again until it works; nothing is lost meanwhile.
        """
        queue, clock, sender = makeQueue(self, retryDelay=100)
        queueID = submitted(self, queue)
        clock.advance(0)
        tmp = queue.spool.root / "tmp"
        os.rmdir(tmp)
        tmp.write_bytes(b"")
        sender.deferAll(0)
        self.assertEqual(stateOf(queue, queueID)["recipients"][0]["attempts"], 0)
        clock.advance(10)
        self.assertEqual(stateOf(queue, queueID)["recipients"][0]["attempts"], 0)
        tmp.unlink()
        tmp.mkdir()
        clock.advance(10)
        self.assertEqual(stateOf(queue, queueID)["recipients"][0]["attempts"], 1)


class ServiceTests(SynchronousTestCase):
    """
    The queue runs as a Twisted service.
    """

    def test_queueService(self) -> None:
        """
        QueueService starts the queue with the service and stops it with
        the service, releasing the spool.
        """
        queue, _clock, _sender = newQueue(self)
        service = QueueService(queue)
        service.startService()
        self.successResultOf(queue.whenRunning())
        self.assertTrue(service.running)
        self.successResultOf(service.stopService())
        queue.spool.lock()
        queue.spool.unlock()

    def test_queueIsService(self) -> None:
        """
        The queue itself is a service: startService starts it.
        """
        queue, _clock, _sender = newQueue(self)
        queue.startService()
        self.successResultOf(queue.whenRunning())
        self.successResultOf(queue.stopService())

    def test_submitWhileStarting(self) -> None:
        """
        A message queued while the spool is being loaded is delivered once
        loading ends, as are the loaded ones.
        """
        directory = self.mktemp()
        first, _clock, _sender = makeQueue(self, directory)
        submitted(self, first)
        self.successResultOf(first.stop())
        loads: list[tuple[Callable[[], Any], Deferred[Any]]] = []

        def run(f: Callable[[], Any]) -> Deferred[Any]:
            if not loads:
                d: Deferred[Any] = Deferred()
                loads.append((f, d))
                return d
            return maybeDeferred(f)

        queue, clock, sender = newQueue(self, directory, runInThread=run)
        queue.start()
        submitted(self, queue, "carol@example.org")
        f, d = loads[0]
        d.callback(f())
        clock.advance(0)
        self.assertEqual(
            sorted(c.envelopeRecipients for c, _ in sender.calls),
            [("bob@example.net",), ("carol@example.org",)],
        )
        sender.acceptAll(0)
        sender.acceptAll(1)
        self.successResultOf(queue.stop())
        self.assertEqual(queue.spool.queueIDs(), [])

    def test_stopWhileStarting(self) -> None:
        """
        Stopping a queue still loading its spool leaves it stopped and the
        spool free.
        """
        held: list[Callable[[], Any]] = []
        waiting: list[Deferred[Any]] = []

        def later(f: Callable[[], Any]) -> Deferred[Any]:
            d: Deferred[Any] = Deferred()
            held.append(f)
            waiting.append(d)
            return d

        queue, _clock, _sender = newQueue(self, runInThread=later)
        queue.start()
        stopped = queue.stop()
        self.successResultOf(stopped)
        waiting[0].callback(held[0]())
        other = Spool(queue.spool.root)
        other.lock()
        other.unlock()

    def test_restartSameQueue(self) -> None:
        """
        A queue stopped and started again resumes delivering, and empties
        its trash.
        """
        queue, clock, sender = makeQueue(self)
        submitted(self, queue)
        submitted(self, queue, "carol@example.org")
        clock.advance(0)
        sender.acceptAll(0)
        stopping = queue.stop()
        clock.advance(30)
        self.successResultOf(stopping)
        queue.start()
        clock.advance(0)
        sender.acceptAll(2)
        self.assertEqual(queue.spool.queueIDs(), [])
        self.assertEqual(os.listdir(queue.spool.root / "trash"), [])

    def test_wrongResultCount(self) -> None:
        """
        A delivery that gives a wrong number of results is logged, and its
        messages are tried again after the retry delay, not at once.
        """
        queue, clock, _sender = makeQueue(
            self, deliver=lambda domain, transactions: succeed([])
        )
        queueID = submitted(self, queue)
        clock.advance(0)
        [state] = stateOf(queue, queueID)["recipients"]
        self.assertEqual((state["attempts"], state["text"]), (1, "internal error"))
        self.assertEqual(state["nextAttempt"], clock.seconds() + 300)
