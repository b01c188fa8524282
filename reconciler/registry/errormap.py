"""The table from what went wrong on the wire to the project's error tree: foreign exceptions and statuses.

``RegistrySession.map_exceptions`` (the one place that catches foreign exceptions) and
``RegistrySession.error`` (unexpected statuses) look things up here. Pure: no I/O, no state.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable

import httpx

from reconciler.errors import (
    AuthError,
    NotFoundError,
    RegistryError,
    TransientRegistryError,
    UnsupportedManifestError,
)
from reconciler.registry.reply import BodyTooLargeError

_UNTRUSTED = "set ca_bundle for this registry, or insecure to skip verification"


def foreign_error(
    exc: BaseException, what: str, *, scrub: Callable[[str], str]
) -> tuple[type[RegistryError], str] | None:
    """(error class, message) for a foreign exception raised while doing ``what``; None for one that is
    not ours to map (cancellation, a programming error). ``scrub`` removes secrets from library texts."""
    if isinstance(exc, TimeoutError | httpx.TimeoutException):
        kind = type(exc).__name__ if isinstance(exc, httpx.TimeoutException) else "deadline"
        return TransientRegistryError, f"{what}: no answer in time ({kind})"
    if isinstance(exc, BodyTooLargeError):
        return UnsupportedManifestError, f"{what}: {exc}; refusing to read more"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return RegistryError, f"{what}: TLS certificate not trusted ({exc.verify_message or exc}); {_UNTRUSTED}"
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return RegistryError, f"{what}: {scrub(str(exc))}"
    if isinstance(exc, httpx.TransportError):
        text = scrub(str(exc) or type(exc).__name__)
        if "CERTIFICATE_VERIFY_FAILED" in text:
            return RegistryError, f"{what}: TLS certificate not trusted ({text}); {_UNTRUSTED}"
        return TransientRegistryError, f"{what}: {type(exc).__name__}: {text}"
    if isinstance(exc, OSError | ssl.SSLError):
        return TransientRegistryError, f"{what}: {type(exc).__name__}: {scrub(str(exc))}"
    return None


def status_error(status: int) -> type[RegistryError]:
    """The error class of an unexpected HTTP status: 401/403 auth, 404 not found, 429 and 5xx temporary."""
    if status in (401, 403):
        return AuthError
    if status == 404:
        return NotFoundError
    if status == 429 or status >= 500:
        return TransientRegistryError
    return RegistryError
