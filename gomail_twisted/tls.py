# -*- test-case-name: tests.test_tap_gomail,tests.test_smtp_clients -*-
"""
TLS helpers shared by the servers and the client: server context factories
from PEM files (L{ReloadingServerTLS} reads them again on demand, so a
renewed certificate needs no restart), a self-signed certificate for
development, and the facts of an established TLS session.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from twisted.internet.interfaces import (
    IOpenSSLServerConnectionCreator,
    ISSLTransport,
    ITransport,
)
from zope.interface import implementer

if TYPE_CHECKING:
    from OpenSSL import SSL
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


def _generalName(name: str) -> Any:
    from cryptography import x509

    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def selfSignedCertificate(
    hostname: str,
    days: int = 365,
    now: datetime.datetime | None = None,
    altNames: Sequence[str] = (),
) -> tuple[bytes, bytes]:
    """
    Make a self-signed certificate, for development and tests only.

    @param hostname: the DNS name (or IP address) it is valid for.
    @param days: how long it is valid.
    @param now: the start of validity; default the current time.
    @param altNames: more DNS names or IP addresses it is valid for.
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
    names = [_generalName(n) for n in dict.fromkeys([hostname, *altNames])]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
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


def certificateFingerprint(certPEM: bytes) -> str:
    """
    The SHA-256 fingerprint of a certificate, as browsers and C{openssl
    x509 -fingerprint -sha256} show it.

    @param certPEM: the certificate, PEM-encoded (the first of a chain).
    @return: such as C{"AB:CD:..."}, 32 pairs of hexadecimal digits.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    der = x509.load_pem_x509_certificate(certPEM).public_bytes(
        serialization.Encoding.DER
    )
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def certificateExpiry(certPEM: bytes) -> datetime.datetime:
    """
    When a certificate stops being valid.

    @param certPEM: the certificate, PEM-encoded (the first of a chain).
    @return: its C{notAfter}, in UTC.
    """
    from cryptography import x509

    return x509.load_pem_x509_certificate(certPEM).not_valid_after_utc


def writeSelfSignedFiles(
    keyPath: Path,
    certPath: Path,
    hostname: str,
    altNames: Sequence[str] = (),
    now: datetime.datetime | None = None,
) -> bool:
    """
    Make a self-signed key and certificate for development and keep them in
    files, unless the files already hold a certificate still valid a day
    from now: so a server restarted keeps presenting the certificate a
    client was told to accept.

    @param keyPath: the private key's file, written readable by its owner
        only.
    @param certPath: the certificate's file.
    @param hostname: the name the certificate is for.
    @param altNames: more names or addresses it is valid for.
    @param now: the current time; default the clock's.
    @return: C{True} when new files were written, C{False} when the old
        ones were kept.
    @raise OSError: the files or their directory cannot be written.
    """
    now = now or datetime.datetime.now(datetime.timezone.utc)
    if keyPath.exists() and certPath.exists():
        try:
            expiry = certificateExpiry(certPath.read_bytes())
        except ValueError:
            expiry = now
        if expiry > now + datetime.timedelta(days=1):
            return False
    keyPEM, certPEM = selfSignedCertificate(hostname, now=now, altNames=altNames)
    keyPath.parent.mkdir(parents=True, exist_ok=True)
    certPath.parent.mkdir(parents=True, exist_ok=True)
    _writeNew(keyPath, keyPEM, 0o600)
    _writeNew(certPath, certPEM, 0o644)
    return True


def _writeNew(path: Path, data: bytes, mode: int) -> None:
    """
    Replace a file's contents atomically: a crash leaves the old file or the
    new one, never half of one.
    """
    temporary = path.with_name(path.name + ".new")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(temporary, mode)
    os.replace(temporary, path)


@implementer(IOpenSSLServerConnectionCreator)
class ReloadingServerTLS:
    """
    Server TLS from a certificate and key in files, read again by
    L{reload}: connections made after it present the new certificate,
    those already open keep theirs.  Give it wherever a server takes its
    TLS options (C{tls=}, C{startTLS}, C{TLSMemoryBIOFactory}).

    @ivar keyPath: the PEM private key.
    @ivar certPath: the PEM certificate chain.
    @ivar options: the options in use now.
    @ivar fingerprint: the SHA-256 fingerprint of the certificate in use.
    @ivar expiry: when the certificate in use expires.
    """

    def __init__(self, keyPath: Path, certPath: Path) -> None:
        """
        Read the files a first time.

        @param keyPath: the PEM private key.
        @param certPath: the PEM certificate chain.
        @raise OSError: a file cannot be read.
        @raise ValueError: the files are not a PEM certificate and its key.
        """
        self.keyPath = keyPath
        self.certPath = certPath
        self.reload()

    def reload(self) -> None:
        """
        Read the files again and use what they hold from now on.  On error,
        the certificate in use stays.

        @raise OSError: a file cannot be read.
        @raise ValueError: the files are not a PEM certificate and its key.
        """
        certPEM = self.certPath.read_bytes()
        keyPEM = self.keyPath.read_bytes()
        try:
            options = serverContextFactory(keyPEM, certPEM)
            # Builds the OpenSSL context now, so a key that does not match
            # the certificate is refused here rather than at a handshake.
            options.getContext()
            fingerprint = certificateFingerprint(certPEM)
            expiry = certificateExpiry(certPEM)
        except Exception as e:
            raise ValueError(
                f"{self.certPath} and {self.keyPath} are not a PEM certificate "
                f"and its private key: {e}"
            ) from None
        self.options = options
        self.fingerprint = fingerprint
        self.expiry = expiry

    def getContext(self) -> SSL.Context:
        """
        @return: the OpenSSL context of the certificate in use, for APIs
            that take an old-style context factory.
        """
        return self.options.getContext()

    def serverConnectionForTLS(self, tlsProtocol: object) -> SSL.Connection:
        """
        A server-side OpenSSL connection with the certificate in use.

        @param tlsProtocol: the TLS protocol the connection is for.
        @return: the connection.
        """
        from OpenSSL import SSL

        return SSL.Connection(self.options.getContext(), None)
