"""Referrers (signatures, SBOMs) found and copied with their image, on real registries (CNCF distribution 2.8,
which has no referrers API) and on a small in-memory registry that has one (an httpx.MockTransport)."""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from support.registries import RegistryFactory
from support.skopeo import Skopeo
from typer.testing import CliRunner

from reconciler.cli import app
from reconciler.model.manifest import OCI_INDEX, Manifest, sha256_digest
from reconciler.registry import Copier, CopyReport, RegistryClient
from reconciler.registry.referrercopy import ReferrersCopy, ReferrersReport, copy_referrers
from reconciler.registry.referrers import api_supported, discover, discover_image, referrers_tag
from testkit.artifacts import (
    SPDX_JSON,
    GeneratedArtifact,
    cosign_signature_tag,
    descriptor_of,
    make_artifact,
    make_sbom,
    make_signature_artifact,
    push_artifact,
    push_cosign_signature,
    simple_signing_payload,
)
from testkit.imagegen import OCI_CONFIG, Blob, GeneratedImage, image_for
from testkit.imagepush import push_image
from testkit.localregistry import LocalRegistry

TAG = "20261127_01"
_T = TypeVar("_T")


def run(work: Callable[[], Awaitable[_T]]) -> _T:
    async def main() -> _T:
        return await work()

    return asyncio.run(main())


def sign(key: ec.EllipticCurvePrivateKey, payload: bytes) -> bytes:
    return key.sign(payload, ec.ECDSA(hashes.SHA256()))


@pytest.fixture
def signing_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@dataclass(frozen=True)
class Seeded:
    """An index image in a repository with: an SBOM (tag schema) on it, a fake signature on the SBOM (depth
    2), a fake signature on its amd64 child, and a cosign signature (tag layout)."""

    image: GeneratedImage
    sbom: GeneratedArtifact
    sbom_signature: GeneratedArtifact
    child_signature: GeneratedArtifact
    cosign: GeneratedArtifact

    @property
    def artifacts(self) -> tuple[GeneratedArtifact, ...]:
        return (self.sbom, self.sbom_signature, self.child_signature, self.cosign)


def seed(registry: LocalRegistry, repository: str, key: ec.EllipticCurvePrivateKey) -> Seeded:
    image = image_for("payments/api", TAG, fmt="oci", platforms=("linux/amd64", "linux/arm64"))
    push_image(image, registry.url, repository, TAG)
    sbom = make_sbom(descriptor_of(image.raw, image.media_type), name="payments/api")
    push_artifact(sbom, registry.url, repository)
    sbom_signature = make_signature_artifact(descriptor_of(sbom.raw, sbom.media_type), signer="sbom-signer")
    push_artifact(sbom_signature, registry.url, repository)
    child = image.children[0]
    child_signature = make_signature_artifact(descriptor_of(child.raw, child.media_type), signer="child-signer")
    push_artifact(child_signature, registry.url, repository)
    payload = simple_signing_payload(image.digest, f"{registry.host}/{repository}")
    cosign = push_cosign_signature(
        registry.url, repository, image.digest, signature=sign(key, payload), payload=payload
    )
    return Seeded(image, sbom, sbom_signature, child_signature, cosign)


def copy_with_referrers(
    source_url: str,
    source_repo: str,
    target_url: str,
    target_repo: str,
    digest: str,
    *,
    source_transport: httpx.AsyncBaseTransport | None = None,
    target_transport: httpx.AsyncBaseTransport | None = None,
) -> tuple[CopyReport, list[ReferrersReport]]:
    async def work() -> tuple[CopyReport, list[ReferrersReport]]:
        source = RegistryClient(url=source_url, transport=source_transport)
        target = source if target_url == source_url else RegistryClient(url=target_url, transport=target_transport)
        copier = Copier()
        step = ReferrersCopy(copier, source, source_repo, target, target_repo)
        try:
            report = await copier.copy(
                source=source,
                source_repository=source_repo,
                reference=digest,
                target=target,
                target_repository=target_repo,
                tag=TAG,
                before_tag=step,
            )
        finally:
            await source.aclose()
            await target.aclose()
        return report, step.reports

    return run(work)


def raw_manifest(registry: LocalRegistry, repository: str, reference: str) -> bytes:
    accept = ", ".join((OCI_INDEX, "application/vnd.oci.image.manifest.v1+json"))
    response = httpx.get(f"{registry.url}/v2/{repository}/manifests/{reference}", headers={"Accept": accept})
    response.raise_for_status()
    return response.content


# ---------------------------------------------------------------------------------------------- discovery


def test_discovery_on_distribution_28_reads_the_tag_schema_and_cosign_tags(
    registry: LocalRegistry, signing_key: ec.EllipticCurvePrivateKey
) -> None:
    seeded = seed(registry, "d/app", signing_key)
    image = seeded.image

    async def work() -> tuple[Any, ...]:
        async with RegistryClient(url=registry.url) as client:
            top = await discover(client, "d/app", image.digest)
            before = client.stats.requests
            sboms = await discover(client, "d/app", image.digest, artifact_type=SPDX_JSON)
            second_cost = client.stats.requests - before
            manifest = await client.get_manifest("d/app", image.digest)
            everything = await discover_image(client, "d/app", manifest)
            shallow = await discover_image(client, "d/app", manifest, depth=1)
            tags = await client.list_tags("d/app")  # as the engine's observation has them
            before = client.stats.requests
            bare = await discover(client, "d/app", image.children[1].digest, tags=tags)
            assert (bare, client.stats.requests - before) == ([], 0)  # nothing attached: nothing asked
            return top, sboms, second_cost, everything, shallow, api_supported(client)

    top, sboms, second_cost, everything, shallow, api = run(work)

    by_digest = {r.digest: r for r in top}
    assert set(by_digest) == {seeded.sbom.digest, seeded.cosign.digest}
    sbom = by_digest[seeded.sbom.digest]
    assert (sbom.via, sbom.artifact_type, sbom.tag, sbom.size) == ("tag-schema", SPDX_JSON, None, seeded.sbom.size)
    assert sbom.annotations == seeded.sbom.annotations
    assert sbom.subject == image.digest
    cosign = by_digest[seeded.cosign.digest]
    assert (cosign.via, cosign.tag, cosign.kind) == ("cosign-tag", cosign_signature_tag(image.digest), "signature")
    assert cosign.artifact_type == OCI_CONFIG  # cosign's manifests have no artifactType: the config's type
    assert sboms == [sbom]
    assert api is False  # 2.8 answered "404 page not found": asked once, remembered
    assert second_cost == 3  # no API probe any more: the tag listing, the index, the cosign manifest
    assert {(r.digest, r.subject) for r in everything} == {
        (seeded.sbom.digest, image.digest),
        (seeded.cosign.digest, image.digest),
        (seeded.child_signature.digest, image.children[0].digest),
        (seeded.sbom_signature.digest, seeded.sbom.digest),
    }
    assert {r.digest for r in shallow} == {seeded.sbom.digest, seeded.cosign.digest, seeded.child_signature.digest}


def test_an_image_without_referrers_costs_at_most_two_more_requests(registry_factory: RegistryFactory) -> None:
    """The issue's benchmark: referrers add at most 2 requests per image when none exist (here exactly 2 for
    the first image of a client, whose registry's API support is not known yet, and 1 after that)."""
    source, target = registry_factory(name="src"), registry_factory(name="dst")
    images = [
        image_for("multi", TAG, fmt="oci", platforms=("linux/amd64", "linux/arm64")),
        image_for("one", TAG),
        image_for("two", TAG, fmt="oci"),
    ]
    for number, image in enumerate(images):
        push_image(image, source.url, f"d/app{number}", TAG)

    def cost(referrers: bool) -> list[int]:
        async def work() -> list[int]:
            async with RegistryClient(url=source.url) as src, RegistryClient(url=target.url) as dst:
                copier, counts = Copier(), []
                for number, image in enumerate(images):
                    repository = f"{'with' if referrers else 'without'}/app{number}"
                    step = ReferrersCopy(copier, src, f"d/app{number}", dst, repository) if referrers else None
                    before = src.stats.requests + dst.stats.requests
                    await copier.copy(
                        source=src,
                        source_repository=f"d/app{number}",
                        reference=image.digest,
                        target=dst,
                        target_repository=repository,
                        tag=TAG,
                        before_tag=step,
                    )
                    counts.append(src.stats.requests + dst.stats.requests - before)
                    assert step is None or step.reports[0].found == []
                return counts

        return run(work)

    extra = [with_ - without for with_, without in zip(cost(True), cost(False), strict=True)]
    assert extra == [2, 1, 1]


# ---------------------------------------------------------------------------------------------- copy on 2.8


def test_copy_puts_every_referrer_in_the_target_before_the_tag_and_merges_its_index(
    registry_factory: RegistryFactory, skopeo: Skopeo, signing_key: ec.EllipticCurvePrivateKey
) -> None:
    d, t = registry_factory(name="d"), registry_factory(name="t")
    seeded = seed(d, "d/app", signing_key)
    image = seeded.image
    # Someone attached a scan result to this image in t already: it must survive the copy.
    scan = make_artifact(
        subject=descriptor_of(image.raw, image.media_type),
        artifact_type="application/vnd.example.scan+json",
        layers=[Blob.from_bytes(b'{"vulnerabilities":0}', "application/json")],
    )
    push_artifact(scan, t.url, "t/app")
    mark = t.mark()

    report, reports = copy_with_referrers(d.url, "d/app", t.url, "t/app", image.digest)

    assert report.digest == image.digest
    [referrers] = reports
    assert set(referrers.copied) == {a.digest for a in seeded.artifacts}
    assert (referrers.skipped, referrers.conflicts, referrers.target_api) == ([], [], False)
    assert referrers.cosign_tags_written == [cosign_signature_tag(image.digest)]
    child = image.children[0]
    assert sorted(referrers.indexes_written) == sorted(
        referrers_tag(d) for d in (image.digest, child.digest, seeded.sbom.digest)
    )
    for artifact in seeded.artifacts:  # byte-exact, as an independent client reads them
        assert skopeo.inspect_raw(f"docker://{t.host}/t/app@{artifact.digest}") == artifact.raw
    assert skopeo.inspect_raw(f"docker://{t.host}/t/app:{cosign_signature_tag(image.digest)}") == seeded.cosign.raw
    merged = json.loads(skopeo.inspect_raw(f"docker://{t.host}/t/app:{referrers_tag(image.digest)}"))
    assert [entry["digest"] for entry in merged["manifests"]] == [scan.digest, seeded.sbom.digest]
    assert merged["manifests"][1] == seeded.sbom.descriptor()
    for subject in (child.digest, seeded.sbom.digest):  # t had no index for these: the source's, as it is
        assert raw_manifest(t, "t/app", referrers_tag(subject)) == raw_manifest(d, "d/app", referrers_tag(subject))

    writes = [r for r in t.requests_since(mark) if r.method in ("PUT", "POST", "PATCH")]
    assert writes[-1].kind == "manifest"
    assert writes[-1].path.endswith(f"/manifests/{TAG}")
    referrer_refs = {a.digest for a in seeded.artifacts if a is not seeded.cosign}
    referrer_refs |= {cosign_signature_tag(image.digest), *map(referrers_tag, (image.digest, child.digest))}
    referrer_refs.add(referrers_tag(seeded.sbom.digest))
    put_refs = [r.path.rsplit("/", 1)[1] for r in writes if r.kind == "manifest" and r.method == "PUT"]
    assert referrer_refs <= set(put_refs[:-1])  # every referrer and index went in before the tag
    assert put_refs.index(TAG) == len(put_refs) - 1


def test_a_second_copy_writes_nothing(
    registry_factory: RegistryFactory, signing_key: ec.EllipticCurvePrivateKey
) -> None:
    d, t = registry_factory(name="d"), registry_factory(name="t")
    seeded = seed(d, "d/app", signing_key)
    copy_with_referrers(d.url, "d/app", t.url, "t/app", seeded.image.digest)
    mark = t.mark()

    async def again() -> ReferrersReport:
        async with RegistryClient(url=d.url) as src, RegistryClient(url=t.url) as dst:
            manifest = await src.get_manifest("d/app", seeded.image.digest)
            return await copy_referrers(
                Copier(),
                source=src,
                source_repository="d/app",
                target=dst,
                target_repository="t/app",
                digest=manifest.digest,
                manifest=manifest,
            )

    report = run(again)

    assert report.copied == []
    assert set(report.already_present) == {a.digest for a in seeded.artifacts}
    assert report.indexes_written == []
    assert report.cosign_tags_written == []
    assert {r.method for r in t.requests_since(mark)} <= {"GET", "HEAD"}


def test_a_stale_tag_schema_entry_is_skipped_not_fatal(
    registry_factory: RegistryFactory, signing_key: ec.EllipticCurvePrivateKey
) -> None:
    d, t = registry_factory(name="d"), registry_factory(name="t")
    image = image_for("app", TAG, fmt="oci")
    push_image(image, d.url, "d/app", TAG)
    subject = descriptor_of(image.raw, image.media_type)
    gone, kept = make_sbom(subject, name="gone"), make_signature_artifact(subject)
    push_artifact(gone, d.url, "d/app")
    push_artifact(kept, d.url, "d/app")
    assert httpx.delete(f"{d.url}/v2/d/app/manifests/{gone.digest}").status_code == 202  # the index still lists it

    report, [referrers] = copy_with_referrers(d.url, "d/app", t.url, "t/app", image.digest)

    assert report.digest == image.digest
    assert referrers.skipped == [(gone.digest, "listed, but gone from the source")]
    assert referrers.copied == [kept.digest]
    index = json.loads(raw_manifest(t, "t/app", referrers_tag(image.digest)))
    assert [entry["digest"] for entry in index["manifests"]] == [kept.digest]


def test_a_cosign_tag_with_signatures_the_source_lacks_is_kept(
    registry_factory: RegistryFactory, signing_key: ec.EllipticCurvePrivateKey
) -> None:
    d, t = registry_factory(name="d"), registry_factory(name="t")
    image = image_for("app", TAG, fmt="oci")
    push_image(image, d.url, "d/app", TAG)
    payload = simple_signing_payload(image.digest, f"{d.host}/d/app")
    ours = push_cosign_signature(d.url, "d/app", image.digest, signature=sign(signing_key, payload), payload=payload)
    other_key = ec.generate_private_key(ec.SECP256R1())  # t's own signer, same payload, another signature
    their_signature = sign(other_key, payload)  # ECDSA signatures are randomised: made once, pushed twice
    theirs = push_cosign_signature(t.url, "t/app", image.digest, signature=their_signature, payload=payload)
    sig_tag = cosign_signature_tag(image.digest)

    _, [first] = copy_with_referrers(d.url, "d/app", t.url, "t/app", image.digest)

    assert len(first.conflicts) == 1
    assert sig_tag in first.conflicts[0]
    assert raw_manifest(t, "t/app", sig_tag) == theirs.raw  # never silently replaced
    assert ours.digest != theirs.digest

    # d gains t's signature too (cosign appends a layer): d's manifest now holds all of t's, so it replaces it.
    # (The image is in t already, so Copier.copy would skip its before_tag step: copy the referrers directly.)
    both = push_cosign_signature(d.url, "d/app", image.digest, signature=their_signature, payload=payload)

    async def again() -> ReferrersReport:
        async with RegistryClient(url=d.url) as src, RegistryClient(url=t.url) as dst:
            return await copy_referrers(
                Copier(),
                source=src,
                source_repository="d/app",
                target=dst,
                target_repository="t/app",
                digest=image.digest,
            )

    second = run(again)
    assert second.conflicts == []
    assert second.cosign_tags_written == [sig_tag]
    assert raw_manifest(t, "t/app", sig_tag) == both.raw


def test_a_failing_before_tag_step_leaves_no_tag_and_an_existing_image_skips_it(
    registry_factory: RegistryFactory,
) -> None:
    d, t = registry_factory(name="d"), registry_factory(name="t")
    image = image_for("app", TAG, platforms=("linux/amd64", "linux/arm64"))
    push_image(image, d.url, "d/app", TAG)
    seen: list[Manifest] = []

    async def refuse(manifest: Manifest) -> None:
        seen.append(manifest)
        raise RuntimeError("referrers could not be copied")

    async def copy(step: Callable[[Manifest], Awaitable[None]]) -> CopyReport:
        async with RegistryClient(url=d.url) as src, RegistryClient(url=t.url) as dst:
            return await Copier().copy(
                source=src,
                source_repository="d/app",
                reference=image.digest,
                target=dst,
                target_repository="t/app",
                tag=TAG,
                before_tag=step,
            )

    with pytest.raises(RuntimeError):
        run(lambda: copy(refuse))
    assert [m.digest for m in seen] == [image.digest]  # the top manifest, once, children already in place
    assert httpx.head(f"{t.url}/v2/t/app/manifests/{TAG}").status_code == 404
    assert all(httpx.head(f"{t.url}/v2/t/app/manifests/{c.digest}").status_code == 200 for c in image.children)

    async def record(manifest: Manifest) -> None:
        seen.append(manifest)

    run(lambda: copy(record))
    assert len(seen) == 2
    assert run(lambda: copy(record)).already_present is True
    assert len(seen) == 2  # nothing written, nothing to place first


def test_the_chain_d_t_s1_s2_p_keeps_every_artifact_and_the_signature_verifies_in_p(
    registry_factory: RegistryFactory, signing_key: ec.EllipticCurvePrivateKey
) -> None:
    dev, test, pre, prod = (registry_factory(name=name) for name in ("dev", "test", "pre", "prod"))
    seeded = seed(dev, "d/payments/api", signing_key)
    image = seeded.image
    hops = [
        (dev, "d/payments/api", test, "t/payments/api"),
        (test, "t/payments/api", pre, "s1/payments/api"),
        (pre, "s1/payments/api", pre, "s2/payments/api"),  # same registry: mounts
        (pre, "s2/payments/api", prod, "p/payments/api"),
    ]
    for source, source_repo, target, target_repo in hops:
        _, [report] = copy_with_referrers(source.url, source_repo, target.url, target_repo, image.digest)
        assert set(report.copied) == {a.digest for a in seeded.artifacts}, (target_repo, report)

    async def found(registry: LocalRegistry, repository: str) -> set[tuple[str, str, str, str | None]]:
        async with RegistryClient(url=registry.url) as client:
            manifest = await client.get_manifest(repository, TAG)
            referrers = await discover_image(client, repository, manifest)
            return {(r.digest, r.subject, r.via, r.artifact_type) for r in referrers}

    assert run(lambda: found(prod, "p/payments/api")) == run(lambda: found(dev, "d/payments/api"))
    for subject in (image.digest, image.children[0].digest, seeded.sbom.digest):  # indexes travel as they are
        assert raw_manifest(prod, "p/payments/api", referrers_tag(subject)) == raw_manifest(
            dev, "d/payments/api", referrers_tag(subject)
        )

    # What `cosign verify --key` checks, done by hand in p: the signature over the payload, and the payload
    # naming the digest p's tag resolves to.
    assert sha256_digest(raw_manifest(prod, "p/payments/api", TAG)) == image.digest
    signature_manifest = json.loads(raw_manifest(prod, "p/payments/api", cosign_signature_tag(image.digest)))
    [layer] = signature_manifest["layers"]
    payload = httpx.get(f"{prod.url}/v2/p/payments/api/blobs/{layer['digest']}").content
    signature = base64.b64decode(layer["annotations"]["dev.cosignproject.cosign/signature"])
    signing_key.public_key().verify(signature, payload, ec.ECDSA(hashes.SHA256()))  # raises when it does not verify
    assert json.loads(payload)["critical"]["image"]["docker-manifest-digest"] == image.digest


# ---------------------------------------------------------------------------------------------- with the API


class ApiRegistry:
    """An in-memory registry WITH the referrers API (OCI 1.1): indexes subject-bearing manifests as they are
    pushed, answers ``GET /v2/<name>/referrers/<digest>`` (``?artifactType=`` applied), ``NAME_UNKNOWN`` for
    a repository it does not know. Just enough of the distribution API for the client and the copier."""

    _PATH = re.compile(r"^/v2/(?P<name>.+?)/(?P<kind>manifests|blobs/uploads|blobs|tags|referrers)(?:/(?P<rest>.*))?$")

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.manifests: dict[tuple[str, str], tuple[bytes, str]] = {}
        self.tags: dict[tuple[str, str], str] = {}
        self.referrers: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.requests: list[tuple[str, str]] = []

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def repositories(self) -> set[str]:
        return {name for name, _ in self.manifests}

    def put(self, name: str, raw: bytes, media_type: str, tag: str | None = None) -> str:
        digest = sha256_digest(raw)
        self.manifests[(name, digest)] = (raw, media_type)
        if tag is not None:
            self.tags[(name, tag)] = digest
        document = json.loads(raw)
        if document.get("subject"):
            entry = {"mediaType": media_type, "digest": digest, "size": len(raw)}
            entry["artifactType"] = document.get("artifactType") or document["config"]["mediaType"]
            if document.get("annotations"):
                entry["annotations"] = document["annotations"]
            listed = self.referrers.setdefault((name, document["subject"]["digest"]), [])
            if entry not in listed:
                listed.append(entry)
        return digest

    def push(self, name: str, artifact: GeneratedArtifact | GeneratedImage, tag: str | None = None) -> None:
        manifests = (
            [(m.raw, m.media_type, m.blobs) for m in artifact.children] if isinstance(artifact, GeneratedImage) else []
        )
        blobs = artifact.blobs.values() if isinstance(artifact, GeneratedImage) else artifact.blobs
        for blob in blobs:
            self.blobs[blob.digest] = blob.read_bytes()
        for raw, media_type, _ in manifests:
            self.put(name, raw, media_type)
        self.put(name, artifact.raw, artifact.media_type, tag)

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append((request.method, request.url.path))
        if request.url.path in ("/v2/", "/v2"):
            return httpx.Response(200, json={})
        match = self._PATH.match(request.url.path)
        if match is None:
            return httpx.Response(404, text="404 page not found")
        name, kind, rest = match["name"], match["kind"], match["rest"] or ""
        unknown = httpx.Response(
            404, json={"errors": [{"code": "NAME_UNKNOWN", "message": "repository name not known"}]}
        )
        if kind == "referrers":
            if name not in self.repositories():
                return unknown
            listed = self.referrers.get((name, rest), [])
            wanted, headers = request.url.params.get("artifactType"), {"Content-Type": OCI_INDEX}
            if wanted:
                listed, headers["OCI-Filters-Applied"] = (
                    [e for e in listed if e["artifactType"] == wanted],
                    "artifactType",
                )
            return httpx.Response(
                200, headers=headers, json={"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": listed}
            )
        if kind == "tags":
            if name not in self.repositories():
                return unknown
            return httpx.Response(200, json={"name": name, "tags": sorted(tag for n, tag in self.tags if n == name)})
        if kind == "manifests":
            return self._manifest(request, name, rest)
        if kind == "blobs":
            if rest not in self.blobs:
                return httpx.Response(404, json={"errors": [{"code": "BLOB_UNKNOWN"}]})
            body = b"" if request.method == "HEAD" else self.blobs[rest]
            return httpx.Response(200, headers={"Content-Length": str(len(self.blobs[rest]))}, content=body)
        if request.method == "POST":  # blobs/uploads: a mount of a known blob, else a session
            if request.url.params.get("mount") in self.blobs:
                return httpx.Response(201)
            return httpx.Response(202, headers={"Location": f"/v2/{name}/blobs/uploads/session"})
        if request.method == "PUT":
            self.blobs[request.url.params["digest"]] = request.content
            return httpx.Response(201)
        return httpx.Response(204)

    def _manifest(self, request: httpx.Request, name: str, reference: str) -> httpx.Response:
        if request.method == "PUT":
            digest = self.put(
                name, request.content, request.headers["content-type"], None if ":" in reference else reference
            )
            subject = json.loads(request.content).get("subject")
            headers = {"Docker-Content-Digest": digest} | ({"OCI-Subject": subject["digest"]} if subject else {})
            return httpx.Response(201, headers=headers)
        digest = reference if ":" in reference else self.tags.get((name, reference), "")
        if (name, digest) not in self.manifests:
            return httpx.Response(404, json={"errors": [{"code": "MANIFEST_UNKNOWN"}]})
        raw, media_type = self.manifests[(name, digest)]
        headers = {"Content-Type": media_type, "Docker-Content-Digest": digest, "Content-Length": str(len(raw))}
        return httpx.Response(200, headers=headers, content=b"" if request.method == "HEAD" else raw)


API_URL = "http://127.0.0.1:9"  # never dialled: the MockTransport answers


def test_discovery_uses_the_referrers_api_where_there_is_one() -> None:
    fake = ApiRegistry()
    image, bare = image_for("app", TAG, fmt="oci"), image_for("bare", TAG, fmt="oci")
    fake.push("d/app", image, TAG)
    fake.push("d/bare", bare, TAG)
    sbom = make_sbom(descriptor_of(image.raw, image.media_type), name="app")
    signature = make_signature_artifact(descriptor_of(image.raw, image.media_type))
    fake.push("d/app", sbom)
    fake.push("d/app", signature)

    async def work() -> tuple[Any, ...]:
        async with RegistryClient(url=API_URL, transport=fake.transport()) as client:
            everything = await discover(client, "d/app", image.digest)
            sboms = await discover(client, "d/app", image.digest, artifact_type=SPDX_JSON)
            nowhere = await discover(client, "d/nothing-here", image.digest)  # NAME_UNKNOWN: says nothing
            known_after_unknown = api_supported(client)
            before = client.stats.requests
            none = await discover(client, "d/bare", bare.digest)
            return everything, sboms, nowhere, known_after_unknown, none, client.stats.requests - before

    everything, sboms, nowhere, known, none, bare_cost = run(work)

    assert {(r.digest, r.via, r.artifact_type) for r in everything} == {
        (sbom.digest, "referrers-api", SPDX_JSON),
        (signature.digest, "referrers-api", signature.artifact_type),
    }
    assert [r.digest for r in sboms] == [sbom.digest]
    assert ("GET", f"/v2/d/app/referrers/{image.digest}") in fake.requests
    assert nowhere == []
    assert known is True
    assert none == []
    assert bare_cost == 2


def test_copy_from_a_registry_with_the_api_into_28_builds_the_tag_schema_index(
    registry: LocalRegistry, skopeo: Skopeo
) -> None:
    fake = ApiRegistry()
    image = image_for("app", TAG, fmt="oci", platforms=("linux/amd64", "linux/arm64"))
    fake.push("d/app", image, TAG)
    sbom = make_sbom(descriptor_of(image.raw, image.media_type), name="app")
    fake.push("d/app", sbom)

    _, [report] = copy_with_referrers(
        API_URL, "d/app", registry.url, "t/app", image.digest, source_transport=fake.transport()
    )

    assert [(r.digest, r.via) for r in report.found] == [(sbom.digest, "referrers-api")]
    assert report.target_api is False
    assert report.indexes_written == [referrers_tag(image.digest)]
    assert skopeo.inspect_raw(f"docker://{registry.host}/t/app@{sbom.digest}") == sbom.raw
    index = json.loads(skopeo.inspect_raw(f"docker://{registry.host}/t/app:{referrers_tag(image.digest)}"))
    assert index["manifests"] == [fake.referrers[("d/app", image.digest)][0]]  # the descriptor as the API listed it


def test_copy_into_a_registry_with_the_api_writes_no_tag_schema_index(
    registry: LocalRegistry, signing_key: ec.EllipticCurvePrivateKey
) -> None:
    seeded = seed(registry, "d/app", signing_key)
    fake = ApiRegistry()

    _, [report] = copy_with_referrers(
        registry.url, "d/app", API_URL, "p/app", seeded.image.digest, target_transport=fake.transport()
    )

    assert report.target_api is True
    assert report.indexes_written == []
    assert {a.digest for a in seeded.artifacts} <= {digest for name, digest in fake.manifests if name == "p/app"}
    assert sorted(tag for name, tag in fake.tags if name == "p/app") == sorted(
        [TAG, cosign_signature_tag(seeded.image.digest)]
    )
    assert [e["digest"] for e in fake.referrers[("p/app", seeded.image.digest)]] == [seeded.sbom.digest]
    assert [e["digest"] for e in fake.referrers[("p/app", seeded.sbom.digest)]] == [seeded.sbom_signature.digest]
    assert fake.manifests[("p/app", seeded.cosign.digest)][0] == seeded.cosign.raw


def test_plan_shows_the_referrers_that_travel_and_apply_reports_the_ones_it_copied(
    registry: LocalRegistry, signing_key: ec.EllipticCurvePrivateKey, tmp_path: Path
) -> None:
    """Issue #13: plan shows them (kind and digest per copy), apply copies them and its results say so."""
    seeded = seed(registry, "d/payments/api", signing_key)
    root = tmp_path / "state"
    (root / "environments").mkdir(parents=True)
    (root / "reconciler.yaml").write_text(
        f'version: 1\nregistries:\n  dev: {{url: "{registry.url}"}}\n'
        "environments:\n  d: {registry: dev, prefix: d, source: true}\n  t: {registry: dev, prefix: t, from: d}\n"
    )
    (root / "environments" / "d.yaml").write_text("environment: d\nimages: {}\n")
    (root / "environments" / "t.yaml").write_text(
        f'environment: t\nimages:\n  payments/api:\n    - {{tag: "{TAG}", digest: "{seeded.image.digest}"}}\n'
    )
    planned = CliRunner().invoke(app, ["plan", str(root), "-o", "json"])
    assert planned.exit_code == 0, planned.output
    [action] = json.loads(planned.output)["actions"]
    shown = {item.rsplit(" ", 1)[1] for item in action["referrers"]}
    # the image's own referrers (the SBOM on the index, the cosign signature); the SBOM's signature and the
    # child's are found when the copy walks them
    assert {seeded.sbom.digest, seeded.cosign.digest} <= shown
    assert any(item.startswith("signature ") for item in action["referrers"])
    text = CliRunner().invoke(app, ["plan", str(root)])
    assert "with " in text.output
    assert seeded.sbom.digest[:19] in text.output
    applied = CliRunner().invoke(app, ["apply", str(root), "-o", "json", "--audit-log", str(tmp_path / "a.jsonl")])
    assert applied.exit_code == 0, applied.output
    [result] = json.loads(applied.output)["results"]
    assert {a.digest for a in seeded.artifacts} <= set(result["referrers"])


def test_copy_command_takes_referrers_along_only_when_asked(
    registry: LocalRegistry, signing_key: ec.EllipticCurvePrivateKey
) -> None:
    seeded = seed(registry, "d/payments/api", signing_key)
    source = f"{registry.host}/d/payments/api:{TAG}"
    plain = CliRunner().invoke(app, ["copy", source, f"{registry.host}/plain/api", "-o", "json"])
    assert plain.exit_code == 0, plain.output
    [image] = json.loads(plain.output)["images"]
    assert "referrers" not in image
    asked = CliRunner().invoke(app, ["copy", source, f"{registry.host}/with/api", "--referrers", "-o", "json"])
    assert asked.exit_code == 0, asked.output
    [image] = json.loads(asked.output)["images"]
    assert {a.digest for a in seeded.artifacts} <= set(image["referrers"])
    assert raw_manifest(registry, "with/api", cosign_signature_tag(seeded.image.digest))
