"""The agent's voice as the call's outgoing audio track, encoded to Opus here.

aiortc's sender asks the track for the next packet as soon as it has sent the last, so ``recv``
sets the pace: one 20 ms tick per 20 ms of wall clock. At each tick the agent's ``Playback`` is
looked at; while it has speech, a 20 ms block is pulled and sent, so a barge-in that clears the
playback is heard as silence from the next packet on.

A quiet agent (most of the time) costs next to nothing: the track sends one stock silent packet,
encoded once, every ``silence_interval_s`` (400 ms, as Opus DTX does), and the RTP timestamps
jump over the ticks in between; the far end's jitter buffer plays silence through them. Handing
aiortc raw frames instead would cost, per call and per 20 ms, an encoding on a worker thread, an
audio-level computation in pure Python on the event loop (about 150 us) and a packet through
SRTP and the socket: together the largest cost of an idle call (measured in bench/calls.py).
"""

from __future__ import annotations

import asyncio
import fractions
import time
from typing import Any

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from avagent.core.clock import MediaClock
from avagent.core.messages import to_int16
from avagent.io.playback import Playback

OPUS_RATE = 48000
PTIME_S = 0.02
"""One Opus packet."""
BLOCK = round(OPUS_RATE * PTIME_S)
SETTLE_BLOCKS = 5
"""Silent blocks still run through the encoder after speech, so its state ends in silence (the
state the repeated silent packet leaves the far end's decoder in)."""


def opus_encoder(bitrate: int) -> av.AudioCodecContext:
    """A stereo 48 kHz Opus encoder for speech, taking 20 ms int16 frames."""
    codec = av.CodecContext.create("libopus", "w")
    assert isinstance(codec, av.AudioCodecContext)
    codec.sample_rate = OPUS_RATE
    codec.format = "s16"
    codec.layout = "stereo"
    codec.bit_rate = bitrate
    codec.time_base = fractions.Fraction(1, OPUS_RATE)
    codec.options = {"application": "voip"}
    return codec


class AgentVoiceTrack(MediaStreamTrack):
    """An outgoing Opus track that plays the agent's ``Playback`` (48 kHz) in real time."""

    kind = "audio"

    def __init__(
        self,
        playback: Playback,
        clock: MediaClock,
        *,
        max_late_s: float = 0.2,
        bitrate: int = 64000,
        silence_interval_s: float = 0.4,
    ) -> None:
        super().__init__()
        if playback.sample_rate != OPUS_RATE:
            raise ValueError(f"a call's voice is made at {OPUS_RATE} Hz, not {playback.sample_rate}")
        self._playback = playback
        self._clock = clock
        self._time_base = fractions.Fraction(1, OPUS_RATE)
        self.max_late_s = max_late_s
        self._encoder = opus_encoder(bitrate)
        self._silent_packet = self._silence_payload(bitrate)
        self._zeros = np.zeros(BLOCK, dtype=np.int16)
        self._settle = 0
        self._silence_every = max(1, round(silence_interval_s / PTIME_S))
        self._last_sent = -self._silence_every
        self._start: float | None = None
        self._blocks = 0
        self.encoded = 0
        """Blocks that went through the encoder (the rest were the stock silent packet)."""
        self.resyncs = 0
        """Times the sender fell more than ``max_late_s`` behind and skipped ahead."""

    @staticmethod
    def _silence_payload(bitrate: int) -> bytes:
        encoder = opus_encoder(bitrate)
        payloads: list[bytes] = []
        # The first packets carry the encoder's start-up; take one from when it has settled.
        for i in range(SETTLE_BLOCKS):
            payloads += _encode(encoder, np.zeros(BLOCK, dtype=np.int16), i * BLOCK)
        return payloads[-1]

    async def recv(self) -> av.Packet[Any]:
        while True:
            if self.readyState != "live":
                raise MediaStreamError
            await self._pace()
            tick = self._blocks
            self._blocks += 1
            payload = self._payload_at(tick)
            if payload is not None:
                break
        self._last_sent = tick
        packet = av.Packet(payload)
        packet.pts = tick * BLOCK
        packet.time_base = self._time_base
        return packet

    def _payload_at(self, tick: int) -> bytes | None:
        """What to send at ``tick``: speech, the encoder settling, a silent packet, or nothing."""
        if self._playback.speaking:
            block = to_int16(self._playback.pull(BLOCK, self._clock.now()))
            self._settle = SETTLE_BLOCKS
        elif self._settle > 0:
            block = self._zeros
            self._settle -= 1
        elif tick - self._last_sent >= self._silence_every:
            return self._silent_packet
        else:
            return None
        payloads = _encode(self._encoder, block, self.encoded * BLOCK)
        self.encoded += 1
        return payloads[0] if payloads else self._silent_packet

    async def _pace(self) -> None:
        now = time.monotonic()
        if self._start is None:
            self._start = now
            return
        due = self._start + self._blocks * PTIME_S
        if due > now:
            await asyncio.sleep(due - now)
        elif now - due > self.max_late_s:
            # The loop was held up: carry on from now rather than send a burst the far end
            # would only drop from its jitter buffer.
            self._start = now - self._blocks * PTIME_S
            self.resyncs += 1


def _encode(encoder: av.AudioCodecContext, mono: np.ndarray, pts: int) -> list[bytes]:
    """One 20 ms block of int16 mono, as Opus payloads (the voice on both channels)."""
    frame = av.AudioFrame.from_ndarray(np.repeat(mono, 2).reshape(1, -1), format="s16", layout="stereo")
    frame.sample_rate = OPUS_RATE
    frame.pts = pts
    frame.time_base = encoder.time_base
    return [bytes(p) for p in encoder.encode(frame)]
