"""Desired state from a directory and from Git: a bare repository in tmp, fetched into a cache, by branch,
tag and SHA, read from the object database without a checkout."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from reconciler.errors import SourceError
from reconciler.source import open_directory, open_remote, redact_url


def git(cwd: Path, *args: str) -> str:
    env = {
        "GIT_AUTHOR_NAME": "Ada Lovelace",
        "GIT_AUTHOR_EMAIL": "ada@example.com",
        "GIT_COMMITTER_NAME": "Ada Lovelace",
        "GIT_COMMITTER_EMAIL": "ada@example.com",
        "HOME": str(cwd),
        "PATH": "/usr/bin:/bin",
    }
    return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def origin(tmp_path: Path) -> tuple[Path, Path]:
    """(bare repository, work tree that pushes to it) with one commit on main."""
    bare = tmp_path / "origin.git"
    work = tmp_path / "work"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    work.mkdir()
    git(work, "init", "-q", "-b", "main")
    (work / "reconciler.yaml").write_text("version: 1\n")
    git(work, "add", ".")
    git(work, "commit", "-q", "-m", "first")
    git(work, "remote", "add", "origin", str(bare))
    git(work, "push", "-q", "origin", "main")
    return bare, work


def test_branch_tag_and_sha_resolve_to_snapshots(origin: tuple[Path, Path], tmp_path: Path) -> None:
    bare, work = origin
    cache = tmp_path / "cache"
    first_sha = git(work, "rev-parse", "HEAD")
    git(work, "tag", "v1")
    (work / "reconciler.yaml").write_text("version: 1\n# second\n")
    git(work, "commit", "-q", "-am", "second")
    git(work, "push", "-q", "--tags", "origin", "main")
    second_sha = git(work, "rev-parse", "HEAD")

    with open_remote(f"file://{bare}", "main", cache_dir=cache) as head:
        assert head.revision is not None
        assert head.revision.commit == second_sha
        assert head.revision.author == "Ada Lovelace <ada@example.com>"
        assert b"# second" in (head.read("reconciler.yaml") or b"")

    with open_remote(f"file://{bare}", "v1", cache_dir=cache) as tagged:
        assert tagged.revision is not None
        assert tagged.revision.commit == first_sha
        assert b"# second" not in (tagged.read("reconciler.yaml") or b"")
    with open_remote(f"file://{bare}", first_sha, cache_dir=cache) as by_sha:
        assert by_sha.sha == first_sha
    # one clone per URL, reused; nothing checked out or exported next to it
    homes = list((cache / "sources").iterdir())
    assert len(homes) == 1
    assert sorted(p.name for p in homes[0].iterdir()) == ["lock", "repo.git"]


def test_new_commits_are_fetched_on_the_next_run(origin: tuple[Path, Path], tmp_path: Path) -> None:
    bare, work = origin
    cache = tmp_path / "cache"
    before = open_remote(str(bare), "main", cache_dir=cache)
    (work / "environments").mkdir()
    (work / "environments" / "t.yaml").write_text("environment: t\n")
    git(work, "add", ".")
    git(work, "commit", "-q", "-m", "add t")
    git(work, "push", "-q", "origin", "main")
    with open_remote(str(bare), "main", cache_dir=cache) as after:
        assert after.revision != before.revision
        assert after.environment_files() == ["environments/t.yaml"]
    with before:
        assert before.environment_files() == []  # a commit's tree never changes under a reader


def test_cache_clones_stream_big_blobs_even_when_made_before(origin: tuple[Path, Path], tmp_path: Path) -> None:
    """index-pack inflates blobs below core.bigFileThreshold in memory: the cache sets it low on clone and,
    for clones made before it did, before the next fetch (tests/hardening/test_large_repository.py measures)."""
    bare, _work = origin
    cache = tmp_path / "cache"
    open_remote(str(bare), "main", cache_dir=cache).close()
    (clone,) = (cache / "sources").glob("*/repo.git")
    assert git(clone, "config", "core.bigFileThreshold") == "1m"
    git(clone, "config", "--unset", "core.bigFileThreshold")  # as a clone from an earlier version has it
    open_remote(str(bare), "main", cache_dir=cache).close()
    assert git(clone, "config", "core.bigFileThreshold") == "1m"


def test_unknown_ref_and_unreachable_url_raise_source_error(origin: tuple[Path, Path], tmp_path: Path) -> None:
    bare, _work = origin
    with pytest.raises(SourceError, match="no branch, tag or commit named 'nope'"):
        open_remote(str(bare), "nope", cache_dir=tmp_path / "c")
    with pytest.raises(SourceError, match=r"cannot fetch https://\*\*\*@127\.0\.0\.1:1/x\.git") as caught:
        open_remote("https://bob:hunter2@127.0.0.1:1/x.git", "main", cache_dir=tmp_path / "c")
    assert "hunter2" not in str(caught.value)
    assert not any("hunter2" in p.read_text(errors="ignore") for p in (tmp_path / "c").rglob("*") if p.is_file())


def test_local_directory_records_commit_and_dirty_state(origin: tuple[Path, Path], tmp_path: Path) -> None:
    _bare, work = origin
    clean = open_directory(work).revision
    assert clean is not None
    assert clean.commit == git(work, "rev-parse", "HEAD")
    assert clean.author == "Ada Lovelace <ada@example.com>"
    (work / "reconciler.yaml").write_text("version: 1\n# edited\n")
    dirty = open_directory(work).revision
    assert dirty is not None
    assert dirty.commit == clean.commit + "-dirty"
    plain = tmp_path / "plain"
    plain.mkdir()
    assert open_directory(plain).revision is None
    with pytest.raises(SourceError):
        open_directory(tmp_path / "absent")


def test_redact_url() -> None:
    assert redact_url("https://u:p@h/x.git") == "https://***@h/x.git"
    assert redact_url("https://h/x.git") == "https://h/x.git"
