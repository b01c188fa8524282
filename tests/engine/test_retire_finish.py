"""The end of a lifecycle pass: a garbage collection that fails is reported, never raised over the results."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, cast

from reconciler.engine.retire import LifecycleRunner
from reconciler.errors import ArchiveError
from reconciler.model.plan import Action, ActionKind

DIGEST = "sha256:" + "ab" * 32


@dataclass
class _Entry:
    digest: str


class _Store:
    """An archive store whose entry goes away fine and whose garbage collection then fails."""

    def __init__(self, *, collect_fails: bool) -> None:
        self.collect_fails = collect_fails
        self.removed: list[str] = []

    async def entry(self, name: str) -> _Entry | None:
        return _Entry(DIGEST) if name not in self.removed else None

    async def remove_entries(self, names: list[str]) -> None:
        self.removed += names

    async def collect_garbage(self) -> str:
        if self.collect_fails:
            raise ArchiveError("archive store /srv/archive: no space left on the archive's file system")
        return "collected"


def _destroy() -> Action:
    return Action(
        1, ActionKind.DESTROY, "p", "archive", "app", "p/app", "20261127_01", DIGEST, archive_ref="p/app:20261127_01"
    )


def _run(store: _Store) -> tuple[Any, tuple[str, ...]]:
    async def work() -> tuple[Any, tuple[str, ...]]:
        runner = LifecycleRunner(cast(Any, None), cast(Any, store), commit=None)
        await runner.perform(_destroy())
        return await runner.finish()

    return asyncio.run(work())


def test_a_failed_collection_is_a_problem_and_the_destruction_stands() -> None:
    store = _Store(collect_fails=True)
    garbage, problems = _run(store)
    assert store.removed == ["p/app:20261127_01"]
    assert garbage is None
    assert len(problems) == 1
    assert "garbage collection failed (the entries are destroyed" in problems[0]
    assert "no space left" in problems[0]


def test_a_collection_after_a_destruction_reports_what_it_did() -> None:
    garbage, problems = _run(_Store(collect_fails=False))
    assert (garbage, problems) == ("collected", ())


def test_nothing_destroyed_collects_nothing() -> None:
    store = _Store(collect_fails=True)
    runner = LifecycleRunner(cast(Any, None), cast(Any, store), commit=None)
    assert asyncio.run(runner.finish()) == (None, ())
