"""One registry origin on the wire: TLS, request slots, redirects, authentication, deadlines, retries, errors.

``RegistrySession`` is what every registry operation goes through (``reconciler.registry.client`` for the
read API, ``reconciler.registry.uploads`` for blob uploads). It holds:

* the transport (our lean ``FastTransport``, or httpx's own when proxy variables are set) and TLS: the
  system CA store, a registry's ``ca_bundle``, or no verification when the registry is marked insecure;
* request slots: at most ``max_concurrency`` requests in flight to one registry;
* redirects of GET/HEAD (blob storage), followed by hand so that the Authorization header never leaves
  the registry's origin;
* the auth exchange: a 401 challenge is answered once (Basic, or a Bearer token from the realm);
* deadlines: a whole request (head and body) must finish within ``deadline`` seconds (plus ``size /
  MIN_TRANSFER_RATE`` for a blob), not only each read; the ``Breaker`` (``reconciler.registry.breaker``)
  declares a registry whose requests overrun their deadline unresponsive, and the rest of its requests
  fail at once, so one frozen registry costs one deadline, not one per image;
* storage faults: 5xx answers to writes are counted (``write_faults``), so the client can read back what
  such a registry acknowledges afterwards (``RegistryClient.put_manifest``);
* bounded answers: everything read into memory is capped (``reconciler.registry.reply``);
* ``map_exceptions``: the ONE place where foreign exceptions (httpx, ssl, timeouts) become the project's
  error tree, as httpx's own ``map_exceptions`` does (the table is ``reconciler.registry.errormap``); and
  ``error``: status codes to errors, with any text the registry sent scrubbed of the secrets in use.

It never logs or raises a secret and never follows a redirect with credentials to another origin.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import os
import ssl
import time
from collections.abc import AsyncIterable, AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode, urlsplit

import httpx

from reconciler.errors import AuthError, RegistryError, TransientRegistryError
from reconciler.model.redact import redact
from reconciler.model.registryurl import normalize_registry_url
from reconciler.registry.auth import Authenticator
from reconciler.registry.breaker import Breaker
from reconciler.registry.credentials import CredentialResolver, Credentials
from reconciler.registry.errormap import foreign_error, status_error
from reconciler.registry.reply import (
    MAX_DOCUMENT_BYTES,
    MAX_ERROR_BODY_BYTES,
    Reply,
    error_detail,
    read_capped,
    read_head_of,
    retry_after,
)
from reconciler.registry.retry import RetryPolicy, with_retries
from reconciler.registry.transport import REPLAYABLE, FastTransport

DEFAULT_MAX_CONCURRENCY = 16
"""Requests in flight to one registry when neither the caller nor reconciler.yaml says otherwise."""
DEFAULT_TIMEOUT_SECONDS = 60.0
"""Upper bound of one connect, one socket read or one write."""
DEFAULT_DEADLINE_SECONDS = 15.0
"""Upper bound of a whole request (head and body) that moves no blob; a blob transfer gets more, below."""
MIN_TRANSFER_RATE = 256 * 1024
"""Bytes per second a blob transfer must sustain on average: its deadline grows by size / this rate."""
MAX_REDIRECTS = 5
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
USER_AGENT = "reconciler"
_PROXY_VARIABLES = tuple(name for base in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY") for name in (base, base.lower()))

_HELD_SLOTS: contextvars.ContextVar[frozenset[int]] = contextvars.ContextVar("held_slots", default=frozenset())
"""Ids of the sessions whose request slot the current task holds."""


def _proxy_configured() -> bool:
    """True when the environment asks for an HTTP proxy: then httpx's own transport (which honours
    ``HTTP(S)_PROXY``/``ALL_PROXY``/``NO_PROXY``) is used instead of the FastTransport."""
    return any(os.environ.get(name) for name in _PROXY_VARIABLES)


@dataclass(slots=True)
class RequestStats:
    """What a session sent, for tests, benchmarks and metrics (token-service requests included)."""

    requests: int = 0
    by_method: dict[str, int] = field(default_factory=dict)
    bytes_uploaded: int = 0
    bytes_downloaded: int = 0
    errors: int = 0
    seconds: float = 0.0
    """Time spent waiting for answers (sum over requests; concurrent requests overlap)."""

    def count(self, method: str) -> None:
        self.requests += 1
        self.by_method[method] = self.by_method.get(method, 0) + 1


class RegistrySession:
    """The wire side of one registry (one base URL); see the module docstring. Keyword-only constructor."""

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
        deadline: float = DEFAULT_DEADLINE_SECONDS,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        self.url = normalize_registry_url(url, insecure=insecure)
        self.host = urlsplit(self.url).netloc
        self.name = name or self.host
        self.insecure = insecure
        self.max_concurrency = max_concurrency
        self.retry = retry if retry is not None else RetryPolicy()
        self.deadline = deadline
        self.stats = RequestStats()
        self.chunk_min = 0
        """The registry's ``OCI-Chunk-Min-Length`` (0 when it sets none), learned from upload sessions."""
        self._ca_bundle = ca_bundle
        self._auth = Authenticator(registry=self.host, credentials=credentials, insecure=insecure)
        self._slots = asyncio.Semaphore(max_concurrency)
        self._breaker = Breaker(self.name)
        self.write_faults = 0
        """5xx answers to writes (POST, PUT, PATCH) in this session: a registry whose storage failed once may
        have kept an acknowledged write damaged (``RegistryClient.put_manifest`` reads back after one)."""
        verify: ssl.SSLContext | bool = True
        if ca_bundle is not None:
            verify = ssl.create_default_context(cafile=ca_bundle)
        elif insecure:
            verify = False
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
        return f"RegistrySession(url={self.url!r}, name={self.name!r}, auth={self._auth!r})"

    @property
    def key(self) -> str:
        """Identity of the registry (scheme and host): equal keys mean blobs can be mounted between repositories."""
        return self.url

    @property
    def transport_kind(self) -> str:
        """``fast`` (our lean transport) or ``httpx`` (httpx's own: a proxy is configured, or a test's)."""
        return "fast" if self._fast else "httpx"

    async def aclose(self) -> None:
        await self._http.aclose()
        for client in self._foreign.values():
            await client.aclose()

    # ------------------------------------------------------------------ slots, TLS, sending

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """One of this registry's request slots, for the duration of a request (or a streamed body).

        A task that already holds a slot of this session (an upload streaming from a blob of the same
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
        """TLS for every https origin this session talks to (built on first use): the system's CA store
        (where enterprises install their CAs), the registry's ``ca_bundle``, or none when ``insecure``."""
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

    def build_request(
        self,
        method: str,
        url: str,
        *,
        headers: dict[str, str],
        params: dict[str, str] | None = None,
        content: bytes | AsyncIterable[bytes] | None = None,
        replayable: bool = True,
    ) -> httpx.Request:
        """The request for ``url`` (a path on this registry, or an absolute URL such as an upload
        location), with ``params`` added to its query. Built directly rather than by
        ``AsyncClient.build_request``, which parses and merges the URL twice. (An earlier version assembled
        the URL from httpx's private parsed-URL tuple to save ~30 us per request; the registry spends
        2-6 ms on each, so that was under 1.5%, not worth depending on httpx internals.) ``replayable`` False: the
        transport must never send it twice (see ``reconciler.registry.transport.REPLAYABLE``)."""
        if params:
            url += ("&" if "?" in url else "?") + urlencode(params, quote_via=quote)
        return httpx.Request(
            method,
            httpx.URL(url if "://" in url else self.url + url),
            headers={"User-Agent": USER_AGENT, **headers},
            content=content,
            extensions={"timeout": self._timeout_extension, REPLAYABLE: replayable},
        )

    async def _send_one(self, request: httpx.Request) -> httpx.Response:
        """One request, no redirect, response streamed. Our FastTransport is called directly:
        ``AsyncClient.send`` adds nothing a registry needs and costs ~0.1 ms per request."""
        if not self._fast:
            return await self._client_for(request.url).send(request, stream=True)
        assert self._transport is not None
        response = await self._transport.handle_async_request(request)
        response.request = request
        return response

    async def _send(self, request: httpx.Request) -> httpx.Response:
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
                return response
            await response.aclose()
            target = request.url.join(location)
            headers = dict(request.headers)
            headers.pop("host", None)
            if f"{target.scheme}://{target.netloc.decode()}" != f"{request.url.scheme}://{request.url.netloc.decode()}":
                headers.pop("authorization", None)
            request = httpx.Request(request.method, target, headers=headers, extensions=request.extensions)
        return response

    # ------------------------------------------------------------------ errors: the one mapping

    def scrub(self, text: str) -> str:
        """``text`` (anything a registry or a library said) without the secrets in use."""
        return redact(text, self._auth.secrets())

    @contextlib.contextmanager
    def map_exceptions(self, what: str, *, repository: str | None = None, digest: str | None = None) -> Iterator[None]:
        """Foreign exceptions raised inside become the project's errors, naming registry, repository,
        digest and what was being done. The only place in the registry client that does this."""
        try:
            yield
        except RegistryError:
            raise
        except BaseException as exc:
            if isinstance(exc, TimeoutError | httpx.TimeoutException):
                self._breaker.overran()
            mapped = foreign_error(exc, what, scrub=self.scrub)
            if mapped is None:
                raise
            kind, message = mapped
            raise kind(message, registry=self.name, repository=repository, digest=digest) from None

    def deadline_for(self, size: int = 0) -> float:
        """Seconds a request moving ``size`` bytes of body may take, head to end."""
        return self.deadline + max(size, 0) / MIN_TRANSFER_RATE

    @asynccontextmanager
    async def guarded(
        self, what: str, *, repository: str | None = None, digest: str | None = None, size: int = 0
    ) -> AsyncIterator[None]:
        """The body runs under this registry's deadline for ``size`` bytes, with foreign exceptions mapped.
        Refuses at once when the registry was found unresponsive; a body that finishes in time tells the
        breaker the registry is alive."""
        self._breaker.check(what, repository=repository, digest=digest)
        with self.map_exceptions(what, repository=repository, digest=digest):
            async with asyncio.timeout(self.deadline_for(size)):
                yield
        self._breaker.completed()

    async def error(
        self, response: httpx.Response, what: str, *, repository: str | None, digest: str | None
    ) -> RegistryError:
        """The error for a response with an unexpected status (its body's first 64 KiB read for details,
        scrubbed of secrets)."""
        status = response.status_code
        detail = ""
        with contextlib.suppress(httpx.HTTPError, OSError, TimeoutError):
            async with asyncio.timeout(self.deadline):
                detail = error_detail(await read_head_of(response, MAX_ERROR_BODY_BYTES), self.scrub)
        self.stats.errors += 1
        if status >= 500 and response.request.method in ("POST", "PUT", "PATCH"):
            self.write_faults += 1
        kind = status_error(status)
        message = f"{what}: HTTP {status}" + (f" ({detail})" if detail else "")
        where = {"registry": self.name, "repository": repository, "digest": digest, "status": status}
        if kind is TransientRegistryError:
            return TransientRegistryError(message, retry_after=retry_after(response.headers), **where)  # type: ignore[arg-type]
        return kind(message, **where)  # type: ignore[arg-type]

    # ------------------------------------------------------------------ authenticated exchange

    async def _fetch_token(self, request: httpx.Request) -> Reply:
        self.stats.count("TOKEN")
        with self.map_exceptions("token request"):
            async with asyncio.timeout(self.deadline):
                response = await self._client_for(request.url).send(request, stream=True)
                try:
                    body = await read_capped(response, MAX_DOCUMENT_BYTES)
                finally:
                    await response.aclose()
        return Reply(response.status_code, response.headers, body, request.url)

    async def exchange(
        self,
        method: str,
        url: str,
        *,
        scopes: Sequence[str],
        what: str,
        repository: str | None = None,
        digest: str | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        content: bytes | AsyncIterable[bytes] | None = None,
        replayable: bool = True,
    ) -> httpx.Response:
        """One authenticated request (answered again after a 401 challenge), response streamed and open:
        the caller reads and closes it, under ``guarded``. No retry: callers retry where repeating is safe."""
        self._breaker.check(what, repository=repository, digest=digest)
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
            replayable=replayable,
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
        params: dict[str, str] | None,
        content: bytes | AsyncIterable[bytes] | None,
        replayable: bool,
    ) -> httpx.Response:
        request_headers = dict(headers or {})
        authorization = await self._auth.authorization(scopes, self._fetch_token)
        for attempt in (1, 2):
            if authorization is not None:
                request_headers["Authorization"] = authorization
            request = self.build_request(
                method, url, headers=request_headers, params=params, content=content, replayable=replayable
            )
            started = time.monotonic()
            with self.map_exceptions(what, repository=repository, digest=digest):
                response = await self._send(request)
            self.stats.seconds += time.monotonic() - started
            if response.status_code != 401:
                self._auth.on_success()
                return response
            await response.aclose()
            if attempt == 2:
                break
            if content is not None and not isinstance(content, bytes):
                # A streamed body cannot be replayed here; the caller's retry re-opens its source.
                await self._auth.on_challenge(response.headers, scopes, authorization, self._fetch_token)
                raise TransientRegistryError(
                    f"{what}: authorization expired during a streamed request",
                    registry=self.name,
                    repository=repository,
                    digest=digest,
                    status=401,
                )
            authorization = await self._auth.on_challenge(response.headers, scopes, authorization, self._fetch_token)
        raise AuthError(
            f"{what}: credentials refused (401)", registry=self.name, repository=repository, digest=digest, status=401
        )

    async def request(
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
        params: dict[str, str] | None = None,
        content: bytes | None = None,
        limit: int = MAX_DOCUMENT_BYTES,
        retry: bool = True,
    ) -> Reply | None:
        """A request read whole (at most ``limit`` bytes of body), under the deadline, retried per the
        retry policy unless ``retry`` is False (a step of an upload, which its caller restarts whole, and
        which the transport then never replays either); None for a 404 when ``missing_ok``. Any other
        status outside ``ok`` raises."""

        async def attempt() -> Reply | None:
            async with self.slot(), self.guarded(what, repository=repository, digest=digest, size=len(content or b"")):
                response = await self.exchange(
                    method,
                    url,
                    scopes=scopes,
                    what=what,
                    repository=repository,
                    digest=digest,
                    headers=headers,
                    params=params,
                    content=content,
                    replayable=retry,
                )
                try:
                    if response.status_code in ok:
                        body = await read_capped(response, limit)
                        return Reply(response.status_code, response.headers, body, response.request.url)
                    if response.status_code == 404 and missing_ok:
                        return None
                    raise await self.error(response, what, repository=repository, digest=digest)
                finally:
                    await response.aclose()

        if not retry:
            return await attempt()
        return await with_retries(self.retry, attempt, what=f"{what} on {self.name}")
