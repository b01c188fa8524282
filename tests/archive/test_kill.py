"""kill -9 while archiving: whatever the moment, the layout verifies and a re-run completes it.

Runs of ``archiver.py`` copy images from a real registry into a layout; the test SIGKILLs each run a
random 0-5 ms after a random one of its store writes (so kills land inside blob writes, manifest writes
and index updates alike), then checks with a fresh store that ``verify`` accepts the layout and that no
file under ``blobs/`` is partial (every file hashes to its name). Every layout gets two killed runs (the
second re-runs over what the first left) and finally a run to completion. The random seed is in every
failure message.
"""

from __future__ import annotations

import random
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.archive import OciLayout
from testkit.imagegen import GeneratedImage, image_for
from testkit.imagepush import push_image
from testkit.localregistry import LocalRegistry

from .helpers import bad_blob_files, run

ARCHIVER = Path(__file__).with_name("archiver.py")
KILLS = 24
KILLS_PER_LAYOUT = 2
WATCHDOG_SECONDS = 120


class Archiver:
    """The forking archiver process (see ``archiver.py``). The test never signals a process itself: it
    asks the archiver, which kills only its own runs, before reaping them (so no pid can be recycled)."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        assert process.stdout is not None
        self._out = process.stdout
        assert self._out.readline().strip() == "zygote"

    def _send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(f"{line}\n")
        self.process.stdin.flush()

    def _line(self) -> list[str]:
        line = self._out.readline().strip()
        assert line, f"archiver exited: {self.process.stderr.read() if self.process.stderr else ''}"
        assert not line.startswith("failed"), line
        return line.split(" ")

    def _until(self, *wanted: str, pid: int) -> list[str]:
        """Lines until one of ``wanted`` about run ``pid`` (what an earlier, killed run wrote is skipped)."""
        while True:
            words = self._line()
            if words[0] in wanted and words[1] == str(pid):
                return words

    def start(self, root: Path) -> int:
        self._send(f"run {root}")
        while True:  # one run at a time: the first "ready" is the new run's
            words = self._line()
            if words[0] == "ready":
                return int(words[1])

    def steps(self, root: Path) -> int:
        """Run to completion; the number of store writes it made."""
        pid = self.start(root)
        count = 0
        while self._until("step", "end", pid=pid)[0] == "step":
            count += 1
        self._send(f"reap {pid}")
        self._until("reaped", pid=pid)
        return count

    def kill_after(self, root: Path, step: int, delay: float) -> bool:
        """Start a run and have it SIGKILLed ``delay`` s after its ``step``-th write; False when it
        finished first."""
        pid = self.start(root)
        for _ in range(step):
            if self._until("step", "end", pid=pid)[0] == "end":
                break
        time.sleep(delay)
        self._send(f"kill {pid}")
        return self._until("reaped", pid=pid)[2] == "killed"


@pytest.fixture
def archiver(registry: LocalRegistry) -> Iterator[tuple[Archiver, list[str]]]:
    seeded: dict[str, GeneratedImage] = {
        "p/payments/api:20261127_01": image_for("payments/api", "20261127_01", layer_size=2 << 20),
        "p/payments/api:20261127_02": image_for("payments/api", "20261127_02", layer_size=2 << 20, fmt="oci"),
        "p/payments/web:20261127_01": image_for(
            "payments/web", "20261127_01", layer_size=1 << 20, platforms=("linux/amd64", "linux/arm64")
        ),
        "p/payments/cli:20261127_01": image_for("payments/cli", "20261127_01", layer_count=3),
    }
    for reference, image in seeded.items():
        repository, tag = reference.rsplit(":", 1)
        push_image(image, registry.url, repository, tag)
    process = subprocess.Popen(
        [sys.executable, str(ARCHIVER), registry.url, *seeded],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # A watchdog: should the protocol ever stall, kill our archiver (its end of the pipe closes, the test
    # fails with "archiver exited") instead of leaving pytest blocked on a read until an outer timeout.
    watchdog = threading.Timer(WATCHDOG_SECONDS, process.kill)
    watchdog.start()
    try:
        yield Archiver(process), list(seeded)
    finally:
        watchdog.cancel()
        try:
            process.communicate(timeout=60)  # end of input: the archiver kills and reaps any run left, exits
        except subprocess.TimeoutExpired:
            process.kill()  # our own child, not yet reaped
            process.communicate()


def assert_consistent(root: Path, context: str) -> int:
    report = run(OciLayout(root).verify())
    assert report.ok, f"{context}: {report.summary()}"
    assert bad_blob_files(root) == [], context
    return len(report.entries)


def test_kill_9_at_random_moments_leaves_a_layout_that_verifies_and_a_rerun_completes(
    archiver: tuple[Archiver, list[str]], tmp_path: Path
) -> None:
    runs, references = archiver
    total_steps = runs.steps(tmp_path / "uninterrupted")
    assert assert_consistent(tmp_path / "uninterrupted", "uninterrupted run") == len(references)

    seed = random.randrange(1 << 32)
    chance = random.Random(seed)
    layouts = [tmp_path / f"archive-{n}" for n in range(KILLS // KILLS_PER_LAYOUT)]
    kills = attempts = entries_seen = 0
    remaining = total_steps
    while kills < KILLS:
        attempts += 1
        assert attempts <= 2 * KILLS, f"only {kills} of {attempts} runs were still running when killed (seed {seed})"
        first_on_layout = kills % KILLS_PER_LAYOUT == 0
        root = layouts[kills // KILLS_PER_LAYOUT]
        root.mkdir(exist_ok=True)
        # A re-run skips what the killed run finished: aim within the writes that are left.
        step = chance.randint(1, total_steps if first_on_layout else max(remaining, 1))
        delay = chance.uniform(0, 0.005)
        killed = runs.kill_after(root, step, delay)
        kills += killed
        remaining = total_steps - step + 1 if killed and first_on_layout else remaining
        where = f"attempt {attempts} (seed {seed}, killed {delay * 1000:.1f} ms after write {step} of {total_steps})"
        entries_seen += assert_consistent(root, where)

    for root in layouts:
        runs.steps(root)
        assert assert_consistent(root, f"re-run of {root.name} (seed {seed})") == len(references)
    assert entries_seen > 0, f"no kill landed after an entry was written (seed {seed}): the test proves little"
