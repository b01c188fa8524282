"""The ``reconciler archive`` commands' output as data: store listings, verify reports, restores, destroys.

Shaping only: text lines, markdown and the JSON payloads of the versioned envelope. No printing, no
exit codes, no I/O: the CLI measures the store (``EntryFootprint``) and runs the actions, then hands the
values here. JSON fields may be added freely, never renamed or removed without bumping the envelope.

Sizes: an entry's size is its whole tree as the layout's manifests describe it (top manifest, child
manifests, configs, layers). Entries share blobs (a base layer, a re-archived image), so the listing
shows each entry's own total and, for the store, the unique bytes (each blob once), which is what the
entries occupy on disk.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from reconciler.archive import (
    ARCHIVED_AT,
    SOURCE_COMMIT,
    SOURCE_REGISTRY,
    SOURCE_REPOSITORY,
    ArchiveEntry,
    ExportReport,
    GarbageReport,
    ImportReport,
    VerifyReport,
)
from reconciler.engine.execute import ActionResult
from reconciler.model.plan import Action, ActionKind
from reconciler.policy.gates import format_bytes
from reconciler.report.passes import action_to_dict, markdown_cell, result_to_dict


@dataclass(frozen=True, slots=True)
class EntryFootprint:
    """What one entry's tree occupies: every manifest and blob it names, digest -> size in bytes."""

    blobs: Mapping[str, int] = field(default_factory=dict)
    problem: str | None = None
    """Why the tree could not be read whole (a missing or corrupt manifest): the size is then partial."""

    @property
    def size(self) -> int:
        return sum(self.blobs.values())


@dataclass(frozen=True, slots=True)
class StoreListing:
    """Every entry of a store, with its footprint, in name order."""

    store: str
    exists: bool
    entries: tuple[tuple[ArchiveEntry, EntryFootprint], ...] = ()

    @property
    def unique_bytes(self) -> int:
        """Bytes of the union of every entry's tree: each shared blob counted once."""
        seen: dict[str, int] = {}
        for _entry, footprint in self.entries:
            seen.update(footprint.blobs)
        return sum(seen.values())

    @property
    def entry_bytes(self) -> int:
        """The sum of the entries' own sizes (shared blobs counted once per entry)."""
        return sum(footprint.size for _entry, footprint in self.entries)


def _short(digest: str) -> str:
    algorithm, _colon, hex_digest = digest.partition(":")
    return f"{algorithm}:{hex_digest[:12]}"


def plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


# ------------------------------------------------------------------------------------------------ list


def entry_to_dict(entry: ArchiveEntry, footprint: EntryFootprint) -> dict[str, Any]:
    notes = entry.annotations
    return {
        "name": entry.name,
        "repository": entry.repository,
        "tag": entry.tag,
        "digest": str(entry.digest),
        "media_type": entry.media_type,
        "archived_at": notes.get(ARCHIVED_AT),
        "source_registry": notes.get(SOURCE_REGISTRY),
        "source_repository": notes.get(SOURCE_REPOSITORY),
        "commit": notes.get(SOURCE_COMMIT),
        "size": footprint.size,
        "blobs": len(footprint.blobs),
        "problem": footprint.problem,
    }


def listing_to_dict(listing: StoreListing) -> dict[str, Any]:
    return {
        "store": listing.store,
        "exists": listing.exists,
        "entries": [entry_to_dict(entry, footprint) for entry, footprint in listing.entries],
        "total": {
            "entries": len(listing.entries),
            "unique_bytes": listing.unique_bytes,
            "entry_bytes": listing.entry_bytes,
        },
    }


def _source(entry: ArchiveEntry) -> str:
    notes = entry.annotations
    registry, repository = notes.get(SOURCE_REGISTRY), notes.get(SOURCE_REPOSITORY)
    if registry and repository:
        return f"{registry}/{repository}"
    return repository or registry or "-"


def _row(entry: ArchiveEntry, footprint: EntryFootprint) -> list[str]:
    size = format_bytes(footprint.size) + ("?" if footprint.problem else "")
    commit = entry.annotations.get(SOURCE_COMMIT)
    return [
        entry.label,
        _short(str(entry.digest)),
        entry.annotations.get(ARCHIVED_AT) or "-",
        size,
        _source(entry),
        commit[:12] if commit else "-",
    ]


_LIST_HEADER = ["NAME", "DIGEST", "ARCHIVED", "SIZE", "SOURCE", "COMMIT"]


def _total_line(listing: StoreListing) -> str:
    count = len(listing.entries)
    line = f"{plural(count, 'entry', 'entries')}, {format_bytes(listing.unique_bytes)} ({listing.unique_bytes} bytes"
    if listing.entry_bytes != listing.unique_bytes:
        line += (
            f", each blob once; the entries' own sizes add up to {format_bytes(listing.entry_bytes)}: they share blobs"
        )
    return line + ")"


def listing_lines(listing: StoreListing) -> list[str]:
    """A table of the entries, then the total; notes for a store that does not exist or a partial size."""
    lines = [f"archive store {listing.store}"]
    if not listing.exists:
        return [*lines, "  no archive store there yet (nothing archived): 0 entries"]
    if listing.entries:
        rows = [_LIST_HEADER] + [_row(entry, footprint) for entry, footprint in listing.entries]
        widths = [max(len(row[column]) for row in rows) for column in range(len(_LIST_HEADER))]
        for row in rows:
            lines.append("  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    lines.append(f"  total: {_total_line(listing)}")
    lines += [
        f"  note: {entry.label}: size incomplete, {footprint.problem} (run `reconciler archive verify`)"
        for entry, footprint in listing.entries
        if footprint.problem
    ]
    return lines


def listing_markdown(listing: StoreListing) -> str:
    out = [f"### Archive store `{listing.store}`", ""]
    if listing.entries:
        out += ["| " + " | ".join(h.lower() for h in _LIST_HEADER) + " |", "|" + " --- |" * len(_LIST_HEADER)]
        for entry, footprint in listing.entries:
            cells = _row(entry, footprint)
            cells[0], cells[1] = f"`{cells[0]}`", f"`{cells[1]}`"
            out.append("| " + " | ".join(markdown_cell(cell) for cell in cells) + " |")
        out.append("")
    out.append(f"Total: {_total_line(listing)}." if listing.exists else "No archive store there yet: 0 entries.")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------------- verify


def verify_to_dict(report: VerifyReport) -> dict[str, Any]:
    return {
        "store": report.layout,
        "ok": report.ok,
        "layout_problems": list(report.layout_problems),
        "unreferenced_blobs": report.unreferenced_blobs,
        "entries": [
            {
                "name": entry.name,
                "digest": str(entry.digest) if entry.digest is not None else None,
                "ok": entry.ok,
                "blobs_checked": entry.blobs_checked,
                "bytes_checked": entry.bytes_checked,
                "problems": [
                    {
                        "kind": problem.kind,
                        "detail": problem.detail,
                        "digest": str(problem.digest) if problem.digest is not None else None,
                        "path": problem.path,
                        "manifest": problem.manifest,
                    }
                    for problem in entry.problems
                ],
            }
            for entry in report.entries
        ],
    }


def _verdict(report: VerifyReport) -> str:
    count = plural(len(report.entries), "entry", "entries")
    if report.layout_problems:
        return f"FAILED: the store itself is unreadable ({count} verified)"
    if report.ok:
        return f"ok: {count} verified, every blob re-hashed"
    return f"FAILED: {len(report.failed)} of {count} damaged"


def verify_lines(report: VerifyReport) -> list[str]:
    """One line per entry (ok, or FAILED with one indented line per problem), then the verdict."""
    lines = [f"archive store {report.layout}"]
    lines += [f"  FAILED  {problem}" for problem in report.layout_problems]
    for entry in sorted(report.entries, key=lambda e: e.name):
        if entry.ok:
            blobs = plural(entry.blobs_checked, "blob", "blobs")
            lines.append(f"  ok      {entry.name} ({blobs}, {format_bytes(entry.bytes_checked)})")
            continue
        lines.append(f"  FAILED  {entry.name} ({_short(str(entry.digest)) if entry.digest else 'no digest'})")
        lines += [f"          {problem}" for problem in entry.problems]
    if report.unreferenced_blobs:
        lines.append(
            f"  note: {plural(report.unreferenced_blobs, 'blob', 'blobs')} no entry needs (garbage, not damage; "
            "`reconciler archive destroy` collects them)"
        )
    lines.append(f"  {_verdict(report)}")
    return lines


def verify_markdown(report: VerifyReport) -> str:
    out = [f"### Verify of archive store `{report.layout}`", "", _verdict(report), ""]
    out += [f"- store: {markdown_cell(problem)}" for problem in report.layout_problems]
    if report.entries:
        out += ["| entry | result | blobs | problems |", "| --- | --- | --- | --- |"]
        for entry in sorted(report.entries, key=lambda e: e.name):
            problems = "; ".join(str(problem) for problem in entry.problems)
            result = "ok" if entry.ok else "**FAILED**"
            name, problems = markdown_cell(entry.name), markdown_cell(problems)
            out.append(f"| `{name}` | {result} | {entry.blobs_checked} | {problems} |")
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------------------------ restore, destroy


def _action_line(action: Action, result: ActionResult | None) -> str:
    status = "plan" if result is None else result.outcome.value
    if action.kind is ActionKind.DESTROY:
        what = f"destroy {action.archive_ref} {_short(action.digest)} ({action.rule}: {action.reason})"
    else:
        what = f"{action.kind.value} {action.registry}/{action.repository}:{action.tag} {_short(action.digest)}"
        if action.archive_ref:
            what += f" from {action.archive_ref}"
    line = f"  {status:<8} {what}"
    if result is not None and result.error:
        line += f"\n           {result.error}"
    return line


def actions_lines(actions: Sequence[Action], results: Sequence[ActionResult] | None) -> list[str]:
    """One line per action: ``plan`` (a dry run) or how it ended, with the error under a failure."""
    by_id = {result.action.id: result for result in results or ()}
    return [_action_line(action, by_id.get(action.id) if results is not None else None) for action in actions]


def actions_payload(actions: Sequence[Action], results: Sequence[ActionResult] | None) -> dict[str, Any]:
    """``actions`` for a dry run, ``results`` after executing (the shapes ``plan``/``apply`` use)."""
    if results is None:
        return {"actions": [action_to_dict(action) for action in actions]}
    return {"results": [result_to_dict(result) for result in results]}


def garbage_to_dict(garbage: GarbageReport | None) -> dict[str, Any] | None:
    if garbage is None:
        return None
    return {
        "blobs_removed": garbage.blobs_removed,
        "bytes_freed": garbage.bytes_freed,
        "blobs_kept": garbage.blobs_kept,
    }


def garbage_line(garbage: GarbageReport | None) -> str:
    if garbage is None:
        return "  garbage collection: not run (nothing was destroyed)"
    return (
        f"  garbage collection: {plural(garbage.blobs_removed, 'blob', 'blobs')} removed, "
        f"{format_bytes(garbage.bytes_freed)} ({garbage.bytes_freed} bytes) freed; {garbage.blobs_kept} kept"
    )


def kept_lines(kept_declared: Iterable[str]) -> list[str]:
    return [
        f"  note: {name} is past destroy_after_days but a declared version uses its digest: kept "
        "(it may be the last copy a restore needs)"
        for name in kept_declared
    ]


def restore_note(*, target: str, env_file: str, declared: bool, retention_active: bool) -> str:
    """What keeps a restored tag in its registry, or what will retire it again."""
    if declared:
        return f"note: {env_file} declares {target}: apply keeps it"
    if retention_active:
        return (
            f"note: {env_file} does not declare {target}: the next apply's retention retires it again "
            f"(archives it back and deletes it). To keep it, declare it in {env_file} (e.g. revert the "
            "merge request that removed it)"
        )
    return (
        f"note: {env_file} does not declare {target}: nothing retires it today, but nothing keeps it either; "
        f"declare it in {env_file} (e.g. revert the merge request that removed it) so it stays"
    )


def as_markdown(heading: str, lines: Iterable[str]) -> str:
    """A heading and the text lines as a fenced block (the commands without a table of their own)."""
    return "\n".join([f"### {heading}", "", "```", *(line.rstrip() for line in lines), "```"]) + "\n"


# ------------------------------------------------------------------------------------- export, import


def export_to_dict(report: ExportReport) -> dict[str, Any]:
    return {
        "file": str(report.path),
        "entries": list(report.entries),
        "blobs": report.blobs,
        "blob_bytes": report.blob_bytes,
    }


def export_lines(report: ExportReport) -> list[str]:
    return [
        f"exported {plural(len(report.entries), 'entry', 'entries')} to {report.path}: "
        f"{plural(report.blobs, 'blob', 'blobs')}, {format_bytes(report.blob_bytes)}",
        *(f"  {name}" for name in report.entries),
    ]


def import_to_dict(report: ImportReport) -> dict[str, Any]:
    return {
        "file": str(report.path),
        "entries_added": list(report.entries_added),
        "blobs_written": report.blobs_written,
        "blob_bytes_written": report.blob_bytes_written,
        "unnamed_entries_skipped": report.unnamed_entries_skipped,
        "ignored_members": list(report.ignored_members),
    }


def import_lines(report: ImportReport, store: str) -> list[str]:
    lines = [
        f"imported {plural(len(report.entries_added), 'entry', 'entries')} from {report.path} into {store}: "
        f"{plural(report.blobs_written, 'new blob', 'new blobs')}, {format_bytes(report.blob_bytes_written)} written",
        *(f"  {name}" for name in report.entries_added),
    ]
    if report.unnamed_entries_skipped:
        lines.append(f"  note: {report.unnamed_entries_skipped} entries without a name were skipped")
    if report.ignored_members:
        lines.append(f"  note: ignored members that are not part of a layout: {', '.join(report.ignored_members)}")
    return lines
