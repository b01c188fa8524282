"""Benchmark: archive a large image into an OCI layout and restore it, reconciler against skopeo.

One 500 MiB image (5 incompressible layers, OCI format so both tools keep its digest) in a local
registry. Side by side in one run, alternating which tool goes first:

* archive: reconciler's copier into ``OciLayout`` (``child-archive``) vs ``skopeo copy docker://... oci:DIR``,
  each into a fresh directory;
* restore: reconciler's copier from the layout (``child-restore``) vs ``skopeo copy oci:DIR docker://...``,
  each into a fresh registry, both reading the layout reconciler wrote;
* reconciler on a 5x smaller image, to show its peak RSS does not grow with the image;
* ``verify_entry`` of the archived image (every blob re-hashed: what the engine does before it deletes
  from a registry), which skopeo has no equivalent of;
* the disk's floor: 500 MiB written and fsync-ed by a plain loop, the least any archive can cost here.

Wall time, CPU, peak RSS of each process (``bench.harness.run_measured``) and the registries' CPU.

    python -m bench.archive_copy [--layer-mib 100] [--repeat 3] [--cache DIR] [--scratch DIR] [--json FILE]

``child-*`` subcommands are the measured reconciler processes; the benchmark starts them itself.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench.harness import (
    Measurement,
    compile_package,
    fresh_registry,
    machine_info,
    markdown_table,
    run_measured,
    write_results,
)
from testkit.imagegen import generate_large_image
from testkit.imagepush import push_image

MIB = 1024 * 1024
REPOSITORY = "bench/large"
TAG = "20261127_01"
ROOT = Path(__file__).resolve().parents[1]


# -- the measured reconciler processes --------------------------------------------------------------


async def _archive(registry_url: str, repository: str, tag: str, directory: str) -> None:
    from reconciler.archive import OciLayout
    from reconciler.registry import Copier, RegistryClient

    async with RegistryClient(url=registry_url) as client, OciLayout(directory) as layout:
        await Copier().copy(
            source=client,
            source_repository=repository,
            reference=tag,
            target=layout,
            target_repository=repository,
            tag=tag,
        )


async def _restore(directory: str, repository: str, tag: str, registry_url: str) -> None:
    from reconciler.archive import OciLayout
    from reconciler.registry import Copier, RegistryClient

    async with RegistryClient(url=registry_url) as client, OciLayout(directory) as layout:
        await Copier().copy(
            source=layout,
            source_repository=repository,
            reference=tag,
            target=client,
            target_repository=repository,
            tag=tag,
        )


async def _verify(directory: str, name: str) -> None:
    from reconciler.archive import OciLayout

    verdict = await OciLayout(directory).verify_entry(name)
    if not verdict.ok:
        raise SystemExit(str(verdict))


# -- the benchmark -----------------------------------------------------------------------------------


def _child(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "bench.archive_copy", *arguments]


def disk_floor(scratch: Path, size: int) -> dict[str, float]:
    """Seconds to write ``size`` bytes in 1 MiB blocks and fsync them, on the scratch file system."""
    block = os.urandom(MIB)
    path = scratch / "disk-floor"
    started = time.perf_counter()
    with path.open("wb", buffering=0) as handle:
        for _ in range(size // MIB):
            handle.write(block)
        written = time.perf_counter()
        os.fsync(handle.fileno())
    synced = time.perf_counter()
    path.unlink()
    return {"write_seconds": written - started, "fsync_seconds": synced - written, "total_seconds": synced - started}


def run(layer_mib: int, repeat: int, cache: Path, scratch_parent: Path | None) -> dict[str, object]:
    image = generate_large_image(cache, layer_count=5, layer_size=layer_mib * MIB, seed="bench", fmt="oci")
    small = generate_large_image(
        cache, layer_count=5, layer_size=max(layer_mib // 5, 1) * MIB, seed="bench-small", fmt="oci"
    )
    archive: list[Measurement] = []
    restore: list[Measurement] = []
    with tempfile.TemporaryDirectory(prefix="bench-archive-", dir=scratch_parent) as scratch_dir:
        scratch = Path(scratch_dir)
        floor = disk_floor(scratch, image.total_blob_bytes)
        source = fresh_registry(scratch, "source")
        kept = scratch / "kept-layout"
        try:
            push_image(image, source.url, REPOSITORY, TAG)
            push_image(small, source.url, "bench/small", TAG)
            reference = f"docker://{source.host}/{REPOSITORY}:{TAG}"
            for round_number in range(repeat):
                order = ["skopeo", "reconciler"] if round_number % 2 == 0 else ["reconciler", "skopeo"]
                for tool in order:
                    layout = scratch / f"layout-{tool}-{round_number}"
                    if tool == "skopeo":
                        command = ["skopeo", "copy", "--quiet", "--src-tls-verify=false", reference]
                        command.append(f"oci:{layout}:{REPOSITORY}:{TAG}")
                    else:
                        command = _child("child-archive", source.url, REPOSITORY, TAG, str(layout))
                    label = f"archive {tool} #{round_number + 1}"
                    archive.append(
                        run_measured(command, label=label, cwd=ROOT, registries=[source], timeout=900).check()
                    )
                    if tool == "reconciler" and not kept.exists():
                        layout.rename(kept)
                    else:
                        shutil.rmtree(layout)
            small_layout = scratch / "layout-small"
            small_run = run_measured(
                _child("child-archive", source.url, "bench/small", TAG, str(small_layout)),
                label=f"archive reconciler, {small.total_blob_bytes // MIB} MiB image",
                cwd=ROOT,
                registries=[source],
            ).check()
            verify_run = run_measured(
                _child("child-verify", str(kept), f"{REPOSITORY}:{TAG}"), label="verify_entry (re-hash)", cwd=ROOT
            ).check()
            for round_number in range(repeat):
                order = ["skopeo", "reconciler"] if round_number % 2 == 0 else ["reconciler", "skopeo"]
                for tool in order:
                    target = fresh_registry(scratch, f"restore-{tool}-{round_number}")
                    try:
                        if tool == "skopeo":
                            command = ["skopeo", "copy", "--quiet", "--dest-tls-verify=false", "--preserve-digests"]
                            command += [f"oci:{kept}:{REPOSITORY}:{TAG}", f"docker://{target.host}/{REPOSITORY}:{TAG}"]
                        else:
                            command = _child("child-restore", str(kept), REPOSITORY, TAG, target.url)
                        label = f"restore {tool} #{round_number + 1}"
                        restore.append(
                            run_measured(command, label=label, cwd=ROOT, registries=[target], timeout=900).check()
                        )
                    finally:
                        target.stop()
                        shutil.rmtree(target.storage_dir, ignore_errors=True)
        finally:
            source.stop()

    def best(runs: list[Measurement], tool: str) -> Measurement:
        return min((m for m in runs if f" {tool} " in f"{m.label} "), key=lambda m: m.wall_seconds)

    size = image.total_blob_bytes
    summary = {}
    for phase, runs in (("archive", archive), ("restore", restore)):
        ours, theirs = best(runs, "reconciler"), best(runs, "skopeo")
        summary[phase] = {
            "reconciler_wall": ours.wall_seconds,
            "skopeo_wall": theirs.wall_seconds,
            "ratio_wall": ours.wall_seconds / theirs.wall_seconds,
            "reconciler_rss_mib": max(m.max_rss_mib for m in runs if "reconciler" in m.label),
            "skopeo_rss_mib": max(m.max_rss_mib for m in runs if "skopeo" in m.label),
            "reconciler_mb_per_s": size / ours.wall_seconds / 1e6,
        }
    return {
        "machine": machine_info(),
        "image_bytes": size,
        "disk_floor": floor,
        "measurements": [m.to_json() for m in [*archive, small_run, verify_run, *restore]],
        "table": markdown_table([*archive, small_run, verify_run, *restore]),
        "summary": summary,
        "small_image_rss_mib": small_run.max_rss_mib,
        "verify_seconds": verify_run.wall_seconds,
    }


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1].startswith("child-"):
        command, arguments = sys.argv[1], sys.argv[2:]
        if command == "child-archive":
            asyncio.run(_archive(*arguments))
        elif command == "child-restore":
            asyncio.run(_restore(*arguments))
        elif command == "child-verify":
            asyncio.run(_verify(*arguments))
        else:
            raise SystemExit(f"unknown {command}")
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layer-mib", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--cache", type=Path, default=Path(os.environ.get("RECONCILER_BENCH_CACHE", "/tmp/reconciler-bench-cache"))
    )
    parser.add_argument("--scratch", type=Path, default=None, help="where layouts and registries go (default: /tmp)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    compile_package()
    results = run(args.layer_mib, args.repeat, args.cache, args.scratch)
    print(results["table"])
    floor = results["disk_floor"]
    assert isinstance(floor, dict)
    size_mib = int(results["image_bytes"]) // MIB  # type: ignore[call-overload]
    print(
        f"disk floor: {size_mib} MiB written in {floor['write_seconds']:.2f} s + fsync {floor['fsync_seconds']:.2f} s "
        f"= {floor['total_seconds']:.2f} s"
    )
    summary = results["summary"]
    assert isinstance(summary, dict)
    for phase, numbers in summary.items():
        print(
            f"{phase}: reconciler {numbers['reconciler_wall']:.2f} s vs skopeo {numbers['skopeo_wall']:.2f} s "
            f"(ratio {numbers['ratio_wall']:.2f}, goal <= 0.90); peak RSS reconciler "
            f"{numbers['reconciler_rss_mib']:.1f} MiB (goal <= 64), skopeo {numbers['skopeo_rss_mib']:.1f} MiB"
        )
    print(f"reconciler peak RSS on the small image: {results['small_image_rss_mib']:.1f} MiB")
    print(f"verify_entry (every blob re-hashed): {results['verify_seconds']:.2f} s")
    if args.json:
        write_results(args.json, results)


if __name__ == "__main__":
    main()
