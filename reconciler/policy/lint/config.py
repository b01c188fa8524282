"""The linter's configuration (``.reconciler-lint.yaml``): plain data, loaded and defaulted in one place.

    version: 1                       # optional; the only version there is
    approved_bases:                  # RL104: every FROM must name one of these (shell-style patterns)
      - registry.example.com/base/*
    final_bases:                     # RL105: the final stage must be built on one of these
      - registry.example.com/base/prod-osbase
      - registry.example.com/runtime/*
    required_labels: [maintainer, org.opencontainers.image.source]   # RL501 (this is the default)
    allow_remote_add: false          # RL204: true lets ADD fetch a URL (a --checksum always does)
    disable: [RL103]                 # rules not to run
    severity: {RL301: error}         # per-rule severity overrides: error, warning or info

Patterns match the image name without tag or digest; ``ubuntu`` also matches ``docker.io/library/ubuntu``.
An empty ``approved_bases`` (the default) or ``final_bases`` turns that check off.

:func:`parse_config` takes the text (the CLI reads the file) and raises :class:`LintConfigError` naming the
file and the key on anything it does not understand: a typo in a policy file must never weaken the policy
silently. It never reads a file itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from reconciler.errors import ReconcilerError
from reconciler.policy.lint.catalog import RULES, UNSUPPRESSIBLE
from reconciler.policy.lint.model import Severity

DEFAULT_CONFIG_FILE = ".reconciler-lint.yaml"
"""Looked up in the current directory when ``--config`` is not given."""

DEFAULT_REQUIRED_LABELS = ("maintainer", "org.opencontainers.image.source")
"""Seed section 4: the image carries its maintainer and the address of the repository it is built from."""

DEFAULT_DOCS_URL = "docs/dockerfile-lint.md"
"""Where rule documentation lives (SARIF ``helpUri`` is this plus ``#<rule id>``); set ``docs_url`` to the
address the repository is browsed at to make the links absolute."""

_KEYS = (
    "version",
    "approved_bases",
    "final_bases",
    "required_labels",
    "allow_remote_add",
    "disable",
    "severity",
    "docs_url",
)


class LintConfigError(ReconcilerError):
    """The lint configuration file is unreadable or invalid; the message names the file and the key."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LintConfig:
    """What the rules may be told. The defaults are what a repository without a config file gets."""

    approved_bases: tuple[str, ...] = ()
    final_bases: tuple[str, ...] = ()
    required_labels: tuple[str, ...] = DEFAULT_REQUIRED_LABELS
    allow_remote_add: bool = False
    disabled: frozenset[str] = frozenset()
    severities: Mapping[str, Severity] = field(default_factory=lambda: MappingProxyType({}))
    docs_url: str = DEFAULT_DOCS_URL

    def severity_of(self, rule_id: str) -> Severity:
        return self.severities.get(rule_id) or RULES[rule_id].severity


DEFAULT_CONFIG = LintConfig()


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) and item.strip() for item in value):
        raise LintConfigError(f"{where}: must be a list of non-empty strings")
    return tuple(item.strip() for item in value)


def _rule_ids(values: tuple[str, ...], where: str) -> tuple[str, ...]:
    for rule_id in values:
        if rule_id not in RULES:
            raise LintConfigError(f"{where}: unknown rule {rule_id!r} (rules are RL001..{max(RULES)})")
        if rule_id in UNSUPPRESSIBLE:
            raise LintConfigError(f"{where}: {rule_id} cannot be disabled (an unparsable file cannot be linted)")
    return values


def _severities(value: Any, where: str) -> Mapping[str, Severity]:
    if not isinstance(value, dict):
        raise LintConfigError(f"{where}: must be a mapping of rule id to error, warning or info")
    result: dict[str, Severity] = {}
    for rule_id, level in value.items():
        _rule_ids((str(rule_id),), where)
        if level not in Severity.__members__:
            raise LintConfigError(f"{where}.{rule_id}: {level!r} is not one of error, warning, info")
        result[str(rule_id)] = Severity(level)
    return MappingProxyType(result)


def config_from_mapping(document: Mapping[str, Any], *, source: str) -> LintConfig:
    """Validate an already-loaded document (the YAML's top-level mapping) into a :class:`LintConfig`."""
    unknown = sorted(str(key) for key in document if key not in _KEYS)
    if unknown:
        raise LintConfigError(f"{source}: unknown key {unknown[0]!r} (known keys: {', '.join(_KEYS)})")
    if document.get("version", 1) != 1:
        raise LintConfigError(f"{source}: version: {document['version']!r} is not supported (use 1)")
    allow_remote_add = document.get("allow_remote_add", False)
    if not isinstance(allow_remote_add, bool):
        raise LintConfigError(f"{source}: allow_remote_add: must be true or false")
    docs_url = document.get("docs_url", DEFAULT_DOCS_URL)
    if not isinstance(docs_url, str) or not docs_url:
        raise LintConfigError(f"{source}: docs_url: must be a non-empty string")
    labels = document.get("required_labels")
    return LintConfig(
        approved_bases=_strings(document.get("approved_bases", []), f"{source}: approved_bases"),
        final_bases=_strings(document.get("final_bases", []), f"{source}: final_bases"),
        required_labels=DEFAULT_REQUIRED_LABELS if labels is None else _strings(labels, f"{source}: required_labels"),
        allow_remote_add=allow_remote_add,
        disabled=frozenset(
            _rule_ids(_strings(document.get("disable", []), f"{source}: disable"), f"{source}: disable")
        ),
        severities=_severities(document.get("severity", {}), f"{source}: severity"),
        docs_url=docs_url.rstrip("#"),
    )


def parse_config(text: str, *, source: str) -> LintConfig:
    """Parse the YAML text of a lint configuration; ``source`` (the file name) goes into every error."""
    from ruamel.yaml import YAML  # noqa: PLC0415  (only a run with a config file pays for the import)
    from ruamel.yaml.error import YAMLError  # noqa: PLC0415

    try:
        document = YAML(typ="safe", pure=False).load(text)
    except YAMLError as exc:
        raise LintConfigError(f"{source}: not valid YAML: {' '.join(str(exc).split())}") from exc
    if document is None:
        return DEFAULT_CONFIG
    if not isinstance(document, dict):
        raise LintConfigError(f"{source}: must be a mapping of settings, not {type(document).__name__}")
    return config_from_mapping(document, source=source)
