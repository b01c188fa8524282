"""The typer application: parse arguments, call the library, render, map errors to exit codes.

Each command group lives in its own module and registers itself on ``app``; heavy imports (httpx,
ruamel.yaml, gitpython) happen inside the command functions so that ``reconciler --help`` and a no-op
``plan`` start fast.
"""

from __future__ import annotations

import os
import sys
import traceback

from reconciler.cli import (  # noqa: F401  (registers commands)
    commands_archive,
    commands_archive_ops,
    commands_controller,
    commands_demo,
    commands_diff,
    commands_lint,
    commands_promote,
    commands_reconcile,
    commands_registry,
    commands_state,
    commands_trace,
)
from reconciler.cli.app import app

DEBUG_ENV = "RECONCILER_DEBUG"


def main() -> None:
    """The console script. Commands map the errors they expect to exit codes themselves; this is the last
    line of defence, so that no Python traceback ever reaches a user: anything that escapes is one line on
    stderr (secrets scrubbed) and exit 1, with the traceback only when ``RECONCILER_DEBUG`` is set."""
    try:
        app()
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as exc:
        from reconciler.errors import ReconcilerError  # noqa: PLC0415
        from reconciler.model.redact import redact  # noqa: PLC0415

        if isinstance(exc, ReconcilerError):
            print(f"error: {redact(str(exc))}", file=sys.stderr)
        else:
            print(
                f"internal error: {type(exc).__name__}: {redact(str(exc))}\n"
                f"This is a bug in reconciler; run again with {DEBUG_ENV}=1 to see where it happened.",
                file=sys.stderr,
            )
        if os.environ.get(DEBUG_ENV):
            traceback.print_exc()
        sys.exit(1)


__all__ = ["app", "main"]
