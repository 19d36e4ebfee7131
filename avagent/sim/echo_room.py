"""A microphone that hears the agent's own speaker in a room: the echo, closed around the agent.

The agent's voice goes nowhere in a file run unless something plays it back into the microphone.
``EchoRoomSource`` is the agent's microphone: the user's lines (a scene) plus what the agent's
speaker plays, through a simulated room's impulse response from the loudspeaker to the
microphone, block by block as the agent speaks, so a barge-in that cuts the voice also cuts its
echo. It is fed in the same lockstep as a WAV file (``core/activity.py``): the results are the
same on any machine.

A line of the user's may be set relative to the echo (``level_db`` below the echo the microphone
hears from the agent at that moment, measured over the agent's last seconds of speech): the
double-talk cases of bench/hearing_echo.py and tests/test_echo_bargein.py.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from avagent.core.bus import Bus
from avagent.core.clock import MediaClock
from avagent.core.messages import SAMPLE_RATE, AudioFrame


def speaker_echo_path(
    *, rt60_s: float = 0.3, distance_m: float = 0.3, gain: float = 0.5, delay_ms: float = 0.0
) -> np.ndarray:
    """Impulse response (16 kHz) from a loudspeaker ``distance_m`` from the microphone in a
    5 x 4 x 2.8 m room, scaled so the direct sound has ``gain``; ``delay_ms`` adds the latency of
    the devices in front of it."""
    import pyroomacoustics as pra

    size = [5.0, 4.0, 2.8]
    absorption, max_order = pra.inverse_sabine(rt60_s, size)
    room = pra.ShoeBox(size, fs=SAMPLE_RATE, materials=pra.Material(absorption), max_order=min(max_order, 30))
    room.add_microphone([2.0, 2.0, 1.0])
    room.add_source([2.0 + distance_m, 2.1, 1.0])
    room.compute_rir()
    response = np.asarray(room.rir[0][0], dtype=np.float64)
    response *= gain / float(np.max(np.abs(response)))
    lead = np.zeros(round(delay_ms * SAMPLE_RATE / 1000))
    return np.concatenate((lead, response))


@dataclass(frozen=True, slots=True)
class UserLine:
    """Something the user says at media time ``at``: ``audio`` (16 kHz mono) as it is, or, with
    ``level_db``, scaled to that many dB relative to the echo of the agent heard just before."""

    at: float
    audio: np.ndarray
    level_db: float | None = None


class EchoRoomSource:
    """The microphone of a simulated room with the agent's loudspeaker in it; pass ``played`` to
    the speaker as a sink."""

    name = "echo_room"
    consumes: tuple[type, ...] = ()
    produces = (AudioFrame,)

    def __init__(
        self,
        lines: list[UserLine],
        duration_s: float,
        bus: Bus,
        clock: MediaClock,
        echo_path: np.ndarray,
        *,
        playback_rate: int,
        block_ms: float = 32.0,
        noise_rms: float = 3e-4,
        max_tail_s: float = 10.0,
        seed: int = 0,
    ) -> None:
        self._lines = sorted(lines, key=lambda line: line.at)
        self._duration = duration_s
        self._bus = bus
        self._clock = clock
        self._path = echo_path
        self._block = round(SAMPLE_RATE * block_ms / 1000)
        self._noise_rms = noise_rms
        self._max_tail_s = max_tail_s
        self._rng = np.random.default_rng(seed)
        self._playback_rate = playback_rate
        self._raw = np.zeros(0)
        """The voice at the playback rate, from the first sample not yet turned into 16 kHz on."""
        self._raw_start = 0
        """Index (at the playback rate) of the first sample of ``_raw``."""
        self._echo = np.zeros(0)
        """The echo of what was played so far, from the next microphone sample on."""
        self._played = 0
        """Samples of the voice received (16 kHz), from media time 0."""
        self._heard = 0
        """Microphone samples sent."""
        self._recent_echo: list[np.ndarray] = []
        self.user = np.zeros(0)
        """What the user said, as the microphone heard it (without echo and noise), for checking."""
        self.echo = np.zeros(0)
        """The echo the microphone heard, for checking."""
        self.levels: list[float] = []
        """The scale given to each line set relative to the echo (for checking)."""

    def played(self, block: np.ndarray) -> None:
        """A block of what the agent's speaker played (a ``VirtualSpeaker`` sink)."""
        voice = self._to_16k(np.asarray(block, dtype=np.float64))
        if voice.shape[0] == 0:
            return
        echo = np.convolve(np.clip(voice, -1.0, 1.0), self._path)
        at = self._played - self._heard
        self._played += voice.shape[0]
        if at < 0:  # the speaker is behind the microphone: that part of the echo is lost
            echo, at = echo[-at:], 0
        need = at + echo.shape[0]
        if self._echo.shape[0] < need:
            self._echo = np.concatenate((self._echo, np.zeros(need - self._echo.shape[0])))
        self._echo[at:need] += echo

    def _to_16k(self, block: np.ndarray) -> np.ndarray:
        """The voice at 16 kHz, as far as ``block`` reaches, placed sample-exactly in time (a
        resampling stream would hold samples back, and the echo would come late)."""
        if self._playback_rate == SAMPLE_RATE:
            return block
        self._raw = np.concatenate((self._raw, block))
        end = self._raw_start + self._raw.shape[0] - 1
        first = self._played
        last = int(end * SAMPLE_RATE // self._playback_rate)
        if last < first:
            return np.zeros(0)
        at = np.arange(first, last + 1) * (self._playback_rate / SAMPLE_RATE) - self._raw_start
        voice = np.asarray(np.interp(at, np.arange(self._raw.shape[0]), self._raw), dtype=np.float64)
        keep = max(0, int(at[-1]) - 1)
        self._raw, self._raw_start = self._raw[keep:], self._raw_start + keep
        return voice

    async def run(self) -> None:
        n = round(self._duration * SAMPLE_RATE)
        user = np.zeros(n)
        pending = list(self._lines)
        t = 0.0
        tail_end = n + round(self._max_tail_s * SAMPLE_RATE)
        while self._heard < tail_end:
            start = self._heard
            if start >= n and self._bus.activity.idle():
                break
            for line in [line for line in pending if round(line.at * SAMPLE_RATE) <= start + self._block]:
                pending.remove(line)
                self._place(user, line)
            block_user = user[start : start + self._block]
            if block_user.shape[0] < self._block:
                block_user = np.concatenate((block_user, np.zeros(self._block - block_user.shape[0])))
            echo = self._take_echo(self._block)
            mic = block_user + echo + self._rng.standard_normal(self._block) * self._noise_rms
            self.user = np.concatenate((self.user, block_user))
            self.echo = np.concatenate((self.echo, echo))
            t_end = (start + self._block) / SAMPLE_RATE
            self._clock.advance(t_end)
            frame = np.clip(mic, -1.0, 1.0).astype(np.float32)[:, None]
            await self._bus.publish(AudioFrame(frame, SAMPLE_RATE, t, time.monotonic()))
            await self._bus.activity.settled()
            self._clock.render()
            t = t_end

    def _take_echo(self, count: int) -> np.ndarray:
        echo = np.zeros(count)
        have = min(count, self._echo.shape[0])
        echo[:have] = self._echo[:have]
        self._echo = self._echo[have:]
        self._heard += count
        self._recent_echo = [*self._recent_echo, echo][-round(3.0 * SAMPLE_RATE / count) :]
        return echo

    def _place(self, user: np.ndarray, line: UserLine) -> None:
        audio = np.asarray(line.audio, dtype=np.float64)
        if line.level_db is not None:
            audio = audio * self._scale_to_echo(audio, line.level_db)
        first = round(line.at * SAMPLE_RATE)
        last = min(user.shape[0], first + audio.shape[0])
        if last > first:
            user[first:last] += audio[: last - first]

    def _scale_to_echo(self, audio: np.ndarray, level_db: float) -> float:
        recent = np.concatenate(self._recent_echo) if self._recent_echo else np.zeros(1)
        echo_rms = _active_rms(recent)
        scale = echo_rms / (_active_rms(audio) or 1.0) * 10 ** (level_db / 20)
        self.levels.append(scale)
        return scale


def _active_rms(signal: np.ndarray) -> float:
    """RMS over the 32 ms windows where the signal is within 30 dB of its loudest window: the
    level of speech, not of its pauses."""
    size = 512
    count = signal.shape[0] // size
    if count == 0:
        return 0.0
    windows = np.mean(signal[: count * size].reshape(count, size) ** 2, axis=1)
    loud = windows[windows >= windows.max() * 1e-3]
    return float(np.sqrt(np.mean(loud))) if loud.size else 0.0
