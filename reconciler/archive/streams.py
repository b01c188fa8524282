"""Streaming blob I/O for the archive, off the event loop: ``write_blob`` in, ``BlobReader`` out.

Blocking calls run in this process's worker threads, one step behind the event loop, so a 500 MiB layer
neither stalls the loop nor sits in memory: a write holds at most two batches of about
``WRITE_BATCH_BYTES`` (the network's own chunks, written with ``writev``, never joined), a read two blocks
of ``BLOCK_BYTES``. Work is submitted to a ``concurrent.futures`` pool rather than ``asyncio.to_thread``
so that clean-up after a cancellation (close the file, remove the temporary) hangs on the work's own
future: it runs when the thread is done with the descriptor, even when the event loop has already ended.

A blob is committed (renamed into place by ``files.commit``) only after its stream ended without an error
and its bytes are the content its digest (and size) name. This module never holds a whole blob in
memory and never renames anything but a complete blob into ``blobs/``.
"""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from reconciler.archive.files import (
    BLOCK_BYTES,
    TMP_DIR,
    ContentMismatch,
    blob_path,
    commit,
    discard,
    open_temp,
    write_all,
)
from reconciler.model.digest import Digest, DigestVerifier
from reconciler.model.store import ByteProgress

_Result = TypeVar("_Result")

WRITE_BATCH_BYTES = 1024 * 1024
"""Received chunks are written (``writev``, no copy) once this many bytes are waiting: one hand-off to a
worker thread per MiB instead of per network chunk (each costs a GIL switch)."""
MAX_WRITE_CHUNKS = 64
"""``writev`` takes at most IOV_MAX (1024) buffers; tiny network reads flush a batch early."""

_pool: tuple[int, ThreadPoolExecutor] | None = None


def _io_pool() -> ThreadPoolExecutor:
    """This process's worker threads for blob I/O (a forked child makes its own)."""
    global _pool  # noqa: PLW0603 - one pool per process, created on first use
    if _pool is None or _pool[0] != os.getpid():
        _pool = (os.getpid(), ThreadPoolExecutor(max_workers=16, thread_name_prefix="archive-io"))
    return _pool[1]


def _submit(call: Callable[[], _Result]) -> Future[_Result]:
    return _io_pool().submit(call)


async def _in_thread(call: Callable[[], _Result], *, release: Callable[[Future[_Result]], None]) -> _Result:
    """``call()`` in a worker thread. When the caller is cancelled, ``release`` gets the work's future once
    it is done (or cancelled before it started), in whichever thread finishes it: clean-up that depends
    neither on the event loop still running nor on racing a thread that still uses the resource."""
    work = _submit(call)
    try:
        return await asyncio.wrap_future(work)
    except asyncio.CancelledError:
        work.add_done_callback(release)
        raise


def _close_opened(work: Future[tuple[int, Path]]) -> None:
    if not work.cancelled() and work.exception() is None:
        discard(*work.result())


def _write_chunks(fd: int, chunks: list[bytes]) -> None:
    """``writev`` the chunks as they came off the network (no joined copy); finish a short write by hand."""
    written = os.writev(fd, chunks)
    for chunk in chunks:
        if written >= len(chunk):
            written -= len(chunk)
            continue
        write_all(fd, memoryview(chunk)[written:])
        written = 0


async def write_blob(
    root: Path,
    digest: Digest,
    chunks: AsyncIterator[bytes],
    *,
    size: int | None,
    verify: bool = True,
    progress: ByteProgress | None = None,
) -> None:
    """Stream ``chunks`` into ``blobs/<alg>/<hex>``, committed (renamed into place) only after ``chunks``
    ended without an error and the bytes are exactly the content ``digest`` (and ``size``) name:
    ``ContentMismatch`` otherwise, and then nothing but a removed temporary file was ever on disk.

    With ``verify`` the bytes are hashed here. Without it only the size is checked: the caller vouches
    that ``chunks`` come from a verifying source (every ``ImageStore.stream_blob`` raises at its end on a
    mismatch, which aborts this write before the rename). Raises ``OSError`` as it comes."""
    if size is not None and size < 0:
        size = None  # a registry's "unknown"
    verifier = DigestVerifier(digest, size) if verify else None
    written = 0
    fd, temp = await _in_thread(functools.partial(open_temp, root / TMP_DIR, "blob-"), release=_close_opened)
    writing: Future[None] | None = None
    writing_bytes = 0
    handed_over = False

    def write_batch(batch: list[bytes]) -> None:
        nonlocal written
        if verifier is not None:
            for chunk in batch:
                verifier.update(chunk)  # hashlib releases the GIL on large buffers: hashing overlaps the loop
        _write_chunks(fd, batch)
        written += sum(len(chunk) for chunk in batch)

    async def settle() -> None:
        """Wait for the batch in flight (one at most) and report it written. A cancelled wait leaves
        ``writing`` set: the clean-up below then runs only once that thread is done with ``fd``."""
        nonlocal writing
        if writing is not None:
            await asyncio.shield(asyncio.wrap_future(writing))
            writing = None
            if progress is not None:
                progress(writing_bytes)

    async def submit(batch: list[bytes], batch_bytes: int) -> None:
        nonlocal writing, writing_bytes
        await settle()
        writing_bytes = batch_bytes
        writing = _submit(functools.partial(write_batch, batch))

    try:
        received = 0
        buffered: list[bytes] = []
        buffered_bytes = 0
        async for chunk in chunks:
            if not chunk:
                continue
            received += len(chunk)
            if size is not None and received > size:
                raise ContentMismatch(f"more than the {size} bytes the descriptor says; write aborted")
            buffered.append(chunk)
            buffered_bytes += len(chunk)
            if buffered_bytes >= WRITE_BATCH_BYTES or len(buffered) >= MAX_WRITE_CHUNKS:
                await submit(buffered, buffered_bytes)
                buffered, buffered_bytes = [], 0
        if buffered:
            await submit(buffered, buffered_bytes)
        await settle()
        if verifier is not None:
            mismatch = verifier.mismatch()
        elif size is not None and written != size:
            mismatch = f"{written} bytes received, the descriptor says {size}"
        else:
            mismatch = None
        if mismatch is not None:
            raise ContentMismatch(mismatch)
        handed_over = True  # from here on commit() owns fd and temp, also when it fails

        def never_started(work: Future[None]) -> None:
            if work.cancelled():
                discard(fd, temp)

        await _in_thread(functools.partial(commit, fd, temp, blob_path(root, digest)), release=never_started)
    finally:
        if not handed_over:
            if writing is not None:  # runs now, or when the thread writing to ``fd`` is done with it
                writing.add_done_callback(lambda _: discard(fd, temp))
            else:
                discard(fd, temp)


class BlobReader:
    """Async iterator over a blob file's bytes, read (and hashed) one block ahead in a worker thread.

    After the last block it raises ``ContentMismatch`` instead of finishing when the bytes are not the
    content the digest (and size) name. ``aclose`` closes the file once no read is in flight."""

    def __init__(self, fd: int, digest: Digest, size: int | None) -> None:
        self._fd = fd
        self._verifier = DigestVerifier(digest, size)
        self._next: Future[bytes] | None = None
        self._closed = False

    def _read(self) -> bytes:
        block = os.read(self._fd, BLOCK_BYTES)
        self._verifier.update(block)
        return block

    def __aiter__(self) -> BlobReader:
        return self

    async def __anext__(self) -> bytes:
        if self._closed:
            raise StopAsyncIteration
        if self._next is None:
            self._next = _submit(self._read)
        block = await asyncio.shield(asyncio.wrap_future(self._next))  # cancelled: the read stays in flight
        if not block:
            self._next = None
            mismatch = self._verifier.mismatch()
            await self.aclose()
            if mismatch is not None:
                raise ContentMismatch(mismatch)
            raise StopAsyncIteration
        self._next = _submit(self._read)
        return block

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        reading, self._next = self._next, None
        if reading is None:
            os.close(self._fd)
        else:  # runs now, or when the read in flight is done with the descriptor
            reading.add_done_callback(lambda _: os.close(self._fd))


async def open_blob(path: Path, digest: Digest, size: int | None) -> BlobReader:
    """A ``BlobReader`` of ``path``; ``FileNotFoundError`` when the blob is absent."""

    def close_opened(work: Future[int]) -> None:
        if not work.cancelled() and work.exception() is None:
            os.close(work.result())

    fd = await _in_thread(functools.partial(os.open, path, os.O_RDONLY | os.O_CLOEXEC), release=close_opened)
    return BlobReader(fd, digest, size)
