"""``reconciler lint-dockerfile``: the seed's Dockerfile rules on files and directories.

The command finds the files (a directory argument means every ``Dockerfile``, ``*.Dockerfile`` and
``Dockerfile.*`` under it, hidden directories skipped), reads them and the configuration, calls
``reconciler.policy.lint`` on the text, and renders with ``reconciler.report.lint``. Exit codes: 0 no
error-severity finding, 3 at least one (a policy violation), 1 a file could not be read (the others are
still linted and reported), 2 usage: a bad option, a missing path, a directory without Dockerfiles, or an
invalid configuration file. It never writes a file and never prints a traceback.
"""

# ruff: noqa: PLC0415  -- imports inside the command on purpose: start-up time of the CLI
from __future__ import annotations

import json
import os
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from reconciler.cli.app import app
from reconciler.cli.render import emit_json, envelope, err
from reconciler.exitcodes import ExitCode

if TYPE_CHECKING:
    from reconciler.policy.lint import Finding, LintConfig


class LintOutputFormat(StrEnum):
    text = "text"
    json = "json"
    sarif = "sarif"


def is_dockerfile_name(name: str) -> bool:
    """``Dockerfile``, ``Dockerfile.<x>`` or ``<x>.Dockerfile`` (not BuildKit's ``*.dockerignore`` files)."""
    if name.endswith(".dockerignore"):
        return False
    return name == "Dockerfile" or name.startswith("Dockerfile.") or name.endswith(".Dockerfile")


def find_dockerfiles(directory: Path) -> list[Path]:
    """Dockerfiles under ``directory`` in a stable order; hidden directories (``.git``) are skipped."""
    found: list[Path] = []
    for root, directories, names in os.walk(directory):
        directories[:] = sorted(d for d in directories if not d.startswith("."))
        found.extend(Path(root) / name for name in sorted(names) if is_dockerfile_name(name))
    return found


def _usage(message: str) -> typer.Exit:
    err(f"error: {message}")
    return typer.Exit(int(ExitCode.USAGE))


def _load_config(path: Path | None) -> tuple[LintConfig, str | None]:
    from reconciler.policy.lint import DEFAULT_CONFIG, DEFAULT_CONFIG_FILE, LintConfigError, parse_config

    if path is None:
        default = Path(DEFAULT_CONFIG_FILE)
        if not default.is_file():
            return DEFAULT_CONFIG, None
        path = default
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _usage(f"cannot read the lint configuration {path}: {exc}") from exc
    try:
        return parse_config(text, source=str(path)), str(path)
    except LintConfigError as exc:
        raise _usage(f"invalid lint configuration: {exc}") from exc


def _collect(paths: list[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = find_dockerfiles(path)
            if not found:
                raise _usage(f"{path}: no Dockerfile, *.Dockerfile or Dockerfile.* under this directory")
            files.extend(found)
        else:
            files.append(path)
    return list(dict.fromkeys(files))  # a file named twice is linted once


def _lint_files(files: list[Path], config: LintConfig) -> tuple[list[Finding], dict[str, str]]:
    from reconciler.policy.lint import lint_text

    findings: list[Finding] = []
    unreadable: dict[str, str] = {}
    for file in files:
        name = file.as_posix()
        try:
            text = file.read_bytes().decode("utf-8")
        except UnicodeDecodeError as exc:
            unreadable[name] = f"not UTF-8 text (byte {exc.start})"
            continue
        except OSError as exc:
            unreadable[name] = exc.strerror or str(exc)
            continue
        try:
            findings.extend(lint_text(text, path=name, config=config))
        except Exception as exc:  # a bug in a rule must name the file, not print a traceback
            unreadable[name] = f"internal error while linting ({type(exc).__name__}: {exc}); please report it"
    return findings, unreadable


@app.command("lint-dockerfile")
def lint_dockerfile(
    paths: Annotated[
        list[Path],
        typer.Argument(
            exists=True,
            metavar="PATH...",
            help="Dockerfiles, or directories to search for Dockerfile, *.Dockerfile and Dockerfile.*.",
        ),
    ],
    output: Annotated[
        LintOutputFormat, typer.Option("--output", "-o", help="text, json (envelope) or sarif (2.1.0).")
    ] = LintOutputFormat.text,
    config_file: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            metavar="FILE",
            exists=True,
            dir_okay=False,
            help="Lint configuration (YAML); default: ./.reconciler-lint.yaml when it exists.",
        ),
    ] = None,
) -> None:
    """Lint Dockerfiles against the image-build rules; exit 3 on any error-severity finding."""
    from reconciler import __version__
    from reconciler.report.lint import json_payload, lint_status, render_sarif, render_text

    config, config_source = _load_config(config_file)
    files = _collect(paths)
    findings, unreadable = _lint_files(files, config)
    for name, reason in unreadable.items():
        err(f"error: {name}: {reason}")
    status = lint_status(findings, unreadable)
    names = [file.as_posix() for file in files]
    if output is LintOutputFormat.json:
        payload = json_payload(findings, files=names, unreadable=unreadable)
        emit_json(envelope("lint-dockerfile", status, config=config_source, **payload))
    elif output is LintOutputFormat.sarif:
        sarif = render_sarif(findings, config=config, unreadable=unreadable, tool_version=__version__)
        typer.echo(json.dumps(sarif, indent=2))
    else:
        typer.echo(render_text(findings, files=names, unreadable=unreadable))
    if unreadable:
        raise typer.Exit(int(ExitCode.FAILURE))
    if status == "violations":
        raise typer.Exit(int(ExitCode.INVALID))
