"""kill -9 during a retention apply: no version is ever lost, the store verifies, the next run completes.

Each trial re-pushes the versions retention retires, starts ``reconciler apply`` as a process and
SIGKILLs it at a random moment while it archives and deletes. After every kill: each version the
registry no longer holds is in the archive store with its digest (delete never runs ahead of a verified
archive), and the store verifies (every blob re-hashed). The seed is in every failure message.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support.skopeo import Skopeo

from reconciler.archive import OciLayout
from testkit.imagegen import image_for
from testkit.localregistry import LocalRegistry

from .test_lifecycle_e2e import cli, entries, push_versions, tags, write_state

pytestmark = pytest.mark.registry

TRIALS = 20


def started_writing(audit: Path, offset: int, process: subprocess.Popen[bytes]) -> None:
    """Wait until the run appends its first intent record (or ends, or 30 s pass)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        if audit.exists() and audit.stat().st_size > offset:
            with audit.open("rb") as handle:
                handle.seek(offset)
                if b'"phase":"intent"' in handle.read():
                    return
        time.sleep(0.005)


VERSIONS = [f"202611{day:02d}_01" for day in range(1, 13)]


def run_until(process: subprocess.Popen[bytes], seconds: float) -> float | None:
    """Let the process run ``seconds``; how long it took if it ended before that, else None."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if process.poll() is not None:
            return time.monotonic() - started
        time.sleep(0.002)
    return None if process.poll() is None else seconds


def test_kill_9_during_archive_and_delete_never_loses_a_version(
    registry: LocalRegistry, skopeo: Skopeo, tmp_path: Path
) -> None:
    seed = int(os.environ.get("RECONCILER_KILL_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    versions = {tag: image_for("app", tag, layer_count=2, layer_size=1024 * 1024) for tag in VERSIONS}
    store = tmp_path / "archive"
    newest = VERSIONS[-1]
    root = write_state(
        tmp_path / "state",
        registry.url,
        store=store,
        retention="  d: {keep: 1}\n",
        t_pins={"app": [(newest, versions[newest])]},
    )
    audit = tmp_path / "audit.jsonl"
    command = [
        sys.executable,
        "-c",
        "from reconciler.cli import main; main()",
        "apply",
        str(root),
        "--audit-log",
        str(audit),
    ]
    killed_mid_run = 0  # the others ran to completion before the kill: fine, the next trial re-pushes
    span = 0.4  # kills land uniformly within this many seconds after the first intent record
    for trial in range(TRIALS):
        push_versions(registry, "d/app", versions)  # what an earlier trial retired comes back
        written = audit.stat().st_size if audit.exists() else 0
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started_writing(audit, written, process)  # the first intent: archiving has begun
        finished_after = run_until(process, rng.uniform(0.0, span))
        if finished_after is None:
            process.send_signal(signal.SIGKILL)
            killed_mid_run += 1
        else:  # this machine is faster than the span: aim the next kills inside what a run takes here
            span = max(0.02, 0.8 * finished_after)
        process.wait()
        where = f"(seed {seed}, trial {trial})"
        held = tags(skopeo, registry, "d/app")
        archived = entries(store) if store.exists() else {}
        for tag in set(VERSIONS) - held:
            assert archived.get(f"d/app:{tag}") == versions[tag].digest, f"{tag} deleted but not archived {where}"
        report = asyncio.run(OciLayout(store).verify()) if store.exists() else None
        assert report is None or report.ok, f"{report.summary() if report else ''} {where}"
    assert killed_mid_run >= TRIALS // 2, f"only {killed_mid_run} kills landed mid-run (seed {seed})"
    code, output = cli("apply", str(root), "--audit-log", str(audit))
    assert code == 0, output
    assert tags(skopeo, registry, "d/app") == {VERSIONS[-2], newest}  # keep: 1, and the declared one
    assert set(entries(store)) == {f"d/app:{tag}" for tag in VERSIONS[:-2]}
    code, output = cli("plan", str(root), "--detailed-exitcode")
    assert code == 0, output
