# -*- test-case-name: tests.test_smtp_maildir -*-
"""
Tests for L{gomail_twisted.smtp.maildir}: the Maildir backend behind the real
L{SMTPServerFactory}, checked by the replies on the wire and the files on
disk.
"""

from __future__ import annotations

import errno
import os
import smtplib
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from twisted.internet import reactor
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.interfaces import IListeningPort
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.internet.threads import deferToThread
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface.verify import verifyObject

from gomail_twisted.smtp import (
    ConnectionInfo,
    ISMTPBackend,
    ISMTPSession,
    MaildirBackend,
    SMTPReply,
    SMTPServerFactory,
    SMTPServerProtocol,
)
from gomail_twisted.smtp import maildir as maildirModule
from gomail_twisted.smtp.maildir import mailboxDirectoryName, normalizeDomain

PEER = IPv4Address("TCP", "127.0.0.1", 40000)
LOCAL = IPv4Address("TCP", "127.0.0.1", 25)


class _ThreadPool:
    """
    Runs work when told to, on the calling thread: C{now} runs it at once,
    otherwise it waits in C{pending} until L{runAll}.
    """

    def __init__(self, now: bool = True) -> None:
        self.now = now
        self.pending: list[Callable[[], None]] = []

    def callInThreadWithCallback(
        self,
        onResult: Callable[[bool, object], None],
        f: Callable[..., object],
        *args: object,
        **kwargs: object,
    ) -> None:
        def work() -> None:
            try:
                result = f(*args, **kwargs)
            except BaseException:
                onResult(False, Failure())
            else:
                onResult(True, result)

        if self.now:
            work()
        else:
            self.pending.append(work)

    def runAll(self) -> None:
        pending, self.pending = self.pending, []
        for work in pending:
            work()


class _Reactor(Clock):
    """
    A clock with a thread pool that runs on the test's thread.
    """

    def __init__(self, pool: _ThreadPool) -> None:
        super().__init__()
        self.pool = pool

    def getThreadPool(self) -> _ThreadPool:
        return self.pool

    def callFromThread(self, f: Callable[..., object], *args: object) -> None:
        f(*args)


class _Connection:
    """
    The real server on a L{StringTransport}.
    """

    def __init__(self, factory: SMTPServerFactory) -> None:
        self.transport = StringTransport(hostAddress=LOCAL, peerAddress=PEER)
        protocol = factory.buildProtocol(PEER)
        assert isinstance(protocol, SMTPServerProtocol)
        self.protocol = protocol
        protocol.makeConnection(self.transport)
        self.read()

    def read(self) -> list[bytes]:
        data = self.transport.value()
        self.transport.clear()
        return data.splitlines()

    def send(self, data: bytes) -> list[bytes]:
        self.protocol.dataReceived(data)
        return self.read()


MESSAGE = (
    b"From: sender@example.net\r\n"
    b"To: alice@example.com\r\n"
    b"Subject: test\r\n"
    b"\r\n"
    b"Hello.\r\n"
    b"..A line that began with a dot.\r\n"
    b"\xc3\xa9 eight bits\r\n"
)
STORED = MESSAGE.replace(b"\r\n..A", b"\r\n.A")


def _files(directory: Path) -> list[Path]:
    return sorted(directory.iterdir()) if directory.is_dir() else []


class MaildirSMTPTests(SynchronousTestCase):
    """
    The backend behind the real server, with its disk work run on the
    test's thread.
    """

    def setUp(self) -> None:
        self.root = Path(self.mktemp())
        self.pool = _ThreadPool()
        self.clock = _Reactor(self.pool)
        self.backend = MaildirBackend(
            self.root, ["Example.COM", "Bücher.example"], reactor=self.clock
        )
        self.factory = SMTPServerFactory(
            self.backend, hostname="mx.example.com", reactor=self.clock
        )

    def transaction(
        self, recipients: list[bytes], message: bytes = MESSAGE
    ) -> list[bytes]:
        """
        Send one message; return the replies after the greeting and EHLO.
        """
        connection = _Connection(self.factory)
        connection.send(b"EHLO client.example.net\r\n")
        replies = connection.send(b"MAIL FROM:<sender@example.net> SMTPUTF8\r\n")
        for recipient in recipients:
            replies += connection.send(b"RCPT TO:<" + recipient + b">\r\n")
        replies += connection.send(b"DATA\r\n")
        replies += connection.send(message + b".\r\n")
        return replies

    def test_interfaces(self) -> None:
        """
        The backend provides L{ISMTPBackend} and its sessions
        L{ISMTPSession}.
        """
        self.assertTrue(verifyObject(ISMTPBackend, self.backend))
        info = ConnectionInfo("127.0.0.1", 40000, "127.0.0.1", 25, "mx")
        self.assertTrue(verifyObject(ISMTPSession, self.backend.newSession(info)))

    def test_deliveryWritesExactBytes(self) -> None:
        """
        A message for a local recipient is answered 250 and stored once in
        C{new/}, byte for byte as received (dot-unstuffed, 8-bit kept)
        after the server's C{Received:} header; C{tmp/} is left empty.
        """
        replies = self.transaction([b"alice@example.com"])
        self.assertEqual(replies[-1][:10], b"250 2.0.0 ")
        mailbox = self.root / "alice@example.com"
        files = _files(mailbox / "new")
        self.assertEqual(len(files), 1)
        data = files[0].read_bytes()
        self.assertTrue(
            data.startswith(b"Return-Path: <sender@example.net>\nReceived: from ")
        )
        self.assertTrue(data.endswith(b"\n" + STORED.replace(b"\r\n", b"\n")))
        self.assertNotIn(b"\r", data)
        self.assertEqual(_files(mailbox / "tmp"), [])
        self.assertTrue((mailbox / "cur").is_dir())
        self.assertEqual(stat.S_IMODE(files[0].stat().st_mode), 0o600)

    def test_uniqueNames(self) -> None:
        """
        Two messages to one mailbox are two files with Maildir names
        (C{seconds.M...P<pid>...host}).
        """
        self.transaction([b"alice@example.com"])
        self.transaction([b"alice@example.com"])
        files = _files(self.root / "alice@example.com" / "new")
        self.assertEqual(len(files), 2)
        for name in (f.name for f in files):
            self.assertRegex(name, rf"\A\d+\.M\d+P{os.getpid()}Q")
            self.assertNotIn("/", name)
            self.assertNotIn(":", name)

    def test_severalRecipients(self) -> None:
        """
        Each accepted recipient gets its own copy with the same bytes; a
        foreign recipient in between is refused with 554 5.7.1 and does not
        end the transaction.
        """
        replies = self.transaction(
            [b"alice@example.com", b"bob@elsewhere.example", b"Carol@EXAMPLE.com"]
        )
        self.assertIn(b"554 5.7.1 Relay access denied", replies)
        self.assertEqual(replies[-1][:10], b"250 2.0.0 ")
        alice = _files(self.root / "alice@example.com" / "new")
        carol = _files(self.root / "Carol@example.com" / "new")
        self.assertEqual(len(alice), 1)
        self.assertEqual(len(carol), 1)
        self.assertEqual(alice[0].read_bytes(), carol[0].read_bytes())
        self.assertEqual(
            sorted(p.name for p in self.root.iterdir()),
            ["Carol@example.com", "alice@example.com"],
        )

    def test_duplicateRecipientsOneCopy(self) -> None:
        """
        A mailbox named twice (also through case or quoting of the same
        address) gets one copy.
        """
        self.transaction(
            [b"alice@example.com", b"alice@EXAMPLE.COM", b'"alice"@example.com']
        )
        self.assertEqual(len(_files(self.root / "alice@example.com" / "new")), 1)

    def test_otherDomainsRefused(self) -> None:
        """
        Recipients of other domains, including subdomains and look-alikes of
        ours, are refused with 554 5.7.1; with none accepted, DATA is refused
        and nothing reaches the disk.
        """
        replies = self.transaction(
            [
                b"alice@elsewhere.example",
                b"alice@sub.example.com",
                b"alice@example.com.evil.example",
                b"alice@[127.0.0.1]",
            ]
        )
        self.assertEqual(replies[1:5], [b"554 5.7.1 Relay access denied"] * 4)
        self.assertEqual(replies[5], b"503 5.5.1 Need RCPT before DATA")
        self.assertFalse(self.root.exists())

    def test_postmaster(self) -> None:
        """
        The bare C{postmaster} (RFC 5321 4.5.1), in any case, goes to
        postmaster at the first domain, as does C{PostMaster@} a domain.
        """
        replies = self.transaction([b"Postmaster", b"POSTMASTER@example.com"])
        self.assertEqual(replies[-1][:10], b"250 2.0.0 ")
        self.assertEqual(
            [p.name for p in self.root.iterdir()], ["postmaster@example.com"]
        )
        self.assertEqual(len(_files(self.root / "postmaster@example.com" / "new")), 1)

    def test_internationalizedDomain(self) -> None:
        """
        A Unicode domain matches in any case and in its A-label form, and
        all land in one ASCII-named mailbox.
        """
        replies = self.transaction(
            ["rené@BÜCHER.example".encode(), b"rene@xn--bcher-kva.example"]
        )
        self.assertEqual(replies[-1][:10], b"250 2.0.0 ")
        self.assertEqual(
            sorted(p.name for p in self.root.iterdir()),
            ["ren%C3%A9@xn--bcher-kva.example", "rene@xn--bcher-kva.example"],
        )

    def test_traversalOnTheWire(self) -> None:
        """
        Local parts that look like paths are accepted and stored in their
        own directory directly under the root; nothing is written outside
        it.
        """
        outside = self.root.parent
        before = sorted(outside.iterdir())
        replies = self.transaction(
            [
                b'"../../escape"@example.com',
                b'"a/b"@example.com',
                b'".hidden"@example.com',
            ]
        )
        self.assertEqual(replies[-1][:10], b"250 2.0.0 ")
        self.assertEqual(sorted(outside.iterdir()), sorted([*before, self.root]))
        names = sorted(p.name for p in self.root.iterdir())
        self.assertEqual(
            names,
            [
                "%2E.%2F..%2Fescape@example.com",
                "%2Ehidden@example.com",
                "a%2Fb@example.com",
            ],
        )
        for name in names:
            self.assertEqual(len(_files(self.root / name / "new")), 1)

    def test_diskErrorIs451(self) -> None:
        """
        When the disk refuses one copy the client sees 451 4.3.0, no
        recipient keeps a copy, nothing is left in C{tmp/}, and the
        connection takes the next transaction.
        """
        self.root.mkdir()
        (self.root / "zed@example.com").write_bytes(b"not a directory")
        connection = _Connection(self.factory)
        connection.send(b"EHLO client.example.net\r\n")
        connection.send(b"MAIL FROM:<sender@example.net>\r\n")
        connection.send(b"RCPT TO:<alice@example.com>\r\n")
        connection.send(b"RCPT TO:<zed@example.com>\r\n")
        connection.send(b"DATA\r\n")
        replies = connection.send(MESSAGE + b".\r\n")
        self.assertEqual(len(replies), 1)
        self.assertTrue(replies[0].startswith(b"451 4.3.0 "), replies)
        self.assertEqual(_files(self.root / "alice@example.com" / "new"), [])
        self.assertEqual(_files(self.root / "alice@example.com" / "tmp"), [])
        self.assertEqual(len(self.flushLoggedErrors(FileExistsError)), 1)
        self.assertEqual(
            connection.send(b"MAIL FROM:<sender@example.net>\r\n"),
            [b"250 2.1.0 Sender OK"],
        )

    def test_diskFullIs452(self) -> None:
        """
        A full disk is a 452 4.3.1 (RFC 3463 mail system full).
        """

        def full(path: Path, data: bytes) -> None:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

        self.patch(maildirModule, "_writeSynced", full)
        replies = self.transaction([b"alice@example.com"])
        self.assertTrue(replies[-1].startswith(b"452 4.3.1 "), replies)
        self.assertEqual(len(self.flushLoggedErrors(OSError)), 1)

    def test_250OnlyOnceOnDisk(self) -> None:
        """
        The server's 250 waits for the disk work, which does not run on the
        calling thread; when the 250 comes, the file is in C{new/}.
        """
        self.pool.now = False
        replies = self.transaction([b"alice@example.com"])
        self.assertEqual(replies[-1], b"354 End data with <CR><LF>.<CR><LF>")
        self.assertFalse(self.root.exists())
        self.pool.runAll()
        self.assertEqual(len(_files(self.root / "alice@example.com" / "new")), 1)

    def test_fsync(self) -> None:
        """
        Delivery fsyncs the message file and the C{new/} directory it was
        renamed into.
        """
        synced: list[str] = []
        realFsync = os.fsync

        def fsync(fd: int) -> None:
            synced.append("dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file")
            realFsync(fd)

        self.patch(os, "fsync", fsync)
        self.transaction([b"alice@example.com"])
        self.assertEqual(synced.count("file"), 1)
        # The root's parent, the root, the mailbox, then new/.
        self.assertEqual(synced[-1], "dir")
        synced.clear()
        self.transaction([b"alice@example.com"])
        self.assertEqual(synced, ["file", "dir"])


class MailboxNameTests(SynchronousTestCase):
    """
    Addresses to directory names: one component under the root, unique,
    reversible.
    """

    def setUp(self) -> None:
        self.root = Path(self.mktemp()).absolute()
        self.backend = MaildirBackend(self.root, ["example.com"])

    def test_caseOfDomainAndLocalPart(self) -> None:
        """
        The domain is lower-cased; the local part keeps its case.
        """
        self.assertEqual(
            self.backend.mailboxFor("Alice@EXAMPLE.Com"),
            self.root / "Alice@example.com",
        )

    def test_notLocal(self) -> None:
        """
        Addresses of other domains, and bare local parts other than
        postmaster, have no mailbox.
        """
        for address in ["a@example.org", "a@example.com.org", "alice", "a@[1.2.3.4]"]:
            self.assertIsNone(self.backend.mailboxFor(address), address)

    def test_traversalAttempts(self) -> None:
        """
        Every hostile local part becomes one distinct component directly
        under the root, not hidden, that unquotes back to the address.
        """
        locals_ = [
            '"../../etc/passwd"',
            '".."',
            '"."',
            '"/"',
            '"/absolute"',
            ".dotfirst",
            "a..b",
            '"a\\\\b"',
            '"a\\"b"',
            '"a@b"',
            "a%2Fb",
            "a%40b",
            '"a%b"',
            '"a b"',
            '"\\\x00"',
            "ü",
            "a+tag=x",
        ]
        names = []
        for local in locals_:
            mailbox = self.backend.mailboxFor(f"{local}@example.com")
            assert mailbox is not None
            self.assertEqual(mailbox.parent, self.root, local)
            name = mailbox.name
            self.assertNotIn("/", name)
            self.assertFalse(name.startswith("."), name)
            self.assertTrue(name.isascii(), name)
            self.assertEqual(name.count("@"), 1, name)
            self.assertTrue(unquote(name).endswith("@example.com"), name)
            names.append(name)
        self.assertEqual(len(set(names)), len(names))
        self.assertEqual(unquote(names[0]), "../../etc/passwd@example.com")
        self.assertEqual(unquote(names[8]), 'a"b@example.com')
        self.assertEqual(unquote(names[10]), "a%2Fb@example.com")

    def test_directoryName(self) -> None:
        """
        Safe characters are kept, others percent-encoded as UTF-8.
        """
        self.assertEqual(
            mailboxDirectoryName("first.last+tag", "example.com"),
            "first.last+tag@example.com",
        )
        self.assertEqual(
            mailboxDirectoryName(".x/y", "example.com"), "%2Ex%2Fy@example.com"
        )
        self.assertEqual(mailboxDirectoryName("é", "example.com"), "%C3%A9@example.com")
        self.assertEqual(
            mailboxDirectoryName("a", "[ipv6:::1]"), "a@%5Bipv6%3A%3A%3A1%5D"
        )

    def test_normalizeDomain(self) -> None:
        """
        Domains compare in lower case, without a trailing dot, Unicode
        labels in their A-label form.
        """
        self.assertEqual(normalizeDomain("Example.COM."), "example.com")
        self.assertEqual(normalizeDomain("BÜCHER.Example"), "xn--bcher-kva.example")
        self.assertEqual(
            normalizeDomain("XN--BCHER-KVA.example"), "xn--bcher-kva.example"
        )
        self.assertEqual(normalizeDomain("_dmarc.Example.com"), "_dmarc.example.com")
        self.assertEqual(normalizeDomain("[IPv6:::1]"), "[ipv6:::1]")

    def test_tooLong(self) -> None:
        """
        An address whose directory name would pass 255 bytes is refused
        with 553 5.1.3 rather than failing on disk later.
        """
        long = '"' + "/" * 62 + '"'
        backend = MaildirBackend(self.root, ["a" * 63 + "." + "b" * 63])
        with self.assertRaises(SMTPReply) as caught:
            backend.mailboxFor(f"{long}@{'a' * 63}.{'b' * 63}")
        self.assertEqual(
            (caught.exception.code, caught.exception.enhanced), (553, "5.1.3")
        )

    def test_noDomains(self) -> None:
        """
        A backend needs a domain.
        """
        self.assertRaises(ValueError, MaildirBackend, self.root, [])


class RealSocketTests(TestCase):
    """
    The backend in the real reactor, its disk work in the reactor's thread
    pool, driven by stdlib smtplib over loopback.
    """

    timeout = 20

    @inlineCallbacks
    def test_smtplib(self) -> Any:
        """
        smtplib's C{sendmail} returns only the refused foreign recipient,
        and the local ones have the message on disk by then.
        """
        root = Path(self.mktemp())
        factory = SMTPServerFactory(
            MaildirBackend(root, ["example.com"]), hostname="localhost"
        )
        port: IListeningPort = yield TCP4ServerEndpoint(
            reactor, 0, interface="127.0.0.1"
        ).listen(factory)
        self.addCleanup(port.stopListening)
        portNumber = port.getHost().port  # type: ignore[attr-defined]

        def send() -> dict[str, tuple[int, bytes]]:
            with smtplib.SMTP("127.0.0.1", portNumber, timeout=10) as client:
                return client.sendmail(
                    "sender@example.net",
                    ["alice@example.com", "bob@example.com", "eve@example.org"],
                    MESSAGE,
                )

        refused: Deferred[dict[str, tuple[int, bytes]]] = deferToThread(send)
        result = yield refused
        self.assertEqual(
            result, {"eve@example.org": (554, b"5.7.1 Relay access denied")}
        )
        for name in ["alice@example.com", "bob@example.com"]:
            files = _files(root / name / "new")
            self.assertEqual(len(files), 1)
            # smtplib stuffs the leading dot that the server then removes.
            self.assertTrue(
                files[0].read_bytes().endswith(b"\n" + MESSAGE.replace(b"\r\n", b"\n"))
            )
