"""The layout's ``index.json`` as a value: named entries (archived images) and their annotations.

An entry is a descriptor of a top manifest (an image manifest or an index) in ``index.json``'s
``manifests`` list. Its name is the ``org.opencontainers.image.ref.name`` annotation, written as
``<repository>:<tag>`` (``p/payments/api:20261127_01``), which skopeo addresses as
``oci:DIR:p/payments/api:20261127_01``. Reconciler adds provenance annotations (``io.reconciler.*``):
when the image was archived, from which registry and repository, and the desired-state commit.

Parsing keeps everything it does not understand (other annotations, unknown fields, entries written by
other tools, entries without a name) and writes it back unchanged. No I/O here: bytes in, values out.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from reconciler.model.digest import Digest
from reconciler.model.manifest import (
    OCI_INDEX,
    Descriptor,
    InvalidManifestError,
    parse_descriptor,  # the project's one descriptor parser
)

REF_NAME = "org.opencontainers.image.ref.name"
"""The OCI annotation naming an entry of an image layout (skopeo's ``oci:DIR:NAME``)."""
ARCHIVED_AT = "io.reconciler.archived-at"
"""When the entry was written, RFC 3339 UTC (``2026-12-01T04:35:28Z``)."""
SOURCE_REGISTRY = "io.reconciler.source.registry"
"""The registry the image was archived from (its name in reconciler.yaml)."""
SOURCE_REPOSITORY = "io.reconciler.source.repository"
"""The repository the image was archived from (``p/payments/api``)."""
SOURCE_COMMIT = "io.reconciler.commit"
"""The desired-state commit whose reconcile archived the image."""

LAYOUT_VERSION = "1.0.0"
MAX_INDEX_BYTES = 64 * 1024 * 1024
"""``index.json`` larger than this is refused (about 100,000 entries)."""

_COMPONENT = r"[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*"
_REF_NAME = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
"""The OCI image-layout grammar of ``ref.name`` (what skopeo accepts after ``oci:DIR:``)."""
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


def is_valid_entry_name(name: str) -> bool:
    return _REF_NAME.fullmatch(name) is not None


def entry_name(repository: str, tag: str) -> str:
    """``<repository>:<tag>``, checked against the OCI ``ref.name`` grammar (``ValueError`` otherwise)."""
    if _TAG.fullmatch(tag) is None:
        raise ValueError(f"not a tag: {tag!r}")
    name = f"{repository}:{tag}"
    if not is_valid_entry_name(name):
        raise ValueError(f"{name!r} is not a valid OCI layout reference name")
    return name


def split_entry_name(name: str) -> tuple[str, str | None]:
    """``("p/payments/api", "20261127_01")`` for ``p/payments/api:20261127_01``; ``(name, None)`` for a
    name without a tag (``localhost:5000/app`` has a port, not a tag)."""
    repository, colon, tag = name.rpartition(":")
    if colon and repository and _TAG.fullmatch(tag):
        return repository, tag
    return name, None


def utc_timestamp(when: datetime.datetime | None = None) -> str:
    moment = (when or datetime.datetime.now(datetime.UTC)).astimezone(datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def provenance(
    *,
    source_registry: str,
    source_repository: str,
    commit: str | None = None,
    archived_at: datetime.datetime | None = None,
) -> dict[str, str]:
    """The provenance annotations of an archived image, for ``OciLayout.add_entry(annotations=...)``.
    Without ``archived_at``, ``add_entry`` stamps a new entry with the current time and keeps the stamp of
    an entry that already names the same image (retention counts from the first archiving)."""
    annotations = {SOURCE_REGISTRY: source_registry, SOURCE_REPOSITORY: source_repository}
    if archived_at is not None:
        annotations[ARCHIVED_AT] = utc_timestamp(archived_at)
    if commit:
        annotations[SOURCE_COMMIT] = commit
    return annotations


@dataclass(frozen=True, slots=True)
class ArchiveEntry:
    """One entry of ``index.json``: a named top manifest. ``document`` is the descriptor object exactly
    as the index holds it (fields reconciler does not know survive a rewrite)."""

    descriptor: Descriptor
    document: Mapping[str, Any] = field(repr=False, compare=False)

    @classmethod
    def create(cls, name: str, descriptor: Descriptor, annotations: Mapping[str, str]) -> ArchiveEntry:
        merged = {**annotations, REF_NAME: name}
        named = replace(descriptor, annotations=merged, platform=None)
        return cls(descriptor=named, document=named.to_json())

    @property
    def name(self) -> str | None:
        return self.descriptor.annotations.get(REF_NAME)

    @property
    def label(self) -> str:
        """The name, or ``@<digest>`` for an entry without one (written by another tool)."""
        return self.name or f"@{self.digest}"

    @property
    def digest(self) -> Digest:
        return self.descriptor.digest

    @property
    def media_type(self) -> str:
        return self.descriptor.media_type

    @property
    def annotations(self) -> Mapping[str, str]:
        return self.descriptor.annotations

    @property
    def repository(self) -> str | None:
        return split_entry_name(self.name)[0] if self.name else None

    @property
    def tag(self) -> str | None:
        return split_entry_name(self.name)[1] if self.name else None

    @property
    def archived_at(self) -> datetime.datetime | None:
        text = self.annotations.get(ARCHIVED_AT)
        if not text:
            return None
        try:
            return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None


@dataclass(frozen=True, slots=True)
class LayoutIndex:
    """``index.json``: its entries, in file order, and every other top-level field as it was."""

    entries: tuple[ArchiveEntry, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def parse(cls, raw: bytes) -> LayoutIndex:
        """``ValueError`` naming the first thing wrong when ``raw`` is not an OCI image index."""
        try:
            document = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"not JSON: {exc}") from exc
        if not isinstance(document, dict):
            raise ValueError("not a JSON object")
        if document.get("schemaVersion") != 2:
            raise ValueError(f"schemaVersion must be 2, not {document.get('schemaVersion')!r}")
        manifests = document.get("manifests")
        if not isinstance(manifests, list):
            raise ValueError("no 'manifests' list")
        entries = []
        for position, item in enumerate(manifests):
            try:
                descriptor = parse_descriptor(item, f"manifests[{position}]")
            except InvalidManifestError as exc:
                raise ValueError(str(exc)) from exc
            entries.append(ArchiveEntry(descriptor=descriptor, document=item))
        extra = {key: value for key, value in document.items() if key != "manifests"}
        return cls(entries=tuple(entries), extra=extra)

    def to_bytes(self) -> bytes:
        document: dict[str, Any] = {"schemaVersion": 2, "mediaType": OCI_INDEX, **self.extra}
        document["manifests"] = [dict(entry.document) for entry in self.entries]
        return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"

    def find(self, name: str) -> ArchiveEntry | None:
        """The first entry named ``name`` (skopeo also takes the first)."""
        return next((entry for entry in self.entries if entry.name == name), None)

    def named(self) -> list[ArchiveEntry]:
        return [entry for entry in self.entries if entry.name is not None]

    def tags(self, repository: str) -> list[str]:
        return sorted({entry.tag for entry in self.entries if entry.tag and entry.repository == repository})

    def with_entry(self, entry: ArchiveEntry) -> LayoutIndex:
        """This index with ``entry`` in place of every entry of the same name (appended when new)."""
        kept: list[ArchiveEntry] = []
        placed = False
        for existing in self.entries:
            if existing.name is not None and existing.name == entry.name:
                if not placed:
                    kept.append(entry)
                    placed = True
                continue
            kept.append(existing)
        if not placed:
            kept.append(entry)
        return LayoutIndex(entries=tuple(kept), extra=self.extra)

    def without(self, names: Iterable[str]) -> tuple[LayoutIndex, list[str]]:
        """This index without the entries named in ``names``, and the names that were there."""
        unwanted = set(names)
        removed = [entry.name for entry in self.entries if entry.name in unwanted]
        kept = tuple(entry for entry in self.entries if entry.name not in unwanted)
        return LayoutIndex(entries=kept, extra=self.extra), [name for name in removed if name is not None]
