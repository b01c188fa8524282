"""Plan actions: what one reconcile pass will do (or refuse to do), as typed, ordered values.

A plan is the output of the pure planner (``reconciler.engine.plan``) and the input of the executor.
Each action concerns one (environment, registry, image, tag, digest). Actions are numbered in the
order they must run; ``depends_on`` names earlier actions whose result this one needs (s1 copies from t
what t only receives by a COPY in the same pass), so the executor may run independent actions
concurrently and must skip an action whose dependency failed.

Nothing here does I/O or imports anything of reconciler outside ``model``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple


class ActionKind(StrEnum):
    COPY = "copy"
    """Copy the image by digest from ``source`` (all platforms, blobs, children, then the tag)."""
    RETAG = "retag"
    """The manifest is already in the target repository: write the tag only (no blob traffic)."""
    CONFLICT = "conflict"
    """The tag points at another digest. ``resolution`` says whether it is refused or moved."""
    MISSING = "missing"
    """The digest is found nowhere it may come from: this image fails, the others go on."""
    UNREACHABLE = "unreachable"
    """A registry this image needs could not be observed (down, auth failure): this image fails."""
    DAMAGED = "damaged"
    """A deep observation read the in-sync image back and the registry does not serve all of it (it
    acknowledged writes it did not keep): nothing to write (the registry says the parts exist); the
    registry's storage needs repair. ``reason`` names what is broken."""
    REFUSED = "refused"
    """A policy gate refused the image (its evidence in ``reason``): it is never copied; the refusal is
    audited. Actions that could only receive the image through it are refused with it."""
    ARCHIVE = "archive"
    """Retention: copy an undeclared version into the archive store, read it back and re-hash every blob,
    and only then delete the tag from the registry (``rule`` says which rule fired)."""
    DELETE = "delete"
    """Retention without archiving (``archive: false``): delete the tag from the registry."""
    RESTORE = "restore"
    """A declared digest no registry holds but the archive does: copy it back from ``archive_ref``."""
    DESTROY = "destroy"
    """An archive entry past ``destroy_after_days``: remove it from the store (its blobs go with the
    garbage collection that follows)."""


LIFECYCLE_KINDS = frozenset({ActionKind.ARCHIVE, ActionKind.DELETE, ActionKind.RESTORE, ActionKind.DESTROY})
"""Actions that involve the archive store or delete from a registry (executed by ``engine.lifecycle``)."""


class ConflictResolution(StrEnum):
    REFUSED = "refused"
    """Immutable tags, or tag moves not allowed: nothing is written, the refusal is audited."""
    MOVED = "moved"
    """Tag moves are allowed: the tag is rewritten to the declared digest."""


class Location(NamedTuple):
    """A repository on a registry (registry by its name in ``reconciler.yaml``)."""

    registry: str
    repository: str

    def __str__(self) -> str:
        return f"{self.registry}/{self.repository}"


@dataclass(frozen=True, slots=True)
class Action:
    id: int
    """Position in the plan, 0-based; ``depends_on`` refers to these."""
    kind: ActionKind
    environment: str
    registry: str
    image: str
    repository: str
    tag: str
    digest: str
    source: Location | None = None
    """Where the manifest comes from (COPY, and a moved CONFLICT whose manifest is not in the target yet)."""
    source_environment: str | None = None
    current_digest: str | None = None
    """What the tag points at now (CONFLICT only)."""
    resolution: ConflictResolution | None = None
    depends_on: tuple[int, ...] = ()
    reason: str = ""
    """One line for a person: why this action, or why it fails."""
    rule: str = ""
    """ARCHIVE, DELETE, DESTROY: the retention rule that fired (``keep=5``, ``destroy_after_days=365``)."""
    bytes_freed: int = 0
    """ARCHIVE, DELETE: blob bytes the registry can reclaim (after its garbage collection)."""
    archive_ref: str | None = None
    """ARCHIVE, RESTORE, DESTROY: the archive store entry written, read or removed (``p/app:20261127_01``)."""

    @property
    def target(self) -> Location:
        return Location(self.registry, self.repository)

    @property
    def writes(self) -> bool:
        """True when executing this action writes to a registry."""
        if self.kind in (ActionKind.COPY, ActionKind.RETAG) or self.kind in LIFECYCLE_KINDS:
            return True
        return self.kind is ActionKind.CONFLICT and self.resolution is ConflictResolution.MOVED

    @property
    def fails(self) -> bool:
        """True when this action can only end as a failure of its image (nothing to execute)."""
        if self.kind in (ActionKind.MISSING, ActionKind.UNREACHABLE, ActionKind.REFUSED, ActionKind.DAMAGED):
            return True
        return self.kind is ActionKind.CONFLICT and self.resolution is ConflictResolution.REFUSED

    @property
    def reference(self) -> str:
        return f"{self.registry}/{self.repository}:{self.tag}@{self.digest}"


@dataclass(frozen=True, slots=True)
class Plan:
    actions: tuple[Action, ...] = ()
    in_sync: int = 0
    """How many (environment, registry, image, tag) were already as declared."""
    environments: tuple[str, ...] = field(default=())
    """The environments this plan covers, in promotion order."""

    def __iter__(self) -> Iterator[Action]:
        return iter(self.actions)

    def __len__(self) -> int:
        return len(self.actions)

    @property
    def writes(self) -> tuple[Action, ...]:
        return tuple(a for a in self.actions if a.writes)

    @property
    def failures(self) -> tuple[Action, ...]:
        return tuple(a for a in self.actions if a.fails)

    @property
    def refused_by_policy(self) -> tuple[Action, ...]:
        """Images a gate (or trust) refused: exit 3 when nothing else failed."""
        return tuple(a for a in self.actions if a.kind is ActionKind.REFUSED)

    @property
    def lifecycle(self) -> tuple[Action, ...]:
        """The retention, restore and destroy actions."""
        return tuple(a for a in self.actions if a.kind in LIFECYCLE_KINDS)

    @property
    def is_empty(self) -> bool:
        """Nothing to do and nothing refused: the registries are as declared."""
        return not self.actions

    def counts(self) -> dict[str, int]:
        """Number of actions per kind (a moved/refused conflict counts as ``conflict``), plus ``in_sync``."""
        result: dict[str, int] = {kind.value: 0 for kind in ActionKind}
        for action in self.actions:
            result[action.kind.value] += 1
        result["in_sync"] = self.in_sync
        return result

    def by_id(self, ids: Sequence[int]) -> tuple[Action, ...]:
        return tuple(self.actions[i] for i in ids)
