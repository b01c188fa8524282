"""One controller pass: ``reconcile_pass`` (apply, audited) on a fresh ``RegistryPool``, as data.

The controller never plans or copies itself: it calls the engine's one code path, exactly as ``reconciler
apply`` does (same pool, same audit journal, same concurrency), restricted to the images the pass covers
(``images=``: the shard, and the images due). Each pass gets its own pool, so:

* concurrent passes over disjoint images never share the pool's per-pass caches;
* the pool's clients' ``RequestStats`` are exactly this pass's traffic (read before the pool closes);
* a changed ``reconciler.yaml`` (a registry URL, a CA bundle) takes effect at the next pass.

A pass never raises (but for cancellation): a pass that could not run at all (an unwritable audit log,
an internal error) comes back as ``PassOutcome.error``, a ``Cause`` like any image's.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

from reconciler.controller.access import StoppableAccess
from reconciler.controller.metrics import RegistryTraffic
from reconciler.engine.audit import AuditLog
from reconciler.engine.plan import ImageFilter
from reconciler.engine.reconcile import PassReport, reconcile_pass
from reconciler.engine.registries import RegistryPool
from reconciler.errors import cause_of
from reconciler.model.desired import DesiredState
from reconciler.model.outcome import Cause


@dataclass(frozen=True, slots=True)
class PassOutcome:
    report: PassReport | None
    """None when the pass could not run (``error`` says why)."""
    error: Cause | None
    seconds: float
    traffic: dict[str, RegistryTraffic] = field(default_factory=dict)

    @property
    def requests(self) -> int:
        return sum(used.requests for used in self.traffic.values())


def _traffic(pool: RegistryPool) -> dict[str, RegistryTraffic]:
    return {
        name: RegistryTraffic(
            requests=client.stats.requests,
            errors=client.stats.errors,
            seconds=client.stats.seconds,
            bytes_uploaded=client.stats.bytes_uploaded,
            bytes_downloaded=client.stats.bytes_downloaded,
        )
        for name, client in pool.clients.items()
    }


async def run_pass(
    desired: DesiredState,
    *,
    images: ImageFilter,
    environments: tuple[str, ...],
    audit: AuditLog,
    insecure: bool,
    concurrency: int,
    stopping: asyncio.Event,
    retention: bool = False,
    deep: bool = False,
) -> PassOutcome:
    """Observe, plan and apply ``desired`` for the images ``images`` accepts; with ``retention``, also retire
    undeclared versions of the selected environments (archive, delete, destroy)."""
    started = time.monotonic()
    pool = RegistryPool(desired.config, root=desired.root, insecure=insecure, referrers=True)
    traffic: dict[str, RegistryTraffic] = {}
    try:
        report = await reconcile_pass(
            desired,
            StoppableAccess(pool, stopping),
            only=environments or None,
            dry_run=False,
            audit=audit,
            apply_concurrency=concurrency,
            images=images,
            retention=retention,
            deep=deep,
            may_start=lambda: not stopping.is_set(),
        )
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # a pass never takes the controller down: its cause is reported
        traffic = _traffic(pool)
        return PassOutcome(None, cause_of(exc), time.monotonic() - started, traffic)
    finally:
        if not traffic:
            traffic = _traffic(pool)
        await asyncio.shield(pool.aclose())
    return PassOutcome(report, None, time.monotonic() - started, traffic)
