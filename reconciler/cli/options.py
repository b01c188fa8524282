"""The options several command families share, defined once: ``--output``, ``--insecure``, ``--audit-log``,
``--env``.

Options about where the desired state comes from (``DIR``, ``--repo``, ``--ref``, ``--base``,
``--cache-dir``) live with the code that opens it, in ``reconciler.cli.sources``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from reconciler.cli.render import OutputFormat

OutputOption = Annotated[OutputFormat, typer.Option("--output", "-o", help="text, markdown or json.")]
InsecureOption = Annotated[
    bool,
    typer.Option("--insecure", help="Allow plain HTTP / unverified TLS for every registry (loopback never needs it)."),
]
AuditLogOption = Annotated[
    Path | None,
    typer.Option(
        "--audit-log",
        help="Audit log file (JSON lines, appended). Default: $RECONCILER_AUDIT_LOG, "
        "else $XDG_STATE_HOME/reconciler/audit.jsonl.",
        show_default=False,
    ),
]
"""Where a command that writes to registries records what it did."""
EnvOption = Annotated[
    list[str] | None,
    typer.Option("--env", "-e", help="Only this environment (repeatable). Default: every non-source one."),
]
