"""A fault-injecting HTTP/1.1 reverse proxy for tests, in front of a real registry.

:class:`FaultProxy` listens on ``127.0.0.1:<free port>`` and runs its own asyncio loop in a background
thread. Each client connection gets its own upstream connection; request and response bodies are streamed
both ways in chunks (Content-Length, chunked, or until close), so multi-GiB blobs and chunked uploads pass
through in constant memory. The client's ``Host`` header is forwarded unchanged, so the registry builds
its absolute upload ``Location`` URLs with the proxy's address and clients keep talking to the proxy.

It counts every request (method, path, kind, status, bytes each way, injected fault) and, with
``rate > 0``, injects faults chosen by a seeded RNG (reproducible runs):

- ``500`` / ``503``: an error response (with a JSON body, except to a HEAD: its head only, as HTTP wants);
  the request is not forwarded (its body is read and dropped).
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

from support.http11 import PIECE, DropConnectionError, Head, Listener, pump_body, read_head, to_writer
from testkit.localregistry import RequestKind, classify_path

FaultKind = Literal["500", "503", "429", "reset", "cut", "cut_request"]
ALL_FAULTS: tuple[FaultKind, ...] = ("500", "503", "429", "reset", "cut")  # the default random mix
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
        self._listener = Listener(self._serve_connection, name="fault-proxy")
        self._started = False

    def __repr__(self) -> str:
        return f"FaultProxy({self.url if self._started else 'stopped'} -> {self.upstream_host}:{self.upstream_port})"

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> FaultProxy:
        self._listener.start()
        self._started = True
        return self

    def stop(self) -> None:
        self._listener.stop()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def down(self) -> None:
        """Stop listening and close every open connection: clients get "connection refused" until :meth:`up`."""
        self._listener.down()

    def up(self) -> None:
        """Listen again on the same port."""
        self._listener.up()

    # -- addresses --------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._listener.port

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
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        try:
            while True:
                head = await read_head(client_reader)
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
        except Exception:  # a fault, a peer gone, or a broken message: this connection ends here
            return
        finally:
            if upstream is not None:
                upstream[1].close()
            with contextlib.suppress(Exception):
                client_writer.close()

    async def _exchange(
        self,
        head: Head,
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
            raise DropConnectionError
        if fault in ("500", "503", "429"):
            status = int(fault)
            await pump_body(client_reader, head, None)
            body = b'{"errors":[{"code":"UNAVAILABLE","message":"fault injected by test proxy"}]}'
            extra = f"Retry-After: {self.retry_after}\r\n" if status == 429 else ""
            sent = b"" if method == "HEAD" else body  # a HEAD response's body would be read as the next response
            client_writer.write(
                (
                    f"HTTP/1.1 {status} {_REASONS[status]}\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(body)}\r\n{extra}\r\n"
                ).encode()
                + sent
            )
            await client_writer.drain()
            record(status, 0, len(sent))
            return not head.wants_close, upstream

        if upstream is None:
            try:
                upstream = await asyncio.open_connection(self.upstream_host, self.upstream_port, limit=1 << 16)
            except OSError as exc:
                record(None, 0, 0)
                raise DropConnectionError from exc
        up_reader, up_writer = upstream
        up_writer.write(head.raw)
        if fault == "cut_request":
            half = max(1, (head.content_length or 2 * PIECE) // 2)
            try:
                await pump_body(client_reader, head, to_writer(up_writer), stop_after=half)
            finally:
                record(None, half, 0)
            raise DropConnectionError  # the upstream connection is closed in _serve_connection
        request_bytes = await pump_body(client_reader, head, to_writer(up_writer))
        await up_writer.drain()

        while True:
            response = await read_head(up_reader)
            if response is None:
                record(None, request_bytes, 0)
                raise DropConnectionError
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
                raise DropConnectionError
            client_writer.write(response.raw)
            half = max(1, (length or 2) // 2)
            try:
                await pump_body(up_reader, response, to_writer(client_writer), until_eof=True, stop_after=half)
            finally:
                record(None, request_bytes, half)
            raise DropConnectionError
        client_writer.write(response.raw)
        response_bytes = 0
        if has_body:
            until_eof = not response.chunked and length is None
            response_bytes = await pump_body(up_reader, response, to_writer(client_writer), until_eof=until_eof)
            if until_eof:
                record(status, request_bytes, response_bytes)
                raise DropConnectionError
        await client_writer.drain()
        record(status, request_bytes, response_bytes)
        if response.wants_close:
            up_writer.close()
            upstream = None
        return not head.wants_close, upstream
