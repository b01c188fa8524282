"""Manifests as values: media types, descriptors, platforms, and parsing of the four manifest kinds.

Reconciler understands Docker image manifest v2 schema 2, Docker manifest list, OCI image manifest and
OCI image index. Docker schema 1 is refused (it cannot be copied byte-exact across repositories: its
signature covers the repository name). A manifest keeps its raw bytes exactly as the registry served
them: the digest of an image is the hash of those bytes, so re-serialising would change the image.

No I/O here: parsing a manifest takes bytes and returns a value, and failures are ``InvalidManifestError``
(a ``ValueError``) that the registry layer re-raises with the registry, repository and digest attached.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from reconciler.model.digest import Digest, is_valid_digest

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"

IMAGE_MANIFEST_TYPES = frozenset({DOCKER_MANIFEST, OCI_MANIFEST})
INDEX_TYPES = frozenset({DOCKER_MANIFEST_LIST, OCI_INDEX})
MANIFEST_TYPES = IMAGE_MANIFEST_TYPES | INDEX_TYPES
SCHEMA1_TYPES = frozenset({DOCKER_SCHEMA1, DOCKER_SCHEMA1_SIGNED})

MANIFEST_ACCEPT = ", ".join((OCI_INDEX, DOCKER_MANIFEST_LIST, OCI_MANIFEST, DOCKER_MANIFEST))
"""The ``Accept`` header for every manifest request: all four kinds, always. CNCF distribution 2.8
answers 404 for an OCI manifest it was not asked for, and silently swaps a Docker manifest list for its
amd64 child when only the schema 2 type is accepted."""

MAX_MANIFEST_BYTES = 4 * 1024 * 1024
"""Manifests larger than this are refused (the limit of CNCF distribution and containerd)."""


class InvalidManifestError(ValueError):
    """Bytes that are not a manifest reconciler accepts. ``unsupported`` is True for a manifest that
    is well formed but of a kind reconciler refuses (schema 1, unknown media type, too large)."""

    def __init__(self, message: str, *, unsupported: bool = False) -> None:
        super().__init__(message)
        self.unsupported = unsupported


def sha256_digest(content: bytes) -> Digest:
    """The ``sha256:`` digest of ``content``."""
    return Digest("sha256:" + hashlib.sha256(content).hexdigest())


def digest_of(content: bytes, algorithm: str = "sha256") -> Digest:
    """The digest of ``content`` with ``algorithm`` (``sha256`` or ``sha512``)."""
    if algorithm not in ("sha256", "sha512"):
        raise ValueError(f"unsupported digest algorithm {algorithm!r}")
    return Digest(f"{algorithm}:{hashlib.new(algorithm, content).hexdigest()}")


@dataclass(frozen=True, slots=True)
class Platform:
    architecture: str
    os: str
    variant: str | None = None
    os_version: str | None = None

    def __str__(self) -> str:
        text = f"{self.os}/{self.architecture}"
        return f"{text}/{self.variant}" if self.variant else text

    def to_json(self) -> dict[str, str]:
        document = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            document["variant"] = self.variant
        if self.os_version:
            document["os.version"] = self.os_version
        return document


@dataclass(frozen=True, slots=True)
class Descriptor:
    """What points at content: its media type, digest and size (and, in an index, its platform)."""

    media_type: str
    digest: Digest
    size: int
    platform: Platform | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)
    urls: tuple[str, ...] = ()
    """Foreign layers (Windows base layers) live at these URLs, not in the registry; they are not copied."""

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {"mediaType": self.media_type, "digest": str(self.digest), "size": self.size}
        if self.platform is not None:
            document["platform"] = self.platform.to_json()
        if self.annotations:
            document["annotations"] = dict(self.annotations)
        if self.urls:
            document["urls"] = list(self.urls)
        return document


@dataclass(frozen=True, slots=True)
class Manifest:
    """A parsed manifest and the exact bytes it was parsed from.

    For an image manifest, ``config`` and ``layers`` are set and ``manifests`` is empty; for an index,
    ``manifests`` lists the children and ``config`` is None.
    """

    raw: bytes
    media_type: str
    digest: Digest
    config: Descriptor | None = None
    layers: tuple[Descriptor, ...] = ()
    manifests: tuple[Descriptor, ...] = ()
    annotations: Mapping[str, str] = field(default_factory=dict)
    subject: Descriptor | None = None

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES

    @property
    def size(self) -> int:
        return len(self.raw)

    @property
    def descriptor(self) -> Descriptor:
        return Descriptor(self.media_type, self.digest, len(self.raw))

    @property
    def blobs(self) -> tuple[Descriptor, ...]:
        """Config then layers, the blobs an image manifest needs in its repository (foreign layers excluded)."""
        found = [self.config] if self.config is not None else []
        found.extend(layer for layer in self.layers if not layer.urls)
        return tuple(found)

    @property
    def children(self) -> tuple[tuple[Descriptor, bool], ...]:
        """What this manifest needs next to it, each with whether it is itself a manifest: an index's
        entries (one of a media type that is not a manifest's is a blob), an image's config and layers."""
        if self.is_index:
            return tuple((child, child.media_type in MANIFEST_TYPES) for child in self.manifests)
        return tuple((blob, False) for blob in self.blobs)

    @property
    def image_bytes(self) -> int:
        """Bytes of the config and layers of an image manifest (0 for an index: sum its children)."""
        return sum(blob.size for blob in self.blobs)


def parse_descriptor(value: Any, where: str) -> Descriptor:
    """A descriptor object (``mediaType``, ``digest``, ``size``...) checked; ``where`` names it in errors."""
    if not isinstance(value, dict):
        raise InvalidManifestError(f"{where} is not an object")
    media_type = value.get("mediaType")
    digest = value.get("digest")
    size = value.get("size")
    if not isinstance(media_type, str) or not media_type:
        raise InvalidManifestError(f"{where}: mediaType missing or not a string")
    if not isinstance(digest, str) or not is_valid_digest(digest):
        raise InvalidManifestError(f"{where}: bad digest {digest!r}")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise InvalidManifestError(f"{where}: size missing or negative")
    platform = None
    raw_platform = value.get("platform")
    if raw_platform is not None:
        if not isinstance(raw_platform, dict):
            raise InvalidManifestError(f"{where}: platform is not an object")
        arch, os_name = raw_platform.get("architecture"), raw_platform.get("os")
        if not isinstance(arch, str) or not isinstance(os_name, str):
            raise InvalidManifestError(f"{where}: platform needs architecture and os strings")
        variant = raw_platform.get("variant")
        os_version = raw_platform.get("os.version")
        platform = Platform(
            architecture=arch,
            os=os_name,
            variant=variant if isinstance(variant, str) else None,
            os_version=os_version if isinstance(os_version, str) else None,
        )
    annotations = value.get("annotations") or {}
    urls = value.get("urls") or []
    if not isinstance(annotations, dict) or not isinstance(urls, list):
        raise InvalidManifestError(f"{where}: annotations must be an object and urls a list")
    return Descriptor(
        media_type=media_type,
        digest=Digest(digest),
        size=size,
        platform=platform,
        annotations={str(k): str(v) for k, v in annotations.items()},
        urls=tuple(str(url) for url in urls),
    )


def parse_manifest(raw: bytes, media_type: str | None = None, *, digest: str | None = None) -> Manifest:
    """Parse ``raw`` (kept byte-exact). ``media_type`` is the Content-Type the registry sent; when it
    is missing or generic, the document's own ``mediaType`` decides. With ``digest``, the bytes must hash
    to it (``InvalidManifestError`` otherwise). Schema 1 and unknown kinds raise ``InvalidManifestError`` with
    ``unsupported=True``."""
    if len(raw) > MAX_MANIFEST_BYTES:
        raise InvalidManifestError(
            f"manifest of {len(raw)} bytes exceeds the {MAX_MANIFEST_BYTES} byte limit", unsupported=True
        )
    if digest is not None:
        if not is_valid_digest(digest):
            raise InvalidManifestError(f"bad digest {digest!r}")
        actual = digest_of(raw, digest.split(":", 1)[0])
        if actual != digest:
            raise InvalidManifestError(f"manifest bytes hash to {actual}, not {digest}")
        own_digest = Digest(digest)
    else:
        own_digest = sha256_digest(raw)
    try:
        document = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidManifestError(f"manifest is not JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise InvalidManifestError("manifest is not a JSON object")
    declared = document.get("mediaType")
    content_type = (media_type or "").split(";", 1)[0].strip()
    if content_type in MANIFEST_TYPES or content_type in SCHEMA1_TYPES:
        kind = content_type
    elif isinstance(declared, str) and declared:
        kind = declared
    elif document.get("schemaVersion") == 1:
        kind = DOCKER_SCHEMA1
    elif "manifests" in document:
        kind = OCI_INDEX  # OCI allows omitting mediaType; the shape decides
    elif "config" in document:
        kind = OCI_MANIFEST
    else:
        kind = content_type or "unknown"
    if kind in SCHEMA1_TYPES or document.get("schemaVersion") == 1:
        raise InvalidManifestError(
            "Docker schema 1 manifests are not supported (deprecated; re-push the image with a current client)",
            unsupported=True,
        )
    if kind not in MANIFEST_TYPES:
        raise InvalidManifestError(f"unsupported manifest media type {kind!r}", unsupported=True)
    if isinstance(declared, str) and declared and declared != kind:
        raise InvalidManifestError(f"manifest declares mediaType {declared!r} but was served as {kind!r}")
    if document.get("schemaVersion") != 2:
        raise InvalidManifestError(f"schemaVersion must be 2, not {document.get('schemaVersion')!r}")
    annotations = document.get("annotations") or {}
    if not isinstance(annotations, dict):
        raise InvalidManifestError("annotations must be an object")
    subject = parse_descriptor(document["subject"], "subject") if document.get("subject") is not None else None
    if kind in INDEX_TYPES:
        children = document.get("manifests")
        if not isinstance(children, list):
            raise InvalidManifestError("index has no 'manifests' list")
        return Manifest(
            raw=raw,
            media_type=kind,
            digest=own_digest,
            manifests=tuple(parse_descriptor(child, f"manifests[{i}]") for i, child in enumerate(children)),
            annotations={str(k): str(v) for k, v in annotations.items()},
            subject=subject,
        )
    layers = document.get("layers")
    if not isinstance(layers, list):
        raise InvalidManifestError("image manifest has no 'layers' list")
    return Manifest(
        raw=raw,
        media_type=kind,
        digest=own_digest,
        config=parse_descriptor(document.get("config"), "config"),
        layers=tuple(parse_descriptor(layer, f"layers[{i}]") for i, layer in enumerate(layers)),
        annotations={str(k): str(v) for k, v in annotations.items()},
        subject=subject,
    )
