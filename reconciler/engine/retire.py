"""Performs the lifecycle actions: ARCHIVE, DELETE, RESTORE, DESTROY (planned by ``engine.lifecycle``).

* ARCHIVE copies the image by digest from its registry into the archive store, names it
  ``<repository>:<tag>`` with provenance (source registry and repository, the desired-state commit), then
  reads it back and re-hashes every blob. Any failure fails the action; the registry is untouched.
* DELETE removes ONE tag, safely. Distribution deletes by digest only, and a digest delete drops every tag
  on it. So, per repository and one at a time: the tag must still point at the planned digest (else the
  action fails: someone moved it since the plan); the repository's other tags are resolved (all of them
  once per pass, then only the tags that appeared since); when none shares the digest, the manifest is
  deleted by digest; when one does, the tag is DETACHED instead: a tiny placeholder manifest (empty
  config, no layers, annotated ``io.reconciler.detached``) is pushed onto the tag and deleted by ITS
  digest, so the tag goes and the other tags keep the image. A run killed between those two steps leaves
  the tag on a placeholder, which the next pass's retention deletes (rule ``interrupted-detach``).
* RESTORE copies the image back from the store onto the declared tag (digests unchanged: manifests are
  stored byte-exact).
* DESTROY removes the entry from the store's ``index.json``; ``finish`` then collects the blobs no entry
  needs any more, once per pass.

Space returns to a registry only after ITS garbage collection (``docker-registry garbage-collect``): a
delete only unlinks manifests. The remaining race is the one the distribution API leaves open: a tag
pushed onto the same digest between the last check and the DELETE (milliseconds) is deleted with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from typing import TYPE_CHECKING

from reconciler.archive import provenance
from reconciler.engine.retention import PLACEHOLDER_ANNOTATION
from reconciler.errors import ArchiveError, NotFoundError, ReconcilerError
from reconciler.model.digest import Digest
from reconciler.model.manifest import OCI_MANIFEST, digest_of
from reconciler.model.plan import Action, ActionKind

if TYPE_CHECKING:
    from reconciler.archive import GarbageReport, OciLayout
    from reconciler.engine.registries import RegistryPool
    from reconciler.registry import RegistryClient

EMPTY_CONFIG = b"{}"
EMPTY_MEDIA_TYPE = "application/vnd.oci.empty.v1+json"


class _Repository:
    """What one pass knows of one repository's tags, for safe deletes (used under its lock)."""

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.digests: dict[str, str] | None = None


class LifecycleRunner:
    """Executes lifecycle actions for one pass (see the module docstring)."""

    def __init__(self, pool: RegistryPool, store: OciLayout | None, *, commit: str | None) -> None:
        self._pool = pool
        self._store = store
        self._commit = commit
        self._repositories: dict[tuple[str, str], _Repository] = {}
        self._destroyed = 0

    def _require_store(self, action: Action) -> OciLayout:
        if self._store is None:
            raise ArchiveError(f"{action.kind.value} {action.archive_ref}: no archive store is configured")
        return self._store

    async def perform(self, action: Action) -> None:
        if action.kind is ActionKind.ARCHIVE:
            await self._archive(action)
        elif action.kind is ActionKind.DELETE:
            await self._delete(action)
        elif action.kind is ActionKind.RESTORE:
            await self._restore(action)
        elif action.kind is ActionKind.DESTROY:
            await self._destroy(action)
        else:
            raise ReconcilerError(f"not a lifecycle action: {action.kind.value}")

    async def finish(self) -> tuple[GarbageReport | None, tuple[str, ...]]:
        """After the pass: collect the store's unreferenced blobs when entries were destroyed. What it did,
        and why it could not (the entries stay destroyed; the next collection removes their blobs): a
        failed collection never hides the results of the actions before it."""
        if self._store is None or not self._destroyed:
            return None, ()
        try:
            return await self._store.collect_garbage(), ()
        except ArchiveError as exc:
            return None, (f"garbage collection failed (the entries are destroyed; the next run collects): {exc}",)

    # ------------------------------------------------------------------ archive / restore / destroy

    async def _archive(self, action: Action) -> None:
        store = self._require_store(action)
        assert action.archive_ref is not None
        await self._pool.copier.copy(
            source=self._pool.client(action.registry),
            source_repository=action.repository,
            reference=action.digest,
            target=store,
            target_repository=action.repository,
        )
        await store.add_entry(
            action.archive_ref,
            action.digest,
            annotations=provenance(
                source_registry=action.registry, source_repository=action.repository, commit=self._commit
            ),
        )
        verdict = await store.verify_entry(action.archive_ref, digest=action.digest)
        if not verdict.ok:
            raise ArchiveError(f"archived {action.archive_ref} does not read back intact: {verdict}")

    async def _restore(self, action: Action) -> None:
        store = self._require_store(action)
        assert action.archive_ref is not None
        entry = await store.entry(action.archive_ref)
        if entry is None or str(entry.digest) != action.digest:
            raise ArchiveError(f"the archive store no longer holds {action.digest} as {action.archive_ref}")
        await self._pool.copier.copy(
            source=store,
            source_repository=entry.repository or action.repository,
            reference=action.digest,
            target=self._pool.client(action.registry),
            target_repository=action.repository,
            tag=action.tag,
        )

    async def _destroy(self, action: Action) -> None:
        store = self._require_store(action)
        assert action.archive_ref is not None
        entry = await store.entry(action.archive_ref)
        if entry is None:
            return  # already gone: the goal is reached
        if str(entry.digest) != action.digest:
            raise ArchiveError(f"{action.archive_ref} now holds {entry.digest}, not {action.digest}; not destroyed")
        await store.remove_entries([action.archive_ref])
        self._destroyed += 1

    # ------------------------------------------------------------------ safe deletion

    async def _delete(self, action: Action) -> None:
        client = self._pool.client(action.registry)
        known = self._repositories.setdefault((action.registry, action.repository), _Repository())
        async with known.lock:
            where = f"{action.registry}/{action.repository}:{action.tag}"
            current = await client.head_manifest(action.repository, action.tag)
            if current is None:
                return  # already gone
            if str(current.digest) != action.digest:
                raise ReconcilerError(f"{where} now points at {current.digest}, not {action.digest}; not deleted")
            digests = await self._tag_digests(client, action.repository, known)
            sharing = sorted(t for t, d in digests.items() if d == action.digest and t != action.tag)
            if sharing:
                await self._detach(client, action.repository, action.tag)
            else:
                with contextlib.suppress(NotFoundError):  # deleted meanwhile: the goal is reached
                    await client.delete_manifest(action.repository, action.digest)
            digests.pop(action.tag, None)

    async def _tag_digests(self, client: RegistryClient, repository: str, known: _Repository) -> dict[str, str]:
        """Every tag of the repository -> its digest: all resolved the first time in the pass, then only
        the tags that appeared since (a new tag on a retiring digest must stop its delete)."""
        tags = await client.list_tags(repository)
        if known.digests is None:
            known.digests = {}
        fresh = [tag for tag in tags if tag not in known.digests]
        found = await asyncio.gather(*(client.head_manifest(repository, tag) for tag in fresh))
        for tag, descriptor in zip(fresh, found, strict=True):
            if descriptor is not None:
                known.digests[tag] = str(descriptor.digest)
        listed = set(tags)
        for tag in [t for t in known.digests if t not in listed]:
            del known.digests[tag]
        return known.digests

    async def _detach(self, client: RegistryClient, repository: str, tag: str) -> None:
        """Remove ``tag`` alone: point it at a unique placeholder, then delete the placeholder by digest."""
        config = Digest(digest_of(EMPTY_CONFIG))
        await client.upload_blob(repository, str(config), EMPTY_CONFIG)
        document = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": EMPTY_MEDIA_TYPE, "digest": str(config), "size": len(EMPTY_CONFIG)},
            "layers": [],
            "annotations": {PLACEHOLDER_ANNOTATION: f"{tag} {uuid.uuid4().hex}"},
        }
        raw = json.dumps(document, separators=(",", ":")).encode()
        placeholder = await client.put_manifest(repository, tag, raw, OCI_MANIFEST)
        await client.delete_manifest(repository, str(placeholder))
