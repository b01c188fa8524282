"""Retention end to end on a real registry: by count, by age, by capacity; archive, safe delete, restore.

Every test runs ``reconciler plan`` / ``apply`` (the CLI, in process) against CNCF distribution on
loopback with a real OCI-layout archive store, and checks the registry with skopeo, the store with
``OciLayout`` and the audit log. The desired state has a source environment ``d`` (where retention
applies) and ``t``, which declares the newest version (a source keeps builds newer than anything
promoted, so something must be promoted for older builds to retire).
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from support.skopeo import Skopeo
from typer.testing import CliRunner

from reconciler.archive import OciLayout
from reconciler.cli import app
from reconciler.engine.audit import pair_records, read_records
from testkit.imagegen import GeneratedImage, image_for, make_layer
from testkit.imagepush import push_image
from testkit.localregistry import LocalRegistry

pytestmark = pytest.mark.registry


def day_tag(days_ago: int, build: int = 1) -> str:
    return f"{(datetime.now(UTC).date() - timedelta(days=days_ago)):%Y%m%d}_{build:02d}"


def write_state(
    root: Path,
    url: str,
    *,
    store: Path | None,
    retention: str,
    t_pins: dict[str, Iterable[tuple[str, GeneratedImage]]],
    destroy_after_days: int | None = None,
) -> Path:
    (root / "environments").mkdir(parents=True, exist_ok=True)
    archive = ""
    if store is not None:
        archive = f"archive: {{store: {json.dumps(str(store))}"
        archive += f", destroy_after_days: {destroy_after_days}}}\n" if destroy_after_days else "}\n"
    (root / "reconciler.yaml").write_text(
        "version: 1\n"
        f'registries:\n  dev: {{url: "{url}"}}\n'
        "environments:\n  d: {registry: dev, prefix: d, source: true}\n  t: {registry: dev, prefix: t, from: d}\n"
        f"retention:\n{retention}{archive}"
    )
    (root / "environments" / "d.yaml").write_text("environment: d\nimages: {}\n")
    lines = ["environment: t", "images:"]
    for image, pins in t_pins.items():
        lines.append(f"  {image}:")
        lines += [f'    - {{tag: "{tag}", digest: "{pinned.digest}"}}' for tag, pinned in pins]
    (root / "environments" / "t.yaml").write_text("\n".join(lines) + "\n")
    return root


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    assert "Traceback" not in result.output, result.output
    return result.exit_code, result.output


def plan_json(root: Path) -> dict[str, Any]:
    code, output = cli("plan", str(root), "-o", "json")
    assert code == 0, output
    document: dict[str, Any] = json.loads(output)
    return document


def kinds(plan: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {f"{a['repository']}:{a['tag']}": a for a in plan["actions"] if a["kind"] == kind}


def entries(store: Path) -> dict[str, str]:
    async def read() -> dict[str, str]:
        return {e.name: str(e.digest) for e in await OciLayout(store).entries() if e.name}

    return asyncio.run(read())


def tags(skopeo: Skopeo, registry: LocalRegistry, repository: str) -> set[str]:
    return set(skopeo.list_tags(f"docker://{registry.host}/{repository}"))


def push_versions(registry: LocalRegistry, repository: str, versions: dict[str, GeneratedImage]) -> None:
    for tag, image in versions.items():
        push_image(image, registry.url, repository, tag)


def test_keep_archives_the_oldest_then_a_revert_restores_the_identical_digest(
    registry: LocalRegistry, skopeo: Skopeo, tmp_path: Path
) -> None:
    # OCI format: skopeo 1.9 resolves only OCI media types by name in a layout (docs/archive.md)
    versions = {f"202611{day:02d}_01": image_for("app", f"202611{day:02d}_01", fmt="oci") for day in range(1, 6)}
    push_versions(registry, "d/app", versions)
    store, audit = tmp_path / "archive", tmp_path / "audit.jsonl"
    newest = ("20261105_01", versions["20261105_01"])
    root = write_state(
        tmp_path / "state", registry.url, store=store, retention="  d: {keep: 2}\n", t_pins={"app": [newest]}
    )

    plan = plan_json(root)
    archived, deleted = kinds(plan, "archive"), kinds(plan, "delete")
    assert set(archived) == set(deleted) == {"d/app:20261101_01", "d/app:20261102_01"}
    assert {a["rule"] for a in deleted.values()} == {"keep=2"}
    assert all(a["bytes_freed"] > 0 for a in deleted.values())
    assert tags(skopeo, registry, "d/app") == set(versions)  # plan wrote nothing
    assert not store.exists()

    code, output = cli("apply", str(root), "--audit-log", str(audit))
    assert code == 0, output
    assert tags(skopeo, registry, "d/app") == {"20261103_01", "20261104_01", "20261105_01"}
    assert entries(store) == {
        "d/app:20261101_01": versions["20261101_01"].digest,
        "d/app:20261102_01": versions["20261102_01"].digest,
    }
    records = [r for r in pair_records(read_records(audit)) if r["action"] in ("archive", "delete")]
    assert {(r["action"], r["tag"], r["result"]) for r in records} == {
        (kind, tag, "ok") for kind in ("archive", "delete") for tag in ("20261101_01", "20261102_01")
    }

    # skopeo reads the store as a plain OCI layout and restores with the same digest
    skopeo.copy(f"oci:{store}:d/app:20261101_01", f"docker://{registry.host}/x/restored:1")
    assert skopeo.digest(f"docker://{registry.host}/x/restored:1") == versions["20261101_01"].digest

    # a rollback is a revert: t declares the archived version again, and apply restores it from the store
    write_state(
        root,
        registry.url,
        store=store,
        retention="  d: {keep: 2}\n",
        t_pins={"app": [("20261101_01", versions["20261101_01"]), newest]},
    )
    restore = kinds(plan_json(root), "restore")
    assert list(restore) == ["t/app:20261101_01"]
    assert restore["t/app:20261101_01"]["archive_ref"] == "d/app:20261101_01"
    code, output = cli("apply", str(root), "--audit-log", str(audit))
    assert code == 0, output
    assert skopeo.digest(f"docker://{registry.host}/t/app:20261101_01") == versions["20261101_01"].digest
    code, output = cli("plan", str(root), "--detailed-exitcode")
    assert code == 0, output  # converged: nothing left to do


def test_max_age_retires_old_versions_past_the_newest_keep_and_archive_false_deletes_outright(
    registry: LocalRegistry, skopeo: Skopeo, tmp_path: Path
) -> None:
    ages = (100, 60, 40, 10, 5, 1)
    versions = {day_tag(age): image_for("app", day_tag(age)) for age in ages}
    push_versions(registry, "d/app", versions)
    store = tmp_path / "archive"
    root = write_state(
        tmp_path / "state",
        registry.url,
        store=store,
        retention="  d: {keep: 1, max_age_days: 30, archive: false}\n",
        t_pins={"app": [(day_tag(1), versions[day_tag(1)])]},
    )
    plan = plan_json(root)
    assert not kinds(plan, "archive")
    deleted = kinds(plan, "delete")
    assert set(deleted) == {f"d/app:{day_tag(age)}" for age in (100, 60, 40)}
    assert {a["rule"] for a in deleted.values()} == {"max_age_days=30"}
    code, output = cli("apply", str(root), "--audit-log", str(tmp_path / "audit.jsonl"))
    assert code == 0, output
    assert tags(skopeo, registry, "d/app") == {day_tag(age) for age in (10, 5, 1)}
    assert not store.exists()  # nothing was archived: archive: false


def test_max_bytes_counts_shared_layers_once_and_retires_the_oldest_until_under(
    registry: LocalRegistry, skopeo: Skopeo, tmp_path: Path
) -> None:
    base = [make_layer({"base.bin": random.Random(7).randbytes(256 * 1024)})]  # shared by every version
    versions = {
        f"202611{day:02d}_01": image_for("app", f"202611{day:02d}_01", base=base, layer_count=1, layer_size=64 * 1024)
        for day in range(1, 6)
    }
    push_versions(registry, "d/app", versions)
    # unique bytes: 256 KiB + 5 x ~64 KiB = ~576 KiB; per image counting would say ~1600 KiB
    root = write_state(
        tmp_path / "state",
        registry.url,
        store=tmp_path / "archive",
        retention="  d: {max_bytes: 420Ki}\n",
        t_pins={"app": [("20261105_01", versions["20261105_01"])]},
    )
    plan = plan_json(root)
    deleted = kinds(plan, "delete")
    assert set(deleted) == {f"d/app:202611{day:02d}_01" for day in (1, 2, 3)}
    assert {a["rule"] for a in deleted.values()} == {f"max_bytes={420 * 1024}"}
    for action in deleted.values():
        assert 64 * 1024 <= action["bytes_freed"] < 80 * 1024  # its own layer, config, manifest; not the base
    assert plan["lifecycle"]["over_capacity"] == []
    code, output = cli("apply", str(root), "--audit-log", str(tmp_path / "audit.jsonl"))
    assert code == 0, output
    assert tags(skopeo, registry, "d/app") == {"20261104_01", "20261105_01"}
    assert set(entries(tmp_path / "archive")) == {f"d/app:202611{day:02d}_01" for day in (1, 2, 3)}


def test_a_retired_tag_sharing_its_digest_with_a_kept_tag_is_detached_and_the_other_tag_survives(
    registry: LocalRegistry, skopeo: Skopeo, tmp_path: Path
) -> None:
    shared, newest = image_for("app", "shared"), image_for("app", "20261125_01")
    push_versions(registry, "d/app", {"20261101_01": shared, "20261120_01": shared, "20261125_01": newest})
    both = image_for("lib", "both")
    lib_newest = image_for("lib", "20261125_01")
    push_versions(registry, "d/lib", {"20261101_01": both, "20261102_01": both, "20261125_01": lib_newest})
    store = tmp_path / "archive"
    root = write_state(
        tmp_path / "state",
        registry.url,
        store=store,
        retention="  d: {keep: 1, images: {lib: {keep: 0}}}\n",
        t_pins={"app": [("20261125_01", newest)], "lib": [("20261125_01", lib_newest)]},
    )
    deleted = kinds(plan_json(root), "delete")
    assert set(deleted) == {"d/app:20261101_01", "d/lib:20261101_01", "d/lib:20261102_01"}
    assert deleted["d/app:20261101_01"]["bytes_freed"] == 0  # 20261120_01 keeps the image
    code, output = cli("apply", str(root), "--audit-log", str(tmp_path / "audit.jsonl"))
    assert code == 0, output
    assert tags(skopeo, registry, "d/app") == {"20261120_01", "20261125_01"}
    assert skopeo.digest(f"docker://{registry.host}/d/app:20261120_01") == shared.digest
    assert tags(skopeo, registry, "d/lib") == {"20261125_01"}  # both tags of one digest retired: both gone
    assert entries(store)["d/app:20261101_01"] == shared.digest
    code, output = cli("plan", str(root), "--detailed-exitcode")
    assert code == 0, output  # no placeholder or leftover to clean up
