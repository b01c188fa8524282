"""The token-realm scenario, run by ``test_token_realm.py`` INSIDE a private network namespace.

Run as ``unshare -n python realm_scenario.py REALM_KIND``: this process owns a fresh network namespace
with nothing but ``lo``; it brings ``lo`` up, gives it the extra address 10.200.0.1 (which is therefore
not a loopback address, and exists nowhere outside this namespace), starts a registry on verified TLS at
127.0.0.1 whose Bearer challenge names a token realm of the kind asked for, and a token service at that
realm, then lists the registry's tags with Basic credentials. It prints one JSON document: what the
client said, and every request the token service received (with whether it carried credentials).

Realm kinds: ``http-remote`` (http://10.200.0.1:PORT/token, which must be refused), ``https-remote``
(https://10.200.0.1:PORT/token, certificate valid for that address), ``http-loopback``
(http://127.0.0.1:PORT/token). Not a test module: pytest never collects it.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: the ``support`` package

from support.certs import server_certificate
from support.httpserver import LoopbackServer, Request, Response

from reconciler.errors import ReconcilerError
from reconciler.registry import Credentials, RegistryClient

REMOTE = "10.200.0.1"
TOKEN = "realm-scenario-token-value"
USERNAME, PASSWORD = "deployer", "realm-scenario-password"


def main(kind: str) -> dict[str, object]:
    for command in (["ip", "link", "set", "lo", "up"], ["ip", "addr", "add", f"{REMOTE}/32", "dev", "lo"]):
        subprocess.run(command, check=True, capture_output=True)
    certificate = server_certificate(Path(tempfile.mkdtemp(prefix="realm-")), ip_addresses=("127.0.0.1", REMOTE))

    def token_service(request: Request) -> Response:
        return Response.json({"token": TOKEN, "expires_in": 300})

    remote = kind.endswith("remote")
    realm = LoopbackServer(
        token_service,
        tls=certificate if kind == "https-remote" else False,
        name="realm",
        address=REMOTE if remote else "127.0.0.1",
    ).start()

    def registry_handler(request: Request) -> Response:
        if request.header("authorization") == f"Bearer {TOKEN}":
            return Response.json({"name": "app", "tags": ["v1"]})
        challenge = f'Bearer realm="{realm.url}/token",service="registry",scope="repository:app:pull"'
        return Response.error(401, "UNAUTHORIZED", "authentication required", {"WWW-Authenticate": challenge})

    registry = LoopbackServer(registry_handler, tls=certificate, name="registry").start()

    async def list_tags() -> list[str]:
        async with RegistryClient(
            url=registry.url, ca_bundle=registry.ca_bundle, credentials=Credentials(USERNAME, PASSWORD)
        ) as client:
            return await client.list_tags("app")

    outcome: dict[str, object] = {"realm": realm.url, "registry": registry.url}
    try:
        outcome["tags"] = asyncio.run(list_tags())
    except ReconcilerError as exc:
        outcome["error"] = {"type": type(exc).__name__, "message": str(exc)}
    outcome["realm_requests"] = [
        {"method": r.method, "path": r.path, "credentials": r.headers.get("authorization") is not None}
        for r in realm.requests
    ]
    registry.stop()
    realm.stop()
    return outcome


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1])))
