"""One reconcile pass: load -> observe -> plan -> [plan stops here] -> execute -> audit.

``plan`` and ``apply`` are the SAME code path; the dry run is an early return after planning, so what
``plan`` shows is exactly what ``apply`` would do from the same observation. The pass returns a
``PassReport`` (data, no formatting) that the CLI renders and the controller turns into status.

It never maps errors to exit codes (the CLI does), never prints (progress goes to an observer the CLI
draws), and writes to registries only through ``RegistryAccess`` and only when not a dry run.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, cast

from reconciler.engine.access import RegistryAccess
from reconciler.engine.audit import AuditLog
from reconciler.engine.execute import DEFAULT_APPLY_CONCURRENCY, ActionResult, ApplyProgress, execute
from reconciler.engine.gates import EvidenceAccess, gate_plan
from reconciler.engine.housekeeping import LifecycleReport, open_store, plan_lifecycle, restorable
from reconciler.engine.inventory import InventoryAccess
from reconciler.engine.journal import PassJournal
from reconciler.engine.lifecycle import with_lifecycle
from reconciler.engine.observe import DEFAULT_OBSERVE_CONCURRENCY, observe
from reconciler.engine.plan import ImageFilter, selected_environments
from reconciler.engine.plan import plan as make_plan
from reconciler.engine.travellers import planned_referrers
from reconciler.errors import ReconcilerError
from reconciler.model.desired import DesiredState
from reconciler.model.observed import ObservedState
from reconciler.model.plan import Action, Plan

if TYPE_CHECKING:
    from reconciler.archive import OciLayout
    from reconciler.engine.registries import RegistryPool
    from reconciler.engine.retire import LifecycleRunner


@dataclass(frozen=True, slots=True)
class Failure:
    """One image that did not converge: where, and why."""

    environment: str
    registry: str
    image: str
    tag: str
    digest: str
    reason: str
    action: str

    def __str__(self) -> str:
        return f"{self.environment}: {self.registry}/{self.image}:{self.tag}: {self.reason}"


@dataclass(frozen=True, slots=True)
class PassReport:
    desired: DesiredState
    observed: ObservedState
    plan: Plan
    results: tuple[ActionResult, ...] | None
    """None for a dry run (``plan``); one per action after ``apply``."""
    observe_seconds: float
    plan_seconds: float
    execute_seconds: float = 0.0
    lifecycle: LifecycleReport | None = None
    """Retention's notes (None when the pass did not run retention)."""
    referrers: Mapping[int, tuple[str, ...]] = field(default_factory=dict)
    """``plan`` only: action id -> the referrers (``"signature sha256:..."``) that will travel with the copy."""

    @property
    def applied(self) -> bool:
        return self.results is not None

    @property
    def failures(self) -> list[Failure]:
        """Images that are not (plan: cannot be) as declared after this pass."""
        if self.results is None:
            return [_failure(action, action.reason) for action in self.plan.failures]
        return [_failure(r.action, r.error or r.outcome.value) for r in self.results if not r.succeeded]

    @property
    def changed(self) -> list[ActionResult]:
        return [r for r in self.results or () if r.succeeded and r.action.writes]


def _failure(action: Action, reason: str) -> Failure:
    return Failure(
        environment=action.environment,
        registry=action.registry,
        image=action.image,
        tag=action.tag,
        digest=action.digest,
        reason=reason,
        action=action.kind.value,
    )


async def reconcile_pass(
    desired: DesiredState,
    access: RegistryAccess,
    *,
    only: Collection[str] | None = None,
    dry_run: bool,
    audit: AuditLog | None = None,
    observe_concurrency: int = DEFAULT_OBSERVE_CONCURRENCY,
    apply_concurrency: int = DEFAULT_APPLY_CONCURRENCY,
    progress: ApplyProgress | None = None,
    images: ImageFilter | None = None,
    retention: bool = False,
    today: date | None = None,
    may_start: Callable[[], bool] | None = None,
    deep: bool = False,
) -> PassReport:
    """Observe the registries, plan, and (unless ``dry_run``) execute and audit every action.

    ``only`` restricts the pass to some environments (KeyError-free: unknown names raise
    ``ReconcilerError`` naming them), ``images`` to some images (a controller's shard, or the images due
    for a retry). ``progress`` receives the action count, each result and the blob
    transfers (the CLI draws bars from it). ``retention`` adds the lifecycle actions (archive, delete,
    destroy) for the selected environments, source ones included, as of ``today`` (default: the UTC
    date); a RESTORE is planned whenever the archive store holds a declared digest no registry has.
    ``deep`` reads every in-sync image back (DAMAGED when the registry lost part of it).
    ``may_start`` is asked before each write (see ``execute``): a controller stops starting writes with it.
    """
    try:
        selected_environments(desired, only)
    except KeyError as exc:
        known = ", ".join(desired.config.environment_names)
        raise ReconcilerError(f"unknown environment {exc.args[0]!r} (defined: {known})") from None

    journal = PassJournal(None if dry_run else audit, desired)
    journal.open()  # an unwritable audit log stops the pass before anything is written
    keep_manifests = getattr(access, "keep_manifests", None)  # a RegistryPool can reuse what it observed
    if keep_manifests is not None:
        keep_manifests(not dry_run)
    started = time.monotonic()
    observed = await observe(desired, access, only, concurrency=observe_concurrency, images=images, deep=deep)
    store = open_store(desired)
    archived, store_problem = await restorable(desired, store)
    if archived:
        observed = dataclasses.replace(observed, archived=archived)
    observed_at = time.monotonic()
    plan = make_plan(desired, observed, only, images)
    if desired.config.gates:
        plan = await gate_plan(desired, plan, cast(EvidenceAccess, access))
    lifecycle: LifecycleReport | None = None
    if retention:
        actions, lifecycle = await plan_lifecycle(
            desired,
            cast(InventoryAccess, access),
            store,
            only=only,
            today=today or datetime.now(UTC).date(),
            first_id=len(plan),
            concurrency=observe_concurrency,
        )
        plan = with_lifecycle(plan, actions)
        if store_problem is not None:
            lifecycle = dataclasses.replace(lifecycle, problems=(*lifecycle.problems, store_problem))
    if dry_run:
        travelling: dict[int, tuple[str, ...]] = {}
        if getattr(access, "copies_referrers", False):
            travelling = await planned_referrers(plan, cast(EvidenceAccess, access))
        planned_at = time.monotonic()
        return PassReport(
            desired,
            observed,
            plan,
            None,
            observed_at - started,
            planned_at - observed_at,
            lifecycle=lifecycle,
            referrers=travelling,
        )
    planned_at = time.monotonic()

    journal.confirm(observed)

    def on_result(result: ActionResult) -> None:
        journal.outcome(result)
        if progress is not None:
            progress.advance(result)

    watch = getattr(access, "watch", None) if progress is not None else None  # a RegistryPool reports bytes
    if progress is not None:
        progress.started(len(plan))
    if watch is not None:
        watch(progress)
    runner = _runner(access, store, desired) if plan.lifecycle else None
    try:
        results = await execute(
            plan,
            access,
            concurrency=apply_concurrency,
            on_start=journal.intent,
            on_result=on_result,
            lifecycle=runner,
            may_start=may_start,
        )
        if runner is not None and lifecycle is not None:
            garbage, problems = await runner.finish()
            lifecycle = dataclasses.replace(lifecycle, garbage=garbage, problems=lifecycle.problems + problems)
    finally:
        if watch is not None:
            watch(None)
        if store is not None:
            await store.close()
    finished = time.monotonic()
    return PassReport(
        desired,
        observed,
        plan,
        tuple(results),
        observed_at - started,
        planned_at - observed_at,
        finished - planned_at,
        lifecycle=lifecycle,
    )


def _runner(access: RegistryAccess, store: OciLayout | None, desired: DesiredState) -> LifecycleRunner:
    from reconciler.engine.retire import LifecycleRunner  # noqa: PLC0415

    return LifecycleRunner(cast("RegistryPool", access), store, commit=desired.commit)
