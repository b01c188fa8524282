"""Typed reads from a ruamel node tree that record a ``Problem`` instead of raising.

Validation must report every problem in one pass, so each reader returns ``None`` (or skips the entry)
when a value is wrong, records why with the node's position, and lets the caller carry on. Nothing here
knows what a registry or an environment is; it only knows YAML shapes and the words for them.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping

from reconciler.manifests.yamltree import (
    BOOL,
    INT,
    NULL,
    STR,
    MappingNode,
    Node,
    ScalarNode,
    SequenceNode,
    position,
)
from reconciler.model.problems import Problem

_SIZE = re.compile(r"^(\d+)\s*(Ki|Mi|Gi|Ti|Pi|K|M|G|T|P|k)?B?$")
_SIZE_FACTORS = {
    None: 1,
    "K": 1000,
    "k": 1000,
    "M": 1000**2,
    "G": 1000**3,
    "T": 1000**4,
    "P": 1000**5,
    "Ki": 1024,
    "Mi": 1024**2,
    "Gi": 1024**3,
    "Ti": 1024**4,
    "Pi": 1024**5,
}


def describe(node: Node) -> str:
    """What a node is, in the words of the YAML a person wrote."""
    if isinstance(node, MappingNode):
        return "a mapping"
    if isinstance(node, SequenceNode):
        return "a list"
    if not isinstance(node, ScalarNode):
        return "a node"
    tag = node.tag
    if tag == NULL:
        return "empty (null)"
    if tag == BOOL:
        return f"the boolean {node.value}"
    if tag == INT:
        return f"the number {node.value}"
    if tag == STR:
        return f"the string {node.value!r}"
    return f"the value {node.value!r}"


class Checker:
    """Collects the problems of one file."""

    __slots__ = ("file", "problems")

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []

    def add(self, node: Node | None, code: str, message: str) -> None:
        line, column = position(node) if node is not None else (0, 0)
        self.problems.append(Problem(self.file, line, column, code, message))

    # -- shapes -----------------------------------------------------------------------------------

    def mapping(self, node: Node, what: str) -> MappingNode | None:
        if isinstance(node, MappingNode):
            return node
        self.add(node, "wrong-type", f"{what} must be a mapping, not {describe(node)}")
        return None

    def sequence(self, node: Node, what: str) -> SequenceNode | None:
        if isinstance(node, SequenceNode):
            return node
        self.add(node, "wrong-type", f"{what} must be a list, not {describe(node)}")
        return None

    def entries(
        self, node: MappingNode, what: str, *, duplicate_code: str = "duplicate-key"
    ) -> Iterator[tuple[str, ScalarNode, Node]]:
        """(key, key node, value node) of a mapping with free-form keys, skipping and reporting
        non-scalar and duplicate keys."""
        seen: dict[str, ScalarNode] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode) or str(key_node.tag) == NULL:
                self.add(key_node, "wrong-type", f"keys of {what} must be plain names, not {describe(key_node)}")
                continue
            key = str(key_node.value)
            first = seen.get(key)
            if first is not None:
                line, column = position(first)
                self.add(
                    key_node, duplicate_code, f"duplicate key {key!r} in {what} (first defined at line {line}:{column})"
                )
                continue
            seen[key] = key_node
            yield key, key_node, value_node

    def fields(
        self,
        node: Node,
        what: str,
        *,
        required: tuple[str, ...] = (),
        optional: tuple[str, ...] = (),
    ) -> dict[str, Node] | None:
        """The fields of a mapping with a fixed set of keys; unknown, duplicate and missing keys reported."""
        mapping = self.mapping(node, what)
        if mapping is None:
            return None
        known = (*required, *optional)
        found: dict[str, Node] = {}
        for key, key_node, value_node in self.entries(mapping, what):
            if key not in known:
                hint = difflib.get_close_matches(key, known, n=1)
                suggestion = f" (did you mean {hint[0]!r}?)" if hint else f" (known fields: {', '.join(known)})"
                self.add(key_node, "unknown-field", f"unknown field {key!r} in {what}{suggestion}")
                continue
            found[key] = value_node
        for key in required:
            if key not in found:
                self.add(mapping, "missing-field", f"{what} is missing the required field {key!r}")
        return found

    # -- scalars ----------------------------------------------------------------------------------

    def text(self, node: Node, what: str) -> str | None:
        """Any non-empty scalar, as the text written (``tag: 20261127_01`` is text, not a number)."""
        if isinstance(node, ScalarNode) and str(node.tag) != NULL and str(node.value) != "":
            return str(node.value)
        self.add(node, "wrong-type", f"{what} must be a string, not {describe(node)}")
        return None

    def boolean(self, node: Node, what: str) -> bool | None:
        if isinstance(node, ScalarNode) and str(node.tag) == BOOL:
            return str(node.value).lower() == "true"
        self.add(node, "wrong-type", f"{what} must be true or false, not {describe(node)}")
        return None

    def integer(self, node: Node, what: str, *, minimum: int = 0) -> int | None:
        if isinstance(node, ScalarNode) and str(node.tag) == INT:
            text = node.value.replace("_", "")
            try:
                value = int(text, 10)
            except ValueError:
                try:
                    value = int(text, 0)  # 0x1F, 0o17
                except ValueError:
                    value = None
            if value is not None:
                if value < minimum:
                    self.add(node, "bad-value", f"{what} must be at least {minimum}, not {value}")
                    return None
                return value
        self.add(node, "wrong-type", f"{what} must be a whole number, not {describe(node)}")
        return None

    def size(self, node: Node, what: str) -> int | None:
        """Bytes, as a number or ``500Gi`` / ``64Mi`` / ``2G`` (binary and decimal units)."""
        if isinstance(node, ScalarNode) and str(node.tag) in (INT, STR):
            match = _SIZE.match(str(node.value).strip())
            if match is not None:
                return int(match.group(1)) * _SIZE_FACTORS[match.group(2)]
        self.add(
            node, "bad-value", f"{what} must be a size like 500Gi, 64Mi, 2G or a number of bytes, not {describe(node)}"
        )
        return None

    def string_list(self, node: Node, what: str) -> list[tuple[str, Node]]:
        """A list of strings with duplicates reported; [(value, node)]."""
        sequence = self.sequence(node, what)
        if sequence is None:
            return []
        values: list[tuple[str, Node]] = []
        seen: set[str] = set()
        for item in sequence.value:
            value = self.text(item, f"each entry of {what}")
            if value is None:
                continue
            if value in seen:
                self.add(item, "duplicate-entry", f"{value!r} is listed twice in {what}")
                continue
            seen.add(value)
            values.append((value, item))
        return values

    def reference(self, node: Node, name: str, defined: Mapping[str, object] | set[str], code: str, kind: str) -> bool:
        if name in defined:
            return True
        hint = difflib.get_close_matches(name, list(defined), n=1)
        suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
        known = ", ".join(sorted(defined)) or "none"
        self.add(node, code, f"{kind} {name!r} is not defined{suggestion}; defined: {known}")
        return False
