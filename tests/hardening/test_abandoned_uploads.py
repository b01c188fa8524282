"""A copy abandoned because of its SOURCE leaves no upload session open in the target registry.

What used to happen: a source serving a blob longer than its descriptor, or with bytes that do not match
its digest, was caught (nothing completed in the target), but the monolithic PUT had already streamed most
of the blob into an upload session, and distribution 2.8 refuses to cancel a session whose ``_state`` no
longer matches what it wrote ("upload resumed at wrong offest", and the DELETE leaves the files): the
partial blob stayed in the target's ``_uploads`` directory, filling its disk until the registry's upload
purging (a week, by default) removed it. Now a streamed blob is sent as one PATCH of everything but its
last bytes, which are held back until the source is verified; the session's fresh ``_state`` from that
PATCH cancels it cleanly when the source turns out wrong.

The target is a real registry (its storage directory is inspected); the source is the fake registry on a
socket, serving the wrong bytes.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from support.fakeregistry import FakeRegistry, Wire, image_manifest, sha256
from support.httpserver import LoopbackServer, Response

from reconciler.exitcodes import ExitCode
from reconciler.model.store import BlobOpener
from testkit.localregistry import LocalRegistry

from .kit import assert_no_traceback, cli_env, run

pytestmark = pytest.mark.registry

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
LAYER = bytes(range(256)) * (6 * 1024)  # 1.5 MiB: streamed (the copier reads blobs up to 256 KiB whole)
CONFIG = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'


@pytest.fixture
def source() -> Iterator[tuple[FakeRegistry, LoopbackServer]]:
    fake = FakeRegistry()
    for blob in (CONFIG, LAYER):
        fake.blobs[sha256(blob)] = blob
    fake.add_manifest("src/app", image_manifest(CONFIG, [LAYER]), OCI_MANIFEST, "v1")
    server = fake.serve()
    try:
        yield fake, server
    finally:
        server.stop()


def _open_sessions(registry: LocalRegistry, repository: str) -> list[str]:
    """Upload sessions still holding something in the registry's ``_uploads``: their data or start time.
    (distribution 2.8 writes a ~100-byte hash state back into ``_uploads/<id>/hashstates`` right after it
    cancels a session, the Close that follows its Cancel; even a declined mount leaves one. Those are the
    registry's own, not open sessions.)"""
    directory = registry.storage_dir / "docker/registry/v2/repositories" / repository / "_uploads"
    if not directory.exists():
        return []
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*") if p.name in ("data", "startedat"))


@pytest.mark.parametrize(
    ("served", "blame"),
    [
        (LAYER + b"and then some more bytes than the descriptor says" * 1000, "more than the"),
        (LAYER[:-1] + b"\x00", "source served"),
    ],
    ids=["longer-than-its-descriptor", "bytes-not-matching-the-digest"],
)
def test_an_abandoned_copy_leaves_the_targets_uploads_empty(
    source: tuple[FakeRegistry, LoopbackServer], registry: LocalRegistry, tmp_path: Path, served: bytes, blame: str
) -> None:
    fake, server = source
    fake.serve_blob[sha256(LAYER)] = served
    result = run(["copy", f"{server.host}/src/app:v1", f"{registry.host}/dst/app"], env=cli_env(tmp_path))
    assert_no_traceback(result)
    assert result.code == ExitCode.FAILURE, str(result)
    error = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1, str(result)
    assert f"{server.host}/src/app@{sha256(LAYER)}" in error[0], "the error must blame the source and its blob"
    assert blame in error[0], str(result)
    assert _open_sessions(registry, "dst/app") == [], "an upload session was left open in the target"
    assert registry.request_log(), "the target was not even contacted"


def _opener(data: bytes) -> BlobOpener:
    @asynccontextmanager
    async def opened() -> AsyncIterator[AsyncIterator[bytes]]:
        async def chunks() -> AsyncIterator[bytes]:
            for start in range(0, len(data), 64 * 1024):
                yield data[start : start + 64 * 1024]

        yield chunks()

    return opened


def test_a_registry_without_patch_still_takes_streamed_blobs_in_one_put() -> None:
    """The split upload needs PATCH; a registry answering 405 to it gets the blob as one streaming PUT."""
    fake = FakeRegistry()
    fake.faults.append(lambda request: Response(405) if request.method == "PATCH" else None)
    data = bytes(range(256)) * 4096  # 1 MiB, streamed
    with Wire("socket") as wire:

        async def upload() -> str:
            async with wire.client(fake) as client:
                return await client.upload_blob("app", sha256(data), _opener(data), size=len(data))

        assert asyncio.run(upload()) == "uploaded"
    assert fake.blobs[sha256(data)] == data
    assert [method for method, _ in fake.requests] == ["POST", "PATCH", "DELETE", "POST", "PUT"]
