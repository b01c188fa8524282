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


_LINE = re.compile(
    r"""^(?:"""
    r"""(?P<pin>\s+-\s*\{\s*tag:\s*(?P<q1>["']?)(?P<tag>[^"',}\s]+)(?P=q1)\s*,\s*"""
    r"""digest:\s*(?P<q2>["']?)(?P<digest>[a-z0-9]+:[0-9a-f]+)(?P=q2)\s*\})"""
    r"""|(?P<key>\s+(?P<q3>["']?)(?P<image>[a-z0-9][a-z0-9._/-]*)(?P=q3):)"""
    r"""|environment:\s*\S+|images:|[ \t]*"""
    r""")[ \t]*(?:\#[^\n]*)?$""",
    re.MULTILINE,
)


def _scan(text: str) -> dict[tuple[str, str], str] | None:
    """Pins of a file written the usual way (one ``- {tag: ..., digest: ...}`` per line under its image),
    read by one regular expression over the text in a fraction of a parser's time; None for any other
    shape (a line the expression does not cover), which the parser then reads."""
    found: dict[tuple[str, str], str] = {}
    image: str | None = None
    lines = 0
    for match in _LINE.finditer(text):
        if match.start() == len(text):
            break  # the empty "line" after a final newline
        lines += 1
        if match.group("pin") is not None:
            if image is None:
                return None
            found[(image, match.group("tag"))] = match.group("digest")
        elif match.group("key") is not None:
            image = match.group("image")
    expected = text.count("\n") + (0 if text.endswith("\n") else 1)
    return found if lines >= expected else None


def pins_of(data: bytes | None) -> dict[tuple[str, str], str]:
    """(image, tag) -> digest of an environment file, leniently: entries that do not read as a pin are
    skipped (history shows what a file said, even where validation would have refused it)."""
    if not data:
        return {}
    try:
        scanned = _scan(data.decode("utf-8"))
    except UnicodeDecodeError:
        return {}
    if scanned is not None:
        return scanned
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
    events: list[VersionEvent] = []

    def pins(reader: BlobReader, commit: str | None, path: str) -> dict[tuple[str, str], str]:
        data = reader.file(commit, f"{prefix}{path}") if commit is not None else None
        key = hashlib.sha256(data).digest() if data is not None else b""
        if key not in parsed:
            if len(parsed) > 64:  # only a commit's before/after are ever reused: keep memory flat
                parsed.clear()
            found = pins_of(data)
            parsed[key] = {
                k: v for k, v in found.items() if (image is None or k[0] == image) and (digest is None or v == digest)
            }
        return parsed[key]

    with BlobReader(repository) as reader:
        for commit in commits:
            request: str | None = None
            for path in commit.paths:
                match = _ENV_FILE.match(path)
                if match is None:
                    continue
                before, after = pins(reader, commit.first_parent, path), pins(reader, commit.sha, path)
                changes = _compare(match.group(1), before, after, commit, image=image, digest=digest)
                if changes and request is None:
                    raw = reader.object(commit.sha)
                    request = _merge_request(raw[1] if raw else None) or ""
                events += [_with_request(event, request) for event in changes]
    return events


def _compare(
    env: str,
    before: dict[tuple[str, str], str],
    after: dict[tuple[str, str], str],
    commit: CommitRecord,
    *,
    image: str | None,
    digest: str | None,
) -> list[VersionEvent]:
    events = []
    for key in sorted(before.keys() | after.keys()):
        if image is not None and key[0] != image:
            continue
        old, new = before.get(key), after.get(key)
        if old == new or (digest is not None and digest not in (old, new)):
            continue
        if old is None and new is not None:
            events.append(VersionEvent(env, key[0], key[1], new, "added", commit))
        elif new is None and old is not None:
            events.append(VersionEvent(env, key[0], key[1], old, "removed", commit))
        elif new is not None:
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
