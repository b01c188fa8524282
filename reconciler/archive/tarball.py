"""Export entries of a layout as an ``oci-archive`` tarball, and import one back.

An ``oci-archive`` is a plain (uncompressed) tar of an OCI image layout: ``oci-layout``, ``index.json``
and ``blobs/<alg>/<hex>``. ``skopeo inspect oci-archive:FILE.tar:<name>`` reads what ``export`` writes.

``export`` writes only the chosen entries and the blobs their trees need, each blob streamed from disk
(flat memory) and re-hashed on the way, into a temporary file beside the target that is fsync-ed and
renamed into place only when complete: a tarball under the target name is always whole and verified.

``import_archive`` treats the tarball as untrusted input. Before anything is written it refuses, with an
``ArchiveError`` naming the tarball and the member: path traversal (absolute names, ``..``), symbolic and
hard links, devices and other non-regular members, duplicate names, blob names that are not digests, an
``index.json`` above ``max_index_bytes``. It never extracts by member name: it reads the index, then copies
each blob the chosen entries need into the layout through ``OciLayout.upload_blob`` (hashed; a blob whose
bytes do not match its name never lands) and names the entries last, so an interrupted import leaves no
entry on an incomplete image.

This module never writes outside the target file's directory and the layout, and never deletes an entry.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import tarfile
import tempfile
from collections.abc import AsyncIterator, Collection, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO

from reconciler.archive.files import BLOCK_BYTES, ContentMismatch, blob_path, fsync_directory, os_errors
from reconciler.archive.index import LAYOUT_VERSION, MAX_INDEX_BYTES, REF_NAME, ArchiveEntry, LayoutIndex
from reconciler.archive.layout import OciLayout
from reconciler.archive.verify import TreeWalker
from reconciler.errors import ArchiveError, DigestMismatchError
from reconciler.model.digest import Digest, DigestVerifier, is_valid_digest
from reconciler.model.manifest import (
    MAX_MANIFEST_BYTES,
    Descriptor,
    InvalidManifestError,
    Manifest,
    parse_manifest,
)
from reconciler.model.store import BlobOpener

MAX_MEMBERS = 200_000
"""A tarball with more members than this is refused (a layout of 10,000 images has far fewer)."""
MAX_LAYOUT_FILE_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class ExportReport:
    path: Path
    entries: tuple[str, ...]
    blobs: int
    blob_bytes: int


@dataclass(frozen=True, slots=True)
class ImportReport:
    path: Path
    entries_added: tuple[str, ...]
    blobs_written: int
    blob_bytes_written: int
    unnamed_entries_skipped: int = 0
    ignored_members: tuple[str, ...] = ()


# ---------------------------------------------------------------------------------------------- export


async def export(layout: OciLayout, names: Iterable[str], *, to: str | os.PathLike[str]) -> ExportReport:
    """Write the entries ``names`` of ``layout`` (and every blob they need) to the tarball ``to``."""
    wanted = list(dict.fromkeys(names))
    target = Path(os.path.abspath(to))
    if not wanted:
        raise ArchiveError(f"{layout.name}: nothing to export to {target}: no entry names given")
    index = await layout.index()
    chosen: list[ArchiveEntry] = []
    for name in wanted:
        entry = index.find(name)
        if entry is None:
            raise ArchiveError(f"{layout.name}: cannot export {name}: no such entry")
        chosen.append(entry)
    walker = TreeWalker(layout.path, rehash=False)
    for entry in chosen:
        checked = await walker.entry(entry.label, entry.descriptor)
        if not checked.ok:
            raise ArchiveError(f"{layout.name}: cannot export {checked}")
    exported = LayoutIndex(entries=tuple(chosen), extra=index.extra).to_bytes()
    digests = sorted(walker.reachable)
    try:
        with os_errors(layout.name, f"exporting to {target}"):
            blob_bytes = await asyncio.to_thread(_write_tarball, layout.path, target, exported, digests)
    except ContentMismatch as exc:
        raise ArchiveError(f"{layout.name}: export to {target} aborted, nothing written: {exc.detail}") from None
    return ExportReport(path=target, entries=tuple(wanted), blobs=len(digests), blob_bytes=blob_bytes)


class _HashingReader:
    """Passes a file's bytes to ``tarfile`` while hashing them (the export re-verifies every blob)."""

    def __init__(self, handle: IO[bytes], verifier: DigestVerifier) -> None:
        self._handle = handle
        self._verifier = verifier

    def read(self, size: int = -1) -> bytes:
        block = self._handle.read(size)
        self._verifier.update(block)
        return block


def _member(name: str, size: int, *, directory: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = 0  # the same entries always make the same tarball
    info.mode = 0o755 if directory else 0o644
    info.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
    return info


def _write_tarball(root: Path, target: Path, index: bytes, digests: list[Digest]) -> int:
    fd, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    temp = Path(temp_name)
    blob_bytes = 0
    try:
        with os.fdopen(fd, "wb") as raw:
            with tarfile.TarFile(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT, copybufsize=BLOCK_BYTES) as tar:
                layout = json.dumps({"imageLayoutVersion": LAYOUT_VERSION}).encode()
                tar.addfile(_member("oci-layout", len(layout)), io.BytesIO(layout))
                tar.addfile(_member("index.json", len(index)), io.BytesIO(index))
                tar.addfile(_member("blobs", 0, directory=True))
                for algorithm in sorted({digest.algorithm for digest in digests}):
                    tar.addfile(_member(f"blobs/{algorithm}", 0, directory=True))
                for digest in digests:
                    with blob_path(root, digest).open("rb") as handle:
                        size = os.fstat(handle.fileno()).st_size
                        verifier = DigestVerifier(digest, size)
                        member = _member(f"blobs/{digest.algorithm}/{digest.hex}", size)
                        tar.addfile(member, _HashingReader(handle, verifier))
                        mismatch = verifier.mismatch()
                        if mismatch is not None:
                            raise ContentMismatch(f"blob {digest} is corrupt in the layout: {mismatch}")
                        blob_bytes += size
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(temp, target)
        fsync_directory(target.parent)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        raise
    return blob_bytes


# ---------------------------------------------------------------------------------------------- import


@dataclass(slots=True)
class _Contents:
    """The members of an ``oci-archive`` that matter, after every member passed the checks."""

    layout_file: tarfile.TarInfo | None = None
    index_file: tarfile.TarInfo | None = None
    blobs: dict[Digest, tarfile.TarInfo] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)


def _scan(tar: tarfile.TarFile, source: Path, max_index_bytes: int) -> _Contents:
    """Check every member before anything is read (see the module docstring for what is refused)."""
    contents = _Contents()
    seen: set[str] = set()

    def refuse(member: tarfile.TarInfo, why: str) -> ArchiveError:
        return ArchiveError(f"{source}: refusing this archive: member {member.name!r} {why}")

    for count, member in enumerate(tar, start=1):
        if count > MAX_MEMBERS:
            raise refuse(member, f"is one of more than {MAX_MEMBERS} members")
        path = PurePosixPath(member.name)
        if path.is_absolute() or ".." in path.parts:
            raise refuse(member, "escapes the archive (absolute path or '..')")
        if member.issym() or member.islnk():
            raise refuse(member, "is a link (an oci-archive holds regular files only)")
        name = "/".join(part for part in path.parts if part != ".")
        if member.isdir():
            continue
        if not member.isreg():
            raise refuse(member, "is not a regular file (device, fifo or other special file)")
        if name in seen:
            raise refuse(member, "appears twice")
        seen.add(name)
        parts = name.split("/")
        if name == "oci-layout":
            if member.size > MAX_LAYOUT_FILE_BYTES:
                raise refuse(member, f"is {member.size} bytes, more than {MAX_LAYOUT_FILE_BYTES}")
            contents.layout_file = member
        elif name == "index.json":
            if member.size > max_index_bytes:
                raise refuse(member, f"is {member.size} bytes, more than the {max_index_bytes} byte limit")
            contents.index_file = member
        elif parts[0] == "blobs":
            text = ":".join(parts[1:])
            if len(parts) != 3 or not is_valid_digest(text):
                raise refuse(member, "is under blobs/ but is not named by a digest")
            contents.blobs[Digest(text)] = member
        else:
            contents.ignored.append(name)
    return contents


def _read_member(tar: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    handle = tar.extractfile(member)
    assert handle is not None  # a regular file, checked by _scan
    return handle.read()


async def import_archive(
    path: str | os.PathLike[str],
    *,
    into: OciLayout,
    names: Collection[str] | None = None,
    replace: bool = False,
    max_index_bytes: int = MAX_INDEX_BYTES,
) -> ImportReport:
    """Copy the named entries (all named entries when ``names`` is None) of the oci-archive ``path`` into
    the layout ``into``, verifying every blob; the entries keep their annotations."""
    source = Path(os.path.abspath(path))
    try:
        with os_errors(into.name, f"opening {source}"):
            tar = await asyncio.to_thread(tarfile.open, source, "r:")
    except tarfile.TarError as exc:
        raise ArchiveError(f"{source}: not an uncompressed tar archive ({exc})") from None
    try:
        return await _import(tar, source, into=into, names=names, replace=replace, max_index_bytes=max_index_bytes)
    except (tarfile.TarError, EOFError) as exc:
        raise ArchiveError(f"{source}: damaged tar archive: {exc}") from None
    finally:
        tar.close()


async def _import(
    tar: tarfile.TarFile,
    source: Path,
    *,
    into: OciLayout,
    names: Collection[str] | None,
    replace: bool,
    max_index_bytes: int,
) -> ImportReport:
    with os_errors(into.name, f"reading {source}"):
        contents = await asyncio.to_thread(_scan, tar, source, max_index_bytes)
        if contents.layout_file is None or contents.index_file is None:
            raise ArchiveError(f"{source}: not an oci-archive (no oci-layout or no index.json member)")
        layout_file = await asyncio.to_thread(_read_member, tar, contents.layout_file)
        index_raw = await asyncio.to_thread(_read_member, tar, contents.index_file)
    try:
        version = json.loads(layout_file).get("imageLayoutVersion")
    except (ValueError, AttributeError):
        version = None
    if not isinstance(version, str) or not version.startswith("1."):
        raise ArchiveError(f"{source}: oci-layout names layout version {version!r}, not 1.x")
    try:
        index = LayoutIndex.parse(index_raw)
    except ValueError as exc:
        raise ArchiveError(f"{source}: index.json is not a valid OCI image index: {exc}") from None
    named = index.named()
    if names is not None:
        absent = sorted(set(names) - {entry.name for entry in named})
        if absent:
            raise ArchiveError(f"{source}: no entry named {', '.join(absent)}")
        named = [entry for entry in named if entry.name in set(names)]
    importer = _Importer(tar, source, into, contents.blobs)
    for entry in named:
        await importer.tree(entry)
    added = []
    for entry in named:
        assert entry.name is not None
        annotations = {key: value for key, value in entry.annotations.items() if key != REF_NAME}
        await into.add_entry(entry.name, entry.digest, annotations=annotations, replace=replace)
        added.append(entry.name)
    return ImportReport(
        path=source,
        entries_added=tuple(added),
        blobs_written=importer.blobs_written,
        blob_bytes_written=importer.bytes_written,
        unnamed_entries_skipped=len(index.entries) - len(index.named()),
        ignored_members=tuple(contents.ignored),
    )


class _Importer:
    """Copies the trees of entries from the tarball into the layout, children before parents."""

    def __init__(
        self, tar: tarfile.TarFile, source: Path, into: OciLayout, blobs: dict[Digest, tarfile.TarInfo]
    ) -> None:
        self._tar = tar
        self._source = source
        self._into = into
        self._blobs = blobs
        self._done: set[Digest] = set()
        self.blobs_written = 0
        self.bytes_written = 0

    async def tree(self, entry: ArchiveEntry) -> None:
        await self._manifest(entry.descriptor, entry.label, depth=0)

    def _member(self, descriptor: Descriptor, label: str) -> tarfile.TarInfo:
        member = self._blobs.get(descriptor.digest)
        if member is None:
            raise ArchiveError(f"{self._source}: entry {label} needs blob {descriptor.digest}, which is not in it")
        if member.size != descriptor.size:
            raise ArchiveError(
                f"{self._source}: blob {descriptor.digest} of {label} has {member.size} bytes, "
                f"its descriptor says {descriptor.size}"
            )
        return member

    async def _manifest(self, descriptor: Descriptor, label: str, depth: int) -> None:
        if descriptor.digest in self._done:
            return
        if depth > 8:
            raise ArchiveError(f"{self._source}: entry {label}: index nesting deeper than 8")
        member = self._member(descriptor, label)
        if member.size > MAX_MANIFEST_BYTES:
            raise ArchiveError(f"{self._source}: manifest {descriptor.digest} of {label} exceeds {MAX_MANIFEST_BYTES}")
        with os_errors(self._into.name, f"reading {self._source}"):
            raw = await asyncio.to_thread(_read_member, self._tar, member)
        try:
            manifest: Manifest = parse_manifest(raw, descriptor.media_type, digest=descriptor.digest)
        except InvalidManifestError as exc:
            raise ArchiveError(f"{self._source}: manifest {descriptor.digest} of {label}: {exc}") from None
        for child, is_manifest in manifest.children:
            if is_manifest:
                await self._manifest(child, label, depth + 1)
            else:
                await self._blob(child, label)
        repository = label.rpartition(":")[0] or label
        await self._into.put_manifest(repository, str(manifest.digest), manifest.raw, manifest.media_type)
        self._done.add(descriptor.digest)

    async def _blob(self, descriptor: Descriptor, label: str) -> None:
        if descriptor.digest in self._done:
            return
        member = self._member(descriptor, label)
        repository = label.rpartition(":")[0] or label
        if not await self._into.blob_exists(repository, descriptor.digest):
            try:
                await self._into.upload_blob(repository, descriptor.digest, self._opener(member), size=descriptor.size)
            except DigestMismatchError as exc:
                raise ArchiveError(
                    f"{self._source}: blob {descriptor.digest} of {label} is corrupt: {exc.reason}"
                ) from None
            self.blobs_written += 1
            self.bytes_written += descriptor.size
        self._done.add(descriptor.digest)

    def _opener(self, member: tarfile.TarInfo) -> BlobOpener:
        tar = self._tar

        @asynccontextmanager
        async def open_member() -> AsyncIterator[AsyncIterator[bytes]]:
            handle = tar.extractfile(member)
            assert handle is not None

            async def chunks() -> AsyncIterator[bytes]:
                while block := await asyncio.to_thread(handle.read, BLOCK_BYTES):
                    yield block

            yield chunks()

        return open_member
