# -*- test-case-name: tests.test_smtp_delivery -*-
"""
TLS for the SMTP client: when to use it (RFC 3207, RFC 8314), the client
connection it makes, and what the server's certificate proved, checked
with C{service_identity} (RFC 6125).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any, Literal

from cryptography import x509
from OpenSSL import SSL
from service_identity import CertificateError, VerificationError
from service_identity.cryptography import verify_certificate_hostname
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
    @ivar verified: whether the chain was verified against the trust roots
        and the name had to match, so the server proved who it is.
    @ivar certificateNames: the DNS names the certificate lists.
    """

    version: str
    cipher: str
    serverName: str | None
    nameMatched: bool | None
    verified: bool
    certificateNames: tuple[str, ...]


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
    @ivar verify: verify the chain against C{trustRoot} and require a
        name to match; otherwise the certificate is only inspected.
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
            endpoint.
        """
        if self.options is not None:
            return IOpenSSLClientConnectionCreator(self.options)
        return _ConnectionCreator(self.serverName, self.verify, self.trustRoot)

    def inspect(
        self, transport: ITransport | None
    ) -> tuple[TLSFacts | None, str | None]:
        """
        Read the facts of the established session and check the
        certificate's names with C{service_identity}.

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
        verified = self.verify and self.options is None and bool(matched)
        facts = TLSFacts(info.version, info.cipher, checked, matched, verified, names)
        if self.verify and self.options is None and not matched:
            listed = ", ".join(names) or "no DNS name"
            wanted = " or ".join(candidates) or "(no name given)"
            return facts, f"certificate is not valid for {wanted} (it names {listed})"
        return facts, None


def _dnsNames(cert: x509.Certificate) -> tuple[str, ...]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return ()
    return tuple(san.value.get_values_for_type(x509.DNSName))


def _matches(cert: x509.Certificate, name: str) -> bool:
    """
    @return: whether C{cert} is valid for the DNS name C{name} (RFC 6125 6).
    """
    try:
        verify_certificate_hostname(cert, name.encode("idna").decode("ascii"))
    except (VerificationError, CertificateError, UnicodeError, ValueError):
        return False
    return True


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


@implementer(IOpenSSLClientConnectionCreator)
class _ConnectionCreator:
    """
    Client TLS connections: TLS 1.2 or newer, SNI, and the chain verified
    against the trust roots when asked; the name is checked after the
    handshake, so a mismatch gets a clear error of its own.
    """

    def __init__(self, serverName: str | None, verify: bool, trustRoot: Any) -> None:
        if verify:
            options = ssl.CertificateOptions(
                trustRoot=trustRoot if trustRoot is not None else ssl.platformTrust(),
                raiseMinimumTo=ssl.TLSVersion.TLSv1_2,
            )
        else:
            options = ssl.CertificateOptions(raiseMinimumTo=ssl.TLSVersion.TLSv1_2)
        self._context = options.getContext()
        self._serverName = serverName

    def clientConnectionForTLS(self, tlsProtocol: Any) -> SSL.Connection:
        connection = SSL.Connection(self._context, None)
        connection.set_app_data(tlsProtocol)
        name = self._serverName
        if name and not isIPAddress(name):
            connection.set_tlsext_host_name(name.encode("idna"))
        return connection


def describeTLSError(reason: Any) -> str:
    """
    @param reason: a failure or exception from a TLS handshake.
    @return: OpenSSL's reasons, readable, such as C{"certificate verify
        failed"}.
    """
    value = getattr(reason, "value", reason)
    if isinstance(value, SSL.Error) and value.args and isinstance(value.args[0], list):
        reasons = [str(entry[-1]) for entry in value.args[0] if entry]
        if reasons:
            return "; ".join(reasons)
    return str(value)
