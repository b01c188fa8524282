"""A fault-injecting HTTP/1.1 reverse proxy for tests, in front of a real registry.

:class:`FaultProxy` listens on ``127.0.0.1:<free port>`` and runs its own asyncio loop in a background
thread. Each client connection gets its own upstream connection; request and response bodies are streamed
both ways in chunks (Content-Length, chunked, or until close), so multi-GiB blobs and chunked uploads pass
through in constant memory. The client's ``Host`` header is forwarded unchanged, so the registry builds
its absolute upload ``Location`` URLs with the proxy's address and clients keep talking to the proxy.

It counts every request (method, path, kind, status, bytes each way, injected fault) and, with
``rate > 0``, injects faults chosen by a seeded RNG (reproducible runs):

- ``500`` / ``503``: an error response; the request is not forwarded (its body is read and dropped).
- ``429``: the same, with ``Retry-After: <retry_after>``.
- ``reset``: the connection is closed after the request head, before any response.
- ``cut``: the request IS forwarded and processed, then the connection is closed halfway through the
  response body (or right after the response head when there is no body): the client cannot know
  whether its request took effect.
- ``cut_request`` (opt-in, not in the default mix): half of the request body is forwarded to the
  registry, then both connections are closed: an upload dropped mid-body, leaving the registry with a
  partial upload session. A request without a body is reset instead.

``fail_next(kind, count)`` scripts the next faults exactly; ``down()`` makes the proxy refuse every
connection (closing open ones) until ``up()``. With ``rate=0`` it is a plain request counter, e.g. for
"a same-registry copy uploads zero blob bytes".

Test-only code: never used by the product.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Literal

from testkit.localregistry import RequestKind, classify_path

FaultKind = Literal["500", "503", "429", "reset", "cut", "cut_request"]
ALL_FAULTS: tuple[FaultKind, ...] = ("500", "503", "429", "reset", "cut")  # the default random mix
_CHUNK = 256 * 1024
_REASONS = {500: "Internal Server Error", 503: "Service Unavailable", 429: "Too Many Requests"}


@dataclass(frozen=True)
class ProxiedRequest:
    """One request seen by the proxy. ``status`` is None when no response reached the client."""

    method: str
    path: str
    kind: RequestKind
    repository: str | None
    status: int | None
    fault: FaultKind | None
    request_bytes: int  # body bytes forwarded to the registry
    response_bytes: int  # body bytes sent back to the client

    @property
    def is_blob_write(self) -> bool:
        return self.kind == "upload" and self.method in ("POST", "PATCH", "PUT")


class _Head:
    """A parsed HTTP/1.1 message head (request or response)."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        lines = raw.decode("latin-1").split("\r\n")
        self.start_line = lines[0]
        self.headers: list[tuple[str, str]] = []
        for line in lines[1:]:
            if not line:
                continue
            name, _, value = line.partition(":")
            self.headers.append((name.strip().lower(), value.strip()))

    def get(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None

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


class _DropConnectionError(Exception):
    """The connection is to be closed now (a fault, or a peer went away)."""


async def _read_head(reader: asyncio.StreamReader) -> _Head | None:
    """The next message head, or None at a clean end of stream."""
    try:
        first = await reader.read(1)
        if not first:
            return None
        if first == b"\x16":
            # A TLS ClientHello: the client (skopeo) tries HTTPS first. Close at once, as a plain-HTTP
            # Go server answers at once, so it falls back to HTTP without waiting for a handshake timeout.
            raise _DropConnectionError
        raw = first + await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError) as exc:
        raise _DropConnectionError from exc
    return _Head(raw)


async def _pump_body(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter | None,
    head: _Head,
    *,
    until_eof: bool = False,
    stop_after: int | None = None,
) -> int:
    """Copy one message body from reader to writer (None = discard); returns payload bytes copied.

    ``stop_after``: raise :class:`_DropConnectionError` once that many bytes were written (a cut mid-body).
    """
    copied = 0

    async def emit(data: bytes, payload: int) -> None:
        nonlocal copied
        if stop_after is not None and payload:
            data = data[: stop_after - copied]
            payload = len(data)
        if writer is not None:
            writer.write(data)
            await writer.drain()
        copied += payload
        if stop_after is not None and copied >= stop_after:
            raise _DropConnectionError

    try:
        if head.chunked:
            while True:
                size_line = await reader.readuntil(b"\r\n")
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    trailer = size_line
                    while True:
                        line = await reader.readuntil(b"\r\n")
                        trailer += line
                        if line == b"\r\n":
                            break
                    await emit(trailer, 0)
                    return copied
                await emit(size_line, 0)
                left = size
                while left:
                    data = await reader.read(min(left, _CHUNK))
                    if not data:
                        raise _DropConnectionError
                    left -= len(data)
                    await emit(data, len(data))
                await emit(await reader.readexactly(2), 0)
        length = head.content_length
        if length is not None:
            left = length
            while left:
                data = await reader.read(min(left, _CHUNK))
                if not data:
                    raise _DropConnectionError
                left -= len(data)
                await emit(data, len(data))
            return copied
        if until_eof:
            while data := await reader.read(_CHUNK):
                await emit(data, len(data))
        return copied
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError) as exc:
        raise _DropConnectionError from exc


class FaultProxy:
    """A reverse proxy to ``upstream`` (``host:port`` or ``http://host:port``) that can inject faults."""

    def __init__(
        self,
        upstream: str,
        *,
        rate: float = 0.0,
        seed: int = 0,
        faults: Sequence[FaultKind] = ALL_FAULTS,
        retry_after: str = "1",
        eligible: Callable[[str, str], bool] | None = None,
    ) -> None:
        target = upstream.split("://", 1)[-1].rstrip("/")
        host, _, port = target.rpartition(":")
        self.upstream_host, self.upstream_port = host, int(port)
        self.rate = rate
        self.faults: tuple[FaultKind, ...] = tuple(faults)
        self.retry_after = retry_after
        self.eligible = eligible  # (method, path) -> may this request get a random fault?
        self._rng = random.Random(seed)
        self._scripted: deque[FaultKind] = deque()
        self._lock = threading.Lock()
        self._settled = threading.Condition(self._lock)
        self._in_flight = 0
        self._records: list[ProxiedRequest] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.StreamWriter] = set()
        self._port: int | None = None
        self._down = False

    def __repr__(self) -> str:
        return f"FaultProxy({self.url if self._port else 'stopped'} -> {self.upstream_host}:{self.upstream_port})"

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fault-proxy", daemon=True)
        self._thread.start()
        self._call(self._listen(0))
        return self

    def stop(self) -> None:
        if self._loop is None:
            return
        self._call(self._close_all())
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._loop.close()
        self._loop = None
        self._thread = None

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _call(self, coroutine: object) -> None:
        assert self._loop is not None
        asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=10)  # type: ignore[arg-type]

    async def _listen(self, port: int) -> None:
        self._server = await asyncio.start_server(
            self._serve_connection, "127.0.0.1", port, limit=1 << 16, reuse_address=True
        )
        self._port = self._server.sockets[0].getsockname()[1]

    async def _close_all(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._connections):
            writer.close()
        self._connections.clear()

    def down(self) -> None:
        """Stop listening and close every open connection: clients get "connection refused" until :meth:`up`."""
        self._down = True
        self._call(self._close_all())

    def up(self) -> None:
        """Listen again on the same port."""
        self._down = False
        self._call(self._listen(self.port))

    # -- addresses --------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        assert self._port is not None, "proxy not started"
        return self._port

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    # -- faults and counts ------------------------------------------------------------------------

    def fail_next(self, kind: FaultKind, count: int = 1) -> None:
        """The next ``count`` requests get fault ``kind`` (before any random fault)."""
        with self._lock:
            self._scripted.extend([kind] * count)

    def _choose_fault(self, method: str, path: str) -> FaultKind | None:
        with self._lock:
            if self._scripted:
                return self._scripted.popleft()
            if self.rate <= 0 or (self.eligible is not None and not self.eligible(method, path)):
                return None
            if self._rng.random() >= self.rate:
                return None
            return self._rng.choice(self.faults)

    @property
    def requests(self) -> list[ProxiedRequest]:
        """Every request proxied so far. Waits (up to 2 s) for requests still being answered: a client
        may hold the last byte of a response before the proxy thread has recorded it."""
        with self._settled:
            self._settled.wait_for(lambda: self._in_flight == 0, timeout=2.0)
            return list(self._records)

    def reset_counts(self) -> None:
        with self._lock:
            self._records.clear()

    def counts(self) -> Mapping[tuple[str, str], int]:
        """Requests per (method, kind), e.g. ``counts()[("PUT", "manifest")]``."""
        return Counter((r.method, r.kind) for r in self.requests)

    def fault_counts(self) -> Mapping[str, int]:
        return Counter(r.fault for r in self.requests if r.fault is not None)

    @property
    def bytes_uploaded(self) -> int:
        """Request body bytes forwarded to the registry."""
        return sum(r.request_bytes for r in self.requests)

    @property
    def blob_bytes_uploaded(self) -> int:
        """Request body bytes of blob uploads (POST/PATCH/PUT under ``/blobs/uploads/``)."""
        return sum(r.request_bytes for r in self.requests if r.is_blob_write)

    def _record(self, record: ProxiedRequest) -> None:
        with self._lock:
            self._records.append(record)

    # -- the proxy --------------------------------------------------------------------------------

    async def _serve_connection(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        if self._down:
            client_writer.close()
            return
        self._connections.add(client_writer)
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        try:
            while True:
                head = await _read_head(client_reader)
                if head is None:
                    return
                method, _, rest = head.start_line.partition(" ")
                path = rest.rsplit(" ", 1)[0]
                fault = self._choose_fault(method, path)
                with self._lock:
                    self._in_flight += 1
                try:
                    keep_alive, upstream = await self._exchange(
                        head,
                        method=method,
                        path=path,
                        fault=fault,
                        client_reader=client_reader,
                        client_writer=client_writer,
                        upstream=upstream,
                    )
                finally:
                    with self._settled:
                        self._in_flight -= 1
                        self._settled.notify_all()
                if not keep_alive:
                    return
        except _DropConnectionError:
            return
        except Exception:
            return
        finally:
            self._connections.discard(client_writer)
            if upstream is not None:
                upstream[1].close()
            with contextlib.suppress(Exception):
                client_writer.close()

    async def _exchange(
        self,
        head: _Head,
        *,
        method: str,
        path: str,
        fault: FaultKind | None,
        client_reader: asyncio.StreamReader,
        client_writer: asyncio.StreamWriter,
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None,
    ) -> tuple[bool, tuple[asyncio.StreamReader, asyncio.StreamWriter] | None]:
        kind, repository = classify_path(path)

        def record(status: int | None, request_bytes: int, response_bytes: int) -> None:
            self._record(ProxiedRequest(method, path, kind, repository, status, fault, request_bytes, response_bytes))

        has_request_body = head.chunked or (head.content_length or 0) > 0
        if fault == "reset" or (fault == "cut_request" and not has_request_body):
            record(None, 0, 0)
            raise _DropConnectionError
        if fault in ("500", "503", "429"):
            status = int(fault)
            await _pump_body(client_reader, None, head)
            body = b'{"errors":[{"code":"UNAVAILABLE","message":"fault injected by test proxy"}]}'
            extra = f"Retry-After: {self.retry_after}\r\n" if status == 429 else ""
            client_writer.write(
                (
                    f"HTTP/1.1 {status} {_REASONS[status]}\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(body)}\r\n{extra}\r\n"
                ).encode()
                + body
            )
            await client_writer.drain()
            record(status, 0, len(body))
            return not head.wants_close, upstream

        if upstream is None:
            try:
                upstream = await asyncio.open_connection(self.upstream_host, self.upstream_port, limit=1 << 16)
            except OSError as exc:
                record(None, 0, 0)
                raise _DropConnectionError from exc
        up_reader, up_writer = upstream
        up_writer.write(head.raw)
        if fault == "cut_request":
            half = max(1, (head.content_length or 2 * _CHUNK) // 2)
            try:
                await _pump_body(client_reader, up_writer, head, stop_after=half)
            finally:
                record(None, half, 0)
            raise _DropConnectionError  # the upstream connection is closed in _serve_connection
        request_bytes = await _pump_body(client_reader, up_writer, head)
        await up_writer.drain()

        while True:
            response = await _read_head(up_reader)
            if response is None:
                record(None, request_bytes, 0)
                raise _DropConnectionError
            status = int(response.start_line.split(" ", 2)[1])
            if 100 <= status < 200:
                client_writer.write(response.raw)
                await client_writer.drain()
                continue
            break
        has_body = method != "HEAD" and status not in (204, 304)
        length = response.content_length
        if fault == "cut":
            if not has_body or (length is not None and length < 2):
                record(None, request_bytes, 0)
                raise _DropConnectionError
            client_writer.write(response.raw)
            half = max(1, (length or 2) // 2)
            try:
                await _pump_body(up_reader, client_writer, response, until_eof=True, stop_after=half)
            finally:
                record(None, request_bytes, half)
            raise _DropConnectionError
        client_writer.write(response.raw)
        response_bytes = 0
        if has_body:
            until_eof = not response.chunked and length is None
            response_bytes = await _pump_body(up_reader, client_writer, response, until_eof=until_eof)
            if until_eof:
                record(status, request_bytes, response_bytes)
                raise _DropConnectionError
        await client_writer.drain()
        record(status, request_bytes, response_bytes)
        if response.wants_close:
            up_writer.close()
            upstream = None
        return not head.wants_close, upstream
