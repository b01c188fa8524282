"""What an image's referrers prove: signatures, attestations and SBOMs, for the ``require_artifacts`` gate.

The engine finds an image's referrers in three places and hands each one in as a :class:`Referrer`:
the OCI 1.1 referrers API (``GET /v2/<name>/referrers/<digest>``), the referrers tag schema that
registries without the API fall back to (the tag ``sha256-<hex>`` holding an index of referrers), and
cosign's own tags (``sha256-<hex>.sig`` / ``.att`` / ``.sbom``), whose kind the tag suffix says.

This module classifies referrers into kinds and says which required artifacts are missing. It never
fetches anything and never verifies a signature: it checks that the evidence EXISTS and is attached to
the image's digest. Cryptographic verification (keys, identities, Rekor) is a separate, later rule.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, get_args

from reconciler.model.digest import Digest

ArtifactKind = Literal["signature", "attestation", "sbom"]
ARTIFACT_KINDS: tuple[ArtifactKind, ...] = get_args(ArtifactKind)
ReferrerVia = Literal["referrers-api", "tag-schema", "cosign-tag"]

SIGNATURE_TYPES = frozenset(
    {
        "application/vnd.dev.cosign.artifact.sig.v1+json",  # cosign, OCI 1.1 mode
        "application/vnd.dev.cosign.simplesigning.v1+json",  # cosign's signature payload
        "application/vnd.cncf.notary.signature",  # Notation
    }
)
ATTESTATION_TYPES = frozenset({"application/vnd.dsse.envelope.v1+json", "application/vnd.in-toto+json"})
SBOM_TYPES = frozenset(
    {
        "application/spdx+json",
        "text/spdx",
        "text/spdx+json",
        "application/vnd.cyclonedx+json",
        "application/vnd.cyclonedx+xml",
        "application/vnd.cyclonedx",
        "application/vnd.syft+json",
    }
)
SIGSTORE_BUNDLE_PREFIX = "application/vnd.dev.sigstore.bundle"
COSIGN_SIGN_PREDICATE = "https://sigstore.dev/cosign/sign/v1"
_PREDICATE_ANNOTATIONS = ("dev.sigstore.bundle.predicateType", "in-toto.io/predicate-type")
_SBOM_PREDICATES = ("https://spdx.dev/document", "https://cyclonedx.org/bom")
_COSIGN_SUFFIXES: Mapping[str, ArtifactKind] = {".sig": "signature", ".att": "attestation", ".sbom": "sbom"}
_COSIGN_TAG = re.compile(r"^(sha256)-([0-9a-f]{64})\.(sig|att|sbom)$|^(sha512)-([0-9a-f]{128})\.(sig|att|sbom)$")


@dataclass(frozen=True, slots=True)
class Referrer:
    """One artifact found for an image, and where it was found."""

    digest: Digest
    """The referrer's own manifest digest."""
    subject: Digest
    """The digest it is attached to (its ``subject``; for a cosign tag, the digest the tag name spells)."""
    via: ReferrerVia
    artifact_type: str | None = None
    """The descriptor's ``artifactType``, else the referrer manifest's config ``mediaType``."""
    kind: ArtifactKind | None = None
    """Set for cosign tags (from the ``.sig``/``.att``/``.sbom`` suffix); derived from the type otherwise."""
    annotations: Mapping[str, str] = field(default_factory=dict)
    """The referrer manifest's annotations (a sigstore bundle's predicate type lives here)."""

    def __str__(self) -> str:
        what = self.artifact_type or "no artifact type"
        kind = f" [{self.kind}]" if self.kind else ""
        return f"{what}{kind} via {self.via}"


def normalize_media_type(text: str) -> str:
    """Lower case, parameters dropped: ``Application/SPDX+json; charset=utf-8`` -> ``application/spdx+json``."""
    return text.split(";", 1)[0].strip().lower()


def referrer_kinds(referrer: Referrer) -> frozenset[ArtifactKind]:
    """The kinds a referrer counts as. A sigstore bundle is a signature when its predicate type is cosign's
    signing predicate, else an attestation (and also an SBOM when the predicate is SPDX or CycloneDX); a
    bundle WITHOUT a predicate type counts as nothing, since it could be either (the engine must then read
    the referrer manifest's annotations). Unknown types count as nothing."""
    kinds: set[ArtifactKind] = {referrer.kind} if referrer.kind else set()
    media_type = normalize_media_type(referrer.artifact_type or "")
    predicate = next((referrer.annotations[key] for key in _PREDICATE_ANNOTATIONS if key in referrer.annotations), "")
    if media_type in SIGNATURE_TYPES:
        kinds.add("signature")
    elif media_type in SBOM_TYPES:
        kinds.add("sbom")
    elif media_type in ATTESTATION_TYPES or (media_type.startswith(SIGSTORE_BUNDLE_PREFIX) and predicate):
        kinds.add("signature" if predicate == COSIGN_SIGN_PREDICATE else "attestation")
    if predicate.lower().startswith(_SBOM_PREDICATES):
        kinds.add("sbom")
    return frozenset(kinds)


def cosign_tag(subject: Digest, kind: ArtifactKind) -> str:
    """The tag cosign stores ``kind`` under for ``subject``: ``sha256-<hex>.sig`` / ``.att`` / ``.sbom``."""
    suffix = next(suffix for suffix, known in _COSIGN_SUFFIXES.items() if known == kind)
    return f"{subject.algorithm}-{subject.hex}{suffix}"


def referrers_tag(subject: Digest) -> str:
    """The OCI 1.1 referrers tag schema's tag for ``subject``: ``<alg>-<hex>``, the hex cut at 64."""
    return f"{subject.algorithm[:32]}-{subject.hex[:64]}"


def parse_cosign_tag(tag: str) -> tuple[Digest, ArtifactKind] | None:
    """``sha256-<hex>.sig`` -> (``sha256:<hex>``, ``"signature"``); None for any other tag."""
    match = _COSIGN_TAG.fullmatch(tag)
    if match is None:
        return None
    algorithm, hex_digest, suffix = (part for part in match.groups() if part is not None)
    return Digest(f"{algorithm}:{hex_digest}"), _COSIGN_SUFFIXES["." + suffix]


def missing_artifacts(required: Sequence[str], referrers: Sequence[Referrer], subject: Digest) -> list[str]:
    """One message per required artifact that no referrer of ``subject`` provides.

    A requirement is a kind (``signature``, ``attestation``, ``sbom``) or a media type compared with each
    referrer's artifact type (``application/spdx+json``). Referrers of other digests (e.g. of one
    platform's manifest when ``subject`` is the index) do not count: the pinned digest is what runs.
    """
    own = [referrer for referrer in referrers if referrer.subject == subject]
    others = len(referrers) - len(own)
    found = _summary(own, others)
    messages: list[str] = []
    for requirement in dict.fromkeys(required):  # once each, in the order configured
        wanted = requirement.strip().lower()
        if wanted in ARTIFACT_KINDS:
            present = any(wanted in referrer_kinds(referrer) for referrer in own)
        elif "/" in wanted:
            wanted = normalize_media_type(wanted)
            present = any(normalize_media_type(referrer.artifact_type or "") == wanted for referrer in own)
        else:
            kinds = ", ".join(ARTIFACT_KINDS)
            messages.append(f"required artifact {requirement!r} is neither a kind ({kinds}) nor a media type")
            continue
        if not present:
            messages.append(f"no {requirement} attached to {subject}; found {found}")
    return messages


def _summary(own: Sequence[Referrer], others: int, limit: int = 5) -> str:
    shown = ", ".join(str(referrer) for referrer in own[:limit])
    more = f", and {len(own) - limit} more" if len(own) > limit else ""
    text = f"{len(own)} referrer{'s' if len(own) != 1 else ''}" + (f": {shown}{more}" if own else "")
    if others:
        text += f" ({others} attached to other digests, not counted)"
    return text
