"""``Origin`` assembles URLs without parsing; whatever it builds must equal what httpx parses."""

from __future__ import annotations

import httpx
from hypothesis import given
from hypothesis import strategies as st

from reconciler.registry.urls import Origin

ORIGINS = ("http://127.0.0.1:5000", "https://registry.example.com", "http://localhost", "https://[::1]:8443")
# safe characters, characters httpx must encode, escapes (valid and not), dot segments, non-ASCII
PIECES = st.sampled_from(
    ["a", "Z", "0", "-", ".", "_", "~", "/", ":", "@", "?", "=", "&", "%3A", "%zz", "%", " ", "#", "é", "/../", "/./"]
)


def same(built: httpx.URL, parsed: httpx.URL) -> None:
    assert str(built) == str(parsed)
    assert built.raw_path == parsed.raw_path
    assert (built.scheme, built.host, built.port, built.netloc) == (
        parsed.scheme,
        parsed.host,
        parsed.port,
        parsed.netloc,
    )


@given(origin=st.sampled_from(ORIGINS), pieces=st.lists(PIECES, max_size=30))
def test_paths_on_the_origin_equal_what_httpx_parses(origin: str, pieces: list[str]) -> None:
    target = "/v2/" + "".join(pieces)
    same(Origin(origin).url(target), httpx.URL(origin + target))


@given(pieces=st.lists(PIECES, max_size=30))
def test_absolute_urls_on_the_origin_and_elsewhere(pieces: list[str]) -> None:
    origin = Origin("http://127.0.0.1:5000")
    rest = "/v2/app/blobs/uploads/1f?" + "".join(pieces)
    same(origin.url("http://127.0.0.1:5000" + rest), httpx.URL("http://127.0.0.1:5000" + rest))
    same(origin.url("https://storage.example.com" + rest), httpx.URL("https://storage.example.com" + rest))


def test_registry_shaped_targets_take_the_assembled_path() -> None:
    origin = Origin("http://127.0.0.1:5000")
    assert origin._fast, "httpx changed: the assembled URLs no longer match (slow path only)"
    url = origin.url("/v2/team/app/blobs/uploads/0a?_state=x%3D&digest=sha256%3A" + "a" * 64)
    assert url.raw_path.startswith(b"/v2/team/app/blobs/uploads/0a?_state=x%3D&digest=")
