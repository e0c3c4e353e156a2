"""
Tests for the queue's files: the state file format
(L{gomail_twisted.queue._entry}) and the spool
(L{gomail_twisted.queue._spool}), bad files included.
"""

from __future__ import annotations

import json
import os

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from gomail_twisted.queue import CorruptState, QueuedMessage, RecipientState, Spool
from gomail_twisted.queue._entry import decodeState, encodeState, isQueueID, newQueueID
from tests.test_queue import MESSAGE, makeQueue, submitted

QUEUE_ID = "0000000003e8a1b2c3d4"


def sample(**changes: object) -> dict[str, object]:
    """
    @return: a valid state document, with C{changes} applied.
    """
    document: dict[str, object] = {
        "version": 1,
        "id": QUEUE_ID,
        "sender": "a@example.com",
        "created": 1000.0,
        "size": 10,
        "delayWarned": False,
        "recipients": [
            {
                "address": "b@example.net",
                "status": "pending",
                "attempts": 0,
                "nextAttempt": 1000.0,
                "lastAttempt": None,
                "code": None,
                "enhanced": None,
                "text": "",
                "remoteHost": "",
                "notified": False,
                "expired": False,
            }
        ],
    }
    document.update(changes)
    return document


def recipientWith(**changes: object) -> dict[str, object]:
    [recipient] = sample()["recipients"]  # type: ignore[misc]
    return {**recipient, **changes}


addresses = st.from_regex(r"\A[a-z0-9._+-]{1,20}@[a-z0-9-]{1,20}\.[a-z]{2,6}\Z")
recipients = st.builds(
    RecipientState,
    address=addresses,
    status=st.sampled_from(["pending", "delivered", "failed"]),
    attempts=st.integers(0, 1000),
    nextAttempt=st.floats(0, 2e9),
    lastAttempt=st.none() | st.floats(0, 2e9),
    code=st.none() | st.integers(200, 599),
    enhanced=st.none() | st.from_regex(r"\A[245]\.[0-9]{1,3}\.[0-9]{1,3}\Z"),
    text=st.text(max_size=100),
    remoteHost=st.text(max_size=30),
    notified=st.booleans(),
    expired=st.booleans(),
)


class StateFormatTests(SynchronousTestCase):
    """
    State files are read back as written; anything else is refused.
    """

    @given(
        sender=st.just("") | addresses,
        created=st.floats(0, 2e9),
        size=st.integers(0, 2**40),
        people=st.lists(recipients, min_size=1, max_size=5),
        warned=st.booleans(),
    )
    def test_roundTrip(
        self,
        sender: str,
        created: float,
        size: int,
        people: list[RecipientState],
        warned: bool,
    ) -> None:
        """
        decodeState gives back what encodeState was given.
        """
        message = QueuedMessage(QUEUE_ID, sender, created, size, tuple(people), warned)
        self.assertEqual(decodeState(encodeState(message), QUEUE_ID), message)

    def test_valid(self) -> None:
        """
        The sample document is valid.
        """
        message = decodeState(json.dumps(sample()).encode(), QUEUE_ID)
        self.assertEqual(message.recipients[0].address, "b@example.net")

    def test_invalid(self) -> None:
        """
        Each of these is refused with L{CorruptState}.
        """
        table: list[bytes] = [
            b"",
            b"\xff\xfe",
            b"{",
            b"[]",
            json.dumps(sample(version=2)).encode(),
            json.dumps(sample(id="../../etc/passwd")).encode(),
            json.dumps(sample(id="0000000003e8a1b2c3d5")).encode(),
            json.dumps(sample(recipients=[])).encode(),
            json.dumps(sample(recipients="b@example.net")).encode(),
            json.dumps(sample(recipients=["b@example.net"])).encode(),
            json.dumps(sample(sender=None)).encode(),
            json.dumps(sample(sender="a@b>\r\nRCPT TO:<x@y")).encode(),
            json.dumps(sample(created="yesterday")).encode(),
            json.dumps(sample(created=True)).encode(),
            json.dumps(sample(delayWarned=0)).encode(),
            json.dumps(sample(recipients=[recipientWith(status="lost")])).encode(),
            json.dumps(sample(recipients=[recipientWith(address="nobody")])).encode(),
            json.dumps(sample(recipients=[recipientWith(attempts=1.5)])).encode(),
            json.dumps(sample(recipients=[recipientWith(code="550")])).encode(),
            json.dumps(sample(recipients=[recipientWith(notified=None)])).encode(),
        ]
        for data in table:
            self.assertRaises(CorruptState, decodeState, data, QUEUE_ID)

    def test_queueIDs(self) -> None:
        """
        New identifiers have the form isQueueID accepts, and sort by time.
        """
        first, second = newQueueID(1000.0), newQueueID(1000.5)
        self.assertTrue(isQueueID(first))
        self.assertLess(first, second)
        for bad in ["", "x" * 20, QUEUE_ID.upper(), QUEUE_ID + "0", "../" + QUEUE_ID]:
            self.assertFalse(isQueueID(bad), bad)


class SpoolTests(SynchronousTestCase):
    """
    The spool's files, and what the queue makes of bad ones at start.
    """

    def test_corruptStateMovedAside(self) -> None:
        """
        A state file that cannot be read is moved to corrupt/ with its
        message and logged; the other messages are delivered.
        """
        directory = self.mktemp()
        queue, _clock, _sender = makeQueue(self, directory)
        bad = submitted(self, queue)
        good = submitted(self, queue, "carol@example.org")
        self.successResultOf(queue.stop())
        with open(queue.spool.statePath(bad), "wb") as f:
            f.write(b'{"version": 1, "id": "truncat')
        logged: list[str] = []
        from twisted.logger import globalLogPublisher

        def observe(event: dict[str, object]) -> None:
            from twisted.logger import formatEvent

            logged.append(formatEvent(event))

        globalLogPublisher.addObserver(observe)
        self.addCleanup(globalLogPublisher.removeObserver, observe)
        queue2, clock2, sender2 = makeQueue(self, directory)
        clock2.advance(0)
        self.assertEqual(
            [c[0].envelopeRecipients for c in sender2.calls], [("carol@example.org",)]
        )
        corrupt = sorted(os.listdir(os.path.join(directory, "corrupt")))
        self.assertEqual(corrupt, [bad + ".eml", bad + ".json"])
        self.assertEqual(queue2.spool.queueIDs(), [good])
        self.assertTrue(
            any(bad in line and "bad state file" in line for line in logged), logged
        )

    def test_stateWithoutMessageMovedAside(self) -> None:
        """
        A state file whose message is missing is moved aside.
        """
        spool = Spool(self.mktemp())
        spool.prepare()
        message = QueuedMessage(
            QUEUE_ID, "", 0.0, 1, (RecipientState("b@example.net"),)
        )
        spool.add(message, MESSAGE)
        os.unlink(spool.messagePath(QUEUE_ID))
        loaded = spool.load()
        self.assertEqual(loaded.messages, ())
        self.assertIn("message file is missing", loaded.problems[0])
        self.assertEqual(os.listdir(spool.root / "corrupt"), [QUEUE_ID + ".json"])

    def test_unacknowledgedMessageRemoved(self) -> None:
        """
        A message file without a state file (a crash while queueing, before
        the acknowledgement) and files left in tmp/ are removed at load.
        """
        spool = Spool(self.mktemp())
        spool.prepare()
        spool.messagePath(QUEUE_ID).write_bytes(MESSAGE)
        (spool.root / "tmp" / "half").write_bytes(b"x")
        loaded = spool.load()
        self.assertEqual(loaded.messages, ())
        self.assertEqual(os.listdir(spool.root / "messages"), [])
        self.assertEqual(os.listdir(spool.root / "tmp"), [])

    def test_updateReplacesState(self) -> None:
        """
        update replaces the state file whole, leaving nothing in tmp/.
        """
        spool = Spool(self.mktemp())
        spool.prepare()
        message = QueuedMessage(
            QUEUE_ID, "a@example.com", 0.0, 1, (RecipientState("b@example.net"),)
        )
        spool.add(message, MESSAGE)
        changed = message.withRecipients(
            {"b@example.net": RecipientState("b@example.net", "delivered")}
        )
        spool.update(changed)
        self.assertEqual(spool.readState(QUEUE_ID), changed)
        self.assertEqual(os.listdir(spool.root / "tmp"), [])
        self.assertEqual(spool.readMessage(QUEUE_ID), MESSAGE)

    def test_requests(self) -> None:
        """
        Requests left in control/ are taken once, in name order.
        """
        spool = Spool(self.mktemp())
        spool.request("retry-all")
        spool.request("delete-" + QUEUE_ID)
        self.assertEqual(spool.takeRequests(), ["delete-" + QUEUE_ID, "retry-all"])
        self.assertEqual(spool.takeRequests(), [])
