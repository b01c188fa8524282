"""``DIR --watch`` reconciles an edit at once (not at the next interval), and two shards of the same
images, against the same registries, converge together with every image written by exactly one of them."""

from __future__ import annotations

import time
from datetime import datetime

import pytest
from engine.landscape import Landscape

from reconciler.engine.shards import Shard

from .conftest import ControllerFactory
from .harness import audit_records, wait_for

pytestmark = [pytest.mark.registry]

API, WEB = ("payments/api", "20261127_01"), ("payments/web", "20261126_02")


def _epoch(moment: str) -> float:
    return datetime.fromisoformat(moment.replace("Z", "+00:00")).timestamp()


def test_watch_mode_reconciles_an_edit_within_a_second(landscape: Landscape, controllers: ControllerFactory) -> None:
    api, web = landscape.seed(*API), landscape.seed(*WEB)
    d_pins = [(*API, api), (*WEB, web)]
    root = landscape.write({"d": d_pins, "t": [(*API, api)]})
    # A long interval: without the watch, the edit would wait a minute.
    controller = controllers(str(root), "--watch", "--interval", "60s", "--resync", "10m")
    controller.wait_event("reconciled", timeout=60, where=lambda e: e["failures"] == 0)
    time.sleep(0.5)  # let the watcher settle after start-up

    t_file = root / "environments" / "t.yaml"
    edited = t_file.read_text() + f'  payments/web:\n    - {{tag: "{WEB[1]}", digest: "{web}"}}\n'
    written_at = time.time()
    t_file.write_text(edited)

    def copy_record() -> dict[str, object] | None:
        for record in audit_records(controller.audit_path):
            if record["repository"] == f"t/{WEB[0]}" and record.get("phase") == "intent":
                return record
        return None

    record = wait_for(copy_record, timeout=30, what="the audit record of the copy into t")
    latency = _epoch(str(record["time"])) - written_at
    print(f"watch: file written -> copy audited in {latency:.3f}s")
    assert latency < 3.0
    wait_for(lambda: landscape.tag_digest("t", "test", *WEB) == web, timeout=30, what="payments/web in t")
    assert controller.events("changed")
    assert controller.terminate() == 0


IMAGES = [f"team/app{n}" for n in range(8)]


def test_two_shards_converge_and_each_image_is_written_by_exactly_one(
    landscape: Landscape, controllers: ControllerFactory
) -> None:
    shards = [Shard(0, 2), Shard(1, 2)]
    owned = [{image for image in IMAGES if shard.owns(image)} for shard in shards]
    assert all(owned), "the test's images must fall on both shards"
    pins = [(image, "20261201_01", landscape.seed(image, "20261201_01")) for image in IMAGES]
    root = landscape.write({"d": pins, "t": pins, "s1": pins})
    first = controllers(str(root), "--interval", "1s", "--shard", "0/2", name="shard-0")
    # the second one finds its shard the StatefulSet way: the ordinal ending its host name
    second = controllers(
        str(root), "--interval", "1s", "--shard-from-hostname", "--shards", "2",
        name="shard-1", env={"HOSTNAME": "reconciler-1"},
    )  # fmt: skip

    def converged() -> bool:
        return all(
            landscape.tag_digest(env, registry, image, tag) == digest
            for image, tag, digest in pins
            for env, registry in (("t", "test"), ("s1", "pre"))
        )

    wait_for(converged, timeout=90, what="every image in t and s1")
    for controller in (first, second):
        controller.wait_event("reconciled", where=lambda e: e["failures"] == 0)

    written = []
    for controller in (first, second):
        records = audit_records(controller.audit_path)
        assert records
        assert all(r["result"] == "ok" for r in records if r.get("phase") == "outcome")
        written.append({str(r["repository"]).split("/", 1)[1] for r in records})
    assert written[0] & written[1] == set()  # no image written by both
    assert written == owned  # each wrote exactly its shard's images, together all of them
    for controller, shard, images in ((first, "0/2", owned[0]), (second, "1/2", owned[1])):
        status = controller.status()
        assert status["controller"]["shard"] == shard
        assert {row["image"] for row in status["images"]} == images
        assert status["status"] == "in-sync"
        assert controller.terminate() == 0
