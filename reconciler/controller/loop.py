"""The reconcile loop: observe -> diff -> act -> record status, image by image, only when needed.

Flux's controllers are the model. The loop wakes at each ``--interval`` (at once on a change with
``--watch``), looks at the source (``reconciler.controller.source``) and decides what to run:

* **skip unchanged**: when the revision key (commit SHA, or a directory's content hash) is the one
  already reconciled, nothing is observed and no registry is contacted, until ``--resync``;
* **resync**: every ``--resync`` a full pass re-observes everything, so drift made by hand (a tag deleted
  or moved) is repaired, or reported as a conflict where tags are immutable;
* **stall**: an invalid desired state, an unknown ``--env`` or a history the trust rules refuse stops
  all passes (a stall, shown on the status and the ``reconciler_stalled`` gauge) until the key changes;
  there is no retry loop, a retry could not help;
* **backoff per image**: an image that failed for a temporary reason is retried alone (a pass with
  ``images=`` only the images due), exponentially later (``reconciler.controller.backoff``); a permanent
  failure waits for a new commit or the resync. Other images are never held back: passes over disjoint
  sets of images run concurrently, and an image is never in two passes at once (a work queue keyed by
  image, as in client-go: an image that changes while its pass runs is run again right after it);
* **shards**: every pass covers only the images ``--shard`` owns;
* **shutdown**: ``drain`` stops starting passes and writes, lets writes under way finish within the
  grace period, then cancels what is left (the copier writes a tag last, so a cancelled copy never
  leaves a tag on an incomplete image).

The loop itself only schedules: passes are the engine's (``reconciler.controller.runner``), the status
is the book's (``reconciler.controller.book``), and it never edits desired state or talks HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from reconciler import __version__
from reconciler.controller.audittail import AuditTail
from reconciler.controller.backoff import RetryBook
from reconciler.controller.blocking import in_thread
from reconciler.controller.book import StatusBook
from reconciler.controller.chores import Chores, pin_signatures
from reconciler.controller.events import EventLog, utc_now
from reconciler.controller.metrics import ControllerMetrics
from reconciler.controller.options import ControllerOptions
from reconciler.controller.recorder import PassRecorder
from reconciler.controller.runner import run_pass
from reconciler.controller.source import DesiredSource, Loaded, Refused, watch
from reconciler.engine.audit import AuditLog
from reconciler.engine.plan import selected_environments
from reconciler.errors import ReconcilerError
from reconciler.report.status import ControllerStatus, EnvironmentInfo, Retrying, Stall

CHANGE, RESYNC, RETRY = "change", "resync", "retry"


@dataclass(slots=True)
class Target:
    """The desired state being reconciled, and the images this controller owns in it."""

    loaded: Loaded
    environments: tuple[str, ...]
    images: frozenset[str]
    signatures: dict[str, tuple[object, ...]]
    """Image -> its pins in every environment: what decides whether a new commit changed it."""
    remembered: bool = False


class Controller:
    def __init__(
        self,
        options: ControllerOptions,
        source: DesiredSource,
        *,
        events: EventLog,
        metrics: ControllerMetrics,
        audit: AuditLog,
    ) -> None:
        self.options = options
        self.source = source
        self.events = events
        self.metrics = metrics
        self.audit = audit
        self.started = utc_now()
        self.book = StatusBook()
        self.retries = RetryBook(options.retry_base, options.retry_max)
        self.recorder = PassRecorder(self.book, self.retries, metrics=metrics, events=events)
        self.chores = Chores(source.points, events=events, metrics=metrics)
        self.heartbeat = time.monotonic()
        self._target: Target | None = None
        self._stall: Stall | None = None
        self._source_error: str | None = None
        self._crashed = False
        self._wake = asyncio.Event()
        self._stop_writes = asyncio.Event()
        self._hurry = asyncio.Event()
        self._watch_stop = asyncio.Event()
        self._stopping = False
        self._source_due = True
        self._pending_full: str | None = None
        self._dirty: dict[str, str] = {}
        self._in_flight: set[str] = set()
        self._passes: set[asyncio.Task[None]] = set()
        self._next_check = 0.0
        self._next_resync: float | None = None
        self._audit_tail = AuditTail(options.audit_log)

    # -- what the HTTP side reads --------------------------------------------------------------------

    def alive(self) -> bool:
        """The loop runs and has woken recently (a fetch may take a while: a generous bound)."""
        stale_after = max(5 * self.options.interval, 300.0)
        return not self._crashed and time.monotonic() - self.heartbeat < stale_after

    def ready(self) -> bool:
        return self.recorder.ready

    def _wall(self, moment: float) -> str:
        wall = time.time() + (moment - time.monotonic())
        return datetime.fromtimestamp(wall, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")

    def status(self) -> ControllerStatus:
        target = self._target
        retrying = tuple(
            Retrying(image, state.attempts, self._wall(state.due), state.cause.message)
            for image, state in sorted(self.retries.backing_off().items())
            if state.due is not None
        )
        return ControllerStatus(
            generated=utc_now(),
            version=__version__,
            source=self.source.description,
            started=self.started,
            ready=self.recorder.ready,
            interval_seconds=self.options.interval,
            resync_seconds=self.options.resync,
            shard=str(self.options.shard) if self.options.shard is not None else None,
            commit=target.loaded.revision if target is not None else None,
            commit_author=target.loaded.desired.commit_author if target is not None else None,
            environments=self.book.environments,
            environment_info=self._environment_info(),
            rows=self.book.rows(stalled=self._stall is not None, retries=self.retries, wall=self._wall),
            last_pass=self.recorder.last_pass,
            stalled=self._stall,
            retrying=retrying,
            recent=self._audit_tail.recent(),
            source_error=self._source_error,
            next_resync=self._wall(self._next_resync) if self._next_resync is not None and not self._stall else None,
        )

    def _environment_info(self) -> dict[str, EnvironmentInfo]:
        if self._target is None:
            return {}
        config = self._target.loaded.desired.config
        info = {}
        for name in self._target.environments:
            env = config.environment(name)
            info[name] = EnvironmentInfo(env.registries, env.upstream, env.immutable_tags)
        return info

    # -- the loop ------------------------------------------------------------------------------------

    def _on_watch(self, changed: int) -> None:
        self.events.emit("changed", paths=changed)
        self._source_due = True
        self._wake.set()

    async def run(self) -> None:
        """Until ``drain``: look at the source when due, start the passes that are due, sleep."""
        watcher: asyncio.Task[None] | None = None
        if self.options.watch and self.options.directory is not None:
            watcher = asyncio.create_task(watch(self.options.directory, self._watch_stop, self._on_watch))
            watcher.add_done_callback(self._watch_ended)
        try:
            while not self._stopping:
                self._wake.clear()
                self.heartbeat = time.monotonic()
                if self._source_due or time.monotonic() >= self._next_check:
                    self._source_due = False
                    await self._refresh()
                    self._next_check = time.monotonic() + self.options.interval
                if not self._stopping:
                    self._schedule()
                timeout = max(0.0, self._next_wake() - time.monotonic())
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout)
        except Exception:  # a bug: /healthz turns 503 and main exits 1
            self._crashed = True
            raise
        finally:
            self._watch_stop.set()
            if watcher is not None:
                watcher.cancel()

    def _watch_ended(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            error = str(task.exception())
            self.events.emit("watch_failed", level="error", error=error, note="polling every interval instead")

    def _next_wake(self) -> float:
        moments = [self._next_check]
        if self._target is not None and self._stall is None:
            if self._next_resync is not None:
                moments.append(self._next_resync)
            due = self.retries.next_due(exclude=self._in_flight)
            if due is not None:
                moments.append(due)
        return min(moments)

    async def _refresh(self) -> None:
        stalled = self._stall.revision if self._stall is not None else None
        known = [key for key in (self._target.loaded.key if self._target else None, stalled) if key]
        base = None if self.chores.trust_remembered else self.options.trusted_base
        try:
            result = await in_thread(lambda: self.source.refresh(known, trusted_base=base), name="reconciler-source")
        except Exception as exc:  # Git down, a file unreadable: keep the last good state, try again
            message = str(exc) if isinstance(exc, ReconcilerError) else f"internal error: {type(exc).__name__}: {exc}"
            self.metrics.source_errors.inc()
            if message != self._source_error:
                self.events.emit("source_error", level="warning", source=self.source.description, error=message)
            self._source_error = message
            return
        if self._source_error is not None:
            self.events.emit("source_recovered", source=self.source.description)
            self._source_error = None
        if self._target is not None and result.key == self._target.loaded.key:
            if self._stall is not None:  # back to the state already applied
                self._unstall(self._target.loaded.revision)
            return
        if result.refused is not None:
            self._stall_on(result.refused)
        elif result.loaded is not None:
            self._adopt(result.loaded)

    def _adopt(self, loaded: Loaded) -> None:
        """A new desired state. When only pins changed (``reconciler.yaml`` is the same), only the images
        whose pins changed, or that were failing, are reconciled now: the others were in sync with the
        same pins, and the resync checks them as always. A changed config reconciles everything."""
        desired = loaded.desired
        only = self.options.environments or None
        environments = tuple(env.name for env in selected_environments(desired, only))
        self.book.load(desired, environments, self.options.owns)
        images = self.book.images  # the images this controller owns in the selected environments
        signatures = pin_signatures(desired, self.options.owns)
        previous = self._target
        self._target = Target(loaded, environments, images, signatures)
        if self._stall is not None:
            self._unstall(loaded.revision)
        full = previous is None or previous.loaded.desired.config != desired.config
        if full:
            changed = images
            self._dirty.clear()
            self._pending_full = CHANGE
        else:
            assert previous is not None
            changed = frozenset(i for i in images if signatures.get(i) != previous.signatures.get(i))
            # and those whose pass under way ran for the old state, and the failing ones (a change is what a
            # permanent failure waits for)
            redo = changed | self._in_flight | self.retries.images()
            for image in redo & images:
                self._dirty[image] = CHANGE
        self.retries.forget_all()
        self.events.emit(
            "revision",
            commit=loaded.revision,
            previous=previous.loaded.revision if previous is not None else None,
            author=desired.commit_author,
            environments=list(environments),
            images=len(images),
            changed_images=len(changed),
            full=full,
        )

    def _stall_on(self, refused: Refused) -> None:
        self._stall = Stall(refused.key, refused.reason, refused.problems, utc_now())
        self.metrics.stalled.set(1)
        self.events.emit(
            "stalled",
            level="error",
            commit=refused.key,
            reason=refused.reason,
            problems=list(refused.problems[:20]),
            problem_count=len(refused.problems),
            note="nothing is reconciled until the desired state changes",
        )

    def _unstall(self, revision: str) -> None:
        self.events.emit("unstalled", commit=revision, was=self._stall.revision if self._stall else None)
        self._stall = None
        self.metrics.stalled.set(0)

    def _schedule(self) -> None:
        target = self._target
        if target is None or self._stall is not None or self._stopping:
            return
        now = time.monotonic()
        if self._pending_full is None and self._next_resync is not None and now >= self._next_resync:
            self._pending_full = RESYNC
        if self._pending_full is not None:
            trigger, self._pending_full = self._pending_full, None
            for image in self._in_flight & target.images:
                self._dirty.setdefault(image, trigger)  # run again with this state once its pass ends
            covered = target.images - self._in_flight
            for image in covered:
                self._dirty.pop(image, None)
            if covered or not self._in_flight:
                self._next_resync = None  # set again when this full pass ends
                self._launch(target, covered, trigger, full=True)
            else:
                self._next_resync = now + self.options.resync
            return
        for image in self.retries.due(now) - self._in_flight:
            if image in target.images:
                self._dirty.setdefault(image, RETRY)
            else:
                self.retries.succeeded(image)  # no longer declared: nothing to retry
        batch = {image: why for image, why in self._dirty.items() if image not in self._in_flight}
        for image in batch:
            del self._dirty[image]
        covered = frozenset(batch) & target.images
        if covered:
            trigger = next((t for t in (CHANGE, RESYNC, RETRY) if t in batch.values()), RETRY)
            self._launch(target, covered, trigger, full=False)

    def _launch(self, target: Target, covered: frozenset[str], trigger: str, *, full: bool) -> None:
        self._in_flight |= covered
        self.book.reconciling(covered, True)
        task = asyncio.create_task(self._pass(target, covered, trigger, full), name=f"reconcile-{trigger}")
        self._passes.add(task)
        task.add_done_callback(self._passes.discard)

    async def _pass(self, target: Target, covered: frozenset[str], trigger: str, full: bool) -> None:
        try:
            outcome = await run_pass(
                target.loaded.desired,
                images=covered.__contains__,
                environments=self.options.environments,
                audit=self.audit,
                insecure=self.options.insecure,
                concurrency=self.options.concurrency,
                stopping=self._stop_writes,
                retention=full and self.options.runs_retention,
                deep=full and self.options.deep_resync,
            )
            current = target is self._target  # else a newer commit arrived meanwhile: it runs them again
            if full:
                self._next_resync = time.monotonic() + self.options.resync
            try:
                self.recorder.record(
                    outcome, covered=covered, trigger=trigger, revision=target.loaded.revision, current=current
                )
                if full and current and outcome.report is not None:
                    self._after_full_pass(target)
            except Exception as exc:  # a bookkeeping bug must not stop the loop
                self.events.emit("internal_error", level="error", error=f"{type(exc).__name__}: {exc}")
        finally:
            self._in_flight -= covered
            self.book.reconciling(covered, False)
            self._wake.set()

    def _after_full_pass(self, target: Target) -> None:
        if target.loaded.trust is not None and not target.remembered:
            target.remembered = True
            self.chores.remember(target.loaded)
        self.chores.measure_archive(target.loaded.desired)

    # -- shutdown ------------------------------------------------------------------------------------

    def hurry(self) -> None:
        """A second signal: stop waiting for passes under way."""
        self._hurry.set()

    async def drain(self, grace: float) -> bool:
        """Stop starting passes and writes; wait up to ``grace`` for the passes under way, then cancel them.
        True when every pass finished by itself."""
        self._stopping = True
        self._stop_writes.set()
        self._wake.set()
        pending = set(self._passes)
        if not pending:
            return True
        self.events.emit("draining", passes=len(pending), images=len(self._in_flight), grace_seconds=grace)
        deadline = time.monotonic() + grace
        hurry = asyncio.ensure_future(self._hurry.wait())
        try:
            while pending and not self._hurry.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                done, _ = await asyncio.wait(pending | {hurry}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
                pending -= done
        finally:
            hurry.cancel()
        if not pending:
            return True
        self.events.emit("cancelling", level="warning", passes=len(pending), images=len(self._in_flight))
        for task in pending:
            task.cancel()
        await asyncio.wait(pending, timeout=10)
        return False
