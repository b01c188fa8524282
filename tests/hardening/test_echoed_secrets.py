"""A registry that puts the Authorization header it received into its error text: the secret never shows.

What used to happen: a 403 page reflecting the request's headers (a misconfigured proxy or registry does
this) was printed as the error, so ``copy``, ``inspect``, ``ls`` and ``apply`` showed base64(user:password)
or the bearer token on the terminal, in CI logs and in the audit log. Now every text a registry sends is
scrubbed of the secrets in use (the password, the Basic header's base64, bearer tokens) and of anything
shaped like a credential, before it is cut to length (a cut must never leave half a secret that no longer
matches), in text AND JSON output and in the audit log.

(A registry URL with ``user:password@`` in reconciler.yaml is refused by ``validate`` without repeating
them: ``tests/manifests/test_cli_state.py``.)
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import pytest
from support.httpserver import LoopbackServer, Reply, Request, Response, echo_headers

from reconciler.exitcodes import ExitCode
from reconciler.registry import host_env_prefix, registry_env_prefix
from testkit.demo import CHAIN_REGISTRIES, write_chain_state

from .kit import Run, assert_no_traceback, cli_env, run_all

USERNAME, PASSWORD = "deployer", "echoed-Pa55word-7f3a"
TOKEN = "eyJhbGciOiJSUzI1NiJ9.echoed-bearer-token.c2lnbmF0dXJl"
BASIC = base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
SECRETS = (PASSWORD, BASIC, TOKEN, BASIC[:12], TOKEN[:20])
TAG = "20261127_01"
DIGEST = "sha256:" + "ef" * 32


def _echoing(scheme: str) -> LoopbackServer:
    """A registry asking for ``scheme`` credentials, then answering every GET with a 403 that reflects the
    request's headers (HEAD: 404, so that a reconcile pass goes on to the GETs that echo): all of them for
    listings (the kit's ``echo_headers``), the Authorization header first for manifests (whose long Accept
    header would otherwise push it past the length a message is cut to, and nothing would be tested)."""

    def handler(request: Request) -> Reply:
        if request.path == "/token":
            return Response.json({"token": TOKEN, "expires_in": 300})
        if not request.header("authorization"):
            challenge = 'Basic realm="echo"' if scheme == "basic" else f'Bearer realm="{server.url}/token"'
            return Response.error(401, "UNAUTHORIZED", "authentication required", {"WWW-Authenticate": challenge})
        if request.method == "HEAD":
            return Response(404)
        if "/manifests/" in request.path:
            reflected = f"Authorization: {request.header('authorization')} may not read this manifest"
            return Response.error(403, "DENIED", reflected)
        return echo_headers(request, status=403)

    server = LoopbackServer(handler, name=f"echo-{scheme}")
    return server.start()


@pytest.fixture(scope="module", params=["basic", "bearer"])
def runs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Run]]:
    scheme = request.param
    home = tmp_path_factory.mktemp(f"echo-{scheme}")
    server = _echoing(scheme)
    try:
        host = server.host
        root = write_chain_state(
            home / "state",
            dict.fromkeys(CHAIN_REGISTRIES, server.url),
            {"d": [("app", TAG, DIGEST)], "t": [("app", TAG, DIGEST)]},
        )
        env = {f"{host_env_prefix(host)}_USERNAME": USERNAME, f"{host_env_prefix(host)}_PASSWORD": PASSWORD}
        for name in CHAIN_REGISTRIES:
            env |= {
                f"{registry_env_prefix(name)}_USERNAME": USERNAME,
                f"{registry_env_prefix(name)}_PASSWORD": PASSWORD,
            }
        as_json = ["-o", "json"]
        text_or_json = ([], as_json) if scheme == "basic" else (as_json, [])  # each output of each command, once
        commands = [
            ["copy", f"{host}/d/app:{TAG}", f"{host}/t/app", *text_or_json[0]],
            ["inspect", f"{host}/d/app:{TAG}", *text_or_json[1]],
            ["ls", f"{host}/d/app", *text_or_json[0]],
            ["apply", str(root), *text_or_json[1]],
        ]
        yield run_all(commands, env=cli_env(home, env))
        audit = (home / "audit.jsonl").read_text()
        for secret in SECRETS:
            assert secret not in audit, "a secret reached the audit log"
        assert "authorization" in audit.lower(), "the echo did not reach the audit log: nothing was tested"
    finally:
        server.stop()


def test_no_output_shows_the_secret_a_registry_echoed(runs: list[Run]) -> None:
    for result in runs:
        assert_no_traceback(result)
        assert result.code == ExitCode.FAILURE, str(result)
        for secret in SECRETS:
            assert secret not in result.output, f"secret {secret[:4]}... shown by:\n{result}"
        if "-o" in result.args:
            json.loads(result.stdout)  # still a JSON document


def test_the_echo_is_shown_with_the_secret_masked(runs: list[Run]) -> None:
    """The registry's text itself still reaches the user (it is the only explanation of the 403)."""
    for result in runs:
        if result.args[0] == "apply":
            continue  # apply names the image and the cause; the echo reaches it through observe
        assert "HTTP 403" in result.output, str(result)
        assert "DENIED: " in result.output, str(result)
        assert "authorization: ***" in result.output.lower(), str(result)
