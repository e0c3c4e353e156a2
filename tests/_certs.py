"""
Certificates made at test time, never committed: a test certificate
authority that issues leaf certificates for chosen DNS names, and the trust
root a client needs to verify them.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from functools import cache
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from twisted.internet import ssl

from gomail_twisted.tls import serverContextFactory


def _keyPEM(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _validity(builder: x509.CertificateBuilder) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.timezone.utc)
    return builder.not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(
        now + datetime.timedelta(days=2)
    )


@dataclass(frozen=True)
class TestCA:
    """
    A certificate authority for tests.

    @ivar key: its private key.
    @ivar cert: its certificate.
    """

    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @property
    def certPEM(self) -> bytes:
        """
        The CA certificate, PEM-encoded.
        """
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def trustRoot(self) -> Any:
        """
        @return: an C{IOpenSSLTrustRoot} trusting only this CA.
        """
        return ssl.trustRootFromCertificates([ssl.Certificate.loadPEM(self.certPEM)])

    def issue(self, *names: str) -> tuple[bytes, bytes]:
        """
        Issue a server certificate.

        @param names: its DNS names (subjectAltName).
        @return: the private key and the certificate, PEM-encoded.
        """
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
        cert = (
            _validity(x509.CertificateBuilder())
            .subject_name(subject)
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .add_extension(
                x509.SubjectAlternativeName([x509.DNSName(n) for n in names]),
                critical=False,
            )
            .add_extension(
                x509.BasicConstraints(ca=False, path_length=None), critical=True
            )
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                critical=False,
            )
            .sign(self.key, hashes.SHA256())
        )
        return _keyPEM(key), cert.public_bytes(serialization.Encoding.PEM)

    def serverContext(self, *names: str) -> ssl.CertificateOptions:
        """
        @param names: the DNS names of the server's certificate.
        @return: server TLS options with a certificate this CA issued.
        """
        return serverContextFactory(*self.issue(*names))


@cache
def testCA() -> TestCA:
    """
    The test CA, made once per test run.
    """
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gomail test CA")])
    cert = (
        _validity(x509.CertificateBuilder())
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return TestCA(key, cert)
