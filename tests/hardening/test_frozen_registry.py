"""A registry that accepts connections but never answers, and one that answers one byte a second.

What used to happen: one of production's two registries stopped with ``kill -STOP`` held ``apply`` for
15 minutes (every request waited for its per-read timeout, one image after another), and a 400-byte
manifest dripped at one byte a second was accepted after 400 s (each read arrived within the read timeout).
Before this module's fix, a registry frozen from the start still cost two deadlines per command (the first
overrun was retried). Now every request has an overall deadline (15 s by default), a registry that has not
completed a single request is declared unresponsive at its first overrun (and one that has, after two in
a row), and its remaining requests fail at once: ``apply`` and ``plan`` finish well under a minute, the
healthy twin converges, the frozen one's images fail naming it.

The frozen registry is a real ``docker-registry`` process stopped with SIGSTOP (the kernel still completes
TCP handshakes for it); the drip is the loopback kit's ``drip``. The four runs go at once, through the real
console script, so the module costs about one deadline of wall time.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from engine.landscape import ACCEPT, Landscape
from support.httpserver import HANG, LoopbackServer, Reply, Request, Response, drip

from reconciler.engine.audit import pair_records, read_records
from reconciler.errors import TransientRegistryError, UnresponsiveRegistryError
from reconciler.exitcodes import ExitCode
from reconciler.registry import RegistryClient, RetryPolicy
from testkit.demo import CHAIN_REGISTRIES
from testkit.localregistry import LocalRegistry

from .kit import Run, assert_no_traceback, cli_env, run_all

pytestmark = pytest.mark.registry

VERSIONS = [("payments/api", "20261127_01"), ("payments/web", "20261126_02")]
WELL_UNDER_A_MINUTE = 60.0
"""Seconds: the bound asserted on a loaded 2-core machine, against the 900 s the operator saw."""
DRIPPED = b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",' + b" " * 320 + b"}"


def _pid(registry: LocalRegistry) -> int:
    pid = registry.pid
    assert pid is not None
    return pid


class _Frozen:
    def __init__(self, land: Landscape, runs: dict[str, Run], drip_server: LoopbackServer, audit: Path) -> None:
        self.land, self.runs, self.drip_server, self.audit = land, runs, drip_server, audit


@pytest.fixture(scope="module")
def frozen(registry_binary: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[_Frozen]:
    """The chain's five registries with ``prod-b`` stopped, a dripping registry, and the four runs."""
    base = tmp_path_factory.mktemp("frozen")
    registries = {name: LocalRegistry(binary=registry_binary, name=name).start() for name in CHAIN_REGISTRIES}
    stopped: list[int] = []

    def dripping(request: Request) -> Response:
        if "/manifests/" in request.path:
            digest = "sha256:" + hashlib.sha256(DRIPPED).hexdigest()
            return drip(
                DRIPPED,
                1,
                headers={"Content-Type": "application/vnd.oci.image.manifest.v1+json", "Docker-Content-Digest": digest},
            )
        return Response.json({})

    drip_server = LoopbackServer(dripping, name="drip").start()
    try:
        land = Landscape(registries=registries, urls={n: r.url for n, r in registries.items()}, root=base / "state")
        root = land.promote_everywhere(VERSIONS)
        os.kill(_pid(registries["prod-b"]), signal.SIGSTOP)
        stopped.append(_pid(registries["prod-b"]))
        audit = base / "audit.jsonl"
        frozen_host, healthy_host = registries["prod-b"].host, registries["prod-a"].host
        name, tag = VERSIONS[0]
        commands = {
            "apply": ["apply", str(root), "--audit-log", str(audit)],
            "plan": ["plan", str(root)],
            "copy": ["copy", f"{frozen_host}/p/{name}:{tag}", f"{healthy_host}/copied/{name}"],
            "drip": ["inspect", f"{drip_server.host}/slow/app:v1"],
        }
        results = run_all(list(commands.values()), env=cli_env(base))
        yield _Frozen(land, dict(zip(commands, results, strict=True)), drip_server, audit)
    finally:
        for pid in stopped:
            os.kill(pid, signal.SIGCONT)
        drip_server.stop()
        for registry in registries.values():
            registry.stop()


def test_apply_with_a_frozen_twin_finishes_and_the_healthy_twin_converges(frozen: _Frozen) -> None:
    result = frozen.runs["apply"]
    assert_no_traceback(result)
    assert result.code == ExitCode.FAILURE, str(result)
    assert result.seconds < WELL_UNDER_A_MINUTE, str(result)
    failures = [line for line in result.stderr.splitlines() if line.startswith("  p prod-b ")]
    assert len(failures) == len(VERSIONS), str(result)
    assert all("not answering" in line or "no answer in time" in line for line in failures), str(result)
    assert "prod-a" not in result.stderr, str(result)
    for name, tag in VERSIONS:
        digest = str(frozen.land.images[(name, tag)].digest)
        for env, registry in (("t", "test"), ("s1", "pre"), ("s2", "pre"), ("p", "prod-a")):
            assert frozen.land.tag_digest(env, registry, name, tag) == digest, (env, registry, name)
    records = pair_records(read_records(frozen.audit))
    failed = [r for r in records if r["result"] != "ok"]
    assert {(r["registry"], r["repository"]) for r in failed} == {("prod-b", f"p/{n}") for n, _ in VERSIONS}
    assert all("not answering" in str(r["error"]) or "no answer" in str(r["error"]) for r in failed)


def test_plan_with_a_frozen_twin_reports_it_unreachable_in_bounded_time(frozen: _Frozen) -> None:
    result = frozen.runs["plan"]
    assert_no_traceback(result)
    assert result.code == ExitCode.FAILURE, str(result)
    assert result.seconds < WELL_UNDER_A_MINUTE, str(result)
    unreachable = [line for line in result.stdout.splitlines() if "UNREACHABLE" in line]
    assert len(unreachable) == len(VERSIONS), str(result)
    assert all("prod-b/p/" in line for line in unreachable), str(result)


def test_copy_from_a_frozen_registry_fails_within_the_deadline(frozen: _Frozen) -> None:
    result = frozen.runs["copy"]
    assert_no_traceback(result)
    assert result.code == ExitCode.FAILURE, str(result)
    assert result.seconds < WELL_UNDER_A_MINUTE, str(result)
    assert frozen.land.registries["prod-b"].host in result.stderr, str(result)
    assert "no answer in time" in result.stderr, str(result)


def test_a_manifest_dripped_at_one_byte_a_second_is_refused_by_the_overall_deadline(frozen: _Frozen) -> None:
    result = frozen.runs["drip"]
    assert_no_traceback(result)
    assert result.code == ExitCode.FAILURE, str(result)
    assert result.seconds < WELL_UNDER_A_MINUTE, str(result)  # not after the 400 s the body would take
    assert frozen.drip_server.host in result.stderr, str(result)
    assert "no answer in time" in result.stderr, str(result)
    # One deadline, not one per attempt: a registry that never completed a request is not asked again.
    gets = [r for r in frozen.drip_server.requests if r.method == "GET" and "/manifests/" in r.path]
    assert len(gets) == 1, gets


def test_the_frozen_registry_was_really_frozen(frozen: _Frozen) -> None:
    """The scenario itself: connections to a SIGSTOP-ed registry are accepted, and nothing is answered."""
    with pytest.raises(httpx.ReadTimeout):
        httpx.head(f"{frozen.land.registries['prod-b'].url}/v2/", headers={"Accept": ACCEPT}, timeout=1.0)


def _wire_client(server: LoopbackServer, deadline: float) -> RegistryClient:
    return RegistryClient(url=server.url, deadline=deadline, retry=RetryPolicy(attempts=5, base_delay=0.01))


def test_a_registry_frozen_from_the_start_costs_one_deadline() -> None:
    """No request has completed: the first overrun declares it unresponsive; nothing is asked again."""
    with LoopbackServer(lambda request: HANG, name="frozen-from-start") as server:

        async def two_lookups() -> list[BaseException | object]:
            async with _wire_client(server, deadline=0.5) as client:
                first = await asyncio.gather(client.head_manifest("app", "v1"), return_exceptions=True)
                second = await asyncio.gather(client.list_tags("app"), return_exceptions=True)
                return [*first, *second]

        first, second = asyncio.run(two_lookups())
    assert isinstance(first, TransientRegistryError)
    assert "no answer in time" in str(first)
    assert isinstance(second, UnresponsiveRegistryError)
    assert len(server.requests) == 1


def test_a_registry_that_answered_before_is_declared_unresponsive_after_two_overruns_in_a_row() -> None:
    """One slow answer among good ones is forgiven (retried); two in a row are not."""
    answered: list[str] = []

    def once_then_frozen(request: Request) -> Reply:
        if not answered:
            answered.append(request.path)
            return Response.json({"name": "app", "tags": ["v1"]})
        return HANG

    with LoopbackServer(once_then_frozen, name="freezes-later") as server:

        async def lookups() -> tuple[list[str], BaseException | None, BaseException | None]:
            async with _wire_client(server, deadline=0.5) as client:
                tags = await client.list_tags("app")
                (overrun,) = await asyncio.gather(client.head_manifest("app", "v1"), return_exceptions=True)
                (after,) = await asyncio.gather(client.list_tags("app"), return_exceptions=True)
                return tags, overrun, after  # type: ignore[return-value]

        tags, overrun, after = asyncio.run(lookups())
    assert tags == ["v1"]
    assert isinstance(overrun, TransientRegistryError)
    assert "2 requests in a row got no answer in time" in str(overrun)  # the retry was the second overrun
    assert isinstance(after, UnresponsiveRegistryError)
    assert len(server.requests) == 3  # the listing, the lookup and its one retry
