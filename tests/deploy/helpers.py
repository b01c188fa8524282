"""Reading the deployment the way the tools that consume it do.

- Manifests are read with PyYAML (YAML 1.1, as kubectl and kubernetes-validate read them: ``0440`` would be
  octal there), one dict per document.
- The Dockerfile is read by the project's own BuildKit-based parser (``reconciler.policy.lint.parse``), so
  line continuations and exec forms are exactly what ``docker build`` sees.
- Container arguments are split by the controller's fixed command-line interface (docs/deploy.md,
  "Container"): ``--name=value``, ``--name value`` or a boolean ``--name``.
"""

from __future__ import annotations

import functools
import re
import tomllib
from pathlib import Path
from typing import Any

import yaml

from reconciler.policy.lint.parse import Instruction, ParsedDockerfile, Stage, parse_dockerfile

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "examples" / "deploy"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
STRICT_LINT_CONFIG = Path(__file__).resolve().parent / "controller-lint.yaml"
KUBERNETES_VERSION = "1.30.0"
"""The Kubernetes version the manifests are validated against (kubernetes-validate ships 1.25 and later)."""

NAMESPACE = "reconciler"
RUN_UID = 10001
RUN_GID = 10001

BOOLEAN_FLAGS = frozenset({"--watch", "--insecure", "--shard-from-hostname"})
"""The controller's options that take no value (its interface is fixed: docs/deploy.md, "Container")."""


# ---- manifests -------------------------------------------------------------------------------------------


def manifest_files() -> list[Path]:
    """Every Kubernetes manifest of the example, the kustomization excluded."""
    return sorted(path for path in DEPLOY.glob("*.yaml") if path.name != "kustomization.yaml")


def documents(path: Path) -> list[dict[str, Any]]:
    loaded = [document for document in yaml.safe_load_all(path.read_text(encoding="utf-8")) if document]
    assert all(isinstance(document, dict) for document in loaded), path
    return loaded


@functools.cache
def resources() -> tuple[tuple[str, dict[str, Any]], ...]:
    """``(file name, resource)`` for every document of every manifest."""
    return tuple((path.name, document) for path in manifest_files() for document in documents(path))


def find(kind: str, name: str | None = None) -> dict[str, Any]:
    """The one resource of ``kind`` (and ``name``); the test fails when there is none or several."""
    found = [
        resource
        for _, resource in resources()
        if resource["kind"] == kind and (name is None or resource["metadata"]["name"] == name)
    ]
    assert len(found) == 1, f"expected exactly one {kind} {name or ''} in examples/deploy, found {len(found)}"
    return found[0]


def kustomization() -> dict[str, Any]:
    (document,) = documents(DEPLOY / "kustomization.yaml")
    return document


def statefulset() -> dict[str, Any]:
    return find("StatefulSet", "reconciler")


def pod_spec() -> dict[str, Any]:
    spec: dict[str, Any] = statefulset()["spec"]["template"]["spec"]
    return spec


def controller() -> dict[str, Any]:
    (container,) = [c for c in pod_spec()["containers"] if c["name"] == "controller"]
    return container


def container_env() -> dict[str, str]:
    return {item["name"]: item["value"] for item in controller().get("env", []) if "value" in item}


def named_port(name: str) -> dict[str, Any]:
    (port,) = [p for p in controller()["ports"] if p.get("name") == name]
    return port


def mounts() -> dict[str, dict[str, Any]]:
    """mountPath -> the volumeMount."""
    return {mount["mountPath"]: mount for mount in controller()["volumeMounts"]}


def volumes() -> dict[str, dict[str, Any]]:
    """name -> the pod volume, volumeClaimTemplates included (as ``{"persistentVolumeClaim": template}``)."""
    found = {volume["name"]: volume for volume in pod_spec().get("volumes", [])}
    for template in statefulset()["spec"].get("volumeClaimTemplates", []):
        found[template["metadata"]["name"]] = {"name": template["metadata"]["name"], "persistentVolumeClaim": template}
    return found


def mount_for(path: str) -> dict[str, Any]:
    """The volumeMount a file path lives on (the longest mountPath that contains it)."""
    candidates = [m for m in mounts() if path == m or path.startswith(m.rstrip("/") + "/")]
    assert candidates, f"{path} is on no mounted volume (the root filesystem is read-only)"
    return mounts()[max(candidates, key=len)]


def pod_labels() -> dict[str, str]:
    labels: dict[str, str] = statefulset()["spec"]["template"]["metadata"]["labels"]
    return labels


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Whether a LabelSelector (or a Service's plain selector map) selects ``labels``."""
    match_labels = selector.get("matchLabels", selector if "matchExpressions" not in selector else {})
    assert not selector.get("matchExpressions"), "matchExpressions are not used by this deployment"
    return bool(match_labels) and all(labels.get(key) == value for key, value in match_labels.items())


# ---- container arguments ---------------------------------------------------------------------------------


def split_args(args: list[str]) -> tuple[list[str], dict[str, str | None]]:
    """``(positionals, {"--option": value or None})`` of a command line after the program name."""
    positionals: list[str] = []
    options: dict[str, str | None] = {}
    index = 0
    while index < len(args):
        word = args[index]
        if word.startswith("--"):
            name, has_value, value = word.partition("=")
            if has_value:
                options[name] = value
            elif name in BOOLEAN_FLAGS:
                options[name] = None
            else:
                assert index + 1 < len(args), f"{name} needs a value"
                options[name] = args[index + 1]
                index += 1
        else:
            positionals.append(word)
        index += 1
    return positionals, options


def listen_port(options: dict[str, str | None]) -> int:
    listen = options.get("--listen")
    assert listen, "--listen is not set: the port the probes, the Services and EXPOSE use must be explicit"
    host, _, port = listen.rpartition(":")
    assert host, f"--listen {listen}: expected HOST:PORT"
    return int(port)


def duration_seconds(text: str) -> float:
    """``30s``, ``10m``, ``1h30m``, ``500ms`` -> seconds (Go/Prometheus style durations)."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
    parts = re.findall(r"(\d+)(ms|s|m|h|d)", text)
    assert parts, f"not a duration: {text!r}"
    assert "".join(n + u for n, u in parts) == text, f"not a duration: {text!r}"
    return sum(int(number) * units[unit] for number, unit in parts)


def quantity(text: str | int) -> float:
    """A Kubernetes resource quantity (``250m``, ``2``, ``256Mi``, ``1Gi``, ``20G``) as a number."""
    suffixes = {"m": 1e-3, "": 1, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30,
                "Ti": 2**40}  # fmt: skip
    match = re.fullmatch(r"(\d+(?:\.\d+)?)(m|k|M|G|T|Ki|Mi|Gi|Ti)?", str(text))
    assert match, f"not a quantity: {text!r}"
    return float(match[1]) * suffixes[match[2] or ""]


# ---- the Dockerfile --------------------------------------------------------------------------------------


@functools.cache
def dockerfile() -> ParsedDockerfile:
    return parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))


def final_stage() -> Stage:
    return dockerfile().stages[-1]


def instructions(stage: Stage, keyword: str) -> list[Instruction]:
    return [instruction for instruction in stage.instructions if instruction.keyword == keyword]


def unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    return text


def pairs(stage: Stage, keyword: str) -> dict[str, str]:
    """The key/value pairs of every ENV or LABEL of a stage (later ones win, as in the image)."""
    found: dict[str, str] = {}
    for instruction in instructions(stage, keyword):
        words = instruction.arguments
        assert len(words) % 2 == 0, instruction.text
        for key, value in zip(words[::2], words[1::2], strict=True):
            found[unquote(key)] = unquote(value)
    return found


def arg_default(stage_or_global: Stage | None, name: str) -> str | None:
    """The default of ``ARG name`` in a stage, or among the global ARGs when ``stage_or_global`` is None."""
    if stage_or_global is None:
        return dockerfile().global_args.get(name)
    for instruction in instructions(stage_or_global, "ARG"):
        key, _, value = instruction.arguments[0].partition("=")
        if key == name:
            return unquote(value) if value else None
    return None


def pyproject() -> dict[str, Any]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
