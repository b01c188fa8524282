"""``reconciler next-tag``: the next YYYYMMDD_NN of the day from the source registry, and the reservation
that keeps two racing builds from both getting the same number (a ref created atomically on the
desired-state repository's remote)."""

from __future__ import annotations

import contextlib
import datetime
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reconciler.cli import app
from reconciler.exitcodes import ExitCode
from testkit.demo import write_chain_state
from testkit.imagegen import image_for
from testkit.imagepush import push_image
from testkit.localregistry import LocalRegistry

pytestmark = pytest.mark.registry
runner = CliRunner()
NEXT_TAG = [sys.executable, "-c", "from reconciler.cli import main; main()", "next-tag"]


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def setup(registry: LocalRegistry, tmp_path: Path) -> tuple[LocalRegistry, Path, Path]:
    """(the dev registry with two builds of 2026-12-01, a bare remote of a desired state, its first clone)."""
    for tag in ("20261201_01", "20261201_03", "20261130_07"):
        push_image(image_for("payments/api", tag), registry.url, "d/payments/api", tag)
    urls = {name: registry.url for name in ("dev", "test", "pre", "prod-a", "prod-b")}
    seed = write_chain_state(tmp_path / "seed", urls, {})
    git(seed, "init", "-q", "-b", "main")
    git(seed, "add", ".")
    git(seed, "-c", "user.name=S", "-c", "user.email=s@example.com", "commit", "-qm", "state")
    bare = tmp_path / "origin.git"
    git(tmp_path, "clone", "-q", "--bare", str(seed), str(bare))
    return registry, bare, _clone(bare, tmp_path / "clone-0")


def _clone(bare: Path, where: Path) -> Path:
    git(bare.parent, "clone", "-q", str(bare), str(where))
    git(where, "config", "user.name", "CI")
    git(where, "config", "user.email", "ci@example.com")
    return where


def test_next_tag_counts_the_days_builds(setup: tuple[LocalRegistry, Path, Path]) -> None:
    _registry, _bare, work = setup
    result = runner.invoke(app, ["next-tag", "payments/api", str(work), "--date", "20261201"])
    assert result.exit_code == ExitCode.OK, result.output
    assert result.output.strip() == "20261201_04"  # after _03: never fills a gap, never reuses a number
    fresh = runner.invoke(app, ["next-tag", "payments/new", str(work), "--date", "20261202"])
    assert fresh.output.strip() == "20261202_01"
    bad = runner.invoke(app, ["next-tag", "payments/api", str(work), "--date", "20261332"])
    assert bad.exit_code == ExitCode.USAGE


@contextlib.contextmanager
def _local_time_zone(posix_tz: str) -> Iterator[None]:
    saved = os.environ.get("TZ")
    os.environ["TZ"] = posix_tz
    time.tzset()
    try:
        yield
    finally:
        if saved is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = saved
        time.tzset()


def test_default_date_is_today_in_utc_not_in_local_time(setup: tuple[LocalRegistry, Path, Path]) -> None:
    _registry, _bare, work = setup
    before = datetime.datetime.now(datetime.UTC)
    # UTC+14 after noon UTC, UTC-12 before: either way the local date is not the UTC date
    zone = "<+14>-14" if before.hour >= 12 else "<-12>+12"
    with _local_time_zone(zone):
        assert datetime.date.today() != before.date()  # the premise: local and UTC days differ
        result = runner.invoke(app, ["next-tag", "payments/new", str(work)])
    after = datetime.datetime.now(datetime.UTC)
    assert result.exit_code == ExitCode.OK, result.output
    assert result.output.strip() in {f"{before:%Y%m%d}_01", f"{after:%Y%m%d}_01"}


def test_racing_builds_never_get_the_same_number(setup: tuple[LocalRegistry, Path, Path], tmp_path: Path) -> None:
    _registry, bare, _work = setup
    clones = [_clone(bare, tmp_path / f"job-{i}") for i in range(6)]  # six CI jobs, each in its own checkout

    def job(work: Path) -> str:
        result = subprocess.run(
            [*NEXT_TAG, "payments/api", str(work), "--date", "20261201", "--reserve"],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        return result.stdout.strip()

    with ThreadPoolExecutor(len(clones)) as pool:
        tags = list(pool.map(job, clones))
    assert sorted(tags) == [f"20261201_{n:02d}" for n in range(4, 10)], tags  # all distinct, none reused
    refs = git(bare, "for-each-ref", "--format=%(refname)", "refs/reconciler/builds/payments/api")
    assert len(refs.splitlines()) == 6
