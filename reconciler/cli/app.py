"""The root typer app and its global options. Command modules import ``app`` from here."""

from __future__ import annotations

from typing import Annotated

import typer

from reconciler import __version__

app = typer.Typer(
    name="reconciler",
    help="GitOps reconciler for container images: desired state in Git, registries converged.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"reconciler {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """GitOps reconciler for container images."""
