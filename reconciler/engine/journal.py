"""The audit trail of one pass: an intent before every registry write, its outcome after, and the
confirmation of what an earlier, interrupted run left unrecorded.

``PassJournal`` is what the reconcile pass talks to; ``reconciler.engine.audit`` is the file. Each pass
has a run id; each action's records share the entry id ``<run>:<action id>``. At the start of an apply,
intents of earlier runs that never got an outcome (a kill -9 between the write and its record) are read
from the end of the log; once the registries are observed, each one whose tag was observed gets the
outcome found there: ``ok`` (the write had landed) or ``failed`` (it had not; this run plans it again).
It never rewrites the log, only appends.
"""

from __future__ import annotations

import dataclasses
import uuid

from reconciler.engine.audit import INTENT, OUTCOME, AuditLog, AuditRecord, unconfirmed_intents
from reconciler.engine.execute import ActionResult
from reconciler.model.desired import DesiredState
from reconciler.model.observed import ObservedState, TagKey
from reconciler.model.outcome import Outcome
from reconciler.model.plan import Action, ActionKind


class PassJournal:
    """Audit records of one pass (a no-op without an audit log)."""

    def __init__(self, audit: AuditLog | None, desired: DesiredState) -> None:
        self.audit = audit
        self.desired = desired
        self.run = uuid.uuid4().hex[:12]
        self._pending: list[dict[str, object]] = []

    def _record(self, action: Action, *, phase: str, result: str, error: str | None = None) -> AuditRecord:
        return AuditRecord(
            action=action.kind.value,
            environment=action.environment,
            registry=action.registry,
            repository=action.repository,
            tag=action.tag,
            digest=action.digest,
            result=result,
            source=str(action.source) if action.source is not None else None,
            commit=self.desired.commit,
            commit_author=self.desired.commit_author,
            error=error,
            phase=phase,
            entry=f"{self.run}:{action.id}",
            rule=action.rule or None,
            archive_ref=action.archive_ref,
            bytes_freed=action.bytes_freed if action.kind is ActionKind.DELETE else None,
        )

    def open(self) -> None:
        """Before anything is written: fail now if the log cannot be written, and remember the intents an
        earlier run left without an outcome."""
        if self.audit is None:
            return
        self.audit.ensure_writable()
        if self.audit.path is not None:
            self._pending = unconfirmed_intents(self.audit.path)

    def confirm(self, observed: ObservedState) -> int:
        """Append the outcome of every pending intent whose tag this pass observed; return how many."""
        if self.audit is None:
            return 0
        confirmed = 0
        for intent in self._pending:
            key = TagKey(str(intent.get("registry")), str(intent.get("repository")), str(intent.get("tag")))
            if key not in observed.tags:
                continue  # not looked at by this pass (another environment): left for a later one
            landed = observed.tags[key] == intent.get("digest")
            self.audit.append(
                AuditRecord(
                    action=str(intent.get("action")),
                    environment=str(intent.get("environment")),
                    registry=key.registry,
                    repository=key.repository,
                    tag=key.tag,
                    digest=str(intent.get("digest")),
                    result=Outcome.OK.value if landed else Outcome.FAILED.value,
                    source=_optional(intent.get("source")),
                    commit=_optional(intent.get("commit")),
                    commit_author=_optional(intent.get("commit_author")),
                    error=None
                    if landed
                    else "the interrupted run's write had not landed (the tag is not at that digest); planned again",
                    phase=OUTCOME,
                    entry=_optional(intent.get("entry")),
                    confirmed_by=self.run,
                )
            )
            confirmed += 1
        self._pending = []
        return confirmed

    def intent(self, action: Action) -> None:
        """Before a write: what is about to be written, from which commit."""
        if self.audit is not None and action.writes:
            self.audit.append(self._record(action, phase=INTENT, result="pending"))

    def outcome(self, result: ActionResult) -> None:
        if self.audit is None:
            return
        error = result.error if result.outcome is not Outcome.OK else None
        record = self._record(result.action, phase=OUTCOME, result=result.outcome.value, error=error)
        if result.referrers:
            record = dataclasses.replace(record, referrers=result.referrers)
        self.audit.append(record)


def _optional(value: object) -> str | None:
    return None if value is None else str(value)
