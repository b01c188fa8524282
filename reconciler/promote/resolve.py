"""Which versions a promotion adds: ``promote IMAGE --to ENV [--tag T | --digest D]`` and ``--all-from ENV``.

A version comes from the target environment's ``from`` environment: from its environment file, or, when
that is a source environment (``d``: CI pushes builds to its registry and its file only protects builds
from retention), from the source registry through an ``UpstreamLookup`` (a tags list, then one HEAD for the
digest). Without ``--tag`` the newest version by ``YYYYMMDD_NN`` (never by push time) that the upstream
holds and the target lacks is taken. Every refusal is a ``PromotionError`` naming what is wrong and what
to do; nothing here writes anything or talks to a registry itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from reconciler.errors import PromotionError
from reconciler.model.desired import DesiredState, Environment, PinnedVersion
from reconciler.model.version import Version


class UpstreamLookup(Protocol):
    """Versions a source environment's registry holds (the CLI implements it on the registry client)."""

    def tags(self, image: str) -> Sequence[str]:
        """Every tag of the image's repository in the source environment ([] when there is none)."""
        ...

    def digest(self, image: str, tag: str) -> str | None:
        """The digest ``tag`` points at, or None when there is no such tag."""
        ...


@dataclass(frozen=True, slots=True)
class Promotion:
    """The versions to add to ``environment`` (all from ``upstream``), in a stable order."""

    environment: Environment
    upstream: Environment
    versions: tuple[PinnedVersion, ...]

    @property
    def title(self) -> str:
        if len(self.versions) == 1:
            pin = self.versions[0]
            return f"Promote {pin.image} {pin.tag} to {self.environment.name}"
        return f"Promote {len(self.versions)} versions from {self.upstream.name} to {self.environment.name}"


def _target(desired: DesiredState, name: str) -> tuple[Environment, Environment]:
    config = desired.config
    try:
        env = config.environment(name)
    except KeyError:
        known = ", ".join(config.environment_names)
        raise PromotionError(f"unknown environment {name!r} (defined: {known})") from None
    if env.source or env.upstream is None:
        raise PromotionError(f"{name!r} is a source environment: CI pushes builds into it; nothing is promoted into it")
    return env, config.environment(env.upstream)


def _pinned(desired: DesiredState, env: Environment, image: str) -> dict[str, str]:
    state = desired.environments.get(env.name)
    return {pin.tag: pin.digest for pin in state.images.get(image, ())} if state is not None else {}


def _upstream_versions(
    desired: DesiredState, upstream: Environment, image: str, lookup: UpstreamLookup | None
) -> dict[str, str | None]:
    """tag -> digest (None: not looked up yet, a registry tag) of what the upstream holds."""
    if not upstream.source:
        return dict(_pinned(desired, upstream, image))
    found: dict[str, str | None] = dict.fromkeys(lookup.tags(image) if lookup is not None else ())
    found.update(_pinned(desired, upstream, image))  # what d.yaml pins is held too, with its digest
    return found


def resolve_one(
    desired: DesiredState,
    image: str,
    to: str,
    *,
    tag: str | None = None,
    digest: str | None = None,
    lookup: UpstreamLookup | None = None,
) -> Promotion:
    """The one version ``promote IMAGE --to ENV`` adds; PromotionError when there is none to add."""
    env, upstream = _target(desired, to)
    held = _upstream_versions(desired, upstream, image, lookup)
    where = f"{upstream.name} ({'its registry' if upstream.source else f'environments/{upstream.name}.yaml'})"
    if not held:
        raise PromotionError(f"{upstream.name} holds no version of {image!r}: check the image name ({where})")
    present = _pinned(desired, env, image)
    if tag is None and digest is not None:
        matching = [t for t, d in held.items() if d == digest]
        if not matching and upstream.source and lookup is not None:
            matching = [t for t in held if Version.try_parse(t) and lookup.digest(image, t) == digest]
        if not matching:
            raise PromotionError(f"{where} holds no version of {image} with digest {digest}")
        tag = max(matching, key=lambda t: (Version.try_parse(t) is not None, Version.try_parse(t) or t))
    if tag is None:
        missing = [t for t in held if t not in present and Version.try_parse(t) is not None]
        if not missing:
            raise PromotionError(f"nothing to promote: {to} already has every version of {image} that {where} holds")
        tag = max(missing, key=Version.parse)
    if tag not in held:
        raise PromotionError(f"{where} does not hold {image}:{tag}: promote it to {upstream.name} first")
    if tag in present:
        raise PromotionError(f"{image}:{tag} is already in {to} (environments/{to}.yaml): nothing to promote")
    resolved = held[tag]
    if resolved is None:
        resolved = lookup.digest(image, tag) if lookup is not None else None
        if resolved is None:
            raise PromotionError(f"{where} does not hold {image}:{tag} (the tag vanished from its registry)")
    if digest is not None and resolved != digest:
        raise PromotionError(f"{image}:{tag} is {resolved} in {upstream.name}, not {digest}")
    return Promotion(env, upstream, (PinnedVersion(image=image, tag=tag, digest=resolved),))


def resolve_train(desired: DesiredState, from_env: str) -> Promotion:
    """``--all-from ENV``: every version ENV pins that the environment promoted from it lacks (a release
    train, one commit). PromotionError when no environment promotes from ENV or there is nothing to add."""
    config = desired.config
    downstream = [env for env in config.environments if env.upstream == from_env]
    if not downstream:
        raise PromotionError(f"no environment promotes from {from_env!r} (its 'from' in reconciler.yaml)")
    if len(downstream) > 1:
        names = ", ".join(env.name for env in downstream)
        raise PromotionError(f"several environments promote from {from_env!r} ({names}): use --to with --all-from")
    return resolve_train_to(desired, from_env, downstream[0].name)


def resolve_train_to(desired: DesiredState, from_env: str, to: str) -> Promotion:
    env, upstream = _target(desired, to)
    if upstream.name != from_env:
        raise PromotionError(f"{to} promotes from {upstream.name}, not {from_env}: promotion may not skip a stage")
    source = desired.environments.get(from_env)
    versions = []
    for pin in source.versions() if source is not None else ():
        if pin.tag not in _pinned(desired, env, pin.image):
            versions.append(PinnedVersion(image=pin.image, tag=pin.tag, digest=pin.digest))
    if not versions:
        raise PromotionError(f"nothing to promote: {to} already has every version {from_env} pins")
    return Promotion(env, upstream, tuple(sorted(versions, key=lambda p: (p.image, p.tag))))
