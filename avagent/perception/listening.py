"""The listening stage: audio frames in; speech segments, turns and barge-ins out.

It composes the Silero model, the speech segmenter and the turn detector, and keeps the recent
16 kHz audio so that a finished turn can be handed to speech recognition with a little context
either side. Inference (about 0.07 ms per 32 ms chunk) runs inline: a worker thread would cost
more than it saves.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import soxr

from avagent.core.bus import Bus
from avagent.core.events import (
    BargeIn,
    Error,
    Event,
    PauseSpeaking,
    ResumeSpeaking,
    SpeechEnded,
    SpeechStarted,
    TurnEnded,
)
from avagent.core.messages import SAMPLE_RATE, AudioFrame
from avagent.perception.echo import EchoCanceller
from avagent.perception.turns import Interruption, TurnDetector, TurnEnd, TurnSettings
from avagent.perception.vad import CHUNK, SegmentStart, SileroVad, SpeechSegmenter, VadSettings


@dataclass(frozen=True, slots=True)
class SpeechSoFar:
    """The audio of the turn in progress up to a pause in the speech: if the turn ends there, the
    ``TurnEnded`` will have the same ``start``, ``end`` and audio."""

    start: float
    end: float
    t: float
    audio: np.ndarray = field(repr=False)


class AudioHistory:
    """The last ``seconds`` of 16 kHz mono audio, addressable by media time."""

    def __init__(self, seconds: float) -> None:
        self._size = int(seconds * SAMPLE_RATE)
        self._ring = np.zeros(self._size, dtype=np.float32)
        self._written = 0
        self._t0 = 0.0
        """Media time of the sample with index 0."""

    def start_at(self, t: float) -> None:
        self._written = 0
        self._t0 = t

    @property
    def t_end(self) -> float:
        return self._t0 + self._written / SAMPLE_RATE

    def append(self, samples: np.ndarray) -> None:
        n = samples.shape[0]
        if n >= self._size:
            self._ring[:] = samples[-self._size :]
            self._written += n
            return
        at = self._written % self._size
        first = min(n, self._size - at)
        self._ring[at : at + first] = samples[:first]
        if first < n:
            self._ring[: n - first] = samples[first:]
        self._written += n

    def slice(self, start: float, end: float) -> np.ndarray:
        """A copy of the audio in ``[start, end)``, clipped to what is still held."""
        oldest = max(0, self._written - self._size)
        i0 = max(oldest, round((start - self._t0) * SAMPLE_RATE))
        i1 = min(self._written, round((end - self._t0) * SAMPLE_RATE))
        if i1 <= i0:
            return np.zeros(0, dtype=np.float32)
        idx = np.arange(i0, i1) % self._size
        return self._ring[idx]


PREROLL_S = 0.25
"""A turn's audio starts this much before its speech (recognisers want a little lead-in)..."""
POSTROLL_S = 0.2
"""...and ends this much after it."""


class Listener:
    """Voice activity, endpointing and barge-in for one audio input."""

    name = "listener"
    consumes = (AudioFrame,)
    produces = (
        SpeechStarted,
        SpeechEnded,
        SpeechSoFar,
        TurnEnded,
        PauseSpeaking,
        ResumeSpeaking,
        BargeIn,
        Error,
    )

    def __init__(
        self,
        bus: Bus,
        vad: VadSettings | None = None,
        turns: TurnSettings | None = None,
        *,
        agent_speaking: Callable[[], bool] = lambda: False,
        model: Callable[[np.ndarray], float] | None = None,
        on_probability: Callable[[float, float], None] | None = None,
        echo: EchoCanceller | None = None,
    ) -> None:
        """``agent_speaking`` says whether speech that starts now is the user cutting in; ``model``
        gives each 32 ms chunk's speech probability (Silero on onnxruntime by default); ``echo``
        takes what the agent's speaker played out of the microphone first (a device microphone
        hearing the device speaker)."""
        self._bus = bus
        self._agent_speaking = agent_speaking
        self.echo = echo
        self._model = model if model is not None else SileroVad()
        self.on_probability = on_probability
        self.segmenter = SpeechSegmenter(vad)
        self.turns = TurnDetector(turns)
        self._history = AudioHistory(self.turns.settings.max_utterance_s + 3.0)
        self._frames = bus.subscribe(AudioFrame, name="listener.audio", maxsize=256)
        bus.activity.hold_while(lambda: self.busy)
        self._chunk = np.zeros(CHUNK, dtype=np.float32)
        self._fill = 0
        self._t_next: float | None = None
        """Media time of the first sample of the next 16 kHz chunk."""
        self._frame_t_next: float | None = None
        """Media time the next input frame should start at (a jump means a gap in the input)."""
        self._rate: int | None = None
        self._resampler: soxr.ResampleStream | None = None
        self._anchor = (0.0, time.monotonic())
        """(media time, monotonic time) of the last frame: to stamp events with capture times."""
        self.chunks = 0
        self.muted = False
        """While muted the agent hears silence: a turn in progress ends, and nothing new starts."""
        self._offered: tuple[float, float] | None = None
        self._bad_samples_reported = 0.0

    @property
    def busy(self) -> bool:
        """In a turn, or in speech: the user has the floor."""
        return self.turns.in_turn or self.segmenter.in_speech

    def _capture_time(self, t: float) -> float:
        media, mono = self._anchor
        return mono + (t - media)

    async def run(self) -> None:
        async for frame in self._frames:
            await self.handle(frame)

    async def handle(self, frame: AudioFrame) -> None:
        samples = frame.mono()
        if self.muted:
            samples = np.zeros_like(samples)
        if not np.isfinite(samples).all():
            samples = np.nan_to_num(samples, nan=0.0, posinf=1.0, neginf=-1.0)
            if frame.t - self._bad_samples_reported >= 1.0 or self._bad_samples_reported == 0.0:
                self._bad_samples_reported = frame.t or 1e-9
                await self._publish(
                    Error(t=frame.t, stage=self.name, message="NaN or infinite samples replaced by silence")
                )
        if self._frame_t_next is None or abs(frame.t - self._frame_t_next) > CHUNK / SAMPLE_RATE:
            self._restart_at(frame)
        self._frame_t_next = frame.t_end
        if frame.sample_rate != SAMPLE_RATE:
            if self._resampler is None or self._rate != frame.sample_rate:
                self._rate = frame.sample_rate
                self._resampler = soxr.ResampleStream(frame.sample_rate, SAMPLE_RATE, 1, dtype="float32")
            samples = self._resampler.resample_chunk(samples)
        if self.echo is not None:
            samples = self.echo.process(samples)
        self._anchor = (frame.t, frame.t_capture)
        self._history.append(samples)
        await self._take(samples)

    def _restart_at(self, frame: AudioFrame) -> None:
        """Start (or restart after a gap in the input) the 16 kHz timeline at ``frame.t``."""
        self._t_next = frame.t
        self._fill = 0
        self._resampler = None
        self._history.start_at(frame.t)

    async def _take(self, samples: np.ndarray) -> None:
        n = samples.shape[0]
        i = 0
        while i < n:
            if self._fill == 0 and n - i >= CHUNK:
                chunk = samples[i : i + CHUNK]
                i += CHUNK
            else:
                take = min(CHUNK - self._fill, n - i)
                self._chunk[self._fill : self._fill + take] = samples[i : i + take]
                self._fill += take
                i += take
                if self._fill < CHUNK:
                    return
                self._fill = 0
                chunk = self._chunk
            await self._step(chunk)

    async def _step(self, chunk: np.ndarray) -> None:
        assert self._t_next is not None
        t0 = self._t_next
        t1 = t0 + CHUNK / SAMPLE_RATE
        self._t_next = t1
        self.chunks += 1
        probability = self._model(chunk)
        if self.on_probability is not None:
            self.on_probability(t0, probability)
        boundary = self.segmenter.push(probability, t0, t1)
        interruption: Interruption | None = None
        if boundary is not None:
            if isinstance(boundary, SegmentStart):
                await self._publish(
                    SpeechStarted(t=boundary.start, t_capture=self._capture_time(boundary.start))
                )
                interruption = self.turns.speech_started(
                    boundary.start, t1, self._agent_speaking(), onset=boundary.onset
                )
            else:
                await self._publish(
                    SpeechEnded(
                        t=t1,
                        t_capture=self._capture_time(boundary.end),
                        start=boundary.start,
                        end=boundary.end,
                    )
                )
                interruption = self.turns.speech_ended(boundary.end, t1)
            if interruption is not None:
                await self._interrupt(interruption)
        turn_end, interruption = self.turns.tick(t1, self.segmenter.speech_end)
        if interruption is not None:
            await self._interrupt(interruption)
        if turn_end is not None:
            await self._end_turn(turn_end)
        else:
            await self._offer_early(t1)

    async def _interrupt(self, interruption: Interruption) -> None:
        t = interruption.t
        capture = self._capture_time(t)
        event: Event
        if interruption.action == "pause":
            event = PauseSpeaking(t=t, t_capture=capture)
        elif interruption.action == "resume":
            event = ResumeSpeaking(t=t, t_capture=capture)
        else:
            event = BargeIn(t=t, t_capture=capture)
        await self._publish(event)

    def _turn_audio(self, start: float, end: float, t: float) -> np.ndarray:
        return self._history.slice(start - PREROLL_S, min(end + POSTROLL_S, t))

    async def _offer_early(self, t: float) -> None:
        """The user has paused long enough for the turn's audio to be complete if it ends here: a
        recogniser can start now and have the words ready when the end-of-turn silence is over."""
        start = self.turns.turn_start
        end = self.turns.last_speech_end
        if start is None or self.segmenter.in_speech or self._offered == (start, end):
            return
        if t >= end + POSTROLL_S:
            self._offered = (start, end)
            await self._bus.publish(
                SpeechSoFar(start=start, end=end, t=t, audio=self._turn_audio(start, end, t))
            )

    async def _end_turn(self, turn: TurnEnd) -> None:
        audio = self._turn_audio(turn.start, turn.end, turn.t)
        await self._publish(
            TurnEnded(
                t=turn.t,
                t_capture=self._capture_time(turn.t),
                turn=turn.turn,
                start=turn.start,
                end=turn.end,
                audio=audio,
                end_capture=self._capture_time(turn.end),
            )
        )

    async def _publish(self, event: Event) -> None:
        await self._bus.publish(event)
