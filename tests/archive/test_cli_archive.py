"""``reconciler archive`` end to end: the CLI (in process, through typer's CliRunner) on a real OCI-layout
store, a real CNCF distribution registry on loopback for restores, and skopeo reading what export writes.

The store is populated through ``OciLayout`` itself (blobs, child manifests, then the entry with its
provenance), as the engine's archive step does; nothing of the store or the registry is mocked.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from support.skopeo import Skopeo
from typer.testing import CliRunner

from reconciler.archive import OciLayout, provenance
from reconciler.cli import app
from reconciler.engine.audit import pair_records, read_records
from reconciler.exitcodes import ExitCode
from testkit.imagegen import GeneratedImage, image_for, make_layer
from testkit.imagepush import push_image
from testkit.localregistry import LocalRegistry

from .helpers import blob_file, corrupt, put_image, run

OLD, NEW, KEPT = "d/app:20261101_01", "d/app:20261102_01", "d/app:20261103_01"
LONG_AGO = datetime(2020, 1, 1, tzinfo=UTC)
BASE = [make_layer({"base.bin": b"shared base layer\n" * 512}, fmt="oci")]


def images() -> dict[str, GeneratedImage]:
    """Three versions of d/app, OCI format (skopeo 1.9 reads only OCI media types in a layout), sharing a
    base layer, so the store holds shared blobs."""
    return {name: image_for("app", name.rsplit(":", 1)[1], fmt="oci", base=BASE) for name in (OLD, NEW, KEPT)}


def seed(store: Path, wanted: dict[str, GeneratedImage], *, archived_at: dict[str, datetime] | None = None) -> None:
    async def write() -> None:
        async with OciLayout(store) as layout:
            for name, image in wanted.items():
                repository = name.rsplit(":", 1)[0]
                await put_image(layout, image, repository, None)
                notes = provenance(
                    source_registry="dev",
                    source_repository=repository,
                    commit="0123456789abcdef0123456789abcdef01234567",
                    archived_at=(archived_at or {}).get(name),
                )
                await layout.add_entry(name, image.digest, annotations=notes)

    run(write())


def write_state(
    root: Path,
    store: Path | str,
    *,
    url: str = "http://127.0.0.1:1",
    t_pins: dict[str, GeneratedImage] | None = None,
    extra: str = "",
) -> Path:
    """d (source) and t (from d) on one registry; t declares ``t_pins`` (entry name -> image)."""
    (root / "environments").mkdir(parents=True, exist_ok=True)
    (root / "reconciler.yaml").write_text(
        "version: 1\n"
        f'registries:\n  dev: {{url: "{url}"}}\n'
        "environments:\n  d: {registry: dev, prefix: d, source: true}\n  t: {registry: dev, prefix: t, from: d}\n"
        f"archive: {{store: {json.dumps(str(store))}, destroy_after_days: 30}}\n{extra}"
    )
    (root / "environments" / "d.yaml").write_text("environment: d\nimages: {}\n")
    pins = [
        f'    - {{tag: "{name.rsplit(":", 1)[1]}", digest: "{image.digest}"}}' for name, image in (t_pins or {}).items()
    ]
    body = "images:\n  app:\n" + "\n".join(pins) + "\n" if pins else "images: {}\n"
    (root / "environments" / "t.yaml").write_text("environment: t\n" + body)
    return root


def cli(*args: str | Path) -> tuple[int, str]:
    result = CliRunner().invoke(app, [str(arg) for arg in args])
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def cli_json(*args: str | Path, code: int = 0) -> dict[str, Any]:
    result = CliRunner().invoke(app, [str(arg) for arg in args])
    assert result.exit_code == code, result.output
    document: dict[str, Any] = json.loads(result.stdout)
    assert document["version"] == 1
    return document


def entry_names(store: Path) -> set[str]:
    return {entry.name for entry in run(OciLayout(store).entries()) if entry.name}


def blob_files(store: Path) -> set[str]:
    return {str(path.relative_to(store)) for path in (store / "blobs").rglob("*") if path.is_file()}


def snapshot(directory: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``directory`` with its size and modification time: what "wrote nothing" means."""
    return {
        str(path.relative_to(directory)): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in directory.rglob("*")
        if path.is_file()
    }


def tree_bytes(image: GeneratedImage) -> dict[str, int]:
    return {image.digest: image.size, **{digest: blob.size for digest, blob in image.blobs.items()}}


# ------------------------------------------------------------------------------------------------ list


def test_list_shows_every_entry_with_provenance_and_counts_shared_blobs_once_in_the_total(tmp_path: Path) -> None:
    store, wanted = tmp_path / "archive", images()
    seed(store, wanted, archived_at={OLD: LONG_AGO})

    document = cli_json("archive", "list", "--store", store, "-o", "json")

    assert document["command"] == "archive list"
    assert document["status"] == "ok"
    listed = {entry["name"]: entry for entry in document["entries"]}
    assert list(listed) == sorted(wanted)
    old = listed[OLD]
    assert old["digest"] == wanted[OLD].digest
    assert old["media_type"] == wanted[OLD].media_type
    assert old["archived_at"] == "2020-01-01T00:00:00Z"
    assert listed[NEW]["archived_at"].startswith(f"{datetime.now(UTC):%Y-}")
    assert (old["source_registry"], old["source_repository"]) == ("dev", "d/app")
    assert old["commit"] == "0123456789abcdef0123456789abcdef01234567"
    for name, image in wanted.items():
        assert listed[name]["size"] == sum(tree_bytes(image).values())
        assert listed[name]["problem"] is None
    unique: dict[str, int] = {}
    for image in wanted.values():
        unique.update(tree_bytes(image))
    total = document["total"]
    assert total == {
        "entries": 3,
        "unique_bytes": sum(unique.values()),
        "entry_bytes": sum(listed[name]["size"] for name in wanted),
    }
    assert total["unique_bytes"] < total["entry_bytes"]  # the base layer is shared

    code, output = cli("archive", "list", "--store", store)
    assert code == 0, output
    for name, image in wanted.items():
        assert name in output
        assert image.digest[:19] in output
    assert "2020-01-01T00:00:00Z" in output
    assert "dev/d/app" in output
    assert "total: 3 entries, " in output
    assert f"({sum(unique.values())} bytes, each blob once" in output
    assert "they share blobs" in output


def test_list_reads_the_store_of_the_desired_state_and_an_absent_store_is_empty(tmp_path: Path) -> None:
    root = write_state(tmp_path / "state", "archive")  # relative: inside the desired-state directory
    document = cli_json("archive", "list", root, "-o", "json")
    assert document["entries"] == []
    assert document["exists"] is False
    assert document["store"] == str(root / "archive")
    code, output = cli("archive", "list", root)
    assert code == 0
    assert "no archive store there yet" in output
    assert not (root / "archive").exists()  # listing created nothing

    seed(root / "archive", {OLD: images()[OLD]})
    assert [e["name"] for e in cli_json("archive", "list", root, "-o", "json")["entries"]] == [OLD]

    (root / "reconciler.yaml").write_text((root / "reconciler.yaml").read_text().replace("archive:", "# archive:"))
    code, output = cli("archive", "list", root)
    assert code == ExitCode.USAGE
    assert "no archive store" in output
    assert "--store" in output


def test_list_notes_an_entry_whose_manifest_is_missing_instead_of_failing(tmp_path: Path) -> None:
    store, wanted = tmp_path / "archive", images()
    seed(store, wanted)
    blob_file(store, wanted[NEW].digest).unlink()  # the top manifest: the tree below it is unknown

    document = cli_json("archive", "list", "--store", store, "-o", "json")
    listed = {entry["name"]: entry for entry in document["entries"]}
    assert "not in the archive" in listed[NEW]["problem"]
    assert listed[NEW]["size"] == wanted[NEW].size  # only what the index itself says
    assert listed[OLD]["problem"] is None
    code, output = cli("archive", "list", "--store", store)
    assert code == 0, output
    assert f"note: {NEW}: size incomplete" in output
    code, output = cli("archive", "verify", "--store", store)
    assert code == ExitCode.FAILURE
    assert f"FAILED  {NEW}" in output


def test_a_corrupt_index_is_one_clear_error_and_never_a_traceback(tmp_path: Path) -> None:
    store = tmp_path / "archive"
    seed(store, {OLD: images()[OLD]})
    (store / "index.json").write_text('{"schemaVersion": 2, "manifests": [{"digest": 12}]')

    code, output = cli("archive", "list", "--store", store)
    assert code == ExitCode.FAILURE
    assert f"{store / 'index.json'} is not a valid OCI image index" in output
    document = cli_json("archive", "list", "--store", store, "-o", "json", code=ExitCode.FAILURE)
    assert document["status"] == "error"
    assert str(store) in document["message"]

    # through the console script's entry point, as a user runs it: one line on stderr, no traceback
    environment = {key: value for key, value in os.environ.items() if key != "RECONCILER_DEBUG"}
    for command in ("list", "verify"):
        process = subprocess.run(
            [
                sys.executable,
                "-c",
                "from reconciler.cli import main; main()",
                "archive",
                command,
                "--store",
                str(store),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env=environment,
        )
        assert process.returncode == ExitCode.FAILURE, process.stderr
        assert "Traceback" not in process.stderr + process.stdout
        assert "index.json" in process.stderr + process.stdout


# ---------------------------------------------------------------------------------------------- verify


def test_verify_passes_then_names_the_entry_whose_blob_was_corrupted(tmp_path: Path) -> None:
    store, wanted = tmp_path / "archive", images()
    seed(store, wanted)

    code, output = cli("archive", "verify", "--store", store)
    assert code == 0, output
    assert "ok: 3 entries verified" in output
    assert cli_json("archive", "verify", "--store", store, "-o", "json")["status"] == "ok"

    own_layer = wanted[NEW].manifests[0].layers[-1].blob.digest  # NEW's own layer, not the shared base
    corrupt(blob_file(store, own_layer), offset=100)

    code, output = cli("archive", "verify", "--store", store)
    assert code == ExitCode.FAILURE
    assert f"FAILED  {NEW}" in output
    assert f"{own_layer}: corrupt" in output
    assert f"ok      {OLD}" in output
    assert "1 of 3 entries damaged" in output
    document = cli_json("archive", "verify", "--store", store, "-o", "json", code=ExitCode.FAILURE)
    assert document["status"] == "failed"
    failed = {entry["name"]: entry for entry in document["entries"] if not entry["ok"]}
    assert list(failed) == [NEW]
    assert failed[NEW]["problems"][0]["kind"] == "corrupt"
    assert failed[NEW]["problems"][0]["digest"] == own_layer


def test_verify_of_an_absent_store_fails(tmp_path: Path) -> None:
    code, output = cli("archive", "verify", "--store", tmp_path / "nowhere")
    assert code == ExitCode.FAILURE
    assert "no archive at" in output


# -------------------------------------------------------------------------------------- export, import


def test_export_is_read_by_skopeo_and_imports_into_a_fresh_store(tmp_path: Path, skopeo: Skopeo) -> None:
    store, wanted = tmp_path / "archive", images()
    seed(store, wanted, archived_at={OLD: LONG_AGO})
    tarball = tmp_path / "release.tar"

    code, output = cli("archive", "export", OLD, NEW, "--to", tarball, "--store", store)
    assert code == 0, output
    assert "exported 2 entries" in output
    for name in (OLD, NEW):
        assert skopeo.digest(f"oci-archive:{tarball}:{name}") == wanted[name].digest

    before = tarball.stat().st_mtime_ns
    code, output = cli("archive", "export", OLD, "--to", tarball, "--store", store)
    assert code == ExitCode.USAGE
    assert "--force" in output
    assert tarball.stat().st_mtime_ns == before
    code, output = cli("archive", "export", OLD, "d/app:19990101_01", "--to", tmp_path / "x.tar", "--store", store)
    assert code == ExitCode.FAILURE
    assert "no such entry: d/app:19990101_01" in output
    assert not (tmp_path / "x.tar").exists()
    code, output = cli("archive", "export", OLD, "--to", tmp_path / "missing" / "x.tar", "--store", store)
    assert code == ExitCode.USAGE

    fresh = tmp_path / "fresh"
    document = cli_json("archive", "import", tarball, "--store", fresh, "-o", "json")
    assert document["entries_added"] == [OLD, NEW]
    assert document["blobs_written"] > 0
    listed = {e["name"]: e for e in cli_json("archive", "list", "--store", fresh, "-o", "json")["entries"]}
    assert {name: entry["digest"] for name, entry in listed.items()} == {
        OLD: wanted[OLD].digest,
        NEW: wanted[NEW].digest,
    }
    assert listed[OLD]["archived_at"] == "2020-01-01T00:00:00Z"  # provenance travels with the entry
    assert listed[OLD]["source_registry"] == "dev"
    code, output = cli("archive", "verify", "--store", fresh)
    assert code == 0, output

    code, output = cli("archive", "export", KEPT, "--to", tarball, "--store", store, "--force")
    assert code == 0, output
    assert skopeo.digest(f"oci-archive:{tarball}:{KEPT}") == wanted[KEPT].digest


# --------------------------------------------------------------------------------------------- restore


def test_restore_puts_the_identical_digest_on_the_registry_and_audits_it(
    registry: LocalRegistry, skopeo: Skopeo, tmp_path: Path
) -> None:
    store, wanted = tmp_path / "archive", images()
    seed(store, {OLD: wanted[OLD]})
    root = write_state(tmp_path / "state", store, url=registry.url, extra="retention:\n  t: {keep: 1}\n")
    audit = tmp_path / "audit.jsonl"

    code, output = cli("archive", "restore", OLD, root, "--to", "t", "--dry-run", "--audit-log", audit)
    assert code == 0, output
    assert "plan     restore dev/t/app:20261101_01" in output
    assert "dry run: nothing was written" in output
    assert not audit.exists()
    assert httpx.get(f"{registry.url}/v2/t/app/tags/list").status_code == 404  # nothing written to t

    document = cli_json("archive", "restore", OLD, root, "--to", "t", "--audit-log", audit, "-o", "json")
    assert document["status"] == "ok"
    assert [r["result"] for r in document["results"]] == ["ok"]
    assert skopeo.digest(f"docker://{registry.host}/t/app:20261101_01") == wanted[OLD].digest
    assert any("retention retires it again" in note for note in document["notes"])  # t keeps 1, nothing declared
    records = read_records(audit)
    assert [(r["action"], r["phase"], r["result"]) for r in records] == [
        ("restore", "intent", "pending"),
        ("restore", "outcome", "ok"),
    ]
    assert records[1]["digest"] == wanted[OLD].digest
    assert (records[1]["registry"], records[1]["repository"], records[1]["tag"]) == ("dev", "t/app", "20261101_01")

    code, output = cli("archive", "restore", OLD, root, "--to", "t", "--audit-log", audit)
    assert code == 0, output
    assert "already holds it" in output  # idempotent: nothing written the second time
    assert len(read_records(audit)) == 2


def test_restore_refuses_a_tag_at_another_digest_and_writes_nothing(
    registry: LocalRegistry, skopeo: Skopeo, tmp_path: Path
) -> None:
    store, wanted = tmp_path / "archive", images()
    seed(store, {OLD: wanted[OLD]})
    other = image_for("app", "other", fmt="oci")
    push_image(other, registry.url, "t/app", "20261101_01")
    root = write_state(tmp_path / "state", store, url=registry.url)
    audit = tmp_path / "audit.jsonl"

    code, output = cli("archive", "restore", OLD, root, "--to", "t", "--audit-log", audit)
    assert code == ExitCode.FAILURE
    assert "refused" in output
    assert other.digest in output
    assert skopeo.digest(f"docker://{registry.host}/t/app:20261101_01") == other.digest
    assert [(r["action"], r["result"]) for r in pair_records(read_records(audit))] == [("conflict", "refused")]

    document = cli_json("archive", "restore", OLD, root, "--to", "t", "--dry-run", "-o", "json", code=ExitCode.FAILURE)
    assert document["status"] == "refused"

    for args, expected in (
        (("d/app", "--to", "t"), ExitCode.USAGE),  # no tag
        ((OLD, "--to", "nowhere"), ExitCode.USAGE),
        ((OLD, "--to", "d"), ExitCode.USAGE),  # a source environment
        (("d/app:19990101_01", "--to", "t"), ExitCode.FAILURE),  # no such entry
    ):
        code, output = cli("archive", "restore", args[0], root, *args[1:], "--audit-log", audit)
        assert code == expected, (args, output)
    assert skopeo.digest(f"docker://{registry.host}/t/app:20261101_01") == other.digest


# --------------------------------------------------------------------------------------------- destroy


def test_destroy_by_rule_lists_then_destroys_expired_entries_and_collects_their_blobs(tmp_path: Path) -> None:
    store, wanted = tmp_path / "archive", images()
    seed(store, wanted, archived_at={OLD: LONG_AGO, KEPT: LONG_AGO})  # NEW was archived today
    root = write_state(tmp_path / "state", store, t_pins={KEPT: wanted[KEPT]})  # t declares KEPT's digest
    audit = tmp_path / "audit.jsonl"
    before = snapshot(store)

    code, output = cli("archive", "destroy", "--dir", root, "--dry-run", "--audit-log", audit)
    assert code == 0, output
    assert f"plan     destroy {OLD}" in output
    assert "destroy_after_days=30" in output
    assert f"note: {KEPT} is past destroy_after_days but a declared version uses its digest: kept" in output
    assert NEW not in output
    assert snapshot(store) == before  # no lock taken, nothing written
    assert not audit.exists()

    document = cli_json("archive", "destroy", "--dir", root, "--audit-log", audit, "-o", "json")
    assert document["status"] == "ok"
    assert [(r["archive_ref"], r["result"]) for r in document["results"]] == [(OLD, "ok")]
    assert document["kept_declared"] == [KEPT]
    assert entry_names(store) == {NEW, KEPT}
    gone = {f"blobs/sha256/{digest.split(':')[1]}" for digest in tree_bytes(wanted[OLD])} - {
        f"blobs/sha256/{digest.split(':')[1]}" for name in (NEW, KEPT) for digest in tree_bytes(wanted[name])
    }
    assert gone  # OLD has blobs of its own (its layer, config, manifest) ...
    assert not gone & blob_files(store)  # ... which are collected, while the shared base stays
    assert document["garbage"]["blobs_removed"] == len(gone)
    assert document["garbage"]["bytes_freed"] == sum(
        size for digest, size in tree_bytes(wanted[OLD]).items() if f"blobs/sha256/{digest.split(':')[1]}" in gone
    )
    before_blobs = {path for path in before if path.startswith("blobs/")}
    assert len(blob_files(store)) == len(before_blobs) - len(gone)  # the store shrank by exactly those
    assert before_blobs - blob_files(store) == gone
    records = pair_records(read_records(audit))
    assert [(r["action"], r["result"], r["digest"]) for r in records] == [("destroy", "ok", wanted[OLD].digest)]
    code, output = cli("archive", "verify", "--store", store)
    assert code == 0, output

    code, output = cli("archive", "destroy", "--dir", root, "--audit-log", audit)
    assert code == 0, output
    assert "nothing to destroy" in output


def test_destroy_by_name_refuses_a_declared_digest_and_an_unknown_entry(tmp_path: Path) -> None:
    store, wanted = tmp_path / "archive", images()
    seed(store, wanted)
    root = write_state(tmp_path / "state", store, t_pins={KEPT: wanted[KEPT]})
    audit = tmp_path / "audit.jsonl"
    before = snapshot(store)

    code, output = cli("archive", "destroy", NEW, KEPT, "--dir", root, "--audit-log", audit)
    assert code == ExitCode.FAILURE
    assert f"{KEPT} (environments/t.yaml: app:20261103_01)" in output
    assert "nothing destroyed" in output
    code, output = cli("archive", "destroy", "d/app:19990101_01", "--dir", root, "--audit-log", audit)
    assert code == ExitCode.FAILURE
    assert "no such entry: d/app:19990101_01" in output
    assert snapshot(store) == before
    assert not audit.exists()

    code, output = cli("archive", "destroy", NEW, "--dir", root, "--dry-run", "--audit-log", audit)
    assert code == 0, output
    assert f"plan     destroy {NEW}" in output
    assert snapshot(store) == before

    code, output = cli("archive", "destroy", NEW, "--dir", root, "--audit-log", audit)
    assert code == 0, output
    assert entry_names(store) == {OLD, KEPT}
    assert "blobs removed" in output or "blob removed" in output
    assert [(r["action"], r["result"]) for r in pair_records(read_records(audit))] == [("destroy", "ok")]


def test_json_envelopes_of_failures_and_an_invalid_desired_state(tmp_path: Path) -> None:
    root = write_state(tmp_path / "state", tmp_path / "archive")
    (root / "environments" / "t.yaml").write_text("environment: t\nimages:\n  app:\n    - {tag: latest}\n")
    document = cli_json("archive", "destroy", "--dir", root, "-o", "json", code=ExitCode.INVALID)
    assert document["status"] == "invalid"
    assert [error["file"] for error in document["errors"]] == ["environments/t.yaml"]
    document = cli_json("archive", "verify", "--store", tmp_path / "nowhere", "-o", "json", code=ExitCode.FAILURE)
    assert document["status"] == "failed"
    assert document["layout_problems"]
    assert asyncio.run(OciLayout(tmp_path / "nowhere").entries()) == []
