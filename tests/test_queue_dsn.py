"""
Tests for the queue's delivery status notifications (RFC 3464): when they
are sent, to whom, and what they say.
"""

from __future__ import annotations

import email
import email.policy
from collections.abc import Callable
from email.message import EmailMessage, Message
from typing import Any

from twisted.internet.defer import Deferred, fail, succeed
from twisted.trial.unittest import SynchronousTestCase

from gomail_twisted.queue import QueuedMessage, RecipientState, Spool, buildReport
from gomail_twisted.queue._dsn import dsnStatus
from gomail_twisted.smtpreply import SMTPReply
from tests.test_queue import MESSAGE, makeQueue, stateOf, submitted


class Reports:
    """
    Stands for the local store: records what is delivered to local
    senders; fails while C{failing} is set.
    """

    def __init__(self) -> None:
        self.delivered: list[tuple[str, bytes]] = []
        self.failing = False

    def __call__(self, address: str, data: bytes) -> Deferred[None]:
        if self.failing:
            return fail(OSError("disk full"))
        self.delivered.append((address, data))
        return succeed(None)


def parse(data: bytes) -> tuple[EmailMessage, Message, list[Message], str]:
    """
    Parse a report.

    @return: the report, its per-message block, its per-recipient blocks,
        and the original header part's text.
    """
    report = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(report, EmailMessage)
    _text, status, headers = report.iter_parts()
    blocks = status.get_payload()
    assert isinstance(blocks, list)
    return report, blocks[0], blocks[1:], headers.get_payload()


def localQueue(case: SynchronousTestCase, **kwargs: Any) -> Any:
    reports = Reports()
    queue, clock, sender = makeQueue(
        case,
        localDelivery=reports,
        isLocal=lambda address: address.endswith("@example.com"),
        **kwargs,
    )
    return queue, clock, sender, reports


class ReportTests(SynchronousTestCase):
    """
    Failures and delays are reported to the sender.
    """

    def test_permanentFailureReported(self) -> None:
        """
        A recipient refused permanently is reported to a local sender at
        once, in a multipart/report with the reply as Diagnostic-Code and
        the original header attached; the message leaves the queue.
        """
        queue, clock, sender, reports = localQueue(self)
        queueID = submitted(self, queue, "bob@example.net", "carol@example.net")
        clock.advance(0)
        sender.answer(
            0,
            accepted=("carol@example.net",),
            refused=(("bob@example.net", SMTPReply(550, "5.1.1", "No such user")),),
        )
        [(address, data)] = reports.delivered
        self.assertEqual(address, "alice@example.com")
        self.assertIn(b"\r\n", data)
        report, perMessage, blocks, headers = parse(data)
        self.assertEqual(report.get_content_type(), "multipart/report")
        self.assertEqual(report.get_param("report-type"), "delivery-status")
        self.assertEqual(report["To"], "alice@example.com")
        self.assertEqual(report["Auto-Submitted"], "auto-replied")
        self.assertEqual(perMessage["Reporting-MTA"], "dns; mx.example.com")
        [block] = blocks
        self.assertEqual(block["Final-Recipient"], "rfc822; bob@example.net")
        self.assertEqual(block["Action"], "failed")
        self.assertEqual(block["Status"], "5.1.1")
        self.assertEqual(block["Diagnostic-Code"], "smtp; 550 5.1.1 No such user")
        self.assertEqual(block["Remote-MTA"], "dns; mx.example.net")
        self.assertIn("Subject: hello", headers)
        self.assertNotIn("Hi Bob", headers)
        self.assertEqual(queue.spool.queueIDs(), [])
        self.assertNotIn(queueID, queue.spool.queueIDs())

    def test_reportHoldsOnlyTheHeader(self) -> None:
        """
        Building a report reads the original message's header only: no
        body comes back from the disk work while the report is made and
        queued, however large the message.
        """
        returned: list[object] = []

        def runInThread(f: Callable[[], Any]) -> Deferred[Any]:
            result = f()
            returned.append(result)
            return succeed(result)

        queue, clock, sender, reports = localQueue(self, runInThread=runInThread)
        submitted(self, queue, "bob@example.net")
        clock.advance(0)
        del returned[:]
        sender.answer(
            0, refused=(("bob@example.net", SMTPReply(550, "5.1.1", "No such user")),)
        )
        [(_, data)] = reports.delivered
        self.assertIn("Subject: hello", parse(data)[3])
        self.assertEqual(
            [r for r in returned if isinstance(r, bytes) and b"Hi Bob" in r], []
        )

    def test_remoteSenderGetsQueuedReport(self) -> None:
        """
        The report to a sender of another domain is queued and sent with
        the null reverse-path.
        """
        queue, clock, sender, reports = localQueue(self)
        queueID = self.successResultOf(
            queue.submit("alice@elsewhere.example", ["bob@example.net"], MESSAGE)
        )
        clock.advance(0)
        sender.answer(
            0, code=554, enhanced="5.7.1", text="Spam", error="554", permanent=True
        )
        self.assertEqual(reports.delivered, [])
        [reportID] = queue.spool.queueIDs()
        self.assertNotEqual(reportID, queueID)
        self.assertEqual(stateOf(queue, reportID)["sender"], "")
        clock.advance(0)
        mail = sender.calls[1][0]
        self.assertEqual(mail.envelopeSender, "")
        self.assertEqual(mail.envelopeRecipients, ("alice@elsewhere.example",))
        assert mail.raw is not None
        [block] = parse(mail.raw)[2]
        self.assertEqual(block["Status"], "5.7.1")

    def test_reportNeverReported(self) -> None:
        """
        A report that fails gets no report of its own: it leaves the queue,
        and nothing new is queued.
        """
        queue, clock, sender, reports = localQueue(self)
        self.successResultOf(queue.submit("", ["alice@elsewhere.example"], MESSAGE))
        clock.advance(0)
        sender.answer(
            0, code=550, enhanced="5.1.1", text="No", error="550", permanent=True
        )
        self.assertEqual(queue.spool.queueIDs(), [])
        self.assertEqual(reports.delivered, [])
        self.assertEqual(len(sender.calls), 1)

    def test_expiryReported(self) -> None:
        """
        When the lifetime is over the pending recipients fail with status
        4.4.7 and the last reply.
        """
        queue, clock, sender, reports = localQueue(
            self, lifetime=3600, retryDelay=1000, maxRetryDelay=1000, delayWarning=7200
        )
        submitted(self, queue)
        clock.advance(0)
        for i in range(10):
            if len(sender.calls) <= i:
                break
            sender.deferAll(i, text=f"Busy {i}")
            clock.advance(1000)
        self.assertEqual(len(sender.calls), 5)
        self.assertEqual(
            [c[0].envelopeRecipients for c in sender.calls],
            [("bob@example.net",)] * 5,
        )
        [(_, data)] = reports.delivered
        [block] = parse(data)[2]
        self.assertEqual(block["Action"], "failed")
        self.assertEqual(block["Status"], "4.4.7")
        self.assertEqual(block["Diagnostic-Code"], "smtp; 451 4.3.0 Busy 4")
        self.assertEqual(queue.spool.queueIDs(), [])

    def test_delayWarningOnce(self) -> None:
        """
        After delayWarning seconds the sender is told once that delivery is
        late (Action: delayed, Will-Retry-Until); the message stays queued.
        """
        queue, clock, sender, reports = localQueue(self, delayWarning=1000)
        queueID = submitted(self, queue)
        clock.advance(0)
        sender.deferAll(0)
        clock.advance(999)
        self.assertEqual(reports.delivered, [])
        clock.advance(1)
        [(_, data)] = reports.delivered
        report, _, [block], _ = parse(data)
        self.assertEqual(block["Action"], "delayed")
        self.assertEqual(block["Status"], "4.3.0")
        self.assertIn("Will-Retry-Until", block)
        self.assertIn("Delayed", report["Subject"])
        self.assertTrue(stateOf(queue, queueID)["delayWarned"])
        for i in range(1, 5):
            sender.deferAll(i)
            clock.advance(3600)
        self.assertEqual(len(reports.delivered), 1)

    def test_noWarningAfterDelivery(self) -> None:
        """
        A message delivered before delayWarning brings no warning.
        """
        queue, clock, sender, reports = localQueue(self, delayWarning=1000)
        submitted(self, queue)
        clock.advance(0)
        sender.acceptAll(0)
        clock.advance(2000)
        self.assertEqual(reports.delivered, [])

    def test_failedReportRetried(self) -> None:
        """
        A report that cannot be delivered is tried again later, and the
        message stays queued until it is.
        """
        queue, clock, sender, reports = localQueue(self, retryDelay=60)
        queueID = submitted(self, queue)
        reports.failing = True
        clock.advance(0)
        sender.answer(0, refused=(("bob@example.net", SMTPReply(550, "5.1.1", "No")),))
        self.assertEqual(queue.spool.queueIDs(), [queueID])
        self.assertEqual(len(self.flushLoggedErrors(OSError)), 1)
        reports.failing = False
        clock.advance(60)
        self.assertEqual(len(reports.delivered), 1)
        self.assertEqual(queue.spool.queueIDs(), [])


class GiveUpTests(SynchronousTestCase):
    """
    Reports that cannot be delivered are given up with the lifetime.
    """

    def test_reportDroppedAfterLifetime(self) -> None:
        """
        A report that keeps failing is tried until the message's lifetime
        is over, then dropped and logged; the message leaves the queue.
        """
        queue, clock, sender, reports = localQueue(
            self, retryDelay=600, lifetime=3600, delayWarning=7200
        )
        reports.failing = True
        submitted(self, queue)
        clock.advance(0)
        sender.answer(0, refused=(("bob@example.net", SMTPReply(550, "5.1.1", "No")),))
        for _ in range(5):
            clock.advance(600)
        self.assertEqual(len(queue.spool.queueIDs()), 1)
        clock.advance(600)
        self.assertEqual(queue.spool.queueIDs(), [])
        self.assertEqual(reports.delivered, [])
        self.assertEqual(len(self.flushLoggedErrors(OSError)), 7)


class StatusTests(SynchronousTestCase):
    """
    L{dsnStatus} picks the Status field of RFC 3464 2.3.4.
    """

    def test_table(self) -> None:
        """
        The server's enhanced code when it fits the action, else one from
        the reply code, 4.4.7 for expiry.
        """
        table = [
            (
                RecipientState("a@b.c", "failed", code=550, enhanced="5.1.1"),
                "failed",
                "5.1.1",
            ),
            (RecipientState("a@b.c", "failed", code=554), "failed", "5.0.0"),
            (RecipientState("a@b.c", "failed", code=None), "failed", "5.0.0"),
            (
                RecipientState(
                    "a@b.c", "failed", code=451, enhanced="4.3.0", expired=True
                ),
                "failed",
                "4.4.7",
            ),
            (RecipientState("a@b.c", "failed", expired=True), "failed", "4.4.7"),
            (RecipientState("a@b.c", code=451, enhanced="4.2.2"), "delayed", "4.2.2"),
            (RecipientState("a@b.c", code=421), "delayed", "4.0.0"),
            (RecipientState("a@b.c"), "delayed", "4.0.0"),
        ]
        for recipient, action, expected in table:
            self.assertEqual(dsnStatus(recipient, action), expected, recipient)


class BuildReportTests(SynchronousTestCase):
    """
    L{buildReport} builds RFC 3464 reports.
    """

    def test_noReplyNoDiagnostic(self) -> None:
        """
        A recipient with no reply (connection refused) has no
        Diagnostic-Code; the text part says what went wrong.
        """
        message = QueuedMessage(
            "0000000003e8a1b2c3d4",
            "a@example.com",
            1000.0,
            10,
            (
                RecipientState(
                    "b@example.net", "failed", text="connection refused", expired=True
                ),
            ),
        )
        data = buildReport(
            "failed", message, message.recipients, MESSAGE, "h.example", 2000.0, 5000.0
        )
        report, perMessage, [block], _ = parse(data)
        self.assertNotIn("Diagnostic-Code", block)
        self.assertEqual(perMessage["Arrival-Date"], "Thu, 01 Jan 1970 00:16:40 +0000")
        text = next(report.iter_parts()).get_content()
        self.assertIn("<b@example.net>", text)
        self.assertIn("connection refused", text)

    def test_eightBitHeaders(self) -> None:
        """
        An original header with 8-bit bytes is attached as 8bit text, and
        the report still parses.
        """
        message = QueuedMessage(
            "0000000003e8a1b2c3d4",
            "a@example.com",
            0.0,
            10,
            (RecipientState("b@example.net", "failed", code=550),),
        )
        original = "Subject: caf\u00e9\r\n\r\nx\r\n".encode()
        data = buildReport(
            "failed", message, message.recipients, original, "h.example", 0.0, 0.0
        )
        self.assertIn("Subject: caf\u00e9".encode(), data)
        self.assertEqual(parse(data)[2][0]["Status"], "5.0.0")


class RestartReportTests(SynchronousTestCase):
    """
    Reports owed when a queue stopped are sent after it starts again.
    """

    def test_unreportedFailureReportedAtStart(self) -> None:
        """
        A recipient saved as failed but not yet reported is reported at
        start, without a new delivery attempt, and the message leaves.
        """
        directory = self.mktemp()
        spool = Spool(directory)
        spool.prepare()
        failed = RecipientState(
            "bob@example.net", "failed", 1, 0.0, 900.0, 550, "5.1.1", "No such user"
        )
        message = QueuedMessage(
            "0000000003e8a1b2c3d4", "alice@example.com", 900.0, len(MESSAGE), (failed,)
        )
        spool.add(message, MESSAGE)
        queue, clock, sender, reports = localQueue(self, directory=directory)
        clock.advance(0)
        self.assertEqual(sender.calls, [])
        [(_address, data)] = reports.delivered
        self.assertEqual(parse(data)[2][0]["Status"], "5.1.1")
        self.assertEqual(queue.spool.queueIDs(), [])
