"""A desired state from a Git URL and ref, fetched into a local cache of bare clones.

One bare clone per URL under ``<cache>/sources/<key>/repo.git`` (``$RECONCILER_CACHE_DIR``, else
``$XDG_CACHE_HOME/reconciler``, else ``~/.cache/reconciler``), fetched on every call so that calls after
the first transfer only what changed. The ref (branch, tag or commit SHA) resolves to a commit whose files
are read straight from the clone's object database: nothing is checked out or exported, so a repository
holding huge unrelated files costs no memory or disk beyond the clone, and concurrent runs (two applies,
the controller) never see half-written files. A lock file serialises fetches into one clone; automatic
``git gc`` is off in the cache, so a fetch never repacks objects another run is reading.

It never pushes, never writes to the user's own repositories, and never lets credentials embedded in a
URL (``https://user:token@host/...``) reach an error message, a log, the cache's config or its path.
Every git failure is raised as ``SourceError``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from reconciler.errors import SourceError
from reconciler.source.gitutil import author_of, clean_git_error, default_cache_dir, redact_url
from reconciler.source.tree import CommitTree, Revision

_SHA = re.compile(r"^[0-9a-f]{7,64}$")
# git index-pack inflates every blob below core.bigFileThreshold (512 MiB by default) in memory to hash it;
# at 1 MiB it streams the big ones, so a large file beside the desired state costs a few MiB, not its size.
_BIG_FILE_THRESHOLD = "1m"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def clone_dir(url: str, cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where the bare clone of ``url`` lives (the directory need not exist yet)."""
    base = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    key = hashlib.sha256(redact_url(url).encode() + b"\0" + url.encode()).hexdigest()[:16]
    return base / "sources" / key


def fetch(url: str, *, cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Clone ``url`` into the cache, or fetch what changed; return the bare clone's path."""
    import git  # noqa: PLC0415

    shown = redact_url(url)
    home = clone_dir(url, cache_dir)
    clone = home / "repo.git"
    with _locked(home / "lock"):
        try:
            if (clone / "HEAD").exists():
                repo = git.Repo(clone)
                try:
                    # read in-process (no git process per fetch); set only in clones made before it
                    if (
                        str(repo.config_reader("repository").get_value("core", "bigfilethreshold", ""))
                        != _BIG_FILE_THRESHOLD
                    ):
                        repo.git.config("core.bigFileThreshold", _BIG_FILE_THRESHOLD)
                    repo.git.fetch("--prune", "--force", url, "+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*")
                finally:
                    repo.close()
            else:
                if clone.exists():
                    shutil.rmtree(clone)  # a clone interrupted before it finished
                partial = home / f"repo.git.partial-{os.getpid()}"
                if partial.exists():
                    shutil.rmtree(partial)
                # GitPython refuses --config as unsafe unless allowed; the only option here is this constant
                # (the URL goes after "--" and is still checked for unsafe protocols).
                repo = git.Repo.clone_from(
                    url,
                    partial,
                    bare=True,
                    multi_options=[f"--config=core.bigFileThreshold={_BIG_FILE_THRESHOLD}"],
                    allow_unsafe_options=True,
                )
                try:
                    with repo.config_writer() as config:
                        config.set_value('remote "origin"', "url", shown)  # never keep a token in the cache
                        config.set_value("gc", "auto", "0")
                finally:
                    repo.close()
                partial.rename(clone)
        except git.GitCommandError as exc:
            raise SourceError(f"cannot fetch {shown}: {clean_git_error(exc, url)}") from exc
        legacy = home / "trees"  # exported snapshots of earlier versions: no longer read, never pruned then
        if legacy.exists():
            shutil.rmtree(legacy, ignore_errors=True)
    return clone


def _resolve(repo: Any, url: str, ref: str) -> Any:
    import git  # noqa: PLC0415

    for candidate in (f"refs/heads/{ref}", f"refs/tags/{ref}", ref):
        try:
            return repo.commit(repo.git.rev_parse("--verify", "--quiet", f"{candidate}^{{commit}}"))
        except (git.GitCommandError, ValueError, git.BadName):
            continue
    if _SHA.fullmatch(ref):
        # A commit not reachable from any branch or tag (e.g. a merge request's head): ask for it directly.
        try:
            repo.git.fetch(url, ref)
            return repo.commit(repo.git.rev_parse("--verify", "FETCH_HEAD^{commit}"))
        except (git.GitCommandError, ValueError, git.BadName):
            pass
    raise SourceError(f"{redact_url(url)}: no branch, tag or commit named {ref!r}")


def open_remote(
    url: str, ref: str = "main", *, cache_dir: str | os.PathLike[str] | None = None, refresh: bool = True
) -> CommitTree:
    """Fetch ``url`` into the cache (unless ``refresh`` is False and a clone is there: a second ref of the
    same run) and return the tree of ``ref`` (branch, tag or commit SHA). Close it when done (or ``with``)."""
    import git  # noqa: PLC0415

    shown = redact_url(url)
    cached = clone_dir(url, cache_dir) / "repo.git"
    clone = cached if not refresh and (cached / "HEAD").exists() else fetch(url, cache_dir=cache_dir)
    repo = git.Repo(clone)
    try:
        commit = _resolve(repo, url, ref)
    except git.GitCommandError as exc:
        repo.close()
        raise SourceError(f"{shown}: {clean_git_error(exc, url)}") from exc
    except SourceError:
        repo.close()
        raise
    return CommitTree(
        repo,
        commit.hexsha,
        root=f"{shown} {ref}@{commit.hexsha[:12]}",
        revision=Revision(commit=commit.hexsha, author=author_of(commit)),
        files_dir=clone.parent / "files",
        url=shown,
        ref=ref,
    )
