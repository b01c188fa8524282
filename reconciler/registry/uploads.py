"""Blob uploads: cross-repository mount, monolithic upload, split upload, chunked upload.

``BlobUploads`` writes blobs into one registry through its ``RegistrySession``. A mount is tried first when
the caller names a repository of the same registry; when the registry declines (202), the session it
opened is used for the upload. Then, by how the bytes are held:

* in memory (a config, a small layer): checked against digest and size, then one PUT;
* streamed, larger than ``STREAM_TAIL_BYTES``: the SPLIT upload, one PATCH of everything but the last
  ``STREAM_TAIL_BYTES``, then the closing PUT with those, sent only once the whole source was read and
  verified (``reconciler.registry.pipe.SplitSource``). Why not one streaming PUT: when the source turns out
  wrong mid-stream, a PUT is cut after the registry wrote part of it, and distribution 2.8 cannot cancel
  such a session (its ``_state`` no longer matches what it wrote: "upload resumed at wrong offset", and the
  DELETE leaves the files in ``_uploads`` until upload purging, a week later, filling the registry's disk).
  After a complete PATCH the session's fresh ``_state`` cancels it cleanly. One request more per streamed
  blob, nothing per small one; a registry that refuses the PATCH (405, 416, 501) gets one streaming PUT;
* streamed, size unknown or small: one streaming PUT through ``UploadPipe`` (last block held back);
* chunked (asked for, or the registry refused the above with 400/413/415): PATCHes of
  ``max(chunk_size, OCI-Chunk-Min-Length)``.

An upload that fails after its session was opened cancels the session (DELETE) with the session's latest
location (each PATCH answer refreshes it), so an abandoned copy leaves nothing in the registry's
``_uploads``, except when the registry itself failed mid-write (a full disk, a dropped connection): then
only its upload purging reclaims the partial data.

It never deletes a stored blob and never sends a byte it has not counted into the verifier.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote, urljoin

from reconciler.errors import DigestMismatchError, ReconcilerError, RegistryError
from reconciler.model.digest import DigestVerifier, is_valid_digest
from reconciler.model.store import BlobOpener, ByteProgress, UploadOutcome
from reconciler.registry.auth import repository_scope
from reconciler.registry.pipe import SplitSource, UploadPipe
from reconciler.registry.retry import with_retries
from reconciler.registry.session import RegistrySession

if TYPE_CHECKING:
    import httpx

    from reconciler.registry.reply import Reply

log = logging.getLogger(__name__)

STREAM_CHUNK_BYTES = 1024 * 1024
"""Bytes per piece when an in-memory blob is streamed."""
STREAM_TAIL_BYTES = 256 * 1024
"""The last bytes of a streamed blob, held back until the whole source is verified (the split upload)."""
BODY_REFUSED = frozenset({400, 413, 415})
"""Statuses of a registry (or proxy) refusing a large request body: the upload starts over, chunked."""
PATCH_REFUSED = frozenset({405, 416, 501})
"""Statuses of a registry that does not take the split upload's PATCH: it starts over as one streaming PUT."""
DEFAULT_PATCH_CHUNK_BYTES = 8 * 1024 * 1024
"""Bytes per PATCH of a chunked upload (raised to the registry's ``OCI-Chunk-Min-Length``)."""
MAX_PATCH_CHUNK_BYTES = 32 * 1024 * 1024


@dataclass(slots=True)
class _Location:
    """Where an upload session is now: the registry hands a fresh location (and ``_state``) with every
    PATCH answer, and only the latest one can cancel the session."""

    url: str

    def follow(self, answer: httpx.Response | Reply) -> None:
        """Take the fresh location a PATCH answer hands out (relative to the URL that answered)."""
        moved = answer.headers.get("location")
        if moved:
            self.url = urljoin(str(answer.url), moved)


def _with_query(url: str, name: str, value: str) -> str:
    """``url`` with ``name=value`` added to its query (upload locations carry their own state parameters)."""
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}{quote(name, safe='')}={quote(value, safe='')}"


class BlobUploads:
    """Blob writes into the registry of ``session``."""

    def __init__(self, session: RegistrySession) -> None:
        self._session = session

    async def _start(
        self, repository: str, digest: str, *, mount_from: str | None = None, retry: bool = True
    ) -> str | None:
        """POST an upload session; its location, or None when the POST mounted the blob (201). ``retry``
        False inside ``upload_blob``, whose own retry starts the attempt over (retrying here as well would
        multiply the attempts: 5 x 5 POSTs per blob to a registry that answers 500)."""
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
            retry=retry,
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
            started = await self._start(repository, digest, mount_from=mount, retry=False)
            if started is None:
                return "mounted"
            location = _Location(started)
            mount = None  # declined once: a retry uploads directly

            async def start_over(exc: RegistryError, then: str) -> None:
                log.info("upload refused by %s (%s): %s", session.name, exc.status, then)
                if sent_total:
                    note(-sent_total)
                await self._cancel(location.url, repository, digest)
                restarted = await self._start(repository, digest, retry=False)
                assert restarted is not None
                location.url = restarted

            try:
                split = not chunked
                while not chunked:
                    try:
                        await self._put_monolithic(
                            location=location, repository=repository, digest=digest, content=content, size=size,
                            note=note, verify=verify, split=split,
                        )  # fmt: skip
                        return "uploaded"
                    except RegistryError as exc:
                        if isinstance(exc, DigestMismatchError):
                            raise
                        if split and exc.status in PATCH_REFUSED:  # a registry without PATCH: one streaming PUT
                            await start_over(exc, "one streaming PUT")
                            split = False
                            continue
                        if exc.status not in BODY_REFUSED:
                            raise
                        await start_over(exc, "chunked")
                        break
                await self._put_chunked(
                    location=location, repository=repository, digest=digest, content=content, size=size, note=note,
                    verify=verify, chunk_size=chunk_size,
                )  # fmt: skip
                return "uploaded"
            except BaseException:
                await asyncio.shield(self._cancel(location.url, repository, digest))
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
        location: _Location,
        repository: str,
        digest: str,
        content: bytes | BlobOpener,
        size: int | None,
        note: ByteProgress,
        verify: bool,
        split: bool = True,
    ) -> None:
        """One PUT of the whole blob, or (``split``, a streamed blob large enough) the split upload."""
        session = self._session
        if (
            split
            and not isinstance(content, bytes)
            and size is not None
            and size - STREAM_TAIL_BYTES >= max(1, session.chunk_min)
        ):
            await self._put_split(
                location=location, repository=repository, digest=digest, content=content, size=size, note=note,
                verify=verify,
            )  # fmt: skip
            return
        what = "PUT blob"
        headers = {"Content-Type": "application/octet-stream"}
        if size is not None and size >= 0:
            headers["Content-Length"] = str(size)
        url = _with_query(location.url, "digest", digest)
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

    async def _put_split(
        self,
        *,
        location: _Location,
        repository: str,
        digest: str,
        content: BlobOpener,
        size: int,
        note: ByteProgress,
        verify: bool,
    ) -> None:
        """One PATCH of all but the last ``STREAM_TAIL_BYTES``, then the closing PUT with those once the
        whole source was read and verified (see the module docstring)."""
        session = self._session
        scopes = [repository_scope(repository, "pull", "push")]
        head_size = size - STREAM_TAIL_BYTES
        what = "PATCH blob"
        async with self._open(content) as chunks:
            source = SplitSource(
                chunks, registry=session.name, repository=repository, digest=digest, size=size, head_size=head_size,
                verify=verify,
            )  # fmt: skip
            headers = {
                "Content-Type": "application/octet-stream",
                "Content-Range": f"0-{head_size - 1}",
                "Content-Length": str(head_size),
            }
            async with session.slot(), session.guarded(what, repository=repository, digest=digest, size=head_size):
                response = await session.exchange(
                    "PATCH", location.url, scopes=scopes, what=what, repository=repository, digest=digest,
                    headers=headers, content=source.head(note), replayable=False,
                )  # fmt: skip
                try:
                    if response.status_code not in (202, 204):
                        raise await session.error(response, what, repository=repository, digest=digest)
                    location.follow(response)
                finally:
                    await response.aclose()
            tail = await source.tail()
        await self._close(location, repository, digest, tail)
        note(len(tail))

    async def _close(self, location: _Location, repository: str, digest: str, body: bytes = b"") -> None:
        """The PUT that completes an upload session (with the last bytes, if any), and the stored digest checked."""
        reply = await self._session.request(
            "PUT", _with_query(location.url, "digest", digest), scopes=[repository_scope(repository, "pull", "push")],
            what="PUT blob (close upload)", ok=(201, 204), repository=repository, digest=digest, content=body,
            retry=False, headers={"Content-Type": "application/octet-stream", "Content-Length": str(len(body))},
        )  # fmt: skip
        assert reply is not None
        self._check_stored(reply.headers.get("docker-content-digest"), repository, digest)

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
        location: _Location,
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
            nonlocal offset
            reply = await session.request(
                "PATCH",
                location.url,
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
            location.follow(reply)

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
        await self._close(location, repository, digest)
