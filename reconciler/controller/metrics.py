"""The controller's Prometheus metrics, in its own ``CollectorRegistry`` (never the process-global one).

Names follow Prometheus conventions: ``reconciler_`` prefix, base units (seconds, bytes), ``_total`` on
counters (added by prometheus-client), labels with a small, bounded set of values (environment, registry
name from reconciler.yaml, action kind, result, trigger: never an image, tag or digest). docs/controller.md
lists every metric with its labels.

The registry request counters come from the registry clients' ``RequestStats`` of each pass: every pass
uses a fresh ``RegistryPool``, so its clients' stats ARE that pass's deltas, added here when it ends.
Nothing here decides anything: the loop tells it what happened.
"""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

from reconciler import __version__
from reconciler.registry.session import RequestStats

DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0)


class ControllerMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, *, shard: str | None = None) -> None:
        # ``_created`` series double the exposition and no query here needs them; this process is the
        # controller's alone, so switching them off process-wide touches nobody else.
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.pass_duration = Histogram(
            "reconciler_reconcile_duration_seconds",
            "Duration of reconcile passes (observe, plan, execute), by trigger (change, resync, retry).",
            ["trigger"],
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.passes = Counter(
            "reconciler_reconcile_passes",
            "Reconcile passes by trigger and result (ok: every image converged; failed: some did not; error: "
            "the pass could not run).",
            ["trigger", "result"],
            registry=r,
        )
        self.actions = Counter(
            "reconciler_actions",
            "Actions executed or refused, by kind (copy, retag, conflict, missing, unreachable, refused) and "
            "result (ok, failed, refused, skipped).",
            ["kind", "result"],
            registry=r,
        )
        self.drift = Gauge(
            "reconciler_drift_actions",
            "Per environment: actions the last observation found needed that did not succeed (0 = in sync).",
            ["environment"],
            registry=r,
        )
        self.last_success = Gauge(
            "reconciler_last_success_timestamp_seconds",
            "Unix time of the last pass in which every image it covered converged.",
            registry=r,
        )
        self.last_pass = Gauge(
            "reconciler_last_pass_timestamp_seconds", "Unix time of the last completed pass.", registry=r
        )
        self.requests = Counter(
            "reconciler_registry_requests", "HTTP requests sent to each registry.", ["registry"], registry=r
        )
        self.request_errors = Counter(
            "reconciler_registry_request_errors",
            "Requests to each registry that failed (5xx, 429, connection errors, timeouts).",
            ["registry"],
            registry=r,
        )
        self.request_seconds = Counter(
            "reconciler_registry_request_duration_seconds",
            "Time spent waiting for each registry's answers (sum over requests; divide by "
            "reconciler_registry_requests_total for the mean latency).",
            ["registry"],
            registry=r,
        )
        self.transferred = Counter(
            "reconciler_registry_transferred_bytes",
            "Body bytes sent to (direction=sent) and received from (direction=received) each registry.",
            ["registry", "direction"],
            registry=r,
        )
        self.copied = Counter(
            "reconciler_copied_bytes",
            "Bytes written to registries by copies, retags and tag moves (blobs and manifests; a mount writes none).",
            registry=r,
        )
        self.archive_size = Gauge(
            "reconciler_archive_size_bytes",
            "Total size of the files in the archive store (when archive.store is configured and exists).",
            registry=r,
        )
        self.stalled = Gauge(
            "reconciler_stalled",
            "1 while the controller is stalled on an invalid or untrusted desired state, else 0.",
            registry=r,
        )
        self.backing_off = Gauge(
            "reconciler_images_backing_off", "Images waiting to retry after a transient failure.", registry=r
        )
        self.source_errors = Counter(
            "reconciler_source_errors", "Failures to fetch or read the desired state.", registry=r
        )
        self.ready = Gauge("reconciler_ready", "1 once a pass has observed the registries, else 0.", registry=r)
        info = Gauge(
            "reconciler_controller_info",
            "Always 1; the labels say which reconciler and which shard this is.",
            ["version", "shard"],
            registry=r,
        )
        info.labels(version=__version__, shard=shard or "").set(1)
        self.stalled.set(0)
        self.ready.set(0)

    def record_traffic(self, traffic: Mapping[str, RequestStats]) -> None:
        for name, used in traffic.items():
            self.requests.labels(registry=name).inc(used.requests)
            self.request_errors.labels(registry=name).inc(used.errors)
            self.request_seconds.labels(registry=name).inc(used.seconds)
            self.transferred.labels(registry=name, direction="sent").inc(used.bytes_uploaded)
            self.transferred.labels(registry=name, direction="received").inc(used.bytes_downloaded)
            self.copied.inc(used.bytes_uploaded)

    def set_drift(self, drift: Mapping[str, int]) -> None:
        for environment, count in drift.items():
            self.drift.labels(environment=environment).set(count)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
