# SPDX-License-Identifier: BSD-3-Clause
"""Grid credentials made in the tests: an x509 proxy-like PEM chain signed by a CA of the
test's own, and JWT-shaped bearer tokens (unsigned: rhc reads a token's expiry, never verifies)."""

from __future__ import annotations

import base64
import json
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from rhc.local.tls import certificate_builder

# RFC 3820's ProxyCertInfo (id-pe-proxyCertInfo) with the inherit-all policy: what makes a
# certificate a proxy to grid clients (rhc reads only the chain's dates).
_PROXY_CERT_INFO = x509.ObjectIdentifier("1.3.6.1.5.5.7.1.14")
_INHERIT_ALL = bytes.fromhex("300c300a06082b06010505071501")


def now() -> datetime:
    return datetime.now(timezone.utc)


def write_proxy(
    path: Path, *, expires: datetime, ca_expires: datetime | None = None, mode: int = 0o600
) -> bytes:
    """Write a proxy file: the proxy certificate (valid until expires), its key, then the
    certificate of the CA that signed it (valid until ca_expires, by default a year on).
    Returns the proxy's private key in PEM: the secret that must never show."""
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("rhc test grid CA")
    ca_until = ca_expires or now() + timedelta(days=365)
    ca = (
        _valid_until(ca_name, ca_name, ca_key.public_key(), ca_until)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    proxy_name = x509.Name([*ca_name, x509.NameAttribute(NameOID.COMMON_NAME, "1234567890")])
    proxy = (
        _valid_until(proxy_name, ca_name, key.public_key(), expires)
        .add_extension(x509.UnrecognizedExtension(_PROXY_CERT_INFO, _INHERIT_ALL), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    pem = serialization.Encoding.PEM
    write_file(path, proxy.public_bytes(pem) + key_pem + ca.public_bytes(pem), mode)
    return key_pem


def jwt(expires: datetime | None, **claims: object) -> str:
    """A JWT-shaped token: header, payload (with exp when expires is given), a random tail."""
    payload = {"iss": "https://issuer.example", "sub": "analyst", **claims}
    if expires is not None:
        payload["exp"] = int(expires.timestamp())
    parts = [{"alg": "ES256", "typ": "JWT"}, payload]
    encoded = [_b64(json.dumps(part).encode()) for part in parts]
    return ".".join([*encoded, _b64(os.urandom(64))])


def write_file(path: Path, content: bytes | str, mode: int = 0o600) -> Path:
    """Write content to path with exactly mode (no umask)."""
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    path.chmod(mode)
    return path


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "rhc tests"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _valid_until(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey, until: datetime
) -> x509.CertificateBuilder:
    """A certificate valid for the day that ends at until (gone by, for an expired one)."""
    return certificate_builder(subject, issuer, public_key, until - timedelta(days=1), days=1)
