"""The speech-out stage: ``say`` events in, the agent's voice queued for the speaker.

Text is cut into sentences and each is synthesised and queued as soon as it is ready, so the
first sentence plays while the next is being made. Control events act at once, whatever the
synthesiser is doing: ``barge_in`` and ``stop`` cancel the synthesis job and clear the speaker,
``pause_speaking`` / ``resume_speaking`` hold and release it (and no new sentence is synthesised
while it is held).
"""

from __future__ import annotations

import asyncio

import numpy as np
import soxr

from avagent.core.bus import Bus
from avagent.core.events import (
    BargeIn,
    Error,
    PauseSpeaking,
    ResumeSpeaking,
    Say,
    SpeakingEnded,
    SpeakingStarted,
    Stop,
)
from avagent.core.text import split_sentences
from avagent.core.worker import Worker
from avagent.io.playback import Playback, Utterance
from avagent.io.tts.base import Synthesizer


class SpeechOut:
    """Speaks ``Say`` events through a synthesiser into a ``Playback``."""

    name = "speech_out"
    consumes = (Say, BargeIn, Stop, PauseSpeaking, ResumeSpeaking)
    produces = (SpeakingStarted, SpeakingEnded, Error)

    def __init__(self, bus: Bus, synthesizer: Synthesizer, playback: Playback) -> None:
        self._bus = bus
        self._synth = synthesizer
        self.playback = playback
        self._inbox = bus.subscribe(Say, BargeIn, Stop, PauseSpeaking, ResumeSpeaking, name="speech_out.in")
        self._worker: Worker[Say] = Worker("speech_out.texts", self._speak, bus.activity)
        self._clear = asyncio.Event()
        self._clear.set()
        """Cleared while the user may be cutting in: nothing new is synthesised until it is known."""
        bus.activity.hold_while(lambda: self.busy)

    @property
    def busy(self) -> bool:
        """Speech is being made or played."""
        return self._worker.busy or self.playback.speaking

    async def run(self) -> None:
        self._worker.start()
        try:
            async for item in self._inbox:
                if isinstance(item, Say):
                    await self._worker.put(item)
                elif isinstance(item, PauseSpeaking):
                    self._clear.clear()
                    self.playback.pause()
                elif isinstance(item, ResumeSpeaking):
                    self._clear.set()
                    self.playback.resume()
                else:
                    # Barge-in or stop: drop what is not yet said, then silence the speaker.
                    await self._worker.cancel()
                    self.playback.interrupt(item.t)
                    self._clear.set()
        finally:
            await self._worker.stop()

    async def _speak(self, say: Say) -> None:
        for sentence in split_sentences(say.text):
            if not self._clear.is_set():
                with self._bus.activity.waiting_for_input():
                    await self._clear.wait()
            try:
                audio = await self._synth.synthesize(sentence)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                await self._bus.publish(
                    Error(t=self._bus.media_time(), stage=self.name, message=f"cannot speak: {exc}")
                )
                continue
            self.playback.enqueue(Utterance(self._to_playback_rate(_trim_lead(audio)), sentence, say.turn))

    def _to_playback_rate(self, audio: np.ndarray) -> np.ndarray:
        rate = self.playback.sample_rate
        if self._synth.sample_rate == rate or audio.shape[0] == 0:
            return audio.astype(np.float32, copy=False)
        return np.asarray(soxr.resample(audio, self._synth.sample_rate, rate), dtype=np.float32)


def _trim_lead(audio: np.ndarray, threshold: float = 1e-3, keep: int = 64) -> np.ndarray:
    """Drop the silence a synthesiser puts before the first sound (up to tens of milliseconds):
    the answer is heard that much sooner."""
    loud = np.flatnonzero(np.abs(audio) > threshold)
    if loud.size == 0:
        return audio
    return audio[max(0, int(loud[0]) - keep) :]
