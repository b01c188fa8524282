"""The controller's record of how each image stands in each environment, updated pass by pass.

``StatusBook`` keeps, per (image, environment) the controller reconciles, the versions declared and the
state the last pass covering it left (``reconciler.report.status.CellState``), with its first error and
the number of actions that did not succeed (the drift metric). A new desired state keeps the state of
cells whose declared versions did not change and marks the others ``pending``; a pass replaces the cells
of the images it covered, and only those (passes may cover a few images: a retry, a shard).

``image_causes`` condenses a pass's results into one ``Cause`` per image that did not converge
(temporary when any of its failures is), which is what the per-image backoff reads.

Pure bookkeeping over the engine's results: no I/O, no clock of its own (times are passed in).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from reconciler.controller.backoff import RetryBook
from reconciler.engine.execute import ActionResult
from reconciler.engine.reconcile import PassReport
from reconciler.model.desired import DesiredState
from reconciler.model.outcome import Cause, Outcome
from reconciler.model.plan import ActionKind
from reconciler.report.status import Cell, CellState, ImageRow, worst


@dataclass(frozen=True, slots=True)
class CellRecord:
    state: CellState
    error: str | None = None
    updated: str | None = None
    drift: int = 0
    """Actions the last pass found needed here that did not succeed."""


def result_state(result: ActionResult) -> CellState:
    """The state one action's result leaves its cell in."""
    if result.outcome is Outcome.OK:
        return CellState.IN_SYNC
    if result.outcome is Outcome.REFUSED:
        return CellState.CONFLICT if result.action.kind is ActionKind.CONFLICT else CellState.REFUSED
    if result.outcome is Outcome.SKIPPED:
        return CellState.PENDING  # waits for an upstream action that did not succeed
    return CellState.FAILED


def image_causes(report: PassReport) -> dict[str, Cause]:
    """Image -> why it did not converge in this pass (absent: it did). Temporary when any failure is."""
    failures: dict[str, list[Cause]] = {}
    for result in report.results or ():
        if not result.succeeded:
            cause = result.cause or Cause(result.outcome.value, kind=result.outcome.value)
            failures.setdefault(result.action.image, []).append(cause)
    condensed: dict[str, Cause] = {}
    for image, causes in failures.items():
        temporary = [c for c in causes if c.temporary]
        waits = [c.retry_after for c in temporary if c.retry_after is not None]
        first = (temporary or causes)[0]
        condensed[image] = Cause(
            first.message, temporary=bool(temporary), retry_after=max(waits) if waits else None, kind=first.kind
        )
    return condensed


class StatusBook:
    def __init__(self) -> None:
        self.environments: tuple[str, ...] = ()
        self._declared: dict[str, dict[str, tuple[str, ...]]] = {}
        """image -> environment -> declared tags."""
        self._records: dict[tuple[str, str], CellRecord] = {}
        self._reconciling: set[str] = set()

    @property
    def images(self) -> frozenset[str]:
        return frozenset(self._declared)

    def load(self, desired: DesiredState, environments: Iterable[str], owns: Callable[[str], bool]) -> None:
        """A new desired state: the grid's rows and columns; unchanged cells keep their state."""
        self.environments = tuple(environments)
        declared: dict[str, dict[str, tuple[str, ...]]] = {}
        for env in self.environments:
            state = desired.environments.get(env)
            for image, pins in state.images.items() if state is not None else ():
                if owns(image):
                    declared.setdefault(image, {})[env] = tuple(pin.tag for pin in pins)
        records: dict[tuple[str, str], CellRecord] = {}
        for image, cells in declared.items():
            for env, tags in cells.items():
                kept = self._records.get((image, env))
                unchanged = self._declared.get(image, {}).get(env) == tags
                records[(image, env)] = kept if kept is not None and unchanged else CellRecord(CellState.PENDING)
        self._declared = dict(sorted(declared.items()))
        self._records = records

    def reconciling(self, images: Iterable[str], busy: bool) -> None:
        if busy:
            self._reconciling.update(images)
        else:
            self._reconciling.difference_update(images)

    def record_pass(self, covered: Iterable[str], report: PassReport, when: str) -> None:
        """The cells of the images ``report`` covered, from its results."""
        by_cell: dict[tuple[str, str], list[ActionResult]] = {}
        for result in report.results or ():
            by_cell.setdefault((result.action.image, result.action.environment), []).append(result)
        for image in covered:
            for env in self._declared.get(image, {}):
                results = by_cell.get((image, env), [])
                if not results:
                    self._records[(image, env)] = CellRecord(CellState.IN_SYNC, None, when, 0)
                    continue
                failed = [r for r in results if not r.succeeded]
                state = worst([result_state(r) for r in results])
                error = next((r.error for r in failed if r.error), None)
                self._records[(image, env)] = CellRecord(state, error, when, len(failed))

    def record_error(self, covered: Iterable[str], cause: Cause, when: str) -> None:
        """A pass that could not run: its images failed, for that reason."""
        for image in covered:
            for env in self._declared.get(image, {}):
                previous = self._records.get((image, env))
                drift = previous.drift if previous is not None else 0
                self._records[(image, env)] = CellRecord(CellState.FAILED, cause.message, when, drift)

    def drift_by_environment(self) -> dict[str, int]:
        drift = dict.fromkeys(self.environments, 0)
        for (_image, env), record in self._records.items():
            drift[env] = drift.get(env, 0) + record.drift
        return drift

    def rows(self, *, stalled: bool, retries: RetryBook, wall: Callable[[float], str]) -> tuple[ImageRow, ...]:
        """The grid, one row per image; ``wall`` turns a monotonic time into RFC 3339."""
        rows = []
        for image, cells in self._declared.items():
            retry = retries.state(image)
            retry_at = wall(retry.due) if retry is not None and retry.due is not None else None
            built: dict[str, Cell] = {}
            for env, tags in cells.items():
                record = self._records.get((image, env), CellRecord(CellState.PENDING))
                failing = record.state is not CellState.IN_SYNC
                built[env] = Cell(
                    versions=tags,
                    state=CellState.STALLED if stalled else record.state,
                    error=record.error,
                    updated=record.updated,
                    retry_at=retry_at if failing else None,
                    reconciling=image in self._reconciling,
                    last_state=record.state if stalled else None,
                )
            rows.append(ImageRow(image, built))
        return tuple(rows)
