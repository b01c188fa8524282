"""The files of a desired state, wherever they live: a directory, or the tree of one Git commit.

Everything that reads desired state (validation, ``validate --base``, ``diff``, ``plan --repo``, the
controller) reads through ``DesiredStateTree``, so the same checks run on a working copy and on any
commit without checking anything out. A tree knows where it came from (``revision``: the commit and its
author, ``-dirty`` for a modified work tree) so that the loader stamps the desired state in ONE place.

Both implementations read at most one byte more than ``MAX_FILE_BYTES`` of a file, so an oversized file
is detected, never loaded; neither follows a link out of the tree (a symlink is not a regular file of the
desired state); neither ever writes to, fetches into or checks out the repository it reads.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

MAX_FILE_BYTES = 5 * 1024 * 1024
"""Desired-state files are small; anything larger is a mistake or an attack."""
ENVIRONMENTS_DIR = "environments"
_REGULAR_MODES = (0o100644, 0o100755)
_DRAIN_BYTES = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Revision:
    """The commit a desired state was read at, as the audit log records it."""

    commit: str
    """Full SHA; ``<sha>-dirty`` for a work tree whose files differ from HEAD (never claim a commit that
    does not hold what was applied)."""
    author: str
    """``Name <email>`` of the commit's author."""


class DesiredStateTree(Protocol):
    @property
    def root(self) -> str:
        """How to name the tree to a person: a directory, or ``<url or dir>@<short sha>``."""
        ...

    @property
    def revision(self) -> Revision | None: ...

    @property
    def url(self) -> str | None:
        """The Git URL it was fetched from (credentials removed), for a remote source."""
        ...

    @property
    def ref(self) -> str | None:
        """The branch, tag or SHA asked for, for a commit."""
        ...

    def read(self, path: str) -> bytes | None:
        """Bytes of the regular file at ``path`` (relative, forward slashes), at most ``MAX_FILE_BYTES + 1``
        of them; None when there is no regular file there."""
        ...

    def exists(self, path: str) -> bool: ...

    def environment_files(self) -> list[str]:
        """Relative paths of the entries directly under ``environments/``, sorted (any kind: the loader
        reports an entry that is not a regular file)."""
        ...

    def local_path(self, path: str) -> Path | None:
        """A file on disk with the content of ``path`` (for what another program must open by name, such
        as a registry's CA bundle); None when there is no regular file there."""
        ...


class DirectoryTree:
    """A desired state in a directory; ``revision`` is set by ``reconciler.source.open_directory``."""

    def __init__(self, root: str | os.PathLike[str], *, revision: Revision | None = None) -> None:
        self.root = os.fspath(root)
        self.revision = revision
        self.url: str | None = None
        self.ref: str | None = None
        self._root = Path(root)
        self._resolved_root = self._root.resolve()

    def _inside(self, path: str) -> Path | None:
        """The regular file at ``path`` if it is one and lies inside the root: a symlink must not make
        validation read (and quote) files outside the repository, and a FIFO or a device must never be
        opened (reading a FIFO blocks)."""
        target = self._root / path
        try:
            resolved = target.resolve(strict=True)
            resolved.relative_to(self._resolved_root)
            mode = resolved.stat().st_mode
        except (OSError, RuntimeError, ValueError):  # missing, a symlink loop, or outside the root
            return None
        return target if stat.S_ISREG(mode) else None

    def read(self, path: str) -> bytes | None:
        target = self._inside(path)
        if target is None:
            return None
        try:
            with target.open("rb") as stream:
                return stream.read(MAX_FILE_BYTES + 1)
        except OSError:
            return None

    def exists(self, path: str) -> bool:
        return os.path.lexists(self._root / path)

    def environment_files(self) -> list[str]:
        directory = self._root / ENVIRONMENTS_DIR
        try:
            names = [entry.name for entry in os.scandir(directory)]
        except OSError:
            return []
        return sorted(f"{ENVIRONMENTS_DIR}/{name}" for name in names)

    def local_path(self, path: str) -> Path | None:
        target = self._inside(path)
        return target.resolve() if target is not None else None


class CommitTree:
    """The files of one commit, under ``subdir`` of the repository (``""`` for its root), read from the
    object database without a checkout. Close it (or use ``with``) to stop gitpython's helper processes."""

    def __init__(
        self,
        repo: Any,
        sha: str,
        *,
        subdir: str = "",
        root: str,
        revision: Revision,
        files_dir: Path,
        url: str | None = None,
        ref: str | None = None,
    ) -> None:
        self.root = root
        self.revision = revision
        self.url = url
        self.ref = ref
        self.sha = sha
        self._repo = repo
        self._tree = repo.commit(sha).tree
        self._prefix = f"{subdir.strip('/')}/" if subdir.strip("/") else ""
        self._files_dir = files_dir
        self.subdir = subdir.strip("/")
        """Where the desired state lies inside the repository (``""``: at its root)."""

    @property
    def repository(self) -> Path:
        """The repository the commit is read from: a work tree's root, or the cache's bare clone."""
        return Path(self._repo.working_tree_dir or self._repo.git_dir)

    def __enter__(self) -> CommitTree:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._repo.close()

    def _lookup(self, path: str) -> Any | None:
        try:
            return self._tree / f"{self._prefix}{path}"
        except KeyError:
            return None

    def _blob(self, path: str) -> Any | None:
        entry = self._lookup(path)
        if entry is None or entry.type != "blob" or entry.mode not in _REGULAR_MODES:
            return None  # a tree, a submodule, or a symlink (its target may lie outside the repository)
        return entry

    def read(self, path: str) -> bytes | None:
        blob = self._blob(path)
        if blob is None:
            return None
        stream = blob.data_stream
        data: bytes = stream.read(MAX_FILE_BYTES + 1)
        while stream.read(_DRAIN_BYTES):  # the rest of an oversized blob, in bounded pieces
            pass
        return data

    def exists(self, path: str) -> bool:
        return self._lookup(path) is not None

    def environment_files(self) -> list[str]:
        directory = self._lookup(ENVIRONMENTS_DIR)
        if directory is None or directory.type != "tree":
            return []
        return sorted(f"{ENVIRONMENTS_DIR}/{entry.name}" for entry in directory)

    def local_path(self, path: str) -> Path | None:
        """The blob written once under the cache's ``files/<blob sha>`` (content-addressed, so concurrent
        runs write the same bytes and an existing file is simply reused)."""
        blob = self._blob(path)
        if blob is None:
            return None
        name = str(blob.hexsha)
        target: Path = self._files_dir / name
        if not target.is_file():
            self._files_dir.mkdir(parents=True, exist_ok=True)
            staging = self._files_dir / f".{name}.{os.getpid()}"
            with staging.open("wb") as out:
                stream = blob.data_stream
                while chunk := stream.read(_DRAIN_BYTES):
                    out.write(chunk)
            os.replace(staging, target)
        return target
