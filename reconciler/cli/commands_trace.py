"""``reconciler history IMAGE`` and ``reconciler trace DIGEST``: where a version has been, and who put it there.

Both read the Git history of the desired state's environment files (DIR in a work tree, or ``--repo URL``
fetched into the cache) and the audit log (``--audit-log``, else the default), and print one timeline.
``trace`` also says which tags carry the digest now, in which environments, and the path it took.
Exit codes: 0 (found or not: an empty answer is an answer), 1 Git failed, 2 usage, 3 invalid desired state
(every problem listed as ``file:line:col: message [code]``, as every other command does).
"""

# ruff: noqa: PLC0415  -- imports inside commands on purpose: start-up time of the CLI
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from reconciler.cli.app import app
from reconciler.cli.options import OutputOption
from reconciler.cli.render import OutputFormat, emit_json, envelope, err, invalid_state
from reconciler.cli.sources import CacheOption, DirArgument, RefOption, RepoOption
from reconciler.exitcodes import ExitCode

AuditOption = Annotated[
    Path | None,
    typer.Option("--audit-log", help="Audit log to join (default: $RECONCILER_AUDIT_LOG or the state dir)."),
]


def _lineage(
    directory: Path | None,
    repo: str | None,
    ref: str,
    cache_dir: Path | None,
    audit_log: Path | None,
    *,
    command: str,
    output: OutputFormat,
    image: str | None = None,
    digest: str | None = None,
) -> tuple[object, tuple[str, ...]]:
    from reconciler.engine.audit import default_audit_path
    from reconciler.engine.lineage import Lineage, current_pins, registry_events, version_events
    from reconciler.errors import DesiredStateError, ReconcilerError
    from reconciler.manifests import load_tree
    from reconciler.source import open_directory, open_remote
    from reconciler.source.remote import clone_dir

    try:
        if repo is not None:
            with open_remote(repo, ref, cache_dir=cache_dir) as tree:
                desired = load_tree(tree)
                versions = version_events(
                    clone_dir(repo, cache_dir) / "repo.git", head=tree.sha, image=image, digest=digest
                )
        else:
            tree_dir = directory or Path(".")
            desired = load_tree(open_directory(tree_dir))
            versions = version_events(tree_dir, image=image, digest=digest)
    except DesiredStateError as exc:
        raise invalid_state(command, output, exc, untouched="no history was read") from None
    except ReconcilerError as exc:
        err(f"error: {exc}")
        raise typer.Exit(int(ExitCode.FAILURE)) from None
    pinned = [(s.environment, p.image, p.tag, p.digest) for s in desired.environments.values() for p in s.versions()]
    lineage = Lineage(
        versions=tuple(versions),
        registry=tuple(registry_events(audit_log or default_audit_path(), image=image, digest=digest)),
        current=current_pins(pinned, image=image, digest=digest),
    )
    return lineage, desired.config.environment_names


@app.command()
def history(
    image: Annotated[str, typer.Argument(help="Image, e.g. payments/api.")],
    directory: DirArgument = None,
    *,
    repo: RepoOption = None,
    ref: RefOption = "main",
    cache_dir: CacheOption = None,
    audit_log: AuditOption = None,
    output: OutputOption = OutputFormat.text,
) -> None:
    """The lineage of an image across environments: each version's entries and exits, commits, MRs, writes."""
    from reconciler.engine.lineage import Lineage
    from reconciler.report.lineage import lineage_markdown, lineage_to_dict, timeline

    lineage, _order = _lineage(
        directory, repo, ref, cache_dir, audit_log, command="history", output=output, image=image
    )
    assert isinstance(lineage, Lineage)
    if output is OutputFormat.json:
        emit_json(envelope("history", "ok", image=image, **lineage_to_dict(lineage)))
    elif output is OutputFormat.markdown:
        typer.echo(lineage_markdown(lineage, f"History of {image}"), nl=False)
    else:
        typer.echo(f"history of {image}")
        for env, _image, tag, digest in lineage.current:
            typer.echo(f"  now in {env}: {tag} {digest}")
        for line in timeline(lineage):
            typer.echo(f"  {line}")


@app.command()
def trace(
    digest: Annotated[str, typer.Argument(help="sha256:... or sha512:... of an image (index or manifest).")],
    directory: DirArgument = None,
    *,
    repo: RepoOption = None,
    ref: RefOption = "main",
    cache_dir: CacheOption = None,
    audit_log: AuditOption = None,
    output: OutputOption = OutputFormat.text,
) -> None:
    """Where a digest is now, who put it there and when, where it came from and where it went next."""
    from reconciler.engine.lineage import Lineage
    from reconciler.model.digest import is_valid_digest
    from reconciler.report.lineage import lineage_markdown, lineage_to_dict, promotion_path, timeline

    if not is_valid_digest(digest):
        err(f"error: {digest!r} is not a digest (sha256:<64 lowercase hex> or sha512:<128 lowercase hex>)")
        raise typer.Exit(int(ExitCode.USAGE))
    lineage, order = _lineage(directory, repo, ref, cache_dir, audit_log, command="trace", output=output, digest=digest)
    assert isinstance(lineage, Lineage)
    path = promotion_path(lineage, order)
    if output is OutputFormat.json:
        emit_json(envelope("trace", "ok", digest=digest, path=path, **lineage_to_dict(lineage)))
    elif output is OutputFormat.markdown:
        typer.echo(lineage_markdown(lineage, f"Trace of {digest}", path), nl=False)
    else:
        typer.echo(f"trace of {digest}")
        if not lineage.current:
            typer.echo("  pinned nowhere now")
        for env, image, tag, _digest in lineage.current:
            typer.echo(f"  now: {env} {image}:{tag}")
        if path:
            typer.echo("  path: " + " -> ".join(path))
        for line in timeline(lineage):
            typer.echo(f"  {line}")
