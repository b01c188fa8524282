"""Whatever the YAML holds, validation reports problems and never crashes."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from reconciler.manifests import validate_directory
from reconciler.model.problems import Problem

FIELD_NAMES = [
    "version", "registries", "environments", "naming", "retention", "archive", "base_images", "gates", "trust",
    "url", "insecure", "ca_bundle", "max_concurrency", "registry", "prefix", "from", "source", "immutable_tags",
    "allow_tag_moves", "tag", "forbidden_tags", "default", "keep", "max_age_days", "max_bytes", "store",
    "destroy_after_days", "reference", "base", "non_root", "exec_form", "max_layers", "labels", "allowed_signers",
    "environment", "images", "digest", "d", "t", "p", "dev", "team/app",
]  # fmt: skip
VALUES = [
    "https://dev.example.com", "dev", "d", "t", "p", "20261127_01", "20261332_01", "latest", "sha256:" + "a" * 64,
    "500Gi", "dev/base@sha256:" + "b" * 64, "^x$", "(", 1, 0, -1, True, None, 2.5,
]  # fmt: skip

leaves = st.sampled_from(VALUES) | st.text(max_size=5)
trees = st.recursive(
    leaves,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.sampled_from(FIELD_NAMES), children, max_size=5)
    ),
    max_leaves=30,
)


def _dump(document: Any) -> str:
    stream = io.StringIO()
    YAML(typ="safe", pure=True).dump(document, stream)
    return stream.getvalue()


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trees, trees)
def test_validation_never_crashes(config: Any, environment: Any) -> None:
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        (root / "environments").mkdir()
        (root / "reconciler.yaml").write_text(_dump(config))
        (root / "environments" / "t.yaml").write_text(_dump(environment))
        problems = validate_directory(root)
    assert all(isinstance(problem, Problem) for problem in problems)
    assert problems == sorted(problems)
    assert all(p.file == "reconciler.yaml" or p.file.startswith("environments/") for p in problems)
    assert problems, "a random document is never a valid desired state"
