"""The trust rules end to end: real Git repositories, real SSH signatures (ssh-keygen), ``check_trust``.

Every refusal is asserted with its reason, the offending commit and the file, so a rule that stopped
firing (or fired on the wrong commit) fails the test.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler.policy.trust import TrustReason, TrustReport, TrustViolation
from reconciler.policy.trustcheck import check_directory, check_remote, check_trust
from reconciler.source import open_remote
from reconciler.source.remote import fetch

from .conftest import CONFIG, DesiredRepo, Keys

P = "environments/p.yaml"
SIGNERS = "trust/p_allowed_signers"


def only(report: TrustReport) -> TrustViolation:
    assert len(report.violations) == 1, [str(v) for v in report.violations]
    return report.violations[0]


def test_a_change_signed_by_an_allowed_signer_passes(desired: DesiredRepo) -> None:
    base = desired.head()
    change = desired.commit("promote to p", desired.pin("p", 2), key="bob")
    report = check_directory(desired.dir, trusted_base=base)
    assert report.ok, [str(v) for v in report.violations]
    assert report.commits == 1
    [approval] = report.approvals
    assert approval.commit.sha == change
    assert approval.principal == "bob@example.com"
    assert approval.files == (P,)
    assert approval.fingerprint == desired.keys.fingerprint("bob")
    document = json.loads(json.dumps(report.to_json()))
    assert document["approvals"][0]["principal"] == "bob@example.com"
    assert document["violations"] == []


def test_an_unsigned_change_is_refused(desired: DesiredRepo) -> None:
    base = desired.head()
    bad = desired.commit("sneak into p", desired.pin("p", 3), who="alice")
    violation = only(check_directory(desired.dir, trusted_base=base))
    assert violation.reason is TrustReason.UNSIGNED
    assert violation.commit is not None
    assert violation.commit.sha == bad
    assert violation.commit.subject == "sneak into p"
    assert violation.commit.author == "Alice <alice@example.com>"
    assert (violation.file, violation.environment) == (P, "p")
    assert bad[:12] in str(violation)
    assert "[unsigned]" in str(violation)
    assert violation.to_json()["reason"] == "unsigned"
    assert violation.to_json()["commit"] == bad


def test_a_change_signed_by_an_unknown_key_is_refused(desired: DesiredRepo) -> None:
    base = desired.head()
    bad = desired.commit("promote", desired.pin("p", 2), key="mallory", who="mallory")
    violation = only(check_directory(desired.dir, trusted_base=base))
    assert violation.reason is TrustReason.UNKNOWN_KEY
    assert violation.commit is not None
    assert violation.commit.sha == bad
    assert desired.keys.fingerprint("mallory") in violation.detail


def test_a_forged_committer_name_with_another_valid_key_is_refused(desired: DesiredRepo) -> None:
    base = desired.head()
    # Mallory writes Alice's name as author and committer, and signs with her own (valid) key.
    bad = desired.commit("promote", desired.pin("p", 2), key="mallory", who="Alice|alice@example.com")
    violation = only(check_directory(desired.dir, trusted_base=base))
    assert violation.reason is TrustReason.UNKNOWN_KEY
    assert violation.commit is not None
    assert violation.commit.sha == bad
    assert violation.commit.committer == "Alice <alice@example.com>"
    assert desired.keys.fingerprint("mallory") in violation.detail
    assert "only the key counts" in violation.detail


def test_the_key_decides_not_the_committer_line(desired: DesiredRepo) -> None:
    base = desired.head()
    desired.commit("promote", desired.pin("p", 2), key="bob", who="Alice|alice@example.com")
    report = check_directory(desired.dir, trusted_base=base)
    assert report.ok
    assert [a.principal for a in report.approvals] == ["bob@example.com"]


def test_a_signer_removed_from_the_file_signs_nothing_after_the_removal(desired: DesiredRepo) -> None:
    base = desired.head()
    keys = desired.keys
    before = desired.commit("bob's last promotion", desired.pin("p", 2), key="bob", who="bob")
    desired.commit("remove bob", {SIGNERS: keys.signers("alice", "forge")}, key="alice")
    after = desired.commit("bob promotes anyway", desired.pin("p", 3), key="bob", who="bob")
    report = check_directory(desired.dir, trusted_base=base)
    violation = only(report)
    assert violation.reason is TrustReason.SIGNER_REMOVED
    assert violation.commit is not None
    assert violation.commit.sha == after
    assert violation.file == P
    assert before in {a.commit.sha for a in report.approvals}


def test_a_signers_file_changed_by_a_non_signer_is_refused(desired: DesiredRepo) -> None:
    base = desired.head()
    keys = desired.keys
    bad = desired.commit(
        "add myself", {SIGNERS: keys.signers("alice", "bob", "forge", "mallory")}, key="mallory", who="mallory"
    )
    violation = only(check_directory(desired.dir, trusted_base=base))
    assert violation.reason is TrustReason.SIGNERS_CHANGED_BY_NON_SIGNER
    assert violation.commit is not None
    assert violation.commit.sha == bad
    assert violation.file == SIGNERS
    assert keys.fingerprint("mallory") in violation.detail


def test_a_signer_may_add_a_signer_who_may_then_sign(desired: DesiredRepo) -> None:
    base = desired.head()
    desired.commit("add carol", {SIGNERS: desired.keys.signers("alice", "bob", "forge", "carol")}, key="alice")
    desired.commit("carol promotes", desired.pin("p", 2), key="carol", who="carol")
    report = check_directory(desired.dir, trusted_base=base)
    assert report.ok, [str(v) for v in report.violations]
    assert [a.principal for a in report.approvals] == ["alice@example.com", "carol@example.com"]


def test_a_new_signer_cannot_sign_their_own_addition(desired: DesiredRepo) -> None:
    base = desired.head()
    bad = desired.commit(
        "add carol", {SIGNERS: desired.keys.signers("alice", "bob", "forge", "carol")}, key="carol", who="carol"
    )
    violation = only(check_directory(desired.dir, trusted_base=base))
    assert violation.reason is TrustReason.SIGNERS_CHANGED_BY_NON_SIGNER
    assert violation.commit is not None
    assert violation.commit.sha == bad


def test_a_key_listed_for_another_namespace_is_refused(desired_repo: Callable[..., DesiredRepo], keys: Keys) -> None:
    desired = desired_repo()
    signers = keys.signers("alice") + keys.signers("filer", options='namespaces="file"').split("\n", 1)[1]
    desired.commit("add filer for files", {SIGNERS: signers}, key="alice")
    base = desired.head()
    bad = desired.commit("promote", desired.pin("p", 2), key="filer", who="filer")
    violation = only(check_directory(desired.dir, trusted_base=base))
    assert violation.reason is TrustReason.NAMESPACE
    assert violation.commit is not None
    assert violation.commit.sha == bad


def test_an_expired_key_is_refused(desired_repo: Callable[..., DesiredRepo], keys: Keys) -> None:
    desired = desired_repo()
    expired = keys.signers("carol", options='namespaces="git",valid-before="20200101"').split("\n", 1)[1]
    desired.commit("carol until 2020", {SIGNERS: keys.signers("alice") + expired}, key="alice")
    base = desired.head()
    bad = desired.commit("promote", desired.pin("p", 2), key="carol", who="carol")
    violation = only(check_directory(desired.dir, trusted_base=base))
    assert violation.reason is TrustReason.EXPIRED
    assert violation.commit is not None
    assert violation.commit.sha == bad


def test_an_environment_without_trust_needs_no_signature(desired: DesiredRepo) -> None:
    base = desired.head()
    desired.commit("promote to t", desired.pin("t", 2))
    report = check_directory(desired.dir, trusted_base=base)
    assert report.ok
    assert report.commits == 1
    assert report.verifications == 0


def test_config_changes_need_a_signature_and_removing_trust_is_one(desired: DesiredRepo) -> None:
    base = desired.head()
    untrusting = desired.commit("drop trust", {"reconciler.yaml": CONFIG.split("trust:")[0]})
    desired.commit("now p is free", desired.pin("p", 9))
    violation = only(check_directory(desired.dir, trusted_base=base))
    assert violation.reason is TrustReason.UNSIGNED
    assert violation.commit is not None
    assert violation.commit.sha == untrusting
    assert violation.file == "reconciler.yaml"


def test_a_forge_merge_signed_by_the_forge_key_counts_for_the_commits_it_brings(desired: DesiredRepo) -> None:
    base = desired.head()
    desired.git("checkout", "-q", "-b", "promote-p")
    desired.commit("wip: promote", desired.pin("p", 2), who="dev")  # unsigned work on the branch
    desired.commit("wip: fix digest", desired.pin("p", 3), who="dev")
    desired.git("checkout", "-q", "main")
    merge = desired.merge("promote-p", key="forge")
    report = check_directory(desired.dir, trusted_base=base)
    assert report.ok, [str(v) for v in report.violations]
    assert report.commits == 1
    assert [(a.commit.sha, a.principal) for a in report.approvals] == [(merge, "forge@example.com")]


def test_an_unsigned_merge_is_refused_at_the_merge_commit(desired: DesiredRepo) -> None:
    base = desired.head()
    desired.git("checkout", "-q", "-b", "promote-p")
    desired.commit("promote", desired.pin("p", 2), key="alice")  # even a signed branch commit does not count
    desired.git("checkout", "-q", "main")
    merge = desired.merge("promote-p", key=None)
    violation = only(check_directory(desired.dir, trusted_base=base))
    assert violation.reason is TrustReason.UNSIGNED
    assert violation.commit is not None
    assert violation.commit.sha == merge
    assert violation.file == P


def test_a_fast_forward_puts_every_commit_on_the_chain(desired: DesiredRepo) -> None:
    base = desired.head()
    desired.git("checkout", "-q", "-b", "promote-p")
    signed = desired.commit("promote", desired.pin("p", 2), key="alice")
    unsigned = desired.commit("tweak", desired.pin("p", 3))
    desired.git("checkout", "-q", "main")
    desired.git("merge", "-q", "--ff-only", "promote-p")
    report = check_directory(desired.dir, trusted_base=base)
    assert only(report).commit is not None
    assert only(report).commit.sha == unsigned  # type: ignore[union-attr]
    assert [a.commit.sha for a in report.approvals] == [signed]


def test_the_trusted_base_excludes_older_unsigned_commits(desired: DesiredRepo) -> None:
    old = desired.commit("old unsigned change", desired.pin("p", 2))
    assert only(check_directory(desired.dir)).commit.sha == old  # type: ignore[union-attr]
    desired.commit("reviewed", desired.pin("p", 3), key="alice")
    report = check_directory(desired.dir, trusted_base=old)
    assert report.ok
    assert report.commits == 1


def test_a_trusted_base_that_is_not_an_ancestor_is_refused(desired: DesiredRepo) -> None:
    base = desired.commit("applied", desired.pin("p", 2), key="alice")
    desired.git("reset", "-q", "--hard", "HEAD~1")
    desired.commit("rewritten", desired.pin("p", 3), key="alice")
    violation = only(check_directory(desired.dir, trusted_base=base))
    assert violation.reason is TrustReason.BASE_NOT_ANCESTOR
    unknown = only(check_directory(desired.dir, trusted_base="0" * 40))
    assert unknown.reason is TrustReason.BASE_UNKNOWN


def test_without_a_trusted_point_trust_begins_where_it_is_configured(
    desired_repo: Callable[..., DesiredRepo],
) -> None:
    no_trust = CONFIG.split("trust:")[0]
    desired = desired_repo(config=no_trust)  # first commit: no trust rule yet
    desired.commit("unsigned p change before trust", desired.pin("p", 2))
    desired.commit("turn trust on", {"reconciler.yaml": CONFIG}, key="alice")
    report = check_directory(desired.dir)
    assert report.ok, [str(v) for v in report.violations]
    assert [a.bootstrap for a in report.approvals] == [True]
    desired.commit("turn trust off", {"reconciler.yaml": no_trust}, key="alice")
    desired.commit("turn trust on, unsigned", {"reconciler.yaml": CONFIG})
    violation = only(check_directory(desired.dir))
    assert violation.reason is TrustReason.UNSIGNED
    assert "begins at this commit" in violation.detail


def test_the_desired_state_in_a_subdirectory(desired_repo: Callable[..., DesiredRepo]) -> None:
    desired = desired_repo(subdir="deploy/images")
    base = desired.head()
    desired.write({"../../README.md": "unrelated\n"})
    desired.commit("docs", {})
    desired.commit("promote", desired.pin("p", 2), key="bob")
    bad = desired.commit("unsigned", desired.pin("p", 3))
    report = check_directory(desired.dir, trusted_base=base)
    violation = only(report)
    assert violation.commit is not None
    assert (violation.commit.sha, violation.file) == (bad, P)
    assert report.commits == 2  # the commit outside the directory is not walked
    assert check_trust(desired.root, "HEAD~1", trusted_base=base, subdir="deploy/images").ok


def test_uncommitted_changes_to_protected_files_are_refused(desired: DesiredRepo) -> None:
    base = desired.head()
    desired.write(desired.pin("p", 5))
    violation = only(check_directory(desired.dir, trusted_base=base))
    assert (violation.reason, violation.commit, violation.file) == (TrustReason.UNCOMMITTED, None, P)
    desired.write({P: None})
    desired.git("checkout", "--", P)
    desired.write(desired.pin("t", 5))
    assert check_directory(desired.dir, trusted_base=base).ok


def test_reading_from_the_bare_clone_cache(desired: DesiredRepo, tmp_path: Path) -> None:
    base = desired.head()
    desired.commit("promote", desired.pin("p", 2), key="alice")
    bad = desired.commit("unsigned", desired.pin("p", 3))
    url = f"file://{desired.root}"
    cache = tmp_path / "cache"
    with open_remote(url, "main", cache_dir=cache) as tree:
        report = check_remote(url, tree.sha, trusted_base=base, cache_dir=cache)
    violation = only(report)
    assert violation.commit is not None
    assert violation.commit.sha == bad
    clone = fetch(url, cache_dir=cache)
    assert check_trust(clone, f"{bad}~1", trusted_base=base).ok


def test_the_validated_config_must_agree_with_what_git_holds(desired: DesiredRepo) -> None:
    from reconciler.model.desired import TrustRule

    ok = check_directory(desired.dir, config_trust={"p": TrustRule("trust/p_allowed_signers")})
    assert ok.ok
    differs = check_directory(desired.dir, config_trust={})
    assert only(differs).reason is TrustReason.CONFIG_MISMATCH


@pytest.mark.parametrize("jobs", [1, 3])
def test_many_commits_in_parallel_chunks(desired: DesiredRepo, jobs: int) -> None:
    base = desired.head()
    shas = [desired.commit(f"promote {n}", desired.pin("p", n), key="bob") for n in range(2, 20)]
    unsigned = desired.commit("unsigned", desired.pin("p", 20))
    report = check_trust(desired.root, "HEAD", trusted_base=base, jobs=jobs)
    assert [a.commit.sha for a in report.approvals] == shas
    assert only(report).commit.sha == unsigned  # type: ignore[union-attr]
