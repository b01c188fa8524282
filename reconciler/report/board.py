"""The controller's status board: a ``ControllerStatus`` as one self-contained HTML page.

A grid of images (rows) x environments (columns, in promotion order) with the declared version(s) in
each cell, coloured by state AND labelled with the state in words and a symbol (colour is never the only
carrier); the commit and time of the last reconcile; a banner while the controller is stalled; images
backing off; the latest audit records. It is a semantic ``<table>`` (caption, scoped headers) that a
screen reader can walk.

The page refreshes itself: about ten lines of inline script fetch the page again every few seconds and
swap the ``<main>`` element (no flicker, the scroll position stays); without JavaScript a
``<meta http-equiv="refresh">`` in ``<noscript>`` reloads it. No framework, no external asset, no font
or CDN: the cluster it runs in has no internet access.

Pure: status in, a string out. Every value that came from outside (image names, tags, error messages,
commit authors) is HTML-escaped here, in one place (``_e``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from html import escape

from reconciler.report.status import Cell, CellState, ControllerStatus, Overall

REFRESH_SECONDS = 5

_STATE_LABEL = {
    CellState.IN_SYNC: ("\u2713", "in sync"),
    CellState.PENDING: ("\u25f7", "pending"),
    CellState.FAILED: ("\u2715", "failed"),
    CellState.CONFLICT: ("\u26a0", "conflict"),
    CellState.REFUSED: ("\u26d4", "refused"),
    CellState.STALLED: ("\u23f8", "stalled"),
}
_OVERALL_LABEL = {
    Overall.STARTING: "Starting",
    Overall.IN_SYNC: "In sync",
    Overall.PROGRESSING: "Progressing",
    Overall.DEGRADED: "Degraded",
    Overall.STALLED: "Stalled",
}

_CSS = """
:root{--bg:#f6f8fa;--panel:#fff;--ink:#1f2328;--muted:#59636e;--line:#d1d9e0;
--ok:#1a7f37;--ok-bg:#dafbe1;--pend:#0550ae;--pend-bg:#ddf4ff;--fail:#b3261e;--fail-bg:#ffebe9;
--conf:#7d4e00;--conf-bg:#fff1c2;--ref:#6e40c9;--ref-bg:#f3e8ff;--stall:#424a53;--stall-bg:#e6e9ed}
@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--panel:#151b23;--ink:#e6edf3;--muted:#9198a1;
--line:#30363d;--ok:#56d364;--ok-bg:#12261e;--pend:#79c0ff;--pend-bg:#0c2d4b;--fail:#ff7b72;
--fail-bg:#3a1518;--conf:#e3b341;--conf-bg:#2e2306;--ref:#d2a8ff;--ref-bg:#2a1a45;--stall:#b1bac4;
--stall-bg:#262c33}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--ink);
font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{max-width:1320px;margin:0 auto;padding:20px 24px 32px}
h1{font-size:22px;margin:0;letter-spacing:-.01em}h2{font-size:15px;margin:0 0 10px}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12.5px}
.top{display:flex;align-items:center;justify-content:space-between;gap:16px;margin-bottom:14px}
.source{margin:2px 0 0;color:var(--muted);word-break:break-all}
.overall{margin:0;padding:6px 14px;border-radius:999px;font-weight:600;font-size:15px;white-space:nowrap}
.panel{background:var(--panel);border:1px solid var(--line);border-radius:10px;padding:14px 16px;
margin-bottom:16px}
.facts dl{display:grid;grid-template-columns:repeat(auto-fit,minmax(200px,1fr));gap:10px 24px;margin:0}
.facts dt{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.facts dd{margin:2px 0 0;font-weight:500}
.banner{border:2px solid var(--stall);background:var(--stall-bg);border-radius:10px;padding:14px 16px;
margin-bottom:16px}
.banner.err{border-color:var(--fail);background:var(--fail-bg)}
.banner h2{font-size:16px}.banner ul{margin:8px 0 0;padding-left:20px}.banner p{margin:0}
.chips{list-style:none;display:flex;flex-wrap:wrap;gap:8px;margin:0 0 12px;padding:0}
.chip{padding:3px 10px;border-radius:999px;font-weight:600;font-size:13px}
.table-wrap{overflow-x:auto;overflow-y:hidden}
table{border-collapse:separate;border-spacing:0;width:100%}
.grid{border-spacing:6px;table-layout:fixed;min-width:720px}
.grid col.image{width:190px}
.grid th,.grid td{padding:8px 10px;text-align:left;vertical-align:top}
.grid thead th{color:var(--muted);font-weight:400;position:sticky;top:0;background:var(--panel)}
.grid thead .env{font-size:14px;font-weight:700;color:var(--ink);text-transform:uppercase;letter-spacing:.04em}
.grid thead .where{display:block;font-size:12px}
.lock{font-size:11px;border:1px solid var(--line);border-radius:4px;padding:0 4px;margin-left:4px}
.grid tbody th{font-weight:600;overflow-wrap:anywhere;padding-left:2px}
.cell{border-left:4px solid transparent;border-radius:6px}
.grid td.absent{border:1px dashed var(--line);border-radius:6px;text-align:center}
.cell .tags{display:flex;flex-wrap:wrap;gap:4px 8px}
.cell .st{display:block;font-size:12px;font-weight:600;margin-top:3px}
.cell .why{display:-webkit-box;-webkit-line-clamp:2;-webkit-box-orient:vertical;overflow:hidden;font-size:12px;
margin-top:2px;color:var(--ink);opacity:.85;overflow-wrap:anywhere}
.cell.busy{animation:pulse 1.6s ease-in-out infinite}
@keyframes pulse{50%{filter:brightness(.93)}}
@media (prefers-reduced-motion:reduce){.cell.busy{animation:none}}
.absent{color:var(--muted)}
.s-in-sync{background:var(--ok-bg);color:var(--ok);border-color:var(--ok)}
.s-pending{background:var(--pend-bg);color:var(--pend);border-color:var(--pend)}
.s-failed{background:var(--fail-bg);color:var(--fail);border-color:var(--fail)}
.s-conflict{background:var(--conf-bg);color:var(--conf);border-color:var(--conf)}
.s-refused{background:var(--ref-bg);color:var(--ref);border-color:var(--ref)}
.s-stalled{background:var(--stall-bg);color:var(--stall);border-color:var(--stall);
background-image:repeating-linear-gradient(135deg,transparent 0 8px,rgba(127,127,127,.12) 8px 16px)}
.o-in-sync{background:var(--ok-bg);color:var(--ok)}.o-progressing,.o-starting{background:var(--pend-bg);color:var(--pend)}
.o-degraded{background:var(--fail-bg);color:var(--fail)}.o-stalled{background:var(--stall-bg);color:var(--stall)}
.cell code{color:var(--ink)}
.cols{display:grid;grid-template-columns:1fr 1fr;gap:16px}
@media (max-width:900px){.cols{grid-template-columns:1fr}}
.kv th,.kv td,.events th,.events td{padding:5px 8px;border-bottom:1px solid var(--line);text-align:left;
vertical-align:top}
.events th{font-size:12px;color:var(--muted);text-transform:uppercase;letter-spacing:.04em}
.events td.r-ok{color:var(--ok);font-weight:600}.events td.r-bad{color:var(--fail);font-weight:600}
.events td.r-pend{color:var(--pend);font-weight:600}
.muted{color:var(--muted)}
footer{color:var(--muted);font-size:12px;margin-top:8px}footer a{color:inherit}
.sr-only{position:absolute;width:1px;height:1px;padding:0;margin:-1px;overflow:hidden;clip:rect(0,0,0,0);border:0}
"""

_SCRIPT = """
(function(){var every=%d*1000;function again(){setTimeout(refresh,every)}
function refresh(){fetch(location.href,{cache:"no-store"}).then(function(r){return r.text()}).then(function(t){
var next=new DOMParser().parseFromString(t,"text/html").getElementById("board");
if(next){document.getElementById("board").replaceWith(next);document.title=next.dataset.title}
}).catch(function(){}).then(again)}again()})();
"""


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _parse(moment: str | None) -> datetime | None:
    if not moment:
        return None
    try:
        return datetime.fromisoformat(moment.replace("Z", "+00:00"))
    except ValueError:
        return None


def _span(seconds: float) -> str:
    seconds = abs(seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 36 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def _when(moment: str | None, now: str) -> str:
    """``<time>`` with a relative text ("12 s ago", "in 4 min") and the exact time as its title."""
    then, current = _parse(moment), _parse(now)
    if then is None or current is None:
        return '<span class="muted">never</span>'
    delta = (current - then).total_seconds()
    text = f"{_span(delta)} ago" if delta >= 0 else f"in {_span(delta)}"
    return f'<time datetime="{_e(moment)}" title="{_e(moment)}">{_e(text)}</time>'


def _short(commit: str | None) -> str:
    if not commit:
        return '<span class="muted">none yet</span>'
    shown = commit if commit.startswith("sha256:") and len(commit) <= 20 else commit[:12]
    dirty = " (dirty)" if commit.endswith("-dirty") else ""
    return f'<code title="{_e(commit)}">{_e(shown)}</code>{dirty}'


def _cell(cell: Cell | None, now: str) -> str:
    if cell is None:
        return '<td class="absent">\u2014<span class="sr-only">not declared</span></td>'
    symbol, label = _STATE_LABEL[cell.state]
    classes = f"cell s-{cell.state.value}" + (" busy" if cell.reconciling else "")
    tags = "".join(f"<code>{_e(tag)}</code>" for tag in cell.versions) or '<span class="muted">no version</span>'
    state = f'<span aria-hidden="true">{symbol}</span> {_e(label)}'
    if cell.reconciling:
        state += " \u00b7 reconciling\u2026"
    if cell.state is CellState.STALLED and cell.last_state is not None:
        state += f" (was {_e(_STATE_LABEL[cell.last_state][1])})"
    parts = [f'<span class="tags">{tags}</span>', f'<span class="st">{state}</span>']
    if cell.error and cell.state is not CellState.IN_SYNC:
        parts.append(f'<span class="why" title="{_e(cell.error)}">{_e(cell.error)}</span>')
    if cell.retry_at:
        parts.append(f'<span class="why">retry {_when(cell.retry_at, now)}</span>')
    return f'<td class="{classes}">{"".join(parts)}</td>'


def _column(status: ControllerStatus, env: str) -> str:
    info = status.environment_info.get(env)
    if info is None:
        return _e(env)
    notes = " + ".join(info.registries)
    if info.upstream:
        notes = f"from {info.upstream} \u00b7 {notes}"
    lock = ' <span class="lock">immutable</span>' if info.immutable_tags else ""
    return f'<span class="env">{_e(env)}</span>{lock}<span class="where">{_e(notes)}</span>'


def _grid(status: ControllerStatus) -> str:
    if not status.rows:
        note = "Waiting for the first desired state." if status.commit is None else "No image is declared."
        return f'<p class="muted">{note}</p>'
    head = "".join(f'<th scope="col">{_column(status, env)}</th>' for env in status.environments)
    body = []
    for row in status.rows:
        cells = "".join(_cell(row.cells.get(env), status.generated) for env in status.environments)
        body.append(f'<tr><th scope="row">{_e(row.image)}</th>{cells}</tr>')
    counts = status.counts()
    chips = "".join(
        f'<li class="chip s-{state.value}"><span aria-hidden="true">{_STATE_LABEL[state][0]}</span> '
        f"{counts[state.value]} {_e(_STATE_LABEL[state][1])}</li>"
        for state in CellState
        if counts[state.value] or state is CellState.IN_SYNC
    )
    caption = "Declared versions of each image in each environment, with their state"
    return (
        f'<ul class="chips" aria-label="Cells by state">{chips}</ul><div class="table-wrap"><table class="grid">'
        f'<caption class="sr-only">{caption}</caption><colgroup><col class="image"></colgroup>'
        f'<thead><tr><th scope="col">Image</th>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'
    )


def _facts(status: ControllerStatus) -> str:
    last = status.last_pass
    if last is not None:
        reconcile = (
            f"{_when(last.time, status.generated)} \u00b7 {_e(last.trigger)} \u00b7 {last.duration_seconds:.2f} s"
        )
    else:
        reconcile = '<span class="muted">not yet</span>'
    author = ""
    if status.commit_author:
        name = status.commit_author.split(" <", 1)[0]
        author = f' <span class="muted" title="{_e(status.commit_author)}">by {_e(name)}</span>'
    facts = [
        ("Commit", f"{_short(status.commit)}{author}"),
        ("Last reconcile", reconcile),
        ("Next resync", _when(status.next_resync, status.generated) if status.next_resync else "\u2014"),
        ("Ready", "yes" if status.ready else "not yet"),
    ]
    if status.shard:
        facts.append(("Shard", _e(status.shard)))
    items = "".join(f"<div><dt>{name}</dt><dd>{value}</dd></div>" for name, value in facts)
    return f'<section class="panel facts" aria-label="Controller"><dl>{items}</dl></section>'


def _banners(status: ControllerStatus) -> str:
    out = []
    if status.stalled is not None:
        stall = status.stalled
        problems = "".join(f"<li><code>{_e(p)}</code></li>" for p in stall.problems[:50])
        more = f"<li>\u2026 and {len(stall.problems) - 50} more</li>" if len(stall.problems) > 50 else ""
        out.append(
            f'<section class="banner" role="alert"><h2><span aria-hidden="true">\u23f8</span> Stalled: '
            f"{_e(stall.reason)}</h2><p>Revision {_short(stall.revision)}, "
            f"seen {_when(stall.since, status.generated)}. "
            "Nothing is reconciled until the desired state changes; the registries keep what the last good "
            f"commit declared.</p><ul>{problems}{more}</ul></section>"
        )
    if status.source_error:
        out.append(
            '<section class="banner err" role="status"><h2>Cannot read the desired state</h2>'
            f"<p>{_e(status.source_error)} (retried every interval; the last good state is kept)</p></section>"
        )
    return "".join(out)


def _last_pass(status: ControllerStatus) -> str:
    last = status.last_pass
    if last is None:
        return '<section class="panel"><h2>Last pass</h2><p class="muted">No pass yet.</p></section>'
    rows = [
        ("When", _when(last.time, status.generated)),
        ("Commit", _short(last.commit)),
        ("Trigger", _e(last.trigger)),
        ("Duration", f"{last.duration_seconds:.2f} s"),
        ("Images", str(last.images)),
        ("Requests", str(last.requests)),
    ]
    counted = ", ".join(f"{_e(kind)} {count}" for kind, count in last.counts.items() if count) or "nothing to do"
    rows.append(("Actions", counted))
    rows.append(("Failures", str(last.failures)))
    if last.error:
        rows.append(("Error", _e(last.error)))
    body = "".join(f'<tr><th scope="row">{name}</th><td>{value}</td></tr>' for name, value in rows)
    return f'<section class="panel"><h2>Last pass</h2><table class="kv"><tbody>{body}</tbody></table></section>'


def _retrying(status: ControllerStatus) -> str:
    if not status.retrying:
        body = '<p class="muted">No image is backing off.</p>'
    else:
        rows = "".join(
            f'<tr><th scope="row">{_e(r.image)}</th><td>{r.attempts}</td><td>{_when(r.retry_at, status.generated)}</td>'
            f"<td>{_e(r.error)}</td></tr>"
            for r in status.retrying[:30]
        )
        body = (
            '<table class="events"><thead><tr><th scope="col">Image</th><th scope="col">Attempts</th>'
            f'<th scope="col">Next try</th><th scope="col">Error</th></tr></thead><tbody>{rows}</tbody></table>'
        )
    return f'<section class="panel"><h2>Backing off</h2>{body}</section>'


def _result_class(result: str) -> str:
    return {"ok": "r-ok", "pending": "r-pend"}.get(result, "r-bad")


def _event_row(record: Mapping[str, object], now: str) -> str:
    result = str(record.get("result", ""))
    where = f"{record.get('registry', '')}/{record.get('repository', '')}:{record.get('tag', '')}"
    commit = record.get("commit")
    error = record.get("error")
    return (
        f"<tr><td>{_when(str(record.get('time') or ''), now)}</td><td>{_e(record.get('action', ''))}</td>"
        f'<td>{_e(record.get("environment", ""))}</td><td class="mono">{_e(where)}</td>'
        f'<td class="{_result_class(result)}">{_e(result)}</td>'
        f"<td>{_short(str(commit)) if commit else ''}</td><td>{_e(error) if error else ''}</td></tr>"
    )


def _events(status: ControllerStatus) -> str:
    if not status.recent:
        body = '<p class="muted">No audit record yet.</p>'
    else:
        rows = "".join(_event_row(record, status.generated) for record in status.recent)
        head = "".join(
            f'<th scope="col">{name}</th>' for name in ("When", "Action", "Env", "Where", "Result", "Commit", "Error")
        )
        body = (
            f'<div class="table-wrap"><table class="events"><thead><tr>{head}</tr></thead>'
            f"<tbody>{rows}</tbody></table></div>"
        )
    title = '<h2 id="events-title">Recent audit events</h2>'
    return f'<section class="panel" aria-labelledby="events-title">{title}{body}</section>'


def render_board(status: ControllerStatus, *, refresh_seconds: int = REFRESH_SECONDS) -> str:
    """The whole page for ``status``."""
    overall = status.overall
    label = _OVERALL_LABEL[overall]
    title = f"reconciler \u00b7 {label}"
    shard = f" \u00b7 shard {_e(status.shard)}" if status.shard else ""
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title>"
        f'<noscript><meta http-equiv="refresh" content="{refresh_seconds * 2}"></noscript>'
        f"<style>{_CSS}</style></head><body>"
        f'<main id="board" data-state="{overall.value}" data-title="{_e(title)}">'
        '<header class="top"><div><h1>reconciler</h1>'
        f'<p class="source">{_e(status.source)}{shard}</p></div>'
        f'<p class="overall o-{overall.value}" role="status">{_e(label)}</p></header>'
        f"{_banners(status)}{_facts(status)}"
        '<section class="panel" aria-labelledby="grid-title"><h2 id="grid-title">Images \u00d7 environments</h2>'
        f"{_grid(status)}</section>"
        f'<div class="cols">{_last_pass(status)}{_retrying(status)}</div>'
        f"{_events(status)}"
        f"<footer>reconciler {_e(status.version)} \u00b7 snapshot {_e(status.generated)} \u00b7 refreshes every "
        f'{refresh_seconds} s \u00b7 <a href="/api/status">/api/status</a> \u00b7 <a href="/metrics">/metrics</a>'
        "</footer></main>"
        f"<script>{_SCRIPT % refresh_seconds}</script></body></html>"
    )
