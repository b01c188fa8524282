"""Image gates: the rules an image must pass before it may enter an environment, as pure functions.

The engine fetches the evidence (the image's manifest, each platform's image manifest and config JSON,
the approved base image's manifests and configs, the image's referrers), builds an
:class:`ImageEvidence`, and calls :func:`evaluate`. Every configured gate runs, always in
:data:`GATE_ORDER` and platform order, and every violation is reported as a :class:`GateViolation`
whose message carries the values that broke the rule ("User is root", "layer 1 is sha256:... but
prod-osbase has sha256:..."). docs/gates.md describes each rule and the decisions behind it.

Nothing here does I/O, reads a clock or raises to say "no": a malformed config is a violation with a
message, and :func:`evaluate` turns even an unexpected error in a rule into a violation (fail closed).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from reconciler.model.desired import Gate
from reconciler.model.manifest import Platform
from reconciler.policy.evidence import (
    ImageEvidence,
    PlatformImage,
    is_attestation_manifest,
    runnable_children,
    same_platform,
)
from reconciler.policy.imageconfig import (
    ConfigProblem,
    is_shell_wrapper,
    read_command,
    read_diff_ids,
    read_labels,
    read_user,
    root_reason,
    show_argv,
)
from reconciler.policy.referrers import ArtifactKind, Referrer, ReferrerVia, missing_artifacts

__all__ = [
    "GATE_ORDER",
    "ArtifactKind",
    "GateName",
    "GateViolation",
    "ImageEvidence",
    "PlatformImage",
    "Referrer",
    "ReferrerVia",
    "check_base",
    "check_exec_form",
    "check_labels",
    "check_max_bytes",
    "check_max_layers",
    "check_non_root",
    "check_require_artifacts",
    "configured",
    "evaluate",
    "format_bytes",
    "runnable_children",
    "same_platform",
]

GateName = Literal["base", "non_root", "exec_form", "labels", "max_layers", "max_bytes", "require_artifacts"]
GATE_ORDER: tuple[GateName, ...] = (
    "base", "non_root", "exec_form", "labels", "max_layers", "max_bytes", "require_artifacts",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class GateViolation:
    """One broken rule: which gate, on which platform (None: the image as a whole), and the evidence."""

    gate: GateName
    platform: Platform | None
    message: str

    def __str__(self) -> str:
        where = f" [{self.platform}]" if self.platform is not None else ""
        return f"{self.gate}{where}: {self.message}"

    def to_json(self) -> dict[str, Any]:
        platform = str(self.platform) if self.platform is not None else None
        return {"gate": self.gate, "platform": platform, "message": self.message}


def configured(gate: Gate) -> tuple[GateName, ...]:
    """The gates ``gate`` turns on, in :data:`GATE_ORDER`."""
    on: Mapping[GateName, bool] = {
        "base": gate.base is not None,
        "non_root": gate.non_root,
        "exec_form": gate.exec_form,
        "labels": bool(gate.labels),
        "max_layers": gate.max_layers is not None,
        "max_bytes": gate.max_bytes is not None,
        "require_artifacts": bool(gate.require_artifacts),
    }
    return tuple(name for name in GATE_ORDER if on[name])


def format_bytes(size: int) -> str:
    """``2.3 GiB``: binary units, at most one decimal (messages add the exact count where it matters)."""
    units = ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB")
    value, unit = float(size), 0
    while value >= 1024 and unit < len(units) - 1:
        value, unit = value / 1024, unit + 1
    if unit == 0:
        return f"{size} byte{'s' if size != 1 else ''}"
    return f"{value:.1f}".rstrip("0").rstrip(".") + f" {units[unit]}"


# -- the rules ----------------------------------------------------------------------------------------


def _violation(gate: GateName, image: PlatformImage, message: str) -> GateViolation:
    return GateViolation(gate, image.effective_platform, message)


def _manifest_problem(image: PlatformImage) -> str | None:
    if image.manifest.is_index or image.manifest.config is None:
        return f"{image.manifest.digest} is an index, not an image manifest"
    return None


def _config_missing(image: PlatformImage) -> str | None:
    if image.config is None:
        config = image.manifest.config
        return f"config {config.digest if config is not None else '(none)'} was not available to check"
    return None


def check_non_root(images: Sequence[PlatformImage]) -> list[GateViolation]:
    """``config.User`` must name a non-root user (see :func:`root_reason` for what counts as root)."""
    found = []
    for image in images:
        user = read_user(image.config)
        platform = image.effective_platform
        reason = _config_missing(image) or (
            user.message if isinstance(user, ConfigProblem) else root_reason(user, platform.os if platform else None)
        )
        if reason:
            found.append(_violation("non_root", image, reason))
    return found


def check_exec_form(images: Sequence[PlatformImage]) -> list[GateViolation]:
    """The process must not be a shell running a command string. With an ``Entrypoint``, it is the program
    and ``Cmd`` only its arguments, so only ``Entrypoint`` is judged; without one, ``Cmd`` is the program."""
    found = []
    for image in images:
        message = _config_missing(image) or _exec_form_problem(image.config)
        if message:
            found.append(_violation("exec_form", image, message))
    return found


def _exec_form_problem(config: object) -> str | None:
    entrypoint = read_command(config, "Entrypoint")
    if isinstance(entrypoint, ConfigProblem):
        return entrypoint.message
    if entrypoint:
        return f"Entrypoint is a shell wrapper: {show_argv(entrypoint)}" if is_shell_wrapper(entrypoint) else None
    cmd = read_command(config, "Cmd")
    if isinstance(cmd, ConfigProblem):
        return cmd.message
    if cmd:
        return f"Cmd is a shell wrapper (shell form): {show_argv(cmd)}" if is_shell_wrapper(cmd) else None
    return "neither Entrypoint nor Cmd is set: the image names no process to run"


def check_labels(images: Sequence[PlatformImage], required: Sequence[str]) -> list[GateViolation]:
    """Each required label must be present in ``config.Labels`` with a non-blank string value."""
    found = []
    for image in images:
        labels = read_labels(image.config)
        if isinstance(labels, ConfigProblem):  # also when the config is missing (None is not an object)
            found.append(_violation("labels", image, _config_missing(image) or labels.message))
            continue
        for name in dict.fromkeys(required):
            message = _label_problem(name, labels)
            if message:
                found.append(_violation("labels", image, message))
    return found


def _label_problem(name: str, labels: Mapping[str, object]) -> str | None:
    if name not in labels:
        return f"label {name} is missing"
    value = labels[name]
    if not isinstance(value, str):
        return f"label {name} is not a string"
    return f"label {name} is empty" if not value.strip() else None


def check_max_layers(images: Sequence[PlatformImage], limit: int) -> list[GateViolation]:
    """At most ``limit`` layers per platform (the manifest's layers, foreign layers included)."""
    found = []
    for image in images:
        count = len(image.manifest.layers)
        message = _manifest_problem(image) or (f"{count} layers, at most {limit} allowed" if count > limit else None)
        if message:
            found.append(_violation("max_layers", image, message))
    return found


def check_max_bytes(images: Sequence[PlatformImage], limit: int) -> list[GateViolation]:
    """At most ``limit`` bytes per platform: the sum of the manifest's (compressed) layer sizes, config excluded."""
    found = []
    for image in images:
        total = sum(layer.size for layer in image.manifest.layers)
        message = _manifest_problem(image)
        if message is None and total > limit:
            message = (
                f"{format_bytes(total)} compressed ({total:,} bytes in {len(image.manifest.layers)} layers), "
                f"at most {format_bytes(limit)} ({limit:,} bytes)"
            )
        if message:
            found.append(_violation("max_bytes", image, message))
    return found


def check_require_artifacts(evidence: ImageEvidence, required: Sequence[str]) -> list[GateViolation]:
    """Every required artifact kind or type is among the referrers attached to the image's digest."""
    messages = missing_artifacts(required, evidence.referrers, evidence.digest)
    return [GateViolation("require_artifacts", None, message) for message in messages]


def check_base(images: Sequence[PlatformImage], base: ImageEvidence | None, base_name: str) -> list[GateViolation]:
    """The base's layers are a prefix of each platform's layers (the base's platform with the same
    os/architecture/variant; a single-platform base serves every platform). Layer digests decide; when
    they differ, equal ``rootfs.diff_ids`` prefixes still pass (the same layers, recompressed)."""
    if base is None:
        return [GateViolation("base", None, f"base image {base_name} was not resolved: nothing to compare with")]
    base_images = _runnable(base)
    if not base_images:
        return [GateViolation("base", None, f"base image {base_name} ({base.digest}) has no image manifest")]
    found = []
    for image in images:
        platform = image.effective_platform
        if not base.is_index:
            candidates = list(base_images)
        elif platform is None:
            found.append(_violation("base", image, f"{image.manifest.digest} declares no platform to match"))
            continue
        else:
            candidates = [b for b in base_images if _matches(b.effective_platform, platform)]
            candidates.sort(key=lambda b: _os_version(b) != platform.os_version)  # exact os.version first
        if not candidates:
            offered = ", ".join(str(b.effective_platform) for b in base_images)
            found.append(_violation("base", image, f"{base_name} has no {platform} image (it has {offered})"))
            continue
        problems = [_prefix_problem(image, candidate, base_name) for candidate in candidates]
        if all(problems):
            found.append(_violation("base", image, f"{problems[0]}{_single_base_note(base, platform, base_name)}"))
    return found


def _single_base_note(base: ImageEvidence, platform: Platform | None, base_name: str) -> str:
    """Says so when a single-platform base was compared with another platform (the likely cause)."""
    base_platform = base.platforms[0].effective_platform if not base.is_index else None
    if base_platform is None or platform is None or same_platform(base_platform, platform):
        return ""
    return f" ({base_name} is a single-platform {base_platform} image)"


def _matches(candidate: Platform | None, wanted: Platform) -> bool:
    return candidate is not None and same_platform(candidate, wanted)


def _os_version(image: PlatformImage) -> str | None:
    platform = image.effective_platform
    return platform.os_version if platform is not None else None


def _prefix_problem(image: PlatformImage, base: PlatformImage, base_name: str) -> str | None:
    """None when ``base``'s layers are a prefix of ``image``'s; else the first difference, as evidence."""
    problem = _manifest_problem(image) or _manifest_problem(base)
    if problem:
        return problem
    layers = [layer.digest for layer in image.manifest.layers]
    base_layers = [layer.digest for layer in base.manifest.layers]
    differs = _first_difference(layers, base_layers)
    if differs is None:
        return None
    described = _describe(differs, layers, base_layers, base_name, "layer")
    image_ids = read_diff_ids(image.config, len(layers))
    if isinstance(image_ids, ConfigProblem):
        return f"{described}; diff_ids not compared ({image_ids.message})"
    base_ids = read_diff_ids(base.config, len(base_layers))
    if isinstance(base_ids, ConfigProblem):
        return f"{described}; diff_ids not compared ({base_name}'s {base_ids.message})"
    differs_ids = _first_difference(image_ids, base_ids)
    if differs_ids is None:
        return None  # the same uncompressed layers, compressed differently
    return f"{described}; diff_ids differ too: {_describe(differs_ids, image_ids, base_ids, base_name, 'diff_id')}"


def _first_difference(layers: Sequence[str], base_layers: Sequence[str]) -> int | None:
    """Index of the first base layer the image does not have at the same place; None for a prefix."""
    for index, base_layer in enumerate(base_layers):
        if index >= len(layers) or layers[index] != base_layer:
            return index
    return None


def _describe(index: int, layers: Sequence[str], base_layers: Sequence[str], base_name: str, what: str) -> str:
    if index >= len(layers):
        return f"image has fewer layers than the base ({len(layers)} {what}s, {base_name} has {len(base_layers)})"
    return f"{what} {index} is {layers[index]} but {base_name} has {base_layers[index]}"


# -- all of them ----------------------------------------------------------------------------------------


def _runnable(evidence: ImageEvidence) -> tuple[PlatformImage, ...]:
    return tuple(image for image in evidence.platforms if not is_attestation_manifest(image.effective_platform))


def evaluate(gates: Gate, evidence: ImageEvidence, base_evidence: ImageEvidence | None = None) -> list[GateViolation]:
    """Run every gate ``gates`` turns on against ``evidence``; all violations, in :data:`GATE_ORDER`,
    then platform order. ``base_evidence`` is the approved base named by ``gates.base`` (None when it
    could not be resolved, which the base gate reports). An empty list means the image may enter."""
    images = _runnable(evidence)
    rules: Mapping[GateName, Callable[[], list[GateViolation]]] = {
        "base": lambda: check_base(images, base_evidence, gates.base or ""),
        "non_root": lambda: check_non_root(images),
        "exec_form": lambda: check_exec_form(images),
        "labels": lambda: check_labels(images, gates.labels),
        "max_layers": lambda: check_max_layers(images, gates.max_layers or 0),
        "max_bytes": lambda: check_max_bytes(images, gates.max_bytes or 0),
        "require_artifacts": lambda: check_require_artifacts(evidence, gates.require_artifacts),
    }
    found: list[GateViolation] = []
    for gate in configured(gates):
        if not images and gate != "require_artifacts":
            found.append(GateViolation(gate, None, f"image {evidence.digest} has no image manifest to check"))
            continue
        try:
            found.extend(rules[gate]())
        except Exception as exc:  # a bug in a rule must block the image, not let it through
            found.append(GateViolation(gate, None, f"could not be checked: {type(exc).__name__}: {exc}"))
    return found
