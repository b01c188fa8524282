"""The composer gives the same tree whichever parser produced the events (libyaml or ruamel's own)."""

from __future__ import annotations

import io
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from reconciler.manifests import yamltree
from reconciler.manifests.yamltree import INT, NULL, STR, MappingNode, ScalarNode, SequenceNode, parse_yaml

# NEL, LS and PS are line breaks to libyaml (YAML 1.1) only: positions after them would differ.
texts = st.text(
    st.characters(codec="utf-8", exclude_categories=("Cs", "Cc"), exclude_characters="\x85\u2028\u2029"),
    max_size=20,
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    texts,
    st.sampled_from(["20261127_01", "sha256:" + "a" * 64, "latest", "null", "true", "yes", "0x1F", "1_000", "~"]),
)
documents = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(texts, children, max_size=4),
    max_leaves=25,
)


def _dump(document: Any, flow: bool | None) -> bytes:
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = flow
    stream = io.StringIO()
    yaml.dump(document, stream)
    return stream.getvalue().encode()


@settings(max_examples=60, deadline=None)
@given(documents, st.sampled_from([None, True, False]))
def test_libyaml_and_ruamel_compose_the_same_tree(document: Any, flow: bool | None) -> None:
    assert yamltree._CParser is not None, "ruamel.yaml.clib is not installed (pip install ruamel.yaml.clib)"
    data = _dump(document, flow)
    with_libyaml = parse_yaml("f.yaml", data)
    original = yamltree._CParser
    try:
        yamltree._CParser = None
        with_ruamel = parse_yaml("f.yaml", data)
    finally:
        yamltree._CParser = original
    assert with_libyaml == with_ruamel


def test_scalar_resolution_follows_yaml_1_2() -> None:
    parsed = parse_yaml("f.yaml", b"a: 20261127_01\nb: yes\nc: ~\nd: '5'\ne: 5\n")
    assert isinstance(parsed.root, MappingNode)
    tags = {key.value: value.tag for key, value in parsed.root.value if isinstance(key, ScalarNode)}
    assert tags == {"a": INT, "b": STR, "c": NULL, "d": STR, "e": INT}


def test_sequences_keep_order_and_positions() -> None:
    parsed = parse_yaml("f.yaml", b"- x\n- [y, z]\n")
    assert isinstance(parsed.root, SequenceNode)
    first, second = parsed.root.value
    assert isinstance(first, ScalarNode)
    assert (first.value, first.line, first.column) == ("x", 1, 3)
    assert isinstance(second, SequenceNode)
    assert [(n.line, n.column) for n in second.value] == [(2, 4), (2, 7)]


def test_a_syntax_error_is_reported_from_the_first_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 5 MiB file broken on its last line took 10-13 s: after libyaml failed, the pure-Python parser ran
    again over the whole file. In a file past SECOND_OPINION_BYTES, an error other than libyaml's YAML 1.1
    refusal of ':' in flow scalars comes from the first parse, with its position."""
    from reconciler.manifests import yamltree

    def no_second_parse(*args: object, **kwargs: object) -> object:
        raise AssertionError("the pure-Python parser ran again")

    monkeypatch.setattr(yamltree.YAML, "parse", no_second_parse)
    count = yamltree.SECOND_OPINION_BYTES // 100 + 1
    body = "".join(f'  app{i:06d}:\n    - {{tag: "20261127_01", digest: "sha256:{i:064x}"}}\n' for i in range(count))
    data = f"environment: t\nimages:\n{body}    - {{tag: x\n".encode()
    assert len(data) > yamltree.SECOND_OPINION_BYTES
    [problem] = yamltree.parse_yaml("environments/t.yaml", data).problems
    assert problem.code == "yaml-syntax"
    assert problem.line == 2 + 2 * count + 2


def test_flow_urls_still_parse_as_yaml_1_2() -> None:
    parsed = parse_yaml("reconciler.yaml", b"registries:\n  dev: {url: https://registry-dev.example.com}\n")
    assert parsed.problems == []
