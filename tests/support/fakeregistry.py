"""An in-memory distribution API, for failures a real registry will not produce on demand (429 with
Retry-After, 503 bursts, a connection reset mid-blob, wrong bytes, bad tokens), reachable two ways.

``FakeRegistry.handle`` is a ``support.httpserver`` handler, so the same fake answers in process through
``fake.transport()`` (an ``httpx.MockTransport``) and over a real socket through ``fake.serve()`` (a
started ``LoopbackServer``: ``.url``), i.e. through the production transport that ``RegistryClient``
picks when no ``transport=`` is given. :class:`Wire` runs a test either way (the ``mock`` and ``socket``
flavours).

Only what the error-path tests need: manifests (HEAD/GET/PUT), blobs (HEAD/GET), monolithic and chunked
uploads, tags list. ``faults`` are callables consulted before every request: the first that returns a
reply wins (any ``support.httpserver`` reply: a ``Response``, or a hostile one such as ``RESET``). Every
request is recorded in ``requests`` as ``(method, path)``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal

import httpx

from reconciler.registry import RegistryClient, RetryPolicy
from support.certs import ServerCertificate
from support.httpserver import Handler, HandlerError, LoopbackServer, Reply, Request, Response, mock_transport

Fault = Callable[[Request], Reply | None]
Flavour = Literal["mock", "socket"]
FLAVOURS: tuple[Flavour, ...] = ("mock", "socket")

_PATH = re.compile(r"^/v2/(?P<repo>.+?)/(?P<kind>manifests|blobs/uploads|blobs|tags)/?(?P<ref>[^/]*)$")


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class FakeRegistry:
    blobs: dict[str, bytes] = field(default_factory=dict)
    manifests: dict[tuple[str, str], tuple[bytes, str]] = field(default_factory=dict)
    """(repository, tag or digest) -> (raw, media type)."""
    faults: list[Fault] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)
    completed_uploads: list[str] = field(default_factory=list)
    serve_blob: dict[str, bytes] = field(default_factory=dict)
    """Override: bytes to serve for a digest (to simulate a source serving wrong content)."""
    sessions: dict[str, bytearray] = field(default_factory=dict)
    patches: list[int] = field(default_factory=list)
    """Sizes of the PATCH bodies received, in order."""
    monolithic_limit: int | None = None
    """Refuse a PUT carrying more than this many bytes with 413 (as some proxies do)."""
    chunk_min: int | None = None
    """Announce ``OCI-Chunk-Min-Length`` on upload sessions."""
    sessions_opened: int = 0

    def transport(self) -> httpx.MockTransport:
        """The fake in process: pass as ``RegistryClient(transport=...)``."""
        return mock_transport(self.handle)

    def serve(self, *, tls: bool | ServerCertificate = False) -> LoopbackServer:
        """The fake on a loopback socket: a started server (``.url``); stop it, or use it in ``with``."""
        return LoopbackServer(self.handle, tls=tls, name="fake-registry").start()

    def add_manifest(self, repository: str, raw: bytes, media_type: str, tag: str | None = None) -> str:
        digest = sha256(raw)
        self.manifests[(repository, digest)] = (raw, media_type)
        if tag:
            self.manifests[(repository, tag)] = (raw, media_type)
        return digest

    def handle(self, request: Request) -> Reply:
        self.requests.append((request.method, request.path))
        for fault in self.faults:
            answer = fault(request)
            if answer is not None:
                return answer
        if request.path == "/v2/":
            return Response.json({})
        match = _PATH.match(request.path)
        if match is None:
            return Response(404)
        repo, kind, ref = match["repo"], match["kind"], match["ref"]
        if kind == "manifests":
            return self._manifest(request, repo, ref)
        if kind == "blobs":
            data = self.serve_blob.get(ref, self.blobs.get(ref))
            if data is None:
                return Response.error(404, "BLOB_UNKNOWN", "blob unknown")
            return Response(200, {"Docker-Content-Digest": ref, "Content-Type": "application/octet-stream"}, data)
        if kind == "blobs/uploads":
            return self._upload(request, repo, ref)
        tags = sorted({ref for (r, ref) in self.manifests if r == repo and not ref.startswith("sha256:")})
        if not tags:
            return Response.error(404, "NAME_UNKNOWN", "repository name not known to registry")
        return Response.json({"name": repo, "tags": tags})

    def _upload(self, request: Request, repo: str, session: str) -> Response:
        if request.method == "POST":
            self.sessions_opened += 1  # never reuse an id: a finished session's number could name a live one
            session = f"session-{self.sessions_opened}"
            self.sessions[session] = bytearray()
            headers = {"Location": f"/v2/{repo}/blobs/uploads/{session}?_state=x"}
            if self.chunk_min is not None:
                headers["OCI-Chunk-Min-Length"] = str(self.chunk_min)
            return Response(202, headers)
        if session not in self.sessions:
            return Response.error(404, "BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry")
        body = request.body
        if request.method == "PATCH":
            self.patches.append(len(body))
            self.sessions[session] += body
            return Response(202, {"Location": f"/v2/{repo}/blobs/uploads/{session}?_state=y"})
        if request.method == "PUT":
            if self.monolithic_limit is not None and len(body) > self.monolithic_limit:
                del self.sessions[session]
                return Response(413)
            data = bytes(self.sessions.pop(session) + body)
            digest = request.param("digest") or ""
            if sha256(data) != digest:
                return Response.error(400, "DIGEST_INVALID", "provided digest did not match uploaded content")
            self.blobs[digest] = data
            self.completed_uploads.append(digest)
            return Response(201, {"Docker-Content-Digest": digest})
        if request.method == "DELETE":
            self.sessions.pop(session, None)
        return Response(204)

    def _manifest(self, request: Request, repo: str, ref: str) -> Response:
        if request.method == "PUT":
            media_type = request.header("content-type") or ""
            self.add_manifest(repo, request.body, media_type, None if ref.startswith("sha256:") else ref)
            return Response(201, {"Docker-Content-Digest": sha256(request.body)})
        found = self.manifests.get((repo, ref))
        if found is None:
            return Response.error(404, "MANIFEST_UNKNOWN", "manifest unknown")
        raw, media_type = found
        return Response(200, {"Content-Type": media_type, "Docker-Content-Digest": sha256(raw)}, raw)


class Wire:
    """How a test reaches its fakes: ``mock`` (in process, one ``httpx.MockTransport`` routing on the Host
    header) or ``socket`` (one ``LoopbackServer`` per fake, reached through the production transport).

    ``serve(fake_or_handler, host=...)`` gives the base URL: under ``mock`` the URL names ``host`` (default
    ``127.0.0.N:5000``, one per fake), under ``socket`` it is the server's ``http://127.0.0.1:PORT``.
    ``client(...)`` builds a ``RegistryClient`` for a URL or a fake. ``close()`` stops the servers (and
    raises when a handler raised)."""

    def __init__(self, flavour: Flavour, *, retry: RetryPolicy | None = None) -> None:
        self.flavour = flavour
        self.retry = retry
        self.servers: list[LoopbackServer] = []
        self._routes: dict[str, Handler] = {}
        self._transport = mock_transport(self._route) if flavour == "mock" else None

    def __repr__(self) -> str:
        return f"Wire({self.flavour})"

    def serve(self, target: FakeRegistry | Handler, *, host: str | None = None) -> str:
        handler = target.handle if isinstance(target, FakeRegistry) else target
        if self.flavour == "socket":
            server = LoopbackServer(handler, name=host or "fake").start()
            self.servers.append(server)
            return server.url
        host = host or f"127.0.0.{len(self._routes) + 1}:5000"
        self._routes[host] = handler
        return f"{'http' if host.startswith('127.') else 'https'}://{host}"

    def client(self, target: str | FakeRegistry | Handler, **options: Any) -> RegistryClient:
        url = target if isinstance(target, str) else self.serve(target)
        if self.retry is not None:
            options.setdefault("retry", self.retry)
        return RegistryClient(url=url, transport=self._transport, **options)

    def _route(self, request: Request) -> Any:
        return self._routes[request.header("host") or ""](request)

    def close(self) -> None:
        errors: list[HandlerError] = []
        for server in self.servers:
            try:
                server.stop()
            except HandlerError as exc:
                errors.append(exc)
        self.servers = []
        if errors:
            raise errors[0]

    def __enter__(self) -> Wire:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def image_manifest(config: bytes, layers: list[bytes]) -> bytes:
    document = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": sha256(config),
            "size": len(config),
        },
        "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": sha256(layer), "size": len(layer)}
            for layer in layers
        ],
    }
    return json.dumps(document).encode()
