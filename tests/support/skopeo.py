"""A thin wrapper around the ``skopeo`` CLI, the independent client the tests compare reconciler with.

Always against loopback registries over plain HTTP (``--tls-verify=false``). Credentials are passed as
``--creds`` arguments of a child process and never appear in a failure message: :class:`SkopeoError`
shows the command with ``--*creds`` values masked.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SKOPEO_INSTALL_HINT = "install it with `apt-get install skopeo`"


class SkopeoError(AssertionError):
    """skopeo exited non-zero (an AssertionError so pytest shows it as a test failure)."""


def find_skopeo() -> Path | None:
    found = shutil.which("skopeo")
    return Path(found) if found else None


def _masked(args: Sequence[str]) -> list[str]:
    shown: list[str] = []
    hide_next = False
    for arg in args:
        if hide_next:
            shown.append("***")
            hide_next = False
        elif arg.endswith("creds") and arg.startswith("--"):
            shown.append(arg)
            hide_next = True
        elif "creds=" in arg:
            shown.append(arg.split("=", 1)[0] + "=***")
        else:
            shown.append(arg)
    return shown


def creds(username: str | None, password: str | None) -> str | None:
    return f"{username}:{password}" if username is not None else None


@dataclass(frozen=True)
class Skopeo:
    """``skopeo`` against loopback registries. References are skopeo transports (``docker://HOST/REPO:TAG``,
    ``oci:DIR:TAG``)."""

    path: Path
    timeout: float = 120.0

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [str(self.path), *args]
        result = subprocess.run(command, capture_output=True, text=True, timeout=self.timeout, check=False)
        if result.returncode != 0:
            raise SkopeoError(
                f"skopeo failed (exit {result.returncode}): {' '.join(_masked(command))}\n{result.stderr.strip()}"
            )
        return result

    def inspect_raw(self, ref: str, *, creds: str | None = None) -> bytes:
        """The manifest bytes exactly as the registry serves them (``skopeo inspect --raw``)."""
        args = ["inspect", "--raw", "--tls-verify=false"]
        if creds:
            args += ["--creds", creds]
        command = [str(self.path), *args, ref]
        result = subprocess.run(command, capture_output=True, timeout=self.timeout, check=False)
        if result.returncode != 0:
            raise SkopeoError(f"skopeo failed: {' '.join(_masked(command))}\n{result.stderr.decode(errors='replace')}")
        return result.stdout

    def digest(self, ref: str, *, creds: str | None = None) -> str:
        """sha256 of the raw manifest: the digest the reference resolves to."""
        return "sha256:" + hashlib.sha256(self.inspect_raw(ref, creds=creds)).hexdigest()

    def inspect(self, ref: str, *, creds: str | None = None) -> dict[str, Any]:
        args = ["inspect", "--tls-verify=false"]
        if creds:
            args += ["--creds", creds]
        parsed: dict[str, Any] = json.loads(self.run(*args, ref).stdout)
        return parsed

    def copy(
        self,
        src: str,
        dst: str,
        *,
        src_creds: str | None = None,
        dest_creds: str | None = None,
        all_platforms: bool = True,
        preserve_digests: bool = True,
    ) -> None:
        """``skopeo copy`` over plain HTTP; by default all platforms and byte-exact manifests."""
        args = ["copy", "--src-tls-verify=false", "--dest-tls-verify=false", "--quiet"]
        if all_platforms:
            args.append("--all")
        if preserve_digests and not dst.startswith("oci:"):
            args.append("--preserve-digests")
        if src_creds:
            args += ["--src-creds", src_creds]
        if dest_creds:
            args += ["--dest-creds", dest_creds]
        self.run(*args, src, dst)

    def list_tags(self, repo_ref: str, *, creds: str | None = None) -> list[str]:
        args = ["list-tags", "--tls-verify=false"]
        if creds:
            args += ["--creds", creds]
        tags: list[str] = json.loads(self.run(*args, repo_ref).stdout)["Tags"] or []
        return tags
