"""Referrers: the signatures, attestations and SBOMs attached to an image, and where a store keeps them.

``discover`` reads the three places referrers live: the OCI 1.1 referrers API (``GET /v2/<name>/referrers/
<digest>``; a 404 without ``NAME_UNKNOWN`` means the registry has none, as CNCF distribution 2.8, and is
remembered per client session), the referrers tag schema (an index tagged ``sha256-<hex>``, kept by the
pushing clients where the API is missing) and cosign's tags (``sha256-<hex>.sig`` / ``.att`` / ``.sbom``).
The last two come from ONE tag listing of the repository shared by every digest looked up (the image, each
platform, each referrer), not a HEAD per possible tag.

Copying them is ``reconciler.registry.referrercopy``. docs/referrers.md states the rules and the request
counts (no referrers: at most 2 per image). Discovery only reads. Registry and policy are sibling layers:
the engine turns a ``ReferrerDescriptor`` into the gates' ``reconciler.policy.referrers.Referrer``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urljoin

from reconciler.errors import RegistryError
from reconciler.model.digest import Digest, is_valid_digest
from reconciler.model.manifest import OCI_INDEX, Manifest
from reconciler.model.store import ImageStore
from reconciler.registry.auth import repository_scope
from reconciler.registry.client import RegistryClient
from reconciler.registry.copier import all_or_first_error
from reconciler.registry.session import RegistrySession

log = logging.getLogger(__name__)

ReferrerVia = Literal["referrers-api", "tag-schema", "cosign-tag"]
CosignKind = Literal["signature", "attestation", "sbom"]
COSIGN_SUFFIXES: Mapping[str, CosignKind] = {".sig": "signature", ".att": "attestation", ".sbom": "sbom"}
DEFAULT_DEPTH = 2
"""Referrers of the image (1) and of those referrers (2: a signature on an SBOM); deeper is not followed."""
MAX_API_PAGES = 100

_API_SUPPORT: weakref.WeakKeyDictionary[RegistrySession, bool] = weakref.WeakKeyDictionary()
"""Per registry session: whether it has the referrers API, once a request told (absent while unknown)."""
_PROBES: weakref.WeakKeyDictionary[RegistrySession, asyncio.Lock] = weakref.WeakKeyDictionary()
"""One lock per (target store, repository, index tag): concurrent merges in this process lose no entry."""


def referrers_tag(digest: str) -> str:
    """The referrers tag schema's tag for ``digest``: ``<alg>-<hex>`` (algorithm cut at 32, hex at 64)."""
    algorithm, hex_digest = Digest(digest).split(":", 1)
    return f"{algorithm[:32]}-{hex_digest[:64]}"


def cosign_tag(digest: str, suffix: str) -> str:
    """Cosign's tag for ``digest`` with ``suffix`` (``.sig``, ``.att`` or ``.sbom``)."""
    return f"{Digest(digest).replace(':', '-', 1)}{suffix}"


@dataclass(frozen=True, slots=True)
class ReferrerDescriptor:
    """One referrer of ``subject``: its manifest's digest, media type and size, what it is, where it was found."""

    digest: Digest
    media_type: str
    size: int
    subject: Digest
    via: ReferrerVia
    artifact_type: str | None = None
    """The listed ``artifactType``; for a cosign tag, its manifest's ``artifactType`` or config media type."""
    annotations: Mapping[str, str] = field(default_factory=dict)
    tag: str | None = None
    """The cosign tag (``sha256-<hex>.sig``) when ``via == "cosign-tag"``."""
    entry: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)
    """The descriptor exactly as the index or the API listed it (what the target's index will list)."""
    manifest: Manifest | None = field(default=None, compare=False, repr=False)
    """The manifest, when discovery fetched it (cosign tags): the copy then needs no GET."""

    @property
    def kind(self) -> CosignKind | None:
        """``signature`` / ``attestation`` / ``sbom`` for a cosign tag (its suffix); None otherwise."""
        return next((kind for suffix, kind in COSIGN_SUFFIXES.items() if (self.tag or "").endswith(suffix)), None)

    def index_entry(self) -> dict[str, Any]:
        """This referrer as an entry of a tag-schema index."""
        if self.entry is not None:
            return dict(self.entry)
        entry: dict[str, Any] = {"mediaType": self.media_type, "digest": str(self.digest), "size": self.size}
        if self.artifact_type:
            entry["artifactType"] = self.artifact_type
        if self.annotations:
            entry["annotations"] = dict(self.annotations)
        return entry


async def discover(
    store: ImageStore,
    repository: str,
    digest: str,
    *,
    artifact_type: str | None = None,
    tags: Iterable[str] | None = None,
) -> list[ReferrerDescriptor]:
    """Every referrer of ``digest`` in ``repository`` (API, tag schema, cosign tags); only ``artifact_type``
    when given. ``tags``: the repository's tags when the caller already listed them (saves the listing)."""
    return await Finder(store, repository, tags).of(Digest(digest), artifact_type)


async def discover_image(
    store: ImageStore,
    repository: str,
    manifest: Manifest,
    *,
    depth: int = DEFAULT_DEPTH,
    children: bool = True,
    tags: Iterable[str] | None = None,
) -> list[ReferrerDescriptor]:
    """The referrers of image ``manifest`` and (``children``) of each child of an index, and theirs, to
    ``depth`` levels: what the gates look at, and what ``ReferrersCopy`` copies."""
    levels = await walk_levels(Finder(store, repository, tags), roots_of(manifest, children), depth)
    return [referrer for level in levels for referrer in level]


# ---------------------------------------------------------------------------------------------- discovery


def roots_of(manifest: Manifest, children: bool) -> list[Digest]:
    roots = [manifest.digest]
    if children and manifest.is_index:
        roots.extend(child.digest for child in manifest.manifests)
    return list(dict.fromkeys(roots))


async def walk_levels(finder: Finder, roots: Sequence[Digest], depth: int) -> list[list[ReferrerDescriptor]]:
    """Referrers level by level: level 1 attaches to ``roots``, level n to the referrers of level n-1."""
    levels: list[list[ReferrerDescriptor]] = []
    results: dict[Digest, list[ReferrerDescriptor]] = {}
    seen: set[tuple[Digest, str | None]] = set()

    async def look(subject: Digest) -> None:
        results[subject] = await finder.of(subject, None)

    frontier = list(roots)
    for _ in range(depth):
        await all_or_first_error([look(subject) for subject in frontier])
        found: list[ReferrerDescriptor] = []
        for referrer in (referrer for subject in frontier for referrer in results[subject]):
            if (referrer.digest, referrer.tag) not in seen:
                seen.add((referrer.digest, referrer.tag))
                found.append(referrer)
        frontier = [digest for digest in dict.fromkeys(r.digest for r in found) if digest not in results]
        if found:
            levels.append(found)
        if not frontier:
            break
    return levels


class Finder:
    """Discovery in one repository of one store: one tag listing shared by every digest looked up."""

    def __init__(self, store: ImageStore, repository: str, tags: Iterable[str] | None) -> None:
        self.store = store
        self.repository = repository
        self._tags = frozenset(tags) if tags is not None else None
        self._listing = asyncio.Lock()
        self.schema_indexes: dict[Digest, Manifest] = {}
        """Each subject's tag-schema index in this repository, when it has one."""

    async def of(self, subject: Digest, artifact_type: str | None) -> list[ReferrerDescriptor]:
        found: dict[tuple[Digest, str | None], ReferrerDescriptor] = {}
        if isinstance(self.store, RegistryClient):
            for entry in await api_referrers(self.store, self.repository, subject, artifact_type) or []:
                referrer = self._listed(entry, subject, "referrers-api")
                found.setdefault((referrer.digest, None), referrer)
        async with self._listing:
            if self._tags is None:
                self._tags = frozenset(await self.store.list_tags(self.repository))
        if (schema_tag := referrers_tag(subject)) in self._tags:
            index = await self.store.get_manifest(self.repository, schema_tag)
            if not index.is_index:
                raise self._error(f"tag {schema_tag} holds a {index.media_type}, not a referrers index", subject)
            self.schema_indexes[subject] = index
            for entry in json.loads(index.raw).get("manifests") or []:
                referrer = self._listed(entry, subject, "tag-schema")
                found.setdefault((referrer.digest, None), referrer)
        for tag in (cosign_tag(subject, suffix) for suffix in COSIGN_SUFFIXES):
            if tag in self._tags:
                manifest = await self.store.get_manifest(self.repository, tag)
                declared = json.loads(manifest.raw).get("artifactType")
                config_type = manifest.config.media_type if manifest.config else None
                found[(manifest.digest, tag)] = ReferrerDescriptor(
                    manifest.digest,
                    manifest.media_type,
                    manifest.size,
                    subject,
                    "cosign-tag",
                    declared if isinstance(declared, str) else config_type,
                    dict(manifest.annotations),
                    tag=tag,
                    manifest=manifest,
                )
        referrers = list(found.values())
        return [r for r in referrers if artifact_type is None or r.artifact_type == artifact_type]

    def _listed(self, entry: Any, subject: Digest, via: ReferrerVia) -> ReferrerDescriptor:
        """A listed descriptor, checked: a malformed entry is an error, not a signature silently lost."""
        fields = entry if isinstance(entry, dict) else {}
        digest, media_type, size = fields.get("digest"), fields.get("mediaType"), fields.get("size")
        if not (isinstance(digest, str) and is_valid_digest(digest) and isinstance(media_type, str)) or (
            not isinstance(size, int) or isinstance(size, bool)
        ):
            raise self._error(f"malformed entry in the referrers list ({via}): {str(entry)[:200]}", subject)
        artifact_type, annotations = fields.get("artifactType"), fields.get("annotations")
        return ReferrerDescriptor(
            Digest(digest),
            media_type,
            size,
            subject,
            via,
            artifact_type if isinstance(artifact_type, str) else None,
            {str(k): str(v) for k, v in annotations.items()} if isinstance(annotations, dict) else {},
            entry=fields,
        )

    def _error(self, message: str, subject: Digest) -> RegistryError:
        return RegistryError(message, registry=self.store.name, repository=self.repository, digest=str(subject))


async def api_referrers(
    client: RegistryClient, repository: str, digest: str, artifact_type: str | None = None
) -> list[dict[str, Any]] | None:
    """The descriptors the referrers API lists for ``digest`` (all pages; filtered by ``artifact_type``
    here when the registry did not), or None: no referrers API (remembered for the client's session, so
    later calls send nothing), or a repository the registry does not know (``NAME_UNKNOWN``). While the
    answer is unknown, one request at a time asks (the platforms of an index are looked up concurrently)."""
    session = client.session
    if _API_SUPPORT.get(session) is None:
        async with _PROBES.setdefault(session, asyncio.Lock()):
            if _API_SUPPORT.get(session) is None:
                return await _api_pages(client, repository, digest, artifact_type)
    if _API_SUPPORT.get(session) is False:
        return None
    return await _api_pages(client, repository, digest, artifact_type)


async def _api_pages(
    client: RegistryClient, repository: str, digest: str, artifact_type: str | None
) -> list[dict[str, Any]] | None:
    session = client.session
    url = f"/v2/{repository}/referrers/{digest}"
    params = {"artifactType": artifact_type} if artifact_type else None
    entries: list[dict[str, Any]] = []
    for _ in range(MAX_API_PAGES):
        reply = await session.request(
            "GET",
            url,
            scopes=[repository_scope(repository, "pull")],
            what="GET referrers",
            ok=(200, 404),
            repository=repository,
            digest=digest,
            headers={"Accept": OCI_INDEX},
            params=params,
        )
        assert reply is not None
        if reply.status == 404:
            if "NAME_UNKNOWN" not in _error_codes(reply.body):
                _API_SUPPORT[session] = False
            return None
        _API_SUPPORT[session] = True
        try:
            listed = [entry for entry in reply.json().get("manifests") or [] if isinstance(entry, dict)]
        except (ValueError, AttributeError, TypeError) as exc:
            message = "referrers answer is not an image index"
            raise RegistryError(message, registry=client.name, repository=repository, digest=digest) from exc
        if artifact_type and "artifacttype" not in reply.headers.get("oci-filters-applied", "").lower():
            listed = [entry for entry in listed if entry.get("artifactType") == artifact_type]
        entries.extend(listed)
        link = reply.link("next")
        if not link:
            return entries
        url, params = urljoin(str(reply.url), link), None
    message = f"referrers answer runs past {MAX_API_PAGES} pages"
    raise RegistryError(message, registry=client.name, repository=repository, digest=digest)


def api_supported(client: RegistryClient) -> bool | None:
    """What this client learned of its registry's referrers API: True, False, or None (not asked yet)."""
    return _API_SUPPORT.get(client.session)


def _error_codes(body: bytes) -> set[str]:
    try:
        return {str(error.get("code")) for error in json.loads(body).get("errors") or [] if isinstance(error, dict)}
    except (ValueError, AttributeError, TypeError):
        return set()


# ---------------------------------------------------------------------------------------------- copy
