"""Policy gates in a pass: judge each image about to enter a gated environment, refuse what fails.

After planning, every writing action into an environment with ``gates`` is checked on the image itself:
its manifest (for an index, every runnable platform), each platform's config, the approved base image's
manifests, and, when ``require_artifacts`` asks, its referrers, judged by ``reconciler.policy.gates``.
The image is read where it is NOW: for an action that only receives the digest from an earlier action of
the same pass (s1 copies from t what t gets first), from the start of that chain. Evidence is fetched
once per digest per pass (a config once per platform), whatever the number of environments and sites.

A failing image becomes a REFUSED action naming each failed gate and its evidence; actions that could
only receive it through a refused one are refused with it. Nothing is written here; a failure to fetch
the evidence refuses too (fail closed), naming what could not be read.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Awaitable
from typing import Protocol

from reconciler.errors import ReconcilerError
from reconciler.model.desired import DesiredState
from reconciler.model.digest import Digest
from reconciler.model.manifest import Manifest
from reconciler.model.plan import Action, ActionKind, Location, Plan
from reconciler.policy.evidence import ImageEvidence, PlatformImage, runnable_children
from reconciler.policy.gates import GateViolation, evaluate
from reconciler.policy.referrers import Referrer

MAX_CONFIG_BYTES = 4 * 1024 * 1024


class EvidenceAccess(Protocol):
    """What the gates need from the registries (``RegistryPool`` implements it)."""

    async def manifest(self, location: Location, digest: str) -> Manifest: ...

    async def blob(self, location: Location, digest: str, *, max_bytes: int) -> bytes: ...

    async def referrers(self, location: Location, manifest: Manifest) -> list[Referrer]: ...


class EvidenceCache:
    """Evidence by digest for one pass: each image, config and referrer list fetched once."""

    def __init__(self, access: EvidenceAccess) -> None:
        self._access = access
        self._tasks: dict[tuple[str, bool], asyncio.Task[ImageEvidence]] = {}

    def get(self, location: Location, digest: str, *, referrers: bool) -> Awaitable[ImageEvidence]:
        key = (digest, referrers)
        task = self._tasks.get(key)
        if task is None:
            task = self._tasks[key] = asyncio.ensure_future(self._fetch(location, digest, referrers))
        return asyncio.shield(task)

    async def _config(self, location: Location, manifest: Manifest) -> object:
        if manifest.config is None:
            return None
        raw = await self._access.blob(location, str(manifest.config.digest), max_bytes=MAX_CONFIG_BYTES)
        try:
            return json.loads(raw)
        except ValueError:
            return None  # the gates report "config ... was not available to check"

    async def _fetch(self, location: Location, digest: str, referrers: bool) -> ImageEvidence:
        top = await self._access.manifest(location, digest)
        found = tuple(await self._access.referrers(location, top)) if referrers else ()
        if not top.is_index:
            return ImageEvidence.single(top, await self._config(location, top), found)
        children = runnable_children(top)

        async def platform(index: int) -> PlatformImage:
            child = children[index]
            manifest = await self._access.manifest(location, str(child.digest))
            return PlatformImage(child.platform, manifest, await self._config(location, manifest))

        platforms = await asyncio.gather(*(platform(i) for i in range(len(children))))
        return ImageEvidence(Digest(digest), tuple(platforms), found, is_index=True)


def _origin(plan: Plan, action: Action) -> Location:
    """Where the action's image can be read now: its source, or, when that source only receives the digest
    from an earlier action of this plan, the start of that chain; the target itself for a retag."""
    current = action
    while current.depends_on:
        current = plan.actions[current.depends_on[0]]
    return current.source if current.source is not None else current.target


def _base_location(reference: str) -> tuple[Location, str]:
    """``registry-name/repository@digest`` of ``reconciler.yaml``'s ``base_images``."""
    place, _, digest = reference.partition("@")
    registry, _, repository = place.partition("/")
    return Location(registry, repository), digest


async def gate_plan(desired: DesiredState, plan: Plan, access: EvidenceAccess) -> Plan:
    """``plan`` with every image that a gate refuses turned into a REFUSED action (and what depends on it)."""
    gates = desired.config.gates
    checked = [a for a in plan if a.writes and a.environment in gates]
    if not checked:
        return plan
    cache = EvidenceCache(access)

    async def judge(action: Action) -> list[GateViolation] | str:
        settings = gates[action.environment]
        try:
            evidence = await cache.get(_origin(plan, action), action.digest, referrers=bool(settings.require_artifacts))
            base = None
            if settings.base is not None:
                location, digest = _base_location(desired.config.base_images[settings.base].reference)
                base = await cache.get(location, digest, referrers=False)
        except ReconcilerError as exc:
            return f"refused: the image could not be read to check the gates of {action.environment}: {exc}"
        return evaluate(settings, evidence, base)

    verdicts = await asyncio.gather(*(judge(action) for action in checked))
    refused: dict[int, str] = {}
    for action, verdict in zip(checked, verdicts, strict=True):
        if isinstance(verdict, str):
            refused[action.id] = verdict
        elif verdict:
            shown = "; ".join(str(violation) for violation in verdict)
            refused[action.id] = f"refused by the gates of {action.environment}: {shown}"
    return _refuse(plan, refused) if refused else plan


def _refuse(plan: Plan, refused: dict[int, str]) -> Plan:
    """The plan with ``refused`` actions (id -> reason) and every action depending on them made REFUSED."""
    actions: list[Action] = []
    for action in plan:
        reason = refused.get(action.id)
        if reason is None:
            upstream = next((refused[d] for d in action.depends_on if d in refused), None)
            if upstream is not None:
                reason = f"cannot arrive: {plan.actions[action.depends_on[0]].environment} {upstream}"
                refused[action.id] = upstream
        if reason is None:
            actions.append(action)
            continue
        actions.append(
            dataclasses.replace(action, kind=ActionKind.REFUSED, reason=reason, resolution=None, depends_on=())
        )
    return dataclasses.replace(plan, actions=tuple(actions))
