"""What the registries hold in each environment's repositories: the input of the retention planner.

Per environment with an active retention rule (source environments included: CI's builds pile up there
first), per registry of the environment:

* the repositories: every declared image's, plus those the catalog lists under ``<prefix>/`` (an image
  no environment file mentions any more still has versions to retire). A registry without catalog access
  falls back to the declared images' repositories, and says so;
* each repository's tags: one tags-list request per 1,000 tags (``n=``, following ``Link``);
* each tag's manifest: ONE GET by tag, which gives the digest and, from the manifest, the blobs and their
  sizes (shared layers are counted once by the planner); an index also costs one GET per platform
  manifest, once per digest per registry. Referrer tags (``sha256-<hex>.sig``) are skipped.

So a repository of N tags costs ceil(N/1000) + N requests (+ platforms). A repository or tag that could
not be read is left out and reported (``problems``): retention never acts on what it could not see (an
unreadable tag's digest might be one a retiring tag shares). Nothing here writes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, TypeVar

from reconciler.engine.observe import DEFAULT_OBSERVE_CONCURRENCY
from reconciler.engine.retention import PLACEHOLDER_ANNOTATION, RepositoryContent, is_referrer_tag
from reconciler.errors import NotFoundError, RegistryError
from reconciler.model.desired import DesiredState, Environment
from reconciler.model.plan import Location

if TYPE_CHECKING:
    from reconciler.model.manifest import Manifest

T = TypeVar("T")

Blobs = frozenset[tuple[str, int]]
"""The (digest, size) of every blob an image occupies: its manifests, configs and layers."""


class InventoryAccess(Protocol):
    async def catalog(self, registry: str) -> list[str]:
        """Every repository of the registry (raises ``RegistryError`` without catalog access)."""
        ...

    async def tags(self, registry: str, repository: str) -> list[str]: ...

    async def tagged_manifest(self, location: Location, tag: str) -> Manifest | None:
        """The manifest ``tag`` points at (one GET by tag), or None when the tag is gone."""
        ...

    async def manifest(self, location: Location, digest: str) -> Manifest: ...


@dataclass(frozen=True, slots=True)
class Inventory:
    contents: tuple[RepositoryContent, ...] = ()
    blobs: dict[tuple[str, str], dict[str, Blobs]] = field(default_factory=dict)
    """(environment, registry) -> image digest -> its blobs."""
    problems: tuple[str, ...] = ()
    """What could not be read (and was therefore left alone), one line each."""
    requests: int = 0


def retained_environments(desired: DesiredState, only: Collection[str] | None) -> list[Environment]:
    """Environments whose retention rule does something, in promotion order (``only`` restricts them)."""
    retention = desired.config.retention
    chosen = []
    for env in desired.config.environments:
        if only and env.name not in only:
            continue
        rule = retention.for_environment(env.name)
        if rule.active or any(override.active for override in rule.images.values()):
            chosen.append(env)
    return chosen


class _Reader:
    def __init__(self, access: InventoryAccess, concurrency: int) -> None:
        self.access = access
        self.slots = asyncio.Semaphore(max(1, concurrency))
        self.requests = 0
        self.problems: list[str] = []
        self.children: dict[tuple[str, str], asyncio.Future[Blobs]] = {}
        """(registry, digest) -> the blobs of a platform manifest (fetched once per registry)."""

    async def call(self, work: Awaitable[T]) -> T:
        """One request, within the concurrency bound, counted."""
        async with self.slots:
            self.requests += 1
            return await work

    async def repositories(self, desired: DesiredState, env: Environment, registry: str) -> list[str]:
        declared = {env.repository(image) for state in desired.environments.values() for image in state.images}
        try:
            listed = await self.call(self.access.catalog(registry))
        except RegistryError as exc:
            self.problems.append(
                f"{env.name} on {registry}: no catalog ({exc}); retention covers the declared images' repositories only"
            )
            listed = []
        prefix = env.prefix + "/"
        return sorted(declared | {name for name in listed if name.startswith(prefix)})

    async def content(
        self, env: Environment, registry: str, repository: str
    ) -> tuple[RepositoryContent, dict[str, Blobs]] | None:
        location = Location(registry, repository)
        try:
            tags = await self.call(self.access.tags(registry, repository))
        except RegistryError as exc:
            self.problems.append(f"{location}: cannot list tags ({exc}); left alone")
            return None
        wanted = [tag for tag in tags if not is_referrer_tag(tag)]
        found = await asyncio.gather(*(self.tag(location, tag) for tag in wanted), return_exceptions=True)
        digests: dict[str, str | None] = {}
        blobs: dict[str, Blobs] = {}
        placeholders: set[str] = set()
        for tag, result in zip(wanted, found, strict=True):
            if isinstance(result, RegistryError):
                self.problems.append(f"{location}:{tag}: cannot read ({result}); the repository is left alone")
                return None
            if isinstance(result, BaseException):
                raise result
            if result is None:
                continue  # deleted since the listing
            digest, image_blobs, placeholder = result
            digests[tag] = digest
            blobs[digest] = image_blobs
            if placeholder:
                placeholders.add(tag)
        image = repository[len(env.prefix) + 1 :]
        content = RepositoryContent(env.name, registry, image, repository, digests, frozenset(placeholders))
        return content, blobs

    async def tag(self, location: Location, tag: str) -> tuple[str, Blobs, bool] | None:
        """The tag's digest, the blobs its image occupies, and whether it is a detach placeholder."""
        manifest = await self.call(self.access.tagged_manifest(location, tag))
        if manifest is None:
            return None
        own = {(str(manifest.digest), manifest.size)}
        if manifest.is_index:
            for child in manifest.manifests:
                own |= await self.child(location, str(child.digest))
        else:
            own |= {(str(blob.digest), blob.size) for blob in manifest.blobs}
        return str(manifest.digest), frozenset(own), PLACEHOLDER_ANNOTATION in manifest.annotations

    async def child(self, location: Location, digest: str) -> Blobs:
        key = (location.registry, digest)
        task = self.children.get(key)
        if task is None:

            async def fetch() -> Blobs:
                try:
                    manifest = await self.call(self.access.manifest(location, digest))
                except NotFoundError:
                    return frozenset()  # a platform the registry does not hold: nothing stored for it
                return frozenset({(digest, manifest.size), *((str(b.digest), b.size) for b in manifest.blobs)})

            task = self.children[key] = asyncio.ensure_future(fetch())
        return await asyncio.shield(task)


async def take_inventory(
    desired: DesiredState,
    access: InventoryAccess,
    only: Collection[str] | None = None,
    *,
    concurrency: int = DEFAULT_OBSERVE_CONCURRENCY,
) -> Inventory:
    """Read what retention needs (module docstring) for the selected environments."""
    reader = _Reader(access, concurrency)
    places = [(env, registry) for env in retained_environments(desired, only) for registry in env.registries]
    listed = await asyncio.gather(*(reader.repositories(desired, env, registry) for env, registry in places))
    work = [(env, registry, repo) for (env, registry), repos in zip(places, listed, strict=True) for repo in repos]
    found = await asyncio.gather(*(reader.content(env, registry, repo) for env, registry, repo in work))
    contents: list[RepositoryContent] = []
    blobs: dict[tuple[str, str], dict[str, Blobs]] = {}
    for (env, registry, _repo), result in zip(work, found, strict=True):
        if result is None:
            continue
        content, image_blobs = result
        if content.tags:
            contents.append(content)
        blobs.setdefault((env.name, registry), {}).update(image_blobs)
    return Inventory(tuple(contents), blobs, tuple(reader.problems), reader.requests)
