"""Validate ``reconciler.yaml`` and build the typed ``Config`` from it.

One walk over the node tree checks every field (unknown, missing, wrong type, bad value, references to
undefined registries, environments and base images, the promotion chain) and records each problem with
its position. The returned ``Config`` is best effort: it holds what was valid, so the environment files
can still be checked against it; callers that need a valid state look at the problems first.
This module never reads files or talks to a registry.
"""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.manifests.fields import Checker
from reconciler.manifests.names import ENVIRONMENT_NAME, IMAGE_NAME, PATH_COMPONENT, REGISTRY_NAME
from reconciler.manifests.sections import (
    ExistsFn,
    archive_section,
    base_images_section,
    gates_section,
    naming_section,
    promotion_section,
    retention_section,
    trust_section,
)
from reconciler.manifests.yamltree import MappingNode, Node, ParsedYaml, ScalarNode, SequenceNode
from reconciler.model.desired import Config, Environment, NamingRule, Promotion, Registry, Retention
from reconciler.model.problems import Problem
from reconciler.model.redact import redact
from reconciler.model.registryurl import normalize_registry_url

CONFIG_FILE = "reconciler.yaml"
SUPPORTED_VERSIONS = (1,)

__all__ = ["CONFIG_FILE", "IMAGE_NAME", "ConfigCheck", "ExistsFn", "validate_config"]


@dataclass(slots=True)
class _EnvDraft:
    """An environment as read, before the chain is checked."""

    env: Environment
    node: Node
    from_node: Node | None


def _registries(checker: Checker, node: Node, exists: ExistsFn) -> dict[str, Registry]:
    registries: dict[str, Registry] = {}
    mapping = checker.mapping(node, "registries")
    if mapping is None:
        return registries
    for name, key_node, value in checker.entries(mapping, "registries"):
        if not REGISTRY_NAME.match(name):
            checker.add(
                key_node, "bad-name", f"registry name {name!r} must be lowercase letters, digits, '.', '_', '-'"
            )
            continue
        what = f"registry {name!r}"
        fields = checker.fields(value, what, required=("url",), optional=("insecure", "ca_bundle", "max_concurrency"))
        if fields is None:
            continue
        url = checker.text(fields["url"], f"{what} url") if "url" in fields else None
        insecure = checker.boolean(fields["insecure"], f"{what} insecure") if "insecure" in fields else False
        if url is not None:
            url = _checked_url(checker, fields["url"], what, url, insecure=bool(insecure))
        ca_bundle = checker.text(fields["ca_bundle"], f"{what} ca_bundle") if "ca_bundle" in fields else None
        if ca_bundle is not None and not ca_bundle.startswith("/") and not exists(ca_bundle):
            checker.add(fields["ca_bundle"], "file-missing", f"{what} ca_bundle {ca_bundle!r} does not exist")
        concurrency = (
            checker.integer(fields["max_concurrency"], f"{what} max_concurrency", minimum=1)
            if "max_concurrency" in fields
            else None
        )
        if url is None:
            continue
        registries[name] = Registry(
            name=name, url=url, insecure=bool(insecure), ca_bundle=ca_bundle, max_concurrency=concurrency
        )
    return registries


def _checked_url(checker: Checker, node: Node, what: str, url: str, *, insecure: bool) -> str | None:
    """The registry URL, normalised by the rule the registry client applies (``model.registryurl``), so
    that a URL ``validate`` accepts never fails later in ``plan``; None (and a problem) when it breaks it.
    The URL is quoted without any user-info: a password written into it is never repeated."""
    shown = redact(url)
    if "://" not in url:
        reason = "must start with https:// (or http:// with insecure: true)"
        checker.add(node, "bad-value", f"{what} url {shown!r} {reason}")
        return None
    try:
        return normalize_registry_url(url, insecure=insecure)
    except ValueError as exc:
        checker.add(node, "bad-value", f"{what} url {shown!r} {exc}")
        return None


def _environment(checker: Checker, name: str, value: Node, registry_names: set[str]) -> _EnvDraft | None:
    what = f"environment {name!r}"
    fields = checker.fields(
        value,
        what,
        required=("prefix",),
        optional=("registry", "registries", "from", "source", "immutable_tags", "allow_tag_moves"),
    )
    if fields is None:
        return None
    ok = True
    names: list[str] = []
    if "registry" in fields and "registries" in fields:
        checker.add(
            fields["registries"], "conflicting-fields", f"{what} sets both 'registry' and 'registries'; keep one"
        )
        ok = False
    elif "registry" in fields:
        one = checker.text(fields["registry"], f"{what} registry")
        if one is None:
            ok = False
        elif checker.reference(fields["registry"], one, registry_names, "unknown-registry", "registry"):
            names = [one]
        else:
            ok = False
    elif "registries" in fields:
        listed = checker.string_list(fields["registries"], f"{what} registries")
        for reg, reg_node in listed:
            if checker.reference(reg_node, reg, registry_names, "unknown-registry", "registry"):
                names.append(reg)
            else:
                ok = False
        if not listed and isinstance(fields["registries"], SequenceNode):
            checker.add(fields["registries"], "bad-value", f"{what} registries must name at least one registry")
            ok = False
        elif not listed:
            ok = False
    else:
        checker.add(value, "missing-field", f"{what} needs 'registry: NAME' or 'registries: [NAME, ...]'")
        ok = False
    prefix = checker.text(fields["prefix"], f"{what} prefix") if "prefix" in fields else None
    if prefix is not None and not PATH_COMPONENT.match(prefix):
        checker.add(fields["prefix"], "bad-value", f"{what} prefix {prefix!r} must be one lowercase OCI path component")
        prefix = None
    upstream = checker.text(fields["from"], f"{what} from") if "from" in fields else None
    source = checker.boolean(fields["source"], f"{what} source") if "source" in fields else False
    immutable = (
        checker.boolean(fields["immutable_tags"], f"{what} immutable_tags") if "immutable_tags" in fields else False
    )
    moves = (
        checker.boolean(fields["allow_tag_moves"], f"{what} allow_tag_moves") if "allow_tag_moves" in fields else False
    )
    if immutable and moves:
        checker.add(
            fields["allow_tag_moves"],
            "conflicting-fields",
            f"{what} has immutable_tags: true, so allow_tag_moves: true can never apply; remove one",
        )
    if source and "from" in fields:
        checker.add(fields["from"], "conflicting-fields", f"{what} is a source environment and cannot have 'from'")
        upstream = None
    if prefix is None or not ok or any(v is None for v in (source, immutable, moves)):
        return None
    env = Environment(
        name=name,
        registries=tuple(names),
        prefix=prefix,
        upstream=upstream,
        source=bool(source),
        immutable_tags=bool(immutable),
        allow_tag_moves=bool(moves),
    )
    return _EnvDraft(env, value, fields.get("from"))


def _check_chain(checker: Checker, drafts: list[_EnvDraft], defined: set[str], *, source_declared: bool) -> None:
    """``from`` must name an earlier environment; no cycles; every non-source environment has one."""
    order = {draft.env.name: index for index, draft in enumerate(drafts)}
    by_name = {draft.env.name: draft for draft in drafts}
    if drafts and not any(draft.env.source for draft in drafts) and not source_declared:
        checker.add(drafts[0].node, "no-source", "no environment is marked 'source: true'; CI needs one to push to")
    in_cycle: set[str] = set()
    for draft in drafts:
        start = draft.env.name
        path = [start]
        current = draft.env.upstream
        while current is not None and current in by_name and current not in path:
            path.append(current)
            current = by_name[current].env.upstream
        if current == start and start not in in_cycle:
            in_cycle.update(path)
            cycle = " -> ".join([*path, start])
            assert draft.from_node is not None
            checker.add(draft.from_node, "from-cycle", f"promotion chain has a cycle: {cycle}")
    for draft in drafts:
        env = draft.env
        if env.source:
            continue
        if env.upstream is None:
            if draft.from_node is None:
                checker.add(
                    draft.node,
                    "from-missing",
                    f"environment {env.name!r} is not a source and has no 'from': the promotion chain has a gap",
                )
            continue
        assert draft.from_node is not None
        if env.upstream not in defined:
            checker.reference(draft.from_node, env.upstream, defined, "unknown-environment", "environment")
        elif env.name in in_cycle:
            continue
        elif env.upstream not in order:
            continue  # defined but invalid: reported where it is defined
        elif order[env.upstream] > order[env.name]:
            checker.add(
                draft.from_node,
                "from-forward",
                f"environment {env.name!r} promotes from {env.upstream!r}, which comes later; "
                "list environments in promotion order",
            )


_TOP_REQUIRED = ("version", "registries", "environments")
_TOP_OPTIONAL = ("naming", "retention", "archive", "base_images", "gates", "trust", "promotion")


@dataclass(slots=True)
class ConfigCheck:
    config: Config | None
    """Best effort: what was valid. None when the file could not be read as a mapping at all."""
    problems: list[Problem]
    declared_environments: tuple[str, ...]
    """Every well-named environment the file declares, valid or not (so their files are not "undefined")."""


def validate_config(parsed: ParsedYaml, exists: ExistsFn) -> ConfigCheck:
    """Check ``reconciler.yaml``; return the best-effort Config and every problem."""
    checker = Checker(parsed.file)
    checker.problems.extend(parsed.problems)
    if parsed.root is None:
        return ConfigCheck(None, checker.problems, ())
    fields = checker.fields(parsed.root, CONFIG_FILE, required=_TOP_REQUIRED, optional=_TOP_OPTIONAL)
    if fields is None:
        return ConfigCheck(None, checker.problems, ())
    version = None
    if "version" in fields:
        version = checker.integer(fields["version"], "version")
        if version is not None and version not in SUPPORTED_VERSIONS:
            checker.add(
                fields["version"],
                "unsupported-version",
                f"version {version} is not supported (this reconciler reads 1)",
            )
            version = None
    registries = _registries(checker, fields["registries"], exists) if "registries" in fields else {}
    registry_names = _defined_names(fields.get("registries"))
    drafts: list[_EnvDraft] = []
    defined_envs: dict[str, None] = {}
    env_mapping = checker.mapping(fields["environments"], "environments") if "environments" in fields else None
    if env_mapping is not None:
        if not env_mapping.value:
            checker.add(env_mapping, "bad-value", "environments must define at least one environment")
        entries = list(checker.entries(env_mapping, "environments"))
        for name, key_node, _value in entries:
            if ENVIRONMENT_NAME.match(name):
                defined_envs[name] = None
            else:
                checker.add(key_node, "bad-name", f"environment name {name!r} must match ^[a-z][a-z0-9]*$")
        for name, _key_node, value in entries:
            if name in defined_envs:
                draft = _environment(checker, name, value, registry_names)
                if draft is not None:
                    drafts.append(draft)
        # An environment that says `source` but is broken elsewhere is not "no source at all".
        source_declared = any(
            isinstance(value, MappingNode)
            and any(isinstance(k, ScalarNode) and k.value == "source" for k, _ in value.value)
            and name not in {draft.env.name for draft in drafts}
            for name, _key, value in entries
        )
        _check_chain(checker, drafts, set(defined_envs), source_declared=source_declared)
        _check_prefixes(checker, drafts)
    naming = naming_section(checker, fields["naming"]) if "naming" in fields else NamingRule()
    env_names = set(defined_envs)
    retention = retention_section(checker, fields["retention"], env_names) if "retention" in fields else Retention()
    archive = archive_section(checker, fields["archive"]) if "archive" in fields else None
    if archive is None and "archive" not in fields and "retention" in fields:
        _check_archive_wanted(checker, fields["retention"], retention)
    base_images = base_images_section(checker, fields["base_images"], registry_names) if "base_images" in fields else {}
    base_names = _defined_names(fields.get("base_images"))
    gates = gates_section(checker, fields["gates"], env_names, base_names) if "gates" in fields else {}
    trust = trust_section(checker, fields["trust"], env_names, exists) if "trust" in fields else {}
    promotion = promotion_section(checker, fields["promotion"], env_names) if "promotion" in fields else Promotion()
    config = Config(
        version=version or 1,
        registries=registries,
        environments=tuple(draft.env for draft in drafts),
        naming=naming,
        retention=retention,
        archive=archive,
        gates=gates,
        trust=trust,
        base_images=base_images,
        promotion=promotion,
    )
    return ConfigCheck(config, checker.problems, tuple(defined_envs))


def _check_archive_wanted(checker: Checker, node: Node, retention: Retention) -> None:
    """A rule that asks for archiving (``archive: true``) needs an archive store to archive to."""
    rules = {"default": retention.default, **retention.per_environment}
    for name, rule in rules.items():
        if rule.archive or any(override.archive for override in rule.images.values()):
            checker.add(
                node,
                "archive-missing",
                f"retention {name!r} archives retired versions (archive: true) but reconciler.yaml has no "
                "'archive: {store: ...}' section; add one, or set archive: false to delete them",
            )


def _defined_names(node: Node | None) -> set[str]:
    """Keys of a mapping, valid or not: references to a defined-but-broken entry are not reported twice."""
    if not isinstance(node, MappingNode):
        return set()
    return {str(key.value) for key, _ in node.value if isinstance(key, ScalarNode)}


def _check_prefixes(checker: Checker, drafts: list[_EnvDraft]) -> None:
    """Two environments sharing a registry must not share a prefix: their repositories would collide."""
    owners: dict[tuple[str, str], str] = {}
    for draft in drafts:
        for registry in draft.env.registries:
            key = (registry, draft.env.prefix)
            other = owners.get(key)
            if other is not None:
                checker.add(
                    draft.node,
                    "duplicate-prefix",
                    f"environments {other!r} and {draft.env.name!r} both use prefix {draft.env.prefix!r} "
                    f"on registry {registry!r}",
                )
            else:
                owners[key] = draft.env.name
