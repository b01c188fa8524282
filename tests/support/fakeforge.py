"""A fake GitLab or GitHub for the merge-request client: just their MR/PR endpoints, checked strictly.

``FakeForge("gitlab")`` serves GitLab's REST v4 under ``/api/v4``; ``FakeForge("github")`` serves GitHub's
REST API as GitHub Enterprise Server does, under ``/api/v3``. Both listen on ``127.0.0.1:<free port>`` in a
background thread (a context manager starts and stops it) and keep their merge requests in memory.

What is CHECKED, answered with the real APIs' status codes and error bodies:

- auth: GitLab ``PRIVATE-TOKEN: <t>`` or ``Authorization: Bearer <t>``; GitHub ``Authorization: Bearer <t>``
  or ``token <t>``; anything else 401 (``{"message": "401 Unauthorized"}`` / ``"Bad credentials"``);
- paths and methods: GitLab ``GET|POST /projects/:id/merge_requests``, ``PUT .../merge_requests/:iid``
  where ``:id`` is the URL-ENCODED project path (a raw ``/`` inside it is a different route: 404);
  GitHub ``GET|POST /repos/{owner}/{repo}/pulls``, ``PATCH .../pulls/{number}``; unknown project 404;
- GitHub's ``Accept`` (``application/vnd.github+json`` or ``application/json``) and
  ``X-GitHub-Api-Version`` (``2022-11-28``) when sent (400 otherwise);
- payloads: a JSON object; GitLab needs ``source_branch``, ``target_branch``, ``title`` (400 ``{"error":
  "title is missing"}``), answers 409 for a second open MR of the same branches; GitHub needs ``head``,
  ``base``, ``title`` (422 ``missing_field``), checks that both branches exist (422 ``invalid``) and
  answers 422 "A pull request already exists for owner:branch." for a duplicate;
- list filters: GitLab ``state`` / ``source_branch`` / ``target_branch``; GitHub ``state`` / ``head``
  (``owner:branch``) / ``base``.

``fail_next(status)`` makes the next request (optionally only for one method) answer ``status`` with that
forge's real error body; ``stale_lists`` makes list requests answer ``[]`` (a search index lagging
behind). Every request is recorded in ``requests`` with its token replaced by ``***``.

Test-only code: never imported by the product.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal
from urllib.parse import parse_qs, unquote, urlsplit

ForgeKind = Literal["gitlab", "github"]
DOCS = "https://docs.github.com/rest/pulls/pulls"

GITLAB_ERRORS: dict[int, Any] = {
    401: {"message": "401 Unauthorized"},
    403: {"message": "403 Forbidden"},
    404: {"message": "404 Project Not Found"},
    409: {"message": ["Another open merge request already exists for this source branch: !1"]},
    422: {"message": {"target_branch": ["is invalid"]}},
    500: {"message": "500 Internal Server Error"},
}
GITHUB_ERRORS: dict[int, Any] = {
    401: {"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest", "status": "401"},
    403: {"message": "Resource not accessible by personal access token", "documentation_url": DOCS, "status": "403"},
    404: {"message": "Not Found", "documentation_url": DOCS, "status": "404"},
    409: {"message": "Conflict", "documentation_url": DOCS, "status": "409"},
    422: {
        "message": "Validation Failed",
        "errors": [{"resource": "PullRequest", "code": "custom", "message": "A pull request already exists"}],
        "documentation_url": DOCS,
        "status": "422",
    },
    500: {"message": "Server Error"},
}


@dataclass
class RecordedRequest:
    method: str
    path: str
    """The raw request target's path, still URL-encoded."""
    query: dict[str, list[str]]
    headers: dict[str, str]
    """Lower-case names; the token is replaced by ``***``."""
    body: Any


@dataclass
class _Failure:
    status: int
    method: str | None
    message: str | None


@dataclass
class FakeForge:
    kind: ForgeKind
    token: str = field(default="glpat-fake-token-0123456789", repr=False)
    projects: set[str] = field(default_factory=lambda: {"group/sub/project", "owner/repo"})
    branches: set[str] = field(default_factory=lambda: {"main", "promote/t/payments-api-20261128_01"})
    requests: list[RecordedRequest] = field(default_factory=list)
    merge_requests: list[dict[str, Any]] = field(default_factory=list)
    stale_lists: int = 0
    _failures: list[_Failure] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- lifecycle ------------------------------------------------------------------------------

    def __enter__(self) -> FakeForge:
        forge = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                status, body = forge._answer(self.command, self.path, dict(self.headers.items()), raw)
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle  # noqa: N815

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    @property
    def origin(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def api_url(self) -> str:
        return f"{self.origin}/api/{'v4' if self.kind == 'gitlab' else 'v3'}"

    def fail_next(self, status: int, *, method: str | None = None, message: str | None = None) -> None:
        """The next request (of ``method``, if given) answers ``status`` with the forge's error body;
        ``message`` replaces the body's message (to test what a client does with what a forge says)."""
        self._failures.append(_Failure(status, method, message))

    def requests_by(self, method: str) -> list[RecordedRequest]:
        return [request for request in self.requests if request.method == method]

    # -- the API --------------------------------------------------------------------------------

    def _answer(self, method: str, target: str, headers: dict[str, str], raw: bytes) -> tuple[int, Any]:
        with self._lock:
            lower = {name.lower(): value.replace(self.token, "***") for name, value in headers.items()}
            parts = urlsplit(target)
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode(errors="replace")
            self.requests.append(RecordedRequest(method, parts.path, parse_qs(parts.query), lower, body))
            if not self._authorized(headers):
                return 401, self._error(401)
            for failure in self._failures:
                if failure.method in (None, method):
                    self._failures.remove(failure)
                    return failure.status, self._error(failure.status, failure.message)
            if self.kind == "gitlab":
                return self._gitlab(method, parts.path, parse_qs(parts.query), body)
            return self._github(method, parts.path, parse_qs(parts.query), lower, body)

    def _error(self, status: int, message: str | None = None) -> Any:
        body = dict((GITLAB_ERRORS if self.kind == "gitlab" else GITHUB_ERRORS).get(status, {"message": "error"}))
        if message is not None:
            body["message"] = message
        return body

    def _authorized(self, headers: dict[str, str]) -> bool:
        lower = {name.lower(): value for name, value in headers.items()}
        accepted = {f"Bearer {self.token}"} | ({f"token {self.token}"} if self.kind == "github" else set())
        if self.kind == "gitlab" and lower.get("private-token") == self.token:
            return True
        return lower.get("authorization") in accepted

    def _listing(self, items: Iterable[dict[str, Any]]) -> tuple[int, Any]:
        if self.stale_lists > 0:
            self.stale_lists -= 1
            return 200, []
        return 200, list(items)

    def _gitlab(self, method: str, path: str, query: dict[str, list[str]], body: Any) -> tuple[int, Any]:
        prefix = "/api/v4/projects/"
        rest = path[len(prefix) :] if path.startswith(prefix) else ""
        project_id, _, route = rest.partition("/")
        project = unquote(project_id)
        if not rest or "/" not in project or project not in self.projects:
            return 404, {"message": "404 Project Not Found"}
        mine = [mr for mr in self.merge_requests if mr["project"] == project]
        one = {k: v[0] for k, v in query.items()}
        if route == "merge_requests" and method == "GET":
            if one.get("state", "all") not in ("opened", "closed", "locked", "merged", "all"):
                return 400, {"error": "state does not have a valid value"}
            return self._listing(
                mr
                for mr in mine
                if one.get("state", "all") in ("all", mr["state"])
                and one.get("source_branch", mr["source_branch"]) == mr["source_branch"]
                and one.get("target_branch", mr["target_branch"]) == mr["target_branch"]
            )
        if route == "merge_requests" and method == "POST":
            if not isinstance(body, dict):
                return 400, {"error": "source_branch is missing, target_branch is missing, title is missing"}
            missing = [name for name in ("source_branch", "target_branch", "title") if not body.get(name)]
            if missing:
                return 400, {"error": ", ".join(f"{name} is missing" for name in missing)}
            for mr in mine:
                same = (mr["source_branch"], mr["target_branch"]) == (body["source_branch"], body["target_branch"])
                if mr["state"] == "opened" and same:
                    message = f"Another open merge request already exists for this source branch: !{mr['iid']}"
                    return 409, {"message": [message]}
            iid = len(mine) + 1
            mr = {
                "id": 1000 + len(self.merge_requests),
                "iid": iid,
                "project": project,
                "state": "opened",
                "title": body["title"],
                "description": body.get("description", ""),
                "source_branch": body["source_branch"],
                "target_branch": body["target_branch"],
                "force_remove_source_branch": bool(body.get("remove_source_branch", False)),
                "web_url": f"{self.origin}/{project}/-/merge_requests/{iid}",
            }
            self.merge_requests.append(mr)
            return 201, mr
        if route.startswith("merge_requests/") and method == "PUT":
            found = next((mr for mr in mine if str(mr["iid"]) == route.split("/", 1)[1]), None)
            if found is None:
                return 404, {"message": "404 Not found"}
            updates = {k: v for k, v in (body or {}).items() if k in ("title", "description", "target_branch")}
            if not updates:
                return 400, {
                    "error": "title, description, target_branch are missing, at least one parameter must be provided"
                }
            found.update(updates)
            return 200, found
        if route.startswith("merge_requests"):
            return 405, {"error": "405 Method Not Allowed"}
        return 404, {"error": "404 Not Found"}

    def _github(
        self, method: str, path: str, query: dict[str, list[str]], headers: dict[str, str], body: Any
    ) -> tuple[int, Any]:
        accept = headers.get("accept", "application/vnd.github+json")
        if accept not in ("application/vnd.github+json", "application/json", "*/*"):
            return 415, {"message": f"Unsupported 'Accept' header: {accept}", "documentation_url": DOCS}
        version = headers.get("x-github-api-version", "2022-11-28")
        if version != "2022-11-28":
            return 400, {"message": f"API version {version!r} is not supported.", "documentation_url": DOCS}
        segments = path.split("/")
        if segments[:4] != ["", "api", "v3", "repos"] or len(segments) < 7 or segments[6] != "pulls":
            return 404, self._error(404)
        owner, repo, rest = segments[4], segments[5], segments[7:]
        project = f"{owner}/{repo}"
        if project not in self.projects:
            return 404, self._error(404)
        mine = [pr for pr in self.merge_requests if pr["project"] == project]
        one = {k: v[0] for k, v in query.items()}
        if not rest and method == "GET":
            return self._listing(
                pr
                for pr in mine
                if one.get("state", "open") in ("all", pr["state"])
                and one.get("head", pr["head"]["label"]) == pr["head"]["label"]
                and one.get("base", pr["base"]["ref"]) == pr["base"]["ref"]
            )
        if not rest and method == "POST":
            if not isinstance(body, dict):
                return 400, {"message": "Problems parsing JSON", "documentation_url": DOCS}
            errors = [
                {"resource": "PullRequest", "code": "missing_field", "field": name}
                for name in ("head", "base", "title")
                if not body.get(name)
            ]
            errors += [
                {"resource": "PullRequest", "code": "invalid", "field": name}
                for name in ("head", "base")
                if body.get(name) and body[name].rpartition(":")[2] not in self.branches
            ]
            label = f"{owner}:{body.get('head', '')}"
            if not errors and any(pr["state"] == "open" and pr["head"]["label"] == label for pr in mine):
                errors = [
                    {
                        "resource": "PullRequest",
                        "code": "custom",
                        "message": f"A pull request already exists for {label}.",
                    }
                ]
            if errors:
                return 422, {
                    "message": "Validation Failed",
                    "errors": errors,
                    "documentation_url": DOCS,
                    "status": "422",
                }
            number = len(self.merge_requests) + 1
            pr = {
                "number": number,
                "project": project,
                "state": "open",
                "title": body["title"],
                "body": body.get("body"),
                "head": {"ref": body["head"], "label": label},
                "base": {"ref": body["base"]},
                "html_url": f"{self.origin}/{project}/pull/{number}",
            }
            self.merge_requests.append(pr)
            return 201, pr
        if len(rest) == 1 and method == "PATCH":
            found = next((pr for pr in mine if str(pr["number"]) == rest[0]), None)
            if found is None:
                return 404, self._error(404)
            found.update({k: v for k, v in (body or {}).items() if k in ("title", "body", "state")})
            return 200, found
        return 404, self._error(404)
