"""``.reconciler-lint.yaml``: defaults, every setting, and a clear error naming the key for anything else."""

from __future__ import annotations

import pytest

from reconciler.policy.lint import DEFAULT_CONFIG, LintConfigError, Severity, parse_config
from reconciler.policy.lint.config import DEFAULT_REQUIRED_LABELS


def test_empty_file_is_the_default() -> None:
    assert parse_config("", source="c.yaml") == DEFAULT_CONFIG
    assert parse_config("# only a comment\n", source="c.yaml") == DEFAULT_CONFIG
    assert (
        DEFAULT_CONFIG.required_labels == DEFAULT_REQUIRED_LABELS == ("maintainer", "org.opencontainers.image.source")
    )


def test_every_setting() -> None:
    config = parse_config(
        """
version: 1
approved_bases: [registry.example.com/base/*, rockylinux]
final_bases: [registry.example.com/base/prod-osbase]
required_labels: [maintainer]
allow_remote_add: true
disable: [RL103, RL407]
severity: {RL301: error, RL501: info}
docs_url: https://git.example.com/reconciler/-/blob/main/docs/dockerfile-lint.md
""",
        source="c.yaml",
    )
    assert config.approved_bases == ("registry.example.com/base/*", "rockylinux")
    assert config.final_bases == ("registry.example.com/base/prod-osbase",)
    assert config.required_labels == ("maintainer",)
    assert config.allow_remote_add is True
    assert config.disabled == {"RL103", "RL407"}
    assert config.severity_of("RL301") is Severity.error
    assert config.severity_of("RL501") is Severity.info
    assert config.severity_of("RL101") is Severity.error  # not overridden: the rule's own
    assert config.docs_url.endswith("/docs/dockerfile-lint.md")


def test_required_labels_may_be_emptied() -> None:
    assert parse_config("required_labels: []\n", source="c").required_labels == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("approved_base: [x]\n", "c.yaml: unknown key 'approved_base' (known keys: version, approved_bases"),
        ("- a\n- b\n", "c.yaml: must be a mapping of settings, not list"),
        ("approved_bases: ubuntu\n", "c.yaml: approved_bases: must be a list of non-empty strings"),
        ("approved_bases: ['']\n", "c.yaml: approved_bases: must be a list of non-empty strings"),
        ("disable: [RL999]\n", "c.yaml: disable: unknown rule 'RL999'"),
        ("disable: [RL001]\n", "c.yaml: disable: RL001 cannot be disabled"),
        ("severity: {RL301: fatal}\n", "c.yaml: severity.RL301: 'fatal' is not one of error, warning, info"),
        ("severity: [RL301]\n", "c.yaml: severity: must be a mapping of rule id to error, warning or info"),
        ("allow_remote_add: yes please\n", "c.yaml: allow_remote_add: must be true or false"),
        ("version: 2\n", "c.yaml: version: 2 is not supported (use 1)"),
        ("approved_bases: [a\n", "c.yaml: not valid YAML"),
        ("disable: []\ndisable: [RL103]\n", "c.yaml: not valid YAML"),
    ],
)
def test_invalid_configuration_names_file_and_key(text: str, message: str) -> None:
    with pytest.raises(LintConfigError) as raised:
        parse_config(text, source="c.yaml")
    assert str(raised.value).startswith(message), str(raised.value)
