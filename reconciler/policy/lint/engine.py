"""Lint one Dockerfile's text: parse, run every rule, apply suppressions and the configuration.

Suppression pragmas are comments on lines of their own, outside any instruction:

``# reconciler-lint ignore=RL301,RL307``
    silences those rules on the next instruction. The pragma must be directly above the instruction or
    separated from it only by other comment lines (a blank line ends its reach); a finding counts as on
    an instruction when it is reported at the instruction's first line.
``# reconciler-lint ignore-file=RL103``
    silences those rules in the whole file, wherever the comment is.
``# hadolint ignore=DL3059`` / ``# hadolint global ignore=DL3059``
    hadolint's own pragmas are honoured for our rules with the same intent (``DL3059`` -> ``RL301``),
    so a file already annotated for hadolint needs no second comment. Other DL/SC codes are ignored.

A ``reconciler-lint`` pragma naming an unknown rule, or one that does not parse, is itself a finding
(RL003): a typo must not silently stop suppressing. RL001 (the file does not parse) cannot be suppressed.

Pure: text in, findings out. The caller reads the file.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator

from reconciler.policy.lint.catalog import HADOLINT_EQUIVALENTS, RULES, UNSUPPRESSIBLE
from reconciler.policy.lint.config import DEFAULT_CONFIG, LintConfig
from reconciler.policy.lint.model import Finding, Violation
from reconciler.policy.lint.parse import (
    KNOWN_INSTRUCTIONS,
    Comment,
    DockerfileSyntaxError,
    ParsedDockerfile,
    parse_dockerfile,
)
from reconciler.policy.lint.rules_base import check_base_images
from reconciler.policy.lint.rules_image import check_add, check_commands, check_metadata, check_runtime, check_user
from reconciler.policy.lint.rules_run import (
    check_consecutive_runs,
    check_layer_order,
    check_package_caches,
    check_run_scripts,
)

Check = Callable[[ParsedDockerfile, LintConfig], Iterable[Violation]]

CHECKS: tuple[Check, ...] = (
    check_base_images,
    check_commands,
    check_add,
    check_consecutive_runs,
    check_package_caches,
    check_run_scripts,
    check_user,
    check_runtime,
    check_metadata,
    check_layer_order,
)
"""Every rule function. Each is pure and may report several related rules."""

_OURS = re.compile(r"^reconciler-lint\b\s*(?P<rest>.*)$")
_OUR_PRAGMA = re.compile(r"^(?P<kind>ignore|ignore-file)\s*=\s*(?P<ids>[A-Za-z0-9_,\s]+)$")
_HADOLINT_PRAGMA = re.compile(r"^hadolint\s+(?P<scope>global\s+)?ignore\s*=\s*(?P<ids>[A-Za-z0-9_,\s]+)$")


def _check_instructions(dockerfile: ParsedDockerfile) -> Iterator[Violation]:
    for instruction in dockerfile.instructions:
        if instruction.keyword not in KNOWN_INSTRUCTIONS:
            yield Violation(
                rule="RL002",
                line=instruction.line,
                column=instruction.column,
                message=f"unknown instruction {instruction.keyword}: docker build refuses the file",
            )


def find_violations(dockerfile: ParsedDockerfile, config: LintConfig = DEFAULT_CONFIG) -> list[Violation]:
    """Every rule's violations, before suppressions and before disabled rules are dropped."""
    violations = list(_check_instructions(dockerfile))
    for check in CHECKS:
        violations.extend(check(dockerfile, config))
    return violations


class Suppressions:
    """The pragmas of one file: rules silenced per instruction line and file-wide, and bad pragmas."""

    def __init__(self, dockerfile: ParsedDockerfile) -> None:
        self.by_line: dict[int, set[str]] = {}
        self.file_wide: set[str] = set()
        self.problems: list[Violation] = []
        comment_lines = {comment.line for comment in dockerfile.comments}
        starts = sorted(instruction.line for instruction in dockerfile.instructions)
        for comment in dockerfile.comments:
            parsed = self._parse(comment)
            if parsed is None:
                continue
            file_wide, rule_ids = parsed
            if file_wide:
                self.file_wide.update(rule_ids)
                continue
            target = next((line for line in starts if line > comment.line), None)
            if target is not None and all(line in comment_lines for line in range(comment.line + 1, target)):
                self.by_line.setdefault(target, set()).update(rule_ids)

    def _parse(self, comment: Comment) -> tuple[bool, set[str]] | None:
        """``(file_wide, rule ids)`` of a pragma comment, None for any other comment."""
        hadolint = _HADOLINT_PRAGMA.match(comment.text)
        if hadolint is not None:
            codes = {code.strip() for code in hadolint.group("ids").split(",")}
            return hadolint.group("scope") is not None, {
                HADOLINT_EQUIVALENTS[c] for c in codes if c in HADOLINT_EQUIVALENTS
            }
        ours = _OURS.match(comment.text)
        if ours is None:
            return None
        pragma = _OUR_PRAGMA.match(ours.group("rest"))
        if pragma is None:
            self.problems.append(
                Violation(
                    rule="RL003",
                    line=comment.line,
                    message=f"not a pragma: '# {comment.text}' (write '# reconciler-lint ignore=RL301[,RL307]' "
                    "or 'ignore-file=...')",
                )
            )
            return None
        rule_ids = {rule_id.strip().upper() for rule_id in pragma.group("ids").split(",") if rule_id.strip()}
        for rule_id in sorted(rule_ids - set(RULES)):
            self.problems.append(
                Violation(rule="RL003", line=comment.line, message=f"the pragma names {rule_id}, which is no rule")
            )
        for rule_id in sorted(rule_ids & UNSUPPRESSIBLE):
            self.problems.append(Violation(rule="RL003", line=comment.line, message=f"{rule_id} cannot be suppressed"))
        return pragma.group("kind") == "ignore-file", rule_ids & set(RULES) - UNSUPPRESSIBLE

    def silences(self, violation: Violation) -> bool:
        return violation.rule in self.file_wide or violation.rule in self.by_line.get(violation.line, ())


def lint_parsed(dockerfile: ParsedDockerfile, *, path: str, config: LintConfig = DEFAULT_CONFIG) -> list[Finding]:
    """Findings of a parsed Dockerfile, suppressions and configuration applied, in file order."""
    suppressions = Suppressions(dockerfile)
    kept = [v for v in find_violations(dockerfile, config) if not suppressions.silences(v)]
    kept.extend(suppressions.problems)
    return sorted(
        Finding(
            path=path, line=v.line, column=v.column, rule=v.rule, severity=config.severity_of(v.rule), message=v.message
        )
        for v in kept
        if v.rule not in config.disabled
    )


def lint_text(text: str, *, path: str, config: LintConfig = DEFAULT_CONFIG) -> list[Finding]:
    """Lint a Dockerfile's text; ``path`` is only used to label the findings."""
    try:
        dockerfile = parse_dockerfile(text)
    except DockerfileSyntaxError as exc:
        return [
            Finding(
                path=path,
                line=exc.line,
                column=1,
                rule="RL001",
                severity=config.severity_of("RL001"),
                message=f"BuildKit cannot parse the file: {exc.message}",
            )
        ]
    return lint_parsed(dockerfile, path=path, config=config)
