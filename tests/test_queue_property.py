"""
A property of L{gomail_twisted.queue.OutboundQueue}: whatever the servers
answer, each recipient gets a message at most once, and ends either
delivered or reported to the sender exactly once, and the spool empties.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from gomail_twisted.smtpreply import SMTPReply
from tests.test_queue import MESSAGE, FakeSender, makeQueue
from tests.test_queue_dsn import Reports, parse

#: What a server says of one recipient in one attempt.
ANSWERS = ("accept", "temporary", "permanent")

envelopes = st.lists(
    st.lists(
        st.tuples(st.sampled_from("abcd"), st.sampled_from(["x.example", "y.example"])),
        min_size=1,
        max_size=4,
        unique=True,
    ),
    min_size=1,
    max_size=3,
)


class OutcomeProperty(SynchronousTestCase):
    """
    Every recipient is delivered once or reported once.
    """

    @settings(
        max_examples=40,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(envelopes=envelopes, data=st.data())
    def test_deliveredOnceOrReportedOnce(
        self, envelopes: list[list[tuple[str, str]]], data: Any
    ) -> None:
        """
        With any sequence of acceptances, temporary and permanent refusals,
        no recipient is offered a message after it accepted it; when the
        queue is done each recipient either accepted it once or appears in
        exactly one failure report; no sender gets more than one delay
        warning per message; the spool is empty.
        """
        reports = Reports()
        sender = FakeSender()
        queue, clock, _ = makeQueue(
            self,
            sender=sender,
            retryDelay=100,
            maxRetryDelay=400,
            lifetime=2000,
            delayWarning=1000,
            # Out of the way, so that the next timer is always the queue's.
            controlInterval=10**7,
            localDelivery=reports,
            isLocal=lambda address: True,
        )
        wanted: set[tuple[str, str]] = set()
        for n, envelope in enumerate(envelopes):
            recipients = [f"{user}@{domain}" for user, domain in envelope]
            queueID = self.successResultOf(
                queue.submit(f"s{n}@example.com", recipients, MESSAGE)
            )
            wanted |= {(queueID, r) for r in recipients}
        ids = {f"s{n}@example.com": n for n in range(len(envelopes))}
        accepted: list[tuple[str, str]] = []
        answered = 0
        for _ in range(200):
            clock.advance(0)
            while answered < len(sender.calls):
                call = sender.calls[answered][0]
                who = ids[call.envelopeSender]
                take, refuse = [], []
                for r in call.envelopeRecipients:
                    self.assertNotIn((who, r), accepted)
                    answer = data.draw(st.sampled_from(ANSWERS))
                    if answer == "accept":
                        take.append(r)
                        accepted.append((who, r))
                    else:
                        code = 451 if answer == "temporary" else 550
                        refuse.append((r, SMTPReply(code, None, "No")))
                sender.answer(
                    answered,
                    accepted=tuple(take),
                    refused=tuple(refuse),
                    code=250 if take else None,
                    error=None if take else "all refused",
                )
                answered += 1
                clock.advance(0)
            if not clock.getDelayedCalls() or not queue.messageCount:
                break
            clock.advance(
                min(c.getTime() for c in clock.getDelayedCalls()) - clock.seconds()
            )
        self.assertEqual(queue.messageCount, 0)
        self.assertEqual(queue.spool.queueIDs(), [])
        failed: list[tuple[int, str]] = []
        warned: list[int] = []
        for address, report in reports.delivered:
            who = ids[address]
            blocks = parse(report)[2]
            if blocks[0]["Action"] == "delayed":
                warned.append(who)
            for block in blocks:
                recipient = block["Final-Recipient"].partition("; ")[2]
                if block["Action"] == "failed":
                    failed.append((who, recipient))
        self.assertEqual(len(accepted), len(set(accepted)))
        self.assertEqual(sorted(accepted + failed), sorted(set(accepted + failed)))
        everyone = sorted(
            (n, f"{user}@{domain}")
            for n, envelope in enumerate(envelopes)
            for user, domain in envelope
        )
        self.assertEqual(sorted(accepted + failed), everyone)
        self.assertEqual(len(warned), len(set(warned)))
        self.assertEqual(len(wanted), len(everyone))
