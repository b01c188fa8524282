"""Check the commits since the trusted point against the trust rules: the one call validate, plan and apply make.

``check_trust(repository, head, trusted_base=...)`` walks the first-parent chain from the trusted point
to ``head`` (one ``git log``), reads ``reconciler.yaml``'s trust section and the allowed-signers files at
the commits where they change (one ``git cat-file --batch``), asks git to verify the commits that changed
a protected file, grouped by the signers content that judges them (``reconciler.source.signatures``),
and returns a ``TrustReport`` whose violations come from the pure rules of ``reconciler.policy.trust``.
``check_directory`` does the same for a desired-state directory inside a work tree, and also refuses
uncommitted changes to protected files (nobody signed them).

The repository may be a work tree or the bare clone cache of ``reconciler.source.remote`` (``plan --repo``).
Nothing is read from a work tree's files: every file comes from the commit it belongs to. Git failures
are ``SourceError`` (exit 1, retried); broken rules are violations in the report (exit 3, no retry).
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Mapping
from pathlib import Path

from reconciler.errors import SourceError
from reconciler.model.desired import TrustRule
from reconciler.policy.trust import (
    CONFIG_FILE,
    CommitStep,
    TrustReason,
    TrustReport,
    TrustState,
    TrustViolation,
    is_outside,
    judge,
    normalize_path,
    requirements,
    uncommitted_violations,
    verification_batches,
)
from reconciler.source.history import (
    BlobReader,
    CommitRecord,
    commit_record,
    commits_between,
    is_ancestor,
    locate,
    resolve,
    uncommitted_paths,
)
from reconciler.source.remote import clone_dir
from reconciler.source.signatures import verify_commits
from reconciler.source.tree import MAX_FILE_BYTES

__all__ = ["check_directory", "check_remote", "check_trust", "trust_rules_of"]


def trust_rules_of(config: bytes | None) -> dict[str, str] | None:
    """Environment -> allowed-signers path from the ``trust`` section of a ``reconciler.yaml``; ``{}``
    without one; None when the file is not a readable YAML mapping. An entry without a readable
    ``allowed_signers`` maps to ``""`` (nothing can satisfy it: fail closed). Nodes are composed, never
    constructed, and only the trust section is walked, so aliases expand nothing."""
    if config is None:
        return {}
    from ruamel.yaml import YAML  # noqa: PLC0415  (only when a history holds a config to read)
    from ruamel.yaml.nodes import MappingNode, ScalarNode  # noqa: PLC0415

    try:
        root = YAML(typ="safe", pure=True).compose(config.decode("utf-8-sig"))
    except Exception:  # any YAML, decoding or nesting error: unreadable
        return None
    if root is None:
        return {}
    if not isinstance(root, MappingNode):
        return None
    rules: dict[str, str] = {}
    for key, value in root.value:
        if not (isinstance(key, ScalarNode) and key.value == "trust"):
            continue
        rules = {}
        if not isinstance(value, MappingNode):
            continue
        for env_node, rule_node in value.value:
            if not isinstance(env_node, ScalarNode):
                continue
            path = ""
            if isinstance(rule_node, MappingNode):
                for field, field_value in rule_node.value:
                    if isinstance(field, ScalarNode) and field.value == "allowed_signers":
                        path = field_value.value if isinstance(field_value, ScalarNode) else ""
            rules[str(env_node.value)] = str(path)
    return rules


class _Reader:
    """Trust states at commits: the config and the signers files, through one cat-file process."""

    def __init__(self, blobs: BlobReader, subdir: str) -> None:
        self._blobs = blobs
        self._prefix = subdir.strip("/")
        self._disk: dict[str, bytes | None] = {}

    def _git_path(self, path: str) -> str:
        return posixpath.join(self._prefix, path) if self._prefix else path

    def signers(self, sha: str, path: str) -> bytes | None:
        if not path or is_outside(path):
            return None
        normal = normalize_path(path)
        if normal.startswith("/"):  # an operator's file on this machine, the same for every commit
            if normal not in self._disk:
                try:
                    with open(normal, "rb") as handle:
                        self._disk[normal] = handle.read(MAX_FILE_BYTES + 1)
                except OSError:
                    self._disk[normal] = None
            return self._disk[normal]
        return self._blobs.file(sha, self._git_path(normal))

    def state_at(self, sha: str | None) -> TrustState:
        if sha is None:
            return TrustState()
        rules = trust_rules_of(self._blobs.file(sha, self._git_path(CONFIG_FILE))) or {}
        return TrustState(rules, {env: self.signers(sha, path) for env, path in rules.items()})

    def advance(self, commit: CommitRecord, before: TrustState) -> TrustState:
        """The state after ``commit``: re-read only what it changed."""
        rules: Mapping[str, str] = before.rules
        if CONFIG_FILE in commit.paths:
            read = trust_rules_of(self._blobs.file(commit.sha, self._git_path(CONFIG_FILE)))
            rules = read if read is not None else before.rules  # unreadable: the rules in force stay
        signers: dict[str, bytes | None] = {}
        for env, path in rules.items():
            unchanged = before.rules.get(env) == path and normalize_path(path) not in commit.paths
            signers[env] = before.signers.get(env) if unchanged else self.signers(commit.sha, path)
        return TrustState(rules, signers)


def check_trust(
    repository: str | os.PathLike[str],
    head: str,
    *,
    trusted_base: str | None = None,
    subdir: str = "",
    work_tree: bool = False,
    config_trust: Mapping[str, TrustRule] | None = None,
    jobs: int | None = None,
) -> TrustReport:
    """Judge the commits from ``trusted_base`` (exclusive; None: the whole history) to ``head`` of
    ``repository`` (a work tree root or a bare repository) for the desired state in ``subdir``.

    ``work_tree``: also refuse uncommitted changes to protected files. ``config_trust``: the trust
    rules of the validated head config; a disagreement with what was read at ``head`` is a violation
    (guards against two YAML readers disagreeing). SourceError when git fails or ``head`` is unknown."""
    head_sha = resolve(repository, head)
    if head_sha is None:
        raise SourceError(f"{os.fspath(repository)}: Git ref {head!r} does not name a commit")
    base_sha: str | None = None
    if trusted_base is not None:
        base_sha = resolve(repository, trusted_base)
        if base_sha is None:
            detail = f"the trusted point {trusted_base!r} is not a commit of this repository"
            return _refused(head_sha, None, TrustViolation(None, None, None, TrustReason.BASE_UNKNOWN, detail))
        if not is_ancestor(repository, base_sha, head_sha):
            detail = (
                f"the trusted point {base_sha[:12]} is not an ancestor of {head_sha[:12]}: history was rewritten "
                "(force push) or the wrong branch; apply again from a reviewed --trusted-base"
            )
            violation = TrustViolation(
                commit_record(repository, head_sha), None, None, TrustReason.BASE_NOT_ANCESTOR, detail
            )
            return _refused(head_sha, base_sha, violation)
    commits = commits_between(repository, base_sha, head_sha, subdir=subdir, first_parent=True)
    with BlobReader(repository) as blobs:
        reader = _Reader(blobs, subdir)
        state = reader.state_at(commits[0].first_parent if commits else head_sha)
        steps: list[CommitStep] = []
        for commit in commits:
            after = reader.advance(commit, state)
            steps.append(CommitStep(commit, state, after))
            state = after
    needed, violations = requirements(steps)
    results = verify_commits(repository, verification_batches(needed), jobs=jobs)
    refused, approvals = judge(steps, needed, results)
    violations += refused
    dirty = uncommitted_paths(repository, subdir) if work_tree else ()
    violations += uncommitted_violations(state, dirty)
    if config_trust is not None and CONFIG_FILE not in dirty:
        violations += _config_mismatch(state, config_trust)
    return TrustReport(
        head=head_sha,
        base=base_sha,
        commits=len(commits),
        verifications=len(results),
        violations=tuple(violations),
        approvals=tuple(approvals),
    )


def _config_mismatch(state: TrustState, config_trust: Mapping[str, TrustRule]) -> list[TrustViolation]:
    expected = {env: rule.allowed_signers for env, rule in config_trust.items()}
    if {env: normalize_path(p) for env, p in expected.items()} == {
        env: normalize_path(p) for env, p in state.rules.items() if p
    }:
        return []
    detail = f"the trust section read from Git ({dict(state.rules)}) differs from the loaded config ({expected})"
    return [TrustViolation(None, CONFIG_FILE, None, TrustReason.CONFIG_MISMATCH, detail)]


def _refused(head: str, base: str | None, violation: TrustViolation) -> TrustReport:
    return TrustReport(head=head, base=base, violations=(violation,))


def check_directory(
    directory: str | os.PathLike[str],
    *,
    trusted_base: str | None = None,
    head: str = "HEAD",
    config_trust: Mapping[str, TrustRule] | None = None,
    jobs: int | None = None,
) -> TrustReport:
    """``check_trust`` for a desired-state directory inside a work tree (``validate DIR``, ``plan DIR``):
    the repository and subdirectory are found from ``directory``; uncommitted changes to protected files
    are refused when ``head`` is ``HEAD``."""
    repository, subdir = locate(directory)
    return check_trust(
        repository,
        head,
        trusted_base=trusted_base,
        subdir=subdir,
        work_tree=head == "HEAD" and not _is_bare(repository),
        config_trust=config_trust,
        jobs=jobs,
    )


def _is_bare(repository: Path) -> bool:
    return not (repository / ".git").exists()


def check_remote(
    url: str,
    head_sha: str,
    *,
    trusted_base: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    config_trust: Mapping[str, TrustRule] | None = None,
    jobs: int | None = None,
) -> TrustReport:
    """``check_trust`` on the bare clone that ``reconciler.source.open_remote(url, ...)`` fetched
    (``plan --repo URL``); ``head_sha`` is the tree's ``sha``."""
    clone = clone_dir(url, cache_dir) / "repo.git"
    return check_trust(clone, head_sha, trusted_base=trusted_base, config_trust=config_trust, jobs=jobs)
