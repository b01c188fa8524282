"""Token cache keys: one canonical form per set of scopes, whatever order the registry writes them in."""

from __future__ import annotations

from reconciler.registry.auth import normalize_scopes


def test_action_order_does_not_change_the_key() -> None:
    assert normalize_scopes(["repository:t/api:push,pull"]) == normalize_scopes(["repository:t/api:pull,push"])


def test_actions_of_one_repository_merge_and_resources_sort() -> None:
    assert normalize_scopes(
        ["repository:t/api:push", "repository:d/api:pull", "repository:t/api:pull", "registry:catalog:*"]
    ) == ("registry:catalog:*", "repository:d/api:pull", "repository:t/api:pull,push")
