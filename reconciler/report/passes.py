"""Plans and pass results as plain data (dicts, lines, markdown), for the CLI and the controller.

Shaping only: no printing, no exit codes, no I/O. The JSON shape is part of the versioned envelope the
CLI emits (``reconciler.report.envelope``): add fields freely, never rename or remove one without
bumping the envelope version.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from reconciler.engine.execute import ActionResult
from reconciler.engine.housekeeping import LifecycleReport
from reconciler.engine.reconcile import Failure, PassReport
from reconciler.model.plan import Action, ActionKind, ConflictResolution, Plan
from reconciler.policy.gates import format_bytes


def action_to_dict(action: Action) -> dict[str, Any]:
    return {
        "id": action.id,
        "kind": action.kind.value,
        "environment": action.environment,
        "registry": action.registry,
        "repository": action.repository,
        "image": action.image,
        "tag": action.tag,
        "digest": action.digest,
        "source": str(action.source) if action.source is not None else None,
        "source_environment": action.source_environment,
        "current_digest": action.current_digest,
        "resolution": action.resolution.value if action.resolution is not None else None,
        "depends_on": list(action.depends_on),
        "writes": action.writes,
        "reason": action.reason,
        "rule": action.rule or None,
        "bytes_freed": action.bytes_freed,
        "archive_ref": action.archive_ref,
    }


def result_to_dict(result: ActionResult) -> dict[str, Any]:
    return {
        **action_to_dict(result.action),
        "result": result.outcome.value,
        "error": result.error,
        "temporary": result.cause.temporary if result.cause is not None else None,
        "referrers": list(result.referrers),
        "seconds": round(result.seconds, 3),
    }


def failure_to_dict(failure: Failure) -> dict[str, Any]:
    return {
        "environment": failure.environment,
        "registry": failure.registry,
        "image": failure.image,
        "tag": failure.tag,
        "digest": failure.digest,
        "action": failure.action,
        "reason": failure.reason,
    }


def summary(plan: Plan) -> dict[str, int]:
    counts = plan.counts()
    refused = sum(1 for a in plan if a.resolution is ConflictResolution.REFUSED)
    return {
        "copy": counts["copy"],
        "retag": counts["retag"],
        "move": counts["conflict"] - refused,
        "refused": refused,
        "missing": counts["missing"],
        "unreachable": counts["unreachable"],
        "damaged": counts["damaged"],
        "refused_by_policy": counts["refused"],
        "archive": counts["archive"],
        "delete": counts["delete"],
        "restore": counts["restore"],
        "destroy": counts["destroy"],
        "bytes_freed": sum(a.bytes_freed for a in plan if a.kind is ActionKind.DELETE),
        "in_sync": plan.in_sync,
    }


def summary_line(plan: Plan) -> str:
    s = summary(plan)
    if plan.is_empty:
        return f"Nothing to do: {s['in_sync']} tag(s) in sync."
    parts = [
        f"{s['copy']} to copy",
        f"{s['retag']} to retag",
    ]
    if s["move"]:
        parts.append(f"{s['move']} tag move(s)")
    if s["refused"]:
        parts.append(f"{s['refused']} conflict(s) refused")
    if s["missing"]:
        parts.append(f"{s['missing']} missing")
    if s["unreachable"]:
        parts.append(f"{s['unreachable']} unreachable")
    if s["damaged"]:
        parts.append(f"{s['damaged']} damaged in the registry")
    if s["refused_by_policy"]:
        parts.append(f"{s['refused_by_policy']} refused by policy")
    if s["restore"]:
        parts.append(f"{s['restore']} to restore from the archive")
    if s["archive"] or s["delete"]:
        parts.append(
            f"{s['archive']} to archive, {s['delete']} to delete (frees {format_bytes(s['bytes_freed'])} "
            "after the registry's garbage collection)"
        )
    if s["destroy"]:
        parts.append(f"{s['destroy']} archive entr{'y' if s['destroy'] == 1 else 'ies'} to destroy")
    return "Plan: " + ", ".join(parts) + f"; {s['in_sync']} in sync."


def _verb(action: Action) -> str:
    if action.kind is ActionKind.COPY:
        return f"copy from {action.source_environment} ({action.source})"
    if action.kind is ActionKind.RETAG:
        return "retag (manifest already there)"
    if action.kind is ActionKind.CONFLICT:
        current = action.current_digest[:19] if action.current_digest else "?"
        if action.resolution is ConflictResolution.MOVED:
            how = f"from {action.source}" if action.source else "in place"
            return f"MOVE tag from {current} ({how})"
        return f"REFUSED: tag is at {current}"
    if action.kind is ActionKind.ARCHIVE:
        return f"ARCHIVE as {action.archive_ref} ({action.rule})"
    if action.kind is ActionKind.DELETE:
        kept = "archived first" if action.archive_ref else "not archived"
        return f"DELETE ({action.rule}; {kept}; frees {format_bytes(action.bytes_freed)})"
    if action.kind is ActionKind.RESTORE:
        return f"RESTORE from the archive ({action.archive_ref})"
    if action.kind is ActionKind.DESTROY:
        return f"DESTROY archive entry {action.archive_ref} ({action.rule})"
    return action.kind.value.upper()


def plan_lines(plan: Plan, referrers: Mapping[int, Sequence[str]] | None = None) -> list[str]:
    lines = []
    for action in plan:
        where = f"{action.environment:<4} {action.registry}/{action.repository}:{action.tag}"
        line = f"  {where}  {_verb(action)}  {action.digest[:19]}"
        if action.fails:
            line += f"\n      {action.reason}"
        travelling = (referrers or {}).get(action.id)
        if travelling:
            line += "\n      with " + ", ".join(_short_referrer(item) for item in travelling)
        lines.append(line)
    return lines


def _short_referrer(item: str) -> str:
    what, _space, digest = item.rpartition(" ")
    return f"{what} {digest[:19]}" if what else digest[:19]


def markdown_cell(text: str) -> str:
    """``text`` safe inside a markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def plan_markdown(plan: Plan, heading: str, referrers: Mapping[int, Sequence[str]] | None = None) -> str:
    out = [f"### {heading}", "", summary_line(plan), ""]
    if plan.is_empty:
        return "\n".join(out) + "\n"
    out += ["| env | registry | image | tag | action | digest | note |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for action in plan:
        travelling = (referrers or {}).get(action.id)
        note = markdown_cell(action.reason) if action.fails else ""
        if travelling:
            note = "with " + ", ".join(_short_referrer(item) for item in travelling)
        out.append(
            f"| {action.environment} | {action.registry} | {action.image} | `{action.tag}` | "
            f"{_verb(action)} | `{action.digest[:19]}` | {note} |"
        )
    return "\n".join(out) + "\n"


def results_markdown(results: Sequence[ActionResult], heading: str) -> str:
    """What an apply did, as a markdown table (a deploy job's comment): one row per action and outcome."""
    failed = sum(not result.succeeded for result in results)
    out = [f"### {heading}", "", f"{len(results) - failed} of {len(results)} action(s) succeeded, {failed} failed.", ""]
    if not results:
        return "\n".join(out) + "\n"
    out += ["| env | registry | image | tag | action | result | digest | error |"]
    out += ["| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for result in results:
        action = result.action
        out.append(
            f"| {action.environment} | {action.registry} | {action.image} | `{action.tag}` | {_verb(action)} | "
            f"{result.outcome.value} | `{action.digest[:19]}` | {markdown_cell(result.error or '')} |"
        )
    return "\n".join(out) + "\n"


def report_to_dict(report: PassReport) -> dict[str, Any]:
    document: dict[str, Any] = {
        "commit": report.desired.commit,
        "commit_author": report.desired.commit_author,
        "environments": list(report.plan.environments),
        "summary": summary(report.plan),
        "timings": {
            "observe_seconds": round(report.observe_seconds, 3),
            "plan_seconds": round(report.plan_seconds, 3),
            "execute_seconds": round(report.execute_seconds, 3),
        },
        "requests": {"observe": report.observed.request_count},
    }
    if report.results is None:
        document["actions"] = [
            {**action_to_dict(a), "referrers": list(report.referrers.get(a.id, ()))} for a in report.plan
        ]
    else:
        document["results"] = [result_to_dict(r) for r in report.results]
    document["failures"] = [failure_to_dict(f) for f in report.failures]
    if report.lifecycle is not None:
        document["lifecycle"] = lifecycle_to_dict(report.lifecycle)
    return document


def lifecycle_to_dict(lifecycle: LifecycleReport) -> dict[str, Any]:
    garbage = lifecycle.garbage
    return {
        "not_versions": [
            {"registry": registry, "repository": repository, "tag": tag}
            for registry, repository, tag in lifecycle.not_versions
        ],
        "over_capacity": [
            {"environment": env, "registry": registry, "bytes": used, "max_bytes": limit}
            for env, registry, used, limit in lifecycle.over_capacity
        ],
        "kept_declared": list(lifecycle.kept_declared),
        "problems": list(lifecycle.problems),
        "requests": lifecycle.requests,
        "archive_garbage": None
        if garbage is None
        else {"blobs_removed": garbage.blobs_removed, "bytes_freed": garbage.bytes_freed},
    }


def lifecycle_lines(lifecycle: LifecycleReport | None) -> list[str]:
    """Notes under a plan: what retention left alone or could not do, one line each."""
    if lifecycle is None:
        return []
    lines = [f"  note: {problem}" for problem in lifecycle.problems]
    lines += [
        f"  note: {registry}/{repository}:{tag} is not a version (naming rule); retention leaves it alone"
        for registry, repository, tag in lifecycle.not_versions
    ]
    lines += [
        f"  note: {env} on {registry} still holds {format_bytes(used)} > max_bytes {format_bytes(limit)}: "
        "declared and kept versions alone exceed it"
        for env, registry, used, limit in lifecycle.over_capacity
    ]
    lines += [
        f"  note: archive entry {name} is past destroy_after_days but a declared version uses it: kept"
        for name in lifecycle.kept_declared
    ]
    if lifecycle.garbage is not None:
        lines.append(
            f"  archive store: {lifecycle.garbage.blobs_removed} blob(s) destroyed, "
            f"{format_bytes(lifecycle.garbage.bytes_freed)} freed"
        )
    return lines
