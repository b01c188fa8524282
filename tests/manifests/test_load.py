"""Loading the desired state into typed values, and the YAML safety net under it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from reconciler.errors import DesiredStateError, SourceError
from reconciler.manifests import load_desired_state, validate_directory, yamltree
from reconciler.manifests.yamltree import MappingNode, ScalarNode, parse_yaml

from .helpers import EXAMPLE, copy_example, digest_of, write_env


def test_example_loads_into_typed_values() -> None:
    state = load_desired_state(EXAMPLE)
    config = state.config
    assert config.version == 1
    assert config.environment_names == ("d", "t", "s1", "s2", "p")
    d, t, s1, s2, p = config.environments
    assert (d.source, d.upstream) == (True, None)
    assert [env.upstream for env in (t, s1, s2, p)] == ["d", "t", "s1", "s2"]
    assert p.registries == ("prod-a", "prod-b")
    assert s1.registries == s2.registries == ("pre",)
    assert p.immutable_tags
    assert not p.allow_tag_moves
    assert t.allow_tag_moves
    assert p.repository("payments/api") == "p/payments/api"
    assert config.registries["prod-b"].host == "registry-prod-b.example.com"
    assert config.registries["pre"].max_concurrency == 8
    assert config.naming.forbidden_tags == ("latest", "stable")
    assert config.retention.for_environment("p").max_bytes == 500 * 1024**3
    assert config.retention.for_environment("d").max_age_days == 30
    assert config.retention.for_environment("t").keep == 5  # default
    assert config.archive is not None
    assert config.archive.destroy_after_days == 365
    assert config.gates["p"].base == "prod-osbase"
    assert config.gates["p"].max_bytes == 2 * 1024**3
    assert config.base_images["prod-osbase"].reference.startswith("dev/osbase/prod-osbase@sha256:")
    assert config.trust["p"].allowed_signers == "trust/p_allowed_signers"

    assert list(state.environments) == ["d", "t", "s1", "s2", "p"]
    pin = state.environments["p"].find("payments/api", "20261126_02")
    assert pin is not None
    assert pin.digest == digest_of("payments/api:20261126_02")
    assert pin.position is not None
    assert (pin.position.file, pin.position.line) == ("environments/p.yaml", 9)
    # Every stage holds something, and something stopped mid-way.
    for env in config.environment_names:
        assert state.environments[env].images
    assert "batch/settlement" in state.environments["t"].images
    assert "batch/settlement" not in state.environments["s1"].images


def test_example_pins_one_digest_per_tag_and_dated_tags() -> None:
    state = load_desired_state(EXAMPLE)
    seen: dict[tuple[str, str], str] = {}
    for env in state.environments.values():
        for pin in env.versions():
            assert seen.setdefault((pin.image, pin.tag), pin.digest) == pin.digest
            assert pin.digest == digest_of(f"{pin.image}:{pin.tag}")  # the demo maps these placeholders
    assert 4 <= len({image for image, _ in seen}) <= 6


def test_invalid_state_raises_with_every_problem(tmp_path: Path) -> None:
    root = copy_example(tmp_path / "state")
    write_env(root, "s1", {"payments/api": [("latest", digest_of("x")), ("20261301_01", "sha256:nothex")]})
    (root / "environments" / "p.yaml").unlink()
    with pytest.raises(DesiredStateError) as caught:
        load_desired_state(root)
    codes = [(p.file, p.code) for p in caught.value.problems]
    assert codes == [
        ("environments/p.yaml", "env-file-missing"),
        ("environments/s1.yaml", "tag-forbidden"),
        ("environments/s1.yaml", "tag-date"),
        ("environments/s1.yaml", "bad-digest"),
    ]
    assert "(and 3 more)" in str(caught.value)
    assert validate_directory(root) == list(caught.value.problems)


def test_not_a_directory_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="not a directory"):
        load_desired_state(tmp_path / "missing")


def test_unquoted_tags_are_read_as_written(tmp_path: Path) -> None:
    # YAML resolves 20261126_02 as a number; the tag is the text as written, never 2026112602.
    root = copy_example(tmp_path / "state")
    text = (root / "environments" / "s1.yaml").read_text()
    (root / "environments" / "s1.yaml").write_text(text.replace('"20261126_02"', "20261126_02"))
    pin = load_desired_state(root).environments["s1"].find("payments/api", "20261126_02")
    assert pin is not None


def test_block_style_bom_and_other_files(tmp_path: Path) -> None:
    root = copy_example(tmp_path / "state")
    digest = digest_of("payments/api:20261126_02")
    (root / "environments" / "s1.yaml").write_bytes(
        f"\ufeffenvironment: s1\nimages:\n  payments/api:\n  - tag: 20261126_02\n    digest: {digest}\n".encode()
    )
    (root / "environments" / "README.md").write_text("not an environment\n")
    (root / "environments" / ".gitkeep").write_text("")
    state = load_desired_state(root)
    assert state.environments["s1"].images["payments/api"][0].digest == digest


def test_unquoted_urls_in_flow_style_are_read(tmp_path: Path) -> None:
    # libyaml (YAML 1.1) refuses ':' inside a flow plain scalar; ruamel (YAML 1.2) reads it.
    root = copy_example(tmp_path / "state")
    config = root / "reconciler.yaml"
    config.write_text(
        config.read_text().replace(
            '{url: "https://registry-dev.example.com"}', "{url: https://registry-dev.example.com}"
        )
    )
    assert load_desired_state(root).config.registries["dev"].url == "https://registry-dev.example.com"


def test_billion_laughs_is_refused_without_expanding() -> None:
    levels = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    levels += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 30)]
    started = time.perf_counter()
    parsed = parse_yaml("reconciler.yaml", ("\n".join(levels) + "\n").encode())
    assert time.perf_counter() - started < 0.5
    assert parsed.root is None
    assert [(p.line, p.column, p.code) for p in parsed.problems] == [(1, 5, "yaml-alias")]


def test_deep_nesting_is_refused_not_crashing() -> None:
    # libyaml's own composer would overflow the C stack here and kill the process.
    parsed = parse_yaml("environments/t.yaml", b"images: " + b"[" * 200_000 + b"]" * 200_000)
    assert [p.code for p in parsed.problems] == ["yaml-too-deep"]


def test_positions_are_one_based() -> None:
    parsed = parse_yaml("f.yaml", b"a:\n  b: 'x'\n")
    assert isinstance(parsed.root, MappingNode)
    ((key, value),) = parsed.root.value
    assert (key.line, key.column) == (1, 1)
    assert isinstance(value, MappingNode)
    ((inner_key, inner_value),) = value.value
    assert (inner_key.line, inner_key.column) == (2, 3)
    assert isinstance(inner_value, ScalarNode)
    assert (inner_value.line, inner_value.column, inner_value.value) == (2, 6, "x")


def test_explicit_standard_tags_are_accepted() -> None:
    parsed = parse_yaml("f.yaml", b"environment: !!str t\nimages: !!map {}\n")
    assert parsed.problems == []
    assert isinstance(parsed.root, MappingNode)


def test_ten_thousand_pinned_versions_load_fast(tmp_path: Path) -> None:
    assert yamltree._CParser is not None, (
        "ruamel.yaml.clib is not installed: without libyaml, large desired states load ~10x slower "
        "(pip install ruamel.yaml.clib)"
    )
    root = copy_example(tmp_path / "state")
    for env in ("d", "t", "s1", "s2", "p"):
        pins = {
            f"team{i % 7}/service-{i}": [(f"202611{j + 1:02d}_{i % 90:02d}", digest_of(f"{i}/{j}")) for j in range(10)]
            for i in range(200)
        }
        write_env(root, env, pins)
    started = time.perf_counter()
    state = load_desired_state(root)
    elapsed = time.perf_counter() - started
    assert sum(1 for env in state.environments.values() for _ in env.versions()) == 10_000
    # About a second on one idle core; generous for a busy 2-core CI machine.
    assert elapsed < 5.0, f"loading 10,000 pinned versions took {elapsed:.2f}s"


def test_links_out_of_the_repository_are_not_followed(tmp_path: Path) -> None:
    secret = tmp_path / "outside.yaml"
    secret.write_text("environment: t\nimages: {}\n")
    root = copy_example(tmp_path / "state")
    (root / "environments" / "t.yaml").unlink()
    (root / "environments" / "t.yaml").symlink_to(secret)
    problems = validate_directory(root)
    assert [(p.file, p.code) for p in problems] == [("environments/t.yaml", "file-unreadable")]


def test_a_broken_source_environment_is_not_reported_as_no_source(tmp_path: Path) -> None:
    root = copy_example(tmp_path / "state")
    config = root / "reconciler.yaml"
    config.write_text(config.read_text().replace("    prefix: d\n", "    prefix: [d]\n"))
    assert [p.code for p in validate_directory(root)] == ["wrong-type"]


def test_integers_in_any_yaml_notation(tmp_path: Path) -> None:
    root = copy_example(tmp_path / "state")
    config = root / "reconciler.yaml"
    config.write_text(config.read_text().replace("default: {keep: 5}", "default: {keep: 0x0A, max_age_days: 1_000}"))
    rule = load_desired_state(root).config.retention.default
    assert (rule.keep, rule.max_age_days) == (10, 1000)
