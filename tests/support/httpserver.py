"""The one loopback HTTP/1.1 server kit of the test suite: well-formed answers, and hostile ones on demand.

Every fake that speaks HTTP is built on it: the in-memory registry (``support.fakeregistry``, which keeps
an ``httpx.MockTransport`` face through :func:`mock_transport`), the token server (``support.tokenserver``),
the scripted servers of the TLS and transport tests, and the fault proxy (``support.faultproxy``, which
streams instead of calling a handler, so it shares only the plumbing below this module, ``support.http11``:
message heads, bodies, and the listener thread).

A :class:`LoopbackServer` listens on ``127.0.0.1`` (never another address; the kernel picks the port),
optionally over TLS with a certificate from ``support.certs``, and runs its own asyncio loop in a daemon
thread, so plain tests and tests that run their own event loop use it alike::

    with LoopbackServer(lambda request: Response.json({"tags": ["v1"]})) as server:
        assert httpx.get(f"{server.url}/v2/app/tags/list").json() == {"tags": ["v1"]}
        assert server.requests[0].path == "/v2/app/tags/list"

A handler (plain or ``async``) gets a :class:`Request` (method, target, headers, the whole body, read with
Content-Length or chunked framing) and returns a reply: ``Response(status, headers, body)`` with a
``bytes`` body (Content-Length added) or an async iterator (chunked unless ``length`` is given), or a
hostile reply:

====================================  =================================================================
never answer (a ``kill -STOP``-ed     ``HANG`` (request read, no answer); ``server.freeze()``: nothing is
process)                              read or answered on any connection until ``server.thaw()``
answer the head, then stall           ``Response(length=1000, end="stall")``
drip the body at N bytes per second   ``drip(data, N)``, i.e. ``Response(body=data, rate=N)``
fewer body bytes than Content-Length  ``Response(body=data[:10], length=len(data))``: then closed (FIN)
endless body, never held in memory    ``endless()`` (chunked) or ``endless(length=10**12)``
reset the connection (RST)            ``RESET``; mid-body: ``Response(body=part, length=n, end="reset")``
close without a response (FIN)        ``CLOSE``; after a whole answer, silently: ``end="close"``
reflect the request headers           ``echo_headers(request, status=403)`` (a distribution error)
exact bytes (odd or broken framing)   ``Raw(b"HTTP/1.1 200 OK\\r\\n...")``
refuse connections                    ``server.down()`` until ``server.up()`` (same port)
====================================  =================================================================

Every request is recorded before the handler runs (:attr:`LoopbackServer.requests`: method, path,
headers, body size, connection number). A handler that raises is a bug in the test: the client gets a
500, the traceback goes to stderr, and ``stop()`` raises :class:`HandlerError`.

Test-only code, never imported by the product.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import shutil
import socket
import struct
import sys
import tempfile
import threading
import traceback
from asyncio import sleep as _sleep  # bound at import: tests monkeypatch ``asyncio.sleep`` to skip backoffs
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, NoReturn
from urllib.parse import parse_qs, urlsplit

import httpx

from support.certs import ServerCertificate, server_certificate
from support.http11 import LOOPBACK, PIECE, DropConnectionError, Listener, read_body, read_head

# -- requests and replies -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """One request as the server parsed it. ``target`` is the raw request target (path and query, still
    percent-encoded); ``connection`` numbers the server's connections from 1 (0 through MockTransport)."""

    method: str
    target: str
    headers: httpx.Headers
    body: bytes = b""
    connection: int = 0

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.target).query, keep_blank_values=True)

    def param(self, name: str) -> str | None:
        """The (last) value of query parameter ``name``."""
        values = self.query.get(name)
        return values[-1] if values else None

    def header(self, name: str) -> str | None:
        value: str | None = self.headers.get(name)
        return value


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    target: str
    headers: httpx.Headers
    body_size: int
    connection: int


End = Literal["keep", "close", "reset", "stall"]
HeaderItems = Mapping[str, str] | Sequence[tuple[str, str]]


@dataclass(frozen=True)
class Response:
    """An answer. An iterator ``body`` can be sent once; for HEAD, 204 and 304 no body is sent (a ``bytes``
    body still sets Content-Length, so one Response serves GET and HEAD)."""

    status: int = 200
    headers: HeaderItems = ()
    body: bytes | AsyncIterable[bytes] = b""
    length: int | None = None
    """Content-Length to declare; None: ``len(body)``, or chunked framing for an iterator. Sending stops at
    ``length``; declare more than the body holds for a short body."""
    rate: float | None = None
    """Body bytes per second (sent in tenth-of-a-second slices); None: as fast as the client reads."""
    end: End = "keep"
    """After the body: keep the connection (closed anyway after a short body); close it silently (FIN, no
    ``Connection: close`` header, so a pooled connection goes stale); reset it (RST); or stall (send
    nothing more, hold the connection; a chunked body's final chunk is withheld)."""

    @classmethod
    def json(cls, document: Any, status: int = 200, headers: HeaderItems = ()) -> Response:
        return cls(status, [("Content-Type", "application/json"), *_items(headers)], json.dumps(document).encode())

    @classmethod
    def error(cls, status: int, code: str, message: str = "", headers: HeaderItems = ()) -> Response:
        """A distribution error document, ``{"errors": [{"code", "message"}]}``."""
        return cls.json({"errors": [{"code": code, "message": message}]}, status, headers)


@dataclass(frozen=True)
class Hang:
    """Read the request, never answer; the connection stays open until the client gives up."""


@dataclass(frozen=True)
class Close:
    """No response: close the connection (FIN), or with ``reset`` abort it (RST)."""

    reset: bool = False


@dataclass(frozen=True)
class Raw:
    """These exact bytes as the answer (chunk extensions, malformed heads), then ``end``. Socket only."""

    data: bytes
    end: End = "keep"


Reply = Response | Hang | Close | Raw
Handler = Callable[[Request], Reply | Awaitable[Reply]]
HANG, CLOSE, RESET = Hang(), Close(), Close(reset=True)


def drip(data: bytes, bytes_per_second: float, *, status: int = 200, headers: HeaderItems = ()) -> Response:
    return Response(status, headers, data, rate=bytes_per_second)


def endless(*, length: int | None = None, status: int = 200, headers: HeaderItems = ()) -> Response:
    """A body that never ends: chunked, or under a huge declared ``length``; zeros made as they are sent."""

    async def zeros() -> AsyncIterator[bytes]:
        block = bytes(PIECE)
        while True:
            yield block

    return Response(status, headers, zeros(), length=length)


def echo_headers(request: Request, *, status: int = 403, code: str = "DENIED") -> Response:
    """A registry that reflects the request's headers (``Authorization`` included) in its error text."""
    seen = "; ".join(f"{name}: {value}" for name, value in request.headers.multi_items())
    return Response.error(status, code, f"access denied for a request with headers {seen}")


def _items(headers: HeaderItems) -> list[tuple[str, str]]:
    return list(headers.items()) if isinstance(headers, Mapping) else list(headers)


def _framing(response: Response, method: str) -> tuple[list[tuple[str, str]], int | None, bool, bool]:
    """(headers with framing added, declared length, chunked, whether a body is sent)."""
    items = _items(response.headers)
    names = {name.lower(): value for name, value in items}
    has_body = method != "HEAD" and response.status not in (204, 304) and response.status >= 200
    if "content-length" in names:
        return items, int(names["content-length"]), False, has_body
    if "transfer-encoding" in names:
        return items, None, has_body, has_body
    if response.status in (204, 304):
        return items, 0, False, False
    declared = response.length
    if declared is None and isinstance(response.body, bytes):
        declared = len(response.body)
    if declared is not None:
        return [*items, ("Content-Length", str(declared))], declared, False, has_body
    return [*items, ("Transfer-Encoding", "chunked")], None, has_body, has_body


async def _pieces(response: Response, declared: int | None) -> AsyncIterator[bytes]:
    """The body in pieces, paced at ``response.rate``, never past ``declared`` bytes."""

    async def once(data: bytes) -> AsyncIterator[bytes]:
        yield data

    body = response.body
    step = max(1, int(response.rate / 10)) if response.rate else PIECE
    sent = 0
    async for given in once(body) if isinstance(body, bytes) else body:
        piece = given[: declared - sent] if declared is not None else given
        for start in range(0, len(piece), step):
            part = piece[start : start + step]
            yield part
            sent += len(part)
            if response.rate:
                await _sleep(len(part) / response.rate)
        if declared is not None and sent >= declared:
            return


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


async def _forever() -> NoReturn:
    """Wait until cancelled (the client gave up, or the server stops)."""
    await asyncio.get_running_loop().create_future()
    raise AssertionError("unreachable: nobody sets this future")


def _abort(writer: asyncio.StreamWriter) -> None:
    """Reset the connection: SO_LINGER 0 makes the close send RST instead of FIN."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _finish(writer: asyncio.StreamWriter, end: End) -> bool:
    """Apply ``end`` after an answer; True when the connection serves the next request."""
    if end == "reset":
        _abort(writer)
        return False
    await writer.drain()
    if end == "stall":
        await _forever()
    if end == "close":
        writer.close()
    return end == "keep"


async def _call(handler: Handler, request: Request) -> Reply:
    reply = handler(request)
    return await reply if inspect.isawaitable(reply) else reply


class HandlerError(Exception):
    """A handler raised while the server ran (the first exception is the cause)."""


# -- the server ---------------------------------------------------------------------------------------


class LoopbackServer:
    """Serves ``handler`` over HTTP/1.1 on loopback (see the module docstring). ``handler`` may be replaced
    while the server runs. ``tls``: True for a fresh certificate (``ca_bundle`` names it), or a
    :class:`ServerCertificate`. A context manager, or ``start()`` / ``stop()``."""

    def __init__(
        self,
        handler: Handler,
        *,
        tls: bool | ServerCertificate = False,
        name: str = "loopback",
        address: str = LOOPBACK,
    ) -> None:
        self.handler = handler
        self.address = address
        """127.0.0.1; another address only inside a private network namespace (see ``Listener``)."""
        self.name = name
        self._tls = tls
        self.certificate: ServerCertificate | None = tls if isinstance(tls, ServerCertificate) else None
        self._own_dir: Path | None = None
        self._listener: Listener | None = None
        self._lock = threading.Lock()
        self._records: list[RecordedRequest] = []
        self._connections = 0
        self._thawed = asyncio.Event()  # bound to the server's loop at start
        self.errors: list[BaseException] = []

    def __repr__(self) -> str:
        return f"LoopbackServer({self.name}, {self.url if self._listener else 'stopped'})"

    def start(self) -> LoopbackServer:
        if self._listener is not None:
            return self
        if self._tls is True and self.certificate is None:
            self._own_dir = Path(tempfile.mkdtemp(prefix="loopback-tls-"))
            self.certificate = server_certificate(self._own_dir)
        context = self.certificate.server_context() if self.certificate else None
        self._thawed = asyncio.Event()
        self._listener = Listener(self._serve, ssl_context=context, name=self.name, address=self.address)
        self._listener.start()
        self._listener.call(self._set_thawed(True))
        return self

    def stop(self) -> None:
        """Stop serving (open connections are closed); raises :class:`HandlerError` if the handler raised."""
        if self._listener is None:
            return
        self._listener.stop()
        self._listener = None
        if self._own_dir is not None:
            shutil.rmtree(self._own_dir, ignore_errors=True)
            self._own_dir, self.certificate = None, None
        if self.errors:
            raise HandlerError(f"{self.name}: the handler raised {len(self.errors)} time(s)") from self.errors[0]

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            self.stop()
        except HandlerError:
            if exc_type is None:
                raise  # else the test's own failure goes first; the traceback is on stderr

    @property
    def port(self) -> int:
        assert self._listener is not None, "server not started"
        return self._listener.port

    @property
    def host(self) -> str:
        return f"{self.address}:{self.port}"

    @property
    def url(self) -> str:
        assert self._listener is not None, "server not started"
        return self._listener.url

    @property
    def ca_bundle(self) -> str | None:
        """The certificate to trust (its own CA), for ``RegistryClient(ca_bundle=...)``; None without TLS."""
        return str(self.certificate.cert_path) if self.certificate else None

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._records)

    def reset_requests(self) -> None:
        with self._lock:
            self._records.clear()

    def freeze(self) -> None:
        """Like ``kill -STOP``: connections are still accepted, but nothing is read or answered."""
        assert self._listener is not None, "server not started"
        self._listener.call(self._set_thawed(False))

    def thaw(self) -> None:
        assert self._listener is not None, "server not started"
        self._listener.call(self._set_thawed(True))

    def down(self) -> None:
        """Close the port and every open connection: "connection refused" until :meth:`up`."""
        assert self._listener is not None, "server not started"
        self._listener.down()

    def up(self) -> None:
        assert self._listener is not None, "server not started"
        self._listener.up()

    async def _set_thawed(self, thawed: bool) -> None:
        if thawed:
            self._thawed.set()
        else:
            self._thawed.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with self._lock:
            self._connections += 1
            number = self._connections
        while True:
            await self._thawed.wait()
            head = await read_head(reader)
            if head is None:
                return
            body = await read_body(reader, head)
            method, _, rest = head.start_line.partition(" ")
            request = Request(method, rest.rsplit(" ", 1)[0], httpx.Headers(head.headers), body, number)
            with self._lock:
                self._records.append(
                    RecordedRequest(method, request.path, request.target, request.headers, len(body), number)
                )
            reply = await self._reply_to(request)
            await self._thawed.wait()
            if not await self._send(writer, method, reply) or head.wants_close:
                return

    async def _reply_to(self, request: Request) -> Reply:
        try:
            return await _call(self.handler, request)
        except Exception as exc:
            self._failed(exc)
            return Response(500, {"Content-Type": "text/plain"}, f"{self.name}: handler raised {exc!r}".encode())

    def _failed(self, exc: Exception) -> None:
        self.errors.append(exc)
        print(f"{self.name}: handler error", file=sys.stderr)
        traceback.print_exception(exc, file=sys.stderr)

    async def _send(self, writer: asyncio.StreamWriter, method: str, reply: Reply) -> bool:
        if isinstance(reply, Hang):
            await _forever()
        if isinstance(reply, Close):
            if reply.reset:
                _abort(writer)
            return False
        if isinstance(reply, Raw):
            writer.write(reply.data)
            return await _finish(writer, reply.end)
        items, declared, chunked, has_body = _framing(reply, method)
        lines = [
            f"HTTP/1.1 {reply.status} {_reason(reply.status)}",
            *(f"{name}: {value}" for name, value in items),
            "",
            "",
        ]
        writer.write("\r\n".join(lines).encode("latin-1"))
        end = reply.end
        if has_body:
            sent = 0
            try:
                async for piece in _pieces(reply, declared):
                    writer.write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
                    await writer.drain()
                    sent += len(piece)
            except OSError as exc:
                raise DropConnectionError from exc  # the client went away
            except Exception as exc:
                self._failed(exc)  # a body iterator raised: a bug in the test
                _abort(writer)
                return False
            if declared is not None and sent < declared and end == "keep":
                end = "close"
            if chunked and end in ("keep", "close"):
                writer.write(b"0\r\n\r\n")
        return await _finish(writer, end)


# -- the same handler in process, through httpx.MockTransport ----------------------------------------


def mock_transport(handler: Handler) -> httpx.MockTransport:
    """``handler`` behind ``httpx.MockTransport``. Hostile replies become what the production transport
    raises for them: ``RESET`` and ``end="reset"`` an ``httpx.ReadError``; ``CLOSE`` and a short body an
    ``httpx.RemoteProtocolError``; ``HANG`` and a stalled body wait until the caller's deadline; ``rate``
    paces the stream. ``Raw`` needs a socket (``TypeError``)."""

    async def handle(request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        target = request.url.raw_path.decode("ascii")
        reply = await _call(handler, Request(request.method, target, request.headers, body))
        if isinstance(reply, Hang):
            await _forever()
        if isinstance(reply, Close):
            if reply.reset:
                raise httpx.ReadError("connection reset by peer")
            raise httpx.RemoteProtocolError("server closed the connection without a response")
        if isinstance(reply, Raw):
            raise TypeError("a Raw reply needs a socket: serve the handler with LoopbackServer")
        items, declared, chunked, has_body = _framing(reply, request.method)
        stream = _MockBody(reply, declared, chunked) if has_body else httpx.ByteStream(b"")
        return httpx.Response(reply.status, headers=items, stream=stream)

    return httpx.MockTransport(handle)


class _MockBody(httpx.AsyncByteStream):
    def __init__(self, response: Response, declared: int | None, chunked: bool) -> None:
        self._response, self._declared, self._chunked = response, declared, chunked

    async def __aiter__(self) -> AsyncIterator[bytes]:
        sent = 0
        async for piece in _pieces(self._response, self._declared):
            sent += len(piece)
            yield piece
        missing = self._declared - sent if self._declared is not None else 0
        if self._response.end == "reset":
            raise httpx.ReadError("connection reset by peer")
        if self._response.end == "stall" and (missing or self._chunked):
            await _forever()
        if missing:
            raise httpx.RemoteProtocolError(f"connection closed with {missing} bytes of the body missing")
