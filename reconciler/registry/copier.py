"""The copy engine: copy an image (all platforms) by digest from one repository to another.

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

A copy never deletes anything and never moves a tag it was not asked to write.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Literal, Protocol

from reconciler.errors import RegistryError
from reconciler.model.digest import Digest, is_valid_digest
from reconciler.model.manifest import Descriptor, Manifest
from reconciler.registry.client import BlobOpener, RegistryClient

BlobOutcome = Literal["copied", "mounted", "skipped"]
DEFAULT_PARALLEL_BLOBS = 8
SMALL_BLOB_BYTES = 256 * 1024
"""Blobs up to this size are read whole before they are sent (at most one per blob slot in memory)."""


class ImageSource(Protocol):
    """Where a copy reads from. ``RegistryClient`` is one; an OCI-layout archive can be another."""

    @property
    def key(self) -> str:
        """Identity of the store: equal keys mean blobs can be mounted between repositories."""
        ...

    @property
    def name(self) -> str: ...

    async def get_manifest(self, repository: str, reference: str) -> Manifest: ...

    def stream_blob(self, repository: str, digest: str) -> AbstractAsyncContextManager[AsyncIterator[bytes]]: ...


class CopyProgress(Protocol):
    """Receives progress of the blobs of a copy (a terminal progress bar, a metrics counter)."""

    def blob_started(self, digest: str, size: int) -> None: ...

    def blob_advanced(self, digest: str, nbytes: int) -> None:
        """``nbytes`` more bytes of ``digest`` were sent (negative when a retry starts over)."""
        ...

    def blob_finished(self, digest: str, outcome: BlobOutcome) -> None: ...


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
        target: RegistryClient,
        target_repository: str,
        tag: str | None = None,
        source_manifest: Manifest | None = None,
        check_target: bool = True,
        check_blobs: bool | None = None,
    ) -> CopyReport:
        """Copy the image ``reference`` (a digest, or a tag resolved once at the start) of
        ``source_repository`` to ``target_repository``, then point ``tag`` at it (when given).

        ``source_manifest`` saves the GET when the caller already holds the manifest. With
        ``check_target`` (default) one HEAD on the target first: when the tag (or the digest, without a
        tag) already names this image, nothing else is done. ``check_blobs`` overrides the copier's
        setting for this copy (False: no HEAD before uploading a blob, for targets known to be empty)."""
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
        )
        await self._copy_manifest(job, manifest, tag)
        return report

    async def _copy_manifest(self, job: _Job, manifest: Manifest, tag: str | None) -> None:
        if manifest.is_index:

            async def child(descriptor: Descriptor) -> None:
                child_manifest = await job.source.get_manifest(job.source_repository, str(descriptor.digest))
                if descriptor.platform is not None:
                    job.report.platforms.append(str(descriptor.platform))
                await self._copy_manifest(job, child_manifest, None)

            async with asyncio.TaskGroup() as group:
                for descriptor in manifest.manifests:
                    group.create_task(child(descriptor))
        else:
            async with asyncio.TaskGroup() as group:
                for blob in manifest.blobs:
                    group.create_task(self._blob(job, blob))
        # Children and blobs are all in place: now the manifest itself, under the tag when this is the top.
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
            return source.stream_blob(job.source_repository, digest)

        content: bytes | BlobOpener = opener
        if not same_registry and 0 <= blob.size <= SMALL_BLOB_BYTES and isinstance(source, RegistryClient):
            # A config or a small layer: read whole (verified as it arrives) and sent in one write, which
            # saves the streaming machinery's per-blob cost; larger blobs stream in bounded chunks.
            content = await source.get_blob(job.source_repository, digest, max_bytes=SMALL_BLOB_BYTES)

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
            # RegistryClient.stream_blob already hashes the source and fails before its last chunk.
            verify=not isinstance(source, RegistryClient),
        )
        return "mounted" if outcome == "mounted" else "copied"


@dataclass(frozen=True, slots=True)
class _Job:
    """One copy in progress: where from, where to, and the report it fills."""

    source: ImageSource
    source_repository: str
    target: RegistryClient
    target_repository: str
    report: CopyReport
    check_blobs: bool


async def copy_image(
    *,
    source: ImageSource,
    source_repository: str,
    reference: str,
    target: RegistryClient,
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
