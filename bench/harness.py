"""Benchmark harness: run a command as a child process and measure it; count the requests it caused.

Shared by every benchmark (``bench/copy_*.py`` here, ``bench/reconcile_*.py`` for the reconcile loop):

* :func:`run_measured` runs one command and returns a :class:`Measurement`: wall time, user and system
  CPU time and peak RSS of the child (``os.wait4``'s rusage: the child and the descendants it waited
  for; the child is started with ``posix_spawn`` so its peak RSS is never a fork-time copy of the
  harness), its exit status and output tails. The child's stdout/stderr go to temporary files, so a chatty
  child never blocks on a full pipe and never skews the timing.
* ``registries=`` takes ``LocalRegistry`` objects: the harness marks their access logs before the run
  and counts the requests each answered during it (``Measurement.requests``), and the CPU each registry
  process used meanwhile (``Measurement.registry_cpu``): the other half of what a run costs.
* :func:`machine_info` describes the machine (``nproc``, ``free -h``, CPU model, Python and skopeo
  versions) for the results page; :func:`markdown_table` renders measurements side by side.

Benchmarks are not timed tests: nothing here asserts a goal. Numbers are recorded in
``docs/benchmarks.md`` with the analysis of what limits them.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from testkit.localregistry import LocalRegistry

TAIL_CHARS = 2000


class CountsRequests(Protocol):
    """What the harness needs of a registry: ``testkit.localregistry.LocalRegistry`` fits."""

    name: str

    def mark(self) -> int: ...

    def requests_since(self, mark: int) -> Sequence[Any]: ...

    def cpu_seconds(self) -> float: ...


@dataclass
class Measurement:
    label: str
    command: list[str]
    wall_seconds: float
    user_seconds: float
    system_seconds: float
    max_rss_mib: float
    returncode: int
    requests: dict[str, int] = field(default_factory=dict)
    """Requests answered by each registry during the run (registry name -> count)."""
    registry_cpu: dict[str, float] = field(default_factory=dict)
    """CPU seconds each registry process used during the run (registry name -> seconds)."""
    stdout_tail: str = ""
    stderr_tail: str = ""

    @property
    def cpu_seconds(self) -> float:
        return self.user_seconds + self.system_seconds

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())

    @property
    def registries_cpu_seconds(self) -> float:
        return sum(self.registry_cpu.values())

    def check(self) -> Measurement:
        """Raise when the command failed: a benchmark of a failing command measures nothing."""
        if self.returncode != 0:
            raise RuntimeError(f"{self.label}: {' '.join(self.command)} exited {self.returncode}\n{self.stderr_tail}")
        return self

    def to_json(self) -> dict[str, Any]:
        document = asdict(self)
        document["cpu_seconds"] = self.cpu_seconds
        document["total_requests"] = self.total_requests
        document["registries_cpu_seconds"] = self.registries_cpu_seconds
        return document


_LAUNCHER = """
import json, os, sys, time
started = time.perf_counter()
pid = os.posix_spawnp(sys.argv[2], sys.argv[2:], os.environ)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - started
with open(sys.argv[1], "w") as report:
    json.dump({"status": status, "utime": usage.ru_utime, "stime": usage.ru_stime,
               "maxrss": usage.ru_maxrss, "wall": wall}, report)
"""


@dataclass(frozen=True)
class _Usage:
    ru_utime: float
    ru_stime: float
    ru_maxrss: int


def fresh_registry(scratch: Path, name: str) -> LocalRegistry:
    """A started registry with its own empty storage under ``scratch`` (a benchmark's target or source)."""
    from testkit.localregistry import LocalRegistry

    return LocalRegistry(name=name, storage_dir=Path(tempfile.mkdtemp(prefix=f"{name}-", dir=scratch))).start()


def compile_package() -> None:
    """Write reconciler's bytecode before measuring, as a regular install does: with
    ``PYTHONDONTWRITEBYTECODE`` set (CI images, this machine) an editable install would otherwise compile
    every module from source in every measured process (~60 ms of start-up that no user pays)."""
    import compileall

    import reconciler

    compileall.compile_dir(str(Path(reconciler.__file__).parent), quiet=1)


def _wait_with_deadline(pid: int, timeout: float) -> None:
    deadline = time.perf_counter() + timeout
    while os.waitpid(pid, os.WNOHANG)[0] == 0:
        if time.perf_counter() > deadline:
            raise TimeoutError
        time.sleep(0.01)


def _tail(path: Path) -> str:
    with path.open("rb") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(max(0, size - TAIL_CHARS))
        return handle.read().decode(errors="replace")


def run_measured(
    command: Sequence[str],
    *,
    label: str | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    timeout: float | None = None,
    registries: Sequence[CountsRequests] = (),
) -> Measurement:
    """Run ``command`` to completion and measure it (see the module docstring)."""
    marks = [(registry, registry.mark(), registry.cpu_seconds()) for registry in registries]
    with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
        out_path, err_path = Path(scratch) / "stdout", Path(scratch) / "stderr"
        argv = list(command)
        if cwd is not None:
            argv = ["/bin/sh", "-c", 'cd "$0" && exec "$@"', str(cwd), *argv]
        report_path = Path(scratch) / "rusage.json"
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        # A small launcher process starts the command and reports its rusage: a child started directly
        # from this (large) process would record our RSS as its peak (Linux accounts the memory of the
        # process image an exec replaces, which after fork or vfork is ours).
        launcher = os.posix_spawn(
            sys.executable,
            [sys.executable, "-S", "-c", _LAUNCHER, str(report_path), *argv],
            dict(env) if env is not None else dict(os.environ),
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_OPEN, 1, str(out_path), flags, 0o600),
                (os.POSIX_SPAWN_OPEN, 2, str(err_path), flags, 0o600),
            ],
            setsid=True,
        )
        try:
            os.waitpid(launcher, 0) if timeout is None else _wait_with_deadline(launcher, timeout)
        except TimeoutError:
            os.killpg(launcher, signal.SIGKILL)
            os.waitpid(launcher, 0)
        try:
            report = json.loads(report_path.read_text())
        except (OSError, ValueError):
            report = {"status": 9, "utime": 0.0, "stime": 0.0, "maxrss": 0, "wall": float(timeout or 0.0)}
        returncode = os.waitstatus_to_exitcode(report["status"])
        wall = report["wall"]
        usage = _Usage(report["utime"], report["stime"], report["maxrss"])
        measurement = Measurement(
            label=label or Path(command[0]).name,
            command=list(command),
            wall_seconds=wall,
            user_seconds=usage.ru_utime,
            system_seconds=usage.ru_stime,
            max_rss_mib=usage.ru_maxrss / 1024,  # ru_maxrss is KiB on Linux
            returncode=returncode,
            stdout_tail=_tail(out_path),
            stderr_tail=_tail(err_path),
        )
    for registry, mark, cpu in marks:
        measurement.requests[registry.name] = len(registry.requests_since(mark))
        measurement.registry_cpu[registry.name] = registry.cpu_seconds() - cpu
    return measurement


def _command_output(*command: str) -> str:
    if shutil.which(command[0]) is None:
        return f"{command[0]}: not installed"
    try:
        return subprocess.run(list(command), capture_output=True, text=True, timeout=10, check=False).stdout.strip()
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{command[0]}: {exc}"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info() -> dict[str, str]:
    """What the results page must say about the machine the numbers come from."""
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": _command_output("nproc"),
        "memory": _command_output("free", "-h"),
        "cpu": _cpu_model(),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "load_average": " ".join(f"{value:.2f}" for value in os.getloadavg()),
        "skopeo": _command_output("skopeo", "--version"),
        "docker-registry": _command_output("/usr/bin/docker-registry", "--version"),
    }


def fastest(measurements: Iterable[Measurement], name: str) -> Measurement:
    """The quickest run labelled ``<name> #<round>`` (the benchmarks' labels)."""
    return min((m for m in measurements if m.label.rsplit(" #", 1)[0] == name), key=lambda m: m.wall_seconds)


def markdown_table(measurements: Sequence[Measurement], *, per: int | None = None, per_label: str = "image") -> str:
    """Measurements side by side; with ``per``, requests are also shown divided by ``per``."""
    header = "| run | wall s | CPU s (user+sys) | registries' CPU s | peak RSS MiB | requests |"
    rule = "| --- | ---: | ---: | ---: | ---: | ---: |"
    if per:
        header += f" requests/{per_label} |"
        rule += " ---: |"
    lines = [header, rule]
    for m in measurements:
        row = (
            f"| {m.label} | {m.wall_seconds:.2f} | {m.cpu_seconds:.2f} ({m.user_seconds:.2f}+{m.system_seconds:.2f}) "
            f"| {m.registries_cpu_seconds:.2f} | {m.max_rss_mib:.1f} | {m.total_requests} |"
        )
        if per:
            row += f" {m.total_requests / per:.2f} |"
        lines.append(row)
    return "\n".join(lines)


def registry_floor(measurement: Measurement, baseline_wall: float, goal: float) -> str:
    """A line comparing the goal's wall-time budget with the registries' CPU during the run spread over
    every core: no client, however cheap, finishes before the registries have done its requests."""
    cores = os.cpu_count() or 1
    floor = measurement.registries_cpu_seconds / cores
    budget = goal * baseline_wall
    verdict = "the registries alone exceed the budget" if floor > budget else "within reach"
    return (
        f"{measurement.label}: registries used {measurement.registries_cpu_seconds:.2f} CPU-s for its requests, "
        f"at least {floor:.2f} s of wall on {cores} cores; goal budget {goal:.2f} x {baseline_wall:.2f} s = "
        f"{budget:.2f} s ({verdict})"
    )


def write_results(path: str | os.PathLike[str], document: Mapping[str, Any]) -> None:
    """Write raw results as JSON (next to the markdown summary, for later comparison)."""
    Path(path).write_text(json.dumps(document, indent=2, default=str) + "\n")


if __name__ == "__main__":
    # ``python bench/harness.py CMD ARGS...``: measure one command by hand.
    result = run_measured(sys.argv[1:])
    print(json.dumps(result.to_json(), indent=2))
    sys.exit(result.returncode)
