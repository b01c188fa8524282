"""The evidence the image gates judge: one image's platform manifests, configs and referrers, as values.

The engine builds these from what it fetched (an index's runnable children, each with its image manifest
and parsed config JSON; the referrers it found) and hands them to :func:`reconciler.policy.gates.evaluate`.
Also here: which children of an index are images at all, and when two platforms are the same one.
Nothing here does I/O or validates a config's shape (the gates do that, reporting, never raising).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from reconciler.model.digest import Digest
from reconciler.model.manifest import Descriptor, Manifest, Platform
from reconciler.policy.imageconfig import platform_from_config
from reconciler.policy.referrers import Referrer

_ATTESTATION_MANIFEST = ("vnd.docker.reference.type", "attestation-manifest")


@dataclass(frozen=True, slots=True)
class PlatformImage:
    """One platform's image: its image manifest and its config JSON (parsed, shape unchecked)."""

    platform: Platform | None
    """From the index descriptor; None for a single-platform image (the config's os/architecture then)."""
    manifest: Manifest
    config: object = field(default=None, hash=False)
    """What ``json.loads`` made of the config blob; None when the engine could not get it."""

    @property
    def effective_platform(self) -> Platform | None:
        return self.platform if self.platform is not None else platform_from_config(self.config)


@dataclass(frozen=True, slots=True)
class ImageEvidence:
    """Everything the gates look at for one image (or for the base image it must be built on)."""

    digest: Digest
    """The pinned digest: of the index for a multi-platform image, else of the image manifest."""
    platforms: tuple[PlatformImage, ...]
    referrers: tuple[Referrer, ...] = ()
    is_index: bool = False

    @classmethod
    def single(cls, manifest: Manifest, config: object, referrers: Sequence[Referrer] = ()) -> ImageEvidence:
        """Evidence of a single-platform image (its platform is read from its config)."""
        return cls(manifest.digest, (PlatformImage(None, manifest, config),), tuple(referrers), is_index=False)


def runnable_children(index: Manifest) -> tuple[Descriptor, ...]:
    """The children of an index that are images to run: not BuildKit's attestation manifests
    (``unknown/unknown``, annotated ``vnd.docker.reference.type: attestation-manifest``). The engine
    fetches these, and only these, for :attr:`ImageEvidence.platforms`."""
    return tuple(child for child in index.manifests if not is_attestation_manifest(child.platform, child.annotations))


def is_attestation_manifest(platform: Platform | None, annotations: Mapping[str, str] | None = None) -> bool:
    """BuildKit's attestation manifests in an index: ``unknown/unknown``, or annotated as one."""
    key, value = _ATTESTATION_MANIFEST
    unknown = platform is not None and platform.os == "unknown" and platform.architecture == "unknown"
    return unknown or (annotations or {}).get(key) == value


_ARCH_ALIASES = {"x86_64": "amd64", "x86-64": "amd64", "aarch64": "arm64", "i386": "386", "armhf": "arm"}
_DEFAULT_VARIANTS = {("arm64", "v8"), ("arm64", "8"), ("amd64", "v1")}


def _platform_key(platform: Platform) -> tuple[str, str, str]:
    """os/architecture/variant as containerd normalises them: arm64/v8 = arm64, amd64/v1 = amd64, arm = arm/v7."""
    arch = platform.architecture.lower()
    arch = _ARCH_ALIASES.get(arch, arch)
    variant = (platform.variant or "").lower()
    if (arch, variant) in _DEFAULT_VARIANTS:
        variant = ""
    elif arch == "arm":
        variant = "v" + variant.lstrip("v") if variant else "v7"
    return platform.os.lower(), arch, variant


def same_platform(left: Platform, right: Platform) -> bool:
    """Same os, architecture and variant (normalised); ``os.version`` is not compared."""
    return _platform_key(left) == _platform_key(right)
