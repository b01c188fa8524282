"""Registry authentication: anonymous, Basic, and the Bearer token flow of the distribution spec.

The client asks this module for the ``Authorization`` header of a request (given the scopes the
request needs) and hands it every 401 challenge. The scheme is learned from the first challenge
(``WWW-Authenticate: Basic ...`` or ``Bearer realm=...,service=...,scope=...``). Bearer tokens are cached
per set of scopes until their ``expires_in`` runs out (minus a safety margin), so thousands of requests
to one repository cost one token request. A mount needs ``pull`` on the source repository and
``pull,push`` on the target: both scopes go into one token.

A token realm must meet the rule of a registry URL (``reconciler.model.registryurl.check_realm``): HTTPS,
or loopback, or a registry marked insecure; credentials are never sent to a plain-HTTP realm elsewhere.

Secrets live only in this object's private fields and in request headers; they are never logged, put in
an exception message or shown by a repr. The token endpoint's error bodies are not echoed either (a
misconfigured server can reflect the credentials in them), and ``secrets()`` lists every secret in use so
the session can scrub any text a registry sends back before it is shown.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx

from reconciler.errors import AuthError, TransientRegistryError
from reconciler.model.registryurl import check_realm
from reconciler.registry.credentials import CredentialResolver, Credentials
from reconciler.registry.reply import Reply

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

DEFAULT_TOKEN_SECONDS = 60
"""What the distribution spec says a token lives when ``expires_in`` is missing."""
TOKEN_SAFETY_SECONDS = 10
CLIENT_ID = "reconciler"

_CHALLENGE_PARAM = re.compile(r'([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')


@dataclass(frozen=True, slots=True)
class Challenge:
    scheme: str
    """``basic`` or ``bearer`` (lower-cased)."""
    realm: str | None = None
    service: str | None = None
    scope: str | None = None


def parse_challenge(header: str) -> Challenge | None:
    """Parse one ``WWW-Authenticate`` value. None when it names a scheme we do not speak."""
    scheme, _, rest = header.strip().partition(" ")
    scheme = scheme.lower()
    if scheme not in ("basic", "bearer"):
        return None
    params: dict[str, str] = {}
    for match in _CHALLENGE_PARAM.finditer(rest):
        key = match.group(1).lower()
        value = match.group(2) if match.group(2) is not None else match.group(3)
        params[key] = re.sub(r"\\(.)", r"\1", value)
    return Challenge(scheme=scheme, realm=params.get("realm"), service=params.get("service"), scope=params.get("scope"))


def repository_scope(repository: str, *actions: str) -> str:
    return f"repository:{repository}:{','.join(actions)}"


CATALOG_SCOPE = "registry:catalog:*"


def normalize_scopes(scopes: Sequence[str]) -> tuple[str, ...]:
    """One canonical form per set of scopes, so the token cache hits whatever order a registry writes
    them in: distribution 2.8 challenges with ``pull,push`` on one request and ``push,pull`` on the next.
    Actions of the same resource are merged and sorted; resources are sorted."""
    actions: dict[str, set[str]] = {}
    for scope in scopes:
        resource, _, wanted = scope.rpartition(":")
        if not resource:
            resource, wanted = scope, ""
        actions.setdefault(resource, set()).update(a for a in wanted.split(",") if a)
    return tuple(f"{resource}:{','.join(sorted(acts))}" for resource, acts in sorted(actions.items()))


@dataclass(slots=True)
class _Token:
    value: str
    expires_at: float


class Authenticator:
    """Authentication state of one registry client. Not shared between registries."""

    def __init__(
        self, *, registry: str, credentials: Credentials | CredentialResolver | None, insecure: bool = False
    ) -> None:
        self._registry = registry
        self._insecure = insecure
        self._source = credentials
        self._credentials: Credentials | None = None
        self._resolved = credentials is None or isinstance(credentials, Credentials)
        if isinstance(credentials, Credentials):
            self._credentials = credentials
        self._challenge: Challenge | None = None
        self._tokens: dict[tuple[str, ...], _Token] = {}
        self._token_locks: dict[tuple[str, ...], asyncio.Lock] = {}
        self._resolve_lock = asyncio.Lock()
        self.learned = False
        """True once a request told us whether (and how) this registry wants authentication."""
        self.learning_lock = asyncio.Lock()

    def __repr__(self) -> str:
        scheme = self._challenge.scheme if self._challenge else "none"
        return f"Authenticator(registry={self._registry!r}, scheme={scheme!r}, tokens={len(self._tokens)})"

    @property
    def scheme(self) -> str | None:
        return self._challenge.scheme if self._challenge else None

    async def credentials(self) -> Credentials | None:
        """Resolve credentials once (a resolver may run a credential helper: done in a thread)."""
        if not self._resolved:
            async with self._resolve_lock:
                if not self._resolved:
                    resolver = self._source
                    assert callable(resolver)
                    self._credentials = await asyncio.to_thread(resolver, self._registry)
                    self._resolved = True
        return self._credentials

    def secrets(self) -> list[str]:
        """Every secret this registry's requests carry now (password, identity token, the Basic header's
        base64, bearer tokens): texts a registry sends back are scrubbed of them before anyone sees them."""
        found: list[str] = [token.value for token in self._tokens.values()]
        creds = self._credentials
        if creds is not None:
            found += [creds.password, creds.identity_token or ""]
            if not creds.identity_token:
                found.append(_basic(creds).removeprefix("Basic "))
        return [secret for secret in found if len(secret) >= 4]

    def _key(self, scopes: Sequence[str]) -> tuple[str, ...]:
        return normalize_scopes(scopes)

    async def authorization(
        self, scopes: Sequence[str], fetch: Callable[[httpx.Request], Awaitable[Reply]]
    ) -> str | None:
        """The Authorization header value for a request needing ``scopes``, or None (anonymous or
        scheme still unknown)."""
        if self._challenge is None:
            return None
        if self._challenge.scheme == "basic":
            creds = await self.credentials()
            return _basic(creds) if creds is not None and not creds.identity_token else None
        key = self._key(scopes)
        token = self._tokens.get(key)
        if token is not None and token.expires_at > time.monotonic():
            return f"Bearer {token.value}"
        lock = self._token_locks.setdefault(key, asyncio.Lock())
        async with lock:
            token = self._tokens.get(key)
            if token is None or token.expires_at <= time.monotonic():
                token = await self._fetch_token(key, fetch)
                self._tokens[key] = token
        return f"Bearer {token.value}"

    def on_success(self) -> None:
        self.learned = True

    async def on_challenge(
        self,
        headers: httpx.Headers,
        scopes: Sequence[str],
        sent: str | None,
        fetch: Callable[[httpx.Request], Awaitable[Reply]],
    ) -> str:
        """Handle a 401 (``headers`` are its headers): learn the scheme, and return the Authorization header
        to retry with. Raises AuthError when a retry cannot succeed (no credentials, or the ones sent were
        refused, or a realm credentials must not be sent to)."""
        self.learned = True
        challenges = [parse_challenge(value) for value in headers.get_list("www-authenticate")]
        usable = [c for c in challenges if c is not None]
        if not usable:
            raise AuthError(
                "registry demands authentication with an unsupported scheme", registry=self._registry, status=401
            )
        bearer = next((c for c in usable if c.scheme == "bearer"), None)
        challenge = bearer or usable[0]
        creds = await self.credentials()
        if challenge.scheme == "basic":
            self._challenge = challenge
            if creds is None or creds.identity_token:
                raise AuthError(
                    f"authentication required and no credentials found for {self._registry} "
                    "(set RECONCILER_AUTH_<HOST>_USERNAME/_PASSWORD, the registry's RECONCILER_REGISTRY_<NAME>_* "
                    "variables, or docker login)",
                    registry=self._registry,
                    status=401,
                )
            header = _basic(creds)
            if sent == header:
                raise AuthError("credentials were refused (401)", registry=self._registry, status=401)
            return header
        if not challenge.realm:
            raise AuthError("Bearer challenge without a realm", registry=self._registry, status=401)
        try:
            check_realm(challenge.realm, insecure=self._insecure)
        except ValueError as exc:
            raise AuthError(f"refusing the registry's token service: {exc}", registry=self._registry) from None
        wanted = list(scopes)
        if challenge.scope:
            wanted.extend(s for s in challenge.scope.split(" ") if s)
        key = self._key(wanted)
        previous = self._challenge
        self._challenge = challenge
        if sent is not None and sent.startswith("Bearer ") and previous is not None and previous.scheme == "bearer":
            cached = self._tokens.get(key)
            if cached is not None and f"Bearer {cached.value}" == sent:
                # The token we just got was refused: a fresh one will not be better.
                self._tokens.pop(key, None)
                if creds is None:
                    raise AuthError(
                        f"access denied for scope {' '.join(key)} and no credentials found for {self._registry}",
                        registry=self._registry,
                        status=401,
                    )
                raise AuthError(f"token refused for scope {' '.join(key)} (401)", registry=self._registry, status=401)
        lock = self._token_locks.setdefault(key, asyncio.Lock())
        async with lock:
            token = await self._fetch_token(key, fetch)
            self._tokens[key] = token
        return f"Bearer {token.value}"

    async def _fetch_token(self, scopes: tuple[str, ...], fetch: Callable[[httpx.Request], Awaitable[Reply]]) -> _Token:
        challenge = self._challenge
        assert challenge is not None
        assert challenge.realm is not None
        creds = await self.credentials()
        params: list[tuple[str, str | int | float | bool | None]] = []
        if challenge.service:
            params.append(("service", challenge.service))
        if creds is not None and creds.identity_token:
            form = {
                "grant_type": "refresh_token",
                "refresh_token": creds.identity_token,
                "client_id": CLIENT_ID,
                "scope": " ".join(scopes),
            }
            if challenge.service:
                form["service"] = challenge.service
            request = httpx.Request("POST", challenge.realm, data=form)
        else:
            params.extend(("scope", scope) for scope in scopes)
            if creds is not None:
                params.append(("account", creds.username))
            headers = {"Authorization": _basic(creds)} if creds is not None else {}
            request = httpx.Request("GET", challenge.realm, params=params, headers=headers)
        started = time.monotonic()
        reply = await fetch(request)
        if reply.status in (401, 403):
            raise AuthError(
                f"the token service refused the credentials ({reply.status})",
                registry=self._registry,
                status=reply.status,
            )
        if reply.status == 429 or reply.status >= 500:
            raise TransientRegistryError(
                f"the token service answered {reply.status}", registry=self._registry, status=reply.status
            )
        if reply.status != 200:
            raise AuthError(f"the token service answered {reply.status}", registry=self._registry, status=reply.status)
        try:
            document = reply.json()
            value = document.get("token") or document.get("access_token")
            lifetime = int(document.get("expires_in") or DEFAULT_TOKEN_SECONDS)
        except (ValueError, AttributeError, TypeError) as exc:
            raise AuthError(
                "the token service answered something that is not a token", registry=self._registry
            ) from exc
        if not isinstance(value, str) or not value:
            raise AuthError("the token service answered without a token", registry=self._registry)
        margin = min(TOKEN_SAFETY_SECONDS, lifetime / 4)
        return _Token(value=value, expires_at=started + lifetime - margin)


def _basic(creds: Credentials) -> str:
    raw = f"{creds.username}:{creds.password}".encode()
    return "Basic " + base64.b64encode(raw).decode("ascii")
