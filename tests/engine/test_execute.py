"""Executor scheduling without a network: dependencies, per-image isolation, bounded concurrency, audit.

The registry side is the in-memory ``World`` behind the four-operation ``RegistryAccess`` interface;
real registries are exercised end to end in ``test_reconcile_e2e.py``. This file checks only the logic
a real registry cannot be made to exercise deterministically (which action fails, and when).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from reconciler.engine.audit import AuditLog, pair_records, read_records
from reconciler.engine.execute import Outcome, execute
from reconciler.engine.reconcile import reconcile_pass
from reconciler.errors import AuthError, TransientRegistryError
from reconciler.model.observed import ManifestKey, TagKey
from reconciler.model.plan import Location

from .states import digest_of, full_chain
from .world import World

TAG = "20261127_01"


class FakeAccess:
    def __init__(
        self,
        world: World,
        *,
        failing_registry: str | None = None,
        delay: float = 0.0,
        raises: dict[str, BaseException] | None = None,
    ) -> None:
        self.world = world
        self.failing_registry = failing_registry
        self.raises = raises or {}
        """registry -> what a write to it raises (instead of the default 503)."""
        self.delay = delay
        self.in_flight = 0
        self.max_in_flight = 0

    async def tag_digest(self, registry: str, repository: str, tag: str) -> str | None:
        return self.world.tags.get(TagKey(registry, repository, tag))

    async def has_manifest(self, registry: str, repository: str, digest: str) -> bool:
        return ManifestKey(registry, repository, digest) in self.world.manifests

    async def tags(self, registry: str, repository: str) -> list[str]:
        return sorted(k.tag for k in self.world.tags if (k.registry, k.repository) == (registry, repository))

    async def _write(self, target: Location, digest: str, tag: str) -> None:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay)
            if target.registry in self.raises:
                raise self.raises[target.registry]
            if target.registry == self.failing_registry:
                raise TransientRegistryError("503 Service Unavailable", registry=target.registry, retry_after=2.0)
            self.world.put(target.registry, target.repository, tag, digest)
        finally:
            self.in_flight -= 1

    async def copy(self, source: Location, target: Location, digest: str, tag: str) -> None:
        assert ManifestKey(source.registry, source.repository, digest) in self.world.manifests
        await self._write(target, digest, tag)

    async def retag(self, target: Location, digest: str, tag: str) -> None:
        assert ManifestKey(target.registry, target.repository, digest) in self.world.manifests
        await self._write(target, digest, tag)

    async def aclose(self) -> None:
        return None


def seeded(images: tuple[str, ...]) -> World:
    world = World()
    for image in images:
        world.put("dev", f"d/{image}", TAG, digest_of(image + TAG))
    return world


def test_failed_stage_skips_its_downstream_and_spares_other_sites_and_images(tmp_path: Path) -> None:
    images = ("payments/api", "payments/web")
    desired = full_chain(images)
    world = seeded(images)
    access = FakeAccess(world, failing_registry="prod-a")
    audit_path = tmp_path / "audit.jsonl"
    with AuditLog(audit_path) as audit:
        report = asyncio.run(reconcile_pass(desired, access, dry_run=False, audit=audit))
    assert report.results is not None
    outcomes = {(r.action.image, r.action.registry): r.outcome for r in report.results}
    assert outcomes[("payments/api", "prod-a")] is Outcome.FAILED
    assert outcomes[("payments/api", "prod-b")] is Outcome.OK
    assert outcomes[("payments/web", "pre")] is Outcome.OK
    failures = report.failures
    assert {(f.image, f.registry) for f in failures} == {("payments/api", "prod-a"), ("payments/web", "prod-a")}
    assert all("503" in f.reason for f in failures)
    records = pair_records(read_records(audit_path))  # an intent before each write, its outcome after
    assert len(records) == len(report.results) == 10
    assert sum(r["result"] == "failed" for r in records) == 2


def test_failures_are_typed_causes_temporary_or_permanent_and_never_escape() -> None:
    images = ("payments/api",)
    raises: dict[str, BaseException] = {
        "test": TransientRegistryError("503", registry="test", retry_after=2.0),
        "prod-a": AuthError("push refused (403)", registry="prod-a", status=403),
        "prod-b": ValueError("a bug"),
    }
    desired = full_chain(images)
    world = seeded(images)
    world.put("pre", "s2/payments/api", TAG, digest_of("payments/api" + TAG))  # p can copy without t
    access = FakeAccess(world, raises=raises)
    report = asyncio.run(reconcile_pass(desired, access, dry_run=False))
    assert report.results is not None
    causes = {r.action.registry: r.cause for r in report.results if r.action.environment in ("t", "p")}
    test, prod_a, prod_b = causes["test"], causes["prod-a"], causes["prod-b"]
    assert test is not None
    assert (test.temporary, test.retry_after, test.kind) == (True, 2.0, "TransientRegistryError")
    assert prod_a is not None
    assert (prod_a.temporary, prod_a.kind) == (False, "AuthError")
    # an unexpected exception fails its image only, as an internal error a retry will not fix
    assert prod_b is not None
    assert (prod_b.temporary, prod_b.message) == (False, "internal error: ValueError: a bug")
    skipped = [r for r in report.results if r.outcome is Outcome.SKIPPED]
    assert skipped
    assert all(r.cause is not None and r.cause.temporary for r in skipped)  # they wait on a 503


def test_dependency_failure_skips_the_chain() -> None:
    desired = full_chain(("payments/api",))
    access = FakeAccess(seeded(("payments/api",)), failing_registry="test")
    report = asyncio.run(reconcile_pass(desired, access, dry_run=False))
    assert report.results is not None
    assert [r.outcome for r in report.results] == [Outcome.FAILED] + [Outcome.SKIPPED] * 4
    assert "needs #0 copy test/t/payments/api" in (report.results[1].error or "")


def test_concurrency_is_bounded_and_dry_run_writes_nothing() -> None:
    images = tuple(f"app{i}" for i in range(12))
    desired = full_chain(images)
    world = seeded(images)
    access = FakeAccess(world, delay=0.01)
    dry = asyncio.run(reconcile_pass(desired, access, dry_run=True))
    assert dry.results is None
    assert len(dry.plan.writes) == 60
    assert access.max_in_flight == 0
    results = asyncio.run(execute(dry.plan, access, concurrency=3))
    assert all(r.outcome is Outcome.OK for r in results)
    assert access.max_in_flight == 3
    again = asyncio.run(reconcile_pass(desired, access, dry_run=True))
    assert again.plan.is_empty


def test_progress_bars_draw_on_a_terminal_and_stay_silent_elsewhere() -> None:
    import io

    from reconciler.cli.progress import TransferBars

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    desired = full_chain(("payments/api",))
    for stream, expect_output in ((Terminal(), True), (io.StringIO(), False)):
        access = FakeAccess(seeded(("payments/api",)))
        with TransferBars(stream=stream) as bars:
            report = asyncio.run(reconcile_pass(desired, access, dry_run=False, progress=bars))
        assert report.results is not None
        assert len(report.results) == 5
        text = stream.getvalue()
        assert bool(text) is expect_output
        if expect_output:
            assert "5/5" in text
    assert not TransferBars(stream=io.StringIO()).enabled


def test_apply_results_render_as_a_markdown_table_with_each_failure() -> None:
    from reconciler.report.passes import results_markdown

    desired = full_chain(("payments/api",))
    access = FakeAccess(seeded(("payments/api",)), failing_registry="test")
    report = asyncio.run(reconcile_pass(desired, access, dry_run=False))
    assert report.results is not None
    text = results_markdown(report.results, "apply")
    rows = [line for line in text.splitlines() if line.startswith("| t ") or line.startswith("| s1 ")]
    assert "0 of 5 action(s) succeeded, 5 failed." in text
    assert rows[0].split(" | ")[5] == "failed"
    assert "503" in rows[0]
    assert rows[1].split(" | ")[5] == "skipped"
    assert all(line.count(" | ") == 7 for line in rows)  # an error containing "|" never breaks the table
