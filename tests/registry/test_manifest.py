"""Manifest parsing: the four kinds, byte-exact, digest checked, schema 1 and oversize refused."""

from __future__ import annotations

import json

import pytest

from reconciler.model.manifest import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    MANIFEST_ACCEPT,
    OCI_INDEX,
    OCI_MANIFEST,
    InvalidManifestError,
    parse_manifest,
    sha256_digest,
)
from testkit.imagegen import image_for


@pytest.mark.parametrize("fmt", ["docker", "oci"])
@pytest.mark.parametrize("platforms", [("linux/amd64",), ("linux/amd64", "linux/arm64")])
def test_parses_generated_images(fmt: str, platforms: tuple[str, ...]) -> None:
    image = image_for("app", "20261127_01", fmt=fmt, platforms=platforms)  # type: ignore[arg-type]
    manifest = parse_manifest(image.raw, image.media_type, digest=image.digest)
    assert manifest.raw == image.raw
    assert manifest.digest == image.digest
    assert manifest.media_type == image.media_type
    if image.is_index:
        assert manifest.is_index
        assert [str(m.digest) for m in manifest.manifests] == [c.digest for c in image.children]
        assert manifest.blobs == ()
    else:
        generated = image.manifests[0]
        assert manifest.config is not None
        assert str(manifest.config.digest) == generated.config.digest
        assert [str(b.digest) for b in manifest.blobs] == [b.digest for b in generated.blobs]
        assert manifest.image_bytes == sum(b.size for b in generated.blobs)


def test_children_are_an_index_entries_or_an_image_blobs() -> None:
    single = parse_manifest(image_for("app", "1", fmt="oci").raw)
    assert single.children == tuple((blob, False) for blob in single.blobs)
    child = {"mediaType": OCI_MANIFEST, "digest": "sha256:" + "a" * 64, "size": 10}
    other = {"mediaType": "application/vnd.example.blob", "digest": "sha256:" + "b" * 64, "size": 3}
    body = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [child, other]}
    index = parse_manifest(json.dumps(body).encode())
    assert [(str(d.digest)[7:8], is_manifest) for d, is_manifest in index.children] == [("a", True), ("b", False)]


def test_media_type_from_document_when_content_type_is_generic() -> None:
    image = image_for("app", "1", fmt="oci")
    assert parse_manifest(image.raw, "application/json").media_type == OCI_MANIFEST
    assert parse_manifest(image.raw, None).media_type == OCI_MANIFEST


def test_oci_index_without_media_type_is_recognised_by_shape() -> None:
    raw = json.dumps({"schemaVersion": 2, "manifests": []}).encode()
    assert parse_manifest(raw).media_type == OCI_INDEX


def test_accept_header_names_all_four_kinds() -> None:
    for media_type in (DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_MANIFEST, OCI_INDEX):
        assert media_type in MANIFEST_ACCEPT


def test_wrong_digest_is_refused() -> None:
    image = image_for("app", "1")
    with pytest.raises(InvalidManifestError, match="hash to"):
        parse_manifest(image.raw, image.media_type, digest=sha256_digest(b"other"))


def test_schema1_is_unsupported() -> None:
    raw = json.dumps({"schemaVersion": 1, "name": "x", "fsLayers": []}).encode()
    with pytest.raises(InvalidManifestError, match="schema 1") as caught:
        parse_manifest(raw, "application/vnd.docker.distribution.manifest.v1+prettyjws")
    assert caught.value.unsupported


def test_oversized_and_unknown_are_unsupported() -> None:
    with pytest.raises(InvalidManifestError, match="limit") as caught:
        parse_manifest(b" " * (4 * 1024 * 1024 + 1))
    assert caught.value.unsupported
    with pytest.raises(InvalidManifestError, match="unsupported manifest media type") as caught:
        parse_manifest(b'{"schemaVersion": 2, "mediaType": "application/x-helm"}')
    assert caught.value.unsupported


@pytest.mark.parametrize(
    ("document", "complaint"),
    [
        ({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": {}, "layers": []}, "config"),
        (
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": "x", "digest": "sha256:1", "size": 1},
                "layers": [],
            },
            "bad digest",
        ),
        ({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": "nope"}, "manifests"),
        ({"schemaVersion": 3, "mediaType": OCI_INDEX, "manifests": []}, "schemaVersion"),
    ],
)
def test_malformed_manifests(document: dict[str, object], complaint: str) -> None:
    with pytest.raises(InvalidManifestError, match=complaint) as caught:
        parse_manifest(json.dumps(document).encode())
    assert not caught.value.unsupported


def test_not_json() -> None:
    with pytest.raises(InvalidManifestError, match="not JSON"):
        parse_manifest(b"\xff\xfe")
