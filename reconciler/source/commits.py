"""A desired state as it was at a commit of a local repository, without checking anything out.

``validate --base REF`` and ``diff`` compare the working copy with another commit; reading blobs straight
from the commit's tree leaves the working copy, the index and HEAD untouched. The directory may be a
subdirectory of the work tree: the same subdirectory is read at the commit. This module never fetches,
writes or changes the repository.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from reconciler.errors import SourceError
from reconciler.source.gitutil import author_of, default_cache_dir
from reconciler.source.tree import CommitTree, Revision


def _open_repository(directory: str | os.PathLike[str]) -> tuple[Any, str]:
    """(gitpython repo, subdirectory of ``directory`` inside its work tree)."""
    import git  # noqa: PLC0415  (heavy: imported only when Git is actually used)

    resolved = Path(directory).resolve()
    try:
        repo = git.Repo(resolved, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError) as exc:
        raise SourceError(f"{os.fspath(directory)} is not inside a Git repository") from exc
    if repo.working_tree_dir is None:
        repo.close()
        raise SourceError(f"{os.fspath(directory)}: bare repositories are not supported here")
    subdir = resolved.relative_to(Path(repo.working_tree_dir).resolve()).as_posix()
    return repo, "" if subdir == "." else subdir


def resolve_commit(repo: Any, ref: str, *, shown: str) -> Any:
    """The gitpython commit ``ref`` names (branch, tag, SHA, ``HEAD~2``...); SourceError when none."""
    import git  # noqa: PLC0415

    try:
        return repo.commit(ref)
    except (git.BadName, ValueError, git.GitCommandError) as exc:
        raise SourceError(f"{shown}: Git ref {ref!r} does not name a commit") from exc


def open_commit(directory: str | os.PathLike[str], ref: str) -> CommitTree:
    """The desired-state directory ``directory`` as it was at ``ref``. SourceError when ``directory`` is
    not in a Git work tree or ``ref`` names no commit. Close the tree when done (or use ``with``)."""
    repo, subdir = _open_repository(directory)
    try:
        commit = resolve_commit(repo, ref, shown=os.fspath(directory))
    except SourceError:
        repo.close()
        raise
    revision = Revision(commit=commit.hexsha, author=author_of(commit))
    return CommitTree(
        repo,
        commit.hexsha,
        subdir=subdir,
        root=f"{os.fspath(directory)}@{commit.hexsha[:12]}",
        revision=revision,
        files_dir=default_cache_dir() / "files",
    )
