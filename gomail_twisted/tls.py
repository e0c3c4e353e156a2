# -*- test-case-name: tests.test_smtp_clients,tests.test_tap_smtp -*-
"""
TLS helpers shared by the servers and the client: server context factories
from PEM files, a self-signed certificate for development, and the facts of
an established TLS session.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from twisted.internet.interfaces import ISSLTransport, ITransport

if TYPE_CHECKING:
    from twisted.internet import ssl

# cryptography and pyOpenSSL are imported where they are used, so a server
# without TLS does not load them.


@dataclass(frozen=True)
class TLSInfo:
    """
    The facts of an established TLS session.

    @ivar version: the protocol version, such as C{"TLSv1.3"}.
    @ivar cipher: the cipher suite's name.
    @ivar serverName: the name the client asked for with SNI, or L{None}.
    @ivar peerCertificate: the peer's certificate, DER-encoded, or L{None}
        when it sent none.
    """

    version: str
    cipher: str
    serverName: str | None = None
    peerCertificate: bytes | None = None

    def comment(self) -> str:
        """
        @return: a short description for trace headers and logs.
        """
        return f"using {self.version} with cipher {self.cipher}"


def tlsInfo(transport: ITransport | None) -> TLSInfo | None:
    """
    Read the TLS facts of a transport.

    @param transport: a connection's transport, TLS or not.
    @return: the facts once the handshake is done, else L{None}.
    """
    if transport is None or not ISSLTransport.providedBy(transport):
        return None
    from cryptography.hazmat.primitives import serialization
    from OpenSSL import SSL

    handle = cast(Any, transport).getHandle()
    if not isinstance(handle, SSL.Connection):
        return None
    version = handle.get_protocol_version_name()
    cipher = handle.get_cipher_name()
    if cipher is None:
        return None
    sni = handle.get_servername()
    cert = handle.get_peer_certificate(as_cryptography=True)
    return TLSInfo(
        version=version,
        cipher=cipher,
        serverName=sni.decode("ascii", "replace") if sni else None,
        peerCertificate=(
            cert.public_bytes(serialization.Encoding.DER) if cert is not None else None
        ),
    )


def selfSignedCertificate(
    hostname: str, days: int = 365, now: datetime.datetime | None = None
) -> tuple[bytes, bytes]:
    """
    Make a self-signed certificate, for development and tests only.

    @param hostname: the DNS name (or IP address) it is valid for.
    @param days: how long it is valid.
    @param now: the start of validity; default the current time.
    @return: the private key and the certificate, PEM-encoded.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    start = (now or datetime.datetime.now(datetime.timezone.utc)) - datetime.timedelta(
        minutes=5
    )
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    try:
        san: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(hostname))
    except ValueError:
        san = x509.DNSName(hostname)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName([san]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    keyPEM = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return keyPEM, cert.public_bytes(serialization.Encoding.PEM)


def serverContextFactory(keyPEM: bytes, certPEM: bytes) -> ssl.CertificateOptions:
    """
    A server TLS configuration from PEM data: TLS 1.2 or newer, the
    certificate's chain (any further certificates in C{certPEM}) sent too.

    @param keyPEM: the private key.
    @param certPEM: the certificate, then any intermediate certificates.
    @return: options for C{startTLS} or an C{ssl:} endpoint.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from twisted.internet import ssl

    certs = x509.load_pem_x509_certificates(certPEM)
    private = ssl.PrivateCertificate.loadPEM(keyPEM + b"\n" + certPEM)
    chain = [
        ssl.Certificate.loadPEM(c.public_bytes(serialization.Encoding.PEM)).original
        for c in certs[1:]
    ]
    return ssl.CertificateOptions(
        privateKey=private.privateKey.original,
        certificate=private.original,
        extraCertChain=chain,
        raiseMinimumTo=ssl.TLSVersion.TLSv1_2,
    )


def serverContextFromFiles(keyPath: Path, certPath: Path) -> ssl.CertificateOptions:
    """
    L{serverContextFactory} from files.

    @param keyPath: the PEM private key.
    @param certPath: the PEM certificate chain.
    @return: the options.
    """
    return serverContextFactory(keyPath.read_bytes(), certPath.read_bytes())
