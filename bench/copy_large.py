"""Benchmark: copy one large image (5 incompressible layers) between two local registries.

reconciler (``reconciler copy SRC DST``) against ``skopeo copy --all`` in the same run, each copy into a
fresh, empty target registry, alternating which tool goes first. Reports wall time, CPU time, peak RSS
and requests (both registries). Also runs reconciler on a 5x smaller image to show that its peak RSS
does not grow with the image (streaming, never a blob in memory).

    python -m bench.copy_large [--layer-mib 100] [--repeat 3] [--cache DIR] [--json results.json]

The image is generated once into ``--cache`` (default ``$RECONCILER_BENCH_CACHE`` or
``/tmp/reconciler-bench-cache``) and reused by later runs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
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
from bench.imageset import reconciler_command
from testkit.imagegen import generate_large_image
from testkit.imagepush import push_image

MIB = 1024 * 1024


def run(layer_mib: int, repeat: int, cache: Path) -> dict[str, object]:
    image = generate_large_image(cache, layer_count=5, layer_size=layer_mib * MIB, seed="bench")
    small = generate_large_image(cache, layer_count=5, layer_size=max(layer_mib // 5, 1) * MIB, seed="bench-small")
    measurements: list[Measurement] = []
    with tempfile.TemporaryDirectory(prefix="bench-large-") as scratch_dir:
        scratch = Path(scratch_dir)
        source = fresh_registry(scratch, "source")
        try:
            push_image(image, source.url, "bench/large", "20261127_01")
            push_image(small, source.url, "bench/small", "20261127_01")
            for round_number in range(repeat):
                order = ["skopeo", "reconciler"] if round_number % 2 == 0 else ["reconciler", "skopeo"]
                for tool in order:
                    target = fresh_registry(scratch, f"target-{tool}-{round_number}")
                    try:
                        if tool == "skopeo":
                            command = [
                                "skopeo",
                                "copy",
                                "--all",
                                "--preserve-digests",
                                "--src-tls-verify=false",
                                "--dest-tls-verify=false",
                                f"docker://{source.host}/bench/large:20261127_01",
                                f"docker://{target.host}/bench/large:20261127_01",
                            ]
                        else:
                            command = [
                                *reconciler_command(),
                                "copy",
                                f"{source.host}/bench/large:20261127_01",
                                f"{target.host}/bench/large",
                            ]
                        label = f"{tool} #{round_number + 1}"
                        measurements.append(
                            run_measured(command, label=label, registries=[source, target], timeout=900).check()
                        )
                    finally:
                        target.stop()
                        shutil.rmtree(target.storage_dir, ignore_errors=True)
            target = fresh_registry(scratch, "target-small")
            try:
                command = [
                    *reconciler_command(),
                    "copy",
                    f"{source.host}/bench/small:20261127_01",
                    f"{target.host}/bench/small",
                ]
                small_run = run_measured(
                    command, label=f"reconciler, {small.total_blob_bytes // MIB} MiB image", registries=[source, target]
                ).check()
            finally:
                target.stop()
        finally:
            source.stop()
    by_tool = {tool: [m for m in measurements if m.label.startswith(tool)] for tool in ("skopeo", "reconciler")}
    best = {tool: min(runs, key=lambda m: m.wall_seconds) for tool, runs in by_tool.items()}
    size = image.total_blob_bytes
    return {
        "machine": machine_info(),
        "image_bytes": size,
        "measurements": [m.to_json() for m in [*measurements, small_run]],
        "table": markdown_table([*measurements, small_run]),
        "best": {
            tool: {
                "wall_seconds": m.wall_seconds,
                "mb_per_s": size / m.wall_seconds / 1e6,
                "max_rss_mib": m.max_rss_mib,
            }
            for tool, m in best.items()
        },
        "ratio_wall": best["reconciler"].wall_seconds / best["skopeo"].wall_seconds,
        "small_image_rss_mib": small_run.max_rss_mib,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layer-mib", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--cache", type=Path, default=Path(os.environ.get("RECONCILER_BENCH_CACHE", "/tmp/reconciler-bench-cache"))
    )
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    compile_package()
    results = run(args.layer_mib, args.repeat, args.cache)
    print(results["table"])
    best = results["best"]
    assert isinstance(best, dict)
    for tool, numbers in best.items():
        wall, rate, rss = numbers["wall_seconds"], numbers["mb_per_s"], numbers["max_rss_mib"]
        print(f"best {tool}: {wall:.2f} s, {rate:.0f} MB/s, {rss:.1f} MiB RSS")
    print(f"wall ratio reconciler/skopeo: {results['ratio_wall']:.2f} (goal <= 0.90)")
    print(f"reconciler peak RSS on the small image: {results['small_image_rss_mib']:.1f} MiB")
    if args.json:
        write_results(args.json, results)


if __name__ == "__main__":
    main()
