"""Shared fixtures: synthesised scenes with known truth, and models loaded once per session."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from avagent.agent.config import AgentConfig
from avagent.agent.resources import Resources
from avagent.sim.scene import Scene, synthesize_scene

SceneFactory = Callable[..., tuple[Scene, Path]]


@pytest.fixture(scope="session")
def scene_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("scenes")


@pytest.fixture(scope="session")
def make_scene(scene_dir: Path) -> SceneFactory:
    """Synthesise (once per set of arguments) a scene and write it as a WAV file."""
    cache: dict[str, tuple[Scene, Path]] = {}

    def make(phrases: list[str], **kwargs: object) -> tuple[Scene, Path]:
        key = repr((phrases, sorted(kwargs.items())))
        if key not in cache:
            scene = synthesize_scene(phrases, **kwargs)  # type: ignore[arg-type]
            path = scene.write(scene_dir / f"scene{len(cache)}.wav")
            cache[key] = (scene, path)
        return cache[key]

    return make


@pytest.fixture(scope="session")
def resources() -> Iterator[Resources]:
    """The default recogniser and synthesiser, loaded once for the whole session."""
    shared = Resources(AgentConfig())
    asyncio.run(shared.start())
    yield shared
    asyncio.run(shared.stop())
