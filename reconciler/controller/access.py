"""The registry access a controller pass uses: the pass's ``RegistryPool``, refusing NEW writes once the
controller is shutting down.

On SIGTERM the controller lets writes already under way finish (within ``--grace``) but must not start
more: the executor would otherwise go on through the rest of the plan while the grace period runs out.
This wrapper answers every read as the pool does and, once ``stopping`` is set, makes each copy or retag
that has not started yet fail at once with ``ShuttingDownError`` (temporary: the next run does it). The
copier writes a tag last, so neither a refused nor a cancelled write ever leaves a tag on an incomplete
image.

It never decides what to write and never writes anything itself: it only forwards or refuses.
"""

from __future__ import annotations

import asyncio
from typing import Any

from reconciler.engine.registries import RegistryPool
from reconciler.errors import ReconcilerError
from reconciler.model.plan import Location


class ShuttingDownError(ReconcilerError):
    """The controller is shutting down: this write was not started (the next run makes it)."""

    temporary = True


class StoppableAccess:
    """A ``RegistryAccess`` (and gate evidence source) over ``pool`` that refuses new writes after ``stopping``."""

    def __init__(self, pool: RegistryPool, stopping: asyncio.Event) -> None:
        self.pool = pool
        self._stopping = stopping

    def _refuse_when_stopping(self, target: Location, tag: str) -> None:
        if self._stopping.is_set():
            raise ShuttingDownError(f"{target}:{tag}: not started, the controller is shutting down")

    async def tag_digest(self, registry: str, repository: str, tag: str) -> str | None:
        return await self.pool.tag_digest(registry, repository, tag)

    async def has_manifest(self, registry: str, repository: str, digest: str) -> bool:
        return await self.pool.has_manifest(registry, repository, digest)

    async def tags(self, registry: str, repository: str) -> list[str]:
        return await self.pool.tags(registry, repository)

    async def copy(self, source: Location, target: Location, digest: str, tag: str) -> tuple[str, ...]:
        self._refuse_when_stopping(target, tag)
        return await self.pool.copy(source, target, digest, tag)

    async def retag(self, target: Location, digest: str, tag: str) -> None:
        self._refuse_when_stopping(target, tag)
        await self.pool.retag(target, digest, tag)

    def keep_manifests(self, keep: bool) -> None:
        self.pool.keep_manifests(keep)

    async def aclose(self) -> None:
        await self.pool.aclose()

    def __getattr__(self, name: str) -> Any:
        # Everything else the engine may look up on its access (gate evidence: manifest, blob, referrers;
        # progress: watch; request counts) is the pool's.
        return getattr(self.pool, name)
