"""What an apply costs in requests, counted in the registries' own access logs, so a saving cannot regress.

A first promotion into empty repositories: the observation's look-ups (one probe HEAD and one tags list per
target repository, a manifest look-up by digest on the source), then only transfers: no second GET of a
manifest the observation fetched, no HEAD on the target manifest, no blob HEAD in a repository that held no
tag. A promotion into a repository that already holds earlier versions still HEADs each blob, so the base
layer it shares with them is never sent again.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from support.registries import RegistryFactory
from typer.testing import CliRunner

from reconciler.cli import app
from reconciler.exitcodes import ExitCode
from testkit.demo import CHAIN_REGISTRIES, write_chain_state
from testkit.imagegen import GeneratedImage, image_for, make_layer
from testkit.imagepush import push_image
from testkit.localregistry import LocalRegistry, RequestRecord

pytestmark = [pytest.mark.registry]

BASE = [make_layer({"opt/runtime/lib.bin": b"r" * 4096, "etc/os-release": b"test-osbase\n"})]


def apply(root: Path, audit: Path) -> None:
    result = CliRunner().invoke(app, ["apply", str(root), "--audit-log", str(audit)])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == ExitCode.OK, result.stderr


def tally(requests: list[RequestRecord]) -> Counter[str]:
    """Requests by method and kind; manifests split into by-tag and by-digest."""
    counts: Counter[str] = Counter()
    for record in requests:
        kind = record.kind
        if kind == "manifest":
            kind += "@digest" if record.path.rsplit("/", 1)[-1].startswith("sha256:") else ":tag"
        counts[f"{record.method} {kind}"] += 1
    return counts


def test_first_apply_into_empty_repositories_sends_only_what_it_must(
    registry_factory: RegistryFactory, tmp_path: Path
) -> None:
    dev, test = registry_factory(name="dev"), registry_factory(name="test")
    images: dict[tuple[str, str], GeneratedImage] = {
        ("shop/api", "20261127_01"): image_for("shop/api", "20261127_01", base=BASE),
        ("shop/api", "20261127_02"): image_for(
            "shop/api", "20261127_02", base=BASE, platforms=("linux/amd64", "linux/arm64")
        ),
        ("shop/web", "20261127_01"): image_for("shop/web", "20261127_01"),
    }
    for (name, tag), image in images.items():
        push_image(image, dev.url, f"d/{name}", tag)
    pins = [(name, tag, str(image.digest)) for (name, tag), image in images.items()]
    root = _state(tmp_path, dev, test, {"d": pins, "t": pins})

    dev_mark, test_mark = dev.mark(), test.mark()
    apply(root, tmp_path / "audit.jsonl")
    source, target = tally(dev.requests_since(dev_mark)), tally(test.requests_since(test_mark))

    n = len(images)
    repositories = {name for name, _tag in images}
    manifests = sum(1 + len(image.children) for image in images.values())
    blobs_per_repository = sum(
        len({d for (name, _t), image in images.items() if name == repository for d in image.blobs})
        for repository in repositories
    )
    uploaded = target["PUT upload"]
    mounted = target["POST upload"] - uploaded  # a blob this pass already put in another repository
    detail = f"source {dict(source)}, target {dict(target)}"
    # observation: one probe HEAD per target repository, whose 404 brings its tags list (empty: no other
    # tag HEADed, no manifest looked up by digest there), and one look-up by digest on the source
    assert target["HEAD manifest:tag"] == len(repositories), detail
    assert target["GET tags"] == len(repositories), detail
    assert target["GET manifest@digest"] + target["HEAD manifest@digest"] == 0, detail
    # the source manifest is fetched once: by the observation (top) and by the copy (children only)
    assert source["GET manifest@digest"] == manifests, detail
    assert source["HEAD manifest@digest"] == 0, detail
    # the copy reuses the observation's tags lists: no blob HEAD in those empty repositories
    assert target["HEAD blob"] == 0, detail
    # every blob of every repository moves exactly once; every manifest is written once
    assert uploaded + mounted == blobs_per_repository, detail
    assert source["GET blob"] == uploaded, detail
    assert target["PUT manifest@digest"] + target["PUT manifest:tag"] == manifests, detail
    assert target["PUT manifest:tag"] == n, detail
    # referrers (none here): one probe of the source's referrers API (2.8 has none: remembered), and one
    # tags list per source repository, shared by its images (cosign tags and tag-schema indexes live there)
    assert source["GET other"] == 1, detail
    assert source["GET tags"] == len(repositories), detail
    referrer_lookups = 1 + len(repositories)
    assert referrer_lookups <= 2 * n  # the bound: at most 2 per image when none exist
    expected = 2 * len(repositories) + n + (manifests - n) + manifests + 3 * uploaded + mounted + referrer_lookups
    assert sum(source.values()) + sum(target.values()) == expected, detail


def test_apply_into_a_repository_with_earlier_versions_keeps_blob_heads(
    registry_factory: RegistryFactory, tmp_path: Path
) -> None:
    dev, test = registry_factory(name="dev"), registry_factory(name="test")
    first = image_for("shop/api", "20261127_01", base=BASE)
    second = image_for("shop/api", "20261127_02", base=BASE)
    push_image(first, dev.url, "d/shop/api", "20261127_01")
    push_image(second, dev.url, "d/shop/api", "20261127_02")
    first_pin = ("shop/api", "20261127_01", str(first.digest))
    second_pin = ("shop/api", "20261127_02", str(second.digest))
    root = _state(tmp_path, dev, test, {"d": [first_pin, second_pin], "t": [first_pin]})
    apply(root, tmp_path / "audit.jsonl")

    _state(tmp_path, dev, test, {"d": [first_pin, second_pin], "t": [first_pin, second_pin]})
    mark = test.mark()
    apply(root, tmp_path / "audit.jsonl")
    requests = test.requests_since(mark)
    target = tally(requests)
    shared = set(first.blobs) & set(second.blobs)
    assert shared, "the two versions must share their base layer for this test to mean anything"
    detail = f"target {dict(target)}"
    assert target["HEAD blob"] == len(second.blobs), detail  # the repository held a tag: ask blob by blob
    assert target["PUT upload"] == len(set(second.blobs) - shared), detail
    uploads = [r for r in requests if r.is_blob_write]
    assert not [r for r in uploads for digest in shared if digest in r.uri], "the shared base layer was re-sent"


def _state(
    tmp_path: Path, dev: LocalRegistry, test: LocalRegistry, pins: dict[str, list[tuple[str, str, str]]]
) -> Path:
    urls = {name: test.url for name in CHAIN_REGISTRIES} | {"dev": dev.url}
    return write_chain_state(tmp_path / "state", urls, pins)


def test_gates_cost_no_request_the_copy_would_not_send_anyway(
    registry_factory: RegistryFactory, tmp_path: Path
) -> None:
    """The gates read each platform's manifest and config before the copy; the copy reuses both instead of
    fetching them again, so a gated first apply sends exactly the requests of an ungated one."""
    dev = registry_factory(name="dev")
    images = {
        ("shop/api", "20261127_01"): image_for("shop/api", "20261127_01", base=BASE),
        ("shop/api", "20261127_02"): image_for(
            "shop/api", "20261127_02", base=BASE, platforms=("linux/amd64", "linux/arm64")
        ),
    }
    for (name, tag), image in images.items():
        push_image(image, dev.url, f"d/{name}", tag)
    pins = [(name, tag, str(image.digest)) for (name, tag), image in images.items()]
    counts = {}
    for gated in (False, True):
        test = registry_factory(name=f"test-{gated}")
        root = _state(tmp_path / str(gated), dev, test, {"d": pins, "t": pins})
        if gated:
            config = root / "reconciler.yaml"
            config.write_text(config.read_text() + "gates:\n  t: {non_root: true, exec_form: true, max_layers: 9}\n")
        dev_mark, test_mark = dev.mark(), test.mark()
        apply(root, tmp_path / f"audit-{gated}.jsonl")
        counts[gated] = (tally(dev.requests_since(dev_mark)), tally(test.requests_since(test_mark)))
    assert counts[True] == counts[False], counts
