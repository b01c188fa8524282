"""What the hardening tests share: the real console script in a subprocess (wall time, peak memory, output),
a small tmpfs for a registry's storage, and the checks every test makes on a command's output.

The console script is run exactly as a user runs it (``reconciler.cli.main``, the last line of defence
against tracebacks included), never through typer's CliRunner, so what is asserted here is what a user
sees. Many runs can go at once (``run_all``): the machine is slow, and a frozen registry costs a deadline
per run, so they overlap instead of adding up. Each run's peak RSS comes from ``os.wait4``, per process,
taken by a small launcher (``measured.py``) so that it is the command's own and not the pytest process's.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from testkit.localregistry import LocalRegistry

CONSOLE = (sys.executable, "-c", "from reconciler.cli import main; main()")
LAUNCHER = Path(__file__).with_name("measured.py")
MIB = 1024 * 1024


@dataclass(frozen=True)
class Run:
    """One finished run of the console script."""

    args: tuple[str, ...]
    code: int
    stdout: str
    stderr: str
    seconds: float
    max_rss: int
    """Peak resident memory of the process, in bytes."""

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def __str__(self) -> str:
        return (
            f"reconciler {' '.join(self.args)} -> exit {self.code} in {self.seconds:.1f}s\n"
            f"--- stdout\n{self.stdout[-3000:]}\n--- stderr\n{self.stderr[-3000:]}"
        )


def cli_env(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment of a run: no proxy (loopback), no real Docker config, state and cache under ``home``."""
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower() and not k.startswith("RECONCILER_")}
    env.update(
        DOCKER_CONFIG=str(home / "docker"),
        XDG_STATE_HOME=str(home / "state"),
        XDG_CACHE_HOME=str(home / "cache"),
        RECONCILER_AUDIT_LOG=str(home / "audit.jsonl"),
        COLUMNS="200",
        NO_COLOR="1",
    )
    env.update(extra or {})
    return env


@dataclass
class _Started:
    args: tuple[str, ...]
    process: subprocess.Popen[bytes]
    out: tempfile._TemporaryFileWrapper[bytes]
    err: tempfile._TemporaryFileWrapper[bytes]
    peak: tempfile._TemporaryFileWrapper[bytes]
    started: float

    def peak_rss(self) -> int:
        self.peak.seek(0)
        return int(self.peak.read() or 0)

    def close(self) -> None:
        for file in (self.out, self.err, self.peak):
            file.close()


def _start(args: Sequence[str], env: Mapping[str, str], cwd: Path | None, console: Sequence[str]) -> _Started:
    out = tempfile.NamedTemporaryFile(prefix="cli-out-")  # noqa: SIM115 - closed in run_all
    err = tempfile.NamedTemporaryFile(prefix="cli-err-")  # noqa: SIM115
    peak = tempfile.NamedTemporaryFile(prefix="cli-peak-")  # noqa: SIM115
    command = [sys.executable, str(LAUNCHER), peak.name, *console, *args]
    process = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=dict(env), cwd=cwd, start_new_session=True
    )
    return _Started(tuple(args), process, out, err, peak, time.monotonic())


def run_all(
    commands: Sequence[Sequence[str]],
    *,
    env: Mapping[str, str],
    cwd: Path | None = None,
    timeout: float = 150.0,
    parallel: int | None = None,
    console: Sequence[str] = CONSOLE,
) -> list[Run]:
    """Run the commands through the console script, at most ``parallel`` at a time (default: all at once);
    each one's result, in order. A run still going ``timeout`` seconds after it started is killed and
    reported with exit -9 (the test then fails on its timing)."""
    pending = list(enumerate(commands))
    running: dict[int, _Started] = {}
    done: dict[int, Run] = {}
    limit = parallel or len(pending) or 1
    while pending or running:
        while pending and len(running) < limit:
            index, args = pending.pop(0)
            running[index] = _start(args, env, cwd, console)
        for index, item in list(running.items()):
            pid, status, _usage = os.wait4(item.process.pid, os.WNOHANG)
            if pid == 0:
                if time.monotonic() - item.started > timeout:
                    os.killpg(item.process.pid, signal.SIGKILL)  # the launcher and the command
                continue
            item.process.returncode = os.waitstatus_to_exitcode(status)
            seconds = time.monotonic() - item.started
            item.out.seek(0)
            item.err.seek(0)
            stdout, stderr = item.out.read().decode(errors="replace"), item.err.read().decode(errors="replace")
            done[index] = Run(item.args, item.process.returncode, stdout, stderr, seconds, item.peak_rss())
            item.close()
            del running[index]
        time.sleep(0.02)
    return [done[index] for index in range(len(commands))]


def run(
    args: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path | None = None,
    timeout: float = 150.0,
    console: Sequence[str] = CONSOLE,
) -> Run:
    return run_all([args], env=env, cwd=cwd, timeout=timeout, console=console)[0]


def assert_no_traceback(run: Run) -> None:
    assert "Traceback" not in run.output, str(run)
    assert "internal error" not in run.output, str(run)


def error_lines(run: Run) -> list[str]:
    """The lines of stderr that report an error (the first line of each message)."""
    return [line for line in run.stderr.splitlines() if line.startswith(("error:", "FAILED"))]


@contextmanager
def tmpfs(directory: Path, size: str = "3m") -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``directory`` (root is needed: the CI runs as root). The test FAILS
    when it cannot be mounted: a registry whose disk is full is the point of the tests that use it."""
    directory.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(directory)],
        check=False,
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.fail(
            f"cannot mount a {size} tmpfs at {directory} (needs root; a full disk is what this test is about): "
            f"{mounted.stderr.strip()}",
            pytrace=False,
        )
    try:
        yield directory
    finally:
        subprocess.run(["umount", "-l", str(directory)], check=False, capture_output=True)


def fill(directory: Path, *, leave: int = 0) -> Path:
    """Fill the filesystem of ``directory`` with a file (returned), then free ``leave`` bytes of it."""
    path = directory / f"filler-{time.monotonic_ns()}"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    block = b"\xa5" * 65536
    try:
        while True:
            try:
                os.write(descriptor, block)
            except OSError:
                if len(block) == 1:
                    break
                block = block[: len(block) // 2]
    finally:
        os.close(descriptor)
    if leave:
        os.truncate(path, max(0, path.stat().st_size - leave))
    return path


def git_commit_all(root: Path, message: str = "desired state") -> str:
    """Make ``root`` a Git work tree (if it is not one) and commit everything in it; the commit's SHA."""
    identity = [
        "-c",
        "user.name=Hardening Test",
        "-c",
        "user.email=hardening@example.com",
        "-c",
        "commit.gpgsign=false",
    ]
    if not (root / ".git").exists():
        subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True)
    subprocess.run(["git", "-C", str(root), "add", "-A"], check=True)
    subprocess.run(["git", *identity, "-C", str(root), "commit", "-q", "-m", message], check=True)
    return subprocess.run(
        ["git", "-C", str(root), "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()


@contextmanager
def registries(binary: Path) -> Iterator[Callable[..., LocalRegistry]]:
    """A ``registry_factory`` for a module-scoped fixture: start registries, all stopped at the end."""
    started: list[LocalRegistry] = []

    def start(**kwargs: Any) -> LocalRegistry:
        registry = LocalRegistry(binary=binary, **kwargs).start()
        started.append(registry)
        return registry

    try:
        yield start
    finally:
        for registry in reversed(started):
            registry.stop()
