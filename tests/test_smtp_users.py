# -*- test-case-name: tests.test_smtp_users -*-
"""
Tests for L{gomail_twisted.smtp.maildir.MaildirBackend} with a users file:
who gets mail, who may log in, seen as the replies on the wire and the
files in the store.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import argon2
import bcrypt
from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase

from gomail_twisted.smtp import SMTPServerFactory, SMTPServerProtocol
from gomail_twisted.smtp.maildir import MaildirBackend
from gomail_twisted.users import PasswordHashing, UsersChecker, UsersDatabase
from tests._smtphelpers import exchange
from tests.test_smtp_maildir import _Reactor, _ThreadPool

PEER = IPv4Address("TCP", "127.0.0.1", 40000)
LOCAL = IPv4Address("TCP", "127.0.0.1", 25)

HASHER = argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
ALICE_PASSWORD = "correct horse"
BOB_PASSWORD = "battery staple"

USERS = f"""\
domain example.com
domain example.org
user alice@example.com {HASHER.hash(ALICE_PASSWORD)}
user bob@example.com {bcrypt.hashpw(BOB_PASSWORD.encode(), bcrypt.gensalt(4)).decode()}
user carol@example.com {HASHER.hash("carol's")} disabled
alias postmaster@example.com alice@example.com
alias sales@example.com bob@example.com
alias @example.org alice@example.com
"""

MESSAGE = b"From: sender@example.net\r\nSubject: users\r\n\r\nHello.\r\n"


def _plain(login: str, password: str, authzid: str = "") -> bytes:
    raw = f"{authzid}\0{login}\0{password}".encode()
    return base64.b64encode(raw)


class UsersBackendTests(SynchronousTestCase):
    """
    The real server over a L{StringTransport}, its backend reading a users
    file, its store and password checks on a pool that runs at once.
    """

    def setUp(self) -> None:
        self.root = Path(self.mktemp())
        self.usersFile = Path(self.mktemp())
        self.usersFile.write_text(USERS)
        self.reactor = _Reactor()
        self.pool = _ThreadPool()
        self.users = UsersDatabase(self.usersFile)
        hashing = PasswordHashing(self.reactor, hasher=HASHER, threadPool=self.pool)
        self.backend = MaildirBackend(
            self.root,
            users=self.users,
            checker=UsersChecker(self.users, hashing),
            reactor=self.reactor,
            threadPool=self.pool,
        )
        self.factory = SMTPServerFactory(
            self.backend,
            hostname="mx.example.com",
            allowPlaintextAuth=True,
            reactor=self.reactor,
        )

    def connect(self) -> tuple[SMTPServerProtocol, StringTransport]:
        transport = StringTransport(hostAddress=LOCAL, peerAddress=PEER)
        protocol = self.factory.buildProtocol(PEER)
        assert isinstance(protocol, SMTPServerProtocol)
        protocol.makeConnection(transport)
        self.addCleanup(protocol.connectionLost, None)  # type: ignore[arg-type]
        transport.clear()
        return protocol, transport

    def exchange(self, *lines: bytes) -> list[bytes]:
        """
        Send each line on a new connection; return the reply to each.
        """
        return exchange(self, self.factory, *lines)

    def inbox(self, user: str) -> list[bytes]:
        new = self.root / user / "new"
        return [p.read_bytes() for p in sorted(new.iterdir())] if new.is_dir() else []

    def test_usersAndAliasesAccepted(self) -> None:
        """
        A user, an alias, a whole-domain alias and the bare postmaster are
        accepted; each message lands once in the INBOX of the user the
        address leads to.
        """
        replies = self.exchange(
            b"EHLO client.example.net",
            b"MAIL FROM:<sender@example.net>",
            b"RCPT TO:<Alice@Example.COM>",
            b"RCPT TO:<postmaster@example.com>",
            b"RCPT TO:<anyone@example.org>",
            b"RCPT TO:<Postmaster>",
            b"RCPT TO:<sales@example.com>",
            b"DATA",
            MESSAGE + b".",
        )
        self.assertEqual([r[:3] for r in replies[1:]], [b"250"] * 6 + [b"354", b"250"])
        [alice] = self.inbox("alice@example.com")
        [bob] = self.inbox("bob@example.com")
        self.assertTrue(alice.endswith(b"Hello.\n"))
        self.assertEqual(alice, bob)
        self.assertFalse((self.root / "anyone@example.org").exists())

    def test_disabledUserReceives(self) -> None:
        """
        A disabled user cannot log in but still receives mail.
        """
        replies = self.exchange(
            b"HELO client.example.net",
            b"MAIL FROM:<>",
            b"RCPT TO:<carol@example.com>",
            b"DATA",
            MESSAGE + b".",
        )
        self.assertEqual(replies[-1][:3], b"250")
        self.assertEqual(len(self.inbox("carol@example.com")), 1)

    def test_unknownLocalRecipientRefused(self) -> None:
        """
        An address of a local domain that leads to no user is refused at
        RCPT with 550 5.1.1; another domain's with 554 5.7.1 (no relaying).
        """
        replies = self.exchange(
            b"EHLO client.example.net",
            b"MAIL FROM:<sender@example.net>",
            b"RCPT TO:<nobody@example.com>",
            b"RCPT TO:<someone@example.net>",
        )
        self.assertTrue(replies[2].startswith(b"550 5.1.1 "), replies[2])
        self.assertTrue(replies[3].startswith(b"554 5.7.1 "), replies[3])
        self.assertEqual(list(self.root.glob("*")), [])

    def test_fileEditedWhileRunning(self) -> None:
        """
        A user and a domain added to the file take mail at once, without a
        restart; a domain removed with its alias is refused.
        """
        self.usersFile.write_text(
            USERS.replace("domain example.org\n", "domain example.net\n").replace(
                "alias @example.org alice@example.com\n", ""
            )
            + f"user dave@example.net {HASHER.hash('x')}\n"
        )
        replies = self.exchange(
            b"HELO client.example.net",
            b"MAIL FROM:<>",
            b"RCPT TO:<dave@example.net>",
            b"RCPT TO:<anyone@example.org>",
        )
        self.assertEqual(replies[2][:3], b"250")
        self.assertEqual(replies[3][:3], b"554")

    def test_authOffered(self) -> None:
        """
        EHLO offers AUTH when the backend has a checker, and not without
        one.
        """
        [ehlo] = self.exchange(b"EHLO client.example.net")
        self.assertIn(b"250-AUTH PLAIN LOGIN\r\n", ehlo)
        self.factory.backend = MaildirBackend(
            self.root, users=self.users, reactor=self.reactor, threadPool=self.pool
        )
        [ehlo] = self.exchange(b"EHLO client.example.net")
        self.assertNotIn(b"AUTH", ehlo)

    def test_login(self) -> None:
        """
        A user's password logs in, argon2id or bcrypt, with the address in
        any case.
        """
        for login, password in [
            ("alice@example.com", ALICE_PASSWORD),
            ("Alice@EXAMPLE.com", ALICE_PASSWORD),
            ("bob@example.com", BOB_PASSWORD),
        ]:
            replies = self.exchange(
                b"EHLO client.example.net", b"AUTH PLAIN " + _plain(login, password)
            )
            self.assertTrue(replies[1].startswith(b"235 2.7.0 "), (login, replies))

    def test_loginRefused(self) -> None:
        """
        A wrong password, an unknown user, an alias, a disabled user and an
        authorization identity of another user are all refused with 535
        5.7.8, and none of them leaves the password in the reply.
        """
        cases: list[tuple[str, str, str]] = [
            ("alice@example.com", "wrong", ""),
            ("nobody@example.com", ALICE_PASSWORD, ""),
            ("postmaster@example.com", ALICE_PASSWORD, ""),
            ("carol@example.com", "carol's", ""),
            ("alice@example.com", ALICE_PASSWORD, "bob@example.com"),
        ]
        for login, password, authzid in cases:
            replies = self.exchange(
                b"EHLO client.example.net",
                b"AUTH PLAIN " + _plain(login, password, authzid),
            )
            self.assertTrue(replies[1].startswith(b"535 5.7.8 "), (login, replies))
            self.assertNotIn(password.encode(), replies[1])

    def test_loginWhenChecksQueueUp(self) -> None:
        """
        When too many password checks wait already, AUTH fails with the
        temporary 454 4.7.0, so the client tries again later.
        """
        waiting = _ThreadPool(now=False)
        hashing = PasswordHashing(
            self.reactor, hasher=HASHER, threadPool=waiting, maxQueued=1
        )
        self.factory.backend = MaildirBackend(
            self.root,
            users=self.users,
            checker=UsersChecker(self.users, hashing),
            reactor=self.reactor,
            threadPool=self.pool,
        )
        first, _ = self.connect()
        first.dataReceived(b"EHLO a\r\nAUTH PLAIN " + _plain("a@b.c", "x") + b"\r\n")
        replies = self.exchange(
            b"EHLO client.example.net",
            b"AUTH PLAIN " + _plain("alice@example.com", ALICE_PASSWORD),
        )
        self.assertTrue(replies[1].startswith(b"454 4.7.0 "), replies)

    def test_domainsWithUsersRefused(self) -> None:
        """
        The users file names the domains: giving others besides it is an
        error, as is giving neither.
        """
        with self.assertRaises(ValueError):
            MaildirBackend(self.root, ["example.com"], users=self.users)
        with self.assertRaises(ValueError):
            MaildirBackend(self.root)

    def test_failedCheckIsTemporary(self) -> None:
        """
        A password check that breaks (not a refusal) is answered 454 4.7.0
        and logged, never 535 and never with its details.
        """

        class Broken:
            def authenticate(self, credentials: Any) -> Any:
                from twisted.internet.defer import fail

                return fail(RuntimeError("secret detail"))

        self.backend.checker = Broken()  # type: ignore[assignment]
        replies = self.exchange(
            b"EHLO client.example.net",
            b"AUTH PLAIN " + _plain("alice@example.com", ALICE_PASSWORD),
        )
        self.assertTrue(replies[1].startswith(b"454 4.7.0 "), replies)
        self.assertNotIn(b"secret", replies[1])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
