"""Build desired-state directories and Git histories for the manifests tests."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import git

from reconciler.manifests import load_desired_state

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "manifests"

Pins = dict[str, list[tuple[str, str]]]


def digest_of(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def copy_example(target: Path) -> Path:
    shutil.copytree(EXAMPLE, target)
    return target


def write_env(root: Path, env: str, pins: Pins) -> None:
    lines = [f"environment: {env}", "images:" if pins else "images: {}"]
    for image, versions in pins.items():
        lines.append(f"  {image}:")
        lines.extend(f'    - {{tag: "{tag}", digest: "{digest}"}}' for tag, digest in versions)
    (root / "environments" / f"{env}.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")


def read_pins(root: Path, env: str) -> Pins:
    state = load_desired_state(root).environments[env]
    return {image: [(pin.tag, pin.digest) for pin in pins] for image, pins in state.images.items()}


class GitRepo:
    """A throwaway repository with an identity, committing everything under its work tree."""

    def __init__(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.repo = git.Repo.init(path, initial_branch="main")
        with self.repo.config_writer() as config:
            config.set_value("user", "name", "Test Author")
            config.set_value("user", "email", "author@example.com")
            config.set_value("commit", "gpgsign", "false")

    def commit(self, message: str) -> str:
        self.repo.git.add(A=True)
        self.repo.index.commit(message)
        return self.repo.head.commit.hexsha
