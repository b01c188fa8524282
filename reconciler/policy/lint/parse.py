"""A Dockerfile as the lint rules see it: instructions with their original positions, grouped in stages.

The text is parsed by BuildKit's own parser (the ``dockerfile`` package wraps ``moby/buildkit``'s
``parser`` in Go), so line continuations, the ``# escape=`` directive, heredocs and JSON (exec) forms are
read exactly as ``docker build`` reads them. This module turns its tuples into typed values:
:class:`Instruction` (keyword, arguments, flags, exec form, first and last line, column, heredocs and,
for ``RUN``, the simple commands its script runs), :class:`Stage` (one ``FROM`` and what follows it, the
base image with the global ``ARG`` defaults substituted, and the earlier stage it builds on, if any), and
the comment lines outside instructions, where suppression pragmas live.

It never reads a file (the caller hands the text in) and never decides whether anything is wrong: a
text BuildKit refuses raises :class:`DockerfileSyntaxError` with the line, everything else is data.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import dockerfile as buildkit  # type: ignore[import-not-found, unused-ignore]  # a Go extension, no stubs

from reconciler.policy.lint.shell import SimpleCommand, split_commands

KNOWN_INSTRUCTIONS = frozenset(name.upper() for name in buildkit.all_cmds())
"""Every instruction keyword BuildKit knows (``FROM``, ``RUN``...). Its parser passes others through."""

SHELLS = frozenset({"sh", "bash", "ash", "dash", "zsh", "ksh", "/bin/sh", "/bin/bash", "/bin/ash", "/usr/bin/bash"})
"""Interpreters that read a heredoc given on standard input as a shell script."""

_VARIABLE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-+])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))")


class DockerfileSyntaxError(ValueError):
    """BuildKit's parser refused the text. ``line`` is where (1 when the parser does not say)."""

    def __init__(self, message: str, *, line: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


@dataclass(frozen=True, slots=True)
class Heredoc:
    """``<<EOT`` ... ``EOT``: the delimiter's name and the body (without the closing line)."""

    name: str
    content: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Instruction:
    """One instruction. ``line``/``end_line`` are 1-based lines in the file (continuations and heredoc
    bodies included), ``column`` is where its keyword starts. For ``ONBUILD RUN x``, ``keyword`` is
    ``ONBUILD``, ``trigger`` is ``RUN`` and the other fields describe ``RUN x``."""

    keyword: str
    arguments: tuple[str, ...]
    flags: tuple[str, ...] = ()
    exec_form: bool = False
    line: int
    end_line: int
    column: int = 1
    text: str = ""
    heredocs: tuple[Heredoc, ...] = ()
    trigger: str | None = None
    commands: tuple[SimpleCommand, ...] = ()
    """For ``RUN`` (and ``ONBUILD RUN``): every simple command the instruction runs, in order."""

    @property
    def runs(self) -> bool:
        """True for ``RUN`` and for ``ONBUILD RUN``: the instructions that execute a script."""
        return self.keyword == "RUN" or self.trigger == "RUN"

    def flag(self, name: str) -> str | None:
        """The value of ``--name=value`` (``""`` for a bare ``--name``), or None when absent."""
        for item in self.flags:
            key, has_value, value = item.removeprefix("--").partition("=")
            if key == name:
                return value if has_value else ""
        return None

    def flag_values(self, name: str) -> tuple[str, ...]:
        """Every value of a repeatable flag (``--mount=a --mount=b``)."""
        values = []
        for item in self.flags:
            key, _, value = item.removeprefix("--").partition("=")
            if key == name:
                values.append(value)
        return tuple(values)


@dataclass(frozen=True, slots=True, kw_only=True)
class BaseImage:
    """What a ``FROM`` names, after the global ``ARG`` defaults are substituted.

    ``name`` is the reference without tag and digest (``registry.example.com/base/prod-osbase``);
    ``resolved`` is False when a variable without a default remains in it, and then nothing else about
    it can be checked."""

    written: str
    text: str
    name: str
    tag: str | None
    digest: str | None
    resolved: bool

    @property
    def is_scratch(self) -> bool:
        return self.name == "scratch"


@dataclass(frozen=True, slots=True, kw_only=True)
class Stage:
    """A ``FROM`` and the instructions after it. ``parent`` is the index of the earlier stage the FROM
    names (``FROM build``), or None when it names an image."""

    index: int
    start: Instruction
    base: BaseImage
    alias: str | None
    parent: int | None
    instructions: tuple[Instruction, ...]


@dataclass(frozen=True, slots=True)
class Comment:
    """A comment line outside every instruction: ``text`` without the leading ``#``, stripped."""

    line: int
    text: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ParsedDockerfile:
    """The whole file: instructions in order, stages, global ARG defaults and free comment lines."""

    instructions: tuple[Instruction, ...]
    stages: tuple[Stage, ...]
    global_args: Mapping[str, str | None] = field(default_factory=lambda: MappingProxyType({}))
    comments: tuple[Comment, ...] = ()

    @property
    def final_stage(self) -> Stage | None:
        return self.stages[-1] if self.stages else None

    def lineage(self, stage: Stage) -> list[Stage]:
        """``stage`` and the earlier stages it is built on (``FROM build``), nearest first."""
        chain = [stage]
        while chain[-1].parent is not None:
            chain.append(self.stages[chain[-1].parent])  # parents are always earlier: no cycle
        return chain

    def shipped_stages(self) -> set[int]:
        """Indexes of the final stage and every stage it is built on: what the image is made of."""
        final = self.final_stage
        return set() if final is None else {stage.index for stage in self.lineage(final)}


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    return text


def _expand(text: str, variables: Mapping[str, str | None]) -> tuple[str, bool]:
    """Substitute ``$NAME``, ``${NAME}``, ``${NAME:-word}`` and ``${NAME:+word}``; report whether every
    variable was known."""
    resolved = True

    def replace(match: re.Match[str]) -> str:
        nonlocal resolved
        name = match.group(1) or match.group(4)
        operator, word = match.group(2), match.group(3) or ""
        value = variables.get(name)
        if operator in (":-", "-"):
            return value if value or (operator == "-" and value is not None) else word
        if operator in (":+", "+"):
            return word if value or (operator == "+" and value is not None) else ""
        if value is None:
            resolved = False
            return match.group(0)
        return value

    return _VARIABLE.sub(replace, text), resolved


def parse_image(written: str, variables: Mapping[str, str | None]) -> BaseImage:
    """Split ``host:port/repo:tag@digest`` (after substituting ``variables``) into name, tag and digest."""
    text, resolved = _expand(written, variables)
    remainder, _, digest = text.partition("@")
    slash = remainder.rfind("/")
    colon = remainder.rfind(":")
    tag = remainder[colon + 1 :] if colon > slash else None
    name = remainder[:colon] if colon > slash else remainder
    return BaseImage(
        written=written,
        text=text,
        name=name,
        tag=tag,
        digest=digest or None,
        resolved=resolved and "$" not in text,
    )


def _global_args(instructions: Sequence[Instruction]) -> dict[str, str | None]:
    """ARGs declared before the first FROM: the only variables a FROM line can use."""
    variables: dict[str, str | None] = {}
    for instruction in instructions:
        if instruction.keyword == "FROM":
            break
        if instruction.keyword == "ARG":
            for declaration in instruction.arguments:
                name, has_default, default = declaration.partition("=")
                variables[name] = _unquote(default) if has_default else None
    return variables


def _run_commands(
    arguments: tuple[str, ...], exec_form: bool, heredocs: tuple[Heredoc, ...]
) -> tuple[SimpleCommand, ...]:
    """The simple commands a RUN executes.

    Exec form ``["sh", "-c", "script"]`` runs ``script`` with the shell; any other exec form is one
    command. In shell form with heredocs, a line that is only ``<<EOT`` runs the body as the script, and
    a line that pipes the heredoc into a shell (``<<EOT bash``) runs that shell and the body; otherwise
    a heredoc is data (``cat <<EOT > /etc/motd``) and only the line runs."""
    if exec_form:
        if len(arguments) >= 3 and arguments[0] in SHELLS and arguments[1] == "-c":
            return tuple(split_commands(arguments[2]))  # the shell only interprets: count what it runs
        return (SimpleCommand(arguments[0], arguments[1:]),) if arguments else ()
    line = split_commands(" ".join(arguments))
    if not heredocs:
        return tuple(line)
    bodies = [command for heredoc in heredocs for command in split_commands(heredoc.content)]
    if not line:
        return tuple(bodies)
    if len(line) == 1 and line[0].name in SHELLS and not line[0].positional():
        return (*line, *bodies)
    return tuple(line)


def _error_line(lines: Sequence[str]) -> int:
    """The first line at which BuildKit's parser fails: the shortest prefix of the file that fails."""
    low, high = 1, len(lines)
    while low < high:
        middle = (low + high) // 2
        try:
            buildkit.parse_string("\n".join(lines[:middle]) + "\n")
            failed = False
        except buildkit.GoParseError as exc:
            failed = "no instructions" not in str(exc)
        if failed:
            high = middle
        else:
            low = middle + 1
    return low


def _instruction(command: Any, lines: Sequence[str]) -> Instruction:
    """Our typed copy of one of the parser's ``Command`` tuples (which come untyped from Go)."""
    keyword = str(command.cmd).upper()
    start: int = command.start_line
    source_line = lines[start - 1] if 0 < start <= len(lines) else ""
    trigger = str(command.sub_cmd).upper() if command.sub_cmd else None
    arguments = tuple(command.value)
    exec_form = bool(command.json)
    heredocs = tuple(Heredoc(doc.name, doc.content) for doc in command.heredocs)
    runs = keyword == "RUN" or trigger == "RUN"
    return Instruction(
        keyword=keyword,
        trigger=trigger,
        arguments=arguments,
        flags=tuple(command.flags),
        exec_form=exec_form,
        line=start,
        end_line=command.end_line,
        column=len(source_line) - len(source_line.lstrip()) + 1,
        text=command.original,
        heredocs=heredocs,
        commands=_run_commands(arguments, exec_form, heredocs) if runs else (),
    )


def _stages(instructions: Sequence[Instruction], variables: Mapping[str, str | None]) -> tuple[Stage, ...]:
    stages: list[Stage] = []
    aliases: dict[str, int] = {}
    current: list[Instruction] = []
    start: Instruction | None = None

    def close() -> None:
        if start is None:
            return
        written = start.arguments[0] if start.arguments else ""
        alias = start.arguments[2].lower() if len(start.arguments) >= 3 and start.arguments[1].upper() == "AS" else None
        # BuildKit lowercases stage names, so ``FROM Build`` names the stage ``AS build``
        parent = aliases.get(written.lower())
        stages.append(
            Stage(
                index=len(stages),
                start=start,
                base=parse_image(written, variables),
                alias=alias,
                parent=parent,
                instructions=tuple(current),
            )
        )
        if alias is not None:
            aliases[alias] = len(stages) - 1

    for instruction in instructions:
        if instruction.keyword == "FROM":
            close()
            start, current = instruction, []
        elif start is not None:
            current.append(instruction)
    close()
    return tuple(stages)


def _free_comments(lines: Sequence[str], instructions: Sequence[Instruction]) -> tuple[Comment, ...]:
    """Comment lines that are not inside an instruction (a heredoc body's ``#`` lines are its own)."""
    inside: set[int] = set()
    for instruction in instructions:
        if instruction.end_line > instruction.line:
            inside.update(range(instruction.line + 1, instruction.end_line + 1))
    comments = []
    for number, raw in enumerate(lines, start=1):
        stripped = raw.strip()
        if stripped.startswith("#") and number not in inside:
            comments.append(Comment(number, stripped[1:].strip()))
    return tuple(comments)


def parse_dockerfile(text: str) -> ParsedDockerfile:
    """Parse a Dockerfile's text with BuildKit's parser; raise :class:`DockerfileSyntaxError` if it refuses."""
    text = text.removeprefix("\ufeff")
    lines = text.splitlines()
    try:
        commands = buildkit.parse_string(text)
    except buildkit.GoParseError as exc:
        message = str(exc)
        if "no instructions" in message:
            raise DockerfileSyntaxError("the file has no instructions", line=1) from exc
        raise DockerfileSyntaxError(message, line=_error_line(lines)) from exc
    instructions = tuple(_instruction(command, lines) for command in commands)
    variables = _global_args(instructions)
    return ParsedDockerfile(
        instructions=instructions,
        stages=_stages(instructions, variables),
        global_args=MappingProxyType(variables),
        comments=_free_comments(lines, instructions),
    )
