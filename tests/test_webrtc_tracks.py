"""The media edges of a call, each on its own: the caller's audio track into the agent's bus, and
the agent's playback out as a paced 48 kHz track."""

from __future__ import annotations

import asyncio
import fractions
import time
from typing import Any

import av
import numpy as np
import pytest
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from avagent.core.bus import Bus
from avagent.core.clock import MediaClock
from avagent.core.events import Event
from avagent.core.messages import AudioFrame, to_float32, to_int16
from avagent.io.playback import Playback, Utterance
from avagent.io.webrtc.audio_in import CallAudioSource, to_audio_frame
from avagent.io.webrtc.audio_out import SETTLE_BLOCKS, AgentVoiceTrack
from avagent.sim.calls import SpokenAudioTrack


class FrozenAfter(MediaStreamTrack):
    """A real track that delivers ``frames`` frames of ``inner`` and then nothing more, ever."""

    kind = "audio"

    def __init__(self, inner: MediaStreamTrack, frames: int) -> None:
        super().__init__()
        self._inner = inner
        self._left = frames

    async def recv(self) -> av.AudioFrame:
        if self._left == 0:
            await asyncio.Event().wait()
        self._left -= 1
        frame = await self._inner.recv()
        assert isinstance(frame, av.AudioFrame)
        return frame


def ramp(seconds: float) -> np.ndarray:
    n = round(seconds * 48000)
    return (np.sin(np.arange(n) * 2 * np.pi * 440 / 48000) * 0.5).astype(np.float32)


def test_av_frames_become_audio_frames_of_shape_n_by_channels() -> None:
    stereo = np.arange(1920, dtype=np.int16).reshape(1, -1)
    packed = av.AudioFrame.from_ndarray(stereo, format="s16", layout="stereo")
    packed.sample_rate = 48000
    frame = to_audio_frame(packed, 1.5, 10.0)
    assert frame.samples.shape == (960, 2)
    assert frame.samples[1].tolist() == [2, 3]
    assert (frame.t, frame.t_end, frame.sample_rate) == (1.5, 1.52, 48000)

    planar_data = np.stack([np.zeros(480, np.float32), np.full(480, 0.25, np.float32)])
    planar = av.AudioFrame.from_ndarray(planar_data, format="fltp", layout="stereo")
    planar.sample_rate = 48000
    frame = to_audio_frame(planar, 0.0, 0.0)
    assert frame.samples.shape == (480, 2)
    assert frame.samples.dtype == np.float32
    assert np.all(frame.samples[:, 1] == 0.25)


async def test_the_callers_audio_reaches_the_bus_on_a_continuous_timeline() -> None:
    bus, clock = Bus(), MediaClock()
    frames = bus.subscribe(AudioFrame, name="test.audio", maxsize=1000)
    sent = ramp(0.3)
    track = SpokenAudioTrack(sent)
    source = CallAudioSource(track, bus, clock, stall_timeout_s=0.3)
    runner = asyncio.create_task(source.run())
    await asyncio.sleep(0.4)
    track.stop()
    await runner

    assert source.end_reason == "ended"
    received: list[AudioFrame] = []
    while (frame := frames.get_nowait()) is not None:
        received.append(frame)
    assert len(received) == source.frames >= 15
    assert [f.t for f in received] == pytest.approx([i * 0.02 for i in range(len(received))])
    assert clock.position == pytest.approx(received[-1].t_end)
    heard = np.concatenate([f.samples[:, 0] for f in received])
    assert np.array_equal(heard[: sent.shape[0]], to_int16(sent))


async def test_a_caller_that_stops_sending_ends_the_source_as_stalled() -> None:
    bus, clock = Bus(), MediaClock()
    source = CallAudioSource(FrozenAfter(SpokenAudioTrack(ramp(0.1)), 3), bus, clock, stall_timeout_s=0.2)
    await asyncio.wait_for(source.run(), 5.0)
    assert (source.end_reason, source.frames) == ("stalled", 3)


async def test_a_call_whose_audio_never_starts_ends_as_never_started() -> None:
    source = CallAudioSource(FrozenAfter(SpokenAudioTrack(ramp(0.1)), 0), Bus(), MediaClock())
    source.first_frame_timeout_s = 0.1
    await asyncio.wait_for(source.run(), 5.0)
    assert source.end_reason == "never_started"


def decode_opus(packets: list[av.Packet[Any]]) -> list[np.ndarray]:
    """Each packet decoded to 960 samples of channel 0, float."""
    decoder = av.CodecContext.create("libopus", "r")
    blocks = []
    for packet in packets:
        [frame] = decoder.decode(av.Packet(bytes(packet)))
        assert isinstance(frame, av.AudioFrame)
        channel0 = frame.to_ndarray().reshape(-1, len(frame.layout.channels))[:, 0]
        blocks.append(to_float32(channel0) if frame.format.name.startswith("s16") else channel0)
    return blocks


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


async def test_the_voice_track_sends_the_playback_as_20_ms_opus_and_goes_silent_when_cut() -> None:
    events: list[Event] = []
    playback = Playback(48000, events.append)
    track = AgentVoiceTrack(playback, MediaClock(), silence_interval_s=0.1)
    speech = ramp(0.2)
    start = time.monotonic()

    quiet = [await track.recv() for _ in range(2)]
    playback.enqueue(Utterance(speech, "hello"))
    spoken = [await track.recv() for _ in range(6)]
    playback.interrupt(0.1)
    after_cut = [await track.recv() for _ in range(SETTLE_BLOCKS + 2)]
    elapsed = time.monotonic() - start

    # While quiet, one silent packet every 100 ms (5 ticks); the timestamps jump over the rest.
    ticks = [p.pts // 960 for p in [*quiet, *spoken, *after_cut] if p.pts is not None]
    assert ticks == [0, 5, *range(6, 12), *range(12, 12 + SETTLE_BLOCKS), 21, 26]
    assert all(p.time_base == fractions.Fraction(1, 48000) for p in [*quiet, *spoken, *after_cut])
    decoded = decode_opus([*quiet, *spoken, *after_cut])
    assert [rms(b) for b in decoded[:2]] == [0.0, 0.0]
    # Opus is lossy and delays by a few ms: the tone comes back at about its level.
    assert rms(np.concatenate(decoded[3:8])) == pytest.approx(rms(speech), rel=0.15)
    assert max(rms(b) for b in decoded[9:]) < 0.05 * rms(speech)
    assert [e.type for e in events] == ["speaking_started", "speaking_ended"]
    # The quiet agent costs no encoding: the stock silent packet goes out again.
    assert bytes(quiet[0]) == bytes(quiet[1]) == bytes(after_cut[-1])
    assert track.encoded == 6 + SETTLE_BLOCKS
    # Paced like a sound card: 27 ticks are never sent faster than 26 x 20 ms.
    assert elapsed >= 26 * 0.02 - 1e-3

    track.stop()
    with pytest.raises(MediaStreamError):
        await track.recv()
