"""Comment-preserving edits of environment files: golden directories, the rules, and the ``promotion`` config.

Every directory under ``golden/`` holds ``case.json`` (the operation), ``original/environments/<env>.yaml``
and ``expected/environments/<env>.yaml``; the edit of the original must be the expected file BYTE FOR
BYTE, and the expected file must load with reconciler's own loader. ``RECONCILER_UPDATE_GOLDEN=1``
rewrites the expected files (review the diff before committing it).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from reconciler.manifests.config import validate_config
from reconciler.manifests.edit import EnvFileEdit, EnvFileEditError, Pin, add_version, read_pins, remove_versions
from reconciler.manifests.envfile import TagRule, validate_environment_file
from reconciler.manifests.yamltree import parse_yaml
from reconciler.model.desired import NamingRule, Promotion

from .helpers import EXAMPLE, digest_of

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(path.name for path in GOLDEN.iterdir() if (path / "case.json").is_file())


def loaded_pins(data: bytes, env: str) -> dict[str, list[tuple[str, str]]]:
    """What reconciler's loader reads from an environment file (which must be valid)."""
    state, problems = validate_environment_file(
        parse_yaml(f"environments/{env}.yaml", data), env, TagRule(NamingRule())
    )
    assert problems == [], problems
    assert state is not None
    return {image: [(pin.tag, pin.digest) for pin in pins] for image, pins in state.images.items()}


def run_case(spec: dict[str, Any], data: bytes) -> EnvFileEdit:
    if spec["operation"] == "add":
        return add_version(data, spec["image"], spec["tag"], spec["digest"], keep_previous=spec.get("keep_previous"))
    assert spec["operation"] == "remove"
    return remove_versions(data, spec["image"], spec["tags"])


def test_there_are_enough_golden_cases() -> None:
    assert len(CASES) >= 12


@pytest.mark.parametrize("case", CASES)
def test_golden(case: str) -> None:
    spec = json.loads((GOLDEN / case / "case.json").read_text(encoding="utf-8"))
    relative = Path("environments") / f"{spec['environment']}.yaml"
    original = (GOLDEN / case / "original" / relative).read_bytes()
    edit = run_case(spec, original)
    expected_path = GOLDEN / case / "expected" / relative
    if os.environ.get("RECONCILER_UPDATE_GOLDEN") == "1":
        expected_path.parent.mkdir(parents=True, exist_ok=True)
        expected_path.write_bytes(edit.data)
    assert edit.data == expected_path.read_bytes(), f"{case}: {spec['description']}"
    before, after = loaded_pins(original, spec["environment"]), loaded_pins(edit.data, spec["environment"])
    image = spec["image"]
    if spec["operation"] == "add":
        assert after[image][-1] == (spec["tag"], spec["digest"])
    others = {name: pins for name, pins in before.items() if name != image}
    assert {name: pins for name, pins in after.items() if name != image} == others
    assert edit.changed == (edit.data != original)


def test_example_promotion_keeps_everything_else(tmp_path: Path) -> None:
    data = (EXAMPLE / "environments" / "p.yaml").read_bytes()
    edit = add_version(data, "platform/gateway", "20261121_01", digest_of("platform/gateway:20261121_01"))
    assert edit.added == Pin("20261121_01", digest_of("platform/gateway:20261121_01"))
    old_lines, new_lines = data.decode().splitlines(keepends=True), edit.data.decode().splitlines(keepends=True)
    assert new_lines[: len(old_lines)] == old_lines  # platform/gateway is last: a pure append
    assert new_lines[len(old_lines) :] == [
        f'    - {{tag: "20261121_01", digest: "{digest_of("platform/gateway:20261121_01")}"}}\n'
    ]


def test_already_pinned_with_another_digest_is_refused() -> None:
    data = (EXAMPLE / "environments" / "t.yaml").read_bytes()
    with pytest.raises(EnvFileEditError, match=r"t\.yaml:7:7: payments/api:20261126_02 is already pinned"):
        add_version(data, "payments/api", "20261126_02", "sha256:" + "f" * 64, file="environments/t.yaml")


def test_keep_previous_counts_from_the_end_of_the_list() -> None:
    data = (EXAMPLE / "environments" / "d.yaml").read_bytes()
    digest = "sha256:" + "1" * 64
    edit = add_version(data, "payments/api", "20261128_01", digest, keep_previous=2)
    assert [pin.tag for pin in edit.removed] == ["20261124_01"]
    assert [pin.tag for pin in read_pins(edit.data)["payments/api"]] == ["20261126_02", "20261127_01", "20261128_01"]
    none_kept = add_version(data, "payments/api", "20261128_01", digest, keep_previous=0)
    assert [pin.tag for pin in read_pins(none_kept.data)["payments/api"]] == ["20261128_01"]
    everything = add_version(data, "payments/api", "20261128_01", digest)
    assert len(read_pins(everything.data)["payments/api"]) == 4
    assert everything.removed == ()
    with pytest.raises(ValueError, match="keep_previous"):
        add_version(data, "payments/api", "20261128_01", digest, keep_previous=-1)


@pytest.mark.parametrize(
    ("image", "tag", "digest", "message"),
    [
        ("Payments/API", "20261128_01", "sha256:" + "1" * 64, "lowercase OCI path"),
        ("a: b", "20261128_01", "sha256:" + "1" * 64, "lowercase OCI path"),
        ("payments/api", "2026 1128", "sha256:" + "1" * 64, "non-empty word"),
        ("payments/api", "", "sha256:" + "1" * 64, "non-empty word"),
        ("payments/api", "20261128_01", "sha256:ABC", "must be sha256"),
    ],
)
def test_what_is_pinned_is_checked_first(image: str, tag: str, digest: str, message: str) -> None:
    data = (EXAMPLE / "environments" / "d.yaml").read_bytes()
    with pytest.raises(EnvFileEditError, match=message):
        add_version(data, image, tag, digest)


def test_remove_versions_errors() -> None:
    data = (EXAMPLE / "environments" / "t.yaml").read_bytes()
    with pytest.raises(EnvFileEditError, match="not pinned"):
        remove_versions(data, "nope/nope", ["20261126_02"])
    with pytest.raises(EnvFileEditError, match="no version tagged 20990101_01"):
        remove_versions(data, "payments/api", ["20990101_01"])
    assert not remove_versions(data, "payments/api", []).changed


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"environment: t\nimages: {a: [{tag: x, digest: y}]}\n", "flow style"),
        (b"environment: t\nimages:\n  a: &x [{tag: x, digest: y}]\n  b: *x\n", "anchors and aliases"),
        (b"environment: t\nimages:\n  a:\n    - {tag: x}\n", "exactly {tag, digest}"),
        (b"environment: t\nimages:\n  a: []\n", "non-empty list"),
        (b"environment: t\n", "exactly one 'images'"),
        (b"- a\n", "block mapping"),
        (b"environment: t\nimages: [\n", "not valid YAML"),
        (b"\xff\xfe", "not UTF-8"),
        (b"   \n", "empty"),
        (b"environment: t\nimages:\n  a:\n    - [tag, x]\n", "exactly {tag, digest}"),
        (b"environment: t\nimages:\n  a: [{tag: x, digest: y}, # c\n  ]\n", "holds comments"),
    ],
)
def test_files_that_cannot_be_edited_safely_are_refused(text: bytes, message: str) -> None:
    with pytest.raises(EnvFileEditError, match=message):
        add_version(text, "a", "20261127_01", "sha256:" + "a" * 64)


# -- the `promotion` section of reconciler.yaml ------------------------------------------------------

_CONFIG = """\
version: 1
registries:
  dev: {url: "https://registry-dev.example.com"}
environments:
  d: {registry: dev, prefix: d, source: true}
  t: {registry: dev, prefix: t, from: d}
  p: {registry: dev, prefix: p, from: t}
"""


def _check(promotion: str) -> tuple[Promotion | None, list[tuple[int, int, str, str]]]:
    checked = validate_config(parse_yaml("reconciler.yaml", (_CONFIG + promotion).encode()), lambda _path: True)
    problems = [(p.line, p.column, p.code, p.message) for p in checked.problems]
    return (checked.config.promotion if checked.config is not None else None), problems


def test_promotion_section_is_read_with_default_and_overrides() -> None:
    promotion, problems = _check("promotion:\n  default: {keep_previous: 1}\n  p: {keep_previous: 2}\n")
    assert problems == []
    assert promotion is not None
    assert (promotion.keep_previous_for("p"), promotion.keep_previous_for("t")) == (2, 1)
    without, _ = _check("")
    assert without == Promotion()
    assert without.keep_previous_for("p") is None  # no section: nothing is ever removed


def test_promotion_section_problems_have_positions() -> None:
    _promotion, problems = _check(
        "promotion:\n"
        "  default: {keep_previous: -1}\n"
        "  q: {keep_previous: 1}\n"
        "  p: {keep: 2}\n"
        "  t: {keep_previous: two}\n"
    )
    codes = [(line, column, code) for line, column, code, _message in problems]
    assert codes == [
        (9, 28, "bad-value"),
        (10, 3, "unknown-environment"),
        (11, 7, "unknown-field"),
        (11, 6, "missing-field"),
        (12, 22, "wrong-type"),
    ]
    messages = " | ".join(message for *_rest, message in problems)
    assert "promotion 'default' keep_previous must be at least 0, not -1" in messages
    assert "promotion for environment 'q' is not defined" in messages
    assert "unknown field 'keep' in promotion 'p' (known fields: keep_previous)" in messages
