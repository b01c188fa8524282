"""The trust rules: which commits since the trusted point must be signed, by whom, and why one is refused.

Pure functions over data (no I/O); ``reconciler.policy.trustcheck`` reads Git and calls them. The rules,
explained for people in docs/trust.md:

* For an environment E with ``trust.E.allowed_signers`` in force, a commit that changes
  ``environments/E.yaml``, ``reconciler.yaml`` or E's allowed-signers file must carry a good SSH
  signature (namespace ``git``) by a key listed in the allowed-signers file **as it was at the commit's
  first parent**: the signers in force before the change judge it. So a changed signers file is judged by
  its previous version (nobody adds themselves), and a key removed from the file signs nothing after.
* Only the first-parent chain from the trusted point to the head is judged (``CommitStep``s, oldest
  first): a merge commit counts as one change, judged by its own signature; the commits it brings in
  need no signature of their own. A signature covers the commit's whole tree, so a signed merge vouches
  for exactly the state that is applied.
* The rules in force come from each parent's ``reconciler.yaml``, so removing ``trust.E`` is itself a
  change that must be signed. Where E had no trust rule at the parent, trust for E begins at this commit:
  it must be signed by a key listed in the allowed-signers file it introduces (a bootstrap).
* The signing key decides, never the author or committer line (anyone can type any name).

``parse_allowed_signers`` reads the file only to explain a refusal (a removed key, a namespace, an
expiry); whether a signature is good is always git's answer (``ssh-keygen -Y verify``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import posixpath
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from reconciler.source.history import CommitRecord
from reconciler.source.signatures import SIGNERS_LABEL, SignatureCheck, SignatureStatus, signers_id

CONFIG_FILE = "reconciler.yaml"


def environment_file(environment: str) -> str:
    return f"environments/{environment}.yaml"


class TrustReason(StrEnum):
    UNSIGNED = "unsigned"
    UNKNOWN_KEY = "unknown-key"
    BAD_SIGNATURE = "bad-signature"
    SIGNER_REMOVED = "signer-removed"
    NAMESPACE = "namespace"
    EXPIRED = "expired"
    NOT_SSH = "not-ssh"
    SIGNERS_CHANGED_BY_NON_SIGNER = "signers-changed-by-non-signer"
    SIGNERS_MISSING = "signers-missing"
    SIGNERS_OUTSIDE = "signers-outside"
    UNCOMMITTED = "uncommitted"
    BASE_UNKNOWN = "base-unknown"
    BASE_NOT_ANCESTOR = "base-not-ancestor"
    CONFIG_MISMATCH = "config-mismatch"
    NO_HISTORY = "no-history"


@dataclass(frozen=True, slots=True)
class TrustState:
    """The trust rules in force at one commit."""

    rules: Mapping[str, str] = field(default_factory=dict)
    """Environment -> its allowed-signers path as ``reconciler.yaml`` writes it (``""``: unreadable)."""
    signers: Mapping[str, bytes | None] = field(default_factory=dict)
    """Environment -> that file's content at this commit; None when it is missing or unreadable."""


@dataclass(frozen=True, slots=True)
class CommitStep:
    """One commit of the first-parent chain with the rules before (its first parent) and after it."""

    commit: CommitRecord
    before: TrustState
    after: TrustState


@dataclass(frozen=True, slots=True)
class Requirement:
    """A commit that must be signed by a key of ``signers`` because it changed ``files`` of ``environment``."""

    step: CommitStep
    environment: str
    files: tuple[str, ...]
    signers_path: str
    signers: bytes | None
    bootstrap: bool = False


@dataclass(frozen=True, slots=True)
class TrustViolation:
    """Why the desired state is refused: the commit (None for the base or the work tree), the file, the
    environment whose trust rule it broke, a reason code and a sentence for people."""

    commit: CommitRecord | None
    file: str | None
    environment: str | None
    reason: TrustReason
    detail: str

    def __str__(self) -> str:
        where = str(self.commit) if self.commit is not None else "work tree"
        file = f"{self.file} ({self.environment})" if self.file and self.environment else self.file or ""
        return f"{where}: {file + ': ' if file else ''}{self.detail} [{self.reason}]"

    def to_json(self) -> dict[str, object]:
        commit = self.commit
        return {
            "commit": commit.sha if commit else None,
            "short": commit.short if commit else None,
            "subject": commit.subject if commit else None,
            "author": commit.author if commit else None,
            "committer": commit.committer if commit else None,
            "file": self.file,
            "environment": self.environment,
            "reason": str(self.reason),
            "message": self.detail,
        }


@dataclass(frozen=True, slots=True)
class TrustApproval:
    """A protected change and who vouched for it (for the audit log)."""

    commit: CommitRecord
    environment: str
    files: tuple[str, ...]
    principal: str
    fingerprint: str | None
    bootstrap: bool = False

    def to_json(self) -> dict[str, object]:
        return {
            "commit": self.commit.sha,
            "environment": self.environment,
            "files": list(self.files),
            "principal": self.principal,
            "fingerprint": self.fingerprint,
            "bootstrap": self.bootstrap,
        }


@dataclass(frozen=True, slots=True)
class TrustReport:
    head: str
    base: str | None
    commits: int = 0
    """Commits walked on the first-parent chain since the trusted point."""
    verifications: int = 0
    violations: tuple[TrustViolation, ...] = ()
    approvals: tuple[TrustApproval, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.violations

    def to_json(self) -> dict[str, object]:
        return {
            "head": self.head,
            "trusted_base": self.base,
            "commits": self.commits,
            "verifications": self.verifications,
            "violations": [violation.to_json() for violation in self.violations],
            "approvals": [approval.to_json() for approval in self.approvals],
        }


@dataclass(frozen=True, slots=True)
class SignerEntry:
    principals: str
    options: Mapping[str, str]
    key_type: str
    fingerprint: str | None

    @property
    def namespaces(self) -> tuple[str, ...] | None:
        value = self.options.get("namespaces")
        return None if value is None else tuple(part.strip() for part in value.split(","))


def _split_options(text: str) -> dict[str, str]:
    options: dict[str, str] = {}
    for item in shlex.split(text.replace(",", " , "), posix=True):
        if item != ",":
            name, _, value = item.partition("=")
            options[name.lower()] = value
    return options


def key_fingerprint(blob_base64: str) -> str | None:
    """``SHA256:...`` of an SSH public key as ssh-keygen prints it."""
    try:
        blob = base64.b64decode(blob_base64, validate=True)
    except (binascii.Error, ValueError):
        return None
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def parse_allowed_signers(content: bytes | None) -> list[SignerEntry]:
    """The entries of an allowed-signers file (``principals [options] keytype key [comment]``); lines
    that do not parse are skipped (this only explains refusals, it never accepts anything)."""
    entries: list[SignerEntry] = []
    for raw in (content or b"").decode("utf-8", errors="replace").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            tokens = shlex.split(line, comments=False, posix=False)
        except ValueError:
            continue
        if len(tokens) < 3:
            continue
        principals, rest = tokens[0].strip('"'), tokens[1:]
        options: dict[str, str] = {}
        if not _is_key_type(rest[0]) and len(rest) >= 3:
            try:
                options = _split_options(rest[0])
            except ValueError:
                continue
            rest = rest[1:]
        entries.append(SignerEntry(principals, options, rest[0], key_fingerprint(rest[1])))
    return entries


def _is_key_type(token: str) -> bool:
    return token.startswith(("ssh-", "ecdsa-", "sk-", "rsa-"))


def _fingerprints(content: bytes | None) -> set[str]:
    return {entry.fingerprint for entry in parse_allowed_signers(content) if entry.fingerprint}


def normalize_path(path: str) -> str:
    """A signers path as the history walk names files: relative, normalised (``./a/../b`` -> ``b``)."""
    return path if path.startswith("/") else posixpath.normpath(path)


def is_outside(path: str) -> bool:
    """Whether a relative signers path leaves the desired-state directory (its history is not walked)."""
    normal = normalize_path(path)
    return not normal.startswith("/") and (normal == ".." or normal.startswith("../") or normal in ("", "."))


def protected_files(environment: str, signers_paths: Iterable[str]) -> set[str]:
    """The files whose changes need a signature for ``environment``."""
    files = {CONFIG_FILE, environment_file(environment)}
    files |= {normalize_path(p) for p in signers_paths if p and not p.startswith("/") and not is_outside(p)}
    return files


def requirements(steps: Sequence[CommitStep]) -> tuple[list[Requirement], list[TrustViolation]]:
    """Which commits must be signed against which signers content; and the violations that need no
    signature check (a missing or misplaced signers file)."""
    needed: list[Requirement] = []
    violations: list[TrustViolation] = []
    for step in steps:
        before, after = step.before.rules, step.after.rules
        for environment in sorted(set(before) | set(after)):
            paths = [p for p in (before.get(environment), after.get(environment)) if p is not None]
            changed = tuple(sorted(protected_files(environment, paths) & set(step.commit.paths)))
            if not changed:
                continue
            bootstrap = environment not in before
            state = step.after if bootstrap else step.before
            path = state.rules[environment]
            content = state.signers.get(environment)
            if path and is_outside(path):
                detail = f"allowed_signers {path!r} lies outside the desired-state directory: its history is not read"
                violations += [_violation(step, f, environment, TrustReason.SIGNERS_OUTSIDE, detail) for f in changed]
            elif content is None:
                at = step.commit.short if bootstrap else (step.commit.first_parent or "")[:12] or "the root"
                shown = repr(path) if path else "(unreadable trust rule)"
                detail = f"trust.{environment}.allowed_signers {shown} does not exist at {at}; nothing can be verified"
                violations += [_violation(step, f, environment, TrustReason.SIGNERS_MISSING, detail) for f in changed]
            else:
                needed.append(Requirement(step, environment, changed, path, content, bootstrap))
    return needed, violations


def verification_batches(needed: Iterable[Requirement]) -> dict[bytes, list[str]]:
    """Allowed-signers content -> the commits to verify against it (for ``verify_commits``)."""
    batches: dict[bytes, list[str]] = {}
    for requirement in needed:
        assert requirement.signers is not None
        shas = batches.setdefault(requirement.signers, [])
        if requirement.step.commit.sha not in shas:
            shas.append(requirement.step.commit.sha)
    return batches


def judge(
    steps: Sequence[CommitStep],
    needed: Sequence[Requirement],
    results: Mapping[tuple[str, str], SignatureCheck],
) -> tuple[list[TrustViolation], list[TrustApproval]]:
    """Violations and approvals from git's verification ``results`` (keyed ``(sha, signers_id)``)."""
    earlier: dict[str, dict[str, set[str]]] = {}  # commit -> environment -> keys of every version so far
    running: dict[str, set[str]] = {}
    for step in steps:
        for environment, content in step.before.signers.items():
            running.setdefault(environment, set()).update(_fingerprints(content))
        earlier[step.commit.sha] = {environment: set(keys) for environment, keys in running.items()}
    violations: list[TrustViolation] = []
    approvals: list[TrustApproval] = []
    for requirement in needed:
        assert requirement.signers is not None
        step, environment = requirement.step, requirement.environment
        check = results.get((step.commit.sha, signers_id(requirement.signers)))
        if check is not None and check.good:
            approval = TrustApproval(
                step.commit, environment, requirement.files, check.principal or "", check.fingerprint,
                requirement.bootstrap,
            )  # fmt: skip
            approvals.append(approval)
            continue
        reason, detail = explain(requirement, check, earlier.get(step.commit.sha, {}).get(environment, set()))
        violations += [_refusal(requirement, file, reason, detail) for file in requirement.files]
    return violations, approvals


def explain(requirement: Requirement, check: SignatureCheck | None, earlier: set[str]) -> tuple[TrustReason, str]:
    """The reason code and sentence for a commit whose signature is not good for its signers file."""
    path = requirement.signers_path
    commit = requirement.step.commit
    if check is None:
        return TrustReason.BAD_SIGNATURE, "no verification result (internal error)"
    message = check.message.replace(SIGNERS_LABEL, path).replace("\n", "; ")
    key = check.fingerprint or "(unknown key)"
    listed = {e.fingerprint: e for e in parse_allowed_signers(requirement.signers) if e.fingerprint}
    status = check.status
    if status is SignatureStatus.UNSIGNED:
        return TrustReason.UNSIGNED, "not signed"
    if status is SignatureStatus.NOT_SSH:
        return TrustReason.NOT_SSH, "signed with an OpenPGP or X.509 signature; only SSH signatures are verified"
    if status is SignatureStatus.EXPIRED:
        return TrustReason.EXPIRED, f"key {key} is listed in {path} but not valid at the commit's date ({message})"
    if status is SignatureStatus.BAD:
        if "not permitted for use in signature namespace" in message:
            return TrustReason.NAMESPACE, f'the key is listed in {path} but not for namespace "git" ({message})'
        return TrustReason.BAD_SIGNATURE, f"signature does not verify ({message or check.code})"
    entry = listed.get(check.fingerprint or "")
    if entry is not None and entry.namespaces is not None and "git" not in entry.namespaces:
        return TrustReason.NAMESPACE, f'key {key} ({entry.principals}) is listed in {path}, not for namespace "git"'
    if check.fingerprint and check.fingerprint in earlier and entry is None:
        return (
            TrustReason.SIGNER_REMOVED,
            f"signed with key {key}, which was removed from {path} before this commit",
        )
    claimed = f"the commit says committer {commit.committer}, author {commit.author}; only the key counts"
    return TrustReason.UNKNOWN_KEY, f"signed with key {key}, which {path} does not list ({claimed})"


def _refusal(requirement: Requirement, file: str, reason: TrustReason, detail: str) -> TrustViolation:
    step, environment = requirement.step, requirement.environment
    if requirement.bootstrap:
        detail = f"trust for {environment} begins at this commit, which must be signed by a key it lists: {detail}"
    signers_files = {normalize_path(requirement.signers_path)} | {
        normalize_path(p) for p in (step.before.rules.get(environment), step.after.rules.get(environment)) if p
    }
    if file in signers_files and not requirement.bootstrap:
        detail = f"{file} was changed by a commit not signed by a signer of its previous version: {detail}"
        reason = TrustReason.SIGNERS_CHANGED_BY_NON_SIGNER
    return _violation(step, file, environment, reason, detail)


def _violation(step: CommitStep, file: str, environment: str, reason: TrustReason, detail: str) -> TrustViolation:
    return TrustViolation(step.commit, file, environment, reason, detail)


def uncommitted_violations(state: TrustState, dirty: Iterable[str]) -> list[TrustViolation]:
    """Changes in a work tree to files a trust rule protects: nobody signed them."""
    changed = set(dirty)
    violations: list[TrustViolation] = []
    for environment, path in sorted(state.rules.items()):
        for file in sorted(protected_files(environment, [path]) & changed):
            detail = "changed in the work tree but not committed: commit it, signed, or discard the change"
            violations.append(TrustViolation(None, file, environment, TrustReason.UNCOMMITTED, detail))
    return violations
