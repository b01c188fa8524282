"""``reconciler validate`` / ``schema`` / ``--version`` through typer's CliRunner."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML
from typer.testing import CliRunner

from reconciler import __version__
from reconciler.cli import app
from reconciler.manifests.schema import load_schema

from .helpers import EXAMPLE

CORPUS = Path(__file__).resolve().parent.parent / "corpus"
runner = CliRunner()


def test_example_is_valid() -> None:
    result = runner.invoke(app, ["validate", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith("valid (5 environments, 4 images, 22 pinned versions)")


def test_json_envelope_of_a_valid_state() -> None:
    result = runner.invoke(app, ["validate", str(EXAMPLE), "--output", "json"])
    assert result.exit_code == 0
    document = json.loads(result.output)
    assert document["version"] == 1
    assert document["command"] == "validate"
    assert document["status"] == "valid"
    assert document["errors"] == []


def test_invalid_state_text_output_and_exit_code() -> None:
    case = CORPUS / "multi-error"
    result = runner.invoke(app, ["validate", str(case)])
    assert result.exit_code == 3
    lines = result.output.strip().splitlines()
    problems, summary = lines[:-1], lines[-1]
    assert len(problems) == 9
    for line in problems:
        assert re.match(rf"^{re.escape(case.as_posix())}/\S+:\d+:\d+: .+ \[[a-z-]+\]$", line), line
    assert f"{case.as_posix()}/environments/d.yaml:6:13: team/app: tag 'latest' is forbidden" in problems[0]
    assert summary.endswith("invalid, 9 problems in 6 files")


def test_invalid_state_json_envelope() -> None:
    result = runner.invoke(app, ["validate", str(CORPUS / "tag-two-digests"), "-o", "json"])
    assert result.exit_code == 3
    document = json.loads(result.output)
    assert document["status"] == "invalid"
    (error,) = document["errors"]
    assert set(error) == {"file", "line", "column", "code", "message"}
    assert error["file"].endswith("tag-two-digests/environments/s.yaml")
    assert (error["line"], error["column"], error["code"]) == (4, 7, "tag-digest-conflict")


def test_markdown_output() -> None:
    result = runner.invoke(app, ["validate", str(CORPUS / "latest-tag"), "-o", "markdown"])
    assert result.exit_code == 3
    assert result.output.startswith("**")
    assert "- `" in result.output
    assert "(`tag-forbidden`)" in result.output


def test_paths_are_relative_to_the_given_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(CORPUS / "latest-tag")
    result = runner.invoke(app, ["validate"])
    assert result.exit_code == 3
    assert result.output.startswith("environments/d.yaml:4:13: ")


def test_missing_directory_is_a_usage_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["validate", str(tmp_path / "nowhere")])
    assert result.exit_code == 2


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"reconciler {__version__}"


def test_schema_prints_both_kinds() -> None:
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0
    document = json.loads(result.output)
    assert set(document) == {"config", "environment"}
    assert document["config"]["title"] == "reconciler.yaml"
    only = json.loads(runner.invoke(app, ["schema", "--kind", "environment"]).output)
    assert only == document["environment"]
    assert runner.invoke(app, ["schema", "--kind", "nonsense"]).exit_code == 2


def test_shipped_schema_files_match_the_command() -> None:
    shipped = Path(__file__).resolve().parents[2] / "reconciler" / "schemas"
    assert json.loads((shipped / "reconciler.schema.json").read_text()) == load_schema("config")
    assert json.loads((shipped / "environment.schema.json").read_text()) == load_schema("environment")


def _example_documents() -> list[tuple[str, str, Any]]:
    yaml = YAML(typ="safe", pure=True)
    documents = [("config", "reconciler.yaml", yaml.load(EXAMPLE / "reconciler.yaml"))]
    for path in sorted((EXAMPLE / "environments").glob("*.yaml")):
        documents.append(("environment", f"environments/{path.name}", yaml.load(path)))
    return documents


@pytest.mark.parametrize(
    ("kind", "name", "document"), _example_documents(), ids=lambda v: v if isinstance(v, str) else ""
)
def test_examples_validate_against_the_schemas(kind: str, name: str, document: Any) -> None:
    schema = load_schema(kind)
    header = (EXAMPLE / name).read_text().splitlines()[0]
    target = "reconciler.schema.json" if kind == "config" else "environment.schema.json"
    assert header.startswith("# yaml-language-server: $schema=")
    assert (EXAMPLE / name).parent.joinpath(header.split("=", 1)[1]).resolve() == (
        Path(__file__).resolve().parents[2] / "reconciler" / "schemas" / target
    )
    jsonschema = _jsonschema()
    if jsonschema is not None:
        jsonschema.Draft202012Validator.check_schema(schema)
        jsonschema.validate(document, schema)
    assert _conforms(document, schema, schema) == [], f"{name} does not match the {kind} schema"


def _jsonschema() -> Any:
    try:
        import jsonschema
    except ImportError:
        return None
    return jsonschema


def _conforms(value: Any, schema: dict[str, Any], root: dict[str, Any], path: str = "$") -> list[str]:
    """A tiny checker for the keywords our schemas use, so the test needs no extra dependency."""
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/$defs/")
        return _conforms(value, root["$defs"][name], root, path)
    errors: list[str] = []
    types = schema.get("type")
    if types is not None:
        names = types if isinstance(types, list) else [types]
        python = {"object": dict, "array": list, "string": str, "boolean": bool, "integer": int, "null": type(None)}
        if not any(isinstance(value, python[t]) and not (t == "integer" and isinstance(value, bool)) for t in names):
            return [f"{path}: {value!r} is not {names}"]
    if "const" in schema and value != schema["const"]:
        errors.append(f"{path}: {value!r} != {schema['const']!r}")
    if "pattern" in schema and isinstance(value, str) and not re.search(schema["pattern"], value):
        errors.append(f"{path}: {value!r} does not match {schema['pattern']}")
    if "minimum" in schema and isinstance(value, int) and value < schema["minimum"]:
        errors.append(f"{path}: {value} < {schema['minimum']}")
    if "oneOf" in schema and sum(not _conforms(value, option, root, path) for option in schema["oneOf"]) != 1:
        errors.append(f"{path}: not exactly one of {schema['oneOf']}")
    if isinstance(value, dict):
        for key in schema.get("required", []):
            if key not in value:
                errors.append(f"{path}: missing {key}")
        properties = schema.get("properties", {})
        for key, item in value.items():
            if "propertyNames" in schema:
                errors += _conforms(key, schema["propertyNames"], root, f"{path}.{key}(name)")
            if key in properties:
                errors += _conforms(item, properties[key], root, f"{path}.{key}")
            elif schema.get("additionalProperties") is False:
                errors.append(f"{path}: unexpected {key}")
            elif isinstance(schema.get("additionalProperties"), dict):
                errors += _conforms(item, schema["additionalProperties"], root, f"{path}.{key}")
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            errors += _conforms(item, schema["items"], root, f"{path}[{index}]")
    return errors


def test_tiny_schema_checker_can_fail() -> None:
    schema = load_schema("environment")
    assert _conforms({"environment": "t", "images": {"a": [{"tag": "x", "digest": "sha256:1"}]}}, schema, schema)
    assert _conforms({"environment": "t", "images": {}, "extra": 1}, schema, schema)
    assert _conforms({"environment": "t", "images": {}}, schema, schema) == []


def test_registry_urls_follow_the_client_rule_and_never_repeat_credentials(tmp_path: Path) -> None:
    """Plain HTTP to a non-loopback host once passed validate and then killed plan with a ValueError
    traceback; a URL with user:password@ was printed back by validate. Both are problems now, found by the
    same rule the registry client applies, and plan stops at them with exit 3."""
    case = CORPUS / "bad-urls"
    for command in (["validate", str(case)], ["validate", str(case), "-o", "json"], ["plan", str(case)]):
        result = runner.invoke(app, command)
        assert result.exit_code == 3, (command, result.output)
        assert "s3cret-pass" not in result.output
        assert "deployer" not in result.output
        assert "Traceback" not in result.output
        assert "plain HTTP to registry-test.example.com needs an explicit opt-in" in result.output
