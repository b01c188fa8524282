"""Load a whole desired-state repository: ``reconciler.yaml`` plus ``environments/*.yaml``.

Reads through a ``DesiredStateTree`` (a directory or a commit, ``reconciler.source``), runs every
per-file check, then the checks that span files: a file for every defined environment and no file for an
undefined one, and one digest per image tag across all environments (a tag never names two images).
Problems come back sorted by file, line and column, all of them from one pass. The loaded state is
stamped with the tree's revision here, and only here.
This module never writes, and never talks to a registry.
"""

from __future__ import annotations

import dataclasses
import os

from reconciler.errors import DesiredStateError
from reconciler.manifests.config import CONFIG_FILE, validate_config
from reconciler.manifests.envfile import TagRule, validate_environment_file
from reconciler.manifests.yamltree import parse_yaml
from reconciler.model.desired import Config, DesiredState, EnvironmentState, PinnedVersion
from reconciler.model.problems import Problem
from reconciler.source import DesiredStateTree, open_commit, open_directory
from reconciler.source.tree import ENVIRONMENTS_DIR


def _short(digest: str) -> str:
    algorithm, _, hexpart = digest.partition(":")
    return f"{algorithm}:{hexpart[:12]}"


def inspect_tree(source: DesiredStateTree) -> tuple[DesiredState, list[Problem]]:
    """Validate everything; return a best-effort state (what was valid) and every problem, sorted.

    The state is only trustworthy when the problem list is empty; ``--base`` uses the best-effort state of
    an old, possibly broken commit so that a merge request that repairs it can still be checked.
    """
    problems: list[Problem] = []
    config_bytes = source.read(CONFIG_FILE)
    config: Config | None = None
    declared: tuple[str, ...] = ()
    if config_bytes is None:
        problems.append(
            Problem(
                CONFIG_FILE,
                0,
                0,
                "file-missing",
                f"{CONFIG_FILE} is missing: is {source.root} a desired-state repository?",
            )
        )
    else:
        checked = validate_config(parse_yaml(CONFIG_FILE, config_bytes), source.exists)
        problems.extend(checked.problems)
        config = checked.config
        declared = checked.declared_environments
    config_usable = config is not None  # else env files cannot be told defined from undefined
    if config is None:
        config = Config(version=1, registries={}, environments=())
    tag_rule = TagRule(config.naming)

    states: dict[str, EnvironmentState] = {}
    listed: set[str] = set()
    for path in source.environment_files():
        name = path.rsplit("/", 1)[-1]
        if name.startswith("."):
            continue
        if name.endswith(".yml"):
            problems.append(
                Problem(
                    path, 0, 0, "bad-filename", f"{path}: environment files end in .yaml; rename it to {path[:-4]}.yaml"
                )
            )
            continue
        if not name.endswith(".yaml"):
            continue
        env_name = name[: -len(".yaml")]
        data = source.read(path)
        listed.add(path)
        if data is None:
            problems.append(
                Problem(
                    path,
                    0,
                    0,
                    "file-unreadable",
                    f"{path} is not a regular file inside the desired-state repository "
                    "(a directory, a FIFO, or a link pointing outside the repository or in a loop?)",
                )
            )
            continue
        env_state, file_problems = validate_environment_file(parse_yaml(path, data), env_name, tag_rule)
        problems.extend(file_problems)
        if config_usable and env_name not in declared:
            known = ", ".join(declared) or "none"
            problems.append(
                Problem(
                    path,
                    0,
                    0,
                    "unknown-environment",
                    f"{path} is for environment {env_name!r}, which {CONFIG_FILE} does not define (defined: {known})",
                )
            )
            continue
        if env_state is not None:
            states[env_name] = env_state

    if config_usable:
        for env_name in declared:
            path = f"{ENVIRONMENTS_DIR}/{env_name}.yaml"
            if path not in listed and not source.exists(path):
                problems.append(
                    Problem(
                        path,
                        0,
                        0,
                        "env-file-missing",
                        f"{path} is missing: environment {env_name!r} is defined in {CONFIG_FILE} "
                        "(an environment with no images has 'images: {}')",
                    )
                )

    order = {name: index for index, name in enumerate(declared)}
    ordered = sorted(states.values(), key=lambda state: (order.get(state.environment, len(order)), state.environment))
    problems.extend(_tag_conflicts(ordered))

    environments = {
        env.name: states.get(env.name) or EnvironmentState(env.name, {}, f"{ENVIRONMENTS_DIR}/{env.name}.yaml")
        for env in config.environments
    }
    config = _with_local_files(config, source, problems)
    revision = source.revision
    desired = DesiredState(
        root=source.root,
        config=config,
        environments=environments,
        commit=revision.commit if revision is not None else None,
        commit_author=revision.author if revision is not None else None,
    )
    return desired, sorted(set(problems))


def _with_local_files(config: Config, source: DesiredStateTree, problems: list[Problem]) -> Config:
    """The config with every registry's relative ``ca_bundle`` replaced by a file on disk holding it (the
    TLS library opens it by name; a tree read from a commit has no directory of its own)."""
    registries = dict(config.registries)
    for name, registry in config.registries.items():
        bundle = registry.ca_bundle
        if bundle is None or os.path.isabs(bundle) or not source.exists(bundle):
            continue  # absolute paths are the machine's; a missing one was reported by validate_config
        local = source.local_path(bundle)
        if local is None:
            reason = f"registry {name!r} ca_bundle {bundle!r} is not a regular file"
            problems.append(Problem(CONFIG_FILE, 0, 0, "file-unreadable", reason))
            continue
        registries[name] = dataclasses.replace(registry, ca_bundle=str(local))
    return dataclasses.replace(config, registries=registries)


def _tag_conflicts(states: list[EnvironmentState]) -> list[Problem]:
    """One image tag, one digest, across every environment."""
    first: dict[tuple[str, str], tuple[PinnedVersion, str]] = {}
    problems: list[Problem] = []
    for state in states:
        for pin in state.versions():
            key = (pin.image, pin.tag)
            seen = first.get(key)
            if seen is None:
                first[key] = (pin, state.environment)
                continue
            other, other_env = seen
            if other.digest != pin.digest and pin.position is not None:
                problems.append(
                    Problem(
                        pin.position.file,
                        pin.position.line,
                        pin.position.column,
                        "tag-digest-conflict",
                        f"{pin.image}:{pin.tag} is pinned to {_short(pin.digest)} here but to "
                        f"{_short(other.digest)} in environment {other_env!r} ({other.position}); "
                        "a tag names exactly one image",
                    )
                )
    return problems


def load_tree(source: DesiredStateTree) -> DesiredState:
    """The valid desired state of ``source``; raises DesiredStateError carrying every problem."""
    state, problems = inspect_tree(source)
    if problems:
        raise DesiredStateError(problems)
    return state


def validate_directory(root: str | os.PathLike[str]) -> list[Problem]:
    """Every problem of the desired state under ``root``, sorted; empty when it is valid."""
    _state, problems = inspect_tree(open_directory(root))
    return problems


def load_desired_state(root: str | os.PathLike[str]) -> DesiredState:
    """The valid desired state under ``root`` (stamped with its Git revision when it lies in a work tree);
    raises DesiredStateError carrying every problem, SourceError when ``root`` is not a directory."""
    return load_tree(open_directory(root))


def inspect_at(directory: str | os.PathLike[str], ref: str) -> tuple[DesiredState, list[Problem]]:
    """Best-effort state of ``directory`` as it was at Git ``ref``, and every problem (see ``inspect_tree``)."""
    with open_commit(directory, ref) as tree:
        return inspect_tree(tree)


def load_desired_state_at(directory: str | os.PathLike[str], ref: str) -> DesiredState:
    """The valid desired state of ``directory`` at Git ``ref``; DesiredStateError with every problem when
    invalid, SourceError when ``directory`` is not in a Git work tree or ``ref`` names no commit."""
    with open_commit(directory, ref) as tree:
        return load_tree(tree)


def exists_at(directory: str | os.PathLike[str], ref: str) -> bool:
    """Whether the desired-state directory existed at ``ref`` (held a reconciler.yaml)."""
    with open_commit(directory, ref) as tree:
        return tree.exists(CONFIG_FILE)
