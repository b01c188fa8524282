"""What a merge request changes, per environment, as text, markdown (the MR comment) and JSON.

The markdown is what CI posts on the merge request: short, failures first (problems of the head, the
no-skipped-stage rule included, and with ``--plan`` any image that cannot be written), then one table per
environment that changes (added, changed: old digest -> new, removed), then with ``--plan`` the registry
actions the merge would cause. Shaping only: no I/O, no exit codes.
"""

from __future__ import annotations

from typing import Any

from reconciler.manifests.compare import Comparison, EnvironmentChanges
from reconciler.model.desired import PinnedVersion
from reconciler.model.digest import Digest
from reconciler.model.plan import Plan
from reconciler.model.problems import Problem
from reconciler.report.passes import action_to_dict, plan_markdown, summary_line


def _short(digest: str) -> str:
    try:
        return Digest(digest).short
    except ValueError:
        return digest[:19]


def _pin(pin: PinnedVersion) -> dict[str, Any]:
    return {"image": pin.image, "tag": pin.tag, "digest": pin.digest}


def changes_to_dict(change: EnvironmentChanges) -> dict[str, Any]:
    return {
        "environment": change.environment,
        "added": [_pin(pin) for pin in change.added],
        "removed": [_pin(pin) for pin in change.removed],
        "changed": [
            {"image": c.after.image, "tag": c.after.tag, "from": c.before.digest, "to": c.after.digest}
            for c in change.changed
        ],
    }


def problem_to_dict(problem: Problem) -> dict[str, Any]:
    return {
        "file": problem.file,
        "line": problem.line,
        "column": problem.column,
        "code": problem.code,
        "message": problem.message,
    }


def diff_to_dict(comparison: Comparison, plan: Plan | None = None) -> dict[str, Any]:
    document: dict[str, Any] = {
        "valid": comparison.valid,
        "changed": comparison.changed,
        "base_commit": comparison.base.commit if comparison.base is not None else None,
        "head_commit": comparison.head.commit,
        "environments": [changes_to_dict(c) for c in comparison.changes if not c.empty],
        "errors": [problem_to_dict(p) for p in comparison.head_problems],
    }
    if plan is not None:
        document["actions"] = [action_to_dict(action) for action in plan]
        document["plan_summary"] = summary_line(plan)
    return document


def _rows(change: EnvironmentChanges) -> list[tuple[str, str, str, str]]:
    """(change, image, tag, digest text) rows of one environment, in a stable order."""
    rows = [("added", pin.image, pin.tag, _short(pin.digest)) for pin in change.added]
    rows += [
        ("changed", c.after.image, c.after.tag, f"{_short(c.before.digest)} -> {_short(c.after.digest)}")
        for c in change.changed
    ]
    rows += [("removed", pin.image, pin.tag, _short(pin.digest)) for pin in change.removed]
    return sorted(rows, key=lambda row: (row[1], row[2], row[0]))


def diff_lines(comparison: Comparison, plan: Plan | None = None) -> list[str]:
    """Plain text: problems first, then per environment one line per change."""
    lines = [f"ERROR {problem}" for problem in comparison.head_problems]
    for change in comparison.changes:
        if change.empty:
            continue
        lines.append(f"{change.environment}:")
        lines += [f"  {kind:<8} {image}:{tag}  {digest}" for kind, image, tag, digest in _rows(change)]
    if not comparison.changed:
        lines.append("No change to any environment.")
    if plan is not None:
        failing = [action for action in plan if action.fails]
        lines += [f"BLOCKED {a.environment} {a.registry}/{a.repository}:{a.tag}: {a.reason}" for a in failing]
        lines.append(summary_line(plan))
    return lines


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def diff_markdown(comparison: Comparison, heading: str, plan: Plan | None = None) -> str:
    """The merge-request comment: failures first, a table per changed environment, then the plan."""
    out = [f"### {heading}", ""]
    problems = comparison.head_problems
    failing = [action for action in plan if action.fails] if plan is not None else []
    if problems or failing:
        out.append(f"**{len(problems) + len(failing)} problem(s): this merge must not go in as it is.**")
        out.append("")
        out += [f"- :x: `{p.file}:{p.line}:{p.column}` {_cell(p.message)} (`{p.code}`)" for p in problems]
        out += [f"- :x: {a.environment} `{a.registry}/{a.repository}:{a.tag}`: {_cell(a.reason)}" for a in failing]
        out.append("")
    changed = [change for change in comparison.changes if not change.empty]
    if not changed:
        out.append("No change to any environment.")
    for change in changed:
        counts = f"{len(change.added)} added, {len(change.changed)} changed, {len(change.removed)} removed"
        out += [f"#### `{change.environment}`: {counts}", "", "| change | image | tag | digest |"]
        out.append("| --- | --- | --- | --- |")
        out += [f"| {kind} | {image} | `{tag}` | `{digest}` |" for kind, image, tag, digest in _rows(change)]
        out.append("")
    if plan is not None:
        out.append(plan_markdown(plan, "Registry actions this merge causes").rstrip())
        out.append("")
    return "\n".join(out).rstrip() + "\n"
