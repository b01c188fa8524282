"""Error paths a real registry will not produce on demand, against the in-memory ``FakeRegistry``.

Every test that talks to a fake runs twice (the ``wire`` fixture, ``support.fakeregistry.Wire``):
``mock``, in process through ``httpx.MockTransport``, and ``socket``, the same fake served on loopback by
``support.httpserver.LoopbackServer`` and reached through the production transport (``FastTransport``,
what ``RegistryClient`` picks without ``transport=``). So a rule the client enforces holds on both paths,
and the mock's emulation of a reset or a short body is checked against what a socket really does.

Covered: 429 with Retry-After, 503 then success, a budget that runs out, a connection reset mid-blob (the
source stream is re-opened), a source serving the wrong bytes (nothing completes in the target), a
refused token, a 403 reflecting the credentials, a huge manifest, schema 1, servers that ignore
pagination, redirects to storage, upload fallbacks, and no secret in any message. The last tests need no
wire at all: they check construction and the choice of transport.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from urllib.parse import parse_qsl, urlsplit

import pytest
from support.fakeregistry import FLAVOURS, FakeRegistry, Wire, image_manifest, sha256
from support.httpserver import Reply, Request, Response, echo_headers

from reconciler.errors import (
    AuthError,
    DigestMismatchError,
    TransientRegistryError,
    UnsupportedManifestError,
)
from reconciler.registry import Copier, Credentials, RegistryClient, RetryPolicy

FAST = RetryPolicy(attempts=4, base_delay=0.001, max_delay=5.0, budget=30.0)
SECRET = "s3cr3t-pa55word-value"
TOKEN = "eyJ.secret-token-value.sig"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@pytest.fixture(params=FLAVOURS)
def wire(request: pytest.FixtureRequest) -> Iterator[Wire]:
    """``mock`` or ``socket``: see the module docstring."""
    with Wire(request.param, retry=FAST) as running:
        yield running


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record backoff sleeps instead of sleeping."""
    recorded: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        recorded.append(seconds)

    monkeypatch.setattr("reconciler.registry.retry.asyncio.sleep", fake_sleep)
    return recorded


def host_of(url: str) -> str:
    return urlsplit(url).netloc


def fail_times(
    count: int, status: int, headers: dict[str, str] | None = None, *, path: str = ""
) -> Callable[[Request], Reply | None]:
    remaining = [count]

    def fault(request: Request) -> Reply | None:
        if remaining[0] > 0 and path in request.path:
            remaining[0] -= 1
            return Response(status, headers or {})
        return None

    return fault


def seeded() -> tuple[FakeRegistry, str, bytes, list[bytes]]:
    fake = FakeRegistry()
    config = b'{"architecture":"amd64","os":"linux"}'
    layers = [bytes(range(256)) * 4096, b"second layer" * 1000]
    for blob in [config, *layers]:
        fake.blobs[sha256(blob)] = blob
    digest = fake.add_manifest("src", image_manifest(config, layers), OCI_MANIFEST, "v1")
    return fake, digest, config, layers


def copy_between(wire: Wire, source_url: str, target: FakeRegistry, digest: str) -> None:
    async def run() -> None:
        async with wire.client(source_url) as src, wire.client(target) as dst:
            await Copier().copy(
                source=src, source_repository="src", reference=digest, target=dst, target_repository="dst", tag="v1"
            )

    asyncio.run(run())


def test_429_honours_retry_after(wire: Wire, sleeps: list[float]) -> None:
    fake, digest, _, _ = seeded()
    fake.faults.append(fail_times(2, 429, {"Retry-After": "3"}))

    async def run() -> None:
        async with wire.client(fake) as registry:
            head = await registry.head_manifest("src", "v1")
            assert head is not None
            assert head.digest == digest

    asyncio.run(run())
    assert sleeps == [3.0, 3.0]
    assert len(fake.requests) == 3


def test_503_then_success_backs_off_exponentially(wire: Wire, sleeps: list[float]) -> None:
    fake, _, _, _ = seeded()
    fake.faults.append(fail_times(3, 503))
    policy = RetryPolicy(attempts=5, base_delay=0.1, max_delay=10.0, budget=30.0)

    async def run() -> None:
        async with wire.client(fake, retry=policy) as registry:
            assert await registry.list_tags("src") == ["v1"]

    asyncio.run(run())
    assert len(sleeps) == 3
    # full jitter in [ceiling/2, ceiling], ceiling doubling: 0.1, 0.2, 0.4
    for seconds, ceiling in zip(sleeps, (0.1, 0.2, 0.4), strict=True):
        assert ceiling / 2 <= seconds <= ceiling


def test_retry_budget_is_bounded(wire: Wire, sleeps: list[float]) -> None:
    fake, _, _, _ = seeded()
    fake.faults.append(fail_times(100, 503))
    url = wire.serve(fake)

    async def run() -> None:
        async with wire.client(url) as registry:
            await registry.get_manifest("src", "v1")

    with pytest.raises(TransientRegistryError) as caught:
        asyncio.run(run())
    assert len(fake.requests) == FAST.attempts
    assert f"{host_of(url)}/src" in str(caught.value)
    assert "503" in str(caught.value)


def test_connection_reset_mid_blob_reopens_the_source(wire: Wire, sleeps: list[float]) -> None:
    source, digest, _, layers = seeded()
    big = sha256(layers[0])
    broken = [1]

    def reset_once(request: Request) -> Reply | None:
        if request.method == "GET" and request.path.endswith(big) and broken[0]:
            broken[0] -= 1
            # the head promises the whole layer; 100,000 bytes arrive, then the connection is reset
            return Response(200, body=layers[0][:100_000], length=len(layers[0]), end="reset")
        return None

    source.faults.append(reset_once)
    target = FakeRegistry()

    async def run() -> None:
        async with wire.client(source) as src, wire.client(target) as dst:
            report = await Copier().copy(
                source=src, source_repository="src", reference=digest, target=dst, target_repository="dst", tag="v1"
            )
            assert report.blobs_copied == 3

    asyncio.run(run())
    gets = [path for method, path in source.requests if method == "GET" and path.endswith(big)]
    assert len(gets) == 2  # the stream was re-opened for the retry
    assert target.blobs[big] == layers[0]
    assert ("dst", "v1") in target.manifests
    assert len(sleeps) == 1


def test_wrong_bytes_from_source_never_complete_in_target(wire: Wire, sleeps: list[float]) -> None:
    source, digest, _, layers = seeded()
    big = sha256(layers[0])
    source.serve_blob[big] = layers[0][:-1] + b"X"  # same size, wrong content
    source_url = wire.serve(source)
    target = FakeRegistry()
    with pytest.raises(DigestMismatchError) as caught:  # one error naming the source, not an exception group
        copy_between(wire, source_url, target, digest)
    message = str(caught.value)
    assert big in message
    assert f"{host_of(source_url)}/src" in message
    assert big not in target.completed_uploads
    assert ("dst", "v1") not in target.manifests  # no tag on an incomplete image
    assert sleeps == []  # a digest mismatch is final, not retried


def test_wrong_bytes_of_a_small_blob_never_complete_in_target(wire: Wire, sleeps: list[float]) -> None:
    # a small blob takes the in-memory path (read whole, then sent in one write): checked all the same
    source, digest, _, layers = seeded()
    small = sha256(layers[1])
    source.serve_blob[small] = layers[1][:-1] + b"X"
    target = FakeRegistry()
    with pytest.raises(DigestMismatchError) as caught:
        copy_between(wire, wire.serve(source), target, digest)
    assert small in str(caught.value)
    assert small not in target.completed_uploads
    assert ("dst", "v1") not in target.manifests
    assert sleeps == []


def test_a_small_blob_unlike_its_descriptor_size_is_refused(wire: Wire, sleeps: list[float]) -> None:
    source, _, config, layers = seeded()
    document = json.loads(image_manifest(config, layers))
    document["layers"][1]["size"] += 1  # the manifest lies about the size; the bytes match the digest
    digest = source.add_manifest("src", json.dumps(document).encode(), OCI_MANIFEST)
    source_url = wire.serve(source)
    target = FakeRegistry()
    with pytest.raises(DigestMismatchError) as caught:
        copy_between(wire, source_url, target, digest)
    assert "its descriptor says" in str(caught.value)
    assert f"{host_of(source_url)}/src" in str(caught.value)  # the source is blamed, not the target
    assert sha256(layers[1]) not in target.completed_uploads
    assert ("dst", "v1") not in target.manifests


def test_bad_token_is_refused_without_leaking_it(wire: Wire, caplog: pytest.LogCaptureFixture) -> None:
    tokens_issued: list[list[str]] = []

    def token_service(request: Request) -> Reply:
        tokens_issued.append(request.query.get("scope", []))
        return Response.json({"token": TOKEN, "expires_in": 300})

    realm = wire.serve(token_service, host="auth.example.test") + "/token"
    challenge = f'Bearer realm="{realm}",service="reg",scope="repository:app:pull"'

    def registry(request: Request) -> Reply:
        return Response.error(401, "UNAUTHORIZED", "authentication required", {"WWW-Authenticate": challenge})

    caplog.set_level(logging.DEBUG)

    async def run() -> None:
        async with wire.client(registry, credentials=Credentials("alice", SECRET)) as client:
            await client.head_manifest("app", "v1")

    with pytest.raises(AuthError) as caught:
        asyncio.run(run())
    assert tokens_issued == [["repository:app:pull"]]
    for text in (str(caught.value), repr(caught.value), caplog.text):
        assert TOKEN not in text
        assert SECRET not in text


def test_a_403_reflecting_the_credentials_is_scrubbed(wire: Wire) -> None:
    # Some registries (and proxies in front of them) echo the request's headers into their error text.
    def registry(request: Request) -> Reply:
        if request.header("authorization") is None:
            return Response.error(401, "UNAUTHORIZED", "", {"WWW-Authenticate": 'Basic realm="registry"'})
        return echo_headers(request, status=403)

    async def run() -> None:
        async with wire.client(registry, credentials=Credentials("alice", SECRET)) as client:
            await client.list_tags("app")

    with pytest.raises(AuthError) as caught:
        asyncio.run(run())
    message = str(caught.value)
    assert "403" in message
    assert "DENIED" in message  # the registry's text is shown...
    assert SECRET not in message
    assert "YWxpY2U6" not in message  # ...but not the Basic header's base64 of "alice:<password>"


def test_huge_manifest_is_refused(wire: Wire) -> None:
    fake = FakeRegistry()
    huge = json.dumps({"schemaVersion": 2, "padding": "x" * (4 * 1024 * 1024 + 1)}).encode()
    fake.add_manifest("app", huge, OCI_MANIFEST, "big")

    async def once() -> AsyncIterator[bytes]:
        yield huge

    def without_length(request: Request) -> Reply | None:
        if request.path.endswith("/manifests/chunked"):
            # no Content-Length (chunked on a socket): the limit is enforced while reading
            return Response(200, {"Content-Type": OCI_MANIFEST}, once())
        return None

    fake.faults.append(without_length)
    url = wire.serve(fake)

    async def get(reference: str) -> None:
        async with wire.client(url) as registry:
            await registry.get_manifest("app", reference)

    for reference in ("big", "chunked"):
        with pytest.raises(UnsupportedManifestError, match="4194304 byte limit"):
            asyncio.run(get(reference))


def test_schema1_is_refused_clearly(wire: Wire) -> None:
    fake = FakeRegistry()
    raw = json.dumps({"schemaVersion": 1, "name": "app", "tag": "old", "fsLayers": []}).encode()
    fake.add_manifest("app", raw, "application/vnd.docker.distribution.manifest.v1+prettyjws", "old")

    async def get() -> None:
        async with wire.client(fake) as registry:
            await registry.get_manifest("app", "old")

    with pytest.raises(UnsupportedManifestError, match="schema 1"):
        asyncio.run(get())


def test_manifest_not_matching_its_digest_is_refused(wire: Wire) -> None:
    fake = FakeRegistry()
    raw = image_manifest(b"{}", [])
    wrong = "sha256:" + "1" * 64
    fake.faults.append(
        lambda request: Response(200, {"Content-Type": OCI_MANIFEST, "Docker-Content-Digest": wrong}, raw)
    )

    async def get() -> None:
        async with wire.client(fake) as registry:
            await registry.get_manifest("app", "v1")

    with pytest.raises(DigestMismatchError):
        asyncio.run(get())


def test_tags_pagination_with_a_server_ignoring_n_and_last(wire: Wire) -> None:
    calls: list[str] = []

    def handler(request: Request) -> Reply:
        calls.append(request.target)
        # Always the whole unsorted list, always a Link to "the next page": must not loop forever.
        return Response.json(
            {"name": "app", "tags": ["b", "c", "a"]}, headers={"Link": '</v2/app/tags/list?n=2&last=c>; rel="next"'}
        )

    async def run() -> list[str]:
        async with wire.client(handler) as registry:
            return await registry.list_tags("app")

    assert asyncio.run(run()) == ["a", "b", "c"]
    assert len(calls) == 2


def test_tags_pagination_follows_link_pages(wire: Wire) -> None:
    pages = {
        "": (["z", "y"], "/v2/app/tags/list?n=2&last=y"),
        "y": (["m", "n"], "/v2/app/tags/list?n=2&last=n"),
        "n": (["a"], None),
    }

    def handler(request: Request) -> Reply:
        tags, link = pages[request.param("last") or ""]
        return Response.json({"name": "app", "tags": tags}, headers={"Link": f'<{link}>; rel="next"'} if link else {})

    async def run() -> list[str]:
        async with wire.client(handler) as registry:
            return await registry.list_tags("app")

    assert asyncio.run(run()) == ["a", "m", "n", "y", "z"]


def test_blob_redirect_to_storage_drops_the_authorization_header(wire: Wire) -> None:
    blob = b"layer bytes stored elsewhere" * 1000
    digest = sha256(blob)
    seen: list[tuple[str, str | None]] = []

    def storage(request: Request) -> Reply:
        seen.append(("storage", request.header("authorization")))
        return Response(200, body=blob)

    storage_url = wire.serve(storage, host="storage.example.test")

    def registry(request: Request) -> Reply:
        seen.append(("registry", request.header("authorization")))
        if request.header("authorization") is None:
            return Response(401, {"WWW-Authenticate": 'Basic realm="registry"'})
        return Response(307, {"Location": f"{storage_url}/blobs/{digest}?sig=abc"})

    url = wire.serve(registry, host="registry.example.test")

    async def run() -> bytes:
        async with wire.client(url, credentials=Credentials("alice", SECRET)) as client:
            return await client.get_blob("app", digest)

    assert asyncio.run(run()) == blob
    assert seen[-1] == ("storage", None)
    assert seen[-2][0] == "registry"
    assert seen[-2][1] is not None


def test_refused_monolithic_upload_falls_back_to_chunks_of_the_announced_minimum(wire: Wire) -> None:
    fake = FakeRegistry(monolithic_limit=1000, chunk_min=3 * 1024 * 1024)
    data = bytes(range(256)) * (7 * 1024 * 1024 // 256 + 3)
    digest = sha256(data)

    async def run() -> str:
        async with wire.client(fake) as registry:
            return await registry.upload_blob("app", digest, data, chunk_size=1024 * 1024)

    assert asyncio.run(run()) == "uploaded"
    assert fake.blobs[digest] == data
    # 1 MiB asked for, but the registry wants at least 3 MiB per PATCH (the last one may be shorter)
    assert fake.patches[:-1] == [3 * 1024 * 1024, 3 * 1024 * 1024]
    assert sum(fake.patches) == len(data)


def test_declined_mount_uses_the_session_it_opened(wire: Wire) -> None:
    fake = FakeRegistry()
    data = b"blob the source repository does not have" * 100
    digest = sha256(data)

    def decline_mount(request: Request) -> Reply | None:
        if request.method == "POST" and "mount" in request.query:
            fake.sessions["mount-session"] = bytearray()
            return Response(202, {"Location": "/v2/app/blobs/uploads/mount-session?_state=m"})
        return None

    fake.faults.append(decline_mount)

    async def run() -> str:
        async with wire.client(fake) as registry:
            return await registry.upload_blob("app", digest, data, mount_from="other")

    assert asyncio.run(run()) == "uploaded"
    assert fake.blobs[digest] == data
    posts = [path for method, path in fake.requests if method == "POST"]
    assert len(posts) == 1  # the declined mount's session carried the upload: no second POST


def test_identity_token_uses_the_oauth2_refresh_flow(wire: Wire) -> None:
    token_requests: list[tuple[str, str | None, dict[str, str]]] = []

    def token_service(request: Request) -> Reply:
        form = dict(parse_qsl(request.body.decode()))
        token_requests.append((request.method, request.header("authorization"), form))
        return Response.json({"access_token": "access-123", "expires_in": 60})

    realm = wire.serve(token_service, host="auth.example.test") + "/token"

    def registry(request: Request) -> Reply:
        if request.header("authorization") == "Bearer access-123":
            return Response.json({"name": "app", "tags": ["v1"]})
        return Response(401, {"WWW-Authenticate": f'Bearer realm="{realm}",service="reg"'})

    async def run() -> list[str]:
        async with wire.client(registry, credentials=Credentials("<token>", identity_token=TOKEN)) as client:
            return await client.list_tags("app")

    assert asyncio.run(run()) == ["v1"]
    expected_form = {
        "grant_type": "refresh_token",
        "refresh_token": TOKEN,
        "client_id": "reconciler",
        "scope": "repository:app:pull",
        "service": "reg",
    }
    assert token_requests == [("POST", None, expected_form)]  # a form POST, no credentials in a header


def test_same_registry_copy_with_declined_mounts_cannot_deadlock_on_request_slots(wire: Wire) -> None:
    fake, digest, _, layers = seeded()

    def decline_mounts(request: Request) -> Reply | None:
        if request.method == "POST" and "mount" in request.query:
            session = f"declined-{len(fake.sessions)}"
            fake.sessions[session] = bytearray()
            return Response(202, {"Location": f"/v2/dst/blobs/uploads/{session}?_state=d"})
        return None

    fake.faults.append(decline_mounts)

    async def run() -> None:
        # One request slot, and more parallel blobs than slots: every transfer reads and writes the same
        # registry, which must not wait for a second slot while holding the first.
        async with wire.client(fake, max_concurrency=1) as registry:
            copier = Copier(max_parallel_blobs=4)
            report = await asyncio.wait_for(
                copier.copy(
                    source=registry,
                    source_repository="src",
                    reference=digest,
                    target=registry,
                    target_repository="dst",
                    tag="v1",
                ),
                timeout=30,
            )
            assert report.blobs_copied == 3

    asyncio.run(run())
    assert ("dst", "v1") in fake.manifests
    assert sha256(layers[0]) in fake.completed_uploads


# -- No wire: construction and the choice of transport, which no fake answers (so run once) ----------


def test_secrets_never_in_reprs() -> None:
    creds = Credentials("alice", SECRET)
    token_creds = Credentials("<token>", identity_token=TOKEN)
    registry = RegistryClient(url="https://registry.example.com", credentials=creds)
    for text in (repr(creds), str(creds), repr(token_creds), repr(registry), repr(registry.session)):
        assert SECRET not in text
        assert TOKEN not in text
    assert "alice" in repr(creds)


def test_plain_http_needs_opt_in_except_on_loopback() -> None:
    with pytest.raises(ValueError, match="explicit opt-in"):
        RegistryClient(url="http://registry.example.com")
    assert RegistryClient(url="http://registry.example.com", insecure=True).url == "http://registry.example.com"
    assert RegistryClient(url="registry.example.com:5000").url == "https://registry.example.com:5000"
    assert RegistryClient(url="localhost:5000").url == "http://localhost:5000"
    assert RegistryClient(url="127.0.0.5:5000").url == "http://127.0.0.5:5000"
    assert RegistryClient(url="[::1]:5000").url == "http://[::1]:5000"
    with pytest.raises(ValueError, match="must not embed credentials"):
        RegistryClient(url=f"https://alice:{SECRET}@registry.example.com")


def test_proxy_variables_select_httpx_own_transport(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert RegistryClient(url="https://registry.example.com").session.transport_kind == "fast"
    monkeypatch.setenv("https_proxy", "http://proxy.example.com:3128")
    # httpx's own transport honours the proxy variables
    assert RegistryClient(url="https://registry.example.com").session.transport_kind == "httpx"
