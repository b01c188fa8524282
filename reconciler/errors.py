"""The one exception tree of reconciler.

Library code raises these; only the CLI (and the controller) map them to exit codes. Foreign
exceptions (httpx, gitpython, OSError) are caught at the boundary of the layer that calls them and
re-raised as one of these with ``raise ... from exc``, so callers never need to know which library
failed. Messages carry what a user can act on (file and line, registry, repository, digest) and never a
secret: no password, token or Authorization header ever reaches a message or a repr.

Every error says whether it is worth retrying (kopf's temporary vs permanent): ``temporary`` is True when
the same operation may succeed later without anyone changing anything (a 503, a dropped connection, a
registry that stopped answering), and ``retry_after`` is the delay the other side asked for, if any. The
controller's backoff and the per-image outcomes read these two attributes and nothing else.

    ReconcilerError
    ├── DesiredStateError          invalid desired state; carries every Problem found (exit 3)
    ├── PolicyError                a policy gate or trust rule refused an image (exit 3)
    ├── PromotionError             a promotion was refused: nothing was written (exit 3)
    ├── SourceError                Git clone/fetch/checkout of the desired state failed (exit 1)
    ├── ArchiveError               the archive store failed or holds a corrupt image (exit 1)
    └── RegistryError              talking to a registry failed (exit 1)
        ├── AuthError              401/403, bad credentials, token flow failed
        ├── NotFoundError          404 for a manifest, blob or repository
        ├── DigestMismatchError    bytes did not hash to the digest that named them
        ├── UnsupportedManifestError  schema1, unknown media type, oversized manifest or answer
        └── TransientRegistryError 429, 5xx, connection errors, timeouts: temporary
            └── UnresponsiveRegistryError  the registry stopped answering: its other requests fail fast
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from reconciler.model.outcome import Cause

if TYPE_CHECKING:
    from reconciler.model.problems import Problem


class ReconcilerError(Exception):
    """Base of every error reconciler raises on purpose. Permanent unless a subclass says otherwise."""

    temporary: bool = False
    """True when retrying later, with nothing changed, may succeed."""
    retry_after: float | None = None
    """Seconds the other side asked us to wait before retrying (``Retry-After``), when it said."""


class DesiredStateError(ReconcilerError):
    """The desired-state repository is invalid. ``problems`` lists every problem found, in file order."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        count = len(self.problems)
        first = str(self.problems[0]) if self.problems else "no details"
        more = f" (and {count - 1} more)" if count > 1 else ""
        super().__init__(f"invalid desired state: {first}{more}")


class PolicyError(ReconcilerError):
    """A policy gate or a trust rule refused an image or a commit."""


class PromotionError(ReconcilerError):
    """``promote`` refused: an unknown image or tag, a version its upstream does not hold, a source
    environment as target, a dirty work tree, a version already present. Nothing was written."""


class SourceError(ReconcilerError):
    """The desired state could not be fetched or read from Git."""


class ArchiveError(ReconcilerError):
    """The archive store could not be read or written, or holds an image that fails verification."""


class RegistryError(ReconcilerError):
    """A registry operation failed. Every message names the registry, and the repository and digest
    where they are known."""

    def __init__(
        self,
        message: str,
        *,
        registry: str | None = None,
        repository: str | None = None,
        digest: str | None = None,
        status: int | None = None,
    ) -> None:
        self.reason = message
        self.registry = registry
        self.repository = repository
        self.digest = digest
        self.status = status
        where = "/".join(p for p in (registry, repository) if p)
        if digest:
            where = f"{where}@{digest}" if where else digest
        super().__init__(f"{where}: {message}" if where else message)


class AuthError(RegistryError):
    """Authentication or authorization failed (401/403, token flow, credential helper)."""


class NotFoundError(RegistryError):
    """The registry answered 404 for a manifest, blob or repository."""


class DigestMismatchError(RegistryError):
    """Content did not hash to the digest that named it; nothing was written."""


class UnsupportedManifestError(RegistryError):
    """A manifest reconciler refuses: schema1, an unknown media type, or larger than the limit."""


class TransientRegistryError(RegistryError):
    """A failure worth retrying: 429, 5xx, a dropped or refused connection, a timeout."""

    temporary = True

    def __init__(
        self,
        message: str,
        *,
        registry: str | None = None,
        repository: str | None = None,
        digest: str | None = None,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, registry=registry, repository=repository, digest=digest, status=status)
        self.retry_after = retry_after


class UnresponsiveRegistryError(TransientRegistryError):
    """The registry accepts connections but stopped answering (requests ran past their deadline): the
    rest of this pass's requests to it fail at once instead of each waiting for its own deadline."""


def cause_of(exc: BaseException) -> Cause:
    """The ``Cause`` an exception stands for: our own errors say whether they are temporary; anything else
    is an internal error, named by its type, that a retry will not fix."""
    if isinstance(exc, ReconcilerError):
        return Cause(str(exc), temporary=exc.temporary, retry_after=exc.retry_after, kind=type(exc).__name__)
    return Cause(f"internal error: {type(exc).__name__}: {exc}", kind=type(exc).__name__)
