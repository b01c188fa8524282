"""The promotion rule, checked against a base commit: a version may not skip a stage.

A version ADDED to environment E since the base (new tag, or the same tag with another digest) must be
declared, with the same digest, by E's ``from`` environment at the head. Versions E already had are
left alone, so p may keep running a version that s2 has since dropped.

When E's ``from`` is a *source* environment (``d``), the rule does not apply: CI pushes builds straight
into the source registry and the source environment's file only pins what must survive retention, so a
tester may promote any build from it. (The registry itself is checked for that build at plan time, and
if the source file does pin that tag, the one-digest-per-tag rule already forces the same digest.)
Pure: no I/O.
"""

from __future__ import annotations

from reconciler.model.desired import DesiredState, EnvironmentState, PinnedVersion
from reconciler.model.problems import Problem


def _pinned(state: EnvironmentState | None) -> dict[tuple[str, str], str]:
    if state is None:
        return {}
    return {(pin.image, pin.tag): pin.digest for pin in state.versions()}


def added_versions(base: DesiredState | None, head: DesiredState, environment: str) -> list[PinnedVersion]:
    """Versions of ``environment`` at head that base did not have (by tag and digest), in file order."""
    head_state = head.environments.get(environment)
    if head_state is None:
        return []
    before = _pinned(base.environments.get(environment)) if base is not None else {}
    return [pin for pin in head_state.versions() if before.get((pin.image, pin.tag)) != pin.digest]


def check_promotions(base: DesiredState | None, head: DesiredState) -> list[Problem]:
    """Problems (code ``promotion-skip``) for versions added since ``base`` that skip a stage, sorted.

    ``base`` None means there was no desired state before: every version of head counts as added.
    """
    problems: list[Problem] = []
    for env in head.config.environments:
        if env.source or env.upstream is None:
            continue
        try:
            upstream = head.config.environment(env.upstream)
        except KeyError:
            continue
        if upstream.source:
            continue
        upstream_pins = _pinned(head.environments.get(upstream.name))
        for pin in added_versions(base, head, env.name):
            declared = upstream_pins.get((pin.image, pin.tag))
            if declared == pin.digest:
                continue
            position = pin.position
            file, line, column = (
                (position.file, position.line, position.column)
                if position is not None
                else (f"environments/{env.name}.yaml", 0, 0)
            )
            if declared is None:
                reason = f"{upstream.name!r} does not declare it"
            else:
                reason = f"{upstream.name!r} declares that tag with digest {declared}"
            problems.append(
                Problem(
                    file,
                    line,
                    column,
                    "promotion-skip",
                    f"{pin.image}:{pin.tag} ({pin.digest}) was added to {env.name!r} but {reason}: "
                    f"promote it to {upstream.name!r} first",
                )
            )
    return sorted(problems)
