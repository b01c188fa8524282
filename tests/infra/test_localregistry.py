"""The local registry fixture starts a real distribution registry, logs requests, enforces auth, stops."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import httpx
import pytest
from support.registries import AuthedRegistry, RegistryFactory

from testkit.localregistry import LocalRegistry, LocalRegistryError, find_registry_binary


def test_registry_answers_v2_on_loopback_and_stops(registry_binary: Path) -> None:
    local = LocalRegistry(binary=registry_binary).start()
    try:
        assert local.host.startswith("127.0.0.1:")
        assert local.url == f"http://{local.host}"
        before = local.cpu_seconds()
        with httpx.Client(base_url=local.url) as client:
            assert client.get("/v2/").status_code == 200
            for _ in range(200):  # enough requests for the registry's CPU clock to tick (10 ms)
                client.get("/v2/")
        assert local.cpu_seconds() > before
        work = local.log_path.parent
        port = local.port
        pid = local.pid
        assert pid is not None
        assert b"docker-registry" in Path(f"/proc/{pid}/cmdline").read_bytes()
    finally:
        local.stop()
    assert not local.running
    assert local.pid is None
    assert local.cpu_seconds() == 0.0
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/v2/", timeout=1)
    assert not work.exists(), "temporary config, log and storage are removed on stop"


def test_two_registries_get_different_ports(registry_factory: RegistryFactory) -> None:
    first, second = registry_factory(name="a"), registry_factory(name="b")
    assert first.port != second.port
    assert httpx.get(f"{second.url}/v2/").status_code == 200


def test_given_storage_dir_is_used_and_kept(registry_factory: RegistryFactory, tmp_path: Path) -> None:
    local = registry_factory(storage_dir=tmp_path / "data")
    httpx.post(f"{local.url}/v2/some/repo/blobs/uploads/")
    local.stop()
    assert (tmp_path / "data" / "docker" / "registry" / "v2" / "repositories" / "some" / "repo").is_dir()


def test_request_log_records_method_uri_status_and_kind(registry: LocalRegistry) -> None:
    mark = registry.mark()
    httpx.head(f"{registry.url}/v2/app/manifests/missing")
    httpx.post(f"{registry.url}/v2/app/blobs/uploads/")
    httpx.get(f"{registry.url}/v2/app/tags/list")
    records = registry.requests_since(mark)
    assert [(r.method, r.kind, r.status, r.repository) for r in records] == [
        ("HEAD", "manifest", 404, "app"),
        ("POST", "upload", 202, "app"),
        ("GET", "tags", 404, "app"),
    ]
    assert records[1].is_blob_write
    assert not records[0].is_blob_write


def test_missing_binary_names_the_install_command() -> None:
    with pytest.raises(LocalRegistryError, match="apt-get install docker-registry"):
        find_registry_binary("/nonexistent/docker-registry")


def test_basic_auth_accepts_right_credentials_and_refuses_wrong_ones(basic_registry: AuthedRegistry) -> None:
    url = f"{basic_registry.url}/v2/"
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, auth=(basic_registry.username, "wrong")).status_code == 401
    assert httpx.get(url, auth=("mallory", basic_registry.password)).status_code == 401
    assert httpx.get(url, auth=(basic_registry.username, basic_registry.password)).status_code == 200


def test_password_never_reaches_config_or_log(basic_registry: AuthedRegistry) -> None:
    httpx.get(f"{basic_registry.url}/v2/", auth=(basic_registry.username, basic_registry.password))
    work = basic_registry.registry.log_path.parent
    for path in work.iterdir():
        if path.is_file():
            assert basic_registry.password not in path.read_text(errors="replace"), path.name
    assert basic_registry.password not in repr(basic_registry)


def test_given_work_dir_keeps_config_and_log_and_restarts_cleanly(
    registry_factory: RegistryFactory, tmp_path: Path
) -> None:
    first = registry_factory(work_dir=tmp_path / "work", name="demo-dev")
    first_port = first.port
    httpx.get(f"{first.url}/v2/")
    first.stop()
    assert (tmp_path / "work" / "registry.log").is_file()
    assert (tmp_path / "work" / "storage").is_dir()
    second = registry_factory(work_dir=tmp_path / "work", name="demo-dev")
    assert httpx.get(f"{second.url}/v2/").status_code == 200
    assert second.port != first_port or second.request_log() == []


def test_registry_tests_are_marked(request: pytest.FixtureRequest, registry: LocalRegistry) -> None:
    assert request.node.get_closest_marker("registry") is not None


def test_request_log_includes_refused_requests_and_is_prompt(basic_registry: AuthedRegistry) -> None:
    # distribution's JSON "response completed" lines skip 401s; the access log lines do not.
    local = basic_registry.registry
    httpx.get(f"{local.url}/v2/app/tags/list")
    httpx.get(f"{local.url}/v2/app/tags/list", auth=(basic_registry.username, basic_registry.password))
    started = time.monotonic()
    records = local.request_log()
    assert time.monotonic() - started < 2, "the marker request must be found, not waited out"
    assert [(r.method, r.kind, r.status) for r in records] == [("GET", "tags", 401), ("GET", "tags", 404)]
    assert records[0].user_agent.startswith("python-httpx/")


def test_session_registry_and_unique_repo(session_registry: LocalRegistry, unique_repo: str) -> None:
    assert unique_repo.startswith("t/")
    assert unique_repo.endswith("test-session-registry-and-unique-repo")
    response = httpx.post(f"{session_registry.url}/v2/{unique_repo}/blobs/uploads/")
    assert response.status_code == 202, "the name is a valid repository name"


def test_registry_environment_variables_cannot_override_the_config(
    registry_factory: RegistryFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REGISTRY_HTTP_ADDR", "0.0.0.0:5000")
    local = registry_factory()
    assert local.port != 5000, "the override would have bound 0.0.0.0:5000"
    assert "listening on 127.0.0.1:" in local.log_path.read_text()
    assert httpx.get(f"{local.url}/v2/").status_code == 200


def test_htpasswd_hashes_need_no_crypt_module(monkeypatch: pytest.MonkeyPatch) -> None:
    """Python 3.13 removed ``crypt``; the test kit used to fall back on it and could not start a Basic-auth
    registry there. Hashes come from the bcrypt package, with ``crypt`` made unimportable here."""
    import bcrypt

    from testkit.localregistry import bcrypt_hash

    monkeypatch.setitem(sys.modules, "crypt", None)  # `import crypt` now raises ImportError
    hashed = bcrypt_hash("correct-horse")
    assert hashed.startswith("$2")
    assert bcrypt.checkpw(b"correct-horse", hashed.encode())
