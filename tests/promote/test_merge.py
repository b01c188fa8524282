"""Two promotion branches edited by ``promote`` merge like people expect, in a real Git repository.

Versions added to DIFFERENT images of one environment file merge without a conflict, with or without
``keep_previous`` removals: each edit stays inside its own image's block, and an image's key line always
separates two blocks. Two NEW images that sort next to each other, or two versions added to the SAME
image, are inserted at the same place and do conflict; re-running the edit on the updated main branch
(what ``reconciler promote`` does for the second merge request) resolves it. docs/promotion.md says so.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from reconciler.manifests import load_desired_state
from reconciler.promote.files import promote_in_file

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "manifests"
T_FILE = Path("environments") / "t.yaml"


def git(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {result.stdout}{result.stderr}")
    return result


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """The example desired state, committed on main, with a local identity."""
    root = tmp_path / "desired"
    shutil.copytree(EXAMPLE, root)
    git(root, "init", "--quiet", "--initial-branch=main")
    git(root, "config", "user.name", "Promote Test")
    git(root, "config", "user.email", "promote@example.com")
    git(root, "config", "commit.gpgsign", "false")
    git(root, "add", "-A")
    git(root, "commit", "--quiet", "-m", "base")
    return root


def promote_on_branch(repo: Path, branch: str, image: str, tag: str, *, keep_previous: int | None = None) -> str:
    digest = "sha256:" + (tag.replace("_", "") * 8)[:64]
    git(repo, "checkout", "--quiet", "-b", branch, "main")
    edit = promote_in_file(repo / T_FILE, image, tag, digest, keep_previous=keep_previous)
    assert edit.changed
    git(repo, "commit", "--quiet", "-am", f"promote {image}:{tag} to t")
    git(repo, "checkout", "--quiet", "main")
    return digest


def t_pins(repo: Path) -> dict[str, list[tuple[str, str]]]:
    state = load_desired_state(repo)  # the whole desired state must still be valid
    return {name: [(p.tag, p.digest) for p in pins] for name, pins in state.environments["t"].images.items()}


@pytest.mark.parametrize("keep_previous", [None, 1])
def test_versions_added_to_different_images_merge_cleanly(repo: Path, keep_previous: int | None) -> None:
    before = t_pins(repo)
    # payments/api and payments/web are neighbours in t.yaml: the closest two edits can be.
    api = promote_on_branch(repo, "promote-api", "payments/api", "20261128_01", keep_previous=keep_previous)
    web = promote_on_branch(repo, "promote-web", "payments/web", "20261128_02", keep_previous=keep_previous)
    git(repo, "merge", "--quiet", "--no-edit", "promote-api")
    merged = git(repo, "merge", "--no-edit", "promote-web", check=False)
    assert merged.returncode == 0, merged.stdout + merged.stderr
    after = t_pins(repo)
    kept = slice(-keep_previous, None) if keep_previous is not None else slice(None)
    assert after["payments/api"] == [*before["payments/api"][kept], ("20261128_01", api)]
    assert after["payments/web"] == [*before["payments/web"][kept], ("20261128_02", web)]
    assert {k: v for k, v in after.items() if not k.startswith("payments/")} == {
        k: v for k, v in before.items() if not k.startswith("payments/")
    }


def _conflicts(repo: Path, first: str, second: str) -> bool:
    git(repo, "merge", "--quiet", "--no-edit", first)
    merged = git(repo, "merge", "--no-edit", second, check=False)
    if merged.returncode == 0:
        return False
    assert "CONFLICT" in merged.stdout, merged.stdout
    assert str(T_FILE) in merged.stdout, merged.stdout
    git(repo, "merge", "--abort")
    return True


def test_new_images_that_sort_together_conflict_and_a_rerun_resolves_it(repo: Path) -> None:
    promote_on_branch(repo, "new-cards-api", "cards/api", "20261128_01")
    promote_on_branch(repo, "new-cards-web", "cards/web", "20261128_02")
    assert _conflicts(repo, "new-cards-api", "new-cards-web")
    # What the second merge request's author does: promote again on top of the updated main.
    digest = "sha256:" + ("2026112802" * 8)[:64]
    promote_in_file(repo / T_FILE, "cards/web", "20261128_02", digest)
    pins = t_pins(repo)
    assert "cards/api" in pins
    assert pins["cards/web"] == [("20261128_02", digest)]


def test_versions_added_to_the_same_image_conflict(repo: Path) -> None:
    promote_on_branch(repo, "first", "payments/web", "20261128_01")
    promote_on_branch(repo, "second", "payments/web", "20261128_02")
    assert _conflicts(repo, "first", "second")
