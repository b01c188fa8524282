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

from reconciler.engine.audit import AuditLog
from reconciler.engine.plan import ImageFilter
from reconciler.engine.reconcile import PassReport, reconcile_pass
from reconciler.engine.registries import RegistryPool
from reconciler.errors import cause_of
from reconciler.model.desired import DesiredState
from reconciler.model.outcome import Cause
from reconciler.registry.session import RequestStats


@dataclass(frozen=True, slots=True)
class PassOutcome:
    report: PassReport | None
    """None when the pass could not run (``error`` says why)."""
    error: Cause | None
    seconds: float
    traffic: dict[str, RequestStats] = field(default_factory=dict)
    """Each registry client's counters: the pass's own, since every pass has its own pool."""

    @property
    def requests(self) -> int:
        return sum(used.requests for used in self.traffic.values())


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
    report: PassReport | None = None
    error: Cause | None = None
    try:
        report = await reconcile_pass(
            desired,
            pool,
            only=environments or None,
            dry_run=False,
            audit=audit,
            apply_concurrency=concurrency,
            images=images,
            retention=retention,
            deep=deep,
            may_start=lambda: not stopping.is_set(),  # after SIGTERM no write starts; those under way finish
        )
    except Exception as exc:  # a pass never takes the controller down: its cause is reported
        error = cause_of(exc)
    finally:
        traffic = {name: client.stats for name, client in pool.clients.items()}
        await asyncio.shield(pool.aclose())
    return PassOutcome(report, error, time.monotonic() - started, traffic)
