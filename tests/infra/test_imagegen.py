"""Generated images are deterministic, well-formed, and survive a push/pull through real tools intact."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest
from support.registries import AuthedRegistry
from support.skopeo import Skopeo

from reconciler.errors import AuthError
from testkit.imagegen import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_INDEX,
    OCI_MANIFEST,
    GeneratedImage,
    ImageFormat,
    ImageSettings,
    generate_large_image,
    image_for,
    make_image,
)
from testkit.imagepush import push_image, write_oci_layout
from testkit.localregistry import LocalRegistry

TWO_PLATFORMS = ("linux/amd64", "linux/arm64/v8")


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_same_inputs_same_digests_different_inputs_different_digests() -> None:
    assert image_for("payments/api", "20261127_01").digest == image_for("payments/api", "20261127_01").digest
    assert image_for("payments/api", "20261127_01").digest != image_for("payments/api", "20261127_02").digest
    assert image_for("payments/api", "20261127_01").digest != image_for("payments/web", "20261127_01").digest
    index = image_for("a/b", "20261127_01", platforms=TWO_PLATFORMS, fmt="oci")
    assert index.digest == image_for("a/b", "20261127_01", platforms=TWO_PLATFORMS, fmt="oci").digest


@pytest.mark.parametrize("fmt", ["docker", "oci"])
def test_digests_sizes_and_diff_ids_are_right(fmt: str) -> None:
    image = image_for("payments/api", "20261127_01", fmt=fmt, layer_count=3)  # type: ignore[arg-type]
    assert image.digest == _sha(image.raw)
    manifest = json.loads(image.raw)
    assert manifest["mediaType"] == image.media_type == (DOCKER_MANIFEST if fmt == "docker" else OCI_MANIFEST)
    config_blob = image.blobs[manifest["config"]["digest"]]
    assert _sha(config_blob.read_bytes()) == config_blob.digest
    config = json.loads(config_blob.read_bytes())
    diff_ids = []
    for descriptor in manifest["layers"]:
        blob = image.blobs[descriptor["digest"]]
        data = blob.read_bytes()
        assert _sha(data) == descriptor["digest"]
        assert len(data) == descriptor["size"]
        uncompressed = gzip.decompress(data)
        diff_ids.append(_sha(uncompressed))
        with tarfile.open(fileobj=io.BytesIO(uncompressed)) as tar:
            for member in tar.getmembers():
                assert (member.uid, member.gid, member.mtime) == (0, 0, 1_700_000_000)
    assert config["rootfs"] == {"type": "layers", "diff_ids": diff_ids}
    assert config["config"]["User"] == "10001"
    assert config["config"]["Labels"]["org.opencontainers.image.version"] == "20261127_01"


def test_config_settings_are_written() -> None:
    settings = ImageSettings(user="0", entrypoint=["/bin/sh", "-c", "run"], cmd=None, labels={"maintainer": "x"})
    image = make_image([{"bin/run": b"#!/bin/sh\n"}], settings=settings)
    config = json.loads(image.manifests[0].config.read_bytes())["config"]
    assert config["User"] == "0"
    assert config["Entrypoint"] == ["/bin/sh", "-c", "run"]
    assert "Cmd" not in config
    assert config["Labels"] == {"maintainer": "x"}


@pytest.mark.parametrize(("fmt", "media_type"), [("docker", DOCKER_MANIFEST_LIST), ("oci", OCI_INDEX)])
def test_multi_platform_index_lists_each_child(fmt: str, media_type: str) -> None:
    image = image_for("a/b", "20261127_01", platforms=TWO_PLATFORMS, fmt=fmt)  # type: ignore[arg-type]
    assert image.is_index
    assert image.media_type == media_type
    index = json.loads(image.raw)
    assert [m["platform"]["architecture"] for m in index["manifests"]] == ["amd64", "arm64"]
    assert index["manifests"][1]["platform"]["variant"] == "v8"
    for entry, child in zip(index["manifests"], image.children, strict=True):
        assert entry["digest"] == child.digest == _sha(child.raw)
        assert entry["size"] == len(child.raw)
        config = json.loads(child.config.read_bytes())
        assert config["architecture"] == child.platform.architecture
    assert image.children[0].digest != image.children[1].digest


def _push_and_check(
    image: GeneratedImage,
    skopeo: Skopeo,
    host: str,
    url: str,
    *,
    creds: str | None = None,
    username: str | None = None,
    password: str | None = None,
) -> None:
    push_image(image, url, "d/payments/api", "20261127_01", username=username, password=password)
    raw = skopeo.inspect_raw(f"docker://{host}/d/payments/api:20261127_01", creds=creds)
    assert raw == image.raw
    for child in image.children:
        assert skopeo.inspect_raw(f"docker://{host}/d/payments/api@{child.digest}", creds=creds) == child.raw


@pytest.mark.parametrize("fmt", ["docker", "oci"])
@pytest.mark.parametrize("platforms", [("linux/amd64",), TWO_PLATFORMS], ids=["single", "index"])
def test_pushed_image_reads_back_byte_exact_with_skopeo(
    registry: LocalRegistry, skopeo: Skopeo, fmt: ImageFormat, platforms: tuple[str, ...]
) -> None:
    image = image_for("payments/api", "20261127_01", fmt=fmt, platforms=platforms)
    _push_and_check(image, skopeo, registry.host, registry.url)


def test_push_with_basic_auth(basic_registry: AuthedRegistry, skopeo: Skopeo) -> None:
    image = image_for("payments/api", "20261127_01")
    _push_and_check(
        image,
        skopeo,
        basic_registry.host,
        basic_registry.url,
        creds=basic_registry.creds,
        username=basic_registry.username,
        password=basic_registry.password,
    )


def test_push_skips_blobs_already_present(registry: LocalRegistry) -> None:
    image = image_for("payments/api", "20261127_01")
    push_image(image, registry.url, "r", "20261127_01")
    mark = registry.mark()
    push_image(image, registry.url, "r", "again")
    assert not [r for r in registry.requests_since(mark) if r.is_blob_write]


def test_skopeo_pulls_pushed_image_into_oci_layout_intact(
    registry: LocalRegistry, skopeo: Skopeo, tmp_path: Path
) -> None:
    image = image_for("payments/api", "20261127_01", fmt="oci", platforms=TWO_PLATFORMS)
    push_image(image, registry.url, "r", "20261127_01")
    skopeo.copy(f"docker://{registry.host}/r:20261127_01", f"oci:{tmp_path}:x")
    index = json.loads((tmp_path / "index.json").read_text())
    assert index["manifests"][0]["digest"] == image.digest
    for blob in image.blobs.values():
        stored = (tmp_path / "blobs" / "sha256" / blob.digest.split(":")[1]).read_bytes()
        assert _sha(stored) == blob.digest


def test_oci_layout_is_readable_by_skopeo(registry: LocalRegistry, skopeo: Skopeo, tmp_path: Path) -> None:
    image = image_for("payments/api", "20261127_01", fmt="oci", platforms=TWO_PLATFORMS)
    write_oci_layout(image, tmp_path, "v1")
    skopeo.copy(f"oci:{tmp_path}:v1", f"docker://{registry.host}/from-layout:v1")
    assert skopeo.digest(f"docker://{registry.host}/from-layout:v1") == image.digest


def test_oci_layout_refuses_docker_images(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="Docker format"):
        write_oci_layout(image_for("a", "b"), tmp_path, "v1")


def test_large_image_is_written_to_disk_streamed_and_pushes(
    registry: LocalRegistry, skopeo: Skopeo, tmp_path: Path
) -> None:
    image = generate_large_image(tmp_path, layer_count=2, layer_size=3 * 1024 * 1024 + 7)
    layers = image.manifests[0].layers
    assert all(layer.blob.data is None and layer.blob.path is not None for layer in layers)
    for layer in layers:
        assert layer.blob.path is not None
        data = layer.blob.path.read_bytes()
        assert _sha(data) == layer.blob.digest
        assert len(data) == layer.blob.size
        assert _sha(gzip.decompress(data)) == layer.diff_id
        assert layer.blob.size > 3 * 1024 * 1024  # incompressible
    assert generate_large_image(tmp_path, layer_count=2, layer_size=3 * 1024 * 1024 + 7).digest == image.digest
    fresh = generate_large_image(tmp_path / "fresh", layer_count=2, layer_size=3 * 1024 * 1024 + 7)
    assert fresh.digest == image.digest, "regenerated from scratch: same bytes"
    push_image(image, registry.url, "big", "v1")
    assert skopeo.digest(f"docker://{registry.host}/big:v1") == image.digest


def test_push_streams_large_blobs_in_constant_memory(registry: LocalRegistry, tmp_path: Path) -> None:
    import tracemalloc

    image = generate_large_image(tmp_path, layer_count=1, layer_size=24 * 1024 * 1024)
    tracemalloc.start()
    try:
        push_image(image, registry.url, "big", "v1")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 12 * 1024 * 1024, f"push held {peak} bytes at peak for a 24 MiB layer"


def test_push_errors_name_the_registry_and_never_the_password(basic_registry: AuthedRegistry) -> None:
    image = image_for("a", "b")
    with pytest.raises(AuthError) as refused:
        push_image(image, basic_registry.url, "r", "v1", username=basic_registry.username, password="wrong-secret-1")
    assert basic_registry.host in str(refused.value)
    assert "wrong-secret-1" not in str(refused.value)
    assert "wrong-secret-1" not in repr(refused.value)
    with pytest.raises(AuthError, match="none were given"):
        push_image(image, basic_registry.url, "r", "v1")
