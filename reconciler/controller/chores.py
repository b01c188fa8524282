"""Small jobs around the passes: what changed between two desired states, and the chores after a full pass.

* ``pin_signatures``: per image, its pins in every environment; two desired states with the same
  ``reconciler.yaml`` differ, for the loop, exactly in the images whose signatures differ;
* ``Chores.remember``: after the first full pass of a commit with trust rules, the checked head becomes
  the trusted point (``reconciler.engine.trusted.remember``, as after ``apply``);
* ``Chores.measure_archive``: the size of ``archive.store`` for ``reconciler_archive_size_bytes`` (a walk
  of its files, only when configured and present).

Both chores run in a daemon thread, off the event loop, and report through events and metrics; a failure
is an event, never an exception into the loop. Nothing here reconciles or writes to a registry.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from pathlib import Path

from reconciler.controller.blocking import in_thread
from reconciler.controller.events import EventLog
from reconciler.controller.metrics import ControllerMetrics
from reconciler.controller.source import Loaded
from reconciler.engine.housekeeping import store_path
from reconciler.engine.trusted import TrustedPoints, remember
from reconciler.errors import ReconcilerError
from reconciler.model.desired import DesiredState


def pin_signatures(desired: DesiredState, owns: Callable[[str], bool]) -> dict[str, tuple[object, ...]]:
    """Image -> ((environment, ((tag, digest), ...)), ...) over every environment, source included."""
    found: dict[str, list[object]] = {}
    for env_name in sorted(desired.environments):
        for image, pins in desired.environments[env_name].images.items():
            if owns(image):
                found.setdefault(image, []).append((env_name, tuple((pin.tag, pin.digest) for pin in pins)))
    return {image: tuple(entries) for image, entries in found.items()}


def directory_size(path: Path) -> int | None:
    """Sum of the sizes of the regular files under ``path`` (None when it does not exist)."""
    if not path.is_dir():
        return None
    total = 0
    for directory, _subdirectories, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(directory, name)).st_size
    return total


class Chores:
    def __init__(self, points: TrustedPoints, *, events: EventLog, metrics: ControllerMetrics) -> None:
        self.points = points
        self.events = events
        self.metrics = metrics
        self.trust_remembered = False
        """True once a trusted point was recorded: ``--trusted-base`` only seeds the first check."""
        self._tasks: set[asyncio.Task[None]] = set()

    def _spawn(self, work: Callable[[], object]) -> None:
        task = asyncio.get_running_loop().create_task(self._run(work))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, work: Callable[[], object]) -> None:
        await in_thread(work, name="reconciler-chore")

    def remember(self, loaded: Loaded) -> None:
        def work() -> None:
            try:
                remember(loaded.tree, loaded.trust, self.points)
            except ReconcilerError as exc:
                self.events.emit("trust_point_error", level="warning", error=str(exc))
                return
            self.trust_remembered = True
            self.events.emit("trusted", commit=loaded.revision)

        self._spawn(work)

    def measure_archive(self, desired: DesiredState) -> None:
        store = store_path(desired)  # under a Git commit's root it does not exist: no reading
        if store is None:
            return

        def work() -> None:
            size = directory_size(store)
            if size is not None:
                self.metrics.archive_size.set(size)

        self._spawn(work)
