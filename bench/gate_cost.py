"""Benchmark: what policy gates add to a first apply. The same 200 images (bench/imageset.py: 150
single-platform images, 50 two-platform indexes, so 250 platform configs) promoted d -> t by
``reconciler apply``, once into an ungated t and once into a t gated by ``non_root``, ``exec_form``,
``max_layers``, ``max_bytes`` and ``labels``, alternating, in the same run on the same machine.

Goals (issue #12): at most one extra request per platform config not already fetched (the copy
fetches manifests, not configs, so up to 250 here), and at most 15% more wall time.

    python -m bench.gate_cost [--repeat 2] [--json results.json]
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
    run_measured,
    write_results,
)
from bench.imageset import IMAGES, reconciler_command, seed_images
from testkit.demo import write_chain_state

PLATFORM_CONFIGS = 150 + 50 * 2
GATES = (
    "gates:\n  t: {non_root: true, exec_form: true, max_layers: 8, max_bytes: 64Mi,"
    " labels: [org.opencontainers.image.version]}\n"
)


def run(repeat: int) -> dict[str, object]:
    measurements: list[Measurement] = []
    with tempfile.TemporaryDirectory(prefix="bench-gates-") as scratch_dir:
        scratch = Path(scratch_dir)
        dev = fresh_registry(scratch, "dev")
        try:
            pins = [(image.name, image.tag, image.digest) for image in seed_images(dev.url, "d")]
            for round_number in range(repeat):
                order = ["ungated", "gated"] if round_number % 2 == 0 else ["gated", "ungated"]
                for variant in order:
                    target = fresh_registry(scratch, f"{variant}-{round_number}")
                    try:
                        urls = {"dev": dev.url, "test": target.url, "pre": target.url}
                        urls |= {"prod-a": target.url, "prod-b": target.url}
                        root = write_chain_state(scratch / f"{variant}-{round_number}", urls, {"d": pins, "t": pins})
                        if variant == "gated":
                            config = root / "reconciler.yaml"
                            config.write_text(config.read_text() + GATES)
                        audit = scratch / f"audit-{variant}-{round_number}.jsonl"
                        command = [*reconciler_command(), "apply", str(root), "--audit-log", str(audit)]
                        label = f"apply {variant} #{round_number + 1}"
                        measurements.append(
                            run_measured(command, label=label, registries=[dev, target], timeout=900).check()
                        )
                    finally:
                        target.stop()
        finally:
            dev.stop()

    gated, ungated = fastest(measurements, "apply gated"), fastest(measurements, "apply ungated")
    extra = gated.total_requests - ungated.total_requests
    return {
        "machine": machine_info(),
        "images": IMAGES,
        "platform_configs": PLATFORM_CONFIGS,
        "measurements": [m.to_json() for m in measurements],
        "table": markdown_table(measurements, per=IMAGES),
        "extra_requests": extra,
        "wall_ratio": gated.wall_seconds / ungated.wall_seconds,
        "cpu_ratio": gated.cpu_seconds / ungated.cpu_seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    compile_package()
    results = run(args.repeat)
    print(results["table"])
    print(
        f"extra requests with gates: {results['extra_requests']} "
        f"(goal <= {results['platform_configs']}, one per platform config)"
    )
    print(f"wall ratio gated / ungated (best of {args.repeat}): {results['wall_ratio']:.2f} (goal <= 1.15)")
    print(f"CPU ratio gated / ungated: {results['cpu_ratio']:.2f}")
    if args.json:
        write_results(args.json, results)


if __name__ == "__main__":
    main()
