# -*- test-case-name: tests.test_smtp_dkimcheck -*-
"""
Tests for L{gomail_twisted.smtp.dkimcheck.DKIMVerifyingBackend}: the
wrapped session is the inner one in every hook but C{message}, AUTH is
offered exactly when the inner session takes it, the CPU work runs off the
reactor thread, and the signature limit and the time bound hold.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, succeed
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.task import Clock
from twisted.protocols.basic import LineReceiver
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface import implementer_only

from gomail_twisted.dkim import (
    DKIMStatus,
    _verify,
    generatePrivateKey,
    keyRecordFor,
    sign,
)
from gomail_twisted.smtp import (
    ConnectionInfo,
    ISMTPAuthSession,
    ISMTPBackend,
    ISMTPSession,
    SMTPReply,
    SMTPServerFactory,
)
from gomail_twisted.smtp.dkimcheck import DEFAULT_DKIM_TIMEOUT, DKIMVerifyingBackend
from tests._smtphelpers import RecordingBackend, RecordingSession, codes, connect, take
from tests.test_dkim_limits import HeldThread

MESSAGE = (
    b"From: Alice <alice@example.com>\r\n"
    b"To: bob@example.net\r\n"
    b"Subject: signed\r\n"
    b"\r\n"
    b"Hello Bob.\r\n"
)
TRANSACTION = (
    b"EHLO client.test\r\nMAIL FROM:<alice@example.com>\r\n"
    b"RCPT TO:<bob@example.net>\r\nDATA\r\n"
)
INFO = ConnectionInfo("192.0.2.1", 40000, "127.0.0.1", 25, "mx.test")
KEY = generatePrivateKey("ed25519")
RECORD = keyRecordFor(KEY).encode()
NAME = "sel._domainkey.example.com"


def signed(copies: int = 1) -> bytes:
    """
    @return: L{MESSAGE} with C{copies} copies of one good signature.
    """
    return sign(MESSAGE, "example.com", "sel", KEY) * copies + MESSAGE


@implementer_only(ISMTPSession)
class PlainSession(RecordingSession):
    """
    A recording session that does not take AUTH.
    """


class PlainBackend(RecordingBackend):
    """
    Makes L{PlainSession}s.
    """

    def newSession(self, info: ConnectionInfo) -> Any:
        return PlainSession(self, info)


class Lookup:
    """
    A C{lookupTXT} publishing the test key, counting its queries; with
    C{hang}, it never answers.
    """

    def __init__(self, hang: bool = False) -> None:
        self.queries: list[str] = []
        self.hang = hang

    def __call__(self, name: str) -> Deferred[Sequence[bytes]]:
        self.queries.append(name)
        if self.hang:
            return Deferred()
        return succeed([RECORD] if name == NAME else [])


class WrapperTests(SynchronousTestCase):
    """
    The wrapper over a L{StringTransport} connection on a fake clock.
    """

    def setUp(self) -> None:
        self.clock = Clock()
        self.lookup = Lookup()

    def factory(
        self, backend: ISMTPBackend | None = None, **kwargs: Any
    ) -> tuple[SMTPServerFactory, RecordingBackend]:
        inner = backend or RecordingBackend()
        assert isinstance(inner, RecordingBackend)
        wrapped = DKIMVerifyingBackend(
            inner, self.lookup, "mx.test", reactor=self.clock, **kwargs
        )
        factory = SMTPServerFactory(
            wrapped, hostname="mx.test", reactor=self.clock, allowPlaintextAuth=True
        )
        return factory, inner

    def test_authExactlyWhenInnerTakesIt(self) -> None:
        """
        The wrapped session provides L{ISMTPAuthSession}, and AUTH is
        offered, exactly when the inner session does.
        """
        for inner, auth in [(RecordingBackend(), True), (PlainBackend(), False)]:
            factory, _ = self.factory(inner)
            session = factory.backend.newSession(INFO)
            self.assertEqual(ISMTPAuthSession.providedBy(session), auth)
            self.assertTrue(ISMTPSession.providedBy(session))
            protocol, transport = connect(factory)
            protocol.dataReceived(b"EHLO client.test\r\n")
            self.assertEqual(b"250-AUTH PLAIN LOGIN" in take(transport), auth)

    def test_hooksPassThrough(self) -> None:
        """
        Every hook reaches the inner session with what the server gave, and
        its refusals reach the client.
        """
        factory, backend = self.factory()
        protocol, transport = connect(factory)
        protocol.dataReceived(
            b"EHLO client.test\r\nAUTH PLAIN AGFsaWNlAHNlY3JldA==\r\n"
            b"MAIL FROM:<alice@example.com>\r\nRCPT TO:<nobody@example.net>\r\n"
            b"RCPT TO:<bob@example.net>\r\nDATA\r\n"
            + MESSAGE
            + b".\r\nRSET\r\nQUIT\r\n"
        )
        protocol.connectionLost()
        self.assertEqual(
            codes(take(transport)),
            [
                "220",
                "250",
                "235 2.7.0",
                "250 2.1.0",
                "550 5.1.1",
                "250 2.1.5",
                "354",
                "250 2.0.0",
                "250 2.0.0",
                "221 2.0.0",
            ],
        )
        self.assertEqual(
            backend.names(),
            [
                "helo",
                "authenticate",
                "mailFrom",
                "rcptTo",
                "rcptTo",
                "headers",
                "message",
                "reset",
                "logout",
            ],
        )
        [message] = backend.messages
        self.assertEqual(message.dkim, ())
        self.assertTrue(
            message.raw.startswith(b"Authentication-Results: mx.test; dkim=none\r\n")
        )
        self.assertEqual(message.login, "alice")

    def test_deferredAndCoroutineSessions(self) -> None:
        """
        An inner backend may hand out its session in a Deferred or a
        coroutine; the message hook may be a coroutine too.
        """
        inner = RecordingBackend()

        async def coroutineSession(info: ConnectionInfo) -> RecordingSession:
            return RecordingSession(inner, info)

        async def coroutineMessage(message: object) -> SMTPReply:
            return SMTPReply(250, "2.0.0", "Stored")

        inner.behaviour["message"] = coroutineMessage
        for newSession in [
            lambda info: succeed(RecordingSession(inner, info)),
            coroutineSession,
        ]:
            self.patch(inner, "newSession", newSession)
            factory, _ = self.factory(inner)
            protocol, transport = connect(factory)
            protocol.dataReceived(TRANSACTION + signed() + b".\r\n")
            self.assertTrue(take(transport).endswith(b"\r\n250 2.0.0 Stored\r\n"))
        self.assertEqual(len(inner.messages), 2)
        dkim = inner.messages[-1].dkim
        assert dkim is not None
        self.assertEqual(dkim[0].status, DKIMStatus.PASS)

    def test_messageRefused(self) -> None:
        """
        A refusal from the inner message hook is the reply, after
        verification.
        """
        factory, backend = self.factory()

        def refuse(message: object) -> None:
            raise SMTPReply(554, "5.7.1", "No thanks")

        backend.behaviour["message"] = refuse
        protocol, transport = connect(factory)
        protocol.dataReceived(TRANSACTION + signed() + b".\r\n")
        self.assertEqual(codes(take(transport))[-1], "554 5.7.1")
        self.assertEqual(len(backend.messages), 1)

    def test_verifiedInTheThread(self) -> None:
        """
        The message waits for the thread: no reply, no message hook, while
        another connection is answered; once the thread runs, the message
        is delivered with its result.
        """
        thread = HeldThread()
        factory, backend = self.factory(runInThread=thread)
        protocol, transport = connect(factory)
        protocol.dataReceived(TRANSACTION + signed() + b".\r\n")
        self.assertEqual(codes(take(transport))[-1], "354")
        self.assertEqual(backend.messages, [])
        other, otherTransport = connect(factory)
        other.dataReceived(b"NOOP\r\n")
        self.assertEqual(codes(take(otherTransport)), ["220", "250"])
        thread.runAll()
        self.assertEqual(thread.ran, 2)
        self.assertEqual(codes(take(transport)), ["250 2.0.0"])
        [message] = backend.messages
        assert message.dkim is not None
        self.assertEqual(message.dkim[0].status, DKIMStatus.PASS)

    def test_unsignedWithoutThread(self) -> None:
        """
        A message whose header has no DKIM-Signature field is delivered at
        once, without the thread, with the same bytes and results a full
        verification gives it: C{dkim=none} and no results.
        """
        unsigned = [
            MESSAGE,
            b"X-DKIM-Signature: v=1\r\n" + MESSAGE,
            b"Subject: folded\r\n DKIM-Signature: v=1\r\n" + MESSAGE,
            MESSAGE + b"DKIM-Signature: v=1 (in the body)\r\n",
            b"Authentication-Results: mx.test; dkim=pass\r\n" + MESSAGE,
        ]
        for raw in unsigned:
            thread = HeldThread()
            factory, backend = self.factory(runInThread=thread)
            protocol, transport = connect(factory)
            protocol.dataReceived(TRANSACTION + raw + b".\r\n")
            self.assertEqual(codes(take(transport))[-1], "250 2.0.0", raw)
            self.assertEqual(thread.ran, 0)
            [message] = backend.messages
            self.assertEqual(message.dkim, ())
            received = message.raw.index(b"Received:")
            self.assertEqual(
                message.raw[:received],
                b"Authentication-Results: mx.test; dkim=none\r\n",
            )
            wrapper = factory.backend
            assert isinstance(wrapper, DKIMVerifyingBackend)
            plain = replace(
                message,
                raw=message.raw[received:].replace(b"X-Original-", b""),
                dkim=None,
            )
            full = self.successResultOf(_verify.verify(plain.raw, self.lookup, now=0.0))
            self.assertEqual(full, [])
            self.assertEqual(wrapper._addResults(full, plain), message)

    def test_maybeSignedVerifiedInTheThread(self) -> None:
        """
        A header field named DKIM-Signature in any case, with blanks before
        its colon, after other fields or with bare LF line ends, sends the
        message through the verification in the thread.
        """
        one = sign(MESSAGE, "example.com", "sel", KEY)
        maybeSigned = [
            one + MESSAGE,
            one.replace(b"DKIM-Signature:", b"dkim-signature :") + MESSAGE,
            MESSAGE.replace(b"Subject:", one + b"Subject:"),
        ]
        for raw in maybeSigned:
            thread = HeldThread()
            factory, backend = self.factory(runInThread=thread)
            protocol, transport = connect(factory)
            protocol.dataReceived(TRANSACTION + raw + b".\r\n")
            self.assertEqual(backend.messages, [])
            thread.runAll()
            self.assertGreater(thread.ran, 0, raw)
            self.assertEqual(codes(take(transport))[-1], "250 2.0.0")
            [message] = backend.messages
            assert message.dkim is not None
            self.assertEqual(len(message.dkim), 1, raw)
        thread = HeldThread()
        factory, backend = self.factory(runInThread=thread)
        wrapper = factory.backend
        assert isinstance(wrapper, DKIMVerifyingBackend)
        bare = replace(message, raw=(one + MESSAGE).replace(b"\r\n", b"\n"))
        verified = wrapper.verifyMessage(bare)
        self.assertNoResult(verified)
        thread.runAll()
        self.assertEqual(len(self.successResultOf(verified).dkim or ()), 1)

    def test_limit(self) -> None:
        """
        C{maxSignatures} bounds the signatures checked, the rest are
        reported together as not checked, and the key is looked up once.
        """
        factory, backend = self.factory(maxSignatures=3)
        protocol, transport = connect(factory)
        protocol.dataReceived(TRANSACTION + signed(40) + b".\r\n")
        self.assertEqual(codes(take(transport))[-1], "250 2.0.0")
        [message] = backend.messages
        assert message.dkim is not None
        self.assertEqual(
            [r.status for r in message.dkim],
            [DKIMStatus.PASS] * 3 + [DKIMStatus.POLICY] * 37,
        )
        self.assertEqual(self.lookup.queries, [NAME])
        header = message.raw.split(b"\r\nReceived:")[0]
        self.assertEqual(header.count(b"dkim=pass"), 3)
        self.assertEqual(header.count(b"dkim=policy"), 1)
        self.assertIn(b'reason="37 signatures: not checked', header)
        lines = header.split(b"\r\n")
        self.assertEqual(
            [line.split(b" ")[0] for line in lines if line.startswith(b"\tdkim=")],
            [b"\tdkim=pass"] * 3 + [b"\tdkim=policy"],
        )
        self.assertTrue(all(len(line) <= 998 for line in lines))

    def test_timeout(self) -> None:
        """
        A key that does not come within the time bound is a C{temperror},
        and the message is delivered then.
        """
        self.lookup.hang = True
        factory, backend = self.factory(timeout=7)
        protocol, transport = connect(factory)
        protocol.dataReceived(TRANSACTION + signed() + b".\r\n")
        self.clock.advance(6.9)
        self.assertEqual(codes(take(transport))[-1], "354")
        self.clock.advance(0.1)
        self.assertEqual(codes(take(transport)), ["250 2.0.0"])
        [message] = backend.messages
        assert message.dkim is not None
        self.assertEqual(message.dkim[0].status, DKIMStatus.TEMPERROR)
        self.assertIn(b"dkim=temperror", message.raw.split(b"\r\nReceived:")[0])

    def test_defaultTimeout(self) -> None:
        """
        Without C{timeout}, the bound is L{DEFAULT_DKIM_TIMEOUT}.
        """
        self.lookup.hang = True
        factory, backend = self.factory()
        protocol, transport = connect(factory)
        protocol.dataReceived(TRANSACTION + signed() + b".\r\n")
        self.clock.advance(DEFAULT_DKIM_TIMEOUT - 0.5)
        self.assertEqual(backend.messages, [])
        self.clock.advance(0.5)
        self.assertEqual(codes(take(transport))[-1], "250 2.0.0")

    def test_forgedResults(self) -> None:
        """
        Received Authentication-Results that claim our name, however it is
        written, are renamed; one naming another host is left alone; ours
        comes first, before our Received field.
        """
        forged = [
            b"Authentication-Results: (trusted) mx.test; dkim=pass\r\n",
            b'Authentication-Results: "mx.test"; dkim=pass\r\n',
            b"Authentication-Results: mx.test (comment); dkim=pass\r\n",
            b"Authentication-Results: MX.TEST; dkim=pass\r\n",
        ]
        other = b"Authentication-Results: other.test; dkim=pass\r\n"
        factory, backend = self.factory()
        protocol, _ = connect(factory)
        protocol.dataReceived(
            TRANSACTION + b"".join(forged) + other + MESSAGE + b".\r\n"
        )
        [message] = backend.messages
        names = [name.lower() for name, _ in message.headers.items()]
        self.assertEqual(
            names[:3],
            ["authentication-results", "received", "x-original-authentication-results"],
        )
        self.assertEqual(names.count("authentication-results"), 2)
        for field in forged:
            self.assertIn(b"\r\nX-Original-" + field, message.raw)
        self.assertIn(b"\r\n" + other, message.raw)


class _LineClient(LineReceiver):
    """
    An SMTP client that keeps the lines it got and fires a Deferred when
    one starts with an awaited prefix.
    """

    def __init__(self) -> None:
        self.lines: list[bytes] = []
        self._waiting: list[tuple[bytes, Deferred[bytes]]] = []

    def lineReceived(self, line: bytes) -> None:
        self.lines.append(line)
        for prefix, d in list(self._waiting):
            if line.startswith(prefix):
                self._waiting.remove((prefix, d))
                d.callback(line)

    def waitFor(self, prefix: bytes) -> Deferred[bytes]:
        d: Deferred[bytes] = Deferred()
        self._waiting.append((prefix, d))
        return d


class LoopbackTests(TestCase):
    """
    Over loopback TCP, with the reactor's thread pool.
    """

    timeout = 20

    async def test_otherClientsAnsweredMeanwhile(self) -> None:
        """
        While one message's verification is held inside the thread pool,
        another connection's NOOP is answered; the verification did not run
        on the reactor thread.
        """
        entered: Deferred[None] = Deferred()
        gate = threading.Event()
        seen: dict[str, Any] = {}
        parseMessage = _verify.parseMessage

        def gatedParse(message: bytes) -> Any:
            seen["thread"] = threading.get_ident()
            reactor.callFromThread(entered.callback, None)
            seen["opened"] = gate.wait(10)
            return parseMessage(message)

        self.patch(_verify, "parseMessage", gatedParse)
        backend = RecordingBackend()
        wrapped = DKIMVerifyingBackend(backend, Lookup(), "mx.test", reactor=reactor)
        factory = SMTPServerFactory(wrapped, hostname="mx.test", reactor=reactor)
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", port.getHost().port)

        sender = _LineClient()
        await connectProtocol(endpoint, sender)
        queued = sender.waitFor(b"250 2.0.0 OK")
        sender.transport.write(TRANSACTION + signed(30) + b".\r\n")
        await entered

        other = _LineClient()
        greeted = other.waitFor(b"220 ")
        await connectProtocol(endpoint, other)
        await greeted
        answered = other.waitFor(b"250 ")
        other.transport.write(b"NOOP\r\n")
        await answered
        gate.set()
        await queued
        await factory.shutdown()

        self.assertTrue(seen["opened"])
        self.assertNotEqual(seen["thread"], threading.get_ident())
        [message] = backend.messages
        assert message.dkim is not None
        self.assertEqual(message.dkim[0].status, DKIMStatus.PASS)
        self.assertEqual(len(message.dkim), 30)
