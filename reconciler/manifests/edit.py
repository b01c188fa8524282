"""Comment-preserving edits of ``environments/<env>.yaml``: pin a version, drop old ones (``promote``).

A promotion changes one image's list of versions and nothing else, so every other byte of the file must
stay as the person wrote it: comments, key order, quoting, flow or block style, indentation, CRLF line
endings, a missing final newline. ruamel.yaml's round-trip *dumper* does not keep them (it re-indents
sequences, moves comment columns, rewrites ``{tag:  "x" }`` spacing, turns CRLF into LF and adds a final
newline), so ruamel is only used to READ: its round-trip parser (``YAML(typ="rt")``, through
``reconciler.manifests.yamlspans``) gives every node's start and end offset, flow style and quoting, and
the edit splices the text at those offsets, whole lines at a time for block style. The result is parsed
again and must hold exactly the expected pins, or the edit is refused (nothing half-edited comes out).

The rules (docs/promotion.md):

- a new version is appended at the END of its image's list (lists read oldest -> newest); with
  ``keep_previous=N``, the versions before the newest N previous ones are then removed (a comment on the
  same line as (or inside) a removed entry goes with it; no other comment is ever removed);
- a new entry copies the text of its nearest sibling (the image's last entry, else the neighbouring
  image's), so flow or block style, key order, spacing and quoting follow the file; with no entry in the
  whole file it is ``- {tag: "T", digest: "D"}`` (tags quoted: YAML 1.1 tools read 20261127_01 as a number);
- a new image goes before the first existing image whose name sorts after it (else after the last), with
  the full-line comments directly above that image staying attached to it; ``images: {}`` becomes a block
  mapping; removing an image's last version removes the image, the last image leaves ``images: {}``.

This module never writes files (``reconciler.promote.files`` does, atomically), never reads the config,
and never talks to Git or a registry.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from reconciler.errors import ReconcilerError
from reconciler.manifests.config import IMAGE_NAME
from reconciler.manifests.yamlspans import (
    Edit,
    Span,
    SpanError,
    apply_edits,
    column,
    compose_spans,
    line_end,
    line_start,
    next_line,
    previous_line,
    splice,
    where,
)
from reconciler.model.digest import is_valid_digest

__all__ = ["EnvFileEdit", "EnvFileEditError", "Pin", "add_version", "read_pins", "remove_versions"]

_PLAIN_SAFE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._:+=-]*$")
_PLAIN_SPECIAL = frozenset({"null", "true", "false", "yes", "no", "on", "off", "y", "n", "~"})
_NULLS = frozenset({"", "~", "null", "Null", "NULL"})


class EnvFileEditError(ReconcilerError):
    """The environment file cannot be edited safely: not UTF-8 YAML, an unexpected shape, or a pin that
    contradicts the requested one. The message names the file and, where known, the line."""


@dataclass(frozen=True, slots=True)
class Pin:
    """One version of an image: tag AND digest."""

    tag: str
    digest: str


@dataclass(frozen=True, slots=True)
class EnvFileEdit:
    """The edited file (not written) and what changed in it."""

    data: bytes
    image: str
    added: Pin | None
    removed: tuple[Pin, ...] = ()

    @property
    def changed(self) -> bool:
        return self.added is not None or bool(self.removed)


# -- the environment file as located nodes ----------------------------------------------------------


@dataclass(slots=True)
class _Image:
    name: str
    key: Span
    value: Span
    items: list[Span]
    pins: list[Pin]


@dataclass(slots=True)
class _Document:
    text: str
    file: str
    images_key: Span
    images_value: Span
    images: list[_Image]

    def find(self, name: str) -> _Image | None:
        return next((image for image in self.images if image.name == name), None)

    def pins(self) -> dict[str, list[Pin]]:
        return {image.name: list(image.pins) for image in self.images}


def _fail(doc_text: str, file: str, node: Span, message: str) -> EnvFileEditError:
    return EnvFileEditError(f"{file}:{where(doc_text, node.start)}: {message}")


def _read(text: str, file: str) -> _Document:
    try:
        root = compose_spans(text)
    except SpanError as exc:
        at = f":{where(text, exc.offset)}" if exc.offset is not None else ""
        raise EnvFileEditError(f"{file}{at}: {exc}; run 'reconciler validate'") from exc
    if root.kind != "map" or root.flow:
        raise _fail(text, file, root, "the file must be a block mapping with 'environment' and 'images'")
    found = [(key, value) for key, value in root.pairs() if key.kind == "scalar" and key.value == "images"]
    if len(found) != 1:
        raise _fail(text, file, root, "the file must have exactly one 'images' field")
    images_key, images_value = found[0]
    images: list[_Image] = []
    if images_value.kind == "scalar" and images_value.value in _NULLS and images_value.style is None:
        pass  # `images:` with no value: an empty environment
    elif images_value.kind != "map":
        raise _fail(text, file, images_value, "'images' must be a mapping of image name -> versions")
    elif images_value.flow and images_value.children:
        raise _fail(text, file, images_value, "'images' is written in flow style {...}; write it as a block mapping")
    else:
        for key, value in images_value.pairs():
            images.append(_image(text, file, key, value))
    names = [image.name for image in images]
    for image in images:
        if names.count(image.name) > 1:
            raise _fail(text, file, image.key, f"image {image.name!r} is listed twice")
    return _Document(text, file, images_key, images_value, images)


def _image(text: str, file: str, key: Span, value: Span) -> _Image:
    if key.kind != "scalar":
        raise _fail(text, file, key, "image names must be plain strings")
    if value.kind != "seq" or not value.children:
        raise _fail(text, file, value, f"image {key.value!r} must be a non-empty list of {{tag, digest}}")
    pins: list[Pin] = []
    for item in value.children:
        fields = {k.value: v for k, v in item.pairs() if k.kind == "scalar"} if item.kind == "map" else {}
        tag, digest = fields.get("tag"), fields.get("digest")
        if len(item.children) != 4 or tag is None or digest is None or tag.kind != "scalar" or digest.kind != "scalar":
            raise _fail(text, file, item, f"each version of {key.value!r} must be exactly {{tag, digest}}")
        pins.append(Pin(tag.value, digest.value))
    return _Image(key.value, key, value, list(value.children), pins)


def _field(item: Span, name: str) -> Span:
    value = item.get(name)
    assert value is not None  # checked by _image
    return value


def _dash(text: str, item: Span) -> int:
    """Offset of the ``-`` that introduces a block sequence item."""
    index = item.start - 1
    while index >= 0 and text[index] in " \t":
        index -= 1
    if index >= 0 and text[index] == "-":
        return index
    start = line_start(text, item.start)
    while start > 0:  # the item starts on a later line than its dash ("-  # note" then the mapping)
        previous = previous_line(text, start)
        line = text[previous : line_end(text, previous)]
        stripped = line.strip()
        if stripped.startswith("-") and (not stripped[1:].strip() or stripped[1:].lstrip().startswith("#")):
            return previous + line.index("-")
        if stripped and not stripped.startswith("#"):
            break
        start = previous
    raise EnvFileEditError(f"unexpected layout near {where(text, item.start)}: no '-' before the list entry")


def _render(value: str, style: str | None) -> str:
    """``value`` as a YAML scalar quoted like a sibling was; plain only where plain reads back the same."""
    if style == "'":
        return "'" + value.replace("'", "''") + "'"
    if style is None and _PLAIN_SAFE.match(value) and value.lower() not in _PLAIN_SPECIAL:
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


# -- rendering new entries from their siblings ------------------------------------------------------


def _value_replacements(item: Span, pin: Pin) -> list[Edit]:
    tag, digest = _field(item, "tag"), _field(item, "digest")
    return [
        (tag.start, tag.end, _render(pin.tag, tag.style)),
        (digest.start, digest.end, _render(pin.digest, digest.style)),
    ]


def _canonical(pin: Pin, tag_style: str | None = '"', digest_style: str | None = '"') -> str:
    return f"{{tag: {_render(pin.tag, tag_style)}, digest: {_render(pin.digest, digest_style)}}}"


def _inline_entry(text: str, item: Span, pin: Pin) -> str:
    """A flow-sequence entry like ``item`` (one line, comments never copied)."""
    original = text[item.start : item.end]
    if item.flow and "\n" not in original and "\r" not in original and "#" not in original:
        return splice(text, item.start, item.end, _value_replacements(item, pin))
    tag, digest = _field(item, "tag"), _field(item, "digest")
    return _canonical(pin, tag.style, digest.style)


def _block_entry(text: str, item: Span, pin: Pin, newline: str) -> str:
    """The lines of a block-sequence entry like ``item``, indentation included, without its comments
    and without a final line break."""
    dash = _dash(text, item)
    replacements = _value_replacements(item, pin)
    ends = [dash + 1, item.end]
    stack = [item]
    while stack:
        node = stack.pop()
        if node.kind == "scalar":
            ends.append(node.end)
        else:
            stack.extend(node.children)
            if node.flow:
                ends.append(node.start + 1)
    lines: list[str] = []
    start = line_start(text, dash)
    while start < item.end:
        end = min(line_end(text, start), item.end)
        content = max((e for e in ends if start < e <= end), default=None)
        if content is not None:  # else a blank or comment-only line inside the entry: dropped
            tail = text[content:end]
            cut = tail.find("#")
            tail = (tail[:cut] if cut >= 0 else tail).rstrip()
            lines.append(splice(text, start, content, replacements) + tail)
        start = next_line(text, start)
    return newline.join(lines)


def _neighbour(doc: _Document, index: int) -> _Image:
    """The image a new image at ``index`` copies its style from: the one before it, else the first."""
    return doc.images[index - 1] if index > 0 else doc.images[0]


# -- edits ------------------------------------------------------------------------------------------


def _sequence_edits(doc: _Document, image: _Image, keep: Sequence[int], append: Pin | None, newline: str) -> list[Edit]:
    text, seq = doc.text, image.value
    if not keep and append is None:
        return _remove_image_edits(doc, image)
    if seq.flow:
        bounds = [seq.start + 1, *(i for child in seq.children for i in (child.start, child.end)), seq.end - 1]
        if any("#" in text[start:end] for start, end in zip(bounds[0::2], bounds[1::2], strict=True)):
            raise _fail(text, doc.file, seq, f"the flow list of {image.name!r} holds comments; write it in block style")
        entries = [text[seq.children[i].start : seq.children[i].end] for i in keep]
        if append is not None:
            entries.append(_inline_entry(text, image.items[-1], append))
        separators = {text[a.end : b.start] for a, b in zip(seq.children, seq.children[1:], strict=False)}
        separator = separators.pop() if len(separators) == 1 else ", "
        if "\n" in separator or "\r" in separator:
            separator = ", "
        return [(seq.start, seq.end, "[" + separator.join(entries) + "]")]
    edits: list[Edit] = []
    for index, item in enumerate(image.items):
        if index not in keep:
            edits.append((line_start(text, _dash(text, item)), next_line(text, item.end), ""))
    if append is not None:
        entry = _block_entry(text, image.items[-1], append, newline)
        edits.append((next_line(text, seq.end), next_line(text, seq.end), entry + newline))
    return edits


def _colon_after(text: str, key: Span) -> int:
    colon = text.find(":", key.end)
    if colon < 0:
        raise EnvFileEditError("internal error: no ':' after a mapping key; please report this file")
    return colon


def _remove_image_edits(doc: _Document, image: _Image) -> list[Edit]:
    text = doc.text
    edits: list[Edit] = [(line_start(text, image.key.start), next_line(text, image.value.end), "")]
    if len(doc.images) == 1:  # an empty environment is written `images: {}`
        colon = _colon_after(text, doc.images_key) + 1
        edits.append((colon, colon, " {}"))
    return edits


def _insertion_point(doc: _Document, name: str) -> tuple[int, int]:
    """(offset, index in ``doc.images``) where a new image block goes."""
    text = doc.text
    following = next((i for i, image in enumerate(doc.images) if image.name > name), None)
    if following is None:
        return next_line(text, doc.images[-1].value.end), len(doc.images)
    key = doc.images[following].key
    key_column = column(text, key.start)
    start = line_start(text, key.start)
    while start > 0:  # comment lines directly above the next image (not indented deeper) stay with it
        previous = previous_line(text, start)
        line = text[previous : line_end(text, previous)]
        if not line.lstrip().startswith("#") or len(line) - len(line.lstrip()) > key_column:
            break
        start = previous
    return start, following


def _new_image_edits(doc: _Document, name: str, pin: Pin, newline: str) -> list[Edit]:
    text = doc.text
    if not doc.images:
        indent = " " * (column(text, doc.images_key.start) + 2)
        block = f"{indent}{name}:{newline}{indent}  - {_canonical(pin)}{newline}"
        edits: list[Edit] = [(next_line(text, doc.images_key.end), next_line(text, doc.images_key.end), block)]
        value = doc.images_value
        if value.end > value.start:  # `images: {}` or `images: ~`: the value goes, a comment stays
            edits.append((_colon_after(text, doc.images_key) + 1, value.end, ""))
        return edits
    offset, index = _insertion_point(doc, name)
    cousin = _neighbour(doc, index)
    item = cousin.items[-1]
    indent = " " * column(text, cousin.key.start)
    key = _render(name, cousin.key.style) if cousin.key.style in ('"', "'") else name
    if cousin.value.flow:
        block = f"{indent}{key}: [{_inline_entry(text, item, pin)}]{newline}"
    else:
        block = f"{indent}{key}:{newline}{_block_entry(text, item, pin, newline)}{newline}"
    return [(offset, offset, block)]


# -- bytes in, bytes out ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Source:
    text: str
    """Decoded, BOM removed, a final line break added when the file had none (removed again on output)."""
    bom: bool
    added_break: bool
    newline: str

    @classmethod
    def decode(cls, data: bytes, file: str) -> _Source:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise EnvFileEditError(f"{file}: not UTF-8 (byte {exc.start})") from exc
        bom = text.startswith("\ufeff")
        text = text.removeprefix("\ufeff")
        if not text.strip():
            raise EnvFileEditError(f"{file}: is empty")
        first = re.search(r"\r\n|\r|\n", text)
        newline = first.group() if first else "\n"
        added = not text.endswith(("\n", "\r"))
        return cls(text + newline if added else text, bom, added, newline)

    def encode(self, text: str) -> bytes:
        if self.added_break and text.endswith(self.newline):
            text = text[: -len(self.newline)]
        return (("\ufeff" if self.bom else "") + text).encode("utf-8")


def _finish(source: _Source, doc: _Document, edits: list[Edit], expected: dict[str, list[Pin]]) -> bytes:
    try:
        text = apply_edits(doc.text, edits)
    except SpanError as exc:
        raise EnvFileEditError(f"{doc.file}: internal error: {exc}; please report") from exc
    if _read(text, doc.file).pins() != expected:
        raise EnvFileEditError(f"{doc.file}: internal error: the edit would not hold the expected pins; please report")
    return source.encode(text)


def read_pins(data: bytes, *, file: str = "environment file") -> dict[str, tuple[Pin, ...]]:
    """Image -> its pins in file order, as the edit functions see them."""
    doc = _read(_Source.decode(data, file).text, file)
    return {name: tuple(pins) for name, pins in doc.pins().items()}


def add_version(
    data: bytes,
    image: str,
    tag: str,
    digest: str,
    *,
    keep_previous: int | None = None,
    file: str = "environment file",
) -> EnvFileEdit:
    """Append ``{tag, digest}`` to ``image`` (creating it), then keep only the newest ``keep_previous``
    previous versions (None: keep all). Already pinned with that digest: returned unchanged. Pinned with
    another digest: ``EnvFileEditError`` (a tag names one image)."""
    if keep_previous is not None and keep_previous < 0:
        raise ValueError("keep_previous must be >= 0")
    if not IMAGE_NAME.match(image):
        raise EnvFileEditError(f"image name {image!r} must be lowercase OCI path components (payments/api)")
    if not tag or any(char.isspace() or not char.isprintable() for char in tag):
        raise EnvFileEditError(f"tag {tag!r} must be a non-empty word")
    if not is_valid_digest(digest):
        raise EnvFileEditError(f"digest {digest!r} must be sha256:<64 lowercase hex> or sha512:<128 lowercase hex>")
    source = _Source.decode(data, file)
    doc = _read(source.text, file)
    pin = Pin(tag, digest)
    expected = doc.pins()
    existing = doc.find(image)
    if existing is None:
        expected[image] = [pin]
        return EnvFileEdit(
            _finish(source, doc, _new_image_edits(doc, image, pin, source.newline), expected), image, pin
        )
    for old in existing.pins:
        if old.tag == tag and old.digest == digest:
            return EnvFileEdit(data, image, None)
        if old.tag == tag:
            raise _fail(
                doc.text,
                file,
                existing.items[existing.pins.index(old)],
                f"{image}:{tag} is already pinned to {old.digest}; a tag names one image, so it cannot now "
                f"name {digest} (build a new tag)",
            )
    drop = max(0, len(existing.pins) - keep_previous) if keep_previous is not None else 0
    keep = list(range(drop, len(existing.pins)))
    expected[image] = [*existing.pins[drop:], pin]
    edits = _sequence_edits(doc, existing, keep, pin, source.newline)
    return EnvFileEdit(_finish(source, doc, edits, expected), image, pin, tuple(existing.pins[:drop]))


def remove_versions(data: bytes, image: str, tags: Collection[str], *, file: str = "environment file") -> EnvFileEdit:
    """Remove the versions of ``image`` tagged ``tags``; removing every version removes the image."""
    source = _Source.decode(data, file)
    doc = _read(source.text, file)
    existing = doc.find(image)
    if existing is None:
        raise EnvFileEditError(f"{file}: image {image!r} is not pinned here")
    unknown = sorted(set(tags) - {pin.tag for pin in existing.pins})
    if unknown:
        raise EnvFileEditError(f"{file}: {image} pins no version tagged {', '.join(unknown)}")
    keep = [index for index, pin in enumerate(existing.pins) if pin.tag not in tags]
    removed = tuple(pin for pin in existing.pins if pin.tag in tags)
    if not removed:
        return EnvFileEdit(data, image, None)
    expected = doc.pins()
    if keep:
        expected[image] = [existing.pins[index] for index in keep]
    else:
        del expected[image]
    edits = _sequence_edits(doc, existing, keep, None, source.newline)
    return EnvFileEdit(_finish(source, doc, edits, expected), image, None, removed)
