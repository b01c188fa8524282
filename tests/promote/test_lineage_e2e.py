"""Promote -> merge -> apply on a real registry -> history and trace show the commits, the merge requests
and the registry writes, across two promotions and a rollback (a revert)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reconciler.cli import app
from reconciler.exitcodes import ExitCode
from testkit.demo import CHAIN_REGISTRIES, write_chain_state
from testkit.imagegen import image_for
from testkit.imagepush import push_image
from testkit.localregistry import LocalRegistry

pytestmark = pytest.mark.registry
runner = CliRunner()
API = "payments/api"
CORPUS = Path(__file__).resolve().parent.parent / "corpus"


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def test_promote_merge_apply_then_trace_and_history(registry: LocalRegistry, tmp_path: Path) -> None:
    versions = {}
    for tag in ("20261127_01", "20261128_01"):
        image = image_for(API, tag)
        push_image(image, registry.url, f"d/{API}", tag)  # CI's builds in the source registry
        versions[tag] = str(image.digest)
    work = write_chain_state(tmp_path / "work", dict.fromkeys(CHAIN_REGISTRIES, registry.url), {})
    git(work, "init", "-q", "-b", "main")
    git(work, "config", "user.name", "Rita Release")
    git(work, "config", "user.email", "rita@example.com")
    git(work, "add", ".")
    git(work, "commit", "-qm", "desired state")
    audit = tmp_path / "audit.jsonl"

    def promote_and_merge(tag: str, request: int) -> str:
        result = runner.invoke(app, ["promote", API, str(work), "--to", "t", "--tag", tag])
        assert result.exit_code == ExitCode.OK, result.output
        branch = f"promote/t/{API}/{tag}"
        git(
            work,
            "merge",
            "--no-ff",
            "-q",
            "-m",
            f"Merge branch '{branch}' into 'main'\n\nSee merge request team/state!{request}",
            branch,
        )
        applied = runner.invoke(app, ["apply", str(work), "--audit-log", str(audit)])
        assert applied.exit_code == ExitCode.OK, applied.output
        return git(work, "rev-parse", "HEAD")

    first_merge = promote_and_merge("20261127_01", 3)
    second_merge = promote_and_merge("20261128_01", 4)
    git(work, "revert", "--no-edit", "-m", "1", second_merge)  # roll back: t pins only the first again
    rollback = git(work, "rev-parse", "HEAD")
    assert runner.invoke(app, ["apply", str(work), "--audit-log", str(audit)]).exit_code == ExitCode.OK

    trace = runner.invoke(app, ["trace", versions["20261127_01"], str(work), "--audit-log", str(audit), "-o", "json"])
    assert trace.exit_code == ExitCode.OK, trace.output
    document = json.loads(trace.output)
    assert {(c["environment"], c["tag"]) for c in document["current"]} == {("t", "20261127_01")}
    [entered] = [v for v in document["versions"] if v["environment"] == "t"]
    assert (entered["change"], entered["commit"], entered["merge_request"]) == ("added", first_merge, "!3")
    assert entered["author"] == "Rita Release <rita@example.com>"
    [written] = [r for r in document["registry"] if r["environment"] == "t"]
    assert (written["action"], written["result"], written["commit"]) == ("copy", "ok", first_merge)
    assert document["path"][0].startswith("t (")

    history = runner.invoke(app, ["history", API, str(work), "--audit-log", str(audit), "-o", "json"])
    assert history.exit_code == ExitCode.OK, history.output
    changes = [(v["tag"], v["change"], v["commit"]) for v in json.loads(history.output)["versions"]]
    assert changes == [
        ("20261127_01", "added", first_merge),
        ("20261128_01", "added", second_merge),
        ("20261128_01", "removed", rollback),  # the revert took it out of t again
    ]
    text = runner.invoke(app, ["history", API, str(work), "--audit-log", str(audit)]).output
    assert "t    + payments/api:20261128_01" in text
    assert "t    - payments/api:20261128_01" in text
    assert "!4" in text


@pytest.mark.parametrize("command", [["history", API], ["trace", "sha256:" + "ab" * 32]])
def test_an_invalid_desired_state_exits_invalid_listing_every_problem(command: list[str]) -> None:
    """As every other command: exit 3, each problem as ``file:line:col: message [code]`` (or the envelope)."""
    case = CORPUS / "tag-two-digests"
    text = runner.invoke(app, [*command, str(case)])
    assert text.exit_code == ExitCode.INVALID, text.output
    assert re.search(r"^\S*environments/s\.yaml:4:7: .+ \[tag-digest-conflict\]$", text.output, re.MULTILINE), (
        text.output
    )
    as_json = runner.invoke(app, [*command, str(case), "-o", "json"])
    assert as_json.exit_code == ExitCode.INVALID, as_json.output
    document = json.loads(as_json.stdout)
    assert (document["command"], document["status"]) == (command[0], "invalid")
    [problem] = document["errors"]
    assert (problem["line"], problem["column"], problem["code"]) == (4, 7, "tag-digest-conflict")


def test_trace_names_both_digest_forms_it_accepts(tmp_path: Path) -> None:
    bad = runner.invoke(app, ["trace", "sha512:abc", str(tmp_path)])
    assert bad.exit_code == ExitCode.USAGE
    assert "sha256:<64 lowercase hex> or sha512:<128 lowercase hex>" in bad.output
    work = write_chain_state(tmp_path / "work", dict.fromkeys(CHAIN_REGISTRIES, "http://127.0.0.1:1"), {})
    git(work, "init", "-q", "-b", "main")
    git(work, "add", ".")
    git(work, "-c", "user.name=S", "-c", "user.email=s@example.com", "commit", "-qm", "state")
    accepted = runner.invoke(app, ["trace", "sha512:" + "ab" * 64, str(work), "--audit-log", str(tmp_path / "a")])
    assert accepted.exit_code == ExitCode.OK, accepted.output
    assert "pinned nowhere now" in accepted.output


def test_the_line_scanner_reads_what_the_parser_reads() -> None:
    """History reads thousands of file versions; usual files go through a line scanner, anything else
    through the YAML parser, and both must agree, with or without an image filter and a shared memo."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from reconciler.engine.lineage import _parse_pins, _scan, pins_of

    digests = st.integers(0, 2**64).map(lambda n: f"sha256:{n:064x}")
    tags = st.from_regex(r"20[0-9]{6}_[0-9]{2}", fullmatch=True)
    images = st.from_regex(r"[a-z]{1,6}(/[a-z]{1,6})?", fullmatch=True)
    memo: dict = {}  # one memo across examples, as across the versions of a history

    @settings(max_examples=120, deadline=None)
    @given(st.dictionaries(images, st.lists(st.tuples(tags, digests), min_size=1, max_size=4), max_size=6),
           st.sampled_from(['"', "'", ""]), st.booleans(), st.booleans(), st.booleans())  # fmt: skip
    def check(
        content: dict[str, list[tuple[str, str]]], quote: str, comment: bool, blank: bool, final_newline: bool
    ) -> None:
        lines = ["environment: t", "images:" if content else "images: {}"]
        for image, pins in content.items():
            lines.append(f"  {image}:" + ("  # the team's" if comment else ""))
            lines += [f"    - {{tag: {quote}{t}{quote}, digest: {quote}{d}{quote}}}" for t, d in pins]
            if blank:
                lines.append("")
        data = ("\n".join(lines) + ("\n" if final_newline else "")).encode()
        expected = {(image, t): d for image, pins in content.items() for t, d in pins}
        assert _parse_pins(data) == expected  # the parser, for the same text
        assert pins_of(data, memo=memo) == expected
        if content:
            assert _scan(data.decode(), memo=memo) == expected  # the scanner read it, not the parser
            first = next(iter(content))
            assert pins_of(data, first, memo) == {k: v for k, v in expected.items() if k[0] == first}

    check()
    assert _scan("environment: t\nimages:\n  a:\n    - tag: x\n      digest: y\n") is None  # block style: parser
    block = b'environment: t\nimages:\n  a:\n    - tag: "20261127_01"\n      digest: "sha256:' + b"0" * 64 + b'"\n'
    assert pins_of(block) == {("a", "20261127_01"): "sha256:" + "0" * 64}
