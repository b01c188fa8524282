"""``reconciler archive``: the archive store on the command line.

``list``, ``verify``, ``export`` and ``import`` live here; ``restore`` and ``destroy``, which write to
registries or destroy entries and are audited like apply, live in ``commands_archive_ops``; what every
archive command shares (the group, its options, which store, error mapping, rendering) in
``archive_common``.

Which store: ``--store DIR``, else ``archive.store`` of the desired state (``DIR`` or ``--repo URL --ref
R``; a relative store is relative to the desired state's root, exactly as apply resolves it). Library
errors are mapped to exit codes in ``run`` and nowhere else, and never as a traceback:

* 0: done (an empty or absent store lists as empty);
* 1: runtime failure: the store cannot be read, ``verify`` found damage, an entry does not exist, a
  registry failed, a restore or destroy was refused;
* 2: usage: a malformed REF, an unknown environment, no store configured, an output file that exists;
* 3: the desired state is invalid (every problem listed), or a policy refused the restore.

``--output json`` prints the versioned envelope on stdout (an ``error`` envelope too, when it fails);
messages for a person go to stderr. Heavy imports happen inside the commands (start-up time).
"""

# ruff: noqa: PLC0415  -- imports inside commands on purpose: start-up time of the CLI
from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from reconciler.cli.archive_common import (
    DirOption,
    Source,
    StoreOption,
    archive_app,
    fail,
    footprints,
    open_store,
    require_entries,
    run,
    show,
)
from reconciler.cli.options import OutputOption
from reconciler.cli.render import OutputFormat, err
from reconciler.cli.sources import CacheOption, DirArgument, RefOption, RepoOption
from reconciler.exitcodes import ExitCode

if TYPE_CHECKING:
    from reconciler.report.archive import StoreListing


# ---------------------------------------------------------------------------------------------- commands


@archive_app.command("list")
def list_entries(
    directory: DirArgument = None,
    *,
    repo: RepoOption = None,
    ref: RefOption = "main",
    cache_dir: CacheOption = None,
    store: StoreOption = None,
    output: OutputOption = OutputFormat.text,
) -> None:
    """List every entry of the archive store.

    Name, digest, media type, when and from where it was archived, the desired-state commit, and its size
    (manifests and blobs; shared blobs count for every entry, the total counts them once)."""
    from reconciler.report.archive import StoreListing, listing_lines, listing_markdown, listing_to_dict

    async def work() -> StoreListing:
        layout = open_store(store, Source(directory, repo, ref, cache_dir))
        exists = await asyncio.to_thread(layout.path.exists)
        entries = sorted(await layout.entries(), key=lambda entry: entry.label)
        sizes = await footprints(layout, entries)
        return StoreListing(store=str(layout.path), exists=exists, entries=tuple(zip(entries, sizes, strict=True)))

    listing = run("archive list", output, work)
    show(
        "archive list",
        output,
        status="ok",
        payload=listing_to_dict(listing),
        lines=listing_lines(listing),
        heading=f"Archive store {listing.store}",
        markdown=listing_markdown(listing),
    )


@archive_app.command("verify")
def verify(
    directory: DirArgument = None,
    *,
    repo: RepoOption = None,
    ref: RefOption = "main",
    cache_dir: CacheOption = None,
    store: StoreOption = None,
    output: OutputOption = OutputFormat.text,
) -> None:
    """Re-hash every blob of every entry; exit 1 when anything is wrong.

    Each damaged entry is listed with its problems. A store that is not there fails too: verify says the
    archive is there and whole."""
    from reconciler.archive import VerifyReport
    from reconciler.report.archive import verify_lines, verify_markdown, verify_to_dict

    async def work() -> VerifyReport:
        return await open_store(store, Source(directory, repo, ref, cache_dir)).verify()

    report = run("archive verify", output, work)
    show(
        "archive verify",
        output,
        status="ok" if report.ok else "failed",
        payload=verify_to_dict(report),
        lines=verify_lines(report),
        heading=f"Verify of {report.layout}",
        markdown=verify_markdown(report),
    )
    if not report.ok:
        if output is not OutputFormat.json:
            damaged = ", ".join(entry.name for entry in report.failed) or "the store itself"
            err(f"error: archive store {report.layout} failed verification: {damaged}")
        raise typer.Exit(int(ExitCode.FAILURE))


@archive_app.command("export")
def export_entries(
    refs: Annotated[list[str], typer.Argument(metavar="REF...", help="Entry names, e.g. d/payments/api:20261101_01.")],
    *,
    to: Annotated[Path, typer.Option("--to", metavar="FILE.tar", help="The oci-archive tarball to write.")],
    force: Annotated[bool, typer.Option("--force", help="Replace FILE.tar when it exists.")] = False,
    directory: DirOption = None,
    repo: RepoOption = None,
    ref: RefOption = "main",
    cache_dir: CacheOption = None,
    store: StoreOption = None,
    output: OutputOption = OutputFormat.text,
) -> None:
    """Write entries to an oci-archive tarball (skopeo reads it).

    Every blob they need is re-hashed on the way; the file appears only complete
    (skopeo inspect oci-archive:FILE.tar:REF)."""
    from reconciler.archive import ExportReport, export
    from reconciler.report.archive import export_lines, export_to_dict

    if to.is_dir():
        raise fail("archive export", output, ExitCode.USAGE, f"{to} is a directory; name a file", status="usage")
    if not to.parent.is_dir():
        message = f"{to.parent} does not exist; create it first"
        raise fail("archive export", output, ExitCode.USAGE, message, status="usage")
    if to.exists() and not force:
        message = f"{to} exists; pass --force to replace it"
        raise fail("archive export", output, ExitCode.USAGE, message, status="usage")

    async def work() -> ExportReport:
        layout = open_store(store, Source(directory, repo, ref, cache_dir))
        await require_entries(layout, refs)
        return await export(layout, refs, to=to)

    report = run("archive export", output, work)
    lines = export_lines(report)
    show("archive export", output, status="ok", payload=export_to_dict(report), lines=lines, heading="Export")


@archive_app.command("import")
def import_entries(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, metavar="FILE.tar", help="An oci-archive tarball.")
    ],
    *,
    entry: Annotated[
        list[str] | None, typer.Option("--entry", metavar="REF", help="Import only this entry (repeatable).")
    ] = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="Replace an entry of the same name that holds another image.")
    ] = False,
    directory: DirOption = None,
    repo: RepoOption = None,
    ref: RefOption = "main",
    cache_dir: CacheOption = None,
    store: StoreOption = None,
    output: OutputOption = OutputFormat.text,
) -> None:
    """Copy the entries of an oci-archive tarball into the store.

    The store is created when absent; every blob is hashed and an entry appears only once its whole image
    is in. The tarball is untrusted input: links, paths outside it and other tricks are refused before
    anything is written."""
    from reconciler.archive import ImportReport, import_archive
    from reconciler.report.archive import import_lines, import_to_dict

    async def work() -> tuple[ImportReport, str]:
        layout = open_store(store, Source(directory, repo, ref, cache_dir))
        async with layout:
            return await import_archive(file, into=layout, names=entry or None, replace=replace), str(layout.path)

    report, where = run("archive import", output, work)
    lines = import_lines(report, where)
    payload = {"store": where, **import_to_dict(report)}
    show("archive import", output, status="ok", payload=payload, lines=lines, heading="Import")
