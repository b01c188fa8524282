"""TLS through RegistryClient's FastTransport: verification on by default, a per-registry CA bundle,
and the explicit opt-out. The registry is a ``support.httpserver.LoopbackServer`` over TLS with a
certificate made for the test (``support.certs.server_certificate``: its own CA, for 127.0.0.1)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from support.certs import ServerCertificate, server_certificate
from support.httpserver import LoopbackServer, Response

from reconciler.errors import RegistryError, TransientRegistryError
from reconciler.registry import RegistryClient, RetryPolicy


@pytest.fixture
def certificate(tmp_path: Path) -> ServerCertificate:
    return server_certificate(tmp_path)


def ping(certificate: ServerCertificate, **client_options: object) -> list[str]:
    """Ping an HTTPS registry with ``client_options``; the paths it was asked for."""
    with LoopbackServer(lambda request: Response.json({}), tls=certificate) as server:
        assert server.url.startswith("https://127.0.0.1:")

        async def run() -> None:
            async with RegistryClient(url=server.url, retry=RetryPolicy(attempts=1), **client_options) as client:  # type: ignore[arg-type]
                await client.ping()

        asyncio.run(run())
        return [request.path for request in server.requests]


def test_untrusted_certificate_is_refused_with_advice(certificate: ServerCertificate) -> None:
    with pytest.raises(RegistryError, match=r"not trusted.*ca_bundle") as caught:
        ping(certificate)
    assert not isinstance(caught.value, TransientRegistryError)  # retrying will not make it trusted


def test_ca_bundle_makes_it_trusted(certificate: ServerCertificate) -> None:
    assert ping(certificate, ca_bundle=str(certificate.cert_path)) == ["/v2/"]


def test_insecure_skips_verification(certificate: ServerCertificate) -> None:
    assert ping(certificate, insecure=True) == ["/v2/"]
