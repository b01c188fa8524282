"""Outcomes as data: how one action ended, and when it failed, why and whether a retry may help.

kopf's model: a failure is permanent (retrying without a change cannot help: a refused conflict, a gate
that fails, credentials refused) or temporary, with the delay the other side asked for when it said one
(a 503 with ``Retry-After``, a registry that stopped answering). The controller's per-image backoff reads
``Cause.temporary`` and ``Cause.retry_after`` and nothing else; reports show ``Cause.message``.
No I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Outcome(StrEnum):
    OK = "ok"
    FAILED = "failed"
    REFUSED = "refused"
    """Policy said no (an immutable tag, a gate, trust): nothing was written, the refusal is audited."""
    SKIPPED = "skipped"
    """An action this one depends on did not succeed."""
    UNKNOWN = "unknown"
    """Read back from an audit log: the intent was recorded, the outcome never was (a crash in between)."""


@dataclass(frozen=True, slots=True)
class Cause:
    """Why something did not succeed."""

    message: str
    """One line for a person, naming registry, repository and digest where they matter; never a secret."""
    temporary: bool = False
    """True when retrying later, with nothing changed, may succeed."""
    retry_after: float | None = None
    """Seconds the other side asked to wait, when it said."""
    kind: str = ""
    """What failed, for machines: the error's class name (``AuthError``), or the plan's action kind."""

    def __str__(self) -> str:
        return self.message
