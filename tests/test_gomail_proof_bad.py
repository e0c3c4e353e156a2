# -*- test-case-name: tests.test_gomail_proof_bad -*-
"""
End-to-end proofs of C{twistd gomail} against what goes wrong: failed
logins from one address under the default configuration and with the
allow-list emptied, a corrupt line in the users file, and a disk that
refuses to take more (see L{tests._gomailprocess} for the processes).

Proven elsewhere and not repeated here: relaying without AUTH on the
inbound port is refused with 554 (C{tests.test_tap_gomail_twistd}'s
C{test_inboundNoRelay}) and MAIL before AUTH on submission with 530
(C{tests.test_smtp_submission_clients}); a corrupt queue state file after
a crash (C{tests.test_gomail_proof}'s C{test_nothingLostNothingDoubled});
a full disk answered C{452 4.3.1} by the store and the queue
(C{tests.test_smtp_maildir}'s C{test_diskFullIs452},
C{tests.test_smtp_submission}, C{tests.test_queue}'s
C{test_submitFailsWhenTheDiskDoes}).
"""

from __future__ import annotations

import imaplib
import poplib
import smtplib
import socket
from pathlib import Path

from twisted.trial.unittest import SynchronousTestCase

from tests._gomailprocess import (
    CONFIG,
    PASSWORD,
    WAIT,
    Gomail,
    expect,
    mailbox,
    message,
    submission,
    unverified,
    writeUsers,
)

ALICE = "alice@example.com"


def failSubmission(server: Gomail) -> int:
    """
    One AUTH PLAIN with a wrong password on the submission port, after
    STARTTLS, on a connection of its own.

    @return: the reply code.
    """
    with smtplib.SMTP("127.0.0.1", server.ports["submission"], timeout=WAIT) as c:
        c.starttls(context=unverified())
        c.ehlo()
        c.user, c.password = ALICE, "wrong"
        try:
            c.auth("PLAIN", c.auth_plain)
        except smtplib.SMTPAuthenticationError as e:
            return e.smtp_code
    return 235


def failPOP3(server: Gomail) -> bytes:
    """
    One USER/PASS with a wrong password, after STLS.

    @return: the server's reply to PASS.
    """
    pop = poplib.POP3("127.0.0.1", server.ports["POP3"], timeout=WAIT)
    try:
        pop.stls(context=unverified())
        pop.user(ALICE)
        try:
            return pop.pass_("wrong")
        except poplib.error_proto as e:
            return bytes(e.args[0])
    finally:
        pop.close()


def failIMAP(server: Gomail) -> str:
    """
    One LOGIN with a wrong password, after STARTTLS.

    @return: the server's refusal.
    """
    with imaplib.IMAP4("127.0.0.1", server.ports["IMAP"], timeout=WAIT) as imap:
        imap.starttls(ssl_context=unverified())
        try:
            imap.login(ALICE, "wrong")
        except imaplib.IMAP4.error as e:
            return str(e)
    return "OK"


def failEverywhere(test: SynchronousTestCase, server: Gomail, count: int) -> None:
    """
    Fail C{count} logins from 127.0.0.1, in turn on submission, POP3 and
    IMAP, each refused as a wrong password.
    """
    for n in range(count):
        if n % 3 == 0:
            test.assertEqual(failSubmission(server), 535)
        elif n % 3 == 1:
            test.assertTrue(failPOP3(server).startswith(b"-ERR [AUTH]"))
        else:
            test.assertIn("AUTHENTICATIONFAILED", failIMAP(server))


def greetings(server: Gomail) -> dict[str, bytes]:
    """
    The first bytes each plain port says to a new connection.
    """
    said = {}
    for label in ("SMTP", "submission", "POP3", "IMAP"):
        with socket.create_connection(
            ("127.0.0.1", server.ports[label]), timeout=WAIT
        ) as client:
            said[label] = client.recv(4096)
    return said


class AccessControlTests(SynchronousTestCase):
    """
    Failed logins from one address, over every protocol.
    """

    def setUp(self) -> None:
        self.cwd = Path(self.mktemp()).resolve()
        self.cwd.mkdir()
        writeUsers(self.cwd, f"USER {ALICE}")

    def test_allowListedNeverBlocked(self) -> None:
        """
        With the default configuration, 31 failed logins from 127.0.0.1
        over submission AUTH, POP3 and IMAP block nothing: every port still
        greets it and the right password still logs in on each.
        """
        server = Gomail(self, self.cwd, None)
        failEverywhere(self, server, 31)
        said = greetings(server)
        self.assertTrue(said["SMTP"].startswith(b"220 "), said)
        self.assertTrue(said["submission"].startswith(b"220 "), said)
        self.assertTrue(said["POP3"].startswith(b"+OK"), said)
        self.assertTrue(said["IMAP"].startswith(b"* OK"), said)
        with submission(server) as client:
            self.assertEqual(client.noop()[0], 250)
        pop = poplib.POP3("127.0.0.1", server.ports["POP3"], timeout=WAIT)
        try:
            pop.stls(context=unverified())
            pop.user(ALICE)
            self.assertTrue(pop.pass_(PASSWORD).startswith(b"+OK"))
        finally:
            pop.quit()
        with imaplib.IMAP4("127.0.0.1", server.ports["IMAP"], timeout=WAIT) as imap:
            imap.starttls(ssl_context=unverified())
            self.assertEqual(imap.login(ALICE, PASSWORD)[0], "OK")
        self.assertNotIn("gomail ipac: blocked", server.log())

    def test_thirtyFailuresBlockEveryProtocol(self) -> None:
        """
        With the allow-list emptied and the default threshold, 30 failed
        logins from 127.0.0.1 spread over submission AUTH, POP3 and IMAP
        block it: the 31st connection is refused with each protocol's
        short error on every port, the right password included.
        """
        (self.cwd / "gomail.toml").write_text("[access]\nallow = []\n")
        server = Gomail(self, self.cwd, None, "--config=gomail.toml")
        failEverywhere(self, server, 30)
        expect(server.output, r"gomail ipac: blocked 127\.0\.0\.1 ")
        said = greetings(server)
        self.assertTrue(said["SMTP"].startswith(b"554 "), said)
        self.assertTrue(said["submission"].startswith(b"554 "), said)
        self.assertTrue(said["POP3"].startswith(b"-ERR "), said)
        self.assertTrue(said["IMAP"].startswith(b"* BYE "), said)


class BadInputTests(SynchronousTestCase):
    """
    Damaged files and a disk that takes no more.
    """

    def setUp(self) -> None:
        self.cwd = Path(self.mktemp()).resolve()
        self.cwd.mkdir()
        (self.cwd / "gomail.toml").write_text(CONFIG)

    def test_corruptUsersLine(self) -> None:
        """
        A users file line with a malformed hash is logged with the file and
        line number and the reason, and skipped: the users on the other
        lines still receive mail and log in, while mail for the user of
        that line is refused for now (451), never bounced, and their logins
        fail for now without counting toward a block.
        """
        writeUsers(
            self.cwd,
            f"USER {ALICE}",
            "user bob@example.com not-a-hash",
            "USER carol@example.com",
        )
        server = Gomail(self, self.cwd, None, "--config=gomail.toml")
        users = self.cwd / "gomail-data" / "users"
        expect(
            server.output,
            rf"{users}:3: the password hash is neither argon2 nor bcrypt; "
            "line skipped",
        )
        self.assertNotIn("not-a-hash", server.log())
        with smtplib.SMTP("127.0.0.1", server.ports["SMTP"], timeout=WAIT) as c:
            refused = c.sendmail(
                "erin@example.org", [ALICE, "carol@example.com"], message("in")
            )
        self.assertEqual(refused, {})
        self.assertEqual(len(mailbox(server, ALICE)), 1)
        self.assertEqual(len(mailbox(server, "carol@example.com")), 1)
        with submission(server, "carol@example.com") as client:
            self.assertEqual(
                client.sendmail("carol@example.com", [ALICE], message("local")), {}
            )
        self.assertEqual(len(mailbox(server, ALICE)), 2)
        later = (451, b"4.3.0 Recipient temporarily unavailable, try again later")
        with smtplib.SMTP("127.0.0.1", server.ports["SMTP"], timeout=WAIT) as c:
            refused = c.sendmail(
                "erin@example.org", [ALICE, "bob@example.com"], message("bob")
            )
        self.assertEqual(refused, {"bob@example.com": later})
        self.assertEqual(len(mailbox(server, ALICE)), 3)
        expect(
            server.output,
            rf"{users}:3 was skipped \(the password hash is neither argon2 nor "
            r"bcrypt\); answering 451 4\.3\.0 for bob@example\.com until it is "
            "fixed",
        )
        with submission(server, "carol@example.com") as client:
            with self.assertRaises(smtplib.SMTPRecipientsRefused) as caught:
                client.sendmail("carol@example.com", ["bob@example.com"], message("s"))
        self.assertEqual(caught.exception.recipients, {"bob@example.com": later})
        for _ in range(3):
            with smtplib.SMTP(
                "127.0.0.1", server.ports["submission"], timeout=WAIT
            ) as c:
                c.starttls(context=unverified())
                with self.assertRaises(smtplib.SMTPAuthenticationError) as refusal:
                    c.login("bob@example.com", PASSWORD)
                self.assertEqual(refusal.exception.smtp_code, 454)
        expect(server.output, r"Login for bob@example\.com cannot be checked: ")
        self.assertNotIn("not-a-hash", server.log())

    def test_diskRefusesWrites(self) -> None:
        """
        When the disk refuses to write a message (a process file size
        limit, as a full disk would), the submission and inbound ports
        answer 451, log why, and keep no part of it, in the Maildir or the
        queue; the next message that fits is accepted and kept.
        """
        writeUsers(self.cwd, f"USER {ALICE}")
        limit = 64 * 1024
        server = Gomail(
            self, self.cwd, None, "--config=gomail.toml", fileSizeLimit=limit
        )
        big = message("big", 2 * limit)
        with submission(server) as client:
            for recipients in ([ALICE], ["bob@example.net"]):
                with self.assertRaises(smtplib.SMTPDataError) as caught:
                    client.sendmail(ALICE, recipients, big)
                self.assertEqual(caught.exception.smtp_code, 451)
            self.assertEqual(
                client.sendmail(ALICE, [ALICE, "bob@example.net"], message("small")),
                {},
            )
        with smtplib.SMTP("127.0.0.1", server.ports["SMTP"], timeout=WAIT) as c:
            with self.assertRaises(smtplib.SMTPDataError) as caught:
                c.sendmail("erin@example.org", [ALICE], big)
            self.assertEqual(caught.exception.smtp_code, 451)
        # Each refusal is explained in the log.
        expect(
            server.output,
            r"Maildir delivery of \S+ to \['alice@example\.com'\] failed: "
            r"could not store: \[Errno 27\] File too large",
        )
        expect(
            server.output,
            r"Submission \S+ could not be queued \(451\): \[Errno 27\] File too large",
        )
        self.assertNotIn("Traceback", server.log())
        [kept] = mailbox(server, ALICE)
        self.assertIn(b"Subject: small\n", kept)
        data = self.cwd / "gomail-data"
        self.assertEqual(list((data / "mail" / ALICE / "tmp").iterdir()), [])
        queued = sorted(p.suffix for p in (data / "queue" / "messages").iterdir())
        self.assertEqual(queued, [".eml", ".json"])
        [queuedMessage] = (data / "queue" / "messages").glob("*.eml")
        self.assertIn(b"Subject: small\r\n", queuedMessage.read_bytes())
        self.assertEqual(list((data / "queue" / "tmp").iterdir()), [])
