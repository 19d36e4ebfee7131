"""What the audio-visual tests share: a video of drawn faces where the test puts them, and the
config of an agent that shows its model the camera and the user's voice."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from langchain_openai import ChatOpenAI

from avagent.agent.config import parse_config
from avagent.agent.resources import Resources
from avagent.core.bus import Bus
from avagent.core.events import SpeechEnded, SpeechStarted, Transcript, TurnEnded
from avagent.core.messages import SAMPLE_RATE, AudioFrame, VideoFrame
from avagent.core.recorder import EventRecorder
from avagent.core.stage import Stage
from avagent.perception.avllm.frames import FrameSampler, FrameSettings
from avagent.perception.avllm.senses import AgentSenses
from avagent.perception.avllm.sounds import SoundLog
from avagent.policy.base import Policy
from avagent.policy.runner import PolicyRunner
from avagent.sim import faces as sim_faces
from avagent.sim.faces import DrawnFace
from avagent.sim.scene import Scene
from avagent.tools.executor import ToolExecutor
from avagent.tools.registry import Tool, ToolRegistry

HFOV_DEG = 60.0
"""The default lens (``camera.hfov_deg``)."""
FACE_ANGLES = (20.0, -20.0)
"""Two faces: 20 degrees to the left, 20 to the right of the camera's axis."""


def write_faces_video(
    path: Path,
    seconds: float,
    *,
    angles: Sequence[float] = FACE_ANGLES,
    talking: Scene | None = None,
    fps: int = 10,
) -> Path:
    """A video (MJPG in .avi, or MPEG-4 in .mp4) of drawn faces at ``angles`` from the camera's
    axis; the first face's mouth moves while a phrase of ``talking`` is said."""
    spans = [(p.start, p.end) for p in talking.phrases] if talking is not None else []
    faces = [DrawnFace(a, spans if i == 0 else ()) for i, a in enumerate(angles)]
    return sim_faces.write_faces_video(path, seconds, faces, hfov_deg=HFOV_DEG, fps=fps)


def omni_config(base_url: str, video: Path, **avllm: Any) -> dict[str, Any]:
    """An agent whose policy model takes the words, the frames and the voice of each turn."""
    return {
        "policy": {"model": "omni", "base_url": base_url, "model_input": "text,image,audio"},
        "camera": {"source": str(video), "fps": 10},
        "avllm": {"frames": {"max_side": 320}, **avllm},
    }


@dataclass
class MediaHarness:
    """A policy stage with real senses (a frame sampler and a sound log) on one bus: the test
    shows it frames and says turns, with their audio, as the camera and the listener would."""

    bus: Bus
    frames: FrameSampler
    sounds: SoundLog
    senses: AgentSenses
    runner: PolicyRunner
    recorder: EventRecorder
    now: float = 0.0
    turn: int = 0

    def events(self, kind: str) -> list[dict[str, Any]]:
        return [e.to_dict() for e in self.recorder.events if e.type == kind]

    def said(self) -> list[str]:
        return [e["text"] for e in self.events("say")]

    async def show(self, image: np.ndarray, t: float) -> None:
        self.now = t
        await self.bus.publish(VideoFrame(image=image, t=t, t_capture=t))
        await self.settled()

    async def hear(self, samples: np.ndarray, t: float, rate: int = SAMPLE_RATE) -> None:
        """The microphone's block ``samples`` (mono) starting at ``t``."""
        await self.bus.publish(AudioFrame(samples=samples.reshape(-1, 1), sample_rate=rate, t=t, t_capture=t))
        await self.settled()

    async def start_speaking(self, start: float) -> None:
        """The user starts speaking at ``start`` (the frame sampler samples faster meanwhile)."""
        self.now = start
        await self.bus.publish(SpeechStarted(t=start))
        await self.settled()

    async def end_turn(self, text: str, start: float, end: float, audio: np.ndarray | None = None) -> None:
        """The user said ``text`` from ``start`` to ``end`` (``audio``: a tone of that length)."""
        self.turn += 1
        samples = audio if audio is not None else tone(end - start, 220.0)
        self.now = end + 0.3
        await self.bus.publish(SpeechEnded(t=end + 0.1, start=start, end=end))
        await self.bus.publish(TurnEnded(t=self.now, turn=self.turn, start=start, end=end, audio=samples))
        await self.bus.publish(Transcript(t=self.now, text=text, turn=self.turn))
        await self.settled()

    async def say_turn(self, text: str, start: float, end: float, audio: np.ndarray | None = None) -> None:
        """The user said ``text`` from ``start`` to ``end``, with no frame shown meanwhile."""
        await self.start_speaking(start)
        await self.end_turn(text, start, end, audio)

    async def settled(self) -> None:
        async with asyncio.timeout(20.0):
            await self.bus.activity.settled()
            while self.runner.busy:
                await asyncio.sleep(0.005)
                await self.bus.activity.settled()


def tone(seconds: float, hz: float, rate: int = SAMPLE_RATE) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def chat_model(base_url: str) -> ChatOpenAI:
    return ChatOpenAI(model="omni", base_url=base_url, api_key="x", max_retries=0, streaming=True)  # type: ignore[arg-type]


@asynccontextmanager
async def media_policy(
    make_policy: Callable[[ToolExecutor, AgentSenses], Policy],
    *,
    frames: FrameSettings | None = None,
    tools: list[Tool] | None = None,
) -> AsyncIterator[MediaHarness]:
    """A running policy stage whose policy ``make_policy(executor, senses)`` makes."""
    bus = Bus()
    sampler = FrameSampler(bus, frames or FrameSettings(max_side=320))
    sounds = SoundLog(bus)
    senses = AgentSenses(sampler, sounds, lambda: harness.now)
    executor = ToolExecutor(ToolRegistry(tools or []))
    runner = PolicyRunner(bus, make_policy(executor, senses), executor)
    recorder = EventRecorder(bus)
    harness = MediaHarness(bus, sampler, sounds, senses, runner, recorder)
    bus.media_time = lambda: harness.now
    stages: list[Stage] = [runner, recorder, sampler, sounds]
    tasks = [asyncio.create_task(s.run(), name=s.name) for s in stages]
    try:
        yield harness
    finally:
        bus.close()
        await asyncio.wait(tasks, timeout=2.0)
        for task in tasks:
            task.cancel()


def sense_resources() -> Iterator[Resources]:
    """Models for agents that offer the sense tools (their phrases in the offline grammar)."""
    shared = Resources(parse_config({"avllm": {"tools": True}}))
    asyncio.run(shared.start())
    yield shared
    asyncio.run(shared.stop())
