"""An agent on a recording: the one way the command line, the demo, the tests and the benchmarks
run it.

    result = await run_on_file("commands.wav")
    assert [c["name"] for c in result.of_type("tool_call")] == ["turn", "stop"]

The agent is the real one (real VAD, recogniser, policy, synthesiser); the file is its microphone
and a virtual speaker, clocked by the file, its speaker. Fed as fast as the agent settles (the
default), the result is the same on a fast or a slow machine; with ``realtime`` the file is paced
by the wall clock, as a live microphone would be.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from avagent.agent.agent import Agent
from avagent.agent.builder import doa_settings, turn_settings, vad_settings
from avagent.agent.config import AgentConfig
from avagent.agent.resources import Resources
from avagent.core.bus import Bus
from avagent.core.clock import MediaClock
from avagent.core.events import Event, SoundDirection
from avagent.core.recorder import EventRecorder
from avagent.core.stage import Stage
from avagent.io.actuators import Body
from avagent.io.file_source import FileAudioSource
from avagent.io.virtual_speaker import BlockSink, VirtualSpeaker
from avagent.io.wav import WavInfo, inspect_wav
from avagent.perception.arrays import MicArray, check_channels
from avagent.perception.doa import SoundDirectionStage
from avagent.perception.listening import Listener
from avagent.policy.base import Policy
from avagent.tools.registry import ToolRegistry

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel


@dataclass
class RunResult:
    """What an agent did with one recording."""

    events: list[Event]
    voice: np.ndarray
    """Everything the agent said, aligned with the input (mono float32)."""
    voice_rate: int
    agent: Agent
    source: Stage
    """What fed the agent (a ``FileAudioSource`` for a WAV file)."""

    def dicts(self) -> list[dict[str, Any]]:
        """The events as the JSON contract has them."""
        return [e.to_dict() for e in self.events]

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [d for d in self.dicts() if d["type"] == kind]

    def voice_between(self, start: float, end: float) -> np.ndarray:
        return self.voice[round(start * self.voice_rate) : round(end * self.voice_rate)]


class FileRun:
    """An agent wired to a WAV file (or another recorded input: a replayed session, a scenario's
    turns). Add stages or look at ``agent`` before ``run``."""

    def __init__(
        self,
        path: str | Path | None,
        config: AgentConfig | None = None,
        *,
        resources: Resources | None = None,
        tools: ToolRegistry | None = None,
        body: Body | None = None,
        policy: Policy | None = None,
        realtime: bool = False,
        max_tail_s: float = 30.0,
        info: WavInfo | None = None,
        speaker: bool = True,
        keep: bool = True,
        source: Callable[[Agent], Stage] | None = None,
        video_from_source: bool = False,
        chat_model: BaseChatModel | None = None,
    ) -> None:
        """``speaker=False`` leaves the playback to a speaker of the caller's (``speaker.add_sink``
        hands the voice to more places); ``keep`` keeps the events and the voice for the result (a
        long recording run from the command line does not). ``source`` makes the agent's input in
        place of the WAV file at ``path`` (fed in the same lockstep: ``agent/replay.py``), with
        ``video_from_source`` when it brings the frames too; ``chat_model`` answers in place of the
        configured model."""
        self.agent = agent = Agent(
            config,
            resources=resources,
            tools=tools,
            body=body,
            policy=policy,
            realtime=realtime,
            video_from_source=video_from_source,
            chat_model=chat_model,
        )
        self.source: Stage
        if source is not None:
            self.source = source(agent)
        elif path is None and info is None:
            raise ValueError("FileRun needs a WAV file or a source")
        else:
            self.source = FileAudioSource(
                info.path if info is not None else str(path),
                agent.bus,
                agent.clock,
                realtime=realtime,
                max_tail_s=max_tail_s,
                block_ms=agent.config.audio.input.block_ms,
                info=info,
            )
        self._recorder: EventRecorder | None = None
        self._blocks: list[np.ndarray] = []
        sinks: list[BlockSink] = []
        if keep:
            self._recorder = EventRecorder(agent.bus)
            agent.add_stage(self._recorder)
            sinks.append(self._blocks.append)
        self.speaker = VirtualSpeaker(agent.playback, agent.clock, sinks) if speaker else None

    async def run(self, *, handle_signals: bool = False) -> RunResult:
        """Run until the agent has answered everything the file asks (or is stopped)."""
        await self.agent.run(self.source, handle_signals=handle_signals)
        voice = np.concatenate(self._blocks) if self._blocks else np.zeros(0, dtype=np.float32)
        events = self._recorder.events if self._recorder is not None else []
        return RunResult(events, voice, self.agent.playback.sample_rate, self.agent, self.source)


async def run_on_file(
    path: str | Path,
    config: AgentConfig | None = None,
    *,
    setup: Callable[[Agent], None] | None = None,
    resources: Resources | None = None,
    tools: ToolRegistry | None = None,
    body: Body | None = None,
    policy: Policy | None = None,
    realtime: bool = False,
    max_tail_s: float = 30.0,
) -> RunResult:
    """Run a fresh agent on the WAV file at ``path`` until it has answered everything; ``setup``
    sees the agent before it starts."""
    run = FileRun(
        path,
        config,
        resources=resources,
        tools=tools,
        body=body,
        policy=policy,
        realtime=realtime,
        max_tail_s=max_tail_s,
    )
    if setup is not None:
        setup(run.agent)
    return await run.run()


async def locate_speech(
    path: str | Path, array: MicArray, config: AgentConfig | None = None
) -> list[SoundDirection]:
    """The sound directions of the speech in a multichannel WAV file (VAD on channel 0), fed as
    fast as the stages settle: the same answers as live, on any machine (``avagent doa``)."""
    config = config or AgentConfig()
    info = inspect_wav(path)
    check_channels(info, array)
    bus = Bus()
    clock = MediaClock(extrapolate=False)
    bus.media_time = clock.now
    listener = Listener(bus, vad_settings(config), turn_settings(config))
    doa = SoundDirectionStage(bus, array, doa_settings(config))
    recorder = EventRecorder(bus, SoundDirection)
    source = FileAudioSource(info.path, bus, clock, info=info, max_tail_s=5.0)
    async with asyncio.TaskGroup() as group:
        stages = [group.create_task(s.run(), name=s.name) for s in (listener, doa, recorder)]
        await source.run()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5.0):
                await bus.activity.settled()
        bus.close()
        await asyncio.gather(*stages)
    return [e for e in recorder.events if isinstance(e, SoundDirection)]
