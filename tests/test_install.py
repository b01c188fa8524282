"""The product as users install it: wheels, not the checkout.

`pip install . ./testkit` (no -e) and then `reconciler demo` must work: the demo's example desired state
ships inside the test kit's wheel (it once looked for examples/manifests next to site-packages and failed).
The runtime wheel must not carry the test kit, so the controller image holds only what it runs.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.registry, pytest.mark.slow]


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("wheels")
    pip_wheel = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out)]
    for project in (ROOT, ROOT / "testkit"):
        subprocess.run(
            [*pip_wheel, str(project)],
            check=True,
            capture_output=True,
            timeout=300,
        )
    found = {path.name.split("-", 1)[0]: path for path in out.glob("*.whl")}
    assert set(found) == {"reconciler", "reconciler_testkit"}, found
    return found


def test_runtime_wheel_carries_no_test_kit(wheels: dict[str, Path]) -> None:
    names = zipfile.ZipFile(wheels["reconciler"]).namelist()
    assert any(name.startswith("reconciler/engine/") for name in names)
    assert any(name == "reconciler/schemas/reconciler.schema.json" for name in names)
    assert not [name for name in names if name.startswith(("testkit/", "reconciler/testing/", "tests/", "examples/"))]


def test_demo_runs_from_installed_wheels(wheels: dict[str, Path], tmp_path: Path) -> None:
    target = tmp_path / "site"
    pip_install = [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target)]
    subprocess.run(
        [*pip_install, *map(str, wheels.values())],
        check=True,
        capture_output=True,
        timeout=300,
    )
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(target), "HOME": str(tmp_path)}
    where = subprocess.run(
        [sys.executable, "-c", "import reconciler, testkit; print(reconciler.__file__); print(testkit.__file__)"],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert all(line.startswith(str(target)) for line in where.stdout.split()), where.stdout  # not the checkout
    demo = subprocess.run(
        [sys.executable, str(target / "bin" / "reconciler"), "demo", "--data-dir", str(tmp_path / "demo")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert demo.returncode == 0, demo.stdout[-2000:] + demo.stderr[-2000:]
    assert "Demo OK" in demo.stdout
    assert str(target / "testkit" / "example") in demo.stdout  # the example came from the installed wheel
