"""Writes a registry acknowledged but did not keep: an image manifest stored EMPTY on a full disk.

What used to happen (and what distribution 2.8 still does): with the registry's disk full, a manifest PUT
fails with 500 after the registry created the manifest's blob file, empty; the client's retry finds that
blob "already present", links it, and gets 201. ``apply`` reported success, ``plan`` then said in sync (a
HEAD on the tag reads the index, which is fine), and every pull failed on the child manifest, which the
registry answers with 500 forever. Now the registry client counts 5xx answers to writes, and once a
registry has failed one in a session it reads back every manifest it acknowledges afterwards (GET by
digest, children, and the size of every blob); an image that does not read back whole fails its copy
BEFORE its tag is written, naming the broken manifest. ``RegistryClient.verify_image`` is the same check
for images already in a registry (``plan --deep`` uses it).

The registry is real, its storage a 3 MiB tmpfs; a relay in front of it fills the disk the moment the
first child manifest of payments/api is PUT, and frees it as soon as the registry has answered that PUT:
the exact interleaving that damages an image, made deterministic.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from engine.landscape import Landscape, start_landscape
from support.fakeregistry import FakeRegistry, Wire, image_manifest, sha256
from support.httpserver import LoopbackServer, Reply, Request, Response
from support.relay import relay

from reconciler.exitcodes import ExitCode
from reconciler.registry import Copier, RegistryClient, RetryPolicy
from testkit.localregistry import LocalRegistry

from .kit import Run, assert_no_traceback, cli_env, fill, registries, run, tmpfs

if TYPE_CHECKING:
    from reconciler.registry.verify import ImageProblem

pytestmark = pytest.mark.registry

API, WEB = ("payments/api", "20261127_01"), ("payments/web", "20261126_02")
DAMAGED_REPOSITORY = "/v2/t/payments/api/manifests/sha256:"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@dataclass
class Damaged:
    land: Landscape
    root: Path
    home: Path
    disk: Path
    filled: list[str]
    """The manifest PUT the disk was filled for."""
    apply: Run
    tag_after_apply: str | None
    """What t's payments/api tag pointed at right after the apply."""
    plan: Run
    """``plan`` right after the apply."""
    plan_tagged: Run
    """``plan --env t`` once another client has put the tag over the damaged image."""


def _tag_the_damaged_index(land: Landscape) -> None:
    """What another client (or an older reconciler) leaves: the tag PUT over the empty child. The registry
    accepts it (the child "exists"), and a HEAD on the tag is fine."""
    image = land.images[API]
    answer = httpx.put(
        f"{land.registries['test'].url}/v2/t/{API[0]}/manifests/{API[1]}",
        content=image.raw,
        headers={"Content-Type": image.media_type},
    )
    assert answer.status_code == 201, answer.text


@pytest.fixture(scope="module")
def damaged(registry_binary: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Damaged]:
    """The chain with ``test`` on a small disk behind the relay: one ``apply``, one ``plan``, then the tag
    put over the damaged image by another client and one more ``plan``."""
    home = tmp_path_factory.mktemp("acknowledged")
    with tmpfs(home / "small-disk", "3m") as disk, registries(registry_binary) as registry_factory:
        filled: list[str] = []
        fillers: list[Path] = []

        def fill_for_the_first_child(request: Request) -> Reply | None:
            if request.method == "PUT" and request.path.startswith(DAMAGED_REPOSITORY) and not filled:
                fillers.append(fill(disk))
                filled.append(request.path)
            return None

        def free_after_its_answer(request: Request, status: int) -> None:
            if filled and request.path == filled[0] and fillers:
                os.unlink(fillers.pop())

        servers: list[LoopbackServer] = []

        def start(**kwargs: object) -> LocalRegistry:
            if kwargs.get("name") == "test":
                kwargs["storage_dir"] = disk / "storage"
            return registry_factory(**kwargs)

        def url_for(name: str, registry: LocalRegistry) -> str:
            if name != "test":
                return registry.url
            handler = relay(registry.url, intercept=fill_for_the_first_child, after=free_after_its_answer)
            servers.append(LoopbackServer(handler, name="test-relay").start())
            return servers[-1].url

        try:
            land = start_landscape(start, home / "state", url_for)
            land.image(*API, platforms=("linux/amd64", "linux/arm64"))
            root = land.promote_everywhere([API, WEB])
            env = cli_env(home)
            # One image at a time: the disk is full for the length of ONE request, and only payments/api's
            # copy may be in flight then (another image's write in that instant would be damaged as well).
            applied = run(["apply", str(root), "-o", "json", "--concurrency", "1"], env=env)
            tag_after_apply = land.tag_digest("t", "test", *API)
            planned = run(["plan", str(root), "-o", "json"], env=env)
            _tag_the_damaged_index(land)
            tagged = run(["plan", str(root), "-o", "json", "--env", "t"], env=env)
            yield Damaged(land, root, home, disk, filled, applied, tag_after_apply, planned, tagged)
        finally:
            for server in servers:
                server.stop()


def _empty_blobs(disk: Path) -> list[Path]:
    blobs = disk / "storage/docker/registry/v2/blobs"
    return [path for path in blobs.rglob("data") if path.stat().st_size == 0]


def test_apply_fails_the_image_the_registry_stored_empty_and_writes_no_tag(damaged: Damaged) -> None:
    assert damaged.filled, "the relay never saw payments/api's child manifest being PUT"
    assert _empty_blobs(damaged.disk), "the registry did not store an empty manifest: the scenario did not happen"
    result = damaged.apply
    assert_no_traceback(result)
    assert result.code == ExitCode.FAILURE, str(result)
    document = json.loads(result.stdout)
    first = [f for f in document["failures"] if "did not succeed" not in f["reason"]]
    assert [(f["environment"], f["image"]) for f in first] == [("t", API[0])], str(result)
    assert "read back broken" in first[0]["reason"]
    assert "cannot be read back" in first[0]["reason"]
    assert {f["image"] for f in document["failures"]} == {API[0]}, "only payments/api may fail"
    land = damaged.land
    assert damaged.tag_after_apply is None, "a tag points at an image that cannot be pulled"
    for env, registry in (("t", "test"), ("s1", "pre"), ("s2", "pre"), ("p", "prod-a"), ("p", "prod-b")):
        assert land.tag_digest(env, registry, *WEB) == str(land.images[WEB].digest), (env, registry)


def test_plan_afterwards_does_not_say_in_sync(damaged: Damaged) -> None:
    result = damaged.plan
    assert_no_traceback(result)
    document = json.loads(result.stdout)
    assert document["status"] == "changes", str(result)
    pending = {(a["environment"], a["image"], a["kind"]) for a in document["actions"]}
    assert ("t", API[0], "copy") in pending


def test_verify_image_finds_the_child_that_cannot_be_read_back(damaged: Damaged) -> None:
    land = damaged.land
    url = land.registries["test"].url

    async def check() -> tuple[list[ImageProblem], list[ImageProblem]]:
        async with RegistryClient(url=url) as client:
            broken = await client.verify_image(f"t/{API[0]}", API[1], expected=str(land.images[API].digest))
            whole = await client.verify_image(f"t/{WEB[0]}", WEB[1], expected=str(land.images[WEB].digest))
            return broken, whole

    broken, whole = asyncio.run(check())
    assert whole == []
    assert broken, "verify_image found nothing wrong with an image whose child answers 500"
    children = {str(child.digest) for child in land.images[API].manifests}
    for problem in broken:
        assert problem.repository == f"t/{API[0]}"
        assert problem.reference in children, problem
        assert "child manifest cannot be read back" in problem.message, problem
        assert "500" in problem.message, problem


def test_plan_in_sync_hides_the_damage_until_a_deep_plan_reads_it_back(damaged: Damaged) -> None:
    """Once the tag is in place (written by another client), ``plan`` says in sync: one HEAD per tag reads
    only the index. The controller's resync needs a deep mode that reads every in-sync image back."""
    shallow = damaged.plan_tagged
    assert json.loads(shallow.stdout)["status"] == "in-sync", str(shallow)


def test_a_deep_plan_reports_the_damaged_in_sync_image(damaged: Damaged) -> None:
    deep = run(["plan", str(damaged.root), "-o", "json", "--env", "t", "--deep"], env=cli_env(damaged.home))
    assert deep.code == ExitCode.FAILURE, str(deep)
    document = json.loads(deep.stdout)
    [damaged_action] = [a for a in document["actions"] if a["image"] == API[0] and a["environment"] == "t"]
    assert damaged_action["kind"] == "damaged", str(deep)
    assert "repair its storage" in damaged_action["reason"]


def _copy_into(target: FakeRegistry) -> None:
    config = b'{"architecture":"amd64","os":"linux"}'
    layers = [b"first layer" * 500, b"second layer" * 700]
    source = FakeRegistry()
    for blob in (config, *layers):
        source.blobs[sha256(blob)] = blob
    digest = source.add_manifest("src", image_manifest(config, layers), OCI_MANIFEST, "v1")
    with Wire("socket", retry=RetryPolicy(attempts=3, base_delay=0.001)) as wire:

        async def copy() -> None:
            async with wire.client(source) as src, wire.client(target) as dst:
                await Copier().copy(
                    source=src, source_repository="src", reference=digest, target=dst, target_repository="dst", tag="v1"
                )

        asyncio.run(copy())


def _after_the_last_manifest_put(target: FakeRegistry) -> list[tuple[str, str]]:
    last = max(i for i, (method, path) in enumerate(target.requests) if method == "PUT" and "/manifests/" in path)
    return target.requests[last + 1 :]


def test_reading_back_costs_nothing_until_the_registry_fails_a_write() -> None:
    """The defence's cost: nothing for a registry that never failed a write; after one 5xx answer to a write,
    one GET per manifest written and one HEAD per blob of it, for the rest of the session."""
    healthy = FakeRegistry()
    _copy_into(healthy)
    assert _after_the_last_manifest_put(healthy) == []
    assert not [r for r in healthy.requests if r[0] == "GET"]

    failed_once: list[str] = []

    def one_storage_error(request: Request) -> Reply | None:
        if request.method == "PUT" and "/manifests/" in request.path and not failed_once:
            failed_once.append(request.path)
            return Response.error(500, "UNKNOWN", "unknown error")
        return None

    faulty = FakeRegistry(faults=[one_storage_error])
    _copy_into(faulty)
    read_back = _after_the_last_manifest_put(faulty)
    assert [method for method, path in read_back if "/manifests/" in path] == ["GET"]
    assert sorted(method for method, path in read_back if "/blobs/" in path) == ["HEAD"] * 3
