"""
Tests for L{gomail_twisted.queue.OutboundQueue} delivering for real: the
disk work in threads, the real delivery client, a loopback DNS zone whose
MX points at our own SMTP server on 127.0.0.1 as the sink.  Scheduling
still runs on a L{Clock}, so the tests say when retries come.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from twisted.internet import reactor as _globalReactor
from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock, deferLater
from twisted.trial.unittest import TestCase

from gomail_twisted.delivery import DKIMSettings
from gomail_twisted.dkim import DKIMStatus, generatePrivateKey, keyRecordFor, verify
from gomail_twisted.dns import Resolver
from gomail_twisted.queue import OutboundQueue
from gomail_twisted.queue._entry import decodeState
from gomail_twisted.smtp import (
    ConnectionInfo,
    FunctionBackend,
    ReceivedMessage,
    Recipient,
    SMTPReply,
    SMTPServerFactory,
)
from tests._dnsserver import LoopbackDNSServer
from tests.test_queue import MESSAGE
from tests.test_queue_dsn import Reports, parse

reactor: Any = _globalReactor


class ClockedReactor:
    """
    The real reactor for sockets and threads, a L{Clock} for time.
    """

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    def callLater(self, delay: float, f: Callable[..., Any], *a: Any, **kw: Any) -> Any:
        return self.clock.callLater(delay, f, *a, **kw)

    def seconds(self) -> float:
        return self.clock.seconds()

    def __getattr__(self, name: str) -> Any:
        return getattr(reactor, name)


class Sink:
    """
    An SMTP server on 127.0.0.1 that records what it receives; RCPT
    replies may be scripted per address.

    @ivar messages: the messages received.
    @ivar refusals: by address, replies to give at RCPT, one per attempt.
    """

    def __init__(self) -> None:
        self.messages: list[ReceivedMessage] = []
        self.refusals: dict[str, list[SMTPReply]] = {}
        self.connections = 0

    def connect(self, info: ConnectionInfo) -> None:
        self.connections += 1

    def rcptTo(self, info: ConnectionInfo, recipient: Recipient) -> None:
        replies = self.refusals.get(recipient.address)
        if replies:
            raise replies.pop(0)

    def message(self, info: ConnectionInfo, message: ReceivedMessage) -> None:
        self.messages.append(message)

    def factory(self) -> SMTPServerFactory:
        backend = FunctionBackend(
            connect=self.connect, rcptTo=self.rcptTo, message=self.message
        )
        return SMTPServerFactory(
            backend, hostname="sink.example", reactor=reactor, logMessages=False
        )


async def waitFor(
    condition: Callable[[], bool], what: str, clock: Clock | None = None
) -> None:
    """
    Wait, in steps of 10 ms and for 10 s at most, for C{condition}; run
    what is due on C{clock} at each step (what the queue scheduled at once
    after disk work or delivery finished in the meantime).
    """
    for _ in range(1000):
        if clock is not None:
            clock.advance(0)
        if condition():
            return
        await deferLater(reactor, 0.01, lambda: None)
    raise AssertionError(f"timed out waiting for {what}")


#: A process that queues messages numbered from 0 as fast as it can, over
#: the spool given, and prints each number once submit's Deferred fired.
_SUBMITTER = """
import sys
from twisted.internet import reactor, task
from twisted.internet.defer import Deferred
from gomail_twisted.queue import OutboundQueue

queue = OutboundQueue(sys.argv[1], reactor=reactor, hostname="mx.example.com")

async def main(reactor):
    n = 0
    while True:
        message = (
            f"From: a@example.com\\r\\nMessage-ID: <{n}@test>\\r\\n\\r\\n{n}\\r\\n"
        ).encode()
        await queue.submit("alice@example.com", ["bob@example.net"], message)
        print(n, flush=True)
        n += 1

task.react(lambda reactor: Deferred.fromCoroutine(main(reactor)))
"""


class RealDeliveryTests(TestCase):
    """
    The queue delivers over real sockets.
    """

    def setUp(self) -> None:
        self.dns = LoopbackDNSServer()
        self.dns.addMX("example.net", 10, "mx.example.net")
        self.dns.addMX("example.com", 10, "mx.example.net")
        self.dns.addA("mx.example.net", "127.0.0.1")
        self.dns.addMX("nomail.example", 0, ".")
        self.dns.addMX("backup.example", 5, "dead.example.net")
        self.dns.addMX("backup.example", 10, "mx.example.net")
        self.dns.start(reactor)
        self.addCleanup(self.dns.stop)
        self.sink = Sink()
        port = reactor.listenTCP(0, self.sink.factory(), interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        self.port = port.getHost().port
        self.clock = Clock()
        self.clock.advance(1_700_000_000)
        self.reports = Reports()

    async def makeQueue(
        self, directory: str | None = None, **kwargs: Any
    ) -> OutboundQueue:
        queue = OutboundQueue(
            directory or self.mktemp(),
            reactor=ClockedReactor(self.clock),
            hostname="mx.example.com",
            resolver=Resolver(reactor, nameservers=["127.0.0.1"], port=self.dns.port),
            port=self.port,
            localDelivery=self.reports,
            isLocal=lambda address: address.endswith("@example.com"),
            **kwargs,
        )
        queue.start()
        self.addCleanup(queue.stop)
        await queue.whenRunning()
        return queue

    async def test_killedSubmitterLosesNothing(self) -> None:
        """
        Every message whose submit fired before the process was killed is
        delivered exactly once by a queue started over the spool after.
        """
        spool = self.mktemp()
        child = subprocess.Popen(
            [sys.executable, "-c", _SUBMITTER, spool],
            stdout=subprocess.PIPE,
            text=True,
        )
        acknowledged: list[int] = []
        try:
            assert child.stdout is not None
            for _ in range(30):
                ready, _w, _x = select.select([child.stdout], [], [], 10)
                if not ready:
                    break
                acknowledged.append(int(child.stdout.readline()))
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(10)
        self.assertEqual(acknowledged, list(range(30)))
        # The child queued by the real clock.
        self.clock.advance(time.time() - self.clock.seconds())
        queue = await self.makeQueue(directory=spool)
        self.assertGreaterEqual(queue.messageCount, 30)
        count = queue.messageCount
        await waitFor(
            lambda: len(self.sink.messages) == count,
            "the deliveries",
            clock=self.clock,
        )
        numbers = [int(m.raw.rpartition(b"\r\n\r\n")[2]) for m in self.sink.messages]
        self.assertEqual(sorted(numbers), list(range(count)))

    async def test_onDiskBeforeSubmitFires(self) -> None:
        """
        When submit's Deferred fires, the message file and a readable state
        file are already in the spool.
        """
        queue = await self.makeQueue()
        seen: list[tuple[bytes, str]] = []

        def check(queueID: str) -> str:
            data = queue.spool.messagePath(queueID).read_bytes()
            state = decodeState(queue.spool.statePath(queueID).read_bytes(), queueID)
            seen.append((data, state.recipients[0].status))
            return queueID

        d = queue.submit("alice@example.com", ["bob@example.net"], MESSAGE)
        await d.addCallback(check)
        self.assertEqual(seen, [(MESSAGE, "pending")])

    async def test_delivered(self) -> None:
        """
        A queued message reaches the recipient domain's server with its
        envelope and bytes, and leaves the spool.
        """
        queue = await self.makeQueue()
        await queue.submit("alice@example.com", ["bob@example.net"], MESSAGE)
        self.clock.advance(0)
        await waitFor(
            lambda: not queue.spool.queueIDs(), "the spool to empty", clock=self.clock
        )
        [received] = self.sink.messages
        self.assertEqual(received.envelope.sender, "alice@example.com")
        self.assertEqual(
            [r.address for r in received.envelope.recipients], ["bob@example.net"]
        )
        self.assertTrue(received.raw.endswith(MESSAGE))

    async def test_temporaryRefusalRetried(self) -> None:
        """
        A recipient refused temporarily gets the message at the retry,
        once; the one accepted the first time is not sent it again.
        """
        queue = await self.makeQueue(retryDelay=600)
        self.sink.refusals["carol@example.net"] = [SMTPReply(451, "4.2.0", "Later")]
        queueID = await queue.submit(
            "alice@example.com", ["bob@example.net", "carol@example.net"], MESSAGE
        )
        self.clock.advance(0)
        await waitFor(
            lambda: len(self.sink.messages) == 1, "the first delivery", clock=self.clock
        )

        def carolPending() -> bool:
            try:
                state = queue.spool.readState(queueID)
            except Exception:
                return False
            return state.recipients[1].attempts == 1

        await waitFor(carolPending, "the state to be saved", clock=self.clock)
        state = queue.spool.readState(queueID)
        self.assertEqual(
            [(r.status, r.nextAttempt) for r in state.recipients],
            [("delivered", 1_700_000_000.0), ("pending", 1_700_000_600.0)],
        )
        self.clock.advance(600)
        await waitFor(
            lambda: not queue.spool.queueIDs(), "the spool to empty", clock=self.clock
        )
        self.assertEqual(
            [[r.address for r in m.envelope.recipients] for m in self.sink.messages],
            [["bob@example.net"], ["carol@example.net"]],
        )

    async def test_permanentRefusalBounced(self) -> None:
        """
        A recipient refused permanently brings the local sender a report
        naming it with the server's reply.
        """
        queue = await self.makeQueue()
        self.sink.refusals["bob@example.net"] = [SMTPReply(550, "5.1.1", "Unknown")]
        await queue.submit("alice@example.com", ["bob@example.net"], MESSAGE)
        self.clock.advance(0)
        await waitFor(
            lambda: bool(self.reports.delivered), "the report", clock=self.clock
        )
        [(address, data)] = self.reports.delivered
        self.assertEqual(address, "alice@example.com")
        [block] = parse(data)[2]
        self.assertEqual(block["Diagnostic-Code"], "smtp; 550 5.1.1 Unknown")
        self.assertEqual(self.sink.messages, [])

    async def test_reportSentWithNullSender(self) -> None:
        """
        A report to a remote sender goes out with MAIL FROM:<>.
        """
        queue = await self.makeQueue()
        self.sink.refusals["bob@example.net"] = [SMTPReply(550, "5.1.1", "Unknown")]
        await queue.submit("alice@example.net", ["bob@example.net"], MESSAGE)
        self.clock.advance(0)
        await waitFor(
            lambda: len(queue.spool.queueIDs()) == 1, "the report", clock=self.clock
        )
        self.clock.advance(0)
        await waitFor(
            lambda: bool(self.sink.messages), "the report's delivery", clock=self.clock
        )
        [received] = self.sink.messages
        self.assertEqual(received.envelope.sender, "")
        self.assertIn(b"multipart/report", received.raw)

    async def test_signedOnceWithDKIM(self) -> None:
        """
        A message from a domain with a DKIM key arrives with one valid
        signature of that domain, also after a retry.
        """
        key = generatePrivateKey("ed25519")
        settings = DKIMSettings("example.com", "sel", key)
        queue = await self.makeQueue(dkim={"example.com": settings}, retryDelay=60)
        self.sink.refusals["bob@example.net"] = [SMTPReply(451, "4.2.0", "Later")]
        await queue.submit("alice@example.com", ["bob@example.net"], MESSAGE)
        self.clock.advance(0)
        await waitFor(
            lambda: (
                bool(queue.spool.queueIDs())
                and queue.spool.readState(queue.spool.queueIDs()[0])
                .recipients[0]
                .attempts
                == 1
            ),
            "the first attempt",
        )
        self.clock.advance(60)
        await waitFor(
            lambda: bool(self.sink.messages), "the delivery", clock=self.clock
        )
        raw = self.sink.messages[0].raw
        self.assertEqual(raw.count(b"DKIM-Signature:"), 1)

        def lookup(name: str) -> Deferred[Any]:
            self.assertEqual(name, "sel._domainkey.example.com")
            return succeed([keyRecordFor(key).encode()])

        [result] = await verify(raw, lookup)
        self.assertEqual(result.status, DKIMStatus.PASS)
        messages = queue.spool.root / "messages"
        await waitFor(lambda: not os.listdir(messages), "the spool", clock=self.clock)

    async def test_batchOverOneConnection(self) -> None:
        """
        Messages due together for one domain go over one connection, each
        with its own envelope.
        """
        queue = await self.makeQueue(maxPerDomain=1)
        for n in range(5):
            await queue.submit(f"s{n}@example.com", [f"r{n}@example.net"], MESSAGE)
        self.clock.advance(0)
        await waitFor(
            lambda: len(self.sink.messages) == 5, "5 messages", clock=self.clock
        )
        self.assertEqual(self.sink.connections, 1)
        self.assertEqual(
            [
                (m.envelope.sender, m.envelope.recipients[0].address)
                for m in self.sink.messages
            ],
            [(f"s{n}@example.com", f"r{n}@example.net") for n in range(5)],
        )

    async def test_nullMXBounced(self) -> None:
        """
        A domain that accepts no mail (null MX, RFC 7505) brings the sender
        a report with status 5.1.10 at once.
        """
        queue = await self.makeQueue()
        await queue.submit("alice@example.com", ["bob@nomail.example"], MESSAGE)
        self.clock.advance(0)
        await waitFor(
            lambda: bool(self.reports.delivered), "the report", clock=self.clock
        )
        [block] = parse(self.reports.delivered[0][1])[2]
        self.assertEqual(block["Status"], "5.1.10")
        self.assertTrue(
            block["Diagnostic-Code"].startswith("smtp; 556 5.1.10 "),
            block["Diagnostic-Code"],
        )

    async def test_nextMailExchanger(self) -> None:
        """
        When the preferred mail exchanger has no address, the next one
        gets the message.
        """
        queue = await self.makeQueue()
        await queue.submit("alice@example.com", ["bob@backup.example"], MESSAGE)
        self.clock.advance(0)
        await waitFor(
            lambda: bool(self.sink.messages), "the delivery", clock=self.clock
        )
        self.assertEqual(
            self.sink.messages[0].envelope.recipients[0].address, "bob@backup.example"
        )

    async def test_requireTLS(self) -> None:
        """
        With requireTLS, a server that offers no STARTTLS gets nothing: the
        recipient stays pending with the reason.
        """
        queue = await self.makeQueue(requireTLS=True)
        queueID = await queue.submit("alice@example.com", ["bob@example.net"], MESSAGE)
        self.clock.advance(0)

        def tried() -> bool:
            return queue.spool.readState(queueID).recipients[0].attempts == 1

        await waitFor(tried, "the attempt", clock=self.clock)
        [state] = queue.spool.readState(queueID).recipients
        self.assertEqual(state.status, "pending")
        self.assertIn("TLS", state.text)
        self.assertEqual(self.sink.messages, [])
