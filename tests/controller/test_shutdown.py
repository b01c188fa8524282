"""SIGTERM in the middle of a copy: exit 0 within the grace period, and never a tag on an incomplete image.

The copies into ``test`` go through a proxy that holds every blob upload for a while, so the controller is
surely mid-copy when the signal arrives (the copy's audit intent is written when it starts). With a grace
period shorter than the copy, the copy is cancelled; with a longer one, it finishes, and the copies that
had not started yet are not started. Afterwards every tag of every registry resolves to a complete image
(``walk_registry``, independent of the product)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from engine.landscape import Landscape, start_landscape, walk_registry

from testkit.localregistry import LocalRegistry

from .conftest import ControllerFactory
from .harness import SlowUploadProxy, audit_records, wait_for

pytestmark = [pytest.mark.registry]

VERSIONS = [("payments/api", "20261127_01"), ("payments/web", "20261126_02"), ("platform/gateway", "20261120_01")]


@pytest.fixture
def slow_test_registry(registry_factory: Any, tmp_path: Path) -> Any:
    proxies: list[SlowUploadProxy] = []

    def url_for(name: str, registry: LocalRegistry) -> str:
        if name != "test":
            return registry.url
        proxies.append(SlowUploadProxy(registry.url, delay=0).start())
        return proxies[-1].url

    land = start_landscape(registry_factory, tmp_path / "state", url_for)
    try:
        yield land, proxies[0]
    finally:
        for proxy in proxies:
            proxy.stop()


def _intents(path: Path) -> list[dict[str, Any]]:
    return [r for r in audit_records(path) if r.get("phase") == "intent"]


def _assert_no_tag_on_an_incomplete_image(land: Landscape) -> set[str]:
    checked, problems = walk_registry(land.registries["test"].url)
    assert problems == []
    return checked


def test_sigterm_mid_copy_cancels_after_the_grace_period_and_leaves_no_incomplete_tag(
    slow_test_registry: tuple[Landscape, SlowUploadProxy], controllers: ControllerFactory
) -> None:
    land, proxy = slow_test_registry
    pins = [(name, tag, land.seed(name, tag, layer_size=256 * 1024)) for name, tag in VERSIONS]
    root = land.write({"d": pins, "t": pins})
    proxy.delay = 30.0  # no copy into t can finish during this test
    controller = controllers(str(root), "--interval", "1s", "--grace", "1s")
    wait_for(lambda: len(_intents(controller.audit_path)) == 3, timeout=60, what="the three copies to start")
    time.sleep(0.3)  # the blob uploads are held by the proxy now
    started = time.monotonic()
    code = controller.terminate()
    elapsed = time.monotonic() - started
    print(f"SIGTERM -> exit {code} in {elapsed:.2f}s (grace 1s)")
    assert code == 0
    assert elapsed < 1.0 + 5.0
    assert controller.events("cancelling"), controller.output()
    assert controller.events("stopped")[0]["clean"] is False
    checked = _assert_no_tag_on_an_incomplete_image(land)
    assert not any(entry.startswith("t/") for entry in checked)  # cancelled before any tag was written

    # The next run converges (the copies are made again), with no slowness this time.
    proxy.delay = 0
    again = controllers(str(root), "--interval", "1s", name="second")
    again.wait_event("reconciled", timeout=60, where=lambda e: e["failures"] == 0)
    for name, tag, digest in pins:
        assert land.tag_digest("t", "test", name, tag) == digest
    assert again.terminate() == 0
    _assert_no_tag_on_an_incomplete_image(land)


def test_sigterm_lets_the_copy_under_way_finish_and_starts_no_other(
    slow_test_registry: tuple[Landscape, SlowUploadProxy], controllers: ControllerFactory
) -> None:
    land, proxy = slow_test_registry
    pins = [(name, tag, land.seed(name, tag)) for name, tag in VERSIONS]
    root = land.write({"d": pins, "t": pins})
    proxy.delay = 1.5  # one copy (its blobs go up in parallel) takes a few seconds
    controller = controllers(str(root), "--interval", "1s", "--grace", "30s", "--concurrency", "1")
    wait_for(lambda: _intents(controller.audit_path), timeout=60, what="the first copy to start")
    started = time.monotonic()
    assert controller.terminate() == 0
    elapsed = time.monotonic() - started
    print(f"SIGTERM -> exit 0 in {elapsed:.2f}s (grace 30s, one copy under way)")
    assert elapsed < 20
    assert controller.events("stopped")[0]["clean"] is True
    assert not controller.events("cancelling")

    outcomes = [r for r in audit_records(controller.audit_path) if r.get("phase") == "outcome"]
    written = [r for r in outcomes if r["result"] == "ok"]
    assert len(written) == 1, outcomes  # the copy under way finished...
    others = [r for r in outcomes if r["result"] != "ok"]
    assert all(r["result"] == "skipped" and "not started" in (r.get("error") or "") for r in others), others
    intents = [r for r in audit_records(controller.audit_path) if r.get("phase") == "intent"]
    assert len(intents) == 1  # writes never started are not announced
    first = written[0]
    assert land.tag_digest("t", "test", first["repository"].split("/", 1)[1], first["tag"]) == first["digest"]
    checked = _assert_no_tag_on_an_incomplete_image(land)
    assert sorted(entry for entry in checked if entry.startswith("t/")) == [f"{first['repository']}:{first['tag']}"]
