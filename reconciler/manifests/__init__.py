"""Load and validate the desired-state repository (``reconciler.yaml`` + ``environments/*.yaml``).

The public entry points:

- ``load_desired_state(root)``: the typed, valid ``DesiredState`` or ``DesiredStateError`` with every problem;
- ``validate_directory(root)``: the same checks, returning the sorted problems (empty = valid);
- ``load_desired_state_at(repo_dir, ref)``: the same, read from a Git commit without checking it out;
- ``check_promotions(base, head)``: the no-skipped-stage rule for versions added since ``base``.

Files are parsed to ruamel.yaml node trees (positions kept, aliases refused, nothing constructed) and
walked once; every problem carries file, line and column. This package never writes files, never
talks to a registry and never changes a Git repository (``promote`` edits files elsewhere).
"""

from __future__ import annotations

from reconciler.errors import DesiredStateError
from reconciler.manifests.gitsource import exists_at, inspect_at, load_desired_state_at
from reconciler.manifests.load import inspect_source, load_desired_state, validate_directory
from reconciler.manifests.promotions import added_versions, check_promotions

__all__ = [
    "DesiredStateError",
    "added_versions",
    "check_promotions",
    "exists_at",
    "inspect_at",
    "inspect_source",
    "load_desired_state",
    "load_desired_state_at",
    "validate_directory",
]
