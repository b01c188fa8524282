"""A promotion commit on its own branch, and its push: Git plumbing, so the user's checkout never moves.

``commit_on_branch`` builds the commit from the base commit's tree with the edited files replaced (a
temporary index, ``git hash-object``, ``git write-tree``, ``git commit-tree``) and points the branch at
it: the work tree, the index and HEAD are left exactly as they were, and a refused or failed promotion
writes no ref at all. The committer comes from Git's own configuration; the commit is signed when Git is
configured to sign (``commit.gpgsign``, ``gpg.format=ssh`` for the trust rules) or when asked.
``push`` pushes the branch (forced: ``promote/...`` branches belong to the tool, and re-running a
promotion replaces its commit, which updates its merge request). ``reserve_ref`` creates a ref on the
remote only if it does not exist yet, atomically (the build-number reservation of ``next-tag``). Git's
messages reach a person with any credentials of the remote URL removed.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import uuid
from collections.abc import Mapping
from pathlib import Path

from reconciler.errors import PromotionError, SourceError
from reconciler.source import redact_url

GIT_TIMEOUT_SECONDS = 120


def git(
    repo: Path, *args: str, env: Mapping[str, str] | None = None, data: bytes | None = None, strip: bool = True
) -> str:
    """Run git in ``repo``; its stdout (stripped unless ``strip`` is False). SourceError with git's last line,
    scrubbed, on failure."""
    try:
        result = subprocess.run(
            ["git", *args],
            cwd=repo,
            input=data,
            capture_output=True,
            env={**os.environ, **(env or {})},
            timeout=GIT_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SourceError(f"git {args[0]}: {exc}") from None
    if result.returncode != 0:
        lines = [line for line in result.stderr.decode(errors="replace").splitlines() if line.strip()]
        reason = redact_url(lines[-1] if lines else f"exit status {result.returncode}")
        raise SourceError(f"git {args[0]} failed: {reason}")
    output = result.stdout.decode(errors="replace")
    return output.strip() if strip else output


def repository_root(directory: Path) -> Path:
    """The work tree containing ``directory``; PromotionError when it is not in one."""
    try:
        return Path(git(directory, "rev-parse", "--show-toplevel"))
    except SourceError:
        raise PromotionError(f"{directory} is not inside a Git work tree: promote commits to a repository") from None


def dirty_paths(repo: Path, directory: Path) -> list[str]:
    """Files under ``directory`` that differ from HEAD (modified, staged or untracked)."""
    output = git(repo, "status", "--porcelain=v1", "-z", "--untracked-files=all", "--", str(directory), strip=False)
    return [entry[3:] for entry in output.split("\0") if len(entry) > 3]


def current_branch(repo: Path) -> str | None:
    try:
        return git(repo, "symbolic-ref", "--quiet", "--short", "HEAD") or None
    except SourceError:
        return None  # a detached HEAD


def commit_on_branch(
    repo: Path,
    files: Mapping[str, bytes],
    *,
    branch: str,
    message: str,
    base: str = "HEAD",
    sign: bool | None = None,
) -> str:
    """Commit ``files`` (paths relative to the repository root -> new content) on top of ``base`` and point
    ``branch`` at the commit; return its SHA. Only the branch ref changes."""
    try:
        git(repo, "check-ref-format", f"refs/heads/{branch}")
    except SourceError:
        raise PromotionError(f"{branch!r} is not a valid branch name") from None
    base_sha = git(repo, "rev-parse", "--verify", f"{base}^{{commit}}")
    with tempfile.TemporaryDirectory(prefix="reconciler-promote-") as scratch:
        index = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
        git(repo, "read-tree", base_sha, env=index)
        for path, content in files.items():
            blob = git(repo, "hash-object", "-w", "--stdin", data=content)
            mode = _mode(repo, base_sha, path)
            git(repo, "update-index", "--add", "--cacheinfo", f"{mode},{blob},{path}", env=index)
        tree = git(repo, "write-tree", env=index)
    signing = _signing(repo) if sign is None else sign
    arguments = ["commit-tree", tree, "-p", base_sha, "-F", "-"]
    if signing:
        arguments.insert(1, "-S")
    commit = git(repo, *arguments, data=message.encode())
    git(repo, "update-ref", f"refs/heads/{branch}", commit)
    return commit


def _mode(repo: Path, commit: str, path: str) -> str:
    """The file's mode at ``commit`` (an executable bit survives the edit); 100644 for a new file."""
    listing = git(repo, "ls-tree", commit, "--", path)
    return listing.split(" ", 1)[0] if listing else "100644"


def _signing(repo: Path) -> bool:
    try:
        return git(repo, "config", "--bool", "commit.gpgsign") == "true"
    except SourceError:
        return False  # not set


def remote_url(repo: Path, remote: str) -> str:
    try:
        return git(repo, "remote", "get-url", remote)
    except SourceError:
        raise PromotionError(f"the repository has no remote {remote!r} to push to (git remote -v)") from None


def push(repo: Path, remote: str, branch: str) -> None:
    """Push ``branch`` to ``remote`` (forced: the branch is the promotion's own)."""
    git(repo, "push", "--force", "--quiet", remote, f"refs/heads/{branch}:refs/heads/{branch}")


EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
"""Git's empty tree: what a reservation commit holds (it only needs to be unique)."""


def reserve_ref(repo: Path, remote: str, ref: str, message: str) -> bool:
    """Create ``ref`` on ``remote`` pointing at a new commit of its own, atomically: True when this call
    created it, False when it already existed there (someone else reserved it first). Git's receive-pack
    checks the old value under the ref's lock, so of two pushes racing for one ref exactly one wins."""
    git(repo, "hash-object", "-t", "tree", "-w", "--stdin", data=b"")  # make sure the empty tree exists
    # A nonce makes the commit this call's own: two claims with the same message, author and second would
    # otherwise make the same commit, and the second push would "succeed" as already up to date.
    commit = git(repo, "commit-tree", EMPTY_TREE, "-m", f"{message}\n\nnonce: {uuid.uuid4().hex}")
    try:
        git(repo, "push", "--quiet", remote, f"{commit}:{ref}")
    except SourceError:
        if ref in list_remote_refs(repo, remote, ref):
            return False  # refused because another reservation holds the ref
        raise
    return True


def list_remote_refs(repo: Path, remote: str, pattern: str) -> list[str]:
    """Names of the refs on ``remote`` matching ``pattern`` (``git ls-remote``)."""
    output = git(repo, "ls-remote", "--refs", remote, pattern)
    return [line.split("\t", 1)[1] for line in output.splitlines() if "\t" in line]
