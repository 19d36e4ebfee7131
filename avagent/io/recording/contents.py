"""What one recording holds, read in one pass: its streams, its events, tool results and model
exchanges (kept in memory, within ``MAX_KEPT_BYTES``), the configuration and versions, and
where it stops if it was cut short.

The input audio must keep one rate, one channel count and one sample format, and last at most
24 hours: a replay feeds it as one input. Video frames are checked for size (from the JPEG header)
but not decoded here. A damaged event, tool or model message is left out and counted; damaged
audio ends the recording there, as a cut would.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from avagent.io.recording.format import (
    AUDIO_IN,
    AUDIO_OUT,
    EVENTS,
    MAX_IMAGE_SIDE,
    MAX_JSON_BYTES,
    MAX_KEPT_BYTES,
    MAX_MODEL_BYTES,
    MAX_RECORDING_S,
    MODEL,
    TOOLS,
    VIDEO,
    RecordingError,
    decode_audio,
    decode_json,
    decode_video,
    jpeg_size,
)
from avagent.io.recording.reader import RecordingReader


@dataclass
class AudioStream:
    """The recorded input audio."""

    sample_rate: int
    channels: int
    dtype: str
    frames: int = 0
    blocks: int = 0

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate


@dataclass
class RecordingContents:
    """One recording, read through once (``scan``)."""

    path: Path
    metadata: dict[str, str]
    audio: AudioStream | None = None
    video_frames: int = 0
    video_size: tuple[int, int] | None = None
    video_span: tuple[float, float] | None = None
    voice_s: float = 0.0
    """Seconds of the agent's voice recorded (silence is not recorded)."""
    events: list[dict[str, Any]] = field(default_factory=list)
    tools: list[dict[str, Any]] = field(default_factory=list)
    model: list[dict[str, Any]] = field(default_factory=list)
    messages: dict[str, int] = field(default_factory=dict)
    """Messages read, by channel."""
    skipped: int = 0
    """Damaged messages left out."""
    cut: str | None = None
    """Why reading stopped before the end of a complete file (None: the file is whole)."""
    end_t: float = 0.0
    """Media time of the last message read."""

    @property
    def duration(self) -> float:
        """Seconds of input audio."""
        return self.audio.duration if self.audio is not None else 0.0

    @property
    def has_video(self) -> bool:
        return self.video_frames > 0

    @property
    def config(self) -> dict[str, Any] | None:
        """The configuration the session ran with (secrets left out), if recorded."""
        return _json_object(self.metadata.get("config"))

    @property
    def versions(self) -> dict[str, Any]:
        return _json_object(self.metadata.get("versions")) or {}

    @property
    def lockstep(self) -> bool:
        """The session was a file fed in lockstep (its events are the same on any machine)."""
        return self.metadata.get("lockstep") == "true"


def _json_object(text: str | None) -> dict[str, Any] | None:
    if not text:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def scan(path: str | Path) -> RecordingContents:
    """Read the recording at ``path`` once; ``RecordingError`` (one line) when it is not one."""
    reader = RecordingReader(path)
    reader.check()
    contents = RecordingContents(reader.path, {})
    kept = 0
    for message in reader.messages():
        contents.metadata = reader.metadata
        contents.messages[message.topic] = contents.messages.get(message.topic, 0) + 1
        if message.topic == AUDIO_IN:
            problem = _add_audio(contents, message.data)
            if problem is not None:
                contents.cut = problem
                break
        elif message.topic == VIDEO:
            _add_video(contents, message.data)
        elif message.topic == AUDIO_OUT:
            try:
                contents.voice_s += decode_audio(message.data).duration
            except RecordingError:
                contents.skipped += 1
        elif message.topic in (EVENTS, TOOLS, MODEL):
            limit = MAX_MODEL_BYTES if message.topic == MODEL else MAX_JSON_BYTES
            try:
                value = decode_json(message.data, limit, message.topic.strip("/"))
            except RecordingError:
                contents.skipped += 1
                continue
            kept += len(message.data)
            if kept > MAX_KEPT_BYTES:
                raise RecordingError(
                    f"{reader.path}: more than {MAX_KEPT_BYTES >> 20} MiB of events, tool results and "
                    "model exchanges; too much to replay at once"
                )
            {EVENTS: contents.events, TOOLS: contents.tools, MODEL: contents.model}[message.topic].append(
                value
            )
        contents.end_t = max(contents.end_t, message.t)
    contents.metadata = reader.metadata
    if contents.cut is None and not reader.complete:
        contents.cut = reader.cut
    if not contents.metadata and contents.audio is None:
        raise RecordingError(f"{reader.path}: holds no avagent session ({reader.cut or 'nothing recorded'})")
    return contents


def _add_audio(contents: RecordingContents, data: bytes) -> str | None:
    """Count one input block; why the audio cannot go on, if it cannot."""
    try:
        block = decode_audio(data)
    except RecordingError as exc:
        return f"the input audio is damaged at {contents.duration:.2f} s ({exc})"
    dtype = str(block.samples.dtype)
    audio = contents.audio
    if audio is None:
        audio = contents.audio = AudioStream(block.sample_rate, int(block.samples.shape[1]), dtype)
    elif (audio.sample_rate, audio.channels, audio.dtype) != (
        block.sample_rate,
        block.samples.shape[1],
        dtype,
    ):
        return (
            f"the input audio changes from {audio.sample_rate} Hz, {audio.channels} ch to "
            f"{block.sample_rate} Hz, {block.samples.shape[1]} ch at {audio.duration:.2f} s"
        )
    if audio.duration + block.duration > MAX_RECORDING_S:
        return f"the input audio goes on past {MAX_RECORDING_S / 3600:g} hours"
    audio.frames += int(block.samples.shape[0])
    audio.blocks += 1
    return None


def _add_video(contents: RecordingContents, data: bytes) -> None:
    try:
        t, jpeg = decode_video(data)
        size = jpeg_size(jpeg)
    except RecordingError:
        contents.skipped += 1
        return
    if max(size) > MAX_IMAGE_SIDE:
        contents.skipped += 1
        return
    contents.video_frames += 1
    contents.video_size = contents.video_size or size
    first = contents.video_span[0] if contents.video_span is not None else t
    contents.video_span = (first, t)
