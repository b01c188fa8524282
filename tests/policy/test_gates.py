"""Image gates (reconciler.policy.gates): every rule, good and bad, with the evidence each message carries.

Manifests are real ``Manifest`` values, parsed by ``parse_manifest`` from canonical JSON built here (the
shape testkit's image generator writes); a few tests use testkit's generated images end to end.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.model.desired import Gate
from reconciler.model.digest import Digest
from reconciler.model.manifest import Manifest, Platform, parse_manifest
from reconciler.policy.evidence import runnable_children
from reconciler.policy.gates import (
    GATE_ORDER,
    GateViolation,
    ImageEvidence,
    PlatformImage,
    Referrer,
    check_base,
    check_exec_form,
    check_labels,
    check_max_bytes,
    check_max_layers,
    check_non_root,
    check_require_artifacts,
    evaluate,
    format_bytes,
)
from reconciler.policy.imageconfig import is_shell_wrapper, root_reason
from reconciler.policy.referrers import (
    cosign_tag,
    missing_artifacts,
    parse_cosign_tag,
    referrer_kinds,
    referrers_tag,
)
from testkit.imagegen import ImageSettings, make_image

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
AMD64 = Platform(architecture="amd64", os="linux")
ARM64 = Platform(architecture="arm64", os="linux", variant="v8")
GIB = 1024**3
# hypothesis settles for fewer, cheap examples (each builds and parses a few JSON documents)
PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- building evidence ----------------------------------------------------------------------------------


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def sha(data: bytes | str) -> Digest:
    return Digest("sha256:" + hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest())


def diff_id(layer: str) -> str:
    """The uncompressed digest a test pretends a layer has (changes when the layer does)."""
    return sha("uncompressed " + layer)


def layers_named(*names: str) -> list[str]:
    return [sha(f"layer {name}") for name in names]


def config_doc(
    layers: Sequence[str] = (),
    *,
    platform: Platform = AMD64,
    user: str | None = "10001",
    entrypoint: Sequence[str] | None = None,
    cmd: Sequence[str] | None = ("/app",),
    labels: Mapping[str, Any] | None = None,
    diff_ids: Sequence[str] | None = None,
) -> dict[str, Any]:
    section: dict[str, Any] = {}
    if user is not None:
        section["User"] = user
    if entrypoint is not None:
        section["Entrypoint"] = entrypoint if isinstance(entrypoint, str) else list(entrypoint)  # str: malformed
    if cmd is not None:
        section["Cmd"] = list(cmd)
    if labels is not None:
        section["Labels"] = dict(labels)
    document = {
        "architecture": platform.architecture,
        "os": platform.os,
        "config": section,
        "rootfs": {"type": "layers", "diff_ids": list(diff_ids if diff_ids is not None else map(diff_id, layers))},
    }
    if platform.variant:
        document["variant"] = platform.variant
    return document


def image_manifest(layers: Sequence[str], config: object, *, sizes: Sequence[int] | None = None) -> Manifest:
    raw_config = canonical(config)
    body = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": sha(raw_config), "size": len(raw_config)},
        "layers": [
            {"mediaType": OCI_LAYER, "digest": digest, "size": sizes[i] if sizes else 1000}
            for i, digest in enumerate(layers)
        ],
    }
    return parse_manifest(canonical(body))


def platform_image(
    layers: Sequence[str], *, platform: Platform | None = None, sizes: Sequence[int] | None = None, **config: Any
) -> PlatformImage:
    document = config_doc(layers, platform=platform or AMD64, **config)
    return PlatformImage(platform, image_manifest(layers, document, sizes=sizes), document)


def single(layers: Sequence[str], referrers: Sequence[Referrer] = (), **config: Any) -> ImageEvidence:
    image = platform_image(layers, **config)
    return ImageEvidence.single(image.manifest, image.config, referrers)


def index(children: Sequence[PlatformImage], referrers: Sequence[Referrer] = ()) -> ImageEvidence:
    """An OCI index over ``children`` (their ``platform`` goes into the index descriptors)."""
    body = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            {
                "mediaType": child.manifest.media_type,
                "digest": child.manifest.digest,
                "size": child.manifest.size,
                "platform": (child.platform or AMD64).to_json(),
            }
            for child in children
        ],
    }
    top = parse_manifest(canonical(body))
    return ImageEvidence(top.digest, tuple(children), tuple(referrers), is_index=True)


def messages(found: Sequence[GateViolation]) -> list[str]:
    return [violation.message for violation in found]


BASE = layers_named("os-1", "os-2", "os-3")


# -- base ---------------------------------------------------------------------------------------------


def test_base_prefix_passes_and_equal_layers_pass() -> None:
    base = single(BASE)
    assert check_base(single([*BASE, *layers_named("app")]).platforms, base, "prod-osbase") == []
    assert check_base(single(BASE).platforms, base, "prod-osbase") == []


def test_base_reports_first_differing_layer_with_both_digests() -> None:
    image = [BASE[0], sha("other"), BASE[2], *layers_named("app")]
    [violation] = check_base(single(image).platforms, single(BASE), "prod-osbase")
    assert violation.gate == "base"
    assert violation.platform == AMD64
    assert violation.message.startswith(f"layer 1 is {sha('other')} but prod-osbase has {BASE[1]}")
    assert f"diff_ids differ too: diff_id 1 is {diff_id(sha('other'))}" in violation.message


def test_base_reports_an_image_shorter_than_the_base() -> None:
    [violation] = check_base(single(BASE[:2]).platforms, single(BASE), "prod-osbase")
    assert violation.message.startswith("image has fewer layers than the base (2 layers, prod-osbase has 3)")


def test_base_recompressed_layers_pass_on_equal_diff_ids() -> None:
    recompressed = [sha("recompressed " + layer) for layer in BASE]
    base_ids = [diff_id(layer) for layer in BASE]
    image = single([*recompressed, sha("app")], diff_ids=[*base_ids, diff_id(sha("app"))])
    assert check_base(image.platforms, single(BASE), "prod-osbase") == []


def test_base_layer_mismatch_without_usable_diff_ids_says_why() -> None:
    image = platform_image([sha("x"), *BASE[1:]], diff_ids=["sha256:" + "0" * 64])  # one diff_id for 3 layers
    [violation] = check_base([image], single(BASE), "prod-osbase")
    assert "diff_ids not compared (config lists 1 diff_ids for 3 layers)" in violation.message


def test_base_index_matches_platform_and_reports_the_failing_one() -> None:
    base = index([platform_image(BASE, platform=AMD64), platform_image(layers_named("arm-os"), platform=ARM64)])
    good_amd = platform_image([*BASE, sha("app-amd")], platform=AMD64)
    bad_arm = platform_image([sha("not-the-base"), sha("app-arm")], platform=ARM64)
    [violation] = check_base(index([good_amd, bad_arm]).platforms, base, "prod-osbase")
    assert violation.platform == ARM64
    assert violation.message.startswith(
        f"layer 0 is {sha('not-the-base')} but prod-osbase has {layers_named('arm-os')[0]}"
    )


def test_base_index_lacking_the_image_platform_is_named() -> None:
    base = index([platform_image(BASE, platform=AMD64)])
    s390x = Platform(architecture="s390x", os="linux")
    [violation] = check_base([platform_image([*BASE], platform=s390x)], base, "prod-osbase")
    assert violation.message == "prod-osbase has no linux/s390x image (it has linux/amd64)"


def test_single_platform_base_applies_to_every_platform_of_an_index() -> None:
    image = index(
        [platform_image([*BASE, sha("a")], platform=AMD64), platform_image([*BASE, sha("b")], platform=ARM64)]
    )
    assert check_base(image.platforms, single(BASE), "prod-osbase") == []
    other = index([platform_image([*BASE, sha("a")], platform=AMD64), platform_image([sha("b")], platform=ARM64)])
    [violation] = check_base(other.platforms, single(BASE), "prod-osbase")
    assert violation.platform == ARM64
    assert violation.message.endswith("(prod-osbase is a single-platform linux/amd64 image)")


def test_platform_variants_are_normalised() -> None:
    base = index([platform_image(BASE, platform=Platform(architecture="arm64", os="linux"))])
    assert check_base([platform_image([*BASE, sha("a")], platform=ARM64)], base, "prod-osbase") == []


def test_base_not_resolved_is_a_violation() -> None:
    assert messages(check_base(single(BASE).platforms, None, "prod-osbase")) == [
        "base image prod-osbase was not resolved: nothing to compare with"
    ]


_digests = st.lists(st.binary(min_size=1, max_size=8), unique=True, max_size=30).map(lambda xs: [sha(x) for x in xs])


@PROPERTY
@given(layers=_digests, split=st.integers(min_value=0, max_value=30), arm=st.booleans(), single_base=st.booleans())
def test_property_base_plus_extra_layers_always_passes(
    layers: list[str], split: int, arm: bool, single_base: bool
) -> None:
    base_layers, extra = layers[:split], layers[split:]
    platforms = [AMD64, ARM64] if arm else [AMD64]
    image = index([platform_image([*base_layers, *extra], platform=p) for p in platforms])
    base = single(base_layers) if single_base else index([platform_image(base_layers, platform=p) for p in platforms])
    assert check_base(image.platforms, base, "prod-osbase") == []


@PROPERTY
@given(layers=_digests.filter(bool), data=st.data())
def test_property_changing_any_base_layer_fails_at_that_index(layers: list[str], data: st.DataObject) -> None:
    split = data.draw(st.integers(min_value=1, max_value=len(layers)))
    changed = data.draw(st.integers(min_value=0, max_value=split - 1))
    base_layers = layers[:split]
    image_layers = list(layers)
    image_layers[changed] = sha("changed " + layers[changed])
    [violation] = check_base(single(image_layers).platforms, single(base_layers), "prod-osbase")
    assert violation.message.startswith(f"layer {changed} is {image_layers[changed]} but prod-osbase has")


# -- non_root -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user", "message"),
    [
        (None, "User is not set (runs as root)"),
        ("", "User is empty (runs as root)"),
        ("root", "User is root"),
        ("0", "User is 0 (uid 0 is root)"),
        ("0:0", "User is 0:0 (uid 0 is root)"),
        ("00", "User is 00 (uid 0 is root)"),
        ("root:root", "User is root:root (user root, whatever the group)"),
        ("root:1000", "User is root:1000 (user root, whatever the group)"),
        ("0:1000", "User is 0:1000 (uid 0 is root)"),
        (":1000", 'User is ":1000": the user part is empty (runs as root)'),
    ],
)
def test_non_root_rejects_root(user: str | None, message: str) -> None:
    assert messages(check_non_root(single(BASE, user=user).platforms)) == [message]


@pytest.mark.parametrize("user", ["10001", "1000:0", "app", "app:app", "10001:10001", "ROOT"])
def test_non_root_accepts_non_root(user: str) -> None:
    assert check_non_root(single(BASE, user=user).platforms) == []


def test_non_root_windows_administrator() -> None:
    windows = Platform(architecture="amd64", os="windows")
    assert (
        root_reason("ContainerAdministrator", "windows") == "User is ContainerAdministrator (the Windows administrator)"
    )
    assert check_non_root(single(BASE, platform=windows, user="ContainerUser").platforms) == []


def test_index_with_one_failing_platform_reports_only_that_platform() -> None:
    image = index([platform_image(BASE, platform=AMD64), platform_image(BASE, platform=ARM64, user="root")])
    assert [(v.platform, v.message) for v in check_non_root(image.platforms)] == [(ARM64, "User is root")]


@PROPERTY
@given(uid=st.integers(min_value=1, max_value=2**31), group=st.text(max_size=8))
def test_property_user_part_alone_decides(uid: int, group: str) -> None:
    assert root_reason(f"{uid}:{group}") is None
    assert root_reason(f"0:{group}") is not None
    assert root_reason(f"root:{group}") is not None


# -- exec_form ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entrypoint", "cmd", "message"),
    [
        (
            None,
            ["/bin/sh", "-c", "java -jar app.jar"],
            'Cmd is a shell wrapper (shell form): ["/bin/sh","-c","java -jar app.jar"]',
        ),
        (None, ["/bin/bash", "-c", "run"], 'Cmd is a shell wrapper (shell form): ["/bin/bash","-c","run"]'),
        (
            None,
            ["bash", "-o", "pipefail", "-c", "run"],
            'Cmd is a shell wrapper (shell form): ["bash","-o","pipefail","-c","run"]',
        ),
        (["/bin/sh", "-c", "exec /app"], None, 'Entrypoint is a shell wrapper: ["/bin/sh","-c","exec /app"]'),
        (["/bin/sh", "-c"], ["/app --port 80"], 'Entrypoint is a shell wrapper: ["/bin/sh","-c"]'),
        (["cmd", "/S", "/C", "app.exe"], None, 'Entrypoint is a shell wrapper: ["cmd","/S","/C","app.exe"]'),
        (
            ["/sbin/tini", "--", "sh", "-c", "x"],
            None,
            'Entrypoint is a shell wrapper: ["/sbin/tini","--","sh","-c","x"]',
        ),
        (["/run.sh"], ["--port", "8080"], None),  # exec ENTRYPOINT + CMD default flags: the rule's model
        (["/run.sh"], ["/bin/sh", "-c", "ignored"], None),  # Cmd is only arguments to the entrypoint
        (None, ["/bin/sh", "/run.sh"], None),  # a shell running a script file is exec form
        (["/app"], None, None),
        ([], ["/app"], None),  # ENTRYPOINT [] resets it: Cmd is the program
        (None, None, "neither Entrypoint nor Cmd is set: the image names no process to run"),
        ("echo hi", None, 'Entrypoint is not a JSON array of strings: "echo hi"'),
        (None, ["/app", 1], 'Cmd is not a JSON array of strings: ["/app",1]'),
    ],
)
def test_exec_form(entrypoint: Any, cmd: Any, message: str | None) -> None:
    found = messages(check_exec_form(single(BASE, entrypoint=entrypoint, cmd=cmd).platforms))
    assert found == ([message] if message else [])


@pytest.mark.parametrize(
    "argv",
    [
        ["bash", "-euo", "pipefail", "-c", "x"],
        ["sh", "-ec", "x"],
        ["env", "A=1", "/bin/sh", "-c", "x"],
        ["busybox", "sh", "-c", "x"],
        ["dumb-init", "/bin/bash", "-lc", "x"],
        ["powershell", "-Command", "x"],
        ["pwsh.exe", "-c", "x"],
        ["C:\\Windows\\System32\\cmd.exe", "/c", "x"],
    ],
)
def test_shell_wrappers(argv: list[str]) -> None:
    assert is_shell_wrapper(argv)


@pytest.mark.parametrize(
    "argv", [["/bin/sh"], ["sh", "/run.sh"], ["pwsh", "-File", "run.ps1"], ["busybox", "httpd", "-f"], ["/app", "-c"]]
)
def test_not_shell_wrappers(argv: list[str]) -> None:
    assert not is_shell_wrapper(argv)


_program = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-_/.0123456789", min_size=1, max_size=12)


@PROPERTY
@given(shell=st.sampled_from(["/bin/sh", "sh", "/bin/bash", "/usr/bin/dash", "ash"]), script=st.text())
def test_property_shell_dash_c_is_always_a_wrapper(shell: str, script: str) -> None:
    assert is_shell_wrapper([shell, "-c", script])


@PROPERTY
@given(program=_program, args=st.lists(st.text(max_size=10), max_size=5))
def test_property_non_shell_programs_are_exec_form(program: str, args: list[str]) -> None:
    name = program.rsplit("/", 1)[-1]
    shells_and_launchers = {"sh", "bash", "dash", "ash", "zsh", "ksh", "mksh", "yash", "csh", "tcsh", "fish", "cmd"}
    shells_and_launchers |= {"env", "tini", "tini-static", "dumb-init", "catatonit", "busybox", "toybox"}
    shells_and_launchers |= {"powershell", "pwsh"}
    if name.removesuffix(".exe") not in shells_and_launchers:
        assert not is_shell_wrapper([program, *args])


# -- labels, layer count, size -----------------------------------------------------------------------------


def test_labels_missing_empty_and_present() -> None:
    labels = {"maintainer": "", "org.opencontainers.image.source": "https://git.example/app", "team": " "}
    found = check_labels(
        single(BASE, labels=labels).platforms, ["maintainer", "org.opencontainers.image.source", "team", "x"]
    )
    assert messages(found) == ["label maintainer is empty", "label team is empty", "label x is missing"]


def test_labels_absent_or_malformed() -> None:
    assert messages(check_labels(single(BASE, labels=None).platforms, ["maintainer"])) == [
        "label maintainer is missing"
    ]
    assert messages(check_labels(single(BASE, labels={"maintainer": 7}).platforms, ["maintainer"])) == [
        "label maintainer is not a string"
    ]
    broken = config_doc(BASE)
    broken["config"]["Labels"] = ["maintainer=x"]
    image = PlatformImage(None, image_manifest(BASE, broken), broken)
    assert messages(check_labels([image], ["maintainer"])) == ["Labels is an array, not an object"]


def test_max_layers_exactly_at_the_limit() -> None:
    forty = layers_named(*map(str, range(40)))
    assert check_max_layers(single(forty).platforms, 40) == []
    [violation] = check_max_layers(single([*forty, *layers_named("41", "42")]).platforms, 40)
    assert violation.message == "42 layers, at most 40 allowed"


def test_max_bytes_exactly_at_the_limit_and_over() -> None:
    layers = layers_named("a", "b")
    assert check_max_bytes(single(layers, sizes=[GIB, GIB]).platforms, 2 * GIB) == []
    [violation] = check_max_bytes(single(layers, sizes=[GIB, GIB + 1]).platforms, 2 * GIB)
    assert violation.message == (
        "2 GiB compressed (2,147,483,649 bytes in 2 layers), at most 2 GiB (2,147,483,648 bytes)"
    )
    [violation] = check_max_bytes(single(layers, sizes=[GIB, int(1.3 * GIB)]).platforms, 2 * GIB)
    assert violation.message.startswith("2.3 GiB compressed")


@PROPERTY
@given(sizes=st.lists(st.integers(min_value=0, max_value=10 * GIB), max_size=12), limit=st.integers(0, 20 * GIB))
def test_property_size_and_count_limits(sizes: list[int], limit: int) -> None:
    image = single(layers_named(*map(str, range(len(sizes)))), sizes=sizes)
    assert bool(check_max_bytes(image.platforms, limit)) == (sum(sizes) > limit)
    assert bool(check_max_layers(image.platforms, limit % 16)) == (len(sizes) > limit % 16)


def test_format_bytes() -> None:
    assert [format_bytes(n) for n in (0, 1, 1023, 1024, 1536, GIB, int(2.3 * GIB))] == [
        "0 bytes", "1 byte", "1023 bytes", "1 KiB", "1.5 KiB", "1 GiB", "2.3 GiB",
    ]  # fmt: skip


# -- require_artifacts -------------------------------------------------------------------------------------


def ref(subject: str, via: Any = "referrers-api", artifact_type: str | None = None, **extra: Any) -> Referrer:
    return Referrer(sha(f"ref {subject} {via} {artifact_type} {extra}"), Digest(subject), via, artifact_type, **extra)


def test_cosign_tags_round_trip() -> None:
    subject = sha("image")
    assert cosign_tag(subject, "signature") == f"sha256-{subject.hex}.sig"
    assert parse_cosign_tag(cosign_tag(subject, "attestation")) == (subject, "attestation")
    assert parse_cosign_tag(f"sha256-{subject.hex}") is None
    assert referrers_tag(subject) == f"sha256-{subject.hex}"


def test_required_kinds_found_by_type_or_cosign_tag() -> None:
    image = single(BASE)
    subject = image.digest
    referrers = [
        ref(subject, artifact_type="application/vnd.dev.cosign.artifact.sig.v1+json"),
        ref(subject, "cosign-tag", kind="attestation"),
        ref(subject, "tag-schema", artifact_type="application/spdx+json; charset=utf-8"),
    ]
    evidence = ImageEvidence(subject, image.platforms, tuple(referrers))
    required = ["signature", "attestation", "sbom", "application/spdx+json"]
    assert check_require_artifacts(evidence, required) == []
    [missing] = check_require_artifacts(evidence, ["application/vnd.cyclonedx+json"])
    assert missing.message.startswith(f"no application/vnd.cyclonedx+json attached to {subject}; found 3 referrers:")


def test_sigstore_bundle_kind_comes_from_its_predicate() -> None:
    bundle = "application/vnd.dev.sigstore.bundle.v0.3+json"
    predicate = "dev.sigstore.bundle.predicateType"
    subject = sha("image")
    sign = ref(subject, artifact_type=bundle, annotations={predicate: "https://sigstore.dev/cosign/sign/v1"})
    spdx = ref(subject, artifact_type=bundle, annotations={predicate: "https://spdx.dev/Document"})
    assert referrer_kinds(sign) == {"signature"}
    assert referrer_kinds(spdx) == {"attestation", "sbom"}
    assert referrer_kinds(ref(subject, artifact_type=bundle)) == frozenset()  # unknown: counts as nothing


def test_referrers_of_other_digests_and_unknown_requirements() -> None:
    subject, child = sha("index"), sha("child")
    found = missing_artifacts(["signature", "sbm"], [ref(child, "cosign-tag", kind="signature")], subject)
    assert found == [
        f"no signature attached to {subject}; found 0 referrers (1 attached to other digests, not counted)",
        "required artifact 'sbm' is neither a kind (signature, attestation, sbom) nor a media type",
    ]


# -- evaluate ------------------------------------------------------------------------------------------------

P_GATE = Gate(
    base="prod-osbase", non_root=True, exec_form=True, max_layers=40, max_bytes=2 * GIB,
    labels=("maintainer", "org.opencontainers.image.source"),
)  # fmt: skip
GOOD_LABELS = {"maintainer": "team@bank.example", "org.opencontainers.image.source": "https://git.example/app"}


def test_evaluate_good_image_passes_every_gate() -> None:
    image = single([*BASE, sha("app")], labels=GOOD_LABELS, entrypoint=["/run.sh"], cmd=["--port", "8080"])
    assert evaluate(P_GATE, image, single(BASE)) == []


def test_evaluate_reports_every_violation_in_gate_then_platform_order() -> None:
    bad: dict[str, Any] = {"user": "root", "cmd": ["/bin/sh", "-c", "run"], "labels": {"maintainer": ""}}
    image = index([platform_image([sha("x")], platform=p, **bad) for p in (AMD64, ARM64)])
    gates_p = dataclasses.replace(P_GATE, require_artifacts=("signature",))
    found = evaluate(gates_p, image, single(BASE))
    gates = [violation.gate for violation in found]
    assert gates == sorted(gates, key=GATE_ORDER.index)
    assert set(gates) == {"base", "non_root", "exec_form", "labels", "require_artifacts"}
    assert [str(v.platform) for v in found if v.gate == "non_root"] == ["linux/amd64", "linux/arm64/v8"]
    assert str(found[0]).startswith("base [linux/amd64]: layer 0 is")
    assert found[-1].to_json()["platform"] is None


def test_require_artifacts_is_a_gate_of_its_own() -> None:
    gate = Gate(non_root=True, require_artifacts=("signature",))
    assert [v.gate for v in evaluate(gate, single(BASE))] == ["require_artifacts"]


def test_evaluate_runs_only_configured_gates() -> None:
    image = single([sha("x")], user="root")
    assert evaluate(Gate(), image) == []
    assert messages(evaluate(Gate(non_root=True), image)) == ["User is root"]


def test_evaluate_skips_attestation_manifests_of_an_index() -> None:
    attestation = platform_image([sha("att")], platform=Platform(architecture="unknown", os="unknown"), user=None)
    image = index([platform_image(BASE), attestation])
    assert evaluate(Gate(non_root=True, exec_form=True), image) == []
    unknown = {"architecture": "unknown", "os": "unknown"}
    attestation_child = {"mediaType": OCI_MANIFEST, "digest": sha("b"), "size": 1, "platform": unknown}
    attestation_child["annotations"] = {"vnd.docker.reference.type": "attestation-manifest"}
    image_child = {"mediaType": OCI_MANIFEST, "digest": sha("a"), "size": 1, "platform": AMD64.to_json()}
    body = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [image_child, attestation_child]}
    top = parse_manifest(canonical(body))
    assert [child.digest for child in runnable_children(top)] == [sha("a")]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (None, "was not available to check"),
        ([1, 2], "config is not a JSON object (it is an array)"),
        ({"config": "root"}, "config's 'config' section is a string, not an object"),
        ({"config": {"User": 0}}, "User is a number, not a string: 0"),
        ({"os": "linux", "architecture": "amd64"}, "User is not set (runs as root)"),  # no 'config': sets nothing
    ],
)
def test_malformed_configs_are_violations(config: object, message: str) -> None:
    image = PlatformImage(AMD64, image_manifest(BASE, {"anything": 1}), config)
    [violation] = evaluate(Gate(non_root=True), ImageEvidence(sha("i"), (image,)))
    assert message in violation.message


def test_evidence_without_images_is_a_violation_per_gate() -> None:
    found = evaluate(Gate(non_root=True, max_layers=3), ImageEvidence(sha("empty"), ()))
    assert [(v.gate, v.message) for v in found] == [
        ("non_root", f"image {sha('empty')} has no image manifest to check"),
        ("max_layers", f"image {sha('empty')} has no image manifest to check"),
    ]


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
_config_like = st.fixed_dictionaries(
    {},
    optional={
        "os": _json | st.just("linux"),
        "architecture": _json | st.just("amd64"),
        "config": _json | st.dictionaries(st.sampled_from(["User", "Entrypoint", "Cmd", "Labels"]), _json),
        "rootfs": _json | st.fixed_dictionaries({"diff_ids": _json}),
    },
)


@PROPERTY
@given(config=_config_like | _json, base_config=_config_like | _json, labels=st.lists(st.text(max_size=5), max_size=3))
def test_property_evaluate_never_raises(config: object, base_config: object, labels: list[str]) -> None:
    every = Gate(
        base="b", non_root=True, exec_form=True, max_layers=1, max_bytes=1, labels=tuple(labels),
        require_artifacts=("signature", "x/y", "?"),
    )  # fmt: skip
    image = PlatformImage(None, image_manifest(BASE, {"c": 1}), config)
    base = PlatformImage(None, image_manifest([BASE[0], sha("z")], {"c": 2}), base_config)
    found = evaluate(every, ImageEvidence(sha("i"), (image,)), ImageEvidence(sha("b"), (base,)))
    assert all(isinstance(v, GateViolation) and v.message for v in found)
    assert not any(v.message.startswith("could not be checked") for v in found)  # no rule hit an exception
    assert {"max_layers", "max_bytes", "require_artifacts"} <= {v.gate for v in found}


# -- end to end with testkit's generated images ----------------------------------------------------------------


def generated_evidence(image: Any) -> ImageEvidence:
    children = tuple(
        PlatformImage(
            Platform(architecture=m.platform.architecture, os=m.platform.os, variant=m.platform.variant)
            if image.is_index else None,
            parse_manifest(m.raw),
            json.loads(m.config.read_bytes()),
        )
        for m in image.manifests
    )  # fmt: skip
    return ImageEvidence(Digest(image.digest), children, is_index=image.is_index)


def test_generated_images_built_from_the_base_pass_and_root_fails() -> None:
    base = make_image([{"etc/os-release": b"ID=prod-osbase\n"}, {"usr/bin/tool": b"#!/bin/sh\n"}], fmt="oci")
    labels = {"maintainer": "team", "org.opencontainers.image.source": "https://git.example/app"}
    app = make_image(
        [{"app/run.sh": b"exec /app/bin\n"}],
        fmt="oci",
        platforms=["linux/amd64", "linux/arm64/v8"],
        base=base.manifests[0].layers,
        settings=ImageSettings(labels=labels, entrypoint=["/run.sh"], cmd=["--serve"]),
    )
    assert evaluate(P_GATE, generated_evidence(app), generated_evidence(base)) == []
    root = make_image([{"app": b"x"}], fmt="oci", settings=ImageSettings(user="0:0", labels=labels))
    found = evaluate(P_GATE, generated_evidence(root), generated_evidence(base))
    assert [v.gate for v in found] == ["base", "non_root"]
    assert found[1].message == "User is 0:0 (uid 0 is root)"
