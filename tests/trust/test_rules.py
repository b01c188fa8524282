"""The pure trust rules and readers, without Git: which commits need a signature, against which signers
file, and how refusals are explained."""

from __future__ import annotations

from reconciler.policy.trust import (
    CommitStep,
    Requirement,
    TrustReason,
    TrustState,
    explain,
    is_outside,
    judge,
    parse_allowed_signers,
    requirements,
    uncommitted_violations,
    verification_batches,
)
from reconciler.policy.trustcheck import trust_rules_of
from reconciler.source.history import CommitRecord
from reconciler.source.signatures import SignatureCheck, SignatureStatus, signers_id

from .conftest import Keys

OLD = b"alice@example.com ssh-ed25519 AAAA-old\n"
NEW = b"bob@example.com ssh-ed25519 AAAA-new\n"


def commit(sha: str, *paths: str, parent: str = "0" * 40) -> CommitRecord:
    return CommitRecord(sha, (parent,), "A <a@x>", 0, "A <a@x>", 0, f"subject {sha[:3]}", tuple(sorted(paths)))


def state(content: bytes | None, path: str = "trust/p") -> TrustState:
    return TrustState({"p": path}, {"p": content})


def test_trust_rules_are_read_from_the_trust_section_only() -> None:
    config = b"version: 1\nx: &x {a: 1}\ntrust:\n  p: {allowed_signers: trust/p}\n  s2:\n    allowed_signers: /etc/s2\n"
    assert trust_rules_of(config) == {"p": "trust/p", "s2": "/etc/s2"}
    assert trust_rules_of(b"version: 1\n") == {}
    assert trust_rules_of(None) == {}
    assert trust_rules_of(b"trust:\n  p: {signers: x}\n") == {"p": ""}  # unreadable rule: fails closed
    assert trust_rules_of(b"[not, a, mapping]\n") is None
    assert trust_rules_of(b"trust: {p: [\n") is None
    assert trust_rules_of(b"\xff\xfe") is None


def test_allowed_signers_entries_and_fingerprints(keys: Keys) -> None:
    text = (
        "# comment\n\n"
        f'alice@example.com,ops@example.com namespaces="git,file",valid-before="20300101" {keys.public("alice")} c\n'
        f"bob@example.com {keys.public('bob')}\n"
        "broken line\n"
    )
    alice, bob = parse_allowed_signers(text.encode())
    assert alice.principals == "alice@example.com,ops@example.com"
    assert alice.namespaces == ("git", "file")
    assert alice.options["valid-before"] == "20300101"
    assert alice.fingerprint == keys.fingerprint("alice")  # the same as ssh-keygen -l prints
    assert (bob.namespaces, bob.fingerprint) == (None, keys.fingerprint("bob"))


def test_which_commits_need_a_signature_and_against_which_file() -> None:
    steps = [
        CommitStep(commit("a" * 40, "environments/t.yaml"), state(OLD), state(OLD)),  # not protected
        CommitStep(commit("b" * 40, "environments/p.yaml"), state(OLD), state(OLD)),
        CommitStep(commit("c" * 40, "trust/p"), state(OLD), state(NEW)),  # judged by the OLD version
        CommitStep(commit("d" * 40, "reconciler.yaml"), state(NEW), state(NEW)),
    ]
    needed, violations = requirements(steps)
    assert violations == []
    assert [(r.step.commit.sha[0], r.files, r.signers) for r in needed] == [
        ("b", ("environments/p.yaml",), OLD),
        ("c", ("trust/p",), OLD),
        ("d", ("reconciler.yaml",), NEW),
    ]
    assert verification_batches(needed) == {OLD: ["b" * 40, "c" * 40], NEW: ["d" * 40]}


def test_bootstrap_missing_and_outside_signers() -> None:
    bootstrap = CommitStep(commit("a" * 40, "reconciler.yaml", "trust/p"), TrustState(), state(NEW))
    missing = CommitStep(commit("b" * 40, "environments/p.yaml"), state(None), state(None))
    outside = CommitStep(commit("c" * 40, "environments/p.yaml"), state(OLD, "../keys"), state(OLD, "../keys"))
    needed, violations = requirements([bootstrap, missing, outside])
    assert [(r.step.commit.sha[0], r.bootstrap, r.signers) for r in needed] == [("a", True, NEW)]
    assert [(v.commit.sha[0] if v.commit else None, v.reason) for v in violations] == [
        ("b", TrustReason.SIGNERS_MISSING),
        ("c", TrustReason.SIGNERS_OUTSIDE),
    ]
    assert [is_outside(p) for p in ("../x", "a/../../x", "/etc/x", "a/b")] == [True, True, False, False]


def test_judge_explains_each_refusal(keys: Keys) -> None:
    before = keys.signers("alice", "bob").encode()
    after = keys.signers("alice").encode()
    remove = CommitStep(commit("a" * 40, "trust/p"), state(before), state(after))
    late = CommitStep(commit("b" * 40, "environments/p.yaml"), state(after), state(after))
    needed, _ = requirements([remove, late])
    results = {
        ("a" * 40, signers_id(before)): SignatureCheck("a" * 40, SignatureStatus.GOOD, "alice@example.com", "SHA256:x"),
        ("b" * 40, signers_id(after)): SignatureCheck(
            "b" * 40, SignatureStatus.UNKNOWN_KEY, None, keys.fingerprint("bob")
        ),
    }
    violations, approvals = judge([remove, late], needed, results)
    assert [(a.commit.sha[0], a.principal) for a in approvals] == [("a", "alice@example.com")]
    assert [(v.commit.sha[0] if v.commit else None, v.reason) for v in violations] == [
        ("b", TrustReason.SIGNER_REMOVED)
    ]


def test_explain_by_status(keys: Keys) -> None:
    content = keys.signers("alice").encode()
    step = CommitStep(commit("a" * 40, "environments/p.yaml"), state(content), state(content))
    requirement = Requirement(step, "p", ("environments/p.yaml",), "trust/p", content)

    def reason(status: SignatureStatus, message: str = "", key: str | None = None) -> TrustReason:
        return explain(requirement, SignatureCheck("a" * 40, status, None, key, message), set())[0]

    assert reason(SignatureStatus.UNSIGNED) is TrustReason.UNSIGNED
    assert reason(SignatureStatus.NOT_SSH) is TrustReason.NOT_SSH
    assert reason(SignatureStatus.EXPIRED) is TrustReason.EXPIRED
    assert reason(SignatureStatus.BAD, "Signature verification failed") is TrustReason.BAD_SIGNATURE
    assert reason(SignatureStatus.BAD, 'x:2: key is not permitted for use in signature namespace "git"') is (
        TrustReason.NAMESPACE
    )
    assert reason(SignatureStatus.UNKNOWN_KEY, key="SHA256:zzz") is TrustReason.UNKNOWN_KEY


def test_uncommitted_changes_to_protected_files() -> None:
    found = uncommitted_violations(state(OLD), ["environments/p.yaml", "environments/t.yaml", "trust/p"])
    assert [(v.file, v.reason) for v in found] == [
        ("environments/p.yaml", TrustReason.UNCOMMITTED),
        ("trust/p", TrustReason.UNCOMMITTED),
    ]
    assert "work tree" in str(found[0])
