"""What travels with each copy of a plan: the signatures, SBOMs and attestations its source holds.

``plan`` shows them (``apply`` reports the ones it actually copied, in each result and the audit log).
Read through the same evidence access the gates use: one manifest GET and the referrer discovery per
distinct source image (the referrers API, else the tag schema, plus cosign tags from the source
repository's tags list). A lookup that fails is left out: it never fails the plan; apply finds them
again when it copies.
"""

from __future__ import annotations

import asyncio

from reconciler.engine.gates import EvidenceAccess
from reconciler.errors import RegistryError
from reconciler.model.plan import Action, ActionKind, Plan

DEFAULT_CONCURRENCY = 16


def _travels(action: Action) -> bool:
    return action.source is not None and action.writes and action.kind in (ActionKind.COPY, ActionKind.CONFLICT)


async def planned_referrers(
    plan: Plan, access: EvidenceAccess, *, concurrency: int = DEFAULT_CONCURRENCY
) -> dict[int, tuple[str, ...]]:
    """Action id -> ``"<kind or artifact type> <digest>"`` of each referrer its source holds."""
    slots = asyncio.Semaphore(max(1, concurrency))
    found: dict[tuple[str, str, str], asyncio.Task[tuple[str, ...]]] = {}

    async def look(action: Action) -> tuple[str, ...]:
        assert action.source is not None
        async with slots:
            try:
                manifest = await access.manifest(action.source, action.digest)
                referrers = await access.referrers(action.source, manifest)
            except RegistryError:
                return ()
        return tuple(f"{r.kind or r.artifact_type or 'artifact'} {r.digest}" for r in referrers)

    tasks: dict[int, asyncio.Task[tuple[str, ...]]] = {}
    for action in plan:
        if action.source is None or not _travels(action):
            continue
        key = (action.source.registry, action.source.repository, action.digest)
        if key not in found:
            found[key] = asyncio.ensure_future(look(action))
        tasks[action.id] = found[key]
    await asyncio.gather(*found.values())
    return {action_id: task.result() for action_id, task in tasks.items() if task.result()}
