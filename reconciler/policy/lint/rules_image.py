"""Rules about what the image is and how it starts (RL2xx, RL4xx, RL5xx).

Seed section 4: CMD/ENTRYPOINT in exec form (4.2), the app started by a ``/run.sh`` script that is the
container's process (4.3), COPY unless a tarball must be unpacked (4.4), EXPOSE the container port and
never a host mapping, LABEL the repository and maintainer, ENV for versions, a non-root USER without
switching back and forth, absolute WORKDIR; section 3: a non-root run user, declared data directories
(VOLUME), configuration and secrets kept out of the image.

"The image" is the final stage together with the stages it is built on (``FROM build``): what a
container of it gets. Pure functions over a parsed Dockerfile; no I/O.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator

from reconciler.policy.lint.config import LintConfig
from reconciler.policy.lint.model import Violation
from reconciler.policy.lint.parse import SHELLS, Instruction, ParsedDockerfile, Stage

ARCHIVE_SUFFIXES = (
    ".tar",
    ".Z",
    ".bz2",
    ".gz",
    ".lz",
    ".lzma",
    ".tZ",
    ".tb2",
    ".tbz",
    ".tbz2",
    ".tgz",
    ".tlz",
    ".tpz",
    ".txz",
    ".xz",
)
"""What ADD may unpack: hadolint's list (DL3020), so both tools agree on which ADD is needed."""

_INITS = frozenset({"tini", "/tini", "/sbin/tini", "/usr/bin/tini", "dumb-init", "/usr/bin/dumb-init", "--"})
"""Init wrappers that forward signals to the script they start: the script stays in charge."""

_SECRET_WORDS = ("PASSWORD", "PASSWD", "SECRET", "TOKEN", "APIKEY", "API_KEY", "PRIVATE_KEY", "CREDENTIAL")
_SECRET_TOKENS = frozenset({"PASS", "KEY", "PWD_HASH"})
_NOT_SECRET_TOKENS = frozenset(
    {
        "PUBLIC",
        "PUB",
        "GPG",
        "PGP",
        "FINGERPRINT",
        "ID",
        "FILE",
        "PATH",
        "DIR",
        "URL",
        "HOST",
        "USER",
        "NAME",
        "SERVER",
        "TYPE",
        "SIZE",
        "LENGTH",
        "ALGORITHM",
    }
)
_URL_PATH = re.compile(r"https?://[^/\s\"']+(/[^\s\"']*)")
_VERSION = re.compile(r"(?<![\w.])v?(\d+\.\d+(?:\.\d+)*)")
_VARIABLE_ONLY = re.compile(r"^\$(\{[A-Za-z_][A-Za-z0-9_]*(?:[:?+-][^}]*)?\}|[A-Za-z_][A-Za-z0-9_]*)$")
_PORT = re.compile(r"^(\d+)(?:-(\d+))?(?:/(?:tcp|udp|sctp))?$", re.IGNORECASE)


def _unquote(text: str) -> str:
    return text.strip("\"'")


def _image_instructions(dockerfile: ParsedDockerfile) -> list[Instruction]:
    """The instructions that shape the final image, in build order (its base stages first)."""
    final = dockerfile.final_stage
    if final is None:
        return []
    return [instruction for stage in reversed(dockerfile.lineage(final)) for instruction in stage.instructions]


def _last(instructions: list[Instruction], *keywords: str) -> Instruction | None:
    return next((i for i in reversed(instructions) if i.keyword in keywords), None)


def check_commands(dockerfile: ParsedDockerfile, config: LintConfig) -> Iterator[Violation]:
    """RL201 (hadolint DL3025) shell-form CMD/ENTRYPOINT; RL202/RL203 how the image's process starts."""
    for instruction in dockerfile.instructions:
        healthcheck = instruction.keyword == "HEALTHCHECK" and instruction.arguments[:1] == ("CMD",)
        if (instruction.keyword in ("CMD", "ENTRYPOINT") or healthcheck) and not instruction.exec_form:
            keyword = "HEALTHCHECK CMD" if healthcheck else instruction.keyword
            why = (
                "needs a shell in the image" if healthcheck else "runs under /bin/sh -c, which does not pass signals on"
            )
            yield Violation(
                rule="RL201",
                line=instruction.line,
                column=instruction.column,
                message=f'{keyword} in shell form {why}: write {keyword} ["executable", "arg"...]',
            )
    start = _last(_image_instructions(dockerfile), "ENTRYPOINT") or _last(_image_instructions(dockerfile), "CMD")
    if start is None or not start.exec_form or not start.arguments:
        return  # a base image (nothing starts), or RL201 already said it
    argv = list(start.arguments)
    while argv and argv[0] in _INITS:
        argv.pop(0)
    if not argv:
        return
    program = argv[0]
    if program in SHELLS or program.rsplit("/", 1)[-1] in SHELLS:
        script_text = " ".join(argv[1:])
        if len(argv) >= 3 and argv[1] == "-c" and argv[2].startswith("exec ") and ".sh" in argv[2]:
            return  # ``sh -c "exec /run.sh"``: the shell replaces itself with the script
        if ".sh" in script_text:
            yield Violation(
                rule="RL202",
                line=start.line,
                column=start.column,
                message=f"{start.keyword} starts the script through {program}: the shell is the container's "
                f'process and eats SIGTERM; make the script executable and start it directly: ["/run.sh"]',
            )
            return
    elif program.endswith(".sh"):
        return
    yield Violation(
        rule="RL203",
        line=start.line,
        column=start.column,
        message=f"{start.keyword} starts {program} directly: start the app through a /run.sh script "
        '(exec form, ENTRYPOINT ["/run.sh"]) that sets it up and execs it',
    )


def _is_remote(source: str) -> bool:
    return source.startswith(("http://", "https://", "git@", "git://"))


def check_add(dockerfile: ParsedDockerfile, config: LintConfig) -> Iterator[Violation]:
    """RL204 (hadolint DL3020): ADD only to unpack a local tar archive, or fetch a URL when allowed."""
    for instruction in dockerfile.instructions:
        if instruction.keyword != "ADD" or instruction.heredocs or len(instruction.arguments) < 2:
            continue
        remote_allowed = config.allow_remote_add or instruction.flag("checksum") is not None
        for source in (_unquote(s) for s in instruction.arguments[:-1]):
            if _is_remote(source):
                if remote_allowed:
                    continue
                reason = (
                    f"ADD {source} fetches unpinned remote content: download it with --checksum=sha256:..., "
                    "or set allow_remote_add"
                )
            elif source.endswith(ARCHIVE_SUFFIXES):
                continue
            else:
                reason = f"ADD {source}: use COPY; ADD is only for unpacking a local tar archive"
            yield Violation(rule="RL204", line=instruction.line, column=instruction.column, message=reason)
            break


def _is_root(user: str) -> bool:
    name = _unquote(user).split(":", 1)[0]
    return name in ("root", "0")


def check_user(dockerfile: ParsedDockerfile, config: LintConfig) -> Iterator[Violation]:
    """RL401 (hadolint DL3002, final image only) the image runs as root; RL402 no USER; RL403 switching."""
    for stage in dockerfile.stages:
        users = [i for i in stage.instructions if i.keyword == "USER" and i.arguments]
        for previous, current in itertools.pairwise(users):
            if _unquote(previous.arguments[0]) != _unquote(current.arguments[0]):
                yield Violation(
                    rule="RL403",
                    line=current.line,
                    column=current.column,
                    message=f"USER switches from {previous.arguments[0]} (line {previous.line}) to "
                    f"{current.arguments[0]}: do the root work in the base image and set the run user once",
                )
    final = dockerfile.final_stage
    if final is None:
        return
    last_user = _last(_image_instructions(dockerfile), "USER")
    if last_user is None:
        yield Violation(
            rule="RL402",
            line=final.start.line,
            column=final.start.column,
            message="the final stage sets no USER: the image runs as whatever user its base sets "
            "(root, for an official base); set the non-root run user explicitly",
        )
    elif last_user.arguments and _is_root(last_user.arguments[0]):
        yield Violation(
            rule="RL401",
            line=last_user.line,
            column=last_user.column,
            message=f"the image runs as {last_user.arguments[0]}: end with USER <non-root user> "
            "(created with groupadd/useradd)",
        )


def check_runtime(dockerfile: ParsedDockerfile, config: LintConfig) -> Iterator[Violation]:
    """RL404 (hadolint DL3000) relative WORKDIR; RL405/RL406 (DL3011) EXPOSE; RL407/RL408 service images."""
    for instruction in dockerfile.instructions:
        line, column = instruction.line, instruction.column
        if instruction.keyword == "WORKDIR" and instruction.arguments:
            path = _unquote(" ".join(instruction.arguments))
            if not (path.startswith(("/", "$")) or re.match(r"^[A-Za-z]:", path)):
                yield Violation(
                    rule="RL404",
                    line=line,
                    column=column,
                    message=f"WORKDIR {path} is relative to whatever the previous one was: use an absolute path",
                )
        elif instruction.keyword == "EXPOSE":
            tokens = [_unquote(token) for token in instruction.arguments if not _unquote(token).startswith("$")]
            mapping = next((token for token in tokens if ":" in token), None)
            if mapping is not None:
                yield Violation(
                    rule="RL405",
                    line=line,
                    column=column,
                    message=f"EXPOSE {mapping}: a host mapping belongs to `docker run -p`; "
                    f"EXPOSE only the container port ({mapping.rsplit(':', 1)[-1]})",
                )
            invalid = next((token for token in tokens if ":" not in token and not _valid_port(token)), None)
            if invalid is not None:
                yield Violation(
                    rule="RL406",
                    line=line,
                    column=column,
                    message=f"EXPOSE {invalid}: not a port (0-65535, optionally /tcp, /udp or /sctp)",
                )
    yield from _service_declarations(dockerfile)


def _valid_port(token: str) -> bool:
    match = _PORT.match(token)
    return match is not None and all(int(number) <= 65535 for number in match.groups() if number is not None)


def _service_declarations(dockerfile: ParsedDockerfile) -> Iterator[Violation]:
    instructions = _image_instructions(dockerfile)
    final = dockerfile.final_stage
    if final is None or _last(instructions, "CMD", "ENTRYPOINT") is None:
        return  # nothing starts: a base image, not a service
    line, column = final.start.line, final.start.column
    if _last(instructions, "EXPOSE") is None:
        yield Violation(
            rule="RL407",
            line=line,
            column=column,
            message="the image starts a process but EXPOSEs no port: declare the port it serves on",
        )
    if _last(instructions, "VOLUME") is None:
        yield Violation(
            rule="RL408",
            line=line,
            column=column,
            message="the image starts a process but declares no VOLUME: mount logs and data (e.g. VOLUME /app/logs)",
        )


def _labels(stages: list[Stage]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for stage in stages:
        for instruction in stage.instructions:
            if instruction.keyword == "LABEL":
                pairs = instruction.arguments
                for key, value in zip(pairs[0::2], pairs[1::2], strict=False):
                    labels[_unquote(key)] = _unquote(value)
    return labels


def check_metadata(dockerfile: ParsedDockerfile, config: LintConfig) -> Iterator[Violation]:
    """RL501 required labels; RL502 secrets in ENV/ARG; RL503 versions hard-coded in download URLs."""
    final = dockerfile.final_stage
    if final is not None:
        labels = _labels(list(reversed(dockerfile.lineage(final))))
        for key in config.required_labels:
            if not labels.get(key):
                yield Violation(
                    rule="RL501",
                    line=final.start.line,
                    column=final.start.column,
                    message=f'the image has no "{key}" label: add LABEL {key}="..."',
                )
    for instruction in dockerfile.instructions:
        if instruction.keyword in ("ENV", "ARG"):
            for name, value in _declarations(instruction):
                if _looks_secret(name) and _is_literal(value):
                    yield Violation(
                        rule="RL502",
                        line=instruction.line,
                        column=instruction.column,
                        message=f"{instruction.keyword} {name} bakes a secret into every layer and `docker history`: "
                        "pass it at run time (environment file, secret mount), never in the Dockerfile",
                    )
        elif instruction.keyword in ("RUN", "ADD"):
            version = _hard_coded_version(instruction)
            if version is not None:
                yield Violation(
                    rule="RL503",
                    line=instruction.line,
                    column=instruction.column,
                    message=f"a download URL hard-codes version {version}: declare it once "
                    "(ENV/ARG ..._VERSION) and use ${...}, so upgrades are one edit",
                )


def _declarations(instruction: Instruction) -> list[tuple[str, str | None]]:
    if instruction.keyword == "ENV":
        pairs = instruction.arguments
        return [(name, value) for name, value in zip(pairs[0::2], pairs[1::2], strict=False)]
    declared: list[tuple[str, str | None]] = []
    for declaration in instruction.arguments:
        name, has_value, value = declaration.partition("=")
        declared.append((name, value if has_value else None))
    return declared


def _looks_secret(name: str) -> bool:
    upper = name.upper()
    tokens = set(re.split(r"[^A-Z0-9]+", upper))
    if tokens & _NOT_SECRET_TOKENS:
        return False
    return bool(tokens & _SECRET_TOKENS) or any(word in upper for word in _SECRET_WORDS)


def _is_literal(value: str | None) -> bool:
    if value is None:
        return False
    text = _unquote(value)
    return bool(text) and _VARIABLE_ONLY.match(text) is None and not text.startswith(("/", "./"))


def _hard_coded_version(instruction: Instruction) -> str | None:
    texts = (
        instruction.arguments
        if instruction.keyword == "ADD"
        else [argument for command in instruction.commands for argument in command.arguments]
    )
    for text in texts:
        if "$" in text:
            continue
        for url in _URL_PATH.finditer(text):
            version = _VERSION.search(url.group(1))  # in the path: a host's digits are not a version
            if version is not None:
                return version.group(1)
    return None
