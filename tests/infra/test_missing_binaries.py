"""A missing docker-registry or skopeo makes the tests that need it FAIL with the install command, never skip."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def _run_pytest(node: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", node],
        cwd=TESTS.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_missing_registry_binary_fails_with_install_hint() -> None:
    env = {**os.environ, "RECONCILER_REGISTRY_BINARY": "/nonexistent/docker-registry"}
    result = _run_pytest("tests/infra/test_localregistry.py::test_two_registries_get_different_ports", env)
    assert result.returncode == 1, result.stdout
    assert "apt-get install docker-registry" in result.stdout
    assert "1 error" in result.stdout or "1 failed" in result.stdout
    assert "skipped" not in result.stdout


def test_missing_skopeo_fails_with_install_hint(tmp_path: Path) -> None:
    # A PATH without skopeo; docker-registry is found by its absolute path.
    env = {**os.environ, "PATH": str(tmp_path), "RECONCILER_REGISTRY_BINARY": "/usr/bin/docker-registry"}
    result = _run_pytest("tests/infra/test_imagegen.py::test_oci_layout_is_readable_by_skopeo", env)
    assert result.returncode == 1, result.stdout
    assert "apt-get install skopeo" in result.stdout
    assert "skipped" not in result.stdout
