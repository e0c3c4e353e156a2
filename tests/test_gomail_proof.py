# -*- test-case-name: tests.test_gomail_proof -*-
"""
End-to-end proofs of C{twistd gomail} with the rest of the internet on
loopback: a real server process submits to other domains through its
outbound queue, found through a loopback DNS zone, to an SMTP sink in
another process (see L{tests._gomailprocess}); what is checked is what
users see: reply codes, the sink's bytes, files in the Maildirs.

The local round trip (submission, POP3, IMAP) is proven by
L{tests.test_tap_gomail_twistd}; the queue's pieces on their own by
C{tests.test_queue*}.
"""

from __future__ import annotations

import email
import smtplib
from pathlib import Path

import dkim
from cryptography.hazmat.primitives import serialization
from twisted.trial.unittest import SynchronousTestCase

from gomail_twisted.dkim import generatePrivateKey, keyRecordFor
from tests._gomailprocess import (
    CONFIG,
    WAIT,
    ZONE,
    Gomail,
    Peer,
    expect,
    mailbox,
    message,
    spoolEmpty,
    subjects,
    submission,
    waitUntil,
    writeUsers,
)


class RemoteDeliveryTests(SynchronousTestCase):
    """
    Mail from a user to another domain, through the queue.
    """

    def setUp(self) -> None:
        self.cwd = Path(self.mktemp()).resolve()
        self.cwd.mkdir()

    def test_signedRetriedBounced(self) -> None:
        """
        A message submitted to three recipients of another domain is
        answered 250 and delivered, DKIM-signed once with our domain's key
        (valid for dkimpy against the record the zone serves), to the one
        the remote server takes; the one it refuses with 451 gets it at the
        retry; the one it refuses with 550 brings the sender a delivery
        status notification (multipart/report) in their Maildir.
        """
        key = generatePrivateKey("rsa", 2048)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        (self.cwd / "dkim.pem").write_bytes(pem)
        zone = dict(ZONE, txt=[["proof._domainkey.example.com", keyRecordFor(key)]])
        peer = Peer(self, self.cwd / "peer", zone)
        peer.refuse(
            {
                "later@example.net": "451 4.2.0 Come back later",
                "nobody@example.net": "550 5.1.1 No such user here",
            }
        )
        (self.cwd / "gomail.toml").write_text(
            CONFIG + '\n[dkim."example.com"]\nselector = "proof"\nkey = "dkim.pem"\n'
        )
        writeUsers(self.cwd, "USER alice@example.com")
        server = Gomail(self, self.cwd, peer, "--config=gomail.toml")

        recipients = ["bob@example.net", "later@example.net", "nobody@example.net"]
        with submission(server) as client:
            self.assertEqual(
                client.sendmail("alice@example.com", recipients, message("remote")),
                {},
            )
        expect(peer.output, r"peer: received \S+ for bob@example\.net$")
        expect(peer.output, r"peer: refused later@example\.net 451 ")
        peer.refuse({"nobody@example.net": "550 5.1.1 No such user here"})
        expect(peer.output, r"peer: received \S+ for later@example\.net$")
        waitUntil(lambda: spoolEmpty(server), "the queue to empty")
        waitUntil(lambda: bool(mailbox(server, "alice@example.com")), "the report")

        received = peer.received()
        self.assertEqual(
            [(r.sender, r.recipients) for r in received],
            [
                ("alice@example.com", ("bob@example.net",)),
                ("alice@example.com", ("later@example.net",)),
            ],
        )

        def lookup(name: bytes, timeout: int = 5) -> bytes | None:
            return peer.lookupTXT(name.decode("ascii"))

        for taken in received:
            self.assertEqual(taken.raw.count(b"\nDKIM-Signature:"), 1)
            self.assertIn(b"d=example.com", taken.raw)
            self.assertTrue(dkim.verify(taken.raw, dnsfunc=lookup), taken.raw)
            self.assertIn(b"Subject: remote\r\n", taken.raw)

        [report] = mailbox(server, "alice@example.com")
        parsed = email.message_from_bytes(report)
        self.assertEqual(parsed.get_content_type(), "multipart/report")
        self.assertEqual(parsed.get_param("report-type"), "delivery-status")
        self.assertEqual(parsed["To"], "alice@example.com")
        status = [
            p
            for p in parsed.walk()
            if p.get_content_type() == "message/delivery-status"
        ]
        self.assertEqual(len(status), 1)
        text = str(status[0])
        self.assertIn("rfc822;nobody@example.net", text.replace(" ", ""))
        self.assertIn("550 5.1.1 No such user here", text)
        self.assertNotIn("bob@example.net", text)
        self.assertNotIn("later@example.net", text)


class KilledTests(SynchronousTestCase):
    """
    A server killed with SIGKILL, then started again.
    """

    def setUp(self) -> None:
        self.cwd = Path(self.mktemp()).resolve()
        self.cwd.mkdir()

    def test_nothingLostNothingDoubled(self) -> None:
        """
        Killed while accepted messages wait in the queue (the remote server
        refusing them for now) and while two clients are in the middle of
        DATA, then started again: each accepted message reaches each of its
        remote recipients once and its local recipient once, neither
        unfinished message appears anywhere, and the one whose state file
        was damaged meanwhile is moved aside, named in the log, and held
        back while the others go.
        """
        peer = Peer(self, self.cwd / "peer", ZONE)
        peer.refuse({"*": "451 4.3.0 Not now"})
        (self.cwd / "gomail.toml").write_text(CONFIG)
        writeUsers(self.cwd, "USER alice@example.com", "USER carol@example.com")
        server = Gomail(self, self.cwd, peer, "--config=gomail.toml")

        # Two transactions left in the middle of DATA: on the submission
        # port and on the inbound one.
        unfinished = submission(server)
        self.addCleanup(unfinished.close)
        unfinished.mail("alice@example.com")
        unfinished.rcpt("dave@example.net")
        unfinished.rcpt("carol@example.com")
        self.assertEqual(unfinished.docmd("DATA")[0], 354)
        unfinished.send(b"Subject: unfinished\r\n\r\nHalf of a")
        inbound = smtplib.SMTP("127.0.0.1", server.ports["SMTP"], timeout=WAIT)
        self.addCleanup(inbound.close)
        inbound.ehlo()
        inbound.mail("erin@example.org")
        inbound.rcpt("carol@example.com")
        self.assertEqual(inbound.docmd("DATA")[0], 354)
        inbound.send(b"Subject: unfinished inbound\r\n\r\nHalf of a")

        recipients = ["dave@example.net", "frank@example.net", "carol@example.com"]
        accepted = [f"accepted {n}" for n in range(3)]
        with submission(server) as client:
            for subject in [*accepted, "damaged"]:
                self.assertEqual(
                    client.sendmail("alice@example.com", recipients, message(subject)),
                    {},
                )
        expect(peer.output, r"peer: refused \S+ 451 ")
        server.kill()

        spool = server.data / "queue"
        [damaged] = [
            path
            for path in (spool / "messages").glob("*.eml")
            if b"\r\nSubject: damaged\r\n" in path.read_bytes()
        ]
        damaged.with_suffix(".json").write_bytes(b'{"recipients": [')
        peer.refuse({})
        again = Gomail(self, self.cwd, peer, "--config=gomail.toml")
        expect(
            again.output,
            rf"Queue spool: moved {damaged.stem} to \S+corrupt: bad state file",
        )
        waitUntil(lambda: spoolEmpty(again), "the queue to empty")
        self.assertEqual(
            sorted(path.name for path in (spool / "corrupt").iterdir()),
            [damaged.stem + ".eml", damaged.stem + ".json"],
        )
        remote = ["dave@example.net", "frank@example.net"]
        self.assertEqual(
            subjects(peer.received()),
            sorted((s, r) for s in accepted for r in remote),
        )
        local = sorted(
            email.message_from_bytes(m)["Subject"]
            for m in mailbox(again, "carol@example.com")
        )
        self.assertEqual(local, [*accepted, "damaged"])
