"""Crash safety: ``kill -9`` the apply process at random moments; no tag may ever resolve to an image
with a missing blob or child manifest, and the next apply converges.

Each trial promotes fresh versions (single-platform images and two-platform indexes) through the whole
chain d -> t -> s1 -> s2 -> p, kills the apply subprocess after a random delay drawn across the span of
an uninterrupted apply, walks EVERY tag of every repository on all five registries, then re-applies and
checks that the next plan is empty, and that the audit log names every tag the killed run had written
(its outcome, or, when the kill fell between the write and the record, the intent that the re-apply
confirmed).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from reconciler.cli import app
from reconciler.engine.audit import pair_records, read_records
from reconciler.exitcodes import ExitCode

from .landscape import REGISTRY_OF, Landscape, start_landscape, walk_registry

pytestmark = [pytest.mark.registry, pytest.mark.slow]

TRIALS = 20
MIN_PARTIAL = TRIALS // 4
MAX_TRIALS = 2 * TRIALS
"""At least TRIALS kills; more (up to MAX_TRIALS) while fewer than MIN_PARTIAL landed mid-apply, since on a
loaded or unusually fast machine the random moments can miss the span where tags are being written."""
IMAGES_PER_TRIAL = 2
APPLY = [sys.executable, "-c", "from reconciler.cli import main; main()", "apply"]


def _versions(trial: int) -> list[tuple[str, str]]:
    return [(f"crash/app{i}", f"20261127_{trial + 1:02d}") for i in range(IMAGES_PER_TRIAL)]


def _seed_trial(land: Landscape, trial: int) -> Path:
    triples = []
    for i, (name, tag) in enumerate(_versions(trial)):
        platforms = ("linux/amd64", "linux/arm64") if i == 0 else ("linux/amd64",)
        digest = land.seed(name, tag, platforms=platforms, layer_count=2, layer_size=32 * 1024)
        triples.append((name, tag, digest))
    return land.write({env: list(triples) for env in ("d", "t", "s1", "s2", "p")})


def _apply_process(root: Path, audit: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*APPLY, str(root), "--audit-log", str(audit)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )


def _forget_trial(land: Landscape, trial: int, client: httpx.Client) -> None:
    """Delete the trial's images everywhere, so each walk checks a constant number of tags."""
    for name, tag in _versions(trial):
        digest = str(land.images[(name, tag)].digest)
        for env, registries in REGISTRY_OF.items():
            for registry in registries:
                response = client.delete(f"{land.registries[registry].url}/v2/{env}/{name}/manifests/{digest}")
                assert response.status_code in (202, 404), response.text


def _walk_all(land: Landscape, trial: int) -> int:
    """Walk every tag on every registry (failing on a broken one); return how many of this trial's
    downstream tags (t, s1, s2, p on both sites) exist."""
    wanted = {
        (registry, f"{env}/{name}:{tag}")
        for name, tag in _versions(trial)
        for env in ("t", "s1", "s2", "p")
        for registry in REGISTRY_OF[env]
    }
    present = 0
    for registry_name, registry in land.registries.items():
        checked, problems = walk_registry(registry.url)
        assert problems == [], f"trial {trial}: broken tags on {registry_name} after kill -9: {problems}"
        assert checked, f"trial {trial}: no tag found on {registry_name}"
        present += sum((registry_name, ref) in wanted for ref in checked)
    return present


def _assert_every_tag_is_audited(audit: Path, trial: int) -> None:
    """Every tag of the trial is named by an ``ok`` record, and no intent is left unknown."""
    records = pair_records(read_records(audit))
    written = {(r["registry"], r["repository"], r["tag"]) for r in records if r["result"] == "ok"}
    unknown = [r for r in records if r["result"] == "unknown"]
    assert unknown == [], f"trial {trial}: intents never confirmed: {unknown}"
    for name, tag in _versions(trial):
        for env in ("t", "s1", "s2", "p"):
            for registry in REGISTRY_OF[env]:
                assert (registry, f"{env}/{name}", tag) in written, f"trial {trial}: {env}/{name}:{tag} not audited"


def test_kill_9_at_random_moments_never_leaves_a_broken_tag(registry_factory: object, tmp_path: Path) -> None:
    land = start_landscape(registry_factory, tmp_path / "state")  # type: ignore[arg-type]
    audit = tmp_path / "audit.jsonl"
    rng = random.Random(20261127)  # reproducible kill moments

    # Calibrate: how long does an uninterrupted apply of one trial's worth of work take here?
    root = _seed_trial(land, 0)
    started = time.monotonic()
    assert _apply_process(root, audit).wait(120) == 0
    window = time.monotonic() - started

    partial = 0
    outcomes: list[str] = []
    total_tags = 5 * IMAGES_PER_TRIAL
    client = httpx.Client(timeout=30)
    trial = 0
    while trial < TRIALS or (partial < MIN_PARTIAL and trial < MAX_TRIALS):
        trial += 1
        root = _seed_trial(land, trial)
        process = _apply_process(root, audit)
        time.sleep(rng.uniform(0.25 * window, 0.95 * window))
        finished_first = process.poll() is not None
        process.send_signal(signal.SIGKILL)
        process.wait(30)

        done = _walk_all(land, trial)
        if 0 < done < total_tags:
            partial += 1
        outcomes.append(f"{done}/{total_tags}" + (" (finished before the kill)" if finished_first else ""))
        # Keep the kill window on the span of an apply as the machine's load changes: the calibration
        # run alone can be much slower or faster than later ones.
        if finished_first or done == total_tags:
            window *= 0.8
        elif done == 0:
            window *= 1.15

        result = CliRunner().invoke(app, ["apply", str(root), "--audit-log", str(audit)])
        assert result.exit_code == ExitCode.OK, f"trial {trial}: re-apply failed: {result.stderr}"
        result = CliRunner().invoke(app, ["plan", str(root), "--detailed-exitcode"])
        assert result.exit_code == ExitCode.OK, f"trial {trial}: not converged: {result.stdout}"
        assert _walk_all(land, trial) == total_tags
        _assert_every_tag_is_audited(audit, trial)
        _forget_trial(land, trial, client)

    client.close()
    # The kills must have landed mid-apply often enough for the test to mean something.
    assert partial >= MIN_PARTIAL, f"only {partial} of {trial} kills interrupted an apply midway: {outcomes}"
