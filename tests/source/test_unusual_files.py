"""Environment files that are not regular files, and desired state read from a Git URL by ``validate``.

A directory or a FIFO named ``environments/p.yaml`` once passed validate with p silently empty (and
retention would delete on that basis), a symlink loop gave a RuntimeError traceback, and a commit whose
environment file is an absolute symlink made ``plan --repo`` die in tarfile. Each is exit 3
``file-unreadable`` naming the path now, from a directory and from a commit alike.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from manifests.helpers import GitRepo, copy_example
from typer.testing import CliRunner

from reconciler.cli import app
from reconciler.exitcodes import ExitCode

runner = CliRunner()


def _prepare(root: Path, kind: str) -> None:
    target = root / "environments" / "p.yaml"
    target.unlink()
    if kind == "directory":
        target.mkdir()
    elif kind == "fifo":
        os.mkfifo(target)
    elif kind == "loop":
        target.symlink_to("p.yaml")
    elif kind == "outside":
        target.symlink_to("/etc/hostname")


@pytest.mark.parametrize("kind", ["directory", "fifo", "loop", "outside"])
def test_environment_file_that_is_not_a_regular_file_is_refused(tmp_path: Path, kind: str) -> None:
    root = copy_example(tmp_path / "state")
    _prepare(root, kind)
    for command in (["validate", str(root)], ["plan", str(root)]):
        result = runner.invoke(app, command)
        assert result.exit_code == ExitCode.INVALID, (command, result.output)
        assert "environments/p.yaml" in result.output
        assert "[file-unreadable]" in result.output
        assert "Traceback" not in result.output


def _bare_with(tmp_path: Path, kind: str) -> tuple[Path, str, str]:
    """A bare remote whose main branch has the example with p.yaml replaced per ``kind``; returns
    (bare path, the base commit with a good p.yaml, the head commit)."""
    repo = GitRepo(tmp_path / "work")
    for item in copy_example(tmp_path / "example").iterdir():
        item.rename(repo.path / item.name)
    base = repo.commit("example")
    if kind != "none":
        target = repo.path / "environments" / "p.yaml"
        target.unlink()
        target.symlink_to("/etc/hostname" if kind == "absolute-symlink" else "../reconciler.yaml")
    head = repo.commit(f"p.yaml is now a {kind}")
    bare = tmp_path / "origin.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(repo.path), str(bare)], check=True)
    return bare, base, head


@pytest.mark.parametrize("kind", ["absolute-symlink", "relative-symlink"])
def test_symlinked_environment_file_in_a_commit_is_refused(tmp_path: Path, kind: str) -> None:
    bare, _base, _head = _bare_with(tmp_path, kind)
    args = ["--repo", f"file://{bare}", "--ref", "main", "--cache-dir", str(tmp_path / "cache")]
    for command in (["validate", *args], ["plan", *args]):
        result = runner.invoke(app, command)
        assert result.exit_code == ExitCode.INVALID, (command, result.output)
        assert "environments/p.yaml" in result.output
        assert "[file-unreadable]" in result.output
        assert "Traceback" not in result.output


def test_validate_reads_a_git_url_and_a_base_from_the_same_clone(tmp_path: Path) -> None:
    """CI should not need a checkout: validate takes --repo/--ref like plan and apply, with --base."""
    bare, base, head = _bare_with(tmp_path, "none")
    args = ["--repo", f"file://{bare}", "--ref", head, "--base", base, "--cache-dir", str(tmp_path / "cache")]
    result = runner.invoke(app, ["validate", *args, "-o", "json"])
    assert result.exit_code == ExitCode.OK, result.output
    assert '"status": "valid"' in result.output
    result = runner.invoke(app, ["validate", "--repo", f"file://{bare}", "--ref", "no-such-branch",
                                 "--cache-dir", str(tmp_path / "cache")])  # fmt: skip
    assert result.exit_code == ExitCode.FAILURE
    assert "no branch, tag or commit named 'no-such-branch'" in result.output
