"""Whole-layout upkeep: ``verify`` (every blob of every entry re-hashed) and garbage collection.

Both walk every entry's tree with ``verify.TreeWalker``. Verification reports; it never raises for a
finding and never changes a file. Garbage collection deletes only blob files no entry needs, and only
when every entry's manifests could be read (a manifest that cannot be read hides which blobs it needs,
so nothing is deleted then). Both take a consistent view: ``OciLayout`` runs garbage collection under
its writer lock, after ``remove_entries`` has already rewritten ``index.json`` (index first, blobs after:
a crash in between leaves only unreferenced blobs, which the next collection removes). Temporary files
of killed writers are removed when the next writer takes the lock, not here (this process's own copies
may be writing theirs).

This module never writes an entry, and never deletes a file outside ``blobs/`` and the private temp dir.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from reconciler.archive.files import fsync_directory, os_errors
from reconciler.archive.index import LayoutIndex
from reconciler.archive.verify import EntryVerification, TreeWalker, VerifyProblem, VerifyReport
from reconciler.errors import ArchiveError
from reconciler.model.digest import Digest, is_valid_digest


class IndexedLayout(Protocol):
    """What upkeep needs of an ``OciLayout``: where it is, its name for messages, its current index."""

    @property
    def path(self) -> Path: ...

    @property
    def name(self) -> str: ...

    async def index(self) -> LayoutIndex: ...


@dataclass(frozen=True, slots=True)
class GarbageReport:
    """What ``collect_garbage`` did."""

    blobs_removed: int
    bytes_freed: int
    blobs_kept: int


def _blob_files(root: Path) -> Iterator[tuple[Digest, os.DirEntry[str]]]:
    """Every file under ``blobs/<alg>/`` whose name is a digest (anything else is not ours to judge)."""
    try:
        algorithms = list(os.scandir(root / "blobs"))
    except FileNotFoundError:
        return
    for algorithm in algorithms:
        if not algorithm.is_dir(follow_symlinks=False):
            continue
        with os.scandir(algorithm.path) as found:
            for item in found:
                text = f"{algorithm.name}:{item.name}"
                if is_valid_digest(text) and item.is_file(follow_symlinks=False):
                    yield Digest(text), item


async def _walk_all(
    index: LayoutIndex, root: Path, *, rehash: bool, parallel: int
) -> tuple[TreeWalker, list[EntryVerification]]:
    walker = TreeWalker(root, rehash=rehash, parallel=parallel)
    results = await asyncio.gather(*(walker.entry(entry.label, entry.descriptor) for entry in index.entries))
    return walker, list(results)


async def verify_layout(layout: IndexedLayout, *, parallel: int) -> VerifyReport:
    root = layout.path
    where = str(root)
    if not await asyncio.to_thread(root.is_dir):
        return VerifyReport(where, layout_problems=(f"no archive at {root} (not a directory)",))
    try:
        index = await layout.index()
    except ArchiveError as exc:
        return VerifyReport(where, layout_problems=(str(exc),))
    walker, results = await _walk_all(index, root, rehash=True, parallel=parallel)
    if any(not result.ok for result in results):
        # An entry another process removed (and collected) while we hashed is not a finding.
        current = await layout.index()
        still = {(entry.label, entry.digest) for entry in current.entries}
        results = [result for result in results if result.ok or (result.name, result.digest) in still]

    def unreferenced() -> int:
        return sum(1 for digest, _ in _blob_files(root) if digest not in walker.reachable)

    with os_errors(layout.name, "listing blobs"):
        garbage = await asyncio.to_thread(unreferenced)
    return VerifyReport(where, entries=tuple(results), unreferenced_blobs=garbage)


async def verify_entry(layout: IndexedLayout, name: str, *, digest: str | None, parallel: int) -> EntryVerification:
    expected = Digest(digest) if digest is not None else None
    entry = (await layout.index()).find(name)
    if entry is None:
        problem = VerifyProblem("missing-entry", f"no entry named {name} in {layout.path}", expected)
        return EntryVerification(name, expected, problems=(problem,))
    if expected is not None and entry.digest != expected:
        problem = VerifyProblem("wrong-digest", f"the entry names {entry.digest}, expected {expected}", entry.digest)
        return EntryVerification(name, entry.digest, problems=(problem,))
    return await TreeWalker(layout.path, rehash=True, parallel=parallel).entry(name, entry.descriptor)


async def collect_garbage(layout: IndexedLayout, *, keep: frozenset[Digest]) -> GarbageReport:
    """The caller holds the writer lock (no other process writes) and the index lock (no entry changes)."""
    root = layout.path
    index = await layout.index()
    walker, results = await _walk_all(index, root, rehash=False, parallel=4)
    unknown = [result for result in results if any(problem.manifest for problem in result.problems)]
    if unknown:
        shown = "; ".join(str(result) for result in unknown[:3])
        raise ArchiveError(
            f"{layout.name}: garbage collection refused, nothing deleted: the manifests of {len(unknown)} "
            f"entries cannot be read, so which blobs they need is unknown ({shown}). "
            "Restore those blobs or remove those entries first"
        )
    needed = walker.reachable | keep

    def sweep() -> GarbageReport:
        removed = freed = kept = 0
        touched: set[str] = set()
        for digest, item in list(_blob_files(root)):
            if digest in needed:
                kept += 1
                continue
            size = item.stat(follow_symlinks=False).st_size
            os.unlink(item.path)
            touched.add(os.path.dirname(item.path))
            removed += 1
            freed += size
        for directory in touched:
            fsync_directory(Path(directory))
        return GarbageReport(removed, freed, kept)

    with os_errors(layout.name, "collecting garbage (entries are intact; run it again)"):
        return await asyncio.to_thread(sweep)
