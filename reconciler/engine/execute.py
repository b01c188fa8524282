"""Execute a plan: bounded concurrency across images, dependencies honoured, failures isolated per image.

Every action of the plan gets exactly one ``ActionResult``:

* ``ok``: the copy or retag finished (the tag is written last, by the copier, after every blob and
  child manifest is in place, so an interrupted action never leaves a tag on an incomplete image);
* ``failed``: the registry operation raised, or the action could only fail (MISSING, UNREACHABLE);
* ``refused``: a CONFLICT that the environment's policy refuses; nothing was written;
* ``skipped``: an action it depends on did not succeed (s1 cannot copy from t what t never got).

Lifecycle actions (ARCHIVE, DELETE, RESTORE, DESTROY) are performed by a ``LifecyclePerformer``
(``reconciler.engine.retire``). A DELETE waits for EVERY ARCHIVE of the plan, and is skipped unless they
all succeeded: while the archive store fails, nothing is deleted from any registry.

A result that did not succeed carries a ``Cause`` (``reconciler.model.outcome``): the message, and whether
a retry may help (an unreachable registry, a 503) or cannot (a refused conflict, credentials refused).
Nothing an action raises escapes: a ``ReconcilerError`` becomes its image's cause, and anything else is
recorded as an internal error of that image, so one image can never stop the others or the audit.

An action waits for its dependencies BEFORE taking one of the ``concurrency`` slots, so a long chain
never holds slots while idle and the pool cannot deadlock. One image's failure never stops another's
action. The executor reports each result through a callback as it happens (audit log, progress), and
draws progress bars with rich only when given a terminal; otherwise it prints nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from reconciler.engine.access import RegistryAccess
from reconciler.errors import ReconcilerError, cause_of
from reconciler.model.outcome import Cause, Outcome
from reconciler.model.plan import LIFECYCLE_KINDS, Action, ActionKind, ConflictResolution, Plan
from reconciler.model.store import CopyProgress

DEFAULT_APPLY_CONCURRENCY = 16
_STOPPING = "not started: the run is stopping (the next run does it)"

__all__ = ["DEFAULT_APPLY_CONCURRENCY", "ActionResult", "ApplyProgress", "Cause", "Outcome", "execute", "planned_cause"]


@dataclass(frozen=True, slots=True)
class ActionResult:
    action: Action
    outcome: Outcome
    cause: Cause | None = None
    """Why it did not succeed (None when it did)."""
    seconds: float = 0.0
    referrers: tuple[str, ...] = ()
    """Digests of the signatures, SBOMs and attestations copied with the image."""

    @property
    def succeeded(self) -> bool:
        return self.outcome is Outcome.OK

    @property
    def error(self) -> str | None:
        return self.cause.message if self.cause is not None else None


def planned_cause(action: Action) -> Cause:
    """The cause of an action that can only fail: an unreachable registry may answer later; a missing
    digest or a refused conflict needs a change first."""
    return Cause(action.reason, temporary=action.kind is ActionKind.UNREACHABLE, kind=action.kind.value)


ResultCallback = Callable[[ActionResult], None]


class LifecyclePerformer(Protocol):
    async def perform(self, action: Action) -> None: ...


async def _perform(action: Action, access: RegistryAccess, lifecycle: LifecyclePerformer | None) -> tuple[str, ...]:
    """Do the action; the digests of the referrers that travelled with a copy."""
    if action.kind in LIFECYCLE_KINDS:
        if lifecycle is None:
            raise ReconcilerError(f"{action.kind.value} needs the lifecycle runner, which this pass does not have")
        await lifecycle.perform(action)
        return ()
    if action.source is not None:
        return tuple(await access.copy(action.source, action.target, action.digest, action.tag) or ())
    await access.retag(action.target, action.digest, action.tag)
    return ()


def _describe(action: Action) -> str:
    return f"#{action.id} {action.kind.value} {action.registry}/{action.repository}:{action.tag}"


async def execute(
    plan: Plan,
    access: RegistryAccess,
    *,
    concurrency: int = DEFAULT_APPLY_CONCURRENCY,
    on_start: Callable[[Action], None] | None = None,
    on_result: ResultCallback | None = None,
    lifecycle: LifecyclePerformer | None = None,
    may_start: Callable[[], bool] | None = None,
) -> list[ActionResult]:
    """Run every action of ``plan``; return one result per action, in plan order. ``on_start`` hears of a
    write right before it starts (the audit's intent record), ``on_result`` of every result. ``may_start``
    is asked right before each write starts: False (a controller shutting down) records it as skipped,
    temporary, without an intent, and writes nothing."""
    slots = asyncio.Semaphore(max(1, concurrency))
    finished: dict[int, asyncio.Future[bool]] = {
        action.id: asyncio.get_running_loop().create_future() for action in plan
    }
    results: dict[int, ActionResult] = {}

    def record(result: ActionResult) -> None:
        results[result.action.id] = result
        finished[result.action.id].set_result(result.succeeded)
        if on_result is not None:
            on_result(result)

    archives = [a.id for a in plan if a.kind is ActionKind.ARCHIVE]

    async def archives_done(action: Action) -> bool:
        """A DELETE waits for every ARCHIVE; False (and a SKIPPED result) unless they all succeeded."""
        failed = [i for i in archives if not await finished[i]]
        if failed:
            cause = Cause(
                f"not deleted: archiving failed for {len(failed)} image(s) in this pass (first: "
                f"{plan.actions[failed[0]].archive_ref}); nothing is deleted while the archive store fails",
                temporary=False,
                kind="skipped",
            )
            record(ActionResult(action, Outcome.SKIPPED, cause))
            return False
        return True

    async def run(action: Action) -> None:
        if action.kind is ActionKind.DELETE and not await archives_done(action):
            return
        for dependency in action.depends_on:
            if not await finished[dependency]:
                needed = plan.actions[dependency]
                upstream = results[dependency].cause
                cause = Cause(
                    f"needs {_describe(needed)}, which did not succeed",
                    temporary=upstream.temporary if upstream is not None else False,
                    kind="skipped",
                )
                record(ActionResult(action, Outcome.SKIPPED, cause))
                return
        if action.kind is ActionKind.REFUSED or (
            action.kind is ActionKind.CONFLICT and action.resolution is ConflictResolution.REFUSED
        ):
            record(ActionResult(action, Outcome.REFUSED, planned_cause(action)))
            return
        if not action.writes:
            record(ActionResult(action, Outcome.FAILED, planned_cause(action)))
            return
        async with slots:
            if may_start is not None and not may_start():
                record(ActionResult(action, Outcome.SKIPPED, Cause(_STOPPING, temporary=True, kind="stopped")))
                return
            started = time.monotonic()
            if on_start is not None:
                on_start(action)
            try:
                referrers = await _perform(action, access, lifecycle)
            except Exception as exc:  # any failure is this image's alone; the others go on
                record(ActionResult(action, Outcome.FAILED, cause_of(exc), time.monotonic() - started))
                return
            record(ActionResult(action, Outcome.OK, None, time.monotonic() - started, referrers))

    await asyncio.gather(*(run(action) for action in plan))
    return [results[action.id] for action in plan]


class ApplyProgress(CopyProgress, Protocol):
    """Receives the progress of an apply: how many actions, each result as it happens, and (as a
    ``CopyProgress``) the blob transfers of the copies. The CLI draws it; the engine never does."""

    def started(self, total: int) -> None: ...

    def advance(self, result: ActionResult) -> None: ...


def failed_results(results: Sequence[ActionResult]) -> list[ActionResult]:
    return [r for r in results if not r.succeeded]
