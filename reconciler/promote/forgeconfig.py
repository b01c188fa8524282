"""Which forge, which project, which token: from the Git remote URL and the environment variables.

``parse_remote_url`` reads ``git@gitlab.example.com:group/sub/project.git``, ``ssh://git@host:2222/o/r``,
``https://user:secret@github.com/owner/repo.git`` and the like; credentials in the URL are dropped and
never echoed, not even in an error. ``resolve_forge_settings`` turns a remote plus a mapping of
environment variables (``os.environ`` in the CLI, a dict in tests) into ``ForgeSettings``:

- forge kind: the ``kind`` argument, else ``RECONCILER_FORGE`` (``gitlab`` / ``github``), else the host
  (``github.com`` or a name containing ``github`` -> GitHub; ``gitlab.com`` or containing ``gitlab`` ->
  GitLab), else the only forge that has a token variable set; otherwise an error asking for ``--forge``;
- API URL: the ``api_url`` argument, else ``RECONCILER_FORGE_API_URL``, else from the remote's host:
  ``https://api.github.com`` for github.com, ``https://HOST/api/v3`` for GitHub Enterprise Server,
  ``https://HOST/api/v4`` for GitLab (the port of an https remote is kept, an ssh port is not);
- project: the ``project`` argument, else the remote's path (GitHub needs exactly ``owner/repo``);
- token, first non-empty wins: the ``token`` argument, then GitLab ``RECONCILER_GITLAB_TOKEN``,
  ``GITLAB_TOKEN``; GitHub ``RECONCILER_GITHUB_TOKEN``, ``GITHUB_TOKEN``, ``GH_TOKEN``. ``CI_JOB_TOKEN`` is
  never used: GitLab does not accept job tokens on the merge request API.

This module reads no file and opens no connection; it never puts a token or a URL's credentials in a
message or a repr.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from reconciler.model.registryurl import is_loopback
from reconciler.promote.forge import (
    FORGE_NAMES,
    REQUIRED_SCOPES,
    ForgeAuthError,
    ForgeError,
    ForgeKind,
    ForgeSettings,
    check_api_url,
)

__all__ = ["TOKEN_VARIABLES", "GitRemote", "parse_remote_url", "resolve_forge_settings"]

TOKEN_VARIABLES: Mapping[str, tuple[str, ...]] = {
    "gitlab": ("RECONCILER_GITLAB_TOKEN", "GITLAB_TOKEN"),
    "github": ("RECONCILER_GITHUB_TOKEN", "GITHUB_TOKEN", "GH_TOKEN"),
}
FORGE_VARIABLE = "RECONCILER_FORGE"
API_URL_VARIABLE = "RECONCILER_FORGE_API_URL"

_SCHEMES = frozenset({"https", "http", "ssh", "git", "git+ssh", "ssh+git"})
_SEGMENT = re.compile(r"^[A-Za-z0-9_.][A-Za-z0-9_.-]*$")
_SCP_LIKE = re.compile(r"^(?:(?P<user>[^@/:]+)@)?(?P<host>[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):(?P<path>.*)$")
_CREDENTIALS = re.compile(r"(?<=://)[^/@\s]*@")


@dataclass(frozen=True, slots=True)
class GitRemote:
    """A remote URL reduced to what names a project on a forge; no user, no password."""

    scheme: str
    """``https``, ``http``, ``ssh`` (also for scp-like ``host:path``) or ``git``."""
    host: str
    """Lowercase host name or address, without port."""
    port: int | None
    path: str
    """``group/sub/project`` or ``owner/repo``: no ``.git``, no leading or trailing slash."""

    def __str__(self) -> str:
        port = f":{self.port}" if self.port is not None else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}{port}/{self.path}"


def _redacted(url: str) -> str:
    return _CREDENTIALS.sub("***@", url.strip())


def parse_remote_url(url: str) -> GitRemote:
    """The host and project path of a Git remote URL; ``ForgeError`` when it names no forge project."""
    text = url.strip()
    if "://" in text:
        parts = urlsplit(text)
        scheme = parts.scheme.lower()
        if scheme not in _SCHEMES:
            raise ForgeError(f"remote {_redacted(url)!r} is not a forge URL (scheme {scheme or 'none'!r})")
        try:
            host, port = parts.hostname, parts.port
        except ValueError as exc:
            raise ForgeError(f"remote {_redacted(url)!r} has an invalid port") from exc
        raw_path = parts.path
        scheme = "ssh" if "ssh" in scheme else scheme
        if scheme not in ("https", "http"):
            port = None  # an ssh port says nothing about where the API listens
    else:
        match = _SCP_LIKE.match(text)
        # Git's rule: scp-like when a colon comes before any slash, so local paths (``/x``, ``./x``,
        # ``~/x``) never match; ``~deploy@host:g/p`` does, and Git reaches it over ssh as user ``~deploy``.
        if match is None or match.group("host").startswith("."):
            raise ForgeError(f"remote {_redacted(url)!r} is a local path or not a URL; a forge remote is needed")
        scheme, host, port, raw_path = "ssh", match.group("host").strip("[]"), None, match.group("path")
    if not host:
        raise ForgeError(f"remote {_redacted(url)!r} names no host")
    path = raw_path.strip("/")
    path = path.removesuffix(".git").rstrip("/")
    segments = path.split("/")
    if len(segments) < 2 or not all(_SEGMENT.match(s) and s not in (".", "..") for s in segments):
        raise ForgeError(f"remote {_redacted(url)!r} does not name a project (expected host/group/project)")
    return GitRemote(scheme=scheme, host=host.lower(), port=port, path=path)


def _kind_from_host(host: str) -> ForgeKind | None:
    if host == "github.com" or "github" in host:
        return "github"
    if host == "gitlab.com" or "gitlab" in host:
        return "gitlab"
    return None


def _default_api_url(kind: ForgeKind, remote: GitRemote) -> str:
    if kind == "github" and remote.host == "github.com":
        return "https://api.github.com"
    scheme = "http" if remote.scheme == "http" and is_loopback(remote.host) else "https"
    host = f"[{remote.host}]" if ":" in remote.host else remote.host
    port = f":{remote.port}" if remote.port is not None else ""
    return f"{scheme}://{host}{port}/api/{'v3' if kind == 'github' else 'v4'}"


def _token(kind: ForgeKind, environ: Mapping[str, str]) -> tuple[str, str]:
    for name in TOKEN_VARIABLES[kind]:
        value = environ.get(name, "").strip()
        if value:
            return value, name
    names = " or ".join(TOKEN_VARIABLES[kind])
    hint = ""
    if kind == "gitlab" and environ.get("CI_JOB_TOKEN"):
        hint = " (CI_JOB_TOKEN is set but cannot be used: GitLab refuses job tokens on the merge request API)"
    raise ForgeAuthError(
        f"no {FORGE_NAMES[kind]} token: set {names} to a token with {REQUIRED_SCOPES[kind]}{hint}",
        forge=FORGE_NAMES[kind],
    )


def resolve_forge_settings(
    remote_url: str | None,
    environ: Mapping[str, str],
    *,
    kind: ForgeKind | None = None,
    api_url: str | None = None,
    project: str | None = None,
    token: str | None = None,
    ca_bundle: str | None = None,
) -> ForgeSettings:
    """Forge, API URL, project and token by the precedence in this module's docstring."""
    remote = parse_remote_url(remote_url) if remote_url else None
    chosen = kind or environ.get(FORGE_VARIABLE, "").strip().lower() or None
    if chosen is not None and chosen not in FORGE_NAMES:
        raise ForgeError(f"{FORGE_VARIABLE}={chosen!r}: expected 'gitlab' or 'github'")
    if chosen is None and remote is not None:
        chosen = _kind_from_host(remote.host)
    if chosen is None:
        with_tokens = [name for name, variables in TOKEN_VARIABLES.items() if any(environ.get(v) for v in variables)]
        if len(with_tokens) == 1:
            chosen = with_tokens[0]
    if chosen not in ("gitlab", "github"):
        where = f"remote host {remote.host!r}" if remote is not None else "no remote"
        raise ForgeError(f"cannot tell whether this is GitLab or GitHub ({where}): pass --forge gitlab|github")
    forge: ForgeKind = "gitlab" if chosen == "gitlab" else "github"
    url = api_url or environ.get(API_URL_VARIABLE, "").strip() or None
    if url is None:
        if remote is None:
            raise ForgeError(f"no remote URL and no API URL: set {API_URL_VARIABLE} or pass the API URL")
        url = _default_api_url(forge, remote)
    url = check_api_url(url)
    name = project or (remote.path if remote is not None else None)
    if not name:
        raise ForgeError("no project: pass it, or run from a clone whose remote names it")
    name = name.strip("/")
    if forge == "github" and name.count("/") != 1:
        raise ForgeError(f"a GitHub repository is owner/repo, not {name!r}")
    if token is not None and token.strip():
        secret, source = token.strip(), "the token argument"
    else:
        secret, source = _token(forge, environ)
    return ForgeSettings(kind=forge, api_url=url, project=name, token=secret, token_source=source, ca_bundle=ca_bundle)
