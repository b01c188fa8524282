"""A Docker registry token server for tests: Basic credentials in, signed JWT out, so the Bearer flow
runs for real against distribution's ``auth: token``.

It serves ``GET /token?service=S&scope=repository:NAME:ACTIONS[&scope=...]`` on ``127.0.0.1:<free port>``,
checks the request's Basic credentials against a user table (no credentials = anonymous), grants the
requested actions allowed by an ACL, and answers ``{"token", "access_token", "expires_in", "issued_at"}``.
Every issued token is recorded (:attr:`TokenServer.issued`) so tests can assert that a client caches its
tokens. The HTTP side is a ``support.httpserver.LoopbackServer`` (:attr:`TokenServer.server`): its
request log, and a ``handler`` a test may swap for a hostile one (``server.handler = lambda r: HANG``).

Tokens are RS256 (RSA 2048) or ES256 (P-256) JWTs signed with a key generated at start-up, whose
self-signed certificate is written to ``root.pem`` for the registry's ``rootcertbundle``. distribution 2.8
accepts a token when its JOSE header either carries an ``x5c`` chain ending at a trusted certificate, or a
``kid`` equal to the *libtrust key id* of a trusted certificate's public key: the SHA-256 of the DER
SubjectPublicKeyInfo, first 240 bits, base32, in 12 colon-separated groups of 4. Both modes are supported
(``header="kid"`` is the default; ``header="x5c"`` sends the certificate chain).

Test-only code: never used by the product; passwords never appear in its log or reprs.
"""

from __future__ import annotations

import base64
import datetime as dt
import fnmatch
import hashlib
import json
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from support.certs import self_signed_ca
from support.httpserver import LoopbackServer, Reply, Request, Response
from testkit.localregistry import TokenAuthConfig

Algorithm = Literal["RS256", "ES256"]
HeaderMode = Literal["kid", "x5c"]
ALL_ACTIONS = frozenset({"pull", "push", "delete", "*"})


def libtrust_key_id(public_key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey) -> str:
    """The key id docker/libtrust (and so distribution 2.8) derives from a public key."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    encoded = base64.b32encode(hashlib.sha256(der).digest()[:30]).decode()
    return ":".join(encoded[i : i + 4] for i in range(0, len(encoded), 4))


@dataclass(frozen=True)
class AclRule:
    """``account`` ("" = anonymous, "*" = any authenticated user) may do ``actions`` on repositories
    matching the fnmatch ``repository`` pattern."""

    account: str
    repository: str
    actions: frozenset[str]

    def allows(self, account: str, repository: str) -> bool:
        account_ok = self.account == account or (self.account == "*" and account != "")
        return account_ok and fnmatch.fnmatchcase(repository, self.repository)


@dataclass(frozen=True)
class IssuedToken:
    account: str
    scopes: tuple[str, ...]
    access: tuple[dict[str, Any], ...]
    token: str = field(repr=False)


def parse_scope(scope: str) -> tuple[str, str, list[str]] | None:
    """``repository:a/b:pull,push`` -> ("repository", "a/b", ["pull", "push"]). Names may hold ':' (ports)."""
    head, sep, actions = scope.rpartition(":")
    kind, sep2, name = head.partition(":")
    if not sep or not sep2 or not kind or not name:
        return None
    return kind, name, [a for a in actions.split(",") if a]


class TokenServer:
    """A token server on loopback. Use as a context manager or call :meth:`start` / :meth:`stop`."""

    def __init__(
        self,
        *,
        users: Mapping[str, str],
        acl: Sequence[AclRule] | None = None,
        service: str = "reconciler-test-registry",
        issuer: str = "reconciler-test-token-server",
        algorithm: Algorithm = "RS256",
        header: HeaderMode = "kid",
        expires_in: int = 300,
        directory: str | Path | None = None,
    ) -> None:
        self._users = dict(users)
        self.acl: list[AclRule] = list(acl) if acl is not None else [AclRule("*", "*", ALL_ACTIONS)]
        self.service = service
        self.issuer = issuer
        self.algorithm: Algorithm = algorithm
        self.header: HeaderMode = header
        self.expires_in = expires_in
        self._own_dir = directory is None
        self.directory = Path(directory) if directory is not None else Path(tempfile.mkdtemp(prefix="token-server-"))
        self.directory.mkdir(parents=True, exist_ok=True)
        self.issued: list[IssuedToken] = []
        self.refused: list[str] = []  # accounts (or "<bad credentials>") refused with 401
        self._lock = threading.Lock()
        self.server = LoopbackServer(self.answer, name="token-server")
        self._running = False
        self._key, self._cert = self._make_key_and_cert()
        self.root_cert_path = self.directory / "root.pem"
        self.root_cert_path.write_bytes(self._cert.public_bytes(serialization.Encoding.PEM))
        self.key_id = libtrust_key_id(self._key.public_key())

    def __repr__(self) -> str:
        return f"TokenServer(realm={self.realm if self._running else 'stopped'}, users={sorted(self._users)})"

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> TokenServer:
        self.server.start()
        self._running = True
        return self

    def stop(self) -> None:
        self._running = False
        try:
            self.server.stop()
        finally:
            if self._own_dir:
                shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> TokenServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def realm(self) -> str:
        assert self._running, "token server not started"
        return f"{self.server.url}/token"

    def auth_config(self) -> TokenAuthConfig:
        """The registry's ``auth: token`` section that trusts this server."""
        return TokenAuthConfig(
            realm=self.realm, service=self.service, issuer=self.issuer, rootcertbundle=self.root_cert_path
        )

    def issued_count(self) -> int:
        with self._lock:
            return len(self.issued)

    # -- tokens -----------------------------------------------------------------------------------

    def _make_key_and_cert(self) -> tuple[rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, x509.Certificate]:
        key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
        if self.algorithm == "RS256":
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        else:
            key = ec.generate_private_key(ec.SECP256R1())
        cert = self_signed_ca(key, "reconciler test token signer", valid_for=dt.timedelta(days=30))
        return key, cert

    def grant(self, account: str, scopes: Iterable[str]) -> list[dict[str, Any]]:
        """The access entries (type, name, actions) the ACL allows ``account`` out of ``scopes``."""
        access: list[dict[str, Any]] = []
        for scope in scopes:
            parsed = parse_scope(scope)
            if parsed is None:
                continue
            kind, name, wanted = parsed
            allowed: set[str] = set()
            for rule in self.acl:
                if rule.allows(account, name):
                    allowed |= set(rule.actions)
            granted = sorted(a for a in wanted if a in allowed or "*" in allowed)
            access.append({"type": kind, "name": name, "actions": granted})
        return access

    def make_token(self, account: str, access: list[dict[str, Any]], *, expires_in: int | None = None) -> str:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": account,
            "aud": self.service,
            "exp": now + (self.expires_in if expires_in is None else expires_in),
            "nbf": now - 5,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        headers: dict[str, Any]
        if self.header == "kid":
            headers = {"kid": self.key_id}
        else:
            headers = {"x5c": [base64.b64encode(self._cert.public_bytes(serialization.Encoding.DER)).decode()]}
        return jwt.encode(claims, self._key, algorithm=self.algorithm, headers=headers)

    def authenticate(self, authorization: str | None) -> str | None:
        """The account for an Authorization header: "" anonymous, None when credentials are wrong."""
        if not authorization:
            return ""
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            username, _, password = base64.b64decode(value).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        if username in self._users and self._users[username] == password:
            return username
        return None

    def handle_token_request(self, authorization: str | None, query: Mapping[str, list[str]]) -> tuple[int, bytes]:
        account = self.authenticate(authorization)
        if account is None:
            with self._lock:
                self.refused.append("<bad credentials>")
            return 401, json.dumps({"errors": [{"code": "UNAUTHORIZED", "message": "bad credentials"}]}).encode()
        service = query.get("service", [self.service])[0]
        if service != self.service:
            return 400, json.dumps({"errors": [{"code": "DENIED", "message": f"unknown service {service}"}]}).encode()
        scopes = [s for value in query.get("scope", []) for s in value.split(" ") if s]
        access = self.grant(account, scopes)
        token = self.make_token(account, access)
        with self._lock:
            self.issued.append(IssuedToken(account=account, scopes=tuple(scopes), access=tuple(access), token=token))
        body = {
            "token": token,
            "access_token": token,
            "expires_in": self.expires_in,
            "issued_at": dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z"),
        }
        return 200, json.dumps(body).encode()

    def answer(self, request: Request) -> Reply:
        """The HTTP face: ``GET /token`` only."""
        if request.path != "/token":
            return Response.error(404, "NOT_FOUND", "only /token is served here")
        if request.method != "GET":
            return Response.error(405, "UNSUPPORTED", "only GET (the Basic credentials flow) is served here")
        status, body = self.handle_token_request(request.header("authorization"), request.query)
        headers = {"Content-Type": "application/json"}
        if status == 401:
            headers["WWW-Authenticate"] = 'Basic realm="token-server"'
        return Response(status, headers, body)
