# -*- test-case-name: tests.test_smtp_clients -*-
"""
Tests for L{gomail_twisted.smtp} driven by the standard library's C{smtplib}
over real loopback sockets: plain text, STARTTLS, implicit TLS, AUTH,
SMTPUTF8, 8BITMIME and SIZE, as a real client sees them.

Each client runs in a thread (C{deferToThread}) while the server runs on the
real reactor; every socket call has a timeout, and every test waits for the
server side of its connections to close before it ends.
"""

from __future__ import annotations

import email.utils
import os
import re
import smtplib
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any, TypeVar

from twisted.internet import endpoints, reactor
from twisted.internet.defer import Deferred, DeferredQueue
from twisted.internet.interfaces import IListeningPort
from twisted.internet.threads import deferToThread
from twisted.trial.unittest import TestCase

from gomail_twisted.connection import LineServerProtocol, Refusal
from gomail_twisted.smtp import (
    ConnectionInfo,
    FunctionBackend,
    Greeting,
    MailFrom,
    ReceivedMessage,
    Recipient,
    SMTPCredentials,
    SMTPReply,
    SMTPServerFactory,
    replies,
)
from gomail_twisted.tls import TLSInfo, selfSignedCertificate, serverContextFactory

T = TypeVar("T")

HOST = "127.0.0.1"
HOSTNAME = "mx.test"
CLIENT_NAME = "client.test"
#: Seconds any one socket operation of the client may take.
TIMEOUT = 10.0
SENDER = "sender@example.test"
REFUSED = "nobody@example.test"
USER = "alice"
PASSWORD = "correct horse battery staple"
SIZE_LIMIT = 4000

MESSAGE = (
    b"From: Sender <sender@example.test>\r\n"
    b"To: Alice <alice@example.test>\r\n"
    b"Subject: Hello\r\n"
    b"\r\n"
    b"Hello, world.\r\n"
)

GREETING = (220, b"mx.test ESMTP gomail_twisted")
HELLO = b"mx.test Hello client.test [127.0.0.1]"
BASE_CAPABILITIES = [
    b"PIPELINING",
    b"SIZE %d" % (SIZE_LIMIT,),
    b"8BITMIME",
    b"SMTPUTF8",
    b"ENHANCEDSTATUSCODES",
]

_TRACE = re.compile(
    rb"Received: from (?P<helo>[^ \r\n]+) \(\[(?P<peer>[^]\r\n]+)\]\)\r\n"
    rb"(?:\t\((?P<tls>[^)\r\n]*)\)\r\n)?"
    rb"\tby mx\.test \(gomail_twisted\) with (?P<protocol>[A-Z0-9]+)"
    rb" id (?P<id>[0-9A-F]+)"
    rb"(?:\r\n\tfor <(?P<for>[^>\r\n]*)>)?;\r\n"
    rb"\t(?P<date>[^\r\n]+)\r\n"
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
    assert context.check_hostname
    assert context.verify_mode == ssl.CERT_REQUIRED
    return context


def ehloText(*extra: bytes) -> bytes:
    """
    The EHLO reply text smtplib returns: our greeting line, the base
    capabilities, C{extra}, then HELP.
    """
    return b"\n".join([HELLO, *BASE_CAPABILITIES, *extra, b"HELP"])


@dataclass
class Trace:
    """
    A message's C{Received:} header, taken apart.
    """

    helo: bytes
    peer: bytes
    tls: bytes | None
    protocol: bytes
    queueID: str
    recipient: bytes | None
    date: bytes


def splitTrace(raw: bytes) -> tuple[Trace, bytes]:
    """
    Split a received message into its trace header and the bytes the
    client sent.

    @raise AssertionError: when the message does not start with our
        C{Received:} header.
    """
    match = _TRACE.match(raw)
    if match is None:
        raise AssertionError(f"no Received header at the start of {raw[:300]!r}")
    trace = Trace(
        helo=match["helo"],
        peer=match["peer"],
        tls=match["tls"],
        protocol=match["protocol"],
        queueID=match["id"].decode("ascii"),
        recipient=match["for"],
        date=match["date"],
    )
    return trace, raw[match.end() :]


@dataclass(frozen=True)
class Call:
    """
    One hook call: its name, the session's connection, and its value.
    """

    name: str
    info: ConnectionInfo
    value: Any


Hook = Callable[[ConnectionInfo, Any], Any]


class Recorder:
    """
    Hooks that record what they receive: every recipient but L{REFUSED} is
    accepted, every message taken, and only L{USER} with L{PASSWORD} may log
    in.

    @ivar calls: every hook call, in order.
    """

    def __init__(self) -> None:
        self.calls: list[Call] = []

    def record(self, name: str, info: ConnectionInfo, value: Any) -> None:
        """
        Note one hook call.
        """
        self.calls.append(Call(name, info, value))

    def connect(self, info: ConnectionInfo) -> None:
        """
        A session starts.
        """
        self.record("connect", info, None)

    def helo(self, info: ConnectionInfo, greeting: Greeting) -> None:
        """
        Accept any greeting.
        """
        self.record("helo", info, greeting)

    def authenticate(self, info: ConnectionInfo, credentials: SMTPCredentials) -> None:
        """
        Accept L{USER} with L{PASSWORD} only.
        """
        self.record("authenticate", info, credentials)
        if (credentials.login, credentials.password) != (USER, PASSWORD):
            raise replies.AUTH_FAILED

    def mailFrom(self, info: ConnectionInfo, sender: MailFrom) -> None:
        """
        Accept any sender.
        """
        self.record("mailFrom", info, sender)

    def rcptTo(self, info: ConnectionInfo, recipient: Recipient) -> None:
        """
        Accept all recipients but L{REFUSED}.
        """
        self.record("rcptTo", info, recipient)
        if recipient.address == REFUSED:
            raise replies.UNKNOWN_RECIPIENT

    def headers(self, info: ConnectionInfo, headers: Any) -> None:
        """
        Accept any header block.
        """
        self.record("headers", info, headers)

    def message(self, info: ConnectionInfo, message: ReceivedMessage) -> None:
        """
        Take the message.
        """
        self.record("message", info, message)

    def reset(self, info: ConnectionInfo, value: None) -> None:
        """
        A transaction was abandoned.
        """
        self.record("reset", info, value)

    def logout(self, info: ConnectionInfo, value: None) -> None:
        """
        A session ends.
        """
        self.record("logout", info, value)

    def backend(self, auth: bool = False, **overrides: Hook) -> FunctionBackend:
        """
        A backend calling these hooks (AUTH offered only with C{auth}), some
        replaced by C{overrides}.
        """
        hooks: dict[str, Any] = {
            "connect": self.connect,
            "helo": self.helo,
            "authenticate": self.authenticate if auth else None,
            "mailFrom": self.mailFrom,
            "rcptTo": self.rcptTo,
            "headers": self.headers,
            "message": self.message,
            "reset": self.reset,
            "logout": self.logout,
        }
        hooks.update(overrides)
        return FunctionBackend(**hooks)

    def names(self) -> list[str]:
        """
        The names of the hooks called, in order.
        """
        return [c.name for c in self.calls]

    def values(self, name: str) -> list[Any]:
        """
        What one hook received, in order.
        """
        return [c.value for c in self.calls if c.name == name]

    @property
    def messages(self) -> list[ReceivedMessage]:
        """
        The messages delivered.
        """
        return self.values("message")


class TrackingFactory(SMTPServerFactory):
    """
    An L{SMTPServerFactory} that knows its open connections, so that a test
    can wait for the server side of each to close.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.openProtocols: set[LineServerProtocol] = set()
        self._waiting: list[Deferred[None]] = []

    def admit(self, protocol: LineServerProtocol) -> Refusal | None:
        self.openProtocols.add(protocol)
        return super().admit(protocol)

    def connectionClosed(self, protocol: LineServerProtocol) -> None:
        super().connectionClosed(protocol)
        self.openProtocols.discard(protocol)
        if not self.openProtocols:
            reactor.callLater(0, self._fire)

    def _fire(self) -> None:
        if not self.openProtocols:
            waiting, self._waiting = self._waiting, []
            for d in waiting:
                d.callback(None)

    def whenClosed(self) -> Deferred[None]:
        """
        @return: a Deferred that fires once no connection is open.
        """
        d: Deferred[None] = Deferred()
        if self.openProtocols:
            self._waiting.append(d)
        else:
            d.callback(None)
        return d


def later(hook: Hook) -> Hook:
    """
    Wrap a hook so that it answers with a Deferred fired on a later turn of
    the reactor with the hook's outcome.
    """

    def delayed(info: ConnectionInfo, value: Any) -> Deferred[Any]:
        d: Deferred[Any] = Deferred()

        def fire() -> None:
            try:
                result = hook(info, value)
            except BaseException:
                d.errback()
            else:
                d.callback(result)

        reactor.callLater(0, fire)
        return d

    return delayed


class SMTPClientTests(TestCase):
    """
    The server as C{smtplib} sees it.
    """

    timeout = 30

    def setUp(self) -> None:
        self.recorder = Recorder()

    def makeFactory(
        self,
        backend: FunctionBackend | None = None,
        *,
        tls: bool = False,
        auth: bool = False,
        **kwargs: Any,
    ) -> TrackingFactory:
        """
        A server factory for our recorder, with the test certificate for
        STARTTLS if C{tls}; its connections are waited for at cleanup.
        """
        factory = TrackingFactory(
            backend or self.recorder.backend(auth=auth),
            hostname=HOSTNAME,
            tls=serverContextFactory(*certificate()) if tls else None,
            maxMessageSize=SIZE_LIMIT,
            **kwargs,
        )

        def closed() -> Deferred[None]:
            def abort(failure: Any) -> Any:
                # The server kept a connection the client closed: report
                # it, without leaving the reactor dirty for other tests.
                for protocol in list(factory.openProtocols):
                    if protocol.transport is not None:
                        protocol.transport.abortConnection()  # type: ignore[attr-defined]
                return failure

            return factory.whenClosed().addTimeout(5, reactor).addErrback(abort)

        self.addCleanup(closed)
        return factory

    def listen(self, factory: TrackingFactory) -> int:
        """
        Serve C{factory} in plain text on a loopback port.

        @return: the port number.
        """
        port = reactor.listenTCP(0, factory, interface=HOST)
        self.addCleanup(port.stopListening)
        return int(port.getHost().port)  # type: ignore[attr-defined]

    async def listenImplicitTLS(self, factory: TrackingFactory) -> int:
        """
        Serve C{factory} with implicit TLS (RFC 8314) on a loopback port.

        @return: the port number.
        """
        endpoint = endpoints.SSL4ServerEndpoint(
            reactor, 0, serverContextFactory(*certificate()), interface=HOST
        )
        port: IListeningPort = await endpoint.listen(factory)
        self.addCleanup(port.stopListening)
        return int(port.getHost().port)  # type: ignore[attr-defined]

    async def inThread(self, f: Callable[[], T]) -> T:
        """
        Run a blocking client in a thread.
        """
        return await deferToThread(f)

    def assertTrace(
        self,
        message: ReceivedMessage,
        protocol: bytes,
        recipient: bytes | None,
        tls: bytes | None = None,
    ) -> bytes:
        """
        Check a message's C{Received:} header.

        @return: the message as the client sent it.
        """
        trace, sent = splitTrace(message.raw)
        self.assertEqual(
            (trace.helo, trace.peer, trace.protocol, trace.recipient, trace.tls),
            (CLIENT_NAME.encode(), HOST.encode(), protocol, recipient, tls),
        )
        self.assertEqual(trace.queueID, message.queueID)
        received = email.utils.parsedate_to_datetime(trace.date.decode("ascii"))
        self.assertLess(abs(received.timestamp() - time.time()), 60)
        return sent

    # Plain text.

    async def test_sendmailDeliversToAcceptedRecipients(self) -> None:
        """
        sendmail gets the refused recipient back in its dict, and the message
        is delivered once, byte for byte, to the accepted ones.
        """
        factory = self.makeFactory()
        port = self.listen(factory)
        recipients = ["alice@example.test", REFUSED, "bob@example.test"]

        def client() -> tuple[tuple[int, bytes], dict[str, tuple[int, bytes]]]:
            with smtplib.SMTP(local_hostname=CLIENT_NAME, timeout=TIMEOUT) as s:
                greeting = s.connect(HOST, port)
                return greeting, s.sendmail(SENDER, recipients, MESSAGE)

        greeting, refused = await self.inThread(client)
        await factory.whenClosed()
        self.assertEqual(greeting, GREETING)
        self.assertEqual(refused, {REFUSED: (550, b"5.1.1 No such recipient here")})
        [message] = self.recorder.messages
        self.assertEqual(self.assertTrace(message, b"ESMTP", None), MESSAGE)
        self.assertEqual(message.envelope.sender, SENDER)
        self.assertEqual(
            [r.address for r in message.envelope.recipients],
            ["alice@example.test", "bob@example.test"],
        )
        self.assertEqual(message.envelope.mailFrom.size, len(MESSAGE))
        self.assertIsNone(message.login)
        self.assertIsNone(message.connection.tls)
        self.assertEqual(
            (message.connection.peerHost, message.connection.localHost),
            (HOST, HOST),
        )
        self.assertEqual(message.connection.localPort, port)
        [headers] = self.recorder.values("headers")
        self.assertEqual(headers.raw, MESSAGE[: MESSAGE.index(b"\r\n\r\n") + 2])
        self.assertEqual(
            self.recorder.names(),
            ["connect", "helo"]
            + ["mailFrom"]
            + ["rcptTo"] * 3
            + ["headers", "message", "logout"],
        )
        self.assertEqual(
            self.recorder.values("helo"), [Greeting(CLIENT_NAME, extended=True)]
        )

    async def test_ipv6Loopback(self) -> None:
        """
        Over IPv6 the hooks see the client's address and the trace header
        names it as an IPv6 address literal (RFC 5321 4.1.3).
        """
        factory = self.makeFactory()
        port = reactor.listenTCP(0, factory, interface="::1")
        self.addCleanup(port.stopListening)
        number = int(port.getHost().port)  # type: ignore[attr-defined]

        def client() -> dict[str, tuple[int, bytes]]:
            with smtplib.SMTP(local_hostname=CLIENT_NAME, timeout=TIMEOUT) as s:
                s.connect("::1", number)
                return s.sendmail(SENDER, ["alice@example.test"], MESSAGE)

        self.assertEqual(await self.inThread(client), {})
        await factory.whenClosed()
        [message] = self.recorder.messages
        self.assertEqual(message.connection.peerHost, "::1")
        self.assertEqual(message.connection.localHost, "::1")
        self.assertTrue(
            message.raw.startswith(
                b"Received: from " + CLIENT_NAME.encode() + b" ([IPv6:::1])\r\n"
            ),
            message.raw[:80],
        )

    async def test_dotStuffingRoundTrip(self) -> None:
        """
        Lines starting with a dot, a line that is just a dot and a body
        without a final CRLF arrive exactly as the client meant them.
        """
        port = self.listen(self.makeFactory())
        bodies = [
            b"Subject: dots\r\n\r\n.hidden\r\n.\r\n..two\r\nmid . dle\r\n...\r\nend",
            b".first line starts with a dot\r\n\r\n.\r\n.",
            b"Subject: ends with a dot line\r\n\r\n.\r\n",
        ]

        def client() -> list[dict[str, tuple[int, bytes]]]:
            with smtplib.SMTP(HOST, port, CLIENT_NAME, timeout=TIMEOUT) as s:
                return [s.sendmail(SENDER, ["alice@example.test"], b) for b in bodies]

        self.assertEqual(await self.inThread(client), [{}, {}, {}])
        received = [
            self.assertTrace(m, b"ESMTP", b"alice@example.test")
            for m in self.recorder.messages
        ]
        self.assertEqual(
            received,
            [
                bodies[0] + b"\r\n",
                bodies[1] + b"\r\n",
                bodies[2],
            ],
        )

    async def test_heloSessionHasNoEnhancedCodes(self) -> None:
        """
        After HELO the replies carry no enhanced status codes and the trace
        says SMTP.
        """
        port = self.listen(self.makeFactory())

        def client() -> list[tuple[int, bytes]]:
            with smtplib.SMTP(HOST, port, CLIENT_NAME, timeout=TIMEOUT) as s:
                return [
                    s.helo(),
                    s.mail(SENDER),
                    s.rcpt(REFUSED),
                    s.rcpt("alice@example.test"),
                    s.data(MESSAGE),
                ]

        replies_ = await self.inThread(client)
        [message] = self.recorder.messages
        self.assertEqual(
            replies_,
            [
                (250, HELLO),
                (250, b"Sender OK"),
                (550, b"No such recipient here"),
                (250, b"Recipient OK"),
                (250, f"OK: queued as {message.queueID}".encode()),
            ],
        )
        self.assertEqual(
            self.assertTrace(message, b"SMTP", b"alice@example.test"), MESSAGE
        )
        self.assertEqual(
            self.recorder.values("helo"), [Greeting(CLIENT_NAME, extended=False)]
        )

    async def test_rsetThenSecondTransaction(self) -> None:
        """
        After RSET a second transaction on the same connection has only its
        own recipients, and the 250 after DATA names the queue ID.
        """
        port = self.listen(self.makeFactory())
        other = "other@example.test"

        def client() -> list[tuple[int, bytes]]:
            with smtplib.SMTP(HOST, port, CLIENT_NAME, timeout=TIMEOUT) as s:
                return [
                    s.ehlo(),
                    s.mail(SENDER),
                    s.rcpt("alice@example.test"),
                    s.rcpt("bob@example.test"),
                    s.rset(),
                    s.rcpt("dave@example.test"),
                    s.mail(other),
                    s.rcpt("carol@example.test"),
                    s.data(MESSAGE),
                ]

        got = await self.inThread(client)
        [message] = self.recorder.messages
        self.assertEqual(
            got[1:],
            [
                (250, b"2.1.0 Sender OK"),
                (250, b"2.1.5 Recipient OK"),
                (250, b"2.1.5 Recipient OK"),
                (250, b"2.0.0 Reset OK"),
                (503, b"5.5.1 Need MAIL before RCPT"),
                (250, b"2.1.0 Sender OK"),
                (250, b"2.1.5 Recipient OK"),
                (250, f"2.0.0 OK: queued as {message.queueID}".encode()),
            ],
        )
        self.assertEqual(message.envelope.sender, other)
        self.assertEqual(
            message.envelope.recipients, (Recipient("carol@example.test"),)
        )
        self.assertEqual(
            self.assertTrace(message, b"ESMTP", b"carol@example.test"), MESSAGE
        )
        self.assertEqual(self.recorder.names().count("reset"), 1)

    # EHLO.

    async def test_ehloCapabilitiesWithoutTLS(self) -> None:
        """
        Without TLS configured EHLO offers neither STARTTLS nor AUTH, even to
        a backend that can authenticate.
        """
        port = self.listen(self.makeFactory(auth=True))

        def client() -> tuple[tuple[int, bytes], bool]:
            with smtplib.SMTP(HOST, port, CLIENT_NAME, timeout=TIMEOUT) as s:
                return s.ehlo(), s.has_extn("auth")

        self.assertEqual(await self.inThread(client), ((250, ehloText()), False))

    async def test_ehloCapabilitiesWithTLS(self) -> None:
        """
        With TLS configured EHLO offers STARTTLS (and not AUTH) before TLS,
        and AUTH (and not STARTTLS) after it.
        """
        port = self.listen(self.makeFactory(tls=True, auth=True))

        def client() -> list[tuple[int, bytes]]:
            with smtplib.SMTP(HOST, port, CLIENT_NAME, timeout=TIMEOUT) as s:
                before = s.ehlo()
                starttls = s.starttls(context=clientContext())
                return [before, starttls, s.ehlo()]

        self.assertEqual(
            await self.inThread(client),
            [
                (250, ehloText(b"STARTTLS")),
                (220, b"2.0.0 Ready to start TLS"),
                (250, ehloText(b"AUTH PLAIN LOGIN")),
            ],
        )

    async def test_ehloTLSWithoutAuthBackend(self) -> None:
        """
        A backend that cannot authenticate gets STARTTLS advertised but never
        AUTH, and AUTH is answered 502 5.5.1.
        """
        port = self.listen(self.makeFactory(tls=True))

        def client() -> list[tuple[int, bytes]]:
            with smtplib.SMTP(HOST, port, CLIENT_NAME, timeout=TIMEOUT) as s:
                before = s.ehlo()
                s.starttls(context=clientContext())
                return [before, s.ehlo(), s.docmd("AUTH", "PLAIN")]

        self.assertEqual(
            await self.inThread(client),
            [
                (250, ehloText(b"STARTTLS")),
                (250, ehloText()),
                (502, b"5.5.1 Command not implemented"),
            ],
        )

    async def test_plaintextAuthWhenAllowed(self) -> None:
        """
        With allowPlaintextAuth, AUTH is advertised without TLS and a login
        over plain text reaches the message.
        """
        port = self.listen(self.makeFactory(auth=True, allowPlaintextAuth=True))

        def client() -> tuple[tuple[int, bytes], tuple[int, bytes]]:
            with smtplib.SMTP(HOST, port, CLIENT_NAME, timeout=TIMEOUT) as s:
                ehlo = s.ehlo()
                login = s.login(USER, PASSWORD)
                s.sendmail(SENDER, ["alice@example.test"], MESSAGE)
                return ehlo, login

        ehlo, login = await self.inThread(client)
        self.assertEqual(ehlo, (250, ehloText(b"AUTH PLAIN LOGIN")))
        self.assertEqual(login, (235, b"2.7.0 Authentication successful"))
        [message] = self.recorder.messages
        self.assertEqual(message.login, USER)
        self.assertIsNone(message.connection.tls)
        self.assertEqual(
            self.assertTrace(message, b"ESMTPA", b"alice@example.test"), MESSAGE
        )

    # STARTTLS and AUTH.

    async def authOverTLS(
        self, mechanism: str, initialResponse: bool
    ) -> tuple[list[tuple[int, bytes]], str, str]:
        """
        STARTTLS, EHLO, AUTH with C{mechanism}, then send L{MESSAGE}.

        @return: the replies to STARTTLS and AUTH, and the TLS version and
            cipher the client negotiated.
        """
        port = self.listen(self.makeFactory(tls=True, auth=True))

        def client() -> tuple[list[tuple[int, bytes]], str, str]:
            with smtplib.SMTP(HOST, port, CLIENT_NAME, timeout=TIMEOUT) as s:
                starttls = s.starttls(context=clientContext())
                assert isinstance(s.sock, ssl.SSLSocket)
                version, cipher = s.sock.version(), s.sock.cipher()
                assert version is not None and cipher is not None
                s.ehlo()
                s.user, s.password = USER, PASSWORD
                method = s.auth_plain if mechanism == "PLAIN" else s.auth_login
                auth = s.auth(mechanism, method, initial_response_ok=initialResponse)
                s.sendmail(SENDER, ["alice@example.test"], MESSAGE)
                return [starttls, auth], version, cipher[0]

        got, version, cipher = await self.inThread(client)
        self.assertEqual(
            got,
            [
                (220, b"2.0.0 Ready to start TLS"),
                (235, b"2.7.0 Authentication successful"),
            ],
        )
        self.assertEqual(
            self.recorder.values("authenticate"),
            [SMTPCredentials(mechanism, USER, PASSWORD)],
        )
        [message] = self.recorder.messages
        self.assertEqual(message.login, USER)
        self.assertEqual(message.connection.tls, TLSInfo(version, cipher))
        comment = f"using {version} with cipher {cipher}".encode()
        self.assertEqual(
            self.assertTrace(message, b"ESMTPSA", b"alice@example.test", comment),
            MESSAGE,
        )
        return got, version, cipher

    async def test_authPlainWithInitialResponse(self) -> None:
        """
        After STARTTLS, AUTH PLAIN with the initial response logs in and the
        message carries the login and the TLS facts.
        """
        await self.authOverTLS("PLAIN", initialResponse=True)

    async def test_authPlainAfterChallenge(self) -> None:
        """
        After STARTTLS, AUTH PLAIN answered after an empty 334 challenge logs
        in.
        """
        await self.authOverTLS("PLAIN", initialResponse=False)

    async def test_authLoginWithInitialResponse(self) -> None:
        """
        After STARTTLS, AUTH LOGIN with the user name as initial response
        logs in.
        """
        await self.authOverTLS("LOGIN", initialResponse=True)

    async def test_authLoginAfterChallenges(self) -> None:
        """
        After STARTTLS, AUTH LOGIN answering the Username: and Password:
        challenges logs in.
        """
        await self.authOverTLS("LOGIN", initialResponse=False)

    async def test_smtplibLogin(self) -> None:
        """
        smtplib's own login, choosing among the advertised mechanisms, logs
        in over STARTTLS.
        """
        port = self.listen(self.makeFactory(tls=True, auth=True))

        def client() -> tuple[int, bytes]:
            with smtplib.SMTP(HOST, port, CLIENT_NAME, timeout=TIMEOUT) as s:
                s.starttls(context=clientContext())
                return s.login(USER, PASSWORD)

        self.assertEqual(
            await self.inThread(client), (235, b"2.7.0 Authentication successful")
        )
        [credentials] = self.recorder.values("authenticate")
        self.assertEqual((credentials.login, credentials.password), (USER, PASSWORD))

    async def test_wrongPasswordRefused(self) -> None:
        """
        A wrong password is refused 535 5.7.8 and the client may try again
        on the same connection.
        """
        port = self.listen(self.makeFactory(tls=True, auth=True))

        def client() -> tuple[smtplib.SMTPAuthenticationError, tuple[int, bytes]]:
            with smtplib.SMTP(HOST, port, CLIENT_NAME, timeout=TIMEOUT) as s:
                s.starttls(context=clientContext())
                s.ehlo()
                s.user, s.password = USER, "wrong"
                try:
                    s.auth("PLAIN", s.auth_plain)
                except smtplib.SMTPAuthenticationError as e:
                    error = e
                else:
                    raise AssertionError("wrong password accepted")
                s.password = PASSWORD
                return error, s.auth("LOGIN", s.auth_login, initial_response_ok=False)

        error, retry = await self.inThread(client)
        self.assertEqual(
            (error.smtp_code, error.smtp_error),
            (535, b"5.7.8 Authentication credentials invalid"),
        )
        self.assertEqual(retry, (235, b"2.7.0 Authentication successful"))
        self.assertEqual(
            self.recorder.values("authenticate"),
            [
                SMTPCredentials("PLAIN", USER, "wrong"),
                SMTPCredentials("LOGIN", USER, PASSWORD),
            ],
        )

    async def test_authRefusedBeforeTLS(self) -> None:
        """
        Before STARTTLS, AUTH is not advertised, smtplib's login refuses to
        try, and a forced AUTH is answered 538 5.7.11 without asking the
        hook.
        """
        port = self.listen(self.makeFactory(tls=True, auth=True))

        def client() -> tuple[bool, Exception, smtplib.SMTPAuthenticationError]:
            with smtplib.SMTP(HOST, port, CLIENT_NAME, timeout=TIMEOUT) as s:
                s.ehlo()
                advertised = s.has_extn("auth")
                try:
                    s.login(USER, PASSWORD)
                except smtplib.SMTPNotSupportedError as e:
                    notSupported: Exception = e
                else:
                    raise AssertionError("login succeeded before TLS")
                s.user, s.password = USER, PASSWORD
                try:
                    s.auth("PLAIN", s.auth_plain)
                except smtplib.SMTPAuthenticationError as e:
                    return advertised, notSupported, e
                raise AssertionError("AUTH PLAIN accepted before TLS")

        advertised, notSupported, error = await self.inThread(client)
        self.assertFalse(advertised)
        self.assertIsInstance(notSupported, smtplib.SMTPNotSupportedError)
        self.assertEqual(
            (error.smtp_code, error.smtp_error),
            (538, b"5.7.11 Encryption required for requested authentication mechanism"),
        )
        self.assertEqual(self.recorder.values("authenticate"), [])

    async def test_starttlsStartsSessionOver(self) -> None:
        """
        After STARTTLS the client must greet again, the hooks see a new
        session with the TLS facts, and STARTTLS is not offered twice.
        """
        factory = self.makeFactory(tls=True, auth=True)
        port = self.listen(factory)

        def client() -> tuple[list[tuple[int, bytes]], str, str]:
            with smtplib.SMTP(HOST, port, CLIENT_NAME, timeout=TIMEOUT) as s:
                s.ehlo()
                s.starttls(context=clientContext())
                assert isinstance(s.sock, ssl.SSLSocket)
                version, cipher = s.sock.version(), s.sock.cipher()
                assert version is not None and cipher is not None
                got = [
                    s.docmd("MAIL", f"FROM:<{SENDER}>"),
                    s.ehlo(),
                    s.docmd("STARTTLS"),
                    s.mail(SENDER),
                ]
                return got, version, cipher[0]

        got, version, cipher = await self.inThread(client)
        await factory.whenClosed()
        self.assertEqual(
            got,
            [
                (503, b"Send HELO or EHLO first"),
                (250, ehloText(b"AUTH PLAIN LOGIN")),
                (503, b"5.5.1 TLS already active"),
                (250, b"2.1.0 Sender OK"),
            ],
        )
        tls = TLSInfo(version, cipher)
        self.assertEqual(
            [(c.name, c.info.tls) for c in self.recorder.calls if c.name != "reset"],
            [
                ("connect", None),
                ("helo", None),
                ("logout", None),
                ("connect", tls),
                ("helo", tls),
                ("mailFrom", tls),
                ("logout", tls),
            ],
        )
        [mailFrom] = self.recorder.values("mailFrom")
        self.assertEqual(mailFrom.heloName, CLIENT_NAME)
        self.assertIsNone(mailFrom.login)

    async def test_starttlsForgetsPlaintextLogin(self) -> None:
        """
        A login made in plain text (allowed by the operator) is forgotten by
        STARTTLS: AUTH is offered again and the next message has no login.
        """
        port = self.listen(
            self.makeFactory(tls=True, auth=True, allowPlaintextAuth=True)
        )

        def client() -> list[tuple[int, bytes]]:
            with smtplib.SMTP(HOST, port, CLIENT_NAME, timeout=TIMEOUT) as s:
                before = s.ehlo()
                login = s.login(USER, PASSWORD)
                s.starttls(context=clientContext())
                after = s.ehlo()
                s.sendmail(SENDER, ["alice@example.test"], MESSAGE)
                return [before, login, after]

        self.assertEqual(
            await self.inThread(client),
            [
                (250, ehloText(b"STARTTLS", b"AUTH PLAIN LOGIN")),
                (235, b"2.7.0 Authentication successful"),
                (250, ehloText(b"AUTH PLAIN LOGIN")),
            ],
        )
        [message] = self.recorder.messages
        self.assertIsNone(message.login)
        self.assertIsNone(message.envelope.mailFrom.login)
        self.assertIsNotNone(message.connection.tls)
        self.assertEqual(splitTrace(message.raw)[0].protocol, b"ESMTPS")

    async def test_implicitTLS(self) -> None:
        """
        The same factory behind an SSL endpoint greets after the handshake,
        offers AUTH and no STARTTLS, and delivers with the TLS facts.
        """
        factory = self.makeFactory(tls=True, auth=True)
        port = await self.listenImplicitTLS(factory)

        def client() -> tuple[list[tuple[int, bytes]], str, str]:
            # The constructor connects (verifying 127.0.0.1 against the
            # certificate) and insists on a 220 greeting.
            with smtplib.SMTP_SSL(
                HOST, port, CLIENT_NAME, timeout=TIMEOUT, context=clientContext()
            ) as s:
                assert isinstance(s.sock, ssl.SSLSocket)
                version, cipher = s.sock.version(), s.sock.cipher()
                assert version is not None and cipher is not None
                got = [s.ehlo(), s.login(USER, PASSWORD)]
                s.sendmail(SENDER, ["alice@example.test"], MESSAGE)
                return got, version, cipher[0]

        got, version, cipher = await self.inThread(client)
        self.assertEqual(
            got,
            [
                (250, ehloText(b"AUTH PLAIN LOGIN")),
                (235, b"2.7.0 Authentication successful"),
            ],
        )
        [message] = self.recorder.messages
        self.assertEqual(message.connection.tls, TLSInfo(version, cipher))
        self.assertEqual(message.login, USER)
        comment = f"using {version} with cipher {cipher}".encode()
        self.assertEqual(
            self.assertTrace(message, b"ESMTPSA", b"alice@example.test", comment),
            MESSAGE,
        )
        self.assertEqual(self.recorder.names().count("connect"), 1)

    async def test_implicitTLSFromEndpointString(self) -> None:
        """
        An C{ssl:} endpoint string with PEM files, as an operator writes it,
        serves implicit TLS that smtplib verifies.
        """
        key, cert = certificate()
        directory = self.mktemp()
        os.makedirs(directory)
        keyPath = os.path.join(directory, "key.pem")
        certPath = os.path.join(directory, "cert.pem")
        with open(keyPath, "wb") as f:
            f.write(key)
        with open(certPath, "wb") as f:
            f.write(cert)
        endpoint = endpoints.serverFromString(
            reactor,
            f"ssl:0:interface={HOST}:privateKey={keyPath}:certKey={certPath}",
        )
        listening: IListeningPort = await endpoint.listen(self.makeFactory())
        self.addCleanup(listening.stopListening)
        port = listening.getHost().port  # type: ignore[attr-defined]

        def client() -> dict[str, tuple[int, bytes]]:
            with smtplib.SMTP_SSL(
                HOST, port, CLIENT_NAME, timeout=TIMEOUT, context=clientContext()
            ) as s:
                return s.sendmail(SENDER, ["alice@example.test"], MESSAGE)

        self.assertEqual(await self.inThread(client), {})
        [message] = self.recorder.messages
        self.assertIsNotNone(message.connection.tls)
        self.assertEqual(splitTrace(message.raw)[0].protocol, b"ESMTPS")

    # SMTPUTF8 and 8BITMIME.

    async def test_smtputf8AddressAccepted(self) -> None:
        """
        With SMTPUTF8 a UTF-8 sender and recipient are accepted and reach
        the hooks, and the trace says UTF8SMTP.
        """
        port = self.listen(self.makeFactory())
        sender = "sénder@exämple.test"
        recipient = "üser@exämple.test"
        body = (
            "From: <sénder@exämple.test>\r\nSubject: héllo\r\n\r\nÜnïcode\r\n"
        ).encode()

        def client() -> dict[str, tuple[int, bytes]]:
            with smtplib.SMTP(HOST, port, CLIENT_NAME, timeout=TIMEOUT) as s:
                return s.sendmail(sender, [recipient], body, mail_options=["SMTPUTF8"])

        self.assertEqual(await self.inThread(client), {})
        [message] = self.recorder.messages
        self.assertEqual(message.envelope.sender, sender)
        self.assertTrue(message.envelope.mailFrom.smtputf8)
        self.assertEqual(message.envelope.recipients, (Recipient(recipient),))
        self.assertEqual(
            self.assertTrace(message, b"UTF8SMTP", recipient.encode()), body
        )
        self.assertEqual(message.headers.get("subject"), "héllo")

    async def test_utf8AddressWithoutSMTPUTF8Refused(self) -> None:
        """
        Without SMTPUTF8 a UTF-8 sender or recipient is refused 553 5.6.7 and
        never reaches the hooks.
        """
        port = self.listen(self.makeFactory())
        address = "üser@exämple.test"

        def client() -> list[tuple[int, bytes]]:
            with smtplib.SMTP(HOST, port, CLIENT_NAME, timeout=TIMEOUT) as s:
                s.ehlo()
                # smtplib would not encode it; send the UTF-8 bytes anyway.
                s.command_encoding = "utf-8"
                return [
                    s.docmd("MAIL", f"FROM:<{address}>"),
                    s.docmd("MAIL", f"FROM:<{SENDER}>"),
                    s.docmd("RCPT", f"TO:<{address}>"),
                ]

        refused = (553, b"5.6.7 Non-ASCII address requires the SMTPUTF8 parameter")
        self.assertEqual(
            await self.inThread(client),
            [refused, (250, b"2.1.0 Sender OK"), refused],
        )
        self.assertEqual(self.recorder.values("rcptTo"), [])
        self.assertEqual(
            [m.address for m in self.recorder.values("mailFrom")], [SENDER]
        )

    async def test_8bitmimeBodyUnchanged(self) -> None:
        """
        With BODY=8BITMIME every 8-bit octet of the body is delivered
        unchanged and the hook sees the BODY parameter.
        """
        port = self.listen(self.makeFactory())
        body = (
            b"Subject: 8bit\r\nContent-Type: text/plain; charset=latin-1\r\n"
            b"Content-Transfer-Encoding: 8bit\r\n\r\n"
            + bytes(range(0x80, 0x100))
            + b"\r\n\xe9t\xe9 \xff\r\n"
        )

        def client() -> dict[str, tuple[int, bytes]]:
            with smtplib.SMTP(HOST, port, CLIENT_NAME, timeout=TIMEOUT) as s:
                return s.sendmail(
                    SENDER, ["alice@example.test"], body, mail_options=["BODY=8BITMIME"]
                )

        self.assertEqual(await self.inThread(client), {})
        [message] = self.recorder.messages
        self.assertEqual(
            self.assertTrace(message, b"ESMTP", b"alice@example.test"), body
        )
        mailFrom = message.envelope.mailFrom
        self.assertEqual(mailFrom.body, "8BITMIME")
        self.assertEqual(
            dict(mailFrom.params), {"SIZE": str(len(body)), "BODY": "8BITMIME"}
        )

    # SIZE.

    async def test_declaredSizeOverLimitRefused(self) -> None:
        """
        A SIZE over the limit is refused at MAIL with 552 5.3.4; a message of
        exactly the limit is accepted.
        """
        port = self.listen(self.makeFactory())
        big = self.messageOfSize(SIZE_LIMIT + 1)
        exact = self.messageOfSize(SIZE_LIMIT)

        def client() -> tuple[smtplib.SMTPSenderRefused, dict[str, Any]]:
            with smtplib.SMTP(HOST, port, CLIENT_NAME, timeout=TIMEOUT) as s:
                try:
                    s.sendmail(SENDER, ["alice@example.test"], big)
                except smtplib.SMTPSenderRefused as e:
                    error = e
                else:
                    raise AssertionError("oversized message accepted")
                return error, s.sendmail(SENDER, ["alice@example.test"], exact)

        error, refused = await self.inThread(client)
        self.assertEqual(
            (error.smtp_code, error.smtp_error),
            (552, b"5.3.4 Message size exceeds fixed limit"),
        )
        self.assertEqual(refused, {})
        [message] = self.recorder.messages
        self.assertEqual(
            self.assertTrace(message, b"ESMTP", b"alice@example.test"), exact
        )
        self.assertEqual(message.envelope.mailFrom.size, SIZE_LIMIT)

    async def test_actualSizeOverLimitRefused(self) -> None:
        """
        A message over the limit sent without SIZE is refused after DATA
        with 552 5.3.4, nothing is delivered, and the next message on the
        same connection goes through.
        """
        port = self.listen(self.makeFactory())
        big = self.messageOfSize(SIZE_LIMIT * 3)

        def client() -> tuple[list[tuple[int, bytes]], dict[str, Any]]:
            with smtplib.SMTP(HOST, port, CLIENT_NAME, timeout=TIMEOUT) as s:
                s.ehlo()
                got = [s.mail(SENDER), s.rcpt("alice@example.test"), s.data(big)]
                return got, s.sendmail(SENDER, ["bob@example.test"], MESSAGE)

        got, refused = await self.inThread(client)
        self.assertEqual(
            got,
            [
                (250, b"2.1.0 Sender OK"),
                (250, b"2.1.5 Recipient OK"),
                (552, b"5.3.4 Message size exceeds fixed limit"),
            ],
        )
        self.assertEqual(refused, {})
        [message] = self.recorder.messages
        self.assertEqual(message.envelope.recipients, (Recipient("bob@example.test"),))
        self.assertEqual(
            self.assertTrace(message, b"ESMTP", b"bob@example.test"), MESSAGE
        )

    def messageOfSize(self, size: int) -> bytes:
        """
        A message of exactly C{size} octets with short lines.
        """
        head = b"Subject: size\r\n\r\n"
        line = b"x" * 78 + b"\r\n"
        body = head + line * ((size - len(head)) // len(line))
        rest = size - len(body)
        if rest:
            assert rest >= 2, "no room for a last line"
            body += b"y" * (rest - 2) + b"\r\n"
        assert len(body) == size, (len(body), size)
        return body

    # Hooks that take their time.

    async def test_pipelinedHooksRunOneAtATime(self) -> None:
        """
        Pipelined commands reach their hooks one at a time: while a hook's
        Deferred is pending no later command is read, and the replies keep
        command order, including a command pipelined after the data.
        """
        r = self.recorder
        calls: DeferredQueue[tuple[str, Deferred[None]]] = DeferredQueue()

        def held(name: str, hook: Hook) -> Hook:
            def call(info: ConnectionInfo, value: Any) -> Deferred[Any]:
                answer: Deferred[None] = Deferred()
                calls.put((name, answer))
                return answer.addCallback(lambda _: hook(info, value))

            return call

        backend = r.backend(
            mailFrom=held("mailFrom", r.mailFrom),
            rcptTo=held("rcptTo", r.rcptTo),
            message=held("message", r.message),
        )
        port = self.listen(self.makeFactory(backend))

        def client() -> list[tuple[int, bytes]]:
            with smtplib.SMTP(HOST, port, CLIENT_NAME, timeout=TIMEOUT) as s:
                s.ehlo()
                s.send(
                    f"MAIL FROM:<{SENDER}>\r\n"
                    f"RCPT TO:<{REFUSED}>\r\n"
                    "RCPT TO:<alice@example.test>\r\n"
                    "RCPT TO:<bob@example.test>\r\n"
                    "DATA\r\n"
                )
                got = [s.getreply() for _ in range(5)]
                s.send(MESSAGE + b".\r\nNOOP\r\n")
                got += [s.getreply() for _ in range(2)]
                return got

        replies = deferToThread(client)
        order = []
        for _ in range(5):
            name, answer = await calls.get().addTimeout(TIMEOUT, reactor)
            order.append(name)
            # The next pipelined command waits for this answer.
            self.assertEqual(calls.pending, [])
            answer.callback(None)
        self.assertEqual(order, ["mailFrom", "rcptTo", "rcptTo", "rcptTo", "message"])
        got = await replies.addTimeout(TIMEOUT, reactor)
        [message] = r.messages
        self.assertEqual(
            got,
            [
                (250, b"2.1.0 Sender OK"),
                (550, b"5.1.1 No such recipient here"),
                (250, b"2.1.5 Recipient OK"),
                (250, b"2.1.5 Recipient OK"),
                (354, b"End data with <CR><LF>.<CR><LF>"),
                (250, f"2.0.0 OK: queued as {message.queueID}".encode()),
                (250, b"2.0.0 OK"),
            ],
        )
        self.assertEqual(
            [x.address for x in message.envelope.recipients],
            ["alice@example.test", "bob@example.test"],
        )
        self.assertEqual(self.assertTrace(message, b"ESMTP", None), MESSAGE)

    async def test_coroutineHooks(self) -> None:
        """
        Hooks written as coroutines that wait on the reactor accept, refuse
        and deliver as plain hooks do.
        """
        r = self.recorder

        async def pause() -> None:
            turn: Deferred[None] = Deferred()
            reactor.callLater(0, turn.callback, None)
            await turn

        async def mailFrom(info: ConnectionInfo, sender: MailFrom) -> None:
            await pause()
            r.mailFrom(info, sender)

        async def rcptTo(info: ConnectionInfo, recipient: Recipient) -> None:
            await pause()
            r.rcptTo(info, recipient)

        async def message(info: ConnectionInfo, received: ReceivedMessage) -> None:
            await pause()
            r.message(info, received)

        async def authenticate(
            info: ConnectionInfo, credentials: SMTPCredentials
        ) -> str:
            await pause()
            r.authenticate(info, credentials)
            return "alice@example.test"

        backend = r.backend(
            mailFrom=mailFrom,
            rcptTo=rcptTo,
            message=message,
            authenticate=authenticate,
        )
        port = self.listen(self.makeFactory(backend, allowPlaintextAuth=True))

        def client() -> tuple[tuple[int, bytes], dict[str, tuple[int, bytes]]]:
            with smtplib.SMTP(HOST, port, CLIENT_NAME, timeout=TIMEOUT) as s:
                login = s.login(USER, PASSWORD)
                return login, s.sendmail(
                    SENDER, [REFUSED, "alice@example.test"], MESSAGE
                )

        login, refused = await self.inThread(client)
        self.assertEqual(login, (235, b"2.7.0 Authentication successful"))
        self.assertEqual(refused, {REFUSED: (550, b"5.1.1 No such recipient here")})
        [received] = r.messages
        self.assertEqual(received.login, "alice@example.test")
        self.assertEqual(
            received.envelope.recipients, (Recipient("alice@example.test"),)
        )
        self.assertEqual(
            self.assertTrace(received, b"ESMTPA", b"alice@example.test"), MESSAGE
        )

    async def test_hookReplyTextReachesClient(self) -> None:
        """
        A refusal raised by a Deferred-returning hook reaches the client with
        its exact code, enhanced code and text.
        """
        reply = SMTPReply(450, "4.2.1", "Mailbox busy, try later")

        def rcptTo(info: ConnectionInfo, recipient: Recipient) -> None:
            self.recorder.record("rcptTo", info, recipient)
            raise reply

        backend = self.recorder.backend(rcptTo=later(rcptTo))
        port = self.listen(self.makeFactory(backend))

        def client() -> smtplib.SMTPRecipientsRefused:
            with smtplib.SMTP(HOST, port, CLIENT_NAME, timeout=TIMEOUT) as s:
                try:
                    s.sendmail(SENDER, ["alice@example.test"], MESSAGE)
                except smtplib.SMTPRecipientsRefused as e:
                    return e
                raise AssertionError("refused recipient accepted")

        error = await self.inThread(client)
        self.assertEqual(
            error.recipients,
            {"alice@example.test": (450, b"4.2.1 Mailbox busy, try later")},
        )
        self.assertEqual(self.recorder.messages, [])
