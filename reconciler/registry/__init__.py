"""OCI distribution client and copy engine (httpx, asyncio).

Public API (stable; the engine codes against it):

* ``RegistryClient`` one async client per registry base URL: ping, manifests (HEAD/GET/PUT/DELETE),
  tags, catalog, blobs (HEAD, streaming GET, upload, cross-repository mount); an ``ImageStore``. Raises
  only the ``reconciler.errors.RegistryError`` family, each naming registry, repository and digest.
  Inside: ``session`` (the wire: TLS, slots, auth, deadlines, retries, the one exception mapping),
  ``breaker`` (a frozen registry fails fast), ``client`` (the read API), ``uploads`` and ``pipe`` (mount,
  monolithic, split and chunked uploads, the bytes on their way), ``verify`` (``verify_image``: read an
  image back, manifests, children and blob sizes).
* ``Copier`` / ``copy_image`` copy an image (all platforms) by digest between any two image stores:
  blobs, child manifests, index, then the tag LAST, so a tag never points at an incomplete image.
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
from reconciler.model.registryurl import is_loopback, normalize_registry_url
from reconciler.model.store import BlobOpener, BlobOutcome, CopyProgress, ImageStore, UploadOutcome
from reconciler.registry.client import RegistryClient
from reconciler.registry.copier import Copier, CopyReport, ImageSource, copy_image
from reconciler.registry.credentials import (
    CredentialResolver,
    Credentials,
    credentials_for,
    default_resolver,
    host_env_prefix,
    registry_env_prefix,
)
from reconciler.registry.retry import RetryPolicy
from reconciler.registry.session import DEFAULT_DEADLINE_SECONDS, DEFAULT_MAX_CONCURRENCY, RequestStats

if TYPE_CHECKING:  # only annotations: `reconciler copy` never loads the desired-state model (~15 ms)
    from reconciler.model.desired import Registry

__all__ = [
    "DEFAULT_DEADLINE_SECONDS",
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
    "ImageStore",
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
    deadline: float = DEFAULT_DEADLINE_SECONDS,
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
        deadline=deadline,
    )
