"""A problem found in the desired state, located by file, line and column (1-based)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, order=True)
class Problem:
    file: str
    """Path relative to the desired-state root, with forward slashes (``environments/t.yaml``)."""
    line: int
    """1-based; 0 when the problem concerns the whole file (missing, empty, not UTF-8)."""
    column: int
    """1-based; 0 when unknown."""
    code: str
    """Stable machine-readable identifier, e.g. ``bad-digest``, ``tag-naming``, ``from-cycle``."""
    message: str
    """One line a person can act on."""

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message} [{self.code}]"
