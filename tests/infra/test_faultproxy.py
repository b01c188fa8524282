"""The fault proxy forwards faithfully (streams, Location, chunked), counts, and injects faults as configured."""

from __future__ import annotations

import contextlib
import hashlib
import socket
from collections.abc import Iterator

import httpx
import pytest
from support.faultproxy import FaultKind, FaultProxy
from support.skopeo import Skopeo

from testkit.imagegen import OCI_INDEX, image_for
from testkit.imagepush import push_image
from testkit.localregistry import LocalRegistry


@pytest.fixture
def proxy(registry: LocalRegistry) -> Iterator[FaultProxy]:
    with FaultProxy(registry.url, retry_after="2") as running:
        yield running


def test_upload_location_points_back_at_the_proxy(proxy: FaultProxy) -> None:
    response = httpx.post(f"{proxy.url}/v2/a/blobs/uploads/")
    assert response.status_code == 202
    assert response.headers["Location"].startswith(f"{proxy.url}/v2/a/blobs/uploads/")


def test_push_through_proxy_is_intact_and_counted(registry: LocalRegistry, proxy: FaultProxy, skopeo: Skopeo) -> None:
    image = image_for("payments/api", "20261127_01", fmt="oci", platforms=("linux/amd64", "linux/arm64/v8"))
    push_image(image, proxy.url, "r", "v1")
    assert skopeo.digest(f"docker://{registry.host}/r:v1") == image.digest
    counts = proxy.counts()
    assert counts[("PUT", "manifest")] == 3
    assert counts[("PUT", "upload")] == len(image.blobs)
    assert proxy.blob_bytes_uploaded == image.total_blob_bytes
    assert all(r.fault is None for r in proxy.requests)
    assert {r.status for r in proxy.requests} == {404, 202, 201}  # HEAD blob (absent), POST, PUT


def test_skopeo_copy_through_proxy_streams_both_ways(
    registry: LocalRegistry, proxy: FaultProxy, skopeo: Skopeo
) -> None:
    image = image_for("payments/api", "20261127_01", layer_size=2 * 1024 * 1024)
    push_image(image, registry.url, "src", "v1")
    skopeo.copy(f"docker://{proxy.host}/src:v1", f"docker://{proxy.host}/dst:v1")
    assert skopeo.digest(f"docker://{registry.host}/dst:v1") == image.digest
    assert proxy.blob_bytes_uploaded == image.total_blob_bytes
    downloaded = sum(r.response_bytes for r in proxy.requests if r.method == "GET" and r.kind == "blob")
    assert downloaded == image.total_blob_bytes


def test_chunked_request_bodies_pass_through(registry: LocalRegistry, proxy: FaultProxy) -> None:
    data = bytes(range(256)) * 4096  # 1 MiB
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    location = httpx.post(f"{proxy.url}/v2/c/blobs/uploads/").headers["Location"]

    def pieces() -> Iterator[bytes]:  # a generator body: httpx sends it chunked
        for start in range(0, len(data), 100_000):
            yield data[start : start + 100_000]

    patched = httpx.patch(location, content=pieces())
    assert patched.status_code == 202
    done = httpx.put(httpx.URL(patched.headers["Location"]).copy_merge_params({"digest": digest}))
    assert done.status_code == 201
    assert httpx.get(f"{registry.url}/v2/c/blobs/{digest}").content == data
    assert proxy.blob_bytes_uploaded == len(data)


def test_scripted_faults(proxy: FaultProxy) -> None:
    url = f"{proxy.url}/v2/"
    proxy.fail_next("503")
    assert httpx.get(url).status_code == 503
    proxy.fail_next("429")
    limited = httpx.get(url)
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "2"
    proxy.fail_next("reset")
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(url)
    assert httpx.get(url).status_code == 200
    assert proxy.fault_counts() == {"503": 1, "429": 1, "reset": 1}


@pytest.mark.parametrize("kind", ["500", "503", "429"])
def test_an_injected_error_answers_head_without_a_body(proxy: FaultProxy, kind: FaultKind) -> None:
    """A body after a HEAD response is read as the start of the next response on a keep-alive connection."""
    proxy.fail_next(kind)
    with socket.create_connection((proxy.host.split(":")[0], proxy.port), timeout=10) as connection:
        connection.sendall(b"HEAD /v2/a/manifests/v1 HTTP/1.1\r\nHost: x\r\n\r\n")
        connection.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    first, _, after = received.partition(b"\r\n\r\n")
    assert first.startswith(f"HTTP/1.1 {kind} ".encode()), received
    assert after.startswith(b"HTTP/1.1 200 "), received  # the next response, not the HEAD's body
    head_record, next_record = proxy.requests
    assert (head_record.method, head_record.status, head_record.response_bytes) == ("HEAD", int(kind), 0)
    assert (next_record.method, next_record.status) == ("GET", 200)


def test_cut_mid_body_after_the_registry_processed_the_request(registry: LocalRegistry, proxy: FaultProxy) -> None:
    image = image_for("a", "b", fmt="oci", platforms=("linux/amd64", "linux/arm64/v8"))
    push_image(image, registry.url, "r", "v1")
    proxy.fail_next("cut")
    with pytest.raises(httpx.RemoteProtocolError, match=r"complete message body"):
        httpx.get(f"{proxy.url}/v2/r/manifests/v1", headers={"Accept": OCI_INDEX})
    (record,) = proxy.requests
    assert record.fault == "cut"
    assert 0 < record.response_bytes < image.size


def test_random_faults_follow_rate_and_seed(registry: LocalRegistry) -> None:
    def run(seed: int) -> list[str | None]:
        with FaultProxy(registry.url, rate=0.2, seed=seed, faults=("500", "503", "reset")) as faulty:
            with httpx.Client(timeout=60) as client:  # no client timeouts under load: 200 records exactly
                for _ in range(200):
                    with contextlib.suppress(httpx.HTTPError):
                        client.get(f"{faulty.url}/v2/")
            return [r.fault for r in faulty.requests]

    first = run(7)
    assert len(first) == 200
    injected = sum(f is not None for f in first)
    assert 20 <= injected <= 60, injected  # ~40 expected
    assert {f for f in first if f} == {"500", "503", "reset"}
    assert run(7) == first, "same seed, same faults"


def test_down_refuses_connections_until_up(proxy: FaultProxy) -> None:
    with httpx.Client() as client:
        assert client.get(f"{proxy.url}/v2/").status_code == 200
        proxy.down()
        with pytest.raises(httpx.ConnectError):
            client.get(f"{proxy.url}/v2/")
        proxy.up()
        assert client.get(f"{proxy.url}/v2/").status_code == 200


def test_cut_request_drops_an_upload_halfway(registry: LocalRegistry, proxy: FaultProxy) -> None:
    data = bytes(1024 * 1024)
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    location = httpx.post(f"{proxy.url}/v2/c/blobs/uploads/").headers["Location"]
    proxy.fail_next("cut_request")
    with pytest.raises(httpx.TransportError):
        httpx.put(httpx.URL(location).copy_merge_params({"digest": digest}), content=data)
    cut = proxy.requests[-1]
    assert cut.fault == "cut_request"
    assert cut.request_bytes == len(data) // 2
    assert httpx.head(f"{registry.url}/v2/c/blobs/{digest}").status_code == 404


def test_eligible_limits_random_faults_to_chosen_requests(registry: LocalRegistry) -> None:
    def only_manifests(method: str, path: str) -> bool:
        return "/manifests/" in path

    with FaultProxy(registry.url, rate=1.0, faults=("503",), eligible=only_manifests) as faulty:
        assert httpx.get(f"{faulty.url}/v2/").status_code == 200
        assert httpx.get(f"{faulty.url}/v2/r/manifests/v1").status_code == 503
        assert faulty.fault_counts() == {"503": 1}
