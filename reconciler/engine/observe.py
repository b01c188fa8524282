"""Observe the registries: resolve every declared tag, then look up by digest only what the planner needs.

Two rounds, each run concurrently by a bounded pool of workers (not one task per lookup, so 50,000
lookups cost 64 coroutines, not 50,000): first one HEAD per declared tag on every registry of every
selected environment; then, only for tags that are not in sync, one HEAD by digest for the target
repository and each candidate source (``reconciler.engine.plan.manifest_lookups``). A fully in-sync
state therefore costs exactly one request per declared tag and registry.

A lookup that fails (registry down after retries, auth refused) is recorded as an error for that key,
never as "absent": the planner turns it into an UNREACHABLE action for the images concerned, and the
other images carry on. This module never writes to a registry.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Iterable
from typing import TypeVar

from reconciler.engine.access import RegistryAccess
from reconciler.engine.plan import manifest_lookups, tag_lookups
from reconciler.errors import NotFoundError, RegistryError
from reconciler.model.desired import DesiredState
from reconciler.model.observed import ManifestKey, ObservedState, TagKey

DEFAULT_OBSERVE_CONCURRENCY = 64

K = TypeVar("K")
V = TypeVar("V")


async def _pool(
    keys: Iterable[K], lookup: Callable[[K], Awaitable[V]], concurrency: int
) -> tuple[dict[K, V], dict[K, str]]:
    results: dict[K, V] = {}
    errors: dict[K, str] = {}
    iterator = iter(keys)

    async def worker() -> None:
        for key in iterator:  # the shared iterator hands each key to exactly one worker
            try:
                results[key] = await lookup(key)
            except RegistryError as exc:
                errors[key] = str(exc)

    await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
    return results, errors


async def observe(
    desired: DesiredState,
    access: RegistryAccess,
    only: Collection[str] | None = None,
    *,
    concurrency: int = DEFAULT_OBSERVE_CONCURRENCY,
) -> ObservedState:
    async def resolve(key: TagKey) -> str | None:
        try:
            return await access.tag_digest(key.registry, key.repository, key.tag)
        except NotFoundError:
            return None

    tags, tag_errors = await _pool(tag_lookups(desired, only), resolve, concurrency)

    async def lookup(key: ManifestKey) -> bool:
        try:
            return await access.has_manifest(key.registry, key.repository, key.digest)
        except NotFoundError:
            return False

    wanted = manifest_lookups(desired, tags, only, tag_errors=tag_errors.keys())
    manifests, manifest_errors = await _pool(wanted, lookup, concurrency)
    errors: dict[TagKey | ManifestKey, str] = dict(tag_errors.items())
    errors.update(manifest_errors.items())
    return ObservedState(tags=tags, manifests=manifests, errors=errors)
