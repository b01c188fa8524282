"""``LayoutDirectory``: the on-disk state of one layout: is it a layout, its ``index.json``, its lock.

Blocking calls (the async ``OciLayout`` runs them in worker threads), except ``ensure_writer`` and
``index_lock``, which serialise the coroutines of one process (per event loop). Creation order makes every
intermediate state readable: ``oci-layout`` is written first, then an empty ``index.json``, each
atomically; a directory with ``oci-layout`` but no ``index.json``, or holding only the private
``.reconciler/`` and an empty ``blobs/``, is an empty layout whose creation was interrupted, and the next
writer finishes it. ``index.json`` is parsed once per version (keyed by inode, size and mtime).

This module never writes anything before the writer lock is held, and never writes into ``blobs/``.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from reconciler.archive.files import (
    LOCK_FILE,
    PRIVATE_DIR,
    ContentMismatch,
    LockBusy,
    WriterLock,
    blob_path,
    os_errors,
    read_limited,
    remove_stale_temps,
    replace_file,
)
from reconciler.archive.index import LAYOUT_VERSION, MAX_INDEX_BYTES, LayoutIndex
from reconciler.errors import ArchiveError
from reconciler.model.manifest import Descriptor

_Stamp = tuple[int, int, int]


@dataclass(slots=True)
class _LoopLocks:
    """In-process serialisation, per event loop (asyncio locks cannot cross loops)."""

    loop: asyncio.AbstractEventLoop
    writer: asyncio.Lock
    index: asyncio.Lock


class LayoutDirectory:
    """The files of the layout at ``root``; errors name the archive as ``name``."""

    def __init__(self, root: Path, name: str) -> None:
        self.root = root
        self.name = name
        self.lock = WriterLock(root / LOCK_FILE)
        self._writer = False
        self._cached: tuple[_Stamp, LayoutIndex] | None = None
        self._loop_locks: _LoopLocks | None = None

    def _locks(self) -> _LoopLocks:
        loop = asyncio.get_running_loop()
        if self._loop_locks is None or self._loop_locks.loop is not loop:
            self._loop_locks = _LoopLocks(loop, asyncio.Lock(), asyncio.Lock())
        return self._loop_locks

    def index_lock(self) -> asyncio.Lock:
        """Held around every read-modify-write of ``index.json`` by this process."""
        return self._locks().index

    async def ensure_writer(self, timeout: float) -> None:
        """``become_writer`` once (per ``release``), however many coroutines ask at the same time."""
        if self.is_writer():
            return
        async with self._locks().writer:
            if not self.is_writer():
                await asyncio.to_thread(self.become_writer, timeout)

    def is_writer(self) -> bool:
        """True once ``become_writer`` finished (lock held AND layout prepared), until ``release``."""
        return self._writer and self.lock.held()

    def release(self) -> None:
        self._writer = False
        self.lock.release()

    @property
    def index_path(self) -> Path:
        return self.root / "index.json"

    def problem(self) -> str | None:
        """None when the directory is an OCI layout, or absent, or holds only what an interrupted
        creation leaves; else why it is not an archive."""
        if (self.root / "oci-layout").exists() or not self.root.exists():
            return None
        if not self.root.is_dir():
            return f"{self.root} is not a directory"
        foreign = sorted(set(os.listdir(self.root)) - {PRIVATE_DIR, "blobs", "index.json"})
        if foreign:
            return f"{self.root} is not an OCI image layout (no oci-layout file; holds {', '.join(foreign[:3])})"
        return None

    def read_index(self) -> LayoutIndex:
        """``index.json`` as it is now; an empty index while the layout does not exist (yet)."""
        with os_errors(self.name, "reading index.json"):
            try:
                status = os.stat(self.index_path)
            except FileNotFoundError:
                problem = self.problem()
                if problem is not None:
                    raise ArchiveError(f"{self.name}: {problem}") from None
                return LayoutIndex()
            stamp = (status.st_ino, status.st_size, status.st_mtime_ns)
            cached = self._cached
            if cached is not None and cached[0] == stamp:
                return cached[1]
            try:
                index = LayoutIndex.parse(read_limited(self.index_path, MAX_INDEX_BYTES))
            except (ContentMismatch, ValueError) as exc:
                raise ArchiveError(f"{self.name}: {self.index_path} is not a valid OCI image index: {exc}") from None
        self._cached = (stamp, index)
        return index

    def write_index(self, index: LayoutIndex) -> None:
        """Replace ``index.json`` atomically (under the writer lock)."""
        with os_errors(self.name, "writing index.json (the previous version is intact)"):
            replace_file(self.root, self.index_path, index.to_bytes())
            status = os.stat(self.index_path)
        self._cached = ((status.st_ino, status.st_size, status.st_mtime_ns), index)

    def absent_children(self, needed: Iterable[Descriptor]) -> list[str]:
        """What is wrong with the blobs ``needed`` (absent, or of another size than their descriptor)."""
        found = []
        with os_errors(self.name, "checking blobs"):
            for child in needed:
                try:
                    size = os.stat(blob_path(self.root, child.digest)).st_size
                except FileNotFoundError:
                    found.append(f"{child.digest} is not in the archive")
                    continue
                if size != child.size:
                    found.append(f"{child.digest} has {size} bytes, the manifest says {child.size}")
        return found

    def become_writer(self, timeout: float) -> None:
        """Take the writer lock (waiting up to ``timeout`` s), then create or check the layout files and
        remove the temporary files killed writers left."""
        try:
            with os_errors(self.name, "taking the writer lock"):
                self.lock.acquire(timeout)
        except LockBusy as exc:
            raise ArchiveError(
                f"{self.name}: another writer holds the archive ({exc.holder}); waited {timeout:g} s. "
                "Let it finish (or stop it), then run again"
            ) from None
        try:
            with os_errors(self.name, "preparing the layout for writing"):
                self._prepare()
        except BaseException:
            self.lock.release()
            raise
        self._writer = True  # only now: _prepare removes temporary files, so no write may start before

    def _prepare(self) -> None:
        problem = self.problem()
        if problem is not None:
            raise ArchiveError(f"{self.name}: {problem}; refusing to write into it")
        layout_file = self.root / "oci-layout"
        if layout_file.exists():
            try:
                version = json.loads(layout_file.read_bytes()).get("imageLayoutVersion")
            except (ValueError, AttributeError):
                version = None
            if not isinstance(version, str) or not version.startswith("1."):
                raise ArchiveError(f"{self.name}: {layout_file} names layout version {version!r}, not 1.x")
        else:
            replace_file(self.root, layout_file, json.dumps({"imageLayoutVersion": LAYOUT_VERSION}).encode())
        if not self.index_path.exists():
            replace_file(self.root, self.index_path, LayoutIndex().to_bytes())
        (self.root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        remove_stale_temps(self.root)
