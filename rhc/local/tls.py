# SPDX-License-Identifier: BSD-3-Clause
"""TLS material for a Redis that rhc sets up (`rhc local --tls`, `rhc redis setup`, the compose
stack): a certificate authority of its own, and a server certificate it signs for the names clients
dial. Clients verify the server against that CA, hostname included.

The CA's private key is never written: nobody, this tool included, can sign another certificate
with it afterwards. To change the names, generate new material and give clients the new CA.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from rhc.config import write_private
from rhc.errors import ArgumentError

DEFAULT_DAYS = 5 * 365
"""How long generated certificates are valid."""


@dataclass(frozen=True)
class TlsFiles:
    """The files of a Redis server's TLS: the CA clients trust, its certificate and key."""

    ca: Path
    certificate: Path
    key: Path

    @classmethod
    def in_directory(cls, directory: Path) -> TlsFiles:
        return cls(directory / "ca.crt", directory / "redis.crt", directory / "redis.key")

    def exist(self) -> bool:
        return all(path.is_file() for path in (self.ca, self.certificate, self.key))

    def redis_config(self, port: int) -> list[str]:
        """redis.conf lines: TLS only on port (plain TCP off); clients need no certificate of
        their own, they log in with a user and password."""
        return [
            "port 0",
            f"tls-port {port}",
            f"tls-cert-file {self.certificate}",
            f"tls-key-file {self.key}",
            f"tls-ca-cert-file {self.ca}",
            "tls-auth-clients no",
        ]


def generate(directory: Path, hosts: Sequence[str], *, days: int = DEFAULT_DAYS) -> TlsFiles:
    """Write a new CA and a server certificate for hosts (DNS names or IP addresses) to
    directory, each file readable by its owner only.

    Raises:
      ArgumentError: no host given.
    """
    if not hosts:
        raise ArgumentError("name at least one host the server certificate is for")
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "rhc Redis CA")])
    ca = (
        certificate_builder(ca_name, ca_name, ca_key.public_key(), now, days)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(signs_certificates=True), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])])
    certificate = (
        certificate_builder(name, ca_name, key.public_key(), now, days)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(signs_certificates=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectAlternativeName([_san(host) for host in hosts]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    files = TlsFiles.in_directory(directory)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    write_private(files.ca, ca.public_bytes(serialization.Encoding.PEM))
    write_private(files.certificate, certificate.public_bytes(serialization.Encoding.PEM))
    write_private(
        files.key,
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    return files


def certificate_builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    now: datetime.datetime,
    days: int,
) -> x509.CertificateBuilder:
    """A certificate of subject by issuer, valid from a little before now for days, to be
    given its extensions and signed."""
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))  # clocks a little behind
        .not_valid_after(now + datetime.timedelta(days=days))
    )


def _usage(*, signs_certificates: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not signs_certificates,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=not signs_certificates,
        key_cert_sign=signs_certificates,
        crl_sign=signs_certificates,
        encipher_only=False,
        decipher_only=False,
    )


def _san(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)
