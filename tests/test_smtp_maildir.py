# -*- test-case-name: tests.test_smtp_maildir -*-
"""
Tests for L{gomail_twisted.smtp.maildir}: the Maildir backend behind the real
L{SMTPServerFactory}, checked by the replies on the wire and the files on
disk.
"""

from __future__ import annotations

import errno
import os
import queue
import smtplib
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from twisted.internet import reactor
from twisted.internet.address import IPv4Address
from twisted.internet.defer import CancelledError, Deferred, inlineCallbacks
from twisted.internet.endpoints import TCP4ServerEndpoint
from twisted.internet.interfaces import IListeningPort
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.internet.threads import deferToThread
from twisted.logger import LogEvent, Logger, LogLevel, formatEvent
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface.verify import verifyObject

from gomail_twisted.dns import Resolver
from gomail_twisted.maildir import MaildirStore
from gomail_twisted.maildir import _files as storeFiles
from gomail_twisted.smtp import (
    ConnectionInfo,
    Envelope,
    ISMTPBackend,
    ISMTPSession,
    MaildirBackend,
    MailFrom,
    ReceivedMessage,
    Recipient,
    SMTPReply,
    SMTPServerFactory,
    SMTPServerProtocol,
)
from gomail_twisted.smtp.maildir import mailboxDirectoryName, normalizeDomain
from gomail_twisted.smtp.server import MESSAGE_LOGGED
from tests._dnsserver import ScriptedDNSServer

PEER = IPv4Address("TCP", "127.0.0.1", 40000)
LOCAL = IPv4Address("TCP", "127.0.0.1", 25)


class _ThreadPool(ThreadPool):
    """
    Runs work when told to, on the calling thread: C{now} runs it at once,
    otherwise it waits in C{pending} until L{runAll}.  Never started, it
    has no threads.
    """

    def __init__(self, now: bool = True) -> None:
        super().__init__()
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
    A clock whose C{callFromThread} runs the call at once, and whose
    thread pool must never be used: the backend has its own.
    """

    def getThreadPool(self) -> ThreadPool:
        raise AssertionError("the reactor's thread pool was used")

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
        self.clock = _Reactor()
        self.backend = MaildirBackend(
            self.root,
            ["Example.COM", "Bücher.example"],
            reactor=self.clock,
            threadPool=self.pool,
        )
        self.factory = SMTPServerFactory(
            self.backend, hostname="mx.example.com", reactor=self.clock
        )

    def storeLog(self) -> list[LogEvent]:
        """
        Capture what the store logs from now on.
        """
        events: list[LogEvent] = []
        self.patch(MaildirStore, "_log", Logger(observer=events.append))
        return events

    def assertOneDiskWarning(self, events: list[LogEvent], reason: str) -> None:
        """
        The store logged one warning line, with the disk's reason, and no
        traceback.
        """
        self.assertEqual(
            [(e["log_level"], formatEvent(e).split(": '")[0]) for e in events],
            [(LogLevel.warn, f"Maildir store disk work failed: {reason}")],
        )
        self.assertEqual(self.flushLoggedErrors(), [])

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
        carol = _files(self.root / "carol@example.com" / "new")
        self.assertEqual(len(alice), 1)
        self.assertEqual(len(carol), 1)
        self.assertEqual(alice[0].read_bytes(), carol[0].read_bytes())
        self.assertEqual(
            sorted(p.name for p in self.root.iterdir()),
            ["alice@example.com", "carol@example.com"],
        )

    def test_eachRecipientResolvedOnce(self) -> None:
        """
        A transaction asks the backend for each recipient's account once,
        at RCPT; delivery uses what RCPT found.
        """
        asked: list[str] = []
        userFor = self.backend.userFor

        def counted(address: str) -> str | None:
            asked.append(address)
            return userFor(address)

        self.patch(self.backend, "userFor", counted)
        replies = self.transaction([b"alice@example.com", b"Carol@EXAMPLE.com"])
        self.assertEqual(replies[-1][:10], b"250 2.0.0 ")
        self.assertEqual(asked, ["alice@example.com", "Carol@EXAMPLE.com"])
        self.assertEqual(len(_files(self.root / "alice@example.com" / "new")), 1)
        self.assertEqual(len(_files(self.root / "carol@example.com" / "new")), 1)

    def test_recipientsNotFromRcptResolved(self) -> None:
        """
        A session given a message whose recipients it did not accept itself
        (a wrapping backend's doing) still finds each one's account.
        """
        info = ConnectionInfo("127.0.0.1", 40000, "127.0.0.1", 25, "mx")
        session = self.backend.newSession(info)
        message = ReceivedMessage(
            MESSAGE,
            Envelope(
                MailFrom("sender@example.net", {}, None, "7BIT", False, None, "c"),
                (Recipient("alice@example.com"),),
            ),
            info,
            "Q1",
        )
        self.assertIs(self.successResultOf(session.message(message)), MESSAGE_LOGGED)
        self.assertEqual(len(_files(self.root / "alice@example.com" / "new")), 1)

    def test_oneLogLinePerMessage(self) -> None:
        """
        A message received over SMTP is logged in one line, by the backend,
        with the server's facts, the size stored and the mailboxes.
        """
        from twisted.logger import globalLogPublisher

        events: list[LogEvent] = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        replies = self.transaction([b"Alice@example.com", b"bob@example.com"])
        queueID = replies[-1].split(b"queued as ")[1].strip().decode()
        [event] = [e for e in events if e.get("queueID")]
        [stored] = _files(self.root / "alice@example.com" / "new")
        self.assertEqual(
            formatEvent(event),
            f"SMTP {queueID} accepted from 127.0.0.1: <sender@example.net> to "
            f"Alice@example.com,bob@example.com; Maildir delivered "
            f"({stored.stat().st_size} bytes) to "
            "['alice@example.com', 'bob@example.com']",
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
        # Not an error a disk gives when full or broken: kept with its
        # traceback.
        self.assertEqual(len(self.flushLoggedErrors(FileExistsError)), 1)
        self.assertEqual(
            connection.send(b"MAIL FROM:<sender@example.net>\r\n"),
            [b"250 2.1.0 Sender OK"],
        )

    def test_diskFullIs452(self) -> None:
        """
        A full disk is a 452 4.3.1 (RFC 3463 mail system full), logged as
        one warning line with the disk's reason, no traceback.
        """

        def full(path: Path, data: bytes, mtime: float | None = None) -> None:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

        self.patch(storeFiles, "writeSynced", full)
        events = self.storeLog()
        replies = self.transaction([b"alice@example.com"])
        self.assertTrue(replies[-1].startswith(b"452 4.3.1 "), replies)
        self.assertOneDiskWarning(events, "[Errno 28] No space left on device")

    def test_250OnlyOnceOnDisk(self) -> None:
        """
        The 250 after DATA reaches the wire only after the disk work has
        run in the pool, and when it is written the file is in C{new/}.
        """
        self.pool.now = False
        new = self.root / "alice@example.com" / "new"
        connection = _Connection(self.factory)
        filesWhen250: list[int] = []
        write = connection.transport.write

        def recordingWrite(data: bytes) -> None:
            if b"250 2.0.0 " in data:
                filesWhen250.append(len(_files(new)))
            write(data)

        connection.transport.write = recordingWrite  # type: ignore[method-assign]
        connection.send(b"EHLO client.example.net\r\n")
        connection.send(b"MAIL FROM:<sender@example.net>\r\n")
        connection.send(b"RCPT TO:<alice@example.com>\r\n")
        connection.send(b"DATA\r\n")
        self.assertEqual(connection.send(MESSAGE + b".\r\n"), [])
        self.assertEqual(len(self.pool.pending), 1)
        self.assertEqual(filesWhen250, [])
        self.assertFalse(self.root.exists())
        self.pool.runAll()
        [reply] = connection.read()
        self.assertEqual(reply[:10], b"250 2.0.0 ")
        self.assertEqual(filesWhen250, [1])
        self.assertEqual(self.pool.pending, [])

    def test_localPartCaseInsensitive(self) -> None:
        """
        C{You@} and C{you@} share one mailbox on disk, and the message
        keeps the case the client wrote.
        """
        message = MESSAGE.replace(b"To: alice@", b"To: You@")
        self.assertEqual(
            self.transaction([b"You@example.com"], message)[-1][:3], b"250"
        )
        self.assertEqual(self.transaction([b"you@EXAMPLE.com"])[-1][:3], b"250")
        self.assertEqual([p.name for p in self.root.iterdir()], ["you@example.com"])
        files = _files(self.root / "you@example.com" / "new")
        self.assertEqual(len(files), 2)
        self.assertIn(
            b"\nTo: You@example.com\n", b"".join(f.read_bytes() for f in files)
        )

    def assertNothingDelivered(self, names: list[str]) -> None:
        """
        Each mailbox named has nothing in C{new/} nor in C{tmp/}.
        """
        for name in names:
            for sub in ("new", "tmp"):
                self.assertEqual(_files(self.root / name / sub), [], (name, sub))

    def test_failedWriteDeliversToNone(self) -> None:
        """
        When the second of three copies cannot be written (the disk fills
        up in the middle of it), the client sees 452 and no mailbox has the
        message, in C{new/} or C{tmp/}.
        """
        realWrite = os.write
        failed: list[str] = []

        def write(fd: int, data: Any) -> int:
            path = os.readlink(f"/proc/self/fd/{fd}")
            if "/bob@example.com/tmp/" not in path:
                return realWrite(fd, data)
            if not failed:
                failed.append(path)
                return realWrite(fd, data[:10])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        self.patch(os, "write", write)
        events = self.storeLog()
        replies = self.transaction(
            [b"alice@example.com", b"bob@example.com", b"carol@example.com"]
        )
        self.assertTrue(replies[-1].startswith(b"452 4.3.1 "), replies)
        self.assertEqual(len(failed), 1)
        self.assertNothingDelivered(
            ["alice@example.com", "bob@example.com", "carol@example.com"]
        )
        self.assertOneDiskWarning(events, "[Errno 28] No space left on device")

    def test_failedRenameDeliversToNone(self) -> None:
        """
        When the second of three copies cannot be renamed into C{new/},
        the first, already there, is withdrawn: the client sees 451 and no
        mailbox has the message, so its retry duplicates nothing.
        """
        realRename = os.rename
        renamed: list[str] = []

        def rename(source: Any, destination: Any) -> None:
            renamed.append(str(destination))
            if len(renamed) == 2:
                raise OSError(errno.EIO, os.strerror(errno.EIO), str(destination))
            realRename(source, destination)

        self.patch(os, "rename", rename)
        events = self.storeLog()
        replies = self.transaction(
            [b"alice@example.com", b"bob@example.com", b"carol@example.com"]
        )
        self.assertTrue(replies[-1].startswith(b"451 4.3.0 "), replies)
        self.assertEqual(len(renamed), 2)
        self.assertNothingDelivered(
            ["alice@example.com", "bob@example.com", "carol@example.com"]
        )
        self.assertOneDiskWarning(events, "[Errno 5] Input/output error")

    def test_failedDirectorySyncDeliversToNone(self) -> None:
        """
        When a C{new/} directory cannot be fsynced after the renames, every
        copy is withdrawn and the client sees 451.
        """
        realFsync = os.fsync

        def fsync(fd: int) -> None:
            path = os.readlink(f"/proc/self/fd/{fd}")
            if path.endswith("bob@example.com/new"):
                raise OSError(errno.EIO, os.strerror(errno.EIO))
            realFsync(fd)

        self.patch(os, "fsync", fsync)
        events = self.storeLog()
        replies = self.transaction([b"alice@example.com", b"bob@example.com"])
        self.assertTrue(replies[-1].startswith(b"451 4.3.0 "), replies)
        self.assertNothingDelivered(["alice@example.com", "bob@example.com"])
        self.assertOneDiskWarning(events, "[Errno 5] Input/output error")

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
        # The message, and the new account's subscriptions file.
        self.assertEqual(synced.count("file"), 2)
        # The root's parent, the root, the account and its folders, then new/.
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
        The domain and the local part are both lower-cased, non-ASCII
        letters too, quoted or not.
        """
        for address in [
            "Alice@EXAMPLE.Com",
            "ALICE@example.com",
            '"Alice"@example.com',
            "alice@example.com",
        ]:
            self.assertEqual(
                self.backend.mailboxFor(address), self.root / "alice@example.com"
            )
        self.assertEqual(
            self.backend.mailboxFor("RENÉ@example.com"),
            self.root / "ren%C3%A9@example.com",
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
        self.assertEqual(unquote(names[10]), "a%2fb@example.com")

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
        self.assertEqual(
            mailboxDirectoryName("Ab.C", "example.com"), "ab.c@example.com"
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


class _ThreadedReactor:
    """
    Just enough reactor for a backend with its own pool: calls from
    threads are queued for the test to run, shutdown triggers recorded.
    """

    def __init__(self) -> None:
        self.calls: queue.Queue[tuple[Callable[..., object], tuple[object, ...]]]
        self.calls = queue.Queue()
        self.triggers: list[tuple[str, str, Callable[[], object]]] = []

    def callFromThread(self, f: Callable[..., object], *args: object) -> None:
        self.calls.put((f, args))

    def addSystemEventTrigger(
        self, phase: str, event: str, f: Callable[[], object]
    ) -> None:
        self.triggers.append((phase, event, f))

    def getThreadPool(self) -> ThreadPool:
        raise AssertionError("the reactor's thread pool was used")


class DiskPoolTests(SynchronousTestCase):
    """
    The backend's own thread pool.
    """

    def test_ownPool(self) -> None:
        """
        Without a pool given, the backend writes in a pool of its own of
        C{diskThreads} threads, made at the first delivery and stopped when
        the reactor shuts down, never in the reactor's pool.
        """
        reactor = _ThreadedReactor()
        root = Path(self.mktemp())
        backend = MaildirBackend(root, ["example.com"], reactor=reactor, diskThreads=2)
        self.assertEqual(reactor.triggers, [])
        threads: list[str] = []
        realWrite = storeFiles.writeSynced

        def write(path: Path, data: bytes, mtime: float | None = None) -> None:
            threads.append(threading.current_thread().name)
            realWrite(path, data, mtime)

        self.patch(storeFiles, "writeSynced", write)
        d = backend.deliver(b"Subject: x\n\nx\n", ["alice@example.com"])
        f, args = reactor.calls.get(timeout=10)
        f(*args)
        self.assertIsNone(self.successResultOf(d))
        self.assertEqual(len(_files(root / "alice@example.com" / "new")), 1)
        [(phase, event, stop)] = reactor.triggers
        self.assertEqual((phase, event), ("during", "shutdown"))
        pool = getattr(stop, "__self__", None)
        assert isinstance(pool, ThreadPool)
        self.assertEqual(pool.max, 2)
        stop()
        # The message, and the new account's subscriptions file.
        self.assertEqual(len(threads), 2)
        for name in threads:
            self.assertIn("gomail-maildir", name)
        self.assertTrue(pool.joined)

    def test_noDiskThreads(self) -> None:
        """
        A backend needs at least one disk thread.
        """
        self.assertRaises(
            ValueError, MaildirBackend, self.mktemp(), ["example.com"], diskThreads=0
        )


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


class IsolationTests(TestCase):
    """
    Disk writes and DNS lookups do not wait for each other.
    """

    timeout = 60

    async def test_silentNameserverDoesNotDelayDelivery(self) -> None:
        """
        With many TXT lookups outstanding at a nameserver on 127.0.0.1
        that never answers, a Maildir delivery (with the backend's default
        pool and reactor) completes before any lookup times out.
        """
        silent = ScriptedDNSServer(lambda request, transport: [])
        silent.start(reactor)
        self.addCleanup(silent.stop)
        resolver = Resolver(
            reactor, ["127.0.0.1"], port=silent.port, timeout=8, lifetime=8
        )
        lookups = [
            resolver.lookupTXT(f"s{i}._domainkey.example.org") for i in range(40)
        ]
        failures: list[Failure] = []
        for lookup in lookups:
            lookup.addErrback(failures.append)
        root = Path(self.mktemp())
        backend = MaildirBackend(root, ["example.com"])
        await backend.deliver(b"Subject: x\n\nx\n", ["alice@example.com"])
        self.assertEqual(len(_files(root / "alice@example.com" / "new")), 1)
        self.assertEqual(failures, [])
        self.assertEqual([lookup.called for lookup in lookups], [False] * 40)
        for lookup in lookups:
            lookup.cancel()
        self.assertEqual(len(failures), 40)
        for failure in failures:
            failure.trap(CancelledError)
