"""``reconciler copy / ls / digest / inspect`` through typer's CliRunner against real registries."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from support.registries import AuthedRegistry
from support.skopeo import Skopeo
from typer.testing import CliRunner

from reconciler.cli import app
from reconciler.exitcodes import ExitCode
from testkit.imagegen import image_for
from testkit.imagepush import push_image
from testkit.localregistry import LocalRegistry

RegistryFactory = Callable[..., LocalRegistry]

pytestmark = pytest.mark.registry

TAG = "20261127_01"


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))  # never the developer's real config
    return CliRunner()


@pytest.mark.skopeo
def test_copy_ls_digest_inspect(registry_factory: RegistryFactory, runner: CliRunner, skopeo: Skopeo) -> None:
    source = registry_factory(name="src")
    target = registry_factory(name="dst")
    image = image_for("payments/api", TAG, platforms=("linux/amd64", "linux/arm64"))
    push_image(image, source.url, "d/payments/api", TAG)

    result = runner.invoke(app, ["copy", f"{source.host}/d/payments/api:{TAG}", f"{target.host}/t/payments/api"])
    assert result.exit_code == 0, result.output
    assert f"{target.host}/t/payments/api:{TAG}" in result.stdout
    assert skopeo.digest(f"docker://{target.host}/t/payments/api:{TAG}") == image.digest

    result = runner.invoke(app, ["digest", f"{target.host}/t/payments/api:{TAG}"])
    assert result.exit_code == 0
    assert result.stdout.strip() == image.digest

    result = runner.invoke(app, ["ls", f"{target.host}/t/payments/api"])
    assert result.stdout.split() == [TAG]
    result = runner.invoke(app, ["ls", target.host, "-o", "json"])
    assert json.loads(result.stdout)["repositories"] == ["t/payments/api"]

    result = runner.invoke(app, ["inspect", f"{target.host}/t/payments/api:{TAG}", "--output", "json"])
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert document["version"] == 1
    assert document["digest"] == image.digest
    assert {m["platform"] for m in document["manifests"]} == {"linux/amd64", "linux/arm64"}

    child = image.manifests[0]
    result = runner.invoke(app, ["inspect", f"{target.host}/t/payments/api@{child.digest}", "-o", "json"])
    document = json.loads(result.stdout)
    assert document["image"]["user"] == "10001"
    assert document["image"]["cmd"] == ["/app"]
    assert document["image"]["labels"]["org.opencontainers.image.version"] == TAG
    assert [layer["digest"] for layer in document["layers"]] == [layer.blob.digest for layer in child.layers]

    result = runner.invoke(app, ["inspect", "--raw", f"{target.host}/t/payments/api:{TAG}"])
    assert result.stdout_bytes == image.raw


def test_copy_all_tags_then_again_is_a_no_op(registry_factory: RegistryFactory, runner: CliRunner) -> None:
    source = registry_factory(name="src")
    target = registry_factory(name="dst")
    tags = [f"2026112{day}_01" for day in range(1, 4)]
    for tag in tags:
        push_image(image_for("app", tag), source.url, "app", tag)

    first = runner.invoke(app, ["copy", "--all-tags", f"{source.host}/app", f"{target.host}/mirror/app", "-o", "json"])
    assert first.exit_code == 0, first.output
    document = json.loads(first.stdout)
    assert document["summary"]["copied"] == 3
    mark = target.mark()

    again = runner.invoke(app, ["copy", "--all-tags", f"{source.host}/app", f"{target.host}/mirror/app", "-o", "json"])
    assert again.exit_code == 0
    assert json.loads(again.stdout)["summary"]["present"] == 3
    # one tags list and one HEAD per tag on the target; no blob and no write
    assert sorted((r.method, r.kind) for r in target.requests_since(mark)) == [
        ("GET", "tags"),
        ("HEAD", "manifest"),
        ("HEAD", "manifest"),
        ("HEAD", "manifest"),
    ]


def test_copy_recursive_mirrors_a_prefix(registry_factory: RegistryFactory, runner: CliRunner) -> None:
    source = registry_factory(name="src")
    target = registry_factory(name="dst")
    for repository in ("d/payments/api", "d/payments/web", "other/thing"):
        push_image(image_for(repository, TAG), source.url, repository, TAG)

    result = runner.invoke(app, ["copy", "-a", "-r", f"{source.host}/d", f"{target.host}/t"])

    assert result.exit_code == 0, result.output
    listing = runner.invoke(app, ["ls", target.host])
    assert listing.stdout.split() == ["t/payments/api", "t/payments/web"]


def test_usage_errors_exit_2(runner: CliRunner) -> None:
    for arguments in (
        ["copy", "127.0.0.1:1/App:x", "127.0.0.1:1/b"],
        ["copy", "127.0.0.1:1/a", "127.0.0.1:1/b"],
        ["copy", "--recursive", "127.0.0.1:1", "127.0.0.1:2"],
        ["copy", f"127.0.0.1:1/a:{TAG}", "127.0.0.1:1/b@sha256:" + "0" * 64],
        ["digest", "127.0.0.1:1/a"],
        ["ls", "127.0.0.1:1/a:tag"],
    ):
        result = runner.invoke(app, arguments)
        assert result.exit_code == ExitCode.USAGE, (arguments, result.output)
        assert "error:" in result.output


def test_unreachable_registry_exits_1_naming_it(runner: CliRunner, monkeypatch: pytest.MonkeyPatch) -> None:
    async def no_sleep(seconds: float) -> None:
        return None

    monkeypatch.setattr("reconciler.registry.retry.asyncio.sleep", no_sleep)  # retries without waiting
    result = runner.invoke(app, ["digest", f"127.0.0.1:9/app:{TAG}"])  # port 9 (discard): nothing listens
    assert result.exit_code == ExitCode.FAILURE
    assert "127.0.0.1:9/app" in result.output


def test_credentials_from_environment_and_never_printed(
    basic_registry: AuthedRegistry, runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    push_image(
        image_for("app", TAG),
        basic_registry.url,
        "app",
        TAG,
        username=basic_registry.username,
        password=basic_registry.password,
    )
    prefix = "RECONCILER_AUTH_" + basic_registry.host.replace(".", "_").replace(":", "_")

    anonymous = runner.invoke(app, ["digest", f"{basic_registry.host}/app:{TAG}"])
    assert anonymous.exit_code == ExitCode.FAILURE
    assert "no credentials found" in anonymous.output

    monkeypatch.setenv(f"{prefix}_USERNAME", basic_registry.username)
    monkeypatch.setenv(f"{prefix}_PASSWORD", "wrong-" + basic_registry.password)
    refused = runner.invoke(app, ["ls", f"{basic_registry.host}/app"])
    assert refused.exit_code == ExitCode.FAILURE
    assert basic_registry.password not in refused.output

    monkeypatch.setenv(f"{prefix}_PASSWORD", basic_registry.password)
    allowed = runner.invoke(app, ["ls", f"{basic_registry.host}/app"])
    assert allowed.exit_code == 0, allowed.output
    assert allowed.stdout.split() == [TAG]


def test_copy_all_tags_of_a_repository_that_does_not_exist_fails(
    registry_factory: RegistryFactory, runner: CliRunner
) -> None:
    """It once exited 0 saying "0 images"."""
    source = registry_factory(name="src")
    target = registry_factory(name="dst")
    result = runner.invoke(app, ["copy", "--all-tags", f"{source.host}/no/such/repo", f"{target.host}/mirror/repo"])
    assert result.exit_code == ExitCode.FAILURE, result.output
    assert "no/such/repo" in result.output
    assert "does not exist or holds no tag" in result.output


@pytest.mark.parametrize("text", ["127.0.0.1:5401", "localhost:5000", "[::1]:5000", "registry.example.com:5000"])
def test_a_bare_registry_address_is_refused_before_anything_is_contacted(runner: CliRunner, text: str) -> None:
    """Docker's grammar reads ``127.0.0.1:5401`` as docker.io/library/127.0.0.1:5401: reconciler once
    contacted Docker Hub for it. Now it is a usage error with a hint, and no connection is made."""
    for command in (["copy", text, "127.0.0.1:9/x/y:1"], ["digest", text], ["inspect", text]):
        result = runner.invoke(app, command)
        assert result.exit_code == ExitCode.USAGE, (command, result.output)
        assert "is a registry address, not an image" in result.output
        assert "docker.io" not in result.output.replace("Docker Hub", "")
