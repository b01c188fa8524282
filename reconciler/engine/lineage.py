"""Traceability (the seed's 溯源): when each version entered and left each environment, and what the
registries did about it, from the Git history of the environment files joined with the audit log.

``version_events`` walks the first-parent history of ``environments/`` (one ``git log``, files read
through one ``git cat-file --batch``, each distinct file content parsed once) and reports, commit by
commit, the versions added, removed and re-pinned per environment, with the commit, its author, and the
merge request a forge's merge commit names (GitLab ``See merge request group/project!12``, GitHub
``Merge pull request #12``). ``registry_events`` reads the audit log (intents paired with outcomes).
``history`` and ``trace`` assemble both for one image or one digest. Read only.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from reconciler.engine.audit import pair_records, read_records
from reconciler.manifests.yamltree import MappingNode, ScalarNode, SequenceNode, parse_yaml
from reconciler.source.history import BlobReader, CommitRecord, commits_between, locate, resolve

Change = Literal["added", "removed", "changed"]
_GITLAB_MR = re.compile(r"See merge request (\S+?)!(\d+)")
_GITHUB_PR = re.compile(r"Merge pull request #(\d+)")
_ENV_FILE = re.compile(r"^environments/([a-z][a-z0-9]*)\.yaml$")


@dataclass(frozen=True, slots=True)
class VersionEvent:
    """A change to an environment file, for one version of one image."""

    environment: str
    image: str
    tag: str
    digest: str
    change: Change
    commit: CommitRecord
    previous_digest: str | None = None
    """For ``changed``: the digest the tag was pinned to before."""
    merge_request: str | None = None
    """``!12`` (GitLab) or ``#12`` (GitHub) when the commit is a forge's merge commit that names one."""


@dataclass(frozen=True, slots=True)
class RegistryEvent:
    """A registry write (or refusal) from the audit log."""

    time: str
    environment: str
    registry: str
    repository: str
    tag: str
    digest: str
    action: str
    result: str
    commit: str | None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class Lineage:
    versions: tuple[VersionEvent, ...] = ()
    registry: tuple[RegistryEvent, ...] = ()
    current: tuple[tuple[str, str, str, str], ...] = field(default=())
    """(environment, image, tag, digest) pinned at the head, for what was asked about."""


_H = r"[ \t]"
_LINE = re.compile(
    rf"(?:{_H}+-{_H}*\{{{_H}*tag:{_H}*(?P<q1>[\"']?)(?P<tag>[^\"',}}\s]+)(?P=q1){_H}*,{_H}*"
    rf"digest:{_H}*(?P<q2>[\"']?)(?P<digest>[a-z0-9]+:[0-9a-f]+)(?P=q2){_H}*\}}"
    rf"|{_H}+(?P<q3>[\"']?)(?P<image>[a-z0-9][a-z0-9._/-]*)(?P=q3):"
    rf"|environment:{_H}*[^\s#]+|images:|){_H}*(?:\#.*)?"
)
_PIN, _KEY, _OTHER = 0, 1, 2
_LineKind = tuple[int, str, str] | tuple[int, str] | tuple[int] | tuple[()]
_UNUSUAL: tuple[()] = ()
_MEMO_LIMIT = 200_000


def _classify(line: str) -> _LineKind:
    match = _LINE.fullmatch(line)
    if match is None:
        return _UNUSUAL
    if match.group("tag") is not None:
        return (_PIN, match.group("tag"), match.group("digest"))
    if match.group("image") is not None:
        return (_KEY, match.group("image"))
    return (_OTHER,)


def _scan(
    text: str, image: str | None = None, memo: dict[str, _LineKind] | None = None
) -> dict[tuple[str, str], str] | None:
    """Pins of a file written the usual way (one ``- {tag: ..., digest: ...}`` per line under its image;
    ``image``: that image's only), line by line, in a fraction of a parser's time; None for any other
    shape (a line it does not read), which the parser then reads. The versions of one file share most of
    their lines, so what each line says is remembered in ``memo`` across the versions of a history."""
    memo = {} if memo is None else memo
    if len(memo) > _MEMO_LIMIT:
        memo.clear()
    found: dict[tuple[str, str], str] = {}
    current: str | None = None
    wanted = False
    lines = text.split("\n")
    for line, known in zip(lines, map(memo.get, lines), strict=True):
        kind = known if known is not None else memo.setdefault(line, _classify(line))
        if not kind:
            return None
        if kind[0] == _PIN:
            if current is None:
                return None  # a pin before any image
            if wanted:
                found[(current, kind[1])] = kind[2]  # type: ignore[misc]
        elif kind[0] == _KEY:
            current = kind[1]  # type: ignore[misc]
            wanted = image is None or current == image
    return found


def _parse_pins(data: bytes) -> dict[tuple[str, str], str]:
    parsed = parse_yaml("environment file", data)
    root = parsed.root
    if not isinstance(root, MappingNode):
        return {}
    images = next((value for key, value in root.value if isinstance(key, ScalarNode) and key.value == "images"), None)
    found: dict[tuple[str, str], str] = {}
    if not isinstance(images, MappingNode):
        return found
    for key, versions in images.value:
        if not isinstance(key, ScalarNode) or not isinstance(versions, SequenceNode):
            continue
        for item in versions.value:
            if not isinstance(item, MappingNode):
                continue
            fields = {
                k.value: v.value for k, v in item.value if isinstance(k, ScalarNode) and isinstance(v, ScalarNode)
            }
            if "tag" in fields and "digest" in fields:
                found[(key.value, fields["tag"])] = fields["digest"]
    return found


def pins_of(
    data: bytes | None, image: str | None = None, memo: dict[str, _LineKind] | None = None
) -> dict[tuple[str, str], str]:
    """(image, tag) -> digest of an environment file (``image``: that image's pins only), leniently:
    entries that do not read as a pin are skipped (history shows what a file said, even where validation
    would have refused it)."""
    if not data:
        return {}
    try:
        scanned = _scan(data.decode("utf-8"), image, memo)
    except UnicodeDecodeError:
        return {}
    if scanned is not None:
        return scanned
    found = _parse_pins(data)
    return found if image is None else {key: value for key, value in found.items() if key[0] == image}


def _merge_request(raw_commit: bytes | None) -> str | None:
    text = (raw_commit or b"").decode(errors="replace")
    gitlab = _GITLAB_MR.search(text)
    if gitlab is not None:
        return f"!{gitlab.group(2)}"
    github = _GITHUB_PR.search(text)
    return f"#{github.group(1)}" if github is not None else None


def version_events(
    directory: str | Path, *, head: str = "HEAD", image: str | None = None, digest: str | None = None
) -> list[VersionEvent]:
    """Every change to the environment files up to ``head``, oldest first, filtered to ``image`` and/or
    ``digest`` when given. ``directory`` is the desired state (a work tree, a subdirectory, or a bare clone)."""
    repository, subdir = locate(directory)
    head_sha = resolve(repository, head)
    if head_sha is None:
        from reconciler.errors import SourceError  # noqa: PLC0415

        raise SourceError(f"{directory}: Git ref {head!r} does not name a commit")
    commits = commits_between(repository, None, head_sha, subdir=subdir, paths=["environments"], first_parent=True)
    prefix = f"{subdir}/" if subdir else ""
    parsed: dict[bytes, dict[tuple[str, str], str]] = {}
    lines: dict[str, _LineKind] = {}
    events: list[VersionEvent] = []

    def pins(reader: BlobReader, commit: str | None, path: str) -> dict[tuple[str, str], str]:
        data = reader.file(commit, f"{prefix}{path}") if commit is not None else None
        key = hashlib.sha256(data).digest() if data is not None else b""
        if key not in parsed:
            if len(parsed) > 64:  # only a commit's before/after are ever reused: keep memory flat
                parsed.clear()
            found = pins_of(data, image, lines)
            parsed[key] = found if digest is None else {k: v for k, v in found.items() if v == digest}
        return parsed[key]

    with BlobReader(repository) as reader:
        for commit in commits:
            request: str | None = None
            for path in commit.paths:
                match = _ENV_FILE.match(path)
                if match is None:
                    continue
                before, after = pins(reader, commit.first_parent, path), pins(reader, commit.sha, path)
                changes = _compare(match.group(1), before, after, commit)
                if changes and request is None:
                    raw = reader.object(commit.sha)
                    request = _merge_request(raw[1] if raw else None) or ""
                events += [_with_request(event, request) for event in changes]
    return events


def _compare(
    env: str, before: dict[tuple[str, str], str], after: dict[tuple[str, str], str], commit: CommitRecord
) -> list[VersionEvent]:
    """The pins that differ between two versions of an environment file (both already narrowed to what was
    asked about), as events."""
    events = []
    differing = {key for key, _value in before.items() ^ after.items()}  # set operations in C: few differ
    for key in sorted(differing):
        old, new = before.get(key), after.get(key)
        if old is None:
            events.append(VersionEvent(env, key[0], key[1], after[key], "added", commit))
        elif new is None:
            events.append(VersionEvent(env, key[0], key[1], old, "removed", commit))
        else:
            events.append(VersionEvent(env, key[0], key[1], new, "changed", commit, previous_digest=old))
    return events


def _with_request(event: VersionEvent, request: str | None) -> VersionEvent:
    if not request:
        return event
    return VersionEvent(
        event.environment, event.image, event.tag, event.digest, event.change, event.commit,
        event.previous_digest, request,
    )  # fmt: skip


def registry_events(audit_log: Path, *, image: str | None = None, digest: str | None = None) -> list[RegistryEvent]:
    """The audit log's records (one per action, intents paired with outcomes) for ``image`` (its
    repositories end in ``/<image>``) and/or ``digest``; [] when the log does not exist."""
    if not audit_log.exists():
        return []
    found = []
    for record in pair_records(read_records(audit_log)):
        repository = str(record.get("repository", ""))
        if image is not None and not repository.endswith(f"/{image}"):
            continue
        if digest is not None and record.get("digest") != digest:
            continue
        found.append(
            RegistryEvent(
                time=str(record.get("time", "")),
                environment=str(record.get("environment", "")),
                registry=str(record.get("registry", "")),
                repository=repository,
                tag=str(record.get("tag", "")),
                digest=str(record.get("digest", "")),
                action=str(record.get("action", "")),
                result=str(record.get("result", "")),
                commit=str(record["commit"]) if record.get("commit") else None,
                error=str(record["error"]) if record.get("error") else None,
            )
        )
    return found


def current_pins(
    pinned: Iterable[tuple[str, str, str, str]], *, image: str | None = None, digest: str | None = None
) -> tuple[tuple[str, str, str, str], ...]:
    """The (environment, image, tag, digest) of the head matching ``image`` / ``digest``."""
    return tuple(pin for pin in pinned if (image is None or pin[1] == image) and (digest is None or pin[3] == digest))
