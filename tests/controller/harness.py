"""What the controller's end-to-end tests need: the controller as a real subprocess (its JSON event log,
its HTTP port), a real bare Git remote to push desired states to, and a proxy that slows blob uploads.

The controller is started exactly as a user starts it (``reconciler controller ...`` through the console
entry point), on ``127.0.0.1:0``; its port is read from its own ``started`` event. Its state, cache and
audit log live under the test's tmp directory. ``ControllerProcess.kill()`` is always called at teardown.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
from prometheus_client.parser import text_string_to_metric_families
from support.faultproxy import FaultProxy

T = TypeVar("T")
ENTRY = [sys.executable, "-c", "from reconciler.cli import main; main()"]
LOADED = float(os.environ.get("RECONCILER_TEST_SLOWDOWN", "1"))
"""Multiply timeouts by this on a slow machine."""


def wait_for(check: Callable[[], T | None], *, timeout: float, what: str, every: float = 0.05) -> T:
    """Poll ``check`` until it returns something truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout * LOADED
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout * LOADED:.0f}s waiting for {what}")
        time.sleep(every)


class ControllerProcess:
    """``reconciler controller ARGS --listen 127.0.0.1:0 --log-format json`` in the background."""

    def __init__(self, args: list[str], workdir: Path, *, name: str = "controller", env: dict[str, str] | None = None):
        workdir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.log_path = workdir / f"{name}.log"
        self.audit_path = workdir / f"{name}-audit.jsonl"
        environment = {
            **os.environ,
            "RECONCILER_STATE_DIR": str(workdir / f"{name}-state"),
            "RECONCILER_CACHE_DIR": str(workdir / f"{name}-cache"),
            "XDG_STATE_HOME": str(workdir / f"{name}-xdg"),
            **(env or {}),
        }
        environment.pop("RECONCILER_LOG_FORMAT", None)
        command = [*ENTRY, "controller", *args, "--listen", "127.0.0.1:0", "--log-format", "json"]
        if "--audit-log" not in args:
            command += ["--audit-log", str(self.audit_path)]
        self.command = command
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=environment)
        self._port: int | None = None

    # -- the event log ----------------------------------------------------------------------------

    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        found = []
        for line in self.output().splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict) and (name is None or event.get("event") == name):
                found.append(event)
        return found

    def wait_event(self, name: str, *, timeout: float = 30, where: Callable[[dict[str, Any]], bool] | None = None,
                   after: int = 0) -> dict[str, Any]:  # fmt: skip
        """The first event ``name`` (among those after the ``after`` first ones of that name) matching ``where``."""

        def find() -> dict[str, Any] | None:
            self._check_running()
            for event in self.events(name)[after:]:
                if where is None or where(event):
                    return event
            return None

        return wait_for(find, timeout=timeout, what=f"event {name!r} from {self.name}\n{self.output()[-3000:]}")

    def _check_running(self) -> None:
        if self.process.poll() is not None:
            raise AssertionError(f"{self.name} exited {self.process.returncode}:\n{self.output()[-4000:]}")

    # -- HTTP -------------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            self._port = int(self.wait_event("started", timeout=60)["port"])
        return self._port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", timeout=30)

    def status(self) -> dict[str, Any]:
        response = self.get("/api/status")
        response.raise_for_status()
        document: dict[str, Any] = response.json()
        return document

    def cell(self, image: str, env: str) -> dict[str, Any] | None:
        for row in self.status()["images"]:
            if row["image"] == image:
                cell: dict[str, Any] | None = row["cells"].get(env)
                return cell
        return None

    def metrics(self) -> dict[str, float]:
        """``name{label="v",...}`` -> value, labels sorted by name."""
        response = self.get("/metrics")
        response.raise_for_status()
        samples: dict[str, float] = {}
        for family in text_string_to_metric_families(response.text):
            for sample in family.samples:
                labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
                samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
        return samples

    def wait_ready(self, timeout: float = 60) -> None:
        wait_for(lambda: self.get("/readyz").status_code == 200, timeout=timeout, what=f"{self.name} ready")

    # -- stopping ---------------------------------------------------------------------------------

    def terminate(self, timeout: float = 60) -> int:
        """SIGTERM, then the exit code."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout * LOADED)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)


def audit_records(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


class GitRemote:
    """A bare repository (``url``, ``file://``) and a work tree that pushes to it."""

    def __init__(self, directory: Path) -> None:
        self.bare = directory / "origin.git"
        self.work = directory / "work"
        self.url = f"file://{self.bare}"
        self.work.mkdir(parents=True)
        self._git("init", "-q", "-b", "main")
        self._git("remote", "add", "origin", str(self.bare))

    def _git(self, *args: str) -> str:
        identity = ["-c", "user.name=Release Manager", "-c", "user.email=rm@example.com", "-c", "commit.gpgsign=false"]
        result = subprocess.run(["git", *identity, *args], cwd=self.work, capture_output=True, text=True, check=True)
        return result.stdout.strip()

    def create(self) -> None:
        subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(self.bare)], check=True)

    def push(self, message: str) -> str:
        """Commit everything in the work tree and push it; the new commit's SHA."""
        self._git("add", "-A")
        self._git("commit", "-q", "--allow-empty", "-m", message)
        self._git("push", "-q", "origin", "main")
        return self._git("rev-parse", "HEAD")


class SlowUploadProxy(FaultProxy):
    """A ``FaultProxy`` that holds every blob upload request (PATCH/PUT/POST to ``/blobs/uploads/``) for
    ``delay`` seconds before forwarding it: a copy then takes as long as the test needs."""

    def __init__(self, upstream: str, *, delay: float) -> None:
        super().__init__(upstream)
        self.delay = delay

    async def _exchange(self, head: Any, *, method: str, path: str, **kwargs: Any) -> Any:
        if "/blobs/uploads/" in path and method in ("PATCH", "PUT") and self.delay > 0:
            await asyncio.sleep(self.delay)
        return await super()._exchange(head, method=method, path=path, **kwargs)
