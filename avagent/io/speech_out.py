"""The speech-out stage: ``say`` events in, the agent's voice queued for the speaker.

Text is cut into sentences and each is synthesised and queued as soon as it is ready, so the
first sentence plays while the next is being made. Control events act at once, whatever the
synthesiser is doing: ``barge_in`` and ``stop`` cancel the synthesis job and clear the speaker,
``pause_speaking`` / ``resume_speaking`` hold and release it (and no new sentence is synthesised
while it is held).

However much text arrives, the audio waiting for the speaker stays bounded: no sentence is
synthesised while the playback holds more than ``max_queued_s`` seconds not yet played; the texts
behind it wait as text. Such a wait (like the one while the user may be cutting in) is a wait for
media time, which only later input brings: it does not count as work in flight
(``core/activity.py``), or a file fed in lockstep would never advance and the speaker would never
drain. The stage therefore counts its own work: its worker's queue is private, and the stage holds
one count of the bus's activity while it has a text to speak and is not waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading

import numpy as np
import soxr

from avagent.core.activity import Activity
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

MAX_TEXTS = 4096
"""Texts that may wait to be spoken; beyond, a text is dropped and reported (a policy bounds its
answers far below this)."""


class _Count:
    """One count of an ``Activity``, held or not."""

    def __init__(self, activity: Activity) -> None:
        self._activity = activity
        self._held = False

    def hold(self, held: bool) -> None:
        if held and not self._held:
            self._activity.begin()
        elif self._held and not held:
            self._activity.end()
        self._held = held


class SpeechOut:
    """Speaks ``Say`` events through a synthesiser into a ``Playback``."""

    name = "speech_out"
    consumes = (Say, BargeIn, Stop, PauseSpeaking, ResumeSpeaking)
    produces = (SpeakingStarted, SpeakingEnded, Error)

    def __init__(
        self, bus: Bus, synthesizer: Synthesizer, playback: Playback, *, max_queued_s: float = 60.0
    ) -> None:
        """``max_queued_s``: speech that may wait for the speaker before synthesis waits."""
        self._bus = bus
        self._synth = synthesizer
        self.playback = playback
        self.max_queued_s = max_queued_s
        self._inbox = bus.subscribe(Say, BargeIn, Stop, PauseSpeaking, ResumeSpeaking, name="speech_out.in")
        # The worker's queue counts in an activity of its own: the stage counts for it (see above).
        self._worker: Worker[Say] = Worker("speech_out.texts", self._speak, Activity(), maxsize=MAX_TEXTS)
        self._count = _Count(bus.activity)
        self._texts = 0
        """Texts in the worker's queue."""
        self._speaking = False
        """The worker has a text in hand."""
        self._waiting = False
        """The worker waits for the user (paused) or for the speaker (too much queued)."""
        self._changed = asyncio.Event()
        self._clear = asyncio.Event()
        self._clear.set()
        """Cleared while the user may be cutting in: nothing new is synthesised until it is known."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        playback.on_played(self._played)
        bus.activity.hold_while(lambda: self.busy)

    @property
    def busy(self) -> bool:
        """Speech is being made or played."""
        return self._worker.busy or self.playback.speaking

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._worker.start()
        try:
            async for item in self._inbox:
                if isinstance(item, Say):
                    await self._queue(item)
                elif isinstance(item, PauseSpeaking):
                    self._clear.clear()
                    self.playback.pause()
                elif isinstance(item, ResumeSpeaking):
                    self._clear.set()
                    self.playback.resume()
                    self._wake()
                else:
                    # Barge-in or stop: drop what is not yet said, then silence the speaker.
                    self._texts = 0
                    await self._worker.cancel()
                    self.playback.interrupt(item.t)
                    self._clear.set()
                    self._recount()
        finally:
            self._texts = 0
            await self._worker.stop()
            self._count.hold(False)

    async def _queue(self, say: Say) -> None:
        if self._texts >= MAX_TEXTS:
            dropped = "too much to say: a text was dropped"
            await self._bus.publish(Error(t=self._bus.media_time(), stage=self.name, message=dropped))
            return
        self._texts += 1
        # Counted before the inbox lets go of the item, so that the work is never out of sight.
        self._recount()
        await self._worker.put(say)

    def _recount(self) -> None:
        blocked = self._waiting and not self._may_go_on()
        self._count.hold((self._texts > 0 or self._speaking) and not blocked)

    def _may_go_on(self) -> bool:
        return self._clear.is_set() and self.playback.queued_s <= self.max_queued_s

    def _wake(self) -> None:
        """Something the worker may wait for changed: count its work again at once if it may go
        on (before a file's next block is fed), and wake it."""
        if self._waiting:
            self._recount()
            self._changed.set()

    def _played(self) -> None:
        """The speaker played (or lost) some speech; called on whatever thread pulls it."""
        loop = self._loop
        if not self._waiting or loop is None:
            return
        if threading.get_ident() == self._loop_thread:
            self._wake()
        else:
            with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits any more
                loop.call_soon_threadsafe(self._wake)

    async def _until_may_go_on(self) -> None:
        """Wait while the user may be cutting in or the speaker has enough queued; meanwhile the
        stage's work does not count as in flight."""
        if self._may_go_on():
            return
        self._waiting = True
        try:
            while not self._may_go_on():
                self._recount()
                self._changed.clear()
                await self._changed.wait()
        finally:
            self._waiting = False
            self._recount()

    async def _speak(self, say: Say) -> None:
        self._texts = max(0, self._texts - 1)
        self._speaking = True
        try:
            if say.audio is not None:
                # The model's own voice: one utterance, played like synthesised speech (paused,
                # resumed and cut the same way), with the whole text as what it says.
                await self._until_may_go_on()
                audio = np.asarray(say.audio, dtype=np.float32).reshape(-1)
                # Seconds of audio take milliseconds to resample: not on the loop.
                audio = await asyncio.to_thread(self._resampled, audio, say.audio_rate)
                self.playback.enqueue(Utterance(audio, say.text, say.turn))
                return
            for sentence in split_sentences(say.text):
                await self._until_may_go_on()
                try:
                    audio = await self._synth.synthesize(sentence)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    await self._bus.publish(
                        Error(t=self._bus.media_time(), stage=self.name, message=f"cannot speak: {exc}")
                    )
                    continue
                self.playback.enqueue(
                    Utterance(self._to_playback_rate(_trim_lead(audio)), sentence, say.turn)
                )
        finally:
            self._speaking = False
            self._recount()

    def _to_playback_rate(self, audio: np.ndarray) -> np.ndarray:
        return self._resampled(audio, self._synth.sample_rate)

    def _resampled(self, audio: np.ndarray, from_rate: int) -> np.ndarray:
        rate = self.playback.sample_rate
        if from_rate == rate or audio.shape[0] == 0:
            return audio.astype(np.float32, copy=False)
        return np.asarray(soxr.resample(audio, from_rate, rate), dtype=np.float32)


def _trim_lead(audio: np.ndarray, threshold: float = 1e-3, keep: int = 64) -> np.ndarray:
    """Drop the silence a synthesiser puts before the first sound (up to tens of milliseconds):
    the answer is heard that much sooner."""
    loud = np.flatnonzero(np.abs(audio) > threshold)
    if loud.size == 0:
        return audio
    return audio[max(0, int(loud[0]) - keep) :]
