"""What a finished pass changes: the status book, the per-image backoff, the metrics and the event log.

``PassRecorder`` is the "record status" step of observe -> diff -> act -> record status. The loop hands
it each pass's ``PassOutcome`` with the images the pass covered; it updates the grid's cells, schedules
the retries of images that failed for a temporary reason (forgets those that converged), counts actions
and registry traffic, sets the drift, success and readiness gauges, and emits the events: one per pass
(``reconciled`` or ``reconcile_error``) and one per image only when it starts failing
(``image_failed``) or stops (``image_recovered``), never "still failing".

A pass that ran for an older desired state than the current one (a commit arrived meanwhile) still
counts in the metrics, but leaves cells and retries alone: its images are run again for the new state.
It schedules nothing and starts nothing itself.
"""

from __future__ import annotations

import time

from reconciler.controller.backoff import RetryBook
from reconciler.controller.book import StatusBook, image_causes
from reconciler.controller.events import EventLog, utc_now
from reconciler.controller.metrics import ControllerMetrics
from reconciler.controller.runner import PassOutcome
from reconciler.engine.reconcile import PassReport
from reconciler.report.passes import summary
from reconciler.report.status import PassSummary


class PassRecorder:
    def __init__(self, book: StatusBook, retries: RetryBook, *, metrics: ControllerMetrics, events: EventLog) -> None:
        self.book = book
        self.retries = retries
        self.metrics = metrics
        self.events = events
        self.ready = False
        """True once a pass has observed the registries (``/readyz``)."""
        self.last_pass: PassSummary | None = None
        self._failing: set[str] = set()

    def record(
        self, outcome: PassOutcome, *, covered: frozenset[str], trigger: str, revision: str, current: bool
    ) -> None:
        now, when = time.monotonic(), utc_now()
        self.metrics.pass_duration.labels(trigger=trigger).observe(outcome.seconds)
        self.metrics.record_traffic(outcome.traffic)
        if outcome.report is None:
            cause = outcome.error
            assert cause is not None
            self.metrics.passes.labels(trigger=trigger, result="error").inc()
            if current:
                self.book.record_error(covered, cause, when)
                for image in covered:
                    self.retries.failed(image, cause, now)
            self.events.emit(
                "reconcile_error", level="error", trigger=trigger, commit=revision, images=len(covered),
                error=cause.message, temporary=cause.temporary,
            )  # fmt: skip
            self.last_pass = PassSummary(
                when,
                revision,
                trigger,
                outcome.seconds,
                len(covered),
                {},
                len(covered),
                outcome.requests,
                cause.message,
            )
        else:
            self._record_report(
                outcome, outcome.report, covered=covered, trigger=trigger, revision=revision, current=current
            )
        self.metrics.backing_off.set(len(self.retries.backing_off()))

    def _record_report(
        self,
        outcome: PassOutcome,
        report: PassReport,
        *,
        covered: frozenset[str],
        trigger: str,
        revision: str,
        current: bool,
    ) -> None:
        now, when = time.monotonic(), utc_now()
        self.ready = True
        self.metrics.ready.set(1)
        for result in report.results or ():
            self.metrics.actions.labels(kind=result.action.kind.value, result=result.outcome.value).inc()
        retried = self._record_images(report, covered, now) if current else []
        if current:
            self.book.record_pass(covered, report, when)
            self.metrics.set_drift(self.book.drift_by_environment())
        failures = len(report.failures)
        self.metrics.passes.labels(trigger=trigger, result="failed" if failures else "ok").inc()
        self.metrics.last_pass.set(time.time())
        if not failures:
            self.metrics.last_success.set(time.time())
        counts = {kind: count for kind, count in summary(report.plan).items() if count}
        self.last_pass = PassSummary(
            when, revision, trigger, outcome.seconds, len(covered), counts, failures, outcome.requests
        )
        self.events.emit(
            "reconciled", trigger=trigger, commit=revision, images=len(covered),
            seconds=round(outcome.seconds, 3), requests=outcome.requests, actions=counts,
            applied=len(report.changed), failures=failures, retries=retried[:20] or None,
        )  # fmt: skip

    def _record_images(self, report: PassReport, covered: frozenset[str], now: float) -> list[dict[str, object]]:
        """Backoff per image from this pass's results; events when an image starts or stops failing."""
        causes = image_causes(report)
        retried: list[dict[str, object]] = []
        for image in sorted(covered):
            cause = causes.get(image)
            if cause is None:
                self.retries.succeeded(image)
                if image in self._failing:
                    self._failing.discard(image)
                    self.events.emit("image_recovered", image=image)
                continue
            state = self.retries.failed(image, cause, now)
            if state.delay is not None:
                retried.append({"image": image, "attempt": state.attempts, "retry_in": round(state.delay, 3)})
            if image not in self._failing:
                self._failing.add(image)
                self.events.emit(
                    "image_failed", level="warning", image=image, error=cause.message, temporary=cause.temporary,
                    retry_in=round(state.delay, 3) if state.delay is not None else None,
                )  # fmt: skip
        return retried
