"""A lean HTTP/1.1 keep-alive transport for httpx, on asyncio streams.

Why: profiling showed httpx's default transport (httpcore + h11 + anyio) spending about 2 ms of CPU per
registry request on a loaded 2-core machine, most of it in connection-pool bookkeeping (every queued
request probes every pooled socket) and per-write layers. A copy of 200 small images is ~2,000
requests and a no-op check ~400, so that overhead, not the network, bounded reconciler. This transport
moves bytes and nothing else; the rules (auth, redirects, retries, errors) stay in ``RegistryClient``,
which keeps using ``httpx.AsyncClient`` with this transport plugged in.

What it does: one idle-connection pool per origin (scheme, host, port); requests written as one buffer
(head + small body) or streamed (``Content-Length`` or chunked framing); responses parsed by hand
(``Content-Length``, chunked, or read-until-close); a connection goes back to the pool only after its
response was read to the end and neither side asked to close. A request on a pooled connection that the
server had silently closed is retried once on a fresh connection when its body can be replayed and the
request does not say otherwise (``REPLAYABLE``: an upload's PUT or PATCH, which a server may already have
acted on, is left to the caller's retry, which starts a new upload session). TLS via
the ``ssl.SSLContext`` the client gives (built lazily: plain-HTTP registries never pay for it).

What it never does: follow redirects, add or log headers, decode content, or talk through a proxy (the
client uses httpx's default transport when proxy variables are set).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx

READ_BYTES = 256 * 1024
"""Upper bound of one read from the socket (the stream buffer limit is twice this)."""
SMALL_BODY_BYTES = 64 * 1024
"""Bodies up to this size are written together with the request head, in one write."""
MAX_HEAD_BYTES = 64 * 1024
MAX_IDLE_PER_ORIGIN = 32
REPLAYABLE = "reconciler.replayable"
"""Request extension: False when the request must never be sent a second time on a fresh connection."""

_NO_BODY_STATUSES = frozenset({204, 304})
_FRAMING_HEADERS = frozenset({b"content-length", b"transfer-encoding", b"connection"})

Origin = tuple[str, str, int]


class _Connection:
    __slots__ = ("origin", "reader", "writer")

    def __init__(self, origin: Origin, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.origin = origin
        self.reader = reader
        self.writer = writer

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()

    @property
    def usable(self) -> bool:
        return not self.reader.at_eof() and not self.writer.is_closing()


def _timeout(request: httpx.Request, key: str) -> float | None:
    timeouts: dict[str, Any] = request.extensions.get("timeout", {})
    value = timeouts.get(key)
    return float(value) if value is not None else None


class _ResponseBody(httpx.AsyncByteStream):
    """The body of one response, read from its connection; hands the connection back when done."""

    def __init__(
        self,
        connection: _Connection,
        *,
        length: int | None,
        chunked: bool,
        keep_alive: bool,
        read_timeout: float | None,
        release: Callable[[_Connection, bool], None],
    ) -> None:
        self._connection = connection
        self._length = length
        self._chunked = chunked
        self._keep_alive = keep_alive
        self._read_timeout = read_timeout
        self._release = release
        self._done = False
        self._released = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        reader = self._connection.reader
        try:
            if self._chunked:
                async for chunk in self._chunks(reader):
                    yield chunk
            elif self._length is not None:
                remaining = self._length
                while remaining:
                    async with asyncio.timeout(self._read_timeout):
                        data = await reader.read(min(remaining, READ_BYTES))
                    if not data:
                        raise httpx.RemoteProtocolError(f"connection closed with {remaining} bytes of the body missing")
                    remaining -= len(data)
                    yield data
            else:
                while True:
                    async with asyncio.timeout(self._read_timeout):
                        data = await reader.read(READ_BYTES)
                    if not data:
                        break
                    yield data
                self._keep_alive = False
            self._done = True
        except (OSError, asyncio.IncompleteReadError) as exc:
            raise httpx.ReadError(f"{type(exc).__name__}: {exc}") from exc
        except asyncio.LimitOverrunError as exc:
            raise httpx.RemoteProtocolError("chunked body: a chunk-size or trailer line without end") from exc
        except TimeoutError as exc:
            raise httpx.ReadTimeout("timed out reading the response body") from exc
        finally:
            if self._done:
                self._finish()

    async def _chunks(self, reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
        while True:
            async with asyncio.timeout(self._read_timeout):
                line = await reader.readuntil(b"\r\n")
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError as exc:
                raise httpx.RemoteProtocolError("bad chunk size line") from exc
            if size < 0:  # read(-n) would read until the server closes, however much that is
                raise httpx.RemoteProtocolError("bad chunk size line")
            if size == 0:
                while True:  # trailers, then the blank line
                    async with asyncio.timeout(self._read_timeout):
                        trailer = await reader.readuntil(b"\r\n")
                    if trailer == b"\r\n":
                        return
            remaining = size
            while remaining:
                async with asyncio.timeout(self._read_timeout):
                    data = await reader.read(min(remaining, READ_BYTES))
                if not data:
                    raise httpx.RemoteProtocolError("connection closed inside a chunk")
                remaining -= len(data)
                yield data
            async with asyncio.timeout(self._read_timeout):
                await reader.readexactly(2)

    def complete(self) -> None:
        """Mark an empty body as read to the end and release its connection."""
        self._done = True
        self._finish()

    def _finish(self) -> None:
        if not self._released:
            self._released = True
            self._release(self._connection, self._done and self._keep_alive)

    async def aclose(self) -> None:
        # Closed before the end: the rest of the body is still on the wire, so the connection is not reusable.
        self._finish()


class FastTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 over asyncio streams with a per-origin keep-alive pool (see the module docstring).

    ``ssl_context`` is called at most once, when the first ``https`` connection is opened."""

    def __init__(self, *, ssl_context: Callable[[], ssl.SSLContext]) -> None:
        self._ssl_factory = ssl_context
        self._ssl: ssl.SSLContext | None = None
        self._idle: dict[Origin, deque[_Connection]] = {}
        self._closed = False

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = self._ssl_factory()
        return self._ssl

    async def _connect(self, origin: Origin, request: httpx.Request) -> _Connection:
        scheme, host, port = origin
        try:
            async with asyncio.timeout(_timeout(request, "connect")):
                reader, writer = await asyncio.open_connection(
                    host.strip("[]"),
                    port,
                    ssl=self._ssl_context() if scheme == "https" else None,
                    server_hostname=host.strip("[]") if scheme == "https" else None,
                    limit=2 * READ_BYTES,
                )
        except TimeoutError as exc:
            raise httpx.ConnectTimeout(f"connecting to {host}:{port} timed out") from exc
        except ssl.SSLError as exc:
            raise httpx.ConnectError(f"TLS handshake with {host}:{port} failed: {exc}") from exc
        except OSError as exc:
            raise httpx.ConnectError(f"cannot connect to {host}:{port}: {exc.strerror or exc}") from exc
        return _Connection(origin, reader, writer)

    def _pooled(self, origin: Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        while idle:
            connection = idle.pop()
            if connection.usable:
                return connection
            connection.close()
        return None

    def _release(self, connection: _Connection, reusable: bool) -> None:
        if reusable and not self._closed and connection.usable:
            idle = self._idle.setdefault(connection.origin, deque())
            if len(idle) < MAX_IDLE_PER_ORIGIN:
                idle.append(connection)
                return
        connection.close()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._closed:
            raise httpx.ConnectError("transport is closed")
        url = request.url
        scheme = url.scheme
        port = url.port or (443 if scheme == "https" else 80)
        origin: Origin = (scheme, url.host, port)
        # A request that changes state only once (the PUT that completes an upload session) must not be sent
        # twice: the server may have done it before the connection broke, and then answers the replay 404.
        replayable = isinstance(request.stream, httpx.ByteStream) and request.extensions.get(REPLAYABLE, True)
        connection = self._pooled(origin)
        if connection is not None:
            try:
                return await self._exchange(connection, request)
            except (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError) as exc:
                # A pooled connection the server had closed: safe to retry once on a fresh one when
                # nothing of the response arrived and the body can be sent again.
                if not replayable or not getattr(exc, "before_response", False):
                    raise
        connection = await self._connect(origin, request)
        return await self._exchange(connection, request)

    async def _exchange(self, connection: _Connection, request: httpx.Request) -> httpx.Response:
        try:
            await self._write_request(connection, request)
        except (OSError, RuntimeError) as exc:
            connection.close()
            error = httpx.WriteError(f"{type(exc).__name__}: {exc}")
            error.before_response = True  # type: ignore[attr-defined]
            raise error from exc
        except BaseException:
            connection.close()
            raise
        read_timeout = _timeout(request, "read")
        try:
            status, reason, headers, raw_headers = await self._read_head(connection, read_timeout)
        except BaseException:
            connection.close()
            raise
        method = request.method
        length_text = headers.get(b"content-length")
        chunked = b"chunked" in headers.get(b"transfer-encoding", b"").lower()
        keep_alive = b"close" not in headers.get(b"connection", b"").lower()
        length: int | None
        if method == "HEAD" or status in _NO_BODY_STATUSES or 100 <= status < 200:
            length, chunked = 0, False
        elif chunked:
            length = None
        elif length_text is not None:
            try:
                length = int(length_text)
            except ValueError as exc:
                connection.close()
                raise httpx.RemoteProtocolError(f"bad Content-Length {length_text!r}") from exc
            if length < 0:  # read(-n) would read until the server closes, however much that is
                connection.close()
                raise httpx.RemoteProtocolError(f"bad Content-Length {length_text!r}")
        else:
            length = None  # read until the server closes
        body = _ResponseBody(
            connection,
            length=length,
            chunked=chunked,
            keep_alive=keep_alive,
            read_timeout=read_timeout,
            release=self._release,
        )
        if length == 0:
            body.complete()  # nothing to read: the connection goes back to the pool right away
        return httpx.Response(
            status, headers=raw_headers, stream=body, extensions={"http_version": b"HTTP/1.1", "reason_phrase": reason}
        )

    async def _write_request(self, connection: _Connection, request: httpx.Request) -> None:
        url = request.url
        target = url.raw_path or b"/"
        lines = [request.method.encode("ascii") + b" " + target + b" HTTP/1.1"]
        has_host = False
        for name, value in request.headers.raw:
            if name.lower() == b"host":
                has_host = True
            lines.append(name + b": " + value)
        if not has_host:
            lines.insert(1, b"Host: " + url.netloc)
        head = b"\r\n".join(lines) + b"\r\n\r\n"
        writer = connection.writer
        chunked = request.headers.get("transfer-encoding", "").lower() == "chunked"
        timeout = _timeout(request, "write")
        stream = request.stream
        if isinstance(stream, httpx.ByteStream):
            body = request.content
            if chunked and body:
                body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
            elif chunked:
                body = b"0\r\n\r\n"
            if len(body) <= SMALL_BODY_BYTES:
                writer.write(head + body)
            else:
                writer.write(head)
                writer.write(body)
            async with asyncio.timeout(timeout):
                await writer.drain()
            return
        writer.write(head)
        assert isinstance(stream, httpx.AsyncByteStream)
        async for chunk in stream:
            if not chunk:
                continue
            if chunked:
                writer.write(b"%x\r\n" % len(chunk))
                writer.write(chunk)
                writer.write(b"\r\n")
            else:
                writer.write(chunk)
            async with asyncio.timeout(timeout):
                await writer.drain()
        if chunked:
            writer.write(b"0\r\n\r\n")
        async with asyncio.timeout(timeout):
            await writer.drain()

    async def _read_head(
        self, connection: _Connection, read_timeout: float | None
    ) -> tuple[int, bytes, dict[bytes, bytes], list[tuple[bytes, bytes]]]:
        """Status, reason, the framing headers this transport needs (lower-case names), all raw headers."""
        reader = connection.reader
        while True:
            try:
                async with asyncio.timeout(read_timeout):
                    head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError as exc:
                error = httpx.RemoteProtocolError("server closed the connection without a response")
                error.before_response = not exc.partial  # type: ignore[attr-defined]
                raise error from exc
            except asyncio.LimitOverrunError as exc:
                raise httpx.RemoteProtocolError("response head too large") from exc
            except TimeoutError as exc:
                raise httpx.ReadTimeout("timed out waiting for the response") from exc
            except OSError as exc:
                read_error = httpx.ReadError(f"{type(exc).__name__}: {exc}")
                read_error.before_response = True  # type: ignore[attr-defined]
                raise read_error from exc
            if len(head) > MAX_HEAD_BYTES:
                raise httpx.RemoteProtocolError("response head too large")
            status_line, _, rest = head.partition(b"\r\n")
            parts = status_line.split(b" ", 2)
            if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
                raise httpx.RemoteProtocolError(f"not an HTTP/1.x response: {status_line[:40]!r}")
            try:
                status = int(parts[1])
            except ValueError as exc:
                raise httpx.RemoteProtocolError(f"bad status line {status_line[:40]!r}") from exc
            reason = parts[2] if len(parts) > 2 else b""
            raw: list[tuple[bytes, bytes]] = []
            for line in rest.split(b"\r\n"):
                if not line:
                    continue
                name, sep, value = line.partition(b":")
                if not sep:
                    raise httpx.RemoteProtocolError("malformed header line")
                raw.append((name.strip(), value.strip()))
            if 100 <= status < 200 and status != 101:
                continue  # interim response (100 Continue): the real one follows
            framing = {name.lower(): value for name, value in raw if name.lower() in _FRAMING_HEADERS}
            return status, reason, framing, raw

    async def aclose(self) -> None:
        self._closed = True
        for idle in self._idle.values():
            while idle:
                idle.pop().close()
        self._idle.clear()
