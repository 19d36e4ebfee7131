"""``avagent run`` on a robot: the e-stop keys, and the parts of a split agent that have no
microphone (``--role policy``, ``--role actuators``)."""

from __future__ import annotations

import sys

import numpy as np

from avagent.agent.agent import Agent
from avagent.agent.config import AgentConfig
from avagent.agent.resources import Resources
from avagent.core.events import Estop, EstopCleared
from avagent.io.terminal_keys import TerminalKeys, interactive
from avagent.io.wall_clock import WallClockSource
from avagent.perception.asr.base import Recognition

ESTOP_KEYS = (" ", "e", "E")
CLEAR_KEYS = ("c", "C")


def add_estop_keys(agent: Agent) -> bool:
    """Space or ``e`` engages the e-stop, ``c`` clears it, when ``avagent run`` is on a terminal."""
    if not agent.config.actuators.estop_keys or not interactive(sys.stdin):
        return False
    robot = agent.parts.robot
    hub = robot.hub if robot is not None else None

    async def on_key(key: str) -> None:
        if key in ESTOP_KEYS:
            if hub is not None:
                await hub.estop("key", "a key on the terminal")
            else:
                agent.bus.publish_nowait(
                    Estop(t=agent.clock.now(), source="key", reason="a key on the terminal")
                )
        elif key in CLEAR_KEYS:
            if hub is not None:
                hub.clear_estop("key")
            else:
                agent.bus.publish_nowait(EstopCleared(t=agent.clock.now(), source="key"))

    agent.add_stage(TerminalKeys(on_key))
    return True


class _Deaf:
    """The recogniser of a part that hears nothing (its transcripts come over the robot bus)."""

    name = "none"

    async def start(self) -> None:
        return None

    async def transcribe(self, audio: np.ndarray, sample_rate: int) -> Recognition:
        return Recognition("")

    async def stop(self) -> None:
        return None


class _Mute:
    """The synthesiser of a part that says nothing itself (its words go over the robot bus)."""

    name = "none"
    sample_rate = 16000

    async def start(self) -> None:
        return None

    async def synthesize(self, text: str) -> np.ndarray:
        return np.zeros(0, dtype=np.float32)

    async def stop(self) -> None:
        return None


def remote_part(config: AgentConfig) -> tuple[Agent, WallClockSource]:
    """The agent of a part with no microphone or speaker, and the source that keeps its time."""
    resources = Resources(config, recognizer=_Deaf(), synthesizer=_Mute())
    agent = Agent(config, resources=resources, realtime=True)
    return agent, WallClockSource(agent.clock)
