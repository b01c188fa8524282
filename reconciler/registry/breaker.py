"""The unresponsive-registry breaker: after enough deadline overruns, a registry's requests fail at once.

A registry that accepts connections but never answers (a ``kill -STOP``-ed process, a wedged storage
backend) would otherwise cost every request its own deadline: thousands of images, thousands of deadlines.
The session tells the breaker when a request overran its deadline and when one completed within it; the
breaker declares the registry unresponsive

* at the FIRST overrun while no request to it has completed yet in this session (nothing says it is alive:
  a registry frozen from the start costs one deadline, not two), and
* otherwise after ``UNRESPONSIVE_AFTER`` overruns in a row (a registry that worked and then froze; one slow
  answer among good ones is forgiven).

From then on ``check`` raises ``UnresponsiveRegistryError`` (temporary, never retried) for the rest of the
session. A request completes when its whole answer arrived in time: a response head followed by a body
dripped too slowly is an overrun, not a sign of life. Pure bookkeeping: no I/O, no clock.
"""

from __future__ import annotations

import logging

from reconciler.errors import UnresponsiveRegistryError

log = logging.getLogger(__name__)

UNRESPONSIVE_AFTER = 2
"""Deadline overruns in a row after which a registry that has answered before is taken as frozen."""


class Breaker:
    """Deadline overruns of one registry (one session), and the verdict once it is unresponsive."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._overruns = 0
        self._completed = 0
        self.verdict: str | None = None
        """Why the registry is taken as unresponsive; None while it is not."""

    def __repr__(self) -> str:
        state = "open" if self.verdict else "closed"
        return f"Breaker({self._name!r}, {state}, overruns={self._overruns}, completed={self._completed})"

    def completed(self) -> None:
        """A request got its whole answer within its deadline."""
        self._completed += 1
        self._overruns = 0

    def overran(self) -> None:
        """A request ran past its deadline (or a connect or read timed out)."""
        self._overruns += 1
        if self.verdict is not None:
            return
        if not self._completed:
            self.verdict = "no answer in time, and no request to it has completed"
        elif self._overruns >= UNRESPONSIVE_AFTER:
            self.verdict = f"{self._overruns} requests in a row got no answer in time"
        if self.verdict is not None:
            log.warning("registry %s declared unresponsive: %s", self._name, self.verdict)

    def check(self, what: str, *, repository: str | None, digest: str | None) -> None:
        """Raise ``UnresponsiveRegistryError`` when the registry was declared unresponsive."""
        if self.verdict is not None:
            raise UnresponsiveRegistryError(
                f"{what}: registry is not answering ({self.verdict}); skipped",
                registry=self._name,
                repository=repository,
                digest=digest,
            )
