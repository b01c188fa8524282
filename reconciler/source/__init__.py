"""Where desired state comes from: a directory, a commit of a local repository, or a Git URL and ref.

Git lives here and only here: the clone cache (``remote``), reading a commit's files without a checkout
(``commits``, ``tree``), a work tree's revision (``workdir``), and (as the features that need them land)
history walks and commit-signature checks. Every entry point returns a ``DesiredStateTree``, which the
loader in ``reconciler.manifests`` validates; a tree carries its ``Revision`` so the loaded state is
stamped with its commit in one place.

This package never pushes and never writes to a user's repository (promotion does, in
``reconciler.promote``); every Git failure is a ``SourceError`` with no credential in it.
"""

from __future__ import annotations

from reconciler.source.commits import open_commit
from reconciler.source.gitutil import default_cache_dir, redact_url
from reconciler.source.remote import open_remote
from reconciler.source.tree import MAX_FILE_BYTES, CommitTree, DesiredStateTree, DirectoryTree, Revision
from reconciler.source.workdir import open_directory

__all__ = [
    "MAX_FILE_BYTES",
    "CommitTree",
    "DesiredStateTree",
    "DirectoryTree",
    "Revision",
    "default_cache_dir",
    "open_commit",
    "open_directory",
    "open_remote",
    "redact_url",
]
