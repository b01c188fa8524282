"""An in-memory distribution API behind ``httpx.MockTransport``, for failures a real registry will not
produce on demand (429 with Retry-After, 503 bursts, a connection reset mid-blob, wrong bytes, bad tokens).

Only what the error-path tests need: manifests (HEAD/GET/PUT), blobs (HEAD/GET), monolithic uploads,
tags list. ``faults`` is a list of callables consulted before every request: the first that returns a
response (or raises) wins. Every request is recorded in ``requests`` as ``(method, path)``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import httpx

Fault = Callable[[httpx.Request], "httpx.Response | None"]

_PATH = re.compile(r"^/v2/(?P<repo>.+?)/(?P<kind>manifests|blobs/uploads|blobs|tags)/?(?P<ref>[^/]*)$")


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class BrokenStream(httpx.AsyncByteStream):
    """Yields ``data[:cut]`` then fails like a connection reset."""

    def __init__(self, data: bytes, cut: int) -> None:
        self.data = data
        self.cut = cut

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.data[: self.cut]
        raise httpx.ReadError("connection reset by peer")


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

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def add_manifest(self, repository: str, raw: bytes, media_type: str, tag: str | None = None) -> str:
        digest = sha256(raw)
        self.manifests[(repository, digest)] = (raw, media_type)
        if tag:
            self.manifests[(repository, tag)] = (raw, media_type)
        return digest

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append((request.method, request.url.path))
        for fault in self.faults:
            answer = fault(request)
            if answer is not None:
                return answer
        path = request.url.path
        if path == "/v2/":
            return httpx.Response(200)
        match = _PATH.match(path)
        if match is None:
            return httpx.Response(404)
        repo, kind, ref = match["repo"], match["kind"], match["ref"]
        if kind == "manifests":
            return await self._manifest(request, repo, ref)
        if kind == "blobs":
            data = self.serve_blob.get(ref, self.blobs.get(ref))
            if data is None:
                return httpx.Response(404, json={"errors": [{"code": "BLOB_UNKNOWN", "message": "blob unknown"}]})
            if request.method == "HEAD":
                return httpx.Response(200, headers={"Content-Length": str(len(data)), "Docker-Content-Digest": ref})
            return httpx.Response(200, content=data)
        if kind == "blobs/uploads":
            return await self._upload(request, repo, ref)
        if kind == "tags":
            tags = sorted({ref for (r, ref) in self.manifests if r == repo and not ref.startswith("sha256:")})
            if not tags:
                return httpx.Response(404, json={"errors": [{"code": "NAME_UNKNOWN", "message": "unknown"}]})
            return httpx.Response(200, json={"name": repo, "tags": tags})
        return httpx.Response(404)

    async def _upload(self, request: httpx.Request, repo: str, session: str) -> httpx.Response:
        if request.method == "POST":
            session = f"session-{len(self.sessions) + 1}"
            self.sessions[session] = bytearray()
            headers = {"Location": f"/v2/{repo}/blobs/uploads/{session}?_state=x"}
            if self.chunk_min is not None:
                headers["OCI-Chunk-Min-Length"] = str(self.chunk_min)
            return httpx.Response(202, headers=headers)
        body = await request.aread()
        if session not in self.sessions:
            return httpx.Response(404, json={"errors": [{"code": "BLOB_UPLOAD_UNKNOWN", "message": "unknown"}]})
        if request.method == "PATCH":
            self.patches.append(len(body))
            self.sessions[session] += body
            return httpx.Response(202, headers={"Location": f"/v2/{repo}/blobs/uploads/{session}?_state=y"})
        if request.method == "PUT":
            if self.monolithic_limit is not None and len(body) > self.monolithic_limit:
                del self.sessions[session]
                return httpx.Response(413)
            data = bytes(self.sessions.pop(session) + body)
            digest = request.url.params.get("digest", "")
            if sha256(data) != digest:
                return httpx.Response(400, json={"errors": [{"code": "DIGEST_INVALID", "message": "bad"}]})
            self.blobs[digest] = data
            self.completed_uploads.append(digest)
            return httpx.Response(201, headers={"Docker-Content-Digest": digest})
        if request.method == "DELETE":
            self.sessions.pop(session, None)
        return httpx.Response(204)

    async def _manifest(self, request: httpx.Request, repo: str, ref: str) -> httpx.Response:
        if request.method == "PUT":
            raw = await request.aread()
            media_type = request.headers.get("content-type", "")
            self.add_manifest(repo, raw, media_type, None if ref.startswith("sha256:") else ref)
            return httpx.Response(201, headers={"Docker-Content-Digest": sha256(raw)})
        found = self.manifests.get((repo, ref))
        if found is None:
            return httpx.Response(404, json={"errors": [{"code": "MANIFEST_UNKNOWN", "message": "unknown"}]})
        raw, media_type = found
        headers = {"Content-Type": media_type, "Docker-Content-Digest": sha256(raw), "Content-Length": str(len(raw))}
        if request.method == "HEAD":
            return httpx.Response(200, headers=headers)
        return httpx.Response(200, headers=headers, content=raw)


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
