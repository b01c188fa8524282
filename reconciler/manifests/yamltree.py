"""Read one YAML file of the desired state into a small node tree, safely, keeping positions.

Everything that could hurt before validation even starts is refused here, each as a ``Problem``:
files over 5 MiB, binary (NUL bytes), not UTF-8, empty, YAML syntax errors, several documents,
nesting deeper than any desired state needs, non-standard tags, and every anchor or alias. Aliases are
refused at the first event that names one, before any value is built, so a billion-laughs file costs
microseconds, not gigabytes.

ruamel.yaml scans and parses (libyaml's C parser when ``ruamel.yaml.clib`` is installed, ruamel's own
parser otherwise, and always ruamel's when libyaml, which follows YAML 1.1, refuses a document); the
events are composed here, iteratively, into plain nodes that carry 1-based line and column. Scalars
are resolved with ruamel's YAML 1.2 rules. Nothing is ever constructed into Python objects: this
module must never construct arbitrary tags or expand aliases.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
)
from ruamel.yaml.resolver import VersionedResolver

from reconciler.model.problems import Problem
from reconciler.source.tree import MAX_FILE_BYTES

try:  # libyaml's parser: several times faster than ruamel's pure-Python scanner on large files
    from _ruamel_yaml import CParser as _CParser  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # pragma: no cover - depends on ruamel.yaml.clib being installed
    _CParser = None

SECOND_OPINION_BYTES = 1024 * 1024
"""Up to this size, a file libyaml refuses is parsed again by ruamel's own parser (see ``_compose_text``)."""
MAX_DEPTH = 64
"""The deepest legitimate desired-state document nests about 5 levels."""

STR = "tag:yaml.org,2002:str"
INT = "tag:yaml.org,2002:int"
BOOL = "tag:yaml.org,2002:bool"
NULL = "tag:yaml.org,2002:null"
FLOAT = "tag:yaml.org,2002:float"
SEQ = "tag:yaml.org,2002:seq"
MAP = "tag:yaml.org,2002:map"
_STANDARD_TAGS = frozenset({STR, INT, BOOL, NULL, FLOAT, SEQ, MAP})

__all__ = [
    "MAX_FILE_BYTES",
    "MappingNode",
    "Node",
    "ParsedYaml",
    "ScalarNode",
    "SequenceNode",
    "parse_yaml",
    "position",
]


@dataclass(slots=True)
class Node:
    tag: str
    line: int
    """1-based."""
    column: int
    """1-based."""


@dataclass(slots=True)
class ScalarNode(Node):
    value: str


@dataclass(slots=True)
class SequenceNode(Node):
    value: list[Node] = field(default_factory=list)


@dataclass(slots=True)
class MappingNode(Node):
    value: list[tuple[Node, Node]] = field(default_factory=list)


@dataclass(slots=True)
class ParsedYaml:
    file: str
    root: Node | None
    """The document's root node; None when the file could not be parsed (see ``problems``)."""
    problems: list[Problem] = field(default_factory=list)


def position(node: Node) -> tuple[int, int]:
    """1-based (line, column) of a node."""
    return node.line, node.column


class _RefusedError(Exception):
    """The composer stops: (code, message, mark)."""

    def __init__(self, code: str, message: str, mark: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.mark = mark


def _implicit_resolvers() -> dict[str | None, list[tuple[str, re.Pattern[str]]]]:
    """ruamel's YAML 1.2 implicit scalar rules, by first character (None: any first character)."""
    table: dict[str | None, list[tuple[str, re.Pattern[str]]]] = {}
    for first, rules in VersionedResolver(version=(1, 2)).versioned_resolver.items():
        table[first] = [(str(tag), regexp) for tag, regexp in rules]
    return table


_RESOLVERS = _implicit_resolvers()


def _resolve_plain(value: str) -> str:
    candidates = _RESOLVERS.get(value[0] if value else "", [])
    for tag, regexp in (*candidates, *_RESOLVERS.get(None, [])):
        if regexp.match(value):
            return tag
    return STR


def _compose(events: Iterable[Any]) -> tuple[Node | None, list[Problem]]:
    """Compose one document from parser events; raise _RefusedError on aliases, anchors, depth, documents."""
    root: Node | None = None
    stack: list[SequenceNode | MappingNode] = []
    pending_keys: list[Node | None] = []
    tags: list[tuple[Any, str]] = []
    documents = 0
    for event in events:
        if isinstance(event, DocumentStartEvent):
            documents += 1
            if documents > 1:
                raise _RefusedError(
                    "yaml-syntax", "YAML syntax error: a file holds one YAML document, found another", event.start_mark
                )
            continue
        if isinstance(event, AliasEvent):
            raise _RefusedError("yaml-alias", f"YAML alias *{event.anchor} is not allowed", event.start_mark)
        if isinstance(event, (SequenceEndEvent, MappingEndEvent)):
            stack.pop()
            pending_keys.pop()
            continue
        if not isinstance(event, (ScalarEvent, SequenceStartEvent, MappingStartEvent)):
            continue  # stream start/end, document end
        mark = event.start_mark
        if event.anchor is not None:
            raise _RefusedError("yaml-alias", f"YAML anchor &{event.anchor} is not allowed", mark)
        explicit = None if event.ctag is None else str(event.ctag)
        if explicit is not None and explicit != "!" and explicit not in _STANDARD_TAGS:
            tags.append((mark, explicit))
        node: Node
        if isinstance(event, ScalarEvent):
            if explicit is not None and explicit != "!":
                tag = explicit
            elif event.implicit[0]:
                tag = _resolve_plain(event.value)
            else:
                tag = STR
            node = ScalarNode(tag, mark.line + 1, mark.column + 1, event.value)
        elif isinstance(event, SequenceStartEvent):
            node = SequenceNode(explicit or SEQ, mark.line + 1, mark.column + 1)
        else:
            node = MappingNode(explicit or MAP, mark.line + 1, mark.column + 1)
        if not stack:
            root = node
        else:
            parent = stack[-1]
            if isinstance(parent, SequenceNode):
                parent.value.append(node)
            else:
                key = pending_keys[-1]
                if key is None:
                    pending_keys[-1] = node
                else:
                    parent.value.append((key, node))
                    pending_keys[-1] = None
        if isinstance(node, (SequenceNode, MappingNode)):
            if len(stack) >= MAX_DEPTH:
                raise _RefusedError("yaml-too-deep", f"YAML nests deeper than {MAX_DEPTH} levels", mark)
            stack.append(node)
            pending_keys.append(None)
    problems = [Problem("", m.line + 1, m.column + 1, "yaml-tag", f"YAML tag {tag} is not allowed") for m, tag in tags]
    return root, problems


def _libyaml_events(text: str) -> Iterable[Any]:
    """libyaml's parser events for ``text`` (marks carry character offsets, lines and columns)."""
    assert _CParser is not None
    parser = _CParser(text)
    try:
        while True:
            event = parser.get_event()
            yield event
            if type(event).__name__ == "StreamEndEvent":
                return
    finally:
        parser.dispose()


c_events = _libyaml_events if _CParser is not None else None
"""libyaml's event stream, when ruamel.yaml.clib is installed (for other fast readers of YAML text)."""


def _compose_text(text: str) -> tuple[Node | None, list[Problem]]:
    if _CParser is not None:
        try:
            return _compose(_libyaml_events(text))
        except MarkedYAMLError as exc:
            # libyaml follows YAML 1.1 and refuses a few things YAML 1.2 allows in flow style: a ':' inside
            # a plain scalar ({url: https://host}), a '?' ending one ({0?: x}). ruamel's own parser (pure
            # Python, ~10x slower) is the reference; it is asked again for the ':' case at any size, and
            # for any other error only in files up to SECOND_OPINION_BYTES (desired-state files people
            # write). In a larger file (a generated environment file) libyaml's error is the answer, with
            # its position: a 5 MiB file broken on its last line is reported in about a second instead of
            # being parsed twice (10-13 s).
            colon = "found unexpected ':'" in str(exc.problem or "")
            if not colon and len(text) > SECOND_OPINION_BYTES:
                raise
    return _compose(YAML(typ="safe", pure=True).parse(text))


def _file_problem(file: str, code: str, message: str, line: int = 0, column: int = 0) -> ParsedYaml:
    return ParsedYaml(file, None, [Problem(file, line, column, code, message)])


def parse_yaml(file: str, data: bytes) -> ParsedYaml:
    """Check the raw bytes, then compose them. ``file`` is the path reported in problems."""
    if len(data) > MAX_FILE_BYTES:
        return _file_problem(file, "file-too-large", f"file is larger than the 5 MiB limit ({MAX_FILE_BYTES} bytes)")
    nul = data.find(b"\x00")
    if nul >= 0:
        line = data.count(b"\n", 0, nul) + 1
        column = nul - (data.rfind(b"\n", 0, nul) + 1) + 1
        return _file_problem(file, "file-binary", "file is binary (contains a NUL byte), not YAML", line, column)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        return _file_problem(
            file, "file-encoding", f"file is not valid UTF-8 (byte 0x{data[exc.start]:02x})", line, column
        )
    text = text.removeprefix("\ufeff")
    if not text.strip():
        return _file_problem(file, "file-empty", "file is empty")
    try:
        root, tag_problems = _compose_text(text)
    except _RefusedError as exc:
        suffix = ": anchors and aliases are refused in desired state (write values out in full)"
        message = exc.message + (suffix if exc.code == "yaml-alias" else "")
        return _file_problem(file, exc.code, message, exc.mark.line + 1, exc.mark.column + 1)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (0, 0)
        reason = " ".join(str(part) for part in (exc.context, exc.problem) if part)
        return _file_problem(file, "yaml-syntax", f"YAML syntax error: {reason}", line, column)
    except YAMLError as exc:
        return _file_problem(file, "yaml-syntax", f"YAML syntax error: {exc}".splitlines()[0])
    problems = [Problem(file, problem.line, problem.column, problem.code, problem.message) for problem in tag_problems]
    if root is None:
        return ParsedYaml(file, None, [*problems, Problem(file, 0, 0, "file-empty", "file holds no YAML document")])
    return ParsedYaml(file, root, problems)
