"""Error paths a real registry will not produce on demand, through httpx.MockTransport.

429 with Retry-After, 503 then success, a budget that runs out, a connection reset mid-blob (the source
stream is re-opened), a source serving the wrong bytes (nothing completes in the target), a refused
token, a huge manifest, schema 1, servers that ignore pagination, and no secret in any message.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable

import httpx
import pytest

from reconciler.errors import (
    AuthError,
    DigestMismatchError,
    TransientRegistryError,
    UnsupportedManifestError,
)
from reconciler.registry import Copier, Credentials, RegistryClient, RetryPolicy

from .fakeregistry import BrokenStream, FakeRegistry, image_manifest, sha256

FAST = RetryPolicy(attempts=4, base_delay=0.001, max_delay=5.0, budget=30.0)
SECRET = "s3cr3t-pa55word-value"
TOKEN = "eyJ.secret-token-value.sig"


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record backoff sleeps instead of sleeping."""
    recorded: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        recorded.append(seconds)

    monkeypatch.setattr("reconciler.registry.retry.asyncio.sleep", fake_sleep)
    return recorded


def client(fake: FakeRegistry, *, url: str = "http://127.0.0.1:5000", **kwargs: object) -> RegistryClient:
    return RegistryClient(url=url, transport=fake.transport(), retry=FAST, **kwargs)  # type: ignore[arg-type]


def fail_times(
    count: int, status: int, headers: dict[str, str] | None = None, *, path: str = ""
) -> Callable[[httpx.Request], httpx.Response | None]:
    remaining = [count]

    def fault(request: httpx.Request) -> httpx.Response | None:
        if remaining[0] > 0 and path in request.url.path:
            remaining[0] -= 1
            return httpx.Response(status, headers=headers or {})
        return None

    return fault


def seeded() -> tuple[FakeRegistry, str, bytes, list[bytes]]:
    fake = FakeRegistry()
    config = b'{"architecture":"amd64","os":"linux"}'
    layers = [bytes(range(256)) * 4096, b"second layer" * 1000]
    for blob in [config, *layers]:
        fake.blobs[sha256(blob)] = blob
    digest = fake.add_manifest(
        "src", image_manifest(config, layers), "application/vnd.oci.image.manifest.v1+json", "v1"
    )
    return fake, digest, config, layers


def test_429_honours_retry_after(sleeps: list[float]) -> None:
    fake, digest, _, _ = seeded()
    fake.faults.append(fail_times(2, 429, {"Retry-After": "3"}))

    async def run() -> None:
        async with client(fake) as registry:
            head = await registry.head_manifest("src", "v1")
            assert head is not None
            assert head.digest == digest

    asyncio.run(run())
    assert sleeps == [3.0, 3.0]
    assert len(fake.requests) == 3


def test_503_then_success_backs_off_exponentially(sleeps: list[float]) -> None:
    fake, _, _, _ = seeded()
    fake.faults.append(fail_times(3, 503))
    policy = RetryPolicy(attempts=5, base_delay=0.1, max_delay=10.0, budget=30.0)

    async def run() -> None:
        async with RegistryClient(url="http://127.0.0.1:5000", transport=fake.transport(), retry=policy) as registry:
            assert await registry.list_tags("src") == ["v1"]

    asyncio.run(run())
    assert len(sleeps) == 3
    # full jitter in [ceiling/2, ceiling], ceiling doubling: 0.1, 0.2, 0.4
    for seconds, ceiling in zip(sleeps, (0.1, 0.2, 0.4), strict=True):
        assert ceiling / 2 <= seconds <= ceiling


def test_retry_budget_is_bounded(sleeps: list[float]) -> None:
    fake, _, _, _ = seeded()
    fake.faults.append(fail_times(100, 503))

    async def run() -> None:
        async with client(fake) as registry:
            await registry.get_manifest("src", "v1")

    with pytest.raises(TransientRegistryError) as caught:
        asyncio.run(run())
    assert len(fake.requests) == FAST.attempts
    assert "127.0.0.1:5000/src" in str(caught.value)
    assert "503" in str(caught.value)


def test_connection_reset_mid_blob_reopens_the_source(sleeps: list[float]) -> None:
    source, digest, _, layers = seeded()
    big = sha256(layers[0])
    broken = [1]

    def reset_once(request: httpx.Request) -> httpx.Response | None:
        if request.method == "GET" and request.url.path.endswith(big) and broken[0]:
            broken[0] -= 1
            return httpx.Response(200, stream=BrokenStream(layers[0], 100_000))
        return None

    source.faults.append(reset_once)
    target = FakeRegistry()

    async def run() -> None:
        async with client(source) as src, client(target, url="http://127.0.0.2:5000") as dst:
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


def test_wrong_bytes_from_source_never_complete_in_target(sleeps: list[float]) -> None:
    source, digest, _, layers = seeded()
    big = sha256(layers[0])
    source.serve_blob[big] = layers[0][:-1] + b"X"  # same size, wrong content
    target = FakeRegistry()

    async def run() -> None:
        async with client(source) as src, client(target, url="http://127.0.0.2:5000") as dst:
            await Copier().copy(
                source=src, source_repository="src", reference=digest, target=dst, target_repository="dst", tag="v1"
            )

    with pytest.raises(DigestMismatchError) as caught:  # one error naming the source, not an exception group
        asyncio.run(run())
    message = str(caught.value)
    assert big in message
    assert "127.0.0.1:5000/src" in message
    assert big not in target.completed_uploads
    assert ("dst", "v1") not in target.manifests  # no tag on an incomplete image
    assert sleeps == []  # a digest mismatch is final, not retried


def copy_between(source: FakeRegistry, target: FakeRegistry, digest: str) -> None:
    async def run() -> None:
        async with client(source) as src, client(target, url="http://127.0.0.2:5000") as dst:
            await Copier().copy(
                source=src, source_repository="src", reference=digest, target=dst, target_repository="dst", tag="v1"
            )

    asyncio.run(run())


def test_wrong_bytes_of_a_small_blob_never_complete_in_target(sleeps: list[float]) -> None:
    # a small blob takes the in-memory path (read whole, then sent in one write): checked all the same
    source, digest, _, layers = seeded()
    small = sha256(layers[1])
    source.serve_blob[small] = layers[1][:-1] + b"X"
    target = FakeRegistry()
    with pytest.raises(DigestMismatchError) as caught:
        copy_between(source, target, digest)
    assert small in str(caught.value)
    assert small not in target.completed_uploads
    assert ("dst", "v1") not in target.manifests
    assert sleeps == []


def test_a_small_blob_unlike_its_descriptor_size_is_refused(sleeps: list[float]) -> None:
    source, _, config, layers = seeded()
    document = json.loads(image_manifest(config, layers))
    document["layers"][1]["size"] += 1  # the manifest lies about the size; the bytes match the digest
    digest = source.add_manifest("src", json.dumps(document).encode(), "application/vnd.oci.image.manifest.v1+json")
    target = FakeRegistry()
    with pytest.raises(DigestMismatchError) as caught:
        copy_between(source, target, digest)
    assert "its descriptor says" in str(caught.value)
    assert "127.0.0.1:5000/src" in str(caught.value)  # the source is blamed, not the target
    assert sha256(layers[1]) not in target.completed_uploads
    assert ("dst", "v1") not in target.manifests


def test_bad_token_is_refused_without_leaking_it(caplog: pytest.LogCaptureFixture) -> None:
    tokens_issued = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "auth.example.test":
            tokens_issued.append(request.url.params.get_list("scope"))
            return httpx.Response(200, json={"token": TOKEN, "expires_in": 300})
        return httpx.Response(
            401,
            headers={
                "WWW-Authenticate": 'Bearer realm="https://auth.example.test/token",service="reg",'
                'scope="repository:app:pull"'
            },
            json={"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]},
        )

    caplog.set_level(logging.DEBUG)

    async def run() -> None:
        async with RegistryClient(
            url="http://127.0.0.1:5000",
            transport=httpx.MockTransport(handler),
            credentials=Credentials("alice", SECRET),
            retry=FAST,
        ) as registry:
            await registry.head_manifest("app", "v1")

    with pytest.raises(AuthError) as caught:
        asyncio.run(run())
    assert tokens_issued == [["repository:app:pull"]]
    for text in (str(caught.value), repr(caught.value), caplog.text):
        assert TOKEN not in text
        assert SECRET not in text


def test_huge_manifest_is_refused() -> None:
    fake = FakeRegistry()
    huge = json.dumps({"schemaVersion": 2, "padding": "x" * (4 * 1024 * 1024 + 1)}).encode()
    fake.add_manifest("app", huge, "application/vnd.oci.image.manifest.v1+json", "big")

    def without_length(request: httpx.Request) -> httpx.Response | None:
        if request.url.path.endswith("/manifests/chunked"):
            return httpx.Response(
                200,
                headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
                stream=httpx.ByteStream(huge),  # no Content-Length: the limit is enforced while reading
            )
        return None

    fake.faults.append(without_length)

    async def get(reference: str) -> None:
        async with client(fake) as registry:
            await registry.get_manifest("app", reference)

    for reference in ("big", "chunked"):
        with pytest.raises(UnsupportedManifestError, match="4194304 byte limit"):
            asyncio.run(get(reference))


def test_schema1_is_refused_clearly() -> None:
    fake = FakeRegistry()
    raw = json.dumps({"schemaVersion": 1, "name": "app", "tag": "old", "fsLayers": []}).encode()
    fake.add_manifest("app", raw, "application/vnd.docker.distribution.manifest.v1+prettyjws", "old")

    async def get() -> None:
        async with client(fake) as registry:
            await registry.get_manifest("app", "old")

    with pytest.raises(UnsupportedManifestError, match="schema 1"):
        asyncio.run(get())


def test_manifest_not_matching_its_digest_is_refused() -> None:
    fake = FakeRegistry()
    raw = image_manifest(b"{}", [])
    fake.manifests[("app", "v1")] = (raw, "application/vnd.oci.image.manifest.v1+json")
    wrong = "sha256:" + "1" * 64

    def lie(request: httpx.Request) -> httpx.Response | None:
        return httpx.Response(
            200,
            content=raw,
            headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json", "Docker-Content-Digest": wrong},
        )

    fake.faults.append(lie)

    async def get() -> None:
        async with client(fake) as registry:
            await registry.get_manifest("app", "v1")

    with pytest.raises(DigestMismatchError):
        asyncio.run(get())


def test_tags_pagination_with_a_server_ignoring_n_and_last() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        # Always the whole unsorted list, always a Link to "the next page": must not loop forever.
        return httpx.Response(
            200,
            json={"name": "app", "tags": ["b", "c", "a"]},
            headers={"Link": '</v2/app/tags/list?n=2&last=c>; rel="next"'},
        )

    async def run() -> list[str]:
        async with RegistryClient(url="http://127.0.0.1:5000", transport=httpx.MockTransport(handler)) as registry:
            return await registry.list_tags("app")

    assert asyncio.run(run()) == ["a", "b", "c"]
    assert len(calls) == 2


def test_tags_pagination_follows_link_pages() -> None:
    pages = {
        "": (["z", "y"], "/v2/app/tags/list?n=2&last=y"),
        "y": (["m", "n"], "/v2/app/tags/list?n=2&last=n"),
        "n": (["a"], None),
    }

    def handler(request: httpx.Request) -> httpx.Response:
        tags, link = pages[request.url.params.get("last", "")]
        headers = {"Link": f'<{link}>; rel="next"'} if link else {}
        return httpx.Response(200, json={"name": "app", "tags": tags}, headers=headers)

    async def run() -> list[str]:
        async with RegistryClient(url="http://127.0.0.1:5000", transport=httpx.MockTransport(handler)) as registry:
            return await registry.list_tags("app")

    assert asyncio.run(run()) == ["a", "m", "n", "y", "z"]


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


def test_blob_redirect_to_storage_drops_the_authorization_header() -> None:
    blob = b"layer bytes stored elsewhere" * 1000
    digest = sha256(blob)
    seen: list[tuple[str, str | None]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.host, request.headers.get("authorization")))
        if request.url.host == "storage.example.test":
            return httpx.Response(200, content=blob)
        if "authorization" not in request.headers:
            return httpx.Response(401, headers={"WWW-Authenticate": 'Basic realm="registry"'})
        return httpx.Response(307, headers={"Location": f"https://storage.example.test/blobs/{digest}?sig=abc"})

    async def run() -> bytes:
        async with RegistryClient(
            url="https://registry.example.test",
            transport=httpx.MockTransport(handler),
            credentials=Credentials("alice", SECRET),
        ) as registry:
            return await registry.get_blob("app", digest)

    assert asyncio.run(run()) == blob
    assert seen[-1] == ("storage.example.test", None)
    assert seen[-2][0] == "registry.example.test"
    assert seen[-2][1] is not None


def test_refused_monolithic_upload_falls_back_to_chunks_of_the_announced_minimum() -> None:
    fake = FakeRegistry(monolithic_limit=1000, chunk_min=3 * 1024 * 1024)
    data = bytes(range(256)) * (7 * 1024 * 1024 // 256 + 3)
    digest = sha256(data)

    async def run() -> str:
        async with client(fake) as registry:
            return await registry.upload_blob("app", digest, data, chunk_size=1024 * 1024)

    assert asyncio.run(run()) == "uploaded"
    assert fake.blobs[digest] == data
    # 1 MiB asked for, but the registry wants at least 3 MiB per PATCH (the last one may be shorter)
    assert fake.patches[:-1] == [3 * 1024 * 1024, 3 * 1024 * 1024]
    assert sum(fake.patches) == len(data)


def test_declined_mount_uses_the_session_it_opened() -> None:
    fake = FakeRegistry()
    data = b"blob the source repository does not have" * 100
    digest = sha256(data)

    def decline_mount(request: httpx.Request) -> httpx.Response | None:
        if request.method == "POST" and "mount" in request.url.params:
            fake.sessions["mount-session"] = bytearray()
            return httpx.Response(202, headers={"Location": "/v2/app/blobs/uploads/mount-session?_state=m"})
        return None

    fake.faults.append(decline_mount)

    async def run() -> str:
        async with client(fake) as registry:
            return await registry.upload_blob("app", digest, data, mount_from="other")

    assert asyncio.run(run()) == "uploaded"
    assert fake.blobs[digest] == data
    posts = [path for method, path in fake.requests if method == "POST"]
    assert len(posts) == 1  # the declined mount's session carried the upload: no second POST


def test_identity_token_uses_the_oauth2_refresh_flow() -> None:
    forms: list[dict[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "auth.example.test":
            assert request.method == "POST"
            assert "authorization" not in request.headers
            form = dict(httpx.QueryParams(request.content.decode()))
            forms.append(form)
            return httpx.Response(200, json={"access_token": "access-123", "expires_in": 60})
        if request.headers.get("authorization") == "Bearer access-123":
            return httpx.Response(200, json={"name": "app", "tags": ["v1"]})
        return httpx.Response(
            401, headers={"WWW-Authenticate": 'Bearer realm="https://auth.example.test/token",service="reg"'}
        )

    async def run() -> list[str]:
        async with RegistryClient(
            url="https://registry.example.test",
            transport=httpx.MockTransport(handler),
            credentials=Credentials("<token>", identity_token=TOKEN),
        ) as registry:
            return await registry.list_tags("app")

    assert asyncio.run(run()) == ["v1"]
    assert forms == [
        {
            "grant_type": "refresh_token",
            "refresh_token": TOKEN,
            "client_id": "reconciler",
            "scope": "repository:app:pull",
            "service": "reg",
        }
    ]


def test_same_registry_copy_with_declined_mounts_cannot_deadlock_on_request_slots() -> None:
    fake, digest, _, layers = seeded()

    def decline_mounts(request: httpx.Request) -> httpx.Response | None:
        if request.method == "POST" and "mount" in request.url.params:
            session = f"declined-{len(fake.sessions)}"
            fake.sessions[session] = bytearray()
            return httpx.Response(202, headers={"Location": f"/v2/dst/blobs/uploads/{session}?_state=d"})
        return None

    fake.faults.append(decline_mounts)

    async def run() -> None:
        # One request slot, and more parallel blobs than slots: every transfer reads and writes the same
        # registry, which must not wait for a second slot while holding the first.
        async with RegistryClient(
            url="http://127.0.0.1:5000", transport=fake.transport(), retry=FAST, max_concurrency=1
        ) as registry:
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
                timeout=10,
            )
            assert report.blobs_copied == 3

    asyncio.run(run())
    assert ("dst", "v1") in fake.manifests
    assert sha256(layers[0]) in fake.completed_uploads


def test_proxy_variables_select_httpx_own_transport(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    assert RegistryClient(url="https://registry.example.com").session.transport_kind == "fast"
    monkeypatch.setenv("https_proxy", "http://proxy.example.com:3128")
    # httpx's own transport honours the proxy variables
    assert RegistryClient(url="https://registry.example.com").session.transport_kind == "httpx"
