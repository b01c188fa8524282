"""Validate one ``environments/<env>.yaml`` and build its ``EnvironmentState``.

Checks the shape (``environment`` and ``images`` only), image names (lowercase OCI path components),
each version's tag (naming rule, real calendar date, never a forbidden tag such as ``latest``) and digest,
and duplicates. Checks that need several files (a tag pinned to two digests, missing files) live in
``reconciler.manifests.load``. This module never reads files.
"""

from __future__ import annotations

import functools
import re

from reconciler.manifests.config import IMAGE_NAME
from reconciler.manifests.fields import Checker
from reconciler.manifests.yamltree import Node, ParsedYaml, ScalarNode, position
from reconciler.model.desired import EnvironmentState, NamingRule, PinnedVersion, Position
from reconciler.model.digest import is_valid_digest
from reconciler.model.problems import Problem
from reconciler.model.version import Version

_DATED = re.compile(r"^\d{8}_")


class TagRule:
    """The naming rule, compiled once per load."""

    __slots__ = ("forbidden", "pattern", "source")

    def __init__(self, naming: NamingRule) -> None:
        self.source = naming.tag_pattern
        self.pattern = re.compile(naming.tag_pattern)
        self.forbidden = frozenset(naming.forbidden_tags)

    def problem(self, tag: str) -> tuple[str, str] | None:
        """(code, message) when ``tag`` breaks the rule, else None."""
        if tag in self.forbidden:
            return "tag-forbidden", f"tag {tag!r} is forbidden: pin a dated version (YYYYMMDD_NN), never {tag!r}"
        if self.pattern.search(tag) is None:
            return "tag-naming", f"tag {tag!r} does not match the naming rule {self.source!r}"
        if _DATED.match(tag) and not _real_date(tag[:8]):
            return "tag-date", f"tag {tag!r} does not start with a real calendar date (YYYYMMDD)"
        return None


@functools.lru_cache(maxsize=4096)
def _real_date(text: str) -> bool:
    """Whether ``YYYYMMDD`` is a calendar date (cached: 10,000 pins share a few hundred days)."""
    return Version.try_parse(f"{text}_01") is not None


def validate_environment_file(
    parsed: ParsedYaml, expected_name: str, tag_rule: TagRule
) -> tuple[EnvironmentState | None, list[Problem]]:
    """Check one environment file. ``expected_name`` comes from the file name (``t`` for ``t.yaml``)."""
    checker = Checker(parsed.file)
    checker.problems.extend(parsed.problems)
    if parsed.root is None:
        return None, checker.problems
    fields = checker.fields(parsed.root, parsed.file, required=("environment", "images"))
    if fields is None:
        return None, checker.problems
    if "environment" in fields:
        name = checker.text(fields["environment"], "environment")
        if name is not None and name != expected_name:
            checker.add(
                fields["environment"],
                "environment-mismatch",
                f"file {parsed.file} declares environment {name!r}; it must declare {expected_name!r}",
            )
    images: dict[str, tuple[PinnedVersion, ...]] = {}
    images_node = fields.get("images")
    if images_node is not None and not (isinstance(images_node, ScalarNode) and str(images_node.tag).endswith("null")):
        mapping = checker.mapping(images_node, "images")
        if mapping is not None:
            for image, key_node, value in checker.entries(mapping, "images", duplicate_code="duplicate-image"):
                if not IMAGE_NAME.match(image):
                    checker.add(
                        key_node,
                        "bad-image-name",
                        f"image name {image!r} must be lowercase OCI path components "
                        "([a-z0-9]+ joined by '.', '_', '__' or '-', separated by '/'), without the environment prefix",
                    )
                    continue
                pins = _versions(checker, image, value, tag_rule)
                if pins is not None:
                    images[image] = pins
    state = EnvironmentState(environment=expected_name, images=images, file=parsed.file)
    return state, checker.problems


def _versions(checker: Checker, image: str, node: Node, tag_rule: TagRule) -> tuple[PinnedVersion, ...] | None:
    sequence = checker.sequence(node, f"image {image!r}")
    if sequence is None:
        return None
    if not sequence.value:
        checker.add(sequence, "bad-value", f"image {image!r} pins no version; remove it or add {{tag, digest}}")
        return None
    pins: list[PinnedVersion] = []
    seen: dict[str, int] = {}
    file = checker.file
    for item in sequence.value:
        fields = checker.fields(item, f"version of {image!r}", required=("tag", "digest"))
        if fields is None or "tag" not in fields or "digest" not in fields:
            continue
        tag_node, digest_node = fields["tag"], fields["digest"]
        tag = checker.text(tag_node, f"tag of {image!r}")
        digest = checker.text(digest_node, f"digest of {image!r}")
        if tag is not None:
            broken = tag_rule.problem(tag)
            if broken is not None:
                checker.add(tag_node, broken[0], f"{image}: {broken[1]}")
                tag = None
        if digest is not None and not is_valid_digest(digest):
            checker.add(
                digest_node,
                "bad-digest",
                f"{image}: digest {digest!r} must be sha256:<64 lowercase hex> or sha512:<128 lowercase hex>",
            )
            digest = None
        if tag is None or digest is None:
            continue
        if tag in seen:
            checker.add(
                tag_node,
                "duplicate-version",
                f"{image}: tag {tag!r} is pinned twice in this file (first at line {seen[tag]})",
            )
            continue
        line, column = position(item)
        seen[tag] = line
        pins.append(PinnedVersion(image=image, tag=tag, digest=digest, position=Position(file, line, column)))
    return tuple(pins)
