"""Small wrappers the fixtures hand to tests: a registry together with the credentials it accepts."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from testkit.localregistry import LocalRegistry, TokenAuthConfig

if TYPE_CHECKING:
    from support.tokenserver import TokenServer


class RegistryFactory(Protocol):
    """The ``registry_factory`` fixture: start one more registry; all stop at the test's teardown.
    Annotate with it: ``def test_x(registry_factory: RegistryFactory)``."""

    def __call__(
        self,
        *,
        name: str = ...,
        storage_dir: str | os.PathLike[str] | None = ...,
        work_dir: str | os.PathLike[str] | None = ...,
        basic_auth: Mapping[str, str] | None = ...,
        token_auth: TokenAuthConfig | None = ...,
        startup_timeout: float = ...,
    ) -> LocalRegistry: ...


@dataclass(frozen=True)
class AuthedRegistry:
    """A running registry that needs credentials, and one user that it accepts."""

    registry: LocalRegistry
    username: str
    password: str = field(repr=False)
    token_server: TokenServer | None = None  # set for ``auth: token`` registries

    @property
    def url(self) -> str:
        return self.registry.url

    @property
    def host(self) -> str:
        return self.registry.host

    @property
    def creds(self) -> str:
        """``user:password`` for skopeo's ``--creds``."""
        return f"{self.username}:{self.password}"
