# -*- test-case-name: tests.test_smtp_submission_queue -*-
"""
Tests for L{gomail_twisted.smtp.submission} with the real outbound queue
(L{gomail_twisted.queue.OutboundQueue}): a submitted message for another
domain lands in the spool before the 250, is delivered to a server on
loopback found through a loopback DNS zone, and a permanent refusal comes
back to the sender's INBOX as a delivery status notification.
"""

from __future__ import annotations

import smtplib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from twisted.internet import reactor
from twisted.internet.defer import Deferred, DeferredQueue, maybeDeferred
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import SynchronousTestCase, TestCase

from gomail_twisted.dns import Resolver
from gomail_twisted.queue import OutboundQueue
from gomail_twisted.smtp import (
    ConnectionInfo,
    FunctionBackend,
    MaildirBackend,
    ReceivedMessage,
    Recipient,
    SMTPReply,
    SubmissionBackend,
)
from gomail_twisted.tls import serverContextFactory
from gomail_twisted.users import PasswordHashing, UsersChecker, UsersDatabase
from tests._dnsserver import LoopbackDNSServer
from tests.test_smtp_clients import (
    HOST,
    TIMEOUT,
    TrackingFactory,
    certificate,
    clientContext,
)
from tests.test_smtp_submission import (
    ALICE_PASSWORD,
    HASHER,
    MESSAGE,
    SENT,
    USERS,
    SubmissionTestsMixin,
)

T = TypeVar("T")


def runNow(f: Callable[[], T]) -> Deferred[T]:
    """
    Run the queue's disk work at once, on the calling thread.
    """
    return maybeDeferred(f)


class SpoolTests(SubmissionTestsMixin, SynchronousTestCase):
    """
    The submission backend over the real queue, not started, its disk work
    run at once: what lands in the spool.
    """

    def setUp(self) -> None:
        super().setUp()
        self.spoolPath = Path(self.mktemp())
        self.queue = OutboundQueue(
            self.spoolPath,
            reactor=self.reactor,
            hostname="mail.example.com",
            isLocal=self.local.isLocal,
            localDelivery=self.local.deliverNotice,
            runInThread=runNow,
        )
        self.factory.backend = SubmissionBackend(self.local, self.queue)

    def test_remoteRecipientSpooled(self) -> None:
        """
        By the 250, the message for a remote recipient is in the spool with
        its envelope, byte for byte as received after the server's
        C{Received:} header; the local recipient's copy is in the store,
        not the spool.
        """
        replies = self.send(
            "alice@example.com", ["dave@example.net", "bob@example.com"]
        )
        self.assertTrue(replies[-1].startswith(b"250 2.0.0 "), replies[-1])
        [queueID] = self.queue.spool.queueIDs()
        state = self.queue.spool.readState(queueID)
        self.assertEqual(state.sender, "alice@example.com")
        self.assertEqual([r.address for r in state.recipients], ["dave@example.net"])
        data = self.queue.spool.readMessage(queueID)
        self.assertTrue(data.startswith(b"Received: from client.example.com "))
        self.assertTrue(data.endswith(b"\r\n" + SENT))
        self.assertEqual(len(self.files("bob@example.com")), 1)

    def test_spoolFailure(self) -> None:
        """
        When the spool cannot be written, a message for a remote recipient
        is answered 451 4.3.0 and nothing is queued.
        """
        self.spoolPath.write_bytes(b"not a directory")
        replies = self.send("alice@example.com", ["dave@example.net"])
        self.assertTrue(replies[-1].startswith(b"451 4.3.0 "), replies[-1])
        self.assertEqual(self.spoolPath.read_bytes(), b"not a directory")
        self.flushLoggedErrors()


class DeliveryTests(TestCase):
    """
    The whole path on loopback: C{smtplib} submits over STARTTLS, the queue
    delivers to a second server found through a loopback DNS zone.
    """

    timeout = 60

    async def setUpServers(self) -> None:
        root = Path(self.mktemp())
        usersFile = Path(self.mktemp())
        usersFile.write_text(USERS)
        users = UsersDatabase(usersFile)
        pool = reactor.getThreadPool()  # type: ignore[attr-defined]
        hashing = PasswordHashing(reactor, hasher=HASHER, threadPool=pool)
        self.root = root
        self.local = MaildirBackend(
            root,
            users=users,
            checker=UsersChecker(users, hashing),
            reactor=reactor,
            threadPool=pool,
        )
        self.addCleanup(self.local.store.close)

        # The remote domain's server: takes mail for dave, refuses gone.
        self.received: DeferredQueue[ReceivedMessage] = DeferredQueue()

        def rcptTo(info: ConnectionInfo, recipient: Recipient) -> None:
            if recipient.address.startswith("gone@"):
                raise SMTPReply(550, "5.1.1", "No such user here")

        def message(info: ConnectionInfo, received: ReceivedMessage) -> None:
            self.received.put(received)

        sink = TrackingFactory(
            FunctionBackend(rcptTo=rcptTo, message=message),
            hostname="mx.example.net",
        )
        sinkPort = reactor.listenTCP(0, sink, interface=HOST)
        self.addCleanup(lambda: sink.whenClosed().addTimeout(5, reactor))
        self.addCleanup(sinkPort.stopListening)

        dns = LoopbackDNSServer()
        dns.addMX("example.net", 10, "mx.example.net")
        dns.addA("mx.example.net", HOST)
        dns.start(reactor)
        self.addCleanup(dns.stop)

        # Notices for local senders: each stored one is put here.
        self.notices: DeferredQueue[str] = DeferredQueue()

        def deliverNotice(address: str, data: bytes) -> Deferred[None]:
            d = self.local.deliverNotice(address, data)
            return d.addCallback(lambda _: self.notices.put(address))

        self.queue = OutboundQueue(
            Path(self.mktemp()),
            reactor=reactor,
            hostname="mail.example.com",
            resolver=Resolver(reactor, [HOST], port=dns.port),
            port=sinkPort.getHost().port,  # type: ignore[attr-defined]
            isLocal=self.local.isLocal,
            localDelivery=deliverNotice,
        )
        self.queue.start()
        self.addCleanup(self.queue.stop)

        submission = TrackingFactory(
            SubmissionBackend(self.local, self.queue),
            hostname="mail.example.com",
            tls=serverContextFactory(*certificate()),
            requireTLS=True,
        )
        port = reactor.listenTCP(0, submission, interface=HOST)
        self.addCleanup(lambda: submission.whenClosed().addTimeout(5, reactor))
        self.addCleanup(port.stopListening)
        self.port = int(port.getHost().port)  # type: ignore[attr-defined]

    async def submit(self, recipients: list[str]) -> dict[str, tuple[int, bytes]]:
        """
        Log in as Alice over STARTTLS and send L{MESSAGE}.
        """

        def client() -> dict[str, tuple[int, bytes]]:
            with smtplib.SMTP(
                HOST, self.port, "client.example.com", timeout=TIMEOUT
            ) as s:
                s.starttls(context=clientContext())
                s.login("alice@example.com", ALICE_PASSWORD)
                return s.sendmail("alice@example.com", recipients, MESSAGE)

        return await deferToThread(client)

    async def wait(self, queue: DeferredQueue[Any]) -> Any:
        """
        The next item of a queue, within the test's bounds.
        """
        return await queue.get().addTimeout(30, reactor)

    async def test_deliveredToRemoteServer(self) -> None:
        """
        A message for another domain reaches that domain's server with the
        envelope the client gave, carrying our C{Received:} header below
        the remote server's.
        """
        await self.setUpServers()
        self.assertEqual(await self.submit(["dave@example.net"]), {})
        received: ReceivedMessage = await self.wait(self.received)
        self.assertEqual(received.envelope.sender, "alice@example.com")
        self.assertEqual(
            [r.address for r in received.envelope.recipients], ["dave@example.net"]
        )
        self.assertEqual(received.raw.count(b"Received: from "), 2)
        self.assertIn(
            b"by mail.example.com (gomail_twisted) with ESMTPSA", received.raw
        )
        self.assertTrue(received.raw.endswith(b"\r\n" + MESSAGE))

    async def test_permanentRefusalNotifiesSender(self) -> None:
        """
        A recipient the remote server refuses for good is reported to the
        sender in their INBOX (RFC 3464), with the null return path; the
        other recipient still gets the message.
        """
        await self.setUpServers()
        sent = await self.submit(["dave@example.net", "gone@example.net"])
        self.assertEqual(sent, {})
        received: ReceivedMessage = await self.wait(self.received)
        self.assertEqual(
            [r.address for r in received.envelope.recipients], ["dave@example.net"]
        )
        self.assertEqual(await self.wait(self.notices), "alice@example.com")
        [notice] = sorted((self.root / "alice@example.com" / "new").iterdir())
        data = notice.read_bytes()
        self.assertTrue(data.startswith(b"Return-Path: <>\n"))
        self.assertIn(b"multipart/report", data)
        self.assertIn(b"gone@example.net", data)
