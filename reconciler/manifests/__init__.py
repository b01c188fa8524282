"""Load and validate the desired-state repository (``reconciler.yaml`` + ``environments/*.yaml``).

The public entry points:

- ``load_tree(tree)`` / ``inspect_tree(tree)``: any ``reconciler.source`` tree (directory or commit);
- ``load_desired_state(root)``: the typed, valid ``DesiredState`` or ``DesiredStateError`` with every problem;
- ``validate_directory(root)``: the same checks, returning the sorted problems (empty = valid);
- ``load_desired_state_at(directory, ref)`` / ``inspect_at``: the same, read from a Git commit;
- ``check_promotions(base, head)``: the no-skipped-stage rule for versions added since ``base``.

Files are parsed to ruamel.yaml node trees (positions kept, aliases refused, nothing constructed) and
walked once; every problem carries file, line and column. This package never talks to a registry and never
changes a Git repository; its only writes are the comment-preserving pin edits that ``promote`` asks for.
"""

from reconciler.errors import DesiredStateError
from reconciler.manifests.load import (
    exists_at,
    inspect_at,
    inspect_tree,
    load_desired_state,
    load_desired_state_at,
    load_tree,
    validate_directory,
)
from reconciler.manifests.promotions import added_versions, check_promotions

__all__ = [
    "DesiredStateError",
    "added_versions",
    "check_promotions",
    "exists_at",
    "inspect_at",
    "inspect_tree",
    "load_desired_state",
    "load_desired_state_at",
    "load_tree",
    "validate_directory",
]
