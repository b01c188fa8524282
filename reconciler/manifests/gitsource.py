"""Read a desired state as it was at a Git commit, without checking anything out (gitpython).

``validate --base REF`` and ``diff`` compare the working copy with an older commit; reading blobs
straight from the commit's tree leaves the working copy, the index and HEAD untouched.
This module never fetches, writes or changes the repository.
"""

from __future__ import annotations

import os
from pathlib import Path

from reconciler.errors import DesiredStateError, SourceError
from reconciler.manifests.load import inspect_source
from reconciler.manifests.source import GitTreeSource
from reconciler.model.desired import DesiredState
from reconciler.model.problems import Problem


def _open_commit(repo_dir: str | os.PathLike[str], ref: str) -> tuple[GitTreeSource, str, str]:
    import git  # noqa: PLC0415  (heavy: imported only when Git is actually used)

    directory = Path(repo_dir).resolve()
    try:
        repo = git.Repo(directory, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError) as exc:
        raise SourceError(f"{os.fspath(repo_dir)} is not inside a Git repository") from exc
    if repo.working_tree_dir is None:
        raise SourceError(f"{os.fspath(repo_dir)}: bare repositories are not supported")
    subdir = directory.relative_to(Path(repo.working_tree_dir).resolve()).as_posix()
    subdir = "" if subdir == "." else subdir
    try:
        commit = repo.commit(ref)
    except (git.BadName, ValueError, git.GitCommandError) as exc:
        raise SourceError(f"{os.fspath(repo_dir)}: Git ref {ref!r} does not name a commit") from exc
    author = f"{commit.author.name} <{commit.author.email}>"
    source = GitTreeSource(f"{os.fspath(repo_dir)}@{commit.hexsha[:12]}", commit.tree, subdir)
    return source, commit.hexsha, author


def inspect_at(repo_dir: str | os.PathLike[str], ref: str) -> tuple[DesiredState, list[Problem]]:
    """Best-effort state at ``ref`` plus every problem (see ``inspect_source``).

    ``repo_dir`` may be a subdirectory of the work tree: the same subdirectory is read at ``ref``.
    """
    source, sha, author = _open_commit(repo_dir, ref)
    state, problems = inspect_source(source)
    return _with_commit(state, sha, author), problems


def _with_commit(state: DesiredState, sha: str, author: str) -> DesiredState:
    return DesiredState(
        root=state.root, config=state.config, environments=state.environments, commit=sha, commit_author=author
    )


def load_desired_state_at(repo_dir: str | os.PathLike[str], ref: str) -> DesiredState:
    """The valid desired state at commit ``ref``; DesiredStateError with every problem when invalid,
    SourceError when ``repo_dir`` is not in a Git work tree or ``ref`` names no commit."""
    state, problems = inspect_at(repo_dir, ref)
    if problems:
        raise DesiredStateError(problems)
    return state


def exists_at(repo_dir: str | os.PathLike[str], ref: str) -> bool:
    """Whether the desired-state directory existed at ``ref`` (holds a reconciler.yaml)."""
    source, _sha, _author = _open_commit(repo_dir, ref)
    return source.exists("reconciler.yaml")
