"""Self-signed certificates for tests: the token signer's CA and the HTTPS loopback server's certificate."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def self_signed_ca(
    key: PrivateKey, common_name: str, *, valid_for: dt.timedelta, ip_addresses: tuple[str, ...] = ()
) -> x509.Certificate:
    """A CA certificate for ``key``, valid from a little before now, naming ``ip_addresses`` as SANs."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + valid_for)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    )
    if ip_addresses:
        sans = [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(key, hashes.SHA256())


@dataclass(frozen=True)
class ServerCertificate:
    """A certificate for ``127.0.0.1`` and its key, as PEM files. The certificate is its own CA: a client
    trusts the server with ``ca_bundle=str(cert_path)`` and refuses it otherwise."""

    cert_path: Path
    key_path: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_path, self.key_path)
        return context


def server_certificate(
    directory: Path,
    *,
    common_name: str = "reconciler test server",
    valid_for: dt.timedelta = dt.timedelta(hours=1),
    ip_addresses: tuple[str, ...] = ("127.0.0.1",),
) -> ServerCertificate:
    """Write ``server.pem`` and ``server.key`` (P-256) for ``ip_addresses`` (127.0.0.1) into ``directory``."""
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = self_signed_ca(key, common_name, valid_for=valid_for, ip_addresses=ip_addresses)
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / "server.pem", directory / "server.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return ServerCertificate(cert_path=cert_path, key_path=key_path)
