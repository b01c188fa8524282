"""The Dockerfile linter: the seed's build rules (sections 3 and 4) as pure functions over a parsed file.

    from reconciler.policy.lint import lint_text, parse_config
    findings = lint_text(text, path="Dockerfile", config=parse_config(yaml_text, source=".reconciler-lint.yaml"))

Modules, bottom to top: ``model`` (severity, rule, violation, finding), ``catalog`` (every rule's stable
id, severity and hadolint equivalent), ``shell`` (a RUN script cut into simple commands), ``parse``
(BuildKit's parser, typed: instructions, stages, base images, comments), ``config`` (the YAML
configuration), ``rules_*`` (the rules), ``engine`` (run them, apply suppressions and configuration).

Nothing here reads a file or prints: the CLI finds and reads Dockerfiles and the config file and hands
their text in; ``reconciler.report.lint`` renders findings. Rules never raise to say "no".
"""

from __future__ import annotations

from reconciler.policy.lint.catalog import HADOLINT_EQUIVALENTS, RULES
from reconciler.policy.lint.config import (
    DEFAULT_CONFIG,
    DEFAULT_CONFIG_FILE,
    LintConfig,
    LintConfigError,
    config_from_mapping,
    parse_config,
)
from reconciler.policy.lint.engine import lint_parsed, lint_text
from reconciler.policy.lint.model import Finding, Rule, Severity, Violation
from reconciler.policy.lint.parse import DockerfileSyntaxError, ParsedDockerfile, parse_dockerfile

__all__ = [
    "DEFAULT_CONFIG",
    "DEFAULT_CONFIG_FILE",
    "HADOLINT_EQUIVALENTS",
    "RULES",
    "DockerfileSyntaxError",
    "Finding",
    "LintConfig",
    "LintConfigError",
    "ParsedDockerfile",
    "Rule",
    "Severity",
    "Violation",
    "config_from_mapping",
    "lint_parsed",
    "lint_text",
    "parse_config",
    "parse_dockerfile",
]
