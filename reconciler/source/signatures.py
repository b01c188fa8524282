"""SSH signatures of commits, verified by Git itself (``ssh-keygen -Y``) against a given allowed-signers text.

``verify_commits(repo, {signers content: [sha, ...]})`` answers, for every (commit, signers content),
who signed it and whether that signature is good for that allowed-signers file. The file is written to a
private temporary file and handed to git as ``gpg.ssh.allowedSignersFile``: the content comes from the
commit the caller chose, never from a work tree. Nothing here checks a signature itself; git runs
``ssh-keygen -Y find-principals`` then ``-Y verify`` (namespace ``git``, the allowed-signers options,
valid-after/valid-before checked at the commit's date) and this module reads ``%G?``, ``%GS``, ``%GF``
and ``%GG``.

Cost: git spawns ``ssh-keygen`` twice per signed commit (about 5 ms of start-up each, the floor), so the
commits of one allowed-signers content are fed to ``git log --no-walk --stdin`` in a few chunks run side by
side, one per core; there is one git process per chunk, never one per commit.

Only SSH signatures count. An OpenPGP or X.509 signature is reported as ``NOT_SSH`` without running gpg
(``gpg.openpgp.program`` and ``gpg.x509.program`` are set to ``false``), and the kind of every signature
is also read from the commit object itself (one ``cat-file`` process), so a key that happens to sit in
the user's GPG keyring can never make a commit trusted. Git failures are ``SourceError``.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from reconciler.errors import SourceError
from reconciler.source.history import BlobReader, run_git

_FORMAT = "--format=tformat:%H%x00%G?%x00%GS%x00%GF%x00%GG"
_FIELDS = 5
_CHUNK_MIN = 8
"""Fewer commits than this per chunk are not worth another process."""
_SIGNATURE_HEADERS = (b"gpgsig ", b"gpgsig-sha256 ")
SIGNERS_LABEL = "<allowed_signers>"
"""Stands for the temporary allowed-signers file in ssh-keygen's messages (callers put the real path)."""


class SignatureStatus(StrEnum):
    GOOD = "good"
    """A valid SSH signature by a key the allowed-signers file lists for a principal, namespace ``git``."""
    BAD = "bad"
    """A signature that does not verify: tampered, wrong namespace, revoked, or ssh-keygen refused it."""
    UNSIGNED = "unsigned"
    UNKNOWN_KEY = "unknown-key"
    """A valid signature by a key the allowed-signers file does not list."""
    EXPIRED = "expired"
    """The key is listed, but not valid at the commit's date (``valid-after``/``valid-before``)."""
    NOT_SSH = "not-ssh"
    """An OpenPGP or X.509 signature: not verified, never trusted."""


@dataclass(frozen=True, slots=True)
class SignatureCheck:
    """What git said about one commit's signature against one allowed-signers content."""

    sha: str
    status: SignatureStatus
    principal: str | None = None
    """The principal the allowed-signers file names for the key (only for ``GOOD``)."""
    fingerprint: str | None = None
    """``SHA256:...`` of the signing key, when ssh-keygen could read it."""
    message: str = ""
    """ssh-keygen's words (the temporary file named ``<allowed_signers>``), for people."""
    code: str = ""
    """Git's ``%G?`` letter."""

    @property
    def good(self) -> bool:
        return self.status is SignatureStatus.GOOD


def signers_id(content: bytes) -> str:
    """A short stable name of an allowed-signers content (the key of ``verify_commits``'s answer)."""
    return hashlib.sha256(content).hexdigest()[:16]


def signature_kind(raw_commit: bytes) -> str | None:
    """``ssh``, ``openpgp``, ``x509`` or ``unknown`` from a raw commit object's signature header; None
    when it has none."""
    headers = raw_commit.split(b"\n\n", 1)[0]
    for line in headers.split(b"\n"):
        if line.startswith(_SIGNATURE_HEADERS):
            first = line.split(b" ", 1)[1].strip()
            if b"BEGIN SSH SIGNATURE" in first:
                return "ssh"
            if b"BEGIN PGP SIGNATURE" in first:
                return "openpgp"
            if b"BEGIN SIGNED MESSAGE" in first:
                return "x509"
            return "unknown"
    return None


def _status(code: str, principal: str, message: str, kind: str | None) -> SignatureStatus:
    if kind is None:  # git read a signature where the object has none: never trust that
        return SignatureStatus.UNSIGNED if code == "N" else SignatureStatus.BAD
    if kind != "ssh":
        return SignatureStatus.NOT_SSH
    if code == "N":
        return SignatureStatus.BAD  # an SSH signature git could not check
    if code == "G":
        # Git before 2.34.2 said G for a valid signature by an unlisted key: a principal is what counts.
        return SignatureStatus.GOOD if principal else SignatureStatus.UNKNOWN_KEY
    if code in ("U", "X", "Y"):
        expired = "key has expired" in message or "not yet valid" in message or code in ("X", "Y")
        return SignatureStatus.EXPIRED if expired else SignatureStatus.UNKNOWN_KEY
    return SignatureStatus.BAD


def _verify_chunk(repo: str | os.PathLike[str], signers_file: Path, shas: Sequence[str]) -> list[list[str]]:
    output = run_git(
        repo,
        "-c", "gpg.format=ssh",
        "-c", f"gpg.ssh.allowedSignersFile={signers_file}",
        "-c", "gpg.ssh.program=ssh-keygen",
        "-c", "gpg.program=false",
        "-c", "gpg.openpgp.program=false",
        "-c", "gpg.x509.program=false",
        "log", "--no-walk=unsorted", "--stdin", "-z", _FORMAT,
        stdin="\n".join(shas).encode() + b"\n",
        what="git log (signature verification)",
    )  # fmt: skip
    tokens = output.decode("utf-8", errors="replace").split("\x00")
    if tokens and tokens[-1] == "":
        tokens.pop()
    if len(tokens) % _FIELDS:
        raise SourceError(f"{os.fspath(repo)}: unexpected output from git log (signature verification)")
    records = [tokens[i : i + _FIELDS] for i in range(0, len(tokens), _FIELDS)]
    for record in records:
        record[4] = record[4].replace(str(signers_file), SIGNERS_LABEL).strip()
    return records


def _chunks(shas: Sequence[str], jobs: int) -> list[list[str]]:
    count = max(1, min(jobs, len(shas) // _CHUNK_MIN))
    size = -(-len(shas) // count)
    return [list(shas[i : i + size]) for i in range(0, len(shas), size)]


def default_jobs() -> int:
    """Parallel verifications: one per core (ssh-keygen start-up is CPU), at most 8."""
    return max(1, min(8, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


def verify_commits(
    repo: str | os.PathLike[str], batches: Mapping[bytes, Sequence[str]], *, jobs: int | None = None
) -> dict[tuple[str, str], SignatureCheck]:
    """Verify every commit of ``batches`` (allowed-signers content -> commit SHAs) against that content.
    Returns ``{(sha, signers_id(content)): SignatureCheck}``. SourceError when git or ssh-keygen fails
    to run (not when a signature is bad: that is an answer)."""
    work = {content: list(dict.fromkeys(shas)) for content, shas in batches.items() if shas}
    if not work:
        return {}
    if shutil.which("ssh-keygen") is None:
        raise SourceError("ssh-keygen not found: install openssh-client to verify commit signatures")
    workers = jobs or default_jobs()
    results: dict[tuple[str, str], SignatureCheck] = {}
    with tempfile.TemporaryDirectory(prefix="reconciler-signers-") as scratch:
        tasks = []
        for content, shas in work.items():
            signers_file = Path(scratch) / f"allowed_signers-{signers_id(content)}"
            signers_file.write_bytes(content)
            tasks += [(signers_id(content), signers_file, chunk) for chunk in _chunks(shas, workers)]
        with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
            answers = list(pool.map(lambda task: (task[0], _verify_chunk(repo, task[1], task[2])), tasks))
    kinds = _signature_kinds(repo, {record[0] for _, records in answers for record in records})
    for key, records in answers:
        for sha, code, principal, fingerprint, message in records:
            status = _status(code, principal, message, kinds.get(sha))
            results[(sha, key)] = SignatureCheck(
                sha=sha,
                status=status,
                principal=principal if status is SignatureStatus.GOOD else None,
                fingerprint=fingerprint or None,
                message=message,
                code=code,
            )
    return results


def _signature_kinds(repo: str | os.PathLike[str], shas: set[str]) -> dict[str, str | None]:
    """The signature kind of each commit, from its raw object (one cat-file process for all): whatever
    git answered, only an SSH signature can be good."""
    if not shas:
        return {}
    kinds: dict[str, str | None] = {}
    with BlobReader(repo, max_bytes=1 << 24) as reader:
        for sha in sorted(shas):
            found = reader.object(sha)
            kinds[sha] = signature_kind(found[1]) if found is not None and found[0] == "commit" else None
    return kinds
