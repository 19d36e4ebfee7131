"""``avagent replay``: today's agent on a recorded session, what changed (``--compare``), what a
recording holds (``--info``), and a session with a model replayed with the model's server gone."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Literal

import pytest

from avagent.agent.compare import comparable, compare
from avagent.agent.config import AgentConfig, with_overrides
from avagent.agent.files import FileRun
from avagent.agent.replay import load_recording, prepare_replay, replay_recording
from avagent.agent.resources import Resources
from avagent.io.actuators import SimulatedBody
from avagent.io.wav import inspect_wav
from avagent.tools.builtin import builtin_tools
from avagent.tools.registry import ToolRegistry, tool
from tests.conftest import SceneFactory
from tests.openai_server import Reply, scripted_server, tool_call


def avagent(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "avagent", *args], capture_output=True, text=True, timeout=180
    )


@pytest.fixture(scope="module")
def recorded(
    make_scene: SceneFactory, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, list[dict[str, Any]]]:
    """Two commands recorded from the command line (a fresh process), with the events it printed."""
    _, wav = make_scene(["turn left", "what time is it"], snr_db=30.0, seed=3)
    mcap = tmp_path_factory.mktemp("replay") / "session.mcap"
    done = avagent("run", "--input", str(wav), "--record", str(mcap), "--json")
    assert done.returncode == 0, done.stderr
    return mcap, [json.loads(line) for line in done.stdout.splitlines()]


def test_a_replay_in_a_fresh_process_prints_the_recorded_events_exactly(
    recorded: tuple[Path, list[dict[str, Any]]], tmp_path: Path
) -> None:
    mcap, printed = recorded
    reply = tmp_path / "reply.wav"
    done = avagent("replay", str(mcap), "--json", "--output", str(reply))
    assert done.returncode == 0, done.stderr
    replayed = [json.loads(line) for line in done.stdout.splitlines()]
    assert comparable(replayed) == comparable(printed)
    assert any(e["type"] == "actuator" for e in printed)  # not replayed: the tools did not run
    assert inspect_wav(reply).duration > 3.0
    clean = avagent("replay", str(mcap), "--compare")
    assert clean.returncode == 0, clean.stderr
    assert "the replay matches the recording" in clean.stderr


def test_info_summarises_duration_channels_streams_and_turns(
    recorded: tuple[Path, list[dict[str, Any]]],
) -> None:
    mcap, _ = recorded
    done = avagent("replay", str(mcap), "--info")
    assert done.returncode == 0, done.stderr
    assert "(complete)" in done.stdout
    assert "16000 Hz, 1 channel(s)" in done.stdout
    assert "/audio/in" in done.stdout
    assert "/audio/out" in done.stdout
    assert "/tools 2" in done.stdout
    assert "heard 'turn left' -> turn(direction='left', degrees=90)" in done.stdout
    info = json.loads(avagent("replay", str(mcap), "--info", "--json").stdout)
    assert [t["heard"] for t in info["turns"]] == ["turn left", "what time is it"]
    assert info["duration_s"] > 5.0
    assert info["tool_calls"] == 2


def test_a_replay_after_changing_a_tools_phrases_shows_the_difference(
    recorded: tuple[Path, list[dict[str, Any]]], tmp_path: Path
) -> None:
    mcap, _ = recorded

    @tool(phrases=["rotate {direction}"])
    async def turn(direction: Literal["left", "right"]) -> str:
        """Turn, said another way."""
        return f"Rotating {direction}."

    others = [t for t in builtin_tools(SimulatedBody()) if t.name != "turn"]
    tools = ToolRegistry([turn, *others])
    resources = Resources(AgentConfig(), tools)
    contents = load_recording(mcap)

    async def replay() -> list[dict[str, Any]]:
        await resources.start()
        try:
            result = await prepare_replay(contents, resources=resources, tools=tools).run.run()
        finally:
            await resources.stop()
        return result.dicts()

    differences = compare(contents.events, asyncio.run(replay()))
    assert differences
    assert differences[0].turn == 1
    assert differences[0].what in ("heard", "tool_calls")
    # From the command line: a config without the turn tool hears and does otherwise; exit 1.
    config = tmp_path / "no-turn.yaml"
    config.write_text("tools:\n  builtin: [look_at, stop, what_time, say]\n")
    done = avagent("replay", str(mcap), "--compare", "--config", str(config))
    assert done.returncode == 1, done.stderr
    assert "turn 1 ('turn left')" in done.stdout
    assert "difference(s) from the recording" in done.stderr
    as_json = avagent("replay", str(mcap), "--compare", "--json", "--config", str(config))
    assert as_json.returncode == 1
    assert {json.loads(line)["turn"] for line in as_json.stdout.splitlines()} == {1}


async def test_a_recording_with_a_model_replays_with_the_server_stopped(
    make_scene: SceneFactory, resources: Resources, tmp_path: Path
) -> None:
    _, wav = make_scene(["turn left"], snr_db=30.0, seed=7)
    mcap = tmp_path / "model.mcap"
    async with scripted_server(
        Reply(text="Turning. ", tool_calls=[tool_call("turn", {"direction": "left"}, "c1")]),
        Reply(text="Done, I turned left."),
    ) as server:
        config = with_overrides(
            AgentConfig(),
            **{
                "policy.model": "local-model",
                "policy.base_url": server.base_url,
                "record.file": str(mcap),
                "asr.backend": "pocketsphinx",
            },
        )
        original = await FileRun(wav, config, resources=resources).run()
        assert len(server.requests) == 2
    said = [e["text"] for e in original.dicts() if e["type"] == "say"]
    assert said == ["Turning.", "Done, I turned left."]
    contents, replayed = await replay_recording(mcap, resources=resources)
    assert [m["ended"] for m in contents.model] == ["complete", "complete"]
    assert contents.config is not None
    assert contents.config["policy"]["model"] == "local-model"
    assert [e["text"] for e in replayed.dicts() if e["type"] == "say"] == said
    assert compare(contents.events, replayed.dicts()) == []
    # Asked live, the gone server is missed (the policy falls back to the offline commands).
    live_contents = load_recording(mcap)
    live = prepare_replay(live_contents, live=True, resources=resources)
    assert live.model is None
    assert live.outcomes is None


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "no such recording"),
        (b"RIFF not an mcap at all", "not an MCAP recording"),
        (b"\x89MCAP0\r\n", "holds no avagent session"),
    ],
)
def test_a_file_that_is_not_a_recording_exits_2_with_one_line(
    tmp_path: Path, content: bytes | None, message: str
) -> None:
    path = tmp_path / "bad.mcap"
    if content is not None:
        path.write_bytes(content)
    for extra in ((), ("--info",), ("--compare",)):
        done = avagent("replay", str(path), *extra)
        assert done.returncode == 2
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1
        assert message in lines[0]
