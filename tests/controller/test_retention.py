"""The controller retires undeclared versions in its full passes, on shard 0 only (``max_bytes`` is
environment-wide, so exactly one replica looks at whole environments); ``--no-retention`` turns it off."""

from __future__ import annotations

from pathlib import Path

import pytest
from archive.test_lifecycle_e2e import entries, push_versions, write_state

from testkit.imagegen import image_for
from testkit.localregistry import LocalRegistry

from .conftest import ControllerFactory
from .harness import audit_records

pytestmark = [pytest.mark.registry]

VERSIONS = [f"202611{day:02d}_01" for day in range(1, 5)]


def _lifecycle(audit: Path) -> list[tuple[str, str, str]]:
    return [
        (str(r["action"]), str(r["tag"]), str(r["result"]))
        for r in audit_records(audit)
        if r.get("phase") == "outcome" and r["action"] in ("archive", "delete")
    ]


@pytest.mark.parametrize(
    ("args", "retires"),
    [((), True), (("--shard", "1/2"), False), (("--shard", "0/2"), True), (("--no-retention",), False)],
)
def test_full_passes_retire_on_shard_0_only(
    registry: LocalRegistry, controllers: ControllerFactory, tmp_path: Path, args: tuple[str, ...], retires: bool
) -> None:
    versions = {tag: image_for("app", tag) for tag in VERSIONS}
    push_versions(registry, "d/app", versions)
    store = tmp_path / "archive"
    root = write_state(
        tmp_path / "state",
        registry.url,
        store=store,
        retention="  d: {keep: 1}\n",
        t_pins={"app": [(VERSIONS[-1], versions[VERSIONS[-1]])]},
    )
    controller = controllers(str(root), "--interval", "60s", *args)
    controller.wait_event("reconciled", timeout=60)
    retired = _lifecycle(controller.audit_path)
    if retires:
        assert sorted(retired) == sorted((kind, tag, "ok") for kind in ("archive", "delete") for tag in VERSIONS[:2])
        assert set(entries(store)) == {f"d/app:{tag}" for tag in VERSIONS[:2]}
    else:
        assert retired == []
        assert not store.exists()
    assert controller.terminate() == 0
