"""The OCI distribution client: one ``RegistryClient`` per registry base URL, async, on httpx.

The client holds the rules of the distribution API (headers, status codes, pagination, upload
sessions, error mapping); the httpx transport only moves bytes, so tests swap in an
``httpx.MockTransport`` for failures a real registry cannot produce on demand.

What it guarantees:

* every manifest request sends all four manifest media types in ``Accept``;
* manifests are kept byte-exact, checked against the digest that named them, and refused above 4 MiB;
* blobs are streamed in bounded chunks, never held whole in memory, and hashed while they stream; an
  upload whose bytes do not match its digest is aborted before the registry sees its last byte;
* at most ``max_concurrency`` requests are in flight to one registry, over pooled keep-alive connections;
* 429, 5xx and connection failures are retried per ``RetryPolicy`` (``Retry-After`` honoured);
* every failure is one of ``reconciler.errors``' registry errors, naming registry, repository and digest.

It never logs or raises a secret: Authorization headers, passwords and tokens stay inside
``Authenticator`` and request headers.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import datetime
import functools
import hashlib
import ipaddress
import logging
import os
import ssl
from collections.abc import AsyncIterable, AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Literal
from urllib.parse import quote, urlencode, urljoin, urlsplit

import httpx

from reconciler.errors import (
    AuthError,
    DigestMismatchError,
    NotFoundError,
    RegistryError,
    TransientRegistryError,
    UnsupportedManifestError,
)
from reconciler.model.digest import Digest, is_valid_digest
from reconciler.model.manifest import (
    MANIFEST_ACCEPT,
    MAX_MANIFEST_BYTES,
    Descriptor,
    InvalidManifestError,
    Manifest,
    digest_of,
    parse_manifest,
)
from reconciler.registry.auth import CATALOG_SCOPE, Authenticator, repository_scope
from reconciler.registry.credentials import CredentialResolver, Credentials
from reconciler.registry.retry import RetryPolicy, with_retries
from reconciler.registry.transport import FastTransport
from reconciler.registry.urls import Origin

log = logging.getLogger(__name__)

DEFAULT_MAX_CONCURRENCY = 16
"""Requests in flight to one registry when neither the caller nor reconciler.yaml says otherwise."""
DEFAULT_TIMEOUT_SECONDS = 60.0
STREAM_CHUNK_BYTES = 1024 * 1024
"""Bytes per read of a streamed blob: large enough for throughput, small enough for flat memory."""
UPLOAD_WRITE_BYTES = 256 * 1024
"""Streamed uploads are written in pieces of about this size (memory per transfer: two of them)."""
DEFAULT_PATCH_CHUNK_BYTES = 8 * 1024 * 1024
"""Bytes per PATCH of a chunked upload (raised to the registry's ``OCI-Chunk-Min-Length``)."""
MAX_PATCH_CHUNK_BYTES = 32 * 1024 * 1024
MAX_SMALL_BLOB_BYTES = 16 * 1024 * 1024
"""``get_blob`` (whole blob in memory) refuses blobs above this: stream them instead."""
TAGS_PAGE_SIZE = 1000
_PROXY_VARIABLES = tuple(name for base in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY") for name in (base, base.lower()))
MAX_REDIRECTS = 5
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
USER_AGENT = "reconciler"

BlobOpener = Callable[[], AbstractAsyncContextManager[AsyncIterator[bytes]]]
"""Opens a fresh stream of a blob's bytes; called once per upload attempt (retries re-open it)."""
ByteProgress = Callable[[int], None]
"""Called with each number of bytes sent (negative to rewind when an attempt is retried)."""
UploadOutcome = Literal["uploaded", "mounted"]


_HELD_SLOTS: contextvars.ContextVar[frozenset[int]] = contextvars.ContextVar("held_slots", default=frozenset())
"""Ids of the clients whose request slot the current task holds."""


def _proxy_configured() -> bool:
    """True when the environment asks for an HTTP proxy: then httpx's own transport (which honours
    ``HTTP(S)_PROXY``/``ALL_PROXY``/``NO_PROXY``) is used instead of the FastTransport."""
    return any(os.environ.get(name) for name in _PROXY_VARIABLES)


def is_loopback(host: str) -> bool:
    """True for ``localhost``, 127.0.0.0/8 and ::1 (with or without a port)."""
    hostname = urlsplit(f"//{host}").hostname or host
    if hostname == "localhost" or hostname.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


def normalize_registry_url(url: str, *, insecure: bool = False) -> str:
    """``https://host[:port]`` from a URL or a bare ``host[:port]``. A bare loopback host gets plain
    HTTP (as Docker does); plain HTTP to any other host needs ``insecure``. Raise ``ValueError`` for URLs
    with a path, a query or embedded credentials."""
    text = url.strip().rstrip("/")
    if "://" not in text:
        bare = urlsplit(f"//{text}")
        text = f"{'http' if is_loopback(bare.netloc) or insecure else 'https'}://{text}"
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"registry URL must be http(s)://host[:port], not {url!r}")
    if parts.username is not None or parts.password is not None:
        raise ValueError("registry URL must not embed credentials; use environment variables or Docker's config.json")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"registry URL must not have a path or query: {parts.scheme}://{parts.netloc}{parts.path}")
    if parts.scheme == "http" and not insecure and not is_loopback(parts.netloc):
        raise ValueError(
            f"plain HTTP to {parts.netloc} needs an explicit opt-in "
            "(insecure: true in reconciler.yaml, --insecure on the CLI)"
        )
    return f"{parts.scheme}://{parts.netloc.lower()}"


@dataclass(slots=True)
class RequestStats:
    """What a client sent, for tests and benchmarks (token-service requests included)."""

    requests: int = 0
    by_method: dict[str, int] = field(default_factory=dict)
    bytes_uploaded: int = 0
    bytes_downloaded: int = 0

    def count(self, method: str) -> None:
        self.requests += 1
        self.by_method[method] = self.by_method.get(method, 0) + 1


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
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


async def _raw_chunks(response: httpx.Response, chunk_size: int | None) -> AsyncIterator[bytes]:
    """A blob's bytes exactly as sent (never content-decoded: the digest covers the stored bytes), in
    chunks as they come off the socket (``chunk_size`` None: no re-chunking copies) or of ``chunk_size``.
    A response that is already read (mock transports build them so) is served from memory."""
    if response.is_stream_consumed:
        content = response.content
        step = chunk_size or STREAM_CHUNK_BYTES
        for start in range(0, len(content), step):
            yield content[start : start + step]
        return
    async for chunk in response.aiter_raw(chunk_size):
        yield chunk


def _with_query(url: str, name: str, value: str) -> str:
    """``url`` with ``name=value`` added to its query (upload locations carry their own state parameters,
    which httpx's ``params=`` would replace)."""
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}{quote(name, safe='')}={quote(value, safe='')}"


def _registry_error_detail(response: httpx.Response) -> str:
    """``CODE: message`` pairs from a distribution error body; never the raw body (it may echo headers)."""
    try:
        document = response.json()
        errors = document.get("errors") or []
        parts = [f"{e.get('code', '?')}: {e.get('message', '')}".strip() for e in errors if isinstance(e, dict)]
    except (ValueError, AttributeError, httpx.ResponseNotRead):
        return ""
    return "; ".join(parts)[:300]


class RegistryClient:
    """An async client for one registry (one base URL). Use as ``async with RegistryClient(url=...)``.

    ``credentials`` is a ``Credentials``, a resolver (host -> Credentials | None, asked lazily when the
    registry first demands authentication), or None for anonymous access. ``transport`` replaces httpx's
    network transport (tests). ``name`` is the registry's name in reconciler.yaml, used in messages.
    """

    def __init__(
        self,
        *,
        url: str,
        credentials: Credentials | CredentialResolver | None = None,
        insecure: bool = False,
        ca_bundle: str | None = None,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        name: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        page_size: int = TAGS_PAGE_SIZE,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self.url = normalize_registry_url(url, insecure=insecure)
        self._origin = Origin(self.url)
        self.host = urlsplit(self.url).netloc
        self.name = name or self.host
        self.insecure = insecure
        self.max_concurrency = max_concurrency
        self.retry = retry if retry is not None else RetryPolicy()
        self.page_size = page_size
        """``n`` asked for per page of tags or catalog (servers may ignore it)."""
        self.stats = RequestStats()
        self._ca_bundle = ca_bundle
        verify: ssl.SSLContext | bool = True
        if ca_bundle is not None:
            verify = ssl.create_default_context(cafile=ca_bundle)
        elif insecure:
            verify = False
        self._auth = Authenticator(registry=self.host, credentials=credentials)
        self._slots = asyncio.Semaphore(max_concurrency)
        self._chunk_min = 0
        """The registry's ``OCI-Chunk-Min-Length`` (0 when it sets none), learned from upload sessions."""
        self._verify = verify
        self._fast = transport is None and not _proxy_configured()
        if self._fast:
            transport = FastTransport(ssl_context=self._ssl_context)
        self._transport = transport
        self._timeout = httpx.Timeout(timeout, connect=min(timeout, 15.0))
        self._timeout_extension = self._timeout.as_dict()
        # The registry's own origin. Over plain HTTP there is no TLS to verify, so no SSL context is built
        # (loading the CA store costs a tenth of a second per client). Redirects (blob storage) and token
        # realms on other origins go through ``_foreign``, which always verifies as configured.
        self._http = httpx.AsyncClient(
            base_url=self.url,
            transport=transport,
            verify=verify if self.url.startswith("https://") else False,
            timeout=self._timeout,
            limits=httpx.Limits(max_connections=max_concurrency + 2, max_keepalive_connections=max_concurrency + 2),
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT},
        )
        self._foreign: dict[str, httpx.AsyncClient] = {}

    def __repr__(self) -> str:
        return f"RegistryClient(url={self.url!r}, name={self.name!r})"

    @property
    def key(self) -> str:
        """Identity of the registry (scheme and host): two clients with equal keys talk to the same
        registry, so blobs can be mounted between their repositories."""
        return self.url

    async def __aenter__(self) -> RegistryClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()
        for client in self._foreign.values():
            await client.aclose()

    @asynccontextmanager
    async def _slot(self) -> AsyncIterator[None]:
        """One of this registry's request slots, for the duration of a request (or a streamed body).

        A task that already holds a slot of this client (an upload streaming from a blob of the same
        registry, after a declined mount) does not wait for a second one: waiting could deadlock when
        every slot is held by such a transfer."""
        held = _HELD_SLOTS.get()
        if id(self) in held:
            yield
            return
        async with self._slots:
            token = _HELD_SLOTS.set(held | {id(self)})
            try:
                yield
            finally:
                _HELD_SLOTS.reset(token)

    def _ssl_context(self) -> ssl.SSLContext:
        """TLS settings for every https origin this client talks to (built on first use): the system's CA
        store (where enterprises install their CAs), the registry's ``ca_bundle``, or no verification
        when ``insecure``."""
        if self._ca_bundle is not None:
            return ssl.create_default_context(cafile=self._ca_bundle)
        context = ssl.create_default_context()
        if self.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def _client_for(self, url: httpx.URL) -> httpx.AsyncClient:
        """The registry's own client for its origin, a separate verifying one for any other origin.
        (With the FastTransport, TLS settings live in the transport: one client serves every origin.)"""
        if self._fast or f"{url.scheme}://{url.netloc.decode()}" == self.url:
            return self._http
        client = self._foreign.get(url.scheme)
        if client is None:
            client = httpx.AsyncClient(
                transport=self._transport,
                verify=self._verify if url.scheme == "https" else False,  # plain HTTP has nothing to verify
                timeout=self._timeout,
                follow_redirects=False,
                headers={"User-Agent": USER_AGENT},
            )
            self._foreign[url.scheme] = client
        return client

    def _build_request(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str],
        params: httpx.QueryParams | dict[str, str] | None,
        content: bytes | AsyncIterable[bytes] | None,
    ) -> httpx.Request:
        """The request for ``url`` (a path on this registry, or an absolute URL such as an upload
        location), with ``params`` added to its query. Built directly rather than by
        ``AsyncClient.build_request``, which parses and merges the URL twice (and the URL is assembled
        by ``Origin`` rather than parsed): at ~2,000 requests for 200 small images, URL parsing was a
        fifth of reconciler's CPU."""
        if params:
            url += ("&" if "?" in url else "?") + urlencode(dict(params), quote_via=quote)
        return httpx.Request(
            method,
            self._origin.url(url),
            headers={"User-Agent": USER_AGENT, **headers},
            content=content,
            extensions={"timeout": self._timeout_extension},
        )

    async def _send_one(self, request: httpx.Request) -> httpx.Response:
        """One request, no redirect, response streamed. Our own FastTransport is called directly:
        ``AsyncClient.send`` adds nothing a registry needs (cookies, auth flows, event hooks) and costs
        about 0.1 ms per request in cookie handling alone."""
        if not self._fast:
            return await self._client_for(request.url).send(request, stream=True)
        response = await self._transport.handle_async_request(request)  # type: ignore[union-attr]
        response.request = request
        return response

    async def _send(self, request: httpx.Request, *, stream: bool) -> httpx.Response:
        """Send, following redirects of GET/HEAD (blob storage) by hand: a redirect to another origin
        never carries our Authorization header, and is verified like any TLS connection."""
        for _ in range(MAX_REDIRECTS):
            self.stats.count(request.method)
            response = await self._send_one(request)
            location = response.headers.get("location")
            if (
                response.status_code not in REDIRECT_STATUSES
                or location is None
                or request.method not in ("GET", "HEAD")
            ):
                break
            await response.aclose()
            target = request.url.join(location)
            headers = dict(request.headers)
            headers.pop("host", None)
            if f"{target.scheme}://{target.netloc.decode()}" != f"{request.url.scheme}://{request.url.netloc.decode()}":
                headers.pop("authorization", None)
            request = httpx.Request(request.method, target, headers=headers, extensions=request.extensions)
        if not stream:
            try:
                await response.aread()
            finally:
                await response.aclose()
        return response

    # ------------------------------------------------------------------ plumbing

    def _error(
        self, response: httpx.Response, what: str, *, repository: str | None, digest: str | None
    ) -> RegistryError:
        status = response.status_code
        detail = _registry_error_detail(response)
        message = f"{what}: HTTP {status}" + (f" ({detail})" if detail else "")
        kwargs = {"registry": self.name, "repository": repository, "digest": digest, "status": status}
        if status in (401, 403):
            return AuthError(message, **kwargs)  # type: ignore[arg-type]
        if status == 404:
            return NotFoundError(message, **kwargs)  # type: ignore[arg-type]
        if status == 429 or status >= 500:
            return TransientRegistryError(message, retry_after=_retry_after(response), **kwargs)  # type: ignore[arg-type]
        return RegistryError(message, **kwargs)  # type: ignore[arg-type]

    def _transport_error(
        self, exc: Exception, what: str, *, repository: str | None, digest: str | None
    ) -> RegistryError:
        text = str(exc) or type(exc).__name__
        if "CERTIFICATE_VERIFY_FAILED" in text or isinstance(exc, ssl.SSLCertVerificationError):
            return RegistryError(
                f"{what}: TLS certificate not trusted ({text}); "
                "set ca_bundle for this registry, or insecure to skip verification",
                registry=self.name,
                repository=repository,
                digest=digest,
            )
        if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
            return RegistryError(f"{what}: {text}", registry=self.name, repository=repository, digest=digest)
        return TransientRegistryError(
            f"{what}: {type(exc).__name__}: {text}", registry=self.name, repository=repository, digest=digest
        )

    async def _fetch_token(self, request: httpx.Request) -> httpx.Response:
        self.stats.count("TOKEN")
        try:
            response = await self._client_for(request.url).send(request)
            await response.aread()
        except httpx.TransportError as exc:
            raise self._transport_error(exc, "token request failed", repository=None, digest=None) from exc
        return response

    async def _exchange(
        self,
        method: str,
        url: str,
        *,
        scopes: Sequence[str],
        what: str,
        repository: str | None = None,
        digest: str | None = None,
        headers: dict[str, str] | None = None,
        params: httpx.QueryParams | dict[str, str] | None = None,
        content: bytes | AsyncIterable[bytes] | None = None,
        stream: bool = False,
    ) -> httpx.Response:
        """One request, authenticated (retried once after a 401 challenge). No retry on failures:
        callers wrap this in ``with_retries`` where repeating is safe. A streamed response must be closed."""
        exchange = functools.partial(
            self._exchange_once,
            method=method,
            url=url,
            scopes=scopes,
            what=what,
            repository=repository,
            digest=digest,
            headers=headers,
            params=params,
            content=content,
            stream=stream,
        )
        if not self._auth.learned:
            # Only the first request learns how this registry authenticates; the others wait for it
            # instead of all collecting the same 401.
            async with self._auth.learning_lock:
                if not self._auth.learned:
                    return await exchange()
        return await exchange()

    async def _exchange_once(
        self,
        *,
        method: str,
        url: str,
        scopes: Sequence[str],
        what: str,
        repository: str | None,
        digest: str | None,
        headers: dict[str, str] | None,
        params: httpx.QueryParams | dict[str, str] | None,
        content: bytes | AsyncIterable[bytes] | None,
        stream: bool,
    ) -> httpx.Response:
        request_headers = dict(headers or {})
        try:
            authorization = await self._auth.authorization(scopes, self._fetch_token)
        except httpx.TransportError as exc:
            raise self._transport_error(exc, what, repository=repository, digest=digest) from exc
        for attempt in (1, 2):
            if authorization is not None:
                request_headers["Authorization"] = authorization
            request = self._build_request(method, url, headers=request_headers, params=params, content=content)
            try:
                response = await self._send(request, stream=True)
            except httpx.TransportError as exc:
                raise self._transport_error(exc, what, repository=repository, digest=digest) from exc
            if response.status_code != 401:
                self._auth.on_success()
                if not stream:
                    try:
                        await response.aread()
                    except httpx.TransportError as exc:
                        raise self._transport_error(exc, what, repository=repository, digest=digest) from exc
                    finally:
                        await response.aclose()
                return response
            try:
                await response.aread()
            except httpx.TransportError:
                pass
            finally:
                await response.aclose()
            if attempt == 2:
                break
            if content is not None and not isinstance(content, bytes):
                # A streamed body cannot be replayed here; the caller's retry re-opens its source.
                await self._auth.on_challenge(response, scopes, authorization, self._fetch_token)
                raise TransientRegistryError(
                    f"{what}: authorization expired during a streamed request",
                    registry=self.name,
                    repository=repository,
                    digest=digest,
                    status=401,
                )
            authorization = await self._auth.on_challenge(response, scopes, authorization, self._fetch_token)
        raise AuthError(
            f"{what}: credentials refused (401)", registry=self.name, repository=repository, digest=digest, status=401
        )

    async def _request(
        self,
        method: str,
        url: str,
        *,
        scopes: Sequence[str],
        what: str,
        ok: Sequence[int] = (200,),
        missing_ok: bool = False,
        repository: str | None = None,
        digest: str | None = None,
        headers: dict[str, str] | None = None,
        params: httpx.QueryParams | dict[str, str] | None = None,
        content: bytes | None = None,
    ) -> httpx.Response | None:
        """A buffered request with retries; None for a 404 when ``missing_ok``."""

        async def attempt() -> httpx.Response | None:
            async with self._slot():
                response = await self._exchange(
                    method,
                    url,
                    scopes=scopes,
                    what=what,
                    repository=repository,
                    digest=digest,
                    headers=headers,
                    params=params,
                    content=content,
                )
            if response.status_code in ok:
                return response
            if response.status_code == 404 and missing_ok:
                return None
            raise self._error(response, what, repository=repository, digest=digest)

        return await with_retries(self.retry, attempt, what=f"{what} on {self.name}")

    # ------------------------------------------------------------------ API

    async def ping(self) -> None:
        """Check that the registry speaks the distribution API and accepts our credentials (if it asks)."""
        await self._request("GET", "/v2/", scopes=(), what="ping")

    async def head_manifest(self, repository: str, reference: str) -> Descriptor | None:
        """Descriptor of the manifest ``reference`` (tag or digest) names, or None when absent. One request."""
        digest = reference if is_valid_digest(reference) else None
        what = f"HEAD manifest {reference}"
        response = await self._request(
            "HEAD",
            f"/v2/{repository}/manifests/{reference}",
            scopes=[repository_scope(repository, "pull")],
            what=what,
            missing_ok=True,
            repository=repository,
            digest=digest,
            headers={"Accept": MANIFEST_ACCEPT},
        )
        if response is None:
            return None
        media_type = response.headers.get("content-type", "").split(";", 1)[0].strip()
        found = response.headers.get("docker-content-digest")
        if found is None or not is_valid_digest(found):
            if digest is not None:
                found = digest
            else:
                # A registry that does not name the digest on HEAD: fall back to GET and hash it ourselves.
                manifest = await self.get_manifest(repository, reference)
                return manifest.descriptor
        if digest is not None and found != digest:
            raise DigestMismatchError(
                f"registry says the manifest is {found}", registry=self.name, repository=repository, digest=digest
            )
        size_text = response.headers.get("content-length")
        size = int(size_text) if size_text and size_text.isdigit() else -1
        return Descriptor(media_type=media_type, digest=Digest(found), size=size)

    async def get_manifest(self, repository: str, reference: str) -> Manifest:
        """The manifest ``reference`` names, byte-exact and checked against its digest (the reference
        when it is a digest, else ``Docker-Content-Digest``). Raises NotFoundError when absent,
        UnsupportedManifestError for schema 1, unknown kinds and manifests above 4 MiB."""
        digest = reference if is_valid_digest(reference) else None
        what = f"GET manifest {reference}"

        async def attempt() -> Manifest:
            async with self._slot():
                response = await self._exchange(
                    "GET",
                    f"/v2/{repository}/manifests/{reference}",
                    scopes=[repository_scope(repository, "pull")],
                    what=what,
                    repository=repository,
                    digest=digest,
                    headers={"Accept": MANIFEST_ACCEPT},
                    stream=True,
                )
                try:
                    if response.status_code != 200:
                        await response.aread()
                        raise self._error(response, what, repository=repository, digest=digest)
                    declared = response.headers.get("content-length")
                    if declared and declared.isdigit() and int(declared) > MAX_MANIFEST_BYTES:
                        raise UnsupportedManifestError(
                            f"manifest of {declared} bytes exceeds the {MAX_MANIFEST_BYTES} byte limit",
                            registry=self.name,
                            repository=repository,
                            digest=digest,
                        )
                    body = bytearray()
                    try:
                        async for chunk in response.aiter_bytes():  # decodes a Content-Encoding, if any
                            body += chunk
                            if len(body) > MAX_MANIFEST_BYTES:
                                raise UnsupportedManifestError(
                                    f"manifest exceeds the {MAX_MANIFEST_BYTES} byte limit",
                                    registry=self.name,
                                    repository=repository,
                                    digest=digest,
                                )
                    except httpx.TransportError as exc:
                        raise self._transport_error(exc, what, repository=repository, digest=digest) from exc
                finally:
                    await response.aclose()
            self.stats.bytes_downloaded += len(body)
            expected = digest or response.headers.get("docker-content-digest")
            if expected is not None and not is_valid_digest(expected):
                expected = None
            try:
                return parse_manifest(bytes(body), response.headers.get("content-type"), digest=expected)
            except InvalidManifestError as exc:
                if exc.unsupported:
                    raise UnsupportedManifestError(
                        str(exc), registry=self.name, repository=repository, digest=expected
                    ) from exc
                if expected is not None and digest_of(bytes(body), expected.split(":", 1)[0]) != expected:
                    raise DigestMismatchError(
                        str(exc), registry=self.name, repository=repository, digest=expected
                    ) from exc
                raise RegistryError(
                    f"invalid manifest: {exc}", registry=self.name, repository=repository, digest=expected
                ) from exc

        return await with_retries(self.retry, attempt, what=f"{what} on {self.name}")

    async def put_manifest(self, repository: str, reference: str, raw: bytes, media_type: str) -> Digest:
        """Store ``raw`` byte-exact under ``reference`` (a tag, or its own digest) with ``media_type`` as
        Content-Type; return its digest. Putting by tag stores the manifest and moves the tag at once."""
        own = digest_of(raw)
        if is_valid_digest(reference):
            own = digest_of(raw, reference.split(":", 1)[0])
            if own != reference:
                raise DigestMismatchError(
                    f"refusing to PUT a manifest whose bytes hash to {own}",
                    registry=self.name,
                    repository=repository,
                    digest=reference,
                )
        what = f"PUT manifest {reference}"
        response = await self._request(
            "PUT",
            f"/v2/{repository}/manifests/{reference}",
            scopes=[repository_scope(repository, "pull", "push")],
            what=what,
            ok=(200, 201, 202, 204),
            repository=repository,
            digest=str(own),
            headers={"Content-Type": media_type},
            content=raw,
        )
        assert response is not None
        answered = response.headers.get("docker-content-digest")
        if answered and is_valid_digest(answered) and answered.split(":", 1)[0] == own.algorithm and answered != own:
            raise DigestMismatchError(
                f"registry stored the manifest as {answered}", registry=self.name, repository=repository, digest=own
            )
        self.stats.bytes_uploaded += len(raw)
        return own

    async def delete_manifest(self, repository: str, digest: str) -> None:
        """Delete the manifest ``digest`` (and so every tag pointing at it). NotFoundError when absent."""
        if not is_valid_digest(digest):
            raise ValueError(f"delete_manifest needs a digest, not {digest!r} (registries delete by digest only)")
        what = "DELETE manifest"
        await self._request(
            "DELETE",
            f"/v2/{repository}/manifests/{digest}",
            scopes=[repository_scope(repository, "pull", "push", "delete")],
            what=what,
            ok=(200, 202, 204),
            repository=repository,
            digest=digest,
        )

    async def _paginate(
        self, path: str, key: str, scopes: Sequence[str], what: str, repository: str | None
    ) -> list[str]:
        found: set[str] = set()
        seen_urls: set[str] = set()
        url: str | None = path
        params: dict[str, str] | None = {"n": str(self.page_size)}
        while url is not None:
            response = await self._request(
                "GET",
                url,
                scopes=scopes,
                what=what,
                missing_ok=True,
                repository=repository,
                params=params,
            )
            if response is None:
                if not found:
                    return []
                raise NotFoundError(f"{what}: a later page vanished (404)", registry=self.name, repository=repository)
            try:
                names = response.json().get(key) or []
            except (ValueError, AttributeError) as exc:
                raise RegistryError(f"{what}: answer is not JSON", registry=self.name, repository=repository) from exc
            before = len(found)
            found.update(str(name) for name in names)
            seen_urls.add(str(response.request.url))
            link = response.links.get("next", {}).get("url")
            if not link or len(found) == before:
                break  # no next page, or a server that ignores n/last and repeats itself
            url = urljoin(str(response.request.url), link)
            params = None
            if url in seen_urls:
                break
        return sorted(found)

    async def list_tags(self, repository: str) -> list[str]:
        """Every tag of ``repository``, sorted, following ``Link`` pagination. [] for an unknown repository."""
        return await self._paginate(
            f"/v2/{repository}/tags/list", "tags", [repository_scope(repository, "pull")], "list tags", repository
        )

    async def has_tags(self, repository: str) -> bool:
        """Whether ``repository`` holds at least one tag. One request (the first page of the tags list,
        one entry long), whatever the number of tags; False for an unknown repository."""
        response = await self._request(
            "GET",
            f"/v2/{repository}/tags/list",
            scopes=[repository_scope(repository, "pull")],
            what="list tags",
            missing_ok=True,
            repository=repository,
            params={"n": "1"},
        )
        if response is None:
            return False
        try:
            return bool(response.json().get("tags"))
        except (ValueError, AttributeError) as exc:
            raise RegistryError("list tags: answer is not JSON", registry=self.name, repository=repository) from exc

    async def catalog(self) -> list[str]:
        """Every repository of the registry, sorted (needs catalog access on registries with auth)."""
        return await self._paginate("/v2/_catalog", "repositories", [CATALOG_SCOPE], "catalog", None)

    async def head_blob(self, repository: str, digest: str) -> int | None:
        """Size of blob ``digest`` in ``repository``, or None when it is not there. One request."""
        response = await self._request(
            "HEAD",
            f"/v2/{repository}/blobs/{digest}",
            scopes=[repository_scope(repository, "pull")],
            what="HEAD blob",
            missing_ok=True,
            repository=repository,
            digest=digest,
        )
        if response is None:
            return None
        size = response.headers.get("content-length")
        return int(size) if size and size.isdigit() else -1

    async def blob_exists(self, repository: str, digest: str) -> bool:
        return await self.head_blob(repository, digest) is not None

    @asynccontextmanager
    async def stream_blob(
        self, repository: str, digest: str, *, verify: bool = True, chunk_size: int | None = None
    ) -> AsyncIterator[AsyncIterator[bytes]]:
        """``async with client.stream_blob(repo, digest) as chunks: async for chunk in chunks: ...``

        Holds one of the registry's request slots while open. With ``verify`` the bytes are hashed as
        they pass and the iterator raises DigestMismatchError at the end instead of finishing when they
        do not match (so a consumer that forwards bytes never forwards a complete wrong blob). Not retried:
        a caller that needs retries re-opens the stream (see ``Copier``)."""
        if not is_valid_digest(digest):
            raise ValueError(f"not a digest: {digest!r}")
        what = "GET blob"
        async with self._slot():
            response = await self._exchange(
                "GET",
                f"/v2/{repository}/blobs/{digest}",
                scopes=[repository_scope(repository, "pull")],
                what=what,
                repository=repository,
                digest=digest,
                stream=True,
            )
            try:
                if response.status_code != 200:
                    await response.aread()
                    raise self._error(response, what, repository=repository, digest=digest)
                yield self._blob_chunks(response, repository, digest, verify=verify, chunk_size=chunk_size)
            finally:
                await response.aclose()

    async def _blob_chunks(
        self, response: httpx.Response, repository: str, digest: str, *, verify: bool, chunk_size: int | None
    ) -> AsyncIterator[bytes]:
        hasher = hashlib.new(digest.split(":", 1)[0]) if verify else None
        received = 0
        try:
            async for chunk in _raw_chunks(response, chunk_size):
                if hasher is not None:
                    hasher.update(chunk)
                received += len(chunk)
                self.stats.bytes_downloaded += len(chunk)
                yield chunk
        except httpx.TransportError as exc:
            raise self._transport_error(
                exc, f"GET blob broke after {received} bytes", repository=repository, digest=digest
            ) from exc
        if hasher is not None:
            actual = f"{digest.split(':', 1)[0]}:{hasher.hexdigest()}"
            if actual != digest:
                raise DigestMismatchError(
                    f"source served {received} bytes hashing to {actual}",
                    registry=self.name,
                    repository=repository,
                    digest=digest,
                )

    async def get_blob(self, repository: str, digest: str, *, max_bytes: int = MAX_SMALL_BLOB_BYTES) -> bytes:
        """A small blob (an image config) in memory, verified. Refuses blobs larger than ``max_bytes``."""

        async def attempt() -> bytes:
            async with self.stream_blob(repository, digest) as chunks:
                body = bytearray()
                async for chunk in chunks:
                    body += chunk
                    if len(body) > max_bytes:
                        raise RegistryError(
                            f"blob larger than {max_bytes} bytes; stream it instead",
                            registry=self.name,
                            repository=repository,
                            digest=digest,
                        )
                return bytes(body)

        return await with_retries(self.retry, attempt, what=f"GET blob on {self.name}")

    async def mount_blob(self, repository: str, digest: str, from_repository: str) -> bool:
        """Mount blob ``digest`` from ``from_repository`` of this registry into ``repository``.
        True when mounted (201); False when the registry declined (202: the session it opened is cancelled)."""
        location = await self._start_upload(repository, digest, mount_from=from_repository)
        if location is None:
            return True
        with contextlib.suppress(RegistryError):
            await self._request(
                "DELETE",
                location,
                scopes=[repository_scope(repository, "pull", "push")],
                what="cancel upload",
                ok=(200, 202, 204),
                missing_ok=True,
                repository=repository,
                digest=digest,
            )
        return False

    async def _start_upload(self, repository: str, digest: str, *, mount_from: str | None = None) -> str | None:
        """POST an upload session; None when the POST mounted the blob instead (201)."""
        scopes = [repository_scope(repository, "pull", "push")]
        params: dict[str, str] | None = None
        if mount_from is not None:
            scopes.append(repository_scope(mount_from, "pull"))
            params = {"mount": digest, "from": mount_from}
        response = await self._request(
            "POST",
            f"/v2/{repository}/blobs/uploads/",
            scopes=scopes,
            what="start blob upload",
            ok=(201, 202),
            repository=repository,
            digest=digest,
            params=params,
            headers={"Content-Length": "0"},
        )
        assert response is not None
        if response.status_code == 201 and mount_from is not None:
            return None
        if response.status_code == 201:
            raise RegistryError(
                "registry answered 201 to an upload without mount",
                registry=self.name,
                repository=repository,
                digest=digest,
            )
        location = response.headers.get("location")
        if not location:
            raise RegistryError(
                "upload session without a Location header", registry=self.name, repository=repository, digest=digest
            )
        minimum = response.headers.get("oci-chunk-min-length", "")
        self._chunk_min = int(minimum) if minimum.isdigit() else 0
        return urljoin(str(response.request.url), str(location))

    async def upload_blob(
        self,
        repository: str,
        digest: str,
        content: bytes | BlobOpener,
        *,
        size: int | None = None,
        mount_from: str | None = None,
        progress: ByteProgress | None = None,
        verify: bool = True,
        chunked: bool = False,
        chunk_size: int = DEFAULT_PATCH_CHUNK_BYTES,
    ) -> UploadOutcome:
        """Upload blob ``digest`` into ``repository``.

        ``content`` is the bytes, or an opener called once per attempt that streams them (so a retry
        re-reads the source). With ``mount_from`` (a repository of this registry) a mount is tried first
        and, when the registry declines, its session is used for the upload. The upload is monolithic
        (POST + one streaming PUT) unless ``chunked`` or the registry refuses it (413/415/400), then
        PATCHes of ``max(chunk_size, OCI-Chunk-Min-Length)`` bytes. With ``verify`` the bytes are hashed
        on the way and the last chunk is held back until the hash matches: a wrong blob never completes."""
        if not is_valid_digest(digest):
            raise ValueError(f"not a digest: {digest!r}")
        sent_total = 0

        def note(count: int) -> None:
            nonlocal sent_total
            sent_total += count
            self.stats.bytes_uploaded += count
            if progress is not None:
                progress(count)

        mount = mount_from

        async def attempt() -> UploadOutcome:
            nonlocal mount
            if sent_total:
                note(-sent_total)  # a retry starts over: rewind the progress of the failed attempt
            location = await self._start_upload(repository, digest, mount_from=mount)
            if location is None:
                return "mounted"
            mount = None  # declined once: a retry uploads directly
            if not chunked:
                try:
                    await self._put_monolithic(
                        location=location,
                        repository=repository,
                        digest=digest,
                        content=content,
                        size=size,
                        note=note,
                        verify=verify,
                    )
                    return "uploaded"
                except RegistryError as exc:
                    if exc.status not in (400, 413, 415) or isinstance(exc, DigestMismatchError):
                        raise
                    log.info("monolithic upload refused by %s (%s); falling back to chunked", self.name, exc.status)
                    if sent_total:
                        note(-sent_total)
                    location = await self._start_upload(repository, digest)
                    assert location is not None
            await self._put_chunked(
                location=location,
                repository=repository,
                digest=digest,
                content=content,
                size=size,
                note=note,
                verify=verify,
                chunk_size=chunk_size,
            )
            return "uploaded"

        return await with_retries(self.retry, attempt, what=f"upload blob {digest} to {self.name}/{repository}")

    @asynccontextmanager
    async def _open_content(self, content: bytes | BlobOpener) -> AsyncIterator[AsyncIterator[bytes]]:
        if isinstance(content, bytes):

            async def once() -> AsyncIterator[bytes]:
                for start in range(0, len(content), STREAM_CHUNK_BYTES):
                    yield content[start : start + STREAM_CHUNK_BYTES]

            yield once()
        else:
            async with content() as chunks:
                yield chunks

    async def _checked(
        self,
        *,
        chunks: AsyncIterator[bytes],
        repository: str,
        digest: str,
        size: int | None,
        note: ByteProgress,
        verify: bool,
    ) -> AsyncIterator[bytes]:
        """Forward ``chunks``, hashing them, holding the last one back until the hash is known good.

        Small network reads are coalesced into writes of about ``UPLOAD_WRITE_BYTES`` (one copy): the
        per-write cost of the HTTP stack, not the bytes, dominates the CPU of a streamed upload."""
        hasher = hashlib.new(digest.split(":", 1)[0]) if verify else None
        # Hashing runs in a worker thread (hashlib releases the GIL on large buffers), one block behind
        # the network: block N is hashed while block N-1 is written, so the event loop never stalls on
        # sha256. At most one block is being hashed at a time, which keeps memory bounded.
        hashing: asyncio.Future[None] | None = None

        async def hash_block(block: bytes) -> None:
            nonlocal hashing
            if hasher is None:
                return
            if hashing is not None:
                await hashing
            hashing = asyncio.ensure_future(asyncio.to_thread(hasher.update, block))

        held: bytes | None = None
        pending: list[bytes] = []
        pending_bytes = 0
        total = 0
        try:
            async for chunk in chunks:
                if not chunk:
                    continue
                total += len(chunk)
                pending.append(chunk)
                pending_bytes += len(chunk)
                if pending_bytes < UPLOAD_WRITE_BYTES:
                    continue
                block = pending[0] if len(pending) == 1 else b"".join(pending)
                pending, pending_bytes = [], 0
                await hash_block(block)
                if held is not None:
                    yield held
                    note(len(held))
                held = block
            if pending:
                block = pending[0] if len(pending) == 1 else b"".join(pending)
                await hash_block(block)
                if held is not None:
                    yield held
                    note(len(held))
                held = block
            if hashing is not None:
                await hashing
        finally:
            if hashing is not None and not hashing.done():
                hashing.cancel()
        if size is not None and size >= 0 and total != size:
            raise DigestMismatchError(
                f"source has {total} bytes, the descriptor says {size}; upload aborted",
                registry=self.name,
                repository=repository,
                digest=digest,
            )
        if hasher is not None:
            actual = f"{digest.split(':', 1)[0]}:{hasher.hexdigest()}"
            if actual != digest:
                raise DigestMismatchError(
                    f"source bytes hash to {actual}; upload aborted",
                    registry=self.name,
                    repository=repository,
                    digest=digest,
                )
        if held is not None:
            yield held
            note(len(held))

    async def _put_monolithic(
        self,
        *,
        location: str,
        repository: str,
        digest: str,
        content: bytes | BlobOpener,
        size: int | None,
        note: ByteProgress,
        verify: bool,
    ) -> None:
        what = "PUT blob"
        headers = {"Content-Type": "application/octet-stream"}
        if isinstance(content, bytes):
            if size is not None and size >= 0 and size != len(content):
                raise DigestMismatchError(
                    f"content has {len(content)} bytes, the descriptor says {size}; upload aborted",
                    registry=self.name,
                    repository=repository,
                    digest=digest,
                )
            size = len(content)
        if size is not None and size >= 0:
            headers["Content-Length"] = str(size)
        scopes = [repository_scope(repository, "pull", "push")]

        async def put(body: bytes | AsyncIterator[bytes]) -> httpx.Response:
            return await self._exchange(
                "PUT",
                _with_query(location, "digest", digest),
                scopes=scopes,
                what=what,
                repository=repository,
                digest=digest,
                headers=headers,
                content=body,
            )

        if isinstance(content, bytes):
            # Already in memory (a small blob): checked here, then sent with its headers in one write.
            if verify:
                self._verify_bytes(content, repository, digest)
            async with self._slot():
                response = await put(content)
        else:
            async with self._open_content(content) as chunks, self._slot():
                body = self._checked(
                    chunks=chunks, repository=repository, digest=digest, size=size, note=note, verify=verify
                )
                try:
                    response = await put(body)
                except TransientRegistryError as exc:
                    # A DigestMismatchError raised inside the body generator reaches us wrapped by httpx
                    # as a transport error; unwrap it so it is final, not retried.
                    cause = exc.__cause__
                    while cause is not None:
                        if isinstance(cause, DigestMismatchError):
                            raise cause from None
                        cause = cause.__cause__ or cause.__context__
                    raise
        if response.status_code not in (201, 204):
            raise self._error(response, what, repository=repository, digest=digest)
        self._check_stored(response, repository, digest)
        if isinstance(content, bytes):
            note(len(content))

    def _verify_bytes(self, content: bytes, repository: str, digest: str) -> None:
        algorithm = digest.split(":", 1)[0]
        actual = f"{algorithm}:{hashlib.new(algorithm, content).hexdigest()}"
        if actual != digest:
            raise DigestMismatchError(
                f"content hashes to {actual}; upload aborted", registry=self.name, repository=repository, digest=digest
            )

    def _check_stored(self, response: httpx.Response, repository: str, digest: str) -> None:
        stored = response.headers.get("docker-content-digest")
        if (
            stored
            and is_valid_digest(stored)
            and stored.split(":", 1)[0] == digest.split(":", 1)[0]
            and stored != digest
        ):
            raise DigestMismatchError(
                f"registry stored the blob as {stored}", registry=self.name, repository=repository, digest=digest
            )

    async def _put_chunked(
        self,
        *,
        location: str,
        repository: str,
        digest: str,
        content: bytes | BlobOpener,
        size: int | None,
        note: ByteProgress,
        verify: bool,
        chunk_size: int,
    ) -> None:
        scopes = [repository_scope(repository, "pull", "push")]
        piece = max(min(chunk_size, MAX_PATCH_CHUNK_BYTES), self._chunk_min)
        offset = 0

        async def patch(data: bytes) -> None:
            nonlocal location, offset
            response = await self._request(
                "PATCH",
                location,
                scopes=scopes,
                what="PATCH blob chunk",
                ok=(202, 204),
                repository=repository,
                digest=digest,
                content=data,
                headers={
                    "Content-Type": "application/octet-stream",
                    "Content-Range": f"{offset}-{offset + len(data) - 1}",
                    "Content-Length": str(len(data)),
                },
            )
            assert response is not None
            offset += len(data)
            note(len(data))
            next_location = response.headers.get("location")
            if next_location:
                location = urljoin(str(response.request.url), next_location)

        def counted(_: int) -> None:
            return None  # bytes are counted per PATCH above, not per chunk read

        async with self._open_content(content) as chunks:
            buffer = bytearray()
            async for chunk in self._checked(
                chunks=chunks, repository=repository, digest=digest, size=size, note=counted, verify=verify
            ):
                buffer += chunk
                while len(buffer) >= piece:
                    await patch(bytes(buffer[:piece]))
                    del buffer[:piece]
            if buffer:
                await patch(bytes(buffer))
        response = await self._request(
            "PUT",
            _with_query(location, "digest", digest),
            scopes=scopes,
            what="PUT blob (close upload)",
            ok=(201, 204),
            repository=repository,
            digest=digest,
            headers={"Content-Length": "0"},
        )
        assert response is not None
        self._check_stored(response, repository, digest)
