"""Rules about RUN scripts (RL3xx) and instruction order (RL601).

Seed section 4: merge commands into one RUN (4.5), remove caches in the step that made them (4.6), run
``yum clean all`` after installing (4.8), prefer WORKDIR to ``RUN cd``, order layers from general to
specific (4.1); section 3: a fixed base (no upgrades in derived images) and logs on a mounted volume,
never in the image. Rules that hadolint also has follow its semantics (which commands count, which
stages, ``ONBUILD``); the differences are deliberate and listed in ``docs/dockerfile-lint.md``.

Pure functions over a parsed Dockerfile: they read :attr:`Instruction.commands` (the simple commands a
RUN executes, see ``shell.py``) and never run or read anything.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from reconciler.policy.lint.config import LintConfig
from reconciler.policy.lint.model import Violation
from reconciler.policy.lint.parse import Instruction, ParsedDockerfile
from reconciler.policy.lint.shell import SimpleCommand

_UPGRADES = {
    "yum": {"update", "upgrade", "update-minimal", "upgrade-minimal", "distro-sync"},
    "dnf": {"update", "upgrade", "update-minimal", "upgrade-minimal", "distro-sync"},
    "microdnf": {"update", "upgrade"},
    "apt-get": {"upgrade", "dist-upgrade", "full-upgrade"},
    "apt": {"upgrade", "dist-upgrade", "full-upgrade"},
    "apk": {"upgrade"},
    "zypper": {"update", "up", "dist-upgrade", "dup"},
}
"""Package-manager subcommands that upgrade what the base image installed (seed 3: a fixed base)."""

_INSTALLS = {
    "apt-get": "install",
    "apt": "install",
    "yum": "install",
    "dnf": "install",
    "microdnf": "install",
    "apk": "add",
    "zypper": "install",
}
"""OS package managers and the subcommand that installs packages (RL601)."""


def _first(commands: Iterable[SimpleCommand], predicate: Callable[[SimpleCommand], bool]) -> int | None:
    for index, command in enumerate(commands):
        if predicate(command):
            return index
    return None


def _removes(command: SimpleCommand, *prefixes: str) -> bool:
    return command.name == "rm" and any(argument.startswith(prefixes) for argument in command.arguments)


def _cleans_after_install(commands: tuple[SimpleCommand, ...], manager: str, *cache_dirs: str) -> bool:
    """True when the RUN installs nothing with ``manager``, or cleans its cache after the first install."""
    install = _first(commands, lambda c: c.name == manager and c.has_argument("install"))
    if install is None:
        return True
    return any(
        (command.name == manager and command.has_argument("clean") and command.has_argument("all"))
        or _removes(command, *cache_dirs)
        for command in commands[install + 1 :]
    )


def check_consecutive_runs(dockerfile: ParsedDockerfile, config: LintConfig) -> Iterator[Violation]:
    """RL301 (hadolint DL3059): two RUNs in a row, each running one command, with the same flags.

    A RUN that already chains commands is left alone (its author chose the split), as are RUNs whose
    ``--mount``/``--network`` flags differ; any other instruction in between breaks the run, a comment
    does not."""
    previous: Instruction | None = None
    for instruction in dockerfile.instructions:
        if instruction.keyword != "RUN":
            previous = None
            continue
        if (
            previous is not None
            and sorted(previous.flags) == sorted(instruction.flags)
            and len(previous.commands) <= 1
            and len(instruction.commands) <= 1
        ):
            yield Violation(
                rule="RL301",
                line=instruction.line,
                column=instruction.column,
                message=f"RUN follows the RUN on line {previous.line}: merge them with && into one layer",
            )
        previous = instruction


def _cache_targets(instruction: Instruction) -> list[str]:
    """Targets of ``--mount=type=cache,target=...``: directories that never reach a layer."""
    targets = []
    for mount in instruction.flag_values("mount"):
        options = dict(part.partition("=")[::2] for part in mount.split(","))
        if options.get("type") == "cache":
            targets.append(options.get("target") or options.get("dst") or options.get("destination") or "")
    return targets


def _apt_cache_mounted(instruction: Instruction) -> bool:
    """hadolint's test: the lists directory is a cache mount, or both /var/lib/apt and /var/cache/apt are."""
    targets = _cache_targets(instruction)
    if any(target.startswith("/var/lib/apt/lists") for target in targets):
        return True
    return any(t.startswith("/var/lib/apt") for t in targets) and any(t.startswith("/var/cache/apt") for t in targets)


def _apt_lists_kept(instruction: Instruction) -> bool:
    commands = instruction.commands
    updates = [i for i, c in enumerate(commands) if c.name in ("apt-get", "apt") and c.has_argument("update")]
    if not updates or _apt_cache_mounted(instruction):
        return False
    return not any(_removes(command, "/var/lib/apt/lists") for command in commands[updates[-1] + 1 :])


def check_package_caches(dockerfile: ParsedDockerfile, config: LintConfig) -> Iterator[Violation]:
    """RL302-RL305: the package manager's cache is removed in the RUN that filled it (also ``ONBUILD RUN``).

    apt lists (RL304) count only in stages that end up in an image (the final stage and stages a later
    FROM builds on), as hadolint's DL3009 does: a builder stage's lists are thrown away with it."""
    final = dockerfile.final_stage
    built_on = {stage.parent for stage in dockerfile.stages if stage.parent is not None}
    for stage in dockerfile.stages:
        shipped = stage is final or stage.index in built_on
        for instruction in stage.instructions:
            if not instruction.runs:
                continue
            commands, line, column = instruction.commands, instruction.line, instruction.column
            if not _cleans_after_install(commands, "yum", "/var/cache/yum"):
                yield Violation(
                    rule="RL302",
                    line=line,
                    column=column,
                    message="yum install without `yum clean all` after it in the same RUN",
                )
            for manager in ("dnf", "microdnf"):
                if not _cleans_after_install(commands, manager, "/var/cache/dnf", "/var/cache/yum"):
                    yield Violation(
                        rule="RL303",
                        line=line,
                        column=column,
                        message=f"{manager} install without `{manager} clean all` after it in the same RUN",
                    )
                    break
            if shipped and _apt_lists_kept(instruction):
                yield Violation(
                    rule="RL304",
                    line=line,
                    column=column,
                    message="apt-get update without `rm -rf /var/lib/apt/lists/*` after it in the same RUN",
                )
            if any(c.name == "apk" and c.has_argument("add") and not c.has_flag("no-cache") for c in commands):
                yield Violation(
                    rule="RL305",
                    line=line,
                    column=column,
                    message="apk add without --no-cache leaves the index in /var/cache/apk",
                )


def check_run_scripts(dockerfile: ParsedDockerfile, config: LintConfig) -> Iterator[Violation]:
    """RL306 upgrades of the base, RL307 ``cd`` (hadolint DL3003), RL308 log files written into the image."""
    for instruction in dockerfile.instructions:
        if instruction.keyword != "RUN":
            continue
        line, column = instruction.line, instruction.column
        upgrade = next(
            (c for c in instruction.commands if c.name in _UPGRADES and set(c.arguments) & _UPGRADES[c.name]),
            None,
        )
        if upgrade is not None:
            verb = sorted(set(upgrade.arguments) & _UPGRADES[upgrade.name])[0]
            yield Violation(
                rule="RL306",
                line=line,
                column=column,
                message=f"`{upgrade.name} {verb}` upgrades the base image's packages: rebuild the base image "
                "(osbase/runtime) instead, so every image on it stays the same",
            )
        if any(command.name == "cd" for command in instruction.commands):
            yield Violation(rule="RL307", line=line, column=column, message="cd in RUN: set the directory with WORKDIR")
        log_file = _log_file_written(instruction.commands)
        if log_file is not None:
            yield Violation(
                rule="RL308",
                line=line,
                column=column,
                message=f"writes {log_file} into the image: logs belong on a mounted VOLUME, not in a layer",
            )


def _is_log_path(path: str) -> bool:
    return not path.startswith("/dev/") and (path.endswith(".log") or path.startswith("/var/log/"))


def _log_file_written(commands: tuple[SimpleCommand, ...]) -> str | None:
    for command in commands:
        for redirect in command.redirects:
            if ">" in redirect.operator and "&" not in redirect.operator.lstrip("&") and _is_log_path(redirect.target):
                return redirect.target
        if command.name == "tee":
            for argument in command.positional():
                if _is_log_path(argument):
                    return argument
    return None


def _copies_application(instruction: Instruction) -> bool:
    """COPY/ADD of build-context files that are not package-manager configuration or install material."""
    if instruction.keyword not in ("COPY", "ADD") or instruction.flag("from") is not None or instruction.heredocs:
        return False
    destination = instruction.arguments[-1] if instruction.arguments else ""
    return not destination.startswith(("/etc/", "/tmp/"))  # noqa: S108  (a path in the image, not a temp file)


def check_layer_order(dockerfile: ParsedDockerfile, config: LintConfig) -> Iterator[Violation]:
    """RL601: within a stage, OS packages are installed before the application's files are copied in."""
    for stage in dockerfile.stages:
        copied: Instruction | None = None
        for instruction in stage.instructions:
            if copied is None and _copies_application(instruction):
                copied = instruction
            elif copied is not None and instruction.keyword == "RUN":
                install = next(
                    (c for c in instruction.commands if c.name in _INSTALLS and c.has_argument(_INSTALLS[c.name])),
                    None,
                )
                if install is not None:
                    yield Violation(
                        rule="RL601",
                        line=instruction.line,
                        column=instruction.column,
                        message=f"{install.name} installs packages after the {copied.keyword} on line {copied.line}: "
                        "every change to the copied files reinstalls them; install first, copy the app last",
                    )
