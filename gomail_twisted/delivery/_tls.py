# -*- test-case-name: tests.test_delivery_tls,tests.test_delivery_send -*-
"""
TLS for the SMTP client: when to use it (RFC 3207, RFC 8314), the client
connection it makes, and what the server's certificate proved, checked
with C{service_identity} (RFC 6125).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, cast
from weakref import WeakKeyDictionary

from cryptography import x509
from OpenSSL import SSL
from service_identity import CertificateError, VerificationError
from service_identity.cryptography import (
    verify_certificate_hostname,
    verify_certificate_ip_address,
)
from twisted.internet import ssl
from twisted.internet.interfaces import IOpenSSLClientConnectionCreator, ITransport
from zope.interface import implementer

from gomail_twisted.tls import tlsInfo

StartTLS = Literal["never", "opportunistic", "required"]


@dataclass(frozen=True)
class TLSFacts:
    """
    What an outgoing TLS session was, and what the server's certificate
    proved.

    @ivar version: the protocol version, such as C{"TLSv1.3"}.
    @ivar cipher: the cipher suite.
    @ivar serverName: the name the certificate was checked against (the
        one that matched, when one did), or L{None} when none was.
    @ivar nameMatched: whether the certificate is valid for C{serverName}
        (RFC 6125 6), or L{None} when it was not checked.
    @ivar verified: whether the server proved who it is: its chain
        verified against the trust roots and its certificate is valid for
        a name the policy checks (RFC 6125).  This is reported whether or
        not the policy enforced it, so opportunistic deliveries show how
        many could have been verified.
    @ivar certificateNames: the DNS names the certificate lists.
    @ivar verifyError: why the server did not prove who it is, such as
        C{"certificate verify failed: self-signed certificate"} or
        C{"certificate is not valid for mx.example.com (it names
        x.test)"}; L{None} when it did.
    """

    version: str
    cipher: str
    serverName: str | None
    nameMatched: bool | None
    verified: bool
    certificateNames: tuple[str, ...]
    verifyError: str | None = None


@dataclass(frozen=True)
class ClientTLSPolicy:
    """
    How an SMTP client connection uses TLS.

    @ivar startTLS: C{"never"}, C{"opportunistic"} (STARTTLS when offered,
        RFC 3207) or C{"required"} (no TLS, no mail).
    @ivar serverName: the name sent with SNI and, unless
        C{acceptableNames} is given, the one the certificate is checked
        against.
    @ivar acceptableNames: names of which the certificate must be valid
        for at least one, when C{verify} is set.
    @ivar verify: require the chain to verify against C{trustRoot} and a
        name to match; otherwise both are checked and reported in
        L{TLSFacts} but not enforced.
    @ivar trustRoot: an C{IOpenSSLTrustRoot}, or L{None} for the
        platform's.
    @ivar options: a caller's C{IOpenSSLClientConnectionCreator}, used as
        it is instead of one made from the fields above.
    """

    startTLS: StartTLS = "opportunistic"
    serverName: str | None = None
    acceptableNames: tuple[str, ...] = ()
    verify: bool = False
    trustRoot: Any = None
    options: Any = None

    def connectionCreator(self) -> IOpenSSLClientConnectionCreator:
        """
        @return: what to start TLS with, for STARTTLS or an implicit TLS
            endpoint; its connections share one OpenSSL context with every
            other policy of the same C{trustRoot} (the same object), so the
            trust store is loaded once per process and trust root.
        """
        if self.options is not None:
            return IOpenSSLClientConnectionCreator(self.options)
        return _ConnectionCreator(
            _contexts.contextFor(self.trustRoot), self.serverName, self.verify
        )

    def inspect(
        self, transport: ITransport | None
    ) -> tuple[TLSFacts | None, str | None]:
        """
        Read the facts of the established session, with whether its chain
        verified, and check the certificate's names with
        C{service_identity}.

        @param transport: the TLS transport.
        @return: the facts, and an error when the policy required a name
            that the certificate does not carry.
        """
        info = tlsInfo(transport)
        if info is None:
            return None, "no TLS session was established"
        cert = (
            x509.load_der_x509_certificate(info.peerCertificate)
            if info.peerCertificate is not None
            else None
        )
        names = _dnsNames(cert) if cert is not None else ()
        candidates = self.acceptableNames or (
            (self.serverName,) if self.serverName else ()
        )
        checked = self.serverName
        matched: bool | None = None
        if candidates:
            checked = candidates[0]
            matched = False
            for name in candidates:
                if cert is not None and _matches(cert, name):
                    checked, matched = name, True
                    break
        nameError = None
        if not matched:
            listed = ", ".join(names) or "no DNS name"
            wanted = " or ".join(candidates) or "(no name given)"
            nameError = f"certificate is not valid for {wanted} (it names {listed})"
        verifyError = _chainError(transport) or nameError
        facts = TLSFacts(
            info.version,
            info.cipher,
            checked,
            matched,
            verifyError is None,
            names,
            verifyError,
        )
        if self.verify and self.options is None and nameError is not None:
            return facts, nameError
        return facts, None


def _dnsNames(cert: x509.Certificate) -> tuple[str, ...]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return ()
    return tuple(san.value.get_values_for_type(x509.DNSName))


def _matches(cert: x509.Certificate, name: str) -> bool:
    """
    @return: whether C{cert} is valid for C{name}, a DNS name (RFC 6125 6)
        or an IP address (an iPAddress subjectAltName, RFC 5280 4.2.1.6).
    """
    try:
        if isIPAddress(name):
            verify_certificate_ip_address(cert, name)
        else:
            verify_certificate_hostname(cert, name.encode("idna").decode("ascii"))
    except (VerificationError, CertificateError, UnicodeError, ValueError):
        return False
    return True


class _ChainCheck:
    """
    What OpenSSL's verification of one connection's chain found.

    @ivar checked: whether OpenSSL verified a chain at all (the server
        sent a certificate).
    @ivar error: the first error found, as OpenSSL words it, or L{None}.
    """

    def __init__(self, enforce: bool) -> None:
        self._enforce = enforce
        self.checked = False
        self.error: str | None = None

    def verifyCallback(
        self, connection: SSL.Connection, cert: Any, errno: int, depth: int, ok: int
    ) -> bool:
        """
        Called by OpenSSL for each certificate of the chain, from the root
        down to the server's own; record the first error and, unless
        verification is enforced, let the handshake go on.
        """
        self.checked = True
        if not ok and self.error is None:
            self.error = _verifyErrorText(errno)
        return bool(ok) or not self._enforce


#: The chain checks of live connections made by L{_ConnectionCreator}.
_chainChecks: WeakKeyDictionary[SSL.Connection, _ChainCheck] = WeakKeyDictionary()


def _verifyErrorText(errno: int) -> str:
    """
    @param errno: an X.509 verification error code.
    @return: OpenSSL's words for it, such as C{"self-signed certificate"}.
    """
    try:
        # pyOpenSSL has no public call for this; without it, the code.
        from OpenSSL._util import ffi, lib

        text = ffi.string(lib.X509_verify_cert_error_string(errno))
        return bytes(text).decode("ascii", "replace")
    except (ImportError, AttributeError):
        return f"X.509 verification error {errno}"


def _chainError(transport: ITransport | None) -> str | None:
    """
    @param transport: a TLS transport whose handshake is done.
    @return: why its chain did not verify against the trust roots, or
        L{None} when it did.
    """
    handle = cast(Any, transport).getHandle()
    check = _chainChecks.get(handle)
    if check is None:
        # A caller's own connection creator: a chain that does not verify
        # ends its handshake when its context asks OpenSSL to verify.
        if handle.get_verify_mode() & SSL.VERIFY_PEER:
            return None
        return "certificate chain not verified: the TLS options given do not verify"
    if not check.checked:
        return "the server sent no certificate"
    if check.error is not None:
        return f"certificate verify failed: {check.error}"
    return None


def isIPAddress(name: str) -> bool:
    """
    @param name: a host name or address.
    @return: whether it is an IPv4 or IPv6 address literal.
    """
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


class _ContextCache:
    """
    The OpenSSL contexts of client connections, one per trust root, so a
    trust store (the platform's is a file of a few hundred certificates)
    is loaded once, not for every connection.

    A context holds only what every connection to every server shares:
    the protocol versions and the trust store.  What differs per
    connection is set on the connection: the name sent with SNI, and
    whether a chain that does not verify ends the handshake or is only
    recorded (L{_ChainCheck}); the name
    is checked after the handshake (L{ClientTLSPolicy.inspect}).

    @ivar _byRoot: the contexts of callers' trust roots; the key is the
        trust root object, held weakly, so a context lives as long as its
        root.
    """

    def __init__(self, platformTrust: Callable[[], Any] = ssl.platformTrust) -> None:
        """
        @param platformTrust: makes the C{IOpenSSLTrustRoot} of the
            platform, used for a policy without a trust root of its own.
        """
        self._platformTrust = platformTrust
        self._platform: SSL.Context | None = None
        self._byRoot: WeakKeyDictionary[Any, SSL.Context] = WeakKeyDictionary()

    def contextFor(self, trustRoot: Any) -> SSL.Context:
        """
        @param trustRoot: an C{IOpenSSLTrustRoot}, or L{None} for the
            platform's.
        @return: the context verifying against it, made on first use.
        """
        if trustRoot is None:
            if self._platform is None:
                self._platform = _makeContext(self._platformTrust())
            return self._platform
        try:
            context = self._byRoot.get(trustRoot)
        except TypeError:
            # Not weakly referenceable: caching it would keep it alive for
            # good, so it gets a context of its own each time.
            return _makeContext(trustRoot)
        if context is None:
            context = self._byRoot[trustRoot] = _makeContext(trustRoot)
        return context


def _makeContext(trustRoot: Any) -> SSL.Context:
    options = ssl.CertificateOptions(
        trustRoot=trustRoot, raiseMinimumTo=ssl.TLSVersion.TLSv1_2
    )
    return options.getContext()


#: The contexts every client connection shares.
_contexts = _ContextCache()


@implementer(IOpenSSLClientConnectionCreator)
class _ConnectionCreator:
    """
    Client TLS connections on a shared context: TLS 1.2 or newer, SNI, and
    the chain verified against the trust roots, the handshake ended when
    it does not verify and C{enforce} is set; the name is checked after
    the handshake, so a mismatch gets a clear error of its own.
    """

    def __init__(
        self, context: SSL.Context, serverName: str | None, enforce: bool
    ) -> None:
        self._context = context
        self._serverName = serverName
        self._enforce = enforce

    def clientConnectionForTLS(self, tlsProtocol: Any) -> SSL.Connection:
        connection = SSL.Connection(self._context, None)
        connection.set_app_data(tlsProtocol)
        check = _chainChecks[connection] = _ChainCheck(self._enforce)
        mode = SSL.VERIFY_PEER
        if self._enforce:
            mode |= SSL.VERIFY_FAIL_IF_NO_PEER_CERT
        connection.set_verify(mode, check.verifyCallback)
        name = self._serverName
        if name and not isIPAddress(name):
            connection.set_tlsext_host_name(name.encode("idna"))
        return connection


def describeTLSError(reason: Any, transport: Any = None) -> str:
    """
    @param reason: a failure or exception from a TLS handshake.
    @param transport: the TLS transport it happened on, if known, for why
        the chain did not verify.
    @return: OpenSSL's reasons, readable, such as C{"certificate verify
        failed (self-signed certificate)"}.
    """
    value = getattr(reason, "value", reason)
    if isinstance(value, SSL.Error) and value.args and isinstance(value.args[0], list):
        reasons = [str(entry[-1]) for entry in value.args[0] if entry]
        if reasons:
            text = "; ".join(reasons)
            handle = getattr(transport, "getHandle", lambda: None)()
            check = _chainChecks.get(handle) if handle is not None else None
            if check is not None and check.error is not None:
                text += f" ({check.error})"
            return text
    return str(value)
