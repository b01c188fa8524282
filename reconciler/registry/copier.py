"""The copy engine: copy an image (all platforms) by digest between any two image stores.

A registry and an OCI layout (the archive) are both image stores (``ImageStore``), so this one engine
serves copy, promotion, archive, restore and export (regclient's ``scheme`` model).

Order is what makes a copy crash-safe: every blob of an image manifest is in the target before that
manifest is written, every child manifest before its index, and the tag is written LAST (by putting the
top manifest under the tag, which stores it and points the tag at it in one request). So a process
killed at any moment leaves at worst unreferenced blobs or untagged manifests, never a tag that points
at an incomplete image; running the copy again completes it.

For each blob, the cheapest way wins: already known present (no request); a cross-repository mount
when source and target are the same registry, or when this copier already put the blob in another
repository of the target registry; a HEAD that finds it present; else a stream from source to target
(hashed on the way; a blob whose bytes do not match its digest is never completed in the target).
A ``Copier`` shares all of this across the copies it runs concurrently: a blob needed by ten images is
transferred once while the other nine wait for it.

Failures are one error per copy, never an exception group: when concurrent blob or child transfers fail,
the first failure (a ``ReconcilerError`` naming store, repository and digest) is what the copy raises, and
the other transfers are cancelled. A source that sends more bytes than its descriptor says is stopped at
that byte and blamed (the target's upload session is cancelled, nothing lands).

A copy never deletes anything and never moves a tag it was not asked to write.

``before_tag`` (an argument of ``Copier.copy``) is the one extension point: an awaitable called with the
top manifest once every blob and child manifest is in the target, just before the top manifest is written
under its tag (or digest). The engine copies an image's referrers (signatures, SBOMs:
``reconciler.registry.referrercopy.ReferrersCopy``) there, so they are in the target before the tag is. It
is not called when the target already holds the image (nothing is written then), and a failure in it
fails the copy before the tag is written.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from reconciler.errors import DigestMismatchError, ReconcilerError, RegistryError
from reconciler.model.digest import Digest, is_valid_digest
from reconciler.model.manifest import Descriptor, Manifest
from reconciler.model.store import BlobOpener, BlobOutcome, CopyProgress, ImageStore

DEFAULT_PARALLEL_BLOBS = 8
SMALL_BLOB_BYTES = 256 * 1024
"""Blobs up to this size are read whole before they are sent (at most one per blob slot in memory)."""


ImageSource = ImageStore
"""Kept for the callers that name the source side: any ``ImageStore``."""
BeforeTag = Callable[[Manifest], Awaitable[None]]
"""``Copier.copy(before_tag=...)``: called with the top manifest after its blobs and children are in the
target and before it is written under its tag (see the module docstring)."""


@dataclass(slots=True)
class CopyReport:
    """What one copy did. ``already_present`` is True when the target already had the image under the
    requested tag (or digest) and nothing was written."""

    source: str
    target: str
    digest: Digest
    media_type: str
    tag: str | None = None
    already_present: bool = False
    manifests_written: int = 0
    blobs_copied: int = 0
    blobs_mounted: int = 0
    blobs_skipped: int = 0
    bytes_copied: int = 0
    platforms: list[str] = field(default_factory=list)

    def count(self, outcome: BlobOutcome, size: int) -> None:
        if outcome == "copied":
            self.blobs_copied += 1
            self.bytes_copied += max(size, 0)
        elif outcome == "mounted":
            self.blobs_mounted += 1
        else:
            self.blobs_skipped += 1


class Copier:
    """Copies images; share one instance between concurrent copies so blobs are deduplicated.

    ``max_parallel_blobs`` bounds the blob transfers (and mounts and HEADs) in flight across all copies
    of this copier; each client additionally bounds requests per registry (a transfer inside one registry
    reads and writes it under a single request slot, so any combination of the two is deadlock-free).
    ``check_blobs=False`` skips the HEAD before each blob transfer: fewer requests when the target is known
    to be empty, at the price of re-sending blobs it already has."""

    def __init__(
        self,
        *,
        max_parallel_blobs: int = DEFAULT_PARALLEL_BLOBS,
        progress: CopyProgress | None = None,
        check_blobs: bool = True,
    ) -> None:
        if max_parallel_blobs < 1:
            raise ValueError("max_parallel_blobs must be at least 1")
        self._blob_slots = asyncio.Semaphore(max_parallel_blobs)
        self._progress = progress
        self._check_blobs = check_blobs
        self._inflight: dict[tuple[str, str, str], asyncio.Task[BlobOutcome]] = {}
        self._present: dict[tuple[str, str], set[str]] = {}
        """(target registry key, digest) -> repositories of that registry known to hold the blob."""

    def _known(self, registry: str, digest: str) -> set[str]:
        return self._present.setdefault((registry, digest), set())

    async def copy(
        self,
        *,
        source: ImageSource,
        source_repository: str,
        reference: str,
        target: ImageStore,
        target_repository: str,
        tag: str | None = None,
        source_manifest: Manifest | None = None,
        check_target: bool = True,
        check_blobs: bool | None = None,
        before_tag: BeforeTag | None = None,
        held: SourceContent | None = None,
    ) -> CopyReport:
        """Copy the image ``reference`` (a digest, or a tag resolved once at the start) of
        ``source_repository`` to ``target_repository``, then point ``tag`` at it (when given).

        ``source_manifest`` saves the GET when the caller already holds the manifest. With
        ``check_target`` (default) one HEAD on the target first: when the tag (or the digest, without a
        tag) already names this image, nothing else is done. ``check_blobs`` overrides the copier's
        setting for this copy (False: no HEAD before uploading a blob, for targets known to be empty).
        ``before_tag`` is awaited with the top manifest after every blob and child manifest is in the target
        and before the top manifest is written (not at all when the target already has the image). ``held``
        hands over manifests (the top one, by digest, and its children) and small blobs the caller already
        read from the source."""
        digest = Digest(reference) if is_valid_digest(reference) else None
        if source_manifest is not None:
            digest = source_manifest.digest
        target_ref = tag or (str(digest) if digest is not None else None)
        report_target = f"{target.name}/{target_repository}" + (f":{tag}" if tag else "")
        if check_target and digest is not None and target_ref is not None:
            present = await target.head_manifest(target_repository, target_ref)
            if present is not None and present.digest == digest:
                return CopyReport(
                    source=f"{source.name}/{source_repository}@{digest}",
                    target=report_target,
                    digest=digest,
                    media_type=present.media_type,
                    tag=tag,
                    already_present=True,
                )
            check_target = False
        if source_manifest is None and held is not None and digest is not None:
            source_manifest = held.manifest(str(digest))  # the caller may have read the top one too
        manifest = source_manifest or await source.get_manifest(source_repository, reference)
        if digest is not None and manifest.digest != digest:
            raise RegistryError(
                f"source returned manifest {manifest.digest} for {digest}",
                registry=source.name,
                repository=source_repository,
                digest=digest,
            )
        report = CopyReport(
            source=f"{source.name}/{source_repository}@{manifest.digest}",
            target=report_target,
            digest=manifest.digest,
            media_type=manifest.media_type,
            tag=tag,
        )
        if check_target and tag is not None:
            present = await target.head_manifest(target_repository, tag)
            if present is not None and present.digest == manifest.digest:
                report.already_present = True
                return report
        job = _Job(
            source=source,
            source_repository=source_repository,
            target=target,
            target_repository=target_repository,
            report=report,
            check_blobs=self._check_blobs if check_blobs is None else check_blobs,
            held=held,
        )
        await self._copy_manifest(job, manifest, tag, before_put=before_tag)
        return report

    async def _copy_manifest(
        self, job: _Job, manifest: Manifest, tag: str | None, *, before_put: BeforeTag | None = None
    ) -> None:
        if manifest.is_index:

            async def child(descriptor: Descriptor) -> None:
                known = job.held.manifest(str(descriptor.digest)) if job.held is not None else None
                child_manifest = known or await job.source.get_manifest(job.source_repository, str(descriptor.digest))
                if descriptor.platform is not None:
                    job.report.platforms.append(str(descriptor.platform))
                await self._copy_manifest(job, child_manifest, None)

            await all_or_first_error([child(descriptor) for descriptor in manifest.manifests])
        else:
            await all_or_first_error([self._blob(job, blob) for blob in manifest.blobs])
        # Children and blobs are all in place. The caller's before_tag step (referrers) runs now, so that what
        # it writes is in the target before the tag is; only the top manifest is given one.
        if before_put is not None:
            await before_put(manifest)
        # Now the manifest itself, under the tag when this is the top.
        await job.target.put_manifest(
            job.target_repository, tag or str(manifest.digest), manifest.raw, manifest.media_type
        )
        job.report.manifests_written += 1

    async def _blob(self, job: _Job, blob: Descriptor) -> None:
        digest = str(blob.digest)
        if job.target_repository in self._known(job.target.key, digest):
            job.report.count("skipped", blob.size)
            return
        key = (job.target.key, job.target_repository, digest)
        task = self._inflight.get(key)
        if task is not None:
            await asyncio.shield(task)
            job.report.count("skipped", blob.size)
            return
        task = asyncio.ensure_future(self._transfer(job, blob))
        # Shielded from the caller's cancellation (other copies may wait on it); never leave its error unread.
        task.add_done_callback(lambda done: None if done.cancelled() else done.exception())
        self._inflight[key] = task
        try:
            outcome = await asyncio.shield(task)
        finally:
            if task.done():
                self._inflight.pop(key, None)
        job.report.count(outcome, blob.size)

    async def _transfer(self, job: _Job, blob: Descriptor) -> BlobOutcome:
        digest = str(blob.digest)
        async with self._blob_slots:
            outcome = await self._transfer_unlocked(job, blob)
        self._known(job.target.key, digest).add(job.target_repository)
        if self._progress is not None:
            self._progress.blob_finished(digest, outcome)
        return outcome

    async def _transfer_unlocked(self, job: _Job, blob: Descriptor) -> BlobOutcome:
        digest = str(blob.digest)
        source, target = job.source, job.target
        progress = self._progress
        same_registry = source.key == target.key
        if not same_registry:
            others = self._known(target.key, digest) - {job.target_repository}
            if others and await target.mount_blob(job.target_repository, digest, sorted(others)[0]):
                return "mounted"
            if job.check_blobs and await target.blob_exists(job.target_repository, digest):
                return "skipped"

        def opener() -> AbstractAsyncContextManager[AsyncIterator[bytes]]:
            return _no_longer_than(source, job.source_repository, blob)

        content: bytes | BlobOpener = opener
        if not same_registry and 0 <= blob.size <= SMALL_BLOB_BYTES:
            # A config or a small layer: read whole (verified as it arrives) and sent in one write, which
            # saves the streaming machinery's per-blob cost; larger blobs stream in bounded chunks.
            known = job.held.blob(digest) if job.held is not None else None
            content = (
                known
                if known is not None
                else await source.get_blob(job.source_repository, digest, max_bytes=SMALL_BLOB_BYTES)
            )
            if len(content) != blob.size:
                raise DigestMismatchError(
                    f"source's blob has {len(content)} bytes, its descriptor says {blob.size}; copy aborted",
                    registry=source.name,
                    repository=job.source_repository,
                    digest=digest,
                )

        advanced: Callable[[int], None] | None = None
        if progress is not None:
            progress.blob_started(digest, blob.size)

            def advanced(count: int) -> None:
                progress.blob_advanced(digest, count)

        outcome = await target.upload_blob(
            job.target_repository,
            digest,
            content,
            size=blob.size,
            mount_from=job.source_repository if same_registry else None,
            progress=advanced,
            # Every store verifies what it reads (the ImageStore contract): hashing again here would only
            # double the CPU; the upload still holds its last block back until the source's check passed.
            verify=False,
        )
        return "mounted" if outcome == "mounted" else "copied"


async def all_or_first_error(work: list[Coroutine[Any, Any, None]]) -> None:
    """Run ``work`` concurrently; on the first failure cancel the rest and raise THAT error (not an
    exception group: one copy fails with one cause, which names its store, repository and digest)."""
    try:
        async with asyncio.TaskGroup() as group:
            for item in work:
                group.create_task(item)
    except BaseExceptionGroup as failed:
        raise _first_leaf(failed) from None


def _first_leaf(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first project error in a (nested) exception group, else its first exception of any kind."""
    leaves: list[BaseException] = []

    def walk(node: BaseException) -> None:
        if isinstance(node, BaseExceptionGroup):
            for inner in node.exceptions:
                walk(inner)
        else:
            leaves.append(node)

    walk(group)
    return next((leaf for leaf in leaves if isinstance(leaf, ReconcilerError)), leaves[0])


@asynccontextmanager
async def _no_longer_than(source: ImageStore, repository: str, blob: Descriptor) -> AsyncIterator[AsyncIterator[bytes]]:
    """The source's stream of ``blob``, stopped with an error naming the SOURCE at the first byte beyond the
    descriptor's size (a 5 GiB stream for a 1 KiB descriptor is cut after 1 KiB, not sent to the target)."""
    async with source.stream_blob(repository, str(blob.digest)) as chunks:

        async def bounded() -> AsyncIterator[bytes]:
            received = 0
            async for chunk in chunks:
                received += len(chunk)
                if 0 <= blob.size < received:
                    raise DigestMismatchError(
                        f"source sent more than the {blob.size} bytes its descriptor says; copy aborted",
                        registry=source.name,
                        repository=repository,
                        digest=str(blob.digest),
                    )
                yield chunk

        yield bounded()


@dataclass(frozen=True, slots=True)
class _Job:
    """One copy in progress: where from, where to, and the report it fills."""

    source: ImageSource
    source_repository: str
    target: ImageStore
    target_repository: str
    report: CopyReport
    check_blobs: bool
    held: SourceContent | None = None


@dataclass(frozen=True, slots=True)
class SourceContent:
    """What the caller already read from the source (verified): child manifests and small blobs by digest,
    so a copy does not fetch them again (the gates read an index's platforms and their configs first)."""

    manifest: Callable[[str], Manifest | None]
    blob: Callable[[str], bytes | None]


async def copy_image(
    *,
    source: ImageStore,
    source_repository: str,
    reference: str,
    target: ImageStore,
    target_repository: str,
    tag: str | None = None,
    progress: CopyProgress | None = None,
    check_target: bool = True,
) -> CopyReport:
    """Copy one image with a fresh ``Copier`` (see ``Copier.copy``)."""
    copier = Copier(progress=progress)
    return await copier.copy(
        source=source,
        source_repository=source_repository,
        reference=reference,
        target=target,
        target_repository=target_repository,
        tag=tag,
        check_target=check_target,
    )
