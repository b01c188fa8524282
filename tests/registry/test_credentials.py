"""Credential lookup: environment variables, Docker's config.json, credential helpers; no secret leaks."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from reconciler.errors import AuthError
from reconciler.registry import Credentials, credentials_for, host_env_prefix, registry_env_prefix

HOST = "registry.example.com:5000"
SECRET = "hunter2-very-secret"


def write_config(directory: Path, document: dict[str, object]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "config.json"
    path.write_text(json.dumps(document))
    return path


def write_helper(bin_dir: Path, name: str, script: str) -> None:
    bin_dir.mkdir(parents=True, exist_ok=True)
    helper = bin_dir / f"docker-credential-{name}"
    helper.write_text("#!/bin/sh\n" + script)
    helper.chmod(helper.stat().st_mode | stat.S_IXUSR)


def test_prefix_naming() -> None:
    assert registry_env_prefix("prod-a") == "RECONCILER_REGISTRY_PROD_A"
    assert host_env_prefix("registry.example.com:5000") == "RECONCILER_AUTH_REGISTRY_EXAMPLE_COM_5000"


def test_registry_name_variables_win_over_host_variables(tmp_path: Path) -> None:
    environ = {
        "RECONCILER_REGISTRY_PROD_A_USERNAME": "by-name",
        "RECONCILER_REGISTRY_PROD_A_PASSWORD": SECRET,
        "RECONCILER_AUTH_REGISTRY_EXAMPLE_COM_5000_USERNAME": "by-host",
        "RECONCILER_AUTH_REGISTRY_EXAMPLE_COM_5000_PASSWORD": "other",
    }
    found = credentials_for(HOST, registry_name="prod-a", environ=environ, docker_config=tmp_path / "none.json")
    assert found == Credentials("by-name", SECRET)
    found = credentials_for(HOST, registry_name="dev", environ=environ, docker_config=tmp_path / "none.json")
    assert found == Credentials("by-host", "other")


def test_token_variable_is_an_identity_token(tmp_path: Path) -> None:
    environ = {"RECONCILER_AUTH_REGISTRY_EXAMPLE_COM_5000_TOKEN": SECRET}
    found = credentials_for(HOST, environ=environ, docker_config=tmp_path / "none.json")
    assert found is not None
    assert found.identity_token == SECRET


def test_nothing_found_is_anonymous(tmp_path: Path) -> None:
    assert credentials_for(HOST, environ={}, docker_config=tmp_path / "missing" / "config.json") is None


def test_docker_config_auths(tmp_path: Path) -> None:
    auth = base64.b64encode(f"alice:{SECRET}".encode()).decode()
    path = write_config(tmp_path, {"auths": {HOST: {"auth": auth}, "other.example.com": {"auth": "eDp5"}}})
    assert credentials_for(HOST, environ={}, docker_config=path) == Credentials("alice", SECRET)
    path = write_config(tmp_path, {"auths": {f"https://{HOST}": {"identitytoken": SECRET, "auth": auth}}})
    found = credentials_for(HOST, environ={}, docker_config=path)
    assert found is not None
    assert found.identity_token == SECRET


def test_docker_config_location_from_environment(tmp_path: Path) -> None:
    auth = base64.b64encode(b"bob:pw").decode()
    write_config(tmp_path / "custom", {"auths": {HOST: {"auth": auth}}})
    write_config(tmp_path / "home" / ".docker", {"auths": {HOST: {"auth": base64.b64encode(b"carol:pw").decode()}}})
    assert credentials_for(HOST, environ={"DOCKER_CONFIG": str(tmp_path / "custom")}) == Credentials("bob", "pw")
    assert credentials_for(HOST, environ={"HOME": str(tmp_path / "home")}) == Credentials("carol", "pw")


def test_bad_auth_entry_is_a_clear_error_without_the_secret(tmp_path: Path) -> None:
    path = write_config(tmp_path, {"auths": {HOST: {"auth": "!!" + SECRET}}})
    with pytest.raises(AuthError, match="not base64") as caught:
        credentials_for(HOST, environ={}, docker_config=path)
    assert SECRET not in str(caught.value)


def test_cred_helpers_and_creds_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    # The helper reads the host on stdin and answers JSON, as Docker's protocol says.
    write_helper(
        bin_dir, "perhost", f'read host\necho "{{\\"Username\\":\\"u-$host\\",\\"Secret\\":\\"{SECRET}\\"}}"\n'
    )
    write_helper(bin_dir, "store", 'echo "{\\"Username\\":\\"<token>\\",\\"Secret\\":\\"tok\\"}"\n')
    write_helper(bin_dir, "empty", 'echo "credentials not found in native keychain"\nexit 1\n')
    write_helper(bin_dir, "broken", f'echo "{SECRET}" >&2\nexit 3\n')
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    path = write_config(
        tmp_path,
        {
            "credHelpers": {
                HOST: "perhost",
                "gone.example.com": "empty",
                "bad.example.com": "broken",
                "nohelper.example.com": "absent",
            },
            "credsStore": "store",
        },
    )
    assert credentials_for(HOST, environ={}, docker_config=path) == Credentials(f"u-{HOST}", SECRET)
    store = credentials_for("elsewhere.example.com", environ={}, docker_config=path)
    assert store is not None
    assert store.identity_token == "tok"
    assert credentials_for("gone.example.com", environ={}, docker_config=path) is None
    with pytest.raises(AuthError, match="exit status 3") as caught:
        credentials_for("bad.example.com", environ={}, docker_config=path)
    assert SECRET not in str(caught.value)
    with pytest.raises(AuthError, match="not on PATH"):
        credentials_for("nohelper.example.com", environ={}, docker_config=path)
