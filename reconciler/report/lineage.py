"""``history`` and ``trace`` as text, markdown and JSON: one timeline of Git changes and registry writes.

Each line is either a change to an environment file (``+`` added, ``-`` removed, ``~`` re-pinned: when,
which environment, which version, which commit, who, which merge request) or what the audit log says a
registry did about it (copy, retag, refusal, and the result). ``trace`` adds where the digest is pinned
now and the path it took through the environments. Shaping only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from reconciler.engine.lineage import Lineage, RegistryEvent, VersionEvent
from reconciler.model.digest import Digest

_MARK = {"added": "+", "removed": "-", "changed": "~"}


def _when(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _short(digest: str) -> str:
    try:
        return Digest(digest).short
    except ValueError:
        return digest[:19]


def _git_line(event: VersionEvent) -> tuple[str, str]:
    commit = event.commit
    request = f" {event.merge_request}" if event.merge_request else ""
    moved = f" (was {_short(event.previous_digest)})" if event.previous_digest else ""
    text = (
        f"{event.environment:<4} {_MARK[event.change]} {event.image}:{event.tag} {_short(event.digest)}{moved}  "
        f"commit {commit.short}{request} by {commit.author}: {commit.subject}"
    )
    return _when(commit.committer_time), text


def _registry_line(event: RegistryEvent) -> tuple[str, str]:
    commit = f" (commit {event.commit[:12]})" if event.commit else ""
    error = f": {event.error}" if event.error else ""
    text = (
        f"{event.environment:<4}   {event.action} {event.registry}/{event.repository}:{event.tag} "
        f"{_short(event.digest)} {event.result}{commit}{error}"
    )
    return event.time[:19] + ("Z" if event.time else ""), text


def timeline(lineage: Lineage) -> list[str]:
    """Every event, oldest first: ``<time>  <env> <what>``."""
    rows = [_git_line(e) for e in lineage.versions] + [_registry_line(e) for e in lineage.registry]
    return [f"{when}  {text}" for when, text in sorted(rows, key=lambda row: row[0])]


def promotion_path(lineage: Lineage, order: tuple[str, ...]) -> list[str]:
    """Environments in promotion order, each with when the version (first) entered it and who put it there."""
    first: dict[str, VersionEvent] = {}
    for event in lineage.versions:
        if event.change != "removed" and event.environment not in first:
            first[event.environment] = event
    steps = []
    for env in order:
        entry = first.get(env)
        if entry is not None:
            request = f", {entry.merge_request}" if entry.merge_request else ""
            steps.append(f"{env} ({_when(entry.commit.committer_time)[:10]} by {entry.commit.author}{request})")
    return steps


def lineage_to_dict(lineage: Lineage) -> dict[str, Any]:
    return {
        "current": [{"environment": e, "image": i, "tag": t, "digest": d} for e, i, t, d in lineage.current],
        "versions": [
            {
                "time": _when(event.commit.committer_time),
                "environment": event.environment,
                "image": event.image,
                "tag": event.tag,
                "digest": event.digest,
                "change": event.change,
                "previous_digest": event.previous_digest,
                "commit": event.commit.sha,
                "author": event.commit.author,
                "subject": event.commit.subject,
                "merge_request": event.merge_request,
            }
            for event in lineage.versions
        ],
        "registry": [
            {
                "time": event.time,
                "environment": event.environment,
                "registry": event.registry,
                "repository": event.repository,
                "tag": event.tag,
                "digest": event.digest,
                "action": event.action,
                "result": event.result,
                "commit": event.commit,
                "error": event.error,
            }
            for event in lineage.registry
        ],
    }


def lineage_markdown(lineage: Lineage, heading: str, path: list[str] | None = None) -> str:
    out = [f"### {heading}", ""]
    if lineage.current:
        out += ["| environment | tag | digest |", "| --- | --- | --- |"]
        out += [f"| {env} | `{tag}` | `{_short(digest)}` |" for env, _image, tag, digest in lineage.current]
        out.append("")
    if path:
        out += ["**Path:** " + " → ".join(path), ""]
    out += [f"- {line}" for line in timeline(lineage)] or ["No change found."]
    return "\n".join(out) + "\n"
