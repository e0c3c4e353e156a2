# -*- test-case-name: tests.test_imap4_clients -*-
"""
Tests of the IMAP4 server with a real client: stdlib imaplib, in a thread,
over loopback sockets (plain text, STARTTLS and implicit TLS) to
L{IMAP4ServerFactory} and L{StoreBackend} over a real L{MaildirStore} and
users file, listening on the real reactor.

Each test checks what a user of imaplib sees (the parsed C{(typ, data)}
replies and the untagged responses imaplib keeps) and what lands on disk
in the Maildir.  Every socket has a timeout, so no test waits for long.
"""

from __future__ import annotations

import imaplib
import re
import smtplib
import ssl
import time
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import argon2
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IListeningPort
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import TestCase

from gomail_twisted._version import __version__
from gomail_twisted.imap4 import IMAP4ServerFactory, StoreBackend
from gomail_twisted.maildir import MaildirStore
from gomail_twisted.smtp import MaildirBackend, SMTPServerFactory
from gomail_twisted.tls import selfSignedCertificate, serverContextFactory
from gomail_twisted.users import PasswordHashing, UsersChecker, UsersDatabase

T = TypeVar("T")

HOST = "127.0.0.1"
#: Seconds any socket of a client waits before giving up.
TIMEOUT = 10.0

HASHER = argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
ALICE = "alice@example.com"
BOB = "bob@example.com"
PASSWORD = "correct horse"

#: A message with a subject in an encoded word and a UTF-8 body.
GREETINGS = (
    b"From: Sender <sender@example.net>\r\n"
    b"To: Alice <alice@example.com>\r\n"
    b"Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?=\r\n"
    b"Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n"
    b"Message-ID: <greetings@example.net>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"Content-Transfer-Encoding: 8bit\r\n"
    b"\r\n"
    b"Sch\xc3\xb6ne Gr\xc3\xbc\xc3\x9fe vom Rhein.\r\n"
)

#: A message of two parts: text, and an attachment.
REPORT = (
    b"From: Bob <bob@example.com>\r\n"
    b"To: Alice <alice@example.com>\r\n"
    b"Cc: Carol <carol@example.org>\r\n"
    b"Subject: Quarterly report\r\n"
    b"Date: Wed, 15 Nov 2023 09:00:00 +0100\r\n"
    b"Message-ID: <report@example.com>\r\n"
    b"MIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="b1"\r\n'
    b"\r\n"
    b"--b1\r\n"
    b"Content-Type: text/plain; charset=us-ascii\r\n"
    b"\r\n"
    b"The numbers are attached.\r\n"
    b"--b1\r\n"
    b'Content-Type: text/csv; name="q3.csv"\r\n'
    b'Content-Disposition: attachment; filename="q3.csv"\r\n'
    b"Content-Transfer-Encoding: base64\r\n"
    b"\r\n"
    b"cXVhcnRlcixzYWxlcwozLDQy\r\n"
    b"--b1--\r\n"
)

#: A short plain message.
LUNCH = (
    b"From: Carol <carol@example.org>\r\n"
    b"To: Alice <alice@example.com>\r\n"
    b"Subject: Lunch\r\n"
    b"Date: Thu, 16 Nov 2023 12:00:00 +0000\r\n"
    b"\r\n"
    b"Noon at the usual place?\r\n"
)

#: The internal dates the tests give the three messages: noon UTC of 14,
#: 16 and 18 November 2023, the same days in any time zone.
DATES = (1699963200.0, 1700136000.0, 1700308800.0)


def usersText() -> str:
    """
    A users file with Alice and Bob, hashed with cheap parameters.
    """
    return (
        "domain example.com\n"
        f"user {ALICE} {HASHER.hash(PASSWORD)}\n"
        f"user {BOB} {HASHER.hash(PASSWORD)}\n"
    )


@cache
def certificate() -> tuple[bytes, bytes]:
    """
    A key and self-signed certificate for 127.0.0.1 (an IP SAN), made once
    per test run and never written to the repository.
    """
    return selfSignedCertificate(HOST)


def clientContext() -> ssl.SSLContext:
    """
    A client context that trusts only the test certificate and checks that
    it names the host connected to.
    """
    context = ssl.create_default_context(cadata=certificate()[1].decode("ascii"))
    assert context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED
    return context


def hangUp(client: imaplib.IMAP4) -> None:
    """
    Close a client's connection unless it logged out.
    """
    if client.state != "LOGOUT":
        try:
            client.shutdown()
        except OSError:
            pass


def refusal(command: Callable[[], object]) -> str:
    """
    Run an imaplib command that must fail (imaplib raises for C{BAD}, and
    for C{NO} where it checks the reply).

    @return: the error's text.
    """
    try:
        command()
    except imaplib.IMAP4.error as e:
        text = e.args[0]
        return text.decode() if isinstance(text, bytes) else str(text)
    raise AssertionError("the server accepted the command")


def folderPath(root: Path, name: str, user: str = ALICE) -> Path:
    """
    The Maildir++ directory of an ASCII folder name.
    """
    account = root / user
    if name == "INBOX":
        return account
    return account / ("." + name.replace("/", "."))


def messageFiles(root: Path, name: str = "INBOX", user: str = ALICE) -> list[Path]:
    """
    The message files of a folder on disk, new and current, by name.
    """
    directory = folderPath(root, name, user)
    found: list[Path] = []
    for sub in ("new", "cur"):
        if (directory / sub).is_dir():
            found += (directory / sub).iterdir()
    return sorted(found)


def diskFlags(path: Path) -> str:
    """
    The flag letters of a message file's name (after C{:2,}).
    """
    _, sep, letters = path.name.partition(":2,")
    return letters if sep else ""


class IMAPServerTestCase(TestCase):
    """
    A Maildir store and users file (Alice and Bob) in temporary
    directories, served over loopback by the IMAP4 server and, when a test
    asks, by the SMTP server; imaplib clients run in threads.

    @ivar root: the store's root.
    @ivar store: the store the IMAP4 server reads.
    @ivar port: the plain-text port, logins allowed without TLS.
    """

    timeout = 60

    def setUp(self) -> None:
        self.root = Path(self.mktemp())
        usersFile = Path(self.mktemp())
        usersFile.write_text(usersText())
        self.users = UsersDatabase(usersFile)
        self.store = self.makeStore()
        hashing = PasswordHashing(
            reactor, hasher=HASHER, threadPool=reactor.getThreadPool()
        )
        self.backend = StoreBackend(UsersChecker(self.users, hashing), self.store)
        self.port = self.serve()

    def makeStore(self) -> MaildirStore:
        """
        A store over the test's root, closed at the end of the test.
        """
        store = MaildirStore(self.root)
        self.addCleanup(store.close)
        return store

    def serve(self, *, implicitTLS: bool = False, plainText: bool = True) -> int:
        """
        Listen with a new factory (STARTTLS offered with the test
        certificate) on a loopback port; at the end, stop listening and
        close the connections left.

        @param implicitTLS: listen with TLS from the start (RFC 8314).
        @param plainText: allow logins without TLS.
        @return: the port number.
        """
        factory = IMAP4ServerFactory(
            self.backend,
            hostname="imap.example.com",
            tls=serverContextFactory(*certificate()),
            allowPlaintextAuth=plainText,
        )
        self.addCleanup(self.closeAll, factory)
        if implicitTLS:
            port = reactor.listenSSL(
                0, factory, serverContextFactory(*certificate()), interface=HOST
            )
        else:
            port = reactor.listenTCP(0, factory, interface=HOST)
        self.addCleanup(port.stopListening)
        return int(port.getHost().port)

    def closeAll(self, factory: Any) -> Deferred[None]:
        """
        Close a factory's connections; drop those that linger.
        """
        d: Deferred[None] = factory.shutdown()

        def abort(failure: Any) -> Any:
            factory.abortAll()
            return failure

        return d.addTimeout(TIMEOUT, reactor).addErrback(abort)

    def call(self, f: Callable[..., T], *args: Any) -> Deferred[T]:
        """
        Run a blocking client call in a thread.
        """
        return deferToThread(f, *args)

    async def connect(
        self, port: int | None = None, *, implicitTLS: bool = False
    ) -> imaplib.IMAP4:
        """
        Connect an imaplib client, hung up at the end of the test.

        @param port: the port; by default the plain-text one.
        @param implicitTLS: connect with IMAP4_SSL, trusting the test
            certificate.
        """

        def connect() -> imaplib.IMAP4:
            where = self.port if port is None else port
            if implicitTLS:
                return imaplib.IMAP4_SSL(
                    HOST, where, ssl_context=clientContext(), timeout=TIMEOUT
                )
            return imaplib.IMAP4(HOST, where, timeout=TIMEOUT)

        client = await self.call(connect)
        self.addCleanup(hangUp, client)
        return client

    async def login(
        self, user: str = ALICE, select: str | None = None
    ) -> imaplib.IMAP4:
        """
        A client logged in over plain text, with C{select} selected.
        """
        client = await self.connect()
        typ, _ = await self.call(client.login, user, PASSWORD)
        assert typ == "OK"
        if select is not None:
            typ, data = await self.call(client.select, select)
            assert typ == "OK", data
        return client

    async def deliver(self, *messages: bytes, user: str = ALICE) -> None:
        """
        Put messages in a user's INBOX through the store, with the
        internal dates of L{DATES}.
        """
        account = None
        for message, date in zip(messages, DATES[: len(messages)], strict=True):
            await self.store.deliver([user], message, date)
            # Look at the folder after each, so that its UIDs follow the
            # order of delivery whatever the files' names.
            account = account or await self.store.openAccount(user)
            await account.folderStatus("INBOX")

    def smtpServer(self, store: MaildirStore | None = None) -> int:
        """
        Listen with the SMTP server on a loopback port, delivering to the
        users file's users in the test's root.

        @param store: the store it delivers with; by default the one the
            IMAP4 server reads.
        @return: the port number.
        """
        backend = MaildirBackend(
            self.root,
            users=self.users,
            store=self.store if store is None else store,
            reactor=reactor,
        )
        factory = SMTPServerFactory(backend, hostname="mx.example.com")
        self.addCleanup(self.closeAll, factory)
        port: IListeningPort = reactor.listenTCP(0, factory, interface=HOST)
        self.addCleanup(port.stopListening)
        return int(port.getHost().port)  # type: ignore[attr-defined]

    def sendMail(self, port: int, *messages: bytes, to: str = ALICE) -> Deferred[None]:
        """
        Send messages with smtplib to the SMTP server on C{port}.
        """

        def send() -> None:
            with smtplib.SMTP(HOST, port, timeout=TIMEOUT) as client:
                for message in messages:
                    client.sendmail("sender@example.net", [to], message)

        return self.call(send)


#: What the server announces before a login when it allows passwords.
GREETING_CAPABILITIES = (
    "IMAP4REV1",
    "SASL-IR",
    "ID",
    "ENABLE",
    "IDLE",
    "LITERAL+",
    "STARTTLS",
    "AUTH=PLAIN",
    "AUTH=LOGIN",
)


class ConnectionTests(IMAPServerTestCase):
    """
    Connecting, logging in and out: in plain text, with STARTTLS and with
    implicit TLS.
    """

    async def test_plainTextSession(self) -> None:
        """
        With plain-text logins allowed, the greeting offers C{AUTH=PLAIN}
        and STARTTLS; CAPABILITY and NOOP work before a login; LOGIN
        answers with the full capabilities; LOGOUT says BYE.
        """
        client = await self.connect()
        self.assertEqual(client.capabilities, GREETING_CAPABILITIES)
        self.assertEqual(
            await self.call(client.capability),
            (
                "OK",
                [
                    b"IMAP4rev1 SASL-IR ID ENABLE IDLE LITERAL+ STARTTLS"
                    b" AUTH=PLAIN AUTH=LOGIN"
                ],
            ),
        )
        self.assertEqual(await self.call(client.noop), ("OK", [b"NOOP completed"]))
        typ, data = await self.call(client.login, ALICE, PASSWORD)
        self.assertEqual(typ, "OK")
        self.assertRegex(data[0], rb"^\[CAPABILITY IMAP4rev1 .*\] Logged in$")
        self.assertEqual(client.state, "AUTH")
        typ, data = await self.call(client.capability)
        self.assertEqual(typ, "OK")
        self.assertEqual(
            data[-1].split(),
            [
                b"IMAP4rev1",
                b"LITERAL+",
                b"SASL-IR",
                b"ID",
                b"ENABLE",
                b"IDLE",
                b"NAMESPACE",
                b"UNSELECT",
                b"UIDPLUS",
                b"MOVE",
                b"CHILDREN",
                b"SPECIAL-USE",
                b"LIST-EXTENDED",
                b"LIST-STATUS",
                b"STATUS=SIZE",
                b"CONDSTORE",
                b"APPENDLIMIT=52428800",
            ],
        )
        self.assertEqual(await self.call(client.noop), ("OK", [b"NOOP completed"]))
        self.assertEqual(await self.call(client.logout), ("BYE", [b"Logging out"]))
        self.assertEqual(client.state, "LOGOUT")

    async def test_wrongPassword(self) -> None:
        """
        A wrong password is refused with C{[AUTHENTICATIONFAILED]}; the
        client stays unauthenticated and may try again.
        """
        client = await self.connect()
        text = await self.call(refusal, lambda: client.login(ALICE, "wrong"))
        self.assertEqual(text, "[AUTHENTICATIONFAILED] Authentication failed")
        self.assertEqual(client.state, "NONAUTH")
        typ, _ = await self.call(client.login, ALICE, PASSWORD)
        self.assertEqual(typ, "OK")

    async def test_authenticatePlain(self) -> None:
        """
        AUTHENTICATE PLAIN with imaplib's callable logs in: the server's
        challenge is empty and the user's INBOX can be selected.
        """
        await self.deliver(LUNCH)
        client = await self.connect()
        challenges: list[bytes] = []

        def answer(challenge: bytes) -> bytes:
            challenges.append(challenge)
            return f"\0{ALICE}\0{PASSWORD}".encode()

        typ, data = await self.call(client.authenticate, "PLAIN", answer)
        self.assertEqual(typ, "OK")
        self.assertRegex(data[0], rb"^\[CAPABILITY IMAP4rev1 .*\] Logged in$")
        self.assertEqual(challenges, [b""])
        self.assertEqual(client.state, "AUTH")
        self.assertEqual(await self.call(client.select), ("OK", [b"1"]))

    async def test_authenticatePlainRefused(self) -> None:
        """
        AUTHENTICATE PLAIN refuses a wrong password, and Alice's password
        used to act as Bob; a client that answers the challenge with
        C{*} cancels.
        """
        client = await self.connect()
        cases = [
            (f"\0{ALICE}\0wrong", "[AUTHENTICATIONFAILED] Authentication failed"),
            (
                f"{BOB}\0{ALICE}\0{PASSWORD}",
                "[AUTHENTICATIONFAILED] Authentication failed",
            ),
            (None, "AUTHENTICATE command error: BAD [b'Authentication cancelled']"),
        ]
        for response, expected in cases:
            answer = None if response is None else response.encode()
            text = await self.call(
                refusal,
                lambda a=answer: client.authenticate("PLAIN", lambda _: a),
            )
            self.assertEqual(text, expected)
            self.assertEqual(client.state, "NONAUTH")

    async def test_startTLS(self) -> None:
        """
        Without plain-text logins, the greeting says C{LOGINDISABLED} and
        LOGIN is refused with C{[PRIVACYREQUIRED]}; after STARTTLS, with
        the server's certificate verified for 127.0.0.1, the capabilities
        offer C{AUTH=PLAIN} and Alice logs in and finds her mail.
        """
        await self.deliver(GREETINGS, REPORT)
        client = await self.connect(self.serve(plainText=False))
        self.assertIn("LOGINDISABLED", client.capabilities)
        self.assertIn("STARTTLS", client.capabilities)
        self.assertNotIn("AUTH=PLAIN", client.capabilities)
        text = await self.call(refusal, lambda: client.login(ALICE, PASSWORD))
        self.assertTrue(text.startswith("[PRIVACYREQUIRED] "), text)

        typ, _ = await self.call(client.starttls, clientContext())
        self.assertEqual(typ, "OK")
        assert isinstance(client.sock, ssl.SSLSocket)
        self.assertEqual(
            client.sock.getpeercert()["subjectAltName"], (("IP Address", HOST),)
        )
        self.assertNotIn("LOGINDISABLED", client.capabilities)
        self.assertNotIn("STARTTLS", client.capabilities)
        self.assertIn("AUTH=PLAIN", client.capabilities)
        typ, _ = await self.call(client.login, ALICE, PASSWORD)
        self.assertEqual(typ, "OK")
        self.assertEqual(await self.call(client.select), ("OK", [b"2"]))
        self.assertEqual(await self.call(client.logout), ("BYE", [b"Logging out"]))

    async def test_implicitTLS(self) -> None:
        """
        On an implicit-TLS port (RFC 8314) the greeting offers
        C{AUTH=PLAIN} without STARTTLS, even with plain-text logins not
        allowed, and Alice logs in and finds her mail.
        """
        await self.deliver(LUNCH)
        port = self.serve(implicitTLS=True, plainText=False)
        client = await self.connect(port, implicitTLS=True)
        assert isinstance(client.sock, ssl.SSLSocket)
        self.assertIn(client.sock.version(), ("TLSv1.2", "TLSv1.3"))
        self.assertIn("AUTH=PLAIN", client.capabilities)
        self.assertNotIn("STARTTLS", client.capabilities)
        self.assertNotIn("LOGINDISABLED", client.capabilities)
        typ, _ = await self.call(client.login, ALICE, PASSWORD)
        self.assertEqual(typ, "OK")
        self.assertEqual(await self.call(client.select), ("OK", [b"1"]))
        self.assertEqual(await self.call(client.logout), ("BYE", [b"Logging out"]))

    async def test_enableAndId(self) -> None:
        """
        ID answers with the server's name and version, before and after a
        login; ENABLE CONDSTORE is confirmed with C{ENABLED}, after which
        STORE reports each message's MODSEQ.
        """
        self.patch(
            imaplib,
            "Commands",
            {**imaplib.Commands, "ID": ("NONAUTH", "AUTH", "SELECTED")},
        )
        await self.deliver(LUNCH)
        client = await self.connect()
        serverID = [f'("name" "gomail_twisted" "version" "{__version__}")'.encode()]
        typ, data = await self.call(
            client.xatom, "ID", '("name" "imaplib" "version" "3")'
        )
        self.assertEqual((typ, data), ("OK", [b"ID completed"]))
        self.assertEqual(client.response("ID"), ("ID", serverID))
        await self.call(client.login, ALICE, PASSWORD)
        self.assertEqual(
            await self.call(client.xatom, "ID", "NIL"), ("OK", [b"ID completed"])
        )
        self.assertEqual(client.response("ID"), ("ID", serverID))

        typ, data = await self.call(client.enable, "CONDSTORE")
        self.assertEqual((typ, data), ("OK", [b"ENABLE completed"]))
        self.assertEqual(client.response("ENABLED"), ("ENABLED", [b"CONDSTORE"]))
        await self.call(client.select)
        typ, data = await self.call(client.store, "1", "+FLAGS", "(\\Flagged)")
        self.assertEqual(typ, "OK")
        self.assertRegex(
            data[0], rb"^1 \(UID 1 FLAGS \(\\Flagged \\Recent\) MODSEQ \(\d+\)\)$"
        )


def stored(message: bytes) -> bytes:
    """
    A message as the Maildir keeps it: lines ending in LF.
    """
    return message.replace(b"\r\n", b"\n")


class MailboxTests(IMAPServerTestCase):
    """
    The mailbox commands: what imaplib returns, and the Maildir++
    directories and files they leave.
    """

    async def test_createListDelete(self) -> None:
        """
        CREATE makes the Maildir++ directory of the folder named (a
        modified UTF-7 name as it is); LIST matches C{*} and C{%} below a
        reference, showing a level made for nobody as C{\\Noselect};
        DELETE removes the directory, and refuses INBOX and what is not
        there.
        """
        client = await self.login()
        for name in ("Projects/2024", "Projects/2025", "Entw&APw-rfe"):
            self.assertEqual(
                await self.call(client.create, name), ("OK", [b"CREATE completed"])
            )
            self.assertTrue((folderPath(self.root, name) / "maildirfolder").is_file())
        self.assertTrue((self.root / ALICE / ".Entw&APw-rfe" / "cur").is_dir())
        self.assertEqual(
            await self.call(client.create, "Drafts"),
            ("NO", [b"[ALREADYEXISTS] Mailbox already exists"]),
        )
        everything = [
            b'(\\HasNoChildren) "/" INBOX',
            b'(\\HasNoChildren \\Archive) "/" Archive',
            b'(\\HasNoChildren \\Drafts) "/" Drafts',
            b'(\\HasNoChildren) "/" Entw&APw-rfe',
            b'(\\HasNoChildren \\Junk) "/" Junk',
            b'(\\Noselect \\HasChildren) "/" Projects',
            b'(\\HasNoChildren) "/" Projects/2024',
            b'(\\HasNoChildren) "/" Projects/2025',
            b'(\\HasNoChildren \\Sent) "/" Sent',
            b'(\\HasNoChildren \\Trash) "/" Trash',
        ]
        cases = [
            (('""', "*"), everything),
            (('""', "%"), [e for e in everything if b"Projects/" not in e]),
            (("Projects/", "%"), everything[6:8]),
            (('""', "*2025"), everything[7:8]),
            (('""', "inbox"), everything[:1]),
            (('""', "Nothing*"), [None]),
        ]
        for (reference, pattern), expected in cases:
            self.assertEqual(
                await self.call(client.list, reference, pattern), ("OK", expected)
            )

        typ, data = await self.call(client.delete, "Projects/2024")
        self.assertEqual((typ, data), ("OK", [b"DELETE completed"]))
        self.assertFalse(folderPath(self.root, "Projects/2024").exists())
        self.assertEqual(
            await self.call(client.list, '""', "Projects*"),
            ("OK", [b'(\\Noselect \\HasChildren) "/" Projects', everything[7]]),
        )
        self.assertEqual(
            await self.call(client.delete, "INBOX"),
            ("NO", [b"[CANNOT] INBOX can't be deleted"]),
        )
        self.assertEqual(
            await self.call(client.delete, "Nowhere"),
            ("NO", [b"[NONEXISTENT] Mailbox does not exist"]),
        )

    async def test_rename(self) -> None:
        """
        RENAME moves a folder's directory and its messages; renaming INBOX
        moves its messages to the new folder and leaves INBOX empty (RFC
        3501 6.3.5); a missing folder cannot be renamed.
        """
        await self.deliver(GREETINGS, LUNCH)
        client = await self.login()
        await self.call(client.create, "Old")
        await self.call(client.append, "Old", None, None, REPORT)
        self.assertEqual(
            await self.call(client.rename, "Old", "Kept"),
            ("OK", [b"RENAME completed"]),
        )
        self.assertFalse(folderPath(self.root, "Old").exists())
        self.assertEqual(
            [p.read_bytes() for p in messageFiles(self.root, "Kept")],
            [stored(REPORT)],
        )
        self.assertEqual(
            await self.call(client.rename, "INBOX", "Saved"),
            ("OK", [b"RENAME completed"]),
        )
        self.assertEqual(messageFiles(self.root), [])
        self.assertEqual(
            sorted(p.read_bytes() for p in messageFiles(self.root, "Saved")),
            sorted([stored(GREETINGS), stored(LUNCH)]),
        )
        self.assertEqual(
            await self.call(client.status, "Saved", "(MESSAGES)"),
            ("OK", [b"Saved (MESSAGES 2)"]),
        )
        self.assertEqual(
            await self.call(client.status, "INBOX", "(MESSAGES)"),
            ("OK", [b"INBOX (MESSAGES 0)"]),
        )
        self.assertEqual(
            await self.call(client.rename, "Missing", "Other"),
            ("NO", [b"[NONEXISTENT] Mailbox does not exist"]),
        )

    async def test_subscribeAndLsub(self) -> None:
        """
        SUBSCRIBE adds a name to the C{subscriptions} file, whether a
        folder has it or not, and LSUB lists it; UNSUBSCRIBE takes it away;
        LIST (SUBSCRIBED) marks the names that have no folder
        C{\\NonExistent} (and, extended, shows no special use unless asked:
        RFC 6154 2).
        """
        client = await self.login()
        await self.call(client.create, "Projects")
        subscribed = [
            b'() "/" INBOX',
            b'(\\Archive) "/" Archive',
            b'(\\Drafts) "/" Drafts',
            b'(\\Junk) "/" Junk',
            b'(\\Sent) "/" Sent',
            b'(\\Trash) "/" Trash',
        ]
        self.assertEqual(await self.call(client.lsub), ("OK", subscribed))
        for name in ("Projects", "Someday"):
            self.assertEqual(
                await self.call(client.subscribe, name),
                ("OK", [b"SUBSCRIBE completed"]),
            )
        lines = (self.root / ALICE / "subscriptions").read_text().splitlines()
        self.assertIn("Projects", lines)
        self.assertIn("Someday", lines)
        self.assertEqual(
            await self.call(client.lsub, '""', "*"),
            (
                "OK",
                [
                    *subscribed[:4],
                    b'() "/" Projects',
                    subscribed[4],
                    b'() "/" Someday',
                    subscribed[5],
                ],
            ),
        )
        self.assertEqual(
            await self.call(client.list, '(SUBSCRIBED) ""', "S*"),
            (
                "OK",
                [
                    b'(\\Subscribed \\HasNoChildren) "/" Sent',
                    b'(\\Subscribed \\NonExistent \\HasNoChildren) "/" Someday',
                ],
            ),
        )
        self.assertEqual(
            await self.call(client.unsubscribe, "Someday"),
            ("OK", [b"UNSUBSCRIBE completed"]),
        )
        self.assertEqual(
            await self.call(client.lsub, '""', "S%"),
            ("OK", [b'(\\Sent) "/" Sent']),
        )
        lines = (self.root / ALICE / "subscriptions").read_text().splitlines()
        self.assertNotIn("Someday", lines)

    async def test_statusAndNamespace(self) -> None:
        """
        STATUS counts a folder's messages, recent and unseen ones, its
        next UID, its UIDVALIDITY (the one SELECT gives) and its size in
        octets with CRLF line ends (RFC 8438); a missing folder is
        C{[NONEXISTENT]}.  NAMESPACE gives one personal namespace, no
        prefix, C{/} between levels.
        """
        await self.deliver(GREETINGS, REPORT, LUNCH)
        client = await self.login()
        size = len(GREETINGS) + len(REPORT) + len(LUNCH)
        typ, data = await self.call(
            client.status, "INBOX", "(MESSAGES RECENT UIDNEXT UIDVALIDITY UNSEEN SIZE)"
        )
        self.assertEqual(typ, "OK")
        self.assertRegex(
            data[0],
            rb"^INBOX \(MESSAGES 3 RECENT 3 UIDNEXT 4 UIDVALIDITY (\d+) UNSEEN 3"
            rb" SIZE %d\)$" % (size,),
        )
        await self.call(client.select)
        [validity] = client.response("UIDVALIDITY")[1]
        self.assertIn(b"UIDVALIDITY " + validity + b" ", data[0])
        self.assertEqual(
            await self.call(client.status, "Trash", "(MESSAGES UNSEEN)"),
            ("OK", [b"Trash (MESSAGES 0 UNSEEN 0)"]),
        )
        self.assertEqual(
            await self.call(client.status, "Nowhere", "(MESSAGES)"),
            ("NO", [b"[NONEXISTENT] Mailbox does not exist"]),
        )
        self.assertEqual(
            await self.call(client.namespace), ("OK", [b'(("" "/")) NIL NIL'])
        )

    async def test_appendWithFlagsAndDate(self) -> None:
        """
        APPEND with flags and an internal date answers C{[APPENDUID]} and
        leaves one file in C{cur/}: the message with LF line ends, the
        flags in its name (a keyword by its letter in
        C{dovecot-keywords}), the date as its modification time.  A
        folder that is not there is C{[TRYCREATE]}.
        """
        client = await self.login()
        date = imaplib.Time2Internaldate(DATES[0])
        typ, data = await self.call(
            client.append, "INBOX", "(\\Seen $Forwarded)", date, LUNCH
        )
        self.assertEqual(typ, "OK")
        match = re.fullmatch(rb"\[APPENDUID (\d+) 1\] APPEND completed", data[0])
        assert match is not None, data
        [path] = messageFiles(self.root)
        self.assertEqual(path.parent.name, "cur")
        self.assertEqual(path.read_bytes(), stored(LUNCH))
        self.assertEqual(path.stat().st_mtime, DATES[0])
        keywords = (self.root / ALICE / "dovecot-keywords").read_text().split()
        letter = chr(ord("a") + int(keywords[keywords.index("$Forwarded") - 1]))
        self.assertEqual(diskFlags(path), "S" + letter)

        typ, data = await self.call(client.append, "Archive", None, None, REPORT)
        self.assertEqual(typ, "OK")
        self.assertRegex(data[0], rb"^\[APPENDUID \d+ 1\] APPEND completed$")
        [path] = messageFiles(self.root, "Archive")
        self.assertEqual(path.read_bytes(), stored(REPORT))
        self.assertEqual(diskFlags(path), "")
        self.assertEqual(
            await self.call(client.status, "INBOX", "(MESSAGES UNSEEN UIDNEXT)"),
            ("OK", [b"INBOX (MESSAGES 1 UNSEEN 0 UIDNEXT 2)"]),
        )
        self.assertEqual(
            await self.call(client.append, "Nowhere", None, None, LUNCH),
            ("NO", [b"[TRYCREATE] Mailbox does not exist"]),
        )
        self.assertEqual(await self.call(client.select), ("OK", [b"1"]))
        self.assertEqual(
            client.response("UIDVALIDITY"), ("UIDVALIDITY", [match.group(1)])
        )


class SelectedTests(IMAPServerTestCase):
    """
    SELECT and EXAMINE, and the commands of the selected state that end
    it or tidy it: CHECK, EXPUNGE, CLOSE, UNSELECT.
    """

    async def test_selectAndExamine(self) -> None:
        """
        SELECT gives the message count and the mailbox's facts as imaplib
        keeps them; the first session to select a delivered message sees
        it C{\\Recent}.  EXAMINE opens the mailbox read-only: STORE is
        refused with C{[READ-ONLY]} and the files are untouched.
        """
        await self.deliver(GREETINGS, REPORT, LUNCH)
        client = await self.login()
        self.assertEqual(await self.call(client.select), ("OK", [b"3"]))
        facts = {
            name: client.response(name)[1]
            for name in ("FLAGS", "PERMANENTFLAGS", "RECENT", "UNSEEN", "UIDNEXT")
        }
        self.assertEqual(
            facts,
            {
                "FLAGS": [b"(\\Answered \\Flagged \\Deleted \\Seen \\Draft)"],
                "PERMANENTFLAGS": [
                    b"(\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)"
                ],
                "RECENT": [b"3"],
                "UNSEEN": [b"1"],
                "UIDNEXT": [b"4"],
            },
        )
        [validity] = client.response("UIDVALIDITY")[1]
        self.assertTrue(validity.isdigit(), validity)

        other = await self.login()
        self.assertEqual(await self.call(other.select, "INBOX", True), ("OK", [b"3"]))
        self.assertEqual(other.response("RECENT"), ("RECENT", [b"0"]))
        self.assertEqual(other.response("UIDVALIDITY"), ("UIDVALIDITY", [validity]))
        before = messageFiles(self.root)
        self.assertEqual(
            await self.call(other.store, "1", "+FLAGS", "(\\Deleted)"),
            ("NO", [b"[READ-ONLY] Mailbox is read-only"]),
        )
        self.assertEqual(
            await self.call(other.expunge),
            ("NO", [b"[READ-ONLY] Mailbox is read-only"]),
        )
        self.assertEqual(messageFiles(self.root), before)

    async def test_selectMissing(self) -> None:
        """
        SELECT of a folder that is not there is C{[NONEXISTENT]}, and the
        session is left with no mailbox selected.
        """
        client = await self.login(select="INBOX")
        self.assertEqual(
            await self.call(client.select, "Nowhere"),
            ("NO", [b"[NONEXISTENT] Mailbox does not exist"]),
        )
        self.assertEqual(client.state, "AUTH")
        text = await self.call(refusal, lambda: client.search(None, "ALL"))
        self.assertIn("illegal in state AUTH", text)

    async def test_checkExpungeAndClose(self) -> None:
        """
        CHECK answers OK; EXPUNGE removes the C{\\Deleted} messages' files
        and names each in an C{EXPUNGE} response; CLOSE removes them too,
        without a word, and leaves the selected state.
        """
        await self.deliver(GREETINGS, REPORT, LUNCH)
        client = await self.login(select="INBOX")
        self.assertEqual(await self.call(client.check), ("OK", [b"CHECK completed"]))
        await self.call(client.store, "1,3", "+FLAGS.SILENT", "(\\Deleted)")
        # Each number as it is once the messages before are gone.
        self.assertEqual(await self.call(client.expunge), ("OK", [b"1", b"2"]))
        self.assertEqual(
            [p.read_bytes() for p in messageFiles(self.root)], [stored(REPORT)]
        )
        await self.call(client.append, "INBOX", None, None, LUNCH)
        self.assertEqual(await self.call(client.noop), ("OK", [b"NOOP completed"]))
        self.assertEqual(client.response("EXISTS")[1][-1], b"2")
        await self.call(client.store, "1", "+FLAGS.SILENT", "(\\Deleted)")
        self.assertEqual(await self.call(client.close), ("OK", [b"CLOSE completed"]))
        self.assertEqual(client.state, "AUTH")
        self.assertEqual(client.response("EXPUNGE"), ("EXPUNGE", [None]))
        self.assertEqual(
            [p.read_bytes() for p in messageFiles(self.root)], [stored(LUNCH)]
        )

    async def test_closeReadOnly(self) -> None:
        """
        CLOSE of a mailbox opened with EXAMINE removes nothing.
        """
        await self.deliver(GREETINGS, REPORT)
        writer = await self.login(select="INBOX")
        await self.call(writer.store, "1:2", "+FLAGS.SILENT", "(\\Deleted)")
        reader = await self.login()
        await self.call(reader.select, "INBOX", True)
        self.assertEqual(await self.call(reader.close), ("OK", [b"CLOSE completed"]))
        self.assertEqual([diskFlags(p) for p in messageFiles(self.root)], ["T", "T"])

    async def test_unselect(self) -> None:
        """
        UNSELECT leaves the selected state without removing the
        C{\\Deleted} messages.
        """
        await self.deliver(GREETINGS, REPORT)
        client = await self.login(select="INBOX")
        await self.call(client.store, "2", "+FLAGS.SILENT", "(\\Deleted)")
        self.assertEqual(
            await self.call(client.unselect), ("OK", [b"UNSELECT completed"])
        )
        self.assertEqual(client.state, "AUTH")
        self.assertEqual(
            sorted(diskFlags(p) for p in messageFiles(self.root)), ["", "T"]
        )
        self.assertEqual(
            await self.call(client.status, "INBOX", "(MESSAGES)"),
            ("OK", [b"INBOX (MESSAGES 2)"]),
        )


class SearchTests(IMAPServerTestCase):
    """
    SEARCH and UID SEARCH over three messages, one seen and flagged, one
    with a keyword.
    """

    async def mailbox(self) -> imaplib.IMAP4:
        """
        Alice's INBOX selected, holding L{GREETINGS} (unseen), L{REPORT}
        (C{\\Seen \\Flagged}) and L{LUNCH} (C{$Work}).
        """
        await self.deliver(GREETINGS, REPORT, LUNCH)
        client = await self.login(select="INBOX")
        await self.call(client.store, "2", "+FLAGS.SILENT", "(\\Seen \\Flagged)")
        await self.call(client.store, "3", "+FLAGS.SILENT", "($Work)")
        return client

    async def test_criteria(self) -> None:
        """
        Each criterion, and their combinations, finds the messages it
        names.
        """
        client = await self.mailbox()
        cases: list[tuple[tuple[str, ...], bytes]] = [
            (("ALL",), b"1 2 3"),
            (("SEEN",), b"2"),
            (("UNSEEN",), b"1 3"),
            (("FLAGGED",), b"2"),
            (("UNFLAGGED",), b"1 3"),
            (("KEYWORD", "$Work"), b"3"),
            (("UNKEYWORD", "$Work"), b"1 2"),
            (("NEW",), b"1 3"),
            (("RECENT",), b"1 2 3"),
            (("OLD",), b""),
            (("FROM", "bob"), b"2"),
            (("TO", "alice@example.com"), b"1 2 3"),
            (("CC", "CAROL"), b"2"),
            (("SUBJECT", '"quarterly REPORT"'), b"2"),
            (("SUBJECT", "lunch"), b"3"),
            (("HEADER", "Message-ID", "<report@example.com>"), b"2"),
            (("HEADER", "Cc", '""'), b"2"),
            (("BODY", "usual"), b"3"),
            (("BODY", "Lunch"), b""),
            (("TEXT", "Lunch"), b"3"),
            (("BEFORE", "15-Nov-2023"), b"1"),
            (("ON", "16-Nov-2023"), b"2"),
            (("SINCE", "17-Nov-2023"), b"3"),
            (("SENTON", "15-Nov-2023"), b"2"),
            (("SENTBEFORE", "15-Nov-2023"), b"1"),
            (("SENTSINCE", "16-Nov-2023"), b"3"),
            (("LARGER", str(len(REPORT) - 1)), b"2"),
            (("SMALLER", str(len(LUNCH) + 1)), b"3"),
            (("OR", "FROM", "bob", "FROM", "carol"), b"2 3"),
            (("NOT", "SEEN"), b"1 3"),
            (("(FROM bob SUBJECT report)",), b"2"),
            (("UNDELETED", "SINCE", "16-Nov-2023"), b"2 3"),
            (("2:*",), b"2 3"),
            (("UID", "1,3"), b"1 3"),
        ]
        for criteria, expected in cases:
            self.assertEqual(
                await self.call(client.search, None, *criteria),
                ("OK", [expected]),
                criteria,
            )

    async def test_utf8Literal(self) -> None:
        """
        With C{CHARSET UTF-8} a non-ASCII string goes as a literal (imaplib
        sends C{imap.literal}); it matches the decoded subject and the
        body in their charset, without regard to case.
        """
        client = await self.mailbox()
        cases = [
            ("SUBJECT", "Grüße", b"1"),
            ("SUBJECT", "GRÜSSE AUS KÖLN", b"1"),
            ("SUBJECT", "Köln", b"1"),
            ("SUBJECT", "Schöne", b""),
            ("BODY", "schöne grüße", b"1"),
            ("TEXT", "KÖLN", b"1"),
            ("BODY", "Zürich", b""),
        ]
        for key, text, expected in cases:
            client.literal = text.encode("utf-8")
            self.assertEqual(
                await self.call(client.search, "UTF-8", key),
                ("OK", [expected]),
                (key, text),
            )
        self.assertEqual(
            await self.call(client.search, "US-ASCII", "SUBJECT", "lunch"),
            ("OK", [b"3"]),
        )

    async def test_uidSearch(self) -> None:
        """
        UID SEARCH answers with UIDs, which no longer match sequence
        numbers once a message is expunged.
        """
        client = await self.mailbox()
        await self.call(client.store, "1", "+FLAGS.SILENT", "(\\Deleted)")
        await self.call(client.expunge)
        self.assertEqual(await self.call(client.search, None, "ALL"), ("OK", [b"1 2"]))
        self.assertEqual(await self.call(client.uid, "SEARCH", "ALL"), ("OK", [b"2 3"]))
        self.assertEqual(
            await self.call(client.uid, "SEARCH", "KEYWORD", "$Work"), ("OK", [b"3"])
        )
        self.assertEqual(
            await self.call(client.uid, "SEARCH", "UID", "1:2"), ("OK", [b"2"])
        )


def flagsOnDisk(root: Path, name: str = "INBOX") -> dict[bytes, str]:
    """
    The flag letters of each message file of a folder, by its content.
    """
    return {p.read_bytes(): diskFlags(p) for p in messageFiles(root, name)}


class StoreAndCopyTests(IMAPServerTestCase):
    """
    STORE, COPY and MOVE, by sequence number and by UID: the responses,
    and the files' names and places on disk.
    """

    async def test_store(self) -> None:
        """
        STORE adds (C{+FLAGS}), removes (C{-FLAGS}) and replaces
        (C{FLAGS}) flags, answering each message's flags (C{\\Recent} in
        the session that has it), and nothing with C{.SILENT}; the
        letters in the files' names follow.  A new keyword is announced
        with C{FLAGS}; an unknown system flag is BAD.
        """
        await self.deliver(GREETINGS, REPORT, LUNCH)
        client = await self.login(select="INBOX")
        cases = [
            (
                ("1", "+FLAGS", "(\\Flagged \\Answered)"),
                [b"1 (FLAGS (\\Answered \\Flagged \\Recent))"],
            ),
            (
                ("1:2", "+FLAGS", "(\\Seen)"),
                [
                    b"1 (FLAGS (\\Answered \\Flagged \\Seen \\Recent))",
                    b"2 (FLAGS (\\Seen \\Recent))",
                ],
            ),
            (
                ("1", "-FLAGS", "(\\Flagged \\Draft)"),
                [b"1 (FLAGS (\\Answered \\Seen \\Recent))"],
            ),
            (("3", "FLAGS.SILENT", "(\\Draft $Todo)"), [None]),
            (("2", "FLAGS", "()"), [b"2 (FLAGS (\\Recent))"]),
        ]
        for arguments, expected in cases:
            self.assertEqual(
                await self.call(client.store, *arguments), ("OK", expected), arguments
            )
        self.assertEqual(
            client.response("FLAGS")[1][-1],
            b"(\\Answered \\Flagged \\Deleted \\Seen \\Draft $Todo)",
        )
        keywords = (self.root / ALICE / "dovecot-keywords").read_text().split()
        todo = chr(ord("a") + int(keywords[keywords.index("$Todo") - 1]))
        self.assertEqual(
            flagsOnDisk(self.root),
            {stored(GREETINGS): "RS", stored(REPORT): "", stored(LUNCH): "D" + todo},
        )
        text = await self.call(
            refusal, lambda: client.store("1", "+FLAGS", "(\\Bogus)")
        )
        self.assertIn("Flag \\\\Bogus cannot be stored", text)

    async def test_copy(self) -> None:
        """
        COPY answers C{[COPYUID]} and leaves copies, flags and all, in the
        other folder's directory and the originals where they were; a
        missing folder is C{[TRYCREATE]}.
        """
        await self.deliver(GREETINGS, REPORT, LUNCH)
        client = await self.login(select="INBOX")
        await self.call(client.store, "2", "+FLAGS.SILENT", "(\\Flagged)")
        typ, data = await self.call(client.copy, "2:3", "Archive")
        self.assertEqual(typ, "OK")
        self.assertRegex(data[0], rb"^\[COPYUID \d+ 2:3 1:2\] COPY completed$")
        self.assertEqual(
            flagsOnDisk(self.root, "Archive"),
            {stored(REPORT): "F", stored(LUNCH): ""},
        )
        self.assertEqual(len(messageFiles(self.root)), 3)
        self.assertEqual(
            await self.call(client.copy, "1", "Nowhere"),
            ("NO", [b"[TRYCREATE] Mailbox does not exist"]),
        )
        self.assertEqual(
            await self.call(client.status, "Archive", "(MESSAGES UIDNEXT)"),
            ("OK", [b"Archive (MESSAGES 2 UIDNEXT 3)"]),
        )

    async def test_uidCommands(self) -> None:
        """
        UID STORE, UID COPY, UID MOVE and UID EXPUNGE take UIDs: once the
        first message is expunged, UID 3 is message 2.  UID MOVE answers
        C{[COPYUID]} untagged and C{EXPUNGE}; UID EXPUNGE removes only the
        C{\\Deleted} messages it names.
        """
        await self.deliver(GREETINGS, REPORT, LUNCH)
        client = await self.login(select="INBOX")
        await self.call(client.store, "1", "+FLAGS.SILENT", "(\\Deleted)")
        await self.call(client.expunge)

        self.assertEqual(
            await self.call(client.uid, "STORE", "3", "+FLAGS", "(\\Flagged)"),
            ("OK", [b"2 (UID 3 FLAGS (\\Flagged \\Recent))"]),
        )
        typ, _ = await self.call(client.uid, "COPY", "2:3", "Archive")
        self.assertEqual(typ, "OK")
        self.assertEqual(
            flagsOnDisk(self.root, "Archive"), {stored(REPORT): "", stored(LUNCH): "F"}
        )

        typ, _ = await self.call(client.uid, "MOVE", "2", "Trash")
        self.assertEqual(typ, "OK")
        # imaplib keeps UID COPY's tagged [COPYUID] too; MOVE's comes last.
        copyUIDs = client.response("COPYUID")[1]
        self.assertRegex(copyUIDs[0], rb"^\d+ 2:3 1:2$")
        self.assertRegex(copyUIDs[1], rb"^\d+ 2 1$")
        self.assertEqual(client.response("EXPUNGE"), ("EXPUNGE", [b"1"]))
        self.assertEqual(flagsOnDisk(self.root, "Trash"), {stored(REPORT): ""})
        self.assertEqual(flagsOnDisk(self.root), {stored(LUNCH): "F"})

        await self.call(client.append, "INBOX", "(\\Deleted)", None, GREETINGS)
        await self.call(client.uid, "STORE", "3", "+FLAGS.SILENT", "(\\Deleted)")
        typ, _ = await self.call(client.uid, "EXPUNGE", "4")
        self.assertEqual(typ, "OK")
        self.assertEqual(client.response("EXPUNGE"), ("EXPUNGE", [b"2"]))
        self.assertEqual(flagsOnDisk(self.root), {stored(LUNCH): "FT"})
        self.assertEqual(await self.call(client.uid, "SEARCH", "ALL"), ("OK", [b"3"]))

    async def test_move(self) -> None:
        """
        MOVE by sequence number (RFC 6851) moves the files to the other
        folder's directory and answers C{EXPUNGE} for each message.
        """
        await self.deliver(GREETINGS, REPORT, LUNCH)
        client = await self.login(select="INBOX")
        typ, data = await self.call(client._simple_command, "MOVE", "1:2", "Junk")
        self.assertEqual((typ, data), ("OK", [b"MOVE completed"]))
        self.assertEqual(client.response("EXPUNGE"), ("EXPUNGE", [b"1", b"1"]))
        [copyUID] = client.response("COPYUID")[1]
        self.assertRegex(copyUID, rb"^\d+ 1:2 1:2$")
        self.assertEqual(
            flagsOnDisk(self.root, "Junk"), {stored(GREETINGS): "", stored(REPORT): ""}
        )
        self.assertEqual(flagsOnDisk(self.root), {stored(LUNCH): ""})
        self.assertEqual(await self.call(client.search, None, "ALL"), ("OK", [b"1"]))


class FetchTests(IMAPServerTestCase):
    """
    FETCH and UID FETCH: each data item as imaplib parses it, and the
    C{\\Seen} flag that reading a body sets, on the wire and on disk.
    """

    async def test_attributes(self) -> None:
        """
        FLAGS, INTERNALDATE (the file's time), RFC822.SIZE (with CRLF line
        ends), ENVELOPE, BODYSTRUCTURE and BODY of a two-part message.
        """
        await self.deliver(GREETINGS, REPORT)
        client = await self.login(select="INBOX")
        typ, data = await self.call(client.fetch, "2", "(INTERNALDATE RFC822.SIZE)")
        self.assertEqual(
            (typ, data),
            (
                "OK",
                [
                    b'2 (INTERNALDATE "16-Nov-2023 12:00:00 +0000" RFC822.SIZE %d)'
                    % (len(REPORT),)
                ],
            ),
        )
        self.assertEqual(time.mktime(imaplib.Internaldate2tuple(data[0])), DATES[1])
        bob = b'(("Bob" NIL "bob" "example.com"))'
        text = b'"text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 25 0'
        csv = (
            b'"text" "csv" ("name" "q3.csv" "charset" "us-ascii") NIL NIL "base64" 24 0'
        )
        cases = [
            ("(FLAGS)", b"2 (FLAGS (\\Recent))"),
            (
                "(ENVELOPE)",
                b'2 (ENVELOPE ("Wed, 15 Nov 2023 09:00:00 +0100" "Quarterly report" '
                + b" ".join([bob] * 3)
                + b' (("Alice" NIL "alice" "example.com"))'
                b' (("Carol" NIL "carol" "example.org")) NIL NIL'
                b' "<report@example.com>"))',
            ),
            (
                "(BODYSTRUCTURE)",
                b"2 (BODYSTRUCTURE (("
                + text
                + b" NIL NIL NIL NIL)("
                + csv
                + b' NIL ("attachment" ("filename" "q3.csv")) NIL NIL)'
                b' "mixed" ("boundary" "b1") NIL NIL NIL))',
            ),
            ("(BODY)", b"2 (BODY ((" + text + b")(" + csv + b') "mixed"))'),
        ]
        for items, expected in cases:
            self.assertEqual(
                await self.call(client.fetch, "2", items), ("OK", [expected]), items
            )
        self.assertEqual(
            await self.call(client.fetch, "1", "(BODYSTRUCTURE)"),
            (
                "OK",
                [
                    b'1 (BODYSTRUCTURE ("text" "plain" ("charset" "utf-8") NIL NIL'
                    b' "8bit" 28 1 NIL NIL NIL NIL))'
                ],
            ),
        )

    async def test_bodySections(self) -> None:
        """
        BODY.PEEK gives the whole message, header fields, a part's MIME
        header and partial ranges (empty past the end) without setting
        C{\\Seen}; BODY[1] gives the first part's body and sets C{\\Seen},
        which the response says and the file's name shows.
        """
        await self.deliver(REPORT)
        client = await self.login(select="INBOX")
        header, _, body = REPORT.partition(b"\r\n\r\n")
        cases = [
            ("BODY.PEEK[]", b"BODY[]", REPORT),
            (
                "BODY.PEEK[HEADER.FIELDS (SUBJECT)]",
                b"BODY[HEADER.FIELDS (SUBJECT)]",
                b"Subject: Quarterly report\r\n\r\n",
            ),
            ("RFC822.HEADER", b"RFC822.HEADER", header + b"\r\n\r\n"),
            (
                "BODY.PEEK[2.MIME]",
                b"BODY[2.MIME]",
                b'Content-Type: text/csv; name="q3.csv"\r\n'
                b'Content-Disposition: attachment; filename="q3.csv"\r\n'
                b"Content-Transfer-Encoding: base64\r\n\r\n",
            ),
            ("BODY.PEEK[2]", b"BODY[2]", b"cXVhcnRlcixzYWxlcwozLDQy"),
            ("BODY.PEEK[]<0.20>", b"BODY[]<0>", REPORT[:20]),
            ("BODY.PEEK[TEXT]<5.10>", b"BODY[TEXT]<5>", body[5:15]),
            ("BODY.PEEK[]<10000.10>", b"BODY[]<10000>", b""),
        ]
        for item, label, expected in cases:
            self.assertEqual(
                await self.call(client.fetch, "1", f"({item})"),
                ("OK", [(b"1 (%s {%d}" % (label, len(expected)), expected), b")"]),
                item,
            )
        [path] = messageFiles(self.root)
        self.assertEqual(diskFlags(path), "")
        self.assertEqual(
            await self.call(client.fetch, "1", "(BODY[1])"),
            (
                "OK",
                [
                    (b"1 (BODY[1] {25}", b"The numbers are attached."),
                    b" FLAGS (\\Seen \\Recent))",
                ],
            ),
        )
        [path] = messageFiles(self.root)
        self.assertEqual(diskFlags(path), "S")

    async def test_uidFetch(self) -> None:
        """
        UID FETCH names messages by UID and answers with their sequence
        numbers and UIDs; FETCH of several messages answers each.
        """
        await self.deliver(GREETINGS, REPORT, LUNCH)
        client = await self.login(select="INBOX")
        await self.call(client.store, "1", "+FLAGS.SILENT", "(\\Deleted)")
        await self.call(client.expunge)
        self.assertEqual(
            await self.call(client.uid, "FETCH", "3:*", "(FLAGS)"),
            ("OK", [b"2 (UID 3 FLAGS (\\Recent))"]),
        )
        self.assertEqual(
            await self.call(
                client.uid, "FETCH", "1:*", "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])"
            ),
            (
                "OK",
                [
                    (
                        b"1 (UID 2 BODY[HEADER.FIELDS (SUBJECT)] {29}",
                        b"Subject: Quarterly report\r\n\r\n",
                    ),
                    b")",
                    (
                        b"2 (UID 3 BODY[HEADER.FIELDS (SUBJECT)] {18}",
                        b"Subject: Lunch\r\n\r\n",
                    ),
                    b")",
                ],
            ),
        )
        self.assertEqual(
            await self.call(client.fetch, "1:2", "(UID RFC822.SIZE)"),
            (
                "OK",
                [
                    b"1 (UID 2 RFC822.SIZE %d)" % (len(REPORT),),
                    b"2 (UID 3 RFC822.SIZE %d)" % (len(LUNCH),),
                ],
            ),
        )

    async def test_examineDoesNotSetSeen(self) -> None:
        """
        A body read in a mailbox opened with EXAMINE leaves C{\\Seen}
        unset; the message, which no session has selected yet, shows as
        C{\\Recent}.
        """
        await self.deliver(GREETINGS)
        client = await self.login()
        await self.call(client.select, "INBOX", True)
        self.assertEqual(
            await self.call(client.fetch, "1", "(BODY[TEXT])"),
            (
                "OK",
                [
                    (
                        b"1 (BODY[TEXT] {28}",
                        "Schöne Grüße vom Rhein.\r\n".encode(),
                    ),
                    b")",
                ],
            ),
        )
        self.assertEqual(
            await self.call(client.fetch, "1", "(FLAGS)"),
            ("OK", [b"1 (FLAGS (\\Recent))"]),
        )
        [path] = messageFiles(self.root)
        self.assertEqual(diskFlags(path), "")

    async def test_largeMessageOverTLS(self) -> None:
        """
        A message of several hundred kilobytes, appended and fetched over
        implicit TLS, comes back octet for octet.
        """
        lines = b"".join(
            b"line %06d of a long message\r\n" % (n,) for n in range(12000)
        )
        message = b"From: Bob <bob@example.com>\r\nSubject: big\r\n\r\n" + lines
        client = await self.connect(
            self.serve(implicitTLS=True, plainText=False), implicitTLS=True
        )
        await self.call(client.login, ALICE, PASSWORD)
        typ, _ = await self.call(client.append, "INBOX", None, None, message)
        self.assertEqual(typ, "OK")
        await self.call(client.select)
        self.assertEqual(
            await self.call(client.fetch, "1", "(BODY.PEEK[])"),
            ("OK", [(b"1 (BODY[] {%d}" % (len(message),), message), b")"]),
        )
        [path] = messageFiles(self.root)
        self.assertEqual(path.read_bytes(), stored(message))
