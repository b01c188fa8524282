"""Copying an image's referrers with it: ``ReferrersCopy`` (a ``before_tag`` step of ``Copier.copy``).

``ReferrersCopy`` (``copy_referrers`` for one call) copies what ``reconciler.registry.referrers`` discovers
with the ``Copier``, byte-exact, deepest level first (depth 2: the image's referrers and theirs), then, in a
target without the referrers API, creates or extends the tag-schema indexes: entries already there are
kept, never dropped; a target without one gets the source's index as it is (same digest). Cosign tags are
re-tagged, except one the target holds with signatures the source's lacks (left, reported).

Never deletes, never rewrites a referrer; only a tag-schema index (a per-registry list) is written anew when
it must be merged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from reconciler.errors import NotFoundError, RegistryError, UnsupportedManifestError
from reconciler.model.digest import Digest
from reconciler.model.manifest import OCI_INDEX, Descriptor, Manifest
from reconciler.model.store import ImageStore
from reconciler.registry.client import RegistryClient
from reconciler.registry.copier import Copier, all_or_first_error
from reconciler.registry.referrers import (
    DEFAULT_DEPTH,
    Finder,
    ReferrerDescriptor,
    api_referrers,
    api_supported,
    referrers_tag,
    roots_of,
    walk_levels,
)

log = logging.getLogger(__name__)

_INDEX_LOCKS: weakref.WeakValueDictionary[tuple[str, str, str], asyncio.Lock] = weakref.WeakValueDictionary()
"""One lock per (target registry, repository, index tag): copies in one process never merge an index at once."""


@dataclass(slots=True)
class ReferrersReport:
    """What copying one image's referrers found and did (its children's and nested referrers included)."""

    subject: Digest
    source: str
    target: str
    found: list[ReferrerDescriptor] = field(default_factory=list)
    copied: list[Digest] = field(default_factory=list)
    already_present: list[Digest] = field(default_factory=list)
    skipped: list[tuple[Digest, str]] = field(default_factory=list)
    """Listed in the source but not copied: gone from it (a stale tag-schema index), or a refused kind."""
    conflicts: list[str] = field(default_factory=list)
    """Cosign tags left as they were: the target's holds signatures the source's lacks."""
    indexes_written: list[str] = field(default_factory=list)
    cosign_tags_written: list[str] = field(default_factory=list)
    target_api: bool | None = None
    """Whether the target has the referrers API (None: nothing needed an index there)."""


@dataclass(slots=True)
class ReferrersCopy:
    """Copies images' referrers from ``source_repository`` to ``target_repository``. An instance is a
    ``before_tag`` step: ``copier.copy(..., before_tag=ReferrersCopy(copier, ...))`` puts every referrer in
    the target before the image's tag, and appends a ``ReferrersReport`` per image to ``reports``."""

    copier: Copier
    source: ImageStore
    source_repository: str
    target: ImageStore
    target_repository: str
    depth: int = DEFAULT_DEPTH
    children: bool = True
    source_tags: Sequence[str] | None = None
    """The source repository's tags, when the caller already listed them (saves one request per image)."""
    reports: list[ReferrersReport] = field(default_factory=list)

    @property
    def placed(self) -> tuple[str, ...]:
        """Every referrer digest now in the target for the images copied: copied, or found already there."""
        return tuple(str(d) for report in self.reports for d in (*report.copied, *report.already_present))

    async def __call__(self, manifest: Manifest) -> None:
        self.reports.append(await self.copy(manifest.digest, manifest=manifest))

    async def copy(self, digest: str, *, manifest: Manifest | None = None) -> ReferrersReport:
        """Copy the referrers of image ``digest``; with ``manifest`` (an index) those of its children too."""
        subject = Digest(digest)
        report = ReferrersReport(
            subject, f"{self.source.name}/{self.source_repository}", f"{self.target.name}/{self.target_repository}"
        )
        finder = Finder(self.source, self.source_repository, self.source_tags)
        levels = await walk_levels(finder, roots_of(manifest, self.children) if manifest else [subject], self.depth)
        report.found = [referrer for level in levels for referrer in level]
        if report.found:
            job = _CopyJob(self, report)
            for level in reversed(levels):  # deepest first: an artifact's own referrers land before it does
                await all_or_first_error([job.copy_one(referrer) for referrer in level])
            await job.write_indexes(finder.schema_indexes)
        return report


async def copy_referrers(
    copier: Copier,
    *,
    source: ImageStore,
    source_repository: str,
    target: ImageStore,
    target_repository: str,
    digest: str,
    manifest: Manifest | None = None,
    depth: int = DEFAULT_DEPTH,
    children: bool = True,
    source_tags: Sequence[str] | None = None,
) -> ReferrersReport:
    """Copy the referrers of image ``digest`` once (see ``ReferrersCopy``)."""
    step = ReferrersCopy(copier, source, source_repository, target, target_repository, depth, children, source_tags)
    return await step.copy(digest, manifest=manifest)


@dataclass(slots=True)
class _CopyJob:
    """One image's referrers on their way: the step's stores, the report, what is now in the target."""

    step: ReferrersCopy
    report: ReferrersReport
    placed: set[Digest] = field(default_factory=set)

    async def copy_one(self, referrer: ReferrerDescriptor) -> None:
        step, report, tag = self.step, self.report, referrer.tag
        try:
            manifest = referrer.manifest or await step.source.get_manifest(step.source_repository, referrer.digest)
        except (NotFoundError, UnsupportedManifestError) as exc:
            reason = "listed, but gone from the source" if isinstance(exc, NotFoundError) else str(exc)
            log.warning(
                "referrer %s of %s in %s not copied: %s", referrer.digest, referrer.subject, report.source, reason
            )
            report.skipped.append((referrer.digest, reason))
            return
        if tag is not None:
            present = await step.target.head_manifest(step.target_repository, tag)
            if present is not None and present.digest == referrer.digest:
                self._placed(referrer.digest, copied=False)
                return
            if present is not None and not await self._supersedes(manifest, tag):
                conflict = f"{report.target}:{tag} holds {present.digest}, with signatures {referrer.digest} lacks"
                log.warning("cosign tag kept as it is: %s", conflict)
                report.conflicts.append(conflict)
                return
        result = await step.copier.copy(
            source=step.source,
            source_repository=step.source_repository,
            reference=str(referrer.digest),
            target=step.target,
            target_repository=step.target_repository,
            tag=tag,
            source_manifest=manifest,
            check_target=tag is None,  # a cosign tag was just looked at
        )
        if tag is not None:
            report.cosign_tags_written.append(tag)
        self._placed(referrer.digest, copied=not result.already_present)

    def _placed(self, digest: Digest, *, copied: bool) -> None:
        (self.report.copied if copied else self.report.already_present).append(digest)
        self.placed.add(digest)

    async def _supersedes(self, ours: Manifest, tag: str) -> bool:
        """Whether the source's cosign manifest holds every layer (one per signature: cosign appends) of
        the target's under ``tag``, so that replacing the target's loses nothing. Layers are compared whole:
        signatures of one payload share its digest and differ in their annotations."""
        theirs = await self.step.target.get_manifest(self.step.target_repository, tag)
        return {_whole(layer) for layer in theirs.layers} <= {_whole(layer) for layer in ours.layers}

    async def write_indexes(self, source_indexes: Mapping[Digest, Manifest]) -> None:
        """In a target without the referrers API, each subject's tag-schema index lists its referrers."""
        listed: dict[Digest, list[ReferrerDescriptor]] = {}
        for referrer in self.report.found:
            if referrer.via != "cosign-tag" and referrer.digest in self.placed:
                listed.setdefault(referrer.subject, []).append(referrer)
        if not listed:
            return
        target = self.step.target
        if isinstance(target, RegistryClient) and api_supported(target) is None:
            await api_referrers(target, self.step.target_repository, self.report.subject)
        self.report.target_api = isinstance(target, RegistryClient) and api_supported(target) is True
        if self.report.target_api:
            return  # a registry with the API indexes subject-bearing manifests as they are pushed
        for subject, referrers in listed.items():
            await self._merge_index(subject, referrers, source_indexes.get(subject))

    async def _merge_index(self, subject: Digest, referrers: list[ReferrerDescriptor], source: Manifest | None) -> None:
        target, repository, tag = self.step.target, self.step.target_repository, referrers_tag(subject)
        async with _INDEX_LOCKS.setdefault((target.key, repository, tag), asyncio.Lock()):
            try:
                existing: Manifest | None = await target.get_manifest(repository, tag)
            except NotFoundError:
                existing = None
            if existing is not None and not existing.is_index:
                raise RegistryError(
                    f"tag {tag} holds a {existing.media_type}, not a referrers index; not overwritten",
                    registry=target.name,
                    repository=repository,
                    digest=str(subject),
                )
            document: dict[str, Any] = json.loads(existing.raw) if existing is not None else {}
            entries = [entry for entry in document.get("manifests") or [] if isinstance(entry, dict)]
            known = {entry.get("digest") for entry in entries}
            additions = []
            for referrer in referrers:
                if str(referrer.digest) not in known:
                    known.add(str(referrer.digest))
                    additions.append(referrer.index_entry())
            if not additions:
                return
            wanted = {str(referrer.digest) for referrer in referrers}
            if existing is None and source is not None and {str(d.digest) for d in source.manifests} == wanted:
                raw = source.raw  # the target gets the source's index as it is: same bytes, same digest
            else:
                document = document or {"schemaVersion": 2, "mediaType": OCI_INDEX}
                document["manifests"] = [*entries, *additions]
                raw = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
            await target.put_manifest(repository, tag, raw, OCI_INDEX)
            self.report.indexes_written.append(tag)


def _whole(layer: Descriptor) -> str:
    return json.dumps(layer.to_json(), sort_keys=True)
