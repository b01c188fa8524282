"""Output: commands return data, the report package shapes it, this module prints it.

JSON goes to stdout inside the versioned envelope (``reconciler.report.envelope``); messages for a person
(errors, notes) go to stderr, never mixed into JSON on stdout.
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from typing import Any

import typer

from reconciler.report.envelope import ENVELOPE_VERSION, envelope

__all__ = ["ENVELOPE_VERSION", "OutputFormat", "emit_json", "envelope", "err"]


class OutputFormat(StrEnum):
    text = "text"
    markdown = "markdown"
    json = "json"


def emit_json(document: dict[str, Any]) -> None:
    typer.echo(json.dumps(document, indent=2, sort_keys=False, default=str))


def err(message: str) -> None:
    """A line for a person on stderr (errors, progress notes), never mixed into JSON on stdout."""
    print(message, file=sys.stderr)
