"""``examples/dockerfiles``: the seed's image chain (compile-osbase, prod-osbase, a Java runtime, an app)
lints clean with its own ``.reconciler-lint.yaml``, ``bad.Dockerfile`` gives exactly ``bad.expected.json``,
and hadolint finds nothing to warn about in the clean ones either."""

from __future__ import annotations

import json
import subprocess
from typing import Any

from support.hadolint import hadolint_binary
from typer.testing import CliRunner

from reconciler.cli import app

from .helpers import EXAMPLES

CLEAN = ["app.Dockerfile", "compile-osbase.Dockerfile", "java-runtime.Dockerfile", "prod-osbase.Dockerfile"]


def lint_examples() -> tuple[int, dict[str, Any]]:
    config = EXAMPLES / ".reconciler-lint.yaml"
    result = CliRunner().invoke(app, ["lint-dockerfile", "--config", str(config), "--output", "json", str(EXAMPLES)])
    return result.exit_code, json.loads(result.stdout)


def test_the_chain_is_clean_and_bad_is_exactly_as_expected() -> None:
    exit_code, document = lint_examples()
    assert exit_code == 3  # bad.Dockerfile
    assert sorted(path.rsplit("/", 1)[-1] for path in document["files"]) == sorted([*CLEAN, "bad.Dockerfile"])
    by_file: dict[str, list[dict[str, Any]]] = {}
    for finding in document["findings"]:
        by_file.setdefault(finding["file"].rsplit("/", 1)[-1], []).append(finding)
    assert set(by_file) == {"bad.Dockerfile"}, "the example chain must lint clean"
    expected = json.loads((EXAMPLES / "bad.expected.json").read_text(encoding="utf-8"))
    actual = [
        {key: f[key] for key in ("line", "column", "rule", "severity", "message")} for f in by_file["bad.Dockerfile"]
    ]
    assert actual == expected


def test_the_chain_follows_the_seed_layers() -> None:
    """osbase -> runtime -> app: each layer is built FROM the one below, pinned by tag and digest."""
    froms = {
        name: [line.split()[1] for line in (EXAMPLES / name).read_text().splitlines() if line.startswith("FROM ")]
        for name in CLEAN
    }
    assert all("@sha256:" in image and ":" in image.split("@")[0] for images in froms.values() for image in images)
    assert froms["prod-osbase.Dockerfile"][0].startswith("rockylinux:")
    assert froms["java-runtime.Dockerfile"][-1].startswith("registry.example.com/base/prod-osbase:")
    assert froms["app.Dockerfile"][0].startswith("registry.example.com/base/compile-osbase:")
    assert froms["app.Dockerfile"][-1].startswith("registry.example.com/runtime/java17:")


def test_hadolint_finds_nothing_in_the_clean_examples() -> None:
    """No error and no warning from hadolint either (the examples pin package versions, DL3033, and use a
    numeric USER, DL3066, for Kubernetes' runAsNonRoot)."""
    command = [str(hadolint_binary()), "--format", "json", "--no-fail", *(str(EXAMPLES / name) for name in CLEAN)]
    result = subprocess.run(command, capture_output=True, text=True, check=False, cwd=EXAMPLES.parent, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def test_hadolint_also_flags_the_bad_example() -> None:
    command = [str(hadolint_binary()), "--format", "json", "--no-fail", str(EXAMPLES / "bad.Dockerfile")]
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=120)
    assert json.loads(result.stdout), "hadolint should at least fail to parse EXPOSE 8080:8899"
