"""``reconciler validate`` and ``reconciler schema``: offline checks of a desired-state checkout.

The library (``reconciler.manifests``) returns problems; this module renders them and maps the result
to an exit code (0 valid, 3 invalid, 1 when Git fails). It never edits the desired state.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from reconciler.cli.app import app
from reconciler.cli.render import OutputFormat, emit_json, envelope, err
from reconciler.errors import SourceError
from reconciler.exitcodes import ExitCode

if TYPE_CHECKING:
    from reconciler.model.desired import DesiredState
    from reconciler.model.problems import Problem


class SchemaKind(StrEnum):
    config = "config"
    environment = "environment"


def _display_path(directory: Path, file: str) -> str:
    """The problem's file as a path from the current directory, so editors and terminals can open it."""
    return file if directory == Path(".") else (directory / file).as_posix()


def _summary(directory: Path, state: DesiredState, problems: list[Problem]) -> str:
    if not problems:
        pins = sum(1 for env in state.environments.values() for _ in env.versions())
        images = len({pin.image for env in state.environments.values() for pin in env.versions()})
        return (
            f"{directory.as_posix()}: valid ({len(state.config.environments)} environments, "
            f"{images} images, {pins} pinned versions)"
        )
    files = len({problem.file for problem in problems})
    noun = "problem" if len(problems) == 1 else "problems"
    return f"{directory.as_posix()}: invalid, {len(problems)} {noun} in {files} file{'s' if files != 1 else ''}"


@app.command()
def validate(
    directory: Annotated[
        Path,
        typer.Argument(
            exists=True, file_okay=False, dir_okay=True, help="Desired-state directory (holds reconciler.yaml)."
        ),
    ] = Path("."),
    base: Annotated[
        str | None,
        typer.Option(
            "--base",
            metavar="REF",
            help="Git ref to compare with: versions added since REF must be declared by their 'from' environment.",
        ),
    ] = None,
    output: Annotated[OutputFormat, typer.Option("--output", "-o", help="text, markdown or json.")] = OutputFormat.text,
) -> None:
    """Validate a desired-state directory offline; report every problem as path:line:column."""
    from reconciler.manifests import check_promotions, exists_at, inspect_at, inspect_tree  # noqa: PLC0415
    from reconciler.source import DirectoryTree  # noqa: PLC0415

    state, problems = inspect_tree(DirectoryTree(directory))
    if base is not None:
        try:
            base_state = None
            if exists_at(directory, base):
                base_state, base_problems = inspect_at(directory, base)
                if base_problems:
                    err(
                        f"note: the desired state at {base} has {len(base_problems)} problem(s); "
                        "promotions are checked against the parts of it that are valid"
                    )
        except SourceError as exc:
            err(f"error: {exc}")
            raise typer.Exit(ExitCode.FAILURE) from exc
        problems = sorted({*problems, *check_promotions(base_state, state)})

    shown = [
        {
            "file": _display_path(directory, problem.file),
            "line": problem.line,
            "column": problem.column,
            "code": problem.code,
            "message": problem.message,
        }
        for problem in problems
    ]
    status = "invalid" if problems else "valid"
    if output is OutputFormat.json:
        emit_json(envelope("validate", status, directory=directory.as_posix(), base=base, errors=shown))
    elif output is OutputFormat.markdown:
        lines = [f"**{_summary(directory, state, problems)}**"]
        if shown:
            lines.append("")
            lines.extend(
                f"- `{row['file']}:{row['line']}:{row['column']}` {row['message']} (`{row['code']}`)" for row in shown
            )
        typer.echo("\n".join(lines))
    else:
        for row in shown:
            typer.echo(f"{row['file']}:{row['line']}:{row['column']}: {row['message']} [{row['code']}]")
        typer.echo(_summary(directory, state, problems))
    if problems:
        raise typer.Exit(ExitCode.INVALID)


@app.command()
def schema(
    kind: Annotated[
        SchemaKind | None,
        typer.Option("--kind", help="config (reconciler.yaml) or environment (environments/<env>.yaml); default both."),
    ] = None,
) -> None:
    """Print the JSON Schema of the desired-state files (also shipped in reconciler/schemas/)."""
    from reconciler.manifests.schema import SCHEMA_FILES, load_schema  # noqa: PLC0415

    if kind is not None:
        typer.echo(json.dumps(load_schema(kind.value), indent=2))
        return
    typer.echo(json.dumps({name: load_schema(name) for name in SCHEMA_FILES}, indent=2))
