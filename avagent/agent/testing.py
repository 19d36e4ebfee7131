"""Run an agent on a recording and look at what it did: for tests, benchmarks and notebooks.

    result = await run_on_file("commands.wav")
    assert [c["name"] for c in result.of_type("tool_call")] == ["turn", "stop"]

The agent is the real one (real VAD, recogniser, policy, synthesiser); the file is fed as fast as
the agent settles, so the result is the same on a fast or a slow machine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from avagent.agent.agent import Agent, Resources
from avagent.agent.config import AgentConfig
from avagent.agent.events import Event
from avagent.agent.recorder import EventRecorder
from avagent.io.actuators import Body
from avagent.io.file_source import FileAudioSource
from avagent.io.virtual_speaker import VirtualSpeaker
from avagent.policy.base import Policy
from avagent.tools.registry import ToolRegistry


@dataclass
class RunResult:
    """What an agent did with one recording."""

    events: list[Event]
    voice: np.ndarray
    """Everything the agent said, aligned with the input (mono float32)."""
    voice_rate: int
    agent: Agent
    extra: dict[str, Any] = field(default_factory=dict)

    def dicts(self) -> list[dict[str, Any]]:
        """The events as the JSON contract has them."""
        return [e.to_dict() for e in self.events]

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [d for d in self.dicts() if d["type"] == kind]

    def voice_between(self, start: float, end: float) -> np.ndarray:
        return self.voice[round(start * self.voice_rate) : round(end * self.voice_rate)]


async def run_on_file(
    path: str | Path,
    config: AgentConfig | None = None,
    *,
    resources: Resources | None = None,
    tools: ToolRegistry | None = None,
    body: Body | None = None,
    policy: Policy | None = None,
    realtime: bool = False,
    setup: Callable[[Agent], None] | None = None,
    max_tail_s: float = 30.0,
) -> RunResult:
    """Run a fresh agent on the WAV file at ``path`` until it has answered everything."""
    agent = Agent(config, resources=resources, tools=tools, body=body, policy=policy, realtime=realtime)
    recorder = EventRecorder(agent.bus)
    agent.add_stage(recorder)
    blocks: list[np.ndarray] = []
    VirtualSpeaker(agent.playback, agent.clock, [blocks.append])
    if setup is not None:
        setup(agent)
    source = FileAudioSource(
        path,
        agent.bus,
        agent.clock,
        realtime=realtime,
        idle=agent.idle,
        max_tail_s=max_tail_s,
        block_ms=agent.config.audio.input.block_ms,
    )
    await agent.run(source)
    voice = np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)
    return RunResult(recorder.events, voice, agent.playback.sample_rate, agent, {"source": source})
