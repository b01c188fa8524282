"""Trust in the controller, with real SSH-signed commits: a signed change to a protected environment is
applied; an unsigned one stalls the controller with the commit and the reason, and nothing reaches the
registry; once the branch is back on signed history, the next signed change is applied."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from support.skopeo import Skopeo
from trust.conftest import DesiredRepo, desired_repo, keys  # noqa: F401  (the trust tests' fixtures)

from testkit.imagegen import image_for
from testkit.imagepush import push_image
from testkit.localregistry import LocalRegistry

from .conftest import ControllerFactory

pytestmark = [pytest.mark.registry]


def _pins(env: str, versions: list[tuple[str, str]]) -> dict[str, str | None]:
    body = "".join(f'    - {{tag: "{tag}", digest: "{digest}"}}\n' for tag, digest in versions)
    return {f"environments/{env}.yaml": f"environment: {env}\nimages:\n  payments/api:\n{body}"}


def test_the_controller_applies_signed_changes_and_stalls_on_an_unsigned_one(
    registry: LocalRegistry,
    desired_repo: Callable[..., DesiredRepo],  # noqa: F811
    controllers: ControllerFactory,
    skopeo: Skopeo,
    tmp_path: Path,
) -> None:
    versions = []
    for n in (1, 2, 3):
        tag = f"20261127_{n:02d}"
        image = image_for("payments/api", tag)
        push_image(image, registry.url, "d/payments/api", tag)
        versions.append((tag, str(image.digest)))
    config = (
        f'version: 1\nregistries:\n  dev: {{url: "{registry.url}"}}\n'
        "environments:\n  d: {registry: dev, prefix: d, source: true}\n"
        "  t: {registry: dev, prefix: t, from: d}\n  p: {registry: dev, prefix: p, from: t}\n"
        "trust:\n  p: {allowed_signers: trust/p_allowed_signers}\n"
    )
    repo = desired_repo(config=config)
    files = {**_pins("t", versions), **_pins("p", versions[:1]), "environments/d.yaml": "environment: d\nimages: {}\n"}
    good = repo.commit("t has three versions, p the first", files, key="alice")

    def in_p(tag: str) -> bool:
        return tag in skopeo.list_tags(f"docker://{registry.host}/p/payments/api")

    state = {"RECONCILER_STATE_DIR": str(tmp_path / "s")}
    controller = controllers(str(repo.dir), "--interval", "1s", "--trusted-base", f"{good}~1", env=state)
    controller.wait_event("reconciled", timeout=60, where=lambda e: e.get("failures") == 0)
    assert in_p(versions[0][0])

    unsigned = repo.commit("p takes the second, unsigned", _pins("p", versions[:2]))
    stalled = controller.wait_event("stalled", timeout=30)
    problems = json.dumps(stalled["problems"])
    assert unsigned[:12] in problems
    assert "environments/p.yaml" in problems
    assert not in_p(versions[1][0])  # nothing reached the registry

    repo.git("reset", "-q", "--hard", good)  # the operator puts the branch back on signed history
    repo.commit("p takes the third, signed by bob", _pins("p", [versions[0], versions[2]]), key="bob")
    controller.wait_event("unstalled", timeout=30)
    controller.wait_event("reconciled", timeout=60, where=lambda e: e.get("failures") == 0, after=1)
    assert in_p(versions[2][0])
    assert not in_p(versions[1][0])
    assert controller.terminate() == 0
