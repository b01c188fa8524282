"""A registry's answer read whole, within a size cap: what the rules of the client look at.

Every response that is read into memory (tags pages, catalog pages, error bodies, token answers, small
JSON documents) goes through ``read_capped``, so a registry that answers with an endless tags list or a
1 GiB error page costs at most the cap, and the read stops there with a clear error. Blobs and manifests
are not read here: they are streamed (blobs) or have their own limit (manifests, 4 MiB).

No I/O of its own beyond reading the body it is handed; no knowledge of the distribution API.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

MAX_DOCUMENT_BYTES = 8 * 1024 * 1024
"""A tags or catalog page, a token answer: far more than any legitimate one (1,000 tags are ~30 KiB)."""
MAX_ERROR_BODY_BYTES = 64 * 1024
"""Enough for any distribution error document; the rest of a larger body is never read."""

_LINK = re.compile(r"<([^>]*)>\s*((?:;\s*[^;,]+)*)")
_REL = re.compile(r';\s*rel\s*=\s*"?([^";]+)"?', re.IGNORECASE)


class BodyTooLargeError(Exception):
    """The body was larger than the cap; ``limit`` is the cap in bytes."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"answer larger than {limit} bytes")
        self.limit = limit


@dataclass(frozen=True, slots=True)
class Reply:
    """Status, headers and the (capped) body of one response, and the URL that answered."""

    status: int
    headers: httpx.Headers
    body: bytes
    url: httpx.URL

    def json(self) -> Any:
        """The body as JSON (``ValueError`` when it is not)."""
        return json.loads(self.body)

    def link(self, rel: str) -> str | None:
        """The target of the ``Link`` header's relation ``rel`` (pagination), else None."""
        for value in self.headers.get_list("link"):
            for match in _LINK.finditer(value):
                if any(found.strip().lower() == rel for found in _REL.findall(match.group(2))):
                    return match.group(1)
        return None


async def read_capped(response: httpx.Response, limit: int) -> bytes:
    """The body of ``response`` (decoded from any Content-Encoding, counted after decoding), at most
    ``limit`` bytes; ``BodyTooLargeError`` as soon as it grows past that. The caller closes the response."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit and not response.headers.get("content-encoding"):
        raise BodyTooLargeError(limit)
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > limit:
            raise BodyTooLargeError(limit)
    return bytes(body)


async def read_head_of(response: httpx.Response, limit: int) -> bytes:
    """At most ``limit`` bytes of the body (for error details): whatever comes after is never read."""
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) >= limit:
            return bytes(body[:limit])
    return bytes(body)


def retry_after(headers: httpx.Headers) -> float | None:
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max((when - datetime.datetime.now(datetime.UTC)).total_seconds(), 0.0)


def error_detail(body: bytes, scrub: Callable[[str], str]) -> str:
    """``CODE: message`` pairs of a distribution error document, with a detail that is plain text (where
    distribution says "no space left on device"); never the raw body. ``scrub`` takes the secrets out of
    each text BEFORE it is shortened, so a cut can never leave half a secret that no longer matches."""
    try:
        document = json.loads(body)
        errors = document.get("errors") or []
        parts = []
        for error in errors:
            if not isinstance(error, dict):
                continue
            part = scrub(f"{error.get('code', '?')}: {error.get('message', '')}".strip())[:300]
            detail = error.get("detail")
            if isinstance(detail, str) and detail.strip():
                part += f" ({scrub(detail.strip())[:200]})"
            parts.append(part)
    except (ValueError, AttributeError, TypeError):
        return ""
    return "; ".join(parts)[:400]
