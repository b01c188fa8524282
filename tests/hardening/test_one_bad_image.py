"""One bad image never stops the rest: four ways a single image can fail, each in a real five-registry chain.

What used to happen: a corrupted source blob, a 403 on push, a full disk or a registry killed mid-upload
raised out of the copy engine and ended ``apply`` with a traceback; the images after it were never tried,
``-o json`` printed nothing, and the audit log did not say what failed. Now each fault fails exactly the
images it touches (and their downstream stages, skipped), with the registry, repository, digest and cause,
in the output, in the JSON envelope and in the audit log, and every other image converges.

Each test builds the example's chain (d -> t -> s1 -> s2 -> p, p on two registries) on real registries,
seeds three images into d, breaks one thing, and runs ``reconciler apply -o json`` through the console
script.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from engine.landscape import REGISTRY_OF, Landscape, start_landscape
from support.fakeregistry import FakeRegistry, Wire, sha256
from support.httpserver import RESET, LoopbackServer, Reply, Request, Response
from support.registries import RegistryFactory
from support.relay import relay

from reconciler.engine.audit import pair_records, read_records
from reconciler.errors import TransientRegistryError
from reconciler.exitcodes import ExitCode
from reconciler.registry import RetryPolicy, registry_env_prefix
from testkit.localregistry import LocalRegistry

from .kit import Run, assert_no_traceback, cli_env, fill, run, tmpfs

pytestmark = pytest.mark.registry

API, WEB, GATEWAY = (
    ("payments/api", "20261127_01"),
    ("payments/web", "20261126_02"),
    ("platform/gateway", "20261120_01"),
)
VERSIONS = [API, WEB, GATEWAY]
ENVS = ("t", "s1", "s2", "p")
Where = tuple[str, str, str]
"""(environment, registry, image)."""


def _everywhere(images: list[tuple[str, str]], envs: tuple[str, ...] = ENVS) -> set[Where]:
    return {(env, registry, name) for env in envs for registry in REGISTRY_OF[env] for name, _tag in images}


def _apply(land: Landscape, root: Path, home: Path, *extra: str, env: dict[str, str] | None = None) -> Run:
    return run(["apply", str(root), "-o", "json", *extra], env=cli_env(home, env))


def assert_only(
    land: Landscape,
    result: Run,
    failed: set[Where],
    *,
    cause: str,
    audit: Path,
    pinned: set[Where] | None = None,
) -> list[dict[str, object]]:
    """``apply`` failed exactly ``failed`` (the first stage with ``cause``, the rest skipped), printed its JSON
    envelope and one line per failure, audited each, and converged everything else that is ``pinned``
    (default: every version in every stage). Returns the audit records of the failures."""
    assert_no_traceback(result)
    assert result.code == ExitCode.FAILURE, str(result)
    document = json.loads(result.stdout)
    assert (document["version"], document["command"], document["status"]) == (1, "apply", "failed")
    reported = {(f["environment"], f["registry"], f["image"]) for f in document["failures"]}
    assert reported == failed, str(result)
    first = [f for f in document["failures"] if "did not succeed" not in f["reason"]]
    assert first, str(result)
    for failure in first:
        assert cause in failure["reason"], failure
        assert failure["digest"].startswith("sha256:"), failure
    lines = [line for line in result.stderr.splitlines() if line.startswith("  ")]
    assert len(lines) == len(failed), str(result)
    for env, registry, image in failed:
        assert any(line.startswith(f"  {env} {registry} {image}:") for line in lines), (env, registry, image)
    records = [r for r in pair_records(read_records(audit)) if r["result"] != "ok"]
    audited = {(str(r["environment"]), str(r["registry"]), str(r["repository"]).split("/", 1)[1]) for r in records}
    assert audited == failed
    assert all(r["error"] for r in records)
    tags = dict(VERSIONS)
    for env, registry, name in (pinned if pinned is not None else _everywhere(VERSIONS)) - failed:
        expected = str(land.images[(name, tags[name])].digest)
        assert land.tag_digest(env, registry, name, tags[name]) == expected, (env, registry, name)
    return records


@pytest.fixture
def land(registry_factory: RegistryFactory, tmp_path: Path) -> Landscape:
    return start_landscape(registry_factory, tmp_path / "state")


def _blob_file(registry: LocalRegistry, digest: str) -> Path:
    hexpart = digest.split(":", 1)[1]
    return registry.storage_dir / "docker/registry/v2/blobs/sha256" / hexpart[:2] / hexpart / "data"


def test_a_corrupted_source_blob_fails_that_image_only(land: Landscape, tmp_path: Path) -> None:
    """The source registry serves garbage for one layer (its file overwritten in the registry's storage):
    the copy stops at the digest check, blaming the SOURCE and the blob; nothing of it lands in t."""
    root = land.promote_everywhere(VERSIONS)
    layer = land.images[API].manifests[0].layers[0].blob.digest
    data = _blob_file(land.registries["dev"], str(layer))
    data.write_bytes(bytes(b ^ 0xFF for b in data.read_bytes()))
    result = _apply(land, root, tmp_path)
    failed = _everywhere([API])
    records = assert_only(land, result, failed, cause="source served", audit=tmp_path / "audit.jsonl")
    first = [r for r in records if r["environment"] == "t"]
    assert "dev/d/payments/api" in str(first[0]["error"])
    assert str(layer) in str(first[0]["error"])


def test_a_target_refusing_pushes_with_403_fails_that_image_only(
    registry_factory: RegistryFactory, tmp_path: Path
) -> None:
    """``pre`` answers 403 to every write into s1/payments/web (an access rule), through a relay: that image
    fails in s1 with the 403, s2 and p skip it, the two other images go through."""

    def forbid(request: Request) -> Reply | None:
        if request.method in ("POST", "PUT", "PATCH") and request.path.startswith("/v2/s1/payments/web/"):
            return Response.error(403, "DENIED", "requested access to the resource is denied")
        return None

    servers: list[LoopbackServer] = []

    def url_for(name: str, registry: LocalRegistry) -> str:
        if name != "pre":
            return registry.url
        servers.append(LoopbackServer(relay(registry.url, intercept=forbid), name="pre-relay").start())
        return servers[-1].url

    try:
        land = start_landscape(registry_factory, tmp_path / "state", url_for)
        root = land.promote_everywhere(VERSIONS)
        result = _apply(land, root, tmp_path)
        failed = _everywhere([WEB], ("s1", "s2", "p"))
        assert_only(land, result, failed, cause="HTTP 403", audit=tmp_path / "audit.jsonl")
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    with tmpfs(tmp_path / "small-disk", "3m") as mounted:
        yield mounted


def test_a_target_whose_disk_is_full_fails_that_image_only(
    registry_factory: RegistryFactory, tmp_path: Path, small_disk: Path
) -> None:
    """``prod-b`` keeps its storage on a 3 MiB tmpfs, filled to the last byte: every write into it fails
    (distribution answers 500 and logs "no space left on device"). Production pins one image: it fails on prod-b,
    and lands on its twin prod-a and in every earlier stage. (Images copied into a registry whose disk
    fills up mid-upload share its fate: distribution 2.8 cannot cancel a half-written session, so the
    partial blob stays in ``_uploads`` until its upload purging; see docs/hardening.md.)"""

    def start(**kwargs: object) -> LocalRegistry:
        if kwargs.get("name") == "prod-b":
            kwargs["storage_dir"] = small_disk / "storage"
        return registry_factory(**kwargs)  # type: ignore[arg-type]

    land = start_landscape(start, tmp_path / "state")
    fill(small_disk)
    root = _pin_one_image_in_production(land)
    result = _apply(land, root, tmp_path)
    pinned = _everywhere(VERSIONS, ("t", "s1", "s2")) | _everywhere([API], ("p",))
    failed = {("p", "prod-b", API[0])}
    assert_only(
        land, result, failed, cause="start blob upload: HTTP 500", audit=tmp_path / "audit.jsonl", pinned=pinned
    )


def _pin_one_image_in_production(land: Landscape) -> Path:
    """Every version in d, t, s1 and s2; only payments/api in p."""
    triples = [(name, tag, land.seed(name, tag)) for name, tag in VERSIONS]
    pins = {env: list(triples) for env in ("d", "t", "s1", "s2")}
    pins["p"] = [triples[0]]
    return land.write(pins)


def test_an_auth_registry_killed_during_an_upload_fails_that_image_only(
    registry_factory: RegistryFactory, tmp_path: Path
) -> None:
    """``prod-b`` needs Basic credentials and is killed (SIGKILL) the moment the first blob upload into it
    sends its bytes: the one image production pins fails there, with the registry named; its twin prod-a and
    every other stage converge."""
    username, password = "deployer", "killed-registry-password"
    killed: list[int] = []
    servers: list[LoopbackServer] = []

    def url_for(name: str, registry: LocalRegistry) -> str:
        if name != "prod-b":
            return registry.url

        def kill_on_upload(request: Request) -> Reply | None:
            if request.method in ("PUT", "PATCH") and "/blobs/uploads/" in request.path and not killed:
                pid = registry.pid
                assert pid is not None
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
                return RESET
            return None

        servers.append(LoopbackServer(relay(registry.url, intercept=kill_on_upload), name="prod-b-relay").start())
        return servers[-1].url

    def start(**kwargs: object) -> LocalRegistry:
        if kwargs.get("name") == "prod-b":
            kwargs["basic_auth"] = {username: password}
        return registry_factory(**kwargs)  # type: ignore[arg-type]

    try:
        land = start_landscape(start, tmp_path / "state", url_for)
        root = _pin_one_image_in_production(land)
        prefix = registry_env_prefix("prod-b")
        result = _apply(land, root, tmp_path, env={f"{prefix}_USERNAME": username, f"{prefix}_PASSWORD": password})
        assert killed, "the registry was never killed: no upload reached it"
        failed = {("p", "prod-b", API[0])}
        pinned = _everywhere(VERSIONS, ("t", "s1", "s2")) | _everywhere([API], ("p",))
        records = assert_only(
            land, result, failed, cause="prod-b/p/payments/api@sha256:", audit=tmp_path / "audit.jsonl", pinned=pinned
        )
        assert password not in result.output
        assert password not in json.dumps(records)
    finally:
        for server in servers:
            server.stop()


def test_a_registry_refusing_every_upload_costs_one_retry_budget_not_five() -> None:
    """A full disk answers 500 to every upload's POST. The upload's own retry starts each attempt over; the
    POST inside it used to retry as well, so one blob cost 5 x 5 POSTs and about 20 s of backoff."""
    fake = FakeRegistry()
    fake.faults.append(lambda request: Response.error(500, "UNKNOWN", "no space") if request.method == "POST" else None)
    data = b"a layer that cannot be stored" * 100
    with Wire("socket", retry=RetryPolicy(attempts=5, base_delay=0.001, max_delay=0.01)) as wire:

        async def upload() -> None:
            async with wire.client(fake) as client:
                await client.upload_blob("app", sha256(data), data)

        with pytest.raises(TransientRegistryError, match="start blob upload: HTTP 500"):
            asyncio.run(upload())
    assert [method for method, _ in fake.requests].count("POST") == 5
