# -*- test-case-name: tests.test_delivery_client -*-
"""
Tests for L{gomail_twisted.delivery.client}: the wire layer with tables, the
protocol over L{StringTransport} with a fake clock, and real loopback
sessions with our own server, with aiosmtpd, and with small broken servers.
"""

from __future__ import annotations

import asyncio
import ssl as stdssl
import threading
import time
from collections.abc import Callable
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.internet import reactor as _reactor
from twisted.internet.address import IPv4Address
from twisted.internet.defer import CancelledError, ensureDeferred
from twisted.internet.endpoints import (
    SSL4ServerEndpoint,
    TCP4ClientEndpoint,
    TCP4ServerEndpoint,
    wrapClientTLS,
)
from twisted.internet.interfaces import IListeningPort
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.task import Clock, deferLater
from twisted.internet.testing import MemoryReactorClock, StringTransport
from twisted.protocols.basic import LineReceiver
from twisted.trial.unittest import SynchronousTestCase, TestCase

from gomail_twisted.delivery import (
    ClientTLSPolicy,
    DeliveryResult,
    ESMTPSender,
    ESMTPSenderFactory,
    SMTPReply,
    SMTPTimeouts,
    Transaction,
)
from gomail_twisted.delivery._values import DATA_BLOCK
from gomail_twisted.delivery._wire import (
    Extensions,
    ReplyAssembler,
    SMTPProtocolError,
    dotStuff,
)
from gomail_twisted.smtp import SMTPServerFactory
from tests._certs import testCA
from tests._smtphelpers import RecordingBackend

reactor: Any = _reactor
HOST = "127.0.0.1"
SENDER = "sender@example.test"
MESSAGE = b"From: sender@example.test\r\nSubject: hi\r\n\r\nHello.\r\n"
FAST = SMTPTimeouts.uniform(5.0)
#: The bound on every test of a broken peer: its short timeout, and margin.
SHORT = SMTPTimeouts.uniform(0.5)


def transaction(*recipients: str, message: bytes = MESSAGE) -> Transaction:
    """
    A transaction from L{SENDER}.
    """
    return Transaction(SENDER, recipients or ("alice@example.test",), message)


class ReplyAssemblerTests(SynchronousTestCase):
    """
    L{ReplyAssembler} reads replies within bounds (RFC 5321 4.2).
    """

    def test_singleLine(self) -> None:
        """
        A one-line reply with an enhanced code is parsed into its parts.
        """
        reply = ReplyAssembler().feed(b"250 2.1.5 Recipient OK")
        self.assertEqual(reply, SMTPReply(250, "2.1.5", "Recipient OK"))

    def test_multiLine(self) -> None:
        """
        Continuation lines are collected until the last line; the enhanced
        code is taken off every line.
        """
        assembler = ReplyAssembler()
        self.assertIsNone(assembler.feed(b"550-5.7.1 first"))
        reply = assembler.feed(b"550 5.7.1 second")
        self.assertEqual(reply, SMTPReply(550, "5.7.1", ["first", "second"]))

    def test_noEnhancedCode(self) -> None:
        """
        A reply without an enhanced code, or with one of another class, keeps
        its text whole.
        """
        self.assertEqual(
            ReplyAssembler().feed(b"220 mx ESMTP"), SMTPReply(220, None, "mx ESMTP")
        )
        self.assertEqual(
            ReplyAssembler().feed(b"451 5.0.0 odd"), SMTPReply(451, None, "5.0.0 odd")
        )
        self.assertEqual(ReplyAssembler().feed(b"250"), SMTPReply(250, None, ""))

    def test_badLines(self) -> None:
        """
        Garbage, codes out of range, a bare CR, an overlong line, and a code
        that changes mid-reply are protocol errors.
        """
        bad = (b"hello", b"25 short", b"650 nope", b"250x", b"x" * 20, b"250 a\rb")
        for line in bad:
            self.assertRaises(SMTPProtocolError, ReplyAssembler().feed, line)
        self.assertRaises(
            SMTPProtocolError, ReplyAssembler().feed, b"250 " + b"x" * 507
        )
        self.assertIsNotNone(ReplyAssembler().feed(b"250 " + b"x" * 506))
        assembler = ReplyAssembler()
        assembler.feed(b"250-a")
        self.assertRaises(SMTPProtocolError, assembler.feed, b"251 b")

    def test_tooManyLines(self) -> None:
        """
        A multi-line reply longer than the bound is a protocol error.
        """
        assembler = ReplyAssembler(maxLines=3)
        for _ in range(3):
            assembler.feed(b"250-x")
        self.assertRaises(SMTPProtocolError, assembler.feed, b"250-x")


_replyText = st.text(
    st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)),
    max_size=100,
).filter(lambda t: not t[:1].isdigit())


@st.composite
def _wellFormedReplies(
    draw: st.DrawFn,
) -> tuple[int, str | None, list[str], list[bytes]]:
    """
    A reply code, an enhanced code of its class or none, the text lines
    (none starting with a digit, so none reads as an enhanced code),
    and the reply lines a server sends for them (RFC 5321 4.2.1,
    RFC 2034 4: the enhanced code on every line).
    """
    code = draw(st.integers(200, 599))
    # RFC 3463 2: enhanced codes have the classes 2, 4 and 5 only.
    enhanced = draw(
        st.none()
        if code // 100 == 3
        else st.none()
        | st.tuples(st.integers(0, 999), st.integers(0, 999)).map(
            lambda t: f"{code // 100}.{t[0]}.{t[1]}"
        )
    )
    texts = draw(st.lists(_replyText, min_size=1, max_size=10))
    lines = []
    for index, text in enumerate(texts):
        separator = " " if index == len(texts) - 1 else "-"
        body = f"{enhanced} {text}" if enhanced is not None else text
        lines.append(f"{code}{separator}{body}".encode())
    return code, enhanced, texts, lines


class ReplyAssemblerPropertyTests(SynchronousTestCase):
    """
    Properties of L{ReplyAssembler} over generated input.
    """

    @settings(max_examples=300, deadline=None)
    @given(st.lists(st.binary(max_size=600), max_size=20))
    def test_arbitraryLinesRaiseOnlyProtocolErrors(self, lines: list[bytes]) -> None:
        """
        Whatever lines arrive, each is taken, ends a reply, or is refused
        with L{SMTPProtocolError}; any reply returned has a code of 200 to
        599 and text without CR or LF.
        """
        assembler = ReplyAssembler(maxLines=5)
        for line in lines:
            try:
                reply = assembler.feed(line)
            except SMTPProtocolError:
                continue
            if reply is not None:
                self.assertTrue(200 <= reply.code <= 599)
                self.assertFalse(any("\r" in t or "\n" in t for t in reply.lines))

    @settings(max_examples=300, deadline=None)
    @given(_wellFormedReplies(), st.integers(1, 3))
    def test_wellFormedRepliesParse(
        self,
        generated: tuple[int, str | None, list[str], list[bytes]],
        repeat: int,
    ) -> None:
        """
        A well-formed reply, single or multi-line, parses to its code,
        enhanced code and text lines, each time it comes (the assembler
        remembers one-line replies), and only on its last line.
        """
        code, enhanced, texts, lines = generated
        assembler = ReplyAssembler()
        for _ in range(repeat):
            for line in lines[:-1]:
                self.assertIsNone(assembler.feed(line))
            reply = assembler.feed(lines[-1])
            assert reply is not None
            self.assertEqual(
                (reply.code, reply.enhanced, reply.lines),
                (code, enhanced, tuple(texts)),
            )

    @settings(max_examples=150, deadline=None)
    @given(st.binary(max_size=2000), st.lists(st.integers(1, 700), max_size=10))
    def test_arbitraryBytesFromServer(self, data: bytes, cuts: list[int]) -> None:
        """
        Arbitrary bytes from a server, in arbitrary chunks, never raise out
        of L{ESMTPSender}: the transaction ends with an error in its result
        and no timer is left behind.
        """
        clock = Clock()
        factory = ESMTPSenderFactory(
            clock, [transaction()], heloName="client.test", timeouts=SHORT
        )
        protocol = factory.buildProtocol(IPv4Address("TCP", HOST, 25))
        transport = StringTransport(peerAddress=IPv4Address("TCP", HOST, 25))
        protocol.makeConnection(transport)
        offset = 0
        for cut in [*cuts, len(data)]:
            protocol.dataReceived(data[offset : offset + cut])
            offset += cut
        protocol.connectionLost()
        [result] = self.successResultOf(factory.deferred)
        self.assertIsNotNone(result.error)
        self.assertEqual(clock.getDelayedCalls(), [])


class DotStuffTests(SynchronousTestCase):
    """
    L{dotStuff} prepares a whole message for DATA in one pass
    (RFC 5321 4.5.2).
    """

    def test_table(self) -> None:
        """
        Leading dots are doubled wherever they are, line ends become CRLF
        without doubling, and the terminator is appended.
        """
        table = [
            (b"", b".\r\n"),
            (b"a\r\n", b"a\r\n.\r\n"),
            (b"a", b"a\r\n.\r\n"),
            (b".a\r\n", b"..a\r\n.\r\n"),
            (b"a\r\n.\r\nb\r\n", b"a\r\n..\r\nb\r\n.\r\n"),
            (b"a\n.b\n", b"a\r\n..b\r\n.\r\n"),
            (b"a\r.b\r", b"a\r\n..b\r\n.\r\n"),
            (b"a\r\r\nb\r\n", b"a\r\n\r\nb\r\n.\r\n"),
            (b"..\r\n...\r\n", b"...\r\n....\r\n.\r\n"),
        ]
        for message, expected in table:
            self.assertEqual(dotStuff(message), expected, message)


class ExtensionsTests(SynchronousTestCase):
    """
    L{Extensions} reads an EHLO reply (RFC 5321 4.1.1.1).
    """

    def test_keywords(self) -> None:
        """
        Keywords are case-insensitive; SIZE and AUTH parameters are read.
        """
        ext = Extensions.fromReply(
            SMTPReply(250, None, ["mx", "pipelining", "SIZE 1000", "AUTH plain LOGIN"])
        )
        self.assertIn("PIPELINING", ext)
        self.assertEqual(ext.maxSize, 1000)
        self.assertEqual(ext.authMechanisms, {"PLAIN", "LOGIN"})
        self.assertIsNone(
            Extensions.fromReply(SMTPReply(250, None, ["mx", "SIZE"])).maxSize
        )


class SessionTests(SynchronousTestCase):
    """
    L{ESMTPSender} over L{StringTransport} with a fake clock: what goes on
    the wire, step by step.
    """

    def connect(
        self, *transactions: Transaction, **kwargs: Any
    ) -> tuple[ESMTPSenderFactory, ESMTPSender, StringTransport, Clock]:
        clock = Clock()
        factory = ESMTPSenderFactory(
            clock, transactions or (transaction(),), heloName="client.test", **kwargs
        )
        protocol = factory.buildProtocol(IPv4Address("TCP", HOST, 25))
        assert isinstance(protocol, ESMTPSender)
        transport = StringTransport(peerAddress=IPv4Address("TCP", HOST, 25))
        protocol.makeConnection(transport)
        return factory, protocol, transport, clock

    def exchange(
        self, protocol: ESMTPSender, transport: StringTransport, reply: bytes
    ) -> bytes:
        transport.clear()
        protocol.dataReceived(reply)
        return transport.value()

    def results(
        self, factory: ESMTPSenderFactory, protocol: ESMTPSender
    ) -> list[DeliveryResult]:
        protocol.connectionLost()
        return self.successResultOf(factory.deferred)

    def test_crlfInAddressRefusedBeforeSending(self) -> None:
        """
        An address with CR or LF is refused when the factory is made, before
        any connection.
        """
        for bad in ("a@example.test\r\nRSET", "a@example.test\n", "<a@example.test>"):
            self.assertRaises(
                ValueError, ESMTPSenderFactory, Clock(), [transaction(bad)]
            )
            self.assertRaises(
                ValueError,
                ESMTPSenderFactory,
                Clock(),
                [Transaction(bad, ("b@example.test",), MESSAGE)],
            )

    def test_heloFallbackAndNoPipelining(self) -> None:
        """
        A server that refuses EHLO gets HELO (RFC 5321 4.1.4); without
        PIPELINING each command waits for the previous reply.
        """
        factory, protocol, transport, _ = self.connect(
            transaction("a@example.test", "b@example.test"),
            tls=ClientTLSPolicy("never"),
        )
        self.assertEqual(
            self.exchange(protocol, transport, b"220 mx\r\n"), b"EHLO client.test\r\n"
        )
        self.assertEqual(
            self.exchange(protocol, transport, b"502 5.5.1 no\r\n"),
            b"HELO client.test\r\n",
        )
        self.assertEqual(
            self.exchange(protocol, transport, b"250 mx\r\n"),
            b"MAIL FROM:<sender@example.test>\r\n",
        )
        self.assertEqual(
            self.exchange(protocol, transport, b"250 ok\r\n"),
            b"RCPT TO:<a@example.test>\r\n",
        )
        self.assertEqual(
            self.exchange(protocol, transport, b"550 5.1.1 no such user\r\n"),
            b"RCPT TO:<b@example.test>\r\n",
        )
        self.assertEqual(self.exchange(protocol, transport, b"250 ok\r\n"), b"DATA\r\n")
        self.assertEqual(
            self.exchange(protocol, transport, b"354 go\r\n"), MESSAGE + b".\r\n"
        )
        self.assertEqual(
            self.exchange(protocol, transport, b"250 2.0.0 queued\r\n"), b"QUIT\r\n"
        )
        self.exchange(protocol, transport, b"221 bye\r\n")
        [result] = self.results(factory, protocol)
        self.assertIsNone(result.error)
        self.assertEqual(result.accepted, ("b@example.test",))
        self.assertEqual(
            result.refused,
            (("a@example.test", SMTPReply(550, "5.1.1", "no such user")),),
        )
        self.assertEqual(
            (result.code, result.enhanced, result.text), (250, "2.0.0", "queued")
        )

    def test_pipeliningSizeAnd8BitMIME(self) -> None:
        """
        With PIPELINING, MAIL, every RCPT and DATA go in one write
        (RFC 2920 3.1); SIZE and BODY=8BITMIME are declared when offered.
        """
        message = "Subject: 8-bit body\r\n\r\nbody é\r\n".encode()
        _factory, protocol, transport, _ = self.connect(
            transaction("a@example.test", "b@example.test", message=message)
        )
        protocol.dataReceived(b"220 mx\r\n")
        sent = self.exchange(
            protocol,
            transport,
            b"250-mx\r\n250-PIPELINING\r\n250-SIZE 100\r\n250 8BITMIME\r\n",
        )
        self.assertEqual(
            sent,
            b"MAIL FROM:<sender@example.test> SIZE=%d BODY=8BITMIME\r\n"
            b"RCPT TO:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n"
            % len(message),
        )

    def test_sizeOverLimitNotSent(self) -> None:
        """
        A message over the server's SIZE is not sent (RFC 1870): a permanent
        failure with a clear reason, then QUIT.
        """
        factory, protocol, transport, _ = self.connect()
        protocol.dataReceived(b"220 mx\r\n")
        sent = self.exchange(protocol, transport, b"250-mx\r\n250 SIZE 10\r\n")
        self.assertEqual(sent, b"QUIT\r\n")
        [result] = self.results(factory, protocol)
        self.assertTrue(result.permanent)
        assert result.error is not None
        self.assertIn("exceeds the server's SIZE 10", result.error)

    def test_smtputf8Needed(self) -> None:
        """
        A non-ASCII local part with a server lacking SMTPUTF8 is a permanent
        failure before MAIL; with it, MAIL carries SMTPUTF8 (RFC 6531 3.4).
        """
        factory, protocol, transport, _ = self.connect(transaction("jörg@example.test"))
        protocol.dataReceived(b"220 mx\r\n")
        self.assertEqual(self.exchange(protocol, transport, b"250 mx\r\n"), b"QUIT\r\n")
        [result] = self.results(factory, protocol)
        self.assertTrue(result.permanent)
        assert result.error is not None
        self.assertIn("SMTPUTF8", result.error)

        factory, protocol, transport, _ = self.connect(transaction("jörg@example.test"))
        protocol.dataReceived(b"220 mx\r\n")
        sent = self.exchange(protocol, transport, b"250-mx\r\n250 SMTPUTF8\r\n")
        self.assertEqual(sent, b"MAIL FROM:<sender@example.test> SMTPUTF8\r\n")

    def test_utf8HeadersNeedSMTPUTF8(self) -> None:
        """
        A message whose header fields hold UTF-8 is refused for a server
        without SMTPUTF8 (RFC 6531 3.2), even one offering 8BITMIME; with
        SMTPUTF8, MAIL declares it.
        """
        message = "Subject: é\r\n\r\nbody\r\n".encode()
        factory, protocol, transport, _ = self.connect(
            transaction("a@example.test", message=message)
        )
        protocol.dataReceived(b"220 mx\r\n")
        sent = self.exchange(protocol, transport, b"250-mx\r\n250 8BITMIME\r\n")
        self.assertEqual(sent, b"QUIT\r\n")
        [result] = self.results(factory, protocol)
        self.assertTrue(result.permanent)
        self.assertIn("UTF-8 header fields", result.error or "")

        factory, protocol, transport, _ = self.connect(
            transaction("a@example.test", message=message)
        )
        protocol.dataReceived(b"220 mx\r\n")
        sent = self.exchange(
            protocol, transport, b"250-mx\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"
        )
        self.assertEqual(
            sent, b"MAIL FROM:<sender@example.test> BODY=8BITMIME SMTPUTF8\r\n"
        )

    def test_eightBitNeeds8BitMIME(self) -> None:
        """
        8-bit data is not sent to a server without 8BITMIME (RFC 6152 3).
        """
        message = "Subject: x\r\n\r\nbody é\r\n".encode()
        factory, protocol, transport, _ = self.connect(
            transaction("a@example.test", message=message)
        )
        protocol.dataReceived(b"220 mx\r\n")
        self.assertEqual(self.exchange(protocol, transport, b"250 mx\r\n"), b"QUIT\r\n")
        [result] = self.results(factory, protocol)
        self.assertTrue(result.permanent)
        self.assertIn("8BITMIME", result.error or "")

    def test_internationalDomainAsALabel(self) -> None:
        """
        A non-ASCII domain with an ASCII local part is sent as an A-label,
        needing no SMTPUTF8.
        """
        _factory, protocol, transport, _ = self.connect(transaction("bob@bücher.de"))
        protocol.dataReceived(b"220 mx\r\n250 mx\r\n")
        sent = self.exchange(protocol, transport, b"250 ok\r\n")
        self.assertEqual(sent, b"RCPT TO:<bob@xn--bcher-kva.de>\r\n")

    def test_greetingTimeout(self) -> None:
        """
        A server that never greets is a temporary failure once the greeting
        timeout passes.
        """
        factory, protocol, transport, clock = self.connect(
            timeouts=SMTPTimeouts(greeting=30.0)
        )
        clock.advance(29)
        self.assertFalse(transport.disconnecting)
        clock.advance(1)
        self.assertTrue(transport.disconnecting)
        [result] = self.results(factory, protocol)
        self.assertEqual(result.error, "timed out after 30s waiting for greeting")
        self.assertFalse(result.permanent)
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_dataTimeouts(self) -> None:
        """
        Each step waits as long as RFC 5321 4.5.3.2 says for that step.
        """
        timeouts = SMTPTimeouts(mail=11, rcpt=12, dataInit=13, dataEnd=14)
        factory, protocol, transport, clock = self.connect(timeouts=timeouts)
        protocol.dataReceived(b"220 mx\r\n250 mx\r\n")
        steps = ((10.5, b"250 ok\r\n"), (11.5, b"250 ok\r\n"), (12.5, b"354 go\r\n"))
        for wait, reply in steps:
            clock.advance(wait)
            self.assertFalse(transport.disconnecting)
            protocol.dataReceived(reply)
        clock.advance(13.5)
        self.assertFalse(transport.disconnecting)
        clock.advance(0.5)
        self.assertTrue(transport.disconnecting)
        [result] = self.results(factory, protocol)
        self.assertEqual(
            result.error, "timed out after 14s waiting for reply to end of data"
        )

    def test_authNeverWithoutTLS(self) -> None:
        """
        A password is never sent over a connection without TLS.
        """
        factory, protocol, transport, _ = self.connect(
            login="alice", password="secret", tls=ClientTLSPolicy("never")
        )
        protocol.dataReceived(b"220 mx\r\n")
        sent = self.exchange(protocol, transport, b"250-mx\r\n250 AUTH PLAIN\r\n")
        self.assertEqual(sent, b"QUIT\r\n")
        [result] = self.results(factory, protocol)
        self.assertEqual(result.error, "will not send a password without TLS")

    def test_requiredTLSNotOffered(self) -> None:
        """
        With TLS required and no STARTTLS offered nothing is sent: a
        temporary failure with the reason.
        """
        factory, protocol, transport, _ = self.connect(tls=ClientTLSPolicy("required"))
        protocol.dataReceived(b"220 mx\r\n")
        self.assertEqual(self.exchange(protocol, transport, b"250 mx\r\n"), b"QUIT\r\n")
        [result] = self.results(factory, protocol)
        self.assertFalse(result.permanent)
        self.assertEqual(
            result.error, "TLS is required but the server does not offer STARTTLS"
        )

    def test_severalTransactionsWithReset(self) -> None:
        """
        Transactions share one connection; after one whose recipients were
        all refused comes RSET, then the next.
        """
        factory, protocol, transport, _ = self.connect(
            transaction("a@example.test"), transaction("b@example.test")
        )
        protocol.dataReceived(b"220 mx\r\n250-mx\r\n250 PIPELINING\r\n")
        sent = self.exchange(
            protocol,
            transport,
            b"250 ok\r\n550 5.1.1 no\r\n554 5.5.1 no recipients\r\n",
        )
        self.assertEqual(sent, b"RSET\r\n")
        sent = self.exchange(protocol, transport, b"250 reset\r\n")
        self.assertTrue(sent.startswith(b"MAIL FROM:"))
        protocol.dataReceived(b"250 ok\r\n250 ok\r\n354 go\r\n250 done\r\n221 bye\r\n")
        first, second = self.results(factory, protocol)
        self.assertEqual(first.error, "all recipients refused: 550 5.1.1 no")
        self.assertTrue(first.permanent)
        self.assertTrue(second.delivered)

    def test_pipelinedContentOpensNextGroup(self) -> None:
        """
        With PIPELINING a message's content goes in one write with the next
        transaction's MAIL, RCPT and DATA, and the last one's with QUIT
        (RFC 2920 3.1); a refused message does not stop the next.
        """
        factory, protocol, transport, _ = self.connect(
            transaction("a@example.test"), transaction("b@example.test")
        )
        protocol.dataReceived(b"220 mx\r\n")
        self.exchange(protocol, transport, b"250-mx\r\n250 PIPELINING\r\n")
        sent = self.exchange(protocol, transport, b"250 ok\r\n250 ok\r\n354 go\r\n")
        self.assertEqual(
            sent,
            MESSAGE + b".\r\nMAIL FROM:<sender@example.test>\r\n"
            b"RCPT TO:<b@example.test>\r\nDATA\r\n",
        )
        sent = self.exchange(
            protocol,
            transport,
            b"554 5.6.0 refused\r\n250 ok\r\n250 ok\r\n354 go\r\n",
        )
        self.assertEqual(sent, MESSAGE + b".\r\nQUIT\r\n")
        self.assertEqual(
            self.exchange(protocol, transport, b"250 2.0.0 done\r\n221 bye\r\n"), b""
        )
        self.assertTrue(transport.disconnecting)
        first, second = self.results(factory, protocol)
        self.assertEqual(first.error, "message refused: 554 5.6.0 refused")
        self.assertTrue(first.permanent)
        self.assertTrue(second.delivered, second.error)
        self.assertEqual(second.accepted, ("b@example.test",))

    def outcome(
        self, replies: list[bytes], **kwargs: Any
    ) -> tuple[DeliveryResult, bytes]:
        """
        Play C{replies}, one per client turn; return the result and
        everything the client wrote.
        """
        factory, protocol, transport, _ = self.connect(**kwargs)
        for reply in replies:
            protocol.dataReceived(reply)
        written = transport.value()
        [result] = self.results(factory, protocol)
        return result, written

    def test_refusals(self) -> None:
        """
        A refused greeting, EHLO answered 4xx, HELO refused, TLS required
        but not offered or refused, and AUTH impossible each fail the
        delivery with a reason naming the step, sending no MAIL.
        """
        table: list[tuple[list[bytes], dict[str, Any], str, bool]] = [
            ([b"554 go away\r\n"], {}, "greeting refused", True),
            ([b"220 mx\r\n", b"421 busy\r\n"], {}, "EHLO refused", False),
            (
                [b"220 mx\r\n", b"500 what\r\n", b"550 no\r\n"],
                {},
                "HELO refused",
                True,
            ),
            (
                [b"220 mx\r\n", b"250 mx\r\n"],
                {"tls": ClientTLSPolicy("required")},
                "does not offer STARTTLS",
                False,
            ),
            (
                [b"220 mx\r\n", b"250-mx\r\n250 STARTTLS\r\n", b"454 no tls\r\n"],
                {"tls": ClientTLSPolicy("required")},
                "STARTTLS was refused",
                False,
            ),
            (
                [b"220 mx\r\n", b"250-mx\r\n250 AUTH PLAIN\r\n"],
                {"tls": ClientTLSPolicy("never"), "login": "a", "password": "b"},
                "without TLS",
                True,
            ),
        ]
        for replies, kwargs, reason, permanent in table:
            result, written = self.outcome(replies, **kwargs)
            self.assertIn(reason, result.error or "", replies)
            self.assertEqual(result.permanent, permanent, replies)
            self.assertNotIn(b"MAIL FROM", written)
            self.assertNotIn(b"AUTH ", written)

    def test_startTLSRefusedOpportunistic(self) -> None:
        """
        With opportunistic TLS, a refused STARTTLS is not the end: the mail
        goes in clear text (RFC 3207 4).
        """
        _, protocol, transport, _ = self.connect(tls=ClientTLSPolicy("opportunistic"))
        protocol.dataReceived(b"220 mx\r\n")
        protocol.dataReceived(b"250-mx\r\n250 STARTTLS\r\n")
        self.assertEqual(
            self.exchange(protocol, transport, b"454 not now\r\n"),
            b"MAIL FROM:<sender@example.test>\r\n",
        )


class CancelTests(SynchronousTestCase):
    """
    Cancelling L{ESMTPSenderFactory.deferred} ends the delivery at once.
    """

    def test_cancelAbortsConnection(self) -> None:
        """
        Cancelling mid-session aborts the connection at once, fails the
        Deferred with L{CancelledError} once, and leaves no timer.
        """
        clock = Clock()
        factory = ESMTPSenderFactory(clock, [transaction()], heloName="client.test")
        protocol = factory.buildProtocol(IPv4Address("TCP", HOST, 25))
        transport = StringTransport(peerAddress=IPv4Address("TCP", HOST, 25))
        protocol.makeConnection(transport)
        protocol.dataReceived(b"220 mx\r\n")
        self.assertEqual(transport.value(), b"EHLO client.test\r\n")
        factory.deferred.cancel()
        self.failureResultOf(factory.deferred, CancelledError)
        self.assertTrue(transport.disconnected)
        protocol.dataReceived(b"250 mx\r\n")
        protocol.connectionLost()
        self.assertEqual(transport.value(), b"EHLO client.test\r\n")
        self.assertEqual(clock.getDelayedCalls(), [])

    def test_cancelWhileConnecting(self) -> None:
        """
        Cancelling before the connection is made stops the attempt, and a
        connection that is made all the same is aborted as it opens.
        """
        memory = MemoryReactorClock()
        factory = ESMTPSenderFactory(memory, [transaction()])
        d = factory.deliverVia(TCP4ClientEndpoint(memory, HOST, 25), HOST, 25)
        [connector] = memory.connectors
        d.cancel()
        self.failureResultOf(d, CancelledError)
        self.assertTrue(connector.stoppedConnecting)  # type: ignore[attr-defined]
        protocol = factory.buildProtocol(IPv4Address("TCP", HOST, 25))
        transport = StringTransport()
        protocol.makeConnection(transport)
        self.assertTrue(transport.disconnected)
        self.assertEqual(transport.value(), b"")
        self.assertEqual(memory.getDelayedCalls(), [])


class _Tracked:
    """
    A listening port whose connections are counted, so a test can wait for
    the server side to close before it ends.  (Not a WrappingFactory: its
    wrapper would hide the protocol's IHandshakeListener from TLS.)
    """

    def __init__(self, factory: Factory) -> None:
        self.factory = factory
        self.open: set[Protocol] = set()
        self.port: IListeningPort | None = None
        build = factory.buildProtocol

        def buildProtocol(addr: Any) -> Any:
            protocol = build(addr)
            if protocol is not None:
                self.open.add(protocol)
                lost = protocol.connectionLost

                def connectionLost(reason: Any = None) -> None:
                    self.open.discard(protocol)
                    lost(reason)

                protocol.connectionLost = connectionLost  # type: ignore[method-assign]
            return protocol

        factory.buildProtocol = buildProtocol  # type: ignore[method-assign]

    async def listen(self, endpoint: Any) -> int:
        self.port = await endpoint.listen(self.factory)
        return int(self.port.getHost().port)

    async def close(self) -> None:
        deadline = time.monotonic() + 5
        while self.open and time.monotonic() < deadline:
            await deferLater(reactor, 0.01, lambda: None)
        for protocol in list(self.open):
            assert protocol.transport is not None
            protocol.transport.abortConnection()  # type: ignore[attr-defined]
        if self.port is not None:
            await self.port.stopListening()


class _LoopbackMixin:
    """
    Start servers on 127.0.0.1 port 0 and stop them after the test.
    """

    addCleanup: Callable[..., None]

    async def listen(self, factory: Factory, contextFactory: Any = None) -> int:
        tracked = _Tracked(factory)
        endpoint = (
            SSL4ServerEndpoint(reactor, 0, contextFactory, interface=HOST)
            if contextFactory is not None
            else TCP4ServerEndpoint(reactor, 0, interface=HOST)
        )
        port = await tracked.listen(endpoint)
        self.addCleanup(lambda: ensureDeferred(tracked.close()))
        return port


async def waitUntil(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    """
    Let the reactor run until C{condition} holds.

    @raise AssertionError: it did not within C{seconds}.
    """
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"the condition did not hold within {seconds:g}s")
        await deferLater(reactor, 0.01, lambda: None)


async def deliver(
    port: int,
    *transactions: Transaction,
    implicitTLS: bool = False,
    **kwargs: Any,
) -> list[DeliveryResult]:
    """
    Deliver with a new factory to 127.0.0.1:port.
    """
    kwargs.setdefault("timeouts", FAST)
    factory = ESMTPSenderFactory(
        reactor, transactions or (transaction(),), host="mx.test", **kwargs
    )
    endpoint: Any = TCP4ClientEndpoint(reactor, HOST, port, timeout=5)
    if implicitTLS:
        endpoint = wrapClientTLS(factory.tls.connectionCreator(), endpoint)
    return await factory.deliverVia(endpoint, HOST, port)


def ourServer(
    backend: RecordingBackend | None = None, tls: Any = None, **kwargs: Any
) -> tuple[SMTPServerFactory, RecordingBackend]:
    """
    Our server on the real reactor, recording what it receives.
    """
    backend = backend or RecordingBackend()
    factory = SMTPServerFactory(
        backend, hostname="mx.test", tls=tls, reactor=reactor, **kwargs
    )
    return factory, backend


def clientTLS() -> ClientTLSPolicy:
    """
    TLS required, verified against the test CA for C{mx.test}.
    """
    return ClientTLSPolicy(
        "required", serverName="mx.test", verify=True, trustRoot=testCA().trustRoot()
    )


class OurServerTests(_LoopbackMixin, TestCase):
    """
    The client against our own server, over loopback.
    """

    async def test_plainDelivery(self) -> None:
        """
        Over plain TCP with PIPELINING, accepted and refused recipients are
        reported with the server's replies, and the message arrives whole.
        """
        factory, backend = ourServer()
        port = await self.listen(factory)
        [result] = await deliver(
            port, transaction("alice@example.test", "nobody@example.test")
        )
        self.assertTrue(result.delivered)
        self.assertEqual(result.accepted, ("alice@example.test",))
        self.assertEqual(
            result.refused,
            (("nobody@example.test", SMTPReply(550, "5.1.1", "No such user")),),
        )
        self.assertEqual((result.code, result.enhanced), (250, "2.0.0"))
        self.assertEqual(
            (result.address, result.port, result.host), (HOST, port, "mx.test")
        )
        self.assertIsNone(result.tls)
        [received] = backend.messages
        self.assertTrue(received.raw.endswith(MESSAGE))

    async def test_dotStuffingRoundTrip(self) -> None:
        """
        A message of several data blocks, with dot lines at and around every
        block boundary, arrives exactly as sent.
        """
        lines = []
        total = 0
        while total < 3 * DATA_BLOCK:
            n = len(lines)
            lines.append(b"." * (n % 7) + b"x" * (n % 113) + b"\r\n")
            total += len(lines[-1])
        message = b"Subject: dots\r\n\r\n" + b"".join(lines)
        factory, backend = ourServer(maxMessageSize=10 * DATA_BLOCK)
        port = await self.listen(factory)
        [result] = await deliver(port, transaction(message=message))
        self.assertTrue(result.delivered, result.error)
        self.assertTrue(backend.messages[0].raw.endswith(message))

    async def test_starttlsAndAuthPlain(self) -> None:
        """
        STARTTLS with a certificate verified against the test CA, then AUTH
        PLAIN; the TLS facts are reported.
        """
        factory, backend = ourServer(tls=testCA().serverContext("mx.test"))
        port = await self.listen(factory)
        [result] = await deliver(
            port, tls=clientTLS(), login="alice", password="secret"
        )
        self.assertTrue(result.delivered, result.error)
        tls = result.tls
        assert tls is not None
        self.assertIn(tls.version, ("TLSv1.2", "TLSv1.3"))
        self.assertTrue(tls.cipher)
        self.assertEqual(
            (tls.serverName, tls.nameMatched, tls.verified), ("mx.test", True, True)
        )
        self.assertEqual(tls.certificateNames, ("mx.test",))
        self.assertEqual(backend.messages[0].login, "alice")

    async def test_authLoginRefused(self) -> None:
        """
        A refused AUTH LOGIN ends the attempt with the server's reply.
        """
        factory, backend = ourServer(tls=testCA().serverContext("mx.test"))
        port = await self.listen(factory)
        [result] = await deliver(
            port, tls=clientTLS(), login="alice", password="wrong", mechanism="LOGIN"
        )
        self.assertEqual((result.code, result.enhanced), (535, "5.7.8"))
        self.assertTrue(result.permanent)
        self.assertEqual(backend.messages, [])

    async def test_implicitTLS(self) -> None:
        """
        Implicit TLS (RFC 8314): the handshake comes first, then the greeting.
        """
        factory, _backend = ourServer()
        port = await self.listen(factory, testCA().serverContext("mx.test"))
        [result] = await deliver(
            port, implicitTLS=True, tls=clientTLS(), login="alice", password="secret"
        )
        self.assertTrue(result.delivered, result.error)
        assert result.tls is not None
        self.assertTrue(result.tls.verified)

    async def test_smtputf8(self) -> None:
        """
        A non-ASCII address goes with SMTPUTF8 to a server offering it.
        """
        factory, backend = ourServer()
        port = await self.listen(factory)
        message = "From: jörg@example.test\r\n\r\nHallo\r\n".encode()
        [result] = await deliver(
            port, Transaction("jörg@example.test", ("zoë@example.test",), message)
        )
        self.assertTrue(result.delivered, result.error)
        self.assertEqual(result.accepted, ("zoë@example.test",))
        self.assertTrue(backend.messages[0].raw.endswith(message))


class _AioHandler:
    """
    An aiosmtpd handler keeping the envelopes it receives.
    """

    def __init__(self) -> None:
        self.envelopes: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        return "250 2.0.0 Message accepted"


class _AioServer:
    """
    aiosmtpd's SMTP protocol served on an asyncio loop in a thread, on
    127.0.0.1 port 0.
    """

    def __init__(self, implicitTLS: bool = False, **smtpArgs: Any) -> None:
        from aiosmtpd.smtp import SMTP

        self.handler = _AioHandler()
        self.loop = asyncio.new_event_loop()
        self.port = 0
        ready = threading.Event()
        context = None
        if implicitTLS or smtpArgs.get("tls_context") is not None:
            key, cert = testCA().issue("aio.test")
            context = stdssl.SSLContext(stdssl.PROTOCOL_TLS_SERVER)
            import tempfile

            with tempfile.NamedTemporaryFile() as k, tempfile.NamedTemporaryFile() as c:
                k.write(key)
                c.write(cert)
                k.flush()
                c.flush()
                context.load_cert_chain(c.name, k.name)
            if not implicitTLS:
                smtpArgs["tls_context"] = context

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            server = self.loop.run_until_complete(
                self.loop.create_server(
                    lambda: SMTP(self.handler, hostname="aio.test", **smtpArgs),
                    HOST,
                    0,
                    ssl=context if implicitTLS else None,
                )
            )
            self.port = server.sockets[0].getsockname()[1]
            ready.set()
            self.loop.run_forever()
            server.close()
            self.loop.run_until_complete(server.wait_closed())
            self.loop.close()

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        if not ready.wait(10):
            raise RuntimeError("aiosmtpd did not start")

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def aioTLS() -> ClientTLSPolicy:
    """
    TLS required, verified against the test CA for C{aio.test}.
    """
    return ClientTLSPolicy(
        "required", serverName="aio.test", verify=True, trustRoot=testCA().trustRoot()
    )


class AiosmtpdTests(TestCase):
    """
    The client against aiosmtpd, a server it shares no code with: it offers
    no PIPELINING, so commands go one at a time.
    """

    def server(self, **kwargs: Any) -> _AioServer:
        server = _AioServer(**kwargs)
        self.addCleanup(server.stop)
        return server

    async def test_plainWithoutPipelining(self) -> None:
        """
        A plain session without PIPELINING delivers the message unchanged.
        """
        server = self.server()
        message = b"Subject: x\r\n\r\n.leading dot\r\nend\r\n"
        [result] = await deliver(
            server.port,
            transaction("a@example.test", "b@example.test", message=message),
        )
        self.assertTrue(result.delivered, result.error)
        self.assertEqual(result.text, "Message accepted")
        [envelope] = server.handler.envelopes
        self.assertEqual(envelope.rcpt_tos, ["a@example.test", "b@example.test"])
        self.assertEqual(envelope.original_content, message)

    async def test_smtputf8Off(self) -> None:
        """
        Without SMTPUTF8 on the server, a non-ASCII address is a clear
        permanent failure and nothing is sent.
        """
        server = self.server(enable_SMTPUTF8=False)
        [result] = await deliver(server.port, transaction("jörg@example.test"))
        self.assertTrue(result.permanent)
        assert result.error is not None
        self.assertIn("SMTPUTF8", result.error)
        self.assertEqual(server.handler.envelopes, [])

    async def test_smtputf8On(self) -> None:
        """
        With SMTPUTF8 on the server, a non-ASCII address is delivered.
        """
        server = self.server(enable_SMTPUTF8=True)
        [result] = await deliver(server.port, transaction("jörg@example.test"))
        self.assertTrue(result.delivered, result.error)
        self.assertEqual(server.handler.envelopes[0].rcpt_tos, ["jörg@example.test"])

    async def test_starttlsAuthLogin(self) -> None:
        """
        STARTTLS then AUTH LOGIN with aiosmtpd's authenticator.
        """
        from aiosmtpd.smtp import AuthResult

        seen: list[tuple[str, bytes]] = []

        def authenticator(
            server: Any, session: Any, envelope: Any, mechanism: str, data: Any
        ) -> Any:
            seen.append((mechanism, data.login))
            return AuthResult(success=data.password == b"pa:ss word")

        server = self.server(tls_context=True, authenticator=authenticator)
        [result] = await deliver(
            server.port,
            tls=aioTLS(),
            login="alice",
            password="pa:ss word",
            mechanism="LOGIN",
        )
        self.assertTrue(result.delivered, result.error)
        self.assertEqual(seen, [("LOGIN", b"alice")])
        assert result.tls is not None
        self.assertTrue(result.tls.verified)

    async def test_implicitTLSAuthPlain(self) -> None:
        """
        Implicit TLS and AUTH PLAIN.
        """
        from aiosmtpd.smtp import AuthResult

        def authenticator(*args: Any) -> Any:
            return AuthResult(success=args[-1].password == b"secret")

        server = self.server(
            implicitTLS=True, authenticator=authenticator, auth_require_tls=False
        )
        [result] = await deliver(
            server.port,
            implicitTLS=True,
            tls=aioTLS(),
            login="alice",
            password="secret",
        )
        self.assertTrue(result.delivered, result.error)
        assert result.tls is not None
        self.assertEqual(result.tls.serverName, "aio.test")


class _Peer(LineReceiver):
    """
    A small scripted SMTP server: C{factory.script} maps each command verb
    to the bytes to answer (or L{None}: say nothing); DATA content is taken
    raw to the end-of-data line.
    """

    delimiter = b"\r\n"
    factory: _PeerFactory

    def connectionMade(self) -> None:
        if self.factory.greeting:
            self.transport.write(self.factory.greeting)  # type: ignore[union-attr]

    def lineReceived(self, line: bytes) -> None:
        verb = line.split(b" ")[0].upper().decode()
        answer = self.factory.script.get(verb, b"250 ok\r\n")
        if verb == "DATA" and answer.startswith(b"354"):
            self.setRawMode()
        if answer:
            self.transport.write(answer)  # type: ignore[union-attr]

    def rawDataReceived(self, data: bytes) -> None:
        self.factory.data += data
        if self.factory.data.endswith(b"\r\n.\r\n") and self.factory.afterData:
            self.transport.write(self.factory.afterData)  # type: ignore[union-attr]
            self.setLineMode()


class _PeerFactory(Factory):
    protocol = _Peer

    def __init__(
        self,
        greeting: bytes = b"220 peer\r\n",
        script: dict[str, bytes] | None = None,
        afterData: bytes = b"250 done\r\n",
    ) -> None:
        self.greeting = greeting
        self.script = script or {
            "EHLO": b"250 peer\r\n",
            "DATA": b"354 go\r\n",
            "QUIT": b"221 bye\r\n",
        }
        self.afterData = afterData
        self.data = b""


class BadPeerTests(_LoopbackMixin, TestCase):
    """
    Broken servers: each gives a clear error in the result, within the
    short configured timeout, and nothing is raised into the reactor.
    Silent servers are waited for on a fake clock, so their tests take no
    real time however long the timeout.
    """

    async def attempt(self, peer: _PeerFactory) -> DeliveryResult:
        port = await self.listen(peer)
        started = time.monotonic()
        [result] = await deliver(port, timeouts=SHORT)
        self.assertLess(time.monotonic() - started, 3.0)
        self.assertFalse(result.delivered)
        self.assertFalse(result.permanent)
        return result

    async def timeOut(
        self,
        peer: _PeerFactory,
        waiting: Callable[[Clock], bool],
        *transactions: Transaction,
    ) -> DeliveryResult:
        """
        Deliver to C{peer} over loopback with the client's timers on a
        fake clock set to 30 seconds for every step; once C{waiting} says
        the client waits for the silent step, nothing ends just before the
        30 seconds pass, and the attempt ends when they have.
        """
        port = await self.listen(peer)
        clock = Clock()
        factory = ESMTPSenderFactory(
            clock,
            transactions or (transaction(),),
            host="mx.test",
            timeouts=SMTPTimeouts.uniform(30.0),
        )
        endpoint = TCP4ClientEndpoint(reactor, HOST, port, timeout=5)
        delivering = factory.deliverVia(endpoint, HOST, port)
        await waitUntil(lambda: waiting(clock))
        clock.advance(29.9)
        self.assertFalse(delivering.called)
        clock.advance(0.1)
        [result] = await delivering.addTimeout(5, reactor)
        self.assertFalse(result.delivered)
        self.assertFalse(result.permanent)
        self.assertEqual(clock.getDelayedCalls(), [])
        return result

    async def test_garbage(self) -> None:
        """
        A greeting that is not a reply is a protocol error.
        """
        result = await self.attempt(_PeerFactory(greeting=b"HTTP/1.1 400 Bad\r\n"))
        self.assertEqual(
            result.error, "protocol error: malformed reply line b'HTTP/1.1 400 Bad'"
        )

    async def test_longLine(self) -> None:
        """
        A reply line over 512 octets is a protocol error, even before its
        end arrives.
        """
        result = await self.attempt(_PeerFactory(greeting=b"220 " + b"x" * 600))
        self.assertEqual(result.error, "protocol error: reply line over 512 octets")

    async def test_endlessMultiLine(self) -> None:
        """
        A multi-line reply that never ends is a protocol error once it
        passes the bound.
        """
        result = await self.attempt(_PeerFactory(greeting=b"220-more\r\n" * 1000))
        self.assertEqual(
            result.error, "protocol error: multi-line reply of over 100 lines"
        )

    async def test_silentGreeting(self) -> None:
        """
        A server that never greets times out.
        """
        result = await self.timeOut(
            _PeerFactory(greeting=b""), lambda clock: bool(clock.getDelayedCalls())
        )
        self.assertEqual(result.error, "timed out after 30s waiting for greeting")

    async def test_stopsAnsweringMidData(self) -> None:
        """
        A server that takes the data and never answers the final dot times
        out; the dot-stuffed bytes it received are exact.
        """
        peer = _PeerFactory(afterData=b"")
        message = b".a\r\nb\r\n.\r\n..c\r\n"
        result = await self.timeOut(
            peer,
            lambda clock: peer.data.endswith(b"\r\n.\r\n"),
            transaction(message=message),
        )
        self.assertEqual(
            result.error, "timed out after 30s waiting for reply to end of data"
        )
        self.assertEqual(peer.data, b"..a\r\nb\r\n..\r\n...c\r\n.\r\n")

    async def test_dotAtBlockBoundary(self) -> None:
        """
        Lines starting with a dot just before, at and after the boundary of
        the blocks the message is written in are stuffed, as the server's
        received bytes show; bare LF line ends arrive as CRLF.
        """
        peer = _PeerFactory()
        port = await self.listen(peer)
        head = b"a" * (DATA_BLOCK - 3) + b"\r\n"
        message = head + b".x\r\n.\n..y\r\n" + b"b" * DATA_BLOCK + b"\r\n.z"
        [result] = await deliver(port, transaction(message=message))
        self.assertTrue(result.delivered, result.error)
        self.assertEqual(
            peer.data,
            head + b"..x\r\n..\r\n...y\r\n" + b"b" * DATA_BLOCK + b"\r\n..z\r\n.\r\n",
        )

    async def test_closesMidSession(self) -> None:
        """
        A server that refuses MAIL with 421 and hangs up ends the attempt
        with that reply, a temporary failure.
        """
        peer = _PeerFactory(
            script={"EHLO": b"250 peer\r\n", "MAIL": b"421 4.3.2 bye\r\n"}
        )
        result = await self.attempt(peer)
        self.assertEqual((result.code, result.enhanced), (421, "4.3.2"))

    async def test_connectionRefused(self) -> None:
        """
        Nothing listening: a connection error in the result.
        """
        [result] = await deliver(1, timeouts=SHORT)
        assert result.error is not None
        self.assertTrue(result.error.startswith("connection failed"), result.error)
        self.assertEqual((result.address, result.port), (HOST, 1))
