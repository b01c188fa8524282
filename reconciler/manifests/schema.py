"""The JSON Schemas of the two desired-state file kinds, shipped as package data.

Editors validate as people type by pointing the yaml-language-server ``$schema`` comment at these
files; ``reconciler schema`` prints them. The schemas describe shapes only: cross-file rules (``from``
chains, one digest per tag, references between sections) are the validator's job.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

SCHEMA_FILES = {"config": "reconciler.schema.json", "environment": "environment.schema.json"}


def load_schema(kind: str) -> dict[str, Any]:
    """The schema of ``kind`` (``config`` for reconciler.yaml, ``environment`` for environments/*.yaml)."""
    try:
        name = SCHEMA_FILES[kind]
    except KeyError:
        raise ValueError(f"unknown schema kind {kind!r}; known: {', '.join(SCHEMA_FILES)}") from None
    text = resources.files("reconciler").joinpath("schemas", name).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema
