"""Commit-signature trust for a pass: verify the desired state's history, and remember what was trusted.

``verify_trust`` is the one call ``validate --base``, ``plan``, ``apply`` and the controller make before
anything is contacted: for a desired state with ``trust`` rules it checks every commit since the trusted
point (``reconciler.policy.trustcheck``) and returns the report; a desired state with trust rules that
does not come from Git is refused (no history, no proof). The trusted point is ``--trusted-base`` when
given, else the last commit an apply of this desired state trusted, kept by ``TrustedPoints`` in the state
directory (``$RECONCILER_STATE_DIR``, else ``$XDG_STATE_HOME/reconciler``): one small JSON file written
atomically, keyed by where the desired state lives (the Git URL or the work tree, and its subdirectory).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from reconciler.errors import PolicyError, ReconcilerError
from reconciler.model.desired import DesiredState
from reconciler.policy.trust import TrustReason, TrustReport, TrustViolation
from reconciler.policy.trustcheck import check_directory, check_trust
from reconciler.source import CommitTree, DesiredStateTree

STATE_DIR_ENV = "RECONCILER_STATE_DIR"


def default_state_dir() -> Path:
    configured = os.environ.get(STATE_DIR_ENV)
    if configured:
        return Path(configured)
    state_home = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state_home) / "reconciler"


def source_key(tree: DesiredStateTree) -> str:
    """Where a desired state lives, as the key of its trusted point."""
    if isinstance(tree, CommitTree):
        where = f"{tree.url or tree.repository}#{tree.subdir}"
    else:
        where = f"dir:{Path(tree.root).resolve()}"
    return hashlib.sha256(where.encode()).hexdigest()[:24]


class TrustedPoints:
    """The last trusted commit of each desired state, in ``<state dir>/trusted.json``."""

    def __init__(self, directory: Path | None = None) -> None:
        self.path = (directory or default_state_dir()) / "trusted.json"

    def _read(self) -> dict[str, dict[str, str]]:
        try:
            document = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise ReconcilerError(f"cannot read the trusted points in {self.path}: {exc}") from None
        return document if isinstance(document, dict) else {}

    def get(self, key: str) -> str | None:
        entry = self._read().get(key)
        return entry.get("commit") if isinstance(entry, dict) else None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    def set(self, key: str, commit: str, source: str) -> None:
        """Record ``commit`` as trusted (atomically: a temporary file renamed over the old one)."""
        try:
            with self._locked():
                document = self._read()
                when = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
                document[key] = {"commit": commit, "source": source, "time": when}
                descriptor, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".trusted.")
                with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
                    json.dump(document, stream, indent=2, sort_keys=True)
                    stream.flush()
                    os.fsync(stream.fileno())
                os.replace(temporary, self.path)
        except OSError as exc:
            raise ReconcilerError(f"cannot record the trusted commit in {self.path}: {exc.strerror or exc}") from None


def verify_trust(
    tree: DesiredStateTree,
    desired: DesiredState,
    *,
    trusted_base: str | None = None,
    points: TrustedPoints | None = None,
    head: str | None = None,
) -> TrustReport | None:
    """The trust report of ``tree`` (None when the desired state has no trust rules). The trusted point is
    ``trusted_base``, else the one ``points`` remembers for this desired state, else the whole history.
    ``head``: a commit of the directory's repository to judge instead of its work tree (``validate --head``)."""
    if not desired.config.trust:
        return None
    base = trusted_base if trusted_base is not None else (points.get(source_key(tree)) if points else None)
    if isinstance(tree, CommitTree):
        return check_trust(
            tree.repository, tree.sha, trusted_base=base, subdir=tree.subdir, config_trust=desired.config.trust
        )
    if tree.revision is None:
        detail = (
            "environments with trust rules need the desired state's Git history, and this directory is not in a Git "
            f"work tree: {', '.join(sorted(desired.config.trust))}"
        )
        violation = TrustViolation(None, None, None, TrustReason.NO_HISTORY, detail)
        return TrustReport(head="", base=None, violations=(violation,))
    return check_directory(tree.root, trusted_base=base, head=head or "HEAD", config_trust=desired.config.trust)


class TrustRefusedError(PolicyError):
    """The desired state's history breaks its trust rules: nothing is contacted or written (exit 3)."""

    def __init__(self, report: TrustReport) -> None:
        self.report = report
        count = len(report.violations)
        super().__init__(f"refused by the trust rules: {count} problem(s) in the desired state's history")


def enforce_trust(
    tree: DesiredStateTree,
    desired: DesiredState,
    *,
    trusted_base: str | None = None,
    points: TrustedPoints | None = None,
    head: str | None = None,
) -> TrustReport | None:
    """``verify_trust``, raising ``TrustRefusedError`` when the report has violations."""
    report = verify_trust(tree, desired, trusted_base=trusted_base, points=points, head=head)
    if report is not None and not report.ok:
        raise TrustRefusedError(report)
    return report


def remember(tree: DesiredStateTree, report: TrustReport | None, points: TrustedPoints) -> None:
    """After an apply: the checked head becomes the trusted point (only when the check passed)."""
    if report is None or not report.ok or not report.head:
        return
    points.set(source_key(tree), report.head, tree.url or tree.root)
