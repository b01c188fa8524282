"""The merge-request clients against a strict fake GitLab and GitHub on loopback (``support.fakeforge``).

Creating, then running the same promotion again, updates the open merge request instead of opening a
second one; every error status becomes a ``ForgeError`` whose message says what to do and never holds the
token, not even when the forge echoes it back.
"""

from __future__ import annotations

import socket
import traceback
from collections.abc import Iterator

import pytest
from support.fakeforge import FakeForge

from reconciler.errors import ReconcilerError
from reconciler.promote.forge import (
    ForgeAuthError,
    ForgeConflictError,
    ForgeError,
    ForgeKind,
    ForgeNotFoundError,
    ForgeSettings,
    ForgeUnavailableError,
    MergeRequestSpec,
    check_api_url,
    open_merge_request,
)

TOKEN = "glpat-Sup3rS3cretT0ken-zzyzx"
BRANCH = "promote/t/payments-api-20261128_01"
SPEC = MergeRequestSpec(
    source_branch=BRANCH,
    target_branch="main",
    title="Promote payments/api 20261128_01 to t",
    description="payments/api 20261128_01 (sha256:abc...) from d",
)
PROJECTS: dict[ForgeKind, str] = {"gitlab": "group/sub/project", "github": "owner/repo"}
SOURCES: dict[ForgeKind, str] = {"gitlab": "RECONCILER_GITLAB_TOKEN", "github": "RECONCILER_GITHUB_TOKEN"}


@pytest.fixture(params=["gitlab", "github"])
def forge(request: pytest.FixtureRequest) -> Iterator[FakeForge]:
    with FakeForge(request.param, token=TOKEN) as fake:
        yield fake


def settings_for(fake: FakeForge, *, token: str = TOKEN, project: str | None = None) -> ForgeSettings:
    return ForgeSettings(
        kind=fake.kind,
        api_url=fake.api_url,
        project=project or PROJECTS[fake.kind],
        token=token,
        token_source=SOURCES[fake.kind],
    )


def assert_no_token(error: BaseException) -> None:
    rendered = "".join(traceback.format_exception(error))
    for text in (str(error), repr(error), rendered):
        assert TOKEN not in text
        assert "S3cret" not in text


def test_create_then_the_same_promotion_updates_instead_of_duplicating(forge: FakeForge) -> None:
    first = open_merge_request(settings_for(forge), SPEC)
    assert first.created
    assert first.number == 1
    assert first.forge == forge.kind
    second = open_merge_request(settings_for(forge), MergeRequestSpec(BRANCH, "main", "Promote again", "new body"))
    assert not second.created
    assert (second.number, second.web_url) == (first.number, first.web_url)
    assert len(forge.merge_requests) == 1
    assert forge.merge_requests[0]["title"] == "Promote again"
    if forge.kind == "gitlab":
        assert first.web_url.endswith("/group/sub/project/-/merge_requests/1")
        assert [r.method for r in forge.requests] == ["GET", "POST", "GET", "PUT"]
        assert all(r.path.startswith("/api/v4/projects/group%2Fsub%2Fproject/merge_requests") for r in forge.requests)
        listing = forge.requests[0].query
        assert (listing["state"], listing["source_branch"], listing["target_branch"]) == (
            ["opened"],
            [BRANCH],
            ["main"],
        )
        created = forge.requests[1].body
        assert created == {
            "source_branch": BRANCH,
            "target_branch": "main",
            "title": SPEC.title,
            "description": SPEC.description,
            "remove_source_branch": True,
        }
        assert forge.merge_requests[0]["description"] == "new body"
        assert forge.requests[3].path.endswith("/merge_requests/1")
    else:
        assert first.web_url.endswith("/owner/repo/pull/1")
        assert [r.method for r in forge.requests] == ["GET", "POST", "GET", "PATCH"]
        assert all(r.path.startswith("/api/v3/repos/owner/repo/pulls") for r in forge.requests)
        assert forge.requests[0].query == {"state": ["open"], "head": [f"owner:{BRANCH}"], "base": ["main"]}
        assert forge.requests[1].body == {"head": BRANCH, "base": "main", "title": SPEC.title, "body": SPEC.description}
        assert forge.merge_requests[0]["body"] == "new body"
        for request in forge.requests:
            assert request.headers["accept"] == "application/vnd.github+json"
            assert request.headers["x-github-api-version"] == "2022-11-28"
    assert {r.headers["authorization"] for r in forge.requests} == {"Bearer ***"}


def test_a_create_that_races_another_run_updates_what_that_run_opened(forge: FakeForge) -> None:
    open_merge_request(settings_for(forge), SPEC)
    forge.stale_lists = 1  # the lookup misses it, so the create collides (GitLab 409, GitHub 422)
    again = open_merge_request(settings_for(forge), SPEC)
    assert not again.created
    assert len(forge.merge_requests) == 1
    assert [r.method for r in forge.requests][2:] == [
        "GET",
        "POST",
        "GET",
        "PUT" if forge.kind == "gitlab" else "PATCH",
    ]


@pytest.mark.parametrize(
    ("status", "error_type", "says"),
    [
        (401, ForgeAuthError, "refused the token from {source}"),
        (403, ForgeAuthError, "denied creating the"),
        (404, ForgeNotFoundError, "found no "),
        (409, ForgeConflictError, "refused creating the"),
        (422, ForgeConflictError, "refused creating the"),
        (500, ForgeUnavailableError, "try again later"),
    ],
)
def test_error_statuses_are_clear_and_never_hold_the_token(
    forge: FakeForge, status: int, error_type: type[ForgeError], says: str
) -> None:
    forge.fail_next(status, method="POST")
    with pytest.raises(error_type) as caught:
        open_merge_request(settings_for(forge), SPEC)
    error = caught.value
    message = str(error)
    name = "GitLab" if forge.kind == "gitlab" else "GitHub"
    assert message.startswith(name) or f" {name} " in f" {message}"
    assert says.format(source=SOURCES[forge.kind]) in message
    assert f"{status}" in message
    assert (error.status, error.forge) == (status, name)
    assert isinstance(error, ReconcilerError)
    assert error.temporary == (status == 500)
    assert_no_token(error)
    if status in (409, 422):  # the forge's own explanation is shown
        expected = "already exists" if (forge.kind, status) != ("gitlab", 422) else "target_branch is invalid"
        if (forge.kind, status) == ("github", 409):
            expected = "Conflict"
        assert expected in message


def test_a_forge_that_echoes_the_token_is_scrubbed(forge: FakeForge) -> None:
    forge.fail_next(401, message=f"token {TOKEN} is not valid, Authorization: Bearer {TOKEN}")
    with pytest.raises(ForgeAuthError) as caught:
        open_merge_request(settings_for(forge), SPEC)
    assert "***" in str(caught.value)
    assert_no_token(caught.value)


def test_a_wrong_token_is_refused_by_the_fake_as_by_the_forge(forge: FakeForge) -> None:
    with pytest.raises(ForgeAuthError, match=SOURCES[forge.kind]) as caught:
        open_merge_request(settings_for(forge, token="not-the-token-9876"), SPEC)
    assert "not-the-token-9876" not in str(caught.value)
    assert forge.merge_requests == []


def test_an_unknown_project_is_not_found(forge: FakeForge) -> None:
    project = "group/other" if forge.kind == "gitlab" else "owner/other"
    with pytest.raises(ForgeNotFoundError, match=f"no (project|repository) '{project}'"):
        open_merge_request(settings_for(forge, project=project), SPEC)


def test_github_checks_that_branches_exist() -> None:
    with FakeForge("github", token=TOKEN) as fake, pytest.raises(ForgeConflictError) as caught:
        open_merge_request(settings_for(fake), MergeRequestSpec("no-such-branch", "main", "t"))
    assert "PullRequest head invalid" in str(caught.value)


def test_connection_refused_is_temporary() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = ForgeSettings("gitlab", f"http://127.0.0.1:{port}/api/v4", "group/project", TOKEN, "GITLAB_TOKEN")
    with pytest.raises(ForgeUnavailableError, match=f"cannot reach GitLab at 127.0.0.1:{port}") as caught:
        open_merge_request(settings, SPEC, timeout=5)
    assert caught.value.temporary
    assert_no_token(caught.value)


def test_plain_http_only_to_loopback_and_no_credentials_in_api_urls() -> None:
    assert check_api_url("http://127.0.0.1:8080/api/v4/") == "http://127.0.0.1:8080/api/v4"
    assert check_api_url("https://gitlab.example.com/api/v4") == "https://gitlab.example.com/api/v4"
    with pytest.raises(ForgeError, match=r"plain HTTP to gitlab\.example\.com"):
        check_api_url("http://gitlab.example.com/api/v4")
    with pytest.raises(ForgeError, match="must not embed credentials") as caught:
        check_api_url(f"https://oauth2:{TOKEN}@gitlab.example.com/api/v4")
    assert_no_token(caught.value)
    with pytest.raises(ForgeError, match="not a valid URL"):
        check_api_url("https://gitlab.example.com:port/api/v4")
    with pytest.raises(ForgeError, match="CA bundle"):  # before any connection is tried
        open_merge_request(
            ForgeSettings("gitlab", "https://gitlab.example.com/api/v4", "g/p", TOKEN, ca_bundle="/nonexistent.pem"),
            SPEC,
        )


def test_settings_never_show_the_token() -> None:
    settings = ForgeSettings("github", "https://api.github.com", "owner/repo", TOKEN, "GITHUB_TOKEN")
    assert TOKEN not in repr(settings)
    assert TOKEN not in str(settings)
