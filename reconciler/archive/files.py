"""File mechanics of the archive: paths, atomic replacement, the writer lock, OS error mapping.

Everything the layout writes lands the same way: into a temporary file under the layout's private
``.reconciler/incoming/`` directory (the same file system, so the final ``rename`` is atomic), ``fsync``-ed,
renamed to its final name, and the directory ``fsync``-ed. So a blob is either complete under
``blobs/<alg>/<hex>`` or absent, whatever moment a process is killed at, and ``index.json`` is always one
whole version. Temporary files left by a killed writer are ignored by readers and removed by the next
writer (which holds the lock, so they cannot be anyone's work in progress). Streaming blobs in and out
is ``streams``' job; this module's functions block and run in worker threads.

This module never parses JSON or manifests (``layout`` does), never leaves a partially written file
under a final name, and never writes outside the layout directory.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import fcntl
import os
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from reconciler.errors import ArchiveError
from reconciler.model.digest import Digest, DigestVerifier

PRIVATE_DIR = ".reconciler"
"""The layout's own bookkeeping (lock file, temporary files); not part of the OCI layout, never exported."""
TMP_DIR = f"{PRIVATE_DIR}/incoming"
"""Where files are written before they are renamed into place (same file system: the rename is atomic)."""
LOCK_FILE = f"{PRIVATE_DIR}/lock"

BLOCK_BYTES = 256 * 1024
"""Bytes per read of a blob file. Measured (bench/archive_copy.py, 5 layers in parallel): 1 MiB blocks
peak at ~63 MiB RSS, 256 KiB at ~41 MiB for the same wall time; 128 KiB saves nothing more."""

_ERRNO_HINTS = {
    errno.ENOSPC: "no space left on the archive's file system; free space or grow the volume, then run again",
    errno.EDQUOT: "disk quota exceeded on the archive's file system; raise the quota, then run again",
    errno.EROFS: "the archive's file system is read-only; mount it read-write to archive (reading still works)",
    errno.EACCES: "permission denied; the reconciler's user needs write access to the archive directory",
    errno.EPERM: "operation not permitted (immutable file or directory?); check `lsattr` and the mount options",
    errno.EIO: "I/O error; check the disk (dmesg) before trusting this archive",
}


class ContentMismatch(Exception):  # noqa: N818 - internal signal, mapped to DigestMismatchError by the layout
    """Bytes did not hash to (or were not the size of) the digest that named them; ``detail`` says how."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def describe_os_error(exc: OSError) -> str:
    """One line a person can act on: what failed, at which path, and what to do."""
    where = f" ({exc.filename})" if exc.filename else ""
    hint = _ERRNO_HINTS.get(exc.errno or 0)
    return f"{hint}{where}" if hint else f"{exc.strerror or exc}{where}"


@contextlib.contextmanager
def os_errors(store: str, what: str) -> Iterator[None]:
    """The archive's one mapping of ``OSError`` to ``ArchiveError``: ``<store>: <what>: <reason and hint>``."""
    try:
        yield
    except OSError as exc:
        raise ArchiveError(f"{store}: {what}: {describe_os_error(exc)}") from exc


def blob_path(root: Path, digest: Digest) -> Path:
    return root / "blobs" / digest.algorithm / digest.hex


def fsync_directory(path: Path) -> None:
    """Make a rename or unlink in ``path`` durable (the directory entry, not just the file's data)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def open_temp(tmp_dir: Path, prefix: str) -> tuple[int, Path]:
    tmp_dir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=prefix, dir=tmp_dir)
    return fd, Path(name)


def write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def commit(fd: int, temp: Path, target: Path) -> None:
    """fsync, close, rename into place, fsync the directory: the last step of every write. Owns ``fd``
    and ``temp`` from here on: on failure it closes and removes them itself."""
    try:
        os.fsync(fd)
    except BaseException:
        discard(fd, temp)
        raise
    os.close(fd)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(temp, target)
        fsync_directory(target.parent)
    except BaseException:
        discard(None, temp)
        raise


def discard(fd: int | None, temp: Path) -> None:
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)
    with contextlib.suppress(OSError):
        temp.unlink()


def replace_file(root: Path, target: Path, content: bytes) -> None:
    """Atomically make ``target`` hold exactly ``content`` (blocking; callers run it in a thread)."""
    fd, temp = open_temp(root / TMP_DIR, f"{target.name}-")
    try:
        write_all(fd, content)
    except BaseException:
        discard(fd, temp)
        raise
    commit(fd, temp, target)


def remove_stale_temps(root: Path) -> int:
    """Delete what killed writers left in the private temp directory; only under the writer lock."""
    removed = 0
    with contextlib.suppress(FileNotFoundError), os.scandir(root / TMP_DIR) as found:
        for item in found:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(item.path)
                removed += 1
    return removed


def read_limited(path: Path, limit: int) -> bytes:
    """The whole file when it is at most ``limit`` bytes; ``ContentMismatch`` (too large) otherwise."""
    with path.open("rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size > limit:
            raise ContentMismatch(f"{size} bytes, more than the {limit} byte limit")
        content = handle.read(limit + 1)
    if len(content) > limit:
        raise ContentMismatch(f"more than the {limit} byte limit")
    return content


def holds_exactly(path: Path, content: bytes) -> bool:
    """True when the file at ``path`` exists and holds exactly ``content`` (a small file: a manifest)."""
    try:
        return read_limited(path, len(content)) == content
    except (FileNotFoundError, ContentMismatch):
        return False


def hash_file(path: Path, digest: Digest, size: int | None) -> str | None:
    """Re-hash a blob file (blocking): None when it is exactly the content ``digest`` and ``size`` name."""
    verifier = DigestVerifier(digest, size)
    with path.open("rb", buffering=0) as handle:
        while chunk := handle.read(BLOCK_BYTES):
            verifier.update(chunk)
    return verifier.mismatch()


class LockBusy(Exception):  # noqa: N818 - internal signal, mapped to ArchiveError by the layout
    """Another writer held the layout's lock for longer than we were willing to wait."""

    def __init__(self, holder: str) -> None:
        super().__init__(holder)
        self.holder = holder


class WriterLock:
    """An exclusive ``flock`` on ``.reconciler/lock``: one writer per layout at a time, across processes.

    The holder writes who it is (pid, host, since when) into the file, so a waiting writer can say whom
    it waits for. The kernel drops the lock when the holder exits, however it exits (kill -9 included)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, timeout: float) -> None:
        """Take the lock, waiting up to ``timeout`` seconds (blocking; callers run it in a thread)."""
        if self._fd is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        deadline = time.monotonic() + max(timeout, 0.0)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 512, 0).decode(errors="replace").strip() or "unknown holder"
                    os.close(fd)
                    raise LockBusy(holder) from None
                time.sleep(0.05)
            except BaseException:
                os.close(fd)
                raise
        since = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()} since {since}\n".encode(), 0)
        except OSError:
            pass  # who holds it is a courtesy for the next writer's message, not a condition of holding it
        self._fd = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the last descriptor of the open file drops the flock
