"""The structure rules that matter, as tests: the layering of DESIGN.md section 7 and small, named modules.

The import direction is checked by import-linter with the contracts in pyproject.toml
(``[tool.importlinter]``): cli | controller -> promote | report -> engine -> manifests | registry | archive |
policy -> source -> errors -> model, every subpackage placed (``exhaustive``), and the test kit imported by
nothing in the package but the demo command. The module rules are checked here directly.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_MODULE_LINES = 520
"""DESIGN.md: small modules with one job each, about 500 lines at most."""


def _modules() -> list[Path]:
    return sorted([*(ROOT / "reconciler").rglob("*.py"), *(ROOT / "testkit" / "testkit").rglob("*.py")])


def test_import_contracts_hold() -> None:
    lint_imports = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run(
        [str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True, check=False, timeout=120
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_every_module_names_its_job_in_a_docstring() -> None:
    missing = [
        str(path.relative_to(ROOT))
        for path in _modules()
        if path.stat().st_size and not (ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or "").strip()
    ]
    assert missing == [], f"modules without a docstring saying what they are for: {missing}"


def test_modules_stay_small() -> None:
    large = {
        str(path.relative_to(ROOT)): lines
        for path in _modules()
        if (lines := path.read_text(encoding="utf-8").count("\n")) > MAX_MODULE_LINES
    }
    assert large == {}, f"modules over {MAX_MODULE_LINES} lines: split them along their seams: {large}"


def test_the_engine_docstring_lists_its_modules_as_they_are() -> None:
    """The engine's package docstring is its map, one ``* ``module`` job`` line per module: kept true here."""
    engine = ROOT / "reconciler" / "engine"
    docstring = ast.get_docstring(ast.parse((engine / "__init__.py").read_text(encoding="utf-8"))) or ""
    listed = re.findall(r"^\* ``(\w+)``", docstring, re.MULTILINE)
    present = sorted(path.stem for path in engine.glob("*.py") if path.stem != "__init__")
    assert listed == present, f"update reconciler/engine/__init__.py: lists {listed}, the package holds {present}"
