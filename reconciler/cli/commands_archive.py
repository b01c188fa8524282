"""``reconciler archive``: the archive store on the command line.

``list``, ``verify``, ``export`` and ``import`` live here, with what every archive command shares (which
store, the desired state, error mapping, rendering); ``restore`` and ``destroy``, which write to
registries or destroy entries and are audited like apply, live in ``commands_archive_ops``.

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
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from reconciler.cli.app import app
from reconciler.cli.render import OutputFormat, emit_json, envelope, err
from reconciler.cli.sources import CacheOption, DirArgument, RefOption, RepoOption, open_trees
from reconciler.exitcodes import ExitCode

if TYPE_CHECKING:
    from reconciler.archive import ArchiveEntry, OciLayout
    from reconciler.model.desired import DesiredState
    from reconciler.report.archive import EntryFootprint, StoreListing

T = TypeVar("T")

archive_app = typer.Typer(
    name="archive",
    help="The archive store (an OCI image layout): list, verify, export, import, restore, destroy.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(archive_app, name="archive")

OutputOption = Annotated[OutputFormat, typer.Option("--output", "-o", help="text, markdown or json.")]
StoreOption = Annotated[
    Path | None,
    typer.Option(
        "--store",
        help="Archive store directory (default: archive.store of the desired state).",
        show_default=False,
    ),
]
DirOption = Annotated[
    Path | None,
    typer.Option(
        "--dir",
        exists=True,
        file_okay=False,
        help="Desired-state directory (default: the current directory). Ignored with --repo.",
        show_default=False,
    ),
]


@dataclass(frozen=True, slots=True)
class Source:
    """Where the desired state comes from (``DIR`` or ``--repo URL --ref R``)."""

    directory: Path | None
    repo: str | None
    ref: str
    cache_dir: Path | None

    def load(self) -> DesiredState:
        """The valid desired state; raises ``DesiredStateError`` (every problem) or ``SourceError``."""
        from reconciler.manifests import load_tree

        with open_trees(self.directory, self.repo, self.ref, None, self.cache_dir) as (head, _base):
            return load_tree(head)


class CommandError(Exception):
    """A refusal or failure the command itself detects: its exit code, envelope status and message."""

    def __init__(self, message: str, *, code: ExitCode = ExitCode.FAILURE, status: str = "error", **payload: Any):
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
        self.payload = payload


def usage(message: str) -> CommandError:
    return CommandError(message, code=ExitCode.USAGE, status="usage")


def open_store(store: Path | None, source: Source, *, desired: DesiredState | None = None) -> OciLayout:
    """``--store``, else the desired state's ``archive.store`` (loaded from ``source`` unless given)."""
    from reconciler.archive import OciLayout
    from reconciler.engine.housekeeping import store_path

    path = store
    if path is None:
        state = desired if desired is not None else source.load()
        path = store_path(state)
        if path is None:
            raise usage(
                f"no archive store: {Path(state.root) / 'reconciler.yaml'} has no 'archive' section; "
                "configure archive.store there or pass --store DIR"
            )
    return OciLayout(path, name=f"archive store {path}")


def run(command: str, output: OutputFormat, work: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run ``work`` and map every error it raises on purpose to an exit code (the only place that does)."""
    from reconciler.errors import DesiredStateError, PolicyError, ReconcilerError

    try:
        return asyncio.run(work())
    except CommandError as exc:
        raise fail(command, output, exc.code, exc.message, status=exc.status, **exc.payload) from None
    except DesiredStateError as exc:
        if output is OutputFormat.json:
            problems = [
                {"file": p.file, "line": p.line, "column": p.column, "code": p.code, "message": p.message}
                for p in exc.problems
            ]
            emit_json(envelope(command, "invalid", errors=problems))
        else:
            for problem in exc.problems:
                err(str(problem))
            err(f"invalid desired state: {len(exc.problems)} problem(s); nothing was read or changed")
        raise typer.Exit(int(ExitCode.INVALID)) from None
    except PolicyError as exc:
        raise fail(command, output, ExitCode.INVALID, f"refused: {exc}", status="refused") from None
    except ReconcilerError as exc:
        raise fail(command, output, ExitCode.FAILURE, f"error: {exc}", status="error") from None


def fail(
    command: str, output: OutputFormat, code: ExitCode, message: str, *, status: str, **payload: Any
) -> typer.Exit:
    if output is OutputFormat.json:
        emit_json(envelope(command, status, message=message, **payload))
    else:
        err(message if message.startswith(("error:", "refused:")) else f"error: {message}")
    return typer.Exit(int(code))


def show(
    command: str,
    output: OutputFormat,
    *,
    status: str,
    payload: dict[str, Any],
    lines: Sequence[str],
    heading: str,
    markdown: str | None = None,
) -> None:
    """Print the result: the JSON envelope, markdown (a table where the report has one) or text lines."""
    from reconciler.report.archive import as_markdown

    if output is OutputFormat.json:
        emit_json(envelope(command, status, **payload))
    elif output is OutputFormat.markdown:
        typer.echo(markdown if markdown is not None else as_markdown(heading, lines), nl=False)
    else:
        for line in lines:
            typer.echo(line)


async def footprints(store: OciLayout, entries: Iterable[ArchiveEntry]) -> list[EntryFootprint]:
    """Each entry's tree as its manifests describe it (digest -> size), each manifest read once; a
    manifest that cannot be read makes that entry's size partial (noted), never the listing fail."""
    from reconciler.errors import ReconcilerError, RegistryError
    from reconciler.model.manifest import MANIFEST_TYPES, Descriptor, Manifest
    from reconciler.report.archive import EntryFootprint

    read: dict[str, Manifest | str] = {}

    async def manifest(repository: str, digest: str) -> Manifest | str:
        if digest not in read:
            try:
                read[digest] = await store.get_manifest(repository, digest)
            except ReconcilerError as exc:
                why = exc.reason if isinstance(exc, RegistryError) else str(exc)
                read[digest] = f"manifest {digest} cannot be read: {why}"
        return read[digest]

    measured: list[EntryFootprint] = []
    for entry in entries:
        blobs: dict[str, int] = {}
        problem: str | None = None
        pending: list[tuple[Descriptor, bool]] = [(entry.descriptor, True)]
        while pending:
            node, is_manifest = pending.pop()
            if str(node.digest) in blobs:
                continue
            blobs[str(node.digest)] = node.size
            if not is_manifest:
                continue
            found = await manifest(entry.repository or entry.label, str(node.digest))
            if isinstance(found, str):
                problem = problem or found
            elif found.is_index:
                pending += [(child, child.media_type in MANIFEST_TYPES) for child in found.manifests]
            else:
                pending += [(blob, False) for blob in found.blobs]
        measured.append(EntryFootprint(blobs=blobs, problem=problem))
    return measured


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


async def require_entries(layout: OciLayout, names: Iterable[str]) -> dict[str, ArchiveEntry]:
    """The named entries; ``CommandError`` (exit 1) naming every one the store does not hold."""
    index = await layout.index()
    wanted = list(dict.fromkeys(names))
    found = {name: entry for name in wanted if (entry := index.find(name)) is not None}
    unknown = [name for name in wanted if name not in found]
    if unknown:
        where = (
            f"no archive store at {layout.path}"
            if not await asyncio.to_thread(layout.path.exists)
            else f"{layout.name} holds {len(index.entries)} entries, not {', '.join(unknown)}"
        )
        raise CommandError(f"no such entry: {', '.join(unknown)} ({where}; see `reconciler archive list`)")
    return found


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


from reconciler.cli import commands_archive_ops  # noqa: E402, F401  (registers restore and destroy)
