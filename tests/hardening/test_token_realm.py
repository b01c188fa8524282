"""Credentials are never sent in clear text to a token realm elsewhere.

What used to happen: a registry on verified TLS could answer ``WWW-Authenticate: Bearer
realm="http://other-host/token"`` and reconciler sent that realm the registry's Basic credentials (the
user's password, base64-encoded) over plain HTTP, readable by anyone on the path. Now a realm must meet the
rule of a registry URL (HTTPS, or loopback, or a registry marked insecure): the client refuses the realm
with an ``AuthError`` naming the rule, before any request reaches it. A realm on HTTPS, or on loopback,
works as before.

"Elsewhere" must be a real non-loopback address, and no test may touch the machine's network: each
scenario runs in its own network namespace (``unshare -n``), where 10.200.0.1 is added to that namespace's
own ``lo`` and exists nowhere else (``realm_scenario.py``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

SCENARIO = Path(__file__).with_name("realm_scenario.py")


def _scenario(kind: str) -> dict[str, Any]:
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.fail("unshare (util-linux) is needed to run the realm in a private network namespace", pytrace=False)
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    done = subprocess.run(
        [unshare, "-n", sys.executable, str(SCENARIO), kind],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    if done.returncode != 0:
        pytest.fail(
            f"the scenario could not run in a network namespace (root is needed):\n{done.stderr}", pytrace=False
        )
    assert "Traceback" not in done.stderr, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_credentials_are_never_sent_to_a_plain_http_realm_elsewhere() -> None:
    outcome = _scenario("http-remote")
    assert outcome["realm"].startswith("http://10.200.0.1:")
    assert outcome["registry"].startswith("https://127.0.0.1:")
    assert outcome["realm_requests"] == [], "the realm was contacted"
    error = outcome["error"]
    assert error["type"] == "AuthError"
    assert "token realm is plain HTTP on 10.200.0.1" in error["message"]
    assert "credentials are only sent over HTTPS" in error["message"]


def test_a_realm_on_https_gets_the_credentials_and_works() -> None:
    outcome = _scenario("https-remote")
    assert outcome["realm"].startswith("https://10.200.0.1:")
    assert outcome.get("error") is None, outcome
    assert outcome["tags"] == ["v1"]
    assert [r["credentials"] for r in outcome["realm_requests"]] == [True]


def test_a_realm_on_loopback_works() -> None:
    outcome = _scenario("http-loopback")
    assert outcome["realm"].startswith("http://127.0.0.1:")
    assert outcome.get("error") is None, outcome
    assert outcome["tags"] == ["v1"]
