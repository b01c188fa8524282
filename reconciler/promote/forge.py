"""Open (or update) the merge request of a promotion on GitLab or GitHub, through their REST APIs.

``open_merge_request(settings, spec)`` looks for an OPEN merge request from the same source branch into
the same target branch; it updates that one's title and description, else creates one, so running the
same promotion twice never opens a duplicate. If creating races with another run (GitLab 409 "Another
open merge request already exists", GitHub 422 "A pull request already exists"), it looks again once and
updates what it finds.

- GitLab (REST v4): ``GET/POST /projects/:id/merge_requests``, ``PUT /projects/:id/merge_requests/:iid``,
  the project id being the URL-encoded path (``group%2Fsub%2Fproject``).
- GitHub (REST, also GitHub Enterprise Server at ``https://host/api/v3``): ``GET/POST
  /repos/{owner}/{repo}/pulls``, ``PATCH /repos/{owner}/{repo}/pulls/{number}``, with
  ``Accept: application/vnd.github+json`` and ``X-GitHub-Api-Version: 2022-11-28``.

Both are sent ``Authorization: Bearer <token>`` (GitLab documents it for personal, project and group
access tokens as well as OAuth tokens). The client is synchronous on purpose: a promotion makes two or
three requests one after the other, from a CLI command that has no event loop to share.

Errors are mapped at ONE place (``_ForgeClient._send``) to ``ForgeError`` and its subclasses, with the
forge, the status and the API's own message, scrubbed. This module never prints, logs or raises the
token: it lives in a request header set by ``_BearerAuth`` and in ``ForgeSettings`` with ``repr=False``;
every message passes through ``_scrub``. It speaks HTTPS, and plain HTTP only to loopback (tests).
"""

from __future__ import annotations

import re
import ssl
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal
from urllib.parse import quote, urlsplit

import httpx

from reconciler.errors import ReconcilerError
from reconciler.model.redact import redact
from reconciler.model.registryurl import is_loopback

__all__ = [
    "ForgeAuthError",
    "ForgeConflictError",
    "ForgeError",
    "ForgeKind",
    "ForgeNotFoundError",
    "ForgeSettings",
    "ForgeUnavailableError",
    "GitHubClient",
    "GitLabClient",
    "MergeRequest",
    "MergeRequestSpec",
    "check_api_url",
    "forge_client",
    "open_merge_request",
]

ForgeKind = Literal["gitlab", "github"]
FORGE_NAMES: Mapping[str, str] = {"gitlab": "GitLab", "github": "GitHub"}
REQUIRED_SCOPES: Mapping[str, str] = {
    "gitlab": "the api scope and at least the Developer role",
    "github": "'Pull requests: read and write' (fine-grained) or the repo scope (classic)",
}
_TIMEOUT = 30.0
_MAX_MESSAGE = 300


class ForgeError(ReconcilerError):
    """Talking to GitLab or GitHub failed. ``forge`` and ``status`` say where and how; the message never
    holds a token."""

    def __init__(self, message: str, *, forge: str | None = None, status: int | None = None) -> None:
        self.forge = forge
        self.status = status
        super().__init__(message)


class ForgeAuthError(ForgeError):
    """401/403, or no token at all: the message names the environment variable the token came from."""


class ForgeNotFoundError(ForgeError):
    """404: the project (or a branch) does not exist, or the token cannot see it."""


class ForgeConflictError(ForgeError):
    """400/409/422: the forge refused the request (a duplicate, a missing branch); its message is kept."""


class ForgeUnavailableError(ForgeError):
    """429, 5xx, a refused or dropped connection, a timeout: temporary, worth trying again later."""

    temporary = True


@dataclass(frozen=True, slots=True)
class ForgeSettings:
    """Where and as whom to open merge requests (see ``reconciler.promote.forgeconfig``)."""

    kind: ForgeKind
    api_url: str
    """``https://gitlab.example.com/api/v4``, ``https://api.github.com`` or ``https://ghe.example.com/api/v3``."""
    project: str
    """GitLab: ``group/sub/project``; GitHub: ``owner/repo``."""
    token: str = field(repr=False)
    token_source: str = "the token argument"  # noqa: S105 - a description, not a secret
    """Where the token came from (an environment variable's name), for error messages."""
    ca_bundle: str | None = None
    """PEM file of extra CAs to trust (self-hosted forges); the system CA store is always used."""

    @property
    def forge_name(self) -> str:
        return FORGE_NAMES[self.kind]


@dataclass(frozen=True, slots=True)
class MergeRequestSpec:
    source_branch: str
    target_branch: str
    title: str
    description: str = ""
    remove_source_branch: bool = True
    """GitLab only: delete the source branch when merged (GitHub decides this in the repository settings)."""


@dataclass(frozen=True, slots=True)
class MergeRequest:
    """The merge request (GitLab ``iid``) or pull request (GitHub ``number``) that now holds the promotion."""

    forge: ForgeKind
    number: int
    web_url: str
    created: bool
    """True when this call opened it, False when an open one was found and updated."""


def check_api_url(url: str) -> str:
    """``url`` without a trailing slash; HTTPS, or plain HTTP to loopback only; no credentials."""
    try:
        parts = urlsplit(url)
        _ = parts.port  # a port that is not a number raises here, not in the middle of a request
    except ValueError:
        raise ForgeError(f"the forge API URL {_scrub(url, '')!r} is not a valid URL") from None
    if parts.username is not None or parts.password is not None:
        raise ForgeError("the forge API URL must not embed credentials; pass the token through the environment")
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ForgeError(f"the forge API URL must be https://host[/path], not {_scrub(url, '')!r}")
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ForgeError(f"refusing plain HTTP to {parts.hostname}: a forge API is spoken to over HTTPS only")
    return url.rstrip("/")


_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def _scrub(text: str, token: str) -> str:
    """One line, no token, nothing that looks like a credential, bounded length."""
    text = _CONTROL.sub(" ", redact(text, [token])).strip()
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


def _api_message(response: httpx.Response) -> str:
    """The forge's own explanation: GitLab ``message`` (text, list or field map) or ``error``; GitHub
    ``message`` plus each ``errors[]`` entry."""
    try:
        body = response.json()
    except ValueError:
        return response.reason_phrase
    if not isinstance(body, dict):
        return response.reason_phrase
    parts: list[str] = []
    message = body.get("message", body.get("error"))
    if isinstance(message, str):
        parts.append(message)
    elif isinstance(message, list):
        parts.extend(str(item) for item in message)
    elif isinstance(message, dict):
        parts.extend(f"{key} {'; '.join(map(str, v)) if isinstance(v, list) else v}" for key, v in message.items())
    for error in body.get("errors", []) if isinstance(body.get("errors"), list) else []:
        if isinstance(error, dict):
            detail = error.get("message") or " ".join(
                str(error[k]) for k in ("resource", "field", "code") if error.get(k) is not None
            )
            parts.append(str(detail))
        else:
            parts.append(str(error))
    return ": ".join(parts) if parts else response.reason_phrase


def _retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds, when the forge sent it as a number."""
    try:
        return max(0.0, float(response.headers.get("retry-after", "")))
    except ValueError:
        return None


class _BearerAuth(httpx.Auth):
    """Adds the token to each request; the only place the token meets the wire."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __repr__(self) -> str:
        return "_BearerAuth(token=***)"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token}"
        yield request


class _ForgeClient:
    """The HTTP side shared by both forges: one client, one error mapping."""

    extra_headers: Mapping[str, str] = {}

    def __init__(self, settings: ForgeSettings, *, timeout: float = _TIMEOUT) -> None:
        self.settings = settings
        base = check_api_url(settings.api_url)
        verify: ssl.SSLContext | bool = False
        if base.startswith("https://"):
            try:
                verify = ssl.create_default_context(cafile=settings.ca_bundle)
            except (OSError, ssl.SSLError) as exc:
                raise ForgeError(f"cannot use the CA bundle {settings.ca_bundle!r}: {exc}") from exc
        self._client = httpx.Client(
            base_url=base,
            auth=_BearerAuth(settings.token),
            headers={"User-Agent": "reconciler-promote", **self.extra_headers},
            timeout=timeout,
            verify=verify,
            follow_redirects=False,
        )

    def __enter__(self) -> _ForgeClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def _send(
        self, method: str, path: str, *, what: str, params: Mapping[str, str] | None = None, body: Any = None
    ) -> Any:
        """One request; its JSON answer, or the matching ``ForgeError`` (the one mapping point)."""
        settings, name = self.settings, self.settings.forge_name
        try:
            response = self._client.request(method, path, params=params, json=body)
        except httpx.TimeoutException as exc:
            raise ForgeUnavailableError(f"{name} did not answer in time while {what}", forge=name) from exc
        except httpx.TransportError as exc:
            host = urlsplit(settings.api_url).netloc
            reason = _scrub(str(exc) or type(exc).__name__, settings.token)
            raise ForgeUnavailableError(f"cannot reach {name} at {host} while {what}: {reason}", forge=name) from exc
        status = response.status_code
        if status < 300:
            try:
                return response.json()
            except ValueError as exc:
                raise ForgeError(f"{name} answered {what} with something that is not JSON", forge=name) from exc
        detail = _scrub(_api_message(response), settings.token)
        if not detail.startswith(str(status)):  # GitLab's messages already start with it ("404 Not found")
            detail = f"{status}: {detail}"
        if status == 401:
            raise ForgeAuthError(
                f"{name} refused the token from {settings.token_source} ({detail}) while {what}: check that "
                f"it is valid and not expired; it needs {REQUIRED_SCOPES[settings.kind]}",
                forge=name,
                status=status,
            )
        if status == 429 or (status == 403 and response.headers.get("x-ratelimit-remaining") == "0"):
            error = ForgeUnavailableError(
                f"{name} rate limit reached while {what}: try again later", forge=name, status=status
            )
            error.retry_after = _retry_after(response)
            raise error
        if status == 403:
            raise ForgeAuthError(
                f"{name} denied {what} to the token from {settings.token_source} ({detail}): it needs "
                f"{REQUIRED_SCOPES[settings.kind]} on {settings.project}",
                forge=name,
                status=status,
            )
        if status == 404:
            thing = "project" if settings.kind == "gitlab" else "repository"
            raise ForgeNotFoundError(
                f"{name} found no {thing} {settings.project!r} at {settings.api_url} ({detail}) while {what}: "
                f"check the project path, and that the token from {settings.token_source} can see it",
                forge=name,
                status=status,
            )
        if status in (400, 409, 422):
            raise ForgeConflictError(f"{name} refused {what} ({detail})", forge=name, status=status)
        if status >= 500:
            error = ForgeUnavailableError(
                f"{name} failed while {what} ({detail}): try again later", forge=name, status=status
            )
            error.retry_after = _retry_after(response)
            raise error
        raise ForgeError(f"{name} answered {what} with {detail}", forge=name, status=status)

    # -- what each forge implements --------------------------------------------------------------

    def find_open(self, spec: MergeRequestSpec) -> MergeRequest | None:
        raise NotImplementedError

    def create(self, spec: MergeRequestSpec) -> MergeRequest:
        raise NotImplementedError

    def update(self, number: int, spec: MergeRequestSpec) -> MergeRequest:
        raise NotImplementedError

    def open_or_update(self, spec: MergeRequestSpec) -> MergeRequest:
        existing = self.find_open(spec)
        if existing is not None:
            return self.update(existing.number, spec)
        try:
            return self.create(spec)
        except ForgeConflictError:
            existing = self.find_open(spec)  # another run opened it meanwhile
            if existing is None:
                raise
            return self.update(existing.number, spec)

    def _merge_request(self, answer: Any, number_field: str, url_field: str, *, created: bool) -> MergeRequest:
        if not isinstance(answer, dict) or not isinstance(answer.get(number_field), int):
            raise ForgeError(f"{self.settings.forge_name} answered without a merge request {number_field}")
        return MergeRequest(self.settings.kind, answer[number_field], str(answer.get(url_field, "")), created)


class GitLabClient(_ForgeClient):
    def _path(self, suffix: str = "") -> str:
        return f"/projects/{quote(self.settings.project, safe='')}/merge_requests{suffix}"

    def find_open(self, spec: MergeRequestSpec) -> MergeRequest | None:
        params = {"state": "opened", "source_branch": spec.source_branch, "target_branch": spec.target_branch}
        answer = self._send("GET", self._path(), what="looking for an open merge request", params=params)
        for item in answer if isinstance(answer, list) else []:
            if isinstance(item, dict) and item.get("source_branch") == spec.source_branch:
                return self._merge_request(item, "iid", "web_url", created=False)
        return None

    def create(self, spec: MergeRequestSpec) -> MergeRequest:
        body = {
            "source_branch": spec.source_branch,
            "target_branch": spec.target_branch,
            "title": spec.title,
            "description": spec.description,
            "remove_source_branch": spec.remove_source_branch,
        }
        answer = self._send("POST", self._path(), what="creating the merge request", body=body)
        return self._merge_request(answer, "iid", "web_url", created=True)

    def update(self, number: int, spec: MergeRequestSpec) -> MergeRequest:
        body = {"title": spec.title, "description": spec.description}
        answer = self._send("PUT", self._path(f"/{number}"), what=f"updating merge request !{number}", body=body)
        return self._merge_request(answer, "iid", "web_url", created=False)


class GitHubClient(_ForgeClient):
    extra_headers: Mapping[str, str] = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}

    def _path(self, suffix: str = "") -> str:
        owner, _, repo = self.settings.project.partition("/")
        return f"/repos/{quote(owner, safe='')}/{quote(repo, safe='')}/pulls{suffix}"

    def find_open(self, spec: MergeRequestSpec) -> MergeRequest | None:
        owner = self.settings.project.partition("/")[0]
        params = {"state": "open", "head": f"{owner}:{spec.source_branch}", "base": spec.target_branch}
        answer = self._send("GET", self._path(), what="looking for an open pull request", params=params)
        for item in answer if isinstance(answer, list) else []:
            if isinstance(item, dict):
                return self._merge_request(item, "number", "html_url", created=False)
        return None

    def create(self, spec: MergeRequestSpec) -> MergeRequest:
        body = {"head": spec.source_branch, "base": spec.target_branch, "title": spec.title, "body": spec.description}
        answer = self._send("POST", self._path(), what="creating the pull request", body=body)
        return self._merge_request(answer, "number", "html_url", created=True)

    def update(self, number: int, spec: MergeRequestSpec) -> MergeRequest:
        body = {"title": spec.title, "body": spec.description}
        answer = self._send("PATCH", self._path(f"/{number}"), what=f"updating pull request #{number}", body=body)
        return self._merge_request(answer, "number", "html_url", created=False)


def forge_client(settings: ForgeSettings, *, timeout: float = _TIMEOUT) -> _ForgeClient:
    """The client for ``settings.kind``; close it (or use it as a context manager)."""
    if settings.kind == "gitlab":
        return GitLabClient(settings, timeout=timeout)
    return GitHubClient(settings, timeout=timeout)


def open_merge_request(settings: ForgeSettings, spec: MergeRequestSpec, *, timeout: float = _TIMEOUT) -> MergeRequest:
    """Open the merge request of ``spec``, or update the open one from the same branch into the same target."""
    with forge_client(settings, timeout=timeout) as client:
        return client.open_or_update(spec)
