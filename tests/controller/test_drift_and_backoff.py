"""Drift made by hand is found at the next resync (repaired, or reported as a conflict where tags are
immutable); a transient failure of one image backs off exponentially while the other images converge."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from engine.landscape import ACCEPT, Landscape, start_landscape
from support.faultproxy import FaultProxy

from testkit.imagepush import push_image
from testkit.localregistry import LocalRegistry

from .conftest import ControllerFactory
from .harness import wait_for

pytestmark = [pytest.mark.registry]

API, WEB = ("payments/api", "20261127_01"), ("payments/web", "20261126_02")
RESYNC = 2.0


def test_drift_is_repaired_within_a_resync_and_a_moved_immutable_tag_is_a_conflict(
    landscape: Landscape, controllers: ControllerFactory
) -> None:
    root = landscape.promote_everywhere([API])
    digest = str(landscape.images[API].digest)
    controller = controllers(str(root), "--interval", "1s", "--resync", f"{RESYNC:.0f}s")
    controller.wait_event("reconciled", timeout=60, where=lambda e: e["failures"] == 0)
    assert landscape.tag_digest("t", "test", *API) == digest

    # Someone deletes the image from t by hand (the registry API: DELETE by digest removes its tags).
    test_url = landscape.registries["test"].url
    deleted = httpx.delete(f"{test_url}/v2/t/{API[0]}/manifests/{digest}", headers={"Accept": ACCEPT})
    assert deleted.status_code == 202
    assert landscape.tag_digest("t", "test", *API) is None
    gone_at = time.monotonic()
    wait_for(lambda: landscape.tag_digest("t", "test", *API) == digest, timeout=30, what="the tag repaired")
    repaired = time.monotonic() - gone_at
    print(f"deleted tag repaired after {repaired:.2f}s (resync {RESYNC}s)")
    assert repaired < RESYNC + 6.0
    resync = controller.wait_event("reconciled", where=lambda e: e["trigger"] == "resync" and e.get("applied"))
    assert resync["actions"].get("copy", 0) + resync["actions"].get("retag", 0) == 1

    # Someone pushes another image under the production tag on the second site: immutable, a conflict.
    intruder = landscape.image("intruder", API[1])
    push_image(intruder, landscape.registries["prod-b"].url, f"p/{API[0]}", API[1])
    cell = wait_for(
        lambda: (c := controller.cell(API[0], "p")) is not None and c["state"] == "conflict" and c,
        timeout=30,
        what="the conflict on the board",
    )
    assert "immutable" in cell["error"]
    assert landscape.tag_digest("p", "prod-b", *API) == str(intruder.digest)  # refused: never moved
    status = controller.status()
    assert status["status"] == "degraded"
    assert status["summary"]["conflict"] == 1
    assert controller.metrics()['reconciler_drift_actions{environment="p"}'] == 1
    assert controller.metrics()['reconciler_actions_total{kind="conflict",result="refused"}'] >= 1
    assert controller.terminate() == 0


@pytest.fixture
def flaky_api(registry_factory: Any, tmp_path: Path) -> Any:
    """The landscape with ``test`` behind a proxy that drops the connection of every request about
    t/payments/api (a reset, not a 503: the proxy answers a HEAD's 503 with a body, which would poison a
    keep-alive connection the other images share): that image cannot be observed until the proxy heals."""
    proxies: list[FaultProxy] = []

    def about_api(_method: str, path: str) -> bool:
        return f"/t/{API[0]}/" in path

    def url_for(name: str, registry: LocalRegistry) -> str:
        if name != "test":
            return registry.url
        proxies.append(FaultProxy(registry.url, rate=1.0, faults=("reset",), eligible=about_api).start())
        return proxies[-1].url

    land = start_landscape(registry_factory, tmp_path / "state", url_for)
    try:
        yield land, proxies[0]
    finally:
        for proxy in proxies:
            proxy.stop()


def test_a_transient_failure_backs_off_per_image_while_the_others_converge(
    flaky_api: tuple[Landscape, FaultProxy], controllers: ControllerFactory
) -> None:
    land, proxy = flaky_api
    pins = [(name, tag, land.seed(name, tag)) for name, tag in (API, WEB)]
    root = land.write({"d": pins, "t": pins})
    controller = controllers(
        str(root), "--interval", "1s", "--resync", "10m", "--retry-base", "1s", "--retry-max", "2s"
    )
    failed = controller.wait_event("image_failed", timeout=60)
    assert failed["image"] == API[0]
    assert failed["temporary"] is True
    # The other image converged, not held back by the failing one.
    wait_for(lambda: land.tag_digest("t", "test", *WEB) == pins[1][2], timeout=10, what="payments/web in t")
    assert controller.cell(WEB[0], "t")["state"] == "in-sync"  # type: ignore[index]

    def delays() -> list[float]:
        found = []
        for event in controller.events("reconciled"):
            found += [r["retry_in"] for r in event.get("retries") or [] if r["image"] == API[0]]
        return found

    wait_for(lambda: len(delays()) >= 3, timeout=90, what="three failed attempts of payments/api")
    assert delays()[:3] == [1.0, 2.0, 2.0]  # doubling from --retry-base, capped at --retry-max
    retries = [e for e in controller.events("reconciled") if e["trigger"] == "retry"]
    assert retries
    assert all(e["images"] == 1 for e in retries)  # only the image due, never the others
    status = controller.status()
    assert [r["image"] for r in status["retrying"]] == [API[0]]
    cell = controller.cell(API[0], "t")
    assert cell is not None
    assert cell["state"] == "failed"
    assert cell["retry_at"]
    assert len(controller.events("image_failed")) == 1  # an event on the transition, not on every attempt

    proxy.rate = 0.0  # the registry recovers: the next retry converges
    controller.wait_event("image_recovered", timeout=30)
    assert land.tag_digest("t", "test", *API) == pins[0][2]
    assert controller.status()["retrying"] == []
    assert controller.terminate() == 0
