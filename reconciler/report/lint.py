"""Renderings of Dockerfile lint findings: text lines, the JSON envelope's payload, and SARIF 2.1.0.

* :func:`render_text`: one ``path:line:col: severity ID message`` line per finding (the format editors
  and CI logs link), then a summary line.
* :func:`json_payload`: the fields ``reconciler lint-dockerfile --output json`` puts in the versioned
  envelope (``files``, ``findings``, ``unreadable``, ``summary``); fields are only ever added.
* :func:`render_sarif`: the SARIF 2.1.0 log GitHub code scanning and GitLab read: every rule in
  ``tool.driver.rules`` (id, name, shortDescription, helpUri to its docs entry, defaultConfiguration
  level as configured, ``enabled: false`` when disabled), every finding a result with ruleId, ruleIndex,
  level, message and a physical location (artifact URI, startLine, startColumn); unreadable files are
  tool execution notifications and make ``executionSuccessful`` false.

Shaping only: no printing, no exit codes, no I/O.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any
from urllib.parse import quote

from reconciler.policy.lint import RULES, Finding, LintConfig, Severity

SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_VERSION = "2.1.0"
TOOL_NAME = "reconciler lint-dockerfile"

_SARIF_LEVELS = {Severity.error: "error", Severity.warning: "warning", Severity.info: "note"}


def lint_status(findings: Sequence[Finding], unreadable: Mapping[str, str]) -> str:
    """``failed`` (a file could not be read), ``violations`` (an error-severity finding), ``warnings``
    (only warnings and info) or ``clean``."""
    if unreadable:
        return "failed"
    if any(finding.severity is Severity.error for finding in findings):
        return "violations"
    return "warnings" if findings else "clean"


def _counts(findings: Sequence[Finding]) -> Counter[Severity]:
    return Counter(finding.severity for finding in findings)


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 or noun == 'info' else 's'}"


def render_text(findings: Sequence[Finding], *, files: Sequence[str], unreadable: Mapping[str, str]) -> str:
    """Finding lines in file order, then ``N files linted: E errors, W warnings, I info``."""
    counts = _counts(findings)
    lines = [str(finding) for finding in findings]
    summary = (
        f"{_plural(len(files), 'file')} linted: {_plural(counts[Severity.error], 'error')}, "
        f"{_plural(counts[Severity.warning], 'warning')}, {_plural(counts[Severity.info], 'info')}"
    )
    if unreadable:
        summary += f"; {_plural(len(unreadable), 'file')} could not be read"
    lines.append(summary)
    return "\n".join(lines)


def finding_json(finding: Finding) -> dict[str, Any]:
    return {
        "file": finding.path,
        "line": finding.line,
        "column": finding.column,
        "rule": finding.rule,
        "name": RULES[finding.rule].name,
        "severity": str(finding.severity),
        "message": finding.message,
        "hadolint": RULES[finding.rule].hadolint,
    }


def json_payload(findings: Sequence[Finding], *, files: Sequence[str], unreadable: Mapping[str, str]) -> dict[str, Any]:
    """The lint-specific fields of the JSON envelope (the CLI adds version, command and status)."""
    counts = _counts(findings)
    return {
        "files": list(files),
        "findings": [finding_json(finding) for finding in findings],
        "unreadable": [{"file": path, "error": reason} for path, reason in unreadable.items()],
        "summary": {
            "files": len(files),
            "errors": counts[Severity.error],
            "warnings": counts[Severity.warning],
            "info": counts[Severity.info],
        },
    }


def artifact_uri(path: str) -> str:
    """A file's SARIF ``artifactLocation.uri``: relative paths stay relative (code scanning resolves
    them against the repository root), absolute ones become ``file://`` URIs; both percent-encoded."""
    if PureWindowsPath(path).drive or path.startswith("/"):
        return "file://" + quote(PurePosixPath(path.replace("\\", "/")).as_posix(), safe="/:")
    return quote(PurePosixPath(path.replace("\\", "/")).as_posix().removeprefix("./"), safe="/")


def help_uri(rule_id: str, docs_url: str) -> str:
    return f"{docs_url}#{rule_id.lower()}"


def _location(path: str, line: int, column: int) -> dict[str, Any]:
    return {
        "physicalLocation": {
            "artifactLocation": {"uri": artifact_uri(path)},
            "region": {"startLine": line, "startColumn": column},
        }
    }


def sarif_rules(config: LintConfig) -> list[dict[str, Any]]:
    """``tool.driver.rules``: every rule, in id order (a result's ``ruleIndex`` points into this list)."""
    rules = []
    for rule in RULES.values():
        descriptor: dict[str, Any] = {
            "id": rule.id,
            "name": rule.name,
            "shortDescription": {"text": rule.summary},
            "helpUri": help_uri(rule.id, config.docs_url),
            "defaultConfiguration": {"level": _SARIF_LEVELS[config.severity_of(rule.id)]},
            "properties": {"tags": ["dockerfile", f"seed-{rule.seed}"]},
        }
        if rule.id in config.disabled:
            descriptor["defaultConfiguration"]["enabled"] = False
        if rule.hadolint is not None:
            descriptor["properties"]["hadolint"] = rule.hadolint
        rules.append(descriptor)
    return rules


def render_sarif(
    findings: Sequence[Finding],
    *,
    config: LintConfig,
    unreadable: Mapping[str, str],
    tool_version: str,
) -> dict[str, Any]:
    """A SARIF 2.1.0 log with one run (see the module docstring for what GitHub and GitLab read)."""
    index = {rule_id: position for position, rule_id in enumerate(RULES)}
    results = [
        {
            "ruleId": finding.rule,
            "ruleIndex": index[finding.rule],
            "level": _SARIF_LEVELS[finding.severity],
            "message": {"text": finding.message},
            "locations": [_location(finding.path, finding.line, finding.column)],
        }
        for finding in findings
    ]
    notifications = [
        {
            "level": "error",
            "message": {"text": f"{path}: {reason}"},
            "locations": [{"physicalLocation": {"artifactLocation": {"uri": artifact_uri(path)}}}],
        }
        for path, reason in unreadable.items()
    ]
    return {
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": TOOL_NAME,
                        "version": tool_version,
                        "rules": sarif_rules(config),
                    }
                },
                "invocations": [
                    {"executionSuccessful": not unreadable, "toolExecutionNotifications": notifications},
                ],
                "columnKind": "unicodeCodePoints",
                "results": results,
            }
        ],
    }
