"""The retention planner, pure: keep, max_age_days, max_bytes (shared layers counted once), per-image
overrides, archive or delete, and everything that may never retire."""

from __future__ import annotations

import dataclasses
from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.engine.retention import RepositoryContent, plan_retention
from reconciler.model.desired import DesiredState, Retention, RetentionRule

from .states import chain_config, digest_of, state

TODAY = date(2026, 12, 1)
API = "payments/api"


def _desired(retention: Retention, pins: dict[str, list[tuple[str, str, str]]] | None = None) -> DesiredState:
    config = dataclasses.replace(chain_config(), retention=retention)
    return state(config, pins or {})


def _content(env: str, registry: str, image: str, tags: list[str], prefix: str | None = None) -> RepositoryContent:
    repository = f"{prefix or env}/{image}"
    return RepositoryContent(env, registry, image, repository, {tag: digest_of(image + tag) for tag in tags})


TAGS = [f"202611{day:02d}_01" for day in range(1, 11)]  # ten versions, oldest first


def test_keep_retires_all_but_the_newest_by_version_not_by_position() -> None:
    desired = _desired(Retention(per_environment={"t": RetentionRule(keep=3)}))
    shuffled = [TAGS[i] for i in (4, 9, 0, 7, 2, 5, 1, 8, 3, 6)]  # listing order says nothing
    plan = plan_retention(desired, [_content("t", "test", API, shuffled)], today=TODAY, archive_store=True)
    assert sorted(r.tag for r in plan.retirements) == TAGS[:7]
    assert {r.rule for r in plan.retirements} == {"keep=3"}
    assert all(r.archive for r in plan.retirements)


def test_max_age_spares_the_newest_keep_and_archive_false_deletes() -> None:
    rule = RetentionRule(keep=2, max_age_days=25, archive=False)
    desired = _desired(Retention(per_environment={"t": rule}))
    old = ["20261001_01", "20261002_01", "20261003_01"]  # all older than 25 days
    plan = plan_retention(desired, [_content("t", "test", API, old)], today=TODAY, archive_store=True)
    assert [r.tag for r in plan.retirements] == ["20261001_01"]
    [retired] = plan.retirements
    assert (retired.rule, retired.archive) == ("max_age_days=25", False)


def test_with_an_age_rule_keep_is_a_floor_and_young_versions_beyond_it_stay() -> None:
    rule = RetentionRule(keep=1, max_age_days=25)
    desired = _desired(Retention(per_environment={"t": rule}))
    tags = ["20261001_01", "20261120_01", "20261125_01"]  # only the first is older than 25 days
    plan = plan_retention(desired, [_content("t", "test", API, tags)], today=TODAY, archive_store=True)
    assert [(r.tag, r.rule) for r in plan.retirements] == [("20261001_01", "max_age_days=25")]
    keep_only = _desired(Retention(per_environment={"t": RetentionRule(keep=1)}))
    plan = plan_retention(keep_only, [_content("t", "test", API, tags)], today=TODAY, archive_store=True)
    assert [(r.tag, r.rule) for r in plan.retirements] == [("20261001_01", "keep=1"), ("20261120_01", "keep=1")]


def test_nothing_that_is_declared_or_used_by_a_declared_tag_or_not_a_version_retires() -> None:
    declared = [(API, TAGS[0], digest_of(API + TAGS[0]))]
    reused = (API, TAGS[9], digest_of(API + TAGS[1]))  # s1 declares TAGS[9] with the digest of t's TAGS[1]
    desired = _desired(Retention(default=RetentionRule(keep=0)), {"t": declared, "s1": [reused]})
    content = _content("t", "test", API, [*TAGS[:3], "latest", "sha256-" + "a" * 64, "sha256-" + "b" * 64 + ".sig"])
    content = dataclasses.replace(content, tags={**content.tags, "latest": None})
    plan = plan_retention(desired, [content], today=TODAY, archive_store=False)
    # TAGS[0] declared in t; TAGS[1]'s digest is declared by s1 (another registry: protected all the same)
    assert [r.tag for r in plan.retirements] == [TAGS[2]]
    assert plan.not_versions == (("test", f"t/{API}", "latest"),)  # referrer tags are not even reported


def test_a_source_keeps_builds_newer_than_anything_promoted() -> None:
    promoted = (API, TAGS[5], digest_of(API + TAGS[5]))  # t runs the build d made as TAGS[5]
    desired = _desired(Retention(per_environment={"d": RetentionRule(keep=0)}), {"t": [promoted]})
    plan = plan_retention(desired, [_content("d", "dev", API, TAGS)], today=TODAY, archive_store=True)
    # older builds retire; TAGS[5] is what t runs (its digest is declared); newer ones were never promoted
    assert sorted(r.tag for r in plan.retirements) == TAGS[:5]


def test_per_image_overrides_and_default_inheritance() -> None:
    retention = Retention(
        default=RetentionRule(keep=5),
        per_environment={"t": RetentionRule(max_age_days=15, images={API: RetentionRule(keep=8)})},
    )
    desired = _desired(retention)
    contents = [_content("t", "test", API, TAGS), _content("t", "test", "payments/web", TAGS)]
    plan = plan_retention(desired, contents, today=TODAY, archive_store=True)
    retired = {(r.image, r.tag) for r in plan.retirements}
    assert {t for i, t in retired if i == API} == set(TAGS[:2])  # its own keep=8, then t's age rule
    assert {t for i, t in retired if i == "payments/web"} == set(TAGS[:5])  # t inherits keep=5 from default
    assert {r.rule for r in plan.retirements} == {"max_age_days=15"}  # all ten are older than 15 days


def test_max_bytes_retires_the_oldest_until_unique_bytes_fit_counting_shared_layers_once() -> None:
    desired = _desired(Retention(per_environment={"t": RetentionRule(max_bytes=3000)}))
    content = _content("t", "test", API, TAGS[:4])
    base = ("sha256:base", 1000)  # every version shares its base layer
    blobs = {digest: frozenset({base, (f"sha256:own{i}", 1000)}) for i, digest in enumerate(content.tags.values())}
    plan = plan_retention(
        desired, [content], today=TODAY, blobs={("t", "test"): blobs}, archive_store=True
    )  # 4 versions: base once + 4 own = 5000 bytes; fit 3000: retire the 2 oldest
    assert [r.tag for r in plan.retirements] == TAGS[:2]
    assert {r.rule for r in plan.retirements} == {"max_bytes=3000"}
    assert all(r.bytes_freed == 1000 for r in plan.retirements)  # the shared base is not freed
    assert plan.over_capacity == ()


def test_max_bytes_reports_when_declared_versions_alone_are_over() -> None:
    declared = [(API, tag, digest_of(API + tag)) for tag in TAGS[:2]]
    desired = _desired(Retention(per_environment={"t": RetentionRule(max_bytes=10)}), {"t": declared})
    content = _content("t", "test", API, TAGS[:2])
    blobs = {digest: frozenset({(digest, 100)}) for digest in content.tags.values()}
    plan = plan_retention(desired, [content], today=TODAY, blobs={("t", "test"): blobs}, archive_store=True)
    assert plan.retirements == ()
    assert plan.over_capacity == (("t", "test", 200, 10),)


tag_lists = st.lists(st.sampled_from([*TAGS, "20250101_01", "20261130_07", "nightly", "latest"]), unique=True)


@settings(max_examples=200, deadline=None)
@given(tag_lists, st.sets(st.sampled_from(TAGS)), st.integers(0, 5), st.one_of(st.none(), st.integers(1, 60)))
def test_properties(tags: list[str], declared_tags: set[str], keep: int, max_age: int | None) -> None:
    declared = [(API, tag, digest_of(API + tag)) for tag in sorted(declared_tags)]
    rule = RetentionRule(keep=keep, max_age_days=max_age)
    desired = _desired(Retention(per_environment={"t": rule}), {"t": declared})
    plan = plan_retention(desired, [_content("t", "test", API, tags)], today=TODAY, archive_store=True)
    retired = {r.tag for r in plan.retirements}
    assert not retired & declared_tags  # a declared version never retires
    assert all(tag[:8].isdigit() for tag in retired)  # only versions
    survivors = sorted((t for t in tags if t[:8].isdigit() and t not in declared_tags), reverse=True)[:keep]
    assert not retired & set(survivors)  # the newest `keep` undeclared versions survive
    if max_age is None:  # keep alone: everything beyond keep goes
        assert retired == {t for t in tags if t[:8].isdigit() and t not in declared_tags} - set(survivors)
