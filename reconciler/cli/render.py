"""Output: commands return data, this module renders it as text, markdown or a versioned JSON envelope.

The JSON envelope is ``{"version": 1, "command": ..., "status": ..., ...}``: the ``version`` field is the
envelope's schema version, bumped on any incompatible change, so CI jobs can parse it safely.
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from typing import Any

import typer

ENVELOPE_VERSION = 1


class OutputFormat(StrEnum):
    text = "text"
    markdown = "markdown"
    json = "json"


def envelope(command: str, status: str, **payload: Any) -> dict[str, Any]:
    return {"version": ENVELOPE_VERSION, "command": command, "status": status, **payload}


def emit_json(document: dict[str, Any]) -> None:
    typer.echo(json.dumps(document, indent=2, sort_keys=False, default=str))


def err(message: str) -> None:
    """A line for a person on stderr (errors, progress notes), never mixed into JSON on stdout."""
    print(message, file=sys.stderr)
