"""Fixtures of the archive tests.

``tmpfs`` mounts a small tmpfs (the tests run as root in CI): the only honest way to make the archive's
volume read-only or full, since root ignores file modes. When mounting is impossible the test FAILS with
the reason; it never skips.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from .helpers import MountTmpfs


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[MountTmpfs]:
    """``tmpfs(size="2m")`` mounts a fresh tmpfs and returns its path; all are unmounted at teardown."""
    mounted: list[Path] = []

    def mount(size: str = "8m") -> Path:
        target = tmp_path / f"tmpfs-{len(mounted)}"
        target.mkdir()
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(target)],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            pytest.fail(
                f"cannot mount a tmpfs at {target} (uid {os.getuid()}): {result.stderr.strip()}. "
                "The archive safety tests need root (CAP_SYS_ADMIN) to make a volume read-only or full; "
                "root ignores file modes, so chmod cannot stand in",
                pytrace=False,
            )
        mounted.append(target)
        return target

    try:
        yield mount
    finally:
        for target in reversed(mounted):
            subprocess.run(["umount", "-l", str(target)], capture_output=True, check=False)
