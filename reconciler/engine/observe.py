"""Observe the registries: resolve every declared tag, then look up by digest only what the planner needs.

Two rounds, each run concurrently by a bounded pool of workers (not one task per lookup, so 50,000
lookups cost 64 coroutines, not 50,000): first one HEAD per declared tag on every registry of every
selected environment (except tags a repository's tags list shows absent: see ``_resolve_tags``); then,
only for tags that are not in sync, one look-up by digest for the target repository and each candidate
source (``reconciler.engine.plan.manifest_lookups``). A fully in-sync state therefore costs exactly one
request per declared tag and registry.

A lookup that fails (registry down after retries, auth refused) is recorded as an error for that key,
never as "absent": the planner turns it into an UNREACHABLE action for the images concerned, and the
other images carry on. This module never writes to a registry.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from typing import Protocol, TypeVar, cast

from reconciler.engine.access import RegistryAccess
from reconciler.engine.plan import ImageFilter, manifest_lookups, tag_lookups, targets
from reconciler.errors import NotFoundError, ReconcilerError, RegistryError, cause_of
from reconciler.model.desired import DesiredState
from reconciler.model.observed import ManifestKey, ObservedState, TagKey
from reconciler.model.outcome import Cause

DEFAULT_OBSERVE_CONCURRENCY = 64

K = TypeVar("K")
V = TypeVar("V")


async def _pool(
    keys: Iterable[K], lookup: Callable[[K], Awaitable[V]], concurrency: int
) -> tuple[dict[K, V], dict[K, Cause]]:
    results: dict[K, V] = {}
    errors: dict[K, Cause] = {}
    iterator = iter(keys)

    async def worker() -> None:
        for key in iterator:  # the shared iterator hands each key to exactly one worker
            try:
                results[key] = await lookup(key)
            except RegistryError as exc:
                errors[key] = cause_of(exc)

    await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
    return results, errors


async def _resolve_tags(
    keys: list[TagKey], access: RegistryAccess, concurrency: int
) -> tuple[dict[TagKey, str | None], dict[TagKey, Cause], set[tuple[str, str]], int]:
    """HEAD every declared tag, except where a repository's tags list already says the tag is absent.

    First one probe per repository (its last declared tag, the likeliest to be new). A repository whose
    probe finds nothing is listed (one request, all its tags); its other declared tags are then HEADed
    only if the list names them. In sync, that is exactly one HEAD per tag, as before; promoting into a
    new repository costs two requests, not one per tag. Returns the resolved tags, the failed lookups,
    the repositories known to hold no tag at all, and the number of requests sent.
    """

    async def resolve(key: TagKey) -> str | None:
        try:
            return await access.tag_digest(key.registry, key.repository, key.tag)
        except NotFoundError:
            return None

    by_repository: dict[tuple[str, str], list[TagKey]] = {}
    for key in keys:
        by_repository.setdefault((key.registry, key.repository), []).append(key)
    probes = [group[-1] for group in by_repository.values()]
    tags, errors = await _pool(probes, resolve, concurrency)

    async def list_tags(repository: tuple[str, str]) -> frozenset[str]:
        return frozenset(await access.tags(*repository))

    unlisted = [
        repository for repository, group in by_repository.items() if group[-1] in tags and tags[group[-1]] is None
    ]
    listed, _list_errors = await _pool(unlisted, list_tags, concurrency)  # a failed list: HEAD every tag
    rest: list[TagKey] = []
    for repository, group in by_repository.items():
        known = listed.get(repository)
        for key in group[:-1]:
            if known is not None and key.tag not in known:
                tags[key] = None
            else:
                rest.append(key)
    found, rest_errors = await _pool(rest, resolve, concurrency)
    tags.update(found)
    errors.update(rest_errors)
    empty = {repository for repository, known in listed.items() if not known}
    return tags, errors, empty, len(probes) + len(unlisted) + len(rest)


class DeepAccess(Protocol):
    async def verify_image(self, registry: str, repository: str, tag: str, expected: str) -> Sequence[str]:
        """What is wrong with the image ``tag`` names, as the registry serves it ([] when whole)."""
        ...


async def _read_back(
    desired: DesiredState,
    access: RegistryAccess,
    tags: dict[TagKey, str | None],
    *,
    only: Collection[str] | None,
    images: ImageFilter | None,
    concurrency: int,
) -> tuple[dict[TagKey, tuple[str, ...]], dict[TagKey, Cause]]:
    """Deep: read every in-sync image back (manifest, children, every blob's size)."""
    verify = getattr(access, "verify_image", None)
    if verify is None:
        raise ReconcilerError("a deep observation needs registry access that can read images back")
    deep = cast(DeepAccess, access)
    in_sync = {t.tag_key: t.pin.digest for t in targets(desired, only, images) if tags.get(t.tag_key) == t.pin.digest}

    async def check(key: TagKey) -> tuple[str, ...]:
        return tuple(await deep.verify_image(key.registry, key.repository, key.tag, in_sync[key]))

    found, errors = await _pool(in_sync, check, concurrency)
    return {key: problems for key, problems in found.items() if problems}, errors


async def observe(
    desired: DesiredState,
    access: RegistryAccess,
    only: Collection[str] | None = None,
    *,
    concurrency: int = DEFAULT_OBSERVE_CONCURRENCY,
    images: ImageFilter | None = None,
    deep: bool = False,
) -> ObservedState:
    """What the planner needs (module docstring). ``deep`` also reads every in-sync image back (its
    manifest, children and each blob's size: one GET per manifest and one HEAD per blob), to find what a
    registry acknowledged and did not keep; a resync's check, not every pass's."""
    tags, tag_errors, tagless, requests = await _resolve_tags(tag_lookups(desired, only, images), access, concurrency)

    async def lookup(key: ManifestKey) -> bool:
        try:
            return await access.has_manifest(key.registry, key.repository, key.digest)
        except NotFoundError:
            return False

    wanted = manifest_lookups(desired, tags, only, tag_errors=tag_errors.keys(), tagless=tagless, images=images)
    manifests, manifest_errors = await _pool(wanted, lookup, concurrency)
    errors: dict[TagKey | ManifestKey, Cause] = dict(tag_errors.items())
    errors.update(manifest_errors.items())
    requests += len(wanted)
    damaged: dict[TagKey, tuple[str, ...]] = {}
    if deep:
        damaged, deep_errors = await _read_back(
            desired, access, tags, only=only, images=images, concurrency=concurrency
        )
        errors.update(deep_errors.items())
    return ObservedState(tags=tags, manifests=manifests, errors=errors, requests=requests, damaged=damaged)
