"""The status board in a real headless browser (Debian's chromium): the page the controller serves renders
a grid of images x environments with each cell's version and state in words, and a screenshot of it is
taken (kept as docs/board.png when ``RECONCILER_BOARD_SCREENSHOT`` names where to copy it).

Chromium missing is a FAILURE with the install hint, never a skip: a skipped browser test tests nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from engine.landscape import Landscape

from testkit.imagepush import push_image

from .conftest import ControllerFactory
from .harness import wait_for

pytestmark = [pytest.mark.registry]

CHROMIUM_HINT = "chromium not found: install it with `apt-get install chromium` (Debian) to run the board test"
IN_SYNC = [("payments/api", "20261127_01"), ("search/indexer", "20261125_03")]
CONFLICTED = ("payments/web", "20261126_02")
GATEWAY = ("platform/gateway", "20261120_01")
MISSING = ("platform/gateway", "20261121_01")
"""Pinned in s1 with a digest no registry holds: that cell fails (a digest found nowhere)."""


def chromium() -> str:
    for candidate in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and Path(candidate).is_file():
            return candidate
    pytest.fail(CHROMIUM_HINT, pytrace=False)


def browse(url: str, profile: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    command = [
        chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", *extra, url,
    ]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


class GridReader(HTMLParser):
    """The text of every cell of ``<table class="grid">``, row by row."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._in_grid = False
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table" and ("class", "grid") in attrs:
            self._in_grid = True
        elif self._in_grid and tag == "tr":
            self.rows.append([])
        elif self._in_grid and tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._in_grid = False
        elif self._in_grid and tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data + " ")


def test_the_board_renders_in_a_headless_browser(
    landscape: Landscape, controllers: ControllerFactory, tmp_path: Path
) -> None:
    browser = chromium()
    synced = [(name, tag, landscape.seed(name, tag)) for name, tag in IN_SYNC]
    web = (*CONFLICTED, landscape.seed(*CONFLICTED))
    gateway = (*GATEWAY, landscape.seed(*GATEWAY))
    never_pushed = "sha256:" + "e" * 64
    everywhere = [*synced, web]
    root = landscape.write(
        {"d": [*everywhere, gateway], "t": [*everywhere, gateway], "s1": [*everywhere, (*MISSING, never_pushed)],
         "s2": everywhere, "p": everywhere}
    )  # fmt: skip
    identity = ["-c", "user.name=Release Manager", "-c", "user.email=rm@example.com", "-c", "commit.gpgsign=false"]
    for command in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "Promote payments/web to p"]):
        subprocess.run(["git", *identity, *command], cwd=root, check=True, capture_output=True)
    push_image(landscape.image("intruder", CONFLICTED[1]), landscape.registries["prod-b"].url, f"p/{web[0]}", web[1])
    controller = controllers(str(root), "--interval", "1s")
    wait_for(
        lambda: controller.status()["summary"]["conflict"] == 1 and controller.status()["summary"]["failed"] == 1,
        timeout=60,
        what="the conflict and the missing digest on the status",
    )

    dumped = browse(controller.url + "/", tmp_path / "profile", "--dump-dom")
    assert dumped.returncode == 0, dumped.stderr[-2000:]
    reader = GridReader()
    reader.feed(dumped.stdout)
    header, *rows = reader.rows
    assert [cell.split()[0] for cell in header] == ["Image", "t", "s1", "s2", "p"]
    grid = {row[0]: row[1:] for row in rows}
    assert sorted(grid) == sorted(["payments/api", "payments/web", "platform/gateway", "search/indexer"])
    for name, tag in IN_SYNC:
        assert all(tag in cell and "in sync" in cell for cell in grid[name]), grid[name]
    assert "conflict" in grid["payments/web"][3]
    assert "immutable" in grid["payments/web"][3]
    assert "in sync" in grid["payments/web"][0]
    assert "failed" in grid["platform/gateway"][1]
    assert MISSING[1] in grid["platform/gateway"][1]
    assert "in sync" in grid["platform/gateway"][0]
    assert "not declared" in grid["platform/gateway"][2]  # s2 does not declare it
    assert "Degraded" in dumped.stdout
    assert "Release Manager" in dumped.stdout  # the commit's author, from the work tree's HEAD
    assert "Recent audit events" in dumped.stdout

    screenshot = tmp_path / "board.png"
    shot = browse(controller.url + "/", tmp_path / "profile", f"--screenshot={screenshot}", "--window-size=1400,900")
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert screenshot.stat().st_size > 20_000  # a real page, not a blank one
    keep = os.environ.get("RECONCILER_BOARD_SCREENSHOT")
    if keep:
        shutil.copyfile(screenshot, keep)
    print(f"board rendered by {browser}; screenshot {screenshot} ({screenshot.stat().st_size} bytes)")
    assert controller.terminate() == 0
