"""Benchmark: ``promote`` (edit + commit) and ``diff`` between two commits at 1,000 / 5,000 / 10,000 pinned
versions, and ``history`` of one image over 1,000 commits.

Offline: no registry is contacted (the promotion is s1 -> s2, both declared in files; diff without --plan).
For each size N the desired state pins N versions in all: 100 images, 40% of the versions in t, 35% in
s1 and 25% in s2 (the newest versions of t went on to s1, fewer to s2), d pinning none (CI's builds are in
its registry); ``promote appNNN --to s2`` adds one version, then ``diff --base main --head <branch>``
compares the two commits. ``history`` runs on a repository where one image went through 1,000 commits
(a version added to t at each). Each measurement is a whole process (``reconciler`` as a user runs it).

Goals (issue #10): promote and diff linear and under 2 s and 150 MiB at 10,000; history over 1,000
commits under 2 s.

    python -m bench.promotion_scale [--sizes 1000 5000 10000] [--commits 1000] [--json results.json]
"""

from __future__ import annotations

import argparse
import datetime
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.harness import Measurement, compile_package, machine_info, markdown_table, run_measured, write_results
from bench.imageset import reconciler_command
from testkit.demo import CHAIN_REGISTRIES, write_chain_state

IMAGES = 100


def _digest(n: int) -> str:
    return f"sha256:{n:064x}"


def _tags(count: int) -> list[str]:
    first = datetime.date(2026, 1, 1)
    return [f"{first + datetime.timedelta(days=k // 99):%Y%m%d}_{k % 99 + 1:02d}" for k in range(count)]


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def _repository(root: Path, pins: dict[str, list[tuple[str, str, str]]]) -> Path:
    urls = dict.fromkeys(CHAIN_REGISTRIES, "http://127.0.0.1:9")
    write_chain_state(root, urls, pins)
    _git(root, "init", "-q", "-b", "main")
    _git(root, "config", "user.name", "Bench")
    _git(root, "config", "user.email", "bench@example.com")
    _git(root, "config", "commit.gpgsign", "false")
    _git(root, "add", ".")
    _git(root, "commit", "-qm", "desired state")
    return root


def measure_promote_and_diff(scratch: Path, size: int) -> list[Measurement]:
    per = size * 40 // 100 // IMAGES
    tags = _tags(per)
    t = [(f"app{i:03d}", tag, _digest(i * per + k)) for i in range(IMAGES) for k, tag in enumerate(tags)]
    s1 = [pin for pin in t if tags.index(pin[1]) < per * 35 // 40]
    s2 = [pin for pin in t if tags.index(pin[1]) < per * 25 // 40]
    tags = tags[: per * 35 // 40]
    root = _repository(scratch / f"state-{size}", {"d": [], "t": t, "s1": s1, "s2": s2})
    promote = run_measured(
        [*reconciler_command(), "promote", "app000", str(root), "--to", "s2"], label=f"promote, {size} versions"
    )
    branch = f"promote/s2/app000/{tags[-1]}"  # the newest version s1 holds and s2 lacks
    diff = run_measured(
        [*reconciler_command(), "diff", str(root), "--base", "main", "--head", branch],
        label=f"diff, {size} versions",
    )
    return [promote, diff]


def measure_history(scratch: Path, commits: int, *, growing: bool) -> Measurement:
    """``history app000`` over ``commits`` commits, each promoting a new version of app000 to t. Usual
    shape: t pins 100 images, 3 versions each, and a promotion keeps 2 previous (the file stays the same
    size). Worst case (``growing``): t pins only app000 and never drops a version (1,000 versions at the end)."""
    root = _repository(scratch / f"history-{'growing' if growing else 'usual'}", {})
    environment = root / "environments" / "t.yaml"
    tags = _tags(commits + 3)
    others = [
        f"  app{i:03d}:\n" + "".join(f'    - {{tag: "{tags[k]}", digest: "{_digest(i * 10 + k)}"}}\n' for k in range(3))
        for i in range(1, IMAGES)
    ]
    kept: list[str] = []
    for k, tag in enumerate(tags[:commits]):
        kept.append(f'    - {{tag: "{tag}", digest: "{_digest(10**6 + k)}"}}\n')
        if not growing:
            kept = kept[-3:]
        body = "  app000:\n" + "".join(kept) + ("" if growing else "".join(others))
        environment.write_text(f"environment: t\nimages:\n{body}")
        _git(root, "commit", "-qam", f"promote app000 {tag} to t")
    label = f"history, {commits} commits, {'growing file (worst case)' if growing else '100 images x 3'}"
    return run_measured(
        [*reconciler_command(), "history", "app000", str(root), "--audit-log", str(scratch / "none.jsonl")],
        label=label,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 10000])
    parser.add_argument("--commits", type=int, default=1000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    compile_package()
    results: list[Measurement] = []
    with tempfile.TemporaryDirectory(prefix="bench-promotion-") as scratch:
        for size in args.sizes:
            results += measure_promote_and_diff(Path(scratch), size)
        results.append(measure_history(Path(scratch), args.commits, growing=False))
        results.append(measure_history(Path(scratch), args.commits, growing=True))
    failed = [m for m in results if m.returncode != 0 and not m.label.startswith("diff")]
    print(markdown_table(results))
    for m in results:
        print(
            f"{m.label}: exit {m.returncode}"
            + (f"; {m.stderr_tail.strip()[-300:]}" if m.returncode not in (0, 4) else "")
        )
    if args.json:
        write_results(args.json, {"machine": machine_info(), "results": [m.to_json() for m in results]})
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
