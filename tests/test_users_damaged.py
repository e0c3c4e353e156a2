# -*- test-case-name: tests.test_users_damaged -*-
"""
Tests for what a skipped line of the users file does to the servers: the
address or domain it names is undecided
(L{gomail_twisted.users.UsersDatabase.damage}), so mail for it gets a
temporary SMTP error and its login a temporary failure that access control
does not count, each logged with the file and the line number.
"""

from __future__ import annotations

import base64
import errno
from collections.abc import Sequence
from pathlib import Path

import argon2
from hypothesis import given
from hypothesis import strategies as st
from twisted.cred.error import UnauthorizedLogin
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, fail, succeed
from twisted.logger import LogEvent, LogLevel, formatEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from gomail_twisted.imap4 import IMAP4ServerFactory
from gomail_twisted.imap4 import StoreBackend as IMAPStoreBackend
from gomail_twisted.ipac import IPAccessControl
from gomail_twisted.maildir import MaildirStore
from gomail_twisted.pop3 import POP3ServerFactory
from gomail_twisted.pop3 import StoreBackend as POP3StoreBackend
from gomail_twisted.smtp import MaildirBackend, SMTPServerFactory, SubmissionBackend
from gomail_twisted.users import (
    LoginUnavailable,
    PasswordHashing,
    Problem,
    UsersChecker,
    UsersDatabase,
    UserUnavailable,
)
from tests.test_ipac_servers import Connection
from tests.test_smtp_maildir import _Reactor, _ThreadPool

HASHER = argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
PASSWORD = "correct horse"
HASH = HASHER.hash(PASSWORD)
BROKEN_HASH = "not-a-hash"
NOT_A_HASH = "the password hash is neither argon2 nor bcrypt"

#: A file with a line of each kind that leaves addresses undecided.
USERS = f"""\
domain example.com
user alice@example.com {HASH}
user bob@example.com {BROKEN_HASH}
alias @example.com alice@example.com
domain example.org junk
user carol@example.org {HASH}
alias sales@example.com bob@example.com
"""

MESSAGE = b"From: erin@example.net\r\nSubject: damaged\r\n\r\nHello.\r\n"
PEER = "192.0.2.7"


def _plain(login: str, password: str) -> bytes:
    return base64.b64encode(f"\0{login}\0{password}".encode())


class LogCapture:
    """
    Everything logged while a test runs, as text.
    """

    def __init__(self, test: SynchronousTestCase) -> None:
        self.events: list[LogEvent] = []
        globalLogPublisher.addObserver(self.events.append)
        test.addCleanup(globalLogPublisher.removeObserver, self.events.append)

    def lines(self, level: LogLevel | None = None) -> list[str]:
        """
        The formatted events, of one level or of all.
        """
        return [
            formatEvent(e)
            for e in self.events
            if level is None or e.get("log_level") == level
        ]


def _database(test: SynchronousTestCase, text: str | bytes) -> UsersDatabase:
    path = Path(test.mktemp())
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return UsersDatabase(path)


class DamageTests(SynchronousTestCase):
    """
    L{UsersDatabase.damage}: which addresses a skipped line leaves
    undecided.
    """

    def test_table(self) -> None:
        """
        An address is damaged by its own skipped line, by its domain's
        skipped line when no valid line declares the domain, or by its
        domain alias's skipped line; never when a valid line defines it.
        """
        domain = "domain example.com"
        alice = f"user alice@example.com {HASH}"
        cases: list[tuple[list[str] | bytes, str, int | None]] = [
            ([domain, "user bob@example.com x"], "bob@example.com", 2),
            ([domain, "user bob@example.com x"], "Bob@EXAMPLE.com", 2),
            ([domain, "user bob@example.com x"], "nobody@example.com", None),
            ([domain, "user bob@example.com x"], "bob@example.net", None),
            ([domain, "user bob@example.com x"], "not an address", None),
            # The domain alias does not take the mail of a skipped user.
            (
                [domain, alice, "alias @example.com alice@example.com", "user b@x.y"],
                "else@example.com",
                None,
            ),
            (
                [domain, alice, "alias @example.com alice@example.com", "user b@x.y"],
                "b@x.y",
                4,
            ),
            (
                [domain, alice, "alias @example.com alice@example.com", "user bob@x"],
                "alice@example.com",
                None,
            ),
            (
                [domain, alice, "alias @example.com alice@example.com", "user bob@"],
                "bob@example.com",
                None,
            ),
            (
                [
                    domain,
                    alice,
                    "alias @example.com alice@example.com",
                    "user bob@example.com x",
                ],
                "bob@example.com",
                4,
            ),
            # A garbage domain line: every address of the domain.
            (["domain example.com junk", alice], "alice@example.com", 2),
            (["domain example.com junk", alice], "x@example.com", 1),
            (["domian example.com", alice], "x@example.com", 1),
            # A domain alias line: every address no valid line defines.
            ([domain, alice, "alias @example.com a@example.com b"], "x@example.com", 3),
            (
                [domain, alice, "alias @example.com alice@example.com b"],
                "alice@example.com",
                None,
            ),
            # A second definition changes nothing.
            ([domain, alice, alice], "alice@example.com", None),
            ([domain, domain, alice], "x@example.com", None),
            ([domain, alice, "user alice@example.com x"], "alice@example.com", None),
            # An alias through a skipped line is skipped too.
            (
                [
                    domain,
                    "user bob@example.com x",
                    "alias s@example.com bob@example.com",
                ],
                "s@example.com",
                3,
            ),
            (
                [domain, "alias postmaster@example.com nobody@example.com"],
                "postmaster",
                2,
            ),
            # What is still readable of a malformed line.
            ([domain, f"usr bob@example.com {HASH}"], "bob@example.com", 2),
            ([domain, f"bob@example.com {HASH}"], "bob@example.com", 2),
            ([domain, f"user bob@example.com {HASH} disabld"], "bob@example.com", 2),
            ([domain, f"user {HASH} bob@example.com"], "bob@example.com", None),
            (b"domain example.com\nuser bob@example.com \xff\n", "bob@example.com", 2),
            ([domain, f"user bob@example.net {HASH}"], "bob@example.net", 2),
        ]
        for text, address, line in cases:
            raw = text if isinstance(text, bytes) else "\n".join(text) + "\n"
            db = _database(self, raw)
            problem = db.damage(address)
            self.assertEqual(
                None if problem is None else problem.line, line, (text, address)
            )
            self.assertEqual(db.isDamaged(address), line is not None)

    def test_problemsNameWhatTheyName(self) -> None:
        """
        Each skipped line's problem names the address, C{@domain} or domain
        it gives, when one can be read; the reason never quotes the line.
        """
        db = _database(self, USERS + f"user {BROKEN_HASH}\n")
        self.assertEqual(
            db.problems(),
            (
                Problem(3, NOT_A_HASH, "bob@example.com"),
                Problem(5, "'domain' takes one domain", "example.org"),
                Problem(
                    6,
                    "example.org is not a local domain: add a 'domain example.org'"
                    " line",
                    "carol@example.org",
                ),
                Problem(
                    7,
                    "bob@example.com is on line 3, which was skipped",
                    "sales@example.com",
                ),
                Problem(8, "'user' takes an address and a password hash", None),
            ),
        )

    def test_loginDamageIgnoresDomainAlias(self) -> None:
        """
        A skipped domain alias line makes its domain's unknown addresses
        damaged for mail but not for logins, which an alias never gives.
        """
        db = _database(
            self, "domain example.com\nalias @example.com alice@example.com x\n"
        )
        self.assertTrue(db.isDamaged("x@example.com"))
        self.assertIsNone(db.loginDamage("x@example.com"))
        db = _database(self, USERS)
        self.assertEqual(
            db.loginDamage("bob@example.com"), db.damage("bob@example.com")
        )
        self.assertIsNone(db.loginDamage("alice@example.com"))

    def test_editFixes(self) -> None:
        """
        Once the operator fixes the line, the address is no longer damaged
        and resolves.
        """
        db = _database(self, USERS)
        self.assertTrue(db.isDamaged("bob@example.com"))
        Path(db.path).write_text(USERS.replace(BROKEN_HASH, HASH))
        self.assertFalse(db.isDamaged("bob@example.com"))
        user = db.resolve("sales@example.com")
        self.assertEqual(None if user is None else user.address, "bob@example.com")


_ADDRESSES = ["a@example.com", "b@example.com", "c@example.org", "@example.org"]
_LINES = st.one_of(
    st.sampled_from(["domain example.com", "domain example.org", "domain x y"]),
    st.builds(
        "user {} {}".format,
        st.sampled_from(_ADDRESSES[:3]),
        st.sampled_from([HASH, BROKEN_HASH]),
    ),
    st.builds(
        "alias {} {}".format,
        st.sampled_from(_ADDRESSES),
        st.sampled_from(_ADDRESSES[:3]),
    ),
    st.builds("{} {}".format, st.sampled_from(["usr", "alias", "#"]), st.text()),
)


class DamagePropertyTests(SynchronousTestCase):
    """
    Properties of L{UsersDatabase.damage} over files of random lines.
    """

    @given(st.lists(_LINES, max_size=8))
    def test_definedNeverDamaged(self, lines: list[str]) -> None:
        """
        An address that resolves through its own user or alias line is
        never damaged; a damaged one is named by a skipped line, and its
        line is one of the file's problems.
        """
        db = _database(self, "\n".join(lines) + "\n")
        problems = db.problems()
        defined = {u.address for u in db.users()} | {a.alias for a in db.aliases()}
        for address in [*_ADDRESSES[:3], "z@example.com", "z@example.org"]:
            problem = db.damage(address)
            if address in defined:
                self.assertIsNone(problem, lines)
            elif problem is not None:
                self.assertIn(problem, problems)
                domain = address.rpartition("@")[2]
                self.assertIn(problem.name, (address, domain, "@" + domain))


class CheckerTests(SynchronousTestCase):
    """
    L{UsersChecker} with a damaged login.
    """

    def setUp(self) -> None:
        self.reactor = _Reactor()
        self.pool = _ThreadPool()
        self.users = _database(self, USERS)
        self.hashing = PasswordHashing(
            self.reactor, hasher=HASHER, threadPool=self.pool
        )
        self.checker = UsersChecker(self.users, self.hashing)
        self.log = LogCapture(self)

    def test_damagedLoginIsTemporary(self) -> None:
        """
        A login whose line (or whose domain's) was skipped fails with
        L{UserUnavailable}, a L{LoginUnavailable}, whatever the password,
        with one warning naming the file and line, never the hash.
        """
        for login, line in [("bob@example.com", 3), ("carol@example.org", 6)]:
            failure = self.failureResultOf(
                self.checker.checkPassword(login, PASSWORD), UserUnavailable
            )
            self.assertIsInstance(failure.value, LoginUnavailable)
            self.assertEqual(failure.value.problem.line, line)
        warnings = [
            w for w in self.log.lines(LogLevel.warn) if w.startswith("Login for")
        ]
        self.assertEqual(len(warnings), 2, warnings)
        self.assertIn(f"{self.users.path}:3 was skipped ({NOT_A_HASH})", warnings[0])
        self.assertIn("Login for bob@example.com cannot be checked", warnings[0])
        self.assertNotIn(BROKEN_HASH, "".join(self.log.lines()))

    def test_othersUnchanged(self) -> None:
        """
        The users on other lines log in; an unknown login, and an alias
        (here through the domain alias), are still refused.
        """
        user = self.successResultOf(
            self.checker.checkPassword("alice@example.com", PASSWORD)
        )
        self.assertEqual(user.address, "alice@example.com")
        for login in ("nobody@example.net", "else@example.com", "x@example.net"):
            self.failureResultOf(
                self.checker.checkPassword(login, PASSWORD), UnauthorizedLogin
            )


class _Outbound:
    """
    An outbound queue that records what it is given, or fails with
    C{error}.
    """

    def __init__(self) -> None:
        self.submitted: list[tuple[str, list[str]]] = []
        self.error: Exception | None = None

    def submit(
        self, sender: str, recipients: Sequence[str], data: bytes
    ) -> Deferred[str]:
        if self.error is not None:
            return fail(self.error)
        self.submitted.append((sender, list(recipients)))
        return succeed(f"Q{len(self.submitted)}")


class ServerTests(SynchronousTestCase):
    """
    The real servers over a users file with skipped lines, seen on the
    wire, with access control that blocks at the first failed login and
    allows no address.
    """

    def setUp(self) -> None:
        self.root = Path(self.mktemp())
        self.reactor = _Reactor()
        self.pool = _ThreadPool()
        self.users = _database(self, USERS)
        hashing = PasswordHashing(self.reactor, hasher=HASHER, threadPool=self.pool)
        self.checker = UsersChecker(self.users, hashing)
        self.store = MaildirStore(self.root, reactor=self.reactor, threadPool=self.pool)
        self.control = IPAccessControl(self.reactor, blockAfterFailures=1, allow=())
        self.local = MaildirBackend(
            self.root, users=self.users, checker=self.checker, store=self.store
        )
        self.outbound = _Outbound()
        common = {
            "reactor": self.reactor,
            "allowPlaintextAuth": True,
            "accessControl": self.control,
        }
        self.smtp = SMTPServerFactory(self.local, hostname="mx.example.com", **common)
        self.submission = SMTPServerFactory(
            SubmissionBackend(self.local, self.outbound),
            hostname="mx.example.com",
            **common,
        )
        self.pop3 = POP3ServerFactory(
            POP3StoreBackend(self.checker, self.store),
            hostname="mx.example.com",
            **common,
        )
        self.imap = IMAP4ServerFactory(
            IMAPStoreBackend(self.checker, self.store),
            hostname="mx.example.com",
            **common,
        )
        self.log = LogCapture(self)

    def connect(self, factory: object) -> Connection:
        connection = Connection(
            factory,  # type: ignore[arg-type]
            IPv4Address("TCP", PEER, 40000),
        )
        self.addCleanup(connection.lose)
        return connection

    def assertNotBlocked(self) -> None:
        """
        The peer is not blocked: a new connection is greeted.
        """
        self.assertFalse(self.control.isBlocked(PEER))
        self.assertTrue(self.connect(self.smtp).greeting.startswith(b"220 "))

    def inbox(self, user: str) -> int:
        new = self.root / user / "new"
        return len(list(new.iterdir())) if new.is_dir() else 0

    def test_inboundRecipients(self) -> None:
        """
        On the inbound port a damaged recipient, one of a domain whose line
        is damaged, and an alias leading to a damaged user get 451 4.3.0,
        each with one warning naming the file and line; the other users
        and the domain alias still take the message.
        """
        c = self.connect(self.smtp)
        c.send(b"EHLO client.example.net")
        c.send(b"MAIL FROM:<erin@example.net>")
        replies = [
            c.send(b"RCPT TO:<" + address + b">")
            for address in (
                b"bob@example.com",
                b"carol@example.org",
                b"anyone@example.org",
                b"sales@example.com",
                b"alice@example.com",
                b"else@example.com",
                b"dave@example.net",
            )
        ]
        unavailable = (
            b"451 4.3.0 Recipient temporarily unavailable, try again later\r\n"
        )
        self.assertEqual(
            replies,
            [unavailable] * 4
            + [b"250 2.1.5 Recipient OK\r\n"] * 2
            + [b"554 5.7.1 Relay access denied\r\n"],
        )
        self.assertEqual(c.send(b"DATA")[:3], b"354")
        self.assertEqual(c.send(MESSAGE + b".")[:3], b"250")
        self.assertEqual(self.inbox("alice@example.com"), 1)
        self.assertEqual(self.inbox("bob@example.com"), 0)
        path = self.users.path
        self.assertEqual(
            [line for line in self.log.lines(LogLevel.warn) if "answering" in line],
            [
                f"{path}:3 was skipped ({NOT_A_HASH}); answering 451 4.3.0 for"
                " bob@example.com until it is fixed",
                f"{path}:6 was skipped (example.org is not a local domain: add a"
                " 'domain example.org' line); answering 451 4.3.0 for"
                " carol@example.org until it is fixed",
                f"{path}:5 was skipped ('domain' takes one domain); answering"
                " 451 4.3.0 for anyone@example.org until it is fixed",
                f"{path}:7 was skipped (bob@example.com is on line 3, which was"
                " skipped); answering 451 4.3.0 for sales@example.com until it"
                " is fixed",
            ],
        )
        self.assertNotIn(BROKEN_HASH, "".join(self.log.lines()))

    def test_submission(self) -> None:
        """
        On the submission port a damaged sender address gets 451 4.3.0 at
        MAIL, and damaged recipients 451 4.3.0 at RCPT: none is handed to
        the queue, not even those of a domain whose line is damaged.
        """
        c = self.connect(self.submission)
        c.send(b"EHLO client.example.net")
        self.assertEqual(
            c.send(b"AUTH PLAIN " + _plain("alice@example.com", PASSWORD))[:4], b"235 "
        )
        self.assertEqual(
            c.send(b"MAIL FROM:<sales@example.com>"),
            b"451 4.3.0 Sender address temporarily unavailable, try again later\r\n",
        )
        self.assertEqual(c.send(b"MAIL FROM:<alice@example.com>")[:4], b"250 ")
        for address in (b"bob@example.com", b"anyone@example.org"):
            self.assertEqual(c.send(b"RCPT TO:<" + address + b">")[:10], b"451 4.3.0 ")
        self.assertEqual(c.send(b"RCPT TO:<dave@example.net>")[:4], b"250 ")
        c.send(b"DATA")
        self.assertEqual(c.send(MESSAGE + b".")[:4], b"250 ")
        self.assertEqual(
            self.outbound.submitted, [("alice@example.com", ["dave@example.net"])]
        )

    def test_queueDiskErrorLogged(self) -> None:
        """
        When the queue's disk refuses the message, the client gets 451
        4.3.0 and the log one warning line with the disk's reason, no
        traceback.
        """
        self.outbound.error = OSError(errno.EFBIG, "File too large")
        c = self.connect(self.submission)
        c.send(b"EHLO client.example.net")
        c.send(b"AUTH PLAIN " + _plain("alice@example.com", PASSWORD))
        c.send(b"MAIL FROM:<alice@example.com>")
        c.send(b"RCPT TO:<dave@example.net>")
        c.send(b"DATA")
        self.assertEqual(c.send(MESSAGE + b".")[:10], b"451 4.3.0 ")
        [warning] = [line for line in self.log.lines(LogLevel.warn) if "queued" in line]
        self.assertRegex(
            warning,
            r"\ASubmission \S+ could not be queued \(451\): \[Errno 27\] File too"
            r" large; local recipients already delivered: none\Z",
        )
        self.assertEqual(self.log.lines(LogLevel.critical), [])
        self.assertEqual(self.flushLoggedErrors(), [])

    def test_smtpLoginTemporary(self) -> None:
        """
        SMTP AUTH as a damaged login is 454 4.7.0, not counted: the peer,
        blocked at its first failed login, is not blocked; a wrong password
        then is, and blocks it.
        """
        c = self.connect(self.smtp)
        c.send(b"EHLO client.example.net")
        self.assertEqual(
            c.send(b"AUTH PLAIN " + _plain("bob@example.com", PASSWORD)),
            b"454 4.7.0 Temporary authentication failure\r\n",
        )
        self.assertNotBlocked()
        self.assertEqual(
            c.send(b"AUTH PLAIN " + _plain("alice@example.com", "wrong"))[:4], b"535 "
        )
        self.assertTrue(self.control.isBlocked(PEER))

    def test_pop3LoginTemporary(self) -> None:
        """
        POP3 PASS for a damaged login is C{-ERR [SYS/TEMP]}, not counted.
        """
        c = self.connect(self.pop3)
        c.send(b"USER bob@example.com")
        reply = c.send(b"PASS " + PASSWORD.encode())
        self.assertTrue(reply.startswith(b"-ERR [SYS/TEMP] "), reply)
        self.assertNotBlocked()
        c.send(b"USER alice@example.com")
        self.assertTrue(c.send(b"PASS wrong").startswith(b"-ERR [AUTH] "))
        self.assertTrue(self.control.isBlocked(PEER))

    def test_imapLoginTemporary(self) -> None:
        """
        IMAP LOGIN as a damaged login is C{NO [UNAVAILABLE]}, not counted.
        """
        c = self.connect(self.imap)
        reply = c.send(b'a LOGIN "carol@example.org" "' + PASSWORD.encode() + b'"')
        self.assertTrue(reply.startswith(b"a NO [UNAVAILABLE] "), reply)
        self.assertNotBlocked()
        reply = c.send(b'b LOGIN "alice@example.com" "wrong"')
        self.assertTrue(reply.startswith(b"b NO [AUTHENTICATIONFAILED] "), reply)
        self.assertTrue(self.control.isBlocked(PEER))
