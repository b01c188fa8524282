"""Rules about base images (RL1xx): pinned, never ``latest``, and only the approved bases.

Seed sections 3 and 4.7: every production image is built on ``prod-osbase`` (through the
``osbase -> runtime -> app`` chain), and a base is pinned by version, never ``latest``. A ``FROM`` that
names an earlier stage (``FROM build``) or ``scratch`` names no image and is not checked; global ``ARG``
defaults are substituted first, and a base that still holds an unset variable is reported once (RL106)
instead of guessed at. Pure functions over a parsed Dockerfile; no I/O.
"""

from __future__ import annotations

from collections.abc import Iterator
from fnmatch import fnmatchcase

from reconciler.policy.lint.config import LintConfig
from reconciler.policy.lint.model import Violation
from reconciler.policy.lint.parse import BaseImage, ParsedDockerfile, Stage

_HUB_PREFIXES = (
    "docker.io/library/",
    "index.docker.io/library/",
    "registry-1.docker.io/library/",
    "docker.io/",
    "index.docker.io/",
    "registry-1.docker.io/",
)


def familiar_name(name: str) -> str:
    """Docker's short form: ``docker.io/library/ubuntu`` is ``ubuntu``, ``docker.io/bitnami/x`` is ``bitnami/x``."""
    for prefix in _HUB_PREFIXES:
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


def matches_any(name: str, patterns: tuple[str, ...]) -> bool:
    """True when the image name (or its familiar short form) matches one of the shell-style patterns."""
    short = familiar_name(name)
    return any(fnmatchcase(name, pattern) or fnmatchcase(short, familiar_name(pattern)) for pattern in patterns)


def _names_an_image(stage: Stage) -> bool:
    return stage.parent is None and not stage.base.is_scratch


def _where(stage: Stage) -> tuple[int, int]:
    return stage.start.line, stage.start.column


def _pinning(base: BaseImage, line: int, column: int) -> Iterator[Violation]:
    # hadolint DL3007 accepts ``latest`` when a digest pins it; the seed (4.7) forbids the tag outright
    if base.tag == "latest":
        yield Violation(
            rule="RL101",
            line=line,
            column=column,
            message=f"FROM {base.text}: never use the 'latest' tag; pin a version (and a digest)",
        )
    elif base.tag is None and base.digest is None:
        yield Violation(
            rule="RL102",
            line=line,
            column=column,
            message=f"FROM {base.text}: no tag; pin a version such as {base.name}:<version>",
        )
    elif base.digest is None:
        yield Violation(
            rule="RL103",
            line=line,
            column=column,
            message=f"FROM {base.text}: pinned by tag only; add @sha256:... so a moved tag cannot change it",
        )


def check_base_images(dockerfile: ParsedDockerfile, config: LintConfig) -> Iterator[Violation]:
    """RL101-RL106 on every FROM."""
    final = dockerfile.final_stage
    for stage in dockerfile.stages:
        if not _names_an_image(stage):
            continue
        line, column = _where(stage)
        base = stage.base
        if not base.resolved:
            yield Violation(
                rule="RL106",
                line=line,
                column=column,
                message=f"FROM {base.written}: a build argument without a default chooses the base; "
                "it cannot be checked (give the ARG a default)",
            )
            continue
        yield from _pinning(base, line, column)
        if config.approved_bases and not matches_any(base.name, config.approved_bases):
            yield Violation(
                rule="RL104",
                line=line,
                column=column,
                message=f"FROM {base.text}: {base.name} is not an approved base image "
                f"(approved: {', '.join(config.approved_bases)})",
            )
    if final is not None and config.final_bases:
        root = dockerfile.lineage(final)[-1]  # the stage at the bottom of the final stage's chain
        # scratch counts here: an image on scratch bypasses prod-osbase unless the config lists "scratch"
        if root.parent is None and root.base.resolved and not matches_any(root.base.name, config.final_bases):
            line, column = _where(final)
            built_on = "" if root is final else f" (through stage {root.alias or root.index})"
            yield Violation(
                rule="RL105",
                line=line,
                column=column,
                message=f"the image is built on {root.base.name}{built_on}, not on an approved production base "
                f"({', '.join(config.final_bases)}); production images build on prod-osbase",
            )
