"""Fixtures for the trust tests: real SSH keys (``ssh-keygen``) and real Git repositories with signed commits.

- ``keys``: ed25519 key pairs made once per session: alice, bob, carol (release managers), mallory
  (nobody trusts her), forge (the forge's merge-signing key), filer (listed for namespace "file" only).
- ``desired``: a ``DesiredRepo`` in tmp with ``trust: {p: ...}`` and alice + bob + forge as signers, its
  first commit signed by alice; ``desired_repo(subdir=...)`` makes more.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

KEY_NAMES = ("alice", "bob", "carol", "mallory", "forge", "filer")
CONFIG = """version: 1
registries:
  dev: {url: "http://127.0.0.1:5000"}
environments:
  d: {registry: dev, prefix: d, source: true}
  t: {registry: dev, prefix: t, from: d}
  p: {registry: dev, prefix: p, from: t}
trust:
  p: {allowed_signers: trust/p_allowed_signers}
"""


class Keys:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def private(self, name: str) -> Path:
        return self.directory / name

    def public(self, name: str) -> str:
        kind, blob = (self.directory / f"{name}.pub").read_text().split()[:2]
        return f"{kind} {blob}"

    def fingerprint(self, name: str) -> str:
        out = subprocess.run(
            ["ssh-keygen", "-l", "-f", str(self.directory / f"{name}.pub")], capture_output=True, text=True, check=True
        ).stdout
        return out.split()[1]

    def signers(self, *names: str, options: str = 'namespaces="git"') -> str:
        """An allowed_signers text listing ``names`` as ``<name>@example.com``."""
        lines = [f"{name}@example.com {options} {self.public(name)}" for name in names]
        return "# who may sign changes to p\n" + "\n".join(lines) + "\n"


@pytest.fixture(scope="session")
def keys(tmp_path_factory: pytest.TempPathFactory) -> Keys:
    if shutil.which("ssh-keygen") is None:
        pytest.fail("ssh-keygen is missing: apt-get install openssh-client", pytrace=False)
    directory = tmp_path_factory.mktemp("keys")
    for name in KEY_NAMES:
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(directory / name)], check=True
        )
    return Keys(directory)


class DesiredRepo:
    """A Git work tree holding a desired state (at ``root / subdir``), committed to by the test."""

    def __init__(self, root: Path, keys: Keys, subdir: str = "") -> None:
        self.root = root
        self.keys = keys
        self.subdir = subdir
        self.dir = root / subdir if subdir else root
        self.home = root.parent / f"{root.name}-home"
        self.home.mkdir(exist_ok=True)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.git("init", "-q", "-b", "main")

    def env(self, who: str = "alice") -> dict[str, str]:
        name, email = who.split("|", 1) if "|" in who else (who.title(), f"{who}@example.com")
        return {
            "HOME": str(self.home),
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_AUTHOR_NAME": name,
            "GIT_AUTHOR_EMAIL": email,
            "GIT_COMMITTER_NAME": name,
            "GIT_COMMITTER_EMAIL": email,
        }

    def git(self, *args: str, who: str = "alice", stdin: bytes | None = None) -> str:
        done = subprocess.run(
            ["git", *args], cwd=self.root, env=self.env(who), input=stdin, capture_output=True, check=False
        )
        assert done.returncode == 0, done.stderr.decode()
        return done.stdout.decode().strip()

    def write(self, files: dict[str, str | None]) -> None:
        for path, text in files.items():
            target = self.dir / path
            if text is None:
                target.unlink()
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)

    def commit(self, message: str, files: dict[str, str | None], *, key: str | None = None, who: str = "alice") -> str:
        """Write ``files`` (None deletes), commit them, signed with ``key`` when given; the new SHA."""
        self.write(files)
        self.git("add", "-A")
        self.git(*self._signing(key), "commit", "-q", "--allow-empty", "-m", message, who=who)
        return self.git("rev-parse", "HEAD")

    def _signing(self, key: str | None) -> list[str]:
        if key is None:
            return ["-c", "commit.gpgsign=false"]
        return ["-c", "gpg.format=ssh", "-c", f"user.signingkey={self.keys.private(key)}", "-c", "commit.gpgsign=true"]

    def merge(self, branch: str, *, key: str | None, who: str = "forge|noreply@forge.example.com") -> str:
        """A forge-style merge commit (``--no-ff``) of ``branch`` into the current branch."""
        self.git(*self._signing(key), "merge", "-q", "--no-ff", "-m", f"Merge branch '{branch}'", branch, who=who)
        return self.git("rev-parse", "HEAD")

    def pin(self, env: str, n: int) -> dict[str, str | None]:
        pin = f'{{tag: "20261127_{n:02d}", digest: "sha256:{n:064x}"}}'
        text = f"environment: {env}\nimages:\n  payments/api:\n    - {pin}\n"
        return {f"environments/{env}.yaml": text}

    def head(self) -> str:
        return self.git("rev-parse", "HEAD")


@pytest.fixture
def desired_repo(tmp_path: Path, keys: Keys) -> Callable[..., DesiredRepo]:
    counter = iter(range(100))

    def make(
        *, subdir: str = "", signers: Iterable[str] = ("alice", "bob", "forge"), config: str = CONFIG
    ) -> DesiredRepo:
        repo = DesiredRepo(tmp_path / f"repo{next(counter)}", keys, subdir)
        files: dict[str, str | None] = {"reconciler.yaml": config, "trust/p_allowed_signers": keys.signers(*signers)}
        for env in ("d", "t", "p"):
            files.update(repo.pin(env, 1))
        repo.commit("initial desired state", files, key="alice")
        return repo

    return make


@pytest.fixture
def desired(desired_repo: Callable[..., DesiredRepo]) -> DesiredRepo:
    return desired_repo()
