"""Retention, as a PURE function: which undeclared versions an environment retires, by which rule.

Input: the desired state, what the registries hold in each environment's repositories (tags, the digests
of the undeclared ones, and when ``max_bytes`` asks, the blobs of every image), and today's date. Output:
one ``Retirement`` per (environment, registry, repository, tag) to archive or delete, the rule that fired
and the bytes it frees, plus the tags that were left alone because they do not follow the naming rule.

Per environment and registry, per repository, versions are ordered by ``YYYYMMDD_NN`` (never by push time).
Never candidates: a declared version; any tag whose digest a declared version uses in ANY environment on ANY
registry (stricter than "on that registry": a downstream environment copies from its upstream, and a second
production site is healed from the first, so an upstream copy of anything declared downstream must survive
even when it is untagged there); a tag that is not a version (reported, untouched; referrer and cosign tags
are not even reported); a repository outside the environment's prefix; in a source environment, a version
newer than the newest one any downstream environment declares (a build not yet promoted). Then: the newest
``keep`` candidates survive; older ones retire (with ``max_age_days`` set, only those whose tag date is past
it: keep is then a floor, as in GitLab's cleanup policies); then ``max_bytes`` retires the oldest remaining
candidates until the environment's unique blob bytes on that registry fit (the ones ``keep`` protects included
in the count, never retired). No I/O, no clock.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta

from reconciler.model.desired import DesiredState, Environment
from reconciler.model.version import Version

_REFERRER_TAG = re.compile(r"^sha(256|512)-[0-9a-f]+(\.(sig|att|sbom))?$")


PLACEHOLDER_ANNOTATION = "io.reconciler.detached"
"""Marks the tiny manifest pushed onto a tag to detach it from a digest other tags still use."""
PLACEHOLDER_RULE = "interrupted-detach"


def is_referrer_tag(tag: str) -> bool:
    """A cosign tag or a referrers tag-schema index (``sha256-<hex>[.sig|.att|.sbom]``): never retired."""
    return _REFERRER_TAG.match(tag) is not None


@dataclass(frozen=True, slots=True)
class RepositoryContent:
    """One repository of an environment on one registry, as observed for retention."""

    environment: str
    registry: str
    image: str
    repository: str
    tags: Mapping[str, str | None]
    """Every tag -> its digest (None: not looked up, e.g. a tag that is not a version)."""
    placeholders: frozenset[str] = frozenset()
    """Tags left on a detach placeholder by an interrupted run (``PLACEHOLDER_ANNOTATION``): deleted."""


@dataclass(frozen=True, slots=True)
class Retirement:
    environment: str
    registry: str
    image: str
    repository: str
    tag: str
    digest: str
    rule: str
    """What fired: ``keep=5``, ``max_age_days=30``, ``max_bytes=500Gi``."""
    archive: bool
    """Archive first (True) or delete outright."""
    bytes_freed: int = 0
    """Blob bytes no other image of the environment on that registry uses (0 when sizes were not read)."""


@dataclass(frozen=True, slots=True)
class RetentionPlan:
    retirements: tuple[Retirement, ...] = ()
    not_versions: tuple[tuple[str, str, str], ...] = ()
    """(registry, repository, tag) left untouched: not a version by the naming rule."""
    over_capacity: tuple[tuple[str, str, int, int], ...] = ()
    """(environment, registry, bytes still used, max_bytes) where declared and kept versions alone exceed it."""


@dataclass(slots=True)
class _Candidate:
    content: RepositoryContent
    tag: str
    version: Version
    digest: str
    rule: str = ""


def declared_digests(desired: DesiredState) -> set[str]:
    """Every digest a declared version uses, in any environment."""
    return {pin.digest for state in desired.environments.values() for pin in state.versions()}


def _newest_downstream(desired: DesiredState, source: Environment) -> dict[str, Version]:
    """Image -> the newest version any environment promoted from ``source`` (directly or not) declares."""
    downstream = {env.name for env in desired.config.environments if not env.source}
    newest: dict[str, Version] = {}
    for name in downstream:
        state = desired.environments.get(name)
        for pin in state.versions() if state is not None else ():
            version = Version.try_parse(pin.tag)
            if version is not None and (pin.image not in newest or version > newest[pin.image]):
                newest[pin.image] = version
    return newest


def plan_retention(
    desired: DesiredState,
    contents: Iterable[RepositoryContent],
    *,
    today: date,
    blobs: Mapping[tuple[str, str], Mapping[str, frozenset[tuple[str, int]]]] | None = None,
    archive_store: bool,
) -> RetentionPlan:
    """What retires (see the module docstring). ``blobs``: (environment, registry) -> image digest ->
    its (blob digest, size) set, for ``max_bytes`` and ``bytes_freed``; ``archive_store``: whether one
    is configured (rules then archive unless they say ``archive: false``)."""
    config = desired.config
    protected = declared_digests(desired)
    by_place: dict[tuple[str, str], list[RepositoryContent]] = {}
    for content in contents:
        by_place.setdefault((content.environment, content.registry), []).append(content)
    retirements: list[Retirement] = []
    not_versions: list[tuple[str, str, str]] = []
    over: list[tuple[str, str, int, int]] = []
    for (env_name, registry), repositories in sorted(by_place.items()):
        env = config.environment(env_name)
        rule = config.retention.for_environment(env_name)
        declared = desired.environments.get(env_name)
        newest = _newest_downstream(desired, env) if env.source else {}
        candidates: list[_Candidate] = []
        for content in repositories:
            image_rule = config.retention.for_image(env_name, content.image)
            pinned = {pin.tag for pin in declared.images.get(content.image, ())} if declared else set()
            mine: list[_Candidate] = []
            for tag, digest in content.tags.items():
                if tag in content.placeholders and tag not in pinned and digest is not None:
                    retirements.append(_placeholder(content, tag, digest))
                    continue
                if tag in pinned or is_referrer_tag(tag):
                    continue
                version = Version.try_parse(tag)
                if version is None or not _follows(config.naming.tag_pattern, tag):
                    not_versions.append((registry, content.repository, tag))
                    continue
                if digest is None or digest in protected:
                    continue
                if env.source and (content.image not in newest or version > newest[content.image]):
                    continue  # a build newer than anything promoted: not retired before it can be
                mine.append(_Candidate(content, tag, version, digest))
            mine.sort(key=lambda c: c.version, reverse=True)
            for candidate in mine[image_rule.keep or 0 :]:
                if image_rule.max_age_days is not None:  # with an age rule, keep is a floor, age the trigger
                    if candidate.version.day < today - timedelta(days=image_rule.max_age_days):
                        candidate.rule = f"max_age_days={image_rule.max_age_days}"
                elif image_rule.keep is not None:
                    candidate.rule = f"keep={image_rule.keep}"
                candidates.append(candidate)
        chosen = sorted((c for c in candidates if c.rule), key=_oldest_first)
        usage = _Usage(repositories, (blobs or {}).get((env_name, registry), {}))
        freed = {id(c): usage.remove_tag(c.digest) for c in chosen}
        if rule.max_bytes is not None and blobs is not None:
            for candidate in sorted((c for c in candidates if not c.rule), key=_oldest_first):
                if usage.bytes <= rule.max_bytes:
                    break
                candidate.rule = f"max_bytes={rule.max_bytes}"
                freed[id(candidate)] = usage.remove_tag(candidate.digest)
                chosen.append(candidate)
            if usage.bytes > rule.max_bytes:
                over.append((env_name, registry, usage.bytes, rule.max_bytes))
        for candidate in chosen:
            image_rule = config.retention.for_image(env_name, candidate.content.image)
            retirements.append(
                Retirement(
                    environment=env_name,
                    registry=registry,
                    image=candidate.content.image,
                    repository=candidate.content.repository,
                    tag=candidate.tag,
                    digest=candidate.digest,
                    rule=candidate.rule,
                    archive=archive_store and image_rule.archive is not False,
                    bytes_freed=freed[id(candidate)],
                )
            )
    retirements.sort(key=lambda r: (r.environment, r.registry, r.repository, r.tag))
    return RetentionPlan(tuple(retirements), tuple(sorted(set(not_versions))), tuple(over))


def _placeholder(content: RepositoryContent, tag: str, digest: str) -> Retirement:
    return Retirement(
        environment=content.environment,
        registry=content.registry,
        image=content.image,
        repository=content.repository,
        tag=tag,
        digest=digest,
        rule=PLACEHOLDER_RULE,
        archive=False,
    )


def _follows(pattern: str, tag: str) -> bool:
    return re.search(pattern, tag) is not None


def _oldest_first(candidate: _Candidate) -> tuple[Version, str]:
    return candidate.version, candidate.content.repository


class _Usage:
    """The environment's storage on one registry as reference counts, so that retiring a tag costs the
    size of its image, not a recount: remaining tags per digest, remaining digests per blob, and the bytes
    of the blobs still referenced (shared layers counted once)."""

    def __init__(
        self, repositories: Iterable[RepositoryContent], blobs: Mapping[str, frozenset[tuple[str, int]]]
    ) -> None:
        self._blobs = blobs
        self._tags: Counter[str] = Counter(
            digest for content in repositories for digest in content.tags.values() if digest is not None
        )
        self._refs: Counter[tuple[str, int]] = Counter()
        self.bytes = 0
        for digest in self._tags:
            for blob in blobs.get(digest, ()):
                if not self._refs[blob]:
                    self.bytes += blob[1]
                self._refs[blob] += 1

    def remove_tag(self, digest: str) -> int:
        """One tag on ``digest`` goes; the bytes that no remaining tag's image uses any more."""
        self._tags[digest] -= 1
        if self._tags[digest] > 0:
            return 0  # another tag keeps the image: only the tag goes
        freed = 0
        for blob in self._blobs.get(digest, ()):
            self._refs[blob] -= 1
            if not self._refs[blob]:
                freed += blob[1]
        self.bytes -= freed
        return freed
