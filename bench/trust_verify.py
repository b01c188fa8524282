"""Benchmark: verify the SSH signatures of 1,000 commits that changed ``environments/p.yaml``.

A desired-state repository is built in a scratch directory: one commit with ``trust: {p: ...}`` and an
allowed-signers file, then ``--commits`` commits, each changing ``environments/p.yaml`` and signed with
an ed25519 key (``git commit -S``, ``gpg.format=ssh``). Then, each in its own process so that CPU time
includes git and every ``ssh-keygen`` it spawns (``bench.harness.run_measured``):

* ``check_trust jobs=N``: the whole check from the trusted point (the first commit) to HEAD, as
  ``plan``/``apply`` run it, with 1 and with ``nproc`` parallel verification chunks;
* ``git log %G? (1 process)``: git's own verification of the same commits, one process, nothing else;
* ``ssh-keygen floor``: the two ``ssh-keygen`` runs git makes per signed commit (``-Y find-principals``,
  then ``-Y verify``), run directly ``--floor-samples`` times and scaled to the commit count and spread
  over every core: no check that lets real ssh-keygen verify each signature can go below it.

    python -m bench.trust_verify [--commits 1000] [--repeat 2] [--json results.json]

Goal: under 3 s for 1,000 commits.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.harness import Measurement, compile_package, machine_info, run_measured, write_results

GOAL_SECONDS = 3.0
CONFIG = """version: 1
registries:
  prod: {url: "http://127.0.0.1:5000"}
environments:
  d: {registry: prod, prefix: d, source: true}
  p: {registry: prod, prefix: p, from: d}
trust:
  p: {allowed_signers: trust/p_allowed_signers}
"""
CHECK = (
    "import sys; from reconciler.policy.trustcheck import check_trust; "
    "r = check_trust(sys.argv[1], 'HEAD', trusted_base=sys.argv[2], jobs=int(sys.argv[3])); "
    "print(r.commits, len(r.approvals), len(r.violations)); sys.exit(0 if r.ok else 3)"
)


def _git(repo: Path, *args: str, env: dict[str, str]) -> str:
    return subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True, text=True).stdout.strip()


def build(scratch: Path, commits: int) -> tuple[Path, str, Path]:
    """(repository, trusted base SHA, allowed-signers file) with ``commits`` signed changes to p."""
    key = scratch / "release-manager"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    public = " ".join(key.with_suffix(".pub").read_text().split()[:2])
    repo = scratch / "desired"
    (repo / "environments").mkdir(parents=True)
    (repo / "trust").mkdir()
    env = {
        "HOME": str(scratch), "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "Release Manager", "GIT_AUTHOR_EMAIL": "rm@example.com",
        "GIT_COMMITTER_NAME": "Release Manager", "GIT_COMMITTER_EMAIL": "rm@example.com",
    }  # fmt: skip
    _git(repo, "init", "-q", "-b", "main", env=env)
    _git(repo, "config", "gpg.format", "ssh", env=env)
    _git(repo, "config", "user.signingkey", str(key), env=env)
    (repo / "reconciler.yaml").write_text(CONFIG)
    signers = repo / "trust" / "p_allowed_signers"
    signers.write_text(f'rm@example.com namespaces="git" {public}\n')
    pin = repo / "environments" / "p.yaml"
    pin.write_text("environment: p\nimages: {}\n")
    _git(repo, "add", "-A", env=env)
    _git(repo, "commit", "-q", "-S", "-m", "trust p", env=env)
    base = _git(repo, "rev-parse", "HEAD", env=env)
    for n in range(commits):
        digest = f"{n:064x}"
        pin.write_text(f'environment: p\nimages:\n  app:\n    - {{tag: "20261201_01", digest: "sha256:{digest}"}}\n')
        _git(repo, "commit", "-q", "-S", "-a", "-m", f"promote {n}", env=env)
    return repo, base, signers


def _signed_parts(repo: Path) -> tuple[bytes, bytes]:
    """(signature, signed payload) of HEAD, split as git splits them (only to time ssh-keygen alone)."""
    raw = subprocess.run(["git", "cat-file", "commit", "HEAD"], cwd=repo, check=True, capture_output=True).stdout
    header, message = raw.split(b"\n\n", 1)
    signature: list[bytes] = []
    payload: list[bytes] = []
    inside = False
    for line in header.split(b"\n"):
        if line.startswith(b"gpgsig "):
            signature.append(line[len(b"gpgsig ") :])
            inside = True
        elif inside and line.startswith(b" "):
            signature.append(line[1:])
        else:
            inside = False
            payload.append(line)
    return b"\n".join(signature) + b"\n", b"\n".join(payload) + b"\n\n" + message


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def ssh_keygen_floor(repo: Path, signers: Path, samples: int) -> dict[str, float]:
    """CPU seconds of one ``ssh-keygen -Y find-principals`` and one ``-Y verify`` (the two runs git makes
    per signed commit), measured as the children's rusage, so a busy machine does not inflate them."""
    signature, payload = _signed_parts(repo)
    with tempfile.TemporaryDirectory() as scratch:
        sig = Path(scratch) / "sig"
        sig.write_bytes(signature)
        commands = {
            "find-principals": ["ssh-keygen", "-Y", "find-principals", "-f", str(signers), "-s", str(sig)],
            "verify": [
                "ssh-keygen", "-Y", "verify", "-n", "git", "-f", str(signers), "-I", "rm@example.com", "-s", str(sig),
            ],
        }  # fmt: skip
        cpu: dict[str, float] = {}
        for name, command in commands.items():
            before = _children_cpu()
            for _ in range(samples):
                subprocess.run(command, input=payload, check=True, capture_output=True)
            cpu[name] = (_children_cpu() - before) / samples
        return cpu


def run(commits: int, repeat: int, floor_samples: int) -> dict[str, object]:
    compile_package()
    cores = len(os.sched_getaffinity(0))
    measurements: list[Measurement] = []
    with tempfile.TemporaryDirectory(prefix="bench-trust-") as scratch_dir:
        scratch = Path(scratch_dir)
        started = time.perf_counter()
        repo, base, signers = build(scratch, commits)
        build_seconds = time.perf_counter() - started
        git_log = [
            "git", "-C", str(repo), "-c", f"gpg.ssh.allowedSignersFile={signers}", "log", "--first-parent",
            "--format=%H %G? %GS", f"{base}..HEAD",
        ]  # fmt: skip
        for round_number in range(repeat):
            for jobs in sorted({1, cores}):
                command = [sys.executable, "-c", CHECK, str(repo), base, str(jobs)]
                measured = run_measured(command, label=f"check_trust jobs={jobs} #{round_number + 1}")
                measurements.append(measured.check())
            measurements.append(run_measured(git_log, label=f"git log %G? (1 process) #{round_number + 1}").check())
        floor_cpu = ssh_keygen_floor(repo, signers, floor_samples)
    per_commit = sum(floor_cpu.values())
    table = ["| run | wall s | CPU s (user+sys) | peak RSS MiB | commits/s |", "| --- | ---: | ---: | ---: | ---: |"]
    for m in measurements:
        table.append(
            f"| {m.label} | {m.wall_seconds:.2f} | {m.cpu_seconds:.2f} ({m.user_seconds:.2f}+{m.system_seconds:.2f}) "
            f"| {m.max_rss_mib:.1f} | {commits / m.wall_seconds:.0f} |"
        )
    best = min((m for m in measurements if m.label.startswith("check_trust")), key=lambda m: m.wall_seconds)
    return {
        "machine": machine_info(),
        "commits": commits,
        "build_seconds": build_seconds,
        "measurements": [m.to_json() for m in measurements],
        "table": "\n".join(table),
        "best_check_seconds": best.wall_seconds,
        "best_check": best.label,
        "cores": cores,
        "ssh_keygen_cpu_ms": {name: seconds * 1000 for name, seconds in floor_cpu.items()},
        "ssh_keygen_floor_seconds": per_commit * commits / cores,
        "verify_only_floor_seconds": floor_cpu["verify"] * commits / cores,
        "check_cpu_ms_per_commit": 1000
        * min(m.cpu_seconds for m in measurements if m.label.startswith("check"))
        / commits,
        "goal_seconds": GOAL_SECONDS,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commits", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--floor-samples", type=int, default=100)
    parser.add_argument("--json", type=Path, help="write raw results here")
    args = parser.parse_args()
    results = run(args.commits, args.repeat, args.floor_samples)
    machine = results["machine"]
    assert isinstance(machine, dict)
    print(f"{machine['date']}, {machine['nproc']} CPUs ({machine['cpu']}), load {machine['load_average']}")
    print(f"built {results['commits']} signed commits in {results['build_seconds']:.1f} s\n")
    print(results["table"])
    cpu = results["ssh_keygen_cpu_ms"]
    assert isinstance(cpu, dict)
    print(
        f"\nbest check: {results['best_check_seconds']:.2f} s ({results['best_check']}), "
        f"{results['check_cpu_ms_per_commit']:.1f} ms of CPU per commit; goal {GOAL_SECONDS:.1f} s.\n"
        f"ssh-keygen CPU per commit: find-principals {cpu['find-principals']:.1f} ms + verify {cpu['verify']:.1f} ms; "
        f"floor {results['ssh_keygen_floor_seconds']:.2f} s for {results['commits']} commits "
        f"on {results['cores']} cores "
        f"(verify alone, without git's find-principals: {results['verify_only_floor_seconds']:.2f} s)"
    )
    if args.json:
        write_results(args.json, results)


if __name__ == "__main__":
    main()
