"""FastTransport against scripted loopback servers (``support.httpserver``): framing, keep-alive, stale
connections, and every hostile reply of the kit.

The registry integration tests exercise the transport on every request; these cover what distribution
does not do on demand (chunked responses, closing a pooled connection, bodies ending early, answers that
never come). The hostile replies also run through ``mock_transport``, checking that the in-process
emulation fails the way the production transport does on a real socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import pytest
from support.fakeregistry import FLAVOURS, Flavour
from support.httpserver import (
    CLOSE,
    HANG,
    RESET,
    Handler,
    HandlerError,
    LoopbackServer,
    Raw,
    Reply,
    Request,
    Response,
    drip,
    echo_headers,
    endless,
    mock_transport,
)

from reconciler.registry.transport import REPLAYABLE, FastTransport


def client() -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=FastTransport(ssl_context=ssl.create_default_context))


async def pieces(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def test_keep_alive_reuses_one_connection_and_reads_chunked_bodies() -> None:
    def handler(request: Request) -> Reply:
        if request.path == "/raw-chunked":  # a chunk extension, as some servers send
            return Raw(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\n"
            )
        if request.path == "/chunked":
            return Response(body=pieces(b"hello", b"", b" world"))
        if request.method == "HEAD":
            return Response(200, {"Content-Length": "1234", "Docker-Content-Digest": "sha256:x"})
        return Response(body=b"ok")

    async def run(url: str) -> None:
        async with client() as http:
            assert (await http.get(f"{url}/raw-chunked")).content == b"hello world"
            assert (await http.get(f"{url}/chunked")).content == b"hello world"
            head = await http.head(f"{url}/x")
            assert head.headers["content-length"] == "1234"
            assert head.content == b""
            assert (await http.get(f"{url}/plain")).text == "ok"

    with LoopbackServer(handler) as server:
        asyncio.run(run(server.url))
        assert [request.connection for request in server.requests] == [1, 1, 1, 1]


def closing_when_reused(request: Request) -> Reply:
    """Answers with its connection's number, but drops a kept-alive connection when the next request
    arrives on it (a server whose idle timeout just expired): nothing of a response has arrived."""
    if request.connection == 1 and request.path == "/b":
        return CLOSE
    return Response(body=str(request.connection).encode())


def test_stale_pooled_connection_is_retried_on_a_fresh_one() -> None:
    async def run(url: str) -> list[bytes]:
        async with client() as http:
            first = await http.get(f"{url}/a")
            second = await http.put(f"{url}/b", content=b"replayable body")
            return [first.content, second.content]

    with LoopbackServer(closing_when_reused) as server:
        assert asyncio.run(run(server.url)) == [b"1", b"2"]
        sent = [(r.method, r.path, r.connection, r.body_size) for r in server.requests]
    assert sent == [("GET", "/a", 1, 0), ("PUT", "/b", 1, 15), ("PUT", "/b", 2, 15)]


def test_a_request_that_must_not_be_replayed_is_sent_once() -> None:
    async def run(url: str) -> None:
        async with client() as http:
            await http.get(f"{url}/a")
            request = http.build_request(
                "PUT", f"{url}/b", content=b"completes an upload", extensions={REPLAYABLE: False}
            )
            await http.send(request)

    with LoopbackServer(closing_when_reused) as server:
        with pytest.raises(httpx.RemoteProtocolError, match="without a response"):
            asyncio.run(run(server.url))
        assert [r.method for r in server.requests] == ["GET", "PUT"]


def test_streamed_request_bodies_with_and_without_length() -> None:
    received: list[bytes] = []

    def handler(request: Request) -> Reply:
        received.append(request.body)
        return Response(201)

    async def run(url: str) -> None:
        async with client() as http:
            parts = (b"a" * 70_000, b"", b"b" * 10)
            length = {"Content-Length": "70010"}
            assert (await http.put(f"{url}/x", content=pieces(*parts), headers=length)).status_code == 201
            assert (await http.put(f"{url}/y", content=pieces(*parts))).status_code == 201  # chunked framing

    with LoopbackServer(handler) as server:
        asyncio.run(run(server.url))
        recorded = server.requests
    assert received == [b"a" * 70_000 + b"b" * 10] * 2
    assert [r.body_size for r in recorded] == [70_010, 70_010]
    assert recorded[0].headers["content-length"] == "70010"
    assert recorded[1].headers["transfer-encoding"] == "chunked"


def test_body_cut_short_is_a_read_error_and_the_connection_is_dropped() -> None:
    async def run(url: str) -> None:
        async with client() as http:
            await http.get(f"{url}/x")

    with (
        LoopbackServer(lambda request: Response(body=b"only-some", length=100)) as server,
        pytest.raises(httpx.RemoteProtocolError, match="91 bytes of the body missing"),
    ):
        asyncio.run(run(server.url))


def test_connection_refused_is_a_connect_error() -> None:
    async def run(url: str) -> None:
        async with client() as http:
            await http.get(f"{url}/")

    with LoopbackServer(lambda request: Response()) as server:
        server.down()  # the port is ours, and closed
        with pytest.raises(httpx.ConnectError):
            asyncio.run(run(server.url))


# -- the hostile replies, through the production transport and through MockTransport -----------------

HOSTILE: dict[str, tuple[Callable[[], Reply], type[Exception]]] = {
    "reset": (lambda: RESET, httpx.ReadError),
    "close without a response": (lambda: CLOSE, httpx.RemoteProtocolError),
    "short body": (lambda: Response(body=b"abc", length=10), httpx.RemoteProtocolError),
    "reset mid-body": (lambda: Response(body=b"abc", length=10, end="reset"), httpx.ReadError),
    "never answer": (lambda: HANG, TimeoutError),
    "head, then stall": (lambda: Response(length=10, end="stall"), TimeoutError),
    "chunks, then stall": (lambda: Response(body=pieces(b"abc"), end="stall"), TimeoutError),
}


@contextlib.contextmanager
def reachable(flavour: Flavour, handler: Handler) -> Iterator[tuple[Callable[[], httpx.AsyncClient], str]]:
    """(a client factory, a URL) reaching ``handler``: on a socket through FastTransport, or in process."""
    if flavour == "mock":
        yield (lambda: httpx.AsyncClient(transport=mock_transport(handler))), "http://127.0.0.1:5000/"
        return
    with LoopbackServer(handler) as server:
        yield client, f"{server.url}/"


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("behaviour", HOSTILE)
def test_a_hostile_reply_fails_alike_in_process_and_on_a_socket(flavour: Flavour, behaviour: str) -> None:
    reply, expected = HOSTILE[behaviour]
    # A reply that never finishes is cut by this deadline; the others fail at once, even on a loaded machine.
    deadline = 1.0 if expected is TimeoutError else 60.0

    async def run(new_client: Callable[[], httpx.AsyncClient], url: str) -> None:
        async with new_client() as http, asyncio.timeout(deadline):
            await http.get(url)

    with reachable(flavour, lambda request: reply()) as (new_client, url), pytest.raises(expected):
        asyncio.run(run(new_client, url))


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_drip_paces_the_body(flavour: Flavour) -> None:
    data = bytes(range(256)) * 12  # 3,072 bytes at 6,000 bytes per second: half a second

    async def run(new_client: Callable[[], httpx.AsyncClient], url: str) -> httpx.Response:
        async with new_client() as http:
            return await http.get(url)

    with reachable(flavour, lambda request: drip(data, 6000)) as (new_client, url):
        started = time.monotonic()
        response = asyncio.run(run(new_client, url))
        elapsed = time.monotonic() - started
    assert response.content == data
    assert response.headers["content-length"] == str(len(data))
    assert elapsed >= 0.3  # a lower bound only: a loaded machine is slower, never faster


@pytest.mark.parametrize("length", [None, 10**12])
@pytest.mark.parametrize("flavour", FLAVOURS)
def test_an_endless_body_streams_until_the_client_stops(flavour: Flavour, length: int | None) -> None:
    wanted = 8 * 1024 * 1024

    async def run(new_client: Callable[[], httpx.AsyncClient], url: str) -> tuple[int, httpx.Headers]:
        async with new_client() as http, http.stream("GET", url) as response:
            received = 0
            async for chunk in response.aiter_raw():
                received += len(chunk)
                if received >= wanted:
                    break
            return received, response.headers

    with reachable(flavour, lambda request: endless(length=length)) as (new_client, url):
        received, headers = asyncio.run(run(new_client, url))
    # the server's answer was still being written when it stopped: cancelled, nothing held in memory
    assert received >= wanted
    if length is None:
        assert headers["transfer-encoding"] == "chunked"
    else:
        assert headers["content-length"] == str(length)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_echo_headers_reflects_the_authorization_header(flavour: Flavour) -> None:
    async def run(new_client: Callable[[], httpx.AsyncClient], url: str) -> httpx.Response:
        async with new_client() as http:
            return await http.get(url, headers={"Authorization": "Bearer s3cr3t"})

    with reachable(flavour, echo_headers) as (new_client, url):
        response = asyncio.run(run(new_client, url))
    assert response.status_code == 403
    error = response.json()["errors"][0]
    assert error["code"] == "DENIED"
    assert "authorization: Bearer s3cr3t" in error["message"]


def test_freeze_reads_nothing_until_thawed() -> None:
    with LoopbackServer(lambda request: Response(body=b"late")) as server:
        server.freeze()

        async def run() -> bytes:
            async with client() as http:
                with pytest.raises(TimeoutError):
                    async with asyncio.timeout(0.5):
                        await http.get(f"{server.url}/a")
                assert server.requests == []  # accepted, never read: like a stopped process
                server.thaw()
                return (await http.get(f"{server.url}/b")).content

        assert asyncio.run(run()) == b"late"


def test_a_handler_that_raises_answers_500_and_fails_the_test_at_stop() -> None:
    def broken(request: Request) -> Reply:
        raise ValueError("bug in the fake")

    server = LoopbackServer(broken).start()
    assert httpx.get(f"{server.url}/x").status_code == 500
    with pytest.raises(HandlerError) as caught:
        server.stop()
    assert isinstance(caught.value.__cause__, ValueError)
