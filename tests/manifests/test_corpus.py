"""The broken-repository corpus: every case under tests/corpus/ is a whole desired-state directory.

Each case's ``expected.txt`` lists every problem ``validate`` must report (file, line, column, code and a
substring of the message) and the test fails on a missing AND on an unexpected problem, all from a
single run over the directory. ``inflate.txt`` (oversized-file) names files the test pads to a size,
so the repository does not carry a 5 MiB file.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from reconciler.manifests import validate_directory, yamltree
from reconciler.model.problems import Problem

CORPUS = Path(__file__).resolve().parent.parent / "corpus"
CASES = sorted(path.name for path in CORPUS.iterdir() if path.is_dir())


@dataclass(frozen=True)
class Expected:
    file: str
    line: str
    column: str
    code: str
    substring: str

    def matches(self, problem: Problem) -> bool:
        return (
            problem.file == self.file
            and self.line in ("*", str(problem.line))
            and self.column in ("*", str(problem.column))
            and problem.code == self.code
            and self.substring in problem.message
        )

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column} {self.code} {self.substring}"


def read_expected(case: Path) -> list[Expected]:
    expected = []
    for raw in (case / "expected.txt").read_text(encoding="utf-8").splitlines():
        if not raw.strip() or raw.startswith("#"):
            continue
        location, code, substring = raw.split(" ", 2)
        file, line, column = location.rsplit(":", 2)
        expected.append(Expected(file, line, column, code, substring))
    return expected


def inflate(case: Path) -> None:
    spec = case / "inflate.txt"
    if not spec.exists():
        return
    for raw in spec.read_text(encoding="utf-8").splitlines():
        if not raw.strip() or raw.startswith("#"):
            continue
        name, size_text = raw.split()
        target = case / name
        data = target.read_bytes()
        size = int(size_text)
        # One long YAML comment: the file stays valid YAML, only its size is wrong.
        target.write_bytes(data + b"#" * (size - len(data) - 1) + b"\n")
        assert target.stat().st_size == size


def test_corpus_has_a_case_for_every_rule() -> None:
    assert len(CASES) >= 30
    codes = {item.code for case in CASES for item in read_expected(CORPUS / case)}
    every_rule = {
        "file-too-large", "file-binary", "file-encoding", "file-empty", "file-missing", "yaml-syntax",
        "yaml-alias", "yaml-tag", "yaml-too-deep", "duplicate-key", "duplicate-image", "duplicate-version",
        "unknown-field", "missing-field", "wrong-type", "bad-value", "bad-digest", "tag-naming", "tag-date",
        "tag-forbidden", "tag-digest-conflict", "unknown-registry", "unknown-environment", "unknown-base-image",
        "from-cycle", "from-missing", "from-forward", "env-file-missing", "environment-mismatch",
        "bad-image-name", "bad-filename", "conflicting-fields", "duplicate-prefix", "no-source",
        "unsupported-version", "bad-name", "duplicate-entry",
    }  # fmt: skip
    assert every_rule <= codes, f"no corpus case for {sorted(every_rule - codes)}"


@pytest.mark.parametrize("parser", ["default", "pure-python"])
@pytest.mark.parametrize("case", CASES)
def test_corpus_case(case: str, parser: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if parser == "pure-python":  # the same verdicts without libyaml (ruamel.yaml.clib not installed)
        monkeypatch.setattr(yamltree, "_CParser", None)
    work = tmp_path / case
    shutil.copytree(CORPUS / case, work)
    inflate(work)
    expected = read_expected(work)

    started = time.perf_counter()
    problems = validate_directory(work)
    elapsed = time.perf_counter() - started

    missing = [str(item) for item in expected if not any(item.matches(problem) for problem in problems)]
    unexpected = [str(problem) for problem in problems if not any(item.matches(problem) for item in expected)]
    assert (missing, unexpected) == ([], []), f"missing: {missing}\nunexpected: {unexpected}"
    assert problems == sorted(problems), "problems must come sorted by file, line, column"
    # Hostile input (billion laughs, deep nesting, 5 MiB) is refused before it costs anything.
    assert elapsed < 1.0, f"{case} took {elapsed:.2f}s"
