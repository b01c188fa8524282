"""The gate step of a pass without a network: evidence fetched once per digest (a config once per
platform), read where the image is now, refusals spreading to what depends on them, fail closed."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections import Counter

from reconciler.engine.gates import gate_plan
from reconciler.engine.plan import plan as make_plan
from reconciler.errors import NotFoundError
from reconciler.model.desired import Gate
from reconciler.model.manifest import Manifest, parse_manifest
from reconciler.model.plan import ActionKind, Location
from reconciler.policy.referrers import Referrer
from testkit.imagegen import ImageSettings, image_for

from .states import chain_config, state
from .world import World

TAG = "20261127_01"


class CountingAccess:
    def __init__(self, blobs: dict[str, bytes], manifests: dict[str, bytes]) -> None:
        self.blobs, self.manifests = blobs, manifests
        self.calls: Counter[str] = Counter()
        self.where: list[Location] = []

    async def manifest(self, location: Location, digest: str) -> Manifest:
        self.calls["manifest"] += 1
        self.where.append(location)
        if digest not in self.manifests:
            raise NotFoundError("manifest unknown", registry=location.registry, digest=digest)
        return parse_manifest(self.manifests[digest], digest=digest)

    async def blob(self, location: Location, digest: str, *, max_bytes: int) -> bytes:
        self.calls["blob"] += 1
        return self.blobs[digest]

    async def referrers(self, location: Location, manifest: Manifest) -> list[Referrer]:
        self.calls["referrers"] += 1
        return []


def _setup(settings: ImageSettings) -> tuple[object, CountingAccess, str]:
    image = image_for("payments/api", TAG, platforms=("linux/amd64", "linux/arm64"), settings=settings)
    manifests = {str(image.digest): image.raw} | {str(m.digest): m.raw for m in image.manifests}
    blobs = {str(m.config.digest): m.config.data for m in image.manifests}
    triple = ("payments/api", TAG, str(image.digest))
    config = dataclasses.replace(chain_config(), gates={"s2": Gate(non_root=True), "p": Gate(non_root=True)})
    desired = state(config, {env: [triple] for env in ("d", "t", "s1", "s2", "p")})
    world = World()
    world.put("dev", "d/payments/api", TAG, str(image.digest))
    plan = make_plan(desired, world.observe(desired))
    return (desired, plan), CountingAccess(blobs, manifests), str(image.digest)


def test_evidence_is_fetched_once_per_digest_and_config_once_per_platform() -> None:
    (desired, plan), access, _digest = _setup(ImageSettings(user="10001"))
    gated = asyncio.run(gate_plan(desired, plan, access))  # type: ignore[arg-type]
    assert gated == plan  # everything passes: the plan is unchanged
    # s2 (pre) and p (prod-a, prod-b): three gated actions of one digest, a two-platform index
    assert access.calls == Counter({"manifest": 3, "blob": 2})  # index + 2 children; 2 configs
    assert all(location.repository == "d/payments/api" for location in access.where)  # read where it is now


def test_a_refused_image_is_refused_downstream_too() -> None:
    (desired, plan), access, _digest = _setup(ImageSettings(user="root"))
    gated = asyncio.run(gate_plan(desired, plan, access))  # type: ignore[arg-type]
    kinds = {(a.environment, a.registry): a.kind for a in gated}
    assert kinds[("t", "test")] is ActionKind.COPY  # t has no gates
    assert kinds[("s1", "pre")] is ActionKind.COPY
    assert {kinds[("s2", "pre")], kinds[("p", "prod-a")], kinds[("p", "prod-b")]} == {ActionKind.REFUSED}
    s2 = next(a for a in gated if a.environment == "s2")
    assert "User is root" in s2.reason
    assert all(not a.depends_on for a in gated if a.kind is ActionKind.REFUSED)


def test_evidence_that_cannot_be_read_refuses_fail_closed() -> None:
    (desired, plan), access, digest = _setup(ImageSettings(user="10001"))
    del access.manifests[digest]
    gated = asyncio.run(gate_plan(desired, plan, access))  # type: ignore[arg-type]
    s2 = next(a for a in gated if a.environment == "s2")
    assert s2.kind is ActionKind.REFUSED
    assert "could not be read to check the gates of s2" in s2.reason
    assert json.dumps(s2.reason)  # one plain line
