"""The audit log: one JSON line per action or refusal, appended atomically, never rewritten.

A write to a registry is recorded twice: an ``intent`` record before the side effect (what is about to
be written, from which commit) and an ``outcome`` record after it, sharing one ``entry`` id. A run killed
between the two leaves an intent without an outcome: ``pair_records`` reports it as ``unknown`` ("check the
registry"), and the next apply that observes that tag appends the outcome it finds (``confirmed``), so no
write is ever lost from the record. Actions that write nothing (a refusal, a missing digest) get one
``outcome`` record.

Every record says when, what (copy, retag, conflict...), where (environment, registry, repository,
tag, digest), from where (source), why (the Git commit of the desired state and its author) and how it
ended (result, error). Each line is written with ONE ``write()`` of the complete line on a descriptor
opened with ``O_APPEND``, so concurrent writers (two applies, the controller and a person) interleave
whole lines, never fragments, and a crash leaves at most a missing line, never a torn one. The file is
only ever appended to: this module has no code path that truncates, seeks or rewrites it.

It must never record a secret: records hold names, digests and error messages built by reconciler's
error tree (which carry no credentials), and messages are scrubbed again here for URL user-info,
``Authorization`` values and bearer/basic tokens, as a second line of defence.

The default path is ``$RECONCILER_AUDIT_LOG`` when set, else
``$XDG_STATE_HOME/reconciler/audit.jsonl`` (``~/.local/state/reconciler/audit.jsonl``).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from reconciler.errors import ReconcilerError
from reconciler.model.redact import redact

AUDIT_LOG_ENV = "RECONCILER_AUDIT_LOG"


def scrub(text: str) -> str:
    """``text`` with anything that looks like a credential replaced by ``***``."""
    return redact(text)


def default_audit_path() -> Path:
    configured = os.environ.get(AUDIT_LOG_ENV)
    if configured:
        return Path(configured)
    state_home = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state_home) / "reconciler" / "audit.jsonl"


INTENT = "intent"
OUTCOME = "outcome"
UNKNOWN = "unknown"
CONFIRM_SCAN_BYTES = 16 * 1024 * 1024
"""How far back from the end of the log an apply looks for intents without an outcome to confirm."""


@dataclass(frozen=True, slots=True)
class AuditRecord:
    action: str
    """``copy``, ``retag``, ``conflict``, ``missing``, ``unreachable``, ``refused``, ``archive``, ``delete``,
    ``restore``, ``destroy``."""
    environment: str
    registry: str
    repository: str
    tag: str
    digest: str
    result: str
    """``ok``, ``failed``, ``refused`` or ``skipped`` (a dependency failed)."""
    source: str | None = None
    """``registry/repository`` the image came from, when copied."""
    commit: str | None = None
    commit_author: str | None = None
    error: str | None = None
    phase: str = OUTCOME
    """``intent`` (written before the side effect) or ``outcome``."""
    entry: str | None = None
    """Pairs an intent with its outcome: ``<run id>:<action id>``."""
    confirmed_by: str | None = None
    """On an outcome written by a later run for an intent left without one: that run's id."""
    referrers: tuple[str, ...] | None = None
    """Digests of the referrers (signatures, SBOMs) copied with the image, on a copy's outcome."""
    rule: str | None = None
    """ARCHIVE, DELETE, DESTROY: the retention rule that fired (``keep=5``, ``destroy_after_days=365``)."""
    archive_ref: str | None = None
    """ARCHIVE, DELETE (when archived), RESTORE, DESTROY: the archive store entry (``d/app:20261101_01``)."""
    bytes_freed: int | None = None
    """DELETE: blob bytes the registry can reclaim (after its garbage collection)."""
    time: str = ""
    """RFC 3339 UTC; filled in when the record is appended if left empty."""

    def to_json(self) -> str:
        fields = asdict(self)
        if not fields["time"]:
            fields["time"] = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
        if fields["error"] is not None:
            fields["error"] = scrub(fields["error"])
        for lifecycle_only in ("rule", "archive_ref", "bytes_freed"):
            if fields[lifecycle_only] is None:
                del fields[lifecycle_only]  # present on lifecycle records only
        ordered = {"time": fields.pop("time"), **fields}
        return json.dumps(ordered, ensure_ascii=False, separators=(",", ":"), sort_keys=False)


class AuditLog:
    """Appends records to a JSON-lines file (and echoes them to a stream in JSON-log mode).

    ``path=None`` writes no file (used when only echoing). The file and its directory are created on
    the first append, with mode 0600 for the file: an audit log is not for every local user.
    """

    def __init__(self, path: str | os.PathLike[str] | None, *, echo: TextIO | None = None) -> None:
        self.path = Path(path) if path is not None else None
        self._echo = echo
        self._fd: int | None = None
        self.records_written = 0

    def _open(self) -> int:
        if self._fd is None:
            assert self.path is not None
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            except OSError as exc:
                raise ReconcilerError(f"cannot open the audit log {self.path}: {exc.strerror}") from exc
        return self._fd

    def ensure_writable(self) -> None:
        """Open the file now, so an unwritable audit log stops a run BEFORE it changes anything."""
        if self.path is not None:
            self._open()

    def append(self, record: AuditRecord) -> None:
        line = (record.to_json() + "\n").encode("utf-8")
        if self.path is not None:
            fd = self._open()
            try:
                written = os.write(fd, line)
            except OSError as exc:
                raise ReconcilerError(f"cannot append to the audit log {self.path}: {exc.strerror}") from exc
            if written != len(line):
                # Regular files take a whole write unless the disk is full; say so rather than
                # leave a silently torn record.
                raise ReconcilerError(f"audit log {self.path}: short write ({written} of {len(line)} bytes)")
        if self._echo is not None:
            self._echo.write(line.decode("utf-8"))
            self._echo.flush()
        self.records_written += 1

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_records(path: str | os.PathLike[str]) -> list[dict[str, object]]:
    """Every record of an audit log file, oldest first (for ``history`` and tests)."""
    records: list[dict[str, object]] = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                records.append(json.loads(line))
    return records


def pair_records(records: list[dict[str, object]]) -> list[dict[str, object]]:
    """The log as a reader should see it: one record per action. An outcome stands for its intent; an
    intent with no outcome (the run stopped between the two) becomes a record with result ``unknown``."""
    finished = {record.get("entry") for record in records if record.get("phase", OUTCOME) == OUTCOME}
    paired: list[dict[str, object]] = []
    for record in records:
        if record.get("phase", OUTCOME) == OUTCOME:
            paired.append(record)
        elif record.get("entry") not in finished:
            paired.append(
                {
                    **record,
                    "phase": OUTCOME,
                    "result": UNKNOWN,
                    "error": "the run stopped after announcing this write and before recording its outcome: "
                    "check the registry (the next apply confirms it)",
                }
            )
    return paired


def tail_records(path: str | os.PathLike[str], *, scan_bytes: int) -> list[dict[str, object]]:
    """The records among the last ``scan_bytes`` of the log (a bounded read: the log only grows), oldest
    first; a record cut by the start of the read or torn by a full disk is skipped. [] when the log does
    not exist; ``ReconcilerError`` when it cannot be read."""
    try:
        with open(path, "rb") as handle:
            size = handle.seek(0, os.SEEK_END)
            start = max(0, size - scan_bytes)
            handle.seek(start)
            tail = handle.read()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise ReconcilerError(f"cannot read the audit log {path}: {exc.strerror}") from exc
    lines = tail.split(b"\n")
    if start:
        lines = lines[1:]  # the first line may be cut in the middle
    records: list[dict[str, object]] = []
    for line in lines:
        if line.strip():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict):
                records.append(record)
    return records


def unconfirmed_intents(
    path: str | os.PathLike[str], *, scan_bytes: int = CONFIRM_SCAN_BYTES
) -> list[dict[str, object]]:
    """Intents without an outcome among the last ``scan_bytes`` of the log, oldest first. [] when the log
    does not exist."""
    records = tail_records(path, scan_bytes=scan_bytes)
    finished = {r.get("entry") for r in records if r.get("phase", OUTCOME) == OUTCOME and r.get("entry")}
    return [r for r in records if r.get("phase") == INTENT and r.get("entry") not in finished]
