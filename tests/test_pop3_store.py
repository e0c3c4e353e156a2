# -*- test-case-name: tests.test_pop3_store -*-
"""
Tests for L{gomail_twisted.pop3.StoreBackend}: the real POP3 server over a
L{StringTransport}, serving a real L{MaildirStore} in a temporary directory
to the users of a users file, the disk work and password checks run at
once on the calling thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import argon2
from twisted.internet.defer import fail
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from gomail_twisted.maildir import (
    DELETED,
    IFolder,
    IFolderListener,
    MaildirStore,
    MessageInfo,
    StoreFailed,
)
from gomail_twisted.pop3 import (
    POP3ServerFactory,
    StoreBackend,
    replies,
    uidlOf,
)
from gomail_twisted.pop3._wire import stuffMessage, topOfMessage
from gomail_twisted.users import PasswordHashing, UsersChecker, UsersDatabase
from tests.test_pop3_server import Connection, multilineBody, plain
from tests.test_smtp_maildir import _Reactor, _ThreadPool

HASHER = argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
ALICE = "alice@example.com"
ALICE_PASSWORD = "correct horse"

USERS = f"""\
domain example.com
user {ALICE} {HASHER.hash(ALICE_PASSWORD)}
user bob@example.com {HASHER.hash("bob's")}
"""

MESSAGES = [
    b"Subject: one\r\n\r\nfirst\r\n",
    b"Subject: two\r\n\r\n.second, with a dot\r\n",
    b"Subject: three\nBare: LF\n\nthird\n",
]


@implementer(IFolderListener)
class _Listener:
    """
    Records what an open view of a folder is told.
    """

    def __init__(self) -> None:
        self.expunged: list[tuple[int, ...]] = []

    def messagesAdded(self, folder: IFolder, messages: Sequence[MessageInfo]) -> None:
        pass

    def flagsChanged(self, folder: IFolder, messages: Sequence[MessageInfo]) -> None:
        pass

    def messagesExpunged(self, folder: IFolder, uids: Sequence[int]) -> None:
        self.expunged.append(tuple(uids))

    def folderGone(self, folder: IFolder) -> None:
        pass


class _StoreTestCase(SynchronousTestCase):
    """
    A store with Alice's three messages, and POP3 connections to it.
    """

    def setUp(self) -> None:
        self.root = Path(self.mktemp())
        usersFile = Path(self.mktemp())
        usersFile.write_text(USERS)
        self.reactor = _Reactor()
        self.pool = _ThreadPool()
        self.store = MaildirStore(self.root, reactor=self.reactor, threadPool=self.pool)
        self.users = UsersDatabase(usersFile)
        self.hashing = PasswordHashing(
            self.reactor, hasher=HASHER, threadPool=self.pool
        )
        self.backend = StoreBackend(UsersChecker(self.users, self.hashing), self.store)
        self.factory = POP3ServerFactory(
            self.backend,
            hostname="pop.example.com",
            allowPlaintextAuth=True,
            reactor=self.reactor,
        )
        for message in MESSAGES:
            self.successResultOf(self.store.deliver([ALICE], message))

    def connect(self) -> Connection:
        connection = Connection(self.factory)
        self.addCleanup(connection.lose)
        return connection

    def login(self, user: str = ALICE, password: str = ALICE_PASSWORD) -> Connection:
        connection = self.connect()
        connection.command(b"USER " + user.encode())
        reply = connection.command(b"PASS " + password.encode())
        self.assertTrue(reply.startswith(b"+OK Logged in"), reply)
        return connection

    def inbox(self) -> IFolder:
        account = self.successResultOf(self.store.openAccount(ALICE))
        folder: IFolder = self.successResultOf(account.openFolder("INBOX"))
        self.addCleanup(folder.close)
        return folder


class StoreBackendTests(_StoreTestCase):
    """
    POP3 sessions over the store's INBOX.
    """

    def test_listingsMatchTheStore(self) -> None:
        """
        STAT, LIST and UIDL give the store's messages: their CRLF sizes, and
        UIDVALIDITY.UID as unique-id.
        """
        folder = self.inbox()
        infos = folder.messages()
        c = self.login()
        total = sum(info.size for info in infos)
        self.assertEqual(c.command(b"STAT"), b"+OK 3 %d\r\n" % total)
        self.assertEqual(
            multilineBody(c.command(b"LIST")),
            [b"%d %d" % (i + 1, info.size) for i, info in enumerate(infos)],
        )
        self.assertEqual(
            multilineBody(c.command(b"UIDL")),
            [
                b"%d %s" % (i + 1, uidlOf(folder.uidValidity, info.uid).encode())
                for i, info in enumerate(infos)
            ],
        )

    def test_retrieveInCRLF(self) -> None:
        """
        RETR sends the stored message with CRLF line ends, dot-stuffed.
        """
        c = self.login()
        # The store's order need not be that of delivery.
        sent = [c.command(b"RETR %d" % number) for number in (1, 2, 3)]
        self.assertIn(
            b"+OK 35 octets\r\nSubject: three\r\nBare: LF\r\n\r\nthird\r\n.\r\n",
            sent,
        )
        self.assertEqual(len([r for r in sent if b"\r\n..second" in r]), 1)

    def test_uidlStableAcrossSessions(self) -> None:
        """
        UIDL values are the same in the next session; a new message gets a
        new one and the others keep theirs.
        """
        c = self.login()
        first = multilineBody(c.command(b"UIDL"))
        c.command(b"QUIT")
        c.lose()
        self.successResultOf(self.store.deliver([ALICE], b"Subject: four\r\n\r\n4\r\n"))
        c = self.login()
        second = multilineBody(c.command(b"UIDL"))
        self.assertEqual(second[:3], first)
        self.assertEqual(len(set(line.split()[1] for line in second)), 4)

    def test_snapshot(self) -> None:
        """
        Mail that arrives during a session does not change its listing.
        """
        c = self.login()
        before = c.command(b"STAT")
        self.successResultOf(self.store.deliver([ALICE], b"Subject: new\r\n\r\nx\r\n"))
        self.assertEqual(c.command(b"STAT"), before)

    def test_deleteAndQuit(self) -> None:
        """
        DELE and QUIT remove the messages from the store, and an open view
        of INBOX (an IMAP session) is told they were expunged.
        """
        folder = self.inbox()
        listener = _Listener()
        folder.addListener(listener)
        uids = [info.uid for info in folder.messages()]
        c = self.login()
        c.command(b"DELE 1")
        c.command(b"DELE 3")
        self.assertEqual(c.command(b"QUIT"), b"+OK Bye, 2 messages deleted\r\n")
        self.assertEqual(listener.expunged, [(uids[0], uids[2])])
        fresh = self.inbox()
        self.assertEqual([info.uid for info in fresh.messages()], [uids[1]])

    def test_retrievedMarkedSeen(self) -> None:
        """
        At QUIT, the messages sent whole with RETR and kept are marked seen
        in the store (their files get the C{S} flag, so IMAP and mutt show
        them read); those only looked at with TOP are not, and a dropped
        connection marks nothing.
        """
        c = self.login()
        c.command(b"RETR 1")
        c.command(b"TOP 2 0")
        c.command(b"DELE 3")
        self.assertEqual(c.command(b"QUIT"), b"+OK Bye, 1 message deleted\r\n")
        flags = [info.flags for info in self.inbox().messages()]
        self.assertEqual(flags, [frozenset({"\\Seen"}), frozenset()])
        names = sorted(p.name for p in (self.root / ALICE / "cur").iterdir())
        self.assertEqual(sorted(n.rpartition(":2,")[2] for n in names), ["", "S"])
        lost = self.login()
        lost.command(b"RETR 2")
        lost.lose()
        flags = [info.flags for info in self.inbox().messages()]
        self.assertEqual(flags, [frozenset({"\\Seen"}), frozenset()])

    def test_failedCommitDeletesNothing(self) -> None:
        """
        When the expunge fails, the client gets C{-ERR [SYS/TEMP]}, every
        message stays, and none is left flagged C{\\Deleted}.
        """
        c = self.login()
        maildrop: Any = c.protocol._maildrop
        maildrop._folder.expunge = lambda uids: fail(StoreFailed("disk full"))
        c.command(b"DELE 2")
        self.assertEqual(c.command(b"QUIT"), replies.COMMIT_FAILED.format())
        self.assertEqual(len(self.flushLoggedErrors(StoreFailed)), 1)
        infos = self.inbox().messages()
        self.assertEqual(len(infos), 3)
        self.assertFalse(any(DELETED in info.flags for info in infos))

    def test_droppedConnectionDeletesNothing(self) -> None:
        """
        A connection lost after DELE deletes nothing, and frees the
        maildrop for the next session.
        """
        c = self.login()
        c.command(b"DELE 1")
        c.lose()
        self.assertEqual(len(self.inbox().messages()), 3)
        self.assertFalse(self.backend.inUse(ALICE))
        self.login()

    def test_inUse(self) -> None:
        """
        A second session of the same user gets C{-ERR [IN-USE]} until the
        first ends; another user is not affected.
        """
        first = self.login()
        second = self.connect()
        second.command(b"USER Alice@Example.com")
        self.assertEqual(
            second.command(b"PASS " + ALICE_PASSWORD.encode()),
            replies.IN_USE.format(),
        )
        self.login("bob@example.com", "bob's")
        first.command(b"QUIT")
        first.lose()
        self.login()

    def test_wrongPassword(self) -> None:
        """
        A wrong password, an unknown user and a PLAIN authorization
        identity of another user are all C{-ERR [AUTH]}.
        """
        c = self.connect()
        c.command(b"USER " + ALICE.encode())
        self.assertEqual(c.command(b"PASS nope"), replies.AUTH_FAILED.format())
        c.command(b"USER nobody@example.com")
        self.assertEqual(c.command(b"PASS nope"), replies.AUTH_FAILED.format())
        reply = c.command(
            b"AUTH PLAIN " + plain(ALICE, ALICE_PASSWORD, "bob@example.com")
        )
        self.assertEqual(reply, replies.AUTH_FAILED.format())
        self.assertFalse(self.backend.inUse(ALICE))

    def test_authPlain(self) -> None:
        """
        AUTH PLAIN logs in, with or without the user's own authorization
        identity.
        """
        c = self.connect()
        reply = c.command(b"AUTH PLAIN " + plain(ALICE, ALICE_PASSWORD, ALICE))
        self.assertTrue(reply.startswith(b"+OK Logged in, 3 messages"), reply)

    def test_hashingBusy(self) -> None:
        """
        When too many password checks wait, the login is C{-ERR
        [SYS/TEMP]}, so the client tries again later.
        """
        waiting = _ThreadPool(now=False)
        hashing = PasswordHashing(
            self.reactor, hasher=HASHER, threadPool=waiting, maxQueued=1
        )
        self.factory.backend = StoreBackend(
            UsersChecker(self.users, hashing), self.store
        )
        first = self.connect()
        first.command(b"USER " + ALICE.encode())
        first.command(b"PASS x")
        c = self.connect()
        c.command(b"USER " + ALICE.encode())
        reply = c.command(b"PASS " + ALICE_PASSWORD.encode())
        self.assertEqual(reply, replies.TEMPORARY_FAILURE.format())

    def test_newAccount(self) -> None:
        """
        A user without an account yet logs in to an empty maildrop.
        """
        c = self.login("bob@example.com", "bob's")
        self.assertEqual(c.command(b"STAT"), b"+OK 0 0\r\n")


class ReadAheadTests(_StoreTestCase):
    """
    The next message is read while one is sent, and never changes what a
    client gets.
    """

    def setUp(self) -> None:
        super().setUp()
        folder = self.inbox()
        # The stored messages in the maildrop's order, which is the
        # store's, not necessarily that of delivery.
        self.stored = [
            self.successResultOf(folder.read(info.uid)) for info in folder.messages()
        ]

    def retrieved(self, index: int) -> bytes:
        """
        What RETR sends of a message.

        @param index: its index in the maildrop.
        """
        crlf = self.stored[index]
        return b"+OK %d octets\r\n" % len(crlf) + stuffMessage(crlf)

    def recordReads(self, connection: Connection) -> tuple[list[int], list[int]]:
        """
        Count the maildrop's reads from the store.

        @return: the UIDs read, in order (filled as reads start), and the
            UIDs of the messages.
        """
        uids = [info.uid for info in self.inbox().messages()]
        folder: Any = connection.protocol._maildrop._folder
        original = folder.read
        reads: list[int] = []

        def read(uid: int, start: int = 0, length: int | None = None) -> Any:
            reads.append(uid)
            return original(uid, start, length)

        folder.read = read
        return reads, uids

    def test_nextMessageReadBeforeItsRETR(self) -> None:
        """
        RETR of a message starts the read of the next one, and that one's
        RETR is answered without another read; the last reads none ahead.
        """
        c = self.login()
        reads, uids = self.recordReads(c)
        self.assertEqual(c.command(b"RETR 1"), self.retrieved(0))
        self.assertEqual(reads, uids[:2])
        self.assertEqual(c.command(b"RETR 2"), self.retrieved(1))
        self.assertEqual(reads, uids)
        self.assertEqual(c.command(b"RETR 3"), self.retrieved(2))
        self.assertEqual(reads, uids)

    def test_pendingReadAhead(self) -> None:
        """
        A RETR that comes while its message is still being read ahead is
        answered when that read ends, with no second read.
        """
        c = self.login()
        reads, uids = self.recordReads(c)
        self.pool.now = False
        self.assertEqual(c.command(b"RETR 1"), b"")
        self.pool.runAll()
        self.assertEqual(c.read(), self.retrieved(0))
        # The next message's read waits in the pool before its RETR.
        self.assertEqual(reads, uids[:2])
        self.assertEqual(len(self.pool.pending), 1)
        self.assertEqual(c.command(b"RETR 2"), b"")
        self.pool.runAll()
        self.assertEqual(c.read(), self.retrieved(1))
        self.assertEqual(reads, uids)

    def test_markedMessagesSkipped(self) -> None:
        """
        The message read ahead is the next one not marked with DELE, and a
        marked one stays refused.
        """
        c = self.login()
        reads, uids = self.recordReads(c)
        c.command(b"DELE 2")
        self.assertEqual(c.command(b"RETR 1"), self.retrieved(0))
        self.assertEqual(reads, [uids[0], uids[2]])
        self.assertEqual(c.command(b"RETR 2"), replies.MESSAGE_DELETED.format())
        self.assertEqual(c.command(b"RETR 3"), self.retrieved(2))
        self.assertEqual(reads, [uids[0], uids[2]])

    def test_deleDropsReadAhead(self) -> None:
        """
        DELE of the message read ahead drops it: after RSET its RETR reads
        it again, and gets it right.
        """
        c = self.login()
        reads, uids = self.recordReads(c)
        c.command(b"RETR 1")
        c.command(b"DELE 2")
        c.command(b"RSET")
        self.assertEqual(c.command(b"RETR 2"), self.retrieved(1))
        self.assertEqual(reads, [uids[0], uids[1], uids[1], uids[2]])

    def test_outOfOrder(self) -> None:
        """
        A RETR of another message than the one read ahead reads its own,
        and each client gets the message it asked for.
        """
        c = self.login()
        reads, uids = self.recordReads(c)
        c.command(b"RETR 1")
        self.assertEqual(c.command(b"RETR 3"), self.retrieved(2))
        self.assertEqual(c.command(b"RETR 2"), self.retrieved(1))
        self.assertEqual(c.command(b"RETR 1"), self.retrieved(0))
        self.assertEqual(
            reads, [uids[0], uids[1], uids[2], uids[1], uids[2], uids[0], uids[1]]
        )

    def test_topReadsAhead(self) -> None:
        """
        TOP reads the next message ahead too, and RETR of it is whole.
        """
        c = self.login()
        reads, uids = self.recordReads(c)
        self.assertEqual(
            c.command(b"TOP 1 0"),
            b"+OK Top of message follows\r\n"
            + stuffMessage(topOfMessage(self.stored[0], 0)),
        )
        self.assertEqual(c.command(b"RETR 2"), self.retrieved(1))
        self.assertEqual(reads, uids)

    def test_largeMessagesNotReadAhead(self) -> None:
        """
        A message larger than the read-ahead bound is read only when asked
        for; one of exactly the bound is read ahead.
        """
        size = self.inbox().messages()[1].size
        for bound, ahead in [(size - 1, 0), (size, 1)]:
            self.factory.backend = StoreBackend(
                UsersChecker(self.users, self.hashing), self.store, readAhead=bound
            )
            c = self.login()
            reads, uids = self.recordReads(c)
            self.assertEqual(c.command(b"RETR 1"), self.retrieved(0))
            self.assertEqual(reads, uids[: 1 + ahead])
            self.assertEqual(c.command(b"RETR 2"), self.retrieved(1))
            self.assertEqual(reads.count(uids[1]), 1)
            c.command(b"QUIT")
            c.lose()

    def test_failedReadAheadReadsAgain(self) -> None:
        """
        When the read ahead fails, the message's RETR reads it again and
        the client sees no error.
        """
        c = self.login()
        reads, uids = self.recordReads(c)
        folder: Any = c.protocol._maildrop._folder
        recording = folder.read
        failures = [StoreFailed("disk hiccup")]

        def read(uid: int, start: int = 0, length: int | None = None) -> Any:
            d = recording(uid, start, length)
            if uid == uids[1] and failures:
                return fail(failures.pop())
            return d

        folder.read = read
        c.command(b"RETR 1")
        self.assertEqual(c.command(b"RETR 2"), self.retrieved(1))
        self.assertEqual(reads, [uids[0], uids[1], uids[1], uids[2]])
        self.assertEqual(self.flushLoggedErrors(StoreFailed), [])
