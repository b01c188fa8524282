"""``reconciler promote`` and ``diff`` with real Git: a work clone of a bare remote holding the example.

Every refusal asserts its message, exit code 3, and that nothing changed: no branch, no commit, the work
tree and HEAD as they were, the remote's refs as they were, the forge untouched.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from support.fakeforge import FakeForge
from typer.testing import CliRunner

from reconciler.cli import app
from reconciler.exitcodes import ExitCode
from reconciler.manifests import load_desired_state

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "manifests"
API = "payments/api"
runner = CliRunner()


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    """A work clone (identity configured, signing off) of a bare remote whose main holds the example."""
    seed = tmp_path / "seed"
    shutil.copytree(EXAMPLE, seed)
    git(seed, "init", "-q", "-b", "main")
    git(seed, "-c", "user.name=Seed", "-c", "user.email=seed@example.com", "add", ".")
    git(seed, "-c", "user.name=Seed", "-c", "user.email=seed@example.com", "commit", "-qm", "desired state")
    bare = tmp_path / "origin.git"
    git(tmp_path, "clone", "-q", "--bare", str(seed), str(bare))
    work = tmp_path / "work"
    git(tmp_path, "clone", "-q", str(bare), str(work))
    git(work, "config", "user.name", "Rita Release")
    git(work, "config", "user.email", "rita@example.com")
    git(work, "config", "commit.gpgsign", "false")
    return work


def snapshot(work: Path) -> tuple[str, str, str, str]:
    """Everything a refused promotion must leave as it was."""
    return (
        git(work, "rev-parse", "HEAD"),
        git(work, "for-each-ref", "--format=%(refname) %(objectname)"),
        git(work, "status", "--porcelain", "--untracked-files=all"),
        git(work, "ls-remote", "origin"),
    )


def promote(work: Path, *args: str) -> tuple[int, str]:
    """``reconciler promote`` with JSON output; the JSON document and stderr lines come back together."""
    if "--all-from" in args:
        command = [
            "promote",
            "--all-from",
            args[args.index("--all-from") + 1],
            *_without(args, "--all-from"),
            str(work),
        ]
    else:
        command = ["promote", args[0], str(work), *args[1:]]
    result = runner.invoke(app, [*command, "-o", "json"])
    return result.exit_code, result.output


def _without(args: tuple[str, ...], option: str) -> list[str]:
    index = args.index(option)
    return [*args[:index], *args[index + 2 :]]


def test_promote_commits_on_a_branch_without_touching_the_checkout(clone: Path) -> None:
    before = snapshot(clone)
    code, out = promote(clone, API, "--to", "s1", "--push")
    assert code == ExitCode.OK, out
    document = json.loads(out)
    branch = f"promote/s1/{API}/20261127_01"  # the newest version t holds and s1 lacks, by YYYYMMDD_NN
    assert document["branch"] == branch
    assert document["versions"] == [{"image": API, "tag": "20261127_01", "digest": document["versions"][0]["digest"]}]
    # HEAD, the index and the work tree are exactly as they were; the branch exists locally and remotely
    assert git(clone, "rev-parse", "HEAD") == before[0]
    assert git(clone, "status", "--porcelain", "--untracked-files=all") == ""
    assert branch in git(clone, "ls-remote", "origin")
    # the commit: committer from Git's configuration, a structured message, one file, only added lines
    assert git(clone, "log", "-1", "--format=%cn <%ce>", branch) == "Rita Release <rita@example.com>"
    message = git(clone, "log", "-1", "--format=%B", branch)
    assert message.splitlines()[0] == f"Promote {API} 20261127_01 to s1"
    assert f"Image: {API}\nFrom: t\nTo: s1\nTag: 20261127_01\nDigest: sha256:" in message
    assert git(clone, "diff", "--name-only", "HEAD", branch) == "environments/s1.yaml"
    patch = git(clone, "diff", "--unified=0", "HEAD", branch)
    changed = [line for line in patch.splitlines() if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    assert len(changed) == 1
    assert changed[0].startswith('+    - {tag: "20261127_01", digest: "sha256:')
    # the same promotion again replaces the branch's commit (what updates an open MR), no error
    code, out = promote(clone, API, "--to", "s1", "--push")
    assert code == ExitCode.OK, out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("no/such", "--to", "s1"), "t holds no version of 'no/such'"),
        ((API, "--to", "s1", "--tag", "20991231_01"), f"does not hold {API}:20991231_01"),
        ((API, "--to", "p", "--tag", "20261127_01"), f"does not hold {API}:20261127_01: promote it to s2 first"),
        ((API, "--to", "d"), "'d' is a source environment"),
        ((API, "--to", "x"), "unknown environment 'x'"),
        ((API, "--to", "s1", "--tag", "20261126_02"), f"{API}:20261126_02 is already in s1"),
        ((API, "--to", "s2", "--digest", "sha256:" + "0" * 64), "holds no version of payments/api with digest"),
    ],
)
def test_refusals_write_nothing(clone: Path, args: tuple[str, ...], message: str) -> None:
    before = snapshot(clone)
    code, out = promote(clone, *args, "--push")
    assert code == ExitCode.INVALID, out
    assert message in out
    assert "nothing was written" in out
    assert snapshot(clone) == before


@pytest.mark.parametrize("command", [["promote", API, "--to", "s1"], ["next-tag", API]])
def test_markdown_output_is_a_usage_error_not_text_in_disguise(clone: Path, command: list[str]) -> None:
    """Neither prints a report: ``-o markdown`` is refused before anything is read, not answered in text."""
    before = snapshot(clone)
    result = runner.invoke(app, [*command, str(clone), "-o", "markdown"])
    assert result.exit_code == ExitCode.USAGE, result.output
    said = " ".join(result.output.replace("│", " ").split())  # as a person reads the boxed error
    assert "'markdown' is not one of 'text', 'json'" in said, result.output
    assert snapshot(clone) == before


def test_a_dirty_work_tree_is_refused(clone: Path) -> None:
    (clone / "environments" / "t.yaml").write_text((clone / "environments" / "t.yaml").read_text() + "# edited\n")
    before = snapshot(clone)
    code, out = promote(clone, API, "--to", "s1")
    assert code == ExitCode.INVALID
    assert "changes not committed (environments/t.yaml)" in out
    assert snapshot(clone) == before


def test_keep_previous_unpins_older_versions_and_says_so(clone: Path) -> None:
    config = clone / "reconciler.yaml"
    config.write_text(config.read_text() + "\npromotion:\n  default: {keep_previous: 0}\n")
    git(clone, "commit", "-qam", "keep no previous version")
    code, out = promote(clone, API, "--to", "s1")
    assert code == ExitCode.OK, out
    assert json.loads(out)["unpinned"] == [{"image": API, "tag": "20261126_02"}]
    git(clone, "checkout", "-q", f"promote/s1/{API}/20261127_01")
    assert [p.tag for p in load_desired_state(clone).environments["s1"].images[API]] == ["20261127_01"]


def test_release_train_promotes_every_version_in_one_commit(clone: Path) -> None:
    code, out = promote(clone, "--all-from", "t")
    assert code == ExitCode.OK, out
    document = json.loads(out)
    assert document["environment"] == "s1"
    added = {(v["image"], v["tag"]) for v in document["versions"]}
    assert added == {(API, "20261127_01"), ("batch/settlement", "20261126_01")}
    branch = document["branch"]
    assert branch == "promote/s1/all-from-t"
    assert git(clone, "rev-list", "--count", f"HEAD..{branch}") == "1"
    git(clone, "checkout", "-q", branch)
    state = load_desired_state(clone)
    assert state.environments["s1"].find("batch/settlement", "20261126_01") is not None


def test_promotions_of_different_images_merge_without_conflict(clone: Path) -> None:
    assert promote(clone, API, "--to", "s2", "--tag", "20261126_02")[0] == ExitCode.INVALID  # already there
    assert promote(clone, "platform/gateway", "--to", "s2")[0] == ExitCode.OK
    assert promote(clone, "batch/settlement", "--to", "s1")[0] == ExitCode.OK
    git(clone, "merge", "-q", "--no-edit", "promote/s2/platform/gateway/20261121_01")
    git(clone, "merge", "-q", "--no-edit", "promote/s1/batch/settlement/20261126_01")
    state = load_desired_state(clone)
    assert state.environments["s2"].find("platform/gateway", "20261121_01") is not None
    assert state.environments["s1"].find("batch/settlement", "20261126_01") is not None


def test_diff_between_commits_lists_the_promotion(clone: Path) -> None:
    assert promote(clone, API, "--to", "s1")[0] == ExitCode.OK
    head = f"promote/s1/{API}/20261127_01"
    result = runner.invoke(app, ["diff", str(clone), "--base", "main", "--head", head, "-o", "json"])
    assert result.exit_code == ExitCode.CHANGES, result.output
    document = json.loads(result.output)
    assert document["status"] == "changes"
    [s1] = document["environments"]
    assert s1["environment"] == "s1"
    assert [(v["image"], v["tag"]) for v in s1["added"]] == [(API, "20261127_01")]
    same = runner.invoke(app, ["diff", str(clone), "--base", "main", "--head", "main"])
    assert same.exit_code == ExitCode.OK
    assert "No change to any environment." in same.output


@pytest.mark.parametrize("kind", ["gitlab", "github"])
def test_open_mr_opens_then_updates_one_merge_request(clone: Path, kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    project = "group/sub/project" if kind == "gitlab" else "owner/repo"
    branch = f"promote/s1/{API}/20261127_01"
    with FakeForge(kind) as forge:  # type: ignore[arg-type]
        forge.branches.add(branch)
        monkeypatch.setenv(f"RECONCILER_{kind.upper()}_TOKEN", forge.token)
        args = ("--open-mr", "--forge", kind, "--forge-url", forge.api_url, "--project", project)
        code, out = promote(clone, API, "--to", "s1", *args)
        assert code == ExitCode.OK, out
        first = json.loads(out)["merge_request"]
        assert first["created"] is True
        assert forge.token not in out
        code, out = promote(clone, API, "--to", "s1", *args)
        assert code == ExitCode.OK, out
        second = json.loads(out)["merge_request"]
        assert (second["created"], second["number"]) == (False, first["number"])
        assert len(forge.merge_requests) == 1
        description = forge.merge_requests[0].get("description") or forge.merge_requests[0].get("body")
        assert "| added | payments/api | `20261127_01` |" in str(description)
        assert branch in git(clone, "ls-remote", "origin")  # --open-mr pushes first
