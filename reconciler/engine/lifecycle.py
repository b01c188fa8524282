"""Lifecycle actions, as PURE functions: retirements and expired archive entries -> plan actions.

* a retirement that archives becomes ARCHIVE (copy into the store, read back, every blob re-hashed)
  followed by DELETE (from the registry) depending on it; one that does not archive is a DELETE alone;
* an archive entry older than ``destroy_after_days`` becomes DESTROY, unless a declared version still
  uses its digest (then the entry may be the last copy a RESTORE needs: it is kept, and reported).

The executor runs every DELETE only after EVERY ARCHIVE of the pass succeeded: a failing archive store
(read-only, full, a corrupt blob) means nothing is deleted from any registry in that pass. The actions
are appended after the reconcile actions, ids continuing theirs. No I/O, no clock.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from reconciler.archive import SOURCE_REGISTRY, ArchiveEntry
from reconciler.engine.retention import RetentionPlan, declared_digests
from reconciler.model.desired import DesiredState
from reconciler.model.plan import Action, ActionKind, Plan


@dataclass(frozen=True, slots=True)
class DestroyPlan:
    actions: tuple[Action, ...] = ()
    kept_declared: tuple[str, ...] = ()
    """Expired entries kept because a declared version uses their digest."""


def archive_name(repository: str, tag: str) -> str:
    """The archive store entry of an archived tag: ``<repository>:<tag>`` (``d/payments/api:20261101_01``)."""
    return f"{repository}:{tag}"


def retention_actions(retention: RetentionPlan, *, first_id: int) -> list[Action]:
    """ARCHIVE + DELETE (or DELETE alone) per retirement, ids from ``first_id``."""
    actions: list[Action] = []
    for retirement in retention.retirements:
        ref = archive_name(retirement.repository, retirement.tag) if retirement.archive else None
        delete = Action(
            id=first_id + len(actions),
            kind=ActionKind.DELETE,
            environment=retirement.environment,
            registry=retirement.registry,
            image=retirement.image,
            repository=retirement.repository,
            tag=retirement.tag,
            digest=retirement.digest,
            rule=retirement.rule,
            archive_ref=ref,
            bytes_freed=retirement.bytes_freed,
            reason=f"retired by {retirement.rule}; not archived (archive: false)",
        )
        if retirement.archive:
            archive = dataclasses.replace(
                delete,
                kind=ActionKind.ARCHIVE,
                bytes_freed=0,
                reason=f"retired by {retirement.rule}: archive, read back and verify before deleting",
            )
            actions.append(archive)
            delete = dataclasses.replace(
                delete,
                id=archive.id + 1,
                depends_on=(archive.id,),
                reason=f"retired by {retirement.rule}; archived by #{archive.id}",
            )
        actions.append(delete)
    return actions


def destroy_actions(
    desired: DesiredState,
    entries: Iterable[ArchiveEntry],
    *,
    today: date,
    first_id: int,
    only: Collection[str] | None = None,
) -> DestroyPlan:
    """DESTROY per entry archived more than ``archive.destroy_after_days`` days before ``today``.

    Only entries named ``<prefix>/<image>:<tag>`` for an environment of the config (and of ``only``) with
    an archive date are considered: an entry another tool wrote, or one without a date, is never
    destroyed by a rule."""
    archive = desired.config.archive
    if archive is None or archive.destroy_after_days is None:
        return DestroyPlan()
    days = archive.destroy_after_days
    limit = today - timedelta(days=days)
    protected = declared_digests(desired)
    by_prefix = {env.prefix: env for env in desired.config.environments}
    actions: list[Action] = []
    kept: list[str] = []
    for entry in sorted(entries, key=lambda e: e.label):
        stamp = entry.archived_at
        if entry.name is None or entry.repository is None or entry.tag is None or stamp is None:
            continue
        prefix, _slash, image = entry.repository.partition("/")
        env = by_prefix.get(prefix)
        if env is None or not image or (only and env.name not in only):
            continue
        if _day(stamp) >= limit:
            continue
        if str(entry.digest) in protected:
            kept.append(entry.name)
            continue
        actions.append(
            destroy_action(
                entry,
                entry.name,
                id=first_id + len(actions),
                environment=env.name,
                rule=f"destroy_after_days={days}",
                reason=f"archived {stamp:%Y-%m-%d}, more than {days} days ago",
            )
        )
    return DestroyPlan(tuple(actions), tuple(kept))


def destroy_action(entry: ArchiveEntry, name: str, *, id: int, environment: str, rule: str, reason: str) -> Action:
    """DESTROY of the archive entry ``name`` (``<prefix>/<image>:<tag>``, or any name another tool gave it)."""
    repository = entry.repository or name
    _prefix, _slash, image = repository.partition("/")
    return Action(
        id=id,
        kind=ActionKind.DESTROY,
        environment=environment,
        registry=entry.annotations.get(SOURCE_REGISTRY, ""),
        image=image or repository,
        repository=repository,
        tag=entry.tag or "",
        digest=str(entry.digest),
        archive_ref=name,
        rule=rule,
        reason=reason,
    )


def _day(moment: datetime) -> date:
    return moment.date()


def with_lifecycle(plan: Plan, actions: Iterable[Action]) -> Plan:
    """``plan`` with the lifecycle ``actions`` appended (their ids must continue the plan's)."""
    extra = tuple(actions)
    for position, action in enumerate(extra, start=len(plan.actions)):
        if action.id != position:
            raise ValueError(f"lifecycle action {action.id} is not at position {position}")
    return Plan(actions=plan.actions + extra, in_sync=plan.in_sync, environments=plan.environments)


def archived_digests(desired: DesiredState, entries: Iterable[ArchiveEntry]) -> dict[str, str]:
    """Declared digest -> the archive entry holding it (the first by name), for RESTORE planning."""
    wanted = declared_digests(desired)
    found: dict[str, str] = {}
    for entry in sorted(entries, key=lambda e: e.label):
        digest = str(entry.digest)
        if digest in wanted and entry.name is not None and digest not in found:
            found[digest] = entry.name
    return found
