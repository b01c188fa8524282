"""Retry policy: exponential backoff with full jitter, ``Retry-After`` honoured, and a bounded budget.

Only ``TransientRegistryError`` (429, 5xx, dropped or refused connections, timeouts) is retried; an
auth failure, a 404 or a digest mismatch is final on the first attempt, and so is a registry already
found unresponsive (``UnresponsiveRegistryError``: waiting for it again would only cost another
deadline). The budget bounds both the number of attempts and the total time spent sleeping, so a
registry that is down fails a run in bounded time instead of hanging it. This module never performs a
request itself.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from reconciler.errors import TransientRegistryError, UnresponsiveRegistryError

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 5
    """Total attempts, the first included (1 = no retry)."""
    base_delay: float = 0.25
    """Seconds before the first retry; doubles with every retry (before jitter)."""
    max_delay: float = 10.0
    """Upper bound of one backoff, and of an honoured ``Retry-After``."""
    budget: float = 60.0
    """Upper bound of the total seconds one operation may spend sleeping between attempts."""

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("RetryPolicy.attempts must be at least 1")
        if self.base_delay < 0 or self.max_delay < 0 or self.budget < 0:
            raise ValueError("RetryPolicy delays and budget must not be negative")

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (1-based). ``Retry-After`` wins when given."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_delay)
        ceiling = min(self.max_delay, self.base_delay * (2 ** (retry - 1)))
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not cryptography


NO_RETRY = RetryPolicy(attempts=1)


async def with_retries(policy: RetryPolicy, operation: Callable[[], Awaitable[T]], *, what: str) -> T:
    """Run ``operation`` (a fresh coroutine per attempt) until it succeeds, fails for good, or the
    budget is spent; then the last ``TransientRegistryError`` propagates."""
    slept = 0.0
    attempt = 1
    while True:
        try:
            return await operation()
        except TransientRegistryError as exc:
            if attempt >= policy.attempts or isinstance(exc, UnresponsiveRegistryError):
                raise
            wait = policy.delay(attempt, exc.retry_after)
            if slept + wait > policy.budget:
                raise
            log.info("retrying %s in %.2fs after attempt %d failed: %s", what, wait, attempt, exc)
            await asyncio.sleep(wait)
            slept += wait
            attempt += 1
