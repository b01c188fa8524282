"""The rule catalogue: every rule's id, name, default severity, one-line summary, seed section and
hadolint equivalent. The ids are stable: a rule's id never changes meaning and a retired id is never
reused. They are grouped by hundreds:

    RL0xx  the file itself (syntax, unknown instructions, suppression pragmas)
    RL1xx  base images (FROM)
    RL2xx  how the container starts and how files get in (CMD, ENTRYPOINT, ADD)
    RL3xx  RUN scripts (layers, package caches, upgrades, cd, log files)
    RL4xx  the runtime contract (USER, WORKDIR, EXPOSE, VOLUME)
    RL5xx  metadata and configuration (LABEL, ENV, ARG)
    RL6xx  instruction order

``docs/dockerfile-lint.md`` has an entry per rule (anchor = the id in lower case). Data only.
"""

from __future__ import annotations

from types import MappingProxyType

from reconciler.policy.lint.model import Rule, Severity

E, W, I = Severity.error, Severity.warning, Severity.info  # noqa: E741  (short names keep the table readable)

_RULES = (
    Rule(id="RL001", name="syntax-error", severity=E, seed="4", summary="BuildKit cannot parse the Dockerfile"),
    Rule(id="RL002", name="unknown-instruction", severity=E, seed="4", summary="Unknown instruction"),
    Rule(id="RL003", name="unknown-rule-in-pragma", severity=W, seed="-", summary="A suppression names no rule"),
    Rule(id="RL101", name="base-latest", severity=E, seed="4.7", hadolint="DL3007",
         summary="Base image uses the `latest` tag"),
    Rule(id="RL102", name="base-untagged", severity=E, seed="4.7", hadolint="DL3006",
         summary="Base image has no tag: pin a version"),
    Rule(id="RL103", name="base-no-digest", severity=I, seed="4.7",
         summary="Base image is pinned by tag only: add its digest"),
    Rule(id="RL104", name="base-not-approved", severity=E, seed="3",
         summary="Base image is not one of the approved base images"),
    Rule(id="RL105", name="final-base-not-approved", severity=E, seed="3",
         summary="The final stage is not built on an approved production base"),
    Rule(id="RL106", name="base-unresolved", severity=I, seed="3",
         summary="Base image comes from a build argument without a default: not checked"),
    Rule(id="RL201", name="cmd-shell-form", severity=E, seed="4.2", hadolint="DL3025",
         summary="CMD/ENTRYPOINT in shell form: use exec form (JSON array)"),
    Rule(id="RL202", name="startup-script-wrapped", severity=W, seed="4.3",
         summary="Startup script started through a shell: it is not the container's process"),
    Rule(id="RL203", name="startup-not-script", severity=I, seed="4.3",
         summary="The container does not start through a /run.sh-style script"),
    Rule(id="RL204", name="add-instead-of-copy", severity=E, seed="4.4", hadolint="DL3020",
         summary="ADD where COPY does: ADD only to unpack a local tar archive"),
    Rule(id="RL301", name="consecutive-run", severity=W, seed="4.5", hadolint="DL3059",
         summary="Consecutive RUN instructions: merge them with &&"),
    Rule(id="RL302", name="yum-clean-missing", severity=E, seed="4.8", hadolint="DL3032",
         summary="`yum install` without `yum clean all` after it in the same RUN"),
    Rule(id="RL303", name="dnf-clean-missing", severity=E, seed="4.6", hadolint="DL3040",
         summary="`dnf`/`microdnf install` without `clean all` after it in the same RUN"),
    Rule(id="RL304", name="apt-lists-kept", severity=E, seed="4.6", hadolint="DL3009",
         summary="`apt-get update` without removing /var/lib/apt/lists/* in the same RUN"),
    Rule(id="RL305", name="apk-cache-kept", severity=E, seed="4.6", hadolint="DL3019",
         summary="`apk add` without `--no-cache`"),
    Rule(id="RL306", name="base-upgraded", severity=W, seed="3",
         summary="Upgrading the base image's packages: rebuild the base instead"),
    Rule(id="RL307", name="cd-in-run", severity=W, seed="4", hadolint="DL3003",
         summary="`cd` in RUN: use WORKDIR"),
    Rule(id="RL308", name="log-file-in-image", severity=W, seed="3",
         summary="A RUN writes a log file into the image: logs go to a mounted volume"),
    Rule(id="RL401", name="user-root", severity=E, seed="3", hadolint="DL3002",
         summary="The image runs as root: its last USER is root"),
    Rule(id="RL402", name="user-missing", severity=I, seed="3",
         summary="The final stage sets no USER: the image runs as its base's user"),
    Rule(id="RL403", name="user-switched-back", severity=W, seed="4",
         summary="USER switched back and forth within a stage"),
    Rule(id="RL404", name="workdir-relative", severity=E, seed="3", hadolint="DL3000",
         summary="WORKDIR is relative: use an absolute path"),
    Rule(id="RL405", name="expose-host-mapping", severity=E, seed="4",
         summary="EXPOSE with a host mapping (8080:8899): expose the container port only"),
    Rule(id="RL406", name="expose-invalid-port", severity=E, seed="4", hadolint="DL3011",
         summary="EXPOSE of a port outside 0-65535 or not a port"),
    Rule(id="RL407", name="expose-missing", severity=I, seed="4",
         summary="A service image exposes no port"),
    Rule(id="RL408", name="volume-missing", severity=I, seed="3",
         summary="A service image declares no VOLUME for its logs and data"),
    Rule(id="RL501", name="label-missing", severity=W, seed="4",
         summary="A required LABEL is missing from the image"),
    Rule(id="RL502", name="secret-in-env", severity=E, seed="3",
         summary="A secret-looking ENV/ARG has a literal value baked into the image"),
    Rule(id="RL503", name="version-not-in-env", severity=I, seed="4",
         summary="A download URL hard-codes a version: put it in ENV/ARG"),
    Rule(id="RL601", name="install-after-copy", severity=W, seed="4.1",
         summary="Packages installed after the application is copied: install first"),
)  # fmt: skip

RULES: MappingProxyType[str, Rule] = MappingProxyType({rule.id: rule for rule in _RULES})
"""Every rule by id, in id order."""

HADOLINT_EQUIVALENTS: MappingProxyType[str, str] = MappingProxyType(
    {rule.hadolint: rule.id for rule in _RULES if rule.hadolint is not None}
)
"""hadolint rule -> our rule of the same intent (``DL3007`` -> ``RL101``); used for ``# hadolint ignore=``."""

UNSUPPRESSIBLE = frozenset({"RL001"})
"""A file BuildKit cannot parse cannot be linted: that finding cannot be suppressed or disabled."""
