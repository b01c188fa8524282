"""The lifecycle half of a pass: read what retention needs, plan ARCHIVE/DELETE/DESTROY, find RESTOREs.

Glue between the I/O (``engine.inventory``, the archive store) and the pure planners
(``engine.retention``, ``engine.lifecycle``); the reconcile pass calls it after observing, and the
``LifecycleRunner`` (``engine.retire``) performs what it planned.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from reconciler.engine.inventory import InventoryAccess, take_inventory
from reconciler.engine.lifecycle import archived_digests, destroy_actions, retention_actions
from reconciler.engine.retention import plan_retention
from reconciler.errors import ArchiveError
from reconciler.model.desired import DesiredState
from reconciler.model.plan import Action

if TYPE_CHECKING:
    from reconciler.archive import GarbageReport, OciLayout


@dataclass(frozen=True, slots=True)
class LifecycleReport:
    """What the lifecycle half of a pass saw besides its actions (for the plan's notes and JSON)."""

    not_versions: tuple[tuple[str, str, str], ...] = ()
    """(registry, repository, tag) left alone: not a version by the naming rule."""
    over_capacity: tuple[tuple[str, str, int, int], ...] = ()
    """(environment, registry, bytes used, max_bytes) still over after retiring every candidate."""
    kept_declared: tuple[str, ...] = ()
    """Archive entries past ``destroy_after_days`` kept because a declared version uses their digest."""
    problems: tuple[str, ...] = ()
    """What could not be read (left alone), including an unreadable archive store."""
    requests: int = 0
    """Registry requests spent reading for retention."""
    garbage: GarbageReport | None = None
    """After apply: the archive store's garbage collection, when entries were destroyed."""


def store_path(desired: DesiredState) -> Path | None:
    """The archive store directory (a relative ``archive.store`` is relative to the desired-state root)."""
    archive = desired.config.archive
    if archive is None:
        return None
    path = Path(os.path.expanduser(archive.store))
    return path if path.is_absolute() else Path(desired.root) / path


def open_store(desired: DesiredState) -> OciLayout | None:
    """The desired state's archive store, None when it configures none."""
    path = store_path(desired)
    return layout_at(path) if path is not None else None


def layout_at(path: Path) -> OciLayout:
    """The archive store at ``path``, named as every message names it."""
    from reconciler.archive import OciLayout  # noqa: PLC0415  (only passes with an archive store need it)

    return OciLayout(path, name=f"archive store {path}")


async def restorable(desired: DesiredState, store: OciLayout | None) -> tuple[dict[str, str], str | None]:
    """Declared digest -> the archive entry holding it, and why the store could not be read (if so).
    A store that does not exist yet holds nothing; one that cannot be read restores nothing."""
    if store is None or not store.path.exists():
        return {}, None
    try:
        return archived_digests(desired, await store.entries()), None
    except ArchiveError as exc:
        return {}, f"cannot read the archive store: {exc}"


async def plan_lifecycle(
    desired: DesiredState,
    access: InventoryAccess,
    store: OciLayout | None,
    *,
    only: Collection[str] | None,
    today: date,
    first_id: int,
    concurrency: int,
) -> tuple[list[Action], LifecycleReport]:
    """The retention and destroy actions of a pass (ids from ``first_id``), and what else it saw."""
    inventory = await take_inventory(desired, access, only, concurrency=concurrency)
    retention = plan_retention(
        desired, inventory.contents, today=today, blobs=inventory.blobs, archive_store=store is not None
    )
    actions = retention_actions(retention, first_id=first_id)
    problems = list(inventory.problems)
    kept: tuple[str, ...] = ()
    if store is not None and store.path.exists():
        try:
            entries = await store.entries()
        except ArchiveError as exc:
            problems.append(f"archive store not read, nothing destroyed: {exc}")
        else:
            destroy = destroy_actions(desired, entries, today=today, first_id=first_id + len(actions), only=only)
            actions.extend(destroy.actions)
            kept = destroy.kept_declared
    report = LifecycleReport(
        not_versions=retention.not_versions,
        over_capacity=retention.over_capacity,
        kept_declared=kept,
        problems=tuple(problems),
        requests=inventory.requests,
    )
    return actions, report
