"""Image reference parsing: what users type on the command line and in configs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.model.reference import Reference, is_valid_repository, is_valid_tag

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        ("127.0.0.1:5000/t/payments/api:20261127_01", "127.0.0.1:5000", "t/payments/api", "20261127_01", None),
        (f"registry.example.com/app@{DIGEST}", "registry.example.com", "app", None, DIGEST),
        (f"localhost/app:v1@{DIGEST}", "localhost", "app", "v1", DIGEST),
        ("localhost:5000/a/b/c", "localhost:5000", "a/b/c", None, None),
        ("[::1]:5000/app:1", "[::1]:5000", "app", "1", None),
        ("alpine:3.20", "docker.io", "library/alpine", "3.20", None),
        ("team/app", "docker.io", "team/app", None, None),
        ("reg.example.com:443/a__b/c-d.e:x", "reg.example.com:443", "a__b/c-d.e", "x", None),
    ],
)
def test_parse(text: str, registry: str, repository: str, tag: str | None, digest: str | None) -> None:
    ref = Reference.parse(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (registry, repository, tag, digest)


def test_reference_prefers_digest_and_prints_back() -> None:
    ref = Reference.parse(f"127.0.0.1:5000/app:v1@{DIGEST}")
    assert ref.reference == DIGEST
    assert str(ref) == f"127.0.0.1:5000/app:v1@{DIGEST}"
    assert Reference.parse("127.0.0.1:5000/app:v1").reference == "v1"
    assert Reference.parse("127.0.0.1:5000/app").reference is None
    assert Reference.parse("alpine").api_host == "registry-1.docker.io"


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("", "empty"),
        ("127.0.0.1:5000/App:v1", "bad repository"),
        ("127.0.0.1:5000/app:-v1", "bad tag"),
        ("127.0.0.1:5000/app@sha256:abc", "bad digest"),
        ("127.0.0.1:5000/app//x", "bad repository"),
        ("127.0.0.1:5000/", "bad repository"),
        (" app", "spaces"),
    ],
)
def test_parse_rejects_with_a_reason(text: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint):
        Reference.parse(text)


def test_tag_and_repository_rules() -> None:
    assert is_valid_tag("20261127_01")
    assert not is_valid_tag("x" * 129)
    assert is_valid_repository("a/b-c/d.e_f")
    assert not is_valid_repository("a/B")
    assert not is_valid_repository("a/-b")


_component = st.from_regex(r"[a-z0-9]{1,8}(?:[._-][a-z0-9]{1,8}){0,2}", fullmatch=True)
_tag = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True)


@given(
    components=st.lists(_component, min_size=1, max_size=4),
    tag=st.none() | _tag,
    with_digest=st.booleans(),
)
def test_roundtrip(components: list[str], tag: str | None, with_digest: bool) -> None:
    text = "127.0.0.1:5000/" + "/".join(components)
    if tag is not None:
        text += f":{tag}"
    if with_digest:
        text += f"@{DIGEST}"
    ref = Reference.parse(text)
    assert str(ref) == text
    assert Reference.parse(str(ref)) == ref


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("127.0.0.1:5401", True),
        ("127.0.0.1", True),
        ("localhost:5000", True),
        ("[::1]:5000", True),
        ("registry.example.com:5000", True),
        ("redis:6", False),
        ("nginx:1.25", False),
        ("payments/api:20261127_01", False),
        ("127.0.0.1:5401/team/app:1", False),
        ("app@sha256:" + "a" * 64, False),
    ],
)
def test_bare_registry_addresses_are_told_from_images(text: str, address: bool) -> None:
    from reconciler.model.reference import looks_like_registry_address

    assert looks_like_registry_address(text) is address
