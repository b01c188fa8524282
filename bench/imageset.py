"""The 200 small images the many-image benchmarks copy, and how they invoke reconciler.

20 repositories x 10 tags ``20261127_01``..``_10``; the newest 3 tags of the first 10 repositories and
the newest 2 of the others are two-platform indexes (50 in all), the rest single-platform images (150).
Every repository has a base layer shared by its images (as an app shares its runtime base), each image
an application layer and its config, each platform of an index one more layer. Deterministic: the same
digests on every run, so both tools always copy the same bytes.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from testkit.imagegen import ImageSettings, make_image, make_layer
from testkit.imagepush import push_image

REPOSITORIES = 20
TAGS = 10
IMAGES = REPOSITORIES * TAGS


@dataclass(frozen=True, slots=True)
class SeededImage:
    name: str
    """``appNN``: the image name, without any environment or path prefix."""
    repository: str
    tag: str
    digest: str


def seed_images(registry_url: str, prefix: str) -> list[SeededImage]:
    """Push the 200 images to ``<prefix>/appNN:<tag>`` in the registry at ``registry_url``."""
    seeded = []
    for r in range(REPOSITORIES):
        name = f"app{r:02d}"
        repository = f"{prefix}/{name}"
        base = [make_layer({"opt/runtime/lib.bin": bytes([r]) * 32 * 1024, "etc/os-release": b"prod-osbase\n"})]
        indexes = 3 if r < 10 else 2
        for n in range(1, TAGS + 1):
            tag = f"20261127_{n:02d}"
            image = make_image(
                [{"app/main": f"{name}:{tag}\n".encode() * 200}],
                base=base,
                platforms=("linux/amd64", "linux/arm64") if n > TAGS - indexes else ("linux/amd64",),
                settings=ImageSettings(labels={"org.opencontainers.image.version": tag}),
            )
            push_image(image, registry_url, repository, tag)
            seeded.append(SeededImage(name, repository, tag, str(image.digest)))
    return seeded


def reconciler_command() -> list[str]:
    """The installed ``reconciler`` script (what a user runs), else this interpreter's package."""
    found = shutil.which("reconciler")
    return [found] if found else [sys.executable, "-c", "from reconciler.cli import main; main()"]


def write_skopeo_sync_file(path: Path, source_host: str, repositories: list[str]) -> Path:
    """The YAML source file of ``skopeo sync --src yaml``: every tag of each repository, plain HTTP."""
    listed = "\n".join(f"    {name}: []" for name in repositories)
    path.write_text(f"{source_host}:\n  tls-verify: false\n  images:\n{listed}\n")
    return path


def skopeo_sync_command(sync_file: Path, destination: str) -> list[str]:
    """The baseline: ``skopeo sync`` of every listed repository, all platforms, digests preserved."""
    return [
        "skopeo", "sync", "--src", "yaml", "--dest", "docker", "--dest-tls-verify=false",
        "--all", "--preserve-digests", str(sync_file), destination,
    ]  # fmt: skip
