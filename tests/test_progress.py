"""The progress bars ``copy`` and ``apply`` draw on a terminal (``reconciler/cli/progress.py``)."""

from __future__ import annotations

import io

from reconciler.cli.progress import TransferBars, human_size


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bytes_and_blobs_count_retries_and_mounts() -> None:
    bars = TransferBars(stream=Terminal(), show_blobs=True)
    with bars:
        bars.blob_started("sha256:a", 1000)
        bars.blob_advanced("sha256:a", 600)
        bars.blob_advanced("sha256:a", -600)  # a retry starts over
        bars.blob_advanced("sha256:a", 1000)
        bars.blob_finished("sha256:a", "copied")
        bars.blob_finished("sha256:b", "mounted")
        tasks = {task.description: task for task in bars._progress.tasks}
    assert (tasks["bytes"].completed, tasks["bytes"].total) == (1000, 1000)
    assert (tasks["blobs"].completed, tasks["blobs"].total) == (2, 2)
    assert tasks["blobs"].fields["detail"] == "2 / 2"


def test_silent_and_inert_when_not_a_terminal() -> None:
    stream = io.StringIO()
    bars = TransferBars(stream=stream, show_blobs=True)
    assert not bars.enabled
    with bars:
        bars.started(3)
        bars.blob_started("sha256:a", 10)
        bars.blob_finished("sha256:a", "copied")
    assert stream.getvalue() == ""


def test_human_size_units() -> None:
    assert [human_size(n) for n in (0, 1023, 1024, 1536, 20 * 1024**2, 3 * 1024**3)] == [
        "0 B",
        "1023 B",
        "1.0 KiB",
        "1.5 KiB",
        "20.0 MiB",
        "3.0 GiB",
    ]
