"""
What the IMAP4 server's tests share: the real server over a
L{StringTransport}, serving a real L{MaildirStore} in a temporary
directory to the users of a users file, the disk work and password checks
run at once on the calling thread, time on a L{Clock}.
"""

from __future__ import annotations

import re
from pathlib import Path

import argon2
from twisted.internet.address import IPv4Address
from twisted.trial.unittest import SynchronousTestCase

from gomail_twisted.imap4.backend import StoreBackend
from gomail_twisted.imap4.factory import IMAP4ServerFactory
from gomail_twisted.imap4.server import IMAP4Server
from gomail_twisted.maildir import IAccount, IFolder, MaildirStore
from gomail_twisted.users import PasswordHashing, UsersChecker, UsersDatabase
from tests._memoryclient import MemoryClient
from tests.test_smtp_maildir import _Reactor, _ThreadPool

HASHER = argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
ALICE = "alice@example.com"
ALICE_PASSWORD = "correct horse"
BOB = "bob@example.com"
BOB_PASSWORD = "bob's"

USERS = f"""\
domain example.com
user {ALICE} {HASHER.hash(ALICE_PASSWORD)}
user {BOB} {HASHER.hash(BOB_PASSWORD)}
"""

LOCAL = IPv4Address("TCP", "127.0.0.1", 143)
PEER = IPv4Address("TCP", "192.0.2.7", 40000)

_TAGGED = re.compile(rb"^(\S+) (OK|NO|BAD)\b.*\r\n", re.MULTILINE)


class Connection(MemoryClient):
    """
    One client of the real server, from L{PEER} to L{LOCAL}.

    @ivar greeting: what the server said on connecting.
    """

    protocol: IMAP4Server

    def __init__(self, factory: IMAP4ServerFactory) -> None:
        super().__init__(factory, LOCAL.port, PEER.host)
        assert isinstance(self.protocol, IMAP4Server)
        self.greeting = self.read()

    def command(self, line: bytes) -> bytes:
        """
        Send one command line (CRLF added); return what the server wrote.
        """
        return self.send(line + b"\r\n")

    def lines(self, line: bytes) -> list[bytes]:
        """
        Send one command line; return the server's answer as lines, without
        their CRLF.
        """
        return self.command(line).split(b"\r\n")[:-1]

    @property
    def closed(self) -> bool:
        """
        Whether the server closed the connection.
        """
        return bool(self.transport.disconnecting)

    def lose(self) -> None:
        """
        Drop the connection, as a client that goes away.
        """
        if not self.protocol.closed or self.transport.connected:
            self.protocol.connectionLost()


def tagged(answer: bytes, tag: bytes = b"a") -> bytes:
    """
    The tagged line of an answer.

    @param answer: what the server wrote.
    @param tag: the command's tag.
    @return: the line, without CRLF.
    @raise AssertionError: when there is none.
    """
    for line in answer.split(b"\r\n"):
        if line.startswith(tag + b" "):
            return line
    raise AssertionError(f"no tagged response for {tag!r} in {answer!r}")


class StoreTestCase(SynchronousTestCase):
    """
    A store and users file with Alice and Bob, and IMAP connections to it.
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
        self.factory = self.makeFactory()

    def makeFactory(self, **kwargs: object) -> IMAP4ServerFactory:
        """
        A factory over the store; plain-text logins allowed unless told.
        """
        kwargs.setdefault("allowPlaintextAuth", True)
        return IMAP4ServerFactory(
            self.backend,
            hostname="imap.example.com",
            reactor=self.reactor,
            **kwargs,  # type: ignore[arg-type]
        )

    def connect(self, factory: IMAP4ServerFactory | None = None) -> Connection:
        connection = Connection(factory or self.factory)
        self.addCleanup(connection.lose)
        return connection

    def login(self, user: str = ALICE, password: str = ALICE_PASSWORD) -> Connection:
        connection = self.connect()
        answer = connection.command(
            b'a LOGIN "' + user.encode() + b'" "' + password.encode() + b'"'
        )
        assert tagged(answer).startswith(b"a OK"), answer
        return connection

    def selected(self, mailbox: bytes = b"INBOX", user: str = ALICE) -> Connection:
        connection = self.login(user)
        answer = connection.command(b"s SELECT " + mailbox)
        assert tagged(answer, b"s").startswith(b"s OK"), answer
        return connection

    def deliver(self, *messages: bytes, user: str = ALICE) -> None:
        for message in messages:
            self.successResultOf(self.store.deliver([user], message))

    def account(self, user: str = ALICE) -> IAccount:
        account: IAccount = self.successResultOf(
            self.store.openAccount(user, create=True)
        )
        return account

    def folder(self, name: str = "INBOX", user: str = ALICE) -> IFolder:
        folder: IFolder = self.successResultOf(self.account(user).openFolder(name))
        self.addCleanup(folder.close)
        return folder
