"""Shared helpers: lint a snippet, find the hadolint binary (failing, never skipping, when it is missing)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reconciler.policy.lint import LintConfig, config_from_mapping, lint_text

CORPUS = Path(__file__).resolve().parent / "corpus"
EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "dockerfiles"
DIGEST = "sha256:" + "3f5ef2ba6f2f1a1e6ed1c1b1b1d9d0d8c6a2e6f1c9b7a4e8d2f0c1b3a5e7d9f1"


def config(**settings: Any) -> LintConfig:
    return config_from_mapping(settings, source="test")


def rules(text: str, **settings: Any) -> list[tuple[int, str]]:
    """``(line, rule id)`` of every finding of a snippet, in file order."""
    return [(finding.line, finding.rule) for finding in lint_text(text, path="Dockerfile", config=config(**settings))]


def fired(text: str, rule: str, **settings: Any) -> list[int]:
    """The lines where ``rule`` fires."""
    return [line for line, rule_id in rules(text, **settings) if rule_id == rule]
