"""Benchmark: what an idle controller costs, with 1,000 declared versions in sync.

200 images (``bench.imageset``: 20 repositories x 10 tags, a quarter of them two-platform indexes) pinned
in all five environments of the example chain (d, t, s1, s2, p): 1,000 declared versions, 800 of them
reconciled (t, s1, s2, p) on 1,000 registry tags (p lives on prod-a and prod-b). The desired state is a
commit of a bare Git remote (``--repo file://...``), as in the deployment. The controller converges it
once, then is measured while nothing changes:

1. ``--interval 1s --resync 1h`` for ``--window`` seconds: CPU of the controller process (user + system,
   its git children included: ``/proc/<pid>/stat`` fields 14-17), requests to every registry (must be 0),
   RSS sampled every second (steady: must stay flat and under 100 MiB). One interval is one ``git fetch``
   of the remote and a comparison of commit SHAs. The CPU per cycle measured here gives what a 30 s
   interval costs: (baseline per second * 30 + per-cycle cost) / 30.
2. ``--interval 30s`` measured directly over the same window (the real default cadence of a deployment
   is 60 s; 30 s is the goal's).
3. ``--resync 20s``: the cost of one resync (1,000 HEAD requests, CPU) for comparison.

    python -m bench.controller_idle [--window 60] [--json results.json]

Also importable: ``ControllerRun`` (a controller subprocess and its JSON event log) and ``GitState`` (a
bare remote to push desired states to), used by ``bench.controller_latency``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.harness import compile_package, fresh_registry, machine_info, write_results
from bench.imageset import seed_images
from testkit.demo import CHAIN_REGISTRIES, write_chain_state
from testkit.localregistry import LocalRegistry

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
GOAL_CPU_PERCENT = 1.0
GOAL_RSS_MIB = 100.0


class ControllerRun:
    """``reconciler controller ... --listen 127.0.0.1:0 --log-format json`` as a subprocess. Every one
    started is in ``ControllerRun.started``: ``stop_all()`` in a ``finally`` leaves none behind."""

    started: list[ControllerRun] = []  # noqa: RUF012  (the class-wide registry of running controllers)

    def __init__(self, args: list[str], scratch: Path, name: str) -> None:
        self.log_path = scratch / f"{name}.log"
        self.audit_path = scratch / f"{name}-audit.jsonl"
        env = {**os.environ, "RECONCILER_STATE_DIR": str(scratch / f"{name}-state")}
        env["RECONCILER_CACHE_DIR"] = str(scratch / f"{name}-cache")
        env.pop("RECONCILER_LOG_FORMAT", None)
        command = [sys.executable, "-c", "from reconciler.cli import main; main()", "controller", *args]
        command += ["--listen", "127.0.0.1:0", "--log-format", "json", "--audit-log", str(self.audit_path)]
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        self.pid = self.process.pid
        ControllerRun.started.append(self)

    @classmethod
    def stop_all(cls) -> None:
        for run in cls.started:
            if run.process.poll() is None:
                run.stop()
        cls.started.clear()

    def events(self, name: str) -> list[dict[str, Any]]:
        found = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event.get("event") == name:
                found.append(event)
        return found

    def wait_event(
        self, name: str, where: Callable[[dict[str, Any]], bool] = lambda e: True, timeout: float = 900
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"controller exited {self.process.returncode}: {self.log_path.read_text()[-3000:]}")
            for event in self.events(name):
                if where(event):
                    return event
            time.sleep(0.05)
        raise TimeoutError(f"no {name} event after {timeout}s")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.wait_event('started')['port']}"

    def cpu_seconds(self) -> float:
        """User + system CPU of the process and of its children it waited for (git)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()
        utime, stime, cutime, cstime = (int(value) for value in fields[11:15])
        return (utime + stime + cutime + cstime) / CLOCK_TICKS

    def rss_mib(self, field: str = "VmRSS") -> float:
        """Resident memory now (``VmHWM``: the peak so far), MiB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


class GitState:
    """A bare Git remote (``url``) and the work tree that commits and pushes desired states to it."""

    def __init__(self, directory: Path) -> None:
        self.bare, self.work = directory / "origin.git", directory / "work"
        self.url = f"file://{self.bare}"
        subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(self.bare)], check=True)
        self.work.mkdir(parents=True)
        self.git("init", "-q", "-b", "main")
        self.git("remote", "add", "origin", str(self.bare))

    def git(self, *args: str) -> str:
        identity = ["-c", "user.name=Bench", "-c", "user.email=bench@example.com", "-c", "commit.gpgsign=false"]
        done = subprocess.run(["git", *identity, *args], cwd=self.work, check=True, capture_output=True, text=True)
        return done.stdout.strip()

    def push(self, message: str) -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        self.git("push", "-q", "origin", "main")
        return self.git("rev-parse", "HEAD")


def start_registries(scratch: Path) -> dict[str, LocalRegistry]:
    return {name: fresh_registry(scratch, name) for name in CHAIN_REGISTRIES}


def measure_window(run: ControllerRun, registries: dict[str, LocalRegistry], seconds: float) -> dict[str, Any]:
    """CPU, RSS samples and registry requests of ``run`` over ``seconds`` of idleness."""
    marks = {name: registry.mark() for name, registry in registries.items()}
    passes = len(run.events("reconciled"))
    cpu_before, started = run.cpu_seconds(), time.monotonic()
    rss = []
    while time.monotonic() - started < seconds:
        rss.append(run.rss_mib())
        time.sleep(1.0)
    cpu, wall = run.cpu_seconds() - cpu_before, time.monotonic() - started
    half = len(rss) // 2
    return {
        "wall_seconds": round(wall, 2),
        "cpu_seconds": round(cpu, 3),
        "cpu_percent": round(100 * cpu / wall, 3),
        "requests": {name: len(registry.requests_since(marks[name])) for name, registry in registries.items()},
        "passes": len(run.events("reconciled")) - passes,
        "rss_mib_min": round(min(rss), 1),
        "rss_mib_max": round(max(rss), 1),
        "rss_mib_first_half_max": round(max(rss[:half] or rss), 1),
        "rss_mib_second_half_max": round(max(rss[half:] or rss), 1),
    }


def converged(run: ControllerRun) -> dict[str, Any]:
    return run.wait_event("reconciled", lambda e: e["failures"] == 0)


def run(window: float) -> dict[str, Any]:
    results: dict[str, Any] = {"machine": machine_info(), "window_seconds": window}
    with tempfile.TemporaryDirectory(prefix="bench-controller-") as scratch_dir:
        scratch = Path(scratch_dir)
        registries = start_registries(scratch)
        try:
            urls = {name: registry.url for name, registry in registries.items()}
            pins = [(image.name, image.tag, image.digest) for image in seed_images(urls["dev"], "d")]
            git = GitState(scratch / "git")
            write_chain_state(git.work, urls, {env: pins for env in ("d", "t", "s1", "s2", "p")})
            git.push("1,000 declared versions")
            results["declared_versions"] = 5 * len(pins)

            started = time.monotonic()
            first = ControllerRun(["--repo", git.url, "--interval", "1s", "--resync", "1h"], scratch, "idle-1s")
            converge = converged(first)
            results["first_pass"] = {
                "wall_seconds": round(time.monotonic() - started, 1),
                "pass_seconds": converge["seconds"],
                "requests": converge["requests"],
                "actions": converge["actions"],
                "peak_rss_mib": round(first.rss_mib("VmHWM"), 1),
            }
            time.sleep(3)
            results["interval_1s"] = measure_window(first, registries, window)
            assert first.stop() == 0

            second = ControllerRun(["--repo", git.url, "--interval", "30s", "--resync", "1h"], scratch, "idle-30s")
            in_sync = converged(second)
            results["startup_in_sync_pass"] = {"pass_seconds": in_sync["seconds"], "requests": in_sync["requests"]}
            time.sleep(3)
            results["interval_30s"] = measure_window(second, registries, max(window, 90))
            assert second.stop() == 0

            third = ControllerRun(["--repo", git.url, "--interval", "30s", "--resync", "20s"], scratch, "resync")
            converged(third)
            time.sleep(1)
            window_resync = measure_window(third, registries, 61)
            resyncs = [e for e in third.events("reconciled") if e["trigger"] == "resync"]
            window_resync["resync_pass_seconds"] = [e["seconds"] for e in resyncs]
            window_resync["resync_requests"] = [e["requests"] for e in resyncs]
            results["resync_20s"] = window_resync
            assert third.stop() == 0
        finally:
            ControllerRun.stop_all()
            for registry in registries.values():
                registry.stop()
    # c(interval) = baseline + cycle / interval, in CPU-s per second; two intervals give both terms.
    c1 = results["interval_1s"]["cpu_seconds"] / results["interval_1s"]["wall_seconds"]
    c30 = results["interval_30s"]["cpu_seconds"] / results["interval_30s"]["wall_seconds"]
    cycle = max(0.0, (c1 - c30) * 30 / 29)
    baseline = max(0.0, c30 - cycle / 30)
    results["cycle_cpu_ms"] = round(1000 * cycle, 2)
    results["baseline_cpu_ms_per_second"] = round(1000 * baseline, 3)
    results["scaled_to_30s_percent"] = round(100 * (baseline + cycle / 30), 3)
    return results


def report(results: dict[str, Any]) -> str:
    one, thirty, resync = results["interval_1s"], results["interval_30s"], results["resync_20s"]
    lines = [
        f"machine: {results['machine']['cpu']}, {results['machine']['nproc']} cores, "
        f"load {results['machine']['load_average']}, {results['machine']['date']}",
        f"declared versions: {results['declared_versions']}; first pass: {results['first_pass']}",
        "",
        "| run | window s | controller CPU s | CPU % of one core | registry requests | passes | RSS MiB min-max |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, row in (("--interval 1s", one), ("--interval 30s", thirty), ("--resync 20s", resync)):
        lines.append(
            f"| {label} | {row['wall_seconds']} | {row['cpu_seconds']} | {row['cpu_percent']} | "
            f"{sum(row['requests'].values())} | {row['passes']} | {row['rss_mib_min']}-{row['rss_mib_max']} |"
        )
    lines += [
        "",
        f"30 s interval, measured: {thirty['cpu_percent']:.3f}% of one core (goal <= {GOAL_CPU_PERCENT}%); "
        f"model from both runs: {results['cycle_cpu_ms']} ms CPU per fetch cycle + "
        f"{results['baseline_cpu_ms_per_second']} ms/s baseline = {results['scaled_to_30s_percent']:.3f}% at 30 s",
        f"requests between resyncs: {sum(one['requests'].values()) + sum(thirty['requests'].values())} (goal 0)",
        f"steady RSS over {one['passes'] + int(one['wall_seconds'])} cycles: {one['rss_mib_first_half_max']} MiB "
        f"(first half) -> {one['rss_mib_second_half_max']} MiB (second half), goal <= {GOAL_RSS_MIB} MiB",
        f"one resync of {results['declared_versions']} versions: {resync['resync_requests']} requests, "
        f"{resync['resync_pass_seconds']} s",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--window", type=float, default=60.0, help="Seconds measured per idle run.")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if shutil.which("git") is None:
        sys.exit("git is needed (apt-get install git)")
    compile_package()
    results = run(args.window)
    print(report(results))
    if args.json:
        write_results(args.json, results)


if __name__ == "__main__":
    main()
