"""The README's main command: the demo converges the bundled example and stops what it started."""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path

import pytest

from testkit.demo import run_demo

pytestmark = [pytest.mark.registry]


def _registries_serving(directory: Path) -> list[int]:
    """docker-registry processes whose storage lies under ``directory``."""
    found = subprocess.run(["pgrep", "-f", "docker-registry serve"], capture_output=True, text=True, check=False)
    serving = []
    for pid in found.stdout.split():
        try:
            config = Path(Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[2].decode()).read_text()
        except (OSError, IndexError):
            continue  # exited meanwhile
        if str(directory) in config:
            serving.append(int(pid))
    return serving


def test_demo_converges_the_example_and_second_plan_is_empty(tmp_path: Path) -> None:
    out = io.StringIO()
    assert run_demo(data_dir=tmp_path / "demo", out=out) is True
    text = out.getvalue()
    assert "[1/4] validate" in text
    assert "ok: 5 environments" in text
    assert "Plan: 21 to copy" in text
    assert "21 of 21 action(s) done" in text
    assert "Nothing to do: 21 tag(s) in sync." in text
    assert "Demo OK" in text
    # the data dir keeps the registries' storage, the rewritten desired state and the audit log
    records = [json.loads(line) for line in (tmp_path / "demo" / "audit.jsonl").read_text().splitlines()]
    assert len(records) == 42  # an intent before each of the 21 writes, its outcome after
    assert {r["result"] for r in records if r["phase"] == "outcome"} == {"ok"}
    assert (tmp_path / "demo" / "manifests" / "reconciler.yaml").is_file()
    assert "127.0.0.1" in (tmp_path / "demo" / "manifests" / "reconciler.yaml").read_text()
    assert _registries_serving(tmp_path) == []  # it stopped every registry it started
