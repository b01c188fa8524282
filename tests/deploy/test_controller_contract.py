"""The deployment asks of the controller only what the controller really offers.

- Every option the StatefulSet and the image's CMD pass exists: asked of the real CLI
  (``reconciler controller --help`` through typer's CliRunner), and the whole argument list parses with the
  real command (types, values, boolean flags). While ``reconciler controller`` does not exist these tests
  FAIL, never skip, naming the flags the deployment depends on.
- The probes use the endpoints the controller serves (``/healthz``, ``/readyz``) on the named port whose
  number is the ``--listen`` port; the Services target that port; the image EXPOSEs it.
- The environment the image and the pod set is what the library reads (audit log, state, cache, Docker
  config), and the paths agree between the two.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import typer.main
from typer.testing import CliRunner

from reconciler.cli import app

from .helpers import (
    BOOLEAN_FLAGS,
    container_env,
    controller,
    final_stage,
    find,
    instructions,
    listen_port,
    mounts,
    named_port,
    pairs,
    split_args,
    volumes,
)

WIDE = {"COLUMNS": "300", "TERMINAL_WIDTH": "300", "NO_COLOR": "1"}
"""A wide terminal, so that typer's help never wraps or truncates an option name."""

ENDPOINTS = {"livenessProbe": "/healthz", "readinessProbe": "/readyz", "startupProbe": "/healthz"}


def statefulset_args() -> list[str]:
    args: list[str] = controller()["args"]
    return args


def image_cmd() -> list[str]:
    (cmd,) = instructions(final_stage(), "CMD")
    assert cmd.exec_form, "CMD must be in exec form"
    return list(cmd.arguments)


def used_flags() -> dict[str, list[str]]:
    """flag -> where the deployment uses it."""
    where: dict[str, list[str]] = {}
    for origin, args in (("examples/deploy/statefulset.yaml", statefulset_args()), ("Dockerfile CMD", image_cmd())):
        assert args[0] == "controller", f"{origin} must run the controller command"
        for flag in split_args(args[1:])[1]:
            where.setdefault(flag, []).append(origin)
    return where


def _missing(detail: str) -> str:
    flags = ", ".join(sorted(used_flags()))
    return (
        f"`reconciler controller` is not available in reconciler.cli ({detail}). The deployment depends on it: "
        f"examples/deploy/statefulset.yaml and the Dockerfile's CMD run `reconciler controller` with {flags}; "
        "probes need /healthz and /readyz on --listen. Add the command (reconciler/controller + a cli module "
        "registered in reconciler/cli/__init__.py) with exactly these options."
    )


def controller_help() -> str:
    result = CliRunner().invoke(app, ["controller", "--help"], env=WIDE)
    text = re.sub(r"\x1b\[[0-9;]*m", "", result.output)
    if result.exit_code != 0:
        said = " ".join(re.sub(r"[\u2500-\u257f]", " ", text).split())[-200:]
        pytest.fail(_missing(f"`reconciler controller --help` exited {result.exit_code}: {said}"), pytrace=False)
    return text


def controller_command() -> Any:
    """The click command behind ``reconciler controller`` (typer vendors click, so it is typed loosely)."""
    group = typer.main.get_command(app)
    command = getattr(group, "commands", {}).get("controller")
    if command is None:
        pytest.fail(_missing("no `controller` command is registered on reconciler.cli.app"), pytrace=False)
    return command


# ---- (a) the command line --------------------------------------------------------------------------------


def test_controller_help_lists_every_flag_the_deployment_uses() -> None:
    text = controller_help()
    absent = {
        flag: where
        for flag, where in used_flags().items()
        if not re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", text)
    }
    assert not absent, f"not in `reconciler controller --help`: {absent}\n{text}"


def test_controller_reads_the_log_format_from_the_environment() -> None:
    """The image sets RECONCILER_LOG_FORMAT=json (logs to stdout as JSON without any flag); the controller's
    --log-format must name that variable, as apply's does."""
    assert "RECONCILER_LOG_FORMAT" in controller_help()


@pytest.mark.parametrize("origin", ["statefulset", "dockerfile-cmd"])
def test_deployment_arguments_parse_with_the_real_command(origin: str, tmp_path: Path) -> None:
    args = statefulset_args() if origin == "statefulset" else image_cmd()
    positionals, options = split_args(args[1:])
    # a DIR positional is a mount point at run time; here any existing directory stands in for it
    words = [str(tmp_path) if word in positionals else word for word in args[1:]]
    command = controller_command()
    try:
        with command.make_context("controller", words) as context:
            params = dict(context.params)
    except Exception as exc:  # click's UsageError / BadParameter (typer's vendored click: a private class)
        said = exc.format_message() if hasattr(exc, "format_message") else repr(exc)
        pytest.fail(f"{origin}: `reconciler controller {' '.join(args[1:])}` is refused: {said}", pytrace=False)
    assert params, origin
    by_flag = {opt: param for param in command.params for opt in getattr(param, "opts", [])}
    for flag, value in options.items():
        param = by_flag[flag]
        assert hasattr(param, "is_flag"), f"{flag} is not an option"
        if flag in BOOLEAN_FLAGS:
            assert param.is_flag, f"{flag} is used as a boolean flag but takes a value"
        else:
            assert not param.is_flag, f"{flag} is given a value ({value}) but is a boolean flag"


# ---- (b) probes and ports --------------------------------------------------------------------------------


def test_probes_use_the_served_endpoints_on_the_listen_port() -> None:
    container = controller()
    port = listen_port(split_args(statefulset_args()[1:])[1])
    assert {"livenessProbe", "readinessProbe"} <= set(container)
    for probe_name, path in ENDPOINTS.items():
        probe = container.get(probe_name)
        if probe is None:
            continue
        assert set(probe) & {"httpGet", "exec", "tcpSocket", "grpc"} == {"httpGet"}, probe_name
        http = probe["httpGet"]
        assert http["path"] == path, probe_name
        assert isinstance(http["port"], str), f"{probe_name}: use the named port, not a number"
        assert named_port(http["port"])["containerPort"] == port, probe_name
        assert http.get("scheme", "HTTP") == "HTTP"
    assert named_port("http") == {"name": "http", "containerPort": port, "protocol": "TCP"}


def test_services_target_the_listen_port() -> None:
    port = listen_port(split_args(statefulset_args()[1:])[1])
    for name in ("reconciler-headless", "reconciler-metrics"):
        (service_port,) = find("Service", name)["spec"]["ports"]
        target = service_port["targetPort"]
        resolved = named_port(target)["containerPort"] if isinstance(target, str) else target
        assert resolved == port, name
        assert service_port["protocol"] == "TCP"


# ---- (c) the image ---------------------------------------------------------------------------------------


def test_image_exposes_the_listen_port() -> None:
    port = listen_port(split_args(statefulset_args()[1:])[1])
    (expose,) = instructions(final_stage(), "EXPOSE")
    assert list(expose.arguments) in ([str(port)], [f"{port}/tcp"])
    assert listen_port(split_args(image_cmd()[1:])[1]) == port, "the image's CMD listens elsewhere"


def test_image_cmd_is_a_runnable_default() -> None:
    """Without Kubernetes: a desired-state checkout mounted at the DIR of the CMD, watched, on all interfaces."""
    positionals, options = split_args(image_cmd()[1:])
    assert len(positionals) == 1, positionals
    assert positionals[0].startswith("/"), positionals
    assert "--watch" in options
    assert (options["--listen"] or "").startswith("0.0.0.0:")
    commands = [[c.name, *c.arguments] for run in instructions(final_stage(), "RUN") for c in run.commands]
    assert ["git", "config", "--system", "--add", "safe.directory", positionals[0]] in commands, (
        "a bind-mounted checkout is owned by another uid: git needs it listed as safe"
    )


# ---- environment -----------------------------------------------------------------------------------------

SHARED_ENV = ("RECONCILER_STATE_DIR", "RECONCILER_AUDIT_LOG", "RECONCILER_CACHE_DIR", "DOCKER_CONFIG",
              "RECONCILER_LOG_FORMAT")  # fmt: skip


def test_pod_environment_equals_the_image_environment() -> None:
    image = pairs(final_stage(), "ENV")
    pod = container_env()
    for name in SHARED_ENV:
        assert image.get(name) == pod.get(name), name


def test_environment_names_are_the_ones_the_library_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.engine.audit import default_audit_path
    from reconciler.engine.trusted import default_state_dir
    from reconciler.registry.credentials import docker_config_path
    from reconciler.source.gitutil import default_cache_dir

    env = pairs(final_stage(), "ENV")
    for name in SHARED_ENV:
        monkeypatch.setenv(name, env[name])
    assert default_audit_path() == Path(env["RECONCILER_AUDIT_LOG"])
    assert default_state_dir() == Path(env["RECONCILER_STATE_DIR"])
    assert default_cache_dir() == Path(env["RECONCILER_CACHE_DIR"])
    docker_config = docker_config_path()
    assert docker_config == Path(env["DOCKER_CONFIG"]) / "config.json"
    # and the Secret puts config.json exactly there
    mount = mounts()[str(docker_config.parent)]
    items = volumes()[mount["name"]]["secret"]["items"]
    assert docker_config.name in {item["path"] for item in items}
