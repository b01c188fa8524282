"""Deterministic container images for tests, benchmarks and the demo, and an independent way to push them.

Same inputs, same bytes, same digests: layers are gzip-compressed tars with fixed mtimes, owners and
modes (gzip header mtime 0), configs and manifests are canonical JSON (sorted keys, no spaces). An image
is Docker schema2 or OCI, single platform or a multi-platform index (Docker manifest list / OCI index).

- :func:`make_image` / :func:`image_for` build small images in memory (:class:`GeneratedImage`).
- :func:`generate_large_image` writes big images (e.g. 500 MiB in 5 incompressible layers) to files on
  disk, never holding a layer in memory.
- Pushing them and writing OCI layouts is :mod:`testkit.imagepush` (``push_image``, ``write_oci_layout``):
  an independent synchronous httpx client, so tests of the product's client do not seed their data with
  the code under test.

This module does no I/O but writing large layers to files, and never holds a file-backed blob in memory.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import random
import tarfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

ImageFormat = Literal["docker", "oci"]

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"

MANIFEST_MEDIA_TYPES: tuple[str, ...] = (DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_MANIFEST, OCI_INDEX)
INDEX_MEDIA_TYPES: tuple[str, ...] = (DOCKER_MANIFEST_LIST, OCI_INDEX)

FIXED_MTIME = 1_700_000_000  # 2023-11-14: a fixed, plausible mtime for every file in every layer
FIXED_CREATED = "2026-11-27T00:00:00Z"
_CHUNK = 1 << 20


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def canonical_json(value: Any) -> bytes:
    """Stable JSON bytes: sorted keys, no whitespace, UTF-8."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


# -- value types ------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Platform:
    os: str = "linux"
    architecture: str = "amd64"
    variant: str | None = None

    @classmethod
    def parse(cls, text: str) -> Platform:
        """``linux/amd64`` or ``linux/arm64/v8``."""
        parts = text.split("/")
        if len(parts) not in (2, 3) or not all(parts):
            raise ValueError(f"not a platform: {text!r} (want os/arch or os/arch/variant)")
        return cls(os=parts[0], architecture=parts[1], variant=parts[2] if len(parts) == 3 else None)

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)

    def to_json(self) -> dict[str, str]:
        result = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            result["variant"] = self.variant
        return result


LINUX_AMD64 = Platform()
LINUX_ARM64 = Platform(architecture="arm64", variant="v8")


@dataclass(frozen=True, kw_only=True)
class Blob:
    """A content-addressed blob, held in memory (``data``) or in a file (``path``)."""

    digest: str
    size: int
    media_type: str
    data: bytes | None = field(default=None, repr=False)
    path: Path | None = None

    @classmethod
    def from_bytes(cls, data: bytes, media_type: str) -> Blob:
        return cls(digest=sha256_digest(data), size=len(data), media_type=media_type, data=data)

    def chunks(self, chunk_size: int = _CHUNK) -> Iterator[bytes]:
        """The content, in chunks; a file-backed blob is streamed from disk."""
        if self.data is not None:
            for start in range(0, len(self.data), chunk_size):
                yield self.data[start : start + chunk_size]
            return
        if self.path is None:
            raise ValueError(f"blob {self.digest} has neither data nor path")
        with self.path.open("rb") as handle:
            while chunk := handle.read(chunk_size):
                yield chunk

    def read_bytes(self) -> bytes:
        """The whole content (for small blobs; a file-backed blob is read from disk)."""
        return self.data if self.data is not None else b"".join(self.chunks())

    def descriptor(self) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


@dataclass(frozen=True, kw_only=True)
class Layer:
    """A layer blob and the digest of its uncompressed tar (the config's ``rootfs.diff_ids`` entry)."""

    blob: Blob
    diff_id: str


@dataclass(frozen=True, kw_only=True)
class GeneratedManifest:
    """One platform's image manifest with its config and layers."""

    raw: bytes = field(repr=False)
    media_type: str
    digest: str
    platform: Platform
    config: Blob
    layers: tuple[Layer, ...]

    @property
    def size(self) -> int:
        return len(self.raw)

    @property
    def blobs(self) -> tuple[Blob, ...]:
        return (self.config, *(layer.blob for layer in self.layers))

    @property
    def diff_ids(self) -> tuple[str, ...]:
        return tuple(layer.diff_id for layer in self.layers)


@dataclass(frozen=True, kw_only=True)
class GeneratedImage:
    """An image ready to push: its top manifest (an image manifest or an index) and everything below it.

    ``manifests`` are the image manifests: for a single-platform image, one (the top manifest itself);
    for an index, one per platform (the children). ``blobs`` holds every config and layer, deduplicated.
    """

    raw: bytes = field(repr=False)
    media_type: str
    digest: str
    format: ImageFormat
    manifests: tuple[GeneratedManifest, ...]

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_MEDIA_TYPES

    @property
    def size(self) -> int:
        return len(self.raw)

    @property
    def children(self) -> tuple[GeneratedManifest, ...]:
        """The child manifests of an index (empty for a single-platform image)."""
        return self.manifests if self.is_index else ()

    @property
    def blobs(self) -> dict[str, Blob]:
        result: dict[str, Blob] = {}
        for manifest in self.manifests:
            for blob in manifest.blobs:
                result.setdefault(blob.digest, blob)
        return result

    @property
    def total_blob_bytes(self) -> int:
        return sum(blob.size for blob in self.blobs.values())

    @property
    def platforms(self) -> tuple[Platform, ...]:
        return tuple(m.platform for m in self.manifests)

    def manifest_for(self, platform: Platform | str) -> GeneratedManifest:
        wanted = Platform.parse(platform) if isinstance(platform, str) else platform
        for manifest in self.manifests:
            if manifest.platform == wanted:
                return manifest
        raise KeyError(f"no manifest for {wanted} in image {self.digest}")


# -- layers ------------------------------------------------------------------------------------------


def _tar_info(name: str, size: int, *, mode: int = 0o644) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = mode
    info.mtime = FIXED_MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def make_layer(files: Mapping[str, bytes], *, fmt: ImageFormat = "docker") -> Layer:
    """A gzip-compressed tar layer holding ``files`` (path -> content), deterministically.

    Files are written in sorted path order, mode 0644 (0755 under ``bin/``), owner root, fixed mtime.
    """
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(files):
            content = files[name]
            clean = name.lstrip("/")
            mode = 0o755 if clean.startswith(("bin/", "usr/bin/")) else 0o644
            tar.addfile(_tar_info(clean, len(content), mode=mode), io.BytesIO(content))
    uncompressed = raw.getvalue()
    compressed = gzip.compress(uncompressed, compresslevel=6, mtime=0)
    media_type = DOCKER_LAYER if fmt == "docker" else OCI_LAYER
    return Layer(blob=Blob.from_bytes(compressed, media_type), diff_id=sha256_digest(uncompressed))


# -- configs, manifests, indexes -------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ImageSettings:
    """What goes into the image config besides the layers (what policy gates look at)."""

    user: str | None = "10001"
    entrypoint: Sequence[str] | None = None
    cmd: Sequence[str] | None = ("/app",)
    labels: Mapping[str, str] | None = None
    env: Sequence[str] = ("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",)
    working_dir: str | None = None
    created: str = FIXED_CREATED


def make_config(
    diff_ids: Sequence[str], *, platform: Platform, settings: ImageSettings, fmt: ImageFormat = "docker"
) -> Blob:
    container_config: dict[str, Any] = {"Env": list(settings.env)}
    if settings.user is not None:
        container_config["User"] = settings.user
    if settings.entrypoint is not None:
        container_config["Entrypoint"] = list(settings.entrypoint)
    if settings.cmd is not None:
        container_config["Cmd"] = list(settings.cmd)
    if settings.labels:
        container_config["Labels"] = dict(settings.labels)
    if settings.working_dir:
        container_config["WorkingDir"] = settings.working_dir
    config: dict[str, Any] = {
        "architecture": platform.architecture,
        "os": platform.os,
        "created": settings.created,
        "config": container_config,
        "rootfs": {"type": "layers", "diff_ids": list(diff_ids)},
        "history": [{"created": settings.created, "created_by": f"testkit layer {i}"} for i in range(len(diff_ids))],
    }
    if platform.variant:
        config["variant"] = platform.variant
    return Blob.from_bytes(canonical_json(config), DOCKER_CONFIG if fmt == "docker" else OCI_CONFIG)


def make_manifest(
    config: Blob, layers: Sequence[Layer], *, platform: Platform, fmt: ImageFormat = "docker"
) -> GeneratedManifest:
    media_type = DOCKER_MANIFEST if fmt == "docker" else OCI_MANIFEST
    body = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": config.descriptor(),
        "layers": [layer.blob.descriptor() for layer in layers],
    }
    raw = canonical_json(body)
    return GeneratedManifest(
        raw=raw,
        media_type=media_type,
        digest=sha256_digest(raw),
        platform=platform,
        config=config,
        layers=tuple(layers),
    )


def make_index(manifests: Sequence[GeneratedManifest], *, fmt: ImageFormat = "docker") -> GeneratedImage:
    media_type = DOCKER_MANIFEST_LIST if fmt == "docker" else OCI_INDEX
    body = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "manifests": [
            {"mediaType": m.media_type, "digest": m.digest, "size": m.size, "platform": m.platform.to_json()}
            for m in manifests
        ],
    }
    raw = canonical_json(body)
    return GeneratedImage(
        raw=raw, media_type=media_type, digest=sha256_digest(raw), format=fmt, manifests=tuple(manifests)
    )


def single(manifest: GeneratedManifest, fmt: ImageFormat) -> GeneratedImage:
    return GeneratedImage(
        raw=manifest.raw, media_type=manifest.media_type, digest=manifest.digest, format=fmt, manifests=(manifest,)
    )


def make_image(
    layers: Sequence[Mapping[str, bytes]],
    *,
    fmt: ImageFormat = "docker",
    platforms: Sequence[Platform | str] = (LINUX_AMD64,),
    index: bool | None = None,
    settings: ImageSettings | None = None,
    base: Sequence[Layer] = (),
) -> GeneratedImage:
    """An image from file maps, one map per layer, on top of ``base`` layers (e.g. a shared base image's).

    With several platforms (or ``index=True``) the result is an index with one child per platform; each
    child gets the same layers plus a last layer with ``etc/platform`` naming its platform, so children
    share base blobs (as real multi-arch images often do) yet differ (as they always do).
    """
    wanted = [Platform.parse(p) if isinstance(p, str) else p for p in platforms]
    if not wanted:
        raise ValueError("an image needs at least one platform")
    as_index = len(wanted) > 1 if index is None else index
    if len(wanted) > 1 and not as_index:
        raise ValueError("several platforms need an index")
    settings = settings or ImageSettings()
    shared = [make_layer(files, fmt=fmt) for files in layers]
    manifests = []
    for platform in wanted:
        own = list(base) + shared
        if as_index:
            own.append(make_layer({"etc/platform": f"{platform}\n".encode()}, fmt=fmt))
        if not own:
            raise ValueError("an image needs at least one layer")
        config = make_config([layer.diff_id for layer in own], platform=platform, settings=settings, fmt=fmt)
        manifests.append(make_manifest(config, own, platform=platform, fmt=fmt))
    if as_index:
        return make_index(manifests, fmt=fmt)
    return single(manifests[0], fmt)


def _seeded(name: str, tag: str, salt: str = "") -> random.Random:
    seed = hashlib.sha256(f"{name}:{tag}:{salt}".encode()).digest()
    return random.Random(int.from_bytes(seed, "big"))  # noqa: S311 - test data, not security


def image_for(
    name: str,
    tag: str,
    *,
    fmt: ImageFormat = "docker",
    platforms: Sequence[Platform | str] = (LINUX_AMD64,),
    layer_count: int = 2,
    layer_size: int = 1024,
    settings: ImageSettings | None = None,
    base: Sequence[Layer] = (),
) -> GeneratedImage:
    """A small image whose content is derived from ``(name, tag)``: the same pair always gives the same
    digest, different pairs different digests. ``image_for("payments/api", "20261127_01")`` is how the demo
    seeds "the image payments/api:20261127_01".

    Layer contents are pseudo-random (incompressible), ``layer_size`` bytes each, plus an ``etc/image``
    file naming the image. Labels default to ``org.opencontainers.image.title`` / ``.version`` and a
    ``maintainer``, the user to ``10001``, the command to exec form ``["/app"]``.
    """
    rng = _seeded(name, tag)
    layers: list[dict[str, bytes]] = []
    for i in range(layer_count):
        files = {f"app/data-{i}.bin": rng.randbytes(layer_size)}
        if i == layer_count - 1:
            files["etc/image"] = f"{name}:{tag}\n".encode()
        layers.append(files)
    if settings is None:
        settings = ImageSettings(
            labels={
                "org.opencontainers.image.title": name,
                "org.opencontainers.image.version": tag,
                "maintainer": "platform-team@example.com",
            }
        )
    return make_image(layers, fmt=fmt, platforms=platforms, settings=settings, base=base)


# -- large images on disk --------------------------------------------------------------------------


class _HashingWriter:
    """Forwards writes to ``target`` while hashing and counting them (a write-only file object)."""

    def __init__(self, target: IO[bytes] | _HashingWriter | gzip.GzipFile) -> None:
        self._target = target
        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        self.size += len(data)
        self._target.write(data)
        return len(data)

    def flush(self) -> None:
        self._target.flush()


class _RandomReader:
    """A file-like source of ``size`` deterministic pseudo-random bytes (for ``tarfile.addfile``)."""

    def __init__(self, rng: random.Random, size: int) -> None:
        self._rng = rng
        self._left = size

    def read(self, n: int = -1) -> bytes:
        if n < 0 or n > self._left:
            n = self._left
        self._left -= n
        return self._rng.randbytes(n)


def write_layer_file(path: Path, *, size: int, seed: str, fmt: ImageFormat = "docker", compresslevel: int = 0) -> Layer:
    """Write a layer with one file of ``size`` incompressible bytes to ``path``, streaming (constant memory).

    ``compresslevel`` 0 (stored deflate blocks: a valid gzip stream, ~65 MB/s here against ~20 MB/s at
    level 1) because the data is incompressible anyway; copy engines move the blob bytes as they are.
    """
    rng = random.Random(int.from_bytes(hashlib.sha256(seed.encode()).digest(), "big"))  # noqa: S311
    with path.open("wb") as raw_file:
        compressed = _HashingWriter(raw_file)
        with gzip.GzipFile(fileobj=compressed, mode="wb", mtime=0, compresslevel=compresslevel) as gz:
            uncompressed = _HashingWriter(gz)
            with tarfile.open(fileobj=uncompressed, mode="w|", format=tarfile.PAX_FORMAT) as tar:  # type: ignore[call-overload]
                tar.addfile(_tar_info("data/blob.bin", size), _RandomReader(rng, size))
    media_type = DOCKER_LAYER if fmt == "docker" else OCI_LAYER
    blob = Blob(digest="sha256:" + compressed.hash.hexdigest(), size=compressed.size, media_type=media_type, path=path)
    return Layer(blob=blob, diff_id="sha256:" + uncompressed.hash.hexdigest())


def generate_large_image(
    directory: str | os.PathLike[str],
    *,
    layer_count: int = 5,
    layer_size: int = 100 * 1024 * 1024,
    fmt: ImageFormat = "docker",
    seed: str = "large",
    platform: Platform = LINUX_AMD64,
) -> GeneratedImage:
    """A single-platform image of ``layer_count`` incompressible layers of ``layer_size`` bytes each, written
    to ``directory`` (layers as files; config and manifest small, in memory). Reuses layer files already
    there from an earlier call with the same arguments (the digest is checked by name, not re-hashed)."""
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    layers = []
    for i in range(layer_count):
        key = f"{seed}-{fmt}-{i}-{layer_size}-z0"  # z0: gzip level 0; a changed recipe gets a new file name
        path = target / f"layer-{key}.tar.gz"
        meta = target / f"layer-{key}.json"
        if path.exists() and meta.exists():
            known = json.loads(meta.read_text())
            if known.get("size") == path.stat().st_size:
                media_type = DOCKER_LAYER if fmt == "docker" else OCI_LAYER
                blob = Blob(digest=known["digest"], size=known["size"], media_type=media_type, path=path)
                layers.append(Layer(blob=blob, diff_id=known["diff_id"]))
                continue
        layer = write_layer_file(path, size=layer_size, seed=key, fmt=fmt)
        meta.write_text(json.dumps({"digest": layer.blob.digest, "size": layer.blob.size, "diff_id": layer.diff_id}))
        layers.append(layer)
    settings = ImageSettings(labels={"org.opencontainers.image.title": f"large-{seed}"})
    config = make_config([layer.diff_id for layer in layers], platform=platform, settings=settings, fmt=fmt)
    return single(make_manifest(config, layers, platform=platform, fmt=fmt), fmt)


__all__ = [
    "Blob",
    "GeneratedImage",
    "GeneratedManifest",
    "ImageSettings",
    "Layer",
    "Platform",
    "generate_large_image",
    "image_for",
    "make_config",
    "make_image",
    "make_index",
    "make_layer",
    "make_manifest",
]
