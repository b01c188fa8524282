"""What the registries hold, as far as one reconcile pass looked: tag -> digest, and manifest presence.

Filled by ``reconciler.engine.observe`` and read by the pure planner. Nothing here does I/O. Absence
and failure are distinct: a tag that the registry says does not exist is ``None``; a tag the registry
could not be asked about (down, 5xx after retries, auth failure) is recorded in ``errors`` and never
mistaken for "absent" (which would plan a write into a registry we cannot even read).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from reconciler.model.outcome import Cause


class TagKey(NamedTuple):
    """One tag of one repository on one registry (registry by its name in ``reconciler.yaml``)."""

    registry: str
    repository: str
    tag: str


class ManifestKey(NamedTuple):
    """One manifest, by digest, in one repository on one registry."""

    registry: str
    repository: str
    digest: str


@dataclass(frozen=True, slots=True)
class ObservedState:
    """The registries' answers of one observation.

    ``tags`` maps every tag that was looked up to the digest it points at, or ``None`` when the
    registry says the tag (or the repository) does not exist. ``manifests`` maps every manifest that was
    looked up by digest to whether it is present. ``errors`` maps a key whose lookup failed to its cause
    (a message with no secret in it, and whether a retry may help). A key in none of the three was not
    looked up.
    """

    tags: Mapping[TagKey, str | None] = field(default_factory=dict)
    manifests: Mapping[ManifestKey, bool] = field(default_factory=dict)
    errors: Mapping[TagKey | ManifestKey, Cause] = field(default_factory=dict)
    requests: int | None = None
    """Requests the observation sent, when it answered some keys without one (from a tags list)."""
    damaged: Mapping[TagKey, tuple[str, ...]] = field(default_factory=dict)
    """In-sync tags a deep observation read back and found broken (a child manifest answering 500, a
    blob missing or of the wrong size): each with what is wrong. Empty unless the observation was deep."""
    archived: Mapping[str, str] = field(default_factory=dict)
    """Digest -> the archive store entry holding it (``p/app:20261127_01``), for the digests the desired
    state declares; empty without an archive store. What a RESTORE copies back from."""

    def tag_digest(self, key: TagKey) -> str | None:
        return self.tags.get(key)

    def has_manifest(self, key: ManifestKey) -> bool:
        """True when a lookup by digest found the manifest (tags pointing at it are the planner's business)."""
        return self.manifests.get(key, False)

    def error(self, key: TagKey | ManifestKey) -> Cause | None:
        return self.errors.get(key)

    @property
    def request_count(self) -> int:
        """How many requests this observation made (one per lookup unless the observer said otherwise)."""
        if self.requests is not None:
            return self.requests
        return len(self.tags) + len(self.manifests) + len(self.errors)
