"""The sound log: what the agent heard lately, for a model and for its own report.

It keeps the last few seconds of sound (16 kHz, for a model to listen to), each recent user
turn's utterance (as the listener cut it), the level of every block for the last minute, the
speech segments, and where voices came from and who spoke. From those it can tell, afterwards,
which loud sounds were not speech: a block well above the background and outside every speech
segment.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from dataclasses import dataclass

import numpy as np
import soxr

from avagent.core.bus import Bus
from avagent.core.events import (
    ActiveSpeaker,
    Event,
    SoundDirection,
    SpeechEnded,
    SpeechStarted,
    TurnEnded,
)
from avagent.core.media import EncodedAudio
from avagent.core.messages import SAMPLE_RATE, AudioFrame
from avagent.perception.avllm.encoding import encode_wav
from avagent.perception.listening import POSTROLL_S

SPEECH_MARGIN_S = 0.3
"""Sound this close to a speech segment belongs to the speech (breath, the VAD's padding)."""
MAX_LEVELS = 4096
"""Block levels remembered (over two minutes of 32 ms blocks)."""


@dataclass(frozen=True, slots=True)
class SoundSettings:
    """What the sound log keeps (``avllm.sounds`` in the config)."""

    recent_s: float = 8.0
    """Seconds of the latest sound kept for a model to listen to (``listen``)."""
    history_s: float = 60.0
    """How far back sounds, voices and their directions are remembered."""
    loud_db: float = 15.0
    """A sound this many decibels above the background, outside speech, is reported."""
    turns_kept: int = 4
    """Utterances kept for a model (the turn being answered is the newest)."""


@dataclass(frozen=True, slots=True)
class LoudSound:
    """A sound that was not speech: from ``start`` to ``end``, ``above_db`` over the background."""

    start: float
    end: float
    above_db: float


@dataclass(frozen=True, slots=True)
class Hearing:
    """What the log reports at one moment."""

    background_db: float | None
    """The level of the quietest tenth of the last minute, in dBFS (None: nothing heard yet)."""
    level_db: float | None
    """The level of the last second."""
    speech: tuple[tuple[float, float], ...]
    directions: tuple[SoundDirection, ...]
    speakers: tuple[ActiveSpeaker, ...]
    loud: tuple[LoudSound, ...]
    speaking_now: bool


class SoundLog:
    """Keeps recent sound, utterances, levels and voices; a stage that only listens."""

    name = "sound_log"
    consumes = (AudioFrame, SpeechStarted, SpeechEnded, TurnEnded, SoundDirection, ActiveSpeaker)
    produces: tuple[type, ...] = ()

    def __init__(self, bus: Bus, settings: SoundSettings | None = None) -> None:
        self.settings = s = settings or SoundSettings()
        self._audio = bus.subscribe(AudioFrame, name="sound_log.audio", maxsize=64)
        self._events = bus.subscribe(
            SpeechStarted,
            SpeechEnded,
            TurnEnded,
            SoundDirection,
            ActiveSpeaker,
            name="sound_log.events",
            maxsize=64,
        )
        self._ring = np.zeros(max(1, int(s.recent_s * SAMPLE_RATE)), dtype=np.float32)
        self._written = 0
        self._ring_end = 0.0
        """Media time just after the newest sample in the ring."""
        self._resampler: soxr.ResampleStream | None = None
        self._rate = 0
        self._levels: deque[tuple[float, float, float]] = deque(maxlen=MAX_LEVELS)
        self._speech: deque[tuple[float, float]] = deque(maxlen=64)
        self._speech_open: float | None = None
        self._turns: dict[int, EncodedAudio] = {}
        self._turn_arrived = asyncio.Event()
        self._directions: deque[SoundDirection] = deque(maxlen=32)
        self._speakers: deque[ActiveSpeaker] = deque(maxlen=32)

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(self._read_audio())
            group.create_task(self._read_events())

    async def _read_audio(self) -> None:
        async for frame in self._audio:
            self.hear(frame)

    async def _read_events(self) -> None:
        async for event in self._events:
            self.observe(event)

    def hear(self, frame: AudioFrame) -> None:
        mono = frame.mono()
        if mono.shape[0] == 0:
            return
        rms = float(np.sqrt(np.mean(np.square(mono, dtype=np.float64))))
        self._levels.append((frame.t, frame.t_end, 20.0 * math.log10(rms + 1e-9)))
        if frame.sample_rate != SAMPLE_RATE:
            if self._resampler is None or self._rate != frame.sample_rate:
                self._rate = frame.sample_rate
                self._resampler = soxr.ResampleStream(frame.sample_rate, SAMPLE_RATE, 1, dtype="float32")
            mono = self._resampler.resample_chunk(np.ascontiguousarray(mono))
        self._append(np.asarray(mono, dtype=np.float32))
        self._ring_end = frame.t_end

    def _append(self, samples: np.ndarray) -> None:
        size = self._ring.shape[0]
        n = samples.shape[0]
        if n >= size:
            self._ring[:] = samples[-size:]
        else:
            at = self._written % size
            first = min(n, size - at)
            self._ring[at : at + first] = samples[:first]
            self._ring[: n - first] = samples[first:]
        self._written += n

    def observe(self, event: Event) -> None:
        if isinstance(event, SpeechStarted):
            self._speech_open = event.t
        elif isinstance(event, SpeechEnded):
            self._speech_open = None
            self._speech.append((event.start, event.end))
        elif isinstance(event, TurnEnded):
            # The listener cut the turn with a little lead-in and tail: the clip is that long.
            clip_end = min(event.end + POSTROLL_S, event.t)
            clip_start = clip_end - event.audio.shape[0] / event.sample_rate
            self._turns[event.turn] = encode_wav(event.audio, event.sample_rate, clip_start)
            for old in sorted(self._turns)[: -self.settings.turns_kept]:
                del self._turns[old]
            self._turn_arrived.set()
        elif isinstance(event, SoundDirection) and event.final:
            self._directions.append(event)
        elif isinstance(event, ActiveSpeaker) and event.final:
            self._speakers.append(event)

    async def utterance(self, turn: int | None, timeout_s: float = 1.0) -> EncodedAudio | None:
        """The audio of user turn ``turn`` as the listener cut it (with its lead-in and tail);
        waits (at most ``timeout_s``) for it to be logged, as the recogniser may have been quicker
        than this stage."""
        if turn is None:
            return None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while turn not in self._turns:
            left = deadline - loop.time()
            if left <= 0 or (self._turns and max(self._turns) > turn):
                return None
            self._turn_arrived.clear()
            try:
                async with asyncio.timeout(left):
                    await self._turn_arrived.wait()
            except TimeoutError:
                return None
        return self._turns[turn]

    def recent(self, seconds: float) -> EncodedAudio | None:
        """The last ``seconds`` of sound (at most ``recent_s``), or None before any."""
        size = self._ring.shape[0]
        n = min(self._written, size, int(seconds * SAMPLE_RATE))
        if n <= 0:
            return None
        at = self._written % size
        clip = (
            np.concatenate([self._ring[at:], self._ring[:at]])[-n:]
            if self._written >= size
            else (self._ring[self._written - n : self._written])
        )
        return encode_wav(clip, SAMPLE_RATE, self._ring_end - n / SAMPLE_RATE)

    def hearing(self, now: float) -> Hearing:
        """What was heard in the last ``history_s`` seconds, as of media time ``now``."""
        since = now - self.settings.history_s
        levels = [(t0, t1, db) for t0, t1, db in self._levels if t1 >= since]
        background = float(np.percentile([db for *_, db in levels], 10)) if levels else None
        last_second = [db for t0, _t1, db in levels if t0 >= now - 1.0]
        level = float(np.mean(last_second)) if last_second else None
        speech = [(a, b) for a, b in self._speech if b >= since]
        if self._speech_open is not None:
            speech.append((self._speech_open, now))
        loud: list[LoudSound] = []
        if background is not None:
            for t0, t1, db in levels:
                if db - background < self.settings.loud_db or _in_speech(t0, t1, speech):
                    continue
                above = db - background
                if loud and t0 - loud[-1].end <= 0.1:
                    last = loud.pop()
                    loud.append(LoudSound(last.start, t1, max(last.above_db, above)))
                else:
                    loud.append(LoudSound(t0, t1, above))
        return Hearing(
            background_db=background,
            level_db=level,
            speech=tuple(speech),
            directions=tuple(d for d in self._directions if d.t >= since),
            speakers=tuple(s for s in self._speakers if s.t >= since),
            loud=tuple(loud),
            speaking_now=self._speech_open is not None,
        )


def _in_speech(t0: float, t1: float, speech: list[tuple[float, float]]) -> bool:
    return any(t1 >= a - SPEECH_MARGIN_S and t0 <= b + SPEECH_MARGIN_S for a, b in speech)
