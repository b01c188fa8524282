"""The planner: a PURE function of (desired state, observed state) -> ordered, typed actions.

DESIGN.md section 2 is the contract. For every non-source environment (in promotion order), every
declared (image, tag, digest), every registry of the environment:

* tag already at the digest: in sync, no action;
* tag missing, manifest already in the target repository: RETAG;
* tag missing otherwise: COPY by digest from the ``from`` environment's repository, preferring the
  same registry (a blob mount), and, failing that, from another registry of the same environment
  (multi-site: prod-b can be healed from prod-a when s2 has dropped the version);
* a source that only receives the digest by an earlier action of this plan is used with
  ``depends_on`` (so one apply converges a fresh chain d -> t -> s1 -> s2 -> p);
* digest in no registry it may come from, but in the archive store: RESTORE from the archive (later
  environments copy it from there, with ``depends_on``), so a rollback to an archived version is a revert;
* digest found nowhere: MISSING; a registry that could not be read: UNREACHABLE (never taken as absent);
* tag at another digest: CONFLICT, refused on immutable environments and where tag moves are not
  allowed, else moved (by RETAG or COPY, then the tag is rewritten).

This module also says what the planner needs to know (``tag_lookups``, ``manifest_lookups``), so the
observer asks for exactly that and nothing more: one HEAD per declared tag, plus one HEAD by digest
for each tag that is not in sync. It never does I/O, never reads a clock and never imports the
registry client: the same inputs always give the same plan.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass

from reconciler.model.desired import DesiredState, Environment, PinnedVersion
from reconciler.model.observed import ManifestKey, ObservedState, TagKey
from reconciler.model.outcome import Cause
from reconciler.model.plan import Action, ActionKind, ConflictResolution, Location, Plan


@dataclass(frozen=True, slots=True)
class Target:
    """One (environment, registry, image, pinned version) the registries must hold."""

    environment: Environment
    registry: str
    pin: PinnedVersion

    @property
    def repository(self) -> str:
        return self.environment.repository(self.pin.image)

    @property
    def tag_key(self) -> TagKey:
        return TagKey(self.registry, self.repository, self.pin.tag)

    @property
    def manifest_key(self) -> ManifestKey:
        return ManifestKey(self.registry, self.repository, self.pin.digest)


def selected_environments(desired: DesiredState, only: Collection[str] | None = None) -> tuple[Environment, ...]:
    """The non-source environments to reconcile, in promotion order (``only`` restricts them).

    Raises KeyError naming an environment in ``only`` that the config does not define.
    """
    known = set(desired.config.environment_names)
    for name in only or ():
        if name not in known:
            raise KeyError(name)
    return tuple(
        env for env in desired.config.environments if not env.source and (only is None or not only or env.name in only)
    )


ImageFilter = Callable[[str], bool]
"""Which images a pass covers (a shard of the controller's); None: every image."""


def targets(
    desired: DesiredState, only: Collection[str] | None = None, images: ImageFilter | None = None
) -> Iterator[Target]:
    """Every (environment, registry, pinned version) to reconcile, in a stable order:
    promotion order, then image name, then file order of the versions, then registry order."""
    for env in selected_environments(desired, only):
        state = desired.environments.get(env.name)
        if state is None:
            continue
        for image in sorted(state.images):
            if images is not None and not images(image):
                continue
            for pin in state.images[image]:
                for registry in env.registries:
                    yield Target(env, registry, pin)


def tag_lookups(
    desired: DesiredState, only: Collection[str] | None = None, images: ImageFilter | None = None
) -> list[TagKey]:
    """The tags the observer must resolve (HEAD by tag), without duplicates, in a stable order."""
    return list(dict.fromkeys(t.tag_key for t in targets(desired, only, images)))


class _Presence:
    """Answers "is this digest in that repository?" from both kinds of observation."""

    def __init__(self, observed: ObservedState) -> None:
        self._observed = observed
        self._tagged: dict[tuple[str, str], set[str]] = {}
        for key, digest in observed.tags.items():
            if digest is not None:
                self._tagged.setdefault((key.registry, key.repository), set()).add(digest)

    def known_present(self, key: ManifestKey) -> bool:
        if key.digest in self._tagged.get((key.registry, key.repository), ()):
            return True
        return self._observed.has_manifest(key)


def _candidate_sources(desired: DesiredState, target: Target) -> Iterator[tuple[Environment, str, bool]]:
    """Where the target's digest may come from, best first: (environment, registry, is_sibling).

    The ``from`` environment's registries (same registry first: a mount, no bytes uploaded), then the
    other registries of the target's own environment.
    """
    env = target.environment
    if env.upstream is not None:
        upstream = desired.config.environment(env.upstream)
        ordered = sorted(upstream.registries, key=lambda r: r != target.registry)
        for registry in ordered:
            yield upstream, registry, False
    for registry in env.registries:
        if registry != target.registry:
            yield env, registry, True


def manifest_lookups(
    desired: DesiredState,
    tags: Mapping[TagKey, str | None],
    only: Collection[str] | None = None,
    *,
    tag_errors: Collection[TagKey] = (),
    tagless: Collection[tuple[str, str]] = (),
    images: ImageFilter | None = None,
) -> list[ManifestKey]:
    """The manifests the observer must look up by digest, given the resolved tags.

    Only tags that are not in sync cost anything: their target repository, and each candidate source
    not already known (from a tag) to hold the digest. In-sync tags and refused conflicts need nothing.
    A target repository in ``tagless`` ((registry, repository) known to hold no tag at all) is not asked:
    at most it holds untagged leftovers of an interrupted copy, which are then copied again (the same
    result) rather than retagged. Sources are always asked: an upstream keeps a version it has dropped
    untagged, and that is where later environments still copy it from.
    """
    presence = _Presence(ObservedState(tags=tags))
    wanted: dict[ManifestKey, None] = {}
    for target in targets(desired, only, images):
        key = target.tag_key
        if key in tag_errors:
            continue
        current = tags.get(key)
        digest = target.pin.digest
        if current == digest:
            continue
        if current is not None and not _tag_moves_allowed(target.environment):
            continue
        if not presence.known_present(target.manifest_key) and (key.registry, key.repository) not in tagless:
            wanted[target.manifest_key] = None
        for source_env, registry, _sibling in _candidate_sources(desired, target):
            source_key = ManifestKey(registry, source_env.repository(target.pin.image), digest)
            if not presence.known_present(source_key):
                wanted[source_key] = None
    return list(wanted)


def _tag_moves_allowed(env: Environment) -> bool:
    return env.allow_tag_moves and not env.immutable_tags


def plan(
    desired: DesiredState,
    observed: ObservedState,
    only: Collection[str] | None = None,
    images: ImageFilter | None = None,
) -> Plan:
    """The ordered actions that bring the selected environments (and images) to the desired state."""
    presence = _Presence(observed)
    actions: list[Action] = []
    scheduled: dict[ManifestKey, int] = {}
    failed: dict[ManifestKey, Action] = {}
    """Targets whose action can only fail: what downstream environments cannot copy from."""
    in_sync = 0

    def add(
        target: Target,
        kind: ActionKind,
        *,
        reason: str,
        source: Location | None = None,
        source_environment: str | None = None,
        depends_on: tuple[int, ...] = (),
        current_digest: str | None = None,
        resolution: ConflictResolution | None = None,
        archive_ref: str | None = None,
    ) -> Action:
        action = Action(
            id=len(actions),
            kind=kind,
            environment=target.environment.name,
            registry=target.registry,
            image=target.pin.image,
            repository=target.repository,
            tag=target.pin.tag,
            digest=target.pin.digest,
            source=source,
            source_environment=source_environment,
            current_digest=current_digest,
            resolution=resolution,
            depends_on=depends_on,
            reason=reason,
            archive_ref=archive_ref,
        )
        actions.append(action)
        return action

    for target in targets(desired, only, images):
        env = target.environment
        tag_error = observed.error(target.tag_key)
        if tag_error is not None:
            where = f"{target.registry}/{target.repository}"
            failed[target.manifest_key] = add(
                target, ActionKind.UNREACHABLE, reason=f"cannot read {where}: {tag_error}"
            )
            continue
        current = observed.tag_digest(target.tag_key)
        damage = observed.damaged.get(target.tag_key)
        if current == target.pin.digest and damage:
            shown = "; ".join(damage[:3]) + (f" (and {len(damage) - 3} more)" if len(damage) > 3 else "")
            failed[target.manifest_key] = add(
                target,
                ActionKind.DAMAGED,
                reason=f"the registry does not serve the whole image: {shown}; repair its storage "
                "(it acknowledged writes it did not keep), then delete the tag so apply copies it again",
            )
            continue
        if current == target.pin.digest:
            in_sync += 1
            continue
        conflict = current is not None
        if conflict and not _tag_moves_allowed(env):
            why = "tags are immutable" if env.immutable_tags else "tag moves are not allowed"
            add(
                target,
                ActionKind.CONFLICT,
                current_digest=current,
                resolution=ConflictResolution.REFUSED,
                reason=f"tag points at {current}, not the declared digest; refused: {why} in {env.name}",
            )
            continue
        kind_if_content_here = ActionKind.CONFLICT if conflict else ActionKind.RETAG
        kind_if_copied = ActionKind.CONFLICT if conflict else ActionKind.COPY
        moved = ConflictResolution.MOVED if conflict else None  # current is the digest the tag moves from
        moving = f"move tag from {current}; " if conflict else ""

        target_key = target.manifest_key
        if presence.known_present(target_key):
            action = add(
                target,
                kind_if_content_here,
                reason=f"{moving}manifest already in {target.registry}/{target.repository}: tag it",
                current_digest=current,
                resolution=moved,
            )
            scheduled.setdefault(target_key, action.id)
            continue
        if target_key in scheduled:
            action = add(
                target,
                kind_if_content_here,
                depends_on=(scheduled[target_key],),
                reason=f"{moving}manifest arrives in {target.registry}/{target.repository} by action "
                f"#{scheduled[target_key]}: tag it",
                current_digest=current,
                resolution=moved,
            )
            continue

        source, error_sources = _choose_source(desired, target, observed, presence, scheduled)
        if source is not None:
            source_env, location, dependency = source
            action = add(
                target,
                kind_if_copied,
                source=location,
                source_environment=source_env,
                depends_on=(dependency,) if dependency is not None else (),
                reason=f"{moving}copy from {source_env} ({location})"
                + (f" after action #{dependency}" if dependency is not None else ""),
                current_digest=current,
                resolution=moved,
            )
            scheduled[target_key] = action.id
            continue
        target_error = observed.error(target_key)
        # Sources that would have received the digest in this pass, but whose own action cannot succeed.
        blocked = [
            failed[key]
            for key in (
                ManifestKey(registry, source_env.repository(target.pin.image), target.pin.digest)
                for source_env, registry, _sibling in _candidate_sources(desired, target)
            )
            if key in failed
        ]
        upstream_unreachable = [a for a in blocked if a.kind is ActionKind.UNREACHABLE]
        if target_error is not None or error_sources or upstream_unreachable:
            problems = [f"{target.registry}/{target.repository}: {target_error}"] if target_error else []
            problems += [f"{loc}: {message}" for loc, message in error_sources]
            problems += [
                f"{a.environment} ({a.registry}) cannot receive it first: {a.reason}" for a in upstream_unreachable
            ]
            failed[target_key] = add(
                target, ActionKind.UNREACHABLE, reason="cannot look up the digest: " + "; ".join(problems)
            )
            continue
        archived = observed.archived.get(target.pin.digest)
        if archived is not None and not blocked and not conflict:
            action = add(
                target, ActionKind.RESTORE, archive_ref=archived, reason=f"restore from the archive store ({archived})"
            )
            scheduled[target_key] = action.id
            continue
        reason = _missing_reason(desired, target, only)
        reason += "".join(f"; {a.environment} ({a.registry}) is missing it too" for a in blocked)
        failed[target_key] = add(target, ActionKind.MISSING, reason=reason)

    selected = tuple(env.name for env in selected_environments(desired, only))
    return Plan(actions=tuple(actions), in_sync=in_sync, environments=selected)


def _choose_source(
    desired: DesiredState,
    target: Target,
    observed: ObservedState,
    presence: _Presence,
    scheduled: Mapping[ManifestKey, int],
) -> tuple[tuple[str, Location, int | None] | None, list[tuple[Location, Cause]]]:
    """The best source holding (or about to hold) the digest, and the sources that could not be read.

    Preference: a source present now beats one that only receives the digest in this pass, except
    that the same registry (a mount) beats another registry; the ``from`` environment beats a sibling
    registry of the target's own environment.
    """
    ranked: list[tuple[tuple[bool, bool, bool], str, Location, int | None]] = []
    errors: list[tuple[Location, Cause]] = []
    for source_env, registry, sibling in _candidate_sources(desired, target):
        location = Location(registry, source_env.repository(target.pin.image))
        key = ManifestKey(registry, location.repository, target.pin.digest)
        same_registry = registry == target.registry
        if presence.known_present(key):
            ranked.append(((sibling, not same_registry, False), source_env.name, location, None))
        elif key in scheduled:
            ranked.append(((sibling, not same_registry, True), source_env.name, location, scheduled[key]))
        else:
            message = observed.error(key)
            if message is not None:
                errors.append((location, message))
    if not ranked:
        return None, errors
    _rank, env_name, location, dependency = min(ranked, key=lambda item: item[0])
    return (env_name, location, dependency), errors


def _missing_reason(desired: DesiredState, target: Target, only: Collection[str] | None) -> str:
    env = target.environment
    pin = target.pin
    if env.upstream is not None:
        upstream = desired.config.environment(env.upstream)
        upstream_state = desired.environments.get(upstream.name)
        if not upstream.source and (upstream_state is None or upstream_state.find(pin.image, pin.tag) is None):
            # The version skipped a stage: say which and what to do, as `validate --base` does.
            return (
                f"{pin.image}:{pin.tag} skips stage {upstream.name!r}: {upstream.name} does not declare it and "
                f"its registries do not hold {pin.digest}; promote it to {upstream.name} first "
                f"(environments/{upstream.name}.yaml), or remove it from {env.name}"
            )
    places = [
        f"{registry}/{source_env.repository(target.pin.image)}"
        for source_env, registry, _sibling in _candidate_sources(desired, target)
    ]
    where = ", ".join(places) if places else "nowhere to copy from"
    hint = ""
    if env.upstream is not None and only and env.upstream not in only:
        hint = f" (not reconciled in this run: {env.upstream} is not among the selected environments)"
    return f"{target.pin.digest} is not in {where}{hint}"


def simulate(observed: ObservedState, actions: Iterable[Action]) -> ObservedState:
    """The observation after the given actions all succeeded (for tests, dry runs and reports)."""
    tags = dict(observed.tags)
    manifests = dict(observed.manifests)
    for action in actions:
        if action.writes:
            tags[TagKey(action.registry, action.repository, action.tag)] = action.digest
            manifests[ManifestKey(action.registry, action.repository, action.digest)] = True
    return ObservedState(tags=tags, manifests=manifests, errors=dict(observed.errors))
