"""``reconciler archive restore`` and ``reconciler archive destroy``: the archive commands that act.

Both build plan actions (RESTORE, DESTROY) and run them through the same executor, lifecycle runner and
audit journal as ``apply``, so a manual restore or destroy leaves the same intent and outcome records,
fails per action the same way, and garbage-collects the store the same way.

* ``restore REF --to ENV``: the entry ``<prefix>/<image>:<tag>`` goes back onto every registry of ENV
  as ``<ENV prefix>/<image>:<tag>``, byte-exact (same digest). Refused, writing nothing, when the tag is
  at another digest on any of them (audited like apply's refused conflicts), when ENV's file declares
  the tag at another digest, and (exit 3) when it would carry an image archived from another environment
  into an environment with gates (declare it there instead, so apply judges it). It reminds the user that
  only a declaration keeps the tag: retention retires what no environment file declares.
* ``destroy``: the ``destroy_after_days`` rule (what apply does), or exactly the entries named, refusing
  every one whose digest a declared version uses (it may be the last copy a restore needs).

``--dry-run`` reads (the store, the target registries) and prints; it takes no lock and writes nothing,
not even to the audit log.
"""

# ruff: noqa: PLC0415  -- imports inside commands on purpose: start-up time of the CLI
from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from reconciler.cli.archive_common import (
    CommandError,
    DirOption,
    Source,
    StoreOption,
    archive_app,
    open_store,
    require_entries,
    run,
    show,
    usage,
)
from reconciler.cli.options import AuditLogOption, InsecureOption, OutputOption
from reconciler.cli.render import OutputFormat, err
from reconciler.cli.sources import CacheOption, DirArgument, RefOption, RepoOption
from reconciler.exitcodes import ExitCode

if TYPE_CHECKING:
    from reconciler.archive import ArchiveEntry, GarbageReport, OciLayout
    from reconciler.engine.execute import ActionResult
    from reconciler.engine.registries import RegistryPool
    from reconciler.model.desired import DesiredState, Environment
    from reconciler.model.plan import Action

DryRunOption = Annotated[bool, typer.Option("--dry-run", help="Print what would be done; write nothing.")]


@dataclass(frozen=True, slots=True)
class Executed:
    """The actions of a command and, unless it was a dry run, their results."""

    actions: tuple[Action, ...]
    results: tuple[ActionResult, ...] | None = None
    garbage: GarbageReport | None = None
    problems: tuple[str, ...] = ()

    @property
    def failed(self) -> bool:
        return bool(self.problems) or any(not result.succeeded for result in self.results or ())


async def execute_audited(
    desired: DesiredState, pool: RegistryPool, store: OciLayout, actions: Sequence[Action], audit_log: Path | None
) -> Executed:
    """Run ``actions`` as apply does: intent before each write and outcome after it in the audit log, the
    lifecycle runner performing them, then the store's garbage collection when entries were destroyed."""
    from reconciler.engine.audit import AuditLog, default_audit_path
    from reconciler.engine.execute import execute
    from reconciler.engine.journal import PassJournal
    from reconciler.engine.retire import LifecycleRunner
    from reconciler.model.plan import Plan

    environments = tuple(dict.fromkeys(action.environment for action in actions if action.environment))
    with AuditLog(audit_log or default_audit_path()) as audit:
        journal = PassJournal(audit, desired)
        journal.open()  # an unwritable audit log stops the command before anything is written
        runner = LifecycleRunner(pool, store, commit=desired.commit)
        try:
            results = await execute(
                Plan(actions=tuple(actions), environments=environments),
                pool,
                lifecycle=runner,
                on_start=journal.intent,
                on_result=journal.outcome,
            )
            garbage, problems = await runner.finish()
        finally:
            await store.close()
    return Executed(tuple(actions), tuple(results), garbage, problems)


# ---------------------------------------------------------------------------------------------- restore


@dataclass(frozen=True, slots=True)
class RestoreTarget:
    """Where an entry goes back to: ``<ENV prefix>/<image>:<tag>`` on every registry of the environment."""

    name: str
    prefix: str
    """The environment prefix the entry was archived from (its repository's first component)."""
    image: str
    tag: str
    environment: Environment

    @property
    def repository(self) -> str:
        return self.environment.repository(self.image)


def _restore_target(desired: DesiredState, name: str, environment: str) -> RestoreTarget:
    """The parsed REF and the environment; ``usage`` errors for a malformed REF or a wrong environment."""
    from reconciler.archive import split_entry_name

    repository, tag = split_entry_name(name)
    prefix, _slash, image = repository.partition("/")
    if tag is None or not image:
        raise usage(f"{name!r} is not an archive entry name <prefix>/<image>:<tag> (e.g. d/payments/api:20261101_01)")
    try:
        env = desired.config.environment(environment)
    except KeyError:
        known = ", ".join(desired.config.environment_names)
        raise usage(f"unknown environment {environment!r} (defined: {known})") from None
    if env.source:
        raise usage(f"{env.name} is a source environment: reconciler never writes into one (CI pushes there)")
    return RestoreTarget(name, prefix, image, tag, env)


def _check_restore(desired: DesiredState, target: RestoreTarget, entry: ArchiveEntry) -> None:
    """Refuse a restore that would skip the target's gates or contradict its environment file."""
    env = target.environment
    if desired.config.gates.get(env.name) is not None and target.prefix != env.prefix:
        raise CommandError(
            f"refused: {env.name} has policy gates and {target.name} was archived from another environment "
            f"({target.prefix}); a restore would skip the gates. Declare {target.image}:{target.tag} "
            f"({entry.digest}) in environments/{env.name}.yaml instead: apply judges it, then restores it",
            code=ExitCode.INVALID,
            status="refused",
        )
    state = desired.environments.get(env.name)
    pin = state.find(target.image, target.tag) if state is not None else None
    if state is not None and pin is not None and pin.digest != str(entry.digest):
        raise CommandError(
            f"refused: {state.file} declares {target.image}:{target.tag} as {pin.digest}, not {entry.digest} "
            f"({target.name}); nothing was written",
            status="refused",
        )


def _restore_action(
    target: RestoreTarget, entry: ArchiveEntry, registry: str, number: int, current: str | None
) -> Action:
    """RESTORE onto ``registry``; a refused CONFLICT when the tag is at another digest (``current``) there."""
    from reconciler.model.plan import Action, ActionKind, ConflictResolution

    digest = str(entry.digest)
    action = Action(
        id=number,
        kind=ActionKind.RESTORE,
        environment=target.environment.name,
        registry=registry,
        image=target.image,
        repository=target.repository,
        tag=target.tag,
        digest=digest,
        archive_ref=target.name,
        rule="manual",
        reason=f"restored by hand from {target.name}",
    )
    if current is None:
        return action
    where = f"{registry}/{target.repository}:{target.tag}"
    return dataclasses.replace(
        action,
        kind=ActionKind.CONFLICT,
        current_digest=current,
        resolution=ConflictResolution.REFUSED,
        rule="",
        reason=f"{where} is at {current}, not {digest} ({target.name}); restore refused, nothing was written",
    )


@archive_app.command("restore")
def restore(
    name: Annotated[str, typer.Argument(metavar="REF", help="Entry name <prefix>/<image>:<tag>.")],
    directory: DirArgument = None,
    *,
    to: Annotated[str, typer.Option("--to", metavar="ENV", help="Environment to restore into (every registry).")],
    repo: RepoOption = None,
    ref: RefOption = "main",
    cache_dir: CacheOption = None,
    store: StoreOption = None,
    dry_run: DryRunOption = False,
    audit_log: AuditLogOption = None,
    insecure: InsecureOption = False,
    output: OutputOption = OutputFormat.text,
) -> None:
    """Restore an archived image onto every registry of an environment, same digest.

    The entry <prefix>/<image>:<tag> goes back as <ENV prefix>/<image>:<tag>, audited like apply. Refused,
    writing nothing, when the tag is at another digest there."""
    from reconciler.report.archive import actions_lines, actions_payload, as_markdown, restore_note

    async def work() -> tuple[RestoreTarget, ArchiveEntry, Executed, list[str]]:
        from reconciler.engine.registries import RegistryPool

        source = Source(directory, repo, ref, cache_dir)
        desired = source.load()
        target = _restore_target(desired, name, to)
        layout = open_store(store, source, desired=desired)
        entry = (await require_entries(layout, [name]))[name]
        _check_restore(desired, target, entry)
        pool = RegistryPool(desired.config, root=desired.root, insecure=insecure)
        try:
            actions: list[Action] = []
            notes: list[str] = []
            for registry in target.environment.registries:
                found = await pool.client(registry).head_manifest(target.repository, target.tag)
                current = str(found.digest) if found is not None else None
                if current == str(entry.digest):
                    notes.append(f"in sync: {registry}/{target.repository}:{target.tag} already holds it")
                    continue
                actions.append(_restore_action(target, entry, registry, len(actions), current))
            refused = [action for action in actions if action.current_digest is not None]
            if refused:
                if not dry_run:  # audited like apply's refused conflicts
                    await execute_audited(desired, pool, layout, refused, audit_log)
                raise CommandError("refused: " + "; ".join(a.reason for a in refused), status="refused")
            state = desired.environments.get(target.environment.name)
            notes.append(
                restore_note(
                    target=f"{target.image}:{target.tag}",
                    env_file=state.file if state is not None else f"environments/{target.environment.name}.yaml",
                    declared=state is not None and state.find(target.image, target.tag) is not None,
                    retention_active=desired.config.retention.for_image(target.environment.name, target.image).active,
                )
            )
            if dry_run or not actions:
                return target, entry, Executed(tuple(actions)), notes
            return target, entry, await execute_audited(desired, pool, layout, actions, audit_log), notes
        finally:
            await pool.aclose()

    target, entry, done, notes = run("archive restore", output, work)
    heading = f"reconciler archive restore: {name} -> {target.environment.name} ({target.repository}:{target.tag})"
    lines = [*actions_lines(done.actions, done.results), *(f"  {note}" for note in notes)]
    if dry_run:
        lines.append("  dry run: nothing was written")
    status = "failed" if done.failed else ("dry-run" if dry_run else "ok")
    payload = {
        "entry": name,
        "digest": str(entry.digest),
        "environment": target.environment.name,
        "repository": target.repository,
        "tag": target.tag,
        "dry_run": dry_run,
        "notes": notes,
        **actions_payload(done.actions, done.results),
    }
    show(
        "archive restore",
        output,
        status=status,
        payload=payload,
        lines=[heading, *lines],
        heading=heading,
        markdown=as_markdown(heading, lines),
    )
    _exit_on_failure(done, output)


def _exit_on_failure(done: Executed, output: OutputFormat) -> None:
    if not done.failed:
        return
    if output is not OutputFormat.json:
        for result in done.results or ():
            if not result.succeeded:
                err(f"error: {result.action.kind.value} {result.action.archive_ref}: {result.error}")
        for problem in done.problems:
            err(f"error: {problem}")
    raise typer.Exit(int(ExitCode.FAILURE))


# ---------------------------------------------------------------------------------------------- destroy


def manual_destroys(desired: DesiredState, entries: dict[str, ArchiveEntry]) -> list[Action]:
    """DESTROY per named entry (rule ``manual``); ``CommandError`` when a declared version uses one's digest."""
    from reconciler.engine.lifecycle import destroy_action

    users: dict[str, list[str]] = {}
    for state in desired.environments.values():
        for pin in state.versions():
            users.setdefault(pin.digest, []).append(f"{state.file}: {pin.image}:{pin.tag}")
    used = {name: users[str(entry.digest)] for name, entry in entries.items() if str(entry.digest) in users}
    if used:
        raise CommandError(
            "refused, nothing destroyed: a declared version uses the digest of "
            + "; ".join(f"{name} ({', '.join(where)})" for name, where in used.items())
            + ". The entry may be the last copy a restore needs; remove the declaration first",
            status="refused",
        )
    by_prefix = {env.prefix: env.name for env in desired.config.environments}
    return [
        destroy_action(
            entry,
            name,
            id=number,
            environment=by_prefix.get((entry.repository or name).partition("/")[0], ""),
            rule="manual",
            reason="named on the command line",
        )
        for number, (name, entry) in enumerate(entries.items())
    ]


@archive_app.command("destroy")
def destroy(
    names: Annotated[
        list[str] | None, typer.Argument(metavar="[REF]...", help="Destroy exactly these entries (default: the rule).")
    ] = None,
    *,
    directory: DirOption = None,
    repo: RepoOption = None,
    ref: RefOption = "main",
    cache_dir: CacheOption = None,
    store: StoreOption = None,
    dry_run: DryRunOption = False,
    audit_log: AuditLogOption = None,
    output: OutputOption = OutputFormat.text,
) -> None:
    """Destroy archive entries past archive.destroy_after_days, or exactly the REFs named.

    Never one whose digest a declared version uses; then the blobs no entry needs are collected. Audited
    like apply."""
    from datetime import UTC, datetime

    from reconciler.report.archive import (
        actions_lines,
        actions_payload,
        as_markdown,
        garbage_line,
        garbage_to_dict,
        kept_lines,
        plural,
    )

    async def work() -> tuple[str, Executed, tuple[str, ...], bool]:
        from reconciler.engine.lifecycle import destroy_actions
        from reconciler.engine.registries import RegistryPool

        source = Source(directory, repo, ref, cache_dir)
        desired = source.load()
        layout = open_store(store, source, desired=desired)
        kept: tuple[str, ...] = ()
        archive = desired.config.archive
        ruled = archive is not None and archive.destroy_after_days is not None
        if names:
            actions = manual_destroys(desired, await require_entries(layout, names))
        else:
            today = datetime.now(UTC).date()
            planned = destroy_actions(desired, await layout.entries(), today=today, first_id=0)
            actions, kept = list(planned.actions), planned.kept_declared
        if dry_run or not actions:
            return str(layout.path), Executed(tuple(actions)), kept, ruled
        pool = RegistryPool(desired.config, root=desired.root)  # the runner's; a destroy contacts no registry
        try:
            return str(layout.path), await execute_audited(desired, pool, layout, actions, audit_log), kept, ruled
        finally:
            await pool.aclose()

    where, done, kept, ruled = run("archive destroy", output, work)
    how = "the entries named" if names else "rule destroy_after_days"
    heading = f"reconciler archive destroy: {where} ({how})"
    lines = [*actions_lines(done.actions, done.results), *kept_lines(kept)]
    lines += [f"  error: {problem}" for problem in done.problems]
    if not done.actions and not names and not ruled:
        lines.append(
            "  nothing to destroy: reconciler.yaml sets no archive.destroy_after_days (name entries to destroy)"
        )
    elif not done.actions:
        lines.append("  nothing to destroy")
    elif dry_run:
        count = plural(len(done.actions), "entry", "entries")
        lines.append(f"  dry run: {count} would be destroyed; nothing was written")
    else:
        destroyed = sum(1 for result in done.results or () if result.succeeded)
        lines += [f"  destroyed {plural(destroyed, 'entry', 'entries')}", garbage_line(done.garbage)]
    status = "failed" if done.failed else ("dry-run" if dry_run else "ok")
    payload = {
        "store": where,
        "rule": None if names or not ruled else "destroy_after_days",
        "dry_run": dry_run,
        "kept_declared": list(kept),
        "garbage": garbage_to_dict(done.garbage),
        "problems": list(done.problems),
        **actions_payload(done.actions, done.results),
    }
    show(
        "archive destroy",
        output,
        status=status,
        payload=payload,
        lines=[heading, *lines],
        heading=heading,
        markdown=as_markdown(heading, lines),
    )
    _exit_on_failure(done, output)
