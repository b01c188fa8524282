"""FastTransport against a scripted loopback HTTP server: framing, keep-alive, stale connections.

The registry integration tests exercise the transport on every request; these cover what distribution
does not do on demand (chunked responses, closing a pooled connection, bodies ending early).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from reconciler.registry.transport import FastTransport

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[None]]


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    body = b""
    lower = head.lower()
    if b"content-length:" in lower:
        length = int(lower.split(b"content-length:", 1)[1].split(b"\r\n", 1)[0])
        body = await reader.readexactly(length)
    elif b"transfer-encoding: chunked" in lower:
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            body += await reader.readexactly(size)
            await reader.readexactly(2)
    return head, body


async def serve(handler: Handler) -> tuple[asyncio.Server, str, list[int]]:
    connections: list[int] = []

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(len(connections))
        try:
            await handler(reader, writer, len(connections))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}", connections


def client() -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=FastTransport(ssl_context=ssl.create_default_context))


def test_keep_alive_reuses_one_connection_and_reads_chunked_bodies() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        while True:
            head, _body = await read_request(reader)
            if head.startswith(b"GET /chunked"):
                writer.write(
                    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\n"
                )
            elif head.startswith(b"HEAD"):
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\nDocker-Content-Digest: sha256:x\r\n\r\n")
            else:
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()

    async def run() -> list[int]:
        server, url, connections = await serve(handler)
        async with server, client() as http:
            assert (await http.get(f"{url}/chunked")).content == b"hello world"
            head = await http.head(f"{url}/x")
            assert head.headers["content-length"] == "1234"
            assert head.content == b""
            assert (await http.get(f"{url}/plain")).text == "ok"
        return connections

    assert asyncio.run(run()) == [0]


def test_stale_pooled_connection_is_retried_on_a_fresh_one() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, number: int) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n" + str(number).encode())
        await writer.drain()
        # then close silently: the client's pooled connection is now stale

    async def run() -> list[bytes]:
        server, url, _ = await serve(handler)
        async with server, client() as http:
            first = await http.get(f"{url}/a")
            await asyncio.sleep(0.05)
            second = await http.put(f"{url}/b", content=b"replayable body")
            return [first.content, second.content]

    assert asyncio.run(run()) == [b"1", b"2"]


def test_streamed_request_bodies_with_and_without_length() -> None:
    received: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        while True:
            _head, body = await read_request(reader)
            received.append(body)
            writer.write(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")
            await writer.drain()

    async def chunks() -> AsyncIterator[bytes]:
        for part in (b"a" * 70_000, b"", b"b" * 10):
            yield part

    async def run() -> None:
        server, url, _ = await serve(handler)
        async with server, client() as http:
            assert (
                await http.put(f"{url}/x", content=chunks(), headers={"Content-Length": "70010"})
            ).status_code == 201
            assert (await http.put(f"{url}/y", content=chunks())).status_code == 201  # chunked framing

    asyncio.run(run())
    assert received == [b"a" * 70_000 + b"b" * 10] * 2


def test_body_cut_short_is_a_read_error_and_the_connection_is_dropped() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly-some")
        await writer.drain()

    async def run() -> None:
        server, url, _ = await serve(handler)
        async with server, client() as http:
            await http.get(f"{url}/x")

    with pytest.raises(httpx.RemoteProtocolError, match="91 bytes of the body missing"):
        asyncio.run(run())


def test_connection_refused_is_a_connect_error() -> None:
    async def run() -> None:
        async with client() as http:
            await http.get("http://127.0.0.1:9/")

    with pytest.raises(httpx.ConnectError):
        asyncio.run(run())
