"""Where the files of a desired state come from: a directory, or the tree of a Git commit.

Validation reads through this small interface so that the same checks run on a working copy
(``validate DIR``) and on any commit (``validate --base REF``, ``diff``) without checking it out.
Implementations only read; they never write, fetch or check out anything.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol

from reconciler.manifests.yamltree import MAX_FILE_BYTES

ENVIRONMENTS_DIR = "environments"
_SYMLINK_MODE = 0o120000


class DesiredStateSource(Protocol):
    root: str
    """How to name the source to a person (a directory, or ``dir@commit``)."""

    def read(self, path: str) -> bytes | None:
        """Bytes of the file at ``path`` (relative, forward slashes), or None if there is no such file.
        Reads at most one byte more than the size limit, so an oversized file is detected, not loaded."""

    def exists(self, path: str) -> bool: ...

    def environment_files(self) -> list[str]:
        """Relative paths of the regular files directly under ``environments/``, sorted."""


class DirectorySource:
    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = str(root)
        self._root = Path(root)

    def _inside(self, path: str) -> Path | None:
        """The file at ``path`` if it resolves inside the root: a symlink must not make validation
        read (and quote positions of) files outside the desired-state repository."""
        target = self._root / path
        try:
            resolved = target.resolve()
            resolved.relative_to(self._root.resolve())
        except (OSError, ValueError):
            return None
        return target

    def read(self, path: str) -> bytes | None:
        target = self._inside(path)
        if target is None or not target.is_file():
            return None
        with target.open("rb") as stream:
            return stream.read(MAX_FILE_BYTES + 1)

    def exists(self, path: str) -> bool:
        target = self._inside(path)
        return target is not None and target.exists()

    def environment_files(self) -> list[str]:
        directory = self._root / ENVIRONMENTS_DIR
        if not directory.is_dir():
            return []
        return sorted(f"{ENVIRONMENTS_DIR}/{entry.name}" for entry in directory.iterdir() if entry.is_file())


class GitTreeSource:
    """The files of one commit, under ``subdir`` of the repository (``""`` for its root)."""

    def __init__(self, root: str, tree: Any, subdir: str) -> None:
        self.root = root
        self._tree = tree
        self._prefix = f"{subdir.strip('/')}/" if subdir.strip("/") else ""

    def _lookup(self, path: str) -> Any | None:
        try:
            return self._tree / f"{self._prefix}{path}"
        except KeyError:
            return None

    def read(self, path: str) -> bytes | None:
        blob = self._lookup(path)
        if blob is None or blob.type != "blob" or blob.mode == _SYMLINK_MODE:
            return None
        stream = blob.data_stream
        data: bytes = stream.read(MAX_FILE_BYTES + 1)
        return data

    def exists(self, path: str) -> bool:
        return self._lookup(path) is not None

    def environment_files(self) -> list[str]:
        directory = self._lookup(ENVIRONMENTS_DIR)
        if directory is None or directory.type != "tree":
            return []
        return sorted(f"{ENVIRONMENTS_DIR}/{blob.name}" for blob in directory.blobs)
