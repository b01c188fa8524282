"""Fixtures of the controller's end-to-end tests: a factory of controller processes (always killed at
teardown), the five-registry landscape of the engine's tests, and a Git remote in tmp."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from engine.landscape import Landscape, start_landscape

from .harness import ControllerProcess, GitRemote

ControllerFactory = Callable[..., ControllerProcess]


@pytest.fixture
def controllers(tmp_path: Path) -> Iterator[ControllerFactory]:
    started: list[ControllerProcess] = []

    def start(*args: str, name: str = "controller", env: dict[str, str] | None = None) -> ControllerProcess:
        process = ControllerProcess(list(args), tmp_path / "controllers", name=name, env=env)
        started.append(process)
        return process

    try:
        yield start
    finally:
        for process in started:
            process.kill()


@pytest.fixture
def landscape(registry_factory: Any, tmp_path: Path) -> Landscape:
    return start_landscape(registry_factory, tmp_path / "state")


@pytest.fixture
def remote(tmp_path: Path) -> GitRemote:
    return GitRemote(tmp_path / "git")
