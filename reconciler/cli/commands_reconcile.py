"""``reconciler plan`` and ``reconciler apply``: one reconcile pass, rendered; ``demo`` runs them locally.

Both commands share one code path (``reconciler.engine.reconcile.reconcile_pass``); ``plan`` is the dry
run. Exit codes (``reconciler.exitcodes``):

* ``plan``: 0 in sync (or changes pending without ``--detailed-exitcode``), 4 changes pending with
  ``--detailed-exitcode``, 1 when a registry could not be read, 3 invalid desired state;
* ``apply``: 0 when every declared image is in place, 1 when any image failed (each listed on stderr
  with its environment, registry and reason; refused conflicts and missing digests included), 3 invalid
  desired state.

Heavy imports (httpx, gitpython, ruamel.yaml, rich) happen inside the commands to keep start-up fast.
"""

# ruff: noqa: PLC0415  -- imports inside commands on purpose: start-up time of the CLI
from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from reconciler.cli.app import app
from reconciler.cli.options import AuditLogOption, EnvOption, InsecureOption, OutputOption
from reconciler.cli.render import OutputFormat, emit_json, envelope, err, invalid_state
from reconciler.cli.sources import CacheOption, DirArgument, RefOption, RepoOption, describe, load_desired
from reconciler.exitcodes import ExitCode

if TYPE_CHECKING:
    from reconciler.engine.reconcile import PassReport
    from reconciler.model.desired import DesiredState
    from reconciler.source import DesiredStateTree


DeepOption = Annotated[
    bool,
    typer.Option(
        "--deep",
        help="Also read every in-sync image back (manifests, children, blob sizes): finds what a registry "
        "acknowledged and did not keep. One GET per manifest and one HEAD per blob.",
    ),
]
RetentionOption = Annotated[
    bool,
    typer.Option(
        "--retention/--no-retention",
        help="Also plan/execute retention: archive, delete and destroy undeclared versions (default).",
    ),
]
TrustedBaseOption = Annotated[
    str | None,
    typer.Option(
        "--trusted-base",
        metavar="REF",
        help="Check commit signatures since REF (default: the last commit an apply of this desired state trusted).",
    ),
]


class LogFormat(StrEnum):
    text = "text"
    json = "json"


def _run_pass(
    desired: DesiredState,
    *,
    only: list[str] | None,
    dry_run: bool,
    insecure: bool,
    concurrency: int,
    audit_path: Path | None = None,
    json_log: bool = False,
    referrers: bool = True,
    retention: bool = True,
    deep: bool = False,
) -> PassReport:
    import asyncio

    from reconciler.cli.progress import TransferBars
    from reconciler.engine.audit import AuditLog
    from reconciler.engine.reconcile import reconcile_pass
    from reconciler.engine.registries import RegistryPool

    async def run() -> PassReport:
        pool = RegistryPool(desired.config, root=desired.root, insecure=insecure, referrers=referrers)
        audit = AuditLog(audit_path, echo=sys.stdout if json_log else None) if not dry_run else None
        try:
            return await reconcile_pass(
                desired,
                pool,
                only=only,
                dry_run=dry_run,
                audit=audit,
                apply_concurrency=concurrency,
                progress=bars if bars.enabled else None,
                retention=retention,
                deep=deep,
            )
        finally:
            await pool.aclose()
            if audit is not None:
                audit.close()

    with TransferBars(enabled=None if not dry_run else False) as bars:  # bars on stderr, on a terminal only
        return asyncio.run(run())


def _fail(command: str, output: OutputFormat, code: ExitCode, message: str, **payload: Any) -> typer.Exit:
    if output is OutputFormat.json:
        emit_json(envelope(command, "error", message=message, **payload))
    else:
        err(message)
    return typer.Exit(int(code))


def _guarded(command: str, output: OutputFormat, body: Any) -> Any:
    """Run ``body`` mapping the library's errors to exit codes (the only place that does so)."""
    from reconciler.engine.trusted import TrustRefusedError
    from reconciler.errors import DesiredStateError, PolicyError, ReconcilerError

    try:
        return body()
    except TrustRefusedError as exc:
        if output is OutputFormat.json:
            emit_json(envelope(command, "refused", trust=exc.report.to_json()))
        else:
            for violation in exc.report.violations:
                err(f"refused: {violation}")
            err(f"{exc}; nothing was contacted or written")
        raise typer.Exit(int(ExitCode.INVALID)) from None
    except PolicyError as exc:
        raise _fail(command, output, ExitCode.INVALID, f"refused: {exc}") from None
    except DesiredStateError as exc:
        raise invalid_state(command, output, exc, untouched="nothing was observed or changed") from None
    except ReconcilerError as exc:
        raise _fail(command, output, ExitCode.FAILURE, f"error: {exc}") from None


def _heading(source: DesiredStateTree, report: PassReport) -> str:
    envs = ", ".join(report.plan.environments) or "no environments"
    return f"reconciler plan: {describe(source)} ({envs})"


@app.command()
def plan(
    *,
    directory: DirArgument = None,
    repo: RepoOption = None,
    ref: RefOption = "main",
    env: EnvOption = None,
    output: OutputOption = OutputFormat.text,
    detailed_exitcode: Annotated[
        bool, typer.Option("--detailed-exitcode", help="Exit 4 when changes are pending (0 = in sync).")
    ] = False,
    insecure: InsecureOption = False,
    cache_dir: CacheOption = None,
    trusted_base: TrustedBaseOption = None,
    retention: RetentionOption = True,
    deep: DeepOption = False,
) -> None:
    """Observe the registries and print what apply would do (nothing is written)."""
    from reconciler.report.passes import lifecycle_lines, plan_lines, plan_markdown, report_to_dict, summary_line

    def body() -> tuple[DesiredStateTree, PassReport]:
        from reconciler.engine.trusted import TrustedPoints, enforce_trust

        source, desired = load_desired(directory, repo, ref, cache_dir)
        enforce_trust(source, desired, trusted_base=trusted_base, points=TrustedPoints())
        return source, _run_pass(
            desired, only=env, dry_run=True, insecure=insecure, concurrency=1, retention=retention, deep=deep
        )

    source, report = _guarded("plan", output, body)
    unreachable = [a for a in report.plan if a.kind.value in ("unreachable", "damaged")]
    pending = not report.plan.is_empty
    status = "failed" if unreachable else ("changes" if pending else "in-sync")
    if output is OutputFormat.json:
        emit_json(envelope("plan", status, source=_source_dict(source), **report_to_dict(report)))
    elif output is OutputFormat.markdown:
        typer.echo(plan_markdown(report.plan, _heading(source, report), report.referrers), nl=False)
    else:
        typer.echo(_heading(source, report))
        for line in plan_lines(report.plan, report.referrers):
            typer.echo(line)
        for line in lifecycle_lines(report.lifecycle):
            typer.echo(line)
        typer.echo(summary_line(report.plan))
    if unreachable:
        raise typer.Exit(int(ExitCode.FAILURE))
    if report.plan.refused_by_policy:
        raise typer.Exit(int(ExitCode.INVALID))
    if pending and detailed_exitcode:
        raise typer.Exit(int(ExitCode.CHANGES))


def _source_dict(source: DesiredStateTree) -> dict[str, Any]:
    commit = source.revision.commit if source.revision is not None else None
    return {"root": source.root, "url": source.url, "ref": source.ref, "commit": commit}


@app.command()
def apply(
    *,
    directory: DirArgument = None,
    repo: RepoOption = None,
    ref: RefOption = "main",
    env: EnvOption = None,
    output: OutputOption = OutputFormat.text,
    audit_log: AuditLogOption = None,
    log_format: Annotated[
        LogFormat,
        typer.Option(
            "--log-format",
            envvar="RECONCILER_LOG_FORMAT",
            help="json: also write every audit record to stdout as it happens (for log collectors).",
        ),
    ] = LogFormat.text,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1, help="Images copied at once.")] = 16,
    referrers: Annotated[
        bool,
        typer.Option(
            "--referrers/--no-referrers", help="Copy signatures, SBOMs and attestations with each image (default)."
        ),
    ] = True,
    insecure: InsecureOption = False,
    cache_dir: CacheOption = None,
    trusted_base: TrustedBaseOption = None,
    retention: RetentionOption = True,
    deep: DeepOption = False,
) -> None:
    """Observe, plan and execute: copy, retag and move tags until the registries match the desired state,
    then retire what retention says (archive, delete, destroy)."""
    from reconciler.engine.audit import default_audit_path
    from reconciler.report.passes import (
        lifecycle_lines,
        report_to_dict,
        result_to_dict,
        results_markdown,
        summary_line,
    )

    audit_path = audit_log or default_audit_path()
    json_log = log_format is LogFormat.json

    def body() -> tuple[DesiredStateTree, PassReport]:
        from reconciler.engine.trusted import TrustedPoints, enforce_trust, remember

        source, desired = load_desired(directory, repo, ref, cache_dir)
        points = TrustedPoints()
        trust = enforce_trust(source, desired, trusted_base=trusted_base, points=points)
        report = _run_pass(
            desired,
            only=env,
            dry_run=False,
            insecure=insecure,
            concurrency=concurrency,
            audit_path=audit_path,
            json_log=json_log,
            referrers=referrers,
            retention=retention,
            deep=deep,
        )
        remember(source, trust, points)  # the checked head is the next run's trusted point
        return source, report

    source, report = _guarded("apply", output, body)
    failures = report.failures
    status = "failed" if failures else "ok"
    if output is OutputFormat.json:
        emit_json(
            envelope("apply", status, source=_source_dict(source), audit_log=str(audit_path), **report_to_dict(report))
        )
    elif output is OutputFormat.markdown and not json_log:
        heading = f"reconciler apply: {describe(source)}"
        typer.echo(results_markdown(report.results or (), heading), nl=False)
    elif not json_log:
        typer.echo(f"reconciler apply: {describe(source)} ({', '.join(report.plan.environments)})")
        typer.echo(summary_line(report.plan))
        for result in report.results or ():
            if result.succeeded:
                item = result_to_dict(result)
                typer.echo(f"  ok  {item['kind']:<8} {item['registry']}/{item['repository']}:{item['tag']}")
        for line in lifecycle_lines(report.lifecycle):
            typer.echo(line)
        done = len(report.changed)
        typer.echo(f"Applied {done} change(s) in {report.execute_seconds:.1f}s; audit log: {audit_path}")
    if failures:
        err(f"apply failed for {len(failures)} image(s):")
        for failure in failures:
            err(f"  {failure.environment} {failure.registry} {failure.image}:{failure.tag}: {failure.reason}")
        # A policy refusal is exit 3 (INVALID) unless a runtime failure also happened (exit 1).
        only_policy = all(failure.action == "refused" for failure in failures)
        raise typer.Exit(int(ExitCode.INVALID if only_policy else ExitCode.FAILURE))
