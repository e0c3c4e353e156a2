# -*- test-case-name: tests.test_ipac_clients -*-
"""
Tests for IP access control as real clients meet it: the SMTP, POP3 and
IMAP4 servers on loopback sockets sharing one L{IPAccessControl}, driven
by the standard library's C{smtplib}, C{poplib} and C{imaplib}.

Each client runs in a thread (C{deferToThread}) while the servers run on
the real reactor; every socket call has a timeout.  Loopback is on the
default allow-list, so the tests that block it empty the list.
"""

from __future__ import annotations

import imaplib
import poplib
import smtplib
import ssl
from collections.abc import Callable
from typing import Any, TypeVar

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import TestCase
from zope.interface import implementer

from gomail_twisted.connection import LimitedServerFactory
from gomail_twisted.imap4 import _status as S
from gomail_twisted.imap4.backend import IMAPBackend, IMAPSession
from gomail_twisted.imap4.factory import IMAP4ServerFactory
from gomail_twisted.ipac import AccessEvent, EventKind, IPAccessControl
from gomail_twisted.maildir import IAccount
from gomail_twisted.pop3 import FunctionBackend as POP3FunctionBackend
from gomail_twisted.pop3 import MemoryMaildrop, POP3ServerFactory
from gomail_twisted.pop3 import replies as pop3Replies
from gomail_twisted.smtp import FunctionBackend as SMTPFunctionBackend
from gomail_twisted.smtp import SMTPServerFactory
from gomail_twisted.smtp import replies as smtpReplies
from gomail_twisted.tls import serverContextFactory
from tests.test_smtp_clients import certificate, clientContext

T = TypeVar("T")

#: Seconds any one socket operation of a client may take.
TIMEOUT = 10.0
USER = "alice"
PASSWORD = "correct horse"

SMTP_BLOCKED = (554, b"Access denied: too many failed logins or connections from you")
POP3_BLOCKED = (
    b"-ERR [SYS/TEMP] Access denied: too many failed logins or connections from you"
)
IMAP_BLOCKED = (
    b"* BYE [UNAVAILABLE] Access denied: too many failed logins or connections from you"
)


@implementer(IAccount)
class _Account:
    """
    What a good IMAP login gives; the tests never open a folder.
    """


class _Session(IMAPSession):
    def login(self, credentials: Any) -> Any:
        if credentials.login == USER and credentials.password == PASSWORD:
            return _Account()
        raise S.AUTHENTICATION_FAILED


def _smtpCheck(info: object, credentials: Any) -> Any:
    if credentials.login == USER and credentials.password == PASSWORD:
        return USER
    raise smtpReplies.AUTH_FAILED


def _pop3Check(info: object, credentials: Any) -> Any:
    if credentials.login == USER and credentials.password == PASSWORD:
        return MemoryMaildrop([])
    raise pop3Replies.AUTH_FAILED


class AccessControlClientsTests(TestCase):
    """
    The three servers on loopback, one access control among them.
    """

    timeout = 120

    def setUp(self) -> None:
        self.events: list[AccessEvent] = []

    def serve(
        self, interface: str = "127.0.0.1", implicitTLS: bool = False, **settings: Any
    ) -> dict[str, int]:
        """
        Listen with the three servers on C{interface}, sharing a new access
        control made with C{settings} (the allow-list emptied unless
        given); plain-text logins allowed.

        @return: each protocol's port.
        """
        settings.setdefault("allow", ())
        self.control = IPAccessControl(reactor, notify=self.events.append, **settings)
        factories: dict[str, LimitedServerFactory] = {
            "smtp": SMTPServerFactory(
                SMTPFunctionBackend(authenticate=_smtpCheck),
                hostname="mx.test",
                allowPlaintextAuth=True,
                accessControl=self.control,
            ),
            "pop3": POP3ServerFactory(
                POP3FunctionBackend(login=_pop3Check),
                hostname="pop.test",
                allowPlaintextAuth=True,
                accessControl=self.control,
            ),
            "imap": IMAP4ServerFactory(
                IMAPBackend(_Session),
                hostname="imap.test",
                allowPlaintextAuth=True,
                accessControl=self.control,
            ),
        }
        ports = {}
        for name, factory in factories.items():
            self.addCleanup(self.closeAll, factory)
            if implicitTLS:
                port = reactor.listenSSL(
                    0,
                    factory,
                    serverContextFactory(*certificate()),
                    interface=interface,
                )
            else:
                port = reactor.listenTCP(0, factory, interface=interface)
            self.addCleanup(port.stopListening)
            ports[name] = int(port.getHost().port)
        self.factories = factories
        return ports

    def closeAll(self, factory: LimitedServerFactory) -> Deferred[None]:
        """
        Close a factory's connections; drop those that linger.
        """
        d = factory.shutdown()

        def abort(failure: Any) -> Any:
            factory.abortAll()
            return failure

        return d.addTimeout(TIMEOUT, reactor).addErrback(abort)

    def call(self, f: Callable[..., T], *args: Any) -> Deferred[T]:
        """
        Run blocking client code in a thread.
        """
        return deferToThread(f, *args)

    # The clients.

    @staticmethod
    def failSMTP(host: str, port: int, count: int) -> list[int]:
        """
        C{count} wrong AUTH PLAIN on one SMTP connection.

        @return: the reply codes.
        """
        codes = []
        with smtplib.SMTP(host, port, timeout=TIMEOUT) as client:
            client.ehlo("client.test")
            client.user, client.password = USER, "wrong"
            for _ in range(count):
                try:
                    client.auth("PLAIN", client.auth_plain)
                except smtplib.SMTPAuthenticationError as e:
                    codes.append(e.smtp_code)
        return codes

    @staticmethod
    def failPOP3(host: str, port: int, count: int) -> list[bytes]:
        """
        C{count} wrong USER and PASS on one POP3 connection.

        @return: the replies.
        """
        replies = []
        client = poplib.POP3(host, port, timeout=TIMEOUT)
        try:
            for _ in range(count):
                client.user(USER)
                try:
                    client.pass_("wrong")
                except poplib.error_proto as e:
                    replies.append(e.args[0])
        finally:
            client.close()
        return replies

    @staticmethod
    def failIMAP(host: str, port: int, count: int) -> list[bytes]:
        """
        C{count} wrong LOGIN on one IMAP connection.

        @return: the refusals' texts.
        """
        refusals = []
        client = imaplib.IMAP4(host, port, timeout=TIMEOUT)
        try:
            for _ in range(count):
                try:
                    client.login(USER, "wrong")
                except imaplib.IMAP4.error as e:
                    refusals.append(e.args[0])
        finally:
            client.shutdown()
        return refusals

    @staticmethod
    def greetings(host: str, ports: dict[str, int]) -> dict[str, object]:
        """
        Connect to each server; what each said, or the error each raised.
        """
        said: dict[str, object] = {}
        try:
            with smtplib.SMTP(host, ports["smtp"], timeout=TIMEOUT) as smtp:
                said["smtp"] = (220, smtp.ehlo()[0])
        except smtplib.SMTPConnectError as e:
            said["smtp"] = (e.smtp_code, e.smtp_error)
        try:
            pop3 = poplib.POP3(host, ports["pop3"], timeout=TIMEOUT)
            said["pop3"] = pop3.getwelcome()
            pop3.quit()
        except poplib.error_proto as e:
            said["pop3"] = e.args[0]
        try:
            imap = imaplib.IMAP4(host, ports["imap"], timeout=TIMEOUT)
            said["imap"] = imap.welcome
            imap.logout()
        except imaplib.IMAP4.error as e:
            said["imap"] = e.args[0]
        return said

    def assertBlocked(self, said: dict[str, object]) -> None:
        """
        Each server refused with its short error.
        """
        self.assertEqual(
            said, {"smtp": SMTP_BLOCKED, "pop3": POP3_BLOCKED, "imap": IMAP_BLOCKED}
        )

    def assertAdmitted(self, said: dict[str, object]) -> None:
        """
        Each server greeted.
        """
        self.assertEqual(said["smtp"], (220, 250))
        self.assertTrue(str(said["pop3"]).startswith("b'+OK "), said["pop3"])
        self.assertTrue(str(said["imap"]).startswith("b'* OK "), said["imap"])

    # The tests.

    async def test_thirtyFailuresBlockEveryProtocol(self) -> None:
        """
        Ten failed logins on each protocol, from one address, block it on
        all three: the next connection to each gets its short error.
        """
        ports = self.serve()
        host = "127.0.0.1"
        self.assertEqual(
            await self.call(self.failSMTP, host, ports["smtp"], 10), [535] * 10
        )
        replies = await self.call(self.failPOP3, host, ports["pop3"], 10)
        self.assertEqual(set(replies), {b"-ERR [AUTH] Authentication failed"})
        refusals = await self.call(self.failIMAP, host, ports["imap"], 10)
        self.assertEqual(len(refusals), 10)
        self.assertEqual([e.kind for e in self.events], [EventKind.IP_BLOCKED])
        self.assertBlocked(await self.call(self.greetings, host, ports))

    async def test_failuresOnOneProtocolBlockAll(self) -> None:
        """
        Thirty failed POP3 logins block SMTP and IMAP too.
        """
        ports = self.serve()
        for _ in range(3):
            await self.call(self.failPOP3, "127.0.0.1", ports["pop3"], 10)
        self.assertBlocked(await self.call(self.greetings, "127.0.0.1", ports))

    async def test_allowListedNeverBlocked(self) -> None:
        """
        With the default allow-list, loopback is never blocked, however
        many logins fail.
        """
        ports = self.serve(allow=("127.0.0.0/8", "::1/128"))
        for _ in range(4):
            await self.call(self.failIMAP, "127.0.0.1", ports["imap"], 10)
        self.assertEqual(self.events, [])
        self.assertAdmitted(await self.call(self.greetings, "127.0.0.1", ports))

    async def test_connectionsBlock(self) -> None:
        """
        With a small threshold, new connections on any server block the
        address once they reach it.
        """
        ports = self.serve(warnAfterConnections=2, blockAfterConnections=3)
        self.assertAdmitted(await self.call(self.greetings, "127.0.0.1", ports))
        self.assertEqual(
            [(e.kind, e.reason) for e in self.events],
            [
                (EventKind.IP_WARNED, "2 new connections"),
                (EventKind.IP_BLOCKED, "3 new connections"),
            ],
        )
        self.assertBlocked(await self.call(self.greetings, "127.0.0.1", ports))

    async def test_ipv6Loopback(self) -> None:
        """
        Over IPv6 (::1) failures block the address on every protocol.
        """
        ports = self.serve(interface="::1")
        for _ in range(3):
            await self.call(self.failSMTP, "::1", ports["smtp"], 10)
        self.assertEqual(self.events[-1].address, "::1")
        self.assertBlocked(await self.call(self.greetings, "::1", ports))

    async def test_implicitTLSDropped(self) -> None:
        """
        On implicit TLS (RFC 8314) a blocked peer's connection is dropped
        before the handshake: the client's handshake fails, and nothing
        was said to it.
        """
        ports = self.serve(implicitTLS=True)
        for _ in range(30):
            self.control.loginFailed("127.0.0.1")

        def connect() -> list[str]:
            outcomes = []
            for port in ports.values():
                try:
                    with ssl.create_connection(("127.0.0.1", port), TIMEOUT) as raw:
                        with clientContext().wrap_socket(
                            raw, server_hostname="127.0.0.1"
                        ) as tls:
                            outcomes.append(repr(tls.recv(100)))
                except OSError as e:
                    outcomes.append(type(e).__name__)
            return outcomes

        outcomes = await self.call(connect)
        self.assertEqual(len(outcomes), 3)
        for outcome in outcomes:
            self.assertIn(
                outcome,
                {
                    "ConnectionResetError",
                    "SSLEOFError",
                    "SSLZeroReturnError",
                    "SSLError",
                },
            )
        for factory in self.factories.values():
            self.assertEqual(factory.openConnections, 0)
