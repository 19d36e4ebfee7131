"""The agent's voice on its way out: utterances queued for the speaker, pulled block by block.

Whatever plays the voice (a sound card callback, a virtual speaker rendering into a WAV file, a
WebRTC track) pulls fixed-size blocks with ``pull``. Cutting the voice (barge-in, stop) clears the
queue at once, so the next block pulled is silence. The playback knows exactly how much of each
utterance was heard, which is what the conversation history must record.

``pull`` may run on a device's audio thread: state is guarded by a lock and events leave through
``emit``, which must be safe to call from any thread. ``queued_s`` says how much speech waits to
be heard, and listeners added with ``on_played`` hear when some was (the speech-out stage waits
on them before it makes more).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from avagent.core.events import Event, SpeakingEnded, SpeakingStarted


@dataclass
class Utterance:
    """One sentence of speech at the playback rate, and the text it says."""

    audio: np.ndarray
    text: str
    turn: int | None = None
    played: int = 0


class Playback:
    """The queue of utterances the speaker plays, with pause, resume and cut."""

    def __init__(self, sample_rate: int, emit: Callable[[Event], None]) -> None:
        self.sample_rate = sample_rate
        self._emit = emit
        self._lock = threading.Lock()
        self._queue: deque[Utterance] = deque()
        self._current: Utterance | None = None
        self._paused = False
        self._unplayed = 0
        """Samples queued and not yet played (the rest of the current utterance included)."""
        self._played_listeners: list[Callable[[], None]] = []
        self._taps: list[Callable[[np.ndarray, float], None]] = []

    @property
    def speaking(self) -> bool:
        """True while there is speech playing, paused, or waiting to play."""
        return self._current is not None or bool(self._queue)

    @property
    def queued_s(self) -> float:
        """Seconds of speech waiting to be heard (the rest of the one playing included)."""
        return self._unplayed / self.sample_rate

    def on_played(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` after each pull that played speech and after each cut, from the
        thread that pulled or cut (it must be quick and safe on any thread)."""
        self._played_listeners.append(listener)

    def add_tap(self, tap: Callable[[np.ndarray, float], None]) -> None:
        """Hand every block pulled to ``tap`` as well, with the media time it is heard at (a
        recording of the voice), from the thread that pulled: it must be quick and thread-safe."""
        self._taps.append(tap)

    def enqueue(self, utterance: Utterance) -> None:
        if utterance.audio.shape[0] == 0:
            return
        with self._lock:
            self._queue.append(utterance)
            self._unplayed += utterance.audio.shape[0] - utterance.played

    def pause(self) -> None:
        with self._lock:
            self._paused = True

    def resume(self) -> None:
        with self._lock:
            self._paused = False

    def interrupt(self, t: float) -> list[Utterance]:
        """Cut the voice now; returns the utterances that were cut (the first may be part-heard)."""
        with self._lock:
            cut = ([self._current] if self._current is not None else []) + list(self._queue)
            self._current = None
            self._queue.clear()
            self._paused = False
            self._unplayed = 0
        for utterance in cut:
            self._emit(
                SpeakingEnded(
                    t=t,
                    text=utterance.text,
                    turn=utterance.turn,
                    interrupted=True,
                    played_s=utterance.played / self.sample_rate,
                    total_s=utterance.audio.shape[0] / self.sample_rate,
                )
            )
        self._tell_played()
        return cut

    def _tell_played(self) -> None:
        for listener in self._played_listeners:
            listener()

    def pull(self, n: int, t: float) -> np.ndarray:
        """The next ``n`` samples to play (silence where there is no speech); ``t`` is the media
        time at which the first of them will be heard."""
        out = np.zeros(n, dtype=np.float32)
        events: list[Event] = []
        with self._lock:
            filled = 0
            while filled < n and not self._paused:
                if self._current is None:
                    if not self._queue:
                        break
                    self._current = self._queue.popleft()
                utterance = self._current
                if utterance.played == 0:
                    events.append(
                        SpeakingStarted(
                            t=t + filled / self.sample_rate, text=utterance.text, turn=utterance.turn
                        )
                    )
                take = min(n - filled, utterance.audio.shape[0] - utterance.played)
                out[filled : filled + take] = utterance.audio[utterance.played : utterance.played + take]
                utterance.played += take
                filled += take
                self._unplayed -= take
                if utterance.played >= utterance.audio.shape[0]:
                    self._current = None
                    total = utterance.audio.shape[0] / self.sample_rate
                    events.append(
                        SpeakingEnded(
                            t=t + filled / self.sample_rate,
                            text=utterance.text,
                            turn=utterance.turn,
                            interrupted=False,
                            played_s=total,
                            total_s=total,
                        )
                    )
        for event in events:
            self._emit(event)
        if filled:
            self._tell_played()
        for tap in self._taps:
            tap(out, t)
        return out
