"""Benchmark: retention planning over 1,000 / 3,000 / 10,000 version tags (issue "Lifecycle", item 2).

Goal: "Retention planning over 10,000 tags in 100 repositories: linear, requests per tag stated and
minimal."

One real registry (CNCF distribution on loopback) grows through the sizes: 10, then 30, then 100
repositories ``d/app-NNN`` of the source environment d, each with 100 version tags ``YYYYMMDD_NN`` spread
over 200 days (``bench/tagfarm.py``: one config and layer per repository, one distinct small manifest per
tag). The downstream environment t declares the newest version of every app (present in ``t/app-NNN``, so
t is in sync), which therefore protects only that one build per app. Two retention rules for d:

* keep/age: ``{keep: 5, max_age_days: 60}``;
* capacity: ``{keep: 5, max_age_days: 60, max_bytes: X}``, X chosen so that max_bytes retires the oldest
  half of what keep/age spare (beyond keep, younger than 60 days), environment-wide.

Per size, each a whole process measured by ``bench.harness.run_measured`` (wall, user+sys CPU of the
process and its children, peak RSS, requests from the registry's access log, the registry's own CPU):

* reconciler, library: ``take_inventory`` + ``plan_retention`` (what the pass calls), with the split;
* reconciler, CLI: ``reconciler plan DIR -o json`` end to end (retention is on by default), and
  ``--no-retention`` (observing t alone: the part of the plan that is not retention);
* baseline: what a platform team scripts without reconciler: ``skopeo list-tags`` per repository and
  ``skopeo inspect --raw`` per tag, 64 at a time (reconciler's default observe concurrency), then the same
  decision in Python (``bench.tagfarm.decide``; one crawl decides both rules).

Every tool must retire the same tags with the same rule (asserted). Network: 127.0.0.1 only.

    python -m bench.retention_scale [--quick] [--repos 10 30 100] [--tags-per-repo 100]
                                    [--baseline-max-tags N] [--json results.json]

``--quick``: one size, 10 repositories x 20 tags over 100 days (a smoke run, well under a minute).
``--baseline-max-tags N``: run skopeo only up to N tags; larger sizes are extrapolated from the largest
measured one (per tag) and marked as such.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.harness import Measurement, compile_package, machine_info, run_measured, write_results
from bench.imageset import reconciler_command
from bench.tagfarm import Version, base_image, populate, promote_newest, shared_bytes, write_state
from testkit.localregistry import LocalRegistry

PROJECT = Path(__file__).resolve().parents[1]
CONCURRENCY = 64
"""reconciler's default observe/inventory concurrency (``DEFAULT_OBSERVE_CONCURRENCY``): the baseline's width."""
KEEP, MAX_AGE_DAYS, SPAN_DAYS = 5, 60, 200
TIMEOUT = 3600.0

LIBRARY = """
import asyncio, json, sys, time
from datetime import date
from reconciler.engine.inventory import take_inventory
from reconciler.engine.registries import RegistryPool
from reconciler.engine.retention import plan_retention
from reconciler.manifests import load_desired_state

root, today, out = sys.argv[1], date.fromisoformat(sys.argv[2]), sys.argv[3]
marks = [(time.perf_counter(), time.process_time())]
desired = load_desired_state(root)
marks.append((time.perf_counter(), time.process_time()))


async def read():
    pool = RegistryPool(desired.config, root=desired.root)
    try:
        return await take_inventory(desired, pool), pool.request_count()
    finally:
        await pool.aclose()


inventory, http = asyncio.run(read())
marks.append((time.perf_counter(), time.process_time()))
plan = plan_retention(desired, inventory.contents, today=today, blobs=inventory.blobs, archive_store=False)
marks.append((time.perf_counter(), time.process_time()))
(wall0, cpu0), (wall1, cpu1), (wall2, cpu2), (wall3, cpu3) = marks
with open(out, "w") as handle:
    json.dump({
        "load": [wall1 - wall0, cpu1 - cpu0],
        "inventory": [wall2 - wall1, cpu2 - cpu1],
        "plan": [wall3 - wall2, cpu3 - cpu2],
        "calls": inventory.requests,
        "http_requests": http,
        "tags": sum(len(c.tags) for c in inventory.contents),
        "problems": list(inventory.problems),
        "retired": {f"{r.repository}:{r.tag}": r.rule for r in plan.retirements},
    }, handle)
"""


@dataclass
class Row:
    """One measured (or extrapolated) run in the results table."""

    tags: int
    tool: str
    measurement: Measurement | None
    requests: int
    retired: int
    kinds: dict[str, int] = field(default_factory=dict)
    detail: str = ""
    extrapolated: dict[str, float] | None = None
    plan_cpu: float | None = None
    """The library's ``plan_retention`` alone (CPU seconds)."""

    def value(self, name: str) -> float:
        if self.extrapolated is not None:
            return self.extrapolated[name]
        m = self.measurement
        assert m is not None
        return {
            "wall": m.wall_seconds,
            "cpu": m.cpu_seconds,
            "registry_cpu": m.registries_cpu_seconds,
            "rss": m.max_rss_mib,
        }[name]


def _file_name(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", label).strip("-") + ".json"


def _kinds(registry: LocalRegistry, mark: int) -> dict[str, int]:
    counted = Counter(f"{r.method} {r.kind}" for r in registry.requests_since(mark))
    return dict(sorted(counted.items()))


def _measure(
    command: Sequence[str], label: str, registry: LocalRegistry, env: dict[str, str] | None = None
) -> tuple[Measurement, dict[str, int]]:
    mark = registry.mark()
    measured = run_measured(command, label=label, registries=[registry], env=env, timeout=TIMEOUT).check()
    return measured, _kinds(registry, mark)


def measure_library(
    root: Path, today: datetime.date, registry: LocalRegistry, scratch: Path, label: str
) -> tuple[Measurement, dict[str, int], dict[str, Any]]:
    out = scratch / _file_name(label)
    command = [sys.executable, "-c", LIBRARY, str(root), today.isoformat(), str(out)]
    measured, kinds = _measure(command, label, registry)
    return measured, kinds, json.loads(out.read_text())


def measure_cli(
    root: Path, registry: LocalRegistry, scratch: Path, label: str, *extra: str
) -> tuple[Measurement, dict[str, int], dict[str, Any]]:
    out = scratch / _file_name(label)
    plan = [*reconciler_command(), "plan", str(root), "-o", "json", *extra]
    # exec: the shell is replaced by reconciler, only its stdout goes to the file (the plan can be MBs)
    command = ["/bin/sh", "-c", 'out=$1; shift; exec "$@" > "$out"', "sh", str(out), *plan]
    measured, kinds = _measure(command, label, registry)
    return measured, kinds, json.loads(out.read_text())


def cli_retired(document: dict[str, Any]) -> dict[str, str]:
    return {f"{a['repository']}:{a['tag']}": a["rule"] for a in document["actions"] if a["kind"] == "delete"}


def measure_baseline(
    spec: dict[str, Any], registry: LocalRegistry, scratch: Path, label: str
) -> tuple[Measurement, dict[str, int], dict[str, Any]]:
    spec_path, out = scratch / "baseline-spec.json", scratch / _file_name(label)
    spec_path.write_text(json.dumps(spec))
    command = [sys.executable, "-m", "bench.tagfarm", str(spec_path), str(out)]
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    measured, kinds = _measure(command, label, registry, env=env)
    return measured, kinds, json.loads(out.read_text())


def capacity(versions: Sequence[Version], declared: Sequence[Version], today: datetime.date) -> tuple[int, int]:
    """max_bytes for the capacity rule, and how many versions it must retire: the environment's unique
    bytes once keep/age have retired what they retire, less the manifests of half the candidates they spare
    (beyond ``keep`` but younger than ``max_age_days``). Every manifest of the farm has the same size; the
    version t declares (the newest of each app) is protected."""
    if len({v.size for v in versions}) != 1:
        raise RuntimeError("the farm's manifests should all have the same size")
    horizon = today - datetime.timedelta(days=MAX_AGE_DAYS)
    protected = {v.digest for v in declared}
    by_image: dict[str, list[Version]] = {}
    for version in versions:
        by_image.setdefault(version.image, []).append(version)
    used, spared = 0, 0
    for image, mine in by_image.items():
        used += shared_bytes(base_image(int(image.rsplit("-", 1)[1])))
        candidates = sorted((v for v in mine if v.digest not in protected), key=lambda v: v.tag, reverse=True)
        beyond = candidates[KEEP:]
        old = sum(datetime.datetime.strptime(v.tag[:8], "%Y%m%d").date() < horizon for v in beyond)
        used += (len(mine) - old) * versions[0].size
        spared += len(beyond) - old
    return used - spared // 2 * versions[0].size, spared // 2


def agree(what: str, expected: dict[str, str], **others: dict[str, str]) -> None:
    for name, got in others.items():
        if got != expected:
            missing, extra = sorted(set(expected) - set(got)), sorted(set(got) - set(expected))
            relabelled = sorted(k for k in set(expected) & set(got) if expected[k] != got[k])
            raise AssertionError(
                f"{what}: {name} disagrees: {len(missing)} missing (e.g. {missing[:3]}), {len(extra)} extra "
                f"(e.g. {extra[:3]}), {len(relabelled)} with another rule (e.g. {relabelled[:3]})"
            )


def run_size(
    registry: LocalRegistry,
    versions: list[Version],
    declared: list[Version],
    *,
    today: datetime.date,
    scratch: Path,
    run_baseline: bool,
) -> list[Row]:
    tags = len(versions)
    keep_rule = f"{{d: {{keep: {KEEP}, max_age_days: {MAX_AGE_DAYS}}}}}"
    max_bytes, by_bytes = capacity(versions, declared, today)
    bytes_rule = f"{{d: {{keep: {KEEP}, max_age_days: {MAX_AGE_DAYS}, max_bytes: {max_bytes}}}}}"
    keep_root = write_state(scratch / f"state-{tags}-keep", registry.url, declared, keep_rule)
    bytes_root = write_state(scratch / f"state-{tags}-bytes", registry.url, declared, bytes_rule)
    rows: list[Row] = []

    def library(root: Path, label: str) -> dict[str, str]:
        measured, kinds, found = measure_library(root, today, registry, scratch, f"{label} {tags}")
        if found["problems"] or found["tags"] != tags:
            raise RuntimeError(f"{label}: read {found['tags']} of {tags} tags; problems {found['problems']}")
        detail = (
            f"load {found['load'][0]:.2f} s; take_inventory {found['inventory'][0]:.2f} s wall "
            f"({found['inventory'][1]:.2f} CPU-s, {found['calls']} calls, {found['http_requests']} HTTP); "
            f"plan_retention {found['plan'][0]:.2f} s wall ({found['plan'][1]:.2f} CPU-s)"
        )
        row = Row(tags, label, measured, measured.total_requests, len(found["retired"]), kinds, detail)
        row.plan_cpu = found["plan"][1]
        rows.append(row)
        return dict(found["retired"])

    def cli(root: Path, label: str, *extra: str) -> dict[str, str]:
        measured, kinds, document = measure_cli(root, registry, scratch, f"{label} {tags}", *extra)
        retired = cli_retired(document)
        life = document.get("lifecycle") or {}
        detail = (
            f"observe {document['timings']['observe_seconds']:.2f} s ({document['requests']['observe']} requests), "
            f"retention planning {document['timings']['plan_seconds']:.2f} s ({life.get('requests', 0)} requests)"
        )
        if life.get("problems"):
            raise RuntimeError(f"{label}: problems {life['problems']}")
        rows.append(Row(tags, label, measured, measured.total_requests, len(retired), kinds, detail))
        return retired

    lib_keep = library(keep_root, "reconciler library, keep/age")
    cli_keep = cli(keep_root, "reconciler plan, keep/age")
    cli(keep_root, "reconciler plan --no-retention", "--no-retention")
    lib_bytes = library(bytes_root, "reconciler library, max_bytes")
    cli_bytes = cli(bytes_root, "reconciler plan, max_bytes")
    agree(f"keep/age at {tags}", lib_keep, cli=cli_keep)
    agree(f"max_bytes at {tags}", lib_bytes, cli=cli_bytes)
    if sum(rule.startswith("max_bytes") for rule in lib_bytes.values()) != by_bytes:
        raise AssertionError(f"max_bytes at {tags}: expected {by_bytes} retired by max_bytes")
    if run_baseline:
        spec = {
            "host": registry.host,
            "prefix": "d",
            "repositories": sorted({v.repository for v in versions}),
            "declared": {v.image: [v.tag, v.digest] for v in declared},
            "today": today.isoformat(),
            "workers": CONCURRENCY,
            "variants": [
                {"keep": KEEP, "max_age_days": MAX_AGE_DAYS, "max_bytes": None},
                {"keep": KEEP, "max_age_days": MAX_AGE_DAYS, "max_bytes": max_bytes},
            ],
        }
        measured, kinds, found = measure_baseline(spec, registry, scratch, f"baseline {tags}")
        base_keep, base_bytes = found["retired"]
        agree(f"keep/age at {tags}", lib_keep, baseline=base_keep)
        agree(f"max_bytes at {tags}", lib_bytes, baseline=base_bytes)
        detail = (
            f"skopeo crawl {found['crawl_seconds']:.2f} s; both decisions in Python {found['decide_seconds']:.3f} s; "
            f"max_bytes variant retires {len(base_bytes)} (agrees with reconciler)"
        )
        rows.append(
            Row(tags, "baseline: skopeo x64 + Python, keep/age", measured, measured.total_requests, len(base_keep),
                kinds, detail)
        )  # fmt: skip
    return rows


def extrapolate(rows: list[Row], sizes: Sequence[int]) -> None:
    """Baseline rows for sizes it did not run at: per-tag figures of the largest measured size, scaled."""
    measured = [r for r in rows if r.tool.startswith("baseline") and r.measurement is not None]
    if not measured:
        return
    ref = max(measured, key=lambda r: r.tags)
    for size in sizes:
        if any(r.tool.startswith("baseline") and r.tags == size for r in rows):
            continue
        scale = size / ref.tags
        retired = next(r.retired for r in rows if r.tags == size and r.tool == "reconciler library, keep/age")
        rows.append(
            Row(
                size,
                ref.tool + " (EXTRAPOLATED)",
                None,
                round(ref.requests * scale),
                retired,
                detail=f"not run: {ref.tags}-tag figures x {scale:.2f} (peak RSS as measured)",
                extrapolated={
                    "wall": ref.value("wall") * scale,
                    "cpu": ref.value("cpu") * scale,
                    "registry_cpu": ref.value("registry_cpu") * scale,
                    "rss": ref.value("rss"),
                },
            )
        )


def table(rows: Sequence[Row]) -> str:
    lines = [
        "| tags | tool | wall s | CPU s | registry CPU s | peak RSS MiB | requests | requests/tag | wall ms/tag "
        "| retired |",
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in sorted(rows, key=lambda r: (r.tags, _order(r.tool))):
        lines.append(
            f"| {r.tags:,} | {r.tool} | {r.value('wall'):.2f} | {r.value('cpu'):.2f} | {r.value('registry_cpu'):.2f} "
            f"| {r.value('rss'):.1f} | {r.requests:,} | {r.requests / r.tags:.3f} "
            f"| {1000 * r.value('wall') / r.tags:.2f} | {r.retired:,} |"
        )
    return "\n".join(lines)


def _order(tool: str) -> int:
    names = ["reconciler library, keep/age", "reconciler plan, keep/age", "reconciler plan --no-retention",
             "baseline", "reconciler library, max_bytes", "reconciler plan, max_bytes"]  # fmt: skip
    return next((i for i, name in enumerate(names) if tool.startswith(name)), len(names))


def linearity(rows: Sequence[Row]) -> list[str]:
    """Per tool: wall and CPU per tag at the largest size over the smallest (1.0 = perfectly linear)."""
    lines = []
    for tool in sorted({r.tool.removesuffix(" (EXTRAPOLATED)") for r in rows}, key=_order):
        mine = sorted((r for r in rows if r.tool == tool), key=lambda r: r.tags)
        if len(mine) < 2:
            continue
        small, large = mine[0], mine[-1]
        per = ", ".join(f"{r.tags:,}: {1000 * r.value('wall') / r.tags:.2f} ms" for r in mine)
        wall = (large.value("wall") / large.tags) / (small.value("wall") / small.tags)
        cpu = (large.value("cpu") / large.tags) / (small.value("cpu") / small.tags)
        lines.append(f"{tool}: wall per tag {per}; {large.tags:,} vs {small.tags:,}: wall/tag x{wall:.2f}, "
                     f"CPU/tag x{cpu:.2f}")  # fmt: skip
        plan_cpu = [r.plan_cpu for r in mine if r.plan_cpu is not None]
        if len(plan_cpu) == len(mine):
            ratio = (plan_cpu[-1] / large.tags) / (plan_cpu[0] / small.tags)
            per_tag = ", ".join(f"{r.tags:,}: {1000 * p / r.tags:.3f} ms" for r, p in zip(mine, plan_cpu, strict=True))
            lines.append(f"  plan_retention alone, CPU per tag {per_tag}; x{ratio:.2f}")
    return lines


def machine() -> dict[str, str]:
    info = machine_info()
    info["date -u"] = subprocess.run(["date", "-u"], capture_output=True, text=True, check=False).stdout.strip()
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    info["lscpu model name"] = next(
        (line.split(":", 1)[1].strip() for line in lscpu.splitlines() if line.startswith("Model name")), "unknown"
    )
    info["uname -r"] = platform.release()
    return info


def run(
    repos: Sequence[int], per_repo: int, span_days: int, *, baseline_max_tags: int | None, json_path: Path | None
) -> int:
    today = datetime.datetime.now(datetime.UTC).date()
    before = machine()
    rows: list[Row] = []
    populating: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-retention-") as scratch_dir:
        scratch = Path(scratch_dir)
        with LocalRegistry(name="bench", storage_dir=scratch / "registry") as registry:
            versions: list[Version] = []
            declared: list[Version] = []
            have = 0
            for count in sorted(repos):
                started = time.monotonic()
                new = populate(registry.url, "d", range(have, count), per_repo, today=today, span_days=span_days)
                declared += promote_newest(registry.url, new, "t")
                versions += new
                have = count
                populating.append(f"{len(versions):,} tags: pushed {len(new):,} in {time.monotonic() - started:.1f} s")
                print(populating[-1], file=sys.stderr, flush=True)
                run_baseline = baseline_max_tags is None or len(versions) <= baseline_max_tags
                rows += run_size(registry, versions, declared, today=today, scratch=scratch, run_baseline=run_baseline)
                print(table([r for r in rows if r.tags == len(versions)]), file=sys.stderr, flush=True)
    if datetime.datetime.now(datetime.UTC).date() != today:
        print("warning: the UTC date changed during the run (the CLI plans with its own today)", file=sys.stderr)
    extrapolate(rows, sorted({r.tags for r in rows}))
    after = machine_info()
    print(f"# Retention planning, {before['date -u']}")
    print(
        f"machine: nproc {before['nproc']}, {before['lscpu model name']}, kernel {before['uname -r']}, "
        f"Python {before['python']}; load average before {before['load_average']}, after {after['load_average']}"
    )
    print(f"registry: {before['docker-registry']}; {before['skopeo']}; network 127.0.0.1 only")
    print(
        f"rules: keep/age = d {{keep: {KEEP}, max_age_days: {MAX_AGE_DAYS}}}; max_bytes = the same plus max_bytes "
        "set to retire the oldest half of what keep/age spare; t declares the newest version of each app"
    )
    print()
    print(table(rows))
    print()
    print("Linearity:")
    for line in linearity(rows):
        print(line)
    print()
    print("Details:")
    for r in sorted(rows, key=lambda r: (r.tags, _order(r.tool))):
        kinds = ", ".join(f"{k} {v}" for k, v in r.kinds.items())
        print(f"- {r.tags:,} {r.tool}: {r.detail}" + (f"; requests: {kinds}" if kinds else ""))
    for line in populating:
        print(f"- populate: {line}")
    print("All tools retired the same tags with the same rules (asserted).")
    if json_path is not None:
        write_results(
            json_path,
            {
                "machine": before,
                "rows": [
                    {
                        "tags": r.tags,
                        "tool": r.tool,
                        "measurement": r.measurement.to_json() if r.measurement else None,
                        "extrapolated": r.extrapolated,
                        "requests": r.requests,
                        "retired": r.retired,
                        "kinds": r.kinds,
                        "detail": r.detail,
                    }
                    for r in rows
                ],
            },
        )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one size: 10 repositories x 20 tags")
    parser.add_argument("--repos", type=int, nargs="+", default=[10, 30, 100])
    parser.add_argument("--tags-per-repo", type=int, default=100)
    parser.add_argument("--baseline-max-tags", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    # --quick: 20 tags over 100 days, so that some versions beyond keep are young enough for max_bytes
    repos, per_repo, span = ([10], 20, 100) if args.quick else (args.repos, args.tags_per_repo, SPAN_DAYS)
    compile_package()
    return run(repos, per_repo, span, baseline_max_tags=args.baseline_max_tags, json_path=args.json)


if __name__ == "__main__":
    sys.exit(main())
