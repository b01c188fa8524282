"""The audit log: whole JSON lines, appended atomically by concurrent writers, never rewritten."""

from __future__ import annotations

import io
import json
import multiprocessing
from pathlib import Path

import pytest

from reconciler.engine.audit import AUDIT_LOG_ENV, AuditLog, AuditRecord, default_audit_path, read_records, scrub

FIELDS = [
    "time",
    "action",
    "environment",
    "registry",
    "repository",
    "tag",
    "digest",
    "result",
    "source",
    "commit",
    "commit_author",
    "error",
    "phase",
    "entry",
    "confirmed_by",
    "referrers",
]


def record(i: int = 0, **overrides: str) -> AuditRecord:
    fields = {
        "action": "copy",
        "environment": "t",
        "registry": "test",
        "repository": "t/payments/api",
        "tag": f"20261127_{i % 100:02d}",
        "digest": "sha256:" + "a" * 64,
        "result": "ok",
        "source": "dev/d/payments/api",
        "commit": "0123abcd",
        "commit_author": "Ada <ada@example.com>",
        **overrides,
    }
    return AuditRecord(**fields)  # type: ignore[arg-type]


def test_record_has_every_field_and_a_utc_time(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "audit.jsonl"
    echo = io.StringIO()
    with AuditLog(path, echo=echo) as log:
        log.append(record())
    [line] = path.read_text().splitlines()
    parsed = json.loads(line)
    assert list(parsed) == FIELDS
    assert parsed["time"].endswith("Z")
    assert echo.getvalue() == line + "\n"
    assert path.stat().st_mode & 0o777 == 0o600


def test_existing_content_is_kept_byte_for_byte(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    with AuditLog(path) as log:
        log.append(record(1))
    before = path.read_bytes()
    with AuditLog(path) as log:
        log.append(record(2))
    after = path.read_bytes()
    assert after.startswith(before)
    assert len(read_records(path)) == 2


def _writer(path: str, worker: int, count: int) -> None:
    padding = "x" * (200 + worker * 300)  # lines of different lengths, some larger than a pipe buffer chunk
    with AuditLog(path) as log:
        for i in range(count):
            log.append(record(i, error=f"worker {worker} #{i} {padding}", result="failed"))


def test_concurrent_processes_interleave_whole_lines_only(tmp_path: Path) -> None:
    path = str(tmp_path / "audit.jsonl")
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_writer, args=(path, w, 300)) for w in range(4)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(30)
        assert process.exitcode == 0
    records = read_records(path)  # json.loads fails on any torn line
    assert len(records) == 1200
    seen = {(r["error"].split()[1], r["error"].split()[2]) for r in records}  # type: ignore[union-attr]
    assert len(seen) == 1200


def test_secrets_are_scrubbed_from_errors(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    with AuditLog(path) as log:
        log.append(
            record(error="GET https://bob:hunter2@reg.example.com/v2/ failed; Authorization: Bearer abcdefghijklmnop")
        )
    text = path.read_text()
    assert "hunter2" not in text
    assert "abcdefghijklmnop" not in text
    assert "reg.example.com" in text
    assert scrub("password=s3cret token: t0ken") == "password=*** token: ***"


def test_default_path_honours_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(AUDIT_LOG_ENV, str(tmp_path / "a.jsonl"))
    assert default_audit_path() == tmp_path / "a.jsonl"
    monkeypatch.delenv(AUDIT_LOG_ENV)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert default_audit_path() == tmp_path / "reconciler" / "audit.jsonl"


def test_unwritable_audit_log_stops_apply_before_any_write(tmp_path: Path) -> None:
    import asyncio

    from reconciler.engine.reconcile import reconcile_pass
    from reconciler.errors import ReconcilerError

    from .states import digest_of, full_chain
    from .test_execute import FakeAccess
    from .world import World

    world = World()
    world.put("dev", "d/payments/api", "20261127_01", digest_of("payments/api" + "20261127_01"))
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    audit = AuditLog(blocker / "audit.jsonl")
    access = FakeAccess(world)
    with pytest.raises(ReconcilerError, match="cannot open the audit log"):
        asyncio.run(reconcile_pass(full_chain(("payments/api",)), access, dry_run=False, audit=audit))
    assert world.writes == []
    assert access.max_in_flight == 0


def test_an_intent_without_outcome_reads_as_unknown_and_the_next_run_confirms_it(tmp_path: Path) -> None:
    """A run killed between a tag write and its record: the intent says what was about to be written; a
    reader sees "unknown, check the registry"; the next apply that observes the tag appends the outcome."""
    import asyncio

    from reconciler.engine.audit import pair_records, unconfirmed_intents
    from reconciler.engine.reconcile import reconcile_pass

    from .states import digest_of, full_chain
    from .test_execute import TAG, FakeAccess, seeded

    path = tmp_path / "audit.jsonl"
    images = ("payments/api",)
    desired = full_chain(images)
    world = seeded(images)
    digest = digest_of("payments/api" + TAG)
    with AuditLog(path) as log:
        # what a killed run leaves: two intents, one of which had landed in the registry
        log.append(record(action="copy", registry="test", repository="t/payments/api", tag=TAG, digest=digest,
                          result="pending", phase="intent", entry="dead:0"))  # fmt: skip
        log.append(record(action="copy", registry="pre", repository="s1/payments/api", tag=TAG, digest=digest,
                          result="pending", phase="intent", entry="dead:1"))  # fmt: skip
    world.put("test", "t/payments/api", TAG, digest)  # the first write landed before the kill
    [first, second] = pair_records(read_records(path))
    assert (first["result"], second["result"]) == ("unknown", "unknown")
    assert "check the registry" in str(first["error"])
    assert len(unconfirmed_intents(path)) == 2

    with AuditLog(path) as log:
        report = asyncio.run(reconcile_pass(desired, FakeAccess(world), dry_run=False, audit=log))
    assert not report.failures
    records = read_records(path)
    confirmations = [r for r in records if r.get("confirmed_by")]
    assert {(r["entry"], r["result"]) for r in confirmations} == {("dead:0", "ok"), ("dead:1", "failed")}
    assert unconfirmed_intents(path) == []
    # every write of this run has an intent before its outcome, paired by entry
    run = [r for r in records if str(r.get("entry", "")).split(":")[0] not in ("dead", "None")]
    intents = [r["entry"] for r in run if r["phase"] == "intent"]
    outcomes = [r["entry"] for r in run if r["phase"] == "outcome"]
    assert intents
    assert set(intents) <= set(outcomes)
    for entry in intents:
        assert [r["phase"] for r in run if r["entry"] == entry] == ["intent", "outcome"]
    assert {r["result"] for r in pair_records(records)} <= {"ok", "failed"}
