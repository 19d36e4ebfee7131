"""The recording stage: everything that crosses an agent's bus, and its voice, into one MCAP file.

It reads the input audio and video frames and every event from the bus, and is handed the agent's
voice as the speaker pulls it (``voice``, from whatever thread pulls) and each exchange with the
policy's model (``model``). Encoding on the loop is cheap (PCM, JSON); JPEG encoding and all
writing happen on the writer's thread. Tool calls are written with their results on ``/tools``
once the result is known.

A recording that cannot be written (the file cannot be made, the disk is full or slow) is
reported once as an ``error`` event; the agent goes on, unrecorded.
"""

from __future__ import annotations

import asyncio
import functools
from collections import OrderedDict
from typing import Any

import numpy as np

from avagent.core.bus import Bus
from avagent.core.errors import InputError
from avagent.core.events import Error, Event, ToolCall, ToolResult
from avagent.core.messages import AudioFrame, VideoFrame, to_int16
from avagent.core.streams import Stream
from avagent.io.recording.format import (
    AUDIO_IN,
    AUDIO_OUT,
    EVENTS,
    MODEL,
    TOOLS,
    VIDEO,
    encode_audio,
    encode_json,
    encode_video,
)
from avagent.io.recording.writer import RecordingWriter, RecordSettings

_PENDING_CALLS = 256
"""Tool calls remembered until their result comes (older ones are forgotten)."""


class RecordingStage:
    """Records one agent's session into ``writer``'s file."""

    name = "recording"
    consumes: tuple[type, ...] = (AudioFrame, VideoFrame, Event)
    produces: tuple[type, ...] = (Error,)

    def __init__(
        self, bus: Bus, writer: RecordingWriter, settings: RecordSettings, *, voice_rate: int
    ) -> None:
        self._bus = bus
        self.writer = writer
        self.settings = settings
        self._voice_rate = voice_rate
        self._frames: Stream[AudioFrame | VideoFrame] = bus.subscribe(
            AudioFrame, VideoFrame, name="recording.frames", maxsize=256
        )
        self._events: Stream[Event] = bus.subscribe(Event, name="recording.events", maxsize=4096)
        self._calls: OrderedDict[str, ToolCall] = OrderedDict()
        self._reported = False

    # --- handed over from outside the bus --------------------------------------------------

    def voice(self, block: np.ndarray, t: float) -> None:
        """A block of the agent's voice about to be heard at media time ``t`` (any thread)."""
        if self.settings.voice and block.size and np.any(block):
            self.writer.put(AUDIO_OUT, t, encode_audio(to_int16(block), self._voice_rate, t))

    def model(self, exchange: dict[str, Any]) -> None:
        """One request to the policy's model with its answer (see ``policy/model_tap.py``)."""
        self.writer.put(MODEL, float(exchange.get("t") or 0.0), encode_json(exchange))

    # --- the stage ---------------------------------------------------------------------------

    async def run(self) -> None:
        try:
            await asyncio.to_thread(self.writer.start)
        except InputError as exc:
            self.writer.stop()  # the voice and the model's exchanges are refused from now on, not kept
            self._publish_problem(f"not recording: {exc}")
            await self._discard()
            return
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._record_frames())
                group.create_task(self._record_events())
        finally:
            # Finished even when the agent is cancelled: the file gets its summary.
            await asyncio.shield(asyncio.to_thread(self.writer.stop))

    async def _record_frames(self) -> None:
        async for frame in self._frames:
            if isinstance(frame, AudioFrame):
                self.writer.put(AUDIO_IN, frame.t, encode_audio(frame.samples, frame.sample_rate, frame.t))
            elif self.settings.video:
                # Encoded on the writer's thread, not here.
                encode = functools.partial(encode_video, frame.image, frame.t, self.settings.jpeg_quality)
                self.writer.put(VIDEO, frame.t, encode, size=frame.image.nbytes)
            self._check()

    async def _record_events(self) -> None:
        async for event in self._events:
            self.writer.put(EVENTS, event.t, encode_json(event.to_dict()))
            if isinstance(event, ToolCall):
                self._calls[event.call_id] = event
                while len(self._calls) > _PENDING_CALLS:
                    self._calls.popitem(last=False)
            elif isinstance(event, ToolResult):
                call = self._calls.pop(event.call_id, None)
                record = {
                    "t": event.t,
                    "turn": event.turn,
                    "call_id": event.call_id,
                    "name": event.name,
                    "args": call.args if call is not None else None,
                    "ok": event.ok,
                    "result": event.result,
                }
                self.writer.put(TOOLS, event.t, encode_json(record))
            self._check()

    def _check(self) -> None:
        if not self._reported and self.writer.problem is not None:
            self._publish_problem(f"recording {self.writer.path}: {self.writer.problem}")

    def _publish_problem(self, message: str) -> None:
        self._reported = True
        self._bus.publish_nowait(Error(t=self._bus.media_time(), stage=self.name, message=message))

    async def _discard(self) -> None:
        """Keep reading (and dropping) until the agent stops: nothing waits on a recording that failed."""

        async def drain(stream: Stream[Any]) -> None:
            async for _item in stream:
                pass

        async with asyncio.TaskGroup() as group:
            group.create_task(drain(self._frames))
            group.create_task(drain(self._events))
