"""The controller's status as data, and its JSON rendering (``/api/status``).

The controller fills a ``ControllerStatus`` (what it reconciles, from which commit, how each image x
environment stands, the last pass, a stall, images backing off, recent audit records); this module only
says what the values are and how they are shaped for JSON, and ``reconciler.report.board`` draws the
same value as HTML. So the board and the API can never disagree: they render one snapshot.

Pure: no I/O, no clock (times arrive as values), no import of the controller. The JSON is a versioned
envelope (``reconciler.report.envelope``): fields may be added, never renamed or removed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from reconciler.report.envelope import envelope

STATUS_COMMAND = "controller-status"


class CellState(StrEnum):
    """How one image stands in one environment (every registry of it, every declared version)."""

    IN_SYNC = "in-sync"
    """Every declared version is in every registry of the environment, at its digest."""
    PENDING = "pending"
    """Not reconciled yet at this commit, or waiting for an upstream environment."""
    FAILED = "failed"
    """The last attempt failed (a registry unreachable, a digest found nowhere...); see ``error``."""
    CONFLICT = "conflict"
    """A tag points at another digest and may not be moved (immutable tags)."""
    REFUSED = "refused"
    """A policy gate refused the image."""
    STALLED = "stalled"
    """The controller is stalled (invalid desired state or trust refused): nothing is reconciled."""


STATE_ORDER = (
    CellState.STALLED,
    CellState.REFUSED,
    CellState.CONFLICT,
    CellState.FAILED,
    CellState.PENDING,
    CellState.IN_SYNC,
)
"""Worst first: a cell shows the worst state of its versions and registries."""


class Overall(StrEnum):
    STARTING = "starting"
    """No pass has completed yet."""
    IN_SYNC = "in-sync"
    PROGRESSING = "progressing"
    """Something is pending or being reconciled, nothing has failed."""
    DEGRADED = "degraded"
    """At least one image failed, conflicts or is refused; the others are reconciled."""
    STALLED = "stalled"


@dataclass(frozen=True, slots=True)
class Cell:
    versions: tuple[str, ...]
    """The tags declared for the image in the environment, in file order."""
    state: CellState
    error: str | None = None
    """Why the cell is not in sync (the first failure of its last pass)."""
    updated: str | None = None
    """RFC 3339 time of the pass that last set ``state``."""
    retry_at: str | None = None
    """When a transient failure is retried (RFC 3339), while the image backs off."""
    reconciling: bool = False
    """A pass covering the image is running now."""
    last_state: CellState | None = None
    """While stalled: the state the cell had at the last commit that was applied."""

    def to_json(self) -> dict[str, Any]:
        return {
            "versions": list(self.versions),
            "state": self.state.value,
            "error": self.error,
            "updated": self.updated,
            "retry_at": self.retry_at,
            "reconciling": self.reconciling,
            "last_state": self.last_state.value if self.last_state is not None else None,
        }


@dataclass(frozen=True, slots=True)
class ImageRow:
    image: str
    cells: Mapping[str, Cell]
    """Environment -> cell, for the environments that declare the image."""

    def to_json(self) -> dict[str, Any]:
        return {"image": self.image, "cells": {env: cell.to_json() for env, cell in self.cells.items()}}


@dataclass(frozen=True, slots=True)
class EnvironmentInfo:
    """A column of the grid: where the environment lives and what it is promoted from."""

    registries: tuple[str, ...]
    upstream: str | None = None
    immutable_tags: bool = False

    def to_json(self) -> dict[str, Any]:
        return {"registries": list(self.registries), "from": self.upstream, "immutable_tags": self.immutable_tags}


@dataclass(frozen=True, slots=True)
class PassSummary:
    """One completed pass, as the status shows it."""

    time: str
    """RFC 3339 time the pass finished."""
    commit: str | None
    trigger: str
    """``change`` (a new commit or edit), ``resync`` (periodic re-observation) or ``retry`` (backoff)."""
    duration_seconds: float
    images: int
    """Images the pass covered."""
    counts: Mapping[str, int]
    """Actions by kind (``copy``, ``retag``, ``conflict``...), plus ``in_sync`` tags."""
    failures: int
    """Actions that did not succeed."""
    requests: int = 0
    """Registry requests the pass sent."""
    error: str | None = None
    """Set when the pass could not run at all (an unwritable audit log...)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "time": self.time,
            "commit": self.commit,
            "trigger": self.trigger,
            "duration_seconds": round(self.duration_seconds, 3),
            "images": self.images,
            "counts": dict(self.counts),
            "failures": self.failures,
            "requests": self.requests,
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class Stall:
    """Why nothing is reconciled until the desired state changes."""

    revision: str
    """The commit (or content hash of a directory) that stalled."""
    reason: str
    """``invalid desired state`` or ``refused by the trust rules`` (or another configuration error)."""
    problems: tuple[str, ...]
    """Every problem, one line each (``file:line:column: message [code]``)."""
    since: str

    def to_json(self) -> dict[str, Any]:
        return {"revision": self.revision, "reason": self.reason, "problems": list(self.problems), "since": self.since}


@dataclass(frozen=True, slots=True)
class Retrying:
    """An image backing off after a transient failure."""

    image: str
    attempts: int
    retry_at: str
    error: str

    def to_json(self) -> dict[str, Any]:
        return {"image": self.image, "attempts": self.attempts, "retry_at": self.retry_at, "error": self.error}


@dataclass(frozen=True, slots=True)
class ControllerStatus:
    generated: str
    """RFC 3339 time this snapshot was taken."""
    version: str
    """reconciler's version."""
    source: str
    """Where the desired state comes from (a directory, or ``URL REF``), credentials removed."""
    started: str
    ready: bool
    """True once a pass has observed the registries."""
    interval_seconds: float
    resync_seconds: float
    shard: str | None = None
    commit: str | None = None
    """The commit (or content hash) being reconciled."""
    commit_author: str | None = None
    environments: tuple[str, ...] = ()
    """Reconciled environments, in promotion order (the board's columns)."""
    environment_info: Mapping[str, EnvironmentInfo] = field(default_factory=dict)
    rows: tuple[ImageRow, ...] = ()
    last_pass: PassSummary | None = None
    stalled: Stall | None = None
    retrying: tuple[Retrying, ...] = ()
    recent: tuple[Mapping[str, object], ...] = ()
    """The latest audit records, newest first."""
    source_error: str | None = None
    """The last failure to fetch or read the desired state, while it lasts (the last good one is used)."""
    next_resync: str | None = None

    def counts(self) -> dict[str, int]:
        """Cells per state, every state present (0 when none)."""
        counts = {state.value: 0 for state in CellState}
        for row in self.rows:
            for cell in row.cells.values():
                counts[cell.state.value] += 1
        return counts

    @property
    def overall(self) -> Overall:
        if self.stalled is not None:
            return Overall.STALLED
        if not self.ready:
            return Overall.STARTING
        counts = self.counts()
        if counts["failed"] or counts["conflict"] or counts["refused"]:
            return Overall.DEGRADED
        reconciling = any(cell.reconciling for row in self.rows for cell in row.cells.values())
        if counts["pending"] or reconciling:
            return Overall.PROGRESSING
        return Overall.IN_SYNC


def worst(states: Sequence[CellState]) -> CellState:
    """The worst of ``states`` (in-sync when empty)."""
    for state in STATE_ORDER:
        if state in states:
            return state
    return CellState.IN_SYNC


def status_document(status: ControllerStatus) -> dict[str, Any]:
    """``/api/status``: the snapshot inside the versioned envelope (command ``controller-status``)."""
    return envelope(
        STATUS_COMMAND,
        status.overall.value,
        generated=status.generated,
        controller={
            "version": status.version,
            "source": status.source,
            "started": status.started,
            "ready": status.ready,
            "shard": status.shard,
            "interval_seconds": status.interval_seconds,
            "resync_seconds": status.resync_seconds,
            "next_resync": status.next_resync,
        },
        commit=status.commit,
        commit_author=status.commit_author,
        stalled=status.stalled.to_json() if status.stalled is not None else None,
        source_error=status.source_error,
        last_pass=status.last_pass.to_json() if status.last_pass is not None else None,
        environments=list(status.environments),
        environment_info={env: info.to_json() for env, info in status.environment_info.items()},
        summary=status.counts(),
        images=[row.to_json() for row in status.rows],
        retrying=[retry.to_json() for retry in status.retrying],
        recent_events=[dict(record) for record in status.recent],
    )
