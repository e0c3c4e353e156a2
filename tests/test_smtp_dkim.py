# -*- test-case-name: tests.test_smtp_dkim -*-
"""
Tests for DKIM verification in the SMTP server: every signature checked,
the results handed to the message hook, an Authentication-Results header
prepended, and a DNS failure a temperror rather than a lost message.

Each test runs twice: with the factory's C{dkimLookup} and with the
backend wrapped in L{DKIMVerifyingBackend} by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase, TestCase

from gomail_twisted.dkim import (
    DKIMStatus,
    LookupTXT,
    generatePrivateKey,
    keyRecordFor,
    sign,
)
from gomail_twisted.dns import DNSTemporaryError, Resolver
from gomail_twisted.smtp import ReceivedMessage, SMTPServerFactory
from gomail_twisted.smtp.dkimcheck import DKIMVerifyingBackend
from tests._dnsserver import LoopbackDNSServer
from tests._smtphelpers import RecordingBackend, codes, connect, makeFactory, take

MESSAGE = (
    b"From: Alice <alice@example.com>\r\n"
    b"To: bob@example.net\r\n"
    b"Subject: signed\r\n"
    b"\r\n"
    b"Hello Bob.\r\n"
    b".A line with a leading dot.\r\n"
)


def stuff(message: bytes) -> bytes:
    return message.replace(b"\r\n.", b"\r\n..")


def firstField(message: ReceivedMessage) -> str:
    """
    @return: the message's first header field, unfolded, with each run of
        white space made one space.
    """
    name, value = next(iter(message.headers.items()))
    return f"{name}: " + " ".join(value.replace("\r\n", "").split())


def viaFactory(
    backend: RecordingBackend, lookup: LookupTXT, reactor: Any = None
) -> SMTPServerFactory:
    """
    @return: a server that verifies because its factory has C{dkimLookup}.
    """
    if reactor is None:
        factory, _ = makeFactory(backend, dkimLookup=lookup)
        return factory
    return SMTPServerFactory(
        backend, hostname="mx.test", reactor=reactor, dkimLookup=lookup
    )


def viaWrapper(
    backend: RecordingBackend, lookup: LookupTXT, reactor: Any = None
) -> SMTPServerFactory:
    """
    @return: a server whose backend is wrapped in L{DKIMVerifyingBackend}.
    """
    reactor = reactor or Clock()
    wrapped = DKIMVerifyingBackend(backend, lookup, "mx.test", reactor=reactor)
    return SMTPServerFactory(wrapped, hostname="mx.test", reactor=reactor)


class _ServerDKIMTestsMixin:
    """
    Verification with a lookup that answers directly.
    """

    wire = staticmethod(viaFactory)

    def setUp(self) -> None:
        self.key = generatePrivateKey("ed25519")
        self.records: dict[str, Any] = {
            "sel._domainkey.example.com": [keyRecordFor(self.key).encode()]
        }

    def lookup(self, name: str) -> Deferred[Sequence[bytes]]:
        answer = self.records.get(name)
        if isinstance(answer, Exception):
            return fail(answer)
        return succeed(answer or [])

    def deliver(self, message: bytes) -> tuple[RecordingBackend, list[str]]:
        backend = RecordingBackend()
        protocol, transport = connect(self.wire(backend, self.lookup))
        protocol.dataReceived(
            b"EHLO client.test\r\nMAIL FROM:<alice@example.com>\r\n"
            b"RCPT TO:<bob@example.net>\r\nDATA\r\n" + stuff(message) + b".\r\n"
        )
        return backend, codes(take(transport))

    def test_pass(self) -> None:
        """
        A good signature passes; the hook sees the result and the message
        starts with an Authentication-Results header naming our host.
        """
        signed = sign(MESSAGE, "example.com", "sel", self.key) + MESSAGE
        backend, replies = self.deliver(signed)
        self.assertEqual(replies[-1], "250 2.0.0")
        [message] = backend.messages
        assert message.dkim is not None
        [result] = message.dkim
        self.assertEqual(
            (result.status, result.domain, result.selector),
            (DKIMStatus.PASS, "example.com", "sel"),
        )
        self.assertTrue(
            firstField(message).startswith(
                "Authentication-Results: mx.test; dkim=pass "
            )
        )
        self.assertTrue(message.raw.endswith(signed))
        self.assertEqual(
            [name for name, _ in message.headers.items()][:2],
            ["Authentication-Results", "Received"],
        )

    def test_everySignature(self) -> None:
        """
        Two signatures give two results, top to bottom.
        """
        other = generatePrivateKey("rsa", 1024)
        self.records["other._domainkey.example.org"] = [keyRecordFor(other).encode()]
        once = sign(MESSAGE, "example.com", "sel", self.key) + MESSAGE
        twice = sign(once, "example.org", "other", other) + once
        backend, _ = self.deliver(twice)
        assert backend.messages[0].dkim is not None
        self.assertEqual(
            [(r.domain, r.status) for r in backend.messages[0].dkim],
            [("example.org", DKIMStatus.PASS), ("example.com", DKIMStatus.PASS)],
        )

    def test_altered(self) -> None:
        """
        A body changed after signing fails, and is still delivered.
        """
        signed = sign(MESSAGE, "example.com", "sel", self.key) + MESSAGE
        backend, replies = self.deliver(signed.replace(b"Hello", b"Howdy"))
        self.assertEqual(replies[-1], "250 2.0.0")
        assert backend.messages[0].dkim is not None
        self.assertEqual(backend.messages[0].dkim[0].status, DKIMStatus.FAIL)
        self.assertIn("dkim=fail", firstField(backend.messages[0]))

    def test_dnsFailure(self) -> None:
        """
        A temporary DNS failure is a temperror; the message is delivered.
        """
        self.records["sel._domainkey.example.com"] = DNSTemporaryError("SERVFAIL")
        signed = sign(MESSAGE, "example.com", "sel", self.key) + MESSAGE
        backend, replies = self.deliver(signed)
        self.assertEqual(replies[-1], "250 2.0.0")
        assert backend.messages[0].dkim is not None
        self.assertEqual(backend.messages[0].dkim[0].status, DKIMStatus.TEMPERROR)

    def test_unsigned(self) -> None:
        """
        A message without a signature reports dkim=none and no results.
        """
        backend, _ = self.deliver(MESSAGE)
        self.assertEqual(backend.messages[0].dkim, ())
        self.assertTrue(
            backend.messages[0].raw.startswith(
                b"Authentication-Results: mx.test; dkim=none\r\n"
            )
        )

    def test_forgedResultsObscured(self) -> None:
        """
        A received Authentication-Results field that claims our host name is
        renamed (RFC 8601 5); one naming another host is left as it is.
        """
        forged = (
            b"Authentication-Results: MX.test; dkim=pass header.d=example.com\r\n"
            b"Authentication-Results:\r\n other.test; dkim=fail\r\n"
            b"Authentication-Results: (trusted) mx.test; dkim=pass\r\n"
            b'Authentication-Results: "mx.test"; dkim=pass\r\n'
        )
        backend, _ = self.deliver(forged + MESSAGE)
        raw = backend.messages[0].raw
        self.assertIn(b"\r\nX-Original-Authentication-Results: MX.test; dkim=pass", raw)
        self.assertIn(b"\r\nX-Original-Authentication-Results: (trusted) mx", raw)
        self.assertIn(b'\r\nX-Original-Authentication-Results: "mx.test";', raw)
        self.assertIn(b"\r\nAuthentication-Results:\r\n other.test;", raw)
        self.assertTrue(raw.startswith(b"Authentication-Results: mx.test; dkim=none"))
        self.assertTrue(raw.endswith(MESSAGE))

    def test_notCheckedPastTheLimit(self) -> None:
        """
        Past the default limit of signatures, the rest are not checked and
        are reported together as one C{dkim=policy}.
        """
        signed = sign(MESSAGE, "example.com", "sel", self.key) * 30 + MESSAGE
        backend, replies = self.deliver(signed)
        self.assertEqual(replies[-1], "250 2.0.0")
        [message] = backend.messages
        assert message.dkim is not None
        statuses = [r.status for r in message.dkim]
        self.assertEqual(statuses, [DKIMStatus.PASS] * 10 + [DKIMStatus.POLICY] * 20)
        field = firstField(message)
        self.assertEqual(field.count("dkim=pass"), 10)
        self.assertIn('dkim=policy reason="20 signatures: not checked', field)


class ViaFactoryTests(_ServerDKIMTestsMixin, SynchronousTestCase):
    """
    Verification turned on with the factory's C{dkimLookup}.
    """

    def test_off(self) -> None:
        """
        Without a lookup, nothing is verified and nothing is added.
        """
        backend = RecordingBackend()
        factory, _ = makeFactory(backend)
        protocol, _ = connect(factory)
        protocol.dataReceived(
            b"EHLO c\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<c@d.test>\r\nDATA\r\n"
            + MESSAGE
            + b".\r\n"
        )
        self.assertIsNone(backend.messages[0].dkim)
        self.assertTrue(backend.messages[0].raw.startswith(b"Received: "))


class ViaWrapperTests(_ServerDKIMTestsMixin, SynchronousTestCase):
    """
    Verification by a backend wrapped in L{DKIMVerifyingBackend}.
    """

    wire = staticmethod(viaWrapper)


class _RealDNSTestsMixin:
    """
    Verification with the package's resolver against a DNS server on
    loopback.
    """

    timeout = 15
    wire = staticmethod(viaFactory)

    def test_passOverDNS(self: Any) -> Deferred[None]:
        """
        The key is fetched over real DNS and the signature passes.
        """
        server = LoopbackDNSServer()
        key = generatePrivateKey("rsa", 2048)
        record = keyRecordFor(key).encode()
        server.addTXT("sel._domainkey.example.com", record[:200], record[200:])
        port = server.start(reactor)
        self.addCleanup(server.stop)
        resolver = Resolver(reactor, nameservers=["127.0.0.1"], port=port)
        backend = RecordingBackend()
        arrived: Deferred[None] = Deferred()
        held: Deferred[None] = Deferred()

        def onMessage(message: object) -> Deferred[None]:
            # Once the server holds the Deferred this returns.
            reactor.callLater(0, arrived.callback, None)
            return held

        backend.behaviour["message"] = onMessage
        factory = self.wire(backend, resolver.lookupTXT, reactor)
        protocol, transport = connect(factory)
        signed = sign(MESSAGE, "example.com", "sel", key) + MESSAGE
        protocol.dataReceived(
            b"EHLO c\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<c@d.test>\r\nDATA\r\n"
            + stuff(signed)
            + b".\r\n"
        )

        def check(ignored: None) -> None:
            message = backend.messages[0]
            assert message.dkim is not None
            self.assertEqual(message.dkim[0].status, DKIMStatus.PASS)
            held.callback(None)
            self.assertEqual(codes(take(transport))[-1], "250 2.0.0")
            protocol.connectionLost()

        # The test's timeout bounds the wait.
        return arrived.addCallback(check)


class RealDNSViaFactoryTests(_RealDNSTestsMixin, TestCase):
    """
    Real DNS, verification turned on with the factory's C{dkimLookup}.
    """


class RealDNSViaWrapperTests(_RealDNSTestsMixin, TestCase):
    """
    Real DNS, a backend wrapped in L{DKIMVerifyingBackend}, the CPU work in
    the reactor's thread pool.
    """

    wire = staticmethod(viaWrapper)
