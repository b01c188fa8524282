"""Helpers of the archive tests: write images through the store, copy with the copier, damage files."""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest

from reconciler.archive import OciLayout
from reconciler.registry import Copier, CopyReport, RegistryClient
from testkit.imagegen import GeneratedImage

TAG = "20261127_01"
T = TypeVar("T")
MountTmpfs = Callable[..., Path]
"""The ``tmpfs`` fixture: ``tmpfs(size="2m")`` mounts a fresh tmpfs and returns its path."""


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


async def put_image(layout: OciLayout, image: GeneratedImage, repository: str, tag: str | None) -> None:
    """Write ``image`` through the ImageStore methods in the copier's order: blobs, children, top (by tag)."""
    for blob in image.blobs.values():
        await layout.upload_blob(repository, blob.digest, blob.read_bytes(), size=blob.size)
    for child in image.children:
        await layout.put_manifest(repository, child.digest, child.raw, child.media_type)
    await layout.put_manifest(repository, tag or image.digest, image.raw, image.media_type)


async def archive_from(registry_url: str, layout: OciLayout, repository: str, tag: str) -> CopyReport:
    """Copy ``repository:tag`` of the registry into the layout under the same name, with the copier."""
    async with RegistryClient(url=registry_url) as client:
        return await Copier().copy(
            source=client,
            source_repository=repository,
            reference=tag,
            target=layout,
            target_repository=repository,
            tag=tag,
        )


async def restore_to(
    layout: OciLayout, repository: str, tag: str, registry_url: str, target_repository: str
) -> CopyReport:
    async with RegistryClient(url=registry_url) as client:
        return await Copier().copy(
            source=layout,
            source_repository=repository,
            reference=tag,
            target=client,
            target_repository=target_repository,
            tag=tag,
        )


def blob_file(root: Path, digest: str) -> Path:
    algorithm, hex_digest = digest.split(":", 1)
    return root / "blobs" / algorithm / hex_digest


def corrupt(path: Path, offset: int = 0) -> None:
    """Flip one byte of ``path`` in place (same size: only the hash can tell)."""
    with path.open("r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ 0xFF]))


def bad_blob_files(root: Path) -> list[str]:
    """Files under ``blobs/`` whose bytes do not hash to their name: must always be [] (no partial blob)."""
    bad = []
    for algorithm_dir in (root / "blobs").glob("*"):
        for path in algorithm_dir.iterdir():
            digest = hashlib.new(algorithm_dir.name, path.read_bytes()).hexdigest()
            if digest != path.name:
                bad.append(str(path))
    return bad


def remount_read_only(path: Path) -> None:
    result = subprocess.run(["mount", "-o", "remount,ro", str(path)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        pytest.fail(f"cannot remount {path} read-only: {result.stderr.strip()}", pytrace=False)


async def incoming_after_settling(root: Path, timeout: float = 5.0) -> list[Path]:
    """The private temp directory once in-flight writes have settled. A failed copy's sibling transfers
    outlive it (the copier shields them for other waiters) and are cancelled at the loop's end; their
    temporary files go when the worker thread finishes its current batch, a moment later."""
    directory = root / ".reconciler" / "incoming"
    deadline = time.monotonic() + timeout
    while True:
        left = list(directory.iterdir()) if directory.exists() else []
        if not left or time.monotonic() > deadline:
            return left
        await asyncio.sleep(0.01)
