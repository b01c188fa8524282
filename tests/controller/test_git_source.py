"""The controller against a real bare Git remote: a pushed promotion is applied within two intervals,
nothing is asked of the registries between resyncs, and an invalid commit stalls until a fixed one."""

from __future__ import annotations

import time

import pytest
from engine.landscape import Landscape

from testkit.demo import write_chain_state

from .conftest import ControllerFactory
from .harness import GitRemote, wait_for

pytestmark = [pytest.mark.registry]

API, WEB = ("payments/api", "20261127_01"), ("payments/web", "20261126_02")
INTERVAL = 1.0


def _requests_since(landscape: Landscape, marks: dict[str, int]) -> dict[str, int]:
    return {name: len(registry.requests_since(marks[name])) for name, registry in landscape.registries.items()}


def test_pushed_promotion_is_applied_within_two_intervals_and_idle_costs_no_request(
    landscape: Landscape, remote: GitRemote, controllers: ControllerFactory
) -> None:
    api, web = landscape.seed(*API), landscape.seed(*WEB)
    d_pins = [(*API, api), (*WEB, web)]
    write_chain_state(remote.work, landscape.urls, {"d": d_pins, "t": [(*API, api)]})

    # The Git server is not there yet: the controller keeps trying, and is not ready.
    controller = controllers("--repo", remote.url, "--ref", "main", "--interval", "1s", "--resync", "10m")
    controller.wait_event("source_error", timeout=60)
    assert controller.get("/healthz").status_code == 200
    assert controller.get("/readyz").status_code == 503

    remote.create()
    first = remote.push("t: payments/api")
    controller.wait_ready()
    controller.wait_event("reconciled", where=lambda e: e["commit"] == first)
    assert landscape.tag_digest("t", "test", *API) == api
    copies_before = controller.metrics().get('reconciler_actions_total{kind="copy",result="ok"}', 0.0)
    assert copies_before == 1

    # Promote payments/web to t: one commit, pushed.
    write_chain_state(remote.work, landscape.urls, {"d": d_pins, "t": d_pins})
    pushed_at = time.monotonic()
    second = remote.push("t: payments/web")
    wait_for(lambda: landscape.tag_digest("t", "test", *WEB) == web, timeout=30, what="payments/web in t")
    latency = time.monotonic() - pushed_at
    print(f"push -> tag written: {latency:.2f}s (interval {INTERVAL}s)")
    assert latency < 2 * INTERVAL + 4.0, f"applied {latency:.2f}s after the push"

    done = controller.wait_event("reconciled", where=lambda e: e["commit"] == second)
    assert done["trigger"] == "change"
    assert done["actions"] == {"copy": 1}  # only the image whose pins changed is looked at
    assert done["images"] == 1
    metrics = controller.metrics()
    assert metrics['reconciler_actions_total{kind="copy",result="ok"}'] == copies_before + 1
    assert metrics['reconciler_registry_requests_total{registry="test"}'] > 0
    assert metrics['reconciler_reconcile_passes_total{result="ok",trigger="change"}'] == 2
    assert metrics['reconciler_drift_actions{environment="t"}'] == 0
    assert metrics["reconciler_stalled"] == 0
    assert metrics["reconciler_last_success_timestamp_seconds"] > time.time() - 60

    # In sync, nothing pushed: the controller fetches Git every interval and asks no registry anything.
    marks = {name: registry.mark() for name, registry in landscape.registries.items()}
    passes = len(controller.events("reconciled"))
    time.sleep(4 * INTERVAL)
    assert _requests_since(landscape, marks) == dict.fromkeys(landscape.registries, 0)
    assert len(controller.events("reconciled")) == passes
    status = controller.status()
    assert status["status"] == "in-sync"
    assert status["commit"] == second
    assert status["controller"]["ready"] is True
    assert controller.terminate() == 0


def test_invalid_commit_stalls_without_any_pass_until_a_fixed_commit(
    landscape: Landscape, remote: GitRemote, controllers: ControllerFactory
) -> None:
    api, web = landscape.seed(*API), landscape.seed(*WEB)
    d_pins = [(*API, api), (*WEB, web)]
    write_chain_state(remote.work, landscape.urls, {"d": d_pins, "t": [(*API, api)]})
    remote.create()
    good = remote.push("t: payments/api")
    controller = controllers("--repo", remote.url, "--interval", "1s", "--resync", "2s")
    controller.wait_event("reconciled", where=lambda e: e["commit"] == good)
    controller.wait_ready()

    t_file = remote.work / "environments" / "t.yaml"
    t_file.write_text(t_file.read_text() + '  payments/web:\n    - {tag: "20261126_02", digest: "sha256:nope"}\n')
    bad = remote.push("t: a broken pin")
    stalled = controller.wait_event("stalled", timeout=30)
    assert stalled["commit"] == bad
    assert stalled["reason"] == "invalid desired state"
    assert any("environments/t.yaml" in problem for problem in stalled["problems"])

    marks = {name: registry.mark() for name, registry in landscape.registries.items()}
    passes = len(controller.events("reconciled"))
    time.sleep(3.5)  # more than a resync period: a stall runs no pass at all
    assert _requests_since(landscape, marks) == dict.fromkeys(landscape.registries, 0)
    assert len(controller.events("reconciled")) == passes
    assert len(controller.events("stalled")) == 1  # no retry loop: one event, not one per interval
    status = controller.status()
    assert status["status"] == "stalled"
    assert status["stalled"]["revision"] == bad
    assert any("t.yaml" in problem for problem in status["stalled"]["problems"])
    assert status["commit"] == good  # the registries still hold what the last good commit declared
    assert controller.get("/readyz").status_code == 200  # unchanged by the stall
    assert controller.metrics()["reconciler_stalled"] == 1
    assert "Stalled" in controller.get("/").text

    write_chain_state(remote.work, landscape.urls, {"d": d_pins, "t": d_pins})
    fixed = remote.push("t: payments/web, pinned right")
    controller.wait_event("unstalled", timeout=30)
    controller.wait_event("reconciled", where=lambda e: e["commit"] == fixed)
    assert landscape.tag_digest("t", "test", *WEB) == web
    assert controller.status()["stalled"] is None
    assert controller.metrics()["reconciler_stalled"] == 0
    assert controller.terminate() == 0
