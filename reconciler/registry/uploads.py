"""Blob uploads: cross-repository mount, monolithic upload, chunked upload, and the hashing pipe.

``BlobUploads`` writes blobs into one registry through its ``RegistrySession``. A mount is tried first when
the caller names a repository of the same registry; when the registry declines (202), the session it
opened is used for the upload. The upload is monolithic (POST, then one streaming PUT) unless asked for
chunks or the registry refuses it (400/413/415), then PATCHes of ``max(chunk_size, OCI-Chunk-Min-Length)``.

The bytes go through ``UploadPipe``: hashed with the project's one ``DigestVerifier`` (in a worker thread,
one block behind the network, so sha256 never stalls the event loop) with the LAST block held back until
the hash is known good, so a blob whose bytes do not match its digest or size never completes in the
target. An upload that fails after its session was opened cancels the session (DELETE), so an abandoned
copy leaves nothing in the registry's ``_uploads``.

It never deletes a stored blob and never sends a byte it has not counted into the verifier.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import quote, urljoin

from reconciler.errors import DigestMismatchError, ReconcilerError, RegistryError
from reconciler.model.digest import DigestVerifier, is_valid_digest
from reconciler.model.store import BlobOpener, ByteProgress, UploadOutcome
from reconciler.registry.auth import repository_scope
from reconciler.registry.retry import with_retries
from reconciler.registry.session import RegistrySession

log = logging.getLogger(__name__)

STREAM_CHUNK_BYTES = 1024 * 1024
"""Bytes per piece when an in-memory blob is streamed."""
UPLOAD_WRITE_BYTES = 256 * 1024
"""Streamed uploads are written in pieces of about this size (memory per transfer: two of them)."""
DEFAULT_PATCH_CHUNK_BYTES = 8 * 1024 * 1024
"""Bytes per PATCH of a chunked upload (raised to the registry's ``OCI-Chunk-Min-Length``)."""
MAX_PATCH_CHUNK_BYTES = 32 * 1024 * 1024


def _with_query(url: str, name: str, value: str) -> str:
    """``url`` with ``name=value`` added to its query (upload locations carry their own state parameters)."""
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}{quote(name, safe='')}={quote(value, safe='')}"


class UploadPipe:
    """Forwards chunks into a request body, hashing them, holding the last block back until the hash (and
    the size, when known) is verified. When the content is wrong the body raises, and ``failure`` keeps the
    error: an HTTP stack may wrap what a body iterator raises, and the uploader re-raises ``failure``
    rather than digging through exception causes."""

    def __init__(self, *, registry: str, repository: str, digest: str, size: int | None, verify: bool) -> None:
        self._where = {"registry": registry, "repository": repository, "digest": digest}
        self._verifier = DigestVerifier(digest, size) if verify else None
        self._size = size if size is not None and size >= 0 else None
        self.failure: DigestMismatchError | None = None

    def _fail(self, message: str) -> DigestMismatchError:
        self.failure = DigestMismatchError(f"{message}; upload aborted", **self._where)  # type: ignore[arg-type]
        return self.failure

    async def body(self, chunks: AsyncIterator[bytes], note: ByteProgress) -> AsyncIterator[bytes]:
        verifier = self._verifier
        hashing: asyncio.Future[None] | None = None

        async def hash_block(block: bytes) -> None:
            nonlocal hashing
            if verifier is None:
                return
            if hashing is not None:
                await hashing
            hashing = asyncio.ensure_future(asyncio.to_thread(verifier.update, block))

        held: bytes | None = None
        pending: list[bytes] = []
        pending_bytes = 0
        total = 0
        try:
            async for chunk in chunks:
                if not chunk:
                    continue
                total += len(chunk)
                if self._size is not None and total > self._size:
                    raise self._fail(f"more than the {self._size} bytes the descriptor says")
                pending.append(chunk)
                pending_bytes += len(chunk)
                if pending_bytes < UPLOAD_WRITE_BYTES:
                    continue
                block = pending[0] if len(pending) == 1 else b"".join(pending)
                pending, pending_bytes = [], 0
                await hash_block(block)
                if held is not None:
                    yield held
                    note(len(held))
                held = block
            if pending:
                block = pending[0] if len(pending) == 1 else b"".join(pending)
                await hash_block(block)
                if held is not None:
                    yield held
                    note(len(held))
                held = block
            if hashing is not None:
                await hashing
        finally:
            if hashing is not None and not hashing.done():
                hashing.cancel()
        if self._size is not None and total != self._size:
            raise self._fail(f"{total} bytes, the descriptor says {self._size}")
        if verifier is not None:
            mismatch = verifier.mismatch()
            if mismatch is not None:
                raise self._fail(f"the bytes are {mismatch}")
        if held is not None:
            yield held
            note(len(held))


class BlobUploads:
    """Blob writes into the registry of ``session``."""

    def __init__(self, session: RegistrySession) -> None:
        self._session = session

    async def _start(self, repository: str, digest: str, *, mount_from: str | None = None) -> str | None:
        """POST an upload session; its location, or None when the POST mounted the blob (201)."""
        session = self._session
        scopes = [repository_scope(repository, "pull", "push")]
        params: dict[str, str] | None = None
        if mount_from is not None:
            scopes.append(repository_scope(mount_from, "pull"))
            params = {"mount": digest, "from": mount_from}
        reply = await session.request(
            "POST",
            f"/v2/{repository}/blobs/uploads/",
            scopes=scopes,
            what="start blob upload",
            ok=(201, 202),
            repository=repository,
            digest=digest,
            params=params,
            headers={"Content-Length": "0"},
        )
        assert reply is not None
        if reply.status == 201:
            if mount_from is not None:
                return None
            raise RegistryError(
                "registry answered 201 to an upload without mount", registry=session.name, repository=repository
            )
        location = reply.headers.get("location")
        if not location:
            raise RegistryError(
                "upload session without a Location header", registry=session.name, repository=repository, digest=digest
            )
        minimum = reply.headers.get("oci-chunk-min-length", "")
        session.chunk_min = int(minimum) if minimum.isdigit() else 0
        return urljoin(str(reply.url), str(location))

    async def _cancel(self, location: str, repository: str, digest: str) -> None:
        """Best effort: DELETE an upload session that will not be completed (no retry; errors ignored)."""
        session = self._session
        with contextlib.suppress(ReconcilerError):
            async with session.slot(), session.guarded("cancel upload", repository=repository, digest=digest):
                response = await session.exchange(
                    "DELETE",
                    location,
                    scopes=[repository_scope(repository, "pull", "push")],
                    what="cancel upload",
                    repository=repository,
                    digest=digest,
                )
                await response.aclose()

    async def mount_blob(self, repository: str, digest: str, from_repository: str) -> bool:
        """True when mounted (201); False when the registry declined (its upload session is cancelled)."""
        location = await self._start(repository, digest, mount_from=from_repository)
        if location is None:
            return True
        await self._cancel(location, repository, digest)
        return False

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
        """See ``reconciler.model.store.ImageStore.upload_blob``; ``chunked`` forces PATCH uploads."""
        if not is_valid_digest(digest):
            raise ValueError(f"not a digest: {digest!r}")
        if isinstance(content, bytes):
            size = len(content) if size is None or size < 0 else size
        session = self._session
        sent_total = 0

        def note(count: int) -> None:
            nonlocal sent_total
            sent_total += count
            session.stats.bytes_uploaded += count
            if progress is not None:
                progress(count)

        mount = mount_from

        async def attempt() -> UploadOutcome:
            nonlocal mount
            if sent_total:
                note(-sent_total)  # a retry starts over: rewind the progress of the failed attempt
            started = await self._start(repository, digest, mount_from=mount)
            if started is None:
                return "mounted"
            location: str = started
            mount = None  # declined once: a retry uploads directly
            try:
                if not chunked:
                    try:
                        await self._put_monolithic(
                            location=location, repository=repository, digest=digest, content=content, size=size,
                            note=note, verify=verify,
                        )  # fmt: skip
                        return "uploaded"
                    except RegistryError as exc:
                        if exc.status not in (400, 413, 415) or isinstance(exc, DigestMismatchError):
                            raise
                        log.info("monolithic upload refused by %s (%s): chunked", session.name, exc.status)
                        if sent_total:
                            note(-sent_total)
                        await self._cancel(location, repository, digest)
                        restarted = await self._start(repository, digest)
                        assert restarted is not None
                        location = restarted
                await self._put_chunked(
                    location=location, repository=repository, digest=digest, content=content, size=size, note=note,
                    verify=verify, chunk_size=chunk_size,
                )  # fmt: skip
                return "uploaded"
            except BaseException:
                await asyncio.shield(self._cancel(location, repository, digest))
                raise

        return await with_retries(session.retry, attempt, what=f"upload blob {digest} to {session.name}/{repository}")

    @asynccontextmanager
    async def _open(self, content: bytes | BlobOpener) -> AsyncIterator[AsyncIterator[bytes]]:
        if isinstance(content, bytes):

            async def once() -> AsyncIterator[bytes]:
                for start in range(0, len(content), STREAM_CHUNK_BYTES):
                    yield content[start : start + STREAM_CHUNK_BYTES]

            yield once()
        else:
            async with content() as chunks:
                yield chunks

    def _pipe(self, repository: str, digest: str, size: int | None, verify: bool) -> UploadPipe:
        return UploadPipe(registry=self._session.name, repository=repository, digest=digest, size=size, verify=verify)

    async def _put_monolithic(
        self,
        *,
        location: str,
        repository: str,
        digest: str,
        content: bytes | BlobOpener,
        size: int | None,
        note: ByteProgress,
        verify: bool,
    ) -> None:
        session = self._session
        what = "PUT blob"
        headers = {"Content-Type": "application/octet-stream"}
        if size is not None and size >= 0:
            headers["Content-Length"] = str(size)
        url = _with_query(location, "digest", digest)
        scopes = [repository_scope(repository, "pull", "push")]
        if isinstance(content, bytes):
            # Already in memory (a small blob): checked here, then sent with its headers in one write.
            if verify:
                mismatch = DigestVerifier.check(content, digest, size)
            elif size is not None and size >= 0 and size != len(content):
                mismatch = f"{len(content)} bytes, the descriptor says {size}"
            else:
                mismatch = None
            if mismatch is not None:
                raise DigestMismatchError(
                    f"the content is {mismatch}; upload aborted",
                    registry=session.name,
                    repository=repository,
                    digest=digest,
                )
            reply = await session.request(
                "PUT", url, scopes=scopes, what=what, ok=(201, 204), repository=repository, digest=digest,
                headers=headers, content=content, retry=False,
            )  # fmt: skip
            assert reply is not None
            self._check_stored(reply.headers.get("docker-content-digest"), repository, digest)
            note(len(content))
            return
        pipe = self._pipe(repository, digest, size, verify)
        async with self._open(content) as chunks, session.slot():
            try:
                async with session.guarded(what, repository=repository, digest=digest, size=size or 0):
                    response = await session.exchange(
                        "PUT", url, scopes=scopes, what=what, repository=repository, digest=digest,
                        headers=headers, content=pipe.body(chunks, note), replayable=False,
                    )  # fmt: skip
                    try:
                        if response.status_code not in (201, 204):
                            raise await session.error(response, what, repository=repository, digest=digest)
                        stored = response.headers.get("docker-content-digest")
                    finally:
                        await response.aclose()
            except ReconcilerError:
                if pipe.failure is not None:
                    raise pipe.failure from None
                raise
        self._check_stored(stored, repository, digest)

    def _check_stored(self, stored: str | None, repository: str, digest: str) -> None:
        same_algorithm = stored is not None and stored.split(":", 1)[0] == digest.split(":", 1)[0]
        if stored and is_valid_digest(stored) and same_algorithm and stored != digest:
            raise DigestMismatchError(
                f"registry stored the blob as {stored}",
                registry=self._session.name,
                repository=repository,
                digest=digest,
            )

    async def _put_chunked(
        self,
        *,
        location: str,
        repository: str,
        digest: str,
        content: bytes | BlobOpener,
        size: int | None,
        note: ByteProgress,
        verify: bool,
        chunk_size: int,
    ) -> None:
        session = self._session
        scopes = [repository_scope(repository, "pull", "push")]
        piece = max(min(chunk_size, MAX_PATCH_CHUNK_BYTES), session.chunk_min)
        offset = 0

        async def patch(data: bytes) -> None:
            nonlocal location, offset
            reply = await session.request(
                "PATCH",
                location,
                scopes=scopes,
                what="PATCH blob chunk",
                ok=(202, 204),
                repository=repository,
                digest=digest,
                content=data,
                headers={
                    "Content-Type": "application/octet-stream",
                    "Content-Range": f"{offset}-{offset + len(data) - 1}",
                    "Content-Length": str(len(data)),
                },
                retry=False,
            )
            assert reply is not None
            offset += len(data)
            note(len(data))
            next_location = reply.headers.get("location")
            if next_location:
                location = urljoin(str(reply.url), next_location)

        def uncounted(_: int) -> None:
            return None  # bytes are counted per PATCH above, not per chunk read

        pipe = self._pipe(repository, digest, size, verify)
        async with self._open(content) as chunks:
            buffer = bytearray()
            async for chunk in pipe.body(chunks, uncounted):
                buffer += chunk
                while len(buffer) >= piece:
                    await patch(bytes(buffer[:piece]))
                    del buffer[:piece]
            if buffer:
                await patch(bytes(buffer))
        reply = await session.request(
            "PUT",
            _with_query(location, "digest", digest),
            scopes=scopes,
            what="PUT blob (close upload)",
            ok=(201, 204),
            repository=repository,
            digest=digest,
            headers={"Content-Length": "0"},
            retry=False,
        )
        assert reply is not None
        self._check_stored(reply.headers.get("docker-content-digest"), repository, digest)
