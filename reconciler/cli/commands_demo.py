"""``reconciler demo``: the whole product on local registries, from the test kit.

The demo's machinery (local CNCF distribution registries, generated images, seeding) is the test kit
(``testkit``, its own distribution), which a production install leaves out; this command is the one place
in the package that imports it, lazily, and says how to install it when it is missing.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from reconciler.cli.app import app
from reconciler.cli.render import err
from reconciler.exitcodes import ExitCode


def _demo_data_dir_help() -> str:
    return "Keep registries' data here (default: a temporary directory, removed at the end)."


@app.command()
def demo(
    *,
    data_dir: Annotated[Path | None, typer.Option("--data-dir", help=_demo_data_dir_help())] = None,
    keep_running: Annotated[
        bool, typer.Option("--keep-running", help="Leave the registries running until Ctrl-C, to explore them.")
    ] = False,
    example: Annotated[
        Path | None,
        typer.Option("--example", help="Desired state to demo (default: the project's examples/manifests)."),
    ] = None,
) -> None:
    """Run the whole product locally: five registries, seeded images, validate, plan, apply, plan again."""
    from reconciler.errors import ReconcilerError  # noqa: PLC0415

    try:
        from testkit.demo import run_demo  # noqa: PLC0415  (the test kit: not in a production install)
    except ImportError:
        err(
            "error: `reconciler demo` needs the test kit, which a production install leaves out: "
            "from a checkout, `pip install ./testkit` (scripts/bootstrap does)"
        )
        raise typer.Exit(int(ExitCode.FAILURE)) from None
    try:
        ok = run_demo(data_dir=data_dir, keep_running=keep_running, out=sys.stdout, example=example)
    except ReconcilerError as exc:
        err(f"demo failed: {exc}")
        raise typer.Exit(int(ExitCode.FAILURE)) from None
    if not ok:
        raise typer.Exit(int(ExitCode.FAILURE))
