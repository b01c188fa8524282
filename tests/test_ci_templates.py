"""The CI templates in examples/ci are valid YAML and call reconciler with options it really has; the
CODEOWNERS example gives every environment file of the example its own owners."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from ruamel.yaml import YAML
from typer.testing import CliRunner

from reconciler.cli import app

CI = Path(__file__).resolve().parents[1] / "examples" / "ci"
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "manifests"
_COMMAND = re.compile(r"reconciler ((?:validate|diff|plan|apply|promote|history|trace)[^|>\n]*)")


def _scripts(node: object) -> list[str]:
    if isinstance(node, dict):
        return [text for value in node.values() for text in _scripts(value)]
    if isinstance(node, list):
        return [text for value in node for text in _scripts(value)]
    return [node] if isinstance(node, str) else []


@pytest.mark.parametrize("template", ["gitlab-ci.yml", "github/reconciler.yml"])
def test_templates_call_real_commands_with_real_options(template: str) -> None:
    document = YAML(typ="safe").load((CI / template).read_text())
    commands = [match.group(1) for text in _scripts(document) for match in _COMMAND.finditer(text)]
    assert {command.split()[0] for command in commands} >= {"validate", "diff", "apply"}
    for command in commands:
        words = [w for w in shlex.split(command.replace("$", "X").replace("{", "").replace("}", "")) if w != "||"]
        words = words[: words.index("status=$?")] if "status=$?" in words else words
        result = CliRunner().invoke(app, [*words, "--help"])  # parses every option before printing help
        assert result.exit_code == 0, f"{template}: reconciler {command}: {result.output}"


def test_codeowners_covers_every_environment_file() -> None:
    owned = {line.split()[0] for line in (CI / "CODEOWNERS").read_text().splitlines() if line.startswith("/")}
    for path in (EXAMPLE / "environments").glob("*.yaml"):
        assert f"/environments/{path.name}" in owned
    assert "/reconciler.yaml" in owned
