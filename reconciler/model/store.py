"""The one interface of anything that holds images: a registry, an OCI image layout (the archive).

``ImageStore`` is what the copier copies between (regclient's ``scheme`` is the model): a registry
client and the archive's OCI layout both implement it, so copy, archive, restore and export are one
copy engine, not four. A store is addressed by ``repository`` (``t/payments/api``) and ``reference`` (a
tag or a digest), as in the distribution API; a store without repositories (an OCI layout keeps one
blob pool) may treat blobs as shared by every repository and name its entries ``repository:tag``.

The contract every implementation keeps:

* reads are verified: ``get_manifest`` checks the bytes against the digest that named them, and a
  ``stream_blob`` iterator raises (a ``DigestMismatchError``) at its end instead of finishing when the
  bytes do not hash to the digest, so a consumer that holds back its last chunk never completes a wrong
  blob (the uploads of both stores do hold it back);
* writes are ordered by the caller: blobs, then child manifests, then the manifest, then the tag; a store
  never makes a tag visible before the manifest it names is complete;
* every failure is a ``reconciler.errors.ReconcilerError`` naming the store, repository and digest.

Also here, because both the copier and the engine's progress display speak it: ``CopyProgress``, the
observer of blob transfers. Nothing in this module does I/O.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Literal, Protocol

from reconciler.model.digest import Digest
from reconciler.model.manifest import Descriptor, Manifest

BlobOpener = Callable[[], AbstractAsyncContextManager[AsyncIterator[bytes]]]
"""Opens a fresh stream of a blob's bytes; called once per upload attempt (a retry re-opens it)."""
ByteProgress = Callable[[int], None]
"""Called with each number of bytes sent (negative to rewind when an attempt is retried)."""
UploadOutcome = Literal["uploaded", "mounted"]
BlobOutcome = Literal["copied", "mounted", "skipped"]


class ImageStore(Protocol):
    """Something that holds images: manifests by digest or tag, blobs by digest (see the module docstring)."""

    @property
    def key(self) -> str:
        """Identity of the store: two stores with equal keys share blobs, so a blob can be mounted from one
        repository into another instead of being sent."""
        ...

    @property
    def name(self) -> str:
        """How to name the store to a person (a registry's name in reconciler.yaml, an archive's path)."""
        ...

    async def head_manifest(self, repository: str, reference: str) -> Descriptor | None:
        """The descriptor of the manifest ``reference`` names, or None when absent."""
        ...

    async def get_manifest(self, repository: str, reference: str) -> Manifest:
        """The manifest, byte-exact and verified; ``NotFoundError`` when absent."""
        ...

    async def put_manifest(self, repository: str, reference: str, raw: bytes, media_type: str) -> Digest:
        """Store ``raw`` under ``reference`` (a tag, or its own digest); every blob and child it names must
        already be in the store."""
        ...

    async def list_tags(self, repository: str) -> list[str]:
        """Every tag of ``repository``, sorted; [] when it does not exist."""
        ...

    async def blob_exists(self, repository: str, digest: str) -> bool: ...

    def stream_blob(self, repository: str, digest: str) -> AbstractAsyncContextManager[AsyncIterator[bytes]]:
        """``async with store.stream_blob(repo, digest) as chunks``: the blob's bytes, verified (see above)."""
        ...

    async def get_blob(self, repository: str, digest: str, *, max_bytes: int) -> bytes:
        """A small blob (a config) whole and verified; refused when larger than ``max_bytes``."""
        ...

    async def upload_blob(
        self,
        repository: str,
        digest: str,
        content: bytes | BlobOpener,
        *,
        size: int | None = None,
        mount_from: str | None = None,
        progress: ByteProgress | None = None,
        verify: bool = True,
    ) -> UploadOutcome:
        """Put blob ``digest`` into ``repository`` from ``content`` (bytes, or an opener called per attempt),
        or mount it from ``mount_from`` (a repository of this store). With ``verify`` the bytes are hashed on
        the way and a blob that does not match its digest (or ``size``) is never completed."""
        ...

    async def mount_blob(self, repository: str, digest: str, from_repository: str) -> bool:
        """Make blob ``digest`` of ``from_repository`` available in ``repository`` without sending it;
        False when the store declines (the caller then sends the bytes)."""
        ...


class CopyProgress(Protocol):
    """Receives progress of the blobs of a copy (a terminal progress bar, a metrics counter)."""

    def blob_started(self, digest: str, size: int) -> None: ...

    def blob_advanced(self, digest: str, nbytes: int) -> None:
        """``nbytes`` more bytes of ``digest`` were sent (negative when a retry starts over)."""
        ...

    def blob_finished(self, digest: str, outcome: BlobOutcome) -> None: ...
