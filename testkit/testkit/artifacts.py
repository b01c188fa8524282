"""Artifacts attached to images, pushed the ways real clients push them: OCI 1.1 referrers and cosign tags.

- :func:`make_artifact` builds an OCI 1.1 artifact manifest (``artifactType``, the empty config, a
  ``subject``); :func:`make_sbom` (an SPDX-like document, ``application/spdx+json``) and
  :func:`make_signature_artifact` (a fake signature envelope) are the two kinds the tests use.
- :func:`push_artifact` pushes one as a client of a registry WITHOUT the referrers API does (oras, notation,
  cosign in OCI 1.1 mode against CNCF distribution 2.8): blobs, the manifest by digest, then the referrers
  tag schema's index ``sha256-<subject hex>`` fetched, extended with the artifact's descriptor, pushed again.
- :func:`push_cosign_signature` writes cosign's tag layout: a manifest tagged ``sha256-<image hex>.sig`` whose
  layers are simple-signing payloads (``application/vnd.dev.cosign.simplesigning.v1+json``), each annotated
  with its base64 signature (``dev.cosignproject.cosign/signature``); signing again appends a layer, as
  cosign does. The signature bytes come from the caller (a test signs the payload with a real key).

Like :mod:`testkit.imagegen` (whose plain-httpx push it reuses), independent of the product's registry
client, deterministic (canonical JSON), and only ever pointed at loopback registries.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from testkit.imagegen import (
    MANIFEST_MEDIA_TYPES,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_MANIFEST,
    Blob,
    canonical_json,
    sha256_digest,
)
from testkit.imagepush import ChallengeAuth, push_blob, push_manifest

EMPTY_MEDIA_TYPE = "application/vnd.oci.empty.v1+json"
EMPTY_BLOB = Blob.from_bytes(b"{}", EMPTY_MEDIA_TYPE)
"""The OCI 1.1 empty descriptor's content: the config of an artifact that has none."""
SPDX_JSON = "application/spdx+json"
FAKE_SIGNATURE_TYPE = "application/vnd.example.signature.v1+json"
SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
COSIGN_SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
FIXED_TIMESTAMP = "2026-11-27T00:00:00Z"


@dataclass(frozen=True, kw_only=True)
class GeneratedArtifact:
    """A manifest with its blobs, ready to push: an OCI 1.1 artifact or a cosign signature manifest."""

    raw: bytes = field(repr=False)
    digest: str
    artifact_type: str | None
    blobs: tuple[Blob, ...]
    subject: Mapping[str, Any] | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)
    media_type: str = OCI_MANIFEST

    @property
    def size(self) -> int:
        return len(self.raw)

    @property
    def subject_digest(self) -> str | None:
        return str(self.subject["digest"]) if self.subject else None

    def descriptor(self) -> dict[str, Any]:
        """Its entry in a referrers list: media type, digest, size, ``artifactType``, annotations."""
        entry: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.artifact_type:
            entry["artifactType"] = self.artifact_type
        if self.annotations:
            entry["annotations"] = dict(self.annotations)
        return entry


def descriptor_of(raw: bytes, media_type: str) -> dict[str, Any]:
    """The descriptor of a manifest (``subject`` of an artifact): ``descriptor_of(image.raw, image.media_type)``."""
    return {"mediaType": media_type, "digest": sha256_digest(raw), "size": len(raw)}


def make_artifact(
    *,
    subject: Mapping[str, Any] | None,
    artifact_type: str,
    layers: Sequence[Blob],
    annotations: Mapping[str, str] | None = None,
) -> GeneratedArtifact:
    """An OCI 1.1 artifact: image manifest with ``artifactType``, the empty config, ``layers``, ``subject``."""
    notes = {"org.opencontainers.image.created": FIXED_TIMESTAMP, **(annotations or {})}
    body: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": artifact_type,
        "config": EMPTY_BLOB.descriptor(),
        "layers": [layer.descriptor() for layer in layers] or [EMPTY_BLOB.descriptor()],
        "annotations": notes,
    }
    if subject is not None:
        body["subject"] = dict(subject)
    raw = canonical_json(body)
    return GeneratedArtifact(
        raw=raw,
        digest=sha256_digest(raw),
        artifact_type=artifact_type,
        blobs=(EMPTY_BLOB, *layers),
        subject=subject,
        annotations=notes,
    )


def make_sbom(
    subject: Mapping[str, Any], *, name: str, packages: Sequence[str] = ("openssl", "zlib")
) -> GeneratedArtifact:
    """An SPDX-like SBOM of the image ``subject`` names (``application/spdx+json``)."""
    document = {
        "spdxVersion": "SPDX-2.3",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": name,
        "describes": subject["digest"],
        "packages": [{"name": package, "SPDXID": f"SPDXRef-{package}"} for package in packages],
    }
    layer = Blob.from_bytes(canonical_json(document), SPDX_JSON)
    return make_artifact(subject=subject, artifact_type=SPDX_JSON, layers=[layer])


def make_signature_artifact(subject: Mapping[str, Any], *, signer: str = "testkit") -> GeneratedArtifact:
    """A fake signature artifact on ``subject`` (the envelope names the digest; nothing is signed)."""
    envelope = {"signer": signer, "signed": subject["digest"], "signature": base64.b64encode(signer.encode()).decode()}
    layer = Blob.from_bytes(canonical_json(envelope), FAKE_SIGNATURE_TYPE)
    return make_artifact(subject=subject, artifact_type=FAKE_SIGNATURE_TYPE, layers=[layer])


def referrers_tag(digest: str) -> str:
    """The referrers tag schema's tag of ``digest``: ``sha256-<hex>``."""
    algorithm, hex_digest = digest.split(":", 1)
    return f"{algorithm[:32]}-{hex_digest[:64]}"


def cosign_signature_tag(digest: str) -> str:
    """Cosign's signature tag of ``digest``: ``sha256-<hex>.sig``."""
    return digest.replace(":", "-", 1) + ".sig"


def get_manifest(
    client: httpx.Client, auth: ChallengeAuth, base_url: str, repository: str, reference: str
) -> bytes | None:
    """The manifest ``reference`` names, its bytes as served, or None when absent."""
    request = client.build_request(
        "GET",
        f"{base_url}/v2/{repository}/manifests/{reference}",
        headers={"Accept": ", ".join(MANIFEST_MEDIA_TYPES)},
    )
    response = auth.send(client, request)
    if response.status_code == 404:
        return None
    response.raise_for_status()
    return response.content


def push_artifact(
    artifact: GeneratedArtifact,
    registry_url: str,
    repository: str,
    *,
    tag_schema: bool = True,
    tag: str | None = None,
    client: httpx.Client | None = None,
) -> bytes | None:
    """Push ``artifact`` (blobs, then the manifest by digest, or under ``tag``), then, with ``tag_schema``
    and a subject, add it to the subject's referrers tag-schema index as a 2.8-era client does (fetch, add
    the descriptor unless listed, push under ``sha256-<hex>``). Returns the index bytes pushed, if any."""
    base_url, auth, http = _connect(registry_url, client)
    try:
        for blob in artifact.blobs:
            push_blob(http, auth, base_url, repository, blob)
        push_manifest(
            http,
            auth,
            base_url,
            repository,
            reference=tag or artifact.digest,
            raw=artifact.raw,
            media_type=OCI_MANIFEST,
        )
        if not tag_schema or artifact.subject_digest is None:
            return None
        index_tag = referrers_tag(artifact.subject_digest)
        existing = get_manifest(http, auth, base_url, repository, index_tag)
        index: dict[str, Any] = json.loads(existing) if existing else {"schemaVersion": 2, "mediaType": OCI_INDEX}
        entries: list[dict[str, Any]] = index.setdefault("manifests", [])
        if any(entry.get("digest") == artifact.digest for entry in entries):
            return None
        entries.append(artifact.descriptor())
        raw = canonical_json(index)
        push_manifest(http, auth, base_url, repository, reference=index_tag, raw=raw, media_type=OCI_INDEX)
        return raw
    finally:
        if client is None:
            http.close()


def simple_signing_payload(image_digest: str, docker_reference: str) -> bytes:
    """Cosign's signed payload for an image: its digest and the repository it was signed in."""
    return canonical_json(
        {
            "critical": {
                "identity": {"docker-reference": docker_reference},
                "image": {"docker-manifest-digest": image_digest},
                "type": "cosign container image signature",
            },
            "optional": None,
        }
    )


def make_cosign_signature(payload: bytes, signature: bytes, *, existing: bytes | None = None) -> GeneratedArtifact:
    """Cosign's signature manifest: ``existing`` (the ``.sig`` manifest already there, if any) with one
    more layer, ``payload`` annotated with ``signature`` (base64), unless that layer is already there."""
    layer = Blob.from_bytes(payload, SIMPLESIGNING)
    entry = {**layer.descriptor(), "annotations": {COSIGN_SIGNATURE_ANNOTATION: base64.b64encode(signature).decode()}}
    layers = json.loads(existing)["layers"] if existing else []
    if entry not in layers:
        layers.append(entry)
    config = Blob.from_bytes(
        canonical_json(
            {
                "architecture": "",
                "config": {},
                "created": "0001-01-01T00:00:00Z",
                "history": [{"created": "0001-01-01T00:00:00Z"}],
                "os": "",
                "rootfs": {"type": "layers", "diff_ids": [found["digest"] for found in layers]},
            }
        ),
        OCI_CONFIG,
    )
    raw = canonical_json(
        {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config.descriptor(), "layers": layers}
    )
    return GeneratedArtifact(raw=raw, digest=sha256_digest(raw), artifact_type=None, blobs=(config, layer))


def push_cosign_signature(
    registry_url: str,
    repository: str,
    image_digest: str,
    *,
    signature: bytes,
    payload: bytes,
    client: httpx.Client | None = None,
) -> GeneratedArtifact:
    """Attach a cosign signature to ``image_digest`` in ``repository``: the ``sha256-<hex>.sig`` manifest
    gains a layer (created when absent), pushed under that tag. Earlier layers' blobs must be there."""
    base_url, auth, http = _connect(registry_url, client)
    try:
        tag = cosign_signature_tag(image_digest)
        existing = get_manifest(http, auth, base_url, repository, tag)
        artifact = make_cosign_signature(payload, signature, existing=existing)
        for blob in artifact.blobs:
            push_blob(http, auth, base_url, repository, blob)
        push_manifest(http, auth, base_url, repository, reference=tag, raw=artifact.raw, media_type=OCI_MANIFEST)
        return artifact
    finally:
        if client is None:
            http.close()


def _connect(registry_url: str, client: httpx.Client | None) -> tuple[str, ChallengeAuth, httpx.Client]:
    base_url = registry_url.rstrip("/")
    if "://" not in base_url:
        base_url = "http://" + base_url
    return base_url, ChallengeAuth(None, None), client or httpx.Client(timeout=httpx.Timeout(60.0, connect=10.0))
