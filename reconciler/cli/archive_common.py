"""What every ``reconciler archive`` command shares: the command group, its options, which store and
which desired state, the one mapping of library errors to exit codes (``run``), rendering (``show``),
and the look-ups of entries. The commands live in ``commands_archive`` (list, verify, export, import)
and ``commands_archive_ops`` (restore, destroy); the exit codes are listed in ``commands_archive``.
"""

# ruff: noqa: PLC0415  -- imports inside functions on purpose: start-up time of the CLI

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from reconciler.cli.app import app
from reconciler.cli.render import OutputFormat, emit_json, envelope, err, invalid_state
from reconciler.cli.sources import load_desired
from reconciler.exitcodes import ExitCode

if TYPE_CHECKING:
    from reconciler.archive import ArchiveEntry, OciLayout
    from reconciler.model.desired import DesiredState
    from reconciler.report.archive import EntryFootprint

T = TypeVar("T")

archive_app = typer.Typer(
    name="archive",
    help="The archive store (an OCI image layout): list, verify, export, import, restore, destroy.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(archive_app, name="archive")

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
        return load_desired(self.directory, self.repo, self.ref, self.cache_dir)[1]


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
    from reconciler.engine.housekeeping import layout_at, open_store

    if store is not None:
        return layout_at(store)
    state = desired if desired is not None else source.load()
    layout = open_store(state)
    if layout is None:
        raise usage(
            f"no archive store: {Path(state.root) / 'reconciler.yaml'} has no 'archive' section; "
            "configure archive.store there or pass --store DIR"
        )
    return layout


def run(command: str, output: OutputFormat, work: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run ``work`` and map every error it raises on purpose to an exit code (the only place that does)."""
    from reconciler.errors import DesiredStateError, PolicyError, ReconcilerError

    try:
        return asyncio.run(work())
    except CommandError as exc:
        raise fail(command, output, exc.code, exc.message, status=exc.status, **exc.payload) from None
    except DesiredStateError as exc:
        raise invalid_state(command, output, exc, untouched="nothing was read or changed") from None
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
    from reconciler.model.manifest import Descriptor, Manifest
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
            else:
                pending += found.children
        measured.append(EntryFootprint(blobs=blobs, problem=problem))
    return measured


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
