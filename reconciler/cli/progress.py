"""Progress bars for ``apply`` and ``copy``: one rich live display on a terminal, nothing anywhere else.

The engine and the copier never draw: they report to an observer (``ApplyProgress`` /
``CopyProgress``), and this module is the observer a person sees. One display holds up to three bars:
actions (``apply`` only: done / total, failures so far, the last action finished), bytes (the total grows
as blob transfers start) and blobs (``copy`` only). When the stream is not a terminal every method is a
no-op, so scripts and CI logs get only the command's result.
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from reconciler.engine.execute import ActionResult


def human_size(count: float) -> str:
    """``512 B``, ``1.5 KiB``, ``20.0 MiB``, ``1.2 GiB``."""
    value = float(count)
    for unit in ("B", "KiB", "MiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


class TransferBars:
    """A live display of actions, bytes and blobs; a ``CopyProgress`` and an ``ApplyProgress``.

    ``enabled`` None means "only when ``stream`` is a terminal". ``show_blobs`` adds the blobs bar
    (``copy``); ``started(total)`` adds the actions bar (``apply``). ``transient`` bars vanish when done.
    """

    def __init__(
        self,
        *,
        stream: IO[str] | None = None,
        enabled: bool | None = None,
        show_blobs: bool = False,
        transient: bool = False,
    ) -> None:
        self._stream = stream if stream is not None else sys.stderr
        self.enabled = bool(self._stream.isatty()) if enabled is None else enabled
        self._show_blobs = show_blobs
        self._transient = transient
        self._progress: Any = None
        self._actions: Any = None
        self._bytes: Any = None
        self._blobs: Any = None
        self._actions_total = 0
        self._actions_done = 0
        self._failed = 0
        self._bytes_done = 0
        self._bytes_total = 0
        self._blobs_done = 0
        self._blobs_total = 0

    def __enter__(self) -> TransferBars:
        if self.enabled:
            from rich.console import Console  # noqa: PLC0415  (rich only when drawing)
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn  # noqa: PLC0415

            self._progress = Progress(
                TextColumn("[bold]{task.description:>7}"),
                BarColumn(),
                TextColumn("{task.fields[detail]}"),
                TimeElapsedColumn(),
                console=Console(file=self._stream),
                transient=self._transient,
            )
            self._progress.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None

    # ApplyProgress

    def started(self, total: int) -> None:
        """The plan has ``total`` actions: show the actions bar (above the bytes bar)."""
        self._actions_total = total
        if self._progress is not None and total and self._actions is None:
            self._actions = self._progress.add_task("actions", total=total, detail=f"0/{total}")

    def advance(self, result: ActionResult) -> None:
        self._actions_done += 1
        if not result.succeeded:
            self._failed += 1
        if self._progress is None or self._actions is None:
            return
        action = result.action
        self._progress.update(
            self._actions,
            completed=self._actions_done,
            detail=f"{self._actions_done}/{self._actions_total}, {self._failed} failed; "
            f"{action.environment} {action.image}:{action.tag} {result.outcome.value}",
        )

    # CopyProgress

    def blob_started(self, digest: str, size: int) -> None:
        self._bytes_total += max(size, 0)
        self._blobs_total += 1
        self._refresh()

    def blob_advanced(self, digest: str, nbytes: int) -> None:
        self._bytes_done += nbytes
        self._refresh()

    def blob_finished(self, digest: str, outcome: str) -> None:
        if outcome != "copied":  # mounted or already present: never "started" as a transfer
            self._blobs_total += 1
        self._blobs_done += 1
        self._refresh()

    def _refresh(self) -> None:
        if self._progress is None:
            return
        if self._bytes is None:  # bars appear with the first transfer, below the actions bar
            self._bytes = self._progress.add_task("bytes", total=1, detail="")
            if self._show_blobs:
                self._blobs = self._progress.add_task("blobs", total=1, detail="")
        self._progress.update(
            self._bytes,
            completed=self._bytes_done,
            total=max(self._bytes_total, 1),
            detail=f"{human_size(self._bytes_done)} / {human_size(self._bytes_total)}",
        )
        if self._blobs is not None:
            self._progress.update(
                self._blobs,
                completed=self._blobs_done,
                total=max(self._blobs_total, 1),
                detail=f"{self._blobs_done} / {self._blobs_total}",
            )
