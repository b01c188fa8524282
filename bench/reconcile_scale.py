"""Benchmark: ``reconciler plan`` time and peak RSS at 1,000 / 5,000 / 10,000 declared versions.

For each size N, one registry (``test``) holds N in-sync tags: 100 repositories ``t/appNNN``, each with
one small image tagged N/100 times (tags ``YYYYMMDD_NN`` on consecutive days). The desired state pins
all N versions in d (the source: never observed) and t. Two measurements per size, each a whole process:

* ``plan``: ``reconciler plan DIR`` against the registry: load and validate the YAML, one HEAD per
  declared tag, plan, render. This is what CI and the controller pay.
* ``offline``: load + plan in one process with an observation built in memory (every tag in sync):
  the cost of the desired-state loader and the planner alone, without the network.

The goal is linear growth and <= 200 MiB peak RSS at 10,000.

    python -m bench.reconcile_scale [--sizes 1000 5000 10000] [--json results.json]
"""

from __future__ import annotations

import argparse
import datetime
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from bench.harness import Measurement, compile_package, machine_info, markdown_table, run_measured, write_results
from bench.imageset import reconciler_command
from testkit.demo import write_chain_state
from testkit.imagegen import image_for
from testkit.imagepush import push_image
from testkit.localregistry import LocalRegistry

REPOSITORIES = 100


def tags_for(count: int) -> list[str]:
    first = datetime.date(2026, 1, 1)
    return [f"{first + datetime.timedelta(days=k // 99):%Y%m%d}_{k % 99 + 1:02d}" for k in range(count)]


def populate(registry: LocalRegistry, versions: int) -> list[tuple[str, str, str]]:
    """Give ``registry`` ``versions`` tags in t/appNNN; return the pins (image, tag, digest)."""
    per_repo = versions // REPOSITORIES
    pins: list[tuple[str, str, str]] = []
    jobs: list[tuple[str, str, bytes, str]] = []
    for r in range(REPOSITORIES):
        name = f"app{r:03d}"
        image = image_for(name, "20260101_01", layer_count=1, layer_size=256)
        push_image(image, registry.url, f"t/{name}", None)
        for tag in tags_for(per_repo):
            pins.append((name, tag, str(image.digest)))
            jobs.append((f"t/{name}", tag, image.raw, image.media_type))

    with httpx.Client(base_url=registry.url, timeout=60) as client:

        def put(job: tuple[str, str, bytes, str]) -> None:
            repository, tag, raw, media_type = job
            response = client.put(
                f"/v2/{repository}/manifests/{tag}", content=raw, headers={"Content-Type": media_type}
            )
            response.raise_for_status()

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(put, jobs))
    return pins


OFFLINE = """
import sys, time
from reconciler.manifests import load_desired_state
from reconciler.engine.plan import plan, tag_lookups
from reconciler.model.observed import ObservedState
started = time.perf_counter()
desired = load_desired_state(sys.argv[1])
loaded = time.perf_counter()
digests = {(p.image, p.tag): p.digest for p in desired.environments["t"].versions()}
observed = ObservedState(tags={k: digests[(k.repository.split("/", 1)[1], k.tag)] for k in tag_lookups(desired)})
built = time.perf_counter()
result = plan(desired, observed)
planned = time.perf_counter()
assert result.is_empty and result.in_sync == len(digests)
print(f"load {loaded - started:.3f}s plan {planned - built:.3f}s in_sync {result.in_sync}")
"""


def run(sizes: list[int]) -> dict[str, object]:
    measurements: list[Measurement] = []
    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as scratch_dir:
        scratch = Path(scratch_dir)
        for size in sizes:
            registry = LocalRegistry(name=f"test-{size}", storage_dir=scratch / f"registry-{size}").start()
            try:
                started = time.monotonic()
                pins = populate(registry, size)
                print(f"populated {size} tags in {time.monotonic() - started:.1f}s", file=sys.stderr)
                urls = dict.fromkeys(("dev", "test", "pre", "prod-a", "prod-b"), registry.url)
                root = write_chain_state(scratch / f"state-{size}", urls, {"d": pins, "t": pins})
                plan = [*reconciler_command(), "plan", str(root), "--detailed-exitcode"]
                measurements.append(
                    run_measured(plan, label=f"plan {size}", registries=[registry], timeout=900).check()
                )
                offline = [sys.executable, "-c", OFFLINE, str(root)]
                measured = run_measured(offline, label=f"offline {size}", timeout=900).check()
                measurements.append(measured)
                notes.append(f"{size}: {measured.stdout_tail.strip()}")
            finally:
                registry.stop()
    return {
        "machine": machine_info(),
        "sizes": sizes,
        "measurements": [m.to_json() for m in measurements],
        "table": markdown_table(measurements),
        "offline_breakdown": notes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 10000])
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    compile_package()
    results = run(args.sizes)
    print(results["table"])
    for note in results["offline_breakdown"]:  # type: ignore[attr-defined]
        print(note)
    if args.json:
        write_results(args.json, results)


if __name__ == "__main__":
    main()
