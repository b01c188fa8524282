"""What a change to the desired state does: a head compared with a base, environment by environment.

``compare`` takes the head tree and, optionally, the base tree (two commits of the desired-state
repository, or a work tree and a commit), validates both, checks the no-skipped-stage rule for versions
added since the base, and lists per environment the versions added, removed and changed (same tag, another
digest). ``validate --base`` reports its problems; ``diff`` renders all of it (the merge request comment).
Pure over the trees it is handed: no registry, no writes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from reconciler.manifests.config import CONFIG_FILE
from reconciler.manifests.load import inspect_tree
from reconciler.manifests.promotions import check_promotions
from reconciler.model.desired import DesiredState, EnvironmentState, PinnedVersion
from reconciler.model.problems import Problem
from reconciler.source import DesiredStateTree


@dataclass(frozen=True, slots=True)
class Changed:
    """A tag pinned to another digest than at the base."""

    before: PinnedVersion
    after: PinnedVersion


@dataclass(frozen=True, slots=True)
class EnvironmentChanges:
    environment: str
    added: tuple[PinnedVersion, ...] = ()
    removed: tuple[PinnedVersion, ...] = ()
    changed: tuple[Changed, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.added or self.removed or self.changed)


@dataclass(frozen=True, slots=True)
class Comparison:
    head: DesiredState
    head_problems: tuple[Problem, ...]
    """Every problem of the head, the no-skipped-stage rule since the base included."""
    base: DesiredState | None
    """None when there is no base, or the desired state did not exist there."""
    base_problems: tuple[Problem, ...] = ()
    changes: tuple[EnvironmentChanges, ...] = field(default=())
    """Per environment of the head (in promotion order), then environments only the base had."""

    @property
    def valid(self) -> bool:
        return not self.head_problems

    @property
    def changed(self) -> bool:
        return any(not change.empty for change in self.changes)


def _pins(state: EnvironmentState | None) -> dict[tuple[str, str], PinnedVersion]:
    return {} if state is None else {(pin.image, pin.tag): pin for pin in state.versions()}


def environment_changes(base: DesiredState | None, head: DesiredState) -> tuple[EnvironmentChanges, ...]:
    """Versions added, removed and changed per environment, in the head's promotion order."""
    names = list(head.config.environment_names)
    if base is not None:
        names += [name for name in base.config.environment_names if name not in names]
    result = []
    for name in names:
        before = _pins(base.environments.get(name) if base is not None else None)
        after = _pins(head.environments.get(name))
        added = tuple(pin for key, pin in after.items() if key not in before)
        removed = tuple(pin for key, pin in before.items() if key not in after)
        changed = tuple(
            Changed(before[key], pin)
            for key, pin in after.items()
            if key in before and before[key].digest != pin.digest
        )
        result.append(EnvironmentChanges(name, added, removed, changed))
    return tuple(result)


def compare(head_tree: DesiredStateTree, base_tree: DesiredStateTree | None) -> Comparison:
    """Validate the head (and the promotions since the base) and list what changed."""
    head, head_problems = inspect_tree(head_tree)
    base: DesiredState | None = None
    base_problems: list[Problem] = []
    if base_tree is not None and base_tree.exists(CONFIG_FILE):
        base, base_problems = inspect_tree(base_tree)
    problems = set(head_problems)
    if base_tree is not None:
        problems |= set(check_promotions(base, head))
    return Comparison(
        head=head,
        head_problems=tuple(sorted(problems)),
        base=base,
        base_problems=tuple(base_problems),
        changes=environment_changes(base, head),
    )
