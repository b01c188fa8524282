"""Benchmark: promote 200 small images one stage (d -> t) with ``reconciler apply``, then a no-op
``reconciler plan``, against ``skopeo sync`` of the same 200 images (first copy, then its no-op rerun),
in the same run on the same machine.

The 200 images: 20 repositories ``d/appNN`` x 10 tags ``20261127_NN``; 50 of them two-platform indexes
(the newest tags of each repository), the rest single-platform; each repository's images share a base
layer. The desired state pins all 200 in d and t (the other environments are empty). reconciler copies
dev -> test; skopeo syncs the same 20 repositories from dev into its own empty registry. Every run is a
whole process (Python start-up included), measured by ``bench.harness``.

    python -m bench.reconcile_sync [--repeat 2] [--json results.json]
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
from bench.imageset import (
    IMAGES,
    REPOSITORIES,
    reconciler_command,
    seed_images,
    skopeo_sync_command,
    write_skopeo_sync_file,
)
from testkit.demo import write_chain_state


def run(repeat: int) -> dict[str, object]:
    measurements: list[Measurement] = []
    with tempfile.TemporaryDirectory(prefix="bench-reconcile-") as scratch_dir:
        scratch = Path(scratch_dir)
        dev = fresh_registry(scratch, "dev")
        try:
            pins = [(image.name, image.tag, image.digest) for image in seed_images(dev.url, "d")]
            repositories = [f"d/app{r:02d}" for r in range(REPOSITORIES)]
            sync_file = write_skopeo_sync_file(scratch / "sync.yaml", dev.host, repositories)
            for round_number in range(repeat):
                order = ["skopeo", "reconciler"] if round_number % 2 == 0 else ["reconciler", "skopeo"]
                for tool in order:
                    target = fresh_registry(scratch, f"{tool}-{round_number}")
                    try:
                        if tool == "skopeo":
                            command = skopeo_sync_command(sync_file, f"{target.host}/t")
                            phases = [("sync", command), ("sync no-op", command)]
                        else:
                            urls = {"dev": dev.url, "test": target.url, "pre": target.url}
                            urls |= {"prod-a": target.url, "prod-b": target.url}
                            root = write_chain_state(scratch / f"state-{round_number}", urls, {"d": pins, "t": pins})
                            audit = scratch / f"audit-{round_number}.jsonl"
                            apply = [*reconciler_command(), "apply", str(root), "--audit-log", str(audit)]
                            plan = [*reconciler_command(), "plan", str(root), "--detailed-exitcode"]
                            phases = [("apply", apply), ("plan no-op", plan), ("apply no-op", apply)]
                        for phase, command in phases:
                            label = f"{tool} {phase} #{round_number + 1}"
                            measurements.append(
                                run_measured(command, label=label, registries=[dev, target], timeout=900).check()
                            )
                    finally:
                        target.stop()
        finally:
            dev.stop()

    def best(label: str) -> Measurement:
        return fastest(measurements, label)

    labels = ["skopeo sync", "skopeo sync no-op", "reconciler apply", "reconciler plan no-op", "reconciler apply no-op"]
    summary = {
        label: {
            "wall_seconds": best(label).wall_seconds,
            "cpu_seconds": best(label).cpu_seconds,
            "max_rss_mib": best(label).max_rss_mib,
            "requests_per_image": best(label).total_requests / IMAGES,
            "registry_cpu_seconds": best(label).registries_cpu_seconds,
        }
        for label in labels
    }
    return {
        "machine": machine_info(),
        "images": IMAGES,
        "measurements": [m.to_json() for m in measurements],
        "table": markdown_table(measurements, per=IMAGES),
        "best": summary,
        "ratio_apply": summary["reconciler apply"]["wall_seconds"] / summary["skopeo sync"]["wall_seconds"],
        "ratio_noop_plan": summary["reconciler plan no-op"]["wall_seconds"]
        / summary["skopeo sync no-op"]["wall_seconds"],
        "floor_apply": registry_floor(best("reconciler apply"), best("skopeo sync").wall_seconds, 0.25),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    compile_package()
    results = run(args.repeat)
    print(results["table"])
    for label, numbers in results["best"].items():  # type: ignore[attr-defined]
        print(f"best {label}: {numbers}")
    print(f"wall ratio first apply / skopeo sync: {results['ratio_apply']:.2f} (goal <= 0.25)")
    print(f"wall ratio no-op plan / skopeo sync no-op: {results['ratio_noop_plan']:.2f} (goal <= 0.25)")
    print(results["floor_apply"])
    if args.json:
        write_results(args.json, results)


if __name__ == "__main__":
    main()
