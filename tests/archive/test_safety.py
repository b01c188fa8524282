"""The archive when its volume misbehaves: read-only, full, or rotting under it.

The volumes are real tmpfs mounts (``tmpfs`` fixture): the tests run as root, which ignores file modes,
so only a read-only or full file system really refuses a write.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from support.registries import RegistryFactory

from reconciler.archive import OciLayout
from reconciler.errors import ArchiveError, DigestMismatchError
from testkit.imagegen import image_for, make_image
from testkit.imagepush import push_image
from testkit.localregistry import LocalRegistry

from .helpers import (
    TAG,
    MountTmpfs,
    archive_from,
    bad_blob_files,
    blob_file,
    corrupt,
    incoming_after_settling,
    remount_read_only,
    restore_to,
    run,
)

REPO = "p/payments/api"


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file of the layout outside the private directory, with its content."""
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and ".reconciler" not in path.parts
    }


def test_a_read_only_archive_still_reads_and_refuses_writes_clearly(
    registry_factory: RegistryFactory, tmpfs: MountTmpfs
) -> None:
    source = registry_factory(name="prod")
    restored = registry_factory(name="restore")
    kept = image_for("payments/api", TAG)
    refused = image_for("payments/api", "20261127_02")
    push_image(kept, source.url, REPO, TAG)
    push_image(refused, source.url, REPO, "20261127_02")
    root = tmpfs("8m") / "archive"

    async def archive_first() -> None:
        async with OciLayout(root) as layout:
            await archive_from(source.url, layout, REPO, TAG)

    run(archive_first())
    remount_read_only(root.parent)
    before = snapshot(root)

    async def scenario() -> None:
        async with OciLayout(root) as layout:
            assert (await layout.verify()).ok
            back = await restore_to(layout, REPO, TAG, restored.url, REPO)  # restore from offline storage
            assert back.digest == kept.digest
            with pytest.raises(ArchiveError, match="file system is read-only") as refused:
                await archive_from(source.url, layout, REPO, "20261127_02")
            assert str(root) in str(refused.value)
            assert await layout.list_tags(REPO) == [TAG]

    run(scenario())
    assert snapshot(root) == before


def test_an_archive_on_a_read_only_volume_is_never_created(tmpfs: MountTmpfs) -> None:
    volume = tmpfs("1m")
    remount_read_only(volume)
    image = image_for("payments/api", TAG)
    blob = next(iter(image.blobs.values()))

    async def scenario() -> None:
        async with OciLayout(volume / "archive") as layout:
            with pytest.raises(ArchiveError, match=r"taking the writer lock: the archive's file system is read-only"):
                await layout.upload_blob(REPO, blob.digest, blob.read_bytes())

    run(scenario())
    assert list(volume.iterdir()) == []


def test_a_full_volume_fails_clearly_and_the_layout_still_verifies(registry: LocalRegistry, tmpfs: MountTmpfs) -> None:
    small = image_for("payments/api", TAG)
    big = make_image([{"app/big.bin": os.urandom(3 * 1024 * 1024)}])  # incompressible: larger than the volume
    push_image(small, registry.url, REPO, TAG)
    push_image(big, registry.url, REPO, "20261127_02")
    root = tmpfs("2m") / "archive"

    async def scenario() -> None:
        async with OciLayout(root) as layout:
            await archive_from(registry.url, layout, REPO, TAG)
            with pytest.raises(ArchiveError, match="no space left on the archive's file system"):
                await archive_from(registry.url, layout, REPO, "20261127_02")
            assert await layout.list_tags(REPO) == [TAG]
            assert await incoming_after_settling(root) == []  # the partial blob is gone, space is free again
            assert (await layout.verify()).ok

            # Fill what is left, so that even index.json cannot be rewritten: the old one must survive.
            with (root.parent / "filler").open("wb") as filler:
                try:
                    while True:
                        filler.write(b"\0" * 65536)
                        filler.flush()
                except OSError:
                    pass
            before = (root / "index.json").read_bytes()
            with pytest.raises(ArchiveError, match=r"writing index.json \(the previous version is intact\): no space"):
                await layout.remove_entries([f"{REPO}:{TAG}"])
            assert (root / "index.json").read_bytes() == before
            assert (await layout.verify()).ok

    run(scenario())
    assert bad_blob_files(root) == []


def test_a_blob_that_rots_after_archiving_is_found_and_never_restored(
    registry_factory: RegistryFactory, tmp_path: Path
) -> None:
    source = registry_factory(name="prod")
    restored = registry_factory(name="restore")
    image = image_for("payments/api", TAG, layer_size=256 * 1024)
    push_image(image, source.url, REPO, TAG)
    layer = image.manifests[0].layers[0].blob

    async def scenario() -> None:
        async with OciLayout(tmp_path) as layout:
            await archive_from(source.url, layout, REPO, TAG)
        corrupt(blob_file(tmp_path, layer.digest), offset=layer.size // 2)
        async with OciLayout(tmp_path) as layout:
            report = await layout.verify()
            assert not report.ok
            [problem] = report.entries[0].problems
            assert (problem.kind, problem.digest) == ("corrupt", layer.digest)
            with pytest.raises(DigestMismatchError, match="is corrupt"):
                await restore_to(layout, REPO, TAG, restored.url, REPO)
        async with OciLayout(tmp_path) as layout:
            assert await layout.head_manifest(REPO, TAG) is not None  # the manifest itself is fine

    run(scenario())
    assert restored.request_log()  # it was asked...
    assert not [r for r in restored.request_log() if r.method == "PUT" and "/manifests/" in r.path]  # ...no tag


def test_a_registry_serving_corrupt_bytes_never_gets_them_into_the_archive(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    """The copier passes ``verify=False`` (its registry source hashes the stream): the end-to-end proof
    that a corrupt layer in the registry still never lands in the archive."""
    image = image_for("payments/api", TAG, layer_size=512 * 1024)
    push_image(image, registry.url, REPO, TAG)
    layer = image.manifests[0].layers[0].blob
    stored = next(registry.storage_dir.rglob(f"blobs/sha256/*/{layer.digest.split(':')[1]}/data"))
    corrupt(stored, offset=layer.size // 2)

    async def scenario() -> None:
        async with OciLayout(tmp_path) as layout:
            with pytest.raises(DigestMismatchError):
                await archive_from(registry.url, layout, REPO, TAG)
            assert not await layout.blob_exists(REPO, layer.digest)
            assert await layout.entries() == []

    run(scenario())
    assert bad_blob_files(tmp_path) == []
    assert run(incoming_after_settling(tmp_path)) == []
