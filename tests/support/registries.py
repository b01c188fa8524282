"""Small wrappers the fixtures hand to tests: a registry together with the credentials it accepts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from reconciler.testing.localregistry import LocalRegistry

if TYPE_CHECKING:
    from support.tokenserver import TokenServer


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
