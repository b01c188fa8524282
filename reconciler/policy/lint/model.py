"""The linter's value types: severities, rule descriptions, what a rule reports, and a finding.

A rule function yields :class:`Violation` (rule id, position, message); the engine turns each into a
:class:`Finding` once suppressions and the configured severity are applied. Plain frozen data, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Severity(StrEnum):
    """How bad a finding is. Only ``error`` fails the lint (exit 3); ``warning`` and ``info`` inform."""

    error = "error"
    warning = "warning"
    info = "info"

    @property
    def rank(self) -> int:
        """0 for error, 1 for warning, 2 for info: sort order, most severe first."""
        return _RANKS[self]


_RANKS = {Severity.error: 0, Severity.warning: 1, Severity.info: 2}


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    """A rule's stable description: ``id`` (``RL101``) never changes meaning and is never reused.

    ``seed`` names the section of the seed (the image-management practice) the rule enforces;
    ``hadolint`` is the hadolint rule with the same intent, when there is one."""

    id: str
    name: str
    severity: Severity
    summary: str
    seed: str
    hadolint: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Violation:
    """What a rule function reports: which rule, where (1-based line and column), and why."""

    rule: str
    line: int
    column: int = 1
    message: str


@dataclass(frozen=True, slots=True, kw_only=True, order=True)
class Finding:
    """A violation in a file, with its effective severity. Sorts by file, line, column, rule."""

    path: str
    line: int
    column: int
    rule: str
    severity: Severity
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}: {self.severity} {self.rule} {self.message}"
