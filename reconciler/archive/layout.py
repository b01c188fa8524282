"""``OciLayout``: the archive store, an OCI image layout directory that implements ``ImageStore``.

On disk it is a plain OCI image layout (``oci-layout``, ``index.json``, ``blobs/<alg>/<hex>``) that
skopeo, crane or oras read as is, plus a private ``.reconciler/`` directory (writer lock, temporary files).
Every repository shares one blob pool, so ``mount_blob`` is "the blob is there" and ``key`` names the
directory. Manifests are blobs too. Writing a manifest under a TAG adds an ``index.json`` entry named
``<repository>:<tag>``; writing it under its digest stores the blob only. ``add_entry`` names a complete
image with provenance annotations (the engine calls it after copying by digest).

Guarantees (docs/archive.md has the details):

* a blob lands under its final name only complete, verified (digest and size) and fsync-ed; an entry
  is written only when every blob and child manifest below it is present; ``index.json`` is replaced
  atomically. A process killed at any moment leaves a layout ``verify`` accepts;
* one writer at a time: the first write takes an exclusive ``flock`` held until ``close()``; a second
  writer waits up to ``lock_timeout`` seconds, then fails with an ``ArchiveError`` naming the holder.
  Readers take no lock (a read-only mount of the archive reads fine);
* reads are verified: ``get_manifest``/``get_blob`` check the digest, ``stream_blob`` raises
  ``DigestMismatchError`` at its end instead of finishing on corrupt bytes;
* an archived image is never replaced silently: an entry name that already holds another digest is
  refused unless the caller asks for ``replace``.

It never talks to a registry, never deletes a blob an entry needs, and never writes outside its directory.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, TypeVar

from reconciler.archive.directory import LayoutDirectory
from reconciler.archive.files import (
    ContentMismatch,
    blob_path,
    holds_exactly,
    os_errors,
    read_limited,
)
from reconciler.archive.index import (
    ARCHIVED_AT,
    ArchiveEntry,
    LayoutIndex,
    entry_name,
    is_valid_entry_name,
    utc_timestamp,
)
from reconciler.archive.maintenance import GarbageReport, collect_garbage, verify_entry, verify_layout
from reconciler.archive.streams import open_blob, write_blob
from reconciler.archive.verify import EntryVerification, TreeWalker, VerifyReport
from reconciler.errors import (
    ArchiveError,
    DigestMismatchError,
    NotFoundError,
    RegistryError,
    UnsupportedManifestError,
)
from reconciler.model.digest import Digest, DigestVerifier, is_valid_digest
from reconciler.model.manifest import (
    MAX_MANIFEST_BYTES,
    Descriptor,
    InvalidManifestError,
    Manifest,
    digest_of,
    parse_manifest,
)
from reconciler.model.store import BlobOpener, ByteProgress, UploadOutcome

if TYPE_CHECKING:
    from reconciler.model.store import ImageStore

_Failure = TypeVar("_Failure", bound=RegistryError)

DEFAULT_LOCK_TIMEOUT = 60.0
"""Seconds a second writer waits for the layout's lock before it gives up with an ``ArchiveError``."""
DEFAULT_VERIFY_PARALLEL = min(4, os.cpu_count() or 1)


class OciLayout:
    """An OCI image layout directory as an ``ImageStore`` and an archive (see the module docstring).

    Nothing touches the disk until the first call; the directory and its layout files are created by
    the first write. Use ``async with OciLayout(path) as archive:`` (or call ``close()``) so the writer
    lock is released as soon as the writing is done."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        name: str | None = None,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
        verify_parallel: int = DEFAULT_VERIFY_PARALLEL,
    ) -> None:
        self._root = Path(os.path.abspath(path))
        self._name = name or f"archive {self._root}"
        self._directory = LayoutDirectory(self._root, self._name)
        self._lock_timeout = lock_timeout
        self._verify_parallel = max(verify_parallel, 1)
        self._session_blobs: set[Digest] = set()
        """Blobs this writer wrote or found present: garbage collection keeps them (a copy in flight)."""

    def __repr__(self) -> str:
        return f"OciLayout({str(self._root)!r})"

    @property
    def path(self) -> Path:
        return self._root

    @property
    def key(self) -> str:
        return f"oci-layout:{self._root}"

    @property
    def name(self) -> str:
        return self._name

    async def __aenter__(self) -> OciLayout:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Release the writer lock (if this object took it). The object can be used again afterwards."""
        self._directory.release()
        self._session_blobs.clear()

    # ------------------------------------------------------------------ reading

    async def head_manifest(self, repository: str, reference: str) -> Descriptor | None:
        """The descriptor of the entry ``<repository>:<reference>`` or of the manifest blob ``reference``;
        None when absent, or when its manifest blob is missing or corrupt (writing it again repairs it)."""
        try:
            manifest = await self.get_manifest(repository, reference)
        except (NotFoundError, DigestMismatchError, UnsupportedManifestError):
            return None
        return manifest.descriptor

    async def get_manifest(self, repository: str, reference: str) -> Manifest:
        if is_valid_digest(reference):
            digest, media_type, size = Digest(reference), None, None
        else:
            name = self._name_of(repository, reference)
            entry = (await self.index()).find(name)
            if entry is None:
                raise NotFoundError(f"no entry {name} in the archive", registry=self._name, repository=repository)
            digest, media_type, size = entry.digest, entry.media_type, entry.descriptor.size
        path = blob_path(self._root, digest)
        with os_errors(self._name, f"reading manifest {digest} of {repository}"):
            try:
                raw = await asyncio.to_thread(read_limited, path, MAX_MANIFEST_BYTES)
            except FileNotFoundError:
                raise self._error(NotFoundError, "manifest not in the archive", repository, digest) from None
            except ContentMismatch as exc:
                raise self._error(UnsupportedManifestError, f"manifest of {exc.detail}", repository, digest) from None
        mismatch = DigestVerifier.check(raw, digest, size)
        if mismatch is not None:
            raise self._error(DigestMismatchError, f"manifest file {path} is corrupt: {mismatch}", repository, digest)
        try:
            return parse_manifest(raw, media_type, digest=digest)
        except InvalidManifestError as exc:
            if exc.unsupported:
                raise self._error(UnsupportedManifestError, str(exc), repository, digest) from None
            raise ArchiveError(f"{self._name}: {path} is not a valid manifest: {exc}") from None

    async def list_tags(self, repository: str) -> list[str]:
        return (await self.index()).tags(repository)

    async def blob_exists(self, repository: str, digest: str) -> bool:
        checked = Digest(digest)
        with os_errors(self._name, f"looking for blob {checked}"):
            present = await asyncio.to_thread(blob_path(self._root, checked).is_file)
        if present and self._directory.is_writer():
            self._session_blobs.add(checked)
        return present

    @asynccontextmanager
    async def stream_blob(self, repository: str, digest: str) -> AsyncIterator[AsyncIterator[bytes]]:
        """The blob's bytes in bounded blocks, hashed as they pass; ``DigestMismatchError`` at the end
        (instead of finishing) when they are not the content ``digest`` names."""
        checked = Digest(digest)
        path = blob_path(self._root, checked)
        with os_errors(self._name, f"opening blob {checked} of {repository}"):
            try:
                reader = await open_blob(path, checked, None)
            except FileNotFoundError:
                raise self._error(NotFoundError, "blob not in the archive", repository, checked) from None

        async def chunks() -> AsyncIterator[bytes]:
            try:
                with os_errors(self._name, f"reading blob {checked} of {repository} ({path})"):
                    async for block in reader:
                        yield block
            except ContentMismatch as exc:
                raise self._error(
                    DigestMismatchError, f"blob file {path} is corrupt: {exc.detail}", repository, checked
                ) from None

        try:
            yield chunks()
        finally:
            await reader.aclose()

    async def get_blob(self, repository: str, digest: str, *, max_bytes: int) -> bytes:
        checked = Digest(digest)
        path = blob_path(self._root, checked)
        with os_errors(self._name, f"reading blob {checked} of {repository}"):
            try:
                content = await asyncio.to_thread(read_limited, path, max_bytes)
            except FileNotFoundError:
                raise self._error(NotFoundError, "blob not in the archive", repository, checked) from None
            except ContentMismatch as exc:
                raise ArchiveError(f"{self._name}: blob {checked} of {exc.detail}; stream it instead") from None
        mismatch = DigestVerifier.check(content, checked)
        if mismatch is not None:
            raise self._error(DigestMismatchError, f"blob file {path} is corrupt: {mismatch}", repository, checked)
        return content

    async def index(self) -> LayoutIndex:
        """``index.json`` as it is now (an empty index while the layout does not exist yet)."""
        return await asyncio.to_thread(self._directory.read_index)

    async def entries(self) -> list[ArchiveEntry]:
        """Every entry, in ``index.json`` order (entries without a name, written by other tools, too)."""
        return list((await self.index()).entries)

    async def entry(self, name: str) -> ArchiveEntry | None:
        return (await self.index()).find(name)

    def layout_problem(self) -> str | None:
        """Blocking. Why the directory is not an archive; None when it is one (or does not exist yet)."""
        return self._directory.problem()

    # ------------------------------------------------------------------ writing

    async def upload_blob(
        self,
        repository: str,
        digest: str,
        content: bytes | BlobOpener,
        *,
        size: int | None = None,
        mount_from: str | None = None,
        progress: ByteProgress | None = None,
        verify: bool = True,
    ) -> UploadOutcome:
        """Write blob ``digest`` from ``content`` (bytes, or an opener of a stream), renamed into place only
        when complete: a blob that does not match its digest (or ``size``) never lands. With ``verify``
        (the default) the bytes are hashed here; ``verify=False`` is the copier's word that its source
        hashes them and fails before finishing (the ImageStore contract), so only the size is checked.
        Either way ``verify_entry`` re-hashes what is on disk. With ``mount_from`` a blob already in the
        pool is "mounted" (nothing written)."""
        checked = Digest(digest)
        if mount_from is not None and await self.blob_exists(repository, checked):
            return "mounted"
        await self._become_writer()
        self._session_blobs.add(checked)
        what = f"writing blob {checked} of {repository}"
        try:
            with os_errors(self._name, what):
                if isinstance(content, bytes):
                    if size is not None and size >= 0 and size != len(content):
                        raise ContentMismatch(f"{len(content)} bytes given, the descriptor says {size}")
                    single = _single(content)
                    await write_blob(self._root, checked, single, size=len(content), verify=verify, progress=progress)
                else:
                    async with content() as chunks:
                        await write_blob(self._root, checked, chunks, size=size, verify=verify, progress=progress)
        except ContentMismatch as exc:
            raise self._error(DigestMismatchError, f"{exc.detail}; nothing was written", repository, checked) from None
        return "uploaded"

    async def mount_blob(self, repository: str, digest: str, from_repository: str) -> bool:
        """One blob pool serves every repository: "mounted" exactly when the blob is already there."""
        return await self.blob_exists(repository, digest)

    async def put_manifest(self, repository: str, reference: str, raw: bytes, media_type: str) -> Digest:
        """Store manifest ``raw`` as a blob; under a tag, also name it ``<repository>:<tag>`` in
        ``index.json`` (with an ``io.reconciler.archived-at`` annotation). Refused unless every blob or
        child manifest it names is already in the layout, and when the name holds another image."""
        if is_valid_digest(reference):
            expected = Digest(reference)
            digest = digest_of(raw, expected.algorithm)
            if digest != expected:
                raise self._error(
                    DigestMismatchError,
                    f"refusing to store a manifest whose bytes hash to {digest}",
                    repository,
                    expected,
                )
            name = None
        else:
            digest = digest_of(raw)
            name = self._name_of(repository, reference)
        try:
            manifest = parse_manifest(raw, media_type, digest=digest)
        except InvalidManifestError as exc:
            if exc.unsupported:
                raise self._error(UnsupportedManifestError, str(exc), repository, digest) from None
            raise ArchiveError(f"{self._name}: refusing manifest {digest} of {repository}: {exc}") from None
        await self._become_writer()
        await self._require_children(manifest, name or f"{repository}@{digest}")
        await self._store_manifest(manifest, repository)
        if name is not None:
            await self._put_entry(ArchiveEntry.create(name, manifest.descriptor, {}), replace=False, update=False)
        return digest

    async def add_entry(
        self,
        name: str,
        digest: str,
        *,
        annotations: Mapping[str, str] | None = None,
        replace: bool = False,
    ) -> ArchiveEntry:
        """Name the image ``digest`` (already stored, e.g. by a copy without a tag) ``name`` in
        ``index.json``, with ``annotations`` (see ``index.provenance``). The whole tree must be present
        (checked: every manifest verified, every blob present with its size). Adding the same image
        again updates the annotations; a name that holds another image is refused unless ``replace``."""
        if not is_valid_entry_name(name):
            raise ArchiveError(f"{self._name}: {name!r} is not a valid OCI layout reference name")
        manifest = await self.get_manifest(name, str(Digest(digest)))
        await self._become_writer()
        checked = await TreeWalker(self._root, rehash=False).entry(name, manifest.descriptor)
        if not checked.ok:
            raise ArchiveError(f"{self._name}: cannot add entry {name}: its image is incomplete: {checked}")
        entry = ArchiveEntry.create(name, manifest.descriptor, dict(annotations or {}))
        return await self._put_entry(entry, replace=replace, update=True)

    async def remove_entries(self, names: Iterable[str]) -> list[str]:
        """Remove the named entries from ``index.json`` (one atomic rewrite); return those that were there.
        Blobs stay until ``collect_garbage``: index first, blobs after, so a crash never leaves an entry
        whose blobs are gone."""
        wanted = list(names)
        await self._become_writer()
        async with self._directory.index_lock():
            index, removed = (await self.index()).without(wanted)
            if removed:
                await self._write_index(index)
        return removed

    async def collect_garbage(self) -> GarbageReport:
        """Delete every blob no entry needs (blobs this writer wrote or found in this session excepted: a
        copy in flight). Refused, deleting nothing, when an entry's manifests cannot be read (then which
        blobs it needs is unknown). Destroy = ``remove_entries`` then ``collect_garbage``."""
        await self._become_writer()
        async with self._directory.index_lock():
            return await collect_garbage(self, keep=frozenset(self._session_blobs))

    async def verify(self) -> VerifyReport:
        """Re-hash every blob of every entry; problems are reported per entry, never raised."""
        return await verify_layout(self, parallel=self._verify_parallel)

    async def verify_entry(self, name: str, *, digest: str | None = None) -> EntryVerification:
        """Re-hash every blob of entry ``name`` (and check it names ``digest``, when given): what the
        engine asks before it deletes an archived image from a registry. A result, never raised."""
        return await verify_entry(self, name, digest=digest, parallel=self._verify_parallel)

    # ------------------------------------------------------------------ internals

    def _error(self, kind: type[_Failure], message: str, repository: str, digest: str | None) -> _Failure:
        """A registry-protocol error (what the copier and the engine expect) naming this archive."""
        return kind(message, registry=self._name, repository=repository, digest=digest)

    def _name_of(self, repository: str, tag: str) -> str:
        try:
            return entry_name(repository, tag)
        except ValueError as exc:
            raise ArchiveError(f"{self._name}: {exc}") from None

    async def _write_index(self, index: LayoutIndex) -> None:
        await asyncio.to_thread(self._directory.write_index, index)

    async def _become_writer(self) -> None:
        """Take the writer lock (once per ``close``); the first write also creates the layout."""
        await self._directory.ensure_writer(self._lock_timeout)

    async def _require_children(self, manifest: Manifest, label: str) -> None:
        needed = manifest.manifests if manifest.is_index else manifest.blobs
        absent = await asyncio.to_thread(self._directory.absent_children, needed)
        if absent:
            more = f" (and {len(absent) - 3} more)" if len(absent) > 3 else ""
            raise ArchiveError(
                f"{self._name}: refusing to write {label} before what it names: {'; '.join(absent[:3])}{more}"
            )

    async def _store_manifest(self, manifest: Manifest, repository: str) -> None:
        path = blob_path(self._root, manifest.digest)
        with os_errors(self._name, f"writing manifest {manifest.digest} of {repository}"):
            if not await asyncio.to_thread(holds_exactly, path, manifest.raw):  # a damaged copy is rewritten
                await write_blob(self._root, manifest.digest, _single(manifest.raw), size=len(manifest.raw))
        self._session_blobs.add(manifest.digest)

    async def _put_entry(self, entry: ArchiveEntry, *, replace: bool, update: bool) -> ArchiveEntry:
        """Write ``entry`` into ``index.json``; a new entry is stamped ``archived-at`` now (unless given),
        an entry already naming the same image keeps its stamp and takes the new annotations (``update``)."""
        name = entry.name
        assert name is not None
        async with self._directory.index_lock():
            index = await self.index()
            existing = index.find(name)
            if existing is not None and existing.digest != entry.digest and not replace:
                raise ArchiveError(
                    f"{self._name}: entry {name} already holds {existing.digest}, not {entry.digest}; "
                    "an archived image is never replaced silently (remove the entry first)"
                )
            if existing is not None and existing.digest == entry.digest:
                if not update:
                    return existing
                merged = {**existing.annotations, **entry.annotations}
                if merged == dict(existing.annotations):
                    return existing
                entry = ArchiveEntry.create(name, entry.descriptor, merged)
            elif ARCHIVED_AT not in entry.annotations:
                entry = ArchiveEntry.create(name, entry.descriptor, {ARCHIVED_AT: utc_timestamp(), **entry.annotations})
            await self._write_index(index.with_entry(entry))
        return entry


async def _single(content: bytes) -> AsyncIterator[bytes]:
    yield content


if TYPE_CHECKING:

    def _is_an_image_store(layout: OciLayout) -> ImageStore:
        return layout  # mypy checks that OciLayout keeps the ImageStore protocol
