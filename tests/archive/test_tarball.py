"""Export to and import from ``oci-archive`` tarballs; skopeo reads what we write and we read what it writes."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
from support.skopeo import Skopeo

from reconciler.archive import SOURCE_REGISTRY, OciLayout, export, import_archive, provenance
from reconciler.errors import ArchiveError
from testkit.imagegen import GeneratedImage, image_for
from testkit.imagepush import push_image
from testkit.localregistry import LocalRegistry

from .helpers import TAG, blob_file, corrupt, put_image, run

REPO = "p/payments/api"
API = f"{REPO}:{TAG}"
WEB = f"p/payments/web:{TAG}"
OLD = f"{REPO}:20261126_01"


def seed(root: Path) -> dict[str, GeneratedImage]:
    images = {
        API: image_for("payments/api", TAG, fmt="oci", platforms=("linux/amd64", "linux/arm64")),
        WEB: image_for("payments/web", TAG, fmt="oci"),
        OLD: image_for("payments/api", "20261126_01"),
    }

    async def write() -> None:
        async with OciLayout(root) as layout:
            for name, image in images.items():
                repository, _ = name.rsplit(":", 1)
                await put_image(layout, image, repository, None)
                notes = provenance(source_registry="prod-a", source_repository=repository)
                await layout.add_entry(name, image.digest, annotations=notes)

    run(write())
    return images


def test_export_holds_only_the_chosen_entries_and_skopeo_reads_it(tmp_path: Path, skopeo: Skopeo) -> None:
    images = seed(tmp_path / "archive")
    tarball = tmp_path / "out" / "release.tar"
    tarball.parent.mkdir()

    report = run(export(OciLayout(tmp_path / "archive"), [API, WEB], to=tarball))

    assert report.entries == (API, WEB)
    with tarfile.open(tarball) as tar:
        names = tar.getnames()
        index = json.loads(tar.extractfile("index.json").read())  # type: ignore[union-attr]
    wanted = {images[API].digest, images[WEB].digest, *(c.digest for c in images[API].children)}
    wanted |= {b.digest for name in (API, WEB) for b in images[name].blobs.values()}
    assert sorted(n for n in names if n.startswith("blobs/sha256/")) == sorted(
        f"blobs/sha256/{d.split(':')[1]}" for d in wanted
    )
    assert [m["annotations"]["org.opencontainers.image.ref.name"] for m in index["manifests"]] == [API, WEB]
    assert images[OLD].digest.split(":")[1] not in " ".join(names)
    assert list(tarball.parent.iterdir()) == [tarball]  # no temporary left beside it
    assert skopeo.digest(f"oci-archive:{tarball}:{API}") == images[API].digest
    assert skopeo.digest(f"oci-archive:{tarball}:{WEB}") == images[WEB].digest


def test_import_brings_entries_back_with_their_annotations(tmp_path: Path) -> None:
    images = seed(tmp_path / "archive")
    tarball = tmp_path / "release.tar"
    run(export(OciLayout(tmp_path / "archive"), [API, OLD], to=tarball))

    async def scenario() -> None:
        async with OciLayout(tmp_path / "restored") as layout:
            report = await import_archive(tarball, into=layout)
            assert report.entries_added == (API, OLD)
            assert report.blobs_written == len(images[API].blobs) + len(images[OLD].blobs)
            entry = await layout.entry(API)
            assert entry is not None
            assert entry.digest == images[API].digest
            assert entry.annotations[SOURCE_REGISTRY] == "prod-a"
            assert (await layout.verify()).ok
            again = await import_archive(tarball, into=layout, names=[OLD])  # idempotent
            assert again.entries_added == (OLD,)
            assert again.blobs_written == 0

    run(scenario())


def test_export_refuses_a_corrupt_blob_and_writes_nothing(tmp_path: Path) -> None:
    images = seed(tmp_path / "archive")
    layer = next(iter(images[WEB].blobs.values()))
    corrupt(blob_file(tmp_path / "archive", layer.digest))
    tarball = tmp_path / "out" / "release.tar"
    tarball.parent.mkdir()

    with pytest.raises(ArchiveError, match=rf"export to .* aborted, nothing written: blob {layer.digest} is corrupt"):
        run(export(OciLayout(tmp_path / "archive"), [WEB], to=tarball))
    assert list(tarball.parent.iterdir()) == []
    with pytest.raises(ArchiveError, match="no such entry"):
        run(export(OciLayout(tmp_path / "archive"), ["p/none:20200101_01"], to=tarball))


def test_an_oci_archive_written_by_skopeo_imports(registry: LocalRegistry, skopeo: Skopeo, tmp_path: Path) -> None:
    image = image_for("payments/api", TAG, fmt="oci", platforms=("linux/amd64", "linux/arm64"))
    push_image(image, registry.url, REPO, TAG)
    tarball = tmp_path / "skopeo.tar"
    skopeo.copy(f"docker://{registry.host}/{REPO}:{TAG}", f"oci-archive:{tarball}:{API}")

    async def scenario() -> None:
        async with OciLayout(tmp_path / "archive") as layout:
            report = await import_archive(tarball, into=layout)
            assert report.entries_added == (API,)
            assert (await layout.get_manifest(REPO, TAG)).digest == image.digest
            assert (await layout.verify()).ok

    run(scenario())


# -- hostile tarballs ------------------------------------------------------------------------------

TarEdit = Callable[[tarfile.TarFile, dict[str, bytes]], None]


def _regular(tar: tarfile.TarFile, name: str, content: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(content)
    tar.addfile(info, io.BytesIO(content))


def _special(kind: bytes, name: str, target: str = "") -> Callable[[tarfile.TarFile, dict[str, bytes]], None]:
    def add(tar: tarfile.TarFile, _: dict[str, bytes]) -> None:
        info = tarfile.TarInfo(name)
        info.type = kind
        info.linkname = target
        tar.addfile(info)

    return add


def _rebuilt(source: Path, target: Path, edit: TarEdit, *, drop: str | None = None) -> Path:
    """``source`` tarball copied member by member to ``target``, then ``edit`` adds its member(s)."""
    members: dict[str, bytes] = {}
    with tarfile.open(source) as tar:
        for member in tar.getmembers():
            if member.isreg():
                members[member.name] = tar.extractfile(member).read()  # type: ignore[union-attr]
    with tarfile.open(target, "w") as tar:
        for name, content in members.items():
            if name != drop:
                _regular(tar, name, content)
        edit(tar, members)
    return target


HOSTILE: dict[str, tuple[TarEdit, str]] = {
    "traversal": (lambda tar, _: _regular(tar, "../evil", b"x"), r"member '\.\./evil' escapes the archive"),
    "absolute": (lambda tar, _: _regular(tar, "/etc/evil", b"x"), "escapes the archive"),
    "symlink": (_special(tarfile.SYMTYPE, "blobs/sha256/link", "/etc/passwd"), "is a link"),
    "hardlink": (_special(tarfile.LNKTYPE, "hard", "index.json"), "is a link"),
    "fifo": (_special(tarfile.FIFOTYPE, "pipe"), "is not a regular file"),
    "device": (_special(tarfile.CHRTYPE, "blobs/sha256/dev"), "is not a regular file"),
    "duplicate": (lambda tar, members: _regular(tar, "index.json", members["index.json"]), "appears twice"),
    "not-a-digest": (lambda tar, _: _regular(tar, "blobs/sha256/not-hex", b"x"), "not named by a digest"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_tarballs_are_refused_before_anything_is_written(tmp_path: Path, case: str) -> None:
    seed(tmp_path / "archive")
    clean = tmp_path / "clean.tar"
    run(export(OciLayout(tmp_path / "archive"), [WEB], to=clean))
    edit, message = HOSTILE[case]
    hostile = _rebuilt(clean, tmp_path / f"{case}.tar", edit)

    with pytest.raises(ArchiveError, match=message) as refused:
        run(import_archive(hostile, into=OciLayout(tmp_path / "target")))
    assert str(hostile) in str(refused.value)
    assert not (tmp_path / "target").exists()  # refused while scanning: not even the layout was created
    assert not (tmp_path / "evil").exists()


def test_an_oversized_index_and_a_lying_blob_are_refused(tmp_path: Path) -> None:
    images = seed(tmp_path / "archive")
    clean = tmp_path / "clean.tar"
    run(export(OciLayout(tmp_path / "archive"), [WEB], to=clean))
    with pytest.raises(ArchiveError, match=r"index.json' is .* more than the 64 byte limit"):
        run(import_archive(clean, into=OciLayout(tmp_path / "target"), max_index_bytes=64))

    layer = next(iter(images[WEB].blobs.values()))
    member = f"blobs/sha256/{layer.digest.split(':')[1]}"

    def swap(tar: tarfile.TarFile, members: dict[str, bytes]) -> None:
        _regular(tar, member, bytes(len(members[member])))  # right size, wrong bytes

    lying = _rebuilt(clean, tmp_path / "lying.tar", swap, drop=member)

    async def scenario() -> None:
        async with OciLayout(tmp_path / "target") as layout:
            with pytest.raises(ArchiveError, match=f"blob {layer.digest} of {WEB} is corrupt"):
                await import_archive(lying, into=layout)
            assert await layout.entries() == []
            assert not await layout.blob_exists("any", layer.digest)

    run(scenario())


def test_something_that_is_not_an_oci_archive_is_refused(tmp_path: Path) -> None:
    plain = tmp_path / "plain.tar"
    with tarfile.open(plain, "w") as tar:
        _regular(tar, "README", b"hello")
    with pytest.raises(ArchiveError, match="not an oci-archive"):
        run(import_archive(plain, into=OciLayout(tmp_path / "target")))
    squeezed = tmp_path / "squeezed.tar.gz"
    with tarfile.open(squeezed, "w:gz") as tar:
        _regular(tar, "oci-layout", b"{}")
    with pytest.raises(ArchiveError, match="not an uncompressed tar archive"):
        run(import_archive(squeezed, into=OciLayout(tmp_path / "target")))
    with pytest.raises(ArchiveError, match="No such file or directory"):
        run(import_archive(tmp_path / "absent.tar", into=OciLayout(tmp_path / "target")))
