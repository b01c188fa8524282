"""Forge settings from a Git remote URL and environment variables: parsing, precedence, and no echoed secret."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from reconciler.promote.forge import ForgeAuthError, ForgeError
from reconciler.promote.forgeconfig import GitRemote, parse_remote_url, resolve_forge_settings

SECRET = "ghp_Pr1vateV4lue0123456789"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "git@gitlab.example.com:group/sub/project.git",
            GitRemote("ssh", "gitlab.example.com", None, "group/sub/project"),
        ),
        ("gitlab.example.com:group/project", GitRemote("ssh", "gitlab.example.com", None, "group/project")),
        ("https://github.com/owner/repo.git", GitRemote("https", "github.com", None, "owner/repo")),
        ("https://github.com/owner/repo/", GitRemote("https", "github.com", None, "owner/repo")),
        (
            f"https://x-access-token:{SECRET}@github.com/owner/repo.git",
            GitRemote("https", "github.com", None, "owner/repo"),
        ),
        (f"https://{SECRET}@GitHub.com/owner/repo", GitRemote("https", "github.com", None, "owner/repo")),
        (
            "ssh://git@gitlab.example.com:2222/group/project.git",
            GitRemote("ssh", "gitlab.example.com", None, "group/project"),
        ),
        ("https://gitlab.example.com:8443/a/b/c.git", GitRemote("https", "gitlab.example.com", 8443, "a/b/c")),
        ("http://127.0.0.1:3000/owner/repo.git", GitRemote("http", "127.0.0.1", 3000, "owner/repo")),
        ("git://github.com/owner/repo", GitRemote("git", "github.com", None, "owner/repo")),
    ],
)
def test_remote_urls(url: str, expected: GitRemote) -> None:
    remote = parse_remote_url(url)
    assert remote == expected
    assert SECRET not in str(remote)
    assert SECRET not in repr(remote)


@pytest.mark.parametrize(
    "url",
    [
        "/srv/git/desired.git",
        "./desired",
        "~/desired.git",
        "~/git/desired:main",
        "file:///srv/git/desired.git",
        f"https://user:{SECRET}@github.com/only-one-segment",
        f"https://user:{SECRET}@github.com/owner/../repo",
        f"ftp://user:{SECRET}@host/a/b",
        "https://host:notaport/a/b",
    ],
)
def test_bad_remote_urls_never_echo_credentials(url: str) -> None:
    with pytest.raises(ForgeError) as caught:
        parse_remote_url(url)
    assert SECRET not in str(caught.value)
    assert SECRET not in repr(caught.value)


segments = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,10}", fullmatch=True).filter(
    lambda s: s not in (".", "..") and not s.endswith(".git")
)
hosts = st.from_regex(r"[a-z][a-z0-9-]{0,8}(\.[a-z][a-z0-9-]{0,8}){0,2}", fullmatch=True)
userinfo = st.from_regex(r"[A-Za-z0-9_~-]{1,12}(:[A-Za-z0-9_~!$-]{1,20})?", fullmatch=True)


@given(
    host=hosts,
    path=st.lists(segments, min_size=2, max_size=4),
    form=st.sampled_from(["scp", "https", "ssh"]),
    user=st.none() | userinfo,
    dot_git=st.booleans(),
)
# a password that is also a path segment: a substring test of the output cannot tell the two apart
@example(host="a", path=["0", "a"], form="scp", user="0:0", dot_git=False)
# a user name starting with "~": an ssh remote for Git (colon before any slash), not a local path
@example(host="a", path=["0", "0"], form="scp", user="~", dot_git=False)
def test_any_remote_form_gives_host_and_path_without_credentials(
    host: str, path: list[str], form: str, user: str | None, dot_git: bool
) -> None:
    joined = "/".join(path) + (".git" if dot_git else "")
    if form == "scp":
        url = f"{user.split(':')[0] + '@' if user else ''}{host}:{joined}"
    else:
        url = f"{form}://{user + '@' if user else ''}{host}/{joined}"
    # equal to the remote built from the parts alone: no field is left to carry a user or a password
    assert parse_remote_url(url) == GitRemote("ssh" if form == "scp" else form, host, None, "/".join(path))


def test_token_precedence_per_forge() -> None:
    env = {"RECONCILER_GITLAB_TOKEN": "first", "GITLAB_TOKEN": "second", "CI_JOB_TOKEN": "job"}
    gitlab = resolve_forge_settings("git@gitlab.example.com:group/project.git", env)
    assert (gitlab.token, gitlab.token_source) == ("first", "RECONCILER_GITLAB_TOKEN")
    del env["RECONCILER_GITLAB_TOKEN"]
    assert resolve_forge_settings("git@gitlab.example.com:g/p.git", env).token_source == "GITLAB_TOKEN"
    explicit = resolve_forge_settings("git@gitlab.example.com:g/p.git", env, token="from-option")
    assert (explicit.token, explicit.token_source) == ("from-option", "the token argument")

    github_env = {"GH_TOKEN": "third", "GITHUB_TOKEN": "second", "RECONCILER_GITHUB_TOKEN": " "}
    github = resolve_forge_settings("https://github.com/owner/repo.git", github_env)
    assert (github.token, github.token_source) == ("second", "GITHUB_TOKEN")  # blank values are skipped
    assert resolve_forge_settings("https://github.com/o/r", {"GH_TOKEN": "t"}).token_source == "GH_TOKEN"


def test_a_job_token_alone_is_not_used_and_the_error_says_why() -> None:
    with pytest.raises(ForgeAuthError) as caught:
        resolve_forge_settings("https://gitlab.example.com/g/p.git", {"CI_JOB_TOKEN": SECRET})
    message = str(caught.value)
    assert "RECONCILER_GITLAB_TOKEN or GITLAB_TOKEN" in message
    assert "CI_JOB_TOKEN is set but cannot be used" in message
    assert SECRET not in message


def test_kind_and_api_url_inference() -> None:
    gh = resolve_forge_settings("https://github.com/owner/repo.git", {"GITHUB_TOKEN": "t"})
    assert (gh.kind, gh.api_url, gh.project) == ("github", "https://api.github.com", "owner/repo")
    ghe = resolve_forge_settings("git@github.corp.example:team/app.git", {"GITHUB_TOKEN": "t"})
    assert (ghe.kind, ghe.api_url) == ("github", "https://github.corp.example/api/v3")
    gl = resolve_forge_settings("ssh://git@gitlab.example.com:2222/g/s/p.git", {"GITLAB_TOKEN": "t"})
    assert (gl.kind, gl.api_url, gl.project) == ("gitlab", "https://gitlab.example.com/api/v4", "g/s/p")
    port = resolve_forge_settings("https://gitlab.example.com:8443/g/p.git", {"GITLAB_TOKEN": "t"})
    assert port.api_url == "https://gitlab.example.com:8443/api/v4"
    local = resolve_forge_settings("http://127.0.0.1:3000/g/p.git", {"GITLAB_TOKEN": "t"}, kind="gitlab")
    assert local.api_url == "http://127.0.0.1:3000/api/v4"


def test_kind_for_an_unrecognisable_host() -> None:
    remote = "git@git.corp.example:team/app.git"
    only_github = resolve_forge_settings(remote, {"GITHUB_TOKEN": "t"})
    assert only_github.kind == "github"  # the only forge with a token
    chosen = resolve_forge_settings(remote, {"GITHUB_TOKEN": "t", "GITLAB_TOKEN": "u", "RECONCILER_FORGE": "gitlab"})
    assert (chosen.kind, chosen.token) == ("gitlab", "u")
    with pytest.raises(ForgeError, match=r"pass --forge gitlab\|github"):
        resolve_forge_settings(remote, {"GITHUB_TOKEN": "t", "GITLAB_TOKEN": "u"})
    with pytest.raises(ForgeError, match="RECONCILER_FORGE='bitbucket'"):
        resolve_forge_settings(remote, {"RECONCILER_FORGE": "bitbucket"})


def test_explicit_values_win_over_the_remote() -> None:
    env = {"GITLAB_TOKEN": "t", "RECONCILER_FORGE_API_URL": "https://gitlab.internal/gitlab/api/v4"}
    settings = resolve_forge_settings("git@gitlab.example.com:g/p.git", env, project="other/project")
    assert (settings.api_url, settings.project) == ("https://gitlab.internal/gitlab/api/v4", "other/project")
    argument = resolve_forge_settings("git@gitlab.example.com:g/p.git", env, api_url="https://x.example/api/v4")
    assert argument.api_url == "https://x.example/api/v4"
    with pytest.raises(ForgeError, match="refusing plain HTTP"):
        resolve_forge_settings(None, {"GITLAB_TOKEN": "t"}, kind="gitlab", api_url="http://gitlab.example.com/api/v4")
    with pytest.raises(ForgeError, match="owner/repo"):
        resolve_forge_settings("https://github.com/owner/repo", {"GITHUB_TOKEN": "t"}, project="a/b/c")
    with pytest.raises(ForgeError, match="no project"):
        resolve_forge_settings(None, {"GITLAB_TOKEN": "t"}, kind="gitlab", api_url="https://gitlab.example.com/api/v4")
