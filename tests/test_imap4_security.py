# -*- test-case-name: tests.test_imap4_security -*-
"""
Bad input against the IMAP4 server, over the real server and a real
L{MaildirStore}: each case gets a clear tagged reply or a clean close
(C{* BYE}), nothing lands on disk that should not, no command pays per
number a sequence set spans, no nesting reaches the stack's limit, and the
server serves the next connection normally.
"""

from __future__ import annotations

import base64
import os
import re
import socket
import ssl
import tracemalloc
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.endpoints import SSL4ServerEndpoint, TCP4ServerEndpoint
from twisted.internet.interfaces import IListeningPort
from twisted.internet.task import Clock
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import TestCase
from zope.interface import implementer

from gomail_twisted.connection import LineServerProtocol
from gomail_twisted.imap4._state import COMMANDS, State, refusal
from gomail_twisted.imap4._values import IMAPCredentials
from gomail_twisted.imap4.backend import StoreBackend
from gomail_twisted.imap4.factory import IMAP4ServerFactory
from gomail_twisted.imap4.interfaces import IIMAPBackend
from gomail_twisted.maildir import MaildirStore
from gomail_twisted.tls import selfSignedCertificate, serverContextFactory
from gomail_twisted.users import PasswordHashing, UsersChecker, UsersDatabase
from tests._imaphelpers import (
    ALICE,
    HASHER,
    USERS,
    Connection,
    StoreTestCase,
    tagged,
)
from tests.test_smtp_maildir import _Reactor, _ThreadPool

_T = TypeVar("_T")

#: How long a real-socket test waits for anything.
WAIT = 10.0

MESSAGES = (
    b"From: a@example.com\r\nSubject: one\r\n\r\nfirst\r\n",
    b"From: b@example.com\r\nSubject: two\r\n\r\nsecond\r\n",
    b"From: c@example.com\r\nSubject: three\r\n\r\nthird\r\n",
)

#: The folders every new account has, as directories on disk.
DEFAULT_FOLDERS = {".Archive", ".Drafts", ".Junk", ".Sent", ".Trash"}


def plain(user: str, password: str) -> bytes:
    """
    A SASL PLAIN response without an authorization identity, base64.
    """
    return base64.b64encode(f"\0{user}\0{password}".encode())


def measured(action: Callable[[], _T]) -> tuple[_T, int]:
    """
    Run C{action}, tracing Python's allocations.

    @return: what it returned, and the most memory allocated while it ran
        above what was allocated when it started, in octets.
    """
    tracemalloc.start()
    try:
        result = action()
        most = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return result, most


class SecurityTestCase(StoreTestCase):
    """
    Alice's INBOX holds three messages; the error budget is large unless a
    test says otherwise, so that a table of bad commands runs on one
    connection.  After each test a new connection logs in, selects INBOX
    and is answered: the server still serves.
    """

    def setUp(self) -> None:
        super().setUp()
        self.factory = self.makeFactory(maxErrors=1000, maxConnectionsPerPeer=1000)
        self.deliver(*MESSAGES)

    def tearDown(self) -> None:
        c = Connection(self.factory)
        self.addCleanup(c.lose)
        answer = c.command(b'z LOGIN alice@example.com "correct horse"')
        self.assertTrue(tagged(answer, b"z").startswith(b"z OK"), answer)
        answer = c.command(b"y SELECT INBOX")
        self.assertTrue(tagged(answer, b"y").startswith(b"y OK [READ-WRITE]"), answer)
        self.assertEqual(c.command(b"x NOOP"), b"x OK NOOP completed\r\n")

    def accountPath(self, user: str = ALICE) -> Path:
        return self.root / user

    def folderDirectories(self) -> set[str]:
        """
        The folder directories in Alice's account on disk.
        """
        account = self.accountPath()
        return {p.name for p in account.iterdir() if p.name.startswith(".")}

    def assertNothingOutsideAccounts(self) -> None:
        """
        Every file and directory under the store's root is inside an
        account's directory.
        """
        accounts = {self.accountPath().resolve()}
        for directory, dirs, files in os.walk(self.root):
            for name in dirs + files:
                path = (Path(directory) / name).resolve()
                self.assertTrue(
                    path in accounts or any(a in path.parents for a in accounts),
                    path,
                )
        # The store's root is the only thing in its temporary directory.
        self.assertEqual(os.listdir(self.root.parent), [self.root.name])


class LiteralTests(SecurityTestCase):
    """
    Literals (RFC 3501 4.3, RFC 7888) whose announced size passes a limit,
    or that never end.
    """

    def test_announcedTooLarge(self) -> None:
        """
        A synchronizing literal over the limit is refused with no C{+} and
        the session goes on; a non-synchronizing one is refused, then
        C{BYE} and close, since its octets are on their way (RFC 7888 4):
        before and after login, for APPEND's message and for other
        commands.
        """
        tooBig = b"BAD [TOOBIG] Command too large"
        tooLarge = b"NO [TOOBIG] Message too large (at most 52428800 octets)"
        bye = b"* BYE [TOOBIG] Literal too large"
        cases = [
            # (logged in, command, expected tagged reply)
            (False, b"t LOGIN {8193", tooBig),
            (False, b"t LOGIN alice {8180", tooBig),
            (False, b"t ID ({8190", tooBig),
            (False, b"t LOGIN {4294967295", tooBig),
            (True, b"t CREATE {1048577", tooBig),
            (True, b"t LIST {4294967295", tooBig),
            (True, b"t APPEND INBOX {52428801", tooLarge),
            (True, b"t APPEND INBOX (\\Seen) {4294967295", tooLarge),
            (True, b't APPEND INBOX "1-Jan-2024 00:00:00 +0000" {99999999', tooLarge),
            (True, b"t APPEND Nowhere {52428801", tooLarge),
        ]
        for loggedIn, line, reply in cases:
            c = self.login() if loggedIn else self.connect()
            self.assertEqual(c.lines(line + b"}"), [b"t " + reply], line)
            self.assertEqual(c.lines(b"n NOOP"), [b"n OK NOOP completed"])
            c = self.login() if loggedIn else self.connect()
            self.assertEqual(c.lines(line + b"+}"), [b"t " + reply, bye], line)
            self.assertTrue(c.closed, line)
            # Nothing sent after it is read.
            self.assertEqual(c.command(b"n NOOP"), b"")
        self.assertEqual(len(self.folder().messages()), 3)

    def test_sizeOutOfRangeSynchronizing(self) -> None:
        """
        A synchronizing literal announced as 4294967296 octets or with 30
        digits, before or after login, is BAD with no C{+}; the session
        goes on.
        """
        for size in (b"4294967296", b"9" * 30, b"0" * 11 + b"1"):
            for c in (self.connect(), self.login()):
                for line in (b"t LOGIN {%s}", b"t APPEND INBOX {%s}"):
                    [reply] = c.lines(line % size)
                    self.assertTrue(reply.startswith(b"t BAD "), reply)
                    self.assertEqual(c.lines(b"n NOOP"), [b"n OK NOOP completed"])

    def test_sizeOutOfRangeNonSynchronizing(self) -> None:
        """
        A non-synchronizing literal announced past 2**32-1 octets is BAD,
        then BYE and close: its octets are never read as commands.
        """
        for size in (b"4294967296", b"9" * 30):
            for c in (self.connect(), self.login()):
                answer = c.send(b"t LOGIN {" + size + b"+}\r\nn NOOP\r\n")
                self.assertNotIn(b"n OK", answer)
                self.assertTrue(answer.startswith(b"t BAD "), answer)
                self.assertTrue(
                    answer.endswith(b"* BYE [TOOBIG] Literal too large\r\n"), answer
                )
                self.assertTrue(c.closed)

    def test_appendBeforeLoginNonSynchronizing(self) -> None:
        """
        Before a login, a non-synchronizing APPEND message is held to the
        small pre-login limit: past it, BYE and close.
        """
        c = self.connect()
        answer = c.send(b"t APPEND INBOX {8193+}\r\n")
        self.assertIn(b"* BYE [TOOBIG]", answer)
        self.assertTrue(c.closed)

    def test_appendBeforeLoginNeverContinued(self) -> None:
        """
        APPEND before login is refused with no C{+}, whatever the size
        announced, and nothing is stored.
        """
        c = self.connect()
        for size in (b"5", b"8193", b"52428801"):
            [reply] = c.lines(b"t APPEND INBOX {" + size + b"}")
            self.assertTrue(reply.startswith((b"t BAD ", b"t NO ")), reply)
        self.assertEqual(c.lines(b"n NOOP"), [b"n OK NOOP completed"])
        self.assertEqual(len(self.folder().messages()), 3)

    def test_manySmallLiteralsAddUp(self) -> None:
        """
        Literals each under the limit, but adding up past it in one
        command, end the command: C{BAD [TOOBIG]} with no C{+} for a
        synchronizing one, C{BYE} for a non-synchronizing one; before login
        the smaller limit applies.
        """
        self.factory = self.makeFactory(
            maxErrors=1000,
            maxConnectionsPerPeer=1000,
            maxLineLength=1024,
            maxCommandSize=4096,
            maxLoginCommandSize=2048,
        )
        for loggedIn, limit in ((False, 2048), (True, 4096)):
            c = self.login() if loggedIn else self.connect()
            c.send(b"t LOGIN")
            sent = 7
            while sent + 300 < limit:
                self.assertEqual(
                    c.send(b" {100}\r\n"), b"+ Ready for literal data\r\n", sent
                )
                c.send(b"x" * 100)
                sent += 108
            self.assertEqual(c.lines(b" {300}"), [b"t BAD [TOOBIG] Command too large"])
            self.assertEqual(c.lines(b"n NOOP"), [b"n OK NOOP completed"])
            c = self.login() if loggedIn else self.connect()
            answer = c.send(b"t LOGIN")
            for _ in range(limit // 100):
                answer += c.send(b" {100+}\r\n" + b"x" * 100)
            self.assertEqual(
                answer,
                b"t BAD [TOOBIG] Command too large\r\n"
                b"* BYE [TOOBIG] Literal too large\r\n",
            )
            self.assertTrue(c.closed)

    def test_emptyLiteralsAddUp(self) -> None:
        """
        Empty literals cost their announcements: thousands of C{{0+}} in
        one command end it with C{BYE}.
        """
        c = self.connect()
        answer = c.send(b"t LOGIN" + b" {0+}\r\n" * 5000)
        self.assertEqual(
            answer,
            b"t BAD [TOOBIG] Command too large\r\n* BYE [TOOBIG] Literal too large\r\n",
        )
        self.assertTrue(c.closed)

    def test_literalNeverEnds(self) -> None:
        """
        A client that stops sending in the middle of a literal is closed by
        the idle timeout (C{* BYE}); the server held no more than was sent,
        not the size announced.
        """
        c = self.login()
        self.assertEqual(
            c.command(b"t CREATE {1000000}"), b"+ Ready for literal data\r\n"
        )
        _, held = measured(partial(c.send, b"x" * 1000))
        self.assertLess(held, 64 * 1024)
        self.reactor.advance(30 * 60 - 1)
        self.assertFalse(c.closed)
        self.reactor.advance(1)
        self.assertEqual(c.read(), b"* BYE Disconnected for inactivity\r\n")
        self.assertTrue(c.closed)
        self.assertEqual(c.send(b"x" * 999000 + b"\r\nn NOOP\r\n"), b"")

    def test_appendNeverEnds(self) -> None:
        """
        An APPEND whose message stops half way is closed by the idle
        timeout; once the connection is gone, nothing of it is left in the
        mailbox or in its C{tmp} directory.
        """
        c = self.login()
        self.assertEqual(
            c.command(b"t APPEND INBOX {100000}"), b"+ Ready for literal data\r\n"
        )
        c.send(b"Subject: partial\r\n\r\n" + b"y" * 50000)
        self.reactor.advance(30 * 60)
        self.assertEqual(c.read(), b"* BYE Disconnected for inactivity\r\n")
        self.assertTrue(c.closed)
        c.lose()
        self.assertEqual(len(self.folder().messages()), 3)
        self.assertEqual(os.listdir(self.accountPath() / "tmp"), [])

    def test_literalTrickledStaysOpen(self) -> None:
        """
        A literal sent a few octets a minute is not cut off: each octet
        starts the idle clock over.
        """
        c = self.login()
        c.command(b"t APPEND INBOX {28}")
        for octet in b"Subject: slow\r\n\r\nslow body\r\n":
            self.reactor.advance(29 * 60)
            self.assertEqual(c.send(bytes([octet])), b"")
        answer = c.command(b"")
        self.assertTrue(tagged(answer, b"t").startswith(b"t OK [APPENDUID "), answer)
        self.assertEqual(len(self.folder().messages()), 4)


#: A well-formed example of each command of the state table, as sent after
#: its tag; the UID forms share their command's states.
SAMPLES: list[tuple[str, bytes]] = [
    ("CAPABILITY", b"CAPABILITY"),
    ("NOOP", b"NOOP"),
    ("LOGOUT", b"LOGOUT"),
    ("ID", b'ID ("name" "test")'),
    ("STARTTLS", b"STARTTLS"),
    ("AUTHENTICATE", b"AUTHENTICATE PLAIN " + plain(ALICE, "wrong")),
    ("LOGIN", b"LOGIN alice@example.com wrong"),
    ("ENABLE", b"ENABLE CONDSTORE"),
    ("SELECT", b"SELECT INBOX"),
    ("EXAMINE", b"EXAMINE INBOX"),
    ("CREATE", b"CREATE Projects"),
    ("DELETE", b"DELETE Junk"),
    ("RENAME", b"RENAME Archive Old"),
    ("SUBSCRIBE", b"SUBSCRIBE Projects"),
    ("UNSUBSCRIBE", b"UNSUBSCRIBE Trash"),
    ("LIST", b'LIST "" *'),
    ("LSUB", b'LSUB "" *'),
    ("STATUS", b"STATUS INBOX (MESSAGES UIDNEXT)"),
    ("APPEND", b"APPEND INBOX {7+}\r\nhello\r\n"),
    ("NAMESPACE", b"NAMESPACE"),
    ("IDLE", b"IDLE"),
    ("CHECK", b"CHECK"),
    ("CLOSE", b"CLOSE"),
    ("UNSELECT", b"UNSELECT"),
    ("EXPUNGE", b"EXPUNGE"),
    ("EXPUNGE", b"UID EXPUNGE 1:*"),
    ("SEARCH", b"SEARCH ALL"),
    ("SEARCH", b"UID SEARCH ALL"),
    ("FETCH", b"FETCH 1 FLAGS"),
    ("FETCH", b"UID FETCH 1 FLAGS"),
    ("STORE", b"STORE 1 +FLAGS (\\Flagged)"),
    ("STORE", b"UID STORE 1 +FLAGS (\\Flagged)"),
    ("COPY", b"COPY 1 Trash"),
    ("COPY", b"UID COPY 1 Trash"),
    ("MOVE", b"MOVE 1 Trash"),
    ("MOVE", b"UID MOVE 1 Trash"),
]


class StateTests(SecurityTestCase):
    """
    Every command in every state (RFC 3501 3, 6), from the state table.
    """

    def inState(self, state: State) -> Connection:
        if state is State.NOT_AUTHENTICATED:
            return self.connect()
        if state is State.AUTHENTICATED:
            return self.login()
        return self.selected()

    def test_everyCommandSampled(self) -> None:
        """
        The samples cover every command of the state table.
        """
        self.assertEqual({name for name, _ in SAMPLES}, set(COMMANDS))

    def test_refusedInWrongState(self) -> None:
        """
        A command sent in a state where it is not allowed gets exactly the
        state table's C{BAD}, and changes nothing: no folder is made, no
        message stored, the state stays.
        """
        before = self.folderDirectories()
        for state in (State.NOT_AUTHENTICATED, State.AUTHENTICATED, State.SELECTED):
            c = self.inState(state)
            for i, (name, line) in enumerate(SAMPLES):
                expected = refusal(name, state)
                if expected is None:
                    continue
                tag = b"t%d" % (i,)
                self.assertEqual(
                    c.command(tag + b" " + line),
                    expected.format(tag.decode()),
                    (state, line),
                )
            self.assertEqual(c.protocol.state, state)
            self.assertEqual(c.lines(b"n NOOP"), [b"n OK NOOP completed"])
        self.assertEqual(self.folderDirectories(), before)
        self.assertEqual(len(self.folder().messages()), 3)

    def test_allowedInState(self) -> None:
        """
        A command allowed in a state gets one tagged reply, which is not a
        refusal for the state; IDLE waits for C{DONE} first.
        """
        refusals = {
            status.format("t")
            for name in COMMANDS
            for s in State
            if (status := refusal(name, s)) is not None
        }
        for state in (State.NOT_AUTHENTICATED, State.AUTHENTICATED, State.SELECTED):
            for name, line in SAMPLES:
                if state not in COMMANDS[name]:
                    continue
                c = self.inState(state)
                answer = c.command(b"t " + line)
                if name == "IDLE":
                    self.assertEqual(answer, b"+ idling\r\n")
                    answer = c.command(b"DONE")
                lines = answer.split(b"\r\n")
                replies = [x for x in lines if x.startswith(b"t ")]
                self.assertEqual(len(replies), 1, (state, line, answer))
                self.assertNotIn(replies[0] + b"\r\n", refusals, (state, line))
                c.lose()

    def test_nothingAfterLogout(self) -> None:
        """
        After LOGOUT no command is answered or run, whether it came in the
        same read or later: no folder is made and no message stored.
        """
        before = self.folderDirectories()
        for state in (State.NOT_AUTHENTICATED, State.AUTHENTICATED, State.SELECTED):
            c = self.inState(state)
            pipelined = b"".join(b"p " + line + b"\r\n" for _, line in SAMPLES)
            answer = c.send(b"t LOGOUT\r\n" + pipelined)
            self.assertTrue(
                answer.endswith(b"* BYE Logging out\r\nt OK Logout completed\r\n"),
                answer,
            )
            self.assertNotIn(b"\r\np ", b"\r\n" + answer)
            self.assertTrue(c.closed)
            self.assertEqual(c.send(pipelined), b"")
            self.assertEqual(c.protocol.state, State.LOGOUT)
        self.assertEqual(self.folderDirectories(), before)
        self.assertEqual(len(self.folder().messages()), 3)


class SequenceSetTests(SecurityTestCase):
    """
    Malformed and huge sequence sets (RFC 3501 9, C{sequence-set}) on a
    mailbox of three messages, by message number and by UID.
    """

    def test_malformed(self) -> None:
        """
        Zero, numbers past 2^32-1, and (by message number) numbers past the
        last message are BAD; a reversed range is its reverse, C{*} the
        last message, and UIDs of no message name nothing (RFC 3501 6.4.8).
        SEARCH matches no message for a number past the last, as Dovecot
        does.
        """
        zero = b"BAD Invalid sequence set: 0 is not a message number"
        past = b"BAD Invalid message sequence number"
        big = b"BAD Invalid sequence set: 4294967296 is too large"
        huge = b"BAD Invalid sequence set: 999999999999999999999999999999 is too large"
        allThree = b"* SEARCH 1 2 3"
        cases = [
            # (set, STORE and FETCH (numbers answered), their UID forms,
            # SEARCH, UID SEARCH UID)
            (b"0", zero, zero, zero, zero),
            (b"0:5", zero, zero, zero, zero),
            (b"3:0", zero, zero, zero, zero),
            (b"5:1", past, b"1 2 3", allThree, allThree),
            (b"*:1", b"1 2 3", b"1 2 3", allThree, allThree),
            (b"1:4294967295", past, b"1 2 3", allThree, allThree),
            (b"4294967295", past, b"", b"* SEARCH", b"* SEARCH"),
            (b"4", past, b"", b"* SEARCH", b"* SEARCH"),
            (b"4:*", past, b"3", b"* SEARCH 3", b"* SEARCH 3"),
            (b"2,4294967296", big, big, big, big),
            (b"1:4294967296", big, big, big, big),
            (b"9" * 30, huge, huge, huge, huge),
        ]
        c = self.selected()
        for numbers, store, uidStore, search, uidSearch in cases:
            for line, expected in (
                (b"STORE %s +FLAGS (x)", store),
                (b"UID STORE %s +FLAGS (y)", uidStore),
                (b"FETCH %s (FLAGS)", store),
                (b"UID FETCH %s FLAGS", uidStore),
                (b"SEARCH %s", search),
                (b"UID SEARCH UID %s", uidSearch),
            ):
                answer = c.command(b"t " + line % numbers)
                if expected.startswith(b"BAD"):
                    self.assertEqual(answer, b"t " + expected + b"\r\n", line)
                elif expected.startswith(b"* SEARCH"):
                    self.assertEqual(
                        answer,
                        expected + b"\r\nt OK SEARCH completed\r\n",
                        line % numbers,
                    )
                else:
                    fetched = [
                        x.split(b" ")[1]
                        for x in answer.split(b"\r\n")
                        if x.startswith(b"* ") and b" FETCH " in x
                    ]
                    self.assertEqual(
                        b" ".join(fetched), expected, (line % numbers, answer)
                    )
                    self.assertRegex(
                        answer, rb"(\A|\n)t OK (STORE|FETCH) completed\r\n\Z"
                    )

    def test_copyAndExpungeByHugeSets(self) -> None:
        """
        COPY, MOVE and UID EXPUNGE with sets spanning every UID act on the
        three messages only; by message number, the same sets are BAD and
        nothing moves.
        """
        c = self.selected()
        self.assertEqual(
            c.lines(b"t COPY 1:4294967295 Trash"),
            [b"t BAD Invalid message sequence number"],
        )
        answer = c.command(b"t UID COPY 1:4294967295 Trash")
        self.assertRegex(tagged(answer, b"t"), rb"^t OK \[COPYUID \d+ 1:3 1:3\] ")
        self.assertEqual(len(self.folder("Trash").messages()), 3)
        c.command(b"t STORE 2 +FLAGS (\\Deleted)")
        self.assertEqual(
            c.command(b"t UID EXPUNGE 1:4294967295,2,*:1"),
            b"* 2 EXPUNGE\r\n* 2 RECENT\r\nt OK EXPUNGE completed\r\n",
        )
        answer = c.command(b"t UID MOVE *:4294967295 Trash")
        self.assertIn(b"* 2 EXPUNGE\r\n", answer)
        self.assertEqual(len(self.folder().messages()), 1)
        self.assertEqual(len(self.folder("Trash").messages()), 4)

    def test_hugeRangeCostsNothingPerNumber(self) -> None:
        """
        C{UID STORE 1:4294967295} and C{UID SEARCH UID 1:4294967295} are
        answered for the three messages with well under a megabyte of
        memory: nothing is made per number the range spans.
        """
        c = self.selected()
        for line in (
            b"t UID STORE 1:4294967295 +FLAGS (x)",
            b"t UID SEARCH UID 1:4294967295",
            b"t UID SEARCH NOT UID 1:4294967295",
            b"t UID COPY 1:4294967295 Trash",
            b"t UID FETCH 1:4294967295 (UID FLAGS)",
            b"t STORE *:1 -FLAGS (x)",
        ):
            answer, most = measured(partial(c.command, line))
            self.assertLess(most, 512 * 1024, line)
            self.assertTrue(tagged(answer, b"t").startswith(b"t OK"), answer)

    def test_tenThousandRanges(self) -> None:
        """
        A set of 10,000 comma-separated ranges (a line of 110 kB, with the
        line limit raised for it) is answered with a bounded amount of
        memory: the ranges are kept, the numbers they span are not.
        """
        self.factory = self.makeFactory(
            maxErrors=1000, maxConnectionsPerPeer=1000, maxLineLength=1024 * 1024
        )
        c = self.selected()
        ranges = b",".join(b"%d:%d" % (i * 3 + 1, i * 3 + 2) for i in range(10000))
        spanning = b",".join([b"1:4294967295"] * 10000)
        for line, expected in (
            (b"t UID STORE " + ranges + b" +FLAGS (x)", b"t OK STORE completed\r\n"),
            (
                b"t UID SEARCH UID " + ranges,
                b"* SEARCH 1 2\r\nt OK SEARCH completed\r\n",
            ),
            (b"t SEARCH " + spanning, b"* SEARCH 1 2 3\r\nt OK SEARCH completed\r\n"),
            (
                b"t UID SEARCH UID " + spanning,
                b"* SEARCH 1 2 3\r\nt OK SEARCH completed\r\n",
            ),
            (b"t UID STORE " + spanning + b" -FLAGS (x)", b"t OK STORE completed\r\n"),
            (b"t UID FETCH " + ranges + b" UID", b"t OK FETCH completed\r\n"),
        ):
            answer, most = measured(partial(c.command, line))
            self.assertLess(most, 8 * 1024 * 1024, line[:30])
            self.assertTrue(answer.endswith(expected), answer[-200:])


class NestingTests(SecurityTestCase):
    """
    Deep nesting: SEARCH keys and parenthesised lists elsewhere.  Each is
    refused with a plain C{BAD}, never by the interpreter's recursion
    limit, and the connection goes on.
    """

    def setUp(self) -> None:
        super().setUp()
        # Room for 10,000 levels of OR on one line.
        self.factory = self.makeFactory(
            maxErrors=1000, maxConnectionsPerPeer=1000, maxLineLength=256 * 1024
        )

    def assertRefused(self, c: Connection, line: bytes, text: bytes) -> None:
        self.assertEqual(c.lines(b"t " + line), [b"t BAD " + text], line[:40])
        self.assertEqual(c.lines(b"n NOOP"), [b"n OK NOOP completed"])

    def test_deepSearch(self) -> None:
        """
        NOT, parentheses and OR 10,000 deep, nested either way, are BAD
        C{Too deeply nested}.
        """
        depth = 10000
        c = self.selected()
        for key in (
            b"NOT " * depth + b"ALL",
            b"(" * depth + b"ALL" + b")" * depth,
            b"OR " * depth + b"ALL " * depth + b"ALL",
            b"OR ALL " * depth + b"ALL",
            b"(NOT " * depth + b"ALL" + b")" * depth,
            b"OR (" * depth + b"ALL" + b") ALL" * depth,
            b"CHARSET UTF-8 " + b"NOT " * depth + b"SUBJECT x",
        ):
            for command in (b"SEARCH ", b"UID SEARCH "):
                self.assertRefused(c, command + key, b"Too deeply nested")

    def test_searchJustWithinDepth(self) -> None:
        """
        Nesting a client really sends, 60 levels, is searched; a list of
        10,000 keys side by side is no nesting at all.
        """
        c = self.selected()
        self.assertEqual(
            c.lines(b"t SEARCH " + b"NOT " * 60 + b"SUBJECT two"),
            [b"* SEARCH 2", b"t OK SEARCH completed"],
        )
        self.assertEqual(
            c.lines(b"t SEARCH " + b"(" * 30 + b"SUBJECT two" + b")" * 30),
            [b"* SEARCH 2", b"t OK SEARCH completed"],
        )
        self.assertEqual(
            c.lines(b"t SEARCH (" + b"UNDELETED " * 10000 + b"SUBJECT o)"),
            [b"* SEARCH 1 2", b"t OK SEARCH completed"],
        )

    def test_deepListsElsewhere(self) -> None:
        """
        Parenthesised lists 10,000 deep where a flat list stands (FETCH
        items, APPEND and STORE flags, ID, STATUS items, LIST options,
        SELECT parameters, ENABLE) are BAD.
        """
        deep = b"(" * 10000 + b")" * 10000
        c = self.selected()
        for line in (
            b"FETCH 1 " + deep,
            b"FETCH 1 (" + b"(" * 10000 + b"FLAGS" + b")" * 10001,
            b"FETCH 1 (BODY[HEADER.FIELDS " + deep + b"])",
            b"UID FETCH 1 " + deep,
            b"STORE 1 +FLAGS " + deep,
            b"STORE 1 (UNCHANGEDSINCE " + deep + b") +FLAGS x",
            b"ID " + deep,
            b'ID ("a" ' + deep + b")",
            b"STATUS INBOX " + deep,
            b"LIST " + deep + b' "" *',
            b'LIST "" ' + deep,
            b'LIST "" * RETURN ' + deep,
            b"SELECT INBOX " + deep,
            b"ENABLE " + deep,
            b"SEARCH CHARSET " + deep,
        ):
            [reply] = c.lines(b"t " + line)
            self.assertTrue(reply.startswith(b"t BAD "), (line[:40], reply))
            self.assertLess(len(reply), 200)
            self.assertEqual(c.lines(b"n NOOP"), [b"n OK NOOP completed"])
        c.lines(b"s SELECT INBOX")
        [reply] = c.lines(b"t APPEND INBOX " + deep + b" {5+}\r\nhello")
        self.assertTrue(reply.startswith(b"t BAD "), reply)
        self.assertEqual(c.lines(b"n NOOP"), [b"n OK NOOP completed"])
        self.assertEqual(len(self.folder().messages()), 3)


#: Mailbox names no command may accept, as sent (literals non-synchronizing),
#: and the start of the reply each gets.
BAD_NAMES: list[tuple[bytes, bytes]] = [
    (b"..", b"NO [CANNOT] Invalid mailbox name"),
    (b"a/../b", b"NO [CANNOT] Invalid mailbox name"),
    (b"INBOX/../x", b"NO [CANNOT] Invalid mailbox name"),
    (b"../x", b"NO [CANNOT] Invalid mailbox name"),
    (b"x/./y", b"NO [CANNOT] Invalid mailbox name"),
    (b".hidden", b"NO [CANNOT] Invalid mailbox name"),
    (b"~x", b"NO [CANNOT] Invalid mailbox name"),
    (b"/", b"NO [CANNOT] Invalid mailbox name"),
    (b"/x", b"NO [CANNOT] Invalid mailbox name"),
    (b"a//b", b"NO [CANNOT] Invalid mailbox name"),
    (b"x//", b"NO [CANNOT] Invalid mailbox name"),
    (b'""', b"NO [CANNOT] Invalid mailbox name"),
    (b"/".join([b"l"] * 17), b"NO [CANNOT] Invalid mailbox name"),
    (b"x" * 300, b"NO [CANNOT] Invalid mailbox name"),
    (b"{10000+}\r\n" + b"y" * 10000, b"NO [CANNOT] Invalid mailbox name"),
    (b'"a%b"', b"NO [CANNOT] Invalid mailbox name"),
    (b'"a*b"', b"NO [CANNOT] Invalid mailbox name"),
    (b"%", b"BAD Invalid "),
    (b"*", b"BAD Invalid "),
    (b"{3+}\r\na\x00b", b"BAD NUL in literal"),
    (b"{3+}\r\na\rb", b"BAD "),
    (b"{3+}\r\na\nb", b"BAD "),
    (b"{4+}\r\na\r\nb", b"BAD "),
    (b"&", b"BAD "),
    (b"&AGE", b"BAD "),
    (b"&AGEA-", b"BAD "),
    (b"&AGE-", b"BAD "),
    (b'"caf\xc3\xa9"', b"BAD 8-bit characters in quoted string"),
    (b"{5+}\r\ncaf\xc3\xa9", b"BAD "),
]

#: The commands that take a mailbox name, with where the name goes.
NAME_COMMANDS = [
    b"CREATE %s",
    b"DELETE %s",
    b"RENAME %s Other",
    b"RENAME Trash %s",
    b"RENAME INBOX %s",
    b"SELECT %s",
    b"EXAMINE %s",
    b"STATUS %s (MESSAGES)",
    b"APPEND %s {5+}\r\nhello",
    b"COPY 1 %s",
    b"MOVE 1 %s",
    b"UID COPY 1:* %s",
    b"SUBSCRIBE %s",
    b"UNSUBSCRIBE %s",
]


class MailboxNameTests(SecurityTestCase):
    """
    Mailbox names that could escape the account's directory, break a line,
    or are not valid modified UTF-7 (RFC 3501 5.1, 5.1.3).
    """

    def subscriptions(self) -> bytes:
        return (self.accountPath() / "subscriptions").read_bytes()

    def test_badNames(self) -> None:
        """
        Every command that takes a mailbox name refuses each bad name, with
        C{NO [CANNOT]} when it is well formed but not allowed, C{BAD} when
        it is not well formed; nothing is made, moved or subscribed, and
        nothing appears outside the account's directory.
        """
        c = self.selected()
        subscribed = self.subscriptions()
        for name, reply in BAD_NAMES:
            for command in NAME_COMMANDS:
                answer = c.command(b"t " + command % name)
                self.assertTrue(
                    tagged(answer, b"t").startswith(b"t " + reply),
                    (command, name[:20], answer),
                )
                if command.startswith((b"SELECT", b"EXAMINE")):
                    # A failed SELECT leaves no mailbox selected.
                    c.command(b"s SELECT INBOX")
        self.assertEqual(self.folderDirectories(), DEFAULT_FOLDERS)
        self.assertEqual(len(self.folder().messages()), 3)
        self.assertEqual(len(self.folder("Trash").messages()), 0)
        self.assertEqual(self.subscriptions(), subscribed)
        self.assertNothingOutsideAccounts()

    def test_appendToBadNameNeverContinued(self) -> None:
        """
        APPEND to a bad name with a synchronizing literal is refused before
        the client sends the message: no C{+}.
        """
        c = self.login()
        for name, reply in BAD_NAMES:
            if name.startswith(b"{") or name in (b"%", b"*"):
                # A literal is sent first; a bare wildcard is no mailbox
                # at all, so the line is no APPEND the server can see.
                continue
            self.assertEqual(
                c.lines(b"t APPEND " + name + b" {100000}")[0][: len(reply) + 2],
                b"t " + reply,
                name[:20],
            )
        self.assertEqual(len(self.folder().messages()), 3)

    def test_namesThatAreFine(self) -> None:
        """
        Names that look odd but are valid are taken as what they say:
        C{&-} is C{&}, a trailing delimiter names the folder without it,
        and C{new}, C{cur} and C{tmp} are folders like any other, beside
        INBOX's own directories, not inside them.
        """
        c = self.login()
        for name in (
            b"&-",
            b"x/",
            b"new",
            b"cur",
            b"tmp",
            b"INBOX/new",
            b"&AOk-t&AOk-",
        ):
            self.assertEqual(c.lines(b"t CREATE " + name), [b"t OK CREATE completed"])
        self.assertEqual(
            self.folderDirectories() - DEFAULT_FOLDERS,
            {".&-", ".x", ".new", ".cur", ".tmp", ".INBOX.new", ".&AOk-t&AOk-"},
        )
        self.assertEqual(
            c.lines(b'u LIST "" "&AOk-t&AOk-"'),
            [b'* LIST (\\HasNoChildren) "/" &AOk-t&AOk-', b"u OK LIST completed"],
        )
        # INBOX's own directories hold only what they held.
        self.assertEqual(os.listdir(self.accountPath() / "tmp"), [])
        self.assertEqual(len(os.listdir(self.accountPath() / "new")), 3)
        self.assertNothingOutsideAccounts()


class AuthenticateTests(SecurityTestCase):
    """
    AUTHENTICATE (RFC 3501 6.2.2) with oversized and cancelled exchanges.
    """

    def assertNotLoggedIn(self, c: Connection) -> None:
        self.assertEqual(
            c.lines(b"n CREATE Mine"), [b"n BAD CREATE needs a login first"]
        )

    def test_hugeResponseLine(self) -> None:
        """
        A SASL response line of 1 MiB of base64 passes the line limit:
        C{BYE [TOOBIG]} and close, as the answer to a challenge or as an
        initial response.
        """
        response = base64.b64encode(b"\0alice\0" + b"x" * (1024 * 1024)) + b"\r\n"
        for first in (b"t AUTHENTICATE PLAIN\r\n", b"t AUTHENTICATE PLAIN "):
            c = self.connect()
            c.send(first)
            self.assertEqual(
                c.send(response), b"* BYE [TOOBIG] Command line too long\r\n"
            )
            self.assertTrue(c.closed)
            self.assertEqual(c.protocol.state, State.NOT_AUTHENTICATED)

    def test_cancel(self) -> None:
        """
        C{*} in answer to any challenge cancels: C{BAD}, no login, and the
        session goes on.
        """
        c = self.connect()
        user = base64.b64encode(ALICE.encode())
        for steps in (
            [b"t AUTHENTICATE PLAIN"],
            [b"t AUTHENTICATE LOGIN"],
            [b"t AUTHENTICATE LOGIN", user],
        ):
            for step in steps:
                self.assertTrue(c.command(step).startswith(b"+ "), step)
            self.assertEqual(c.lines(b"*"), [b"t BAD Authentication cancelled"])
            self.assertNotLoggedIn(c)
        self.assertEqual(c.lines(b"n NOOP"), [b"n OK NOOP completed"])

    def test_responseIsNeverACommandOrLiteral(self) -> None:
        """
        The line after a challenge is a SASL response, whatever it looks
        like: a literal's announcement gets no C{+}, and a command in its
        place is not run.
        """
        c = self.connect()
        for line in (b"{5}", b"{5+}", b"a LOGIN alice@example.com x", b"a LOGOUT"):
            c.command(b"t AUTHENTICATE PLAIN")
            [reply] = c.lines(line)
            self.assertTrue(reply.startswith(b"t BAD Cannot decode response"), reply)
        self.assertFalse(c.closed)
        self.assertNotLoggedIn(c)

    def test_silentDuringExchange(self) -> None:
        """
        A client that never answers a challenge is closed by the idle
        timeout.
        """
        c = self.connect()
        c.command(b"t AUTHENTICATE LOGIN")
        self.reactor.advance(30 * 60)
        self.assertEqual(c.read(), b"* BYE Disconnected for inactivity\r\n")
        self.assertTrue(c.closed)


class AbuseTests(SecurityTestCase):
    """
    The error budget.
    """

    def test_everyKindOfErrorCounts(self) -> None:
        """
        Each kind of C{BAD} counts toward C{maxErrors}: garbage, a missing
        tag, an unknown command, a malformed one, one in the wrong state, a
        refused literal, a cancelled AUTHENTICATE, IDLE ended by other
        than DONE; at the limit the client is told and closed.
        """
        errors = [
            b"\x00\xff\xfe garbage",
            b"",
            b"t FROB",
            b"t LOGIN",
            b"t SELECT INBOX",
            b"t LOGIN {99999}",
        ]
        self.factory = self.makeFactory(
            maxErrors=len(errors) + 2, maxConnectionsPerPeer=1000
        )
        c = self.connect()
        for line in errors:
            [reply] = c.lines(line)
            self.assertIn(b" BAD ", reply)
        c.command(b"t AUTHENTICATE PLAIN")
        self.assertEqual(c.lines(b"*"), [b"t BAD Authentication cancelled"])
        self.assertFalse(c.closed)
        c.command(b'l LOGIN alice@example.com "correct horse"')
        c.command(b"i IDLE")
        self.assertEqual(
            c.lines(b"NOT DONE"),
            [b"i BAD Expected DONE", b"* BYE Too many invalid commands"],
        )
        self.assertTrue(c.closed)

    def test_lineTooLongSaidOnce(self) -> None:
        """
        A line past the limit is answered with one BYE, however much more
        the client sends.
        """
        c = self.connect()
        answer = b"".join(c.send(b"x" * 1000) for _ in range(200))
        self.assertEqual(answer, b"* BYE [TOOBIG] Command line too long\r\n")

    def test_noRepliesDoNotCount(self) -> None:
        """
        C{NO} replies are no protocol errors: a client meeting forty of
        them (missing mailboxes, expunged messages) is not closed.
        """
        self.factory = self.makeFactory(maxErrors=3, maxConnectionsPerPeer=1000)
        c = self.selected()
        for i in range(20):
            reply = tagged(c.command(b"t SELECT Missing%d" % (i,)), b"t")
            self.assertTrue(reply.startswith(b"t NO [NONEXISTENT]"), reply)
            c.lines(b"s SELECT INBOX")
            [reply] = c.lines(b"t STATUS Missing (MESSAGES)")
            self.assertTrue(reply.startswith(b"t NO"), reply)
        self.assertFalse(c.closed)


class TimeoutTests(SecurityTestCase):
    """
    The idle timer (RFC 3501 5.4: at least 30 minutes), and a client that
    sends one octet at a time.
    """

    def test_idleBeforeLogin(self) -> None:
        """
        A client that connects and says nothing, or half a command, is
        told and closed after 30 minutes.
        """
        for first in (b"", b"t LOG"):
            c = self.connect()
            c.send(first)
            self.reactor.advance(30 * 60 - 1)
            self.assertFalse(c.closed)
            self.reactor.advance(1)
            self.assertEqual(c.read(), b"* BYE Disconnected for inactivity\r\n")
            self.assertTrue(c.closed)

    def test_idleCommandDoesNotKeepSilentClient(self) -> None:
        """
        In IDLE, what the server sends does not restart the clock: a client
        that says nothing for 30 minutes is closed even while messages
        arrive; one that sends DONE and IDLE again in time stays
        (RFC 2177 3).
        """
        c = self.selected()
        self.assertEqual(c.command(b"i IDLE"), b"+ idling\r\n")
        self.reactor.advance(20 * 60)
        self.deliver(b"Subject: new\r\n\r\nnew\r\n")
        self.assertEqual(c.read(), b"* 4 EXISTS\r\n* 4 RECENT\r\n")
        self.reactor.advance(10 * 60)
        self.assertEqual(c.read(), b"* BYE Disconnected for inactivity\r\n")
        self.assertTrue(c.closed)
        c = self.selected()
        for _ in range(5):
            self.assertEqual(c.command(b"i IDLE"), b"+ idling\r\n")
            self.reactor.advance(29 * 60)
            self.assertEqual(c.command(b"DONE"), b"i OK IDLE terminated\r\n")
        self.assertFalse(c.closed)

    def test_clockStopsWhileServerWorks(self) -> None:
        """
        While a command waits on the store the client is not idle: the
        timer starts once the answer is sent.
        """
        c = self.login()
        self.pool.now = False
        self.assertEqual(c.command(b"t CREATE Slow"), b"")
        self.reactor.advance(60 * 60)
        self.assertFalse(c.closed)
        self.pool.runAll()
        self.assertEqual(c.read(), b"t OK CREATE completed\r\n")
        self.pool.now = True
        self.reactor.advance(30 * 60)
        self.assertTrue(c.closed)

    def test_octetAMinute(self) -> None:
        """
        Any octet is a sign of life: a line sent one octet a minute is
        never 30 minutes of silence.
        """
        c = self.connect()
        line = b"t ID (" + b'"k" "v" ' * 4 + b'"k" "v")\r\n'
        answer = b""
        for octet in line:
            self.reactor.advance(60)
            answer += c.send(bytes([octet]))
        self.assertIn(b"t OK ID completed", answer)
        self.assertFalse(c.closed)

    def test_oneOctetAtATime(self) -> None:
        """
        A session sent one octet at a time, ten seconds apart, is served as
        if sent at once: logins, literals, pipelining and all.
        """
        session = (
            b"a LOGIN {17}\r\nalice@example.com {13+}\r\ncorrect horse\r\n"
            b"b SELECT INBOX\r\n"
            b"c APPEND INBOX (\\Seen) {23}\r\nSubject: slow\r\n\r\nslow\r\n\r\n"
            b"d SEARCH SUBJECT slow\r\ne UID STORE 1:* +FLAGS (\\Flagged)\r\n"
            b"f LOGOUT\r\n"
        )
        c = self.connect()
        answer = b""
        for octet in session:
            self.reactor.advance(10)
            answer += c.send(bytes([octet]))
        tags = [
            line.split(b" ")[:2]
            for line in answer.split(b"\r\n")
            if line[:1] in b"abcdef" and line[:2] != b""
        ]
        self.assertEqual(
            tags,
            [[t, b"OK"] for t in (b"a", b"b", b"c", b"d", b"e", b"f")],
        )
        self.assertEqual(answer.count(b"+ Ready for literal data\r\n"), 2)
        self.assertIn(b"* SEARCH 4\r\n", answer)
        self.assertTrue(c.closed)
        self.assertEqual(len(self.folder().messages()), 4)


class _ObservedFactory(IMAP4ServerFactory):
    """
    An IMAP4 server factory that says when its connections come and go.
    """

    _waiters: list[tuple[Callable[[], bool], Deferred[None]]] = []

    def admit(self, protocol: LineServerProtocol) -> Any:
        refusal = super().admit(protocol)
        self._changed()
        return refusal

    def connectionClosed(self, protocol: LineServerProtocol) -> None:
        super().connectionClosed(protocol)
        self._changed()

    def _changed(self) -> None:
        waiting, self._waiters = self._waiters, []
        for condition, waiter in waiting:
            if condition():
                # Later, so the test never runs inside the server's code.
                reactor.callLater(0, waiter.callback, None)
            else:
                self._waiters.append((condition, waiter))

    def _when(self, condition: Callable[[], bool]) -> Deferred[None]:
        waiter: Deferred[None] = Deferred()
        self._waiters = [*self._waiters, (condition, waiter)]
        self._changed()
        return waiter.addTimeout(WAIT, reactor)

    def whenOpen(self, count: int) -> Deferred[None]:
        """
        @return: fires once at least C{count} connections are open.
        """
        return self._when(lambda: self.openConnections >= count)

    def whenClosed(self) -> Deferred[None]:
        """
        @return: fires once no connection is open.
        """
        return self._when(lambda: self.openConnections == 0)


class _Client:
    """
    A blocking client over a real socket, run in a thread, that sends
    exactly the bytes it is given.
    """

    def __init__(self, port: int, implicitTLS: bool = False) -> None:
        sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
        self.sock: socket.socket = sock
        if implicitTLS:
            self.startTLS()
        self.buffer = b""

    def startTLS(self) -> None:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        self.sock = context.wrap_socket(self.sock)
        self.buffer = b""

    def line(self) -> bytes:
        """
        @return: the next line without its CRLF, or C{b"(closed)"}.
        """
        while b"\r\n" not in self.buffer:
            try:
                data = self.sock.recv(65536)
            except (ConnectionError, ssl.SSLError):
                data = b""
            if not data:
                return b"(closed)"
            self.buffer += data
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line

    def command(self, line: bytes) -> list[bytes]:
        """
        Send a command; return the lines up to its tagged reply.
        """
        self.sock.sendall(line + b"\r\n")
        tag = line.split(b" ", 1)[0] + b" "
        lines = [self.line()]
        while not lines[-1].startswith((tag, b"(closed)")):
            lines.append(self.line())
        return lines

    def close(self) -> None:
        self.sock.close()


class TLSTests(TestCase):
    """
    STARTTLS and implicit TLS over real loopback sockets (RFC 3501 6.2.1,
    RFC 8314); the server's timers on a L{Clock}.
    """

    timeout = 60

    def setUp(self) -> None:
        # The store and the password checks work at once, on the reactor's
        # thread; only the sockets are real.
        self.root = Path(self.mktemp())
        usersFile = Path(self.mktemp())
        usersFile.write_text(USERS)
        pool = _ThreadPool()
        store = MaildirStore(self.root, reactor=_Reactor(), threadPool=pool)
        hashing = PasswordHashing(_Reactor(), hasher=HASHER, threadPool=pool)
        checker = UsersChecker(UsersDatabase(usersFile), hashing)
        backend = StoreBackend(checker, store)
        self.clock = Clock()
        self.logins: list[str] = []
        logins = self.logins

        @implementer(IIMAPBackend)
        class Recording:
            def newSession(self, info: object) -> object:
                session = backend.newSession(info)
                login = session.login

                def recorded(credentials: IMAPCredentials) -> object:
                    logins.append(credentials.login)
                    return login(credentials)

                session.login = recorded
                return session

        key, cert = selfSignedCertificate("127.0.0.1")
        self.context = serverContextFactory(key, cert)
        self.backend = Recording()

    def listen(self, implicitTLS: bool, **options: Any) -> Deferred[None]:
        self.implicitTLS = implicitTLS
        self.factory = _ObservedFactory(
            self.backend,
            hostname="imap.example.com",
            tls=None if implicitTLS else self.context,
            reactor=self.clock,
            **options,
        )
        endpoint: Any
        if implicitTLS:
            endpoint = SSL4ServerEndpoint(
                reactor, 0, self.context, interface="127.0.0.1"
            )
        else:
            endpoint = TCP4ServerEndpoint(reactor, 0, interface="127.0.0.1")

        def listening(port: IListeningPort) -> None:
            self.port = port
            self.addCleanup(port.stopListening)
            self.addCleanup(self.factory.abortAll)

        return endpoint.listen(self.factory).addCallback(listening)

    def client(self, implicitTLS: bool | None = None) -> _Client:
        if implicitTLS is None:
            implicitTLS = self.implicitTLS
        client = _Client(self.port.getHost().port, implicitTLS)  # type: ignore[attr-defined]
        self.addCleanup(client.close)
        return client

    def inThread(self, f: Callable[[], _T]) -> Deferred[_T]:
        return deferToThread(f).addTimeout(WAIT, reactor)

    def serves(self) -> Deferred[list[bytes]]:
        """
        A new client (after STARTTLS, unless on implicit TLS) logs in.
        """

        def session() -> list[bytes]:
            client = self.client()
            greeting = client.line()
            if not self.implicitTLS:
                client.command(b"s STARTTLS")
                client.startTLS()
            login = client.command(b'l LOGIN alice@example.com "correct horse"')
            return [greeting, login[-1], client.command(b"o LOGOUT")[-1]]

        return self.inThread(session)

    @inlineCallbacks
    def test_startTLSInjection(self) -> Any:
        """
        A command sent in the same packet as STARTTLS is discarded: it is
        never answered nor run, inside TLS or out, and the session after
        the handshake starts over, not logged in (RFC 3501 6.2.1).
        """
        yield self.listen(implicitTLS=False)

        def scenario() -> list[list[bytes]]:
            client = self.client()
            greeting = client.line()
            client.sock.sendall(
                b"a STARTTLS\r\n"
                b'b LOGIN alice@example.com "correct horse"\r\n'
                b"c CREATE Injected\r\n"
            )
            started = client.line()
            client.startTLS()
            return [
                [greeting, started],
                client.command(b"d CAPABILITY"),
                client.command(b"e CREATE Mine"),
                client.command(b'f LOGIN alice@example.com "correct horse"'),
                client.command(b"g LOGOUT"),
            ]

        greeting, capability, create, login, logout = yield self.inThread(scenario)
        self.assertIn(b"STARTTLS LOGINDISABLED", greeting[0])
        self.assertEqual(greeting[1], b"a OK Begin TLS negotiation now")
        self.assertEqual(len(capability), 2, capability)
        self.assertIn(b" AUTH=PLAIN", capability[0])
        self.assertNotIn(b"STARTTLS", capability[0])
        self.assertEqual(capability[1], b"d OK CAPABILITY completed")
        self.assertEqual(create, [b"e BAD CREATE needs a login first"])
        self.assertTrue(login[-1].startswith(b"f OK [CAPABILITY "), login)
        self.assertEqual(logout, [b"* BYE Logging out", b"g OK Logout completed"])
        self.assertEqual(self.logins, [ALICE])
        account = self.root / ALICE
        self.assertFalse((account / ".Injected").exists())
        self.assertFalse((account / ".Mine").exists())

    @inlineCallbacks
    def test_handshakeNeverStarted(self) -> Any:
        """
        On an implicit TLS port, a client that connects and sends nothing,
        or half a ClientHello, is dropped after the handshake timeout.
        """
        yield self.listen(implicitTLS=True, tlsHandshakeTimeout=5)
        hello = ssl.create_default_context().wrap_bio(
            ssl.MemoryBIO(), outgoing := ssl.MemoryBIO()
        )
        with self.assertRaises(ssl.SSLWantReadError):
            hello.do_handshake()
        half = outgoing.read()[:40]
        silent = [self.client(implicitTLS=False) for _ in range(2)]
        silent[1].sock.sendall(half)
        yield self.factory.whenOpen(2)
        self.clock.advance(4)
        self.assertEqual(self.factory.openConnections, 2)
        self.clock.advance(1)
        yield self.factory.whenClosed()
        ends = yield self.inThread(lambda: [c.line() for c in silent])
        self.assertEqual(ends, [b"(closed)", b"(closed)"])
        out = yield self.serves()
        self.assertTrue(out[0].startswith(b"* OK [CAPABILITY IMAP4rev1 "), out)
        self.assertTrue(out[1].startswith(b"l OK "), out)

    @inlineCallbacks
    def test_handshakeNeverStartedAfterSTARTTLS(self) -> Any:
        """
        A client that asks for STARTTLS and then sends no ClientHello is
        dropped after the handshake timeout, and is not told the idle
        timeout's BYE in the clear.
        """
        yield self.listen(implicitTLS=False, tlsHandshakeTimeout=5)
        client = self.client()

        def startTLS() -> list[bytes]:
            return [client.line(), *client.command(b"a STARTTLS")]

        out = yield self.inThread(startTLS)
        self.assertEqual(out[1], b"a OK Begin TLS negotiation now")
        self.clock.advance(4)
        self.assertEqual(self.factory.openConnections, 1)
        self.clock.advance(1)
        yield self.factory.whenClosed()
        end = yield self.inThread(client.line)
        self.assertEqual(end, b"(closed)")
        out = yield self.serves()
        self.assertTrue(out[1].startswith(b"l OK "), out)


#: Commands for the fuzzer: C{%s} is where a fresh tag goes.
_FUZZ_COMMANDS = [
    b'%s LOGIN alice@example.com "correct horse"\r\n',
    b"%s LOGIN alice@example.com wrong\r\n",
    b"%s LOGIN {17}\r\nalice@example.com {13+}\r\ncorrect horse\r\n",
    b"%s AUTHENTICATE PLAIN " + plain(ALICE, "correct horse") + b"\r\n",
    b"%s AUTHENTICATE PLAIN\r\n",
    b"%s SELECT INBOX\r\n",
    b"%s EXAMINE INBOX\r\n",
    b"%s CREATE Box\r\n",
    b"%s DELETE Box\r\n",
    b"%s RENAME Box Other\r\n",
    b"%s SUBSCRIBE Box\r\n",
    b'%s LIST "" *\r\n',
    b"%s STATUS INBOX (MESSAGES UIDNEXT UNSEEN)\r\n",
    b"%s APPEND INBOX {20}\r\nSubject: x\r\n\r\nbody\r\n\r\n",
    b"%s APPEND Box (\\Seen) {20+}\r\nSubject: y\r\n\r\nbody\r\n\r\n",
    b"%s NAMESPACE\r\n",
    b"%s ID NIL\r\n",
    b"%s ENABLE CONDSTORE\r\n",
    b"%s IDLE\r\n",
    b"%s CHECK\r\n",
    b"%s CLOSE\r\n",
    b"%s UNSELECT\r\n",
    b"%s EXPUNGE\r\n",
    b"%s SEARCH OR SEEN NOT (DELETED SUBJECT two)\r\n",
    b"%s UID SEARCH 2:*\r\n",
    b"%s STORE 1:* +FLAGS (\\Deleted)\r\n",
    b"%s UID STORE 1:* -FLAGS.SILENT (\\Deleted)\r\n",
    b"%s COPY 1:* Box\r\n",
    b"%s UID MOVE 2 Box\r\n",
    b"%s FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)] RFC822.SIZE)\r\n",
    b"%s UID FETCH 2:* (BODY[] BODYSTRUCTURE ENVELOPE)\r\n",
    b"%s FETCH 1 BODY[1]<0.3>\r\n",
    b"%s UID EXPUNGE 1:*\r\n",
    b"%s NOOP\r\n",
    b"%s CAPABILITY\r\n",
    b"%s STARTTLS\r\n",
    b"%s LOGOUT\r\n",
]

#: Lines that are not commands: continuations and noise.
_FUZZ_LINES = [b"DONE\r\n", b"*\r\n", plain(ALICE, "wrong") + b"\r\n", b"\r\n", b"\n"]

#: Sizes a fuzzed literal announces.
_FUZZ_SIZES = [0, 1, 7, 100, 2000, 5000, 2**32 - 1, 2**32, 10**30]


@st.composite
def _fuzzStream(draw: st.DrawFn) -> tuple[bytes, list[bytes]]:
    """
    A stream of commands, continuations, literals of random announced
    sizes and random octets; with the tags of its commands.
    """
    stream: list[bytes] = []
    tags: list[bytes] = []
    # Most streams start logged in, many with INBOX selected.
    start = draw(st.sampled_from([0, 1, 2, 2]))
    if start:
        stream.append(_FUZZ_COMMANDS[0] % (b"p1",))
    if start == 2:
        stream.append(b"p2 SELECT INBOX\r\n")
    for _ in range(draw(st.integers(0, 25))):
        kind = draw(st.integers(0, 7))
        if kind <= 4:
            tag = b"t%d" % (len(tags),)
            tags.append(tag)
            stream.append(draw(st.sampled_from(_FUZZ_COMMANDS)) % (tag,))
        elif kind == 5:
            stream.append(draw(st.sampled_from(_FUZZ_LINES)))
        elif kind == 6:
            tag = b"t%d" % (len(tags),)
            tags.append(tag)
            size = draw(st.sampled_from(_FUZZ_SIZES))
            plus = draw(st.sampled_from([b"", b"+"]))
            stream.append(b"%s LOGIN {%d%s}\r\n" % (tag, size, plus))
            stream.append(draw(st.binary(max_size=min(size, 120))))
        else:
            # No "t" in the noise, so that it never makes one of the tags.
            stream.append(draw(st.binary(max_size=40)).replace(b"t", b"x"))
    return b"".join(stream), tags


_REPLY = re.compile(rb"(\*|\+|[^ ]+ (OK|NO|BAD)) ")
_LITERAL = re.compile(rb"\{([0-9]+)\}\Z")


def _replies(out: bytes) -> list[bytes]:
    """
    The server's output as replies: each the text of its lines, with the
    literals in it left out.
    """
    replies = []
    pos = 0
    while pos < len(out):
        reply = b""
        while True:
            end = out.find(b"\r\n", pos)
            end = len(out) if end < 0 else end
            line = out[pos:end]
            reply += line
            pos = end + 2
            literal = _LITERAL.search(line)
            if literal is None or pos > len(out):
                break
            pos += int(literal.group(1))
        replies.append(reply)
    return replies


class FuzzTests(StoreTestCase):
    """
    A fuzz target over the whole protocol, with a store on disk.
    """

    @settings(
        max_examples=150,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(
        stream=_fuzzStream(),
        cuts=st.lists(st.integers(1, 200), max_size=30),
        maxErrors=st.sampled_from([3, 1000, 1000]),
    )
    def test_anyInput(
        self, stream: tuple[bytes, list[bytes]], cuts: list[int], maxErrors: int
    ) -> None:
        """
        Whatever arrives, in whatever pieces: nothing is raised out of
        C{dataReceived} or logged as an error, every reply line is a
        status, an untagged response or a continuation, each command gets
        at most one tagged reply, and at the end the connection answers a
        NOOP or was closed with a C{BYE}.
        """
        self.setUp()
        self.deliver(*MESSAGES)
        factory = self.makeFactory(
            maxErrors=maxErrors,
            maxLineLength=8192,
            maxCommandSize=8192,
            maxLoginCommandSize=2048,
            maxAppendSize=2048,
        )
        c = Connection(factory)
        data, tags = stream
        start = 0
        for cut in cuts:
            c.protocol.dataReceived(data[start : start + cut])
            start += cut
        c.protocol.dataReceived(data[start:])
        # End any literal (none accepted is over 5000 octets), SASL
        # exchange or IDLE, then ask.
        c.protocol.dataReceived(b"x" * 5000 + b"\r\nzz NOOP\r\n")
        out = c.read()
        c.lose()
        self.assertTrue(out.endswith(b"\r\n"), out[-80:])
        lines = _replies(out)
        for line in lines:
            self.assertRegex(line, _REPLY)
        for tag in tags:
            self.assertLessEqual(
                sum(line.startswith(tag + b" ") for line in lines), 1, tag
            )
        if c.closed:
            self.assertTrue(any(line.startswith(b"* BYE ") for line in lines))
        else:
            self.assertEqual(tagged(out, b"zz"), b"zz OK NOOP completed")
        self.assertEqual(self.flushLoggedErrors(), [])
