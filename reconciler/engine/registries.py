"""``RegistryAccess`` on the real registry client: one ``RegistryClient`` per registry, one shared ``Copier``.

Clients are created lazily (a pass that never touches ``prod-b`` never connects to it) from the
registries of ``reconciler.yaml`` with ``reconciler.registry.client_for``, so credentials resolve the
documented way (environment variables, Docker's config.json, credential helpers) and never pass through
the engine. One ``Copier`` is shared by every copy of the pass: a blob several images need is
transferred once, and copies inside one registry are cross-repository mounts.

``insecure=True`` (the CLI's ``--insecure``) opts every registry into plain HTTP / unverified TLS;
loopback registries never need it. This module never decides what to copy: it only performs.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
import types
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.errors import NotFoundError, ReconcilerError, RegistryError
from reconciler.model.desired import Config
from reconciler.model.plan import Location

if TYPE_CHECKING:
    import httpx

    from reconciler.model.manifest import Manifest
    from reconciler.policy.referrers import Referrer
    from reconciler.registry import BlobOutcome, Copier, CopyProgress, RegistryClient, RetryPolicy
    from reconciler.registry.copier import SourceContent

DEFAULT_PARALLEL_BLOBS = 16
KEPT_BLOB_BYTES = 1024 * 1024
"""Blobs the gates read that a pass keeps for its copies: configs, never layers."""


def _without_httpx_cli() -> None:
    """Keep ``import httpx`` from importing httpx's own command-line tool.

    ``httpx/__init__`` imports ``httpx._main`` (its CLI, which pulls in click, rich and pygments) merely
    to expose ``httpx.main``: about 90 ms of every ``reconciler plan``, a tenth of a no-op plan's CPU.
    Registering a stand-in module first skips that; reconciler never calls ``httpx.main``. Does
    nothing when httpx is already imported.
    """
    if "httpx" in sys.modules or "httpx._main" in sys.modules:
        return
    stand_in = types.ModuleType("httpx._main")

    def main() -> None:
        raise SystemExit("httpx's command-line tool is not available inside reconciler")

    stand_in.main = main  # type: ignore[attr-defined]
    sys.modules["httpx._main"] = stand_in


class _ProgressRelay:
    """The copier's progress sink; forwards to whatever display the current pass attached (or nowhere)."""

    def __init__(self) -> None:
        self.target: CopyProgress | None = None

    def blob_started(self, digest: str, size: int) -> None:
        if self.target is not None:
            self.target.blob_started(digest, size)

    def blob_advanced(self, digest: str, nbytes: int) -> None:
        if self.target is not None:
            self.target.blob_advanced(digest, nbytes)

    def blob_finished(self, digest: str, outcome: BlobOutcome) -> None:
        if self.target is not None:
            self.target.blob_finished(digest, outcome)


class RegistryPool:
    """The registries of one desired state, as the engine's ``RegistryAccess``."""

    def __init__(
        self,
        config: Config,
        *,
        root: str | Path | None = None,
        insecure: bool = False,
        retry: RetryPolicy | None = None,
        transport_for: Callable[[str], httpx.AsyncBaseTransport | None] | None = None,
        parallel_blobs: int = DEFAULT_PARALLEL_BLOBS,
        max_concurrency: int | None = None,
        referrers: bool = True,
    ) -> None:
        _without_httpx_cli()
        from reconciler.registry import Copier  # noqa: PLC0415  (httpx and friends only when needed)

        self._registries = config.registries
        self._root = root
        self._insecure = insecure
        self._retry = retry
        self._transport_for = transport_for
        self._max_concurrency = max_concurrency
        self._referrers = referrers
        """Copy an image's referrers (signatures, SBOMs, attestations) with it, before its tag."""
        self._clients: dict[str, RegistryClient] = {}
        self._relay = _ProgressRelay()
        self.copier: Copier = Copier(max_parallel_blobs=parallel_blobs, progress=self._relay)
        self._keep_manifests = False
        self._manifests: dict[tuple[str, str, str], Manifest] = {}
        """(registry, repository, digest) -> manifest fetched by ``has_manifest`` while keeping them."""
        self._blobs: dict[tuple[str, str, str], bytes] = {}
        """(registry, repository, digest) -> a small blob the gates read (a config), kept like manifests."""
        self._tagged: dict[tuple[str, str], asyncio.Future[bool]] = {}
        """(registry, repository) -> whether the repository held a tag before this pass wrote to it."""
        self._listings: dict[tuple[str, str], asyncio.Future[list[str]]] = {}
        """(registry, repository) -> its tags, listed once per pass for referrer discovery (cosign tags and
        tag-schema indexes live among them): one request per source repository, not one per image."""
        self._found_referrers: dict[tuple[str, str, str], asyncio.Future[list[Referrer]]] = {}
        """(registry, repository, image digest) -> its referrers, discovered once per pass (the gates and the
        plan's list of what travels ask for the same images)."""

    @property
    def copies_referrers(self) -> bool:
        """Whether copies take the image's referrers along (``plan`` then shows them)."""
        return self._referrers

    def keep_manifests(self, keep: bool) -> None:
        """While on, ``has_manifest`` GETs instead of HEADs (the same one request) and keeps what it found,
        so that ``copy`` and ``retag`` reuse it instead of fetching it again. ``apply`` turns it on before
        observing; ``plan`` leaves it off (it would only hold manifests nobody reads). Called at the start
        of every pass, it also forgets what an earlier pass of this pool learned (kept manifests, which
        target repositories held tags), so that evidence is never older than the pass using it."""
        self._keep_manifests = keep
        self._forget()

    def _forget(self) -> None:
        """Drop what this pass learned: kept manifests and blobs, tag listings, referrers, tagged repositories."""
        self._manifests.clear()
        self._blobs.clear()
        for futures in (self._tagged, self._listings, self._found_referrers):
            for future in futures.values():
                future.cancel()
            futures.clear()

    def watch(self, progress: CopyProgress | None) -> None:
        """Report blob transfers of the following copies to ``progress`` (None: to nobody)."""
        self._relay.target = progress

    @property
    def clients(self) -> Mapping[str, RegistryClient]:
        return self._clients

    def client(self, name: str) -> RegistryClient:
        client = self._clients.get(name)
        if client is None:
            from reconciler.registry import DEFAULT_MAX_CONCURRENCY, client_for  # noqa: PLC0415

            try:
                registry = self._registries[name]
            except KeyError:
                raise ReconcilerError(f"registry {name!r} is not defined in reconciler.yaml") from None
            if self._insecure and not registry.insecure:
                registry = dataclasses.replace(registry, insecure=True)
            client = client_for(
                registry,
                root=self._root,
                retry=self._retry,
                transport=self._transport_for(name) if self._transport_for is not None else None,
                default_max_concurrency=self._max_concurrency or DEFAULT_MAX_CONCURRENCY,
            )
            self._clients[name] = client
        return client

    async def tag_digest(self, registry: str, repository: str, tag: str) -> str | None:
        descriptor = await self.client(registry).head_manifest(repository, tag)
        return None if descriptor is None else str(descriptor.digest)

    async def has_manifest(self, registry: str, repository: str, digest: str) -> bool:
        client = self.client(registry)
        if not self._keep_manifests:
            return await client.head_manifest(repository, digest) is not None
        try:
            manifest = await client.get_manifest(repository, digest)  # checked against the digest
        except NotFoundError:
            return False
        self._manifests[(registry, repository, digest)] = manifest
        return True

    async def tags(self, registry: str, repository: str) -> list[str]:
        """Every tag of the repository. Listed before this pass writes anything, an empty answer is also
        the evidence ``copy`` needs that the repository held no tag (so it asks nobody again)."""
        found = await self.client(registry).list_tags(repository)
        key = (registry, repository)
        if key not in self._tagged:
            evidence: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
            evidence.set_result(bool(found))
            self._tagged[key] = evidence
        return found

    def _kept(self, location: Location, digest: str) -> Manifest | None:
        return self._manifests.get((location.registry, location.repository, digest))

    async def _holds_tags(self, target: Location) -> bool:
        """Whether the target repository held any tag when this pass first copied into it (one request per
        repository, shared by every copy into it; taken before the first copy writes anything there).
        A failed look-up answers True: blobs are then checked one by one, as without this evidence."""
        key = (target.registry, target.repository)
        task = self._tagged.get(key)
        if task is None:

            async def look() -> bool:
                try:
                    return await self.client(target.registry).has_tags(target.repository)
                except RegistryError:
                    return True

            task = self._tagged[key] = asyncio.ensure_future(look())
        return await asyncio.shield(task)

    async def copy(self, source: Location, target: Location, digest: str, tag: str) -> tuple[str, ...]:
        """Copy the image, its referrers before its tag; return the digests of the referrers copied."""
        from reconciler.registry.referrercopy import ReferrersCopy  # noqa: PLC0415

        source_client, target_client = self.client(source.registry), self.client(target.registry)
        # Between registries, a blob is HEADed in the target before it is sent, unless the target repository
        # held no tag at all: then it holds nothing worth asking about (at most blobs of an interrupted copy,
        # which are sent again), and every blob this pass puts there is tracked by the copier. A repository
        # holding earlier versions keeps its HEADs, so shared base layers are never sent twice. Inside one
        # registry blobs are mounted, never HEADed, so no evidence is needed.
        check_blobs = source_client.key == target_client.key or await self._holds_tags(target)
        # The observation already found the tag absent: no HEAD on the target first; and it may have
        # fetched the source manifest already (keep_manifests): it travels with ``held``.
        referrers = None
        if self._referrers:
            tags = await self._source_tags(source)
            referrers = ReferrersCopy(
                self.copier, source_client, source.repository, target_client, target.repository, source_tags=tags
            )
        await self.copier.copy(
            source=source_client,
            source_repository=source.repository,
            reference=digest,
            target=target_client,
            target_repository=target.repository,
            tag=tag,
            check_target=False,
            check_blobs=check_blobs,
            before_tag=referrers,
            held=self._held(source),
        )
        if referrers is None:
            return ()
        return referrers.placed

    def _held(self, source: Location) -> SourceContent | None:
        """What this pass already read from ``source`` (the gates' evidence), for the copy to reuse."""
        if not self._manifests and not self._blobs:
            return None
        from reconciler.registry.copier import SourceContent  # noqa: PLC0415

        registry, repository = source.registry, source.repository
        return SourceContent(
            manifest=lambda digest: self._manifests.get((registry, repository, digest)),
            blob=lambda digest: self._blobs.get((registry, repository, digest)),
        )

    async def _source_tags(self, location: Location) -> list[str]:
        key = (location.registry, location.repository)
        listing = self._listings.get(key)
        if listing is None:
            client = self.client(location.registry)
            listing = self._listings[key] = asyncio.ensure_future(client.list_tags(location.repository))
        return await asyncio.shield(listing)

    async def retag(self, target: Location, digest: str, tag: str) -> None:
        client = self.client(target.registry)
        manifest = self._kept(target, digest) or await client.get_manifest(target.repository, digest)
        await client.put_manifest(target.repository, tag, manifest.raw, manifest.media_type)

    # -- evidence for the gates (reconciler.engine.gates.EvidenceAccess) ---------------------------------

    async def manifest(self, location: Location, digest: str) -> Manifest:
        """The manifest ``digest`` at ``location`` (one reused from the observation when it has it)."""
        kept = self._kept(location, digest)
        if kept is not None:
            return kept
        manifest = await self.client(location.registry).get_manifest(location.repository, digest)
        if self._keep_manifests:  # a platform manifest of an index: the copy reuses it
            self._manifests[(location.registry, location.repository, digest)] = manifest
        return manifest

    async def blob(self, location: Location, digest: str, *, max_bytes: int) -> bytes:
        key = (location.registry, location.repository, digest)
        kept = self._blobs.get(key)
        if kept is not None:
            return kept
        data = await self.client(location.registry).get_blob(location.repository, digest, max_bytes=max_bytes)
        if self._keep_manifests and len(data) <= KEPT_BLOB_BYTES:  # a config: the copy reuses it
            self._blobs[key] = data
        return data

    async def referrers(self, location: Location, manifest: Manifest) -> list[Referrer]:
        """The image's referrers (and its platforms'), as the gates see them: discovered once per pass and
        image, through the pass's one tag listing of the repository."""
        key = (location.registry, location.repository, str(manifest.digest))
        found = self._found_referrers.get(key)
        if found is None:
            found = self._found_referrers[key] = asyncio.ensure_future(self._discover(location, manifest))
        return list(await asyncio.shield(found))

    async def _discover(self, location: Location, manifest: Manifest) -> list[Referrer]:
        from reconciler.policy.referrers import Referrer  # noqa: PLC0415
        from reconciler.registry.referrers import discover_image  # noqa: PLC0415

        tags = await self._source_tags(location)
        found = await discover_image(self.client(location.registry), location.repository, manifest, tags=tags)
        return [
            Referrer(
                digest=item.digest,
                subject=item.subject,
                via=item.via,
                artifact_type=item.artifact_type,
                kind=item.kind,
                annotations=item.annotations,
            )
            for item in found
        ]

    # -- what retention needs (reconciler.engine.inventory.InventoryAccess) ------------------------------

    async def catalog(self, registry: str) -> list[str]:
        return await self.client(registry).catalog()

    async def tagged_manifest(self, location: Location, tag: str) -> Manifest | None:
        """The manifest ``tag`` points at (one GET, checked against the digest the registry names)."""
        try:
            return await self.client(location.registry).get_manifest(location.repository, tag)
        except NotFoundError:
            return None

    async def verify_image(self, registry: str, repository: str, tag: str, expected: str) -> list[str]:
        """What is wrong with the image ``tag`` names as the registry serves it ([] when whole): a deep
        observation's read-back (``RegistryClient.verify_image``)."""
        problems = await self.client(registry).verify_image(repository, tag, expected=expected)
        return [str(problem) for problem in problems]

    def request_count(self) -> int:
        return sum(c.stats.requests for c in self._clients.values())

    async def aclose(self) -> None:
        self._forget()
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()
