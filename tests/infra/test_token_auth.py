"""The token server and distribution's ``auth: token`` work together: the Bearer flow end to end with raw httpx."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import jwt
import pytest
from support.registries import AuthedRegistry, RegistryFactory
from support.skopeo import Skopeo
from support.tokenserver import AclRule, Algorithm, HeaderMode, TokenServer, libtrust_key_id, parse_scope

from reconciler.errors import AuthError
from testkit.imagegen import image_for
from testkit.imagepush import push_image


def _challenge(response: httpx.Response) -> dict[str, str]:
    header = response.headers["WWW-Authenticate"]
    assert header.startswith("Bearer ")
    return dict(re.findall(r'(\w+)="([^"]*)"', header))


def _token(challenge: dict[str, str], auth: tuple[str, str] | None) -> httpx.Response:
    params = {"service": challenge["service"], "scope": challenge["scope"]}
    return httpx.get(challenge["realm"], params=params, auth=auth)


def test_bearer_flow_end_to_end(token_registry: AuthedRegistry) -> None:
    server = token_registry.token_server
    assert server is not None
    url = f"{token_registry.url}/v2/payments/api/tags/list"
    first = httpx.get(url)
    assert first.status_code == 401
    challenge = _challenge(first)
    assert challenge["realm"] == server.realm
    assert challenge["scope"] == "repository:payments/api:pull"
    answer = _token(challenge, (token_registry.username, token_registry.password))
    assert answer.status_code == 200
    body = answer.json()
    assert body["expires_in"] == 300
    claims = jwt.decode(body["token"], options={"verify_signature": False})
    assert claims["access"] == [{"type": "repository", "name": "payments/api", "actions": ["pull"]}]
    # 404 (not 401): the registry accepted the token; the repository simply does not exist yet.
    assert httpx.get(url, headers={"Authorization": f"Bearer {body['token']}"}).status_code == 404
    assert server.issued_count() == 1


def test_wrong_password_gets_no_token(token_registry: AuthedRegistry) -> None:
    challenge = _challenge(httpx.get(f"{token_registry.url}/v2/x/tags/list"))
    assert _token(challenge, (token_registry.username, "wrong")).status_code == 401
    assert token_registry.token_server is not None
    assert token_registry.token_server.issued_count() == 0


def test_token_signed_by_unknown_key_is_refused(token_registry: AuthedRegistry) -> None:
    stranger = TokenServer(users={}, service=token_registry.token_server.service if token_registry.token_server else "")
    assert token_registry.token_server is not None
    stranger.issuer = token_registry.token_server.issuer
    forged = stranger.make_token("alice", [{"type": "repository", "name": "x", "actions": ["pull"]}])
    stranger.stop()
    response = httpx.get(f"{token_registry.url}/v2/x/tags/list", headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 401


def test_reader_cannot_push(token_registry: AuthedRegistry) -> None:
    challenge = _challenge(httpx.post(f"{token_registry.url}/v2/x/blobs/uploads/"))
    # distribution lists the actions in map order: "pull,push" or "push,pull"; clients must not care.
    assert sorted(challenge["scope"].rsplit(":", 1)[1].split(",")) == ["pull", "push"]
    token = _token(challenge, ("reader", "reader-password")).json()["token"]
    refused = httpx.post(f"{token_registry.url}/v2/x/blobs/uploads/", headers={"Authorization": f"Bearer {token}"})
    assert refused.status_code == 401


def test_push_image_and_skopeo_through_token_auth(token_registry: AuthedRegistry, skopeo: Skopeo) -> None:
    image = image_for("payments/api", "20261127_01", platforms=("linux/amd64", "linux/arm64/v8"))
    push_image(
        image,
        token_registry.url,
        "p/payments/api",
        "20261127_01",
        username=token_registry.username,
        password=token_registry.password,
    )
    ref = f"docker://{token_registry.host}/p/payments/api:20261127_01"
    assert skopeo.digest(ref, creds=token_registry.creds) == image.digest
    with pytest.raises(AuthError):
        push_image(image, token_registry.url, "p/other", "x", username="reader", password="reader-password")


@pytest.mark.parametrize(("algorithm", "header"), [("RS256", "x5c"), ("ES256", "kid"), ("ES256", "x5c")])
def test_other_signing_modes_are_accepted(
    registry_factory: RegistryFactory, algorithm: Algorithm, header: HeaderMode, tmp_path: Path
) -> None:
    with TokenServer(users={"u": "p"}, algorithm=algorithm, header=header, directory=tmp_path) as server:
        local = registry_factory(token_auth=server.auth_config())
        token = server.make_token("u", [{"type": "repository", "name": "x", "actions": ["pull"]}])
        response = httpx.get(f"{local.url}/v2/x/tags/list", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 404  # authorised; the repository does not exist


def test_libtrust_key_id_shape() -> None:
    server = TokenServer(users={})
    key_id = libtrust_key_id(server._key.public_key())
    server.stop()
    groups = key_id.split(":")
    assert len(groups) == 12
    assert all(len(g) == 4 and re.fullmatch(r"[A-Z2-7]{4}", g) for g in groups)


def test_acl_grants_only_allowed_actions() -> None:
    server = TokenServer(
        users={"a": "p"}, acl=[AclRule("a", "team/*", frozenset({"pull"})), AclRule("", "pub/*", frozenset({"pull"}))]
    )
    assert server.grant("a", ["repository:team/x:pull,push"]) == [
        {"type": "repository", "name": "team/x", "actions": ["pull"]}
    ]
    assert server.grant("a", ["repository:other:pull"])[0]["actions"] == []
    assert server.grant("", ["repository:pub/x:pull"])[0]["actions"] == ["pull"]
    assert server.grant("a", ["repository:pub/x:pull"])[0]["actions"] == []
    assert parse_scope("repository:127.0.0.1:5000/x:pull") == ("repository", "127.0.0.1:5000/x", ["pull"])
    server.stop()


def test_token_endpoint_is_a_loopback_server_with_a_request_log() -> None:
    with TokenServer(users={"u": "p"}) as server:
        assert server.realm.startswith("http://127.0.0.1:")
        assert httpx.get(server.realm, params={"scope": "repository:x:pull"}, auth=("u", "p")).status_code == 200
        assert httpx.get(server.realm, auth=("u", "wrong")).status_code == 401
        assert httpx.post(server.realm, data={"grant_type": "password"}).status_code == 405  # Basic flow only
        assert httpx.get(server.realm.replace("/token", "/other")).status_code == 404
        seen = [(r.method, r.path, "authorization" in r.headers) for r in server.server.requests]
    assert seen == [
        ("GET", "/token", True),
        ("GET", "/token", True),
        ("POST", "/token", False),
        ("GET", "/other", False),
    ]
    assert [t.account for t in server.issued] == ["u"]
    assert server.refused == ["<bad credentials>"]
