"""Where the desired state comes from: a local directory, or a Git URL and ref fetched into a cache.

``local_source(DIR)`` reads a directory as it is; when DIR is inside a Git work tree it also records the
HEAD commit and its author for the audit log (with ``-dirty`` appended to the SHA when files under DIR
differ from HEAD, so an audit record never claims a commit that does not hold what was applied).

``git_source(URL, REF)`` keeps one bare clone per URL under the cache directory (``$RECONCILER_CACHE_DIR``,
else ``$XDG_CACHE_HOME/reconciler``, else ``~/.cache/reconciler``), fetches into it on every run (so runs
after the first transfer only what changed), resolves REF (branch, tag or commit SHA) to a commit, and
exports that commit's tree into ``trees/<sha>/``: a content-addressed, read-only snapshot created by an
atomic rename, so concurrent runs (two applies, the controller) never see each other's half-written
checkouts and never fight over a shared work tree. A lock file serialises fetches into one clone.

This module never pushes, never writes to the user's own repositories, and never lets credentials that
are embedded in a URL (``https://user:token@host/...``) reach an error message, a log or the cache path.
Every git failure is raised as ``SourceError``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import os
import re
import shutil
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reconciler.errors import SourceError

CACHE_DIR_ENV = "RECONCILER_CACHE_DIR"
_USERINFO = re.compile(r"(\w+://)[^/@\s]+@")
_SHA = re.compile(r"^[0-9a-f]{7,64}$")


def redact_url(url: str) -> str:
    """``url`` without user-info: ``https://user:token@host/x.git`` -> ``https://***@host/x.git``."""
    return _USERINFO.sub(r"\1***@", url)


def default_cache_dir() -> Path:
    configured = os.environ.get(CACHE_DIR_ENV)
    if configured:
        return Path(configured)
    cache_home = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache_home) / "reconciler"


@dataclass(frozen=True, slots=True)
class Source:
    """A desired-state directory ready to load, and where it came from."""

    root: Path
    commit: str | None = None
    """Full SHA of the commit the files come from (``<sha>-dirty`` for a modified local checkout)."""
    commit_author: str | None = None
    """``Name <email>`` of the commit's author."""
    url: str | None = None
    """The Git URL, with any credentials removed."""
    ref: str | None = None

    def describe(self) -> str:
        where = f"{self.url} {self.ref}" if self.url else str(self.root)
        return f"{where} @ {self.commit[:12]}" if self.commit else where


def _clean_git_error(exc: Exception, url: str | None = None) -> str:
    text = str(getattr(exc, "stderr", "") or exc).strip()
    text = _USERINFO.sub(r"\1***@", text)
    if url:
        text = text.replace(url, redact_url(url))
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else type(exc).__name__


def _author(commit: Any) -> str:
    return f"{commit.author.name} <{commit.author.email}>"


def local_source(directory: str | os.PathLike[str]) -> Source:
    """The directory as it is, with its Git commit when it lies in a Git work tree."""
    root = Path(directory).resolve()
    if not root.is_dir():
        raise SourceError(f"{directory}: not a directory")
    if not any((parent / ".git").exists() for parent in (root, *root.parents)):
        return Source(root=root)  # not in a work tree: no need to pay for importing gitpython
    import git  # noqa: PLC0415  (gitpython is slow to import: only pay for it when reading a source)

    try:
        repo = git.Repo(root, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return Source(root=root)
    try:
        head = repo.head.commit
    except ValueError:  # a repository without commits yet
        return Source(root=root)
    commit = head.hexsha
    try:
        dirty = repo.is_dirty(untracked_files=True, path=str(root))
    except git.GitCommandError:
        dirty = False
    finally:
        repo.close()
    return Source(root=root, commit=f"{commit}-dirty" if dirty else commit, commit_author=_author(head))


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def git_source(url: str, ref: str = "main", *, cache_dir: str | os.PathLike[str] | None = None) -> Source:
    """Fetch ``url`` into the cache and return a snapshot of ``ref`` (branch, tag or commit SHA)."""
    import git  # noqa: PLC0415

    shown = redact_url(url)
    base = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    key = hashlib.sha256(shown.encode() + b"\0" + url.encode()).hexdigest()[:16]
    home = base / "sources" / key
    clone = home / "repo.git"
    with _locked(home / "lock"):
        try:
            if (clone / "HEAD").exists():
                repo = git.Repo(clone)
                repo.git.fetch("--prune", "--force", url, "+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*")
            else:
                if clone.exists():
                    shutil.rmtree(clone)  # a clone interrupted before it finished
                partial = home / f"repo.git.partial-{os.getpid()}"
                if partial.exists():
                    shutil.rmtree(partial)
                git.Repo.clone_from(url, partial, bare=True)
                partial.rename(clone)
                repo = git.Repo(clone)
                # Never keep the URL (it may embed a token) in the cache's config.
                with repo.config_writer() as config:
                    config.set_value('remote "origin"', "url", shown)
        except git.GitCommandError as exc:
            raise SourceError(f"cannot fetch {shown}: {_clean_git_error(exc, url)}") from exc
        try:
            commit = _resolve(repo, url, ref)
            sha = commit.hexsha
            tree_dir = home / "trees" / sha
            if not tree_dir.is_dir():
                _export(repo, sha, tree_dir)
            author = _author(commit)
        except git.GitCommandError as exc:
            raise SourceError(f"{shown}: {_clean_git_error(exc, url)}") from exc
        finally:
            repo.close()
    return Source(root=tree_dir, commit=sha, commit_author=author, url=shown, ref=ref)


def _resolve(repo: Any, url: str, ref: str) -> Any:
    import git  # noqa: PLC0415

    for candidate in (f"refs/heads/{ref}", f"refs/tags/{ref}", ref):
        try:
            return repo.commit(repo.git.rev_parse("--verify", "--quiet", f"{candidate}^{{commit}}"))
        except (git.GitCommandError, ValueError, git.BadName):
            continue
    if _SHA.fullmatch(ref):
        # A commit not reachable from any branch or tag (e.g. an MR head): ask for it directly.
        try:
            repo.git.fetch(url, ref)
            return repo.commit(repo.git.rev_parse("--verify", "FETCH_HEAD^{commit}"))
        except (git.GitCommandError, ValueError, git.BadName):
            pass
    raise SourceError(f"{redact_url(url)}: no branch, tag or commit named {ref!r}")


def _export(repo: Any, sha: str, tree_dir: Path) -> None:
    tree_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{sha[:12]}-", dir=tree_dir.parent))
    try:
        archive = io.BytesIO()
        repo.archive(archive, treeish=sha, format="tar")
        archive.seek(0)
        with tarfile.open(fileobj=archive, mode="r:") as tar:
            tar.extractall(staging, filter="data")
        try:
            staging.rename(tree_dir)
        except OSError:
            if not tree_dir.is_dir():  # lost a race to an identical snapshot: fine; anything else is not
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
