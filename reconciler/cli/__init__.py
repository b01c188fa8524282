"""The typer application: parse arguments, call the library, render, map errors to exit codes.

Each command group lives in its own module and registers itself on ``app``; heavy imports (httpx,
ruamel.yaml, gitpython) happen inside the command functions so that ``reconciler --help`` and a no-op
``plan`` start fast.
"""

from __future__ import annotations

from reconciler.cli import (  # noqa: F401  (registers commands)
    commands_demo,
    commands_lint,
    commands_reconcile,
    commands_registry,
    commands_state,
)
from reconciler.cli.app import app


def main() -> None:
    app()


__all__ = ["app", "main"]
