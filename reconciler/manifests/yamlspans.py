"""YAML text with offsets: where every node starts and ends, and splicing the text at those offsets.

The comment-preserving edits (``reconciler.manifests.edit``) change a file by replacing exact character
ranges, never by dumping a tree, so they need what this module gives: a node tree from ruamel.yaml's
round-trip parser (``YAML(typ="rt")``) in which every node carries its start and end offset in the text,
its flow style and its quoting, plus line arithmetic that treats ``\\n``, ``\\r\\n`` and ``\\r`` alike.

``compose_spans`` refuses anchors, aliases and several documents (``SpanError``), as the loader does.
Nothing here constructs Python objects from YAML tags, knows what an environment file holds, reads or
writes a file.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
)

from reconciler.manifests.yamltree import c_events

__all__ = [
    "Edit",
    "Span",
    "SpanError",
    "apply_edits",
    "column",
    "compose_spans",
    "line_end",
    "line_start",
    "next_line",
    "previous_line",
    "splice",
    "where",
]

Edit = tuple[int, int, str]
"""(start, end, replacement) on the text: ``start == end`` inserts."""

_BREAK = re.compile(r"[\r\n]")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


class SpanError(ValueError):
    """The text is not YAML this module will read; ``offset`` points at the problem when known."""

    def __init__(self, message: str, offset: int | None = None) -> None:
        super().__init__(message)
        self.offset = offset


@dataclass(slots=True, eq=False)
class Span:
    """One YAML node and the characters it covers."""

    kind: str
    """``scalar``, ``seq`` or ``map``."""
    start: int
    end: int
    """Offset after the node's last character (block collections: after their last child, so a
    trailing comment is never inside)."""
    flow: bool = False
    style: str | None = None
    """Scalar quoting: ``"``, ``'``, None (plain), ``|`` or ``>``."""
    value: str = ""
    children: list[Span] = field(default_factory=list)
    """Sequence items, or mapping keys and values alternating."""

    def pairs(self) -> list[tuple[Span, Span]]:
        return list(zip(self.children[0::2], self.children[1::2], strict=True))

    def get(self, key: str) -> Span | None:
        """The value of scalar key ``key`` in a mapping."""
        return next((value for k, value in self.pairs() if k.kind == "scalar" and k.value == key), None)


def compose_spans(text: str) -> Span:
    """The root node of the single document in ``text``: from libyaml's parser when it reads the text
    (about 30x faster than ruamel's pure-Python one on a 10,000-pin file), else from ruamel's round-trip
    parser (the reference: libyaml follows YAML 1.1 and refuses a few YAML 1.2 forms)."""
    if c_events is not None:
        try:
            return _compose(text, c_events(text), fast=True)
        except (SpanError, _EmptyScalarError):  # libyaml refused (YAML 1.1), or a form it places differently
            pass
    return _compose(text, YAML(typ="rt").parse(text))


class _EmptyScalarError(Exception):
    """libyaml places an empty plain scalar (``images:`` with no value) at the end of its key's line, ruamel
    at the start of the next: for such (small, rare) files the round-trip parser decides, as before."""


def _compose(text: str, events: Iterable[Any], *, fast: bool = False) -> Span:
    stack: list[Span] = []
    root: Span | None = None
    documents = 0
    try:
        for event in events:
            if isinstance(event, AliasEvent) or getattr(event, "anchor", None):
                raise SpanError("anchors and aliases are refused", event.start_mark.index)
            if isinstance(event, DocumentStartEvent):
                documents += 1
                if documents > 1:
                    raise SpanError("holds more than one YAML document", event.start_mark.index)
                continue
            if isinstance(event, (MappingEndEvent, SequenceEndEvent)):
                done = stack.pop()
                done.end = event.end_mark.index if done.flow else max(child.end for child in done.children)
                continue
            start = event.start_mark.index
            if isinstance(event, ScalarEvent):
                style = event.style or None  # libyaml says '' for plain, ruamel None
                if fast and style is None and not event.value:
                    raise _EmptyScalarError
                node = Span("scalar", start, event.end_mark.index, style=style, value=str(event.value))
            elif isinstance(event, SequenceStartEvent):
                node = Span("seq", start, start, flow=bool(event.flow_style))
            elif isinstance(event, MappingStartEvent):
                node = Span("map", start, start, flow=bool(event.flow_style))
            else:
                continue
            if stack:
                stack[-1].children.append(node)
            else:
                root = node
            if node.kind != "scalar":
                stack.append(node)
    except YAMLError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SpanError(f"not valid YAML ({reason})") from exc
    if root is None:
        raise SpanError("holds no YAML document")
    return root


def where(text: str, offset: int) -> str:
    """``line:column`` (1-based) of an offset, for messages."""
    line = len(_LINE_BREAK.findall(text, 0, offset)) + 1
    return f"{line}:{column(text, offset) + 1}"


def line_start(text: str, offset: int) -> int:
    """Offset of the first character of the line that holds ``offset``."""
    return max(text.rfind("\n", 0, offset), text.rfind("\r", 0, offset)) + 1


def line_end(text: str, offset: int) -> int:
    """Offset of the line break ending the line that holds ``offset`` (or the end of the text)."""
    match = _BREAK.search(text, offset)
    return match.start() if match else len(text)


def next_line(text: str, offset: int) -> int:
    """Offset of the first character of the line after the one that holds ``offset``."""
    end = line_end(text, offset)
    if end == len(text):
        return end
    return end + (2 if text.startswith("\r\n", end) else 1)


def previous_line(text: str, start: int) -> int:
    """Offset of the first character of the line before the line that starts at ``start`` (> 0)."""
    return line_start(text, start - (2 if text.startswith("\r\n", start - 2) else 1))


def column(text: str, offset: int) -> int:
    """0-based column of an offset."""
    return offset - line_start(text, offset)


def splice(text: str, start: int, end: int, replacements: Sequence[Edit]) -> str:
    """``text[start:end]`` with the replacements that lie inside it applied."""
    out: list[str] = []
    position = start
    for rep_start, rep_end, replacement in sorted(replacements):
        if rep_start >= start and rep_end <= end:
            out.append(text[position:rep_start])
            out.append(replacement)
            position = rep_end
    out.append(text[position:end])
    return "".join(out)


def apply_edits(text: str, edits: Sequence[Edit]) -> str:
    """``text`` with every edit applied; edits may touch but never overlap (``SpanError``)."""
    ordered = sorted(edits, key=lambda edit: (edit[0], edit[1]))
    for (_, first_end, _), (second_start, _, _) in itertools.pairwise(ordered):
        if first_end > second_start:
            raise SpanError("overlapping edits", second_start)
    for start, end, replacement in reversed(ordered):
        text = text[:start] + replacement + text[end:]
    return text
