"""The Dockerfile corpus: every ``corpus/<name>.Dockerfile`` is linted with ``corpus/.reconciler-lint.yaml``
and its findings must equal ``corpus/<name>.expected.json`` exactly (line, column, rule, severity and
message): a missing finding fails, and so does an unexpected one.

To regenerate the goldens after a deliberate change, run the suite with ``RECONCILER_UPDATE_GOLDENS=1``
and review the diff of ``tests/policy/lint/corpus/*.expected.json`` like code.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from reconciler.policy.lint import RULES, LintConfig, lint_text, parse_config

from .helpers import CORPUS

CASES = sorted(path.name.removesuffix(".Dockerfile") for path in CORPUS.glob("*.Dockerfile"))
UPDATE = os.environ.get("RECONCILER_UPDATE_GOLDENS") == "1"

NOT_IN_CORPUS = {"RL105": "needs final_bases, which the corpus config leaves unset; see test_rules and the examples"}


@pytest.fixture(scope="module")
def corpus_config() -> LintConfig:
    path = CORPUS / ".reconciler-lint.yaml"
    return parse_config(path.read_text(encoding="utf-8"), source=str(path))


def findings_of(name: str, config: LintConfig) -> list[dict[str, Any]]:
    text = (CORPUS / f"{name}.Dockerfile").read_bytes().decode("utf-8")
    return [
        {"line": f.line, "column": f.column, "rule": f.rule, "severity": str(f.severity), "message": f.message}
        for f in lint_text(text, path=f"{name}.Dockerfile", config=config)
    ]


@pytest.mark.parametrize("name", CASES)
def test_corpus_case(name: str, corpus_config: LintConfig) -> None:
    golden = CORPUS / f"{name}.expected.json"
    actual = findings_of(name, corpus_config)
    if UPDATE:
        golden.write_text(json.dumps(actual, indent=2) + "\n", encoding="utf-8")
    assert golden.exists(), f"{golden.name} is missing (RECONCILER_UPDATE_GOLDENS=1 writes it for review)"
    assert actual == json.loads(golden.read_text(encoding="utf-8"))


def test_corpus_is_large_and_every_golden_has_its_dockerfile() -> None:
    assert len(CASES) >= 40
    goldens = sorted(path.name.removesuffix(".expected.json") for path in CORPUS.glob("*.expected.json"))
    assert goldens == CASES
    assert sum(name.startswith("good-") for name in CASES) >= 8


def test_good_cases_are_clean(corpus_config: LintConfig) -> None:
    assert {name: findings_of(name, corpus_config) for name in CASES if name.startswith("good-")} == {
        name: [] for name in CASES if name.startswith("good-")
    }


def test_corpus_exercises_every_rule() -> None:
    seen = {finding["rule"] for name in CASES for finding in json.loads((CORPUS / f"{name}.expected.json").read_text())}
    assert seen == set(RULES) - set(NOT_IN_CORPUS)


@pytest.mark.parametrize(
    ("style", "present"),
    [
        ("heredoc", lambda text: "<<EOT\n" in text or "<<EOF\n" in text),
        ("escape directive", lambda text: text.startswith("# escape=`")),
        ("continuation", lambda text: "\\\n" in text),
        ("multi-stage", lambda text: text.count("FROM ") >= 2 and " AS " in text),
        ("exec-form RUN", lambda text: 'RUN ["' in text),
        ("CRLF line endings", lambda text: "\r\n" in text),
        ("lowercase instructions", lambda text: "\nrun " in text or "\n\trun " in text),
        ("yum", lambda text: "yum install" in text),
        ("dnf", lambda text: "dnf install" in text),
        ("apt", lambda text: "apt-get install" in text),
        ("apk", lambda text: "apk add" in text),
        ("shell-form CMD", lambda text: "\nCMD " in text and "\nCMD [" not in text),
        ("syntax directive", lambda text: text.startswith("# syntax=")),
    ],
)
def test_corpus_covers_style(style: str, present: Any) -> None:
    texts = [(CORPUS / f"{name}.Dockerfile").read_bytes().decode() for name in CASES]
    assert any(present(text) for text in texts), f"no corpus Dockerfile uses {style}"


def test_corpus_config_is_what_the_cli_finds(corpus_config: LintConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from reconciler.cli import app

    monkeypatch.chdir(CORPUS)
    result = CliRunner().invoke(app, ["lint-dockerfile", "--output", "json", "."])
    document = json.loads(result.stdout)
    assert document["config"] == ".reconciler-lint.yaml"
    assert len(document["files"]) == len(CASES)
    expected = sum(len(json.loads((CORPUS / f"{n}.expected.json").read_text())) for n in CASES)
    assert len(document["findings"]) == expected
    assert Path(document["files"][0]).name == f"{CASES[0]}.Dockerfile"
