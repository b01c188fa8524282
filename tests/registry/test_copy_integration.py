"""The copy engine end to end against real registries, cross-checked with skopeo (an independent client)."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from support.registries import AuthedRegistry
from support.skopeo import Skopeo

from reconciler.registry import Copier, CopyReport, Credentials, RegistryClient
from testkit.imagegen import image_for, make_layer
from testkit.imagepush import push_image, write_oci_layout
from testkit.localregistry import LocalRegistry, RequestRecord

RegistryFactory = Callable[..., LocalRegistry]

pytestmark = pytest.mark.registry

TAG = "20261127_01"


def copy(
    source_url: str,
    source_repo: str,
    reference: str,
    *,
    target_url: str,
    target_repo: str,
    tag: str | None,
    copier: Copier | None = None,
    source_creds: Credentials | None = None,
    target_creds: Credentials | None = None,
) -> CopyReport:
    async def run() -> CopyReport:
        async with RegistryClient(url=source_url, credentials=source_creds) as source:
            if target_url == source_url and target_creds == source_creds:
                target = source
            else:
                target = RegistryClient(url=target_url, credentials=target_creds)
            try:
                return await (copier or Copier()).copy(
                    source=source,
                    source_repository=source_repo,
                    reference=reference,
                    target=target,
                    target_repository=target_repo,
                    tag=tag,
                )
            finally:
                if target is not source:
                    await target.aclose()

    return asyncio.run(run())


def _writes(records: list[RequestRecord]) -> list[RequestRecord]:
    return [r for r in records if r.method in ("PUT", "POST", "PATCH")]


@pytest.mark.parametrize("fmt", ["docker", "oci"])
def test_copy_index_between_registries_writes_the_tag_last(registry_factory: RegistryFactory, fmt: str) -> None:
    source = registry_factory(name="src")
    target = registry_factory(name="dst")
    image = image_for("payments/api", TAG, fmt=fmt, platforms=("linux/amd64", "linux/arm64"))  # type: ignore[arg-type]
    push_image(image, source.url, "d/payments/api", TAG)

    report = copy(
        source.url, "d/payments/api", image.digest, target_url=target.url, target_repo="t/payments/api", tag=TAG
    )

    assert report.digest == image.digest
    assert report.already_present is False
    assert report.manifests_written == 3
    assert report.blobs_copied == len(image.blobs)
    assert report.bytes_copied == image.total_blob_bytes
    assert sorted(report.platforms) == ["linux/amd64", "linux/arm64"]
    writes = _writes(target.request_log())
    manifest_puts = [r for r in writes if r.kind == "manifest"]
    assert [r.path.rsplit("/", 1)[1] for r in manifest_puts][-1] == TAG  # the tag is the very last write
    assert writes[-1].kind == "manifest"
    assert writes[-1].path.endswith(f"/manifests/{TAG}")
    child_puts = {r.path.rsplit("/", 1)[1] for r in manifest_puts[:-1]}
    assert child_puts == {c.digest for c in image.children}
    # Each child manifest is written only after every one of its blobs completed.
    position = {r.path.rsplit("/", 1)[1]: i for i, r in enumerate(writes) if r.kind == "manifest"}
    completed = {
        r.query.split("digest=", 1)[1].replace("%3A", ":"): i
        for i, r in enumerate(writes)
        if r.kind == "upload" and r.method == "PUT" and r.status == 201
    }
    for child in image.children:
        assert all(completed[blob.digest] < position[child.digest] for blob in child.blobs)


def test_same_registry_copy_mounts_and_uploads_no_bytes(registry: LocalRegistry) -> None:
    image = image_for("payments/api", TAG, platforms=("linux/amd64", "linux/arm64"))
    push_image(image, registry.url, "s1/payments/api", TAG)
    mark = registry.mark()

    report = copy(
        registry.url, "s1/payments/api", image.digest, target_url=registry.url, target_repo="s2/payments/api", tag=TAG
    )

    assert report.blobs_mounted == len(image.blobs)
    assert report.blobs_copied == 0
    assert report.bytes_copied == 0
    records = registry.requests_since(mark)
    uploads = [r for r in records if r.kind == "upload"]
    assert uploads, "expected mount requests"
    assert all(r.method == "POST" and "mount=" in r.query and r.status == 201 for r in uploads)
    assert not [r for r in records if r.kind == "blob"]  # no blob was even read


def test_repeat_copy_makes_no_blob_requests(registry_factory: RegistryFactory) -> None:
    source = registry_factory(name="src")
    target = registry_factory(name="dst")
    image = image_for("app", TAG, platforms=("linux/amd64", "linux/arm64"))
    push_image(image, source.url, "app", TAG)
    copy(source.url, "app", image.digest, target_url=target.url, target_repo="app", tag=TAG)
    target_mark, source_mark = target.mark(), source.mark()

    report = copy(source.url, "app", image.digest, target_url=target.url, target_repo="app", tag=TAG)

    assert report.already_present is True
    assert [(r.method, r.kind) for r in target.requests_since(target_mark)] == [("HEAD", "manifest")]
    assert source.requests_since(source_mark) == []


def test_copy_by_tag_completes_a_partial_copy(registry_factory: RegistryFactory) -> None:
    """A copy killed after some blobs (here: simulated by pushing only some) converges on the next run."""
    source = registry_factory(name="src")
    target = registry_factory(name="dst")
    image = image_for("app", TAG)
    push_image(image, source.url, "app", TAG)
    present = image.manifests[0].layers[0].blob
    with httpx.Client() as raw:  # the first layer made it before the (simulated) crash
        start = raw.post(f"{target.url}/v2/app/blobs/uploads/")
        url = httpx.URL(target.url).join(start.headers["Location"]).copy_add_param("digest", present.digest)
        assert raw.put(url, content=present.read_bytes()).status_code == 201

    report = copy(source.url, "app", TAG, target_url=target.url, target_repo="app", tag=TAG)

    assert report.blobs_skipped == 1
    assert report.blobs_copied == len(image.blobs) - 1
    assert report.digest == image.digest


def test_concurrent_copies_share_blob_transfers(registry_factory: RegistryFactory) -> None:
    source = registry_factory(name="src")
    target = registry_factory(name="dst")
    base = [make_layer({"base/os-release": b"prod-osbase 1\n" * 2000})]
    images = [image_for("app", f"2026112{i}_01", base=base) for i in range(4)]
    for i, image in enumerate(images):
        push_image(image, source.url, "app", f"2026112{i}_01")
    copier = Copier()

    async def run() -> list[CopyReport]:
        async with RegistryClient(url=source.url) as src, RegistryClient(url=target.url) as dst:
            return await asyncio.gather(
                *(
                    copier.copy(
                        source=src,
                        source_repository="app",
                        reference=image.digest,
                        target=dst,
                        target_repository="app",
                        tag=f"2026112{i}_01",
                    )
                    for i, image in enumerate(images)
                )
            )

    reports = asyncio.run(run())
    base_digest = base[0].blob.digest
    base_puts = [r for r in target.request_log() if r.method == "PUT" and base_digest.replace(":", "%3A") in r.query]
    assert len(base_puts) == 1
    assert sum(r.blobs_copied for r in reports) == len({d for image in images for d in image.blobs})


def test_token_registry_copy_between_repositories_mounts(token_registry: AuthedRegistry) -> None:
    server = token_registry.token_server
    assert server is not None
    creds = Credentials(token_registry.username, token_registry.password)
    image = image_for("app", TAG)
    push_image(image, token_registry.url, "s1/app", TAG, username=creds.username, password=creds.password)

    report = copy(
        token_registry.url,
        "s1/app",
        TAG,
        target_url=token_registry.url,
        target_repo="s2/app",
        tag=TAG,
        source_creds=creds,
        target_creds=creds,
    )

    assert report.blobs_mounted == len(image.blobs)
    # A mount asks for pull on the source and push on the target, in one token.
    scopes = [sorted(token.scopes) for token in server.issued]
    assert ["repository:s1/app:pull", "repository:s2/app:pull,push"] in scopes


@pytest.mark.skopeo
def test_skopeo_pushed_image_copies_byte_exact(
    registry_factory: RegistryFactory, skopeo: Skopeo, tmp_path: Path
) -> None:
    source = registry_factory(name="src")
    target = registry_factory(name="dst")
    image = image_for("app", TAG, fmt="oci", platforms=("linux/amd64", "linux/arm64"))
    layout = write_oci_layout(image, tmp_path / "layout", TAG)
    skopeo.copy(f"oci:{layout}:{TAG}", f"docker://{source.host}/app:{TAG}")
    pushed = skopeo.digest(f"docker://{source.host}/app:{TAG}")

    report = copy(source.url, "app", TAG, target_url=target.url, target_repo="copied/app", tag=TAG)

    assert report.digest == pushed
    assert skopeo.digest(f"docker://{target.host}/copied/app:{TAG}") == pushed


@pytest.mark.skopeo
def test_reconciler_copied_image_is_pulled_intact_by_skopeo(
    registry_factory: RegistryFactory, skopeo: Skopeo, tmp_path: Path
) -> None:
    source = registry_factory(name="src")
    target = registry_factory(name="dst")
    image = image_for("app", TAG, fmt="docker", platforms=("linux/amd64", "linux/arm64"))
    push_image(image, source.url, "app", TAG)
    copy(source.url, "app", image.digest, target_url=target.url, target_repo="app", tag=TAG)

    out = tmp_path / "pulled"
    skopeo.copy(f"docker://{target.host}/app:{TAG}", f"oci:{out}:{TAG}")  # skopeo verifies every digest

    index = json.loads((out / "index.json").read_text())
    top = index["manifests"][0]["digest"]
    blobs = out / "blobs" / "sha256"
    assert top.startswith("sha256:")
    for path in blobs.iterdir():
        assert hashlib.sha256(path.read_bytes()).hexdigest() == path.name
    # skopeo converts Docker manifests to OCI when writing a layout, but layers stay byte-identical.
    layer_digests = {layer.blob.digest.split(":", 1)[1] for m in image.manifests for layer in m.layers}
    assert layer_digests <= {p.name for p in blobs.iterdir()}
    assert len(index["manifests"]) == 1
