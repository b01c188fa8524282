"""TLS through RegistryClient's FastTransport: verification on by default, a per-registry CA bundle,
and the explicit opt-out. The server is a tiny HTTPS endpoint with a certificate made for the test."""

from __future__ import annotations

import asyncio
import datetime
import ssl
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from support.certs import self_signed_ca

from reconciler.errors import RegistryError, TransientRegistryError
from reconciler.registry import RegistryClient, RetryPolicy


def make_certificate(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = self_signed_ca(
        key, "reconciler test registry", valid_for=datetime.timedelta(hours=1), ip_addresses=("127.0.0.1",)
    )
    cert_path, key_path = directory / "registry.pem", directory / "registry.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


async def https_registry(cert: Path, key: Path) -> tuple[asyncio.Server, str]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: application/json\r\n\r\n{}")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
    return server, f"https://127.0.0.1:{server.sockets[0].getsockname()[1]}"


def ping(cert: Path, key: Path, **client_options: object) -> None:
    async def run() -> None:
        server, url = await https_registry(cert, key)
        async with server, RegistryClient(url=url, retry=RetryPolicy(attempts=1), **client_options) as client:  # type: ignore[arg-type]
            await client.ping()

    asyncio.run(run())


def test_untrusted_certificate_is_refused_with_advice(tmp_path: Path) -> None:
    cert, key = make_certificate(tmp_path)
    with pytest.raises(RegistryError, match=r"not trusted.*ca_bundle") as caught:
        ping(cert, key)
    assert not isinstance(caught.value, TransientRegistryError)  # retrying will not make it trusted


def test_ca_bundle_makes_it_trusted(tmp_path: Path) -> None:
    cert, key = make_certificate(tmp_path)
    ping(cert, key, ca_bundle=str(cert))


def test_insecure_skips_verification(tmp_path: Path) -> None:
    cert, key = make_certificate(tmp_path)
    ping(cert, key, insecure=True)
