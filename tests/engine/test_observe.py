"""The observer's requests: one HEAD per declared tag in sync, and a tags list instead of HEADs where a
repository's probe finds nothing (run on an in-memory registry model that counts every call)."""

from __future__ import annotations

import asyncio

from reconciler.engine.observe import observe
from reconciler.engine.plan import plan
from reconciler.errors import TransientRegistryError
from reconciler.model.desired import DesiredState
from reconciler.model.observed import ManifestKey, TagKey
from reconciler.model.plan import ActionKind

from .states import chain_config, digest_of, state
from .test_execute import FakeAccess
from .world import World

TAGS = ("20261125_01", "20261126_01", "20261127_01")


def pin(tag: str) -> tuple[str, str, str]:
    return ("shop/api", tag, digest_of(f"shop/api:{tag}"))


class CountingAccess(FakeAccess):
    def __init__(self, world: World, *, failing_lists: bool = False) -> None:
        super().__init__(world)
        self.heads: list[TagKey] = []
        self.lists: list[tuple[str, str]] = []
        self.lookups: list[ManifestKey] = []
        self.failing_lists = failing_lists

    async def tag_digest(self, registry: str, repository: str, tag: str) -> str | None:
        self.heads.append(TagKey(registry, repository, tag))
        return await super().tag_digest(registry, repository, tag)

    async def tags(self, registry: str, repository: str) -> list[str]:
        self.lists.append((registry, repository))
        if self.failing_lists:
            raise TransientRegistryError("503 Service Unavailable", registry=registry, repository=repository)
        return await super().tags(registry, repository)

    async def has_manifest(self, registry: str, repository: str, digest: str) -> bool:
        self.lookups.append(ManifestKey(registry, repository, digest))
        return await super().has_manifest(registry, repository, digest)


def desired_with(t_tags: tuple[str, ...] = TAGS) -> DesiredState:
    return state(chain_config(), {"d": [pin(tag) for tag in TAGS], "t": [pin(tag) for tag in t_tags]})


def world_with(t_tags: tuple[str, ...]) -> World:
    world = World()
    for tag in TAGS:
        world.put("dev", "d/shop/api", tag, pin(tag)[2])
    for tag in t_tags:
        world.put("test", "t/shop/api", tag, pin(tag)[2])
    return world


def test_in_sync_costs_one_head_per_tag_and_no_list() -> None:
    access = CountingAccess(world_with(TAGS))
    observed = asyncio.run(observe(desired_with(), access, only=["t"]))
    assert sorted(k.tag for k in access.heads) == sorted(TAGS)
    assert access.lists == []
    assert access.lookups == []
    assert observed.request_count == 3
    assert plan(desired_with(), observed, only=["t"]).writes == ()


def test_empty_repository_is_probed_once_listed_once_and_not_asked_by_digest() -> None:
    access = CountingAccess(world_with(()))
    desired = desired_with()
    observed = asyncio.run(observe(desired, access, only=["t"]))
    assert access.heads == [TagKey("test", "t/shop/api", TAGS[-1])]  # the newest declared tag probes
    assert access.lists == [("test", "t/shop/api")]
    assert {k.registry for k in access.lookups} == {"dev"}  # sources only: the target holds no tag
    assert observed.request_count == 1 + 1 + 3
    assert all(observed.tag_digest(TagKey("test", "t/shop/api", tag)) is None for tag in TAGS)
    result = plan(desired, observed, only=["t"])
    assert [a.kind for a in result.writes] == [ActionKind.COPY] * 3


def test_new_version_lists_the_repository_and_heads_only_listed_tags() -> None:
    access = CountingAccess(world_with(TAGS[:2]))
    desired = desired_with()
    observed = asyncio.run(observe(desired, access, only=["t"]))
    assert sorted(k.tag for k in access.heads) == sorted(TAGS)
    assert access.lists == [("test", "t/shop/api")]
    # the repository holds tags, so the new digest is looked up there too (it may be there untagged)
    assert ManifestKey("test", "t/shop/api", pin(TAGS[-1])[2]) in access.lookups
    assert observed.request_count == 3 + 1 + len(access.lookups)
    assert [a.tag for a in plan(desired, observed, only=["t"]).writes] == [TAGS[-1]]


def test_tags_absent_from_the_list_are_not_headed() -> None:
    world = world_with(TAGS[:1])
    access = CountingAccess(world)
    observed = asyncio.run(observe(desired_with(), access, only=["t"]))
    assert sorted(k.tag for k in access.heads) == [TAGS[0], TAGS[-1]]  # the probe, then the one listed
    assert observed.tag_digest(TagKey("test", "t/shop/api", TAGS[1])) is None
    assert observed.tag_digest(TagKey("test", "t/shop/api", TAGS[0])) == pin(TAGS[0])[2]


def test_a_failed_list_falls_back_to_one_head_per_tag() -> None:
    access = CountingAccess(world_with(TAGS[:1]), failing_lists=True)
    observed = asyncio.run(observe(desired_with(), access, only=["t"]))
    assert sorted(k.tag for k in access.heads) == sorted(TAGS)
    assert observed.errors == {}
    assert observed.tag_digest(TagKey("test", "t/shop/api", TAGS[0])) == pin(TAGS[0])[2]


def test_an_untagged_version_in_a_tagless_upstream_is_still_found_as_a_source() -> None:
    # s1 has dropped 20261125_01 (kept untagged, as promoted history) and declares a version it lacks; s2
    # still declares the old one and must copy it from s1, whose repository holds no tag at all.
    old, new = pin(TAGS[0]), pin(TAGS[-1])
    desired = state(chain_config(), {"d": [old, new], "t": [old, new], "s1": [new], "s2": [old]})
    world = World()
    for tag, _image, digest in ((old[1], old[0], old[2]), (new[1], new[0], new[2])):
        world.put("dev", "d/shop/api", tag, digest)
    world.manifests.add(ManifestKey("pre", "s1/shop/api", old[2]))
    access = CountingAccess(world)
    observed = asyncio.run(observe(desired, access, only=["s1", "s2"]))
    assert ("pre", "s1/shop/api") in access.lists
    assert ManifestKey("pre", "s1/shop/api", old[2]) in access.lookups
    actions = {a.environment: a for a in plan(desired, observed, only=["s1", "s2"]).writes}
    assert actions["s2"].kind is ActionKind.COPY
    assert actions["s2"].source is not None
    assert actions["s2"].source.repository == "s1/shop/api"
