"""Where the controller's desired state comes from, and whether it changed since the last look.

Each look (``refresh``) first computes the revision key of the desired state, then loads it only when the
key is new:

* ``--repo URL --ref REF``: ``reconciler.source.open_remote`` fetches into the clone cache; the key is
  the commit SHA the ref resolves to;
* ``DIR``: the key is a SHA-256 of the directory's files (hidden files and directories such as ``.git``
  and editor swap files left out) plus, when the directory lies in a Git work tree, the commit HEAD names,
  read from ``.git`` directly (no ``git`` process, no gitpython: this runs every interval).

A new key is loaded and judged: an invalid desired state (``DesiredStateError``), an ``--env`` the config
does not define, or a history the trust rules refuse (``TrustRefusedError``) come back as a ``Refused``
value carrying every problem, so the loop can stall on it; a desired state that passes comes back
``Loaded``. Failures to fetch or read (``SourceError`` and other ``ReconcilerError``) are raised: they
may go away, and the loop keeps the last good state meanwhile.

``refresh`` blocks (git, file reads, YAML parsing): the loop runs it in a thread. ``watch`` is the
asynchronous side of ``DIR --watch``: it calls back as soon as a file under the directory changed
(watchfiles, debounced). Nothing here talks to a registry or writes anywhere but the clone cache.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from reconciler.controller.options import ControllerOptions
from reconciler.engine.trusted import TrustedPoints, TrustRefusedError, enforce_trust
from reconciler.errors import DesiredStateError
from reconciler.model.desired import DesiredState
from reconciler.policy.trust import TrustReport
from reconciler.source import DesiredStateTree, open_directory, open_remote, redact_url
from reconciler.source.tree import MAX_FILE_BYTES

WATCH_STEP_MS = 50
"""A change is reported once the directory has been quiet this long (an editor's save is several events)."""
WATCH_DEBOUNCE_MS = 400
"""...or at the latest this long after the first event, however busy the directory stays."""


@dataclass(frozen=True, slots=True)
class Loaded:
    """A valid desired state the trust rules accept."""

    key: str
    desired: DesiredState
    tree: DesiredStateTree
    """Closed already (for a commit); kept for ``remember`` after the first apply."""
    trust: TrustReport | None

    @property
    def revision(self) -> str:
        """The commit to show (``<sha>``, ``<sha>-dirty``), else the content hash."""
        return self.desired.commit or self.key


@dataclass(frozen=True, slots=True)
class Refused:
    """A desired state the controller must not reconcile: it stalls until the key changes."""

    key: str
    reason: str
    problems: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Refresh:
    key: str
    loaded: Loaded | None = None
    refused: Refused | None = None
    """Both None: the key was already known (nothing was loaded)."""


class DesiredSource(Protocol):
    description: str
    """What to call the source in logs and on the board (credentials removed)."""
    points: TrustedPoints

    def refresh(self, known: Collection[str], *, trusted_base: str | None) -> Refresh:
        """The current key, and the loaded (or refused) desired state when the key is not in ``known``."""
        ...


def judge(
    tree: DesiredStateTree, key: str, options: ControllerOptions, points: TrustedPoints, trusted_base: str | None
) -> Refresh:
    """Load ``tree`` and check it as ``apply`` would: validation, ``--env`` names, trust."""
    from reconciler.manifests import load_tree  # noqa: PLC0415  (ruamel.yaml only when something changed)

    try:
        desired = load_tree(tree)
    except DesiredStateError as exc:
        return Refresh(key, refused=Refused(key, "invalid desired state", tuple(str(p) for p in exc.problems)))
    known = desired.config.environment_names
    unknown = [env for env in options.environments if env not in known]
    if unknown:
        problem = f"--env {', '.join(unknown)}: not defined in reconciler.yaml (defined: {', '.join(known)})"
        return Refresh(key, refused=Refused(key, "unknown environment", (problem,)))
    try:
        trust = enforce_trust(tree, desired, trusted_base=trusted_base, points=points)
    except TrustRefusedError as exc:
        problems = tuple(str(violation) for violation in exc.report.violations)
        return Refresh(key, refused=Refused(key, "refused by the trust rules", problems))
    return Refresh(key, loaded=Loaded(key, desired, tree, trust))


class RemoteSource:
    """``--repo URL --ref REF``: fetched into the clone cache at every look."""

    def __init__(self, options: ControllerOptions, points: TrustedPoints) -> None:
        assert options.repo is not None
        self._options = options
        self._url = options.repo
        self.points = points
        self.description = f"{redact_url(options.repo)} {options.ref}"

    def refresh(self, known: Collection[str], *, trusted_base: str | None) -> Refresh:
        tree = open_remote(self._url, self._options.ref, cache_dir=self._options.cache_dir)
        try:
            if tree.sha in known:
                return Refresh(tree.sha)
            return judge(tree, tree.sha, self._options, self.points, trusted_base)
        finally:
            tree.close()


class DirectorySource:
    """``DIR``: re-read at every look (and at every change with ``--watch``)."""

    def __init__(self, options: ControllerOptions, points: TrustedPoints) -> None:
        assert options.directory is not None
        self._options = options
        self.directory = options.directory
        self.points = points
        self.description = str(options.directory.resolve())

    def refresh(self, known: Collection[str], *, trusted_base: str | None) -> Refresh:
        key = content_key(self.directory)
        if key in known:
            return Refresh(key)
        return judge(open_directory(self.directory), key, self._options, self.points, trusted_base)


def make_source(options: ControllerOptions, points: TrustedPoints | None = None) -> DesiredSource:
    points = points or TrustedPoints()
    if options.repo is not None:
        return RemoteSource(options, points)
    return DirectorySource(options, points)


def _hidden(name: str) -> bool:
    return name.startswith(".") or name.endswith("~")


def content_key(root: Path) -> str:
    """SHA-256 over the directory's files (path, size, content; files over the loader's size limit by size
    and modification time only), plus the Git HEAD when it lies in a work tree."""
    digest = hashlib.sha256()
    for directory, subdirectories, files in os.walk(root):
        subdirectories[:] = sorted(d for d in subdirectories if not _hidden(d))
        for name in sorted(f for f in files if not _hidden(f)):
            path = Path(directory) / name
            relative = path.relative_to(root).as_posix()
            try:
                info = path.stat()
                digest.update(f"{relative}\0{info.st_size}\0".encode())
                if info.st_size > MAX_FILE_BYTES:
                    digest.update(f"{info.st_mtime_ns}\0".encode())
                else:
                    digest.update(path.read_bytes())
            except OSError:
                digest.update(f"{relative}\0unreadable\0".encode())
    head = git_head(root)
    if head is not None:
        digest.update(f"\0git\0{head}".encode())
    return f"sha256:{digest.hexdigest()}"


def _git_dir(root: Path) -> Path | None:
    for parent in (root, *root.parents):
        marker = parent / ".git"
        if marker.is_dir():
            return marker
        if marker.is_file():  # a linked work tree or a submodule: "gitdir: <path>"
            text = marker.read_text(encoding="utf-8", errors="replace").strip()
            if text.startswith("gitdir:"):
                return (parent / text.partition(":")[2].strip()).resolve()
            return None
    return None


def git_head(root: Path) -> str | None:
    """What HEAD names in the Git work tree around ``root`` (best effort, read from files; None outside Git)."""
    try:
        git_dir = _git_dir(root.resolve())
        if git_dir is None:
            return None
        head = (git_dir / "HEAD").read_text(encoding="utf-8").strip()
        if not head.startswith("ref:"):
            return head
        ref = head.partition(":")[2].strip()
        common = git_dir
        if (git_dir / "commondir").is_file():
            common = (git_dir / (git_dir / "commondir").read_text(encoding="utf-8").strip()).resolve()
        for base in (git_dir, common):
            if (base / ref).is_file():
                return f"{ref} {(base / ref).read_text(encoding='utf-8').strip()}"
        packed = common / "packed-refs"
        if packed.is_file():
            for line in packed.read_text(encoding="utf-8").splitlines():
                if line.endswith(f" {ref}"):
                    return f"{ref} {line.split()[0]}"
        return ref
    except OSError:
        return None


async def watch(directory: Path, stop: asyncio.Event, on_change: Callable[[int], None]) -> None:
    """Call ``on_change(number of changed paths)`` whenever files under ``directory`` change, until ``stop``.

    watchfiles reports a batch once the directory has been quiet for ``WATCH_STEP_MS`` (an editor's save
    is several events) or ``WATCH_DEBOUNCE_MS`` after the first event; its default filter ignores
    ``.git``, editor swap files and caches."""
    from watchfiles import awatch  # noqa: PLC0415

    async for changes in awatch(directory, stop_event=stop, debounce=WATCH_DEBOUNCE_MS, step=WATCH_STEP_MS):
        on_change(len(changes))
