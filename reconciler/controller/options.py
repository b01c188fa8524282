"""The controller's options: parsed, checked and defaulted in ONE place, from plain values.

``reconciler controller`` (the CLI) hands its raw command-line values over as a JSON object of strings,
numbers and booleans (see ``reconciler.controller.__main__``); ``options_from_raw`` turns them into a
frozen ``ControllerOptions`` or raises ``OptionsError`` with a sentence a person can act on (exit 2).
Durations are ``30s``, ``5m``, ``1h``, ``250ms``, combinations (``1m30s``) or plain seconds.

No I/O beyond reading ``$HOSTNAME`` (``--shard-from-hostname``); nothing here starts anything.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from reconciler.engine.audit import default_audit_path
from reconciler.engine.shards import Shard

OPTIONS_ENV = "RECONCILER_CONTROLLER_OPTIONS"
"""The environment variable the CLI passes the raw options in (removed as soon as they are read)."""

DEFAULT_RETRY_BASE = 10.0
DEFAULT_RETRY_MAX = 600.0

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


class OptionsError(ValueError):
    """The command line is wrong (exit 2)."""


def parse_duration(text: str, *, option: str) -> float:
    """Seconds in ``text`` (``30s``, ``5m``, ``1h``, ``1m30s``, ``250ms`` or ``45``); OptionsError when it is
    not a positive duration."""
    value = text.strip().lower()
    try:
        seconds = float(value)
    except ValueError:
        position, seconds = 0, 0.0
        for match in _DURATION_PART.finditer(value):
            if match.start() != position:
                break
            seconds += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
            position = match.end()
        if position != len(value) or not value:
            raise OptionsError(f"{option} {text!r}: want a duration such as 30s, 5m, 1h or plain seconds") from None
    if not 0 < seconds < float("inf"):  # also refuses NaN
        raise OptionsError(f"{option} {text!r}: must be more than zero")
    return seconds


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``0.0.0.0:8080``, ``[::]:8080``, ``:8080``) -> (host, port)."""
    host, colon, port = text.strip().rpartition(":")
    if not colon or not port.isdigit() or int(port) > 65535:
        raise OptionsError(f"--listen {text!r}: want HOST:PORT, e.g. 0.0.0.0:8080")
    host = host.strip("[]") or "0.0.0.0"  # noqa: S104  (a controller in a pod listens on every interface)
    return host, int(port)


@dataclass(frozen=True, slots=True)
class ControllerOptions:
    directory: Path | None
    """The desired-state directory (None with ``repo``)."""
    repo: str | None
    ref: str
    watch: bool
    environments: tuple[str, ...]
    """Only these environments (empty: every non-source one)."""
    interval: float
    resync: float
    listen_host: str
    listen_port: int
    shard: Shard | None
    grace: float
    log_format: Literal["text", "json"]
    audit_log: Path
    cache_dir: Path | None
    trusted_base: str | None
    insecure: bool
    concurrency: int
    retry_base: float
    retry_max: float
    retention: bool = True
    deep_resync: bool = False
    """Full passes read every in-sync image back (``plan --deep``): finds what a registry acknowledged and
    lost, at one GET per manifest and one HEAD per blob per resync."""
    """Retire undeclared versions in full passes (first load, every resync): see ``runs_retention``."""

    @property
    def runs_retention(self) -> bool:
        """Retention runs on shard 0 only (or unsharded): ``max_bytes`` is environment-wide, so one replica
        looks at whole environments; the other shards only promote (and restore) their images."""
        return self.retention and (self.shard is None or self.shard.index == 0)

    @property
    def listen(self) -> str:
        host = f"[{self.listen_host}]" if ":" in self.listen_host else self.listen_host
        return f"{host}:{self.listen_port}"

    def owns(self, image: str) -> bool:
        return self.shard is None or self.shard.owns(image)


def _text(raw: Mapping[str, object], key: str) -> str | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise OptionsError(f"internal: option {key} should be text, got {type(value).__name__}")
    return value


def _flag(raw: Mapping[str, object], key: str) -> bool:
    return bool(raw.get(key, False))


def _number(raw: Mapping[str, object], key: str, default: int | None) -> int | None:
    value = raw.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise OptionsError(f"internal: option {key} should be a number")
    return value


def _shard(raw: Mapping[str, object], environ: Mapping[str, str]) -> Shard | None:
    text = _text(raw, "shard")
    from_hostname = _flag(raw, "shard_from_hostname")
    count = _number(raw, "shards", None)
    if text is not None and from_hostname:
        raise OptionsError("--shard and --shard-from-hostname are exclusive: use one")
    if count is not None and not from_hostname:
        raise OptionsError("--shards N goes with --shard-from-hostname (with --shard, write I/N)")
    if text is not None:
        try:
            return Shard.parse(text)
        except ValueError as exc:
            raise OptionsError(f"--shard: {exc}") from None
    if from_hostname:
        if count is None:
            raise OptionsError("--shard-from-hostname needs --shards N (the StatefulSet's replica count)")
        hostname = environ.get("HOSTNAME") or socket.gethostname()
        try:
            return Shard.from_hostname(hostname, count)
        except ValueError as exc:
            raise OptionsError(f"--shard-from-hostname: {exc}") from None
    return None


def options_from_raw(raw: Mapping[str, object], environ: Mapping[str, str] | None = None) -> ControllerOptions:
    """The checked options, from the CLI's raw values. Raises OptionsError (exit 2)."""
    environ = os.environ if environ is None else environ
    directory_text, repo = _text(raw, "directory"), _text(raw, "repo")
    if directory_text is not None and repo is not None:
        raise OptionsError("give a directory or --repo URL, not both")
    watch = _flag(raw, "watch")
    if watch and repo is not None:
        raise OptionsError(
            "--watch watches a directory: give DIR, not --repo (a repository is fetched each --interval)"
        )
    directory = None if repo is not None else Path(directory_text or ".")
    if directory is not None and not directory.is_dir():
        raise OptionsError(f"{directory}: not a directory")
    fmt = _text(raw, "log_format") or "text"
    if fmt not in ("text", "json"):
        raise OptionsError(f"--log-format {fmt!r}: want text or json")
    log_format: Literal["text", "json"] = "json" if fmt == "json" else "text"
    concurrency = _number(raw, "concurrency", 16) or 0
    if concurrency < 1:
        raise OptionsError("--concurrency must be at least 1")
    envs = raw.get("environments") or []
    if not isinstance(envs, list) or not all(isinstance(env, str) for env in envs):
        raise OptionsError("internal: --env values should be text")
    host, port = parse_listen(_text(raw, "listen") or "0.0.0.0:8080")
    retry_base = parse_duration(_text(raw, "retry_base") or f"{DEFAULT_RETRY_BASE}", option="--retry-base")
    retry_max = parse_duration(_text(raw, "retry_max") or f"{DEFAULT_RETRY_MAX}", option="--retry-max")
    if retry_max < retry_base:
        raise OptionsError("--retry-max must not be shorter than --retry-base")
    audit = _text(raw, "audit_log")
    cache = _text(raw, "cache_dir")
    return ControllerOptions(
        directory=directory,
        repo=repo,
        ref=_text(raw, "ref") or "main",
        watch=watch,
        environments=tuple(dict.fromkeys(envs)),
        interval=parse_duration(_text(raw, "interval") or "60s", option="--interval"),
        resync=parse_duration(_text(raw, "resync") or "10m", option="--resync"),
        listen_host=host,
        listen_port=port,
        shard=_shard(raw, environ),
        grace=parse_duration(_text(raw, "grace") or "30s", option="--grace"),
        log_format=log_format,
        audit_log=Path(audit) if audit else default_audit_path(),
        cache_dir=Path(cache) if cache else None,
        trusted_base=_text(raw, "trusted_base"),
        insecure=_flag(raw, "insecure"),
        concurrency=concurrency,
        retry_base=retry_base,
        retry_max=retry_max,
        retention=bool(raw.get("retention", True)),
        deep_resync=_flag(raw, "deep_resync"),
    )
