"""Shared pytest fixtures: real registries on loopback, skopeo, generated images.

Fixtures that need ``/usr/bin/docker-registry`` or ``skopeo`` FAIL (never skip) when the binary is missing,
with the command that installs it: in CI a skipped infrastructure test would hide that nothing was tested.

- ``registry``: a fresh plain registry per test (function scope).
- ``session_registry``: one plain registry for the whole run; use a unique repository per test.
- ``registry_factory``: ``registry_factory(**LocalRegistry kwargs)`` starts more; all stop at teardown.
- ``basic_registry``: htpasswd Basic auth; ``.username`` / ``.password``.
- ``token_registry``: ``auth: token`` fed by ``support.tokenserver.TokenServer`` (``.token_server``);
  users ``alice`` (all actions) and ``reader`` (pull only).
- ``skopeo``: a :class:`support.skopeo.Skopeo`.
- ``unique_repo``: a repository name unique to the test (for the session registry).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # so tests import ``support.*`` whatever their package layout

from support.registries import AuthedRegistry, RegistryFactory
from support.skopeo import SKOPEO_INSTALL_HINT, Skopeo, find_skopeo
from support.tokenserver import ALL_ACTIONS, AclRule, TokenServer

from testkit.localregistry import LocalRegistry, LocalRegistryError, find_registry_binary

_REGISTRY_FIXTURES = {"registry", "session_registry", "registry_factory", "basic_registry", "token_registry"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark tests by the binaries their fixtures need, so ``-m "not registry"`` runs only offline tests."""
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & _REGISTRY_FIXTURES or "registry_binary" in fixtures:
            item.add_marker(pytest.mark.registry)
        if "skopeo" in fixtures:
            item.add_marker(pytest.mark.skopeo)


@pytest.fixture(scope="session")
def registry_binary() -> Path:
    try:
        return find_registry_binary()
    except LocalRegistryError as exc:
        pytest.fail(str(exc), pytrace=False)


def _start(binary: Path, **kwargs: Any) -> LocalRegistry:
    try:
        return LocalRegistry(binary=binary, **kwargs).start()
    except LocalRegistryError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture
def registry(registry_binary: Path) -> Iterator[LocalRegistry]:
    """A fresh, empty, plain-HTTP registry with deletion enabled, for this test only."""
    local = _start(registry_binary, name="registry")
    try:
        yield local
    finally:
        local.stop()


@pytest.fixture(scope="session")
def session_registry(registry_binary: Path) -> Iterator[LocalRegistry]:
    """One plain registry shared by the whole session: cheap, but tests must use their own repositories
    (see ``unique_repo``) and must not assert on the whole request log or catalog."""
    local = _start(registry_binary, name="session-registry")
    try:
        yield local
    finally:
        local.stop()


@pytest.fixture
def unique_repo(request: pytest.FixtureRequest) -> str:
    """A repository name derived from the test's node id: unique within a session, valid for a registry."""
    name = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:60] or "test"
    module = re.sub(r"[^a-z0-9]+", "-", request.node.module.__name__.lower()).strip("-")[-40:]
    return f"t/{module}/{name}"


@pytest.fixture
def registry_factory(registry_binary: Path) -> Iterator[RegistryFactory]:
    """Start as many registries as a test needs: ``registry_factory(name="prod-a", storage_dir=...)``."""
    started: list[LocalRegistry] = []

    def start(**kwargs: Any) -> LocalRegistry:
        local = _start(registry_binary, **kwargs)
        started.append(local)
        return local

    try:
        yield start
    finally:
        for local in reversed(started):
            local.stop()


@pytest.fixture
def basic_registry(registry_binary: Path) -> Iterator[AuthedRegistry]:
    """A registry with htpasswd Basic auth (one user). ``.username`` / ``.password`` / ``.registry``."""
    username, password = "alice", "correct-horse-battery"
    local = _start(registry_binary, name="basic-registry", basic_auth={username: password})
    try:
        yield AuthedRegistry(registry=local, username=username, password=password)
    finally:
        local.stop()


TOKEN_USER, TOKEN_PASSWORD = "alice", "token-user-password"
TOKEN_READER, TOKEN_READER_PASSWORD = "reader", "reader-password"


@pytest.fixture
def token_registry(registry_binary: Path, tmp_path: Path) -> Iterator[AuthedRegistry]:
    """A registry with ``auth: token`` and its own token server (``.token_server``, counting issued tokens).

    Users: ``alice`` (``.username``/``.password``) may pull, push, delete and list the catalog; ``reader``
    (password ``reader-password``) may only pull; anonymous gets nothing. Tokens live 300 s
    (``token_server.expires_in``).
    """
    acl = [
        AclRule(TOKEN_USER, "*", ALL_ACTIONS),
        AclRule(TOKEN_READER, "*", frozenset({"pull"})),
    ]
    server = TokenServer(
        users={TOKEN_USER: TOKEN_PASSWORD, TOKEN_READER: TOKEN_READER_PASSWORD}, acl=acl, directory=tmp_path / "token"
    )
    server.start()
    try:
        local = _start(registry_binary, name="token-registry", token_auth=server.auth_config())
        try:
            yield AuthedRegistry(registry=local, username=TOKEN_USER, password=TOKEN_PASSWORD, token_server=server)
        finally:
            local.stop()
    finally:
        server.stop()


@pytest.fixture(scope="session")
def skopeo() -> Skopeo:
    path = find_skopeo()
    if path is None:
        pytest.fail(f"skopeo not found on PATH: {SKOPEO_INSTALL_HINT}", pytrace=False)
    return Skopeo(path)
