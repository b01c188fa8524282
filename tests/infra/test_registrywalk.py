"""The registry walker finds every tag and reports tags whose image is incomplete."""

from __future__ import annotations

import httpx
from support.registries import AuthedRegistry, RegistryFactory

from testkit.imagegen import image_for
from testkit.imagepush import push_image
from testkit.localregistry import LocalRegistry
from testkit.registrywalk import walk_registry

TWO = ("linux/amd64", "linux/arm64/v8")


def test_complete_images_have_no_problems(registry: LocalRegistry) -> None:
    single = image_for("a", "20261127_01")
    index = image_for("b", "20261127_01", fmt="oci", platforms=TWO)
    push_image(single, registry.url, "d/a", "20261127_01")
    push_image(index, registry.url, "d/b", "20261127_01")
    push_image(index, registry.url, "d/b", "20261127_02")
    walk = walk_registry(registry.url)
    assert walk.problems == []
    assert walk.tags() == {
        ("d/a", "20261127_01"): single.digest,
        ("d/b", "20261127_01"): index.digest,
        ("d/b", "20261127_02"): index.digest,
    }


def test_missing_blob_and_missing_child_are_reported(registry_factory: RegistryFactory) -> None:
    # the blob is removed from storage behind the registry's back: no descriptor cache to remember it
    registry = registry_factory(name="tampered", blob_descriptor_cache=False)
    single = image_for("a", "20261127_01")
    index = image_for("b", "20261127_01", platforms=TWO)
    push_image(single, registry.url, "d/a", "v1")
    push_image(index, registry.url, "d/b", "v1")
    layer = single.manifests[0].layers[0].blob.digest
    blob_dir = registry.storage_dir / "docker/registry/v2/blobs/sha256" / layer[7:9] / layer[7:]
    (blob_dir / "data").unlink()
    child = index.children[1].digest
    assert httpx.delete(f"{registry.url}/v2/d/b/manifests/{child}").status_code == 202
    messages = sorted(str(p) for p in walk_registry(registry.url).problems)
    assert messages == [f"d/a:v1: blob {layer} is missing", f"d/b:v1: child manifest {child} is missing"]


def test_walk_with_token_auth_and_given_repositories(token_registry: AuthedRegistry) -> None:
    image = image_for("a", "20261127_01")
    user, password = token_registry.username, token_registry.password
    push_image(image, token_registry.url, "p/a", "v1", username=user, password=password)
    walk = walk_registry(token_registry.url, repositories=["p/a"], username=user, password=password)
    assert walk.problems == []
    assert walk.digest_of("p/a", "v1") == image.digest
    whole = walk_registry(token_registry.url, username=user, password=password)  # catalog scope granted
    assert whole.tags() == {("p/a", "v1"): image.digest}
