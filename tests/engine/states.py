"""Desired states built directly from the model dataclasses (no YAML, no files), for planner tests."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping

from reconciler.model.desired import Config, DesiredState, Environment, EnvironmentState, PinnedVersion, Registry


def digest_of(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


REGISTRIES = {
    name: Registry(name=name, url=f"http://127.0.0.1:{5000 + i}")
    for i, name in enumerate(("dev", "test", "pre", "prod-a", "prod-b"))
}


def chain_config(*, p_immutable: bool = True, moves: bool = False) -> Config:
    """The shape of examples/manifests: d -> t -> s1 -> s2 -> p, s1 and s2 share ``pre``, p on two sites."""
    return Config(
        version=1,
        registries=REGISTRIES,
        environments=(
            Environment(name="d", registries=("dev",), prefix="d", source=True),
            Environment(name="t", registries=("test",), prefix="t", upstream="d", allow_tag_moves=moves),
            Environment(name="s1", registries=("pre",), prefix="s1", upstream="t", allow_tag_moves=moves),
            Environment(name="s2", registries=("pre",), prefix="s2", upstream="s1", allow_tag_moves=moves),
            Environment(
                name="p",
                registries=("prod-a", "prod-b"),
                prefix="p",
                upstream="s2",
                immutable_tags=p_immutable,
                allow_tag_moves=moves,
            ),
        ),
    )


def state(config: Config, pins: Mapping[str, Iterable[tuple[str, str, str]]]) -> DesiredState:
    """``pins``: environment -> (image, tag, digest) triples."""
    environments = {}
    for env in config.environments:
        images: dict[str, list[PinnedVersion]] = {}
        for image, tag, digest in pins.get(env.name, ()):
            images.setdefault(image, []).append(PinnedVersion(image=image, tag=tag, digest=digest))
        environments[env.name] = EnvironmentState(
            environment=env.name,
            images={image: tuple(versions) for image, versions in images.items()},
            file=f"environments/{env.name}.yaml",
        )
    return DesiredState(root="/nonexistent", config=config, environments=environments)


def full_chain(images: Iterable[str] = ("payments/api", "payments/web"), tag: str = "20261127_01") -> DesiredState:
    """Every image pinned at the same version in every environment."""
    triples = [(image, tag, digest_of(image + tag)) for image in images]
    return state(chain_config(), {env: triples for env in ("d", "t", "s1", "s2", "p")})
