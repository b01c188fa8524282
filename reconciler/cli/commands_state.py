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
from reconciler.cli.options import OutputOption
from reconciler.cli.render import OutputFormat, emit_json, envelope, err
from reconciler.cli.sources import BaseOption, CacheOption, DirArgument, RefOption, RepoOption, open_trees
from reconciler.errors import SourceError
from reconciler.exitcodes import ExitCode

if TYPE_CHECKING:
    from reconciler.manifests.compare import Comparison
    from reconciler.model.desired import DesiredState
    from reconciler.model.problems import Problem
    from reconciler.source import DesiredStateTree


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
    directory: DirArgument = None,
    *,
    base: BaseOption = None,
    repo: RepoOption = None,
    ref: RefOption = "main",
    cache_dir: CacheOption = None,
    output: OutputOption = OutputFormat.text,
) -> None:
    """Validate a desired-state directory (or --repo URL --ref REF) offline; report every problem as
    path:line:column."""
    from reconciler.manifests.compare import compare  # noqa: PLC0415

    try:
        with open_trees(directory, repo, ref, base, cache_dir) as (head, base_tree):
            comparison = compare(head, base_tree)
            trust = _trust_problems(head, comparison, base) if base is not None and comparison.valid else []
    except SourceError as exc:
        err(f"error: {exc}")
        raise typer.Exit(ExitCode.FAILURE) from None
    if comparison.base_problems:
        err(
            f"note: the desired state at {base} has {len(comparison.base_problems)} problem(s); "
            "promotions are checked against the parts of it that are valid"
        )
    state, problems = comparison.head, [*comparison.head_problems, *trust]
    shown_root = Path(repo) if repo is not None else (directory or Path("."))
    directory = shown_root if repo is None else Path(".")
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
        emit_json(envelope("validate", status, directory=shown_root.as_posix(), base=base, errors=shown))
    elif output is OutputFormat.markdown:
        lines = [f"**{_summary(shown_root, state, problems)}**"]
        if shown:
            lines.append("")
            lines.extend(
                f"- `{row['file']}:{row['line']}:{row['column']}` {row['message']} (`{row['code']}`)" for row in shown
            )
        typer.echo("\n".join(lines))
    else:
        for row in shown:
            typer.echo(f"{row['file']}:{row['line']}:{row['column']}: {row['message']} [{row['code']}]")
        typer.echo(_summary(shown_root, state, problems))
    if problems:
        raise typer.Exit(ExitCode.INVALID)


def _trust_problems(head: DesiredStateTree, comparison: Comparison, base: str) -> list[Problem]:
    """Commit-signature trust since ``base`` (environments with ``trust`` rules), as problems."""
    from reconciler.engine.trusted import verify_trust  # noqa: PLC0415
    from reconciler.model.problems import Problem  # noqa: PLC0415

    report = verify_trust(head, comparison.head, trusted_base=base)
    if report is None:
        return []
    return [
        Problem(violation.file or "(history)", 0, 0, f"trust-{violation.reason}", str(violation))
        for violation in report.violations
    ]


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
