"""Shards split the images with no overlap and no gap, stably; a pass restricted to a shard plans only it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.engine.plan import plan
from reconciler.engine.shards import Shard

from .states import full_chain
from .world import World

names = st.lists(st.from_regex(r"[a-z]{1,8}(/[a-z]{1,8})?", fullmatch=True), min_size=1, max_size=40, unique=True)


@given(names, st.integers(1, 7))
def test_every_image_belongs_to_exactly_one_shard(images: list[str], count: int) -> None:
    for image in images:
        owners = [index for index in range(count) if Shard(index, count).owns(image)]
        assert len(owners) == 1


def test_shards_parse_and_come_from_statefulset_hostnames() -> None:
    assert Shard.parse("1/3") == Shard(1, 3)
    assert Shard.from_hostname("reconciler-2", 3) == Shard(2, 3)
    assert Shard(0, 2).owns("payments/api") == Shard(0, 2).owns("payments/api")  # stable
    for bad in ("3/3", "x/2", "1", "-1/2"):
        with pytest.raises(ValueError, match="shard"):
            Shard.parse(bad)
    with pytest.raises(ValueError, match="ordinal"):
        Shard.from_hostname("reconciler", 2)


def test_a_pass_restricted_to_a_shard_plans_only_its_images() -> None:
    images = tuple(f"team/app{i}" for i in range(12))
    desired = full_chain(images)
    world = World()
    for image in images:
        world.put("dev", f"d/{image}", "20261127_01", desired.environments["d"].images[image][0].digest)
    planned: set[str] = set()
    for index in range(3):
        shard = Shard(index, 3)
        result = plan(desired, world.observe(desired), images=shard.owns)
        mine = {action.image for action in result}
        assert all(shard.owns(image) for image in mine)
        assert not mine & planned  # no overlap
        planned |= mine
    assert planned == set(images)  # no gap
