"""Output: commands return data, the report package shapes it, this module prints it.

JSON goes to stdout inside the versioned envelope (``reconciler.report.envelope``); messages for a person
(errors, notes) go to stderr, never mixed into JSON on stdout.
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import typer

from reconciler.exitcodes import ExitCode
from reconciler.report.envelope import ENVELOPE_VERSION, envelope

if TYPE_CHECKING:
    from reconciler.errors import DesiredStateError

__all__ = ["ENVELOPE_VERSION", "OutputFormat", "emit_json", "envelope", "err", "invalid_state"]


class OutputFormat(StrEnum):
    text = "text"
    markdown = "markdown"
    json = "json"


def emit_json(document: dict[str, Any]) -> None:
    typer.echo(json.dumps(document, indent=2, sort_keys=False, default=str))


def err(message: str) -> None:
    """A line for a person on stderr (errors, progress notes), never mixed into JSON on stdout."""
    print(message, file=sys.stderr)


def invalid_state(command: str, output: str, exc: DesiredStateError, *, untouched: str) -> typer.Exit:
    """Report an invalid desired state (every problem, with its file and line) and return the exit to raise
    (3). ``untouched`` says what the command therefore did not do ("nothing was observed or changed")."""
    from reconciler.report.diff import problem_to_dict  # noqa: PLC0415

    if output == OutputFormat.json:
        emit_json(envelope(command, "invalid", errors=[problem_to_dict(p) for p in exc.problems]))
    else:
        for problem in exc.problems:
            err(str(problem))
        err(f"invalid desired state: {len(exc.problems)} problem(s); {untouched}")
    return typer.Exit(int(ExitCode.INVALID))
