"""An in-memory model of registries for planner tests: observe it the way the real observer does,
and execute a plan against it checking that every COPY finds its source already there."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from reconciler.engine.plan import manifest_lookups, tag_lookups
from reconciler.model.desired import DesiredState
from reconciler.model.observed import ManifestKey, ObservedState, TagKey
from reconciler.model.outcome import Cause
from reconciler.model.plan import Action, ActionKind, Plan


@dataclass
class World:
    tags: dict[TagKey, str] = field(default_factory=dict)
    manifests: set[ManifestKey] = field(default_factory=set)
    down: set[str] = field(default_factory=set)
    """Registries that answer nothing."""
    writes: list[Action] = field(default_factory=list)

    def put(self, registry: str, repository: str, tag: str, digest: str) -> None:
        self.tags[TagKey(registry, repository, tag)] = digest
        self.manifests.add(ManifestKey(registry, repository, digest))

    def observe(self, desired: DesiredState, only: Collection[str] | None = None) -> ObservedState:
        tags: dict[TagKey, str | None] = {}
        errors: dict[TagKey | ManifestKey, Cause] = {}
        refused = Cause("connection refused", temporary=True)
        for key in tag_lookups(desired, only):
            if key.registry in self.down:
                errors[key] = refused
            else:
                tags[key] = self.tags.get(key)
        manifests: dict[ManifestKey, bool] = {}
        for mkey in manifest_lookups(desired, tags, only, tag_errors=set(errors)):
            if mkey.registry in self.down:
                errors[mkey] = refused
            else:
                manifests[mkey] = mkey in self.manifests
        return ObservedState(tags=tags, manifests=manifests, errors=errors)

    def execute(self, plan: Plan) -> None:
        """Run the writing actions in plan order; fail the test if a source or manifest is not there."""
        for action in plan:
            if not action.writes:
                continue
            for dep in action.depends_on:
                assert dep < action.id, f"action #{action.id} depends on a later action #{dep}"
            if action.registry in self.down:
                continue
            target = ManifestKey(action.registry, action.repository, action.digest)
            if action.source is not None:
                source = ManifestKey(action.source.registry, action.source.repository, action.digest)
                assert source in self.manifests, f"#{action.id} copies from {source} which is not there yet"
                assert action.kind in (ActionKind.COPY, ActionKind.CONFLICT)
            else:
                assert target in self.manifests, f"#{action.id} retags {target} which is not there"
            self.manifests.add(target)
            self.tags[TagKey(action.registry, action.repository, action.tag)] = action.digest
            self.writes.append(action)
