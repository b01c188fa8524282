"""Registry -> archive -> registry with the product's copier, cross-checked with skopeo (an independent
client that reads and writes OCI layouts itself).

skopeo 1.9 addresses only OCI-typed entries of a layout (it skips entries with Docker media types:
"no descriptor found for reference"), so the skopeo interop tests use OCI images; the copier round trip
covers both formats.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.registries import RegistryFactory
from support.skopeo import Skopeo

from reconciler.archive import SOURCE_COMMIT, OciLayout, provenance
from reconciler.registry import Copier, RegistryClient
from testkit.imagegen import image_for
from testkit.imagepush import push_image
from testkit.localregistry import LocalRegistry

from .helpers import TAG, archive_from, restore_to, run

REPO = "p/payments/api"
NAME = f"{REPO}:{TAG}"


@pytest.mark.parametrize("fmt", ["docker", "oci"])
@pytest.mark.parametrize("platforms", [("linux/amd64",), ("linux/amd64", "linux/arm64")], ids=["single", "index"])
def test_registry_to_archive_to_registry_keeps_the_digest(
    registry_factory: RegistryFactory, skopeo: Skopeo, tmp_path: Path, fmt: str, platforms: tuple[str, ...]
) -> None:
    source = registry_factory(name="prod")
    restored = registry_factory(name="restore")
    image = image_for("payments/api", TAG, fmt=fmt, platforms=platforms)  # type: ignore[arg-type]
    push_image(image, source.url, REPO, TAG)

    async def scenario() -> None:
        async with OciLayout(tmp_path / "archive") as layout:
            report = await archive_from(source.url, layout, REPO, TAG)
            assert report.digest == image.digest
            assert report.blobs_copied == len(image.blobs)
            again = await archive_from(source.url, layout, REPO, TAG)
            assert again.already_present
            check = await layout.verify_entry(NAME, digest=image.digest)
            assert check.ok, str(check)
        async with OciLayout(tmp_path / "archive") as layout:
            back = await restore_to(layout, REPO, TAG, restored.url, REPO)
            assert back.digest == image.digest

    run(scenario())
    assert skopeo.inspect_raw(f"docker://{restored.host}/{REPO}:{TAG}") == image.raw


def test_engine_flow_copy_by_digest_then_name_with_provenance(registry: LocalRegistry, tmp_path: Path) -> None:
    image = image_for("payments/api", TAG, platforms=("linux/amd64", "linux/arm64"))
    push_image(image, registry.url, REPO, TAG)

    async def scenario() -> None:
        async with RegistryClient(url=registry.url) as client, OciLayout(tmp_path) as layout:
            await Copier().copy(
                source=client,
                source_repository=REPO,
                reference=image.digest,
                target=layout,
                target_repository=REPO,
            )
            assert await layout.entries() == []  # copied, not yet named
            notes = provenance(source_registry="prod-a", source_repository=REPO, commit="0123abcd")
            entry = await layout.add_entry(NAME, image.digest, annotations=notes)
            assert entry.annotations[SOURCE_COMMIT] == "0123abcd"
            assert (await layout.verify_entry(NAME, digest=image.digest)).ok

    run(scenario())


def test_skopeo_restores_an_archived_image_with_the_same_digest(
    registry_factory: RegistryFactory, skopeo: Skopeo, tmp_path: Path
) -> None:
    source = registry_factory(name="prod")
    restored = registry_factory(name="restore")
    image = image_for("payments/api", TAG, fmt="oci", platforms=("linux/amd64", "linux/arm64"))
    push_image(image, source.url, REPO, TAG)
    archive = tmp_path / "archive"

    async def scenario() -> None:
        async with OciLayout(archive) as layout:
            await archive_from(source.url, layout, REPO, TAG)

    run(scenario())
    assert skopeo.digest(f"oci:{archive}:{NAME}") == image.digest
    skopeo.copy(f"oci:{archive}:{NAME}", f"docker://{restored.host}/{REPO}:{TAG}")  # --all --preserve-digests
    assert skopeo.digest(f"docker://{restored.host}/{REPO}:{TAG}") == image.digest


def test_a_layout_skopeo_wrote_is_read_and_extended(
    registry_factory: RegistryFactory, skopeo: Skopeo, tmp_path: Path
) -> None:
    source = registry_factory(name="prod")
    restored = registry_factory(name="restore")
    by_skopeo = image_for("payments/api", TAG, fmt="oci")
    by_us = image_for("payments/web", TAG, fmt="oci")
    push_image(by_skopeo, source.url, REPO, TAG)
    push_image(by_us, source.url, "p/payments/web", TAG)
    archive = tmp_path / "archive"
    skopeo.copy(f"docker://{source.host}/{REPO}:{TAG}", f"oci:{archive}:{NAME}")

    async def scenario() -> None:
        async with OciLayout(archive) as layout:
            assert await layout.list_tags(REPO) == [TAG]
            manifest = await layout.get_manifest(REPO, TAG)
            assert manifest.digest == by_skopeo.digest
            assert (await layout.verify()).ok
            back = await restore_to(layout, REPO, TAG, restored.url, REPO)
            assert back.digest == by_skopeo.digest
            await archive_from(source.url, layout, "p/payments/web", TAG)
            assert (await layout.verify()).ok

    run(scenario())
    assert skopeo.digest(f"oci:{archive}:{NAME}") == by_skopeo.digest  # skopeo still reads its own entry
    assert skopeo.digest(f"oci:{archive}:p/payments/web:{TAG}") == by_us.digest  # and ours
    names = [
        m["annotations"]["org.opencontainers.image.ref.name"]
        for m in json.loads((archive / "index.json").read_text())["manifests"]
    ]
    assert names == [NAME, f"p/payments/web:{TAG}"]
