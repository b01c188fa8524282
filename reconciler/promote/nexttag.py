"""The next build number of the day, ``YYYYMMDD_NN``, and its race-free reservation.

``next_free`` looks at the tags the source registry holds. Two CI builds that ask at the same moment get
the same answer, and distribution (like most registries) has no conditional tag write that could tell
them apart. So ``claim`` reserves the number where there IS an atomic compare-and-set: the desired-state
repository's remote. It pushes a new ref ``refs/reconciler/builds/<image>/<tag>`` that must not exist yet;
Git's receive-pack checks that under the ref's lock, so of two builds racing for a number exactly one
gets it, and the other moves on to the next number. Numbers already reserved count as taken too.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable
from datetime import date
from pathlib import Path

from reconciler.errors import PromotionError
from reconciler.model.version import MAX_BUILD, Version
from reconciler.promote.branch import list_remote_refs, repository_root, reserve_ref

RESERVATIONS = "refs/reconciler/builds"
MAX_ATTEMPTS = 20


def next_free(day: date, taken: Iterable[str]) -> Version:
    """The next version of ``day`` after every version in ``taken`` (tags; other names ignored)."""
    versions = [v for v in (Version.try_parse(tag) for tag in taken) if v is not None]
    try:
        return Version.next_for(day, versions)
    except ValueError as exc:
        raise PromotionError(str(exc)) from None


def reservation_ref(image: str, tag: str) -> str:
    return f"{RESERVATIONS}/{image}/{tag}"


def claim(directory: Path, remote: str, image: str, day: date, taken: Iterable[str]) -> Version:
    """Reserve the next free version of ``day`` for ``image`` on ``remote`` and return it."""
    repository = repository_root(directory)
    prefix = f"{RESERVATIONS}/{image}/"
    reserved = [ref.removeprefix(prefix) for ref in list_remote_refs(repository, remote, f"{prefix}{day:%Y%m%d}_*")]
    known = [*taken, *reserved]
    who = os.environ.get("CI_JOB_URL") or os.environ.get("GITHUB_RUN_ID") or socket.gethostname()
    for _ in range(MAX_ATTEMPTS):
        version = next_free(day, known)
        if reserve_ref(
            repository, remote, reservation_ref(image, version.tag), f"reserve {image}:{version.tag} for {who}"
        ):
            return version
        known.append(version.tag)  # taken by a build that got there first: try the next number
    raise PromotionError(f"could not reserve a build number for {image} on {day:%Y%m%d} after {MAX_ATTEMPTS} tries")


__all__ = ["MAX_BUILD", "RESERVATIONS", "claim", "next_free", "reservation_ref"]
