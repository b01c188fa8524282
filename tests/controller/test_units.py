"""The controller's pure parts, without a process or a registry: option parsing, backoff arithmetic, the
status book's cell states, and the status renderings (JSON envelope, HTML board)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from engine.states import chain_config, digest_of, state

from reconciler.controller.backoff import RetryBook
from reconciler.controller.book import StatusBook, image_causes
from reconciler.controller.options import OptionsError, options_from_raw, parse_duration, parse_listen
from reconciler.controller.source import content_key
from reconciler.engine.execute import ActionResult
from reconciler.engine.reconcile import PassReport
from reconciler.model.observed import ObservedState
from reconciler.model.outcome import Cause, Outcome
from reconciler.model.plan import Action, ActionKind, ConflictResolution, Plan
from reconciler.report.board import render_board
from reconciler.report.status import Cell, CellState, ControllerStatus, ImageRow, Stall, status_document


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("5m", 300), ("1h", 3600), ("1m30s", 90), ("250ms", 0.25), ("45", 45), ("1.5s", 1.5)],
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text, option="--interval") == seconds


@pytest.mark.parametrize("text", ["", "0", "0s", "-1s", "5x", "s", "1h 5m", "nan", "inf", "5m3"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(OptionsError):
        parse_duration(text, option="--interval")


def test_listen_addresses() -> None:
    assert parse_listen("0.0.0.0:8080") == ("0.0.0.0", 8080)  # noqa: S104
    assert parse_listen(":9000") == ("0.0.0.0", 9000)  # noqa: S104
    assert parse_listen("[::1]:8080") == ("::1", 8080)
    for bad in ("8080", "host:", "host:99999"):
        with pytest.raises(OptionsError):
            parse_listen(bad)


def test_options_defaults_and_shard_from_hostname(tmp_path: Path) -> None:
    options = options_from_raw({"directory": str(tmp_path)}, environ={})
    assert (options.interval, options.resync, options.grace) == (60, 600, 30)
    assert (options.listen_host, options.listen_port, options.concurrency) == ("0.0.0.0", 8080, 16)  # noqa: S104
    assert options.shard is None
    assert options.owns("anything")
    sharded = options_from_raw(
        {"repo": "file:///x", "shard_from_hostname": True, "shards": 3}, environ={"HOSTNAME": "reconciler-2"}
    )
    assert str(sharded.shard) == "2/3"
    assert sharded.directory is None


def test_backoff_doubles_honours_retry_after_and_caps() -> None:
    book = RetryBook(10, 600)
    temporary = Cause("503", temporary=True)
    delays = [book.failed("a", temporary, 0.0).delay for _ in range(8)]
    assert delays == [10, 20, 40, 80, 160, 320, 600, 600]
    assert book.failed("b", Cause("429", temporary=True, retry_after=45), 0.0).delay == 45
    assert book.failed("c", Cause("slow down", temporary=True, retry_after=86400), 0.0).delay == 600
    permanent = book.failed("d", Cause("refused"), 0.0)
    assert permanent.due is None
    assert book.due(1_000.0) == {"a", "b", "c"}  # never the permanent one
    assert book.next_due() == 45  # b, honouring its Retry-After
    assert book.next_due(exclude={"b"}) == 600  # a and c: capped
    book.succeeded("a")
    assert book.state("a") is None


def _action(n: int, kind: ActionKind, env: str, image: str, **extra: object) -> Action:
    return Action(n, kind, env, "test", image, f"{env}/{image}", "20261127_01", digest_of(image), **extra)  # type: ignore[arg-type]


def test_book_cells_follow_results_and_keep_unchanged_cells_on_a_new_commit() -> None:
    pins = [("payments/api", "20261127_01", digest_of("api")), ("payments/web", "20261127_01", digest_of("web"))]
    desired = state(chain_config(), {"d": pins, "t": pins, "p": pins})
    book = StatusBook()
    book.load(desired, ("t", "p"), lambda image: True)
    copy = _action(0, ActionKind.COPY, "t", "payments/api")
    refused = _action(1, ActionKind.CONFLICT, "p", "payments/api", resolution=ConflictResolution.REFUSED)
    unreachable = _action(2, ActionKind.UNREACHABLE, "t", "payments/web", reason="test: down")
    results = (
        ActionResult(copy, Outcome.OK),
        ActionResult(refused, Outcome.REFUSED, Cause("tag is immutable")),
        ActionResult(unreachable, Outcome.FAILED, Cause("test: down", temporary=True, retry_after=3)),
    )
    plan = Plan((copy, refused, unreachable), in_sync=1, environments=("t", "p"))
    report = PassReport(desired, ObservedState(), plan, results, 0.1, 0.0, 0.2)
    book.record_pass({"payments/api", "payments/web"}, report, "2026-12-01T00:00:00Z")
    rows = {row.image: row for row in book.rows(stalled=False, retries=RetryBook(1, 2), wall=str)}
    assert rows["payments/api"].cells["t"].state is CellState.IN_SYNC
    assert rows["payments/api"].cells["p"].state is CellState.CONFLICT
    assert rows["payments/web"].cells["t"].state is CellState.FAILED
    assert rows["payments/web"].cells["p"].state is CellState.IN_SYNC
    assert book.drift_by_environment() == {"t": 1, "p": 1}
    causes = image_causes(report)
    assert causes["payments/web"].temporary
    assert causes["payments/web"].retry_after == 3
    assert not causes["payments/api"].temporary

    # A new commit changes only payments/web in t: that cell is pending again, the others keep their state.
    changed = [*pins[:1], ("payments/web", "20261128_01", digest_of("web2"))]
    book.load(state(chain_config(), {"d": changed, "t": changed, "p": pins}), ("t", "p"), lambda image: True)
    rows = {row.image: row for row in book.rows(stalled=True, retries=RetryBook(1, 2), wall=str)}
    assert rows["payments/web"].cells["t"].last_state is CellState.PENDING
    assert rows["payments/api"].cells["p"].last_state is CellState.CONFLICT
    assert rows["payments/api"].cells["p"].state is CellState.STALLED


def _status(**extra: object) -> ControllerStatus:
    cells = {
        "t": Cell(("20261127_01",), CellState.IN_SYNC),
        "p": Cell(("20261127_01",), CellState.CONFLICT, error="tag is at <sha256:evil> & immutable"),
    }
    base: dict[str, object] = {
        "generated": "2026-12-01T10:00:10Z",
        "version": "0.1.0",
        "source": "https://git.example.com/state.git main",
        "started": "2026-12-01T09:00:00Z",
        "ready": True,
        "interval_seconds": 60.0,
        "resync_seconds": 600.0,
        "commit": "0123456789abcdef0123456789abcdef01234567",
        "environments": ("t", "p"),
        "rows": (ImageRow("<script>alert(1)</script>", cells),),
    }
    base.update(extra)
    return ControllerStatus(**base)  # type: ignore[arg-type]


def test_status_document_is_a_versioned_envelope() -> None:
    document = json.loads(json.dumps(status_document(_status())))
    assert document["version"] == 1
    assert document["command"] == "controller-status"
    assert document["status"] == "degraded"
    assert document["summary"]["conflict"] == 1
    assert document["images"][0]["cells"]["p"]["state"] == "conflict"
    assert document["stalled"] is None


def test_board_escapes_everything_and_labels_every_colour() -> None:
    page = render_board(_status())
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;sha256:evil&gt; &amp; immutable" in page
    assert '<th scope="col">' in page
    assert '<th scope="row">' in page
    assert "in sync" in page
    assert "conflict" in page  # the state in words, not only a colour
    assert 'http-equiv="refresh"' in page  # without JavaScript, it still refreshes
    assert "<link" not in page  # no external asset: the cluster has no internet
    assert "src=" not in page


def test_board_shows_the_stall_banner() -> None:
    stall = Stall("abc123", "invalid desired state", ("environments/t.yaml:3:5: bad digest [bad-digest]",), "x")
    page = render_board(_status(stalled=stall))
    assert 'role="alert"' in page
    assert "Stalled: invalid desired state" in page
    assert "environments/t.yaml:3:5: bad digest" in page


def test_content_key_ignores_hidden_files_and_sees_every_other_change(tmp_path: Path) -> None:
    (tmp_path / "environments").mkdir()
    (tmp_path / "reconciler.yaml").write_text("version: 1\n")
    (tmp_path / "environments" / "t.yaml").write_text("environment: t\n")
    first = content_key(tmp_path)
    (tmp_path / "environments" / ".t.yaml.swp").write_text("editor junk")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "index").write_text("x")
    assert content_key(tmp_path) == first
    (tmp_path / "environments" / "t.yaml").write_text("environment: t\nimages: {}\n")
    assert content_key(tmp_path) != first
