"""The registry operations a reconcile pass needs, as one small interface.

The engine talks to registries only through ``RegistryAccess``: resolve a tag, check a manifest by
digest, list a repository's tags, copy an image by digest (children and blobs first, the tag last),
write a tag for a manifest already in the repository. ``reconciler.engine.registries`` implements it on
the registry client; the planner never sees it (it is pure), and tests of the scheduling logic can
drive the executor without a network. Registries are named as in ``reconciler.yaml``, never by URL, so
no credential can travel through here.

Implementations raise ``reconciler.errors.RegistryError`` subclasses and nothing else.
"""

from __future__ import annotations

from typing import Protocol

from reconciler.model.plan import Location


class RegistryAccess(Protocol):
    async def tag_digest(self, registry: str, repository: str, tag: str) -> str | None:
        """The digest ``repository:tag`` points at, or None when the tag or repository does not exist."""
        ...

    async def has_manifest(self, registry: str, repository: str, digest: str) -> bool:
        """Whether the manifest ``repository@digest`` exists."""
        ...

    async def tags(self, registry: str, repository: str) -> list[str]:
        """Every tag of ``repository`` ([] when the repository does not exist)."""
        ...

    async def copy(self, source: Location, target: Location, digest: str, tag: str) -> tuple[str, ...] | None:
        """Copy ``source@digest`` to ``target:tag``: every blob and child manifest first, then the image's
        referrers, the tag LAST. Returns the digests of the referrers that travelled with it."""
        ...

    async def retag(self, target: Location, digest: str, tag: str) -> None:
        """Point ``target:tag`` at the manifest ``target@digest``, already in the repository."""
        ...

    async def aclose(self) -> None: ...
