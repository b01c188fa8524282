"""The board's view of the audit log: a bounded read of its end, one record per action, newest first."""

from __future__ import annotations

import json
from pathlib import Path

from reconciler.controller.audittail import AuditTail
from reconciler.engine.audit import tail_records, unconfirmed_intents


def _write(path: Path, records: list[object], *, prefix: bytes = b"") -> None:
    path.write_bytes(prefix + b"".join(json.dumps(record).encode() + b"\n" for record in records))


def test_an_outcome_stands_for_its_intent_and_an_open_intent_is_pending(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    _write(
        log,
        [
            {"entry": "a", "phase": "intent", "tag": "1"},
            {"entry": "a", "phase": "outcome", "result": "ok", "tag": "1"},
            {"entry": "b", "phase": "intent", "tag": "2"},
        ],
    )
    shown = AuditTail(log).recent()
    assert [(r["entry"], r["result"]) for r in shown] == [("b", "pending"), ("a", "ok")]


def test_the_read_is_bounded_and_skips_what_it_cut_or_cannot_read(tmp_path: Path) -> None:
    log = tmp_path / "audit.jsonl"
    old = [{"entry": f"old{i}", "phase": "outcome", "result": "ok", "pad": "x" * 200} for i in range(50)]
    _write(log, [*old, [1, 2], "text", {"entry": "new", "phase": "outcome", "result": "failed"}])
    records = tail_records(log, scan_bytes=1000)
    assert records[-1]["entry"] == "new"
    assert all(isinstance(record, dict) for record in records)  # a JSON list or string is not a record
    assert len(records) < 10  # only the end was read, and its first (cut) line dropped
    assert AuditTail(log, scan_bytes=1000, limit=2).recent()[0]["entry"] == "new"


def test_a_missing_log_shows_nothing(tmp_path: Path) -> None:
    assert AuditTail(tmp_path / "none.jsonl").recent() == ()
    assert unconfirmed_intents(tmp_path / "none.jsonl") == []
