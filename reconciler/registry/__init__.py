"""OCI distribution client and copy engine (httpx, asyncio).

Public API (stable; the engine codes against it):

* ``RegistryClient`` one async client per registry base URL: ping, manifests (HEAD/GET/PUT/DELETE),
  tags, catalog, blobs (HEAD, streaming GET, upload, cross-repository mount). Raises only the
  ``reconciler.errors.RegistryError`` family, each naming registry, repository and digest.
* ``Copier`` / ``copy_image`` copy an image (all platforms) by digest: blobs, child manifests, index,
  then the tag LAST, so a tag never points at an incomplete image. ``CopyReport`` says what it did.
* ``Credentials``, ``credentials_for``, ``default_resolver`` where credentials come from (environment
  variables, Docker's ``config.json`` and credential helpers; see ``credentials`` for the naming).
* ``client_for(registry)`` a client built from a ``reconciler.yaml`` registry entry.
* ``RetryPolicy`` backoff with jitter and a bounded budget for 429/5xx/connection errors.

This package never touches desired state, plans or the CLI; it never logs or raises a secret.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from reconciler.model.manifest import Descriptor, Manifest, Platform
from reconciler.registry.client import (
    DEFAULT_MAX_CONCURRENCY,
    BlobOpener,
    RegistryClient,
    RequestStats,
    UploadOutcome,
    is_loopback,
    normalize_registry_url,
)
from reconciler.registry.copier import (
    BlobOutcome,
    Copier,
    CopyProgress,
    CopyReport,
    ImageSource,
    copy_image,
)
from reconciler.registry.credentials import (
    CredentialResolver,
    Credentials,
    credentials_for,
    default_resolver,
    host_env_prefix,
    registry_env_prefix,
)
from reconciler.registry.retry import RetryPolicy

if TYPE_CHECKING:  # only annotations: `reconciler copy` never loads the desired-state model (~15 ms)
    from reconciler.model.desired import Registry

__all__ = [
    "DEFAULT_MAX_CONCURRENCY",
    "BlobOpener",
    "BlobOutcome",
    "Copier",
    "CopyProgress",
    "CopyReport",
    "CredentialResolver",
    "Credentials",
    "Descriptor",
    "ImageSource",
    "Manifest",
    "Platform",
    "RegistryClient",
    "RequestStats",
    "RetryPolicy",
    "UploadOutcome",
    "client_for",
    "copy_image",
    "credentials_for",
    "default_resolver",
    "host_env_prefix",
    "is_loopback",
    "normalize_registry_url",
    "registry_env_prefix",
]


def client_for(
    registry: Registry,
    *,
    credentials: Credentials | CredentialResolver | None = None,
    root: str | Path | None = None,
    retry: RetryPolicy | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
    default_max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
) -> RegistryClient:
    """A ``RegistryClient`` for a registry of ``reconciler.yaml``.

    Credentials default to ``default_resolver(registry_name=registry.name)``: the registry's
    ``RECONCILER_REGISTRY_<NAME>_*`` variables, then the host-keyed ``RECONCILER_AUTH_<HOST>_*`` ones, then
    Docker's config.json. A relative ``ca_bundle`` is resolved against ``root`` (the desired-state
    directory). ``transport`` is an ``httpx.AsyncBaseTransport`` (tests)."""
    ca_bundle = registry.ca_bundle
    if ca_bundle is not None and root is not None and not Path(ca_bundle).is_absolute():
        ca_bundle = str(Path(root) / ca_bundle)
    return RegistryClient(
        url=registry.url,
        credentials=credentials if credentials is not None else default_resolver(registry_name=registry.name),
        insecure=registry.insecure,
        ca_bundle=ca_bundle,
        max_concurrency=registry.max_concurrency or default_max_concurrency,
        retry=retry,
        transport=transport,
        name=registry.name,
    )
