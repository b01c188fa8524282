"""Per-image retry bookkeeping: exponential backoff after a transient failure, nothing after a permanent one.

kopf's model, one item at a time: an image whose last pass failed for a reason that may go away by itself
(``Cause.temporary``: a registry unreachable, a 503, a dropped connection) is retried after
``base * 2**(attempts-1)`` seconds, capped at ``cap``; when the other side said how long to wait
(``Cause.retry_after``), the wait is at least that (also capped, so one odd ``Retry-After`` cannot park an
image for a day). An image that failed for good (a refused conflict, a digest found nowhere, credentials
refused) is NOT retried: it waits for a new commit or the next resync, which retry everything anyway.

No jitter, on purpose: images that failed together become due together and are retried in ONE pass
(one observation), instead of one pass each.

Pure bookkeeping: the clock is passed in; nothing here sleeps, schedules or talks to a registry.
"""

from __future__ import annotations

from dataclasses import dataclass

from reconciler.model.outcome import Cause


@dataclass(frozen=True, slots=True)
class RetryState:
    attempts: int
    """Consecutive failed attempts (1 after the first failure)."""
    cause: Cause
    due: float | None
    """Monotonic time of the next attempt; None for a permanent failure (waits for a change or resync)."""
    delay: float | None
    """The wait chosen after the last failure (seconds); None for a permanent failure."""


class RetryBook:
    """Which images failed, why, and when each may be tried again."""

    def __init__(self, base: float, cap: float) -> None:
        if base <= 0 or cap < base:
            raise ValueError("backoff: want 0 < base <= cap")
        self.base = base
        self.cap = cap
        self._states: dict[str, RetryState] = {}

    def delay_for(self, attempts: int, retry_after: float | None = None) -> float:
        """Seconds to wait after the ``attempts``-th consecutive transient failure."""
        delay: float = min(self.cap, self.base * float(2 ** min(max(attempts - 1, 0), 32)))
        if retry_after is not None and retry_after > delay:
            delay = min(self.cap, retry_after)
        return delay

    def failed(self, image: str, cause: Cause, now: float) -> RetryState:
        """Record a failed attempt of ``image``; return its new state (``due`` None when permanent)."""
        previous = self._states.get(image)
        attempts = (previous.attempts if previous is not None else 0) + 1
        if cause.temporary:
            delay = self.delay_for(attempts, cause.retry_after)
            state = RetryState(attempts, cause, now + delay, delay)
        else:
            state = RetryState(attempts, cause, None, None)
        self._states[image] = state
        return state

    def succeeded(self, image: str) -> None:
        """Forget ``image``'s failures."""
        self._states.pop(image, None)

    def forget_all(self) -> None:
        """A new commit: every image gets a fresh start."""
        self._states.clear()

    def state(self, image: str) -> RetryState | None:
        return self._states.get(image)

    def due(self, now: float) -> set[str]:
        """Images whose transient failure may be retried now."""
        return {image for image, state in self._states.items() if state.due is not None and state.due <= now}

    def next_due(self, exclude: set[str] | frozenset[str] = frozenset()) -> float | None:
        """The earliest retry time among images not in ``exclude`` (None when none is waiting)."""
        times = [s.due for i, s in self._states.items() if s.due is not None and i not in exclude]
        return min(times) if times else None

    def images(self) -> set[str]:
        """Every image with a failure on record (temporary or permanent)."""
        return set(self._states)

    def backing_off(self) -> dict[str, RetryState]:
        """Images waiting for a retry (transient failures only)."""
        return {image: state for image, state in self._states.items() if state.due is not None}
