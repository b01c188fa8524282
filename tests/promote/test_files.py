"""Writing an edited environment file: atomic, permissions kept, links refused, nothing written when unchanged."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from reconciler.manifests.edit import EnvFileEditError, read_pins
from reconciler.promote.files import promote_in_file, write_atomically

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "manifests" / "environments" / "t.yaml"
DIGEST = "sha256:" + "c" * 64


def test_write_keeps_the_mode_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "t.yaml"
    target.write_bytes(b"old")
    target.chmod(0o640)
    write_atomically(target, b"new")
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert [path.name for path in tmp_path.iterdir()] == ["t.yaml"]


def test_a_new_file_gets_the_umask_mode(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    try:
        write_atomically(tmp_path / "new.yaml", b"x")
    finally:
        os.umask(umask)
    assert stat.S_IMODE((tmp_path / "new.yaml").stat().st_mode) == 0o644


def test_symbolic_links_and_missing_directories_are_refused(tmp_path: Path) -> None:
    real = tmp_path / "real.yaml"
    real.write_bytes(b"x")
    (tmp_path / "link.yaml").symlink_to(real)
    with pytest.raises(EnvFileEditError, match="symbolic link"):
        write_atomically(tmp_path / "link.yaml", b"y")
    assert real.read_bytes() == b"x"
    with pytest.raises(EnvFileEditError, match="cannot write"):
        write_atomically(tmp_path / "missing" / "t.yaml", b"y")


def test_promote_in_file_writes_only_when_something_changed(tmp_path: Path) -> None:
    target = tmp_path / "t.yaml"
    target.write_bytes(EXAMPLE.read_bytes())
    edit = promote_in_file(target, "payments/web", "20261128_01", DIGEST, keep_previous=0)
    assert edit.changed
    assert target.read_bytes() == edit.data
    assert [(p.tag, p.digest) for p in read_pins(target.read_bytes())["payments/web"]] == [("20261128_01", DIGEST)]
    before = target.stat().st_mtime_ns, target.stat().st_ino
    again = promote_in_file(target, "payments/web", "20261128_01", DIGEST, keep_previous=0)
    assert not again.changed
    assert (target.stat().st_mtime_ns, target.stat().st_ino) == before
    with pytest.raises(EnvFileEditError, match="cannot read"):
        promote_in_file(tmp_path / "absent.yaml", "a", "20261128_01", DIGEST)
