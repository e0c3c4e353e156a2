# -*- test-case-name: tests.test_smtp_submission -*-
"""
Tests for L{gomail_twisted.smtp.submission}: the submission backend behind
the real server, seen as the replies on the wire, the files in the store
and what the outbound queue is given.
"""

from __future__ import annotations

import base64
import errno
from collections.abc import Sequence
from pathlib import Path

import argon2
from hypothesis import given
from hypothesis import strategies as st
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.testing import StringTransport
from twisted.logger import LogEvent, Logger, formatEvent
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from gomail_twisted.smtp import (
    ConnectionInfo,
    ISMTPAuthSession,
    ISMTPBackend,
    MaildirBackend,
    SMTPReply,
    SMTPServerFactory,
    SMTPServerProtocol,
    SubmissionBackend,
)
from gomail_twisted.smtp.submission import completeHeaders
from gomail_twisted.users import PasswordHashing, UsersChecker, UsersDatabase
from tests._smtphelpers import exchange
from tests.test_smtp_maildir import _Reactor, _ThreadPool

PEER = IPv4Address("TCP", "127.0.0.1", 40000)
LOCAL = IPv4Address("TCP", "127.0.0.1", 587)

HASHER = argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
ALICE_PASSWORD = "correct horse"
BOB_PASSWORD = "battery staple"

USERS = f"""\
domain example.com
domain example.org
user alice@example.com {HASHER.hash(ALICE_PASSWORD)}
user bob@example.com {HASHER.hash(BOB_PASSWORD)}
alias postmaster@example.com alice@example.com
alias sales@example.com bob@example.com
alias @example.org alice@example.com
"""

MESSAGE = (
    b"Date: Mon, 30 Nov 2026 18:00:00 +0000\r\n"
    b"Message-ID: <1@client.example.com>\r\n"
    b"From: Alice <alice@example.com>\r\n"
    b"To: Dave <dave@example.net>\r\n"
    b"Subject: submitted\r\n"
    b"\r\n"
    b"Hello.\r\n"
    b"..A line that began with a dot.\r\n"
)
#: The message as the server hands it on: dot-unstuffed.
SENT = MESSAGE.replace(b"\r\n..A", b"\r\n.A")


def plain(login: str, password: str) -> bytes:
    """
    An AUTH PLAIN command line for a login.
    """
    return b"AUTH PLAIN " + base64.b64encode(f"\0{login}\0{password}".encode())


class RecordingOutbound:
    """
    An outbound queue that records each submission and answers with
    C{result}: L{None} for a new queue identifier at once, an exception to
    fail with, or a Deferred to answer with.
    """

    def __init__(self) -> None:
        self.submitted: list[tuple[str, list[str], bytes]] = []
        self.result: Exception | Deferred[str] | None = None

    def submit(
        self, sender: str, recipients: Sequence[str], data: bytes
    ) -> Deferred[str]:
        self.submitted.append((sender, list(recipients), data))
        if isinstance(self.result, Exception):
            return fail(self.result)
        if self.result is not None:
            return self.result
        return succeed(f"Q{len(self.submitted)}")


class SubmissionTestsMixin:
    """
    The real server over a L{StringTransport}, its submission backend
    reading a users file, its store and password checks on a pool that
    runs at once, its queue a L{RecordingOutbound}.
    """

    def setUp(self) -> None:
        assert isinstance(self, SynchronousTestCase)
        self.root = Path(self.mktemp())
        usersFile = Path(self.mktemp())
        usersFile.write_text(USERS)
        self.reactor = _Reactor()
        self.pool = _ThreadPool()
        users = UsersDatabase(usersFile)
        hashing = PasswordHashing(self.reactor, hasher=HASHER, threadPool=self.pool)
        self.local = MaildirBackend(
            self.root,
            users=users,
            checker=UsersChecker(users, hashing),
            reactor=self.reactor,
            threadPool=self.pool,
        )
        self.outbound = RecordingOutbound()
        self.backend = SubmissionBackend(self.local, self.outbound)
        self.factory = SMTPServerFactory(
            self.backend,
            hostname="mail.example.com",
            allowPlaintextAuth=True,
            reactor=self.reactor,
        )

    def connect(self) -> tuple[SMTPServerProtocol, StringTransport]:
        assert isinstance(self, SynchronousTestCase)
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
        assert isinstance(self, SynchronousTestCase)
        return exchange(self, self.factory, *lines)

    def send(
        self,
        sender: str,
        recipients: Sequence[str],
        login: str = "alice@example.com",
        password: str = ALICE_PASSWORD,
        message: bytes = MESSAGE,
    ) -> list[bytes]:
        """
        Log in and send a message (L{MESSAGE}); return the replies to MAIL,
        each RCPT, DATA and the end of data.
        """
        replies = self.exchange(
            b"EHLO client.example.com",
            plain(login, password),
            f"MAIL FROM:<{sender}>".encode(),
            *(f"RCPT TO:<{r}>".encode() for r in recipients),
            b"DATA",
            message + b".",
        )
        assert replies[1].startswith(b"235 "), replies[1]
        return replies[2:]

    def files(self, user: str, folder: str = "new") -> list[bytes]:
        directory = self.root / user / folder
        if not directory.is_dir():
            return []
        return [p.read_bytes() for p in sorted(directory.iterdir())]


class SessionTests(SubmissionTestsMixin, SynchronousTestCase):
    """
    AUTH, the sender policy and the recipients.
    """

    def test_interfaces(self) -> None:
        """
        The backend provides L{ISMTPBackend} and its sessions
        L{ISMTPAuthSession}, so AUTH is offered.
        """
        self.assertTrue(verifyObject(ISMTPBackend, self.backend))
        info = ConnectionInfo("127.0.0.1", 40000, "127.0.0.1", 587, "mail")
        session = self.backend.newSession(info)
        self.assertTrue(verifyObject(ISMTPAuthSession, session))
        [ehlo] = self.exchange(b"EHLO client.example.com")
        self.assertIn(b"250-AUTH PLAIN LOGIN\r\n", ehlo)

    def test_mailBeforeAuthRefused(self) -> None:
        """
        MAIL before AUTH is refused with 530 5.7.0 (RFC 4954 6), for a
        remote and a local recipient alike, and nothing is queued or
        stored.
        """
        replies = self.exchange(
            b"EHLO client.example.com",
            b"MAIL FROM:<alice@example.com>",
            b"RCPT TO:<dave@example.net>",
            b"RCPT TO:<bob@example.com>",
            b"DATA",
        )
        self.assertEqual(replies[1], b"530 5.7.0 Authentication required\r\n")
        self.assertEqual([r[:3] for r in replies[2:]], [b"503"] * 3)
        self.assertEqual(self.outbound.submitted, [])
        self.assertFalse(self.root.exists())

    def test_wrongPasswordStillRefused(self) -> None:
        """
        After a refused login MAIL is still refused with 530 5.7.0.
        """
        replies = self.exchange(
            b"EHLO client.example.com",
            plain("alice@example.com", "wrong"),
            b"MAIL FROM:<alice@example.com>",
        )
        self.assertTrue(replies[1].startswith(b"535 5.7.8 "), replies[1])
        self.assertTrue(replies[2].startswith(b"530 5.7.0 "), replies[2])

    def test_ownAddressesAccepted(self) -> None:
        """
        A user may send as their address in any case, and as every address
        that leads to them: an alias, a domain alias.
        """
        for sender in [
            "alice@example.com",
            "Alice@EXAMPLE.com",
            '"alice"@example.com',
            "postmaster@example.com",
            "anyone@example.org",
        ]:
            replies = self.exchange(
                b"EHLO client.example.com",
                plain("alice@example.com", ALICE_PASSWORD),
                f"MAIL FROM:<{sender}>".encode(),
            )
            self.assertEqual(replies[2], b"250 2.1.0 Sender OK\r\n", sender)

    def test_othersAddressesRefused(self) -> None:
        """
        Another user's address or alias, an unknown address of our domains,
        another domain's address and the null sender are refused with 553
        5.7.1 under the C{"own"} policy.
        """
        for sender, reply in [
            ("bob@example.com", b"553 5.7.1 Sender address not owned by user\r\n"),
            ("sales@example.com", b"553 5.7.1 Sender address not owned by user\r\n"),
            ("nobody@example.com", b"553 5.7.1 Sender address not owned by user\r\n"),
            ("alice@example.net", b"553 5.7.1 Sender address not owned by user\r\n"),
            (
                "",
                b"553 5.7.1 Null sender not allowed here,"
                b" send from your own address\r\n",
            ),
        ]:
            replies = self.exchange(
                b"EHLO client.example.com",
                plain("alice@example.com", ALICE_PASSWORD),
                f"MAIL FROM:<{sender}>".encode(),
                b"RCPT TO:<dave@example.net>",
            )
            self.assertEqual(replies[2], reply, sender)
            self.assertEqual(replies[3][:3], b"503", sender)

    @given(
        st.text(
            st.sampled_from(
                "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_+"
            ),
            min_size=1,
            max_size=30,
        ),
        st.sampled_from(["example.org", "EXAMPLE.org", "example.com", "example.net"]),
    )
    def test_ownershipFollowsResolution(self, local: str, domain: str) -> None:
        """
        Under the C{"own"} policy an address belongs to exactly the user
        that mail for it goes to: every address of the aliased domain is
        Alice's and never Bob's, and an address no one receives is no
        one's.
        """
        address = f"{local}@{domain}"
        owner = self.local.users.resolve(address) if self.local.users else None
        for login in ["alice@example.com", "bob@example.com"]:
            mine = owner is not None and owner.address == login
            self.assertEqual(self.backend.mayUseSender(login, address), mine)
        if domain.lower() == "example.org":
            self.assertTrue(self.backend.mayUseSender("alice@example.com", address))

    def test_anyPolicy(self) -> None:
        """
        Under the C{"any"} policy a user may send as anyone, and with the
        null sender; the queue gets the sender as given.
        """
        self.factory.backend = SubmissionBackend(
            self.local, self.outbound, senderPolicy="any"
        )
        for sender in ["bob@example.com", "someone@example.net", ""]:
            replies = self.send(sender, ["dave@example.net"])
            self.assertEqual(replies[0], b"250 2.1.0 Sender OK\r\n")
            self.assertTrue(replies[-1].startswith(b"250 2.0.0 "), replies[-1])
        self.assertEqual(
            [s for s, _, _ in self.outbound.submitted],
            ["bob@example.com", "someone@example.net", ""],
        )

    def test_recipients(self) -> None:
        """
        A user or alias of our domains and any address of another domain
        are accepted; an unknown address of our domains is refused with 550
        5.1.1, as on the inbound port.
        """
        replies = self.exchange(
            b"EHLO client.example.com",
            plain("alice@example.com", ALICE_PASSWORD),
            b"MAIL FROM:<alice@example.com>",
            b"RCPT TO:<bob@example.com>",
            b"RCPT TO:<sales@example.com>",
            b"RCPT TO:<dave@example.net>",
            b"RCPT TO:<Postmaster>",
            b"RCPT TO:<nobody@example.com>",
        )
        self.assertEqual(
            [r[:9] for r in replies[3:]], [b"250 2.1.5"] * 4 + [b"550 5.1.1"]
        )

    def test_loginKeptAcrossTransactions(self) -> None:
        """
        One login serves several transactions, with RSET between or not.
        """
        replies = self.exchange(
            b"EHLO client.example.com",
            plain("alice@example.com", ALICE_PASSWORD),
            b"MAIL FROM:<alice@example.com>",
            b"RCPT TO:<dave@example.net>",
            b"DATA",
            MESSAGE + b".",
            b"MAIL FROM:<alice@example.com>",
            b"RSET",
            b"MAIL FROM:<alice@example.com>",
            b"RCPT TO:<erin@example.net>",
            b"DATA",
            MESSAGE + b".",
        )
        self.assertEqual(
            b" ".join(r[:3] for r in replies[2:]),
            b"250 250 354 250 250 250 250 250 354 250",
        )
        self.assertEqual(
            [r for _, r, _ in self.outbound.submitted],
            [["dave@example.net"], ["erin@example.net"]],
        )

    def test_constructorChecks(self) -> None:
        """
        A backend without a checker (no one could log in) and an unknown
        sender policy are refused.
        """
        noChecker = MaildirBackend(self.root, ["example.com"])
        with self.assertRaises(ValueError):
            SubmissionBackend(noChecker, self.outbound)
        with self.assertRaises(ValueError):
            SubmissionBackend(
                self.local,
                self.outbound,
                senderPolicy="anyone",  # type: ignore[arg-type]
            )


class DeliveryTests(SubmissionTestsMixin, SynchronousTestCase):
    """
    Where a submitted message goes, and what the client is told.
    """

    def test_localRecipient(self) -> None:
        """
        A message to a local user lands in their INBOX with C{Return-Path:}
        and the server's C{Received:} header (C{with ESMTPA}), lines ending
        in LF; nothing is queued.
        """
        replies = self.send("alice@example.com", ["bob@example.com"])
        self.assertTrue(replies[-1].startswith(b"250 2.0.0 OK: queued as "))
        [stored] = self.files("bob@example.com")
        self.assertTrue(
            stored.startswith(b"Return-Path: <alice@example.com>\nReceived: from ")
        )
        self.assertIn(b" with ESMTPA id ", stored)
        self.assertTrue(
            stored.endswith(
                b"\n\n" + SENT.split(b"\r\n\r\n")[1].replace(b"\r\n", b"\n")
            )
        )
        self.assertEqual(self.outbound.submitted, [])

    def test_remoteRecipients(self) -> None:
        """
        Remote recipients are given to the queue in one submission: the
        sender, the recipients in order, and the message as received (the
        server's C{Received:} header first, CRLF line ends,
        dot-unstuffed); nothing is stored.
        """
        replies = self.send(
            "Alice@Example.com", ["dave@example.net", "Erin@Example.NET"]
        )
        self.assertTrue(replies[-1].startswith(b"250 2.0.0 "), replies[-1])
        [(sender, recipients, data)] = self.outbound.submitted
        self.assertEqual(sender, "Alice@Example.com")
        self.assertEqual(recipients, ["dave@example.net", "Erin@Example.NET"])
        self.assertTrue(data.startswith(b"Received: from client.example.com "))
        self.assertTrue(data.endswith(b"\r\n" + SENT))
        self.assertEqual(data.count(b"Received:"), 1)
        self.assertFalse(self.root.exists())

    def test_mixedRecipients(self) -> None:
        """
        Local recipients get their copy in the store, remote ones are
        queued, each once, whatever the order of the RCPTs.
        """
        replies = self.send(
            "alice@example.com",
            ["dave@example.net", "bob@example.com", "sales@example.com", "x@y.test"],
        )
        self.assertTrue(replies[-1].startswith(b"250 2.0.0 "), replies[-1])
        self.assertEqual(len(self.files("bob@example.com")), 1)
        [(_, recipients, _)] = self.outbound.submitted
        self.assertEqual(recipients, ["dave@example.net", "x@y.test"])

    def test_replyWaitsForQueue(self) -> None:
        """
        The 250 is sent only once the queue says the message is on disk.
        """
        pending: Deferred[str] = Deferred()
        self.outbound.result = pending
        protocol, transport = self.connect()
        protocol.dataReceived(
            b"EHLO client.example.com\r\n"
            + plain("alice@example.com", ALICE_PASSWORD)
            + b"\r\nMAIL FROM:<alice@example.com>\r\n"
            b"RCPT TO:<dave@example.net>\r\nDATA\r\n" + MESSAGE + b".\r\n"
        )
        self.assertNotIn(b"queued as", transport.value())
        transport.clear()
        pending.callback("Q1")
        self.assertTrue(transport.value().startswith(b"250 2.0.0 OK: queued as "))

    def test_queueFailure(self) -> None:
        """
        When the queue cannot take the message the client is told 451
        4.3.0 (452 4.3.1 for a full disk, the queue's own reply as given),
        and nothing is stored for a message to remote recipients only.
        """
        for error, reply in [
            (RuntimeError("broken"), b"451 4.3.0 "),
            (OSError(errno.ENOSPC, "No space left"), b"452 4.3.1 "),
            (SMTPReply(452, "4.3.1", "Spool full"), b"452 4.3.1 Spool full"),
        ]:
            self.outbound.result = error
            replies = self.send("alice@example.com", ["dave@example.net"])
            self.assertTrue(replies[-1].startswith(reply), replies[-1])
            self.assertNotIn(b"broken", replies[-1])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
        self.assertFalse(self.root.exists())

    def test_queueFailureAfterLocalDelivery(self) -> None:
        """
        When the queue fails after the local copies are stored, the client
        is told 451 4.3.0, so it sends again: local recipients may get the
        message twice, remote ones never get one the client was told
        failed.
        """
        self.outbound.result = RuntimeError("broken")
        replies = self.send(
            "alice@example.com", ["bob@example.com", "dave@example.net"]
        )
        self.assertTrue(replies[-1].startswith(b"451 4.3.0 "), replies[-1])
        self.assertEqual(len(self.files("bob@example.com")), 1)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_storeFailureQueuesNothing(self) -> None:
        """
        When the store cannot take the local copies the client is told 451
        4.3.0, and the queue is not asked.
        """
        self.root.write_bytes(b"not a directory")
        replies = self.send(
            "alice@example.com", ["bob@example.com", "dave@example.net"]
        )
        self.assertTrue(replies[-1].startswith(b"451 4.3.0 "), replies[-1])
        self.assertEqual(self.outbound.submitted, [])
        self.flushLoggedErrors()


#: A message as a script might send it: no Date, no Message-ID.
BARE = b"From: alice@example.com\r\nSubject: bare\r\n\r\nHello.\r\n"


class HeaderTests(SubmissionTestsMixin, SynchronousTestCase):
    """
    The C{Date:} and C{Message-ID:} fields a submitted message lacks (RFC
    6409 8.3, 8.4).
    """

    def test_missingFieldsAdded(self) -> None:
        """
        A message without C{Date:} and C{Message-ID:} gets both at the end
        of its header, the same in the queued and the stored copy; the
        message ID names our host.
        """
        self.send(
            "alice@example.com", ["dave@example.net", "bob@example.com"], message=BARE
        )
        [(_, _, queued)] = self.outbound.submitted
        head, body = queued.split(b"\r\n\r\n", 1)
        self.assertEqual(body, b"Hello.\r\n")
        lines = head.split(b"\r\n")
        self.assertEqual(lines[-4:-2], [b"From: alice@example.com", b"Subject: bare"])
        self.assertRegex(
            lines[-2], rb"\ADate: \w{3}, \d{2} \w{3} \d{4} \d\d:\d\d:\d\d [-+]\d{4}\Z"
        )
        self.assertRegex(
            lines[-1], rb"\AMessage-ID: <[0-9a-f]{32}@mail\.example\.com>\Z"
        )
        [stored] = self.files("bob@example.com")
        self.assertTrue(stored.endswith(queued.replace(b"\r\n", b"\n")))

    def test_presentFieldsKept(self) -> None:
        """
        A message with both fields, in any case, is passed on unchanged.
        """
        message = BARE.replace(
            b"\r\n\r\n",
            b"\r\ndate: Mon, 30 Nov 2026 18:00:00 +0000"
            b"\r\nMESSAGE-ID:\r\n <x@y>\r\n\r\n",
        )
        self.send("alice@example.com", ["dave@example.net"], message=message)
        [(_, _, queued)] = self.outbound.submitted
        self.assertTrue(queued.endswith(b"\r\n" + message))

    def test_turnedOff(self) -> None:
        """
        With C{addMissingHeaders} off, a message is passed on as received.
        """
        self.factory.backend = SubmissionBackend(
            self.local, self.outbound, addMissingHeaders=False
        )
        self.send("alice@example.com", ["dave@example.net"], message=BARE)
        [(_, _, queued)] = self.outbound.submitted
        self.assertTrue(queued.endswith(b"\r\n" + BARE))
        self.assertNotIn(b"Message-ID", queued)

    def test_completeHeaders(self) -> None:
        """
        Only the missing field is added; a message with no blank line after
        its header is left alone.
        """
        now = 1_800_000_000.0
        for raw, added in [
            (b"Date: x\r\nMessage-ID: <a@b>\r\n\r\nbody\r\n", []),
            (b"Date: x\r\n\r\nbody\r\n", [b"Message-ID"]),
            (b"Message-ID: <a@b>\r\n\r\n", [b"Date"]),
            (b"Subject: no blank line\r\n", []),
            (b"Subject: x\r\n\r\nDate: in the body\r\n", [b"Date", b"Message-ID"]),
        ]:
            completed = completeHeaders(raw, "mail.example.com", now)
            head, _, rest = raw.partition(b"\r\n\r\n")
            if not added:
                self.assertIs(completed, raw)
                continue
            newHead, _, newRest = completed.partition(b"\r\n\r\n")
            self.assertEqual(newRest, rest)
            self.assertTrue(newHead.startswith(head + b"\r\n"))
            names = [
                line.split(b":")[0] for line in newHead[len(head) + 2 :].split(b"\r\n")
            ]
            self.assertEqual(names, added, raw)


class SentCopyTests(SubmissionTestsMixin, SynchronousTestCase):
    """
    The copy in the sender's C{Sent} folder.
    """

    def sentFiles(self, user: str = "alice@example.com") -> list[bytes]:
        return self.files(user, ".Sent/cur")

    def test_noCopyByDefault(self) -> None:
        """
        Without C{sentCopy} no copy is kept: the sender's account is not
        even made.
        """
        self.send("alice@example.com", ["dave@example.net"])
        self.assertFalse((self.root / "alice@example.com").exists())

    def test_copyKept(self) -> None:
        """
        With C{sentCopy} the message as received is in the sender's C{Sent}
        folder, flagged seen, once the 250 is sent; the sender's account is
        made for it.
        """
        self.factory.backend = SubmissionBackend(
            self.local, self.outbound, sentCopy=True
        )
        replies = self.send("postmaster@example.com", ["dave@example.net"])
        self.assertTrue(replies[-1].startswith(b"250 2.0.0 "), replies[-1])
        [copy] = self.sentFiles()
        [(_, _, queued)] = self.outbound.submitted
        self.assertEqual(copy, queued.replace(b"\r\n", b"\n"))
        [name] = (self.root / "alice@example.com" / ".Sent" / "cur").iterdir()
        self.assertTrue(name.name.endswith(":2,S"), name)
        self.assertEqual(self.files("alice@example.com"), [])

    def test_missingFolderMade(self) -> None:
        """
        A C{Sent} folder the user deleted is made again for the copy; a
        message to local recipients only gets a copy too.
        """
        self.factory.backend = SubmissionBackend(
            self.local, self.outbound, sentCopy=True
        )
        opened = self.local.store.openAccount("alice@example.com", create=True)
        account = self.successResultOf(opened)
        self.successResultOf(account.deleteFolder("Sent"))
        self.assertFalse((self.root / "alice@example.com" / ".Sent").exists())
        self.send("alice@example.com", ["bob@example.com"])
        self.assertEqual(len(self.sentFiles()), 1)
        self.assertEqual(len(self.files("bob@example.com")), 1)

    def test_otherFolder(self) -> None:
        """
        The copies go to the folder named by C{sentFolder}, made if
        missing.
        """
        self.factory.backend = SubmissionBackend(
            self.local, self.outbound, sentCopy=True, sentFolder="Sent/Mail"
        )
        self.send("alice@example.com", ["dave@example.net"])
        self.assertEqual(len(self.files("alice@example.com", ".Sent.Mail/cur")), 1)
        self.assertEqual(self.sentFiles(), [])

    def test_copyFailureStillAccepted(self) -> None:
        """
        A copy that cannot be kept is logged, and the client still gets
        250: the message went out.
        """
        self.factory.backend = SubmissionBackend(
            self.local, self.outbound, sentCopy=True, sentFolder="Bad\0Name"
        )
        replies = self.send("alice@example.com", ["dave@example.net"])
        self.assertTrue(replies[-1].startswith(b"250 2.0.0 "), replies[-1])
        self.assertEqual(len(self.outbound.submitted), 1)
        self.assertEqual(len(self.flushLoggedErrors()), 1)


class MaildirBackendTests(SubmissionTestsMixin, SynchronousTestCase):
    """
    The L{MaildirBackend} beside the submission port: on the inbound port
    it never relays, with a checker or not; for the outbound queue it tells
    local addresses from others and takes notices for local senders.
    """

    def test_noRelayAfterAuth(self) -> None:
        """
        A user logged in on the inbound backend still cannot send to
        another domain: 554 5.7.1, nothing queued.
        """
        self.factory.backend = self.local
        replies = self.exchange(
            b"EHLO client.example.com",
            plain("alice@example.com", ALICE_PASSWORD),
            b"MAIL FROM:<alice@example.com>",
            b"RCPT TO:<dave@example.net>",
        )
        self.assertTrue(replies[1].startswith(b"235 "), replies[1])
        self.assertEqual(replies[3], b"554 5.7.1 Relay access denied\r\n")
        self.assertEqual(self.outbound.submitted, [])

    def test_isLocal(self) -> None:
        """
        An address of our domains is local whether or not a user has it;
        the bare postmaster is local; another domain's address is not.
        """
        for address, local in [
            ("alice@example.com", True),
            ("Nobody@EXAMPLE.com", True),
            ("anyone@example.org", True),
            ("Postmaster", True),
            ("alice@example.net", False),
            ("someone@[192.0.2.1]", False),
        ]:
            self.assertEqual(self.local.isLocal(address), local, address)

    def test_deliverNotice(self) -> None:
        """
        A notice for a local address (what the queue gives back to a local
        sender) lands in the INBOX of the user it leads to, with
        C{Return-Path: <>} and lines ending in LF.
        """
        notice = b"From: MAILER-DAEMON@example.com\r\nSubject: failed\r\n\r\nSorry.\r\n"
        self.assertIsNone(
            self.successResultOf(self.local.deliverNotice("sales@example.com", notice))
        )
        [stored] = self.files("bob@example.com")
        self.assertEqual(stored, b"Return-Path: <>\n" + notice.replace(b"\r\n", b"\n"))

    def test_deliverNoticeLogged(self) -> None:
        """
        The log line of a delivered notice names it by its Message-ID, since
        it has no SMTP queue ID.
        """
        events: list[LogEvent] = []
        self.patch(MaildirBackend, "_log", Logger(observer=events.append))
        notice = b"Message-ID: <r1@example.com>\r\nSubject: failed\r\n\r\nSorry.\r\n"
        self.successResultOf(self.local.deliverNotice("sales@example.com", notice))
        [stored] = self.files("bob@example.com")
        self.assertEqual(
            [formatEvent(e) for e in events],
            [
                f"Maildir delivered <r1@example.com> ({len(stored)} bytes) to "
                "['bob@example.com']"
            ],
        )

    def test_deliverNoticeRefused(self) -> None:
        """
        A notice for an address that leads to no user, or for another
        domain, fails with the reply that says so; nothing is stored.
        """
        for address, code in [
            ("nobody@example.com", 550),
            ("dave@example.net", 554),
        ]:
            failure = self.failureResultOf(
                self.local.deliverNotice(address, b"Subject: x\r\n\r\nx\r\n"),
                SMTPReply,
            )
            self.assertEqual(failure.value.code, code)
        self.assertFalse(self.root.exists())
