"""The controller image's Dockerfile, statically (no container engine is needed or used).

Three judges: the real hadolint (zero findings of any level), the project's own linter (zero findings with
the defaults, as ``reconciler lint-dockerfile Dockerfile`` at the root reports, and zero with the stricter
``controller-lint.yaml`` beside this file, which makes every rule an error and approves the bases), and
the structural checks below for what neither covers: digest pinning of every base, the same base for both
stages, a final stage with no build tools and no test kit, the run user created with a fixed uid and set
once, the start command, no HEALTHCHECK, and the build context (.dockerignore).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from support.hadolint import hadolint_binary
from typer.testing import CliRunner

from reconciler import __version__
from reconciler.cli import app

from .helpers import (
    DOCKERFILE,
    DOCKERIGNORE,
    ROOT,
    RUN_GID,
    RUN_UID,
    STRICT_LINT_CONFIG,
    arg_default,
    dockerfile,
    final_stage,
    instructions,
    pairs,
    pyproject,
)

DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")
BUILD_TOOLS = re.compile(
    r"^(gcc|g\+\+|cpp|clang|make|cmake|build-essential|.*-dev|cargo|rustc|golang.*|git-core|setuptools|wheel"
    r"|build|hatchling|maturin|pip-tools)([=<>].*)?$"
)
"""Package names (apt or pip) that are build tools: none may be installed in the final stage."""


def _words(stage_index: int | None = None) -> list[list[str]]:
    """``[command, *arguments]`` of every simple command RUN in a stage (the final one by default)."""
    stage = final_stage() if stage_index is None else dockerfile().stages[stage_index]
    return [[c.name, *c.arguments] for run in instructions(stage, "RUN") for c in run.commands]


# ---- the two linters -------------------------------------------------------------------------------------


def test_hadolint_finds_nothing(tmp_path: Path) -> None:
    # an empty HOME and working directory: no user's or repository's .hadolint.yaml changes the rules
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)}
    command = [str(hadolint_binary()), "--format", "json", "--no-fail", str(DOCKERFILE)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path, env=env, check=False, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def _lint(*options: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(app, ["lint-dockerfile", "--output", "json", *options, "Dockerfile"])
    assert result.exit_code == 0, result.output
    document: dict[str, object] = json.loads(result.stdout)
    return document


def test_own_linter_finds_nothing_with_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    document = _lint(monkeypatch=monkeypatch)
    assert document["findings"] == []
    assert document["status"] == "clean"


def test_own_linter_finds_nothing_with_every_rule_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    document = _lint("--config", str(STRICT_LINT_CONFIG), monkeypatch=monkeypatch)
    assert document["findings"] == []


def test_the_one_suppression_is_the_run_script_rule() -> None:
    """Seed 4.3 (start through /run.sh) is deliberately not followed, with its reason (docs/deploy.md); no
    other rule may be silenced in this file."""
    text = DOCKERFILE.read_text(encoding="utf-8")
    pragmas = re.findall(r"^#\s*(?:reconciler-lint|hadolint)\b.*$", text, flags=re.MULTILINE)
    assert pragmas == ["# reconciler-lint ignore=RL203"]
    (entrypoint,) = instructions(final_stage(), "ENTRYPOINT")
    lines = text.splitlines()
    assert lines[entrypoint.line - 2] == pragmas[0], "the pragma must stand right above ENTRYPOINT"


# ---- bases -----------------------------------------------------------------------------------------------


def test_every_base_is_pinned_by_version_and_digest() -> None:
    for stage in dockerfile().stages:
        base = stage.base
        if stage.parent is not None:
            continue  # FROM an earlier stage
        assert base.resolved, base.written
        assert base.tag, base.written
        assert "latest" not in base.tag.split("-"), base.written
        assert re.match(r"^\d+\.\d+\.\d+-", base.tag), f"{base.written}: pin the full version (3.12.12-...)"
        assert base.digest, f"{base.written}: not pinned by digest"
        assert DIGEST.match(base.digest), base.digest


def test_no_frontend_is_pulled_by_a_floating_tag() -> None:
    """A ``# syntax=`` directive makes BuildKit pull that frontend image: it must be pinned like a base."""
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        directive = re.match(r"^#\s*syntax\s*=\s*(\S+)", line, flags=re.IGNORECASE)
        if directive:
            assert "@sha256:" in directive[1], f"{directive[1]}: pin the frontend by digest, or drop the line"


def test_both_stages_use_the_same_official_python_base() -> None:
    """Wheels with compiled parts are built for one interpreter: the image must run that same interpreter."""
    build, final = dockerfile().stages[0].base, final_stage().base
    assert build.text == final.text
    assert final.name in {"python", "docker.io/library/python"}
    major, minor = (int(part) for part in final.tag.split("-")[0].split(".")[:2])  # type: ignore[union-attr]
    required = re.match(r">=(\d+)\.(\d+)", pyproject()["project"]["requires-python"])
    assert required
    assert (major, minor) >= (int(required[1]), int(required[2]))
    labels = pairs(final_stage(), "LABEL")
    assert labels["org.opencontainers.image.base.digest"] == final.digest
    assert labels["org.opencontainers.image.base.name"].endswith(f"{final.name}:{final.tag}")


# ---- stages ----------------------------------------------------------------------------------------------


def test_multi_stage_build_from_the_source_tree() -> None:
    stages = dockerfile().stages
    assert len(stages) == 2
    build, final = stages
    assert build.alias == "build"
    assert final.alias is None
    assert final.parent is None
    sources = [word for copy in instructions(build, "COPY") for word in copy.arguments[:-1]]
    assert sorted(sources) == ["README.md", "pyproject.toml", "reconciler"]
    wheel = [w for w in _words(0) if w[:2] == ["pip", "wheel"]]
    assert any("--no-deps" in w and w[-1] == "." for w in wheel), "the reconciler wheel, from the tree"
    assert any("--only-binary=:all:" in w for w in wheel), "dependencies as binary wheels only"
    assert all("--no-cache-dir" in w for w in wheel)


def test_final_stage_installs_only_the_wheels_and_no_build_tools() -> None:
    final = final_stage()
    assert not instructions(final, "COPY"), "nothing copied in"
    assert not instructions(final, "ADD"), "nothing added"
    mounted = [flag for run in instructions(final, "RUN") for flag in run.flags if flag.startswith("--mount=")]
    assert mounted == ["--mount=type=bind,from=build,source=/wheels,target=/wheels"]
    installs = [w for w in _words() if w[:2] == ["pip", "install"]]
    assert len(installs) == 1
    (install,) = installs
    assert {"--no-cache-dir", "--no-index", "--find-links=/wheels"} <= set(install)
    assert install[-1] == "reconciler==${RECONCILER_VERSION}", "only the runtime, at this version"
    assert ["pip", "uninstall", "--yes", "pip"] in _words(), "no installer left in the image"
    assert not [w for w in _words() if w[:2] == ["pip", "wheel"]]
    apt = [w for w in _words() if w[:2] == ["apt-get", "install"]]
    assert len(apt) == 1
    packages = [word.split("=", 1)[0] for word in apt[0][2:] if not word.startswith("-")]
    assert packages == ["git", "openssh-client"]
    assert "--no-install-recommends" in apt[0]
    for word in (w for words in _words() for w in words[2:]):
        assert not BUILD_TOOLS.match(word) or word.startswith("-"), f"build tool in the final stage: {word}"


def test_no_test_kit_or_tests_reach_the_image() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    for stage in dockerfile().stages:
        for copy in instructions(stage, "COPY") + instructions(stage, "ADD"):
            assert not {"testkit", "tests", "bench", "examples", "."} & set(copy.arguments[:-1]), copy.text
    assert "testkit" not in "".join(i.text for s in dockerfile().stages for i in s.instructions)
    assert "[test]" not in text
    assert "[dev]" not in text


def test_apt_pins_versions_in_env_and_removes_its_lists_in_the_same_run() -> None:
    env = pairs(final_stage(), "ENV")
    for run in instructions(final_stage(), "RUN"):
        words = [[c.name, *c.arguments] for c in run.commands]
        if ["apt-get", "update"] not in words:
            continue
        assert ["rm", "-rf", "/var/lib/apt/lists/*"] in words, "apt lists removed in the same RUN"
        (install,) = [w for w in words if w[:2] == ["apt-get", "install"]]
        for package in (w for w in install[2:] if not w.startswith("-")):
            name, _, version = package.partition("=")
            variable = re.fullmatch(r"\$\{(\w+)\}", version)
            assert variable, f"{name}: pin the version in an ENV (seed 4)"
            assert env.get(variable[1]), f"{name}: ${{{variable[1]}}} is not an ENV of the stage"


# ---- the runtime contract --------------------------------------------------------------------------------


def test_runs_as_a_created_non_root_user_set_once() -> None:
    final = final_stage()
    (user,) = [i for s in dockerfile().stages for i in instructions(s, "USER")]
    assert user in final.instructions
    assert user.arguments == (f"{RUN_UID}:{RUN_GID}",), "numeric uid:gid, for Kubernetes' runAsNonRoot"
    words = _words()
    assert ["groupadd", "--system", "--gid", str(RUN_GID), "reconciler"] in words
    (useradd,) = [w for w in words if w[0] == "useradd"]
    assert useradd[useradd.index("--uid") + 1] == str(RUN_UID)
    assert useradd[useradd.index("--gid") + 1] == str(RUN_GID)
    position = final.instructions.index(user)
    assert not [i for i in final.instructions[position:] if i.keyword == "RUN"], "nothing runs after USER"


def test_start_command_is_the_controller_in_exec_form() -> None:
    final = final_stage()
    (entrypoint,) = instructions(final, "ENTRYPOINT")
    (cmd,) = instructions(final, "CMD")
    assert entrypoint.exec_form
    assert entrypoint.arguments == ("reconciler",)
    assert cmd.exec_form
    assert cmd.arguments[0] == "controller"
    assert "reconciler" in pyproject()["project"]["scripts"], "the console script the ENTRYPOINT runs"


def test_no_healthcheck_kubernetes_probes_instead() -> None:
    assert not [i for s in dockerfile().stages for i in instructions(s, "HEALTHCHECK")]


def test_workdir_volume_and_expose() -> None:
    final = final_stage()
    (workdir,) = instructions(final, "WORKDIR")
    assert workdir.arguments[0].startswith("/")
    (volume,) = instructions(final, "VOLUME")
    assert volume.exec_form
    assert "/var/lib/reconciler" in volume.arguments
    (expose,) = instructions(final, "EXPOSE")
    assert expose.arguments == ("8080",)
    assert not [i for i in final.instructions if i.keyword == "RUN" and "cd " in i.text]


def test_versions_and_labels() -> None:
    assert arg_default(None, "RECONCILER_VERSION") == __version__, "the image version is the package version"
    env = pairs(final_stage(), "ENV")
    assert env["RECONCILER_VERSION"] == "${RECONCILER_VERSION}"
    labels = pairs(final_stage(), "LABEL")
    assert labels["org.opencontainers.image.version"] == "${RECONCILER_VERSION}"
    assert labels["org.opencontainers.image.licenses"] == pyproject()["project"]["license"]
    assert labels["org.opencontainers.image.source"].startswith("https://")
    assert labels["maintainer"]
    for key, value in labels.items():
        for variable in re.findall(r"\$\{(\w+)\}", value):
            assert variable in env or arg_default(final_stage(), variable) is not None, f"{key}: ${variable}"


def test_logs_go_to_stdout_as_json_unbuffered() -> None:
    env = pairs(final_stage(), "ENV")
    assert env["RECONCILER_LOG_FORMAT"] == "json"
    assert env["PYTHONUNBUFFERED"] == "1"


# ---- the build context -----------------------------------------------------------------------------------


def _ignore_patterns() -> list[tuple[bool, re.Pattern[str]]]:
    """``.dockerignore`` as (exception?, regex), in order; Docker's rule: the last matching pattern wins, and
    a pattern matching a directory matches everything below it."""
    patterns = []
    for raw in DOCKERIGNORE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        glob = line.removeprefix("!").strip("/")
        regex = ""
        index = 0
        while index < len(glob):
            if glob.startswith("**/", index):
                regex, index = regex + "(?:.*/)?", index + 3
            elif glob.startswith("**", index):
                regex, index = regex + ".*", index + 2
            elif glob[index] == "*":
                regex, index = regex + "[^/]*", index + 1
            elif glob[index] == "?":
                regex, index = regex + "[^/]", index + 1
            elif glob[index] == "[":
                end = glob.index("]", index)
                regex, index = regex + glob[index : end + 1], end + 1
            else:
                regex, index = regex + re.escape(glob[index]), index + 1
        patterns.append((negated, re.compile(f"^{regex}(?:/.*)?$")))
    return patterns


def _in_context(relative: str) -> bool:
    included = True
    for negated, pattern in _ignore_patterns():
        if pattern.match(relative):
            included = negated
    return included


def test_build_context_holds_only_what_the_wheel_is_built_from() -> None:
    assert _ignore_patterns()[0] == (False, re.compile("^[^/]*(?:/.*)?$")), "start from excluding everything"
    for name in ("pyproject.toml", "README.md", "reconciler/__init__.py", "reconciler/schemas/reconciler.schema.json"):
        assert _in_context(name), name
    for path in (ROOT / "reconciler").rglob("*"):
        relative = path.relative_to(ROOT).as_posix()
        if path.is_file():
            assert _in_context(relative) == ("__pycache__" not in relative and path.suffix != ".pyc"), relative
    for name in (".git/HEAD", ".venv/bin/python", "testkit/pyproject.toml", "testkit/testkit/demo.py",
                 "tests/conftest.py", "bench/x.py", "docs/deploy.md", "examples/deploy/statefulset.yaml",
                 "build/lib/reconciler/__init__.py", "reconciler.egg-info/PKG-INFO", "Dockerfile",
                 ".dockerignore", "scripts/bootstrap"):  # fmt: skip
        assert not _in_context(name), name
    for stage in dockerfile().stages:
        for copy in instructions(stage, "COPY"):
            if copy.flag("from") is None:
                for source in copy.arguments[:-1]:
                    assert (ROOT / source).exists(), source
                    assert _in_context(source), f"{source} is excluded by .dockerignore"
