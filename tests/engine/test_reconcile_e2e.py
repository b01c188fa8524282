"""End to end on real registries: the example's five environments (s1 and s2 share ``pre``; p on
``prod-a`` and ``prod-b``), through the CLI, verified with skopeo and the registries' own logs."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import pytest
from support.faultproxy import FaultProxy
from support.skopeo import Skopeo
from typer.testing import CliRunner

from reconciler.cli import app
from reconciler.engine.audit import pair_records, read_records
from reconciler.exitcodes import ExitCode
from testkit.localregistry import LocalRegistry

from .landscape import REGISTRY_OF, Landscape, start_landscape, walk_registry

pytestmark = [pytest.mark.registry]

SEED = 7  # the fault proxies are seeded: a failure reproduces
VERSIONS = [("payments/api", "20261127_01"), ("payments/web", "20261126_02"), ("platform/gateway", "20261120_01")]


def cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def landscape(registry_factory: object, tmp_path: Path) -> Landscape:
    return start_landscape(registry_factory, tmp_path / "state")  # type: ignore[arg-type]


@pytest.mark.skopeo
def test_apply_converges_five_environments_and_second_plan_is_empty(
    registry_factory: object, tmp_path: Path, skopeo: Skopeo
) -> None:
    proxies: dict[str, FaultProxy] = {}

    def url_for(name: str, registry: LocalRegistry) -> str:
        if name != "pre":
            return registry.url
        proxies[name] = FaultProxy(registry.url).start()  # rate 0: a request and byte counter
        return proxies[name].url

    try:
        land = start_landscape(registry_factory, tmp_path / "state", url_for)  # type: ignore[arg-type]
        root = land.promote_everywhere(VERSIONS)
        audit = tmp_path / "audit.jsonl"

        code, out, _err = cli("plan", str(root), "--detailed-exitcode")
        assert code == ExitCode.CHANGES, out
        assert "15 to copy" in out

        code, out, err = cli("apply", str(root), "--audit-log", str(audit))
        assert code == ExitCode.OK, err
        code, out, _err = cli("plan", str(root), "--detailed-exitcode", "--output", "json")
        assert code == ExitCode.OK, out
        document = json.loads(out)
        assert document["status"] == "in-sync"
        assert document["summary"]["in_sync"] == 15
        assert document["actions"] == []
        # an in-sync plan costs one request per declared tag and registry
        assert document["requests"]["observe"] == 15

        for env in ("t", "s1", "s2", "p"):
            for registry in REGISTRY_OF[env]:
                host = land.registries[registry].host
                for name, tag in VERSIONS:
                    digest = str(land.images[(name, tag)].digest)
                    raw = skopeo.inspect_raw(f"docker://{host}/{env}/{name}@{digest}")
                    assert "sha256:" + hashlib.sha256(raw).hexdigest() == digest
                    assert land.tag_digest(env, registry, name, tag) == digest

        # s1 -> s2 inside one registry: blob mounts only, zero blob bytes uploaded into s2
        s2_writes = [r for r in proxies["pre"].requests if (r.repository or "").startswith("s2/") and r.is_blob_write]
        assert s2_writes, "expected cross-repository mounts into s2"
        assert sum(r.request_bytes for r in s2_writes) == 0
        assert proxies["pre"].blob_bytes_uploaded > 0  # t -> s1 did upload (different registry)

        records = pair_records(read_records(audit))
        assert len(records) == 15
        assert {r["result"] for r in records} == {"ok"}
        assert {r["environment"] for r in records} == {"t", "s1", "s2", "p"}
        for registry in land.registries.values():
            _count, problems = walk_registry(registry.url)
            assert problems == []
    finally:
        for proxy in proxies.values():
            proxy.stop()


def test_plan_renders_markdown_and_json_without_writing(landscape: Landscape) -> None:
    root = landscape.promote_everywhere(VERSIONS[:1])
    code, out, _ = cli("plan", str(root), "--output", "markdown")
    assert code == ExitCode.OK
    assert "| env | registry | image | tag | action |" in out
    assert "| p | prod-b | payments/api | `20261127_01` | copy from s2 (pre/s2/payments/api)" in out
    code, out, _ = cli("plan", str(root), "--output", "json", "--env", "t")
    document = json.loads(out)
    assert document["version"] == 1
    assert document["command"] == "plan"
    assert document["status"] == "changes"
    assert [a["kind"] for a in document["actions"]] == ["copy"]
    assert landscape.tag_digest("t", "test", "payments/api", "20261127_01") is None  # nothing written
    code, _out, err = cli("plan", str(root), "--env", "nope")
    assert code == ExitCode.FAILURE
    assert "unknown environment 'nope'" in err


def test_immutable_conflict_is_refused_nothing_written_and_audited(landscape: Landscape, tmp_path: Path) -> None:
    name, tag = VERSIONS[0]
    root = landscape.promote_everywhere([(name, tag)])
    # someone pushed another image under the production tag on the second site
    intruder = landscape.image("intruder", tag)
    from testkit.imagepush import push_image

    push_image(intruder, landscape.registries["prod-b"].url, f"p/{name}", tag)
    mark = landscape.registries["prod-b"].mark()
    audit = tmp_path / "audit.jsonl"
    code, _out, err = cli("apply", str(root), "--audit-log", str(audit))
    assert code == ExitCode.FAILURE
    assert f"p prod-b {name}:{tag}" in err
    assert "immutable" in err
    assert landscape.tag_digest("p", "prod-b", name, tag) == str(intruder.digest)
    assert landscape.tag_digest("p", "prod-a", name, tag) == str(landscape.images[(name, tag)].digest)
    writes = [r for r in landscape.registries["prod-b"].requests_since(mark) if r.method in ("PUT", "POST", "PATCH")]
    assert writes == []
    refused = [r for r in read_records(audit) if r["result"] == "refused"]
    assert len(refused) == 1
    assert refused[0]["registry"] == "prod-b"
    assert refused[0]["action"] == "conflict"
    assert str(intruder.digest)[:19] in refused[0]["error"]  # type: ignore[operator]


def test_missing_digest_fails_that_image_only_and_retag_needs_no_blobs(landscape: Landscape) -> None:
    present = landscape.seed(*VERSIONS[0])
    never_pushed = "sha256:" + "e" * 64
    name_missing, tag_missing = VERSIONS[1]
    pins = [(VERSIONS[0][0], VERSIONS[0][1], present), (name_missing, tag_missing, never_pushed)]
    root = landscape.write({"d": [pins[0]], "t": pins})
    code, _out, err = cli("apply", str(root), "--env", "t", "--audit-log", str(landscape.root / "a.jsonl"))
    assert code == ExitCode.FAILURE
    assert f"t test {name_missing}:{tag_missing}" in err
    assert "dev/d/payments/web" in err
    assert landscape.tag_digest("t", "test", *VERSIONS[0]) == present

    # a second tag for the same digest: RETAG, a manifest PUT and no blob traffic
    landscape.write({"d": [pins[0]], "t": [pins[0], (VERSIONS[0][0], "20261127_02", present)]})
    mark = landscape.registries["test"].mark()
    code, out, err = cli("apply", str(root), "--env", "t", "--audit-log", str(landscape.root / "a.jsonl"))
    assert code == ExitCode.OK, err
    assert "retag" in out
    requests = landscape.registries["test"].requests_since(mark)
    assert not [r for r in requests if r.kind in ("blob", "upload")]
    assert landscape.tag_digest("t", "test", VERSIONS[0][0], "20261127_02") == present


def test_registry_that_stays_down_fails_each_image_in_bounded_time(registry_factory: object, tmp_path: Path) -> None:
    proxies: dict[str, FaultProxy] = {}

    def url_for(name: str, registry: LocalRegistry) -> str:
        if name != "prod-b":
            return registry.url
        proxies[name] = FaultProxy(registry.url).start()
        return proxies[name].url

    try:
        land = start_landscape(registry_factory, tmp_path / "state", url_for)  # type: ignore[arg-type]
        root = land.promote_everywhere(VERSIONS)
        proxies["prod-b"].down()
        started = time.monotonic()
        code, _out, err = cli("apply", str(root), "--audit-log", str(tmp_path / "a.jsonl"))
        elapsed = time.monotonic() - started
        assert code == ExitCode.FAILURE
        assert elapsed < 60
        for name, tag in VERSIONS:
            assert f"p prod-b {name}:{tag}" in err
            assert land.tag_digest("p", "prod-a", name, tag) is not None  # the other site converged
        assert err.count("prod-b") >= len(VERSIONS)
        assert "prod-a" not in err.split("apply failed", 1)[1]
        code, out, _err = cli("plan", str(root), "--output", "json")
        assert code == ExitCode.FAILURE
        document = json.loads(out)
        assert document["status"] == "failed"
        assert {(f["registry"], f["action"]) for f in document["failures"]} == {("prod-b", "unreachable")}
    finally:
        for proxy in proxies.values():
            proxy.stop()


def test_faults_on_every_registry_apply_still_converges(registry_factory: object, tmp_path: Path) -> None:
    proxies: list[FaultProxy] = []

    def url_for(name: str, registry: LocalRegistry) -> str:
        proxy = FaultProxy(registry.url, rate=0.10, seed=len(proxies) + SEED, retry_after="0").start()
        proxies.append(proxy)
        return proxy.url

    try:
        land = start_landscape(registry_factory, tmp_path / "state", url_for)  # type: ignore[arg-type]
        root = land.promote_everywhere(VERSIONS)
        code, _out, err = cli("apply", str(root), "--audit-log", str(tmp_path / "a.jsonl"))
        assert sum(sum(p.fault_counts().values()) for p in proxies) > 0, "no fault was injected"
        assert code == ExitCode.OK, err
        for proxy in proxies:
            proxy.rate = 0.0
        code, out, _ = cli("plan", str(root), "--detailed-exitcode")
        assert code == ExitCode.OK, out
        for registry in land.registries.values():
            _count, problems = walk_registry(registry.url)
            assert problems == []
    finally:
        for proxy in proxies:
            proxy.stop()


def test_invalid_desired_state_exits_3_before_touching_registries(landscape: Landscape) -> None:
    root = landscape.write({"t": [("payments/api", "latest", "sha256:" + "a" * 64)]})
    code, _out, err = cli("apply", str(root))
    assert code == ExitCode.INVALID
    assert "environments/t.yaml:" in err
    code, out, _ = cli("plan", str(root), "--output", "json")
    assert code == ExitCode.INVALID
    assert json.loads(out)["status"] == "invalid"


def test_apply_from_git_records_commit_and_author_and_logs_json_lines(landscape: Landscape, tmp_path: Path) -> None:
    import subprocess

    root = landscape.promote_everywhere(VERSIONS[:1], envs=("d", "t"))
    env = {
        "GIT_AUTHOR_NAME": "Grace Hopper",
        "GIT_AUTHOR_EMAIL": "grace@example.com",
        "GIT_COMMITTER_NAME": "Grace Hopper",
        "GIT_COMMITTER_EMAIL": "grace@example.com",
        "HOME": str(tmp_path),
        "PATH": "/usr/bin:/bin",
    }

    def git(*args: str, cwd: Path = root) -> str:
        return subprocess.run(["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True).stdout

    bare = tmp_path / "state.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    git("init", "-q", "-b", "main")
    git("add", ".")
    git("commit", "-q", "-m", "promote payments/api to t")
    git("push", "-q", str(bare), "main")
    sha = git("rev-parse", "HEAD").strip()

    audit = tmp_path / "audit.jsonl"
    args = ["--repo", f"file://{bare}", "--ref", "main", "--cache-dir", str(tmp_path / "cache")]
    code, out, err = cli("apply", *args, "--audit-log", str(audit), "--log-format", "json")
    assert code == ExitCode.OK, err
    lines = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert [line["phase"] for line in lines] == ["intent", "outcome"]
    assert lines[0]["entry"] == lines[1]["entry"]
    assert lines[0]["commit"] == sha
    assert lines[0]["commit_author"] == "Grace Hopper <grace@example.com>"
    assert lines[0]["environment"] == "t"
    assert read_records(audit) == lines
    code, out, _ = cli("plan", *args, "--output", "json", "--detailed-exitcode")
    assert code == ExitCode.OK
    assert json.loads(out)["source"]["commit"] == sha


def test_mutable_environment_moves_a_conflicting_tag_and_audits_it(landscape: Landscape, tmp_path: Path) -> None:
    name, tag = VERSIONS[0]
    wanted = landscape.seed(name, tag)
    stale = landscape.seed("stale", tag, env="t")  # t/stale exists; now put that image under t/<name>:<tag>
    from testkit.imagepush import push_image

    push_image(landscape.images[("stale", tag)], landscape.registries["test"].url, f"t/{name}", tag)
    root = landscape.write({"d": [(name, tag, wanted)], "t": [(name, tag, wanted)]})  # t allows tag moves
    audit = tmp_path / "audit.jsonl"
    code, out, err = cli("plan", str(root), "--env", "t")
    assert "MOVE tag from" in out
    code, out, err = cli("apply", str(root), "--env", "t", "--audit-log", str(audit))
    assert code == ExitCode.OK, err
    assert landscape.tag_digest("t", "test", name, tag) == wanted
    [record] = pair_records(read_records(audit))
    assert record["action"] == "conflict"
    assert record["result"] == "ok"
    assert stale != wanted


def test_progress_on_a_terminal_shows_actions_and_bytes(landscape: Landscape) -> None:
    import asyncio
    import io

    from reconciler.cli.progress import TransferBars
    from reconciler.engine.reconcile import reconcile_pass
    from reconciler.engine.registries import RegistryPool
    from reconciler.manifests import load_desired_state

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    root = landscape.promote_everywhere(VERSIONS[:2], envs=("d", "t"))
    desired = load_desired_state(root)
    screen = Terminal()

    async def run() -> None:
        pool = RegistryPool(desired.config)
        try:
            with TransferBars(stream=screen) as bars:
                report = await reconcile_pass(desired, pool, dry_run=False, progress=bars)
            assert not report.failures
        finally:
            await pool.aclose()

    asyncio.run(run())
    text = screen.getvalue()
    assert "actions" in text
    assert "2/2, 0 failed" in text
    assert "bytes" in text
    assert "KiB" in text


def test_apply_with_credentials_from_environment_never_prints_them(
    registry_factory: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    password = "s3cret-Pa55word-for-prod-b"

    def start(**kwargs: object) -> LocalRegistry:
        if kwargs.get("name") == "prod-b":
            kwargs["basic_auth"] = {"deployer": password}
        return registry_factory(**kwargs)  # type: ignore[operator,no-any-return]

    land = start_landscape(start, tmp_path / "state")
    root = land.promote_everywhere(VERSIONS[:1])
    audit = tmp_path / "audit.jsonl"

    # no credentials: prod-b refuses, every other registry converges, nothing leaks
    code, out, err = cli("apply", str(root), "--audit-log", str(audit))
    assert code == ExitCode.FAILURE
    assert "p prod-b payments/api:20261127_01" in err
    assert "401" in err or "auth" in err.lower()

    monkeypatch.setenv("RECONCILER_REGISTRY_PROD_B_USERNAME", "deployer")
    monkeypatch.setenv("RECONCILER_REGISTRY_PROD_B_PASSWORD", "wrong-" + password)
    code, out2, err2 = cli("apply", str(root), "--audit-log", str(audit), "--output", "json")
    assert code == ExitCode.FAILURE
    monkeypatch.setenv("RECONCILER_REGISTRY_PROD_B_PASSWORD", password)
    code, out3, err3 = cli("apply", str(root), "--audit-log", str(audit))
    assert code == ExitCode.OK, err3
    code, out4, _ = cli("plan", str(root), "--detailed-exitcode", "--output", "json")
    assert code == ExitCode.OK, out4
    everything = "".join([out, err, out2, err2, out3, err3, out4, audit.read_text()])
    assert password not in everything
    assert "deployer:" not in everything
