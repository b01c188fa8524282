"""Copy many images at once: every tag of a repository, or every repository under a prefix.

The handle behind ``reconciler copy --all-tags`` (and its benchmarks). It lists the tags of the source
AND of the target repository first (one request each), so that:

* a tag the target does not have is copied straight away (the source manifest is fetched once, no HEAD
  on the target, and blob HEADs are skipped when the target repository holds no tag at all: an empty
  repository is not worth asking blob by blob);
* a tag the target has costs one HEAD on each side: same digest, nothing to do.

One ``Copier`` is shared by all copies, so blobs common to several images move once, and a blob put in
one repository of the target is mounted into the others. Failures are per image: one image failing
never stops the others, and each failure names its image. Nothing is ever deleted, and tags present
only in the target are left alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from reconciler.errors import NotFoundError, ReconcilerError
from reconciler.registry.client import RegistryClient
from reconciler.registry.copier import Copier, CopyReport

DEFAULT_JOBS = 8
"""Images copied concurrently (blob transfers are bounded separately by the Copier)."""


@dataclass(slots=True)
class ImageCopy:
    """The outcome of copying one tag: a report, or the error that stopped it."""

    source: str
    target: str
    tag: str
    report: CopyReport | None = None
    error: ReconcilerError | None = None
    referrers: tuple[str, ...] = ()
    """Digests of the signatures, SBOMs and attestations copied with it (``copy --referrers``)."""

    @property
    def ok(self) -> bool:
        return self.error is None


async def copy_tags(
    *,
    source: RegistryClient,
    source_repository: str,
    target: RegistryClient,
    target_repository: str,
    tags: Sequence[str] | None = None,
    copier: Copier | None = None,
    jobs: asyncio.Semaphore | int = DEFAULT_JOBS,
    require_tags: bool = True,
) -> list[ImageCopy]:
    """Copy ``tags`` (all tags of the source repository when None) to the same tags in the target.
    NotFoundError when the source has no tag at all (unless ``require_tags`` is False: a repository of a
    registry-wide copy may have had all its tags deleted)."""
    copier = copier or Copier()
    slots = jobs if isinstance(jobs, asyncio.Semaphore) else asyncio.Semaphore(jobs)
    wanted, present = await asyncio.gather(
        source.list_tags(source_repository) if tags is None else _given(tags),
        target.list_tags(target_repository),
    )
    if tags is None and not wanted and require_tags:
        raise NotFoundError(
            "no tag to copy: the repository does not exist or holds no tag",
            registry=source.name,
            repository=source_repository,
        )
    present_tags = set(present)
    source_name = f"{source.name}/{source_repository}"
    target_name = f"{target.name}/{target_repository}"

    async def one(tag: str) -> ImageCopy:
        outcome = ImageCopy(source=f"{source_name}:{tag}", target=f"{target_name}:{tag}", tag=tag)
        async with slots:
            try:
                if tag in present_tags:
                    here, there = await asyncio.gather(
                        source.head_manifest(source_repository, tag), target.head_manifest(target_repository, tag)
                    )
                    if here is not None and there is not None and here.digest == there.digest:
                        outcome.report = CopyReport(
                            source=f"{source_name}@{here.digest}",
                            target=outcome.target,
                            digest=here.digest,
                            media_type=here.media_type,
                            tag=tag,
                            already_present=True,
                        )
                        return outcome
                manifest = await source.get_manifest(source_repository, tag)
                outcome.report = await copier.copy(
                    source=source,
                    source_repository=source_repository,
                    reference=str(manifest.digest),
                    target=target,
                    target_repository=target_repository,
                    tag=tag,
                    source_manifest=manifest,
                    check_target=False,
                    check_blobs=bool(present_tags),
                )
            except ReconcilerError as exc:
                outcome.error = exc
        return outcome

    return list(await asyncio.gather(*(one(tag) for tag in wanted)))


async def _given(tags: Sequence[str]) -> list[str]:
    return list(tags)


async def copy_repositories(
    *,
    source: RegistryClient,
    source_prefix: str,
    target: RegistryClient,
    target_prefix: str,
    copier: Copier | None = None,
    jobs: int = DEFAULT_JOBS,
) -> list[ImageCopy]:
    """Copy every tag of every source repository under ``source_prefix`` (the whole registry when
    empty) to the same path under ``target_prefix``. Needs catalog access on the source."""
    copier = copier or Copier()
    slots = asyncio.Semaphore(jobs)
    prefix = source_prefix.strip("/")
    repositories = [
        name for name in await source.catalog() if not prefix or name == prefix or name.startswith(prefix + "/")
    ]

    def renamed(name: str) -> str:
        rest = name[len(prefix) :].lstrip("/") if prefix else name
        return "/".join(part for part in (target_prefix.strip("/"), rest) if part)

    results = await asyncio.gather(
        *(
            copy_tags(
                source=source,
                source_repository=name,
                target=target,
                target_repository=renamed(name),
                copier=copier,
                jobs=slots,
                require_tags=False,
            )
            for name in repositories
        )
    )
    return [copy for per_repository in results for copy in per_repository]
