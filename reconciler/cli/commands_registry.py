"""Registry utilities on the command line: ``copy``, ``ls``, ``digest``, ``inspect`` (like crane/regctl).

They are thin: parse the references, build clients (credentials from ``RECONCILER_AUTH_<HOST>_*``
variables and Docker's config.json), call ``reconciler.registry``, render text or a JSON envelope, and
map errors to exit codes (1 registry failure, 2 bad reference or usage). Progress bars go to stderr and
only on a terminal. Loopback registries are reached over plain HTTP; any other host over HTTPS unless
``--insecure``. Heavy imports happen inside the commands so ``reconciler --help`` stays fast.
"""

# ruff: noqa: PLC0415  -- imports inside commands on purpose: start-up time of the CLI
from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from reconciler.cli.app import app
from reconciler.cli.options import InsecureOption, OutputOption
from reconciler.cli.progress import TransferBars, human_size
from reconciler.cli.render import OutputFormat, emit_json, envelope, err
from reconciler.errors import ReconcilerError
from reconciler.exitcodes import ExitCode

if TYPE_CHECKING:
    from reconciler.model.manifest import Manifest
    from reconciler.model.reference import Reference
    from reconciler.registry import RegistryClient
    from reconciler.registry.mirror import ImageCopy

T = TypeVar("T")


def _usage(message: str) -> typer.Exit:
    err(f"error: {message}")
    return typer.Exit(code=int(ExitCode.USAGE))


def _parse(text: str) -> Reference:
    from reconciler.model.reference import Reference, looks_like_registry_address

    if looks_like_registry_address(text):
        raise _usage(
            f"{text!r} is a registry address, not an image: name a repository, e.g. {text}/team/app:TAG "
            "(a reference without a registry host means Docker Hub, which reconciler never guesses at)"
        )
    try:
        return Reference.parse(text)
    except ValueError as exc:
        raise _usage(str(exc)) from exc


def _client(host: str, insecure: bool) -> RegistryClient:
    from reconciler.registry import RegistryClient, default_resolver

    try:
        return RegistryClient(url=host, credentials=default_resolver(), insecure=insecure, name=host)
    except ValueError as exc:
        raise _usage(str(exc)) from exc


def _run(work: Callable[[], Awaitable[T]], command: str, output: OutputFormat = OutputFormat.text) -> T:
    """Run ``work`` and map library errors to exit code 1, with the message (never a secret) on stderr and,
    for ``--output json``, an ``error`` envelope on stdout (a script reading JSON always gets a document)."""
    import asyncio

    try:
        return asyncio.run(work())  # type: ignore[arg-type]
    except ReconcilerError as exc:
        if output == OutputFormat.json:
            emit_json(envelope(command, "error", message=str(exc)))
        err(f"error: {exc}")
        raise typer.Exit(code=int(ExitCode.FAILURE)) from None


def _copy_line(result: ImageCopy) -> str:
    if result.error is not None:
        return f"FAILED   {result.source} -> {result.target}: {result.error}"
    report = result.report
    assert report is not None
    if report.already_present:
        return f"present  {result.target} {report.digest}"
    detail = (
        f"{report.blobs_copied} blobs copied ({human_size(report.bytes_copied)}), "
        f"{report.blobs_mounted} mounted, {report.blobs_skipped} already there"
        + (f", {len(result.referrers)} referrer(s)" if result.referrers else "")
    )
    return f"copied   {result.source} -> {result.target} {report.digest} ({detail})"


def _copy_json(result: ImageCopy) -> dict[str, Any]:
    document: dict[str, Any] = {"source": result.source, "target": result.target, "tag": result.tag}
    if result.report is not None:
        report = result.report
        document.update(
            digest=str(report.digest),
            media_type=report.media_type,
            already_present=report.already_present,
            manifests_written=report.manifests_written,
            blobs_copied=report.blobs_copied,
            blobs_mounted=report.blobs_mounted,
            blobs_skipped=report.blobs_skipped,
            bytes_copied=report.bytes_copied,
            platforms=sorted(report.platforms),
        )
    if result.referrers:
        document["referrers"] = list(result.referrers)
    if result.error is not None:
        document["error"] = str(result.error)
    return document


@app.command()
def copy(
    source: Annotated[str, typer.Argument(help="HOST/REPO:TAG, HOST/REPO@DIGEST, or HOST/REPO with --all-tags.")],
    destination: Annotated[str, typer.Argument(help="HOST/REPO[:TAG] (default tag: the source's).")],
    *,
    all_tags: Annotated[
        bool, typer.Option("--all-tags", "-a", help="Copy every tag of the source repository.")
    ] = False,
    recursive: Annotated[
        bool,
        typer.Option("--recursive", "-r", help="With --all-tags: every repository under SOURCE (HOST or HOST/PREFIX)."),
    ] = False,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="Images copied concurrently.")] = 8,
    blobs: Annotated[int, typer.Option("--parallel-blobs", min=1, help="Blob transfers in flight.")] = 8,
    referrers: Annotated[
        bool,
        typer.Option(
            "--referrers/--no-referrers",
            help="Also copy the image's signatures, SBOMs and attestations, before its tag (one image; with "
            "--all-tags, cosign and tag-schema tags are tags and travel anyway). Default off, as skopeo.",
        ),
    ] = False,
    insecure: InsecureOption = False,
    output: OutputOption = OutputFormat.text,
) -> None:
    """Copy images (every platform, byte-exact); within one registry, blobs are mounted. Tag written last."""
    from reconciler.registry import Copier
    from reconciler.registry.mirror import ImageCopy, copy_repositories, copy_tags

    if recursive and not all_tags:
        raise _usage("--recursive needs --all-tags")
    if recursive:
        src_host, _, src_prefix = source.partition("/")
        dst_host, _, dst_prefix = destination.partition("/")
        if not src_host or not dst_host:
            raise _usage("--recursive takes HOST[/PREFIX] for both source and destination")
    else:
        src_ref, dst_ref = _parse(source), _parse(destination)
        if all_tags and (src_ref.tag or src_ref.digest or dst_ref.tag or dst_ref.digest):
            raise _usage("--all-tags copies whole repositories: give HOST/REPO without tag or digest")
        if not all_tags and src_ref.reference is None:
            raise _usage(f"{source}: name a tag or a digest to copy (or use --all-tags)")
        if dst_ref.digest is not None:
            raise _usage(f"{destination}: the destination takes a tag, not a digest")
        src_host, dst_host = src_ref.api_host, dst_ref.api_host

    progress = TransferBars(
        show_blobs=True, transient=True, enabled=sys.stderr.isatty() and output != OutputFormat.json
    )
    copier = Copier(max_parallel_blobs=blobs, progress=progress if progress.enabled else None)

    async def work() -> list[ImageCopy]:
        source_client = _client(src_host, insecure)
        target_client = source_client if dst_host == src_host else _client(dst_host, insecure)
        try:
            if recursive:
                return await copy_repositories(
                    source=source_client,
                    source_prefix=src_prefix,
                    target=target_client,
                    target_prefix=dst_prefix,
                    copier=copier,
                    jobs=jobs,
                )
            if all_tags:
                return await copy_tags(
                    source=source_client,
                    source_repository=src_ref.repository,
                    target=target_client,
                    target_repository=dst_ref.repository,
                    copier=copier,
                    jobs=jobs,
                )
            tag = dst_ref.tag or src_ref.tag
            result = ImageCopy(
                source=str(src_ref),
                target=f"{dst_host}/{dst_ref.repository}" + (f":{tag}" if tag else ""),
                tag=tag or "",
            )
            travelling = None
            try:
                if referrers:
                    from reconciler.registry.referrercopy import ReferrersCopy

                    listed = await source_client.list_tags(src_ref.repository)
                    travelling = ReferrersCopy(
                        copier, source_client, src_ref.repository, target_client, dst_ref.repository, source_tags=listed
                    )
                result.report = await copier.copy(
                    source=source_client,
                    source_repository=src_ref.repository,
                    reference=str(src_ref.reference),
                    target=target_client,
                    target_repository=dst_ref.repository,
                    tag=tag,
                    before_tag=travelling,
                )
            except ReconcilerError as exc:
                result.error = exc
            if travelling is not None:
                result.referrers = travelling.placed
            return [result]
        finally:
            await source_client.aclose()
            if target_client is not source_client:
                await target_client.aclose()

    with progress:
        results = _run(work, "copy", output)
    failed = [r for r in results if not r.ok]
    if output == OutputFormat.json:
        emit_json(
            envelope(
                "copy",
                "failed" if failed else "ok",
                images=[_copy_json(r) for r in results],
                summary=_summary(results),
            )
        )
    else:
        for result in results:
            typer.echo(_copy_line(result))
        summary = _summary(results)
        err(
            f"{summary['images']} images: {summary['copied']} copied, {summary['present']} already present, "
            f"{summary['failed']} failed; {human_size(summary['bytes_copied'])} transferred"
        )
    for result in failed:
        err(f"error: {result.source}: {result.error}")
    if failed:
        raise typer.Exit(code=int(ExitCode.FAILURE))


def _summary(results: list[ImageCopy]) -> dict[str, int]:
    reports = [r.report for r in results if r.report is not None]
    return {
        "images": len(results),
        "copied": sum(1 for r in reports if not r.already_present),
        "present": sum(1 for r in reports if r.already_present),
        "failed": sum(1 for r in results if not r.ok),
        "blobs_copied": sum(r.blobs_copied for r in reports),
        "blobs_mounted": sum(r.blobs_mounted for r in reports),
        "bytes_copied": sum(r.bytes_copied for r in reports),
    }


@app.command("ls")
def list_tags(
    repository: Annotated[str, typer.Argument(help="HOST/REPO: its tags; HOST alone: the registry's repositories.")],
    insecure: InsecureOption = False,
    output: OutputOption = OutputFormat.text,
) -> None:
    """List the tags of a repository (sorted), or the repositories of a registry."""
    if "/" not in repository.strip("/"):
        host, repo_name = repository.strip("/"), None
    else:
        ref = _parse(repository)
        if ref.tag or ref.digest:
            raise _usage(f"{repository}: give HOST/REPO without tag or digest")
        host, repo_name = ref.api_host, ref.repository

    async def work() -> list[str]:
        async with _client(host, insecure) as client:
            return await client.list_tags(repo_name) if repo_name else await client.catalog()

    names = _run(work, "ls", output)
    if output == OutputFormat.json:
        key = "tags" if repo_name else "repositories"
        emit_json(envelope("ls", "ok", registry=host, repository=repo_name, **{key: names}))
        return
    for name in names:
        typer.echo(name)


@app.command()
def digest(
    reference: Annotated[str, typer.Argument(help="HOST/REPO:TAG or HOST/REPO@DIGEST.")],
    insecure: InsecureOption = False,
) -> None:
    """Print the digest a reference resolves to (one HEAD request)."""
    ref = _parse(reference)
    if ref.reference is None:
        raise _usage(f"{reference}: name a tag or a digest")

    async def work() -> str | None:
        async with _client(ref.api_host, insecure) as client:
            found = await client.head_manifest(ref.repository, str(ref.reference))
            return None if found is None else str(found.digest)

    found = _run(work, "digest")
    if found is None:
        err(f"error: {reference}: manifest not found")
        raise typer.Exit(code=int(ExitCode.FAILURE))
    typer.echo(found)


@app.command()
def inspect(
    reference: Annotated[str, typer.Argument(help="HOST/REPO:TAG or HOST/REPO@DIGEST.")],
    raw: Annotated[bool, typer.Option("--raw", help="Print the manifest bytes exactly as stored.")] = False,
    insecure: InsecureOption = False,
    output: OutputOption = OutputFormat.text,
) -> None:
    """Show an image: digest, media type, platforms (index) or config and layers (image manifest)."""
    import json

    ref = _parse(reference)
    if ref.reference is None:
        raise _usage(f"{reference}: name a tag or a digest")

    async def work() -> tuple[Manifest, dict[str, Any] | None]:
        async with _client(ref.api_host, insecure) as client:
            manifest = await client.get_manifest(ref.repository, str(ref.reference))
            config = None
            if not raw and manifest.config is not None:
                config = json.loads(await client.get_blob(ref.repository, str(manifest.config.digest)))
            return manifest, config

    manifest, config = _run(work, "inspect", output)
    if raw:
        sys.stdout.buffer.write(manifest.raw)
        sys.stdout.buffer.flush()
        return
    document = _inspect_document(ref, manifest, config)
    if output == OutputFormat.json:
        emit_json(envelope("inspect", "ok", **document))
        return
    bullet = "- " if output == OutputFormat.markdown else ""
    typer.echo(f"{bullet}reference:  {document['reference']}")
    typer.echo(f"{bullet}digest:     {document['digest']}")
    typer.echo(f"{bullet}media type: {document['media_type']}")
    if manifest.is_index:
        typer.echo(f"{bullet}platforms:")
        for child in document["manifests"]:
            typer.echo(f"  {bullet}{child['platform'] or '?':<20} {child['digest']} ({child['media_type']})")
        return
    image = document["image"]
    typer.echo(f"{bullet}platform:   {image['platform']}")
    typer.echo(f"{bullet}created:    {image['created']}")
    typer.echo(f"{bullet}user:       {image['user'] or '(root)'}")
    typer.echo(f"{bullet}entrypoint: {json.dumps(image['entrypoint'])}")
    typer.echo(f"{bullet}cmd:        {json.dumps(image['cmd'])}")
    for key, value in sorted((image["labels"] or {}).items()):
        typer.echo(f"{bullet}label:      {key}={value}")
    typer.echo(f"{bullet}size:       {human_size(document['size'])} in {len(document['layers'])} layers")
    for layer in document["layers"]:
        typer.echo(f"  {bullet}{layer['digest']} {human_size(layer['size'])}")


def _inspect_document(ref: Reference, manifest: Manifest, config: dict[str, Any] | None) -> dict[str, Any]:
    document: dict[str, Any] = {
        "reference": str(ref),
        "digest": str(manifest.digest),
        "media_type": manifest.media_type,
        "manifest_size": manifest.size,
    }
    if manifest.is_index:
        document["manifests"] = [
            {
                "digest": str(child.digest),
                "media_type": child.media_type,
                "size": child.size,
                "platform": str(child.platform) if child.platform else None,
            }
            for child in manifest.manifests
        ]
        return document
    container = (config or {}).get("config") or {}
    platform = "/".join(p for p in ((config or {}).get("os"), (config or {}).get("architecture")) if p)
    if (config or {}).get("variant"):
        platform += f"/{config['variant']}"  # type: ignore[index]
    document["config_digest"] = str(manifest.config.digest) if manifest.config else None
    document["layers"] = [
        {"digest": str(layer.digest), "size": layer.size, "media_type": layer.media_type} for layer in manifest.layers
    ]
    document["size"] = manifest.image_bytes
    document["image"] = {
        "platform": platform or None,
        "created": (config or {}).get("created"),
        "user": container.get("User") or None,
        "entrypoint": container.get("Entrypoint"),
        "cmd": container.get("Cmd"),
        "labels": container.get("Labels") or {},
        "env": container.get("Env") or [],
        "diff_ids": ((config or {}).get("rootfs") or {}).get("diff_ids") or [],
    }
    return document
