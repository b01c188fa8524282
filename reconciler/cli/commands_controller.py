"""``reconciler controller``: the in-cluster reconcile loop with its HTTP side (health, metrics, board).

The CLI and ``reconciler.controller`` are independent top layers (DESIGN.md section 7; neither imports the
other, import-linter checks it). So this command parses the command line with typer (unknown options,
wrong types and a missing DIR exit 2 here), collects the raw values into a JSON object and replaces the
process (``exec``: same pid, so a container's SIGTERM reaches the controller directly) with
``python -m reconciler.controller``, which checks them (durations, exclusive options: exit 2) and runs.
The option names below are the contract between the two; ``reconciler.controller.options`` reads them.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Annotated

import typer

from reconciler.cli.app import app
from reconciler.cli.options import AuditLogOption, EnvOption, InsecureOption
from reconciler.cli.sources import CacheOption, DirArgument, RefOption, RepoOption

OPTIONS_ENV = "RECONCILER_CONTROLLER_OPTIONS"
"""Read (and removed) by ``reconciler.controller.__main__``."""


@app.command()
def controller(
    *,
    directory: DirArgument = None,
    repo: RepoOption = None,
    ref: RefOption = "main",
    watch: Annotated[
        bool, typer.Option("--watch", help="With DIR: reconcile as soon as a file under it changes.")
    ] = False,
    env: EnvOption = None,
    interval: Annotated[
        str, typer.Option("--interval", metavar="DURATION", help="How often to look at the source (30s, 5m, 1h).")
    ] = "60s",
    resync: Annotated[
        str,
        typer.Option("--resync", metavar="DURATION", help="Re-observe every registry this often, changed or not."),
    ] = "10m",
    listen: Annotated[
        str, typer.Option("--listen", metavar="HOST:PORT", help="Address of /healthz, /readyz, /metrics, the board.")
    ] = "0.0.0.0:8080",
    shard: Annotated[
        str | None, typer.Option("--shard", metavar="I/N", help="Reconcile only shard I of N of the images.")
    ] = None,
    shard_from_hostname: Annotated[
        bool,
        typer.Option(
            "--shard-from-hostname",
            help="Take I from the StatefulSet ordinal ending $HOSTNAME (reconciler-2 -> 2); needs --shards.",
        ),
    ] = False,
    shards: Annotated[
        int | None, typer.Option("--shards", min=1, metavar="N", help="Replica count, with --shard-from-hostname.")
    ] = None,
    grace: Annotated[
        str,
        typer.Option("--grace", metavar="DURATION", help="On SIGTERM, how long copies under way may take to finish."),
    ] = "30s",
    log_format: Annotated[
        str,
        typer.Option(
            "--log-format", envvar="RECONCILER_LOG_FORMAT", metavar="text|json", help="Event log format on stdout."
        ),
    ] = "text",
    audit_log: AuditLogOption = None,
    cache_dir: CacheOption = None,
    trusted_base: Annotated[
        str | None,
        typer.Option(
            "--trusted-base",
            metavar="REF",
            help="First trusted commit for the signature checks (afterwards: the last commit applied).",
        ),
    ] = None,
    insecure: InsecureOption = False,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, help="Images copied at once.")] = 16,
    retry_base: Annotated[
        str,
        typer.Option("--retry-base", metavar="DURATION", help="First backoff of an image after a transient failure."),
    ] = "10s",
    retry_max: Annotated[
        str, typer.Option("--retry-max", metavar="DURATION", help="Longest backoff of an image.")
    ] = "10m",
    retention: Annotated[
        bool,
        typer.Option(
            "--retention/--no-retention",
            help="Retire undeclared versions (archive, delete, destroy) in full passes; shard 0 only (default).",
        ),
    ] = True,
    deep_resync: Annotated[
        bool,
        typer.Option(
            "--deep-resync",
            help="Full passes read every in-sync image back (manifests, children, blob sizes), as plan --deep.",
        ),
    ] = False,
) -> None:
    """Run the reconcile loop: fetch or watch the desired state, reconcile what changed, serve status.

    Exits 0 on SIGTERM/SIGINT (after copies under way finish, within --grace), 2 on a wrong command line,
    1 when it cannot start (the port is in use, the audit log cannot be written)."""
    raw = {
        "directory": str(directory) if directory is not None else None,
        "repo": repo,
        "ref": ref,
        "watch": watch,
        "environments": list(env or []),
        "interval": interval,
        "resync": resync,
        "listen": listen,
        "shard": shard,
        "shard_from_hostname": shard_from_hostname,
        "shards": shards,
        "grace": grace,
        "log_format": log_format,
        "audit_log": str(audit_log) if audit_log is not None else None,
        "cache_dir": str(cache_dir) if cache_dir is not None else None,
        "trusted_base": trusted_base,
        "insecure": insecure,
        "concurrency": concurrency,
        "retry_base": retry_base,
        "retry_max": retry_max,
        "retention": retention,
        "deep_resync": deep_resync,
    }
    environment = {**os.environ, OPTIONS_ENV: json.dumps(raw)}
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, "-m", "reconciler.controller"], environment)  # noqa: S606
