"""Benchmark: 200 small images (150 single-platform + 50 two-platform indexes, 20 repositories, tags
``20261127_NN``) copied to an empty registry, then the same again when everything is already there.

reconciler (``reconciler copy --all-tags --recursive SRC/bench DST/bench``: one process) against
``skopeo sync`` (one process, the 20 repositories listed in a YAML source file), each into its own empty
target registry, in the same run. Reports wall time, CPU, peak RSS and requests per image (both
registries counted, from their access logs).

    python -m bench.copy_many [--repeat 2] [--json results.json]

Images are deterministic (``testkit.imagegen``): every repository has a base layer shared by
its images (as a runtime layer is); each image adds an application layer and its config, and each
platform of an index one more layer.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from bench.harness import (
    Measurement,
    compile_package,
    fastest,
    fresh_registry,
    machine_info,
    markdown_table,
    registry_floor,
    run_measured,
    write_results,
)
from bench.imageset import IMAGES, reconciler_command, seed_images, skopeo_sync_command, write_skopeo_sync_file


def run(repeat: int) -> dict[str, object]:
    images = IMAGES
    measurements: list[Measurement] = []
    with tempfile.TemporaryDirectory(prefix="bench-many-") as scratch_dir:
        scratch = Path(scratch_dir)
        source = fresh_registry(scratch, "source")
        try:
            repositories = sorted({image.repository for image in seed_images(source.url, "bench")})
            sync_file = write_skopeo_sync_file(scratch / "sync.yaml", source.host, repositories)
            for round_number in range(repeat):
                order = ["skopeo", "reconciler"] if round_number % 2 == 0 else ["reconciler", "skopeo"]
                for tool in order:
                    target = fresh_registry(scratch, f"target-{tool}-{round_number}")
                    try:
                        if tool == "skopeo":
                            command = skopeo_sync_command(sync_file, target.host)
                        else:
                            command = [
                                *reconciler_command(),
                                "copy",
                                "--all-tags",
                                "--recursive",
                                f"{source.host}/bench",
                                f"{target.host}/bench",
                            ]
                        for phase in ("copy", "no-op"):
                            label = f"{tool} {phase} #{round_number + 1}"
                            measurements.append(
                                run_measured(command, label=label, registries=[source, target], timeout=900).check()
                            )
                        tags = target.request_log()  # sanity: the copy produced 200 tagged images
                        assert tags, "target registry saw no requests"
                    finally:
                        target.stop()
        finally:
            source.stop()

    def best(tool: str, phase: str) -> Measurement:
        return fastest(measurements, f"{tool} {phase}")

    summary = {
        f"{tool} {phase}": {
            "wall_seconds": best(tool, phase).wall_seconds,
            "cpu_seconds": best(tool, phase).cpu_seconds,
            "max_rss_mib": best(tool, phase).max_rss_mib,
            "requests_per_image": best(tool, phase).total_requests / images,
            "registries_cpu_seconds": best(tool, phase).registries_cpu_seconds,
        }
        for tool in ("skopeo", "reconciler")
        for phase in ("copy", "no-op")
    }
    return {
        "machine": machine_info(),
        "images": images,
        "measurements": [m.to_json() for m in measurements],
        "table": markdown_table(measurements, per=images),
        "best": summary,
        "ratio_copy": summary["reconciler copy"]["wall_seconds"] / summary["skopeo copy"]["wall_seconds"],
        "ratio_noop": summary["reconciler no-op"]["wall_seconds"] / summary["skopeo no-op"]["wall_seconds"],
        "floor_copy": registry_floor(best("reconciler", "copy"), best("skopeo", "copy").wall_seconds, 0.25),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    compile_package()
    results = run(args.repeat)
    print(results["table"])
    print(f"wall ratio copy reconciler/skopeo: {results['ratio_copy']:.2f} (goal <= 0.25)")
    print(f"wall ratio no-op reconciler/skopeo: {results['ratio_noop']:.2f} (goal <= 0.25)")
    print(results["floor_copy"])
    if args.json:
        write_results(args.json, results)


if __name__ == "__main__":
    main()
