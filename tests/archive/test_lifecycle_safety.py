"""Retention when the archive store fails: nothing is deleted from any registry, and apply exits 1.

The store is on a real tmpfs (``tmpfs`` fixture) made read-only or too small, or a blob is corrupted the
moment after it was written (between the copy and the read-back, the one instant a real disk cannot be
told to rot on demand). Also: the registry's own garbage collection frees the retired bytes on disk, and
``destroy_after_days`` removes expired entries and their blobs, every destruction audited.
"""

from __future__ import annotations

import os
import random
import subprocess
from pathlib import Path
from typing import Any

import pytest
from support.skopeo import Skopeo

from reconciler.archive import ARCHIVED_AT, OciLayout, provenance
from reconciler.engine.audit import pair_records, read_records
from reconciler.registry import Copier, RegistryClient
from testkit.imagegen import GeneratedImage, image_for, make_layer
from testkit.localregistry import LocalRegistry, find_registry_binary

from .conftest import MountTmpfs
from .helpers import blob_file, corrupt, remount_read_only, run
from .test_lifecycle_e2e import cli, entries, push_versions, tags, write_state

pytestmark = pytest.mark.registry

VERSIONS = [f"202611{day:02d}_01" for day in range(1, 6)]


def seed(registry: LocalRegistry, *, layer_size: int = 1024) -> dict[str, GeneratedImage]:
    versions = {tag: image_for("app", tag, layer_size=layer_size) for tag in VERSIONS}
    push_versions(registry, "d/app", versions)
    return versions


def state_for(tmp_path: Path, registry: LocalRegistry, store: Path, versions: dict[str, GeneratedImage]) -> Path:
    newest = VERSIONS[-1]
    return write_state(
        tmp_path / "state",
        registry.url,
        store=store,
        retention="  d: {keep: 1}\n",
        t_pins={"app": [(newest, versions[newest])]},
    )


def assert_nothing_deleted(skopeo: Skopeo, registry: LocalRegistry, audit: Path) -> None:
    assert tags(skopeo, registry, "d/app") == set(VERSIONS)
    records = pair_records(read_records(audit))
    deletes = [r for r in records if r["action"] == "delete"]
    assert deletes
    assert {r["result"] for r in deletes} == {"skipped"}
    assert all("nothing is deleted while the archive store fails" in str(r["error"]) for r in deletes)


def test_a_read_only_archive_store_deletes_nothing_and_exits_1(
    registry: LocalRegistry, skopeo: Skopeo, tmp_path: Path, tmpfs: MountTmpfs
) -> None:
    versions = seed(registry)
    volume = tmpfs("8m")
    remount_read_only(volume)
    audit = tmp_path / "audit.jsonl"
    code, output = cli(
        "apply", str(state_for(tmp_path, registry, volume / "archive", versions)), "--audit-log", str(audit)
    )
    assert code == 1, output
    assert "read-only" in output.lower()
    assert_nothing_deleted(skopeo, registry, audit)


def test_a_full_archive_store_deletes_nothing_and_exits_1(
    registry: LocalRegistry, skopeo: Skopeo, tmp_path: Path, tmpfs: MountTmpfs
) -> None:
    versions = seed(registry, layer_size=256 * 1024)  # ~512 KiB per image, three images to archive
    volume = tmpfs("600k")  # the first image fits, the second does not
    audit = tmp_path / "audit.jsonl"
    code, output = cli(
        "apply", str(state_for(tmp_path, registry, volume / "archive", versions)), "--audit-log", str(audit)
    )
    assert code == 1, output
    assert "no space left" in output
    assert_nothing_deleted(skopeo, registry, audit)


def test_a_blob_corrupted_after_writing_is_caught_by_the_read_back_and_nothing_is_deleted(
    registry: LocalRegistry, skopeo: Skopeo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    versions = seed(registry)
    store = tmp_path / "archive"
    original = OciLayout.verify_entry
    victim = versions[VERSIONS[0]].manifests[0].layers[0].blob.digest

    async def rot_then_verify(self: OciLayout, name: str, *, digest: str | None = None) -> Any:
        if name.endswith(VERSIONS[0]):
            corrupt(blob_file(store, victim))  # the disk rots between the write and the read-back
        return await original(self, name, digest=digest)

    monkeypatch.setattr(OciLayout, "verify_entry", rot_then_verify)
    audit = tmp_path / "audit.jsonl"
    code, output = cli("apply", str(state_for(tmp_path, registry, store, versions)), "--audit-log", str(audit))
    assert code == 1, output
    assert "does not read back intact" in output
    assert_nothing_deleted(skopeo, registry, audit)


def storage_bytes(storage: Path) -> int:
    return sum(f.stat().st_size for f in (storage / "docker" / "registry" / "v2" / "blobs").rglob("*") if f.is_file())


def test_the_registry_garbage_collection_frees_the_retired_bytes_on_disk(skopeo: Skopeo, tmp_path: Path) -> None:
    work = tmp_path / "registry"
    registry = LocalRegistry(work_dir=work, name="gc").start()
    try:
        versions = {tag: image_for("app", tag, layer_count=1, layer_size=1024 * 1024) for tag in VERSIONS}
        push_versions(registry, "d/app", versions)
        code, output = cli(
            "apply",
            str(state_for(tmp_path, registry, tmp_path / "archive", versions)),
            "--audit-log",
            str(tmp_path / "audit.jsonl"),
        )
        assert code == 0, output
        assert tags(skopeo, registry, "d/app") == {VERSIONS[-2], VERSIONS[-1]}
    finally:
        registry.stop()
    storage = work / "storage"
    before = storage_bytes(storage)
    result = subprocess.run(
        [str(find_registry_binary()), "garbage-collect", str(work / "config.yml")],
        capture_output=True,
        text=True,
        check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")},
    )
    assert result.returncode == 0, result.stderr
    freed = before - storage_bytes(storage)
    assert freed >= 3 * 1024 * 1024, (before, freed)  # three retired images of 1 MiB (incompressible) each
    registry.start()  # what was kept still pulls
    try:
        assert skopeo.digest(f"docker://{registry.host}/d/app:{VERSIONS[-1]}") == versions[VERSIONS[-1]].digest
    finally:
        registry.stop()


def test_destroy_after_days_removes_expired_entries_and_their_blobs_audited(
    registry: LocalRegistry, tmp_path: Path
) -> None:
    base = [make_layer({"base.bin": random.Random(3).randbytes(64 * 1024)})]
    images = {tag: image_for("old", tag, base=base, layer_count=1) for tag in ("20240101_01", "20240102_01")}
    push_versions(registry, "d/old", images)
    store = tmp_path / "archive"

    async def archive_old() -> None:
        async with RegistryClient(url=registry.url) as client, OciLayout(store) as layout:
            for tag, image in images.items():
                await Copier().copy(
                    source=client,
                    source_repository="d/old",
                    reference=image.digest,
                    target=layout,
                    target_repository="d/old",
                )
                annotations = provenance(source_registry="dev", source_repository="d/old")
                await layout.add_entry(
                    f"d/old:{tag}", image.digest, annotations={**annotations, ARCHIVED_AT: "2024-02-01T00:00:00Z"}
                )

    run(archive_old())
    blobs_before = len(list((store / "blobs" / "sha256").iterdir()))
    keep = images["20240102_01"]  # declared in t: never destroyed, it may be the last copy
    root = write_state(
        tmp_path / "state",
        registry.url,
        store=store,
        retention="  d: {}\n",
        t_pins={"old": [("20240102_01", keep)]},
        destroy_after_days=365,
    )
    code, output = cli("plan", str(root))
    assert code == 0, output
    assert "DESTROY archive entry d/old:20240101_01 (destroy_after_days=365)" in output
    assert "d/old:20240102_01 is past destroy_after_days but a declared version uses it: kept" in output
    audit = tmp_path / "audit.jsonl"
    code, output = cli("apply", str(root), "--audit-log", str(audit))
    assert code == 0, output
    assert set(entries(store)) == {"d/old:20240102_01"}
    blobs_after = len(list((store / "blobs" / "sha256").iterdir()))
    assert blobs_after == blobs_before - 3  # its manifest, config and own layer; the shared base stays
    [record] = [r for r in pair_records(read_records(audit)) if r["action"] == "destroy"]
    assert (record["tag"], record["result"]) == ("20240101_01", "ok")
