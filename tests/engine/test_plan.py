"""The planner as a pure function: table tests on the five-environment chain, and properties."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.engine.plan import manifest_lookups, plan, simulate, tag_lookups
from reconciler.model.observed import ManifestKey, ObservedState, TagKey
from reconciler.model.plan import ActionKind, ConflictResolution, Location

from .states import chain_config, digest_of, full_chain, state
from .world import World

TAG = "20261127_01"
API = "payments/api"


def seeded_dev(desired_images: tuple[str, ...] = (API,), tag: str = TAG) -> World:
    world = World()
    for image in desired_images:
        world.put("dev", f"d/{image}", tag, digest_of(image + tag))
    return world


def kinds(p: object) -> list[tuple[str, str, str]]:
    return [(a.kind.value, a.environment, a.registry) for a in p]  # type: ignore[attr-defined]


def test_fresh_chain_converges_in_one_apply_with_dependencies_in_promotion_order() -> None:
    desired = full_chain((API,))
    world = seeded_dev()
    result = plan(desired, world.observe(desired))
    assert kinds(result) == [
        ("copy", "t", "test"),
        ("copy", "s1", "pre"),
        ("copy", "s2", "pre"),
        ("copy", "p", "prod-a"),
        ("copy", "p", "prod-b"),
    ]
    t, s1, s2, pa, pb = result.actions
    assert t.source == Location("dev", "d/payments/api")
    assert t.depends_on == ()
    assert s1.source == Location("test", "t/payments/api")
    assert s1.depends_on == (t.id,)
    assert s2.source == Location("pre", "s1/payments/api")
    assert s2.depends_on == (s1.id,)
    # both production sites copy from s2 (the from environment), not from each other
    assert pa.source == pb.source == Location("pre", "s2/payments/api")
    assert pa.depends_on == pb.depends_on == (s2.id,)
    world.execute(result)
    again = plan(desired, world.observe(desired))
    assert again.is_empty
    assert again.in_sync == 5


def test_in_sync_costs_one_lookup_per_tag_and_plans_nothing() -> None:
    desired = full_chain((API, "payments/web"))
    world = seeded_dev((API, "payments/web"))
    world.execute(plan(desired, world.observe(desired)))
    lookups = tag_lookups(desired)
    assert len(lookups) == 2 * 5
    observed = world.observe(desired)
    assert observed.manifests == {}
    assert observed.request_count == 10
    assert plan(desired, observed).is_empty


def test_retag_when_manifest_already_in_target_repository() -> None:
    desired = full_chain((API,))
    world = seeded_dev()
    world.execute(plan(desired, world.observe(desired)))
    digest = digest_of(API + TAG)
    del world.tags[TagKey("test", "t/payments/api", TAG)]
    result = plan(desired, world.observe(desired))
    assert kinds(result) == [("retag", "t", "test")]
    assert result.actions[0].source is None
    assert result.actions[0].digest == digest


def test_second_tag_for_same_digest_retags_after_the_copy() -> None:
    digest = digest_of("x")
    desired = state(
        chain_config(), {"d": [(API, TAG, digest)], "t": [(API, TAG, digest), (API, "20261127_02", digest)]}
    )
    world = World()
    world.put("dev", "d/payments/api", TAG, digest)
    result = plan(desired, world.observe(desired))
    assert kinds(result) == [("copy", "t", "test"), ("retag", "t", "test")]
    assert result.actions[1].depends_on == (0,)
    world.execute(result)
    assert plan(desired, world.observe(desired)).is_empty


def test_immutable_conflict_is_refused_and_writes_nothing() -> None:
    desired = full_chain((API,))
    world = seeded_dev()
    world.execute(plan(desired, world.observe(desired)))
    other = digest_of("someone pushed by hand")
    world.put("prod-b", "p/payments/api", TAG, other)
    result = plan(desired, world.observe(desired))
    assert len(result) == 1
    action = result.actions[0]
    assert action.kind is ActionKind.CONFLICT
    assert action.resolution is ConflictResolution.REFUSED
    assert action.current_digest == other
    assert not action.writes
    assert action.fails
    assert "immutable" in action.reason


def test_mutable_conflict_refused_unless_moves_allowed() -> None:
    digest, other = digest_of("want"), digest_of("have")
    pins = {"d": [(API, TAG, digest)], "t": [(API, TAG, digest)]}
    for moves, expected in ((False, ConflictResolution.REFUSED), (True, ConflictResolution.MOVED)):
        desired = state(chain_config(moves=moves), pins)
        world = World()
        world.put("dev", "d/payments/api", TAG, digest)
        world.put("test", "t/payments/api", TAG, other)
        result = plan(desired, world.observe(desired))
        assert [a.resolution for a in result] == [expected]
        if moves:
            assert result.actions[0].source == Location("dev", "d/payments/api")
            world.execute(result)
            assert plan(desired, world.observe(desired)).is_empty
            assert world.tags[TagKey("test", "t/payments/api", TAG)] == digest


def test_missing_upstream_fails_that_image_and_its_downstream_only() -> None:
    desired = full_chain((API, "payments/web"))
    world = seeded_dev(("payments/web",))  # api was never pushed to dev
    result = plan(desired, world.observe(desired))
    api = [a for a in result if a.image == API]
    web = [a for a in result if a.image == "payments/web"]
    assert {a.kind for a in api} == {ActionKind.MISSING}
    assert len(api) == 5
    assert "dev/d/payments/api" in api[0].reason
    assert api[1].environment == "s1"
    assert "t (test) is missing it too" in api[1].reason
    assert "#" not in api[1].reason  # no internal action numbers in what a person reads
    assert {a.kind for a in web} == {ActionKind.COPY}


def test_unreadable_target_registry_is_unreachable_not_absent() -> None:
    desired = full_chain((API,))
    world = seeded_dev()
    world.down.add("prod-b")
    result = plan(desired, world.observe(desired))
    by_registry = {a.registry: a for a in result}
    assert by_registry["prod-b"].kind is ActionKind.UNREACHABLE
    assert "prod-b/p/payments/api" in by_registry["prod-b"].reason
    assert by_registry["prod-a"].kind is ActionKind.COPY


def test_unreadable_source_registry_is_unreachable_naming_the_source() -> None:
    desired = full_chain((API,))
    world = seeded_dev()
    world.down.add("dev")
    result = plan(desired, world.observe(desired))
    assert result.actions[0].kind is ActionKind.UNREACHABLE
    assert "dev/d/payments/api" in result.actions[0].reason
    # downstream environments cannot get it either, and say so: unreachable because of dev, not "missing"
    assert {a.kind for a in result} == {ActionKind.UNREACHABLE}
    s1 = next(a for a in result if a.environment == "s1")
    assert "t (test) cannot receive it first: " in s1.reason
    assert "dev/d/payments/api" in s1.reason


def test_production_site_healed_from_the_other_site_when_upstream_dropped_the_version() -> None:
    digest = digest_of("old release")
    desired = state(chain_config(), {"p": [(API, TAG, digest)]})
    world = World()
    world.put("prod-a", "p/payments/api", TAG, digest)
    result = plan(desired, world.observe(desired))
    assert kinds(result) == [("copy", "p", "prod-b")]
    assert result.actions[0].source == Location("prod-a", "p/payments/api")
    assert result.actions[0].source_environment == "p"


def test_only_selected_environment_is_planned_and_hint_names_the_upstream() -> None:
    desired = full_chain((API,))
    world = seeded_dev()
    result = plan(desired, world.observe(desired, ["s1"]), ["s1"])
    assert kinds(result) == [("missing", "s1", "pre")]
    assert "t is not among the selected" in result.actions[0].reason
    assert result.environments == ("s1",)
    with pytest.raises(KeyError):
        plan(desired, ObservedState(), ["nope"])


def test_manifest_lookups_skip_sources_known_from_tags() -> None:
    desired = full_chain((API,))
    world = seeded_dev()
    world.execute(plan(desired, world.observe(desired)))
    del world.tags[TagKey("pre", "s2/payments/api", TAG)]
    world.manifests.clear()
    observed_tags = {k: world.tags.get(k) for k in tag_lookups(desired)}
    lookups = manifest_lookups(desired, observed_tags)
    # the s2 target itself; s1 (its source) is known to hold the digest from its own tag
    assert [(k.registry, k.repository) for k in lookups] == [("pre", "s2/payments/api")]


def test_simulate_marks_writes_only() -> None:
    desired = full_chain((API,))
    world = seeded_dev()
    observed = world.observe(desired)
    result = plan(desired, observed)
    after = simulate(observed, result)
    assert plan(desired, after).is_empty


# ---------------------------------------------------------------- properties

IMAGES = ("a", "b/c")
TAGS = ("20261127_01", "20261127_02")
ENVS = ("d", "t", "s1", "s2", "p")
REGISTRY_OF = {"d": ("dev",), "t": ("test",), "s1": ("pre",), "s2": ("pre",), "p": ("prod-a", "prod-b")}
DIGESTS = tuple(digest_of(str(i)) for i in range(3))


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[object, World, bool]:
    moves = draw(st.booleans())
    immutable = draw(st.booleans())
    config = chain_config(p_immutable=immutable, moves=moves)
    # one digest per (image, tag): validation guarantees a tag never names two digests
    truth = {(image, tag): draw(st.sampled_from(DIGESTS)) for image in IMAGES for tag in TAGS}
    pins: dict[str, list[tuple[str, str, str]]] = {}
    for env in ENVS:
        chosen = draw(st.sets(st.sampled_from([(i, t) for i in IMAGES for t in TAGS])))
        pins[env] = [(i, t, truth[(i, t)]) for (i, t) in sorted(chosen)]
    desired = state(config, pins)
    world = World()
    for env in ENVS:
        for registry in REGISTRY_OF[env]:
            for image in IMAGES:
                for tag in TAGS:
                    what = draw(st.sampled_from(("absent", "right", "wrong", "untagged")))
                    repo = f"{env}/{image}"
                    if what == "right":
                        world.put(registry, repo, tag, truth[(image, tag)])
                    elif what == "wrong":
                        world.put(registry, repo, tag, draw(st.sampled_from(DIGESTS)))
                    elif what == "untagged":
                        world.manifests.add(ManifestKey(registry, repo, truth[(image, tag)]))
    return desired, world, immutable


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_property_apply_then_replan_leaves_only_unfixable_actions(scenario: tuple[object, World, bool]) -> None:
    desired, world, _immutable = scenario
    first = plan(desired, world.observe(desired))  # type: ignore[arg-type]
    world.execute(first)  # asserts every source is in place when its action runs
    second = plan(desired, world.observe(desired))  # type: ignore[arg-type]
    assert second.writes == ()
    # what is left can never be fixed by another run: refusals and digests found nowhere
    assert {a.kind for a in second} <= {ActionKind.CONFLICT, ActionKind.MISSING}
    assert {(a.environment, a.registry, a.image, a.tag) for a in second} == {
        (a.environment, a.registry, a.image, a.tag) for a in first if a.fails
    }


@settings(max_examples=200, deadline=None)
@given(scenarios())
def test_property_no_action_for_in_sync_tags_and_no_write_over_immutable_tags(
    scenario: tuple[object, World, bool],
) -> None:
    desired, world, _immutable = scenario
    observed = world.observe(desired)  # type: ignore[arg-type]
    result = plan(desired, observed)  # type: ignore[arg-type]
    assert result == plan(desired, observed)  # type: ignore[arg-type]  # deterministic
    for action in result:
        current = observed.tags.get(TagKey(action.registry, action.repository, action.tag))
        assert current != action.digest, f"action for an in-sync tag: {action}"
        if action.environment == "p" and _immutable and current is not None:
            assert not action.writes
        if action.kind is ActionKind.COPY:
            assert current is None
        for dep in action.depends_on:
            assert dep < action.id


def test_a_skipped_stage_is_named_with_the_fix() -> None:
    """p pins a version s2 never declared: the planner says which stage was skipped and what to do, as
    ``validate --base`` does, instead of "sha256:... is not in pre/s2/..." and an action number."""
    digest = digest_of(API + TAG)
    triple = (API, TAG, digest)
    desired = state(chain_config(), {"d": [triple], "t": [triple], "s1": [triple], "p": [triple]})
    world = seeded_dev((API,))
    result = plan(desired, world.observe(desired), only=["p"])
    [prod_a, _prod_b] = [a for a in result if a.environment == "p"]
    assert prod_a.kind is ActionKind.MISSING
    assert f"{API}:{TAG} skips stage 's2'" in prod_a.reason
    assert "promote it to s2 first (environments/s2.yaml)" in prod_a.reason
    assert "#" not in prod_a.reason


def test_a_damaged_in_sync_image_fails_with_what_is_broken_and_downstream_does_not_copy_from_it() -> None:
    desired = full_chain((API,))
    world = seeded_dev()
    world.execute(plan(desired, world.observe(desired)))
    observed = world.observe(desired)
    broken = TagKey("test", "t/payments/api", TAG)
    damaged = ObservedState(
        tags=observed.tags,
        manifests=observed.manifests,
        damaged={broken: ("t/payments/api@sha256:abc: child manifest cannot be read back (500)",)},
    )
    result = plan(desired, damaged)
    [action] = result.actions
    assert (action.kind, action.environment) == (ActionKind.DAMAGED, "t")
    assert action.fails
    assert not action.writes
    assert "child manifest cannot be read back" in action.reason
    assert "repair its storage" in action.reason
    assert result.in_sync == 4
