"""Run a real CNCF distribution registry (``/usr/bin/docker-registry``) on loopback, for tests and the demo.

:class:`LocalRegistry` writes a config file, starts ``docker-registry serve`` bound to ``127.0.0.1:0``
(the kernel picks a free port, which the registry reports in its log, so there is no port race with other
processes), waits until ``/v2/`` answers, and stops (terminates and reaps) the process on :meth:`stop` or at
the end of a ``with`` block. Storage is a filesystem directory (a temporary one unless given) with deletion
enabled. Optional htpasswd Basic auth (bcrypt hashes, which distribution requires) or ``auth: token``.

The registry writes a combined-format access log line for every request (method, URI, status, response
bytes, user agent); :meth:`LocalRegistry.request_log` parses those lines into :class:`RequestRecord` so tests
can assert "no blob upload happened" or "N manifest requests". (Its JSON ``response completed`` lines are
not used: requests refused with 401 never get one.) Request *body* sizes are not logged by distribution
2.8; count uploaded bytes with the fault proxy in the tests.

This module never binds anything but loopback, never uses a fixed port, and never writes a password to
its config or log: only bcrypt hashes reach the htpasswd file.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import httpx

from reconciler.errors import ReconcilerError

DEFAULT_BINARY = "/usr/bin/docker-registry"
INSTALL_HINT = "install it with `apt-get install docker-registry` (Debian/Ubuntu package of CNCF distribution 2.8)"

_LISTENING = re.compile(r"listening on (?:\[[^\]]*\]|[0-9.]+):(\d+)")
_MARKER_AGENT = "reconciler-log-marker/"
# The combined-format access log line distribution writes for EVERY request, including the 401s that
# never reach its JSON "response completed" line: 127.0.0.1 - - [date] "GET /v2/ HTTP/1.1" 200 2 "" "agent"
_ACCESS_LINE = re.compile(
    r'^\S+ \S+ \S+ \[[^\]]*\] "(?P<method>[A-Z]+) (?P<uri>\S+) HTTP/[0-9.]+" (?P<status>\d{3}) (?P<size>\d+|-) '
    r'"[^"]*" "(?P<agent>.*)"$'
)

RequestKind = Literal["ping", "manifest", "blob", "upload", "tags", "catalog", "other"]
_V2_PATH = re.compile(r"^/v2/(?P<repo>.+?)/(?P<kind>manifests|blobs/uploads|blobs|tags)(?:/(?P<rest>.*))?$")


def classify_path(path: str) -> tuple[RequestKind, str | None]:
    """The kind of a registry API path and its repository: ``/v2/a/b/blobs/uploads/x`` -> ("upload", "a/b")."""
    path = path.split("?", 1)[0]
    if path in ("/v2/", "/v2"):
        return "ping", None
    if path.startswith("/v2/_catalog"):
        return "catalog", None
    match = _V2_PATH.match(path)
    if match is None:
        return "other", None
    kinds: dict[str, RequestKind] = {
        "manifests": "manifest",
        "blobs/uploads": "upload",
        "blobs": "blob",
        "tags": "tags",
    }
    return kinds[match["kind"]], match["repo"]


class LocalRegistryError(ReconcilerError):
    """The local registry could not be started, or its binary is missing."""


def find_registry_binary(binary: str | os.PathLike[str] | None = None) -> Path:
    """The docker-registry executable, or :class:`LocalRegistryError` saying how to install it."""
    candidate = str(binary) if binary is not None else os.environ.get("RECONCILER_REGISTRY_BINARY", DEFAULT_BINARY)
    resolved = shutil.which(candidate)
    if resolved is None:
        raise LocalRegistryError(f"docker-registry binary not found at {candidate!r}: {INSTALL_HINT}")
    return Path(resolved)


def bcrypt_hash(password: str) -> str:
    """A bcrypt hash of ``password`` for an htpasswd file (distribution accepts only bcrypt).

    Uses the ``bcrypt`` package (a dependency of the test kit: the standard library's ``crypt`` module,
    which earlier versions fell back on, was removed in Python 3.13). Cost 5 keeps tests fast; these are
    throwaway test credentials.
    """
    import bcrypt  # noqa: PLC0415 - only registries with Basic auth need it

    hashed: bytes = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5))
    return hashed.decode()


@dataclass(frozen=True, kw_only=True)
class TokenAuthConfig:
    """distribution's ``auth: token`` section: where clients get tokens, and what the registry trusts.

    ``rootcertbundle`` is a PEM file of the certificate(s) whose keys sign the tokens. distribution 2.8
    accepts a token whose JOSE header has either an ``x5c`` chain up to one of these certificates or a
    ``kid`` equal to the libtrust key id of one of their public keys.
    """

    realm: str
    service: str
    issuer: str
    rootcertbundle: Path


@dataclass(frozen=True, kw_only=True)
class RequestRecord:
    """One request as the registry logged it (its combined-format access log line)."""

    method: str
    uri: str
    status: int
    bytes_written: int
    user_agent: str

    @property
    def path(self) -> str:
        return self.uri.split("?", 1)[0]

    @property
    def query(self) -> str:
        return self.uri.split("?", 1)[1] if "?" in self.uri else ""

    @property
    def kind(self) -> RequestKind:
        """What the request was about: ``ping`` (``/v2/``), ``manifest``, ``blob``, ``upload``, ``tags``..."""
        return classify_path(self.path)[0]

    @property
    def repository(self) -> str | None:
        return classify_path(self.path)[1]

    @property
    def is_blob_write(self) -> bool:
        """A request that starts, continues or finishes a blob upload, or mounts a blob."""
        return self.kind == "upload" and self.method in ("POST", "PATCH", "PUT")


class LocalRegistry:
    """A ``docker-registry`` process on ``127.0.0.1:<free port>``. Use as a context manager.

    ``work_dir``: where the config, htpasswd and ``registry.log`` go (kept after stop, e.g. for the demo);
    without it a temporary directory, removed on stop. ``storage_dir``: where blobs and manifests live
    (created if missing, kept after stop); without it ``<work_dir>/storage``. ``basic_auth``:
    ``{username: password}`` for htpasswd Basic auth. ``token_auth``: the ``auth: token`` section. Both at
    once is refused (distribution takes one). ``blob_descriptor_cache``: the in-memory cache of blob
    descriptors the Debian package's config enables; turn it off for a test that removes blobs from the
    storage directory behind the registry's back (the cache would still answer for them).
    """

    def __init__(
        self,
        *,
        storage_dir: str | os.PathLike[str] | None = None,
        basic_auth: Mapping[str, str] | None = None,
        token_auth: TokenAuthConfig | None = None,
        binary: str | os.PathLike[str] | None = None,
        startup_timeout: float = 15.0,
        name: str = "registry",
        work_dir: str | os.PathLike[str] | None = None,
        blob_descriptor_cache: bool = True,
    ) -> None:
        if basic_auth and token_auth:
            raise ValueError("a registry takes either basic_auth or token_auth, not both")
        self.name = name
        self._binary_arg = binary
        self._basic_auth = dict(basic_auth) if basic_auth else None
        self._token_auth = token_auth
        self._blob_descriptor_cache = blob_descriptor_cache
        self._startup_timeout = startup_timeout
        self._given_storage = Path(storage_dir) if storage_dir is not None else None
        self._given_work_dir = Path(work_dir) if work_dir is not None else None
        self._work_dir: Path | None = None
        self._storage_dir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file: Any = None
        self._port: int | None = None

    def __repr__(self) -> str:
        state = f"{self.url}" if self._port is not None else "stopped"
        return f"LocalRegistry(name={self.name!r}, {state})"

    # -- lifecycle ------------------------------------------------------------------------------

    def start(self) -> LocalRegistry:
        if self._process is not None:
            raise LocalRegistryError(f"registry {self.name} is already running at {self.url}")
        binary = find_registry_binary(self._binary_arg)
        if self._given_work_dir is not None:
            self._given_work_dir.mkdir(parents=True, exist_ok=True)
            self._work_dir = self._given_work_dir
        else:
            self._work_dir = Path(tempfile.mkdtemp(prefix=f"reconciler-{self.name}-"))
        if self._given_storage is not None:
            self._given_storage.mkdir(parents=True, exist_ok=True)
            self._storage_dir = self._given_storage
        else:
            self._storage_dir = self._work_dir / "storage"
            self._storage_dir.mkdir(exist_ok=True)
        config_path = self._work_dir / "config.yml"
        config_path.write_text(json.dumps(self._config(), indent=2))  # JSON is YAML
        self._log_file = open(self.log_path, "wb")  # noqa: SIM115 - lives as long as the process; fresh per start
        self._process = subprocess.Popen(
            [str(binary), "serve", str(config_path)],
            stdin=subprocess.DEVNULL,
            # distribution lets REGISTRY_* variables override any config field (even http.addr): drop them
            env={k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")},
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C in the terminal is handled by us, not sent to the registry
        )
        try:
            self._port = self._wait_for_port()
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Terminate and reap the process; remove the temporary config, log and storage (given dirs are kept)."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        self._port = None
        if self._work_dir is not None and self._given_work_dir is None:
            # config, htpasswd, log and (when not given) the storage: all ours, all temporary
            shutil.rmtree(self._work_dir, ignore_errors=True)
            self._work_dir = None

    def __enter__(self) -> LocalRegistry:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        """The registry process's id while it runs (to signal it: freeze, kill); None when it is not running,
        so a pid the kernel may already have given to another process is never handed out."""
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    # -- addresses ------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise LocalRegistryError(f"registry {self.name} is not running")
        return self._port

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``: the registry part of an image reference."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://{self.host}"

    @property
    def storage_dir(self) -> Path:
        if self._storage_dir is None:
            raise LocalRegistryError(f"registry {self.name} was never started")
        return self._storage_dir

    @property
    def log_path(self) -> Path:
        if self._work_dir is None:
            raise LocalRegistryError(f"registry {self.name} was never started")
        return self._work_dir / "registry.log"

    # -- request log ----------------------------------------------------------------------------

    def request_log(self, *, timeout: float = 5.0) -> list[RequestRecord]:
        """Every request the registry has answered so far, in order.

        distribution writes a request's log line when its handler returns, which may be just after the
        client has read the response. So this first sends a marker request (a ``GET /v2/`` with a unique
        User-Agent) and waits until the marker appears in the log; marker requests are left out of the
        result.
        """
        marker = _MARKER_AGENT + uuid.uuid4().hex
        with contextlib.suppress(httpx.HTTPError):
            httpx.get(f"{self.url}/v2/", headers={"User-Agent": marker}, timeout=timeout)
        deadline = time.monotonic() + timeout
        while True:
            records = list(self._read_records())
            if any(r.user_agent == marker for r in records) or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        return [r for r in records if not r.user_agent.startswith(_MARKER_AGENT)]

    def mark(self) -> int:
        """A position in the request log: pass it to :meth:`requests_since` to see only later requests."""
        return len(self.request_log())

    def requests_since(self, mark: int) -> list[RequestRecord]:
        return self.request_log()[mark:]

    def cpu_seconds(self) -> float:
        """CPU seconds (user + system) the registry process has used so far; 0.0 when it is not running.
        Benchmarks take the difference around a run: the registries' share of what a run costs."""
        process = self._process
        if process is None:
            return 0.0
        try:
            fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return 0.0
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def _read_records(self) -> Iterator[RequestRecord]:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return
        # Only complete lines: the last one may be being written right now.
        for line in text.split("\n")[:-1]:
            match = _ACCESS_LINE.match(line)
            if match is None:
                continue  # the JSON application log lines
            size = match["size"]
            yield RequestRecord(
                method=match["method"],
                uri=match["uri"],
                status=int(match["status"]),
                bytes_written=int(size) if size.isdigit() else 0,
                user_agent=match["agent"],
            )

    # -- internals ------------------------------------------------------------------------------

    def _config(self) -> dict[str, Any]:
        assert self._work_dir is not None
        assert self._storage_dir is not None
        config: dict[str, Any] = {
            "version": 0.1,
            "log": {"level": "info", "formatter": "json", "accesslog": {"disabled": False}},
            "storage": {
                "filesystem": {"rootdirectory": str(self._storage_dir)},
                "delete": {"enabled": True},
                "maintenance": {"uploadpurging": {"enabled": False}},
            },
            "http": {"addr": "127.0.0.1:0", "secret": secrets.token_hex(16)},
        }
        if self._blob_descriptor_cache:
            # as in the config.yml the Debian package ships: blob descriptors (digest -> size, media type)
            # cached in memory instead of read from the filesystem on every blob HEAD, mount and manifest PUT
            config["storage"]["cache"] = {"blobdescriptor": "inmemory"}
        if self._basic_auth:
            htpasswd = self._work_dir / "htpasswd"
            htpasswd.write_text("".join(f"{user}:{bcrypt_hash(pw)}\n" for user, pw in self._basic_auth.items()))
            config["auth"] = {"htpasswd": {"realm": f"{self.name}-realm", "path": str(htpasswd)}}
        elif self._token_auth is not None:
            config["auth"] = {
                "token": {
                    "realm": self._token_auth.realm,
                    "service": self._token_auth.service,
                    "issuer": self._token_auth.issuer,
                    "rootcertbundle": str(self._token_auth.rootcertbundle),
                }
            }
        return config

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def _wait_for_port(self) -> int:
        deadline = time.monotonic() + self._startup_timeout
        while time.monotonic() < deadline:
            match = _LISTENING.search(self.log_path.read_text(errors="replace"))
            if match:
                return int(match.group(1))
            if self._process is not None and self._process.poll() is not None:
                raise LocalRegistryError(
                    f"docker-registry {self.name} exited with status {self._process.returncode} during start-up; "
                    f"log {self.log_path}:\n{self._log_tail()}"
                )
            time.sleep(0.02)
        raise LocalRegistryError(
            f"docker-registry {self.name} did not report its port within {self._startup_timeout}s; "
            f"log {self.log_path}:\n{self._log_tail()}"
        )

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self._startup_timeout
        last_error = "no answer"
        while time.monotonic() < deadline:
            try:
                response = httpx.get(f"{self.url}/v2/", timeout=2.0, headers={"User-Agent": _MARKER_AGENT + "ready"})
            except httpx.HTTPError as exc:
                last_error = type(exc).__name__
            else:
                if response.status_code in (200, 401):
                    return
                last_error = f"HTTP {response.status_code}"
            time.sleep(0.02)
        raise LocalRegistryError(
            f"docker-registry {self.name} at {self.url} did not answer /v2/ within {self._startup_timeout}s "
            f"({last_error}); log {self.log_path}:\n{self._log_tail()}"
        )
