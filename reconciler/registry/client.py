"""The OCI distribution client: one ``RegistryClient`` per registry base URL, async, on httpx.

The client is the read API and the face of the package: manifests (HEAD, GET, PUT, DELETE), tags,
catalog, blobs (HEAD, streaming GET, small GET), with the rules of the distribution API (headers, status
codes, pagination). It implements ``ImageStore`` (``reconciler.model.store``), so the copier copies from and
to it as from and to an OCI layout. The wire (TLS, slots, auth, deadlines, retries, error mapping) is its
``RegistrySession``; blob writes are ``BlobUploads``. Tests swap the transport for an
``httpx.MockTransport`` or point the client at a small hostile server for failures a real registry
cannot produce on demand.

What it guarantees:

* every manifest request sends all four manifest media types in ``Accept``;
* manifests are kept byte-exact, checked against the digest that named them, and refused above 4 MiB;
* blobs are streamed in bounded chunks, never held whole in memory, and verified as they stream (one
  ``DigestVerifier``); a stream whose bytes do not match raises before it finishes;
* every answer read whole is capped, every request has a deadline, a frozen registry fails fast;
* every failure is one of ``reconciler.errors``' registry errors, naming registry, repository and digest.

It never logs or raises a secret.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urljoin

import httpx

from reconciler.errors import (
    DigestMismatchError,
    NotFoundError,
    RegistryError,
    TransientRegistryError,
    UnsupportedManifestError,
)
from reconciler.model.digest import Digest, DigestVerifier, is_valid_digest
from reconciler.model.manifest import (
    MANIFEST_ACCEPT,
    MAX_MANIFEST_BYTES,
    Descriptor,
    InvalidManifestError,
    Manifest,
    digest_of,
    parse_manifest,
)
from reconciler.model.store import BlobOpener, ByteProgress, UploadOutcome
from reconciler.registry.auth import CATALOG_SCOPE, repository_scope
from reconciler.registry.credentials import CredentialResolver, Credentials
from reconciler.registry.reply import BodyTooLargeError, read_capped
from reconciler.registry.retry import RetryPolicy, with_retries
from reconciler.registry.session import (
    DEFAULT_DEADLINE_SECONDS,
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_TIMEOUT_SECONDS,
    RegistrySession,
    RequestStats,
)
from reconciler.registry.uploads import DEFAULT_PATCH_CHUNK_BYTES, BlobUploads
from reconciler.registry.verify import ImageProblem, ImageVerifier, describe

MAX_SMALL_BLOB_BYTES = 16 * 1024 * 1024
"""``get_blob`` (whole blob in memory) refuses blobs above this: stream them instead."""
TAGS_PAGE_SIZE = 1000
MAX_LISTED_NAMES = 1_000_000
"""A tags list or catalog longer than this is refused: no registry holds that many legitimately."""


class RegistryClient:
    """An async client for one registry (one base URL). Use as ``async with RegistryClient(url=...)``.

    ``credentials`` is a ``Credentials``, a resolver (host -> Credentials | None, asked lazily when the
    registry first demands authentication), or None for anonymous access. ``transport`` replaces httpx's
    network transport (tests). ``name`` is the registry's name in reconciler.yaml, used in messages.
    ``timeout`` bounds each connect and socket read; ``deadline`` each whole request (see the session).
    """

    def __init__(
        self,
        *,
        url: str,
        credentials: Credentials | CredentialResolver | None = None,
        insecure: bool = False,
        ca_bundle: str | None = None,
        max_concurrency: int = DEFAULT_MAX_CONCURRENCY,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        name: str | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        deadline: float = DEFAULT_DEADLINE_SECONDS,
        page_size: int = TAGS_PAGE_SIZE,
    ) -> None:
        self.session = RegistrySession(
            url=url,
            credentials=credentials,
            insecure=insecure,
            ca_bundle=ca_bundle,
            max_concurrency=max_concurrency,
            retry=retry,
            transport=transport,
            name=name,
            timeout=timeout,
            deadline=deadline,
        )
        self.page_size = page_size
        """``n`` asked for per page of tags or catalog (servers may ignore it)."""
        self._uploads = BlobUploads(self.session)
        self._verifier = ImageVerifier(self)

    def __repr__(self) -> str:
        return f"RegistryClient(url={self.url!r}, name={self.name!r})"

    @property
    def url(self) -> str:
        return self.session.url

    @property
    def host(self) -> str:
        return self.session.host

    @property
    def name(self) -> str:
        return self.session.name

    @property
    def key(self) -> str:
        """Identity of the registry: equal keys mean blobs can be mounted between repositories."""
        return self.session.key

    @property
    def stats(self) -> RequestStats:
        return self.session.stats

    @property
    def retry(self) -> RetryPolicy:
        return self.session.retry

    async def __aenter__(self) -> RegistryClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.session.aclose()

    # ------------------------------------------------------------------ manifests

    async def ping(self) -> None:
        """Check that the registry speaks the distribution API and accepts our credentials (if it asks)."""
        await self.session.request("GET", "/v2/", scopes=(), what="ping")

    async def head_manifest(self, repository: str, reference: str) -> Descriptor | None:
        """Descriptor of the manifest ``reference`` (tag or digest) names, or None when absent. One request."""
        digest = reference if is_valid_digest(reference) else None
        reply = await self.session.request(
            "HEAD",
            f"/v2/{repository}/manifests/{reference}",
            scopes=[repository_scope(repository, "pull")],
            what=f"HEAD manifest {reference}",
            missing_ok=True,
            repository=repository,
            digest=digest,
            headers={"Accept": MANIFEST_ACCEPT},
        )
        if reply is None:
            return None
        media_type = reply.headers.get("content-type", "").split(";", 1)[0].strip()
        found = reply.headers.get("docker-content-digest")
        if found is None or not is_valid_digest(found):
            if digest is None:
                # A registry that does not name the digest on HEAD: fall back to GET and hash it ourselves.
                return (await self.get_manifest(repository, reference)).descriptor
            found = digest
        if digest is not None and found != digest:
            raise DigestMismatchError(
                f"registry says the manifest is {found}", registry=self.name, repository=repository, digest=digest
            )
        size_text = reply.headers.get("content-length")
        size = int(size_text) if size_text and size_text.isdigit() else -1
        return Descriptor(media_type=media_type, digest=Digest(found), size=size)

    async def get_manifest(self, repository: str, reference: str) -> Manifest:
        """The manifest ``reference`` names, byte-exact and checked against its digest (the reference
        when it is a digest, else ``Docker-Content-Digest``). Raises NotFoundError when absent,
        UnsupportedManifestError for schema 1, unknown kinds and manifests above 4 MiB."""
        digest = reference if is_valid_digest(reference) else None
        what = f"GET manifest {reference}"
        session = self.session
        where = {"registry": self.name, "repository": repository, "digest": digest}

        async def attempt() -> Manifest:
            async with session.slot(), session.guarded(what, repository=repository, digest=digest):
                response = await session.exchange(
                    "GET",
                    f"/v2/{repository}/manifests/{reference}",
                    scopes=[repository_scope(repository, "pull")],
                    what=what,
                    repository=repository,
                    digest=digest,
                    headers={"Accept": MANIFEST_ACCEPT},
                )
                try:
                    if response.status_code != 200:
                        raise await session.error(response, what, repository=repository, digest=digest)
                    try:
                        body = await read_capped(response, MAX_MANIFEST_BYTES)
                    except BodyTooLargeError:
                        raise UnsupportedManifestError(
                            f"manifest exceeds the {MAX_MANIFEST_BYTES} byte limit",
                            **where,  # type: ignore[arg-type]
                        ) from None
                finally:
                    await response.aclose()
            session.stats.bytes_downloaded += len(body)
            expected = digest or response.headers.get("docker-content-digest")
            if expected is not None and not is_valid_digest(expected):
                expected = None
            try:
                return parse_manifest(body, response.headers.get("content-type"), digest=expected)
            except InvalidManifestError as exc:
                place = {"registry": self.name, "repository": repository, "digest": expected}
                if exc.unsupported:
                    raise UnsupportedManifestError(str(exc), **place) from exc  # type: ignore[arg-type]
                if expected is not None and digest_of(body, expected.split(":", 1)[0]) != expected:
                    raise DigestMismatchError(str(exc), **place) from exc  # type: ignore[arg-type]
                raise RegistryError(f"invalid manifest: {exc}", **place) from exc  # type: ignore[arg-type]

        return await with_retries(session.retry, attempt, what=f"{what} on {self.name}")

    async def put_manifest(self, repository: str, reference: str, raw: bytes, media_type: str) -> Digest:
        """Store ``raw`` byte-exact under ``reference`` (a tag, or its own digest) with ``media_type`` as
        Content-Type; return its digest. Putting by tag stores the manifest and moves the tag at once."""
        own = digest_of(raw, reference.split(":", 1)[0]) if is_valid_digest(reference) else digest_of(raw)
        if is_valid_digest(reference) and own != reference:
            raise DigestMismatchError(
                f"refusing to PUT a manifest whose bytes hash to {own}",
                registry=self.name,
                repository=repository,
                digest=reference,
            )
        reply = await self.session.request(
            "PUT",
            f"/v2/{repository}/manifests/{reference}",
            scopes=[repository_scope(repository, "pull", "push")],
            what=f"PUT manifest {reference}",
            ok=(200, 201, 202, 204),
            repository=repository,
            digest=str(own),
            headers={"Content-Type": media_type},
            content=raw,
        )
        assert reply is not None
        answered = reply.headers.get("docker-content-digest")
        if answered and is_valid_digest(answered) and answered.split(":", 1)[0] == own.algorithm and answered != own:
            raise DigestMismatchError(
                f"registry stored the manifest as {answered}", registry=self.name, repository=repository, digest=own
            )
        self.stats.bytes_uploaded += len(raw)
        if self.session.write_faults:
            # The registry failed a write earlier in this session (a full or failing disk): distribution then
            # acknowledges manifests it stored EMPTY. Read the image back before anyone relies on it.
            problems = await self._verifier.verify(repository, reference, expected=str(own))
            if problems:
                raise RegistryError(
                    f"PUT manifest {reference}: acknowledged, but read back broken after the registry failed "
                    f"writes in this run: {describe(problems)}; its storage needs repair",
                    registry=self.name,
                    repository=repository,
                    digest=str(own),
                )
        return own

    async def verify_image(self, repository: str, reference: str, *, expected: str | None = None) -> list[ImageProblem]:
        """Read the image ``reference`` names back: its manifest, children and every blob's size (see
        ``reconciler.registry.verify``). [] when it is whole; never raises for what it finds."""
        return await self._verifier.verify(repository, reference, expected=expected)

    async def delete_manifest(self, repository: str, digest: str) -> None:
        """Delete the manifest ``digest`` (and so every tag pointing at it). NotFoundError when absent."""
        if not is_valid_digest(digest):
            raise ValueError(f"delete_manifest needs a digest, not {digest!r} (registries delete by digest only)")
        await self.session.request(
            "DELETE",
            f"/v2/{repository}/manifests/{digest}",
            scopes=[repository_scope(repository, "pull", "push", "delete")],
            what="DELETE manifest",
            ok=(200, 202, 204),
            repository=repository,
            digest=digest,
        )

    # ------------------------------------------------------------------ listings

    async def _paginate(self, path: str, key: str, scope: str, what: str, repository: str | None) -> list[str]:
        found: set[str] = set()
        seen_urls: set[str] = set()
        url: str | None = path
        params: dict[str, str] | None = {"n": str(self.page_size)}
        while url is not None:
            reply = await self.session.request(
                "GET", url, scopes=[scope], what=what, missing_ok=True, repository=repository, params=params
            )
            if reply is None:
                if not found:
                    return []
                raise NotFoundError(f"{what}: a later page vanished (404)", registry=self.name, repository=repository)
            try:
                names = reply.json().get(key) or []
            except (ValueError, AttributeError) as exc:
                raise RegistryError(f"{what}: answer is not JSON", registry=self.name, repository=repository) from exc
            before = len(found)
            found.update(str(name) for name in names)
            if len(found) > MAX_LISTED_NAMES:
                raise UnsupportedManifestError(
                    f"{what}: more than {MAX_LISTED_NAMES} names; refusing to list further",
                    registry=self.name,
                    repository=repository,
                )
            seen_urls.add(str(reply.url))
            link = reply.link("next")
            if not link or len(found) == before:
                break  # no next page, or a server that ignores n/last and repeats itself
            url = urljoin(str(reply.url), link)
            params = None
            if url in seen_urls:
                break
        return sorted(found)

    async def list_tags(self, repository: str) -> list[str]:
        """Every tag of ``repository``, sorted, following ``Link`` pagination. [] for an unknown repository."""
        scope = repository_scope(repository, "pull")
        return await self._paginate(f"/v2/{repository}/tags/list", "tags", scope, "list tags", repository)

    async def has_tags(self, repository: str) -> bool:
        """Whether ``repository`` holds at least one tag: one request (the first page, one entry long)."""
        reply = await self.session.request(
            "GET",
            f"/v2/{repository}/tags/list",
            scopes=[repository_scope(repository, "pull")],
            what="list tags",
            missing_ok=True,
            repository=repository,
            params={"n": "1"},
        )
        if reply is None:
            return False
        try:
            return bool(reply.json().get("tags"))
        except (ValueError, AttributeError) as exc:
            raise RegistryError("list tags: answer is not JSON", registry=self.name, repository=repository) from exc

    async def catalog(self) -> list[str]:
        """Every repository of the registry, sorted (needs catalog access on registries with auth)."""
        return await self._paginate("/v2/_catalog", "repositories", CATALOG_SCOPE, "catalog", None)

    # ------------------------------------------------------------------ blobs

    async def head_blob(self, repository: str, digest: str) -> int | None:
        """Size of blob ``digest`` in ``repository``, or None when it is not there. One request."""
        reply = await self.session.request(
            "HEAD",
            f"/v2/{repository}/blobs/{digest}",
            scopes=[repository_scope(repository, "pull")],
            what="HEAD blob",
            missing_ok=True,
            repository=repository,
            digest=digest,
        )
        if reply is None:
            return None
        size = reply.headers.get("content-length")
        return int(size) if size and size.isdigit() else -1

    async def blob_exists(self, repository: str, digest: str) -> bool:
        return await self.head_blob(repository, digest) is not None

    @asynccontextmanager
    async def stream_blob(
        self, repository: str, digest: str, *, size: int | None = None, chunk_size: int | None = None
    ) -> AsyncIterator[AsyncIterator[bytes]]:
        """``async with client.stream_blob(repo, digest) as chunks: async for chunk in chunks: ...``

        Holds one of the registry's request slots while open. The bytes are verified as they pass: the
        iterator raises DigestMismatchError at the end instead of finishing when they do not match (so a
        consumer that forwards bytes never forwards a complete wrong blob). ``size`` (the descriptor's)
        sets the transfer's deadline. Not retried: a caller that needs retries re-opens the stream."""
        if not is_valid_digest(digest):
            raise ValueError(f"not a digest: {digest!r}")
        what = "GET blob"
        session = self.session
        async with session.slot():
            async with session.guarded(what, repository=repository, digest=digest):
                response = await session.exchange(
                    "GET",
                    f"/v2/{repository}/blobs/{digest}",
                    scopes=[repository_scope(repository, "pull")],
                    what=what,
                    repository=repository,
                    digest=digest,
                )
            try:
                if response.status_code != 200:
                    async with session.guarded(what, repository=repository, digest=digest):
                        raise await session.error(response, what, repository=repository, digest=digest)
                declared = response.headers.get("content-length", "")
                expected = size if size is not None and size >= 0 else (int(declared) if declared.isdigit() else 0)
                deadline = time.monotonic() + session.deadline_for(expected)
                yield self._blob_chunks(response, repository, digest, deadline, chunk_size)
            finally:
                await response.aclose()

    async def _blob_chunks(
        self, response: httpx.Response, repository: str, digest: str, deadline: float, chunk_size: int | None
    ) -> AsyncIterator[bytes]:
        """The raw bytes (never content-decoded: the digest covers the stored bytes), verified; the
        mapping of read errors wraps each read, never the consumer's work between reads."""
        session = self.session
        verifier = DigestVerifier(digest)
        chunks = _raw(response, chunk_size).__aiter__()
        while True:
            what = f"GET blob broke after {verifier.received} bytes"
            with session.map_exceptions(what, repository=repository, digest=digest):
                try:
                    chunk = await chunks.__anext__()
                except StopAsyncIteration:
                    break
            if time.monotonic() > deadline:
                raise TransientRegistryError(
                    f"GET blob too slow: {verifier.received} bytes before the transfer's deadline",
                    registry=self.name,
                    repository=repository,
                    digest=digest,
                )
            verifier.update(chunk)
            session.stats.bytes_downloaded += len(chunk)
            yield chunk
        mismatch = verifier.mismatch()
        if mismatch is not None:
            raise DigestMismatchError(
                f"source served {mismatch}", registry=self.name, repository=repository, digest=digest
            )

    async def get_blob(self, repository: str, digest: str, *, max_bytes: int = MAX_SMALL_BLOB_BYTES) -> bytes:
        """A small blob (an image config) in memory, verified. Refuses blobs larger than ``max_bytes``."""

        async def attempt() -> bytes:
            async with self.stream_blob(repository, digest) as chunks:
                body = bytearray()
                async for chunk in chunks:
                    body += chunk
                    if len(body) > max_bytes:
                        raise RegistryError(
                            f"blob larger than {max_bytes} bytes; stream it instead",
                            registry=self.name,
                            repository=repository,
                            digest=digest,
                        )
                return bytes(body)

        return await with_retries(self.retry, attempt, what=f"GET blob on {self.name}")

    async def mount_blob(self, repository: str, digest: str, from_repository: str) -> bool:
        """Mount blob ``digest`` from ``from_repository`` of this registry into ``repository``.
        True when mounted (201); False when the registry declined (202: the session it opened is cancelled)."""
        return await self._uploads.mount_blob(repository, digest, from_repository)

    async def upload_blob(
        self,
        repository: str,
        digest: str,
        content: bytes | BlobOpener,
        *,
        size: int | None = None,
        mount_from: str | None = None,
        progress: ByteProgress | None = None,
        verify: bool = True,
        chunked: bool = False,
        chunk_size: int = DEFAULT_PATCH_CHUNK_BYTES,
    ) -> UploadOutcome:
        """Upload blob ``digest`` into ``repository`` (see ``reconciler.registry.uploads``)."""
        return await self._uploads.upload_blob(
            repository,
            digest,
            content,
            size=size,
            mount_from=mount_from,
            progress=progress,
            verify=verify,
            chunked=chunked,
            chunk_size=chunk_size,
        )


async def _raw(response: httpx.Response, chunk_size: int | None) -> AsyncIterator[bytes]:
    """The body exactly as sent, in chunks as they come off the socket (``chunk_size`` None) or of
    ``chunk_size``. A response that is already read (mock transports build them so) is served from memory."""
    if response.is_stream_consumed:
        content = response.content
        step = chunk_size or 1024 * 1024
        for start in range(0, len(content), step):
            yield content[start : start + step]
        return
    async for chunk in response.aiter_raw(chunk_size):
        yield chunk
