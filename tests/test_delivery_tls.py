# -*- test-case-name: tests.test_delivery_tls -*-
"""
Tests for the SMTP client's TLS layer, L{gomail_twisted.delivery._tls}:
contexts shared per trust root, and what a policy makes of a certificate,
with handshakes run in memory between two OpenSSL connections.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

from OpenSSL import SSL
from twisted.internet import ssl
from twisted.internet._sslverify import IOpenSSLTrustRoot
from twisted.internet.interfaces import ISSLTransport, ITransport
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import alsoProvides, implementer

from gomail_twisted.delivery import _tls
from gomail_twisted.delivery._tls import ClientTLSPolicy, _ContextCache
from gomail_twisted.tls import selfSignedCertificate, serverContextFactory
from tests._certs import testCA


@implementer(IOpenSSLTrustRoot)
class CountingTrustRoot:
    """
    A trust root that counts how often it is loaded into a context.

    @ivar loads: how many times it was.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.loads = 0

    def _addCACertsToContext(self, context: SSL.Context) -> None:
        self.loads += 1
        self.inner._addCACertsToContext(context)


def _tlsProtocol() -> Any:
    """
    What Twisted's own connection creators read of the TLS protocol they
    are given: its factory, wrapping no factory.
    """
    return SimpleNamespace(factory=SimpleNamespace(wrappedFactory=None))


class _Handle:
    """
    The part of a TLS transport that L{ClientTLSPolicy.inspect} reads.
    """

    def __init__(self, connection: SSL.Connection) -> None:
        self.connection = connection
        alsoProvides(self, ISSLTransport)

    def getHandle(self) -> SSL.Connection:
        return self.connection


def handshake(client: SSL.Connection, server: ssl.CertificateOptions) -> Any:
    """
    Run a TLS handshake in memory between C{client} and a server with the
    given options.

    @return: C{client} as a transport for L{ClientTLSPolicy.inspect}.
    @raise SSL.Error: the handshake failed.
    """
    peer = SSL.Connection(server.getContext(), None)
    peer.set_accept_state()
    client.set_connect_state()
    for _ in range(20):
        moved = False
        for connection in (client, peer):
            try:
                connection.do_handshake()
            except SSL.WantReadError:
                pass
        for source, sink in ((client, peer), (peer, client)):
            try:
                data = source.bio_read(2**16)
            except SSL.WantReadError:
                continue
            sink.bio_write(data)
            moved = True
        if not moved:
            return cast(ITransport, _Handle(client))
    raise AssertionError("the handshake did not end")


class ContextCacheTests(SynchronousTestCase):
    """
    Client connections share one OpenSSL context per trust root, so a trust
    store is loaded once, while SNI stays per connection.
    """

    def setUp(self) -> None:
        self.platformLoads: list[Any] = []

        def platformTrust() -> Any:
            root = ssl.platformTrust()
            self.platformLoads.append(root)
            return root

        self.patch(_tls, "_contexts", _ContextCache(platformTrust))

    def contextOf(self, policy: ClientTLSPolicy) -> SSL.Context:
        connection = policy.connectionCreator().clientConnectionForTLS(None)
        return connection.get_context()

    def test_platformTrustLoadedOnce(self) -> None:
        """
        Policies without a trust root, whatever their names and whether
        they enforce verification, share one context and load the
        platform's trust store once.
        """
        contexts = {
            self.contextOf(ClientTLSPolicy(serverName=name, verify=verify))
            for name in ("mx1.example.test", "mx2.example.test", None)
            for verify in (False, True)
        }
        self.assertEqual(len(contexts), 1)
        self.assertEqual(len(self.platformLoads), 1)

    def test_oneContextPerTrustRoot(self) -> None:
        """
        A trust root is loaded into one context however many connections
        use it; another trust root gets a context of its own.
        """
        first = CountingTrustRoot(testCA().trustRoot())
        second = CountingTrustRoot(testCA().trustRoot())
        contexts = [
            self.contextOf(ClientTLSPolicy(serverName="mx.test", trustRoot=root))
            for root in (first, first, second, first, second)
        ]
        self.assertIs(contexts[0], contexts[1])
        self.assertIs(contexts[0], contexts[3])
        self.assertIs(contexts[2], contexts[4])
        self.assertIsNot(contexts[0], contexts[2])
        self.assertEqual((first.loads, second.loads), (1, 1))
        self.assertEqual(self.platformLoads, [])

    def test_serverNamePerConnection(self) -> None:
        """
        Connections on one shared context each send their own name with
        SNI, and none for an address literal (RFC 6066 3).
        """
        root = testCA().trustRoot()
        names = ("mx1.example.test", "mx2.example.test", "192.0.2.1", None)
        sent = [
            ClientTLSPolicy(serverName=name, trustRoot=root)
            .connectionCreator()
            .clientConnectionForTLS(None)
            .get_servername()
            for name in names
        ]
        self.assertEqual(sent, [b"mx1.example.test", b"mx2.example.test", None, None])

    def test_sharedContextStillRejectsWrongName(self) -> None:
        """
        After a connection to one name, a connection on the same context to
        a server whose certificate names another is still refused, and one
        to a right name still accepted.
        """
        ca = testCA()
        root = CountingTrustRoot(ca.trustRoot())

        def connect(name: str, server: str) -> tuple[Any, str | None]:
            policy = ClientTLSPolicy(
                "required", serverName=name, verify=True, trustRoot=root
            )
            client = policy.connectionCreator().clientConnectionForTLS(None)
            facts, error = policy.inspect(handshake(client, ca.serverContext(server)))
            return facts, error

        facts, error = connect("mx1.example.test", "mx1.example.test")
        self.assertIsNone(error)
        self.assertTrue(facts.verified)
        facts, error = connect("mx1.example.test", "mx2.example.test")
        self.assertEqual(
            error,
            "certificate is not valid for mx1.example.test (it names mx2.example.test)",
        )
        self.assertFalse(facts.verified)
        facts, error = connect("mx2.example.test", "mx2.example.test")
        self.assertIsNone(error)
        self.assertEqual(root.loads, 1)

    def test_sharedContextStillRejectsUntrustedChain(self) -> None:
        """
        A context shared with connections that only inspect the
        certificate still ends the handshake of a connection that enforces
        verification when the chain does not verify.
        """
        root = testCA().trustRoot()
        server = serverContextFactory(*selfSignedCertificate("mx.test"))
        lenient = ClientTLSPolicy(serverName="mx.test", trustRoot=root)
        handshake(lenient.connectionCreator().clientConnectionForTLS(None), server)
        strict = ClientTLSPolicy(
            "required", serverName="mx.test", verify=True, trustRoot=root
        )
        client = strict.connectionCreator().clientConnectionForTLS(None)
        with self.assertRaises(SSL.Error) as caught:
            handshake(client, server)
        self.assertEqual(
            _tls.describeTLSError(caught.exception, _Handle(client)),
            "certificate verify failed (self-signed certificate)",
        )


class VerificationReportTests(SynchronousTestCase):
    """
    L{ClientTLSPolicy.inspect} reports whether the server proved who it is,
    and why not, whether or not the policy enforces it.
    """

    def inspect(
        self, server: ssl.CertificateOptions, **policy: Any
    ) -> tuple[Any, str | None]:
        tls = ClientTLSPolicy(**policy)
        client = tls.connectionCreator().clientConnectionForTLS(_tlsProtocol())
        return tls.inspect(handshake(client, server))

    def test_opportunisticTrustedCertificateVerified(self) -> None:
        """
        Without enforcement, a certificate from the trust root valid for
        the name is reported verified.
        """
        ca = testCA()
        facts, error = self.inspect(
            ca.serverContext("mx.test"), serverName="mx.test", trustRoot=ca.trustRoot()
        )
        self.assertIsNone(error)
        self.assertEqual(
            (facts.verified, facts.verifyError, facts.nameMatched), (True, None, True)
        )

    def test_opportunisticReasons(self) -> None:
        """
        Without enforcement, the handshake completes and the facts say why
        the server did not prove who it is: the first chain error in
        OpenSSL's words, else the name that does not match.
        """
        ca = testCA()
        unrelated = selfSignedCertificate("unrelated.test")[1]
        table = [
            (
                serverContextFactory(*selfSignedCertificate("mx.test")),
                ca.trustRoot(),
                "mx.test",
                "certificate verify failed: self-signed certificate",
            ),
            (
                ca.serverContext("mx.test"),
                ssl.trustRootFromCertificates([ssl.Certificate.loadPEM(unrelated)]),
                "mx.test",
                "certificate verify failed: unable to get local issuer certificate",
            ),
            (
                ca.serverContext("other.test"),
                ca.trustRoot(),
                "mx.test",
                "certificate is not valid for mx.test (it names other.test)",
            ),
            (
                ca.serverContext("mx.test"),
                ca.trustRoot(),
                None,
                "certificate is not valid for (no name given) (it names mx.test)",
            ),
        ]
        for server, root, name, reason in table:
            facts, error = self.inspect(server, serverName=name, trustRoot=root)
            self.assertIsNone(error, reason)
            self.assertEqual((facts.verified, facts.verifyError), (False, reason))

    def test_ipAddressName(self) -> None:
        """
        A certificate for an IP address is checked against that address
        (RFC 5280 4.2.1.6).
        """
        server = serverContextFactory(*selfSignedCertificate("127.0.0.1"))
        facts, _ = self.inspect(server, serverName="127.0.0.1")
        self.assertEqual((facts.serverName, facts.nameMatched), ("127.0.0.1", True))

    def test_enforcedNameMismatch(self) -> None:
        """
        With enforcement, a trusted certificate for another name is an
        error, and the facts give the same reason.
        """
        ca = testCA()
        facts, error = self.inspect(
            ca.serverContext("other.test"),
            startTLS="required",
            serverName="mx.test",
            verify=True,
            trustRoot=ca.trustRoot(),
        )
        reason = "certificate is not valid for mx.test (it names other.test)"
        self.assertEqual(
            (error, facts.verified, facts.verifyError), (reason, False, reason)
        )

    def test_callerOptionsThatVerify(self) -> None:
        """
        With a caller's options that verify, a completed handshake means
        the chain verified; the name is checked as for any policy.
        """
        ca = testCA()
        options = ssl.optionsForClientTLS("mx.test", trustRoot=ca.trustRoot())
        facts, error = self.inspect(
            ca.serverContext("mx.test"), serverName="mx.test", options=options
        )
        self.assertEqual((error, facts.verified), (None, True))

    def test_callerOptionsThatDoNotVerify(self) -> None:
        """
        With a caller's options that do not verify, the chain is reported
        unverified, and why.
        """
        ca = testCA()
        options = ssl.CertificateOptions()
        facts, error = self.inspect(
            ca.serverContext("mx.test"), serverName="mx.test", options=options
        )
        self.assertIsNone(error)
        self.assertFalse(facts.verified)
        self.assertIn("do not verify", facts.verifyError)
