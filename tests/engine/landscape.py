"""Five real registries shaped like the example (dev, test, pre, prod-a, prod-b), a desired state that
points at them, seeding with generated images, and an integrity walker independent of the product."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from testkit.demo import CHAIN_REGISTRIES, write_chain_state
from testkit.imagegen import GeneratedImage, image_for
from testkit.imagepush import push_image
from testkit.localregistry import LocalRegistry

ENVS = ("d", "t", "s1", "s2", "p")
ACCEPT = ", ".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)
REGISTRY_OF = {"d": ("dev",), "t": ("test",), "s1": ("pre",), "s2": ("pre",), "p": ("prod-a", "prod-b")}


@dataclass
class Landscape:
    registries: dict[str, LocalRegistry]
    urls: dict[str, str]
    """What the desired state points at (a registry's own URL, or a proxy in front of it)."""
    root: Path
    images: dict[tuple[str, str], GeneratedImage] = field(default_factory=dict)

    def image(self, name: str, tag: str, **kwargs: Any) -> GeneratedImage:
        key = (name, tag)
        if key not in self.images:
            self.images[key] = image_for(name, tag, **kwargs)
        return self.images[key]

    def seed(self, name: str, tag: str, *, env: str = "d", tagged: bool = True, **kwargs: Any) -> str:
        """Push image_for(name, tag) into ``env``'s repository on each of its registries (direct, no proxy)."""
        image = self.image(name, tag, **kwargs)
        for registry in REGISTRY_OF[env]:
            push_image(image, self.registries[registry].url, f"{env}/{name}", tag if tagged else None)
        return str(image.digest)

    def write(self, pins: dict[str, list[tuple[str, str, str]]], **kwargs: Any) -> Path:
        return write_chain_state(self.root, self.urls, pins, **kwargs)

    def promote_everywhere(self, versions: Iterable[tuple[str, str]], envs: Iterable[str] = ENVS) -> Path:
        """Seed d with each (image, tag) and pin it in every environment of ``envs``."""
        triples = [(name, tag, self.seed(name, tag)) for name, tag in versions]
        return self.write({env: list(triples) for env in envs})

    def tag_digest(self, env: str, registry: str, name: str, tag: str) -> str | None:
        response = httpx.head(
            f"{self.registries[registry].url}/v2/{env}/{name}/manifests/{tag}", headers={"Accept": ACCEPT}
        )
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return response.headers["docker-content-digest"]


LandscapeFactory = Callable[..., Landscape]


def walk_registry(url: str) -> tuple[set[str], list[str]]:
    """Resolve every tag of every repository and check that its manifest, child manifests and blobs are
    all there (in that repository). Returns (every ``repository:tag`` checked, problems)."""
    problems: list[str] = []
    checked: set[str] = set()
    with httpx.Client(base_url=url, timeout=30) as client:
        catalog: list[str] = []
        page: str | None = "/v2/_catalog?n=1000"
        while page:
            response = client.get(page)
            response.raise_for_status()
            catalog += response.json().get("repositories") or []
            link = response.headers.get("link")
            page = link.split(";")[0].strip("<> ") if link else None
        for repository in catalog:
            listing = client.get(f"/v2/{repository}/tags/list")
            listing.raise_for_status()
            tags = listing.json().get("tags") or []
            for tag in tags:
                checked.add(f"{repository}:{tag}")
                problems += _check_manifest(client, repository, tag, f"{repository}:{tag}")
    return checked, problems


def _check_manifest(client: httpx.Client, repository: str, reference: str, where: str) -> list[str]:
    response = client.get(f"/v2/{repository}/manifests/{reference}", headers={"Accept": ACCEPT})
    if response.status_code != 200:
        return [f"{where}: manifest {reference} answers {response.status_code}"]
    manifest = json.loads(response.content)
    problems: list[str] = []
    for child in manifest.get("manifests", []):
        problems += _check_manifest(client, repository, child["digest"], f"{where} -> {child['digest'][:19]}")
    blobs = ([manifest["config"]] if "config" in manifest else []) + manifest.get("layers", [])
    for blob in blobs:
        head = client.head(f"/v2/{repository}/blobs/{blob['digest']}")
        if head.status_code != 200:
            problems.append(f"{where}: blob {blob['digest'][:19]} answers {head.status_code}")
    return problems


def start_landscape(
    start_registry: Callable[..., LocalRegistry], root: Path, url_for: Callable[[str, LocalRegistry], str] | None = None
) -> Landscape:
    registries = {name: start_registry(name=name) for name in CHAIN_REGISTRIES}
    urls = {name: (url_for(name, reg) if url_for else reg.url) for name, reg in registries.items()}
    return Landscape(registries=registries, urls=urls, root=root)
