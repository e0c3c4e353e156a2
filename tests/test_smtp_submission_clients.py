# -*- test-case-name: tests.test_smtp_submission_clients -*-
"""
Tests for L{gomail_twisted.smtp.submission} driven by the standard
library's C{smtplib} over real loopback sockets: submission with STARTTLS
then AUTH (RFC 6409), and with implicit TLS (RFC 8314), as a mail client
sees it.

Each client runs in a thread while the server runs on the real reactor;
every socket call has a timeout, and every test waits for the server side
of its connections to close before it ends.
"""

from __future__ import annotations

import smtplib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from twisted.internet import endpoints, reactor
from twisted.internet.interfaces import IListeningPort
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import TestCase

from gomail_twisted.smtp import MaildirBackend, SubmissionBackend
from gomail_twisted.tls import serverContextFactory
from gomail_twisted.users import PasswordHashing, UsersChecker, UsersDatabase
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
    USERS,
    RecordingOutbound,
)

T = TypeVar("T")


class SubmissionClientTests(TestCase):
    """
    The submission ports as C{smtplib} sees them.
    """

    timeout = 30

    def setUp(self) -> None:
        self.root = Path(self.mktemp())
        usersFile = Path(self.mktemp())
        usersFile.write_text(USERS)
        users = UsersDatabase(usersFile)
        pool = reactor.getThreadPool()  # type: ignore[attr-defined]
        hashing = PasswordHashing(reactor, hasher=HASHER, threadPool=pool)
        self.local = MaildirBackend(
            self.root,
            users=users,
            checker=UsersChecker(users, hashing),
            reactor=reactor,
            threadPool=pool,
        )
        self.addCleanup(self.local.store.close)
        self.outbound = RecordingOutbound()
        self.backend = SubmissionBackend(self.local, self.outbound)

    def makeFactory(self) -> TrackingFactory:
        """
        A submission server factory with the test certificate, refusing
        MAIL before STARTTLS; its connections are waited for at cleanup.
        """
        factory = TrackingFactory(
            self.backend,
            hostname="mail.example.com",
            tls=serverContextFactory(*certificate()),
            requireTLS=True,
        )

        def closed() -> Any:
            return factory.whenClosed().addTimeout(5, reactor)

        self.addCleanup(closed)
        return factory

    def listen(self) -> int:
        """
        Serve submission with STARTTLS on a loopback port.
        """
        port = reactor.listenTCP(0, self.makeFactory(), interface=HOST)
        self.addCleanup(port.stopListening)
        return int(port.getHost().port)

    async def listenImplicitTLS(self) -> int:
        """
        Serve submission with implicit TLS (RFC 8314) on a loopback port.
        """
        endpoint = endpoints.SSL4ServerEndpoint(
            reactor, 0, serverContextFactory(*certificate()), interface=HOST
        )
        port: IListeningPort = await endpoint.listen(self.makeFactory())
        self.addCleanup(port.stopListening)
        return int(port.getHost().port)  # type: ignore[attr-defined]

    async def inThread(self, f: Callable[[], T]) -> T:
        """
        Run a blocking client in a thread.
        """
        return await deferToThread(f)

    def inbox(self, user: str) -> list[bytes]:
        new = self.root / user / "new"
        return [p.read_bytes() for p in sorted(new.iterdir())] if new.is_dir() else []

    async def test_starttlsThenAuth(self) -> None:
        """
        A client that starts TLS and logs in sends to a local user and a
        remote one: C{sendmail} reports no refusal, the local copy is in
        the INBOX and the remote recipient's is queued, both by then, with
        the trace header saying C{ESMTPSA}.
        """
        port = self.listen()

        def client() -> dict[str, tuple[int, bytes]]:
            with smtplib.SMTP(HOST, port, "client.example.com", timeout=TIMEOUT) as s:
                s.starttls(context=clientContext())
                s.login("alice@example.com", ALICE_PASSWORD)
                return s.sendmail(
                    "alice@example.com",
                    ["bob@example.com", "dave@example.net"],
                    MESSAGE,
                )

        self.assertEqual(await self.inThread(client), {})
        [stored] = self.inbox("bob@example.com")
        self.assertTrue(stored.startswith(b"Return-Path: <alice@example.com>\n"))
        # smtplib stuffs the line that begins with dots; the server unstuffs it.
        self.assertTrue(stored.endswith(MESSAGE.replace(b"\r\n", b"\n")))
        [(sender, recipients, data)] = self.outbound.submitted
        self.assertEqual(
            (sender, recipients), ("alice@example.com", ["dave@example.net"])
        )
        self.assertIn(b" with ESMTPSA id ", data)
        self.assertTrue(data.endswith(b"\r\n" + MESSAGE))

    async def test_implicitTLS(self) -> None:
        """
        Over implicit TLS (RFC 8314), a logged-in user's message to a
        remote recipient is queued.
        """
        port = await self.listenImplicitTLS()

        def client() -> dict[str, tuple[int, bytes]]:
            with smtplib.SMTP_SSL(
                HOST,
                port,
                "client.example.com",
                timeout=TIMEOUT,
                context=clientContext(),
            ) as s:
                s.login("alice@example.com", ALICE_PASSWORD)
                return s.sendmail("alice@example.com", ["dave@example.net"], MESSAGE)

        self.assertEqual(await self.inThread(client), {})
        [(_, recipients, _)] = self.outbound.submitted
        self.assertEqual(recipients, ["dave@example.net"])

    async def test_relayWithoutAuthRefused(self) -> None:
        """
        A client that does not log in cannot send, to another domain or to
        ours: MAIL is refused with 530, before TLS (TLS first) and after
        it (authentication first); nothing is queued or stored.
        """
        port = self.listen()

        def client() -> list[tuple[int, bytes]]:
            got = []
            with smtplib.SMTP(HOST, port, "client.example.com", timeout=TIMEOUT) as s:
                s.ehlo()
                got.append(s.mail("alice@example.com"))
                s.starttls(context=clientContext())
                s.ehlo()
                got.append(s.mail("alice@example.com"))
                for recipients in (["dave@example.net"], ["bob@example.com"]):
                    try:
                        s.sendmail("alice@example.com", recipients, MESSAGE)
                    except smtplib.SMTPSenderRefused as e:
                        got.append((e.smtp_code, e.smtp_error))
            return got

        got = await self.inThread(client)
        self.assertEqual(
            got,
            [
                (530, b"5.7.0 Must issue a STARTTLS command first"),
                (530, b"5.7.0 Authentication required"),
                (530, b"5.7.0 Authentication required"),
                (530, b"5.7.0 Authentication required"),
            ],
        )
        self.assertEqual(self.outbound.submitted, [])
        self.assertFalse(self.root.exists())

    async def test_senderNotOwned(self) -> None:
        """
        A logged-in user who sends as another user is refused with 553
        5.7.1, and nothing is queued.
        """
        port = self.listen()

        def client() -> tuple[int, bytes]:
            with smtplib.SMTP(HOST, port, "client.example.com", timeout=TIMEOUT) as s:
                s.starttls(context=clientContext())
                s.login("alice@example.com", ALICE_PASSWORD)
                try:
                    s.sendmail("bob@example.com", ["dave@example.net"], MESSAGE)
                except smtplib.SMTPSenderRefused as e:
                    return e.smtp_code, e.smtp_error
                raise AssertionError("sender accepted")

        self.assertEqual(
            await self.inThread(client),
            (553, b"5.7.1 Sender address not owned by user"),
        )
        self.assertEqual(self.outbound.submitted, [])
