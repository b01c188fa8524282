"""The rules for a registry's URL (and a token realm's), in one place: the validator and the client share them.

A registry URL is ``http(s)://host[:port]`` with no path, query, fragment or credentials. Plain HTTP is
allowed only to a loopback host (as Docker does) or when the registry is explicitly marked ``insecure``;
the same rule decides whether a token realm may receive credentials, so a registry on verified TLS can
never send its users' Basic credentials to ``http://elsewhere/token``.

Errors are ``ValueError`` with a message that never repeats credentials found in the URL. No I/O.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import SplitResult, urlsplit


def is_loopback(host: str) -> bool:
    """True for ``localhost``, 127.0.0.0/8 and ::1 (with or without a port)."""
    try:
        hostname = urlsplit(f"//{host}").hostname or host
    except ValueError:
        return False
    if hostname == "localhost" or hostname.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def _split(url: str) -> SplitResult:
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError for a port that is not a number or out of range
    except ValueError:
        raise ValueError("is not a URL of the form http(s)://host[:port]") from None
    return parts


def _netloc_without_userinfo(parts: SplitResult) -> str:
    return parts.netloc.rpartition("@")[2]


def normalize_registry_url(url: str, *, insecure: bool = False) -> str:
    """``scheme://host[:port]`` (host lower-cased) from a URL or a bare ``host[:port]``.

    A bare loopback host gets plain HTTP; any other bare host HTTPS unless ``insecure``. Raise
    ``ValueError`` for a URL with credentials, a path, a query, a scheme other than http(s), or plain HTTP
    to a non-loopback host without ``insecure``.
    """
    stripped = url.strip()
    text = stripped.rstrip("/")
    if "://" not in stripped:  # asked before the slashes go: "https://" is an empty URL, not a host "https:"
        bare = _split(f"//{text}")
        scheme = "http" if is_loopback(_netloc_without_userinfo(bare)) or insecure else "https"
        text = f"{scheme}://{text}"
    parts = _split(text)
    if parts.username is not None or parts.password is not None:
        raise ValueError(
            "must not embed credentials (user:password@); use environment variables or Docker's config.json"
        )
    if parts.scheme not in ("http", "https") or not parts.netloc or not parts.hostname:
        raise ValueError("must be http(s)://host[:port]")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"must not have a path or query: {parts.scheme}://{parts.netloc}{parts.path}")
    if parts.scheme == "http" and not insecure and not is_loopback(parts.netloc):
        raise ValueError(
            f"plain HTTP to {parts.netloc} needs an explicit opt-in "
            "(insecure: true in reconciler.yaml, --insecure on the command line)"
        )
    return f"{parts.scheme}://{parts.netloc.lower()}"


def check_realm(realm: str, *, insecure: bool) -> None:
    """Refuse a token realm that credentials must not be sent to: not http(s), or plain HTTP to a host that
    is not loopback while the registry is not marked insecure (``ValueError`` saying why)."""
    parts = _split(realm)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"token realm {parts.scheme}://{_netloc_without_userinfo(parts)} is not an http(s) URL")
    if parts.scheme == "http" and not insecure and not is_loopback(_netloc_without_userinfo(parts)):
        raise ValueError(
            f"token realm is plain HTTP on {_netloc_without_userinfo(parts)}: credentials are only sent over "
            "HTTPS (or to loopback, or to a registry marked insecure)"
        )
