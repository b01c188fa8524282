"""A farm of version tags for the retention benchmark: many repositories, many small distinct images, fast.

Every repository ``<prefix>/app-NNN`` gets ONE small image pushed the ordinary way (its config and layer
blobs, shared by all its versions), then one manifest PUT per version tag: the same config and layer, made
distinct by an ``org.opencontainers.image.version`` annotation (OCI image manifest), so every tag has its
own digest and a repository of N tags stores N small manifests and 2 blobs. PUTs run concurrently over
one keep-alive HTTP client. Deterministic: the same (repository, tag, day) always gives the same digest.

Tags are ``YYYYMMDD_NN`` spread evenly over ``span_days`` before ``today`` (the newest one the day before
``today``, shifted by a few days per repository so that repositories do not all share the same dates).

Also here: the desired state the benchmark plans (``write_state``), the retention decision as a platform
team would script it (``decide``), and the skopeo crawl that feeds it (``skopeo_crawl``).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import re
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the baseline's worker imports this module: only the standard library at import time
    from testkit.imagegen import GeneratedImage

TAG_PATTERN = re.compile(r"^\d{8}_\d{2}$")
VERSION_ANNOTATION = "org.opencontainers.image.version"
REGISTRY_NAME = "bench"


def sha256_of(raw: bytes) -> str:
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def app_name(index: int) -> str:
    return f"app-{index:03d}"


def version_tags(index: int, count: int, *, today: datetime.date, span_days: int = 200) -> list[str]:
    """``count`` version tags of repository ``index``, oldest first, spread over ``span_days`` before today."""
    shift = index % 5
    tags = []
    for k in range(count):
        age = 1 + shift + (count - 1 - k) * span_days // count
        day = today - datetime.timedelta(days=age)
        tags.append(f"{day:%Y%m%d}_{1 + index % 3:02d}")
    if len(set(tags)) != count:
        raise ValueError(f"{count} tags over {span_days} days collide: give them more days")
    return tags


@dataclass(frozen=True, slots=True)
class Version:
    """One pushed version: its repository (``d/app-NNN``), tag, digest and the blobs it occupies."""

    image: str
    repository: str
    tag: str
    digest: str
    size: int


def base_image(index: int) -> GeneratedImage:
    """The small single-platform OCI image every version of repository ``index`` shares blobs with."""
    from testkit.imagegen import ImageSettings, make_image

    name = app_name(index)
    return make_image(
        [{"app/main": f"{name}\n".encode() * 64}],
        fmt="oci",
        settings=ImageSettings(labels={"org.opencontainers.image.title": name}),
    )


def version_manifest(base: GeneratedImage, tag: str) -> bytes:
    """``base``'s manifest made distinct by the version annotation: a new digest, no new blob."""
    from testkit.imagegen import canonical_json

    body = json.loads(base.raw)
    body["annotations"] = {VERSION_ANNOTATION: tag}
    return canonical_json(body)


def shared_bytes(base: GeneratedImage) -> int:
    return sum(blob.size for blob in base.blobs.values())


def populate(
    registry_url: str,
    prefix: str,
    indexes: Iterable[int],
    tags_per_repository: int,
    *,
    today: datetime.date,
    span_days: int = 200,
    workers: int = 16,
) -> list[Version]:
    """Push ``tags_per_repository`` versions to each ``<prefix>/app-NNN``; return them (oldest first per
    repository)."""
    import httpx

    from testkit.imagegen import OCI_MANIFEST
    from testkit.imagepush import push_image

    versions: list[Version] = []
    jobs: list[tuple[str, str, bytes]] = []
    with httpx.Client(base_url=registry_url, timeout=60, limits=httpx.Limits(max_connections=workers)) as client:
        for index in indexes:
            base = base_image(index)
            repository = f"{prefix}/{app_name(index)}"
            push_image(base, registry_url, repository, None, client=client)
            for tag in version_tags(index, tags_per_repository, today=today, span_days=span_days):
                raw = version_manifest(base, tag)
                versions.append(Version(app_name(index), repository, tag, sha256_of(raw), len(raw)))
                jobs.append((repository, tag, raw))

        def put(job: tuple[str, str, bytes]) -> None:
            repository, tag, raw = job
            response = client.put(
                f"/v2/{repository}/manifests/{tag}", content=raw, headers={"Content-Type": OCI_MANIFEST}
            )
            response.raise_for_status()
            if response.headers.get("Docker-Content-Digest") != sha256_of(raw):
                raise RuntimeError(f"{repository}:{tag}: the registry stored another digest")

        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(put, jobs))
    return versions


def promote_newest(registry_url: str, versions: Sequence[Version], prefix: str) -> list[Version]:
    """Put the newest version of every image into ``<prefix>/<image>`` (what the downstream environment
    declares, so that its plan is in sync); return those versions."""
    import httpx

    from testkit.imagegen import OCI_MANIFEST
    from testkit.imagepush import push_image

    newest: dict[str, Version] = {}
    for version in versions:
        if version.image not in newest or version.tag > newest[version.image].tag:
            newest[version.image] = version
    promoted = []
    with httpx.Client(base_url=registry_url, timeout=60) as client:
        for image, version in sorted(newest.items()):
            base = base_image(int(image.rsplit("-", 1)[1]))
            repository = f"{prefix}/{image}"
            push_image(base, registry_url, repository, None, client=client)
            raw = version_manifest(base, version.tag)
            response = client.put(
                f"/v2/{repository}/manifests/{version.tag}", content=raw, headers={"Content-Type": OCI_MANIFEST}
            )
            response.raise_for_status()
            promoted.append(Version(image, repository, version.tag, version.digest, version.size))
    return promoted


def write_state(root: Path, registry_url: str, declared: Sequence[Version], retention: str) -> Path:
    """A desired state: source environment d (declares nothing: CI's builds), t from d declaring
    ``declared``, both on one registry, and ``retention`` (a flow mapping, e.g. ``{d: {keep: 5}}``)."""
    (root / "environments").mkdir(parents=True, exist_ok=True)
    (root / "reconciler.yaml").write_text(
        "version: 1\n"
        f'registries:\n  {REGISTRY_NAME}: {{url: "{registry_url}"}}\n'
        "environments:\n"
        f"  d: {{registry: {REGISTRY_NAME}, prefix: d, source: true}}\n"
        f"  t: {{registry: {REGISTRY_NAME}, prefix: t, from: d}}\n"
        "naming:\n  tag: '^\\d{8}_\\d{2}$'\n"
        f"retention: {retention}\n",
        encoding="utf-8",
    )
    (root / "environments" / "d.yaml").write_text("environment: d\nimages: {}\n", encoding="utf-8")
    lines = ["environment: t", "images:" if declared else "images: {}"]
    for version in sorted(declared, key=lambda v: v.image):
        lines.append(f"  {version.image}:")
        lines.append(f'    - {{tag: "{version.tag}", digest: "{version.digest}"}}')
    (root / "environments" / "t.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


# -- the baseline: what a platform team scripts without reconciler ------------------------------------


@dataclass(frozen=True, slots=True)
class Seen:
    """A tag as the baseline crawl saw it: its digest and the (digest, size) of every blob it occupies."""

    repository: str
    tag: str
    digest: str
    blobs: frozenset[tuple[str, int]]


def _skopeo(*args: str) -> bytes:
    return subprocess.run(["skopeo", *args], check=True, capture_output=True, timeout=300).stdout


def skopeo_crawl(host: str, repositories: Sequence[str], *, workers: int) -> list[Seen]:
    """``skopeo list-tags`` per repository, then ``skopeo inspect --raw`` per tag, ``workers`` at a time."""
    with ThreadPoolExecutor(max_workers=workers) as pool:

        def listing(repository: str) -> list[tuple[str, str]]:
            raw = _skopeo("list-tags", "--tls-verify=false", f"docker://{host}/{repository}")
            return [(repository, str(tag)) for tag in json.loads(raw)["Tags"]]

        def inspect(item: tuple[str, str]) -> Seen:
            repository, tag = item
            raw = _skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{host}/{repository}:{tag}")
            digest = sha256_of(raw)
            body = json.loads(raw)
            blobs = {(digest, len(raw))}
            blobs |= {(d["digest"], int(d["size"])) for d in [body["config"], *body.get("layers", [])]}
            return Seen(repository, tag, digest, frozenset(blobs))

        tags = [item for listed in pool.map(listing, repositories) for item in listed]
        return list(pool.map(inspect, tags))


def decide(
    seen: Sequence[Seen],
    declared: Mapping[str, tuple[str, str]],
    *,
    prefix: str,
    today: datetime.date,
    keep: int | None,
    max_age_days: int | None,
    max_bytes: int | None,
) -> dict[tuple[str, str], str]:
    """(repository, tag) -> rule, for what a source environment retires. ``declared``: image -> the
    (tag, digest) the downstream environment declares. The rules, as reconciler documents them
    (``reconciler/engine/retention.py``): a tag whose digest is declared, a tag that is not a version and a
    build newer than the declared one never retire; of the other versions of a repository the newest ``keep``
    survive; the older ones retire, but with ``max_age_days`` set only those whose tag date is past it (keep
    is then a floor); then ``max_bytes`` retires the oldest remaining candidates (by version, then
    repository), environment-wide, until the unique blob bytes fit."""
    protected = {digest for _tag, digest in declared.values()}
    horizon = today - datetime.timedelta(days=max_age_days) if max_age_days is not None else None
    by_repository: dict[str, list[Seen]] = {}
    for item in seen:
        by_repository.setdefault(item.repository, []).append(item)
    retired: dict[tuple[str, str], str] = {}
    spared: list[Seen] = []
    for repository, items in by_repository.items():
        newest = declared.get(repository.removeprefix(prefix + "/"))
        candidates = sorted(
            (
                s
                for s in items
                if TAG_PATTERN.match(s.tag)
                and s.digest not in protected
                and newest is not None
                and s.tag <= newest[0]  # YYYYMMDD_NN orders as text
            ),
            key=lambda s: s.tag,
            reverse=True,
        )
        for item in candidates[keep or 0 :]:
            day = datetime.datetime.strptime(item.tag[:8], "%Y%m%d").date()
            if horizon is not None:
                if day < horizon:
                    retired[(repository, item.tag)] = f"max_age_days={max_age_days}"
                else:
                    spared.append(item)
            elif keep is not None:
                retired[(repository, item.tag)] = f"keep={keep}"
            else:
                spared.append(item)
    if max_bytes is not None:
        tags_of: Counter[str] = Counter(s.digest for s in seen if (s.repository, s.tag) not in retired)
        blobs_of = {s.digest: s.blobs for s in seen}
        users: Counter[tuple[str, int]] = Counter(b for digest in tags_of for b in blobs_of[digest])
        used = sum(size for _blob, size in users)
        for item in sorted(spared, key=lambda s: (s.tag, s.repository)):
            if used <= max_bytes:
                break
            retired[(item.repository, item.tag)] = f"max_bytes={max_bytes}"
            tags_of[item.digest] -= 1
            if tags_of[item.digest] == 0:
                for blob in blobs_of[item.digest]:
                    users[blob] -= 1
                    if users[blob] == 0:
                        used -= blob[1]
    return retired


def baseline_worker(spec_path: Path, out_path: Path) -> None:
    """The baseline as one process (so that its wall, CPU and peak RSS are measured like reconciler's):
    crawl with skopeo, then decide each variant of ``spec`` in Python; write the retired tags as JSON."""
    spec = json.loads(spec_path.read_text())
    today = datetime.date.fromisoformat(spec["today"])
    declared = {image: (tag, digest) for image, (tag, digest) in spec["declared"].items()}
    started = time.perf_counter()
    seen = skopeo_crawl(spec["host"], spec["repositories"], workers=spec["workers"])
    crawled = time.perf_counter()
    decisions = [decide(seen, declared, prefix=spec["prefix"], today=today, **variant) for variant in spec["variants"]]
    decided = time.perf_counter()
    out_path.write_text(
        json.dumps(
            {
                "tags": len(seen),
                "crawl_seconds": crawled - started,
                "decide_seconds": decided - crawled,
                "retired": [{f"{repo}:{tag}": rule for (repo, tag), rule in d.items()} for d in decisions],
            }
        )
    )


if __name__ == "__main__":
    baseline_worker(Path(sys.argv[1]), Path(sys.argv[2]))
