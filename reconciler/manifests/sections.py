"""The optional sections of ``reconciler.yaml``: naming, retention, promotion, archive, base images, gates, trust.

Each reader walks its section's node tree once with the ``Checker``, records every problem with its
position, and returns the typed value built from what was valid. ``config.validate_config`` calls them after
it knows which environments and registries exist. No I/O beyond the ``exists`` callback for referenced files.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from reconciler.manifests.fields import Checker
from reconciler.manifests.names import IMAGE_NAME
from reconciler.manifests.yamltree import Node
from reconciler.model.desired import (
    DEFAULT_FORBIDDEN_TAGS,
    DEFAULT_TAG_PATTERN,
    ArchiveConfig,
    BaseImage,
    Gate,
    NamingRule,
    Promotion,
    Retention,
    RetentionRule,
    TrustRule,
)
from reconciler.model.digest import is_valid_digest

ExistsFn = Callable[[str], bool]
ARTIFACT_KINDS = ("signature", "attestation", "sbom")
"""What ``require_artifacts`` may name besides an artifact media type (cosign's three tag kinds)."""
_MEDIA_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$")


def naming_section(checker: Checker, node: Node) -> NamingRule:
    fields = checker.fields(node, "naming", optional=("tag", "forbidden_tags"))
    if fields is None:
        return NamingRule()
    pattern = DEFAULT_TAG_PATTERN
    if "tag" in fields:
        text = checker.text(fields["tag"], "naming tag")
        if text is not None:
            try:
                re.compile(text)
                pattern = text
            except re.error as exc:
                checker.add(fields["tag"], "bad-value", f"naming tag {text!r} is not a valid regular expression: {exc}")
    forbidden: tuple[str, ...] = DEFAULT_FORBIDDEN_TAGS
    if "forbidden_tags" in fields:
        listed = tuple(value for value, _ in checker.string_list(fields["forbidden_tags"], "naming forbidden_tags"))
        # 'latest' is forbidden whatever the file says: it names no version.
        forbidden = tuple(dict.fromkeys((*DEFAULT_FORBIDDEN_TAGS, *listed)))
    return NamingRule(tag_pattern=pattern, forbidden_tags=forbidden)


def _retention_rule(checker: Checker, node: Node, what: str, *, image: bool = False) -> RetentionRule | None:
    optional = (
        ("keep", "max_age_days", "archive") if image else ("keep", "max_age_days", "max_bytes", "archive", "images")
    )
    fields = checker.fields(node, what, optional=optional)
    if fields is None:
        return None
    keep = checker.integer(fields["keep"], f"{what} keep") if "keep" in fields else None
    age = (
        checker.integer(fields["max_age_days"], f"{what} max_age_days", minimum=1) if "max_age_days" in fields else None
    )
    size = checker.size(fields["max_bytes"], f"{what} max_bytes") if "max_bytes" in fields else None
    archive = checker.boolean(fields["archive"], f"{what} archive") if "archive" in fields else None
    images: dict[str, RetentionRule] = {}
    mapping = checker.mapping(fields["images"], f"{what} images") if "images" in fields else None
    for name, key_node, value in checker.entries(mapping, f"{what} images") if mapping is not None else ():
        if not IMAGE_NAME.match(name):
            checker.add(key_node, "bad-image-name", f"{what} images: {name!r} is not an image name (payments/api)")
            continue
        rule = _retention_rule(checker, value, f"{what} image {name!r}", image=True)
        if rule is not None:
            images[name] = rule
    return RetentionRule(keep=keep, max_age_days=age, max_bytes=size, archive=archive, images=images)


def retention_section(checker: Checker, node: Node, environments: set[str]) -> Retention:
    mapping = checker.mapping(node, "retention")
    if mapping is None:
        return Retention()
    default = RetentionRule()
    per_env: dict[str, RetentionRule] = {}
    for name, key_node, value in checker.entries(mapping, "retention"):
        if name != "default" and not checker.reference(
            key_node, name, environments, "unknown-environment", "retention for environment"
        ):
            continue
        rule = _retention_rule(checker, value, f"retention {name!r}")
        if rule is None:
            continue
        if name == "default":
            default = rule
        else:
            per_env[name] = rule
    return Retention(default=default, per_environment=per_env)


def promotion_section(checker: Checker, node: Node, environments: set[str]) -> Promotion:
    """``promotion: {default: {keep_previous: N}, <env>: {keep_previous: N}}``, shaped like ``retention``."""
    mapping = checker.mapping(node, "promotion")
    if mapping is None:
        return Promotion()
    default: int | None = None
    per_env: dict[str, int] = {}
    for name, key_node, value in checker.entries(mapping, "promotion"):
        if name != "default" and not checker.reference(
            key_node, name, environments, "unknown-environment", "promotion for environment"
        ):
            continue
        fields = checker.fields(value, f"promotion {name!r}", required=("keep_previous",))
        if fields is None or "keep_previous" not in fields:
            continue
        keep = checker.integer(fields["keep_previous"], f"promotion {name!r} keep_previous", minimum=0)
        if keep is None:
            continue
        if name == "default":
            default = keep
        else:
            per_env[name] = keep
    return Promotion(default_keep_previous=default, keep_previous=per_env)


def archive_section(checker: Checker, node: Node) -> ArchiveConfig | None:
    fields = checker.fields(node, "archive", required=("store",), optional=("destroy_after_days",))
    if fields is None or "store" not in fields:
        return None
    store = checker.text(fields["store"], "archive store")
    days = (
        checker.integer(fields["destroy_after_days"], "archive destroy_after_days", minimum=1)
        if "destroy_after_days" in fields
        else None
    )
    return ArchiveConfig(store=store, destroy_after_days=days) if store is not None else None


def base_images_section(checker: Checker, node: Node, registries: set[str]) -> dict[str, BaseImage]:
    mapping = checker.mapping(node, "base_images")
    result: dict[str, BaseImage] = {}
    if mapping is None:
        return result
    for name, _key_node, value in checker.entries(mapping, "base_images"):
        what = f"base image {name!r}"
        fields = checker.fields(value, what, required=("reference",))
        if fields is None or "reference" not in fields:
            continue
        ref_node = fields["reference"]
        reference = checker.text(ref_node, f"{what} reference")
        if reference is None:
            continue
        repo_part, at, digest = reference.partition("@")
        registry, slash, repository = repo_part.partition("/")
        if not at or not slash or ":" in repository or not IMAGE_NAME.match(repository):
            checker.add(
                ref_node,
                "bad-value",
                f"{what} reference {reference!r} must be REGISTRY-NAME/REPOSITORY@DIGEST (pinned by digest, no tag)",
            )
            continue
        if not is_valid_digest(digest):
            checker.add(ref_node, "bad-digest", f"{what} digest {digest!r} must be sha256:<64 hex> or sha512:<128 hex>")
            continue
        if not checker.reference(ref_node, registry, registries, "unknown-registry", "registry"):
            continue
        result[name] = BaseImage(name=name, reference=reference)
    return result


def gates_section(checker: Checker, node: Node, environments: set[str], base_images: set[str]) -> dict[str, Gate]:
    mapping = checker.mapping(node, "gates")
    result: dict[str, Gate] = {}
    if mapping is None:
        return result
    for name, key_node, value in checker.entries(mapping, "gates"):
        environment_known = checker.reference(key_node, name, environments, "unknown-environment", "gate environment")
        what = f"gates {name!r}"
        fields = checker.fields(
            value,
            what,
            optional=("base", "non_root", "exec_form", "max_layers", "max_bytes", "labels", "require_artifacts"),
        )
        if fields is None:
            continue
        base = checker.text(fields["base"], f"{what} base") if "base" in fields else None
        if base is not None and not checker.reference(
            fields["base"], base, base_images, "unknown-base-image", "base image"
        ):
            base = None
        non_root = checker.boolean(fields["non_root"], f"{what} non_root") if "non_root" in fields else False
        exec_form = checker.boolean(fields["exec_form"], f"{what} exec_form") if "exec_form" in fields else False
        layers = (
            checker.integer(fields["max_layers"], f"{what} max_layers", minimum=1) if "max_layers" in fields else None
        )
        size = checker.size(fields["max_bytes"], f"{what} max_bytes") if "max_bytes" in fields else None
        labels = (
            tuple(v for v, _ in checker.string_list(fields["labels"], f"{what} labels")) if "labels" in fields else ()
        )
        artifacts: list[str] = []
        for kind, kind_node in (
            checker.string_list(fields["require_artifacts"], f"{what} require_artifacts")
            if "require_artifacts" in fields
            else []
        ):
            if kind in ARTIFACT_KINDS or _MEDIA_TYPE.match(kind):
                artifacts.append(kind)
            else:
                known = ", ".join(ARTIFACT_KINDS)
                checker.add(
                    kind_node,
                    "bad-value",
                    f"{what} require_artifacts {kind!r} is neither a kind ({known}) nor a media type like "
                    "application/spdx+json",
                )
        if environment_known:
            result[name] = Gate(
                base=base,
                non_root=bool(non_root),
                exec_form=bool(exec_form),
                max_layers=layers,
                max_bytes=size,
                labels=labels,
                require_artifacts=tuple(artifacts),
            )
    return result


def trust_section(checker: Checker, node: Node, environments: set[str], exists: ExistsFn) -> dict[str, TrustRule]:
    mapping = checker.mapping(node, "trust")
    result: dict[str, TrustRule] = {}
    if mapping is None:
        return result
    for name, key_node, value in checker.entries(mapping, "trust"):
        environment_known = checker.reference(key_node, name, environments, "unknown-environment", "trust environment")
        what = f"trust {name!r}"
        fields = checker.fields(value, what, required=("allowed_signers",))
        if fields is None or "allowed_signers" not in fields:
            continue
        path = checker.text(fields["allowed_signers"], f"{what} allowed_signers")
        if path is None:
            continue
        if not path.startswith("/") and not exists(path):
            checker.add(
                fields["allowed_signers"],
                "file-missing",
                f"{what} allowed_signers file {path!r} does not exist in the desired-state repository",
            )
            continue
        if environment_known:
            result[name] = TrustRule(allowed_signers=path)
    return result
