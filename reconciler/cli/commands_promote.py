"""``reconciler promote`` and ``reconciler next-tag``: the everyday workflow of a team.

``promote IMAGE --to ENV`` (or ``--all-from ENV``) edits ``environments/ENV.yaml`` (comments and layout
kept), commits on a new branch without touching the checkout, and with ``--push`` / ``--open-mr`` pushes it
and opens or updates the GitLab merge request or GitHub pull request, whose description is the
``diff --output markdown`` of the branch. ``next-tag IMAGE`` names the next build: ``YYYYMMDD_NN`` for the
day, from the source registry's tags, and with ``--reserve`` claims the number atomically in the
desired-state repository's remote, so two builds racing for it never both get it.

Exit codes: 0 done, 3 refused (nothing written: working tree, branches, remote and forge untouched),
1 Git, a registry or the forge failed, 2 usage.
"""

# ruff: noqa: PLC0415  -- imports inside commands on purpose: start-up time of the CLI
from __future__ import annotations

import os
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from reconciler.cli.app import app
from reconciler.cli.render import emit_json, envelope, err
from reconciler.exitcodes import ExitCode

if TYPE_CHECKING:
    from reconciler.model.desired import DesiredState, Environment


class TextOrJson(StrEnum):
    """What ``promote`` and ``next-tag`` print: a line for a person or a script, or the JSON envelope.
    No markdown: a CI job reads a tag or a branch from them, never a report (``-o markdown`` is a usage
    error rather than text in disguise)."""

    text = "text"
    json = "json"


OutputOption = Annotated[TextOrJson, typer.Option("--output", "-o", help="text or json.")]


def _fail(error: Exception, output: TextOrJson, command: str) -> typer.Exit:
    from reconciler.errors import DesiredStateError, PromotionError

    refused = isinstance(error, PromotionError | DesiredStateError)
    code = ExitCode.INVALID if refused else ExitCode.FAILURE
    if isinstance(error, DesiredStateError):
        for problem in error.problems:
            err(str(problem))
    message = f"{'refused' if refused else 'error'}: {error}"
    if output is TextOrJson.json:
        emit_json(envelope(command, "refused" if refused else "failed", message=str(error)))
    err(message + ("; nothing was written" if refused else ""))
    return typer.Exit(int(code))


class _RegistryLookup:
    """``UpstreamLookup`` on the source environment's first registry (a tags list, one HEAD)."""

    def __init__(self, desired: DesiredState, environment: Environment, *, insecure: bool) -> None:
        self._config = desired.config
        self._environment = environment
        self._insecure = insecure

    def _run(self, image: str, tag: str | None) -> Any:
        import asyncio
        import dataclasses

        from reconciler.registry import client_for

        registry = self._config.registries[self._environment.registries[0]]
        if self._insecure:
            registry = dataclasses.replace(registry, insecure=True)
        repository = self._environment.repository(image)

        async def work() -> Any:
            async with client_for(registry) as client:
                if tag is None:
                    return await client.list_tags(repository)
                found = await client.head_manifest(repository, tag)
                return None if found is None else str(found.digest)

        return asyncio.run(work())

    def tags(self, image: str) -> list[str]:
        return list(self._run(image, None))

    def digest(self, image: str, tag: str) -> str | None:
        found = self._run(image, tag)
        return None if found is None else str(found)


@app.command()
def promote(
    image: Annotated[
        str | None, typer.Argument(help="Image to promote, e.g. payments/api (not with --all-from).")
    ] = None,
    directory: Annotated[
        Path, typer.Argument(exists=True, file_okay=False, help="Desired-state directory (in a Git work tree).")
    ] = Path("."),
    *,
    to: Annotated[str | None, typer.Option("--to", help="Environment to promote into.")] = None,
    tag: Annotated[str | None, typer.Option("--tag", help="Version (default: the newest the target lacks).")] = None,
    digest: Annotated[str | None, typer.Option("--digest", help="Promote the version with this digest.")] = None,
    all_from: Annotated[
        str | None, typer.Option("--all-from", help="Promote every version of this environment to the next one.")
    ] = None,
    branch: Annotated[str | None, typer.Option("--branch", help="Branch name (default promote/ENV/IMAGE/TAG).")] = None,
    do_push: Annotated[bool, typer.Option("--push", help="Push the branch.")] = False,
    remote: Annotated[str, typer.Option("--remote", help="Git remote to push to.")] = "origin",
    open_mr: Annotated[
        bool, typer.Option("--open-mr", help="Push, then open (or update) the merge request / pull request.")
    ] = False,
    target_branch: Annotated[
        str | None, typer.Option("--target-branch", help="The MR's target (default: the current branch).")
    ] = None,
    forge: Annotated[str | None, typer.Option("--forge", help="gitlab or github (default: from the remote).")] = None,
    forge_url: Annotated[str | None, typer.Option("--forge-url", help="The forge's API URL.")] = None,
    project: Annotated[str | None, typer.Option("--project", help="group/project or owner/repo.")] = None,
    sign: Annotated[
        bool | None, typer.Option("--sign/--no-sign", help="Sign the commit (default: Git's commit.gpgsign).")
    ] = None,
    insecure: Annotated[bool, typer.Option("--insecure", help="Plain HTTP to the source registry.")] = False,
    output: OutputOption = TextOrJson.text,
) -> None:
    """Promote a version to an environment by merge request: edit, commit on a branch, push, open the MR."""
    from reconciler.errors import ReconcilerError
    from reconciler.manifests import load_desired_state
    from reconciler.promote import resolve, run

    if all_from is not None and image is not None and directory == Path(".") and Path(image).is_dir():
        directory, image = Path(image), None  # `promote --all-from t DIR`: no IMAGE, so DIR came first
    if (image is None) == (all_from is None):
        raise _usage("name an IMAGE, or promote a whole environment with --all-from ENV")
    if image is not None and to is None:
        raise _usage("--to ENV is required")
    try:
        desired = load_desired_state(directory)
        if all_from is not None:
            promotion = (
                resolve.resolve_train_to(desired, all_from, to) if to else resolve.resolve_train(desired, all_from)
            )
        else:
            assert image is not None
            assert to is not None
            env = desired.config.environment(to) if to in desired.config.environment_names else None
            upstream = desired.config.environment(env.upstream) if env and env.upstream else None
            lookup = _RegistryLookup(desired, upstream, insecure=insecure) if upstream and upstream.source else None
            promotion = resolve.resolve_one(desired, image, to, tag=tag, digest=digest, lookup=lookup)
        prepared = run.prepare(desired, directory, promotion, branch=branch)
        commit = run.commit(prepared, sign=sign)
        merge_request = None
        if do_push or open_mr:
            run.publish(prepared, remote=remote)
        if open_mr:
            merge_request = _open_merge_request(
                prepared, commit, directory, remote, target_branch, forge=forge, api_url=forge_url, project=project
            )
    except ReconcilerError as exc:
        raise _fail(exc, output, "promote") from None
    versions = [{"image": p.image, "tag": p.tag, "digest": p.digest} for p in promotion.versions]
    document: dict[str, Any] = {
        "environment": promotion.environment.name,
        "from": promotion.upstream.name,
        "versions": versions,
        "unpinned": [{"image": i, "tag": t} for i, t in prepared.removed],
        "branch": prepared.branch,
        "commit": commit,
        "pushed": do_push or open_mr,
    }
    if merge_request is not None:
        document["merge_request"] = {
            "forge": merge_request.forge,
            "number": merge_request.number,
            "url": merge_request.web_url,
            "created": merge_request.created,
        }
    if output is TextOrJson.json:
        emit_json(envelope("promote", "ok", **document))
        return
    typer.echo(f"{promotion.title} (from {promotion.upstream.name})")
    for pin in promotion.versions:
        typer.echo(f"  + {pin.image}:{pin.tag} {pin.digest}")
    for image_name, old_tag in prepared.removed:
        typer.echo(f"  - {image_name}:{old_tag} (promotion.keep_previous)")
    typer.echo(
        f"committed {commit[:12]} on branch {prepared.branch}" + (f", pushed to {remote}" if document["pushed"] else "")
    )
    if merge_request is not None:
        verb = "opened" if merge_request.created else "updated"
        typer.echo(f"{verb} {merge_request.forge} merge request !{merge_request.number}: {merge_request.web_url}")


def _usage(message: str) -> typer.Exit:
    err(f"error: {message}")
    return typer.Exit(int(ExitCode.USAGE))


def _open_merge_request(
    prepared: Any,
    commit: str,
    directory: Path,
    remote: str,
    target_branch: str | None,
    *,
    forge: str | None,
    api_url: str | None,
    project: str | None,
) -> Any:
    from reconciler.manifests.compare import compare
    from reconciler.promote.branch import current_branch, remote_url
    from reconciler.promote.forge import MergeRequestSpec, open_merge_request
    from reconciler.promote.forgeconfig import resolve_forge_settings
    from reconciler.report.diff import diff_markdown
    from reconciler.source import open_commit

    target = target_branch or current_branch(prepared.repository)
    if target is None:
        from reconciler.errors import PromotionError

        raise PromotionError("HEAD is detached: pass --target-branch for the merge request")
    with open_commit(directory, commit) as head, open_commit(directory, "HEAD") as base:
        description = diff_markdown(
            compare(head, base), f"{prepared.promotion.title} (from {prepared.promotion.upstream.name})"
        )
    explicit = api_url is not None and project is not None  # no need to read the forge from the remote
    settings = resolve_forge_settings(
        None if explicit else remote_url(prepared.repository, remote),
        os.environ,
        kind=forge,  # type: ignore[arg-type]
        api_url=api_url,
        project=project,
    )
    spec = MergeRequestSpec(
        source_branch=prepared.branch, target_branch=target, title=prepared.promotion.title, description=description
    )
    return open_merge_request(settings, spec)


@app.command("next-tag")
def next_tag(
    image: Annotated[str, typer.Argument(help="Image, e.g. payments/api.")],
    directory: Annotated[Path, typer.Argument(exists=True, file_okay=False, help="Desired-state directory.")] = Path(
        "."
    ),
    *,
    day: Annotated[
        str | None, typer.Option("--date", metavar="YYYYMMDD", help="Day of the build (default today, UTC).")
    ] = None,
    reserve: Annotated[
        bool,
        typer.Option("--reserve", help="Claim the number atomically in the desired-state repository's remote."),
    ] = False,
    remote: Annotated[str, typer.Option("--remote", help="Git remote holding the reservations.")] = "origin",
    insecure: Annotated[bool, typer.Option("--insecure", help="Plain HTTP to the source registry.")] = False,
    output: OutputOption = TextOrJson.text,
) -> None:
    """Print the next YYYYMMDD_NN tag of the day for IMAGE, from the source registry (01 when none)."""
    import datetime

    from reconciler.errors import ReconcilerError
    from reconciler.manifests import load_desired_state
    from reconciler.model.version import Version
    from reconciler.promote.nexttag import claim, next_free

    try:
        when = datetime.datetime.now(datetime.UTC).date() if day is None else Version.parse(f"{day}_01").day
    except ValueError:
        raise _usage(f"--date {day!r} is not a real YYYYMMDD date") from None
    try:
        desired = load_desired_state(directory)
        sources = [env for env in desired.config.environments if env.source]
        lookup = _RegistryLookup(desired, sources[0], insecure=insecure)
        taken = lookup.tags(image)
        version = claim(Path(directory), remote, image, when, taken) if reserve else next_free(when, taken)
    except ReconcilerError as exc:
        raise _fail(exc, output, "next-tag") from None
    if output is TextOrJson.json:
        emit_json(envelope("next-tag", "ok", image=image, tag=version.tag, reserved=reserve))
    else:
        typer.echo(version.tag)
