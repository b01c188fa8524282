"""RegistryClient against real docker-registry processes: plain, htpasswd Basic and token auth.

Images are seeded with ``testkit.imagepush.push_image`` (independent of the client under test),
and request counts are read from the registry's own access log.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os

import pytest
from support.registries import AuthedRegistry

from reconciler.errors import AuthError, DigestMismatchError, NotFoundError
from reconciler.model.manifest import DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST
from reconciler.registry import Credentials, RegistryClient
from testkit.imagegen import image_for
from testkit.imagepush import push_image
from testkit.localregistry import LocalRegistry

pytestmark = pytest.mark.registry

TAG = "20261127_01"


def test_manifest_roundtrip_all_kinds(session_registry: LocalRegistry, unique_repo: str) -> None:
    images = {
        "docker-single": image_for("app", "1", fmt="docker"),
        "oci-single": image_for("app", "2", fmt="oci"),
        "docker-list": image_for("app", "3", fmt="docker", platforms=("linux/amd64", "linux/arm64")),
        "oci-index": image_for("app", "4", fmt="oci", platforms=("linux/amd64", "linux/arm64")),
    }
    for tag, image in images.items():
        push_image(image, session_registry.url, unique_repo, tag)

    async def check() -> None:
        async with RegistryClient(url=session_registry.url) as client:
            await client.ping()
            for tag, image in images.items():
                head = await client.head_manifest(unique_repo, tag)
                assert head is not None
                assert head.digest == image.digest
                assert head.media_type == image.media_type  # not swapped for a child: all four types accepted
                assert head.size == len(image.raw)
                manifest = await client.get_manifest(unique_repo, tag)
                assert manifest.raw == image.raw  # byte-exact
                assert manifest.digest == image.digest
                assert manifest.is_index == image.is_index
                if image.is_index:
                    assert [str(c.digest) for c in manifest.manifests] == [c.digest for c in image.children]
                    assert {str(c.platform) for c in manifest.manifests} == {"linux/amd64", "linux/arm64"}
                else:
                    assert manifest.config is not None
                    assert str(manifest.config.digest) == image.manifests[0].config.digest
                    assert [str(layer.digest) for layer in manifest.layers] == [
                        layer.blob.digest for layer in image.manifests[0].layers
                    ]
            assert await client.head_manifest(unique_repo, "absent") is None
            assert await client.list_tags(unique_repo) == sorted(images)

    asyncio.run(check())
    assert images["docker-list"].media_type == DOCKER_MANIFEST_LIST
    assert images["oci-index"].media_type == OCI_INDEX
    assert images["oci-single"].media_type == OCI_MANIFEST


def test_head_manifest_is_one_request(registry: LocalRegistry) -> None:
    image = image_for("app", TAG)
    push_image(image, registry.url, "app", TAG)
    mark = registry.mark()

    async def head() -> None:
        async with RegistryClient(url=registry.url) as client:
            assert (await client.head_manifest("app", TAG)) is not None

    asyncio.run(head())
    requests = registry.requests_since(mark)
    assert [(r.method, r.kind) for r in requests] == [("HEAD", "manifest")]


def test_get_manifest_missing_raises_not_found(session_registry: LocalRegistry, unique_repo: str) -> None:
    async def get() -> None:
        async with RegistryClient(url=session_registry.url) as client:
            await client.get_manifest(unique_repo, TAG)

    with pytest.raises(NotFoundError) as caught:
        asyncio.run(get())
    assert unique_repo in str(caught.value)
    assert session_registry.host in str(caught.value)


def test_list_tags_of_unknown_repository_is_empty(session_registry: LocalRegistry) -> None:
    async def tags() -> list[str]:
        async with RegistryClient(url=session_registry.url) as client:
            return await client.list_tags("never/pushed")

    assert asyncio.run(tags()) == []


def test_catalog_follows_pagination(registry: LocalRegistry) -> None:
    image = image_for("app", TAG)
    repositories = [f"team/app{i}" for i in range(7)]
    for repository in repositories:
        push_image(image, registry.url, repository, TAG)

    async def list_all() -> tuple[list[str], int]:
        async with RegistryClient(url=registry.url, page_size=2) as client:
            found = await client.catalog()
            return found, client.stats.by_method.get("GET", 0)

    found, gets = asyncio.run(list_all())
    assert found == repositories
    assert gets == 4  # 7 repositories in pages of 2, following the Link header


def test_put_delete_manifest_and_catalog(registry: LocalRegistry) -> None:
    image = image_for("app", TAG, fmt="oci")
    push_image(image, registry.url, "src", None)  # blobs and manifest by digest, no tag

    async def run() -> None:
        async with RegistryClient(url=registry.url) as client:
            manifest = await client.get_manifest("src", image.digest)
            digest = await client.put_manifest("src", TAG, manifest.raw, manifest.media_type)
            assert digest == image.digest
            assert await client.list_tags("src") == [TAG]
            assert await client.catalog() == ["src"]
            await client.delete_manifest("src", image.digest)
            assert await client.head_manifest("src", TAG) is None
            with pytest.raises(NotFoundError):
                await client.delete_manifest("src", image.digest)

    asyncio.run(run())


def test_blob_upload_stream_and_mount(registry: LocalRegistry) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()

    async def run() -> None:
        async with RegistryClient(url=registry.url) as client:
            assert await client.head_blob("a", digest) is None
            assert await client.upload_blob("a", digest, data) == "uploaded"
            assert await client.head_blob("a", digest) == len(data)
            received = bytearray()
            async with client.stream_blob("a", digest) as chunks:
                async for chunk in chunks:
                    received += chunk
            assert bytes(received) == data
            assert await client.mount_blob("b", digest, "a") is True
            assert await client.blob_exists("b", digest)
            missing = "sha256:" + "0" * 64
            assert await client.mount_blob("c", missing, "a") is False  # 202: declined, session cancelled

    asyncio.run(run())


def test_chunked_upload_uses_patch(registry: LocalRegistry) -> None:
    data = os.urandom(2 * 1024 * 1024 + 5)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    mark = registry.mark()

    async def run() -> None:
        async with RegistryClient(url=registry.url) as client:
            await client.upload_blob("chunks", digest, data, chunked=True, chunk_size=1024 * 1024)
            assert await client.get_blob("chunks", digest) == data

    asyncio.run(run())
    patches = [r for r in registry.requests_since(mark) if r.method == "PATCH"]
    assert len(patches) == 3


def test_upload_with_wrong_digest_never_completes(registry: LocalRegistry) -> None:
    data = os.urandom(3 * 1024 * 1024)
    wrong = "sha256:" + hashlib.sha256(b"something else").hexdigest()

    async def run() -> None:
        async with RegistryClient(url=registry.url) as client:
            await client.upload_blob("bad", wrong, data)

    with pytest.raises(DigestMismatchError) as caught:
        asyncio.run(run())
    assert wrong in str(caught.value)
    completed = [r for r in registry.request_log() if r.method == "PUT" and r.status in (201, 204)]
    assert completed == []


def test_basic_auth(basic_registry: AuthedRegistry) -> None:
    image = image_for("app", TAG)
    push_image(
        image, basic_registry.url, "app", TAG, username=basic_registry.username, password=basic_registry.password
    )

    async def run(creds: Credentials | None) -> str:
        async with RegistryClient(url=basic_registry.url, credentials=creds) as client:
            head = await client.head_manifest("app", TAG)
            assert head is not None
            return str(head.digest)

    good = Credentials(basic_registry.username, basic_registry.password)
    assert asyncio.run(run(good)) == image.digest
    bad = Credentials(basic_registry.username, "wrong-secret-value")
    with pytest.raises(AuthError) as caught:
        asyncio.run(run(bad))
    assert "wrong-secret-value" not in str(caught.value)
    assert "wrong-secret-value" not in repr(caught.value)
    with pytest.raises(AuthError, match="no credentials found"):
        asyncio.run(run(None))


def test_token_auth_caches_tokens_per_scope(token_registry: AuthedRegistry) -> None:
    server = token_registry.token_server
    assert server is not None
    image = image_for("app", TAG, platforms=("linux/amd64", "linux/arm64"))
    push_image(
        image, token_registry.url, "team/app", TAG, username=token_registry.username, password=token_registry.password
    )
    before = server.issued_count()

    async def run() -> None:
        creds = Credentials(token_registry.username, token_registry.password)
        async with RegistryClient(url=token_registry.url, credentials=creds) as client:
            for _ in range(3):
                assert (await client.head_manifest("team/app", TAG)) is not None
            index = await client.get_manifest("team/app", TAG)
            for child in index.manifests:
                await client.get_manifest("team/app", str(child.digest))
            assert await client.list_tags("team/app") == [TAG]

    asyncio.run(run())
    assert server.issued_count() - before == 1  # one pull token for the repository, reused


def test_token_auth_reader_cannot_push(token_registry: AuthedRegistry) -> None:
    async def run() -> None:
        creds = Credentials("reader", "reader-password")
        async with RegistryClient(url=token_registry.url, credentials=creds) as client:
            await client.put_manifest("team/x", TAG, json.dumps({"schemaVersion": 2}).encode(), OCI_MANIFEST)

    with pytest.raises(AuthError) as caught:
        asyncio.run(run())
    assert "reader-password" not in str(caught.value)
