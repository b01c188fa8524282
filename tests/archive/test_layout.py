"""The OCI layout store on its own (no registry): writes, reads, verification, removal, locking."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from reconciler.archive import (
    ARCHIVED_AT,
    REF_NAME,
    SOURCE_COMMIT,
    SOURCE_REGISTRY,
    SOURCE_REPOSITORY,
    OciLayout,
    provenance,
)
from reconciler.archive.files import BLOCK_BYTES, TMP_DIR
from reconciler.archive.streams import WRITE_BATCH_BYTES
from reconciler.errors import ArchiveError, DigestMismatchError, NotFoundError
from reconciler.model.store import BlobOpener
from testkit.imagegen import Blob, image_for, make_image

from .helpers import TAG, bad_blob_files, blob_file, corrupt, incoming_after_settling, put_image, run

REPO = "p/payments/api"
NAME = f"{REPO}:{TAG}"


def opener_of(*chunks: bytes) -> BlobOpener:
    @asynccontextmanager
    async def open_stream() -> AsyncIterator[AsyncIterator[bytes]]:
        async def stream() -> AsyncIterator[bytes]:
            for chunk in chunks:
                yield chunk

        yield stream()

    return open_stream


def incoming(root: Path) -> list[Path]:
    directory = root / TMP_DIR
    return list(directory.iterdir()) if directory.exists() else []


@pytest.mark.parametrize("fmt", ["docker", "oci"])
def test_a_tag_write_names_an_entry_that_reads_back_byte_exact(tmp_path: Path, fmt: str) -> None:
    image = image_for("payments/api", TAG, fmt=fmt)  # type: ignore[arg-type]
    root = tmp_path / "archive"

    async def scenario() -> None:
        async with OciLayout(root) as layout:
            await put_image(layout, image, REPO, TAG)
            assert layout.key == f"oci-layout:{root}"
            assert await layout.list_tags(REPO) == [TAG]
            assert await layout.list_tags("p/payments") == []
            by_tag = await layout.head_manifest(REPO, TAG)
            assert by_tag is not None
            assert (by_tag.digest, by_tag.media_type, by_tag.size) == (image.digest, image.media_type, image.size)
            assert await layout.head_manifest(REPO, image.digest) == by_tag
            manifest = await layout.get_manifest(REPO, TAG)
            assert manifest.raw == image.raw
            for blob in image.blobs.values():
                assert await layout.blob_exists("any/other/repository", blob.digest)  # one blob pool
                assert await layout.get_blob(REPO, blob.digest, max_bytes=1 << 20) == blob.read_bytes()

    run(scenario())
    assert json.loads((root / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((root / "index.json").read_text())
    assert index["schemaVersion"] == 2
    [entry] = index["manifests"]
    assert (entry["mediaType"], entry["digest"], entry["size"]) == (image.media_type, image.digest, image.size)
    assert entry["annotations"][REF_NAME] == NAME
    assert entry["annotations"][ARCHIVED_AT].endswith("Z")
    assert blob_file(root, image.digest).read_bytes() == image.raw


def test_a_digest_write_stores_the_manifest_without_naming_it(tmp_path: Path) -> None:
    image = image_for("payments/api", TAG, platforms=("linux/amd64", "linux/arm64"))

    async def scenario() -> None:
        async with OciLayout(tmp_path) as layout:
            await put_image(layout, image, REPO, None)
            assert await layout.entries() == []
            assert await layout.list_tags(REPO) == []
            assert await layout.head_manifest(REPO, TAG) is None
            head = await layout.head_manifest(REPO, image.digest)
            assert head is not None
            assert head.digest == image.digest
            with pytest.raises(NotFoundError, match=f"no entry {NAME}"):
                await layout.get_manifest(REPO, TAG)

    run(scenario())


def test_add_entry_names_a_complete_image_with_provenance(tmp_path: Path) -> None:
    image = image_for("payments/api", TAG, platforms=("linux/amd64", "linux/arm64"))
    other = image_for("payments/api", "20261127_02")

    async def scenario() -> None:
        async with OciLayout(tmp_path) as layout:
            await put_image(layout, image, REPO, None)
            notes = provenance(source_registry="prod-a", source_repository=REPO, commit="abc123")
            entry = await layout.add_entry(NAME, image.digest, annotations=notes)
            assert (entry.name, entry.repository, entry.tag, entry.digest) == (NAME, REPO, TAG, image.digest)
            assert entry.archived_at is not None
            first_stamp = entry.annotations[ARCHIVED_AT]
            again = await layout.add_entry(NAME, image.digest, annotations={**notes, SOURCE_COMMIT: "def456"})
            assert again.annotations[SOURCE_COMMIT] == "def456"  # the newer provenance...
            assert again.annotations[ARCHIVED_AT] == first_stamp  # ...but retention counts from the first time
            stored = await layout.entry(NAME)
            assert stored is not None
            assert stored.annotations[SOURCE_REGISTRY] == "prod-a"
            assert stored.annotations[SOURCE_REPOSITORY] == REPO
            assert stored.annotations[SOURCE_COMMIT] == "def456"
            check = await layout.verify_entry(NAME, digest=image.digest)
            assert check.ok, str(check)
            assert check.blobs_checked == 3 + len(image.blobs)  # index, 2 children, configs and layers

            await put_image(layout, other, REPO, None)
            with pytest.raises(ArchiveError, match="never replaced silently"):
                await layout.add_entry(NAME, other.digest)
            replaced = await layout.add_entry(NAME, other.digest, replace=True)
            assert replaced.digest == other.digest
            assert [e.name for e in await layout.entries()] == [NAME]

    run(scenario())


def test_add_entry_refuses_an_incomplete_image(tmp_path: Path) -> None:
    image = image_for("payments/api", TAG)
    layer = image.manifests[0].layers[0].blob

    async def scenario() -> None:
        async with OciLayout(tmp_path) as layout:
            await put_image(layout, image, REPO, None)
            blob_file(tmp_path, layer.digest).unlink()
            with pytest.raises(ArchiveError, match=r"incomplete.*missing"):
                await layout.add_entry(NAME, image.digest)
            assert await layout.entries() == []

    run(scenario())


def test_a_manifest_is_refused_before_the_blobs_it_names(tmp_path: Path) -> None:
    image = image_for("payments/api", TAG, platforms=("linux/amd64", "linux/arm64"))

    async def scenario() -> None:
        async with OciLayout(tmp_path) as layout:
            with pytest.raises(ArchiveError, match=r"refusing to write .* before what it names"):
                await layout.put_manifest(REPO, TAG, image.raw, image.media_type)  # children missing
            child = image.children[0]
            with pytest.raises(ArchiveError, match="is not in the archive"):
                await layout.put_manifest(REPO, child.digest, child.raw, child.media_type)  # blobs missing
            assert await layout.entries() == []
            assert not blob_file(tmp_path, image.digest).exists()

    run(scenario())


def test_bytes_that_do_not_match_their_digest_never_land(tmp_path: Path) -> None:
    wanted = Blob.from_bytes(b"the real layer" * 1000, "application/octet-stream")
    impostor = b"not the real layer" * 1000

    async def scenario() -> None:
        async with OciLayout(tmp_path) as layout:
            with pytest.raises(DigestMismatchError, match="nothing was written"):
                await layout.upload_blob(REPO, wanted.digest, impostor)
            with pytest.raises(DigestMismatchError, match="hashing to"):
                await layout.upload_blob(REPO, wanted.digest, opener_of(impostor[:5000], impostor[5000:]))
            assert not await layout.blob_exists(REPO, wanted.digest)

    run(scenario())
    assert not blob_file(tmp_path, wanted.digest).exists()
    assert incoming(tmp_path) == []


def test_without_verify_a_source_that_fails_at_its_end_still_lands_nothing(tmp_path: Path) -> None:
    """``verify=False`` is the copier's word that the source hashes (ImageStore contract: its stream
    raises at the end instead of finishing); the write must then be abandoned, not renamed into place."""
    blob = Blob.from_bytes(os.urandom(2 * BLOCK_BYTES + 5), "application/octet-stream")
    content = blob.read_bytes()

    @asynccontextmanager
    async def failing_at_the_end() -> AsyncIterator[AsyncIterator[bytes]]:
        async def stream() -> AsyncIterator[bytes]:
            yield content[:BLOCK_BYTES]
            yield content[BLOCK_BYTES:]
            raise DigestMismatchError("source bytes hash to something else", registry="src", digest=blob.digest)

        yield stream()

    async def scenario() -> None:
        async with OciLayout(tmp_path) as layout:
            with pytest.raises(DigestMismatchError, match="source bytes hash to something else"):
                await layout.upload_blob(REPO, blob.digest, failing_at_the_end, size=blob.size, verify=False)
            with pytest.raises(DigestMismatchError, match="descriptor says"):
                await layout.upload_blob(REPO, blob.digest, opener_of(content[:-1]), size=blob.size, verify=False)
            assert not await layout.blob_exists(REPO, blob.digest)
            await layout.upload_blob(REPO, blob.digest, opener_of(content), size=blob.size, verify=False)
            assert await layout.blob_exists(REPO, blob.digest)

    run(scenario())
    assert incoming(tmp_path) == []
    assert bad_blob_files(tmp_path) == []


def test_a_cancelled_upload_leaves_nothing_behind(tmp_path: Path) -> None:
    """The copier cancels sibling transfers when one fails: whatever the moment (opening the temporary
    file, a write in a worker thread, the rename), nothing half-written may stay, and no descriptor leak."""
    content = os.urandom(8 * WRITE_BATCH_BYTES)
    blob = Blob.from_bytes(content, "application/octet-stream")

    @asynccontextmanager
    async def trickle() -> AsyncIterator[AsyncIterator[bytes]]:
        async def stream() -> AsyncIterator[bytes]:
            for start in range(0, len(content), 64 * 1024):
                yield content[start : start + 64 * 1024]
                await asyncio.sleep(0)

        yield stream()

    async def cancel_after(layout: OciLayout, steps: int) -> None:
        upload = asyncio.ensure_future(layout.upload_blob(REPO, blob.digest, trickle, size=blob.size))
        for _ in range(steps):
            await asyncio.sleep(0)
        upload.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await upload

    descriptors_before = len(os.listdir("/proc/self/fd"))

    async def scenario() -> None:
        async with OciLayout(tmp_path) as layout:
            await layout.remove_entries([])  # become the writer first: the cancellations hit the upload
            for steps in (0, 1, 2, 3, 5, 8, 13, 40, 100, 200):
                await cancel_after(layout, steps)
                if await layout.blob_exists(REPO, blob.digest):  # finished before the cancel: must be whole
                    assert bad_blob_files(tmp_path) == []
                    os.unlink(blob_file(tmp_path, blob.digest))

    run(scenario())
    # A cancelled write cleans up when its worker thread finishes the batch in hand: a moment later.
    assert run(incoming_after_settling(tmp_path)) == []
    assert len(os.listdir("/proc/self/fd")) == descriptors_before  # closed just before the unlink


def test_a_size_mismatch_is_refused(tmp_path: Path) -> None:
    blob = Blob.from_bytes(os.urandom(3 * BLOCK_BYTES + 17), "application/octet-stream")
    content = blob.read_bytes()

    async def scenario() -> None:
        async with OciLayout(tmp_path) as layout:
            with pytest.raises(DigestMismatchError, match="descriptor says"):
                await layout.upload_blob(REPO, blob.digest, content, size=blob.size + 1)
            with pytest.raises(DigestMismatchError, match=f"{blob.size - 1} bytes the descriptor says"):
                await layout.upload_blob(REPO, blob.digest, opener_of(content), size=blob.size - 1)
            with pytest.raises(DigestMismatchError, match="descriptor says"):
                await layout.upload_blob(REPO, blob.digest, opener_of(content[:-1]), size=blob.size)
            assert not await layout.blob_exists(REPO, blob.digest)
            progress: list[int] = []
            outcome = await layout.upload_blob(
                REPO, blob.digest, opener_of(content[:1000], content[1000:]), size=blob.size, progress=progress.append
            )
            assert outcome == "uploaded"
            assert sum(progress) == blob.size
            assert await layout.mount_blob(REPO, blob.digest, "d/elsewhere")

    run(scenario())
    assert incoming(tmp_path) == []
    assert bad_blob_files(tmp_path) == []


def test_stream_blob_is_bounded_and_fails_at_the_end_on_corruption(tmp_path: Path) -> None:
    blob = Blob.from_bytes(os.urandom(5 * BLOCK_BYTES + 3), "application/octet-stream")

    async def read_all(layout: OciLayout, chunks: list[bytes]) -> list[bytes]:
        async with layout.stream_blob(REPO, blob.digest) as stream:
            async for chunk in stream:
                chunks.append(chunk)
        return chunks

    async def scenario() -> None:
        async with OciLayout(tmp_path) as layout:
            await layout.upload_blob(REPO, blob.digest, blob.read_bytes())
            chunks = await read_all(layout, [])
            assert b"".join(chunks) == blob.read_bytes()
            assert max(len(chunk) for chunk in chunks) <= BLOCK_BYTES

            corrupt(blob_file(tmp_path, blob.digest), offset=blob.size - 1)
            received: list[bytes] = []
            with pytest.raises(DigestMismatchError, match="is corrupt"):
                await read_all(layout, received)
            assert sum(map(len, received)) == blob.size  # every byte passed, then it raised instead of finishing
            with pytest.raises(DigestMismatchError):
                await layout.get_blob(REPO, blob.digest, max_bytes=blob.size)
            with pytest.raises(ArchiveError, match="stream it instead"):
                await layout.get_blob(REPO, blob.digest, max_bytes=1024)
            with pytest.raises(NotFoundError):
                async with layout.stream_blob(REPO, "sha256:" + "0" * 64):
                    pass

    run(scenario())


def test_verify_reports_missing_and_corrupt_blobs_per_entry(tmp_path: Path) -> None:
    base = [{"opt/runtime.bin": b"runtime" * 500}]
    first = make_image([*base, {"app/one": b"one"}], fmt="oci")
    second = make_image([*base, {"app/two": b"two"}], fmt="oci")
    third = image_for("payments/web", TAG, fmt="oci")
    shared = first.manifests[0].layers[0].blob
    own = second.manifests[0].layers[1].blob

    async def scenario() -> None:
        async with OciLayout(tmp_path) as layout:
            await put_image(layout, first, REPO, "20261127_01")
            await put_image(layout, second, REPO, "20261127_02")
            await put_image(layout, third, "p/payments/web", TAG)
            assert (await layout.verify()).ok
            corrupt(blob_file(tmp_path, shared.digest))
            blob_file(tmp_path, own.digest).unlink()
            corrupt(blob_file(tmp_path, third.digest), offset=3)

            report = await layout.verify()
            assert not report.ok
            verdicts = {entry.name: entry for entry in report.entries}
            assert [p.kind for p in verdicts[f"{REPO}:20261127_01"].problems] == ["corrupt"]
            assert sorted(p.kind for p in verdicts[f"{REPO}:20261127_02"].problems) == ["corrupt", "missing"]
            assert [(p.kind, p.manifest) for p in verdicts[f"p/payments/web:{TAG}"].problems] == [("corrupt", True)]
            assert str(blob_file(tmp_path, shared.digest)) in report.summary()
            assert "3 of 3 entries failed" in report.summary()
            one = await layout.verify_entry(f"{REPO}:20261127_01")
            assert [p.digest for p in one.problems] == [shared.digest]
            missing = await layout.verify_entry("p/payments/api:19990101_01")
            assert [p.kind for p in missing.problems] == ["missing-entry"]
            wrong = await layout.verify_entry(f"{REPO}:20261127_01", digest=second.digest)
            assert [p.kind for p in wrong.problems] == ["wrong-digest"]

    run(scenario())


def test_remove_entries_then_collect_garbage_keeps_what_others_need(tmp_path: Path) -> None:
    base = [{"opt/runtime.bin": b"runtime" * 500}]
    kept = make_image([*base, {"app/kept": b"kept"}], platforms=("linux/amd64", "linux/arm64"))
    gone = make_image([*base, {"app/gone": b"gone"}])
    unique_to_gone = {gone.digest} | {b.digest for b in gone.blobs.values()} - {b.digest for b in kept.blobs.values()}

    async def scenario() -> None:
        async with OciLayout(tmp_path) as layout:
            await put_image(layout, kept, REPO, "20261127_01")
            await put_image(layout, gone, REPO, "20261127_02")
        async with OciLayout(tmp_path) as layout:  # a new session: nothing protected as "in flight"
            assert await layout.remove_entries([f"{REPO}:20261127_02", "p/never/was:20200101_01"]) == [
                f"{REPO}:20261127_02"
            ]
            assert await layout.list_tags(REPO) == ["20261127_01"]
            report = await layout.collect_garbage()
            assert report.blobs_removed == len(unique_to_gone)
            assert report.bytes_freed > 0
            for digest in unique_to_gone:
                assert not await layout.blob_exists(REPO, digest)
            assert (await layout.verify()).ok
            assert (await layout.collect_garbage()).blobs_removed == 0
            with pytest.raises(NotFoundError):
                await layout.get_manifest(REPO, "20261127_02")

    run(scenario())


def test_collect_garbage_refuses_when_a_manifest_cannot_be_read(tmp_path: Path) -> None:
    image = image_for("payments/api", TAG, platforms=("linux/amd64", "linux/arm64"))
    stray = Blob.from_bytes(b"garbage", "application/octet-stream")

    async def scenario() -> None:
        async with OciLayout(tmp_path) as layout:
            await put_image(layout, image, REPO, TAG)
            await layout.upload_blob(REPO, stray.digest, stray.read_bytes())
        before = sorted(p.name for p in (tmp_path / "blobs" / "sha256").iterdir())
        corrupt(blob_file(tmp_path, image.children[0].digest))
        async with OciLayout(tmp_path) as layout:
            with pytest.raises(ArchiveError, match="garbage collection refused, nothing deleted"):
                await layout.collect_garbage()
        assert sorted(p.name for p in (tmp_path / "blobs" / "sha256").iterdir()) == before

    run(scenario())


def test_a_second_writer_waits_then_fails_clearly(tmp_path: Path) -> None:
    first_image = image_for("payments/api", TAG)
    second_image = image_for("payments/api", "20261127_02")

    async def scenario() -> None:
        holder = OciLayout(tmp_path)
        await put_image(holder, first_image, REPO, TAG)  # holds the writer lock until closed
        waiter = OciLayout(tmp_path, lock_timeout=0.3)
        assert await waiter.list_tags(REPO) == [TAG]  # readers take no lock
        with pytest.raises(ArchiveError, match=rf"another writer holds the archive \(pid {os.getpid()} .*waited 0.3 s"):
            await put_image(waiter, second_image, REPO, "20261127_02")
        await holder.close()
        await put_image(waiter, second_image, REPO, "20261127_02")
        await waiter.close()
        assert await OciLayout(tmp_path).list_tags(REPO) == [TAG, "20261127_02"]

    run(scenario())


_WRITER = textwrap.dedent(
    """
    import asyncio, sys
    from reconciler.archive import OciLayout
    from testkit.imagegen import image_for

    async def main(root, prefix):
        async with OciLayout(root, lock_timeout=60) as layout:
            for n in range(1, 11):
                image = image_for(f"{prefix}/app", f"20261127_{n:02d}")
                for blob in image.blobs.values():
                    await layout.upload_blob(prefix, blob.digest, blob.read_bytes())
                await layout.put_manifest(prefix, f"20261127_{n:02d}", image.raw, image.media_type)

    asyncio.run(main(sys.argv[1], sys.argv[2]))
    """
)


def test_concurrent_writer_processes_are_serialised(tmp_path: Path) -> None:
    writers = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(tmp_path), prefix], stderr=subprocess.PIPE)
        for prefix in ("p/one", "p/two", "p/three")
    ]
    for writer in writers:
        _, stderr = writer.communicate(timeout=60)
        assert writer.returncode == 0, stderr.decode()

    async def entries() -> list[str]:
        return sorted(e.name or "" for e in await OciLayout(tmp_path).entries())

    names = run(entries())
    assert len(names) == 30  # no writer's index update was lost to another's
    assert names[0] == "p/one:20261127_01"
    assert run(OciLayout(tmp_path).verify()).ok


def test_what_other_tools_wrote_into_index_json_survives(tmp_path: Path) -> None:
    image = image_for("payments/api", TAG, fmt="oci")
    foreign = image_for("other/tool", TAG, fmt="oci")

    async def seed() -> None:
        async with OciLayout(tmp_path) as layout:
            await put_image(layout, foreign, "other", None)

    run(seed())
    index = json.loads((tmp_path / "index.json").read_text())
    index["annotations"] = {"org.example.owner": "team-a"}
    index["manifests"].append(
        {
            "mediaType": foreign.media_type,
            "digest": foreign.digest,
            "size": foreign.size,
            "artifactType": "application/vnd.example",
        }
    )
    (tmp_path / "index.json").write_text(json.dumps(index))

    async def scenario() -> None:
        async with OciLayout(tmp_path) as layout:
            await put_image(layout, image, REPO, TAG)
            report = await layout.verify()
            assert report.ok
            assert sorted(entry.name for entry in report.entries) == [f"@{foreign.digest}", NAME]
            assert (await layout.collect_garbage()).blobs_removed == 0  # an unnamed entry is still a root

    run(scenario())
    rewritten = json.loads((tmp_path / "index.json").read_text())
    assert rewritten["annotations"] == {"org.example.owner": "team-a"}
    assert rewritten["manifests"][0]["artifactType"] == "application/vnd.example"


def test_a_directory_that_is_not_a_layout_is_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not an archive")
    image = image_for("payments/api", TAG)

    async def scenario() -> None:
        layout = OciLayout(tmp_path)
        with pytest.raises(ArchiveError, match=r"is not an OCI image layout \(no oci-layout file; holds notes.txt\)"):
            await layout.list_tags(REPO)
        with pytest.raises(ArchiveError, match="refusing to write into it"):
            await put_image(layout, image, REPO, TAG)
        report = await layout.verify()
        assert not report.ok
        assert "not an OCI image layout" in report.layout_problems[0]

    run(scenario())
    assert sorted(p.name for p in tmp_path.iterdir()) == [".reconciler", "notes.txt"]


def test_a_missing_archive_reads_as_empty_and_does_not_verify(tmp_path: Path) -> None:
    async def scenario() -> None:
        layout = OciLayout(tmp_path / "nowhere")
        assert await layout.list_tags(REPO) == []
        assert await layout.head_manifest(REPO, TAG) is None
        with pytest.raises(NotFoundError):
            await layout.get_manifest(REPO, TAG)
        report = await layout.verify()
        assert not report.ok
        assert "no archive at" in report.layout_problems[0]

    run(scenario())
    assert not (tmp_path / "nowhere").exists()  # reading never creates anything


def test_concurrent_first_writes_all_land(tmp_path: Path) -> None:
    """The first write prepares the layout (and removes stale temporary files): writes that start
    meanwhile must wait for it, or their own temporary files would be removed under them."""
    (tmp_path / TMP_DIR).mkdir(parents=True)
    (tmp_path / TMP_DIR / "blob-stale").write_bytes(b"stale")
    blobs = [Blob.from_bytes(os.urandom(2 * BLOCK_BYTES), "application/octet-stream") for _ in range(8)]

    async def scenario() -> None:
        async with OciLayout(tmp_path) as layout:
            await asyncio.gather(*(layout.upload_blob(REPO, b.digest, opener_of(b.read_bytes())) for b in blobs))
            for blob in blobs:
                assert await layout.blob_exists(REPO, blob.digest)

    run(scenario())
    assert incoming(tmp_path) == []


def test_temporary_files_of_a_killed_writer_are_ignored_then_cleaned(tmp_path: Path) -> None:
    image = image_for("payments/api", TAG)

    async def seed() -> None:
        async with OciLayout(tmp_path) as layout:
            await put_image(layout, image, REPO, TAG)

    run(seed())
    leftover = tmp_path / TMP_DIR / "blob-killed"
    leftover.write_bytes(b"half a layer")
    assert run(OciLayout(tmp_path).verify()).ok

    async def next_writer() -> None:
        async with OciLayout(tmp_path) as layout:
            await layout.remove_entries([])  # any write takes the lock and cleans up

    run(next_writer())
    assert not leftover.exists()


def test_names_that_are_not_oci_reference_names_are_refused(tmp_path: Path) -> None:
    image = image_for("payments/api", TAG)

    async def scenario() -> None:
        async with OciLayout(tmp_path) as layout:
            with pytest.raises(ArchiveError, match="not a tag"):
                await put_image(layout, image, REPO, "bad tag")
            with pytest.raises(ArchiveError, match="not a valid OCI layout reference name"):
                await layout.add_entry("p//x:1", image.digest)

    run(scenario())
