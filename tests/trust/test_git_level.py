"""The Git-level pieces under the trust check: history walks, files at commits, and what git's signature
verification answers for crafted commits (a tampered signature, an OpenPGP signature)."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler.errors import SourceError
from reconciler.policy.trust import TrustReason
from reconciler.policy.trustcheck import check_directory
from reconciler.source.history import (
    BlobReader,
    commits_between,
    locate,
    resolve,
    uncommitted_paths,
    unquote_path,
)
from reconciler.source.signatures import SignatureStatus, signature_kind, signers_id, verify_commits

from .conftest import DesiredRepo

P = "environments/p.yaml"
PGP_BLOCK = (
    "gpgsig -----BEGIN PGP SIGNATURE-----\n \n iHUEABYKAB0WIQTim4GZ/A5c/ndqLr0760wb/4f6tAUCZ2xPdQAKCRA760wb/4f6\n"
    " -----END PGP SIGNATURE-----\n"
)


def replace_head(repo: DesiredRepo, raw: bytes) -> str:
    """Write ``raw`` as a commit object and make it the branch head; its SHA."""
    sha = repo.git("hash-object", "-t", "commit", "-w", "--stdin", "--literally", stdin=raw)
    repo.git("update-ref", "refs/heads/main", sha)
    repo.git("reset", "-q", "--hard", sha)
    return sha


def test_walk_lists_paths_relative_to_the_subdirectory_oldest_first(
    tmp_path: Path, desired_repo: Callable[..., DesiredRepo]
) -> None:
    desired = desired_repo(subdir="ds")
    base = desired.head()
    odd = 'environments/we\tird "name".yaml'
    first = desired.commit("one", {**desired.pin("p", 2), odd: "x: 1\n"})
    desired.write({"../outside.txt": "x\n"})
    desired.commit("outside only", {})
    second = desired.commit("two", {P: None})
    commits = commits_between(desired.root, base, "HEAD", subdir="ds")
    assert [c.sha for c in commits] == [first, second]
    assert commits[0].paths == tuple(sorted([P, odd]))
    assert commits[1].paths == (P,)  # a deletion is a change
    assert commits[0].parents == (base,)
    assert commits[0].author == "Alice <alice@example.com>"
    assert commits[0].subject == "one"
    only_p = commits_between(desired.root, None, "HEAD", subdir="ds", paths=[P])
    assert [c.subject for c in only_p] == ["initial desired state", "one", "two"]


def test_unquote_path_reverses_git_quoting() -> None:
    assert unquote_path('"a\\tb\\"c\\\\d"') == 'a\tb"c\\d'
    assert unquote_path('"caf\\303\\251"') == "café"
    assert unquote_path("plain/path.yaml") == "plain/path.yaml"


def test_blob_reader_reads_files_at_commits(desired: DesiredRepo) -> None:
    old = desired.head()
    desired.commit("two", desired.pin("p", 2), key="alice")
    with BlobReader(desired.root, max_bytes=10_000) as blobs:
        assert b'20261127_01"' in (blobs.file(old, P) or b"")
        assert b'20261127_02"' in (blobs.file("HEAD", P) or b"")
        assert blobs.file(old, "environments/missing.yaml") is None
        assert blobs.file(old, "environments") is None  # a tree is not a file
        raw = blobs.object(desired.head())
        assert raw is not None
        assert raw[0] == "commit"
        assert signature_kind(raw[1]) == "ssh"
    with BlobReader(desired.root, max_bytes=10) as tiny:
        assert tiny.file(old, P) is None  # larger than allowed: never loaded


def test_locate_resolve_and_status(desired_repo: Callable[..., DesiredRepo], tmp_path: Path) -> None:
    desired = desired_repo(subdir="a/b")
    assert locate(desired.dir) == (desired.root, "a/b")
    assert resolve(desired.root, "HEAD") == desired.head()
    assert resolve(desired.root, "--help") is None
    assert resolve(desired.root, "no-such-branch") is None
    desired.write({"environments/t.yaml": "changed\n", "new.txt": "x\n"})
    assert uncommitted_paths(desired.root, "a/b") == ("environments/t.yaml", "new.txt")
    bare = tmp_path / "bare.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(desired.root), str(bare)], check=True)
    assert locate(bare) == (bare.resolve(), "")
    with pytest.raises(SourceError, match="not a directory"):
        locate(tmp_path / "nothing")


def test_git_failures_are_source_errors(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="git log"):
        commits_between(tmp_path, None, "HEAD")


def test_verification_answers_per_signers_content(desired: DesiredRepo) -> None:
    keys = desired.keys
    signed = desired.commit("bob", desired.pin("p", 2), key="bob", who="bob")
    unsigned = desired.commit("nobody", desired.pin("p", 3))
    with_bob, without_bob = keys.signers("bob").encode(), keys.signers("alice").encode()
    results = verify_commits(desired.root, {with_bob: [signed, unsigned], without_bob: [signed]})
    good = results[(signed, signers_id(with_bob))]
    assert (good.status, good.principal, good.fingerprint) == (
        SignatureStatus.GOOD,
        "bob@example.com",
        keys.fingerprint("bob"),
    )
    unknown = results[(signed, signers_id(without_bob))]
    assert (unknown.status, unknown.principal) == (SignatureStatus.UNKNOWN_KEY, None)
    assert results[(unsigned, signers_id(with_bob))].status is SignatureStatus.UNSIGNED
    assert verify_commits(desired.root, {}) == {}


def test_a_tampered_signed_commit_is_refused_as_a_bad_signature(desired: DesiredRepo) -> None:
    base = desired.head()
    desired.commit("promote to p", desired.pin("p", 2), key="alice")
    raw = desired.git("cat-file", "commit", "HEAD").encode() + b"\n"
    forged = replace_head(desired, raw.replace(b"promote to p", b"promote to P"))
    violation = check_directory(desired.dir, trusted_base=base).violations
    assert [(v.reason, v.commit.sha if v.commit else None) for v in violation] == [(TrustReason.BAD_SIGNATURE, forged)]


def test_an_openpgp_signature_is_refused_as_not_ssh(desired: DesiredRepo) -> None:
    base = desired.head()
    desired.commit("promote", desired.pin("p", 2))
    raw = desired.git("cat-file", "commit", "HEAD") + "\n"
    header, message = raw.split("\n\n", 1)
    pgp_signed = replace_head(desired, f"{header}\n{PGP_BLOCK}\n{message}".encode())
    assert re.search("BEGIN PGP", desired.git("cat-file", "commit", "HEAD"))
    violations = check_directory(desired.dir, trusted_base=base).violations
    assert [(v.reason, v.commit.sha if v.commit else None) for v in violations] == [(TrustReason.NOT_SSH, pgp_signed)]


def test_a_deleted_signers_file_leaves_nothing_that_can_sign(desired: DesiredRepo) -> None:
    base = desired.head()
    desired.commit("delete the signers", {"trust/p_allowed_signers": None}, key="alice")
    after = desired.commit("promote", desired.pin("p", 2), key="alice")
    violations = check_directory(desired.dir, trusted_base=base).violations
    assert [(v.reason, v.commit.sha if v.commit else None) for v in violations] == [
        (TrustReason.SIGNERS_MISSING, after)
    ]
