"""The bytes of a blob upload on their way from a source to a registry: counted, hashed, held back.

``UploadPipe`` forwards a stream into ONE request body (the monolithic PUT), hashing it with the project's
one ``DigestVerifier`` in a worker thread, one block behind the network, and holds the LAST block back
until the hash (and the size) is known good, so a blob whose bytes are wrong never completes.

``SplitSource`` serves the split upload (``reconciler.registry.uploads``): the first ``size - tail`` bytes
as one request body (a PATCH), then the rest read to the end and verified BEFORE any of it is sent. A
source found wrong after the PATCH (longer than its descriptor, a bad digest) therefore leaves a cleanly
written upload session, which the registry lets its client cancel. No I/O of its own beyond the stream.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from reconciler.errors import DigestMismatchError
from reconciler.model.digest import DigestVerifier
from reconciler.model.store import ByteProgress

UPLOAD_WRITE_BYTES = 256 * 1024
"""Streamed uploads are written in pieces of about this size (memory per transfer: two of them)."""


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


class SplitSource:
    """A blob's stream cut in two for the split upload: ``head()`` yields exactly the first ``head_size``
    bytes (a request body of known length), then ``tail()`` reads the rest to the end, checks size and
    digest, and returns the last bytes to send. Every failure is a ``DigestMismatchError`` naming the
    target (the copier's own source checks, which blame the source, come first when it is a registry).

    Not built on ``UploadPipe``: the pipe holds its last block back until the END of the stream, so a
    source found wrong would fail in the middle of the PATCH, and distribution 2.8 cannot cancel a session
    whose PATCH did not finish (tests/hardening/test_abandoned_uploads.py). The head must be sent whole
    first, and only the tail waits for the verdict."""

    def __init__(
        self,
        chunks: AsyncIterator[bytes],
        *,
        registry: str,
        repository: str,
        digest: str,
        size: int,
        head_size: int,
        verify: bool,
    ) -> None:
        self._chunks = chunks
        self._where = {"registry": registry, "repository": repository, "digest": digest}
        self._verifier = DigestVerifier(digest, size) if verify else None
        self._size = size
        self._head_size = head_size
        self._rest = bytearray()
        self._received = 0

    def _fail(self, message: str) -> DigestMismatchError:
        return DigestMismatchError(f"{message}; upload aborted", **self._where)  # type: ignore[arg-type]

    async def _hash(self, piece: bytes) -> None:
        if self._verifier is not None:
            await asyncio.to_thread(self._verifier.update, piece)

    async def head(self, note: ByteProgress) -> AsyncIterator[bytes]:
        sent = 0
        while sent < self._head_size:
            try:
                chunk = await anext(self._chunks)
            except StopAsyncIteration:
                raise self._fail(f"{sent} bytes, the descriptor says {self._size}") from None
            self._received += len(chunk)
            piece = chunk[: self._head_size - sent]
            self._rest += chunk[len(piece) :]
            await self._hash(piece)
            sent += len(piece)
            yield piece
            note(len(piece))

    async def tail(self) -> bytes:
        """The bytes after the head, once the whole stream was read and found to be the blob."""
        limit = self._size - self._head_size
        async for chunk in self._chunks:
            self._received += len(chunk)
            self._rest += chunk
            if len(self._rest) > limit:
                raise self._fail(f"more than the {self._size} bytes the descriptor says")
        if self._received != self._size:
            raise self._fail(f"{self._received} bytes, the descriptor says {self._size}")
        rest = bytes(self._rest)
        await self._hash(rest)
        if self._verifier is not None:
            mismatch = self._verifier.mismatch()
            if mismatch is not None:
                raise self._fail(f"the bytes are {mismatch}")
        return rest
