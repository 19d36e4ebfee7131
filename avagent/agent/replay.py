"""Replaying a recorded session through today's agent (``avagent replay``).

The recording's input audio (and video) is fed to a fresh agent exactly as a WAV file is fed:
in lockstep, so a session recorded from a file replays to the same events on any machine. The
agent is today's: today's code, and the configuration the session ran with (as recorded, secrets
left out) or another one. Unless ``live``:

- the policy's model is not asked: the recorded answers stand in (``policy/model_tap.py``), so
  a replay needs no server, no key and no network;
- the tools are not run: their recorded results stand in (``tools/recorded.py``), so nothing
  moves and a tool whose answer changes (the time) answers as it did. What only running a tool
  makes happen (an actuator moving, a scene described) is therefore not replayed;
- the actuators are the simulated ones, whatever the session drove.

A replay never opens a camera, never joins a robot bus and never records itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from avagent.agent.agent import Agent
from avagent.agent.builder import array_from_config
from avagent.agent.config import AgentConfig, parse_config
from avagent.agent.files import FileRun, RunResult
from avagent.agent.resources import Resources
from avagent.core.errors import InputError
from avagent.core.stage import Stage
from avagent.io.recording.contents import RecordingContents, scan
from avagent.io.recording.source import RecordedAudioSource, RecordedVideoSource
from avagent.tools.recorded import RecordedOutcomes
from avagent.tools.registry import ToolRegistry

if TYPE_CHECKING:
    from avagent.policy.model_tap import RecordedChatModel


def load_recording(path: str | Path) -> RecordingContents:
    """The recording at ``path``, read through once; ``InputError`` (one line) if it is not one."""
    return scan(path)


def sees(contents: RecordingContents, config: AgentConfig) -> bool:
    """Whether a replay with ``config`` is shown the recorded frames: the recording has some and
    the config has sight (a camera, or faces on calls)."""
    return contents.has_video and (config.camera.source is not None or config.faces.on_calls)


def replay_config(
    contents: RecordingContents, config: AgentConfig | None = None, *, live: bool = False
) -> AgentConfig:
    """The configuration of a replay: ``config``, or the one the session ran with, without a
    camera, a robot bus or a recording of its own, and (unless ``live``) with simulated
    actuators."""
    if config is None:
        recorded = contents.config
        source = f"{contents.path} (its recorded configuration; give another with --config)"
        config = parse_config(recorded, source=source) if recorded is not None else AgentConfig()
    data = config.model_dump()
    data["faces"]["on_calls"] = sees(contents, config)
    data["camera"]["source"] = None
    data["mqtt"].update(url=None, role="all")
    data["record"].update(file=None, folder=None)
    if not live:
        data["actuators"] = AgentConfig().actuators.model_dump()
    replayed = parse_config(data, source="replay")
    array = array_from_config(replayed.array)
    channels = contents.audio.channels if contents.audio is not None else 0
    if array is not None and channels < array.mics:
        raise InputError(
            f"{contents.path}: has {channels} channel(s) but the array {array.name!r} has {array.mics} "
            "microphones (channel i is microphone i)"
        )
    return replayed


@dataclass
class Replay:
    """One replay, ready to run (``await replay.run.run()``)."""

    contents: RecordingContents
    config: AgentConfig
    run: FileRun
    live: bool
    outcomes: RecordedOutcomes | None
    """The recorded tool results standing in (None when ``live``)."""
    model: RecordedChatModel | None
    """The recorded model answers standing in (None when ``live`` or without a model)."""


def prepare_replay(
    contents: RecordingContents,
    config: AgentConfig | None = None,
    *,
    live: bool = False,
    resources: Resources | None = None,
    tools: ToolRegistry | None = None,
    keep: bool = True,
    max_tail_s: float = 30.0,
) -> Replay:
    """Today's agent wired to the recorded inputs (see the module's docstring); ``config`` and
    ``tools`` in place of the recorded configuration and the configured tools."""
    replay_cfg = replay_config(contents, config, live=live)
    shown = replay_cfg.faces.on_calls and contents.has_video
    model: RecordedChatModel | None = None
    if not live and replay_cfg.policy.model:
        from avagent.policy.model_tap import RecordedChatModel  # LangChain only with a model

        model = RecordedChatModel(exchanges=contents.model)

    def source(agent: Agent) -> Stage:
        video = RecordedVideoSource(agent.bus, agent.clock) if shown else None
        if video is not None:
            agent.add_stage(video)
        return RecordedAudioSource(contents, agent.bus, agent.clock, video=video, max_tail_s=max_tail_s)

    run = FileRun(
        None,
        replay_cfg,
        resources=resources,
        tools=tools,
        keep=keep,
        source=source,
        video_from_source=shown,
        chat_model=model,
        max_tail_s=max_tail_s,
    )
    outcomes = None
    if not live:
        outcomes = RecordedOutcomes(contents.tools)
        run.agent.parts.executor.stand_in = outcomes
    return Replay(contents, replay_cfg, run, live, outcomes, model)


async def replay_recording(
    path: str | Path,
    config: AgentConfig | None = None,
    *,
    live: bool = False,
    resources: Resources | None = None,
    tools: ToolRegistry | None = None,
) -> tuple[RecordingContents, RunResult]:
    """Replay the recording at ``path`` to the end; what it holds, and what today's agent did."""
    contents = load_recording(path)
    replay = prepare_replay(contents, config, live=live, resources=resources, tools=tools)
    return contents, await replay.run.run()
