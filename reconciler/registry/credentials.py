"""Where registry credentials come from: environment variables and Docker's ``config.json``.

Lookup order for a registry (first hit wins):

1. ``RECONCILER_REGISTRY_<NAME>_USERNAME`` / ``..._PASSWORD`` (or ``..._TOKEN``, an identity/refresh
   token), keyed by the registry's name in ``reconciler.yaml``; ``<NAME>`` is the name upper-cased with
   every character outside ``[A-Z0-9]`` replaced by ``_`` (``prod-a`` -> ``PROD_A``).
2. ``RECONCILER_AUTH_<HOST>_USERNAME`` / ``..._PASSWORD`` (or ``..._TOKEN``), keyed by ``host[:port]``
   the same way (``registry.example.com:5000`` -> ``REGISTRY_EXAMPLE_COM_5000``); this is the form for the
   CLI tools (``reconciler copy``), which know hosts, not names.
3. Docker's ``config.json`` (``$DOCKER_CONFIG/config.json``, else ``~/.docker/config.json``):
   ``credHelpers[host]``, else ``auths[host]`` (``auth`` base64 ``user:password``, ``username``/
   ``password``, ``identitytoken``), else ``credsStore``; helpers are run as
   ``docker-credential-<name> get`` with the host on stdin, as Docker does.

Nothing found means anonymous access. Secrets never reach a repr, a log line or an exception message:
``Credentials.__repr__`` masks them, and helper failures report the helper's name and exit status only.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import re
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from reconciler.errors import AuthError

log = logging.getLogger(__name__)

HELPER_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True, slots=True)
class Credentials:
    """A username and a secret for one registry. The secret is either a password (Basic auth, and the
    token flow's GET) or an identity token (the OAuth2 refresh-token flow Docker uses after ``login``)."""

    username: str
    password: str = field(default="", repr=False)
    identity_token: str | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        secret = "identity_token=***" if self.identity_token else "password=***"
        return f"Credentials(username={self.username!r}, {secret})"

    __str__ = __repr__


CredentialResolver = Callable[[str], "Credentials | None"]
"""Maps a registry host (``host[:port]``) to its credentials, or None for anonymous access."""


def _env_key(text: str) -> str:
    return re.sub(r"[^A-Z0-9]", "_", text.upper())


def _from_env(prefix: str, environ: Mapping[str, str]) -> Credentials | None:
    username = environ.get(f"{prefix}_USERNAME")
    password = environ.get(f"{prefix}_PASSWORD")
    token = environ.get(f"{prefix}_TOKEN")
    if token:
        return Credentials(username=username or "<token>", identity_token=token)
    if username is not None and password is not None:
        return Credentials(username=username, password=password)
    return None


def registry_env_prefix(registry_name: str) -> str:
    """``RECONCILER_REGISTRY_<NAME>``: the prefix of the variables for a registry named in reconciler.yaml."""
    return f"RECONCILER_REGISTRY_{_env_key(registry_name)}"


def host_env_prefix(host: str) -> str:
    """``RECONCILER_AUTH_<HOST>``: the prefix of the variables for a registry host."""
    return f"RECONCILER_AUTH_{_env_key(host)}"


def docker_config_path(environ: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    directory = environ.get("DOCKER_CONFIG")
    if directory:
        return Path(directory) / "config.json"
    home = environ.get("HOME")
    return (Path(home) if home else Path.home()) / ".docker" / "config.json"


def _host_aliases(host: str) -> tuple[str, ...]:
    # Docker writes Hub credentials under its legacy v1 URL, and some tools store "https://host".
    aliases = [host, f"https://{host}", f"http://{host}", f"https://{host}/v1/", f"https://{host}/v2/"]
    if host in ("docker.io", "registry-1.docker.io", "index.docker.io"):
        aliases += ["https://index.docker.io/v1/", "index.docker.io", "docker.io", "registry-1.docker.io"]
    return tuple(aliases)


def run_credential_helper(helper: str, host: str) -> Credentials | None:
    """Run ``docker-credential-<helper> get`` for ``host``. None when the helper knows no credentials."""
    program = f"docker-credential-{helper}"
    try:
        completed = subprocess.run(
            [program, "get"],
            input=host.encode(),
            capture_output=True,
            timeout=HELPER_TIMEOUT_SECONDS,
            check=False,
        )
    except FileNotFoundError as exc:
        raise AuthError(
            f"credential helper {program} is configured in config.json but not on PATH", registry=host
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise AuthError(f"credential helper {program} timed out", registry=host) from exc
    if completed.returncode != 0:
        # Helpers print "credentials not found in native keychain" for unknown hosts: anonymous, not an error.
        if b"not found" in completed.stdout.lower() or b"not found" in completed.stderr.lower():
            return None
        raise AuthError(f"credential helper {program} failed with exit status {completed.returncode}", registry=host)
    try:
        answer = json.loads(completed.stdout)
        username, secret = str(answer["Username"]), str(answer["Secret"])
    except (ValueError, KeyError, TypeError) as exc:
        raise AuthError(
            f"credential helper {program} printed something that is not credentials JSON", registry=host
        ) from exc
    if username == "<token>":
        return Credentials(username=username, identity_token=secret)
    return Credentials(username=username, password=secret)


def credentials_from_docker_config(host: str, path: Path | None = None) -> Credentials | None:
    """Credentials for ``host`` from a Docker ``config.json`` (helpers included), or None."""
    path = docker_config_path() if path is None else path
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise AuthError(f"cannot read Docker config {path}: {exc.strerror}", registry=host) from exc
    try:
        config = json.loads(text)
    except ValueError as exc:
        raise AuthError(f"Docker config {path} is not valid JSON", registry=host) from exc
    if not isinstance(config, dict):
        raise AuthError(f"Docker config {path} is not a JSON object", registry=host)
    aliases = _host_aliases(host)
    helpers = config.get("credHelpers") or {}
    if isinstance(helpers, dict):
        for alias in aliases:
            if isinstance(helpers.get(alias), str):
                return run_credential_helper(helpers[alias], host)
    auths = config.get("auths") or {}
    if isinstance(auths, dict):
        for alias in aliases:
            entry = auths.get(alias)
            if isinstance(entry, dict):
                found = _from_auth_entry(entry, host, path)
                if found is not None:
                    return found
    store = config.get("credsStore")
    if isinstance(store, str) and store:
        return run_credential_helper(store, host)
    return None


def _from_auth_entry(entry: Mapping[str, object], host: str, path: Path) -> Credentials | None:
    token = entry.get("identitytoken")
    username = entry.get("username")
    password = entry.get("password")
    auth = entry.get("auth")
    if isinstance(auth, str) and auth:
        try:
            decoded = base64.b64decode(auth, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise AuthError(f"Docker config {path}: the 'auth' entry for {host} is not base64 user:password") from exc
        if ":" not in decoded:
            raise AuthError(f"Docker config {path}: the 'auth' entry for {host} is not base64 user:password")
        username, _, password = decoded.partition(":")
    if isinstance(token, str) and token:
        return Credentials(username=str(username or "<token>"), identity_token=token)
    if isinstance(username, str) and isinstance(password, str) and username:
        return Credentials(username=username, password=password)
    return None


def credentials_for(
    host: str,
    *,
    registry_name: str | None = None,
    environ: Mapping[str, str] | None = None,
    docker_config: Path | None = None,
) -> Credentials | None:
    """Credentials for ``host`` (``host[:port]``), looked up in the documented order (module docstring)."""
    environ = os.environ if environ is None else environ
    if registry_name is not None:
        found = _from_env(registry_env_prefix(registry_name), environ)
        if found is not None:
            return found
    found = _from_env(host_env_prefix(host), environ)
    if found is not None:
        return found
    return credentials_from_docker_config(
        host, docker_config if docker_config is not None else docker_config_path(environ)
    )


def default_resolver(
    *,
    registry_name: str | None = None,
    environ: Mapping[str, str] | None = None,
    docker_config: Path | None = None,
) -> CredentialResolver:
    """A resolver doing :func:`credentials_for` lazily (only when a registry asks for authentication)."""

    def resolve(host: str) -> Credentials | None:
        return credentials_for(host, registry_name=registry_name, environ=environ, docker_config=docker_config)

    return resolve
