"""Verification of archived images, and the walk of an entry's tree that garbage collection shares.

``TreeWalker`` follows each entry from its top manifest down (index -> child manifests -> config and
layers), checking every blob once however many entries share it: a manifest is read whole, checked
against its digest and size and parsed; a config or layer is re-hashed from disk (``rehash=True``, what
``verify`` does) or only checked for presence and size (``rehash=False``, enough for garbage collection).
What it finds is data (``VerifyProblem`` per blob, ``EntryVerification`` per entry, ``VerifyReport`` for
the layout), never an exception: a damaged archive is a finding to report, not a crash.

This module only reads: it never repairs, moves or deletes anything.
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from reconciler.archive.files import ContentMismatch, blob_path, describe_os_error, hash_file, read_limited
from reconciler.model.digest import Digest, DigestVerifier
from reconciler.model.manifest import (
    MAX_MANIFEST_BYTES,
    Descriptor,
    InvalidManifestError,
    Manifest,
    parse_manifest,
)

ProblemKind = Literal["missing-entry", "wrong-digest", "missing", "corrupt", "unreadable", "invalid-manifest"]
MAX_DEPTH = 8
"""Index nesting deeper than this is refused (real images nest one level: index -> manifests)."""


@dataclass(frozen=True, slots=True)
class VerifyProblem:
    """What is wrong with one blob of an entry (or with the entry itself: ``missing-entry``,
    ``wrong-digest``). ``manifest`` is True when the blob is a manifest, whose children are then unknown."""

    kind: ProblemKind
    detail: str
    digest: Digest | None = None
    path: str | None = None
    manifest: bool = False

    def __str__(self) -> str:
        what = f"{self.digest}: " if self.digest else ""
        where = f" ({self.path})" if self.path else ""
        return f"{what}{self.kind}: {self.detail}{where}"


@dataclass(frozen=True, slots=True)
class EntryVerification:
    """The verdict on one entry: every blob of its tree present and hashing to its digest, or not."""

    name: str
    digest: Digest | None
    blobs_checked: int = 0
    bytes_checked: int = 0
    problems: tuple[VerifyProblem, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems

    def __str__(self) -> str:
        if self.ok:
            return f"{self.name}: ok ({self.blobs_checked} blobs, {self.bytes_checked} bytes re-hashed)"
        return f"{self.name}: " + "; ".join(str(problem) for problem in self.problems)


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """``verify()`` of a whole layout: one ``EntryVerification`` per entry, plus problems of the layout
    itself (``oci-layout`` or ``index.json`` unreadable). ``ok`` only when there are none at all."""

    layout: str
    entries: tuple[EntryVerification, ...] = ()
    layout_problems: tuple[str, ...] = ()
    unreferenced_blobs: int = 0
    """Blobs no entry needs (left by removals or interrupted copies): garbage, not a problem."""

    @property
    def ok(self) -> bool:
        return not self.layout_problems and all(entry.ok for entry in self.entries)

    @property
    def failed(self) -> tuple[EntryVerification, ...]:
        return tuple(entry for entry in self.entries if not entry.ok)

    def summary(self) -> str:
        lines = [f"{self.layout}: {problem}" for problem in self.layout_problems]
        lines += [str(entry) for entry in self.failed]
        verdict = "ok" if self.ok else f"{len(self.failed)} of {len(self.entries)} entries failed"
        lines.append(f"{self.layout}: {len(self.entries)} entries verified, {verdict}")
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class _Checked:
    problem: VerifyProblem | None
    manifest: Manifest | None
    size: int


class TreeWalker:
    """Checks the trees of entries, each blob once, at most ``parallel`` blob checks at a time.

    ``reachable`` collects every digest the walked trees name (present or not): what garbage
    collection must keep."""

    def __init__(self, root: Path, *, rehash: bool, parallel: int = 4) -> None:
        self._root = root
        self._rehash = rehash
        self._slots = asyncio.Semaphore(max(parallel, 1))
        self._checked: dict[tuple[Digest, int, bool], asyncio.Task[_Checked]] = {}
        self.reachable: set[Digest] = set()

    async def entry(self, name: str, descriptor: Descriptor) -> EntryVerification:
        """Walk the tree under ``descriptor`` (a top manifest) and say what is wrong with it."""
        problems: dict[Digest, VerifyProblem] = {}
        counted: set[Digest] = set()
        totals = [0, 0]

        async def visit(node: Descriptor, is_manifest: bool, depth: int) -> None:
            self.reachable.add(node.digest)
            if depth > MAX_DEPTH:
                problems[node.digest] = VerifyProblem(
                    "invalid-manifest", f"index nesting deeper than {MAX_DEPTH}", node.digest, manifest=True
                )
                return
            checked = await self._check(node, is_manifest)
            if checked.problem is not None:
                problems.setdefault(node.digest, checked.problem)
            elif node.digest not in counted:
                counted.add(node.digest)
                totals[0] += 1
                totals[1] += checked.size
            manifest = checked.manifest
            if manifest is None:
                return
            await asyncio.gather(*(visit(child, is_manifest, depth + 1) for child, is_manifest in manifest.children))

        await visit(descriptor, True, 0)
        return EntryVerification(
            name=name,
            digest=descriptor.digest,
            blobs_checked=totals[0],
            bytes_checked=totals[1],
            problems=tuple(problems.values()),
        )

    def _check(self, node: Descriptor, is_manifest: bool) -> asyncio.Task[_Checked]:
        key = (node.digest, node.size, is_manifest)
        task = self._checked.get(key)
        if task is None:
            task = asyncio.ensure_future(self._check_bounded(node, is_manifest))
            self._checked[key] = task
        return task

    async def _check_bounded(self, node: Descriptor, is_manifest: bool) -> _Checked:
        async with self._slots:
            return await asyncio.to_thread(self._check_blob, node, is_manifest)

    def _check_blob(self, node: Descriptor, is_manifest: bool) -> _Checked:
        digest, size = node.digest, node.size
        path = blob_path(self._root, digest)

        def problem(kind: ProblemKind, detail: str) -> _Checked:
            return _Checked(VerifyProblem(kind, detail, digest, str(path), is_manifest), None, size)

        try:
            if is_manifest:
                raw = read_limited(path, MAX_MANIFEST_BYTES)
                mismatch = DigestVerifier.check(raw, digest, size)
                if mismatch is not None:
                    return problem("corrupt", mismatch)
                try:
                    parsed = parse_manifest(raw, node.media_type, digest=digest)
                except InvalidManifestError as exc:
                    return problem("invalid-manifest", str(exc))
                return _Checked(None, parsed, size)
            if self._rehash:
                mismatch = hash_file(path, digest, size)
            else:
                actual = os.stat(path).st_size
                mismatch = None if actual == size else f"{actual} bytes on disk, the descriptor says {size}"
            return problem("corrupt", mismatch) if mismatch is not None else _Checked(None, None, size)
        except FileNotFoundError:
            return problem("missing", "no such blob in the layout")
        except ContentMismatch as exc:
            return problem("invalid-manifest", f"manifest of {exc.detail}")
        except OSError as exc:
            return problem("unreadable", describe_os_error(exc))
