"""``reconciler lint-dockerfile`` through typer's CliRunner: exit codes, the three outputs, file discovery,
configuration and suppression, and errors that name the file without a traceback."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from typer.testing import CliRunner

from reconciler import __version__
from reconciler.cli import app
from reconciler.policy.lint import RULES

from .helpers import CORPUS, DIGEST

runner = CliRunner()

CLEAN = CORPUS / "good-java-app.Dockerfile"
WARNINGS_ONLY = CORPUS / "bad-consecutive-runs.Dockerfile"
ERRORS = CORPUS / "bad-latest.Dockerfile"

SARIF_MINIMAL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["version", "$schema", "runs"],
    "properties": {
        "version": {"const": "2.1.0"},
        "$schema": {"type": "string", "pattern": "sarif-2\\.1\\.0"},
        "runs": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["tool", "results"],
                "properties": {
                    "tool": {
                        "type": "object",
                        "required": ["driver"],
                        "properties": {
                            "driver": {
                                "type": "object",
                                "required": ["name", "rules"],
                                "properties": {
                                    "name": {"type": "string"},
                                    "version": {"type": "string"},
                                    "rules": {
                                        "type": "array",
                                        "items": {
                                            "type": "object",
                                            "required": ["id", "shortDescription", "helpUri", "defaultConfiguration"],
                                            "properties": {
                                                "id": {"type": "string", "pattern": "^RL[0-9]{3}$"},
                                                "shortDescription": {
                                                    "type": "object",
                                                    "required": ["text"],
                                                    "properties": {"text": {"type": "string", "minLength": 1}},
                                                },
                                                "helpUri": {"type": "string", "pattern": "#rl[0-9]{3}$"},
                                                "defaultConfiguration": {
                                                    "type": "object",
                                                    "required": ["level"],
                                                    "properties": {"level": {"enum": ["error", "warning", "note"]}},
                                                },
                                            },
                                        },
                                    },
                                },
                            }
                        },
                    },
                    "results": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["ruleId", "level", "message", "locations"],
                            "properties": {
                                "ruleId": {"type": "string", "pattern": "^RL[0-9]{3}$"},
                                "ruleIndex": {"type": "integer", "minimum": 0},
                                "level": {"enum": ["error", "warning", "note"]},
                                "message": {
                                    "type": "object",
                                    "required": ["text"],
                                    "properties": {"text": {"type": "string", "minLength": 1}},
                                },
                                "locations": {
                                    "type": "array",
                                    "minItems": 1,
                                    "items": {
                                        "type": "object",
                                        "required": ["physicalLocation"],
                                        "properties": {
                                            "physicalLocation": {
                                                "type": "object",
                                                "required": ["artifactLocation", "region"],
                                                "properties": {
                                                    "artifactLocation": {
                                                        "type": "object",
                                                        "required": ["uri"],
                                                        "properties": {"uri": {"type": "string", "minLength": 1}},
                                                    },
                                                    "region": {
                                                        "type": "object",
                                                        "required": ["startLine", "startColumn"],
                                                        "properties": {
                                                            "startLine": {"type": "integer", "minimum": 1},
                                                            "startColumn": {"type": "integer", "minimum": 1},
                                                        },
                                                    },
                                                },
                                            }
                                        },
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}
"""What GitHub code scanning and GitLab need of a SARIF 2.1.0 log, as a schema the output must satisfy."""


def invoke(*args: str) -> Any:
    result = runner.invoke(app, ["lint-dockerfile", *args])
    assert "Traceback" not in result.output
    return result


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def _no_config_in_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run from an empty directory so the repository's own files never act as configuration."""
    monkeypatch.chdir(tmp_path)


def test_clean_file_exits_0() -> None:
    result = invoke(str(CLEAN))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "1 file linted: 0 errors, 0 warnings, 0 info"


def test_warnings_only_exit_0_and_errors_exit_3() -> None:
    assert invoke(str(WARNINGS_ONLY)).exit_code == 0
    result = invoke(str(ERRORS), str(CLEAN))
    assert result.exit_code == 3
    lines = result.stdout.strip().splitlines()
    for line in lines[:-1]:
        assert re.match(r"^\S+:\d+:\d+: (error|warning|info) RL\d{3} .+$", line), line
    latest = "FROM ubuntu:latest: never use the 'latest' tag; pin a version (and a digest)"
    assert lines[0] == f"{ERRORS.as_posix()}:1:1: error RL101 {latest}"
    assert lines[-1] == "2 files linted: 3 errors, 2 warnings, 1 info"


def test_json_envelope() -> None:
    result = invoke("--output", "json", str(ERRORS))
    assert result.exit_code == 3
    document = json.loads(result.stdout)
    assert document["version"] == 1
    assert document["command"] == "lint-dockerfile"
    assert document["status"] == "violations"
    assert document["config"] is None
    assert document["files"] == [ERRORS.as_posix()]
    assert document["summary"] == {"files": 1, "errors": 3, "warnings": 2, "info": 1}
    assert document["findings"][0] == {
        "file": ERRORS.as_posix(), "line": 1, "column": 1, "rule": "RL101", "name": "base-latest",
        "severity": "error", "message": "FROM ubuntu:latest: never use the 'latest' tag; pin a version (and a digest)",
        "hadolint": "DL3007",
    }  # fmt: skip
    assert json.loads(invoke("-o", "json", str(CLEAN)).stdout)["status"] == "clean"
    assert json.loads(invoke("-o", "json", str(WARNINGS_ONLY)).stdout)["status"] == "warnings"


def test_sarif_shape() -> None:
    result = invoke("--output", "sarif", str(ERRORS), str(WARNINGS_ONLY))
    assert result.exit_code == 3
    log = json.loads(result.stdout)
    jsonschema.validate(log, SARIF_MINIMAL_SCHEMA)
    run = log["runs"][0]
    driver = run["tool"]["driver"]
    assert driver["version"] == __version__
    assert [rule["id"] for rule in driver["rules"]] == list(RULES)
    assert driver["rules"][0]["helpUri"] == "docs/dockerfile-lint.md#rl001"
    levels = {rule["id"]: rule["defaultConfiguration"]["level"] for rule in driver["rules"]}
    assert levels["RL101"] == "error"
    assert levels["RL301"] == "warning"
    assert levels["RL103"] == "note"
    assert run["invocations"][0]["executionSuccessful"] is True
    for item in run["results"]:
        assert driver["rules"][item["ruleIndex"]]["id"] == item["ruleId"]
    first = run["results"][0]
    assert first["ruleId"] == "RL101"
    assert first["level"] == "error"
    assert first["locations"][0]["physicalLocation"] == {
        "artifactLocation": {"uri": ERRORS.as_uri()},
        "region": {"startLine": 1, "startColumn": 1},
    }
    assert {item["level"] for item in run["results"]} == {"error", "warning", "note"}


def test_sarif_relative_uris_and_disabled_rules(tmp_path: Path) -> None:
    write(tmp_path / "svc" / "Dockerfile", "FROM ubuntu\n")
    write(tmp_path / "lint.yaml", "disable: [RL103]\ndocs_url: https://docs.example.com/lint.md\n")
    log = json.loads(invoke("-o", "sarif", "-c", "lint.yaml", "svc").stdout)
    run = log["runs"][0]
    assert run["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == "svc/Dockerfile"
    rules = {rule["id"]: rule for rule in run["tool"]["driver"]["rules"]}
    assert rules["RL103"]["defaultConfiguration"] == {"level": "note", "enabled": False}
    assert rules["RL101"]["helpUri"] == "https://docs.example.com/lint.md#rl101"
    assert rules["RL101"]["properties"] == {"tags": ["dockerfile", "seed-4.7"], "hadolint": "DL3007"}


def test_directory_discovery(tmp_path: Path) -> None:
    for name in ("Dockerfile", "api.Dockerfile", "Dockerfile.prod", "sub/Dockerfile", ".git/Dockerfile",
                 "Dockerfile.dockerignore", "notes.txt", "dockerfile.md"):  # fmt: skip
        write(tmp_path / "repo" / name, f"FROM ubuntu:22.04@{DIGEST}\nUSER app\n")
    document = json.loads(invoke("-o", "json", "repo").stdout)
    assert document["files"] == [
        "repo/Dockerfile",
        "repo/Dockerfile.prod",
        "repo/api.Dockerfile",
        "repo/sub/Dockerfile",
    ]


def test_a_file_named_twice_is_linted_once() -> None:
    document = json.loads(invoke("-o", "json", str(CLEAN), str(CLEAN), str(CORPUS)).stdout)
    assert document["files"].count(CLEAN.as_posix()) == 1


def test_directory_without_dockerfiles_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = invoke("empty")
    assert result.exit_code == 2
    assert "empty: no Dockerfile, *.Dockerfile or Dockerfile.* under this directory" in result.output


def test_missing_path_is_a_usage_error() -> None:
    result = invoke("does-not-exist")
    assert result.exit_code == 2
    assert "does-not-exist" in result.output


def test_unreadable_file_exits_1_and_others_are_still_linted(tmp_path: Path) -> None:
    (tmp_path / "repo").mkdir()
    (tmp_path / "repo" / "Dockerfile").write_bytes(b"FROM ubuntu\n\xff\xfe\n")
    (tmp_path / "repo" / "gone.Dockerfile").symlink_to(tmp_path / "nowhere")
    write(tmp_path / "repo" / "ok.Dockerfile", "FROM ubuntu:latest\n")
    result = invoke("-o", "json", "repo")
    assert result.exit_code == 1  # a failure outranks the violation in ok.Dockerfile
    assert "error: repo/Dockerfile: not UTF-8 text (byte 12)" in result.stderr
    assert "error: repo/gone.Dockerfile: No such file or directory" in result.stderr
    document = json.loads(result.stdout)
    assert document["status"] == "failed"
    assert next(finding["rule"] for finding in document["findings"]) == "RL101"
    assert {item["file"] for item in document["unreadable"]} == {"repo/Dockerfile", "repo/gone.Dockerfile"}
    sarif = json.loads(invoke("-o", "sarif", "repo").stdout)
    assert sarif["runs"][0]["invocations"][0]["executionSuccessful"] is False
    assert len(sarif["runs"][0]["invocations"][0]["toolExecutionNotifications"]) == 2


def test_unparsable_dockerfile_is_a_violation_not_a_crash(tmp_path: Path) -> None:
    write(tmp_path / "Dockerfile", "FROM ubuntu:22.04\nENV ONLY_A_NAME\n")
    result = invoke("Dockerfile")
    assert result.exit_code == 3
    assert result.stdout.startswith("Dockerfile:2:1: error RL001 BuildKit cannot parse the file: ENV must have two")


def test_config_in_current_directory_is_used(tmp_path: Path) -> None:
    write(tmp_path / "Dockerfile", "FROM nginx:1.25\nUSER app\n")
    write(tmp_path / ".reconciler-lint.yaml", "approved_bases: [registry.example.com/base/*]\nrequired_labels: []\n")
    result = invoke("-o", "json", "Dockerfile")
    document = json.loads(result.stdout)
    assert document["config"] == ".reconciler-lint.yaml"
    assert [finding["rule"] for finding in document["findings"]] == ["RL103", "RL104"]
    assert result.exit_code == 3


def test_explicit_config_wins(tmp_path: Path) -> None:
    write(tmp_path / "Dockerfile", "FROM ubuntu:22.04\nRUN a\nRUN b\nUSER app\n")
    write(tmp_path / ".reconciler-lint.yaml", "severity: {RL301: error}\n")
    write(tmp_path / "other.yaml", "disable: [RL103, RL301, RL501]\n")
    assert invoke("Dockerfile").exit_code == 3
    result = invoke("--config", "other.yaml", "Dockerfile")
    assert result.exit_code == 0
    assert result.stdout.strip() == "1 file linted: 0 errors, 0 warnings, 0 info"


@pytest.mark.parametrize(
    ("config_text", "message"),
    [
        (
            "approved_base: [x]\n",
            "error: invalid lint configuration: .reconciler-lint.yaml: unknown key 'approved_base'",
        ),
        (
            "severity: {RL301: fatal}\n",
            "error: invalid lint configuration: .reconciler-lint.yaml: severity.RL301: 'fatal'",
        ),
        ("key: [unclosed\n", "error: invalid lint configuration: .reconciler-lint.yaml: not valid YAML"),
    ],
)
def test_bad_config_exits_2_naming_the_file(tmp_path: Path, config_text: str, message: str) -> None:
    write(tmp_path / "Dockerfile", "FROM ubuntu:22.04\n")
    write(tmp_path / ".reconciler-lint.yaml", config_text)
    result = invoke("Dockerfile")
    assert result.exit_code == 2
    assert result.stderr.startswith(message), result.stderr
    assert result.stdout == ""


def test_missing_config_file_is_a_usage_error(tmp_path: Path) -> None:
    write(tmp_path / "Dockerfile", "FROM ubuntu:22.04\n")
    assert invoke("--config", "nope.yaml", "Dockerfile").exit_code == 2


def test_suppression_through_the_cli(tmp_path: Path) -> None:
    write(tmp_path / "Dockerfile", "FROM ubuntu:22.04\n# reconciler-lint ignore=RL401\nUSER root\n")
    write(tmp_path / ".reconciler-lint.yaml", "required_labels: []\ndisable: [RL103]\n")
    assert invoke("Dockerfile").stdout.strip() == "1 file linted: 0 errors, 0 warnings, 0 info"
    write(tmp_path / "Dockerfile", "FROM ubuntu:22.04\nUSER root\n")
    assert invoke("Dockerfile").exit_code == 3


def test_usage_errors_exit_2() -> None:
    assert invoke().exit_code == 2
    assert invoke("--output", "xml", str(CLEAN)).exit_code == 2


def test_help_lists_the_command() -> None:
    result = runner.invoke(app, ["--help"])
    assert "lint-dockerfile" in result.output
