"""Run blocking work (git fetches, YAML parsing, directory walks) off the event loop, in daemon threads.

The controller's loop must keep answering ``/healthz`` while Git is fetched or a large desired state is
parsed, so those calls run in a thread. Not ``asyncio.to_thread``: its executor's threads are joined when
the process exits, so a ``git fetch`` hanging on a dead network would hold a SIGTERM'd controller past its
grace period. A daemon thread never blocks exit; the awaiting side can be cancelled at any time (the
thread's result is then dropped).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


async def in_thread(function: Callable[[], T], *, name: str = "reconciler-blocking") -> T:
    """``function()`` run in a new daemon thread; its result or its exception."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def deliver_result(value: T) -> None:
        if not future.done():
            future.set_result(value)

    def deliver_error(error: BaseException) -> None:
        if not future.done():
            future.set_exception(error)

    def work() -> None:
        try:
            value = function()
        except BaseException as exc:  # handed to the awaiting side, which decides
            with contextlib.suppress(RuntimeError):  # the loop is closed: nobody is waiting any more
                loop.call_soon_threadsafe(deliver_error, exc)
            return
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(deliver_result, value)

    threading.Thread(target=work, name=name, daemon=True).start()
    return await future
