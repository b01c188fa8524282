"""``reconciler diff``: what a merge request changes, per environment, image by image (the MR comment).

Offline by default: the head (the directory, ``--head REF`` of its repository, or ``--repo URL --ref``)
against ``--base REF``: versions added, removed and changed per environment, then the full validation of
the head including the no-skipped-stage rule since the base. ``--plan`` also observes the registries and
lists the actions the merge would cause (and the images that could not be written). Exit codes: 0 no
change, 4 changes, 3 invalid (or an image the merge cannot bring in), 1 Git or a registry failed.
"""

# ruff: noqa: PLC0415  -- imports inside commands on purpose: start-up time of the CLI
from __future__ import annotations

from typing import Annotated

import typer

from reconciler.cli.app import app
from reconciler.cli.options import OutputOption
from reconciler.cli.render import OutputFormat, emit_json, envelope, err
from reconciler.cli.sources import CacheOption, DirArgument, RefOption, RepoOption, describe, open_trees
from reconciler.exitcodes import ExitCode


@app.command()
def diff(
    directory: DirArgument = None,
    *,
    base: Annotated[str, typer.Option("--base", metavar="REF", help="The merge request's target (e.g. origin/main).")],
    head: Annotated[
        str | None, typer.Option("--head", metavar="REF", help="Compare this commit instead of the directory.")
    ] = None,
    repo: RepoOption = None,
    ref: RefOption = "main",
    cache_dir: CacheOption = None,
    with_plan: Annotated[
        bool, typer.Option("--plan", help="Also observe the registries and list the actions the merge causes.")
    ] = False,
    insecure: Annotated[bool, typer.Option("--insecure", help="With --plan: allow plain HTTP registries.")] = False,
    output: OutputOption = OutputFormat.text,
) -> None:
    """Show what a change to the desired state does, per environment (and, with --plan, in the registries)."""
    import asyncio

    from reconciler.engine.reconcile import PassReport, reconcile_pass
    from reconciler.engine.registries import RegistryPool
    from reconciler.errors import ReconcilerError, SourceError
    from reconciler.manifests.compare import compare
    from reconciler.report.diff import diff_lines, diff_markdown, diff_to_dict

    try:
        with open_trees(directory, repo, ref, base, cache_dir, head_ref=head) as (head_tree, base_tree):
            comparison = compare(head_tree, base_tree)
            heading = f"reconciler diff: {describe(head_tree)} against {base}"
    except SourceError as exc:
        err(f"error: {exc}")
        raise typer.Exit(int(ExitCode.FAILURE)) from None

    report: PassReport | None = None
    if with_plan and comparison.valid:

        async def observe() -> PassReport:
            pool = RegistryPool(comparison.head.config, insecure=insecure)
            try:
                return await reconcile_pass(comparison.head, pool, dry_run=True)
            finally:
                await pool.aclose()

        try:
            report = asyncio.run(observe())
        except ReconcilerError as exc:
            err(f"error: {exc}")
            raise typer.Exit(int(ExitCode.FAILURE)) from None
    plan = report.plan if report is not None else None
    unreachable = plan is not None and any(a.kind.value == "unreachable" for a in plan)
    blocked = plan is not None and any(a.fails and a.kind.value != "unreachable" for a in plan)
    status = "invalid" if not comparison.valid or blocked else ("changes" if comparison.changed else "no-change")
    if output is OutputFormat.json:
        emit_json(envelope("diff", status, base=base, **diff_to_dict(comparison, plan)))
    elif output is OutputFormat.markdown:
        typer.echo(diff_markdown(comparison, heading, plan), nl=False)
    else:
        typer.echo(heading)
        for line in diff_lines(comparison, plan):
            typer.echo(line)
    if not comparison.valid or blocked:
        raise typer.Exit(int(ExitCode.INVALID))
    if unreachable:
        raise typer.Exit(int(ExitCode.FAILURE))
    if comparison.changed:
        raise typer.Exit(int(ExitCode.CHANGES))
