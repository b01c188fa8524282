"""Benchmark: how long from a change of the desired state to the tag written in the registry.

1. Git (``--repo``, ``--interval 10s``): ``--promotions`` times, one more small image is promoted into
   t by a commit pushed to a bare remote, at a random moment of the interval. Measured: push -> tag
   written. Goal: at most interval + copy time, where the copy time is what the copy itself took (its
   audit intent -> outcome records).
2. Watch (``DIR --watch --interval 60s``): the same promotions as edits of ``environments/t.yaml``.
   Measured: file written -> copy started (the audit intent record) -> tag written (the outcome record,
   appended right after the tag PUT). Goal: <= 1 s.

"Tag written" is read from the audit records' times (the controller's clock, same machine); the
benchmark also polls the registry every 20 ms like a client would (``seen``), which on a loaded machine
adds the poller's own delay.

    python -m bench.controller_latency [--promotions 6] [--interval 10] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from bench.controller_idle import ControllerRun, GitState, start_registries
from bench.harness import compile_package, machine_info, write_results
from testkit.demo import write_chain_state
from testkit.imagegen import image_for
from testkit.imagepush import push_image

ACCEPT = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json"


def _epoch(moment: str) -> float:
    return datetime.fromisoformat(moment.replace("Z", "+00:00")).timestamp()


def _tag_present(url: str, repository: str, tag: str) -> bool:
    return httpx.head(f"{url}/v2/{repository}/manifests/{tag}", headers={"Accept": ACCEPT}).status_code == 200


def _wait_tag(url: str, repository: str, tag: str, timeout: float = 120) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _tag_present(url, repository, tag):
            return time.time()
        time.sleep(0.02)
    raise TimeoutError(f"{repository}:{tag} never appeared")


def _copy_seconds(audit: Path, repository: str, tag: str, timeout: float = 30) -> tuple[float, float]:
    """(intent time, outcome time) of the copy of ``repository:tag`` in the audit log (the tag answers a
    moment before the outcome record is appended: wait for it)."""
    deadline = time.monotonic() + timeout
    while True:
        times: dict[str, float] = {}
        for line in audit.read_text().splitlines():
            record = json.loads(line)
            if record["repository"] == repository and record["tag"] == tag:
                times[record.get("phase", "outcome")] = _epoch(record["time"])
        if "intent" in times and "outcome" in times:
            return times["intent"], times["outcome"]
        if time.monotonic() > deadline:
            raise TimeoutError(f"no complete audit record of {repository}:{tag}")
        time.sleep(0.02)


def run(promotions: int, interval: float) -> dict[str, Any]:
    results: dict[str, Any] = {"machine": machine_info(), "interval_seconds": interval}
    with tempfile.TemporaryDirectory(prefix="bench-latency-") as scratch_dir:
        scratch = Path(scratch_dir)
        registries = start_registries(scratch)
        try:
            urls = {name: registry.url for name, registry in registries.items()}
            versions = [(f"latency/app{n:02d}", "20261201_01") for n in range(2 * promotions + 1)]
            pins = []
            for name, tag in versions:
                image = image_for(name, tag, layer_size=64 * 1024)
                push_image(image, urls["dev"], f"d/{name}", tag)
                pins.append((name, tag, str(image.digest)))

            git = GitState(scratch / "git")
            write_chain_state(git.work, urls, {"d": pins, "t": pins[:1]})
            git.push("start")
            controller = ControllerRun(["--repo", git.url, "--interval", f"{interval}s"], scratch, "git")
            controller.wait_event("reconciled", lambda e: e["failures"] == 0)
            git_rows = []
            for n in range(1, promotions + 1):
                time.sleep(random.uniform(0, interval))  # a random phase of the interval
                write_chain_state(git.work, urls, {"d": pins, "t": pins[: n + 1]})
                pushed = time.time()
                git.push(f"promote {pins[n][0]}")
                written = _wait_tag(urls["test"], f"t/{pins[n][0]}", pins[n][1])
                intent, outcome = _copy_seconds(controller.audit_path, f"t/{pins[n][0]}", pins[n][1])
                git_rows.append(
                    {
                        "latency": outcome - pushed,
                        "seen": written - pushed,
                        "copy": outcome - intent,
                        "wait": intent - pushed,
                    }
                )
            controller.stop()
            results["git"] = git_rows

            root = scratch / "watched"
            write_chain_state(root, urls, {"d": pins, "t": pins[:1]})
            watcher = ControllerRun([str(root), "--watch", "--interval", "60s"], scratch, "watch")
            watcher.wait_event("reconciled", lambda e: e["failures"] == 0)
            time.sleep(1)
            watch_rows = []
            offset = promotions
            for n in range(offset + 1, offset + promotions + 1):
                promoted = [*pins[:1], *pins[offset + 1 : n + 1]]
                edited_at = time.time()
                write_chain_state(root, urls, {"d": pins, "t": promoted})
                written = _wait_tag(urls["test"], f"t/{pins[n][0]}", pins[n][1])
                intent, outcome = _copy_seconds(watcher.audit_path, f"t/{pins[n][0]}", pins[n][1])
                watch_rows.append(
                    {
                        "to_copy_start": intent - edited_at,
                        "latency": outcome - edited_at,
                        "seen": written - edited_at,
                        "copy": outcome - intent,
                    }
                )
                time.sleep(1.5)
            watcher.stop()
            results["watch"] = watch_rows
        finally:
            ControllerRun.stop_all()
            for registry in registries.values():
                registry.stop()
    return results


def _stats(values: list[float]) -> str:
    return f"median {statistics.median(values):.3f} s, max {max(values):.3f} s"


def report(results: dict[str, Any]) -> str:
    interval = results["interval_seconds"]
    git, watch = results["git"], results["watch"]
    machine = results["machine"]
    lines = [
        f"machine: {machine['cpu']}, {machine['nproc']} cores, load {machine['load_average']}, {machine['date']}",
        "",
        "| mode | n | change -> copy starts | copy itself | change -> tag written | a client polling sees it | goal |",
        "| --- | ---: | --- | --- | --- | --- | --- |",
        f"| git, --interval {interval:g}s | {len(git)} | {_stats([r['wait'] for r in git])} | "
        f"{_stats([r['copy'] for r in git])} | {_stats([r['latency'] for r in git])} | "
        f"{_stats([r['seen'] for r in git])} | <= interval + copy |",
        f"| DIR --watch | {len(watch)} | {_stats([r['to_copy_start'] for r in watch])} | "
        f"{_stats([r['copy'] for r in watch])} | {_stats([r['latency'] for r in watch])} | "
        f"{_stats([r['seen'] for r in watch])} | <= 1 s |",
        "",
    ]
    over = [r for r in git if r["latency"] > interval + r["copy"] + 0.5]
    lines.append(f"git promotions over interval + copy (+0.5 s fetch): {len(over)} of {len(git)}")
    lines.append(f"watch edits over 1 s: {sum(r['latency'] > 1.0 for r in watch)} of {len(watch)}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--promotions", type=int, default=6)
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    compile_package()
    results = run(args.promotions, args.interval)
    print(report(results))
    if args.json:
        write_results(args.json, results)


if __name__ == "__main__":
    main()
