"""The --base rule on real Git history: a version added to an environment must come from its upstream."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from reconciler.cli import app
from reconciler.errors import DesiredStateError, SourceError
from reconciler.manifests import check_promotions, load_desired_state, load_desired_state_at

from .helpers import GitRepo, copy_example, digest_of, read_pins, write_env

API_NEW = ("20261127_01", digest_of("payments/api:20261127_01"))  # in d and t only


@pytest.fixture
def history(tmp_path: Path) -> tuple[GitRepo, Path, str]:
    """The example desired state in ``deploy/`` of a fresh repository, committed as the base."""
    repo = GitRepo(tmp_path / "repo")
    (repo.path / "README.md").write_text("a repository whose desired state lives in deploy/\n")
    root = copy_example(repo.path / "deploy")
    base = repo.commit("example desired state")
    return repo, root, base


def _promote(root: Path, env: str, image: str, version: tuple[str, str]) -> None:
    pins = read_pins(root, env)
    pins.setdefault(image, []).append(version)
    write_env(root, env, pins)


def test_example_is_consistent_with_itself(history: tuple[GitRepo, Path, str]) -> None:
    _repo, root, base = history
    assert check_promotions(load_desired_state_at(root, base), load_desired_state(root)) == []


def test_environment_may_keep_what_upstream_dropped(history: tuple[GitRepo, Path, str]) -> None:
    repo, root, base = history
    # s1 and s2 move on to 20261127_01; p keeps the 20261126_02 that s2 no longer declares.
    _promote(root, "s1", "payments/api", API_NEW)
    s2 = read_pins(root, "s2")
    s2["payments/api"] = [API_NEW]
    write_env(root, "s2", s2)
    repo.commit("s1, s2: payments/api 20261127_01")
    head = load_desired_state(root)
    assert "20261126_02" in {pin.tag for pin in head.environments["p"].images["payments/api"]}
    assert check_promotions(load_desired_state_at(root, base), head) == []


def test_adding_a_version_upstream_lacks_is_a_skipped_stage(history: tuple[GitRepo, Path, str]) -> None:
    repo, root, base = history
    _promote(root, "p", "payments/api", API_NEW)  # straight from t to p: s1 and s2 never had it
    repo.commit("p: payments/api 20261127_01 (skipping s1 and s2)")
    problems = check_promotions(load_desired_state_at(root, base), load_desired_state(root))
    assert [(p.file, p.code) for p in problems] == [("environments/p.yaml", "promotion-skip")]
    problem = problems[0]
    assert problem.line == 6  # the added entry: after environment, images, the image key and two pins
    assert "payments/api:20261127_01" in problem.message
    assert "'s2' does not declare it" in problem.message


def test_old_versions_are_not_rechecked(history: tuple[GitRepo, Path, str]) -> None:
    # p already holds 20261120_01 that s2 no longer declares: unchanged since base, so no problem,
    # but with no base at all every version counts as added and that one is reported.
    _repo, root, base = history
    head = load_desired_state(root)
    assert check_promotions(load_desired_state_at(root, base), head) == []
    without_base = check_promotions(None, head)
    skipped = {(p.file, p.message.split(" ")[0]) for p in without_base}
    assert ("environments/p.yaml", "payments/api:20261120_01") in skipped
    assert ("environments/p.yaml", "payments/web:20261118_01") in skipped
    assert all(p.code == "promotion-skip" for p in without_base)


def test_versions_from_a_source_environment_need_no_pin_there(history: tuple[GitRepo, Path, str]) -> None:
    repo, root, base = history
    # A tester promotes a build CI pushed to the dev registry but nobody pinned in d.yaml.
    _promote(root, "t", "payments/api", ("20261127_02", digest_of("payments/api:20261127_02")))
    repo.commit("t: payments/api 20261127_02")
    assert check_promotions(load_desired_state_at(root, base), load_desired_state(root)) == []


def test_a_new_environment_version_counts_as_added_when_base_had_no_desired_state(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "repo")
    (repo.path / "README.md").write_text("empty at first\n")
    first = repo.commit("nothing yet")
    root = copy_example(repo.path / "deploy")
    repo.commit("add desired state")
    result = CliRunner().invoke(app, ["validate", str(root), "--base", first, "--output", "json"])
    assert result.exit_code == 3, result.output
    assert '"promotion-skip"' in result.output


def test_validate_base_through_the_cli(history: tuple[GitRepo, Path, str]) -> None:
    repo, root, base = history
    runner = CliRunner()
    clean = runner.invoke(app, ["validate", str(root), "--base", base])
    assert clean.exit_code == 0, clean.output

    _promote(root, "s2", "platform/gateway", ("20261121_01", digest_of("platform/gateway:20261121_01")))  # ok
    _promote(root, "p", "batch/settlement", ("20261126_01", digest_of("batch/settlement:20261126_01")))  # skip
    repo.commit("promotions")
    result = runner.invoke(app, ["validate", str(root), "--base", base])
    assert result.exit_code == 3, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith(f"{root.as_posix()}/environments/p.yaml:")
    assert "batch/settlement:20261126_01" in lines[0]
    assert lines[0].endswith("[promotion-skip]")
    assert "1 problem" in lines[1]

    # Without --base the same state is valid: the rule needs history.
    assert runner.invoke(app, ["validate", str(root)]).exit_code == 0


def test_load_at_reads_the_commit_not_the_work_tree(history: tuple[GitRepo, Path, str]) -> None:
    repo, root, base = history
    (root / "environments" / "p.yaml").write_text("broken: [\n")  # uncommitted
    state = load_desired_state_at(root, "HEAD")
    assert state.commit == base
    assert state.commit_author == "Test Author <author@example.com>"
    assert state.environments["p"].find("payments/api", "20261126_02") is not None
    assert state.config.environment_names == ("d", "t", "s1", "s2", "p")
    repo.commit("break p")
    with pytest.raises(DesiredStateError) as caught:
        load_desired_state_at(root, "HEAD")
    assert [p.code for p in caught.value.problems] == ["yaml-syntax"]
    assert caught.value.problems[0].file == "environments/p.yaml"


def test_load_at_repository_root(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "repo")
    for item in copy_example(tmp_path / "example").iterdir():
        item.rename(repo.path / item.name)
    sha = repo.commit("desired state at the root")
    assert load_desired_state_at(repo.path, sha).commit == sha


def test_bad_refs_and_non_repositories_are_source_errors(history: tuple[GitRepo, Path, str], tmp_path: Path) -> None:
    _repo, root, _base = history
    with pytest.raises(SourceError, match="does not name a commit"):
        load_desired_state_at(root, "no-such-branch")
    outside = copy_example(tmp_path / "plain")
    with pytest.raises(SourceError, match="not inside a Git repository"):
        load_desired_state_at(outside, "HEAD")
    result = CliRunner().invoke(app, ["validate", str(root), "--base", "no-such-branch"])
    assert result.exit_code == 1
    assert "does not name a commit" in result.output


def test_a_broken_base_is_used_for_what_is_valid(history: tuple[GitRepo, Path, str]) -> None:
    repo, root, _base = history
    good_d = (root / "environments" / "d.yaml").read_text()
    (root / "environments" / "d.yaml").write_text("environment: d\nimages: [\n")
    broken = repo.commit("break d")
    # The fix restores d and, in the same merge request, sneaks a version into p that s2 lacks:
    # the rest of the base is valid, so only that addition is reported.
    (root / "environments" / "d.yaml").write_text(good_d)
    _promote(root, "p", "payments/api", API_NEW)
    repo.commit("repair d, and skip a stage in p")
    result = CliRunner().invoke(app, ["validate", str(root), "--base", broken])
    assert result.exit_code == 3
    assert "has 1 problem(s)" in result.stderr
    problems = [line for line in result.stdout.splitlines() if line.endswith("]")]
    assert len(problems) == 1
    assert "payments/api:20261127_01" in problems[0]
    assert problems[0].endswith("[promotion-skip]")
