"""Reading an image config for the policy gates, and the two judgements made on it: root user, shell wrapper.

The config is the JSON blob a manifest's ``config`` descriptor names. Docker's and OCI's configs have the
same shape for everything read here (``config.User``, ``config.Entrypoint``, ``config.Cmd``,
``config.Labels``, ``rootfs.diff_ids``, ``os``/``architecture``/``variant``), so one reader serves both.

Readers take whatever ``json.loads`` returned (``object``: the blob comes from a registry and is not
trusted to have the right shape) and return either the value or a :class:`ConfigProblem` saying in one
line what is wrong with the document. They never raise. Nothing here does I/O; the engine fetches the
blob and verifies its digest before a gate sees it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from reconciler.model.manifest import Platform

_POSIX_SHELLS = frozenset({"sh", "bash", "dash", "ash", "zsh", "ksh", "mksh", "yash", "csh", "tcsh", "fish"})
_MULTICALL = frozenset({"busybox", "toybox"})
"""``busybox sh -c ...``: the multi-call binary's first argument names the program it runs."""
_INIT_LAUNCHERS = frozenset({"tini", "tini-static", "dumb-init", "catatonit"})
"""Init processes that run their arguments as the real process; a shell behind them is still a shell."""
_POWERSHELLS = frozenset({"powershell", "pwsh"})
_PS_COMMAND = frozenset({"c", "command", "e", "ec", "enc", "encodedcommand"})
_PS_VALUE_OPTIONS = frozenset(
    {"ep", "executionpolicy", "w", "windowstyle", "if", "inputformat", "of", "outputformat", "config",
     "configurationname", "wd", "workingdirectory", "v", "version", "psconsolefile", "settingsfile"}
)  # fmt: skip
_WINDOWS_ADMIN = "containeradministrator"


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """What is wrong with the config document, as one line for a person (the value could not be read)."""

    message: str


def container_section(document: object) -> Mapping[str, object] | ConfigProblem:
    """The config's ``config`` section (User, Cmd, ...). Absent or null is an empty section: OCI makes it
    optional, and an image without one simply sets nothing."""
    if not isinstance(document, Mapping):
        return ConfigProblem(f"config is not a JSON object (it is {_json_type(document)})")
    section = document.get("config")
    if section is None:
        return {}
    if not isinstance(section, Mapping):
        return ConfigProblem(f"config's 'config' section is {_json_type(section)}, not an object")
    return section


def read_user(document: object) -> str | ConfigProblem | None:
    """``config.User``; None when unset (which runs the process as root)."""
    section = container_section(document)
    if isinstance(section, ConfigProblem):
        return section
    user = section.get("User")
    if user is None or isinstance(user, str):
        return user
    return ConfigProblem(f"User is {_json_type(user)}, not a string: {_show(user)}")


def read_command(document: object, key: str) -> tuple[str, ...] | ConfigProblem:
    """``config.Entrypoint`` or ``config.Cmd`` as an argv; empty when unset, null or ``[]`` (Docker's
    ``ENTRYPOINT []`` resets it)."""
    section = container_section(document)
    if isinstance(section, ConfigProblem):
        return section
    value = section.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(arg, str) for arg in value):
        return ConfigProblem(f"{key} is not a JSON array of strings: {_show(value)}")
    return tuple(value)


def read_labels(document: object) -> Mapping[str, object] | ConfigProblem:
    """``config.Labels``; empty when unset. Values are returned as found (the gate judges each one)."""
    section = container_section(document)
    if isinstance(section, ConfigProblem):
        return section
    labels = section.get("Labels")
    if labels is None:
        return {}
    if not isinstance(labels, Mapping):
        return ConfigProblem(f"Labels is {_json_type(labels)}, not an object")
    return labels


def read_diff_ids(document: object, layer_count: int) -> tuple[str, ...] | ConfigProblem:
    """``rootfs.diff_ids``, required to list one entry per manifest layer (else they describe another image)."""
    if not isinstance(document, Mapping):
        return ConfigProblem(f"config is not a JSON object (it is {_json_type(document)})")
    rootfs = document.get("rootfs")
    if not isinstance(rootfs, Mapping):
        return ConfigProblem("config has no 'rootfs' object")
    diff_ids = rootfs.get("diff_ids")
    if not isinstance(diff_ids, list) or not all(isinstance(item, str) for item in diff_ids):
        return ConfigProblem("config's rootfs.diff_ids is not a list of strings")
    if len(diff_ids) != layer_count:
        return ConfigProblem(f"config lists {len(diff_ids)} diff_ids for {layer_count} layers")
    return tuple(diff_ids)


def platform_from_config(document: object) -> Platform | None:
    """The platform a config declares (``os``, ``architecture``, ``variant``, ``os.version``), if it does."""
    if not isinstance(document, Mapping):
        return None
    os_name, arch = document.get("os"), document.get("architecture")
    if not isinstance(os_name, str) or not isinstance(arch, str) or not os_name or not arch:
        return None
    variant, os_version = document.get("variant"), document.get("os.version")
    return Platform(
        architecture=arch,
        os=os_name,
        variant=variant if isinstance(variant, str) and variant else None,
        os_version=os_version if isinstance(os_version, str) and os_version else None,
    )


def root_reason(user: str | None, os_name: str | None = "linux") -> str | None:
    """Why a process started with ``User`` = ``user`` runs as root (the evidence), or None when it does not.

    Only the user part decides: ``root``/``0`` is root whatever the group (``root:1000``, ``0:0``), and a
    non-root user stays non-root in group 0 (``1000:0``, the OpenShift convention). An empty user part
    (``""``, ``":1000"``) is root, as the runtime defaults it to uid 0. A named user is taken as non-root:
    the gate does not read ``/etc/passwd`` out of the layers. On Windows, ``ContainerAdministrator`` (any
    case) is the administrator.
    """
    if user is None:
        return "User is not set (runs as root)"
    if user == "":
        return "User is empty (runs as root)"
    if os_name == "windows":
        return f"User is {user} (the Windows administrator)" if user.lower() == _WINDOWS_ADMIN else None
    name = user.split(":", 1)[0]
    if name == "":
        return f"User is {_show(user)}: the user part is empty (runs as root)"
    if name == "root":
        return "User is root" if user == "root" else f"User is {user} (user root, whatever the group)"
    if name.isascii() and name.isdigit() and int(name) == 0:
        return f"User is {user} (uid 0 is root)"
    return None


def _program(arg: str) -> str:
    """The program an argv[0] names, as a shell finds it: basename, lower case, without ``.exe``."""
    name = arg.replace("\\", "/").rsplit("/", 1)[-1].lower()
    return name.removesuffix(".exe")


def is_shell_wrapper(argv: Sequence[str]) -> bool:
    """True when ``argv`` hands a command string to a shell, which is what Docker's shell form writes:
    ``/bin/sh -c "..."`` (or whatever ``SHELL`` says: ``bash -o pipefail -c``, ``cmd /S /C``,
    ``powershell -Command``). Seen through ``env``, ``busybox`` and init launchers (``tini --``).
    A shell running a script file (``sh /run.sh``) or an interactive shell (``sh``) is not a wrapper.
    """
    args = list(argv)
    while args:
        program, rest = _program(args[0]), args[1:]
        if program == "env":
            args = _after_env(rest)
        elif program in _INIT_LAUNCHERS:
            args = rest[rest.index("--") + 1 :] if "--" in rest else _drop_flags(rest, takes_value={"-p", "-e"})
        elif program in _MULTICALL:
            args = rest
        elif program in _POSIX_SHELLS:
            return _posix_command_flag(rest)
        elif program == "cmd":
            return _cmd_command_flag(rest)
        elif program in _POWERSHELLS:
            return _powershell_command(program, rest)
        else:
            return False
    return False


def _after_env(rest: list[str]) -> list[str]:
    index = 0
    while index < len(rest):
        arg = rest[index]
        if arg in ("-u", "--unset", "-C", "--chdir"):
            index += 2
        elif arg.startswith("-") or "=" in arg:
            index += 1
        else:
            break
    return rest[index:]


def _drop_flags(rest: list[str], *, takes_value: set[str]) -> list[str]:
    index = 0
    while index < len(rest) and rest[index].startswith("-"):
        index += 2 if rest[index] in takes_value else 1
    return rest[index:]


def _posix_command_flag(rest: list[str]) -> bool:
    """Whether the shell's options (before its first operand) include ``-c``, alone or clustered (``-ec``)."""
    index = 0
    while index < len(rest):
        arg = rest[index]
        if arg in ("-", "+", "--") or not arg.startswith(("-", "+")):
            return False
        if arg.startswith("--"):
            index += 2 if arg in ("--rcfile", "--init-file") else 1
            continue
        if arg[0] == "-" and "c" in arg[1:]:
            return True
        index += 2 if arg[-1] in "oO" else 1  # -o pipefail, -euo pipefail: the option takes a value
    return False


def _cmd_command_flag(rest: list[str]) -> bool:
    for arg in rest:
        switch = arg.lower()
        if switch in ("/c", "/k"):
            return True
        if not switch.startswith("/"):
            return False
    return False


def _powershell_command(program: str, rest: list[str]) -> bool:
    index = 0
    while index < len(rest):
        arg = rest[index]
        if not arg.startswith(("-", "/")):
            return program == "powershell"  # Windows PowerShell runs a bare argument as -Command; pwsh as -File
        name = arg[1:].lower()
        if name in _PS_COMMAND or (len(name) >= 3 and "command".startswith(name)):
            return True
        if name in ("f", "file"):
            return False
        index += 2 if name in _PS_VALUE_OPTIONS else 1
    return False


def show_argv(argv: Sequence[str], limit: int = 200) -> str:
    """``argv`` as the JSON array a Dockerfile would spell, shortened to ``limit`` characters."""
    text = json.dumps(list(argv), ensure_ascii=False, separators=(",", ":"))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _show(value: object, limit: int = 80) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__
