"""HTTP/1.1 plumbing for the test servers: message heads, bodies, and a listener on 127.0.0.1.

Shared by ``support.httpserver.LoopbackServer`` (which parses requests and calls a handler) and
``support.faultproxy.FaultProxy`` (which streams requests and responses through to a real registry).
:class:`Listener` runs its own asyncio loop in a daemon thread and never binds anything but 127.0.0.1
(port 0: the kernel picks one, read back with ``getsockname``, so there is no probe-then-bind race).

Test-only code, never imported by the product.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
LOOPBACK = "127.0.0.1"
PIECE = 256 * 1024
"""Bytes per read or write when a body is streamed."""
HEAD_LIMIT = 64 * 1024

# -- message heads and bodies -------------------------------------------------------------------------


class DropConnectionError(Exception):
    """Close this connection now: the peer went away, the framing is broken, or a fault says so."""


class Head:
    """A parsed HTTP/1.1 message head (request or response); ``headers`` keep the names as sent."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        lines = raw.decode("latin-1").split("\r\n")
        self.start_line = lines[0]
        pairs = (line.partition(":") for line in lines[1:] if line)
        self.headers = [(name.strip(), value.strip()) for name, _, value in pairs]

    def get(self, name: str) -> str | None:
        return next((value for key, value in self.headers if key.lower() == name), None)

    @property
    def chunked(self) -> bool:
        return "chunked" in (self.get("transfer-encoding") or "").lower()

    @property
    def content_length(self) -> int | None:
        value = self.get("content-length")
        return int(value) if value is not None else None

    @property
    def wants_close(self) -> bool:
        return (self.get("connection") or "").lower() == "close"


async def read_head(reader: asyncio.StreamReader) -> Head | None:
    """The next message head, or None at a clean end of stream. A TLS ClientHello on a plain-HTTP port
    (skopeo tries HTTPS first) drops the connection at once, as a Go server answers at once, so the client
    falls back to HTTP without waiting for a handshake timeout."""
    try:
        first = await reader.read(1)
        if not first:
            return None
        if first == b"\x16":
            raise DropConnectionError
        return Head(first + await reader.readuntil(b"\r\n\r\n"))
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError) as exc:
        raise DropConnectionError from exc


Sink = Callable[[bytes], Awaitable[None]]


def to_writer(writer: asyncio.StreamWriter) -> Sink:
    """A sink that writes to ``writer`` with backpressure."""

    async def sink(data: bytes) -> None:
        writer.write(data)
        await writer.drain()

    return sink


async def pump_body(
    reader: asyncio.StreamReader,
    head: Head,
    sink: Sink | None,
    *,
    framing: bool = True,
    until_eof: bool = False,
    stop_after: int | None = None,
) -> int:
    """Copy one message body from ``reader`` into ``sink`` (None: discard) in pieces; returns payload bytes.

    ``framing``: pass chunk-size lines and trailers on (a proxy) or only the payload (a server).
    ``until_eof``: a body without length or chunking lasts until the peer closes (responses only).
    ``stop_after``: raise :class:`DropConnectionError` once that many payload bytes went through (a cut)."""
    copied = 0

    async def emit(data: bytes, payload: int) -> None:
        nonlocal copied
        if stop_after is not None and payload:
            data = data[: stop_after - copied]
            payload = len(data)
        if sink is not None and (payload or framing):
            await sink(data)
        copied += payload
        if stop_after is not None and copied >= stop_after:
            raise DropConnectionError

    async def exactly(left: int) -> None:
        while left:
            data = await reader.read(min(left, PIECE))
            if not data:
                raise DropConnectionError
            left -= len(data)
            await emit(data, len(data))

    try:
        if head.chunked:
            while True:
                size_line = await reader.readuntil(b"\r\n")
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    trailer = size_line
                    while (line := await reader.readuntil(b"\r\n")) != b"\r\n":
                        trailer += line
                    await emit(trailer + line, 0)
                    return copied
                await emit(size_line, 0)
                await exactly(size)
                await emit(await reader.readexactly(2), 0)
        if head.content_length is not None:
            await exactly(head.content_length)
        elif until_eof:
            while data := await reader.read(PIECE):
                await emit(data, len(data))
        return copied
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError) as exc:
        raise DropConnectionError from exc


async def read_body(reader: asyncio.StreamReader, head: Head) -> bytes:
    """A request's whole body (its payload: chunk framing removed)."""
    body = bytearray()

    async def keep(data: bytes) -> None:
        body.extend(data)

    await pump_body(reader, head, keep, framing=False)
    return bytes(body)


# -- the listener -------------------------------------------------------------------------------------

ConnectionHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Listener:
    """Accepts connections on ``127.0.0.1:<kernel-chosen port>`` in its own asyncio loop (a daemon thread)
    and runs ``on_connection`` for each. ``down()`` closes the port and every open connection; ``up()``
    listens again on the same port. ``stop()`` cancels whatever is still running (a hung answer too).

    ``address`` is for one case only: a test that runs in its own network namespace (``unshare -n``) and
    needs a NON-loopback address there (a token realm on ``10.200.0.1``); everything else stays on
    127.0.0.1, and no test ever listens on an address of the machine's real network."""

    def __init__(
        self,
        on_connection: ConnectionHandler,
        *,
        ssl_context: ssl.SSLContext | None = None,
        name: str = "loopback",
        address: str = LOOPBACK,
    ) -> None:
        self._address = address
        self._on_connection = on_connection
        self._ssl = ssl_context
        self.name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._connections: dict[asyncio.Task[Any], asyncio.StreamWriter] = {}
        self._port: int | None = None
        self._down = False

    def start(self) -> None:
        if self._loop is not None:
            return
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, args=(self._loop,), name=self.name, daemon=True)
        self._thread.start()
        self.call(self._listen(0))

    @staticmethod
    def _run(loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    def stop(self) -> None:
        if self._loop is None:
            return
        self.call(self._close_all())
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._loop = self._thread = None

    def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` in the listener's loop and wait for its result."""
        assert self._loop is not None, f"{self.name} is not running"
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=30)

    def down(self) -> None:
        self._down = True
        self.call(self._close_all())

    def up(self) -> None:
        self._down = False
        self.call(self._listen(self.port))

    @property
    def port(self) -> int:
        assert self._port is not None, f"{self.name} was never started"
        return self._port

    @property
    def url(self) -> str:
        return f"{'https' if self._ssl else 'http'}://{self._address}:{self.port}"

    async def _listen(self, port: int) -> None:
        self._server = await asyncio.start_server(
            self._accept, self._address, port, ssl=self._ssl, limit=HEAD_LIMIT, reuse_address=True
        )
        self._port = self._server.sockets[0].getsockname()[1]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if self._down or task is None:
            writer.close()
            return
        self._connections[task] = writer
        try:
            await self._on_connection(reader, writer)
        except (DropConnectionError, OSError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # a peer gone, a fault, or our own shutdown
        finally:
            self._connections.pop(task, None)
            with contextlib.suppress(Exception):
                writer.close()

    async def _close_all(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        tasks = list(self._connections)
        for task, writer in list(self._connections.items()):
            with contextlib.suppress(Exception):
                writer.close()
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
