"""Read one YAML file of the desired state into a ruamel.yaml node tree, safely, keeping positions.

Everything that could hurt before validation even starts is refused here, each as a ``Problem``:
files over 5 MiB, binary (NUL bytes), not UTF-8, empty, YAML syntax errors, several documents,
nesting deeper than any desired state needs, non-standard tags, and every anchor or alias. Aliases are
refused while *composing*, before any value is built, so a billion-laughs file costs a few
microseconds, not gigabytes.

Only the node tree is produced (``compose``), never Python objects (``load``): validation needs the
position of every node, and nothing in a YAML file is ever executed or constructed. This module must
never construct arbitrary tags or expand aliases.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.composer import Composer, MaxDepthExceededError
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import AliasEvent
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.resolver import VersionedResolver

from reconciler.model.problems import Problem

try:  # libyaml's parser, about 8x faster than ruamel's pure-Python scanner on large files
    from _ruamel_yaml import CParser as _CParser  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # pragma: no cover - depends on ruamel.yaml.clib being installed
    _CParser = None

MAX_FILE_BYTES = 5 * 1024 * 1024
"""Desired-state files are small; anything larger is a mistake or an attack."""
MAX_DEPTH = 64
"""The deepest legitimate desired-state document nests about 5 levels."""

STR = "tag:yaml.org,2002:str"
INT = "tag:yaml.org,2002:int"
BOOL = "tag:yaml.org,2002:bool"
NULL = "tag:yaml.org,2002:null"
FLOAT = "tag:yaml.org,2002:float"
_STANDARD_TAGS = frozenset({STR, INT, BOOL, NULL, FLOAT, "tag:yaml.org,2002:map", "tag:yaml.org,2002:seq"})

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


class _AliasRefusedError(MarkedYAMLError):
    """An anchor or alias was found; raised from inside the composer to stop before anything grows."""


class _GuardedComposer(Composer):
    """ruamel's composer, refusing anchors/aliases and noting non-standard tags as it goes."""

    def __init__(self, loader: Any = None) -> None:
        super().__init__(loader)
        self.odd_tags: list[tuple[Any, str]] = []

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.parser.peek_event()
        if isinstance(event, AliasEvent):
            raise _AliasRefusedError(None, None, f"YAML alias *{event.anchor} is not allowed", event.start_mark)
        if event.anchor is not None:
            raise _AliasRefusedError(None, None, f"YAML anchor &{event.anchor} is not allowed", event.start_mark)
        tag = getattr(event, "ctag", None)
        if tag is not None and str(tag) not in ("!", "") and str(tag) not in _STANDARD_TAGS:
            self.odd_tags.append((event.start_mark, str(tag)))
        return super().compose_node(parent, index)


@dataclass(slots=True)
class ParsedYaml:
    file: str
    root: Node | None
    """The document's root node; None when the file could not be parsed (see ``problems``)."""
    problems: list[Problem] = field(default_factory=list)


def position(node: Node) -> tuple[int, int]:
    """1-based (line, column) of a node."""
    mark = node.start_mark
    return mark.line + 1, mark.column + 1


def _file_problem(file: str, code: str, message: str, line: int = 0, column: int = 0) -> ParsedYaml:
    return ParsedYaml(file, None, [Problem(file, line, column, code, message)])


class _CEventLoader:
    """The minimum a ruamel ``Composer`` needs: libyaml's event parser plus ruamel's YAML 1.2 resolver.

    ruamel's own C path composes nodes in C too, which neither refuses aliases nor limits depth (deep
    nesting crashes the process), so only the *events* come from C and composing stays in Python.
    """

    def __init__(self, text: str) -> None:
        assert _CParser is not None
        self._parser = _CParser(text)
        self._resolver = VersionedResolver(version=None, loader=self)
        self.max_depth = MAX_DEPTH


def _compose(text: str) -> tuple[Node | None, list[tuple[Any, str]]]:
    """Compose one document; return the root and the non-standard tags seen (mark, tag)."""
    if _CParser is not None:
        loader = _CEventLoader(text)
        composer = _GuardedComposer(loader)
        try:
            return composer.get_single_node(), composer.odd_tags
        except (_AliasRefusedError, MaxDepthExceededError):
            raise
        except YAMLError:
            # libyaml follows YAML 1.1 and refuses some YAML 1.2 that ruamel reads, such as
            # {url: https://host} in flow style: ruamel's own parser is the reference, so ask it.
            pass
        finally:
            loader._parser.dispose()
    yaml = YAML(typ="safe", pure=True)
    yaml.Composer = _GuardedComposer
    yaml.max_depth = MAX_DEPTH
    root = yaml.compose(text)
    return root, yaml.composer.odd_tags


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
        root, odd_tags = _compose(text)
    except _AliasRefusedError as exc:
        mark = exc.problem_mark
        return _file_problem(
            file,
            "yaml-alias",
            f"{exc.problem}: anchors and aliases are refused in desired state (write values out in full)",
            mark.line + 1,
            mark.column + 1,
        )
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (0, 0)
        if isinstance(exc, MaxDepthExceededError):
            return _file_problem(file, "yaml-too-deep", f"YAML nests deeper than {MAX_DEPTH} levels", line, column)
        reason = " ".join(str(part) for part in (exc.context, exc.problem) if part)
        return _file_problem(file, "yaml-syntax", f"YAML syntax error: {reason}", line, column)
    except YAMLError as exc:
        return _file_problem(file, "yaml-syntax", f"YAML syntax error: {exc}".splitlines()[0])
    problems = [
        Problem(file, mark.line + 1, mark.column + 1, "yaml-tag", f"YAML tag {tag} is not allowed")
        for mark, tag in odd_tags
    ]
    if root is None:
        return ParsedYaml(file, None, [*problems, Problem(file, 0, 0, "file-empty", "file holds no YAML document")])
    return ParsedYaml(file, root, problems)
