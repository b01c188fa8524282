"""Policy gates end to end on a real registry: each promotion into a gated environment is refused or allowed
exactly as its image deserves, the refusal names every failed gate with its evidence, it is audited, the
other images go on, nothing refused reaches the target, and apply exits 3 (policy)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reconciler.cli import app
from reconciler.engine.audit import pair_records, read_records
from reconciler.exitcodes import ExitCode
from testkit.imagegen import (
    LINUX_AMD64,
    LINUX_ARM64,
    GeneratedImage,
    ImageSettings,
    image_for,
    make_config,
    make_index,
    make_layer,
    make_manifest,
)
from testkit.imagepush import push_image
from testkit.localregistry import LocalRegistry

pytestmark = pytest.mark.registry
TAG = "20261201_01"
LABELS = {"maintainer": "team@example.com"}
GOOD = ImageSettings(user="10001", entrypoint=("/run.sh",), cmd=(), labels=LABELS)


def _images(base: GeneratedImage) -> dict[str, GeneratedImage]:
    layers = base.manifests[0].layers

    def build(name: str, settings: ImageSettings = GOOD, *, on_base: bool = True, count: int = 1) -> GeneratedImage:
        return image_for(name, TAG, settings=settings, base=layers if on_base else (), layer_count=count)

    mixed = []  # a two-platform index where only arm64 runs as root
    for platform, user in ((LINUX_AMD64, "10001"), (LINUX_ARM64, "root")):
        own = [*layers, make_layer({"etc/platform": f"{platform}\n".encode()})]
        settings = ImageSettings(user=user, entrypoint=("/run.sh",), cmd=(), labels=LABELS)
        config = make_config([layer.diff_id for layer in own], platform=platform, settings=settings)
        mixed.append(make_manifest(config, own, platform=platform))
    return {
        "good": build("good"),
        "root": build("root", ImageSettings(user="root", entrypoint=("/run.sh",), cmd=(), labels=LABELS)),
        "shell": build("shell", ImageSettings(user="10001", cmd=("/bin/sh", "-c", "exec /app"), labels=LABELS)),
        "nobase": build("nobase", on_base=False),
        "layers": build("layers", count=5),  # 2 base + 5 = 7 > max_layers 4
        "nolabel": build("nolabel", ImageSettings(user="10001", entrypoint=("/run.sh",), cmd=(), labels={})),
        "mixed": make_index(mixed),
    }


def _state(root: Path, url: str, base: GeneratedImage, images: dict[str, GeneratedImage]) -> Path:
    (root / "environments").mkdir(parents=True)
    (root / "reconciler.yaml").write_text(
        "version: 1\n"
        f'registries:\n  dev: {{url: "{url}"}}\n  prod: {{url: "{url}"}}\n'
        "environments:\n  d: {registry: dev, prefix: d, source: true}\n"
        "  p: {registry: prod, prefix: p, from: d, immutable_tags: true}\n"
        f'base_images:\n  prod-osbase: {{reference: "dev/osbase/prod-osbase@{base.digest}"}}\n'
        "gates:\n  p: {base: prod-osbase, non_root: true, exec_form: true, max_layers: 4, labels: [maintainer]}\n"
    )
    pins = "".join(f'  {name}:\n    - {{tag: "{TAG}", digest: "{image.digest}"}}\n' for name, image in images.items())
    (root / "environments" / "d.yaml").write_text("environment: d\nimages: {}\n")
    (root / "environments" / "p.yaml").write_text(f"environment: p\nimages:\n{pins}")
    return root


def test_gates_refuse_exactly_the_images_that_break_them(registry: LocalRegistry, tmp_path: Path) -> None:
    base = image_for("osbase/prod-osbase", "20261101_01", settings=GOOD)
    push_image(base, registry.url, "osbase/prod-osbase", "20261101_01")
    images = _images(base)
    for name, image in images.items():
        push_image(image, registry.url, f"d/{name}", TAG)
    root = _state(tmp_path / "state", registry.url, base, images)
    audit = tmp_path / "audit.jsonl"

    runner = CliRunner()
    plan = runner.invoke(app, ["plan", str(root), "-o", "json"])
    assert plan.exit_code == ExitCode.INVALID, plan.output
    reasons = {a["image"]: a["reason"] for a in json.loads(plan.output)["actions"] if a["kind"] == "refused"}
    assert set(reasons) == {"root", "shell", "nobase", "layers", "nolabel", "mixed"}
    assert "non_root" in reasons["root"]
    assert "User is root" in reasons["root"]
    assert "exec_form" in reasons["shell"]
    assert '"/bin/sh", "-c"' in reasons["shell"] or "/bin/sh" in reasons["shell"]
    assert "base" in reasons["nobase"]
    assert str(base.manifests[0].layers[0].blob.digest) in reasons["nobase"]  # the evidence: the base's layer
    assert "7 layers" in reasons["layers"]
    assert "label maintainer" in reasons["nolabel"]
    assert "[linux/arm64/v8]: User is root" in reasons["mixed"]  # only the failing platform is named
    assert "linux/amd64" not in reasons["mixed"]

    result = runner.invoke(app, ["apply", str(root), "--audit-log", str(audit)])
    assert result.exit_code == ExitCode.INVALID, result.output  # policy, and no runtime failure
    tags = _tags(registry)
    assert tags == {"p/good"}  # nothing refused reached the target, the good one did
    refusals = {r["repository"]: r for r in pair_records(read_records(audit)) if r["result"] == "refused"}
    assert set(refusals) == {f"p/{name}" for name in ("root", "shell", "nobase", "layers", "nolabel", "mixed")}
    assert "User is root" in str(refusals["p/root"]["error"])
    again = runner.invoke(app, ["plan", str(root), "--detailed-exitcode"])
    assert again.exit_code == ExitCode.INVALID  # still refused: nothing changed


def _tags(registry: LocalRegistry) -> set[str]:
    import httpx

    catalog = httpx.get(f"{registry.url}/v2/_catalog").json()["repositories"]
    found = set()
    for repository in catalog:
        if repository.startswith("p/"):
            listing = httpx.get(f"{registry.url}/v2/{repository}/tags/list").json()
            if listing.get("tags"):
                found.add(repository)
    return found
