"""Echo cancellation: the agent's own voice, taken back out of what the microphone hears.

On a laptop the microphone hears the loudspeaker. Without cancellation the agent takes its own
voice for the user cutting in and stops itself mid-sentence. This runs WebRTC's AEC3 (the echo
canceller of browsers' calls, through the ``livekit`` wheel's audio processing module) on 16 kHz
mono: what the speaker played is the reference, the microphone is cleaned before voice activity
detection and recognition. AEC3 estimates the delay between the two by itself (device buffers,
the room), follows changes of the echo path, and keeps the user's voice when both talk at once.

The speaker hands over what it plays with ``played`` from any thread (a sound card callback);
everything else happens on the listener's side, in order: the reference played so far first,
then the microphone, both in 10 ms frames.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

import numpy as np
import soxr

from avagent.core.messages import SAMPLE_RATE, to_int16

FRAME = SAMPLE_RATE // 100
"""AEC3 works on 10 ms frames."""


class EchoCanceller:
    """Removes the echo of what was played from the microphone, 16 kHz mono in and out."""

    def __init__(self, playback_rate: int, *, delay_hint_ms: int = 0) -> None:
        try:
            from livekit import rtc
        except ImportError as exc:  # pragma: no cover - a declared dependency
            raise RuntimeError("echo cancellation needs the livekit package (pip install livekit)") from exc
        self._rtc: Any = rtc
        self._apm: Any = rtc.AudioProcessingModule(echo_cancellation=True, high_pass_filter=True)
        self._delay_hint = delay_hint_ms
        self._resampler = (
            soxr.ResampleStream(playback_rate, SAMPLE_RATE, 1, dtype="float32")
            if playback_rate != SAMPLE_RATE
            else None
        )
        self._played: deque[np.ndarray] = deque()
        self._lock = threading.Lock()
        self._far = np.zeros(0, dtype=np.float32)
        self._near = np.zeros(0, dtype=np.float32)
        self._ready = np.zeros(FRAME, dtype=np.float32)
        """Cleaned samples not handed out yet; starts one frame deep, which keeps it from running dry."""
        self.frames = 0

    def played(self, block: np.ndarray) -> None:
        """What the speaker just played (mono float at the playback rate); safe from any thread."""
        with self._lock:
            self._played.append(np.array(block, dtype=np.float32, copy=True))

    def process(self, mic: np.ndarray) -> np.ndarray:
        """The microphone's 16 kHz mono samples with the agent's voice removed: as many as came
        in, 10 ms behind them (AEC3 takes whole 10 ms frames)."""
        self._feed_reference()
        near = np.concatenate((self._near, mic.astype(np.float32, copy=False)))
        whole = near.shape[0] // FRAME * FRAME
        out = np.empty(whole, dtype=np.float32)
        for i in range(0, whole, FRAME):
            frame = self._frame(near[i : i + FRAME])
            self._apm.set_stream_delay_ms(self._delay_hint)
            self._apm.process_stream(frame)
            out[i : i + FRAME] = np.frombuffer(frame.data, dtype=np.int16) * np.float32(1 / 32768)
            self.frames += 1
        self._near = near[whole:]
        ready = np.concatenate((self._ready, out))
        n = int(mic.shape[0])
        self._ready = ready[n:]
        return ready[:n]

    def _feed_reference(self) -> None:
        with self._lock:
            blocks = list(self._played)
            self._played.clear()
        if not blocks:
            return
        far = np.concatenate(blocks)
        if self._resampler is not None:
            far = np.asarray(self._resampler.resample_chunk(far), dtype=np.float32)
        far = np.concatenate((self._far, far))
        whole = far.shape[0] // FRAME * FRAME
        for i in range(0, whole, FRAME):
            self._apm.process_reverse_stream(self._frame(far[i : i + FRAME]))
        self._far = far[whole:]

    def _frame(self, samples: np.ndarray) -> Any:
        return self._rtc.AudioFrame(to_int16(samples).tobytes(), SAMPLE_RATE, 1, FRAME)
