"""Every command of the console script against a registry that refuses connections, answers 500 to
everything, or accepts connections and never answers (frozen): never a traceback, always a plain error.

What used to happen: an unmapped exception from the registry layer reached the user as a Python traceback,
and a frozen registry held a command for minutes (per-read timeouts only). Before this module's fixes, a
registry frozen from the start still cost every command two deadlines (the first overrun was retried), and
``ls``, ``inspect`` and ``copy --all-tags`` with ``-o json`` printed no JSON at all when the registry
failed. Now every command that talks to a registry exits 1 within about one deadline, with one line per
failure naming the registry (``-o json``: an ``error`` envelope on stdout too), and the commands that never
talk to a registry (validate, schema, lint-dockerfile, history, trace, and demo, controller and archive --help) are
unaffected.

The runs go through the real console script (``reconciler.cli.main``), overlapped: the frozen ones mostly
wait for their deadline, the others mostly for their retries' backoff.
"""

from __future__ import annotations

import concurrent.futures
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer.main
from support.httpserver import LoopbackServer, Request, Response

from reconciler.cli import app
from reconciler.exitcodes import ExitCode
from testkit.demo import CHAIN_REGISTRIES, write_chain_state

from .kit import Run, assert_no_traceback, cli_env, error_lines, git_commit_all, run_all

TAG = "20261127_01"
DIGEST = "sha256:" + "ab" * 32
DOCKERFILE = "FROM registry.example.com/base@sha256:" + "cd" * 32 + '\nUSER 10001\nCMD ["/app"]\n'

# command -> (arguments, does it talk to a registry?). {host} is the failing registry, {dir} the desired
# state (a Git work tree pointing every registry at {host}), {file} a Dockerfile.
COMMANDS: dict[str, list[tuple[list[str], bool]]] = {
    "validate": [(["validate", "{dir}"], False)],
    "schema": [(["schema"], False)],
    "lint-dockerfile": [(["lint-dockerfile", "{file}"], False)],
    "demo": [(["demo", "--help"], False)],
    "controller": [(["controller", "--help"], False)],  # a long-running loop: its own tests drive it
    "archive": [(["archive", "--help"], False)],  # restore needs an archive store with entries: see archive's tests
    "history": [(["history", "app", "{dir}"], False)],
    "trace": [(["trace", DIGEST, "{dir}"], False)],
    "diff": [(["diff", "{dir}", "--base", "HEAD", "--plan"], True)],
    "plan": [(["plan", "{dir}"], True), (["plan", "{dir}", "-o", "json"], True)],
    "apply": [(["apply", "{dir}"], True), (["apply", "{dir}", "-o", "json"], True)],
    "copy": [
        (["copy", f"{{host}}/d/app:{TAG}", "{host}/t/app"], True),
        (["copy", "--all-tags", "{host}/d/app", "{host}/t/app", "-o", "json"], True),
        (["copy", "--all-tags", "--recursive", "{host}", "{host}/mirror"], True),
    ],
    "ls": [(["ls", "{host}/d/app"], True), (["ls", "{host}", "-o", "json"], True)],
    "digest": [(["digest", f"{{host}}/d/app:{TAG}"], True)],
    "inspect": [
        (["inspect", f"{{host}}/d/app:{TAG}"], True),
        (["inspect", f"{{host}}/d/app:{TAG}", "-o", "json"], True),
    ],
    "promote": [(["promote", "web", "{dir}", "--to", "t"], True)],
    "next-tag": [(["next-tag", "web", "{dir}"], True)],
}
MODES = ("refused", "errors", "frozen")
OFFLINE = ("validate", "schema", "lint-dockerfile", "demo", "controller", "archive", "history", "trace")
UTILITIES = ("copy", "ls", "digest", "inspect")
PROMOTING = ("promote", "next-tag")
WELL_UNDER_A_MINUTE = 60.0
"""Seconds. A registry frozen from the start costs one deadline (15 s); the machine is slow and shared."""


def test_the_table_names_every_command() -> None:
    """A new command must be added to COMMANDS, so that it is driven against failing registries too."""
    registered = set(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
    assert registered == set(COMMANDS), f"add to COMMANDS: {sorted(registered - set(COMMANDS))}"


@pytest.fixture(scope="module")
def failing() -> Iterator[dict[str, LoopbackServer]]:
    """The three failing registries: connection refused, 500 to everything, frozen."""

    def broken(request: Request) -> Response:
        return Response.error(500, "UNKNOWN", "storage driver failed")

    servers = {mode: LoopbackServer(broken, name=mode).start() for mode in MODES}
    servers["refused"].down()
    servers["frozen"].freeze()
    try:
        yield servers
    finally:
        servers["frozen"].thaw()
        for server in servers.values():
            server.stop()


def _desired_state(root: Path, url: str) -> Path:
    pins = {"d": [("app", TAG, DIGEST), ("web", TAG, DIGEST)], "t": [("app", TAG, DIGEST)]}
    write_chain_state(root, dict.fromkeys(CHAIN_REGISTRIES, url), pins)
    git_commit_all(root)
    return root


@pytest.fixture(scope="module")
def runs(failing: dict[str, LoopbackServer], tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], Run]:
    """Every command line in every mode: (mode, command line) -> its run. The frozen runs mostly wait, so
    they all start at once, in a thread, while the others take turns eight at a time (the CI has 2 cores;
    they mostly wait on backoffs)."""
    base = tmp_path_factory.mktemp("every-command")
    dockerfile = base / "Dockerfile"
    dockerfile.write_text(DOCKERFILE)
    lines: dict[str, list[list[str]]] = {mode: [] for mode in MODES}
    for mode, server in failing.items():
        root = _desired_state(base / mode, server.url)
        for variants in COMMANDS.values():
            for arguments, contacts in variants:
                if not contacts and mode != "refused":
                    continue  # offline commands: once is enough
                if "json" in arguments and mode == "refused":
                    continue  # JSON output: with 500s and frozen (a refused connection fails the same way)
                lines[mode].append([a.format(host=server.host, dir=root, file=dockerfile) for a in arguments])
    env = cli_env(base)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as waiting:
        frozen = waiting.submit(run_all, lines["frozen"], env=env, cwd=base)
        busy = run_all(lines["refused"] + lines["errors"], env=env, cwd=base, parallel=8)
        results = {"frozen": frozen.result()}
    results["refused"], results["errors"] = busy[: len(lines["refused"])], busy[len(lines["refused"]) :]
    return {
        (mode, " ".join(line)): result
        for mode in MODES
        for line, result in zip(lines[mode], results[mode], strict=True)
    }


@pytest.mark.parametrize("mode", MODES)
def test_commands_that_talk_to_a_failing_registry_fail_plainly(
    mode: str, runs: dict[tuple[str, str], Run], failing: dict[str, LoopbackServer]
) -> None:
    host = failing[mode].host
    checked = 0
    for (run_mode, _line), result in runs.items():
        if run_mode != mode or result.args[0] in OFFLINE:
            continue
        checked += 1
        assert_no_traceback(result)
        assert result.code == ExitCode.FAILURE, str(result)
        assert result.seconds < WELL_UNDER_A_MINUTE, str(result)
        # the utilities name a registry by its address, the desired-state commands by its name
        named = host if result.args[0] in UTILITIES else ("dev/d/web" if result.args[0] in PROMOTING else "test/t/app")
        assert named in result.output, f"the failing registry is not named:\n{result}"
        for line in result.stderr.splitlines():
            assert len(line) < 1000, f"an error line that is a dump, not a message:\n{result}"
        if "json" in result.args:
            document = json.loads(result.stdout)  # the envelope, even when the registry failed
            assert document["version"] == 1, str(result)
            assert document["status"] in ("failed", "error"), str(result)
        elif result.args[0] in (*UTILITIES, *PROMOTING):
            assert len(error_lines(result)) == 1, f"expected exactly one error line:\n{result}"
    assert checked >= 10


def test_commands_that_never_talk_to_a_registry_are_unaffected(runs: dict[tuple[str, str], Run]) -> None:
    offline = [r for (mode, _), r in runs.items() if mode == "refused" and r.args[0] in OFFLINE]
    assert len(offline) == len(OFFLINE)
    for result in offline:
        assert_no_traceback(result)
        assert result.code == ExitCode.OK, str(result)
