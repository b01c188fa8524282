"""``reconciler controller``'s command line, through the real entry point: usage errors exit 2 with one
line and no traceback, a port in use exits 1 with a clear message, SIGINT exits 0."""

from __future__ import annotations

import signal
import socket
import subprocess
from pathlib import Path

import pytest

from testkit.demo import write_chain_state

from .harness import ENTRY, ControllerProcess


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ENTRY, "controller", *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--repo", "file:///nowhere", "--watch"], "--watch watches a directory"),
        ([".", "--repo", "file:///nowhere"], "give a directory or --repo URL, not both"),
        ([".", "--interval", "soon"], "--interval 'soon': want a duration"),
        ([".", "--resync", "0s"], "--resync '0s': must be more than zero"),
        ([".", "--listen", "8080"], "--listen '8080': want HOST:PORT"),
        ([".", "--shard", "2/2"], "--shard: shard 2/2"),
        ([".", "--shard-from-hostname"], "--shard-from-hostname needs --shards N"),
        ([".", "--shards", "2"], "--shards N goes with --shard-from-hostname"),
        ([".", "--shard", "0/2", "--shard-from-hostname", "--shards", "2"], "exclusive"),
        ([".", "--log-format", "xml"], "--log-format 'xml'"),
        ([".", "--retry-base", "1m", "--retry-max", "10s"], "--retry-max must not be shorter"),
    ],
)
def test_usage_errors_exit_2_with_one_line(args: list[str], message: str, tmp_path: Path) -> None:
    result = run(*args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_option_and_missing_directory_exit_2(tmp_path: Path) -> None:
    assert run("--no-such-option", cwd=tmp_path).returncode == 2
    missing = run(str(tmp_path / "absent"), cwd=tmp_path)
    assert missing.returncode == 2
    assert "Traceback" not in missing.stderr


def test_hostname_without_an_ordinal_is_a_usage_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [*ENTRY, "controller", ".", "--shard-from-hostname", "--shards", "2"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False, env={"HOSTNAME": "laptop", "PATH": ""},
    )  # fmt: skip
    assert result.returncode == 2
    assert "does not end in a StatefulSet ordinal" in result.stderr


def test_a_port_in_use_exits_1_with_a_clear_message(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run(".", "--listen", f"127.0.0.1:{port}", "--audit-log", str(tmp_path / "a.jsonl"), cwd=tmp_path)
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "in use" in result.stderr
    assert "Traceback" not in result.stderr


def test_sigint_exits_0_and_an_empty_state_is_ready(tmp_path: Path) -> None:
    root = write_chain_state(
        tmp_path / "state", dict.fromkeys(("dev", "test", "pre", "prod-a", "prod-b"), "http://127.0.0.1:9"), {}
    )
    controller = ControllerProcess([str(root), "--interval", "1s"], tmp_path / "run")
    try:
        controller.wait_ready()  # nothing declared: the first pass observes nothing and is done at once
        assert controller.get("/healthz").json() == {"alive": True}
        assert controller.status()["status"] == "in-sync"
        controller.process.send_signal(signal.SIGINT)
        assert controller.process.wait(timeout=30) == 0
    finally:
        controller.kill()
