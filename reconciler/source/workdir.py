"""A desired state in a local directory, with the Git commit it is at when it lies in a work tree.

When the directory is inside a Git work tree, the revision is HEAD's commit and author, with ``-dirty``
appended to the SHA when files under the directory differ from HEAD, so an audit record never claims a
commit that does not hold what was applied. This module only reads.
"""

from __future__ import annotations

import os
from pathlib import Path

from reconciler.errors import SourceError
from reconciler.source.gitutil import author_of
from reconciler.source.tree import DirectoryTree, Revision


def _work_tree_revision(root: Path) -> Revision | None:
    if not any((parent / ".git").exists() for parent in (root, *root.parents)):
        return None  # not in a work tree: no need to pay for importing gitpython
    import git  # noqa: PLC0415  (gitpython is slow to import: only pay for it when there is a repository)

    try:
        repo = git.Repo(root, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        return None
    try:
        head = repo.head.commit
    except ValueError:  # a repository without commits yet
        repo.close()
        return None
    try:
        dirty = repo.is_dirty(untracked_files=True, path=str(root))
    except git.GitCommandError:
        dirty = False
    finally:
        repo.close()
    return Revision(commit=f"{head.hexsha}-dirty" if dirty else head.hexsha, author=author_of(head))


def open_directory(directory: str | os.PathLike[str]) -> DirectoryTree:
    """The directory as it is, with its Git revision when it lies in a work tree; SourceError when it is
    not a directory."""
    root = Path(directory)
    if not root.is_dir():
        raise SourceError(f"{os.fspath(directory)}: not a directory")
    return DirectoryTree(root, revision=_work_tree_revision(root.resolve()))
