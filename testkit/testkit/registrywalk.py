"""Walk a registry and check that every tag resolves to a complete image: an independent integrity check.

:func:`walk_registry` lists the repositories (catalog) or takes the ones given, lists their tags, fetches
each tagged manifest (all four manifest media types accepted), and for an index each child manifest by
digest; it HEADs every config and layer blob. Anything missing or not matching its digest is reported as an
:class:`IntegrityProblem`. Crash-safety tests use it after killing an apply ("no tag ever points at an
incomplete image"), and the demo can use it to show what the registries hold.

It uses plain httpx with the simple challenge auth of :mod:`testkit.imagegen`, never the
product's registry client (which is what is being checked). Read-only: it never writes or deletes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

from testkit.imagegen import INDEX_MEDIA_TYPES, MANIFEST_MEDIA_TYPES
from testkit.imagepush import ChallengeAuth

_ACCEPT = ", ".join(MANIFEST_MEDIA_TYPES)


@dataclass(frozen=True)
class TaggedImage:
    repository: str
    tag: str
    digest: str
    media_type: str


@dataclass(frozen=True)
class IntegrityProblem:
    repository: str
    tag: str
    message: str

    def __str__(self) -> str:
        return f"{self.repository}:{self.tag}: {self.message}"


@dataclass
class RegistryWalk:
    """What a walk found: every tagged image, and every problem (empty when all images are complete)."""

    images: list[TaggedImage] = field(default_factory=list)
    problems: list[IntegrityProblem] = field(default_factory=list)

    def digest_of(self, repository: str, tag: str) -> str | None:
        for image in self.images:
            if image.repository == repository and image.tag == tag:
                return image.digest
        return None

    def tags(self) -> dict[tuple[str, str], str]:
        """``{(repository, tag): digest}``."""
        return {(image.repository, image.tag): image.digest for image in self.images}


class _Walker:
    def __init__(self, client: httpx.Client, auth: ChallengeAuth, base_url: str) -> None:
        self.client = client
        self.auth = auth
        self.base_url = base_url

    def get(self, path: str, *, method: str = "GET", headers: dict[str, str] | None = None) -> httpx.Response:
        request = self.client.build_request(method, f"{self.base_url}{path}", headers=headers)
        return self.auth.send(self.client, request)

    def paged(self, path: str, key: str) -> list[str]:
        """Follow ``Link: <...>; rel="next"`` pagination; return the concatenated ``key`` lists."""
        items: list[str] = []
        next_path: str | None = path
        while next_path:
            response = self.get(next_path)
            if response.status_code == 404:
                return items
            response.raise_for_status()
            items.extend(response.json().get(key) or [])
            link = response.headers.get("Link", "")
            next_path = link.split(";")[0].strip().strip("<>") if 'rel="next"' in link else None
        return items

    def manifest(self, repository: str, reference: str) -> tuple[bytes, str] | None:
        response = self.get(f"/v2/{repository}/manifests/{reference}", headers={"Accept": _ACCEPT})
        if response.status_code == 404:
            return None
        response.raise_for_status()
        return response.content, response.headers.get("Content-Type", "").split(";")[0].strip()

    def blob_present(self, repository: str, digest: str) -> bool:
        return self.get(f"/v2/{repository}/blobs/{digest}", method="HEAD").status_code == 200


def _digest(raw: bytes) -> str:
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def _check_image_manifest(walker: _Walker, repository: str, tag: str, body: dict[str, Any]) -> list[str]:
    missing = []
    descriptors = [body.get("config") or {}, *(body.get("layers") or [])]
    for descriptor in descriptors:
        digest = descriptor.get("digest")
        if not isinstance(digest, str):
            missing.append("a descriptor without digest")
        elif not walker.blob_present(repository, digest):
            missing.append(f"blob {digest} is missing")
    return missing


def walk_registry(
    registry_url: str,
    *,
    repositories: Iterable[str] | None = None,
    username: str | None = None,
    password: str | None = None,
    client: httpx.Client | None = None,
) -> RegistryWalk:
    """Every tag of ``repositories`` (default: the whole catalog) and every integrity problem found."""
    base_url = registry_url.rstrip("/")
    if "://" not in base_url:
        base_url = "http://" + base_url
    own_client = client is None
    http = client or httpx.Client(timeout=httpx.Timeout(30.0, connect=10.0))
    walker = _Walker(http, ChallengeAuth(username, password), base_url)
    result = RegistryWalk()
    try:
        names = (
            sorted(repositories) if repositories is not None else walker.paged("/v2/_catalog?n=1000", "repositories")
        )
        for repository in names:
            for tag in sorted(walker.paged(f"/v2/{repository}/tags/list", "tags")):
                _walk_tag(walker, repository, tag, result)
    finally:
        if own_client:
            http.close()
    return result


def _walk_tag(walker: _Walker, repository: str, tag: str, result: RegistryWalk) -> None:
    def problem(message: str) -> None:
        result.problems.append(IntegrityProblem(repository, tag, message))

    found = walker.manifest(repository, tag)
    if found is None:
        problem("listed in tags/list but its manifest is missing")
        return
    raw, media_type = found
    result.images.append(TaggedImage(repository, tag, _digest(raw), media_type))
    body = json.loads(raw)
    if media_type not in MANIFEST_MEDIA_TYPES:
        problem(f"unexpected manifest media type {media_type!r}")
        return
    if media_type not in INDEX_MEDIA_TYPES:
        for message in _check_image_manifest(walker, repository, tag, body):
            problem(message)
        return
    for entry in body.get("manifests") or []:
        child_digest = entry.get("digest", "")
        child = walker.manifest(repository, child_digest)
        if child is None:
            problem(f"child manifest {child_digest} is missing")
            continue
        child_raw, _ = child
        if _digest(child_raw) != child_digest:
            problem(f"child manifest {child_digest} has content hashing to {_digest(child_raw)}")
            continue
        for message in _check_image_manifest(walker, repository, tag, json.loads(child_raw)):
            problem(f"child {child_digest}: {message}")
