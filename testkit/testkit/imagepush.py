"""Pushing generated images: a small synchronous httpx client, independent of the product's registry client.

:func:`push_image` uploads an image (HEAD, monolithic POST + PUT, streamed from memory or file), handling
Basic and Bearer token auth simply, so tests of the product's client do not seed their data with the code
under test. :func:`write_oci_layout` writes an OCI image layout directory (``skopeo copy oci:DIR:TAG``
reads it). Never logs or embeds credentials in errors; never holds a file-backed blob in memory.
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx

from reconciler.errors import AuthError, RegistryError
from testkit.imagegen import Blob, GeneratedImage, sha256_digest

_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')


class ChallengeAuth:
    """Answers a registry's 401 challenge: Basic with the given credentials, or the Bearer token flow.

    Deliberately simple (seeding and checking only; the product has its own client). Tokens are cached per
    scope for the life of this object. The credentials never appear in
    an exception message.
    """

    def __init__(self, username: str | None, password: str | None) -> None:
        self._username = username
        self._password = password
        self._header: str | None = None
        self._tokens: dict[str, str] = {}

    def _basic(self) -> httpx.BasicAuth | None:
        if self._username is None:
            return None
        return httpx.BasicAuth(self._username, self._password or "")

    def send(self, client: httpx.Client, request: httpx.Request, *, replayable: bool = True) -> httpx.Response:
        if self._header is not None:
            request.headers["Authorization"] = self._header
        response = client.send(request)
        if response.status_code != 401 or not replayable:
            return response
        challenge = response.headers.get("WWW-Authenticate", "")
        response.close()
        scheme = challenge.split(" ", 1)[0].lower()
        if scheme == "basic":
            basic = self._basic()
            if basic is None:
                raise AuthError(
                    "registry wants Basic credentials and none were given", registry=str(request.url.netloc.decode())
                )
            self._header = _basic_header(self._username or "", self._password or "")
        elif scheme == "bearer":
            self._header = "Bearer " + self._token(client, challenge, request)
        else:
            raise AuthError(f"unsupported auth challenge {scheme!r}", registry=request.url.netloc.decode())
        request.headers["Authorization"] = self._header
        return client.send(request)

    def _token(self, client: httpx.Client, challenge: str, request: httpx.Request) -> str:
        params = dict(_CHALLENGE_PARAM.findall(challenge))
        realm = params.pop("realm", None)
        if realm is None:
            raise AuthError("Bearer challenge without realm", registry=request.url.netloc.decode())
        scope = params.get("scope", "")
        if scope in self._tokens:
            return self._tokens[scope]
        query = {k: v for k, v in params.items() if k in ("service", "scope")}
        response = client.get(realm, params=query, auth=self._basic() or None)
        if response.status_code != 200:
            raise AuthError(
                f"token server {realm} refused the token request (HTTP {response.status_code})",
                registry=request.url.netloc.decode(),
                status=response.status_code,
            )
        body = response.json()
        token = body.get("token") or body.get("access_token")
        if not isinstance(token, str):
            raise AuthError(f"token server {realm} answered without a token", registry=request.url.netloc.decode())
        self._tokens[scope] = token
        return token


def _basic_header(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def _check(response: httpx.Response, what: str, *, registry: str, repository: str, digest: str | None = None) -> None:
    if response.is_success:
        return
    detail = response.text[:300]  # the registry's error JSON: says what was wrong, holds no secret
    if response.status_code in (401, 403):
        raise AuthError(
            f"{what}: HTTP {response.status_code}",
            registry=registry,
            repository=repository,
            digest=digest,
            status=response.status_code,
        )
    raise RegistryError(
        f"{what}: HTTP {response.status_code} {detail}".rstrip(),
        registry=registry,
        repository=repository,
        digest=digest,
        status=response.status_code,
    )


def push_blob(client: httpx.Client, auth: ChallengeAuth, base_url: str, repository: str, blob: Blob) -> bool:
    """Upload ``blob`` unless the repository has it. True when bytes were uploaded."""
    registry = httpx.URL(base_url).netloc.decode()
    head = auth.send(client, client.build_request("HEAD", f"{base_url}/v2/{repository}/blobs/{blob.digest}"))
    if head.status_code == 200:
        return False
    start = auth.send(client, client.build_request("POST", f"{base_url}/v2/{repository}/blobs/uploads/"))
    _check(start, "starting blob upload", registry=registry, repository=repository, digest=blob.digest)
    location = start.headers.get("Location")
    if not location:
        raise RegistryError(
            "upload start without Location", registry=registry, repository=repository, digest=blob.digest
        )
    upload_url = httpx.URL(base_url).join(location)
    upload_url = upload_url.copy_merge_params({"digest": blob.digest})
    put = client.build_request(
        "PUT",
        upload_url,
        content=blob.chunks(),
        headers={"Content-Type": "application/octet-stream", "Content-Length": str(blob.size)},
    )
    done = auth.send(client, put, replayable=False)
    _check(done, "finishing blob upload", registry=registry, repository=repository, digest=blob.digest)
    return True


def push_manifest(
    client: httpx.Client,
    auth: ChallengeAuth,
    base_url: str,
    repository: str,
    *,
    reference: str,
    raw: bytes,
    media_type: str,
) -> None:
    registry = httpx.URL(base_url).netloc.decode()
    request = client.build_request(
        "PUT", f"{base_url}/v2/{repository}/manifests/{reference}", content=raw, headers={"Content-Type": media_type}
    )
    response = auth.send(client, request)
    _check(
        response, f"putting manifest {reference}", registry=registry, repository=repository, digest=sha256_digest(raw)
    )


def push_image(
    image: GeneratedImage,
    registry_url: str,
    repository: str,
    tag: str | None,
    *,
    username: str | None = None,
    password: str | None = None,
    client: httpx.Client | None = None,
) -> None:
    """Push ``image`` to ``registry_url`` (e.g. ``http://127.0.0.1:5000``) as ``repository:tag``.

    Blobs first (skipped when present), then the child manifests by digest, then the top manifest by tag
    (by digest only when ``tag`` is None). Blob bodies are streamed (memory or file), never buffered whole.
    """
    base_url = registry_url.rstrip("/")
    if "://" not in base_url:
        base_url = "http://" + base_url
    auth = ChallengeAuth(username, password)
    own_client = client is None
    http = client or httpx.Client(timeout=httpx.Timeout(60.0, connect=10.0))
    try:
        for blob in image.blobs.values():
            push_blob(http, auth, base_url, repository, blob)
        for child in image.children:
            push_manifest(
                http, auth, base_url, repository, reference=child.digest, raw=child.raw, media_type=child.media_type
            )
        push_manifest(
            http, auth, base_url, repository, reference=tag or image.digest, raw=image.raw, media_type=image.media_type
        )
    finally:
        if own_client:
            http.close()


# -- OCI layout ------------------------------------------------------------------------------------


def _write_blob_file(blobs_dir: Path, digest: str, chunks: Iterable[bytes]) -> None:
    algorithm, hex_digest = digest.split(":", 1)
    target = blobs_dir / algorithm / hex_digest
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        return
    with target.open("wb") as handle:
        for chunk in chunks:
            handle.write(chunk)


def write_oci_layout(image: GeneratedImage, directory: str | os.PathLike[str], tag: str) -> Path:
    """Write ``image`` as an OCI image layout in ``directory`` under ``tag`` (other tags already there are
    kept). ``skopeo copy oci:DIRECTORY:TAG docker://...`` reads it.

    Only OCI-format images: skopeo 1.9 (containers/image) ignores layout entries with Docker media types
    ("no descriptor found for reference"), so a Docker image here would be unreadable; refusing is clearer.
    """
    if image.format != "oci":
        raise ValueError(f"image {image.digest} is in Docker format; an OCI layout holds OCI images (fmt='oci')")
    root = Path(directory)
    blobs_dir = root / "blobs"
    blobs_dir.mkdir(parents=True, exist_ok=True)
    (root / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    for blob in image.blobs.values():
        _write_blob_file(blobs_dir, blob.digest, blob.chunks())
    for child in image.children:
        _write_blob_file(blobs_dir, child.digest, [child.raw])
    _write_blob_file(blobs_dir, image.digest, [image.raw])
    index_path = root / "index.json"
    index: dict[str, Any] = {"schemaVersion": 2, "manifests": []}
    if index_path.exists():
        index = json.loads(index_path.read_text())
    ref_key = "org.opencontainers.image.ref.name"
    index["manifests"] = [m for m in index.get("manifests", []) if m.get("annotations", {}).get(ref_key) != tag]
    index["manifests"].append(
        {"mediaType": image.media_type, "digest": image.digest, "size": image.size, "annotations": {ref_key: tag}}
    )
    index_path.write_text(json.dumps(index, indent=2))
    return root
