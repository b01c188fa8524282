"""The latest records of the audit log, for the status page: a bounded read of the file's end, cached.

Reads at most the last ``scan_bytes`` of the log (it only grows, and may be shared with other writers)
and re-reads only when its size or modification time changed, so a board refreshing every few seconds
costs one ``stat``. An outcome stands for its intent; an intent with no outcome yet is shown as
``pending`` (a write under way, or one a crash interrupted: the next apply confirms it). Newest first.
Read only: it never writes to the log.
"""

from __future__ import annotations

from pathlib import Path

from reconciler.engine.audit import INTENT, OUTCOME, tail_records
from reconciler.errors import ReconcilerError

Record = dict[str, object]


class AuditTail:
    def __init__(self, path: Path, *, limit: int = 50, scan_bytes: int = 256 * 1024) -> None:
        self.path = path
        self.limit = limit
        self.scan_bytes = scan_bytes
        self._seen: tuple[int, int] | None = None
        self._recent: tuple[Record, ...] = ()

    def recent(self) -> tuple[Record, ...]:
        try:
            info = self.path.stat()
        except OSError:
            return ()
        if self._seen != (info.st_size, info.st_mtime_ns):
            self._recent = self._read()
            self._seen = (info.st_size, info.st_mtime_ns)
        return self._recent

    def _read(self) -> tuple[Record, ...]:
        try:
            records = tail_records(self.path, scan_bytes=self.scan_bytes)
        except ReconcilerError:
            return ()
        finished = {r.get("entry") for r in records if r.get("phase", OUTCOME) == OUTCOME and r.get("entry")}
        shown: list[Record] = []
        for record in records:
            if record.get("phase", OUTCOME) == OUTCOME:
                shown.append(record)
            elif record.get("phase") == INTENT and record.get("entry") not in finished:
                shown.append({**record, "result": "pending"})
        return tuple(reversed(shown[-self.limit :]))
