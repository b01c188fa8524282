"""Is an image in a registry whole? Read it back: the manifest, every child, every blob's size.

A registry can acknowledge a write it did not keep: distribution 2.8 with a full disk answers 500 to a
manifest PUT after creating its blob file EMPTY, and the retried PUT then finds the (empty) blob "already
present", links it and answers 201. The tag is fine, a HEAD on it is fine, ``plan`` says in sync, and the
child manifest answers 500 to every pull. Only reading the image back shows it.

``ImageVerifier.verify`` does that for one tag or digest: GET the manifest (checked against its digest,
and against ``expected`` when the reference is a tag), GET every child of an index (digest-checked), and
HEAD every blob of every image manifest, comparing the size the registry reports with the descriptor's (an
empty blob answers 0 bytes). Blobs are not downloaded and re-hashed: a registry stores blobs under their
digest after checking it on upload, and what fails is the write, which a size shows. Cost: one GET per
manifest, one HEAD per distinct blob; what was found intact is remembered for the life of the client, so
the children and blobs an index shares with an image checked before are not asked again.

It returns problems (data), never raises for what it finds; only ``RegistryClient.put_manifest`` turns
problems into an error (see there: it reads back after the registry answered 5xx to a write).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from reconciler.errors import NotFoundError, RegistryError
from reconciler.model.digest import is_valid_digest
from reconciler.model.manifest import Descriptor, Manifest


class ImageReader(Protocol):
    """What the verifier reads through: a registry client's manifest GET and blob HEAD."""

    async def get_manifest(self, repository: str, reference: str) -> Manifest: ...

    async def head_blob(self, repository: str, digest: str) -> int | None: ...


MAX_CHECKS_IN_FLIGHT = 8


@dataclass(frozen=True, slots=True)
class ImageProblem:
    """One thing wrong with an image as the registry serves it: the manifest or blob, and what is wrong."""

    repository: str
    reference: str
    """The tag, manifest digest or blob digest that is not as it should be."""
    message: str

    def __str__(self) -> str:
        separator = "@" if is_valid_digest(self.reference) else ":"
        return f"{self.repository}{separator}{self.reference}: {self.message}"


def _reason(exc: RegistryError) -> str:
    return exc.reason if exc.status is None or str(exc.status) in exc.reason else f"{exc.reason} ({exc.status})"


class ImageVerifier:
    """Reads images back from one registry (see the module docstring). One per ``RegistryClient``."""

    def __init__(self, client: ImageReader) -> None:
        self._client = client
        self._intact: set[tuple[str, str]] = set()
        """(repository, digest) of manifests and blobs already found whole."""
        self._slots = asyncio.Semaphore(MAX_CHECKS_IN_FLIGHT)

    async def verify(self, repository: str, reference: str, *, expected: str | None = None) -> list[ImageProblem]:
        """Problems of the image ``reference`` (a tag or a digest) names in ``repository``; [] when whole.
        ``expected``: the digest the tag must point at."""
        try:
            manifest = await self._client.get_manifest(repository, reference)
        except NotFoundError:
            return [ImageProblem(repository, reference, "manifest not found")]
        except RegistryError as exc:
            return [ImageProblem(repository, reference, f"manifest cannot be read back: {_reason(exc)}")]
        if expected is not None and str(manifest.digest) != expected:
            return [ImageProblem(repository, reference, f"points at {manifest.digest}, not {expected}")]
        images = [manifest]
        problems: list[ImageProblem] = []
        if manifest.is_index:
            images = []
            children = await asyncio.gather(*(self._child(repository, d) for d in manifest.manifests))
            for child in children:
                if isinstance(child, ImageProblem):
                    problems.append(child)
                elif child is not None:
                    images.append(child)
        blobs = {str(b.digest): b for image in images for b in image.blobs if not b.urls}
        checked = await asyncio.gather(*(self._blob(repository, blob) for blob in blobs.values()))
        broken = {problem.reference: problem for problem in checked if problem is not None}
        problems.extend(broken.values())
        for image in images:  # a manifest is whole when it and every blob it names are
            if not any(str(blob.digest) in broken for blob in image.blobs):
                self._intact.add((repository, str(image.digest)))
        if not problems:
            self._intact.add((repository, str(manifest.digest)))
        return problems

    async def _child(self, repository: str, descriptor: Descriptor) -> Manifest | ImageProblem | None:
        """The child manifest, a problem, or None when it was found whole before (its blobs too)."""
        digest = str(descriptor.digest)
        if (repository, digest) in self._intact:
            return None
        async with self._slots:
            try:
                child = await self._client.get_manifest(repository, digest)
            except NotFoundError:
                return ImageProblem(repository, digest, "child manifest not found")
            except RegistryError as exc:
                return ImageProblem(repository, digest, f"child manifest cannot be read back: {_reason(exc)}")
        return child

    async def _blob(self, repository: str, blob: Descriptor) -> ImageProblem | None:
        digest = str(blob.digest)
        if (repository, digest) in self._intact:
            return None
        async with self._slots:
            try:
                size = await self._client.head_blob(repository, digest)
            except RegistryError as exc:
                return ImageProblem(repository, digest, f"blob cannot be read back: {_reason(exc)}")
        if size is None:
            return ImageProblem(repository, digest, "blob not found")
        if size >= 0 and blob.size >= 0 and size != blob.size:
            return ImageProblem(repository, digest, f"blob holds {size} bytes, its descriptor says {blob.size}")
        self._intact.add((repository, digest))
        return None


def describe(problems: Sequence[ImageProblem]) -> str:
    """One line for a person: the first problem, and how many more."""
    more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
    return f"{problems[0]}{more}"
