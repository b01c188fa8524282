"""Execute a plan: bounded concurrency across images, dependencies honoured, failures isolated per image.

Every action of the plan gets exactly one ``ActionResult``:

* ``ok``: the copy or retag finished (the tag is written last, by the copier, after every blob and
  child manifest is in place, so an interrupted action never leaves a tag on an incomplete image);
* ``failed``: the registry operation raised, or the action could only fail (MISSING, UNREACHABLE);
* ``refused``: a CONFLICT that the environment's policy refuses; nothing was written;
* ``skipped``: an action it depends on did not succeed (s1 cannot copy from t what t never got).

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
from enum import StrEnum
from typing import Protocol

from reconciler.engine.access import RegistryAccess
from reconciler.errors import ReconcilerError
from reconciler.model.plan import Action, ActionKind, ConflictResolution, Plan
from reconciler.model.store import CopyProgress

DEFAULT_APPLY_CONCURRENCY = 16


class Outcome(StrEnum):
    OK = "ok"
    FAILED = "failed"
    REFUSED = "refused"
    SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class ActionResult:
    action: Action
    outcome: Outcome
    error: str | None = None
    seconds: float = 0.0

    @property
    def succeeded(self) -> bool:
        return self.outcome is Outcome.OK


ResultCallback = Callable[[ActionResult], None]


async def _perform(action: Action, access: RegistryAccess) -> None:
    if action.source is not None:
        await access.copy(action.source, action.target, action.digest, action.tag)
    else:
        await access.retag(action.target, action.digest, action.tag)


def _describe(action: Action) -> str:
    return f"#{action.id} {action.kind.value} {action.registry}/{action.repository}:{action.tag}"


async def execute(
    plan: Plan,
    access: RegistryAccess,
    *,
    concurrency: int = DEFAULT_APPLY_CONCURRENCY,
    on_result: ResultCallback | None = None,
) -> list[ActionResult]:
    """Run every action of ``plan``; return one result per action, in plan order."""
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

    async def run(action: Action) -> None:
        for dependency in action.depends_on:
            if not await finished[dependency]:
                needed = plan.actions[dependency]
                record(
                    ActionResult(
                        action,
                        Outcome.SKIPPED,
                        f"needs {_describe(needed)}, which did not succeed",
                    )
                )
                return
        if action.kind is ActionKind.CONFLICT and action.resolution is ConflictResolution.REFUSED:
            record(ActionResult(action, Outcome.REFUSED, action.reason))
            return
        if not action.writes:
            record(ActionResult(action, Outcome.FAILED, action.reason))
            return
        async with slots:
            started = time.monotonic()
            try:
                await _perform(action, access)
            except ReconcilerError as exc:
                record(ActionResult(action, Outcome.FAILED, str(exc), time.monotonic() - started))
                return
            except (OSError, ValueError, RuntimeError) as exc:
                # Anything unexpected still fails only this image; name the type so it can be reported.
                message = f"{type(exc).__name__}: {exc}"
                record(ActionResult(action, Outcome.FAILED, message, time.monotonic() - started))
                return
            record(ActionResult(action, Outcome.OK, None, time.monotonic() - started))

    await asyncio.gather(*(run(action) for action in plan))
    return [results[action.id] for action in plan]


class ApplyProgress(CopyProgress, Protocol):
    """Receives the progress of an apply: how many actions, each result as it happens, and (as a
    ``CopyProgress``) the blob transfers of the copies. The CLI draws it; the engine never does."""

    def started(self, total: int) -> None: ...

    def advance(self, result: ActionResult) -> None: ...


def failed_results(results: Sequence[ActionResult]) -> list[ActionResult]:
    return [r for r in results if not r.succeeded]
