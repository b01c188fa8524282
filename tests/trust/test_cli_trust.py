"""Trust enforced by the commands: plan, apply and validate --base refuse a desired state whose protected
history is not signed by an allowed signer, with the commit and the reason, and contact no registry."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reconciler.cli import app
from reconciler.exitcodes import ExitCode
from testkit.imagegen import image_for
from testkit.imagepush import push_image
from testkit.localregistry import LocalRegistry

from .conftest import DesiredRepo

pytestmark = pytest.mark.registry
runner = CliRunner()


def _config(url: str) -> str:
    return (
        "version: 1\n"
        f'registries:\n  dev: {{url: "{url}"}}\n'
        "environments:\n  d: {registry: dev, prefix: d, source: true}\n"
        "  t: {registry: dev, prefix: t, from: d}\n  p: {registry: dev, prefix: p, from: t}\n"
        "trust:\n  p: {allowed_signers: trust/p_allowed_signers}\n"
    )


def _pins(env: str, versions: list[tuple[str, str]]) -> dict[str, str | None]:
    body = "".join(f'    - {{tag: "{tag}", digest: "{digest}"}}\n' for tag, digest in versions)
    return {f"environments/{env}.yaml": f"environment: {env}\nimages:\n  payments/api:\n{body}"}


@pytest.fixture
def setup(
    registry: LocalRegistry, desired_repo: Callable[..., DesiredRepo], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[LocalRegistry, DesiredRepo, list[tuple[str, str]]]:
    monkeypatch.setenv("RECONCILER_STATE_DIR", str(tmp_path / "state"))
    versions = []
    for n in (1, 2, 3):
        tag = f"20261127_{n:02d}"
        image = image_for("payments/api", tag)
        push_image(image, registry.url, "d/payments/api", tag)
        versions.append((tag, str(image.digest)))
    repo = desired_repo(config=_config(registry.url))
    files = {**_pins("d", []), **_pins("t", versions), **_pins("p", versions[:1])}
    files["environments/d.yaml"] = "environment: d\nimages: {}\n"
    repo.commit("t has three versions, p the first", files, key="alice")
    return registry, repo, versions


def _apply(repo: DesiredRepo, tmp_path: Path, *extra: str) -> tuple[int, str]:
    result = runner.invoke(app, ["apply", str(repo.dir), "--audit-log", str(tmp_path / "audit.jsonl"), *extra])
    return result.exit_code, result.output


def test_signed_changes_apply_and_unsigned_ones_are_refused_untouched(
    setup: tuple[LocalRegistry, DesiredRepo, list[tuple[str, str]]], tmp_path: Path
) -> None:
    registry, repo, versions = setup
    code, out = _apply(repo, tmp_path)
    assert code == ExitCode.OK, out

    # bob (an allowed signer) promotes the second version: applies
    repo.commit("promote 02 to p", _pins("p", versions[:2]), key="bob", who="bob")
    code, out = _apply(repo, tmp_path)
    assert code == ExitCode.OK, out

    cases = [
        ("nobody signs", None, "alice", "unsigned"),
        ("mallory signs", "mallory", "mallory", "unknown-key"),
        ("mallory signs as alice", "mallory", "Alice|alice@example.com", "unknown-key"),
    ]
    good = repo.head()
    for message, key, who, reason in cases:
        bad = repo.commit(message, _pins("p", versions), key=key, who=who)
        mark = registry.mark()
        for command in (["plan"], ["apply", "--audit-log", str(tmp_path / "a.jsonl")]):
            result = runner.invoke(app, [*command, str(repo.dir)])
            assert result.exit_code == ExitCode.INVALID, (message, result.output)
            assert f"[{reason}]" in result.output, (message, result.output)
            assert bad[:12] in result.output
            assert "environments/p.yaml (p)" in result.output
            assert "nothing was contacted or written" in result.output
        assert registry.requests_since(mark) == []  # not one request: the registries are untouched
        repo.git("reset", "-q", "--hard", good)


def test_a_signers_file_changed_by_a_non_signer_is_refused(
    setup: tuple[LocalRegistry, DesiredRepo, list[tuple[str, str]]], tmp_path: Path
) -> None:
    _registry, repo, _versions = setup
    assert _apply(repo, tmp_path)[0] == ExitCode.OK
    signers = repo.keys.signers("alice", "bob", "forge", "carol")
    repo.commit("carol adds herself", {"trust/p_allowed_signers": signers}, key="carol", who="carol")
    result = runner.invoke(app, ["plan", str(repo.dir), "-o", "json"])
    assert result.exit_code == ExitCode.INVALID
    document = json.loads(result.output)
    assert document["status"] == "refused"
    [violation] = document["trust"]["violations"]
    assert violation["file"] == "trust/p_allowed_signers"
    assert violation["reason"] in ("unknown-key", "signers-changed-by-non-signer")


def test_validate_base_checks_the_signatures_since_the_base(
    setup: tuple[LocalRegistry, DesiredRepo, list[tuple[str, str]]],
) -> None:
    _registry, repo, versions = setup
    base = repo.head()
    repo.commit("unsigned promotion to p", _pins("p", versions[:2]), key=None)
    result = runner.invoke(app, ["validate", str(repo.dir), "--base", base])
    assert result.exit_code == ExitCode.INVALID, result.output
    assert "[trust-unsigned]" in result.output
    repo.git("reset", "-q", "--hard", base)
    repo.commit("signed promotion to p", _pins("p", versions[:2]), key="alice")
    assert runner.invoke(app, ["validate", str(repo.dir), "--base", base]).exit_code == ExitCode.OK


def test_a_desired_state_with_trust_rules_outside_git_is_refused(tmp_path: Path, registry: LocalRegistry) -> None:
    root = tmp_path / "plain"
    (root / "environments").mkdir(parents=True)
    (root / "trust").mkdir()
    (root / "reconciler.yaml").write_text(_config(registry.url))
    (root / "trust" / "p_allowed_signers").write_text("")
    for env in ("d", "t", "p"):
        (root / "environments" / f"{env}.yaml").write_text(f"environment: {env}\nimages: {{}}\n")
    result = runner.invoke(app, ["plan", str(root)])
    assert result.exit_code == ExitCode.INVALID
    assert "[no-history]" in result.output
