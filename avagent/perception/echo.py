"""Echo cancellation: the agent's own voice, taken back out of what the microphone hears.

On a laptop the microphone hears the loudspeaker. Without cancellation the agent takes its own
voice for the user cutting in and stops itself mid-sentence. Two cancellers run side by side on
16 kHz mono, with what the speaker played as their reference:

- WebRTC's AEC3 (the echo canceller of browsers' calls, through the ``livekit`` wheel's audio
  processing module) estimates the delay by itself and removes the echo thoroughly, but its
  nonlinear suppressor also removes a user who talks over a loud agent;
- a linear filter of our own (``echo_linear.py``) whose residual keeps the user's voice, judged
  block by block by a double-talk detector (``double_talk.py``).

What the listener gets, per 10 ms: while the agent is silent, AEC3's output (the room as it is);
while the agent speaks, the linear residual where the user speaks over it, and silence where only
the echo is, so neither the echo nor AEC3's leaks while it learns are ever heard as speech. Until
the linear filter has learnt the echo path (at the start of the very first answer) the microphone
is not believed over the agent at all, for at most ``max_hold_s``.

The speaker hands over what it plays with ``played`` from any thread (a sound card callback);
everything else happens on the listener's side, in order: the reference played so far first,
then the microphone, both in 10 ms frames. Samples are paired one for one: from the start of both
for a file run's virtual speaker (``same_start``), else from the moment the speaker first hands
something over. The room and the devices' latency are the echo path; when the linear filter
cannot learn it, the delay is looked for (``echo_delay.py``, up to 500 ms either way) and the
pairing moved to put the echo inside the filter.

Cost (bench/hearing_echo.py): about 0.4-0.5 ms per 10 ms frame for both cancellers together,
about four times AEC3 alone, so about 1.5 ms per 32 ms block: run inline by the listener.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from typing import Any

import numpy as np
import soxr

from avagent.core.messages import SAMPLE_RATE, to_int16
from avagent.perception.double_talk import DoubleTalkDetector, DoubleTalkSettings, Verdict
from avagent.perception.echo_delay import DelayFinder
from avagent.perception.echo_linear import BLOCK, LinearEchoFilter

FRAME = SAMPLE_RATE // 100
"""AEC3 works on 10 ms frames (the linear filter's blocks are the same)."""
assert FRAME == BLOCK

LEAD = 16
"""Samples by which the microphone is paired later than what was played: a resampler hands over a
sample or two fewer now and then, and a speaker that hands over a block just in time would
otherwise come short. No echo arrives that soon (1 ms: 34 cm of air)."""
DEFAULT_DOUBLE_TALK = DoubleTalkSettings()
MAX_REFERENCE_S = 2.0
"""What was played and not yet paired with the microphone is kept this long at most."""
ECHO_AT = 2 * FRAME
"""Where the echo's direct sound is put in the linear filter when its delay had to be found."""
MAX_DELAY = SAMPLE_RATE // 2
"""The longest delay looked for, either way (500 ms), and the most a late speaker may owe."""


class EchoCanceller:
    """Removes the echo of what was played from the microphone, 16 kHz mono in and out."""

    def __init__(
        self,
        playback_rate: int,
        *,
        delay_hint_ms: int = 0,
        double_talk: DoubleTalkSettings | None = DEFAULT_DOUBLE_TALK,
        partitions: int = 24,
        same_start: bool = False,
    ) -> None:
        """``playback_rate``: the rate of what ``played`` gets; ``delay_hint_ms``: AEC3's
        starting guess at the delay; ``double_talk``: keep the user's voice over the agent's with
        the linear path (None: AEC3 alone); ``partitions``: the linear filter's length in 10 ms
        blocks; ``same_start``: what is played and what is heard both start at the same instant
        (a file run's virtual speaker, in lockstep), else what is played is paired with the
        microphone from the moment it first comes (a sound card's speaker started on its own)."""
        try:
            from livekit import rtc
        except ImportError as exc:  # pragma: no cover - a declared dependency
            raise RuntimeError("echo cancellation needs the livekit package (pip install livekit)") from exc
        self._rtc: Any = rtc
        self._apm: Any = rtc.AudioProcessingModule(echo_cancellation=True, high_pass_filter=True)
        self._delay_hint = delay_hint_ms
        self._resampler = (
            # Quick quality: it holds no samples back, so what was played reaches both cancellers
            # in time (a high-quality stream keeps about one block back: a speaker that hands a
            # block over just before it is heard, as a file run's virtual speaker does, would have
            # its echo reach the microphone before the reference reaches the cancellers).
            soxr.ResampleStream(playback_rate, SAMPLE_RATE, 1, dtype="float32", quality="QQ")
            if playback_rate != SAMPLE_RATE
            else None
        )
        self._played: deque[np.ndarray] = deque()
        self._queued = 0
        self._max_queued = round(MAX_REFERENCE_S * playback_rate)
        self._lock = threading.Lock()
        self._far = np.zeros(0, dtype=np.float32)
        """Reference at 16 kHz not yet handed to AEC3 (less than a frame)."""
        self._pending = np.zeros(LEAD, dtype=np.float32)
        """Reference at 16 kHz not yet paired with the microphone."""
        self._started = same_start
        """Whether what is played is being paired with the microphone yet."""
        self._debt = 0
        """Reference samples owed: the microphone ran ahead of it, they were taken as silence."""
        self.underruns = 0
        """Frames of the microphone that came before what the speaker played at the same time."""
        self._near = np.zeros(0, dtype=np.float32)
        self._ready = np.zeros(FRAME, dtype=np.float32)
        """Cleaned samples not handed out yet; starts one frame deep, which keeps it from running dry."""
        self.linear = LinearEchoFilter(partitions)
        self.detector = DoubleTalkDetector(double_talk) if double_talk is not None else None
        """Without ``double_talk`` settings, AEC3's output alone."""
        self._delays = DelayFinder()
        self.realigned = 0
        """How many times the echo was found outside the linear filter and the filter moved."""
        self.verdicts: Counter[Verdict] = Counter()
        """How many 10 ms frames got each verdict."""
        self.frames = 0

    def played(self, block: np.ndarray) -> None:
        """What the speaker just played (mono float at the playback rate); safe from any thread."""
        with self._lock:
            self._played.append(np.array(block, dtype=np.float32, copy=True))
            self._queued += block.shape[0]
            # Bounded when the listener stalls: the oldest of what was played goes.
            while self._queued > self._max_queued and len(self._played) > 1:
                self._queued -= self._played.popleft().shape[0]

    def process(self, mic: np.ndarray) -> np.ndarray:
        """The microphone's 16 kHz mono samples with the agent's voice removed: as many as came
        in, 10 ms behind them (AEC3 takes whole 10 ms frames)."""
        self._feed_reference()
        near = np.concatenate((self._near, mic.astype(np.float32, copy=False)))
        whole = near.shape[0] // FRAME * FRAME
        out = np.empty(whole, dtype=np.float32)
        for i in range(0, whole, FRAME):
            out[i : i + FRAME] = self._process_frame(near[i : i + FRAME])
        self._near = near[whole:]
        ready = np.concatenate((self._ready, out))
        n = int(mic.shape[0])
        self._ready = ready[n:]
        return ready[:n]

    def _process_frame(self, mic: np.ndarray) -> np.ndarray:
        frame = self._frame(mic)
        self._apm.set_stream_delay_ms(self._delay_hint)
        self._apm.process_stream(frame)
        self.frames += 1
        if self.detector is None:
            return np.frombuffer(frame.data, dtype=np.int16) * np.float32(1 / 32768)
        played = self._take_reference()
        # The linear path sees the microphone as AEC3 does (int16), so both hear the same clipping.
        heard = to_int16(mic) * (1 / 32768)
        echo, residual = self.linear.filter(played, heard)
        verdict = self.detector.judge(played, heard, echo, residual)
        if self.detector.may_adapt:
            self.linear.adapt(residual)
        if verdict in (Verdict.HOLD, Verdict.UNLEARNT):
            self._find_echo(played, heard)
        self.verdicts[verdict] += 1
        if verdict is Verdict.USER:
            return residual.astype(np.float32)
        if verdict in (Verdict.ECHO, Verdict.HOLD):
            return np.zeros(FRAME, dtype=np.float32)
        return np.frombuffer(frame.data, dtype=np.int16) * np.float32(1 / 32768)

    def _find_echo(self, played: np.ndarray, heard: np.ndarray) -> None:
        """While the filter has not learnt the echo path, look (every half second) for an echo
        outside it, and move what was played against the microphone to put it inside."""
        self._delays.push(played, heard)
        if self.frames % 50:
            return
        lag = self._delays.find(MAX_DELAY)
        covered = (self.linear.partitions - 6) * FRAME
        if lag is None or 0 <= lag <= covered:
            return
        shift = lag - ECHO_AT
        if shift > 0:
            self._pending = np.concatenate((np.zeros(shift, dtype=np.float32), self._pending))
        else:
            dropped = min(-shift, self._pending.shape[0])
            self._pending = self._pending[dropped:]
            self._debt = min(self._debt - shift - dropped, MAX_DELAY)
        self.linear.reset()
        self._delays.clear()
        assert self.detector is not None
        self.detector.relearn()
        self.realigned += 1

    def _take_reference(self) -> np.ndarray:
        """The next 10 ms of what was played, paired sample for sample with the microphone."""
        have = self._pending.shape[0]
        if have >= FRAME:
            block, self._pending = self._pending[:FRAME], self._pending[FRAME:]
            return block.astype(np.float64)
        # The speaker is late (or silent): what it has not handed over yet counts as silence, and
        # as much of it is dropped when it comes, so the pairing stays put.
        block = np.zeros(FRAME, dtype=np.float64)
        block[:have] = self._pending
        self._pending = self._pending[:0]
        if self._started:
            # Bounded: a speaker stopped for a while owes nothing when it starts again.
            self._debt = min(self._debt + FRAME - have, MAX_DELAY)
            self.underruns += 1
        return block

    def _feed_reference(self) -> None:
        with self._lock:
            blocks = list(self._played)
            self._played.clear()
            self._queued = 0
        if not blocks:
            return
        far = np.concatenate(blocks)
        if self._resampler is not None:
            far = np.asarray(self._resampler.resample_chunk(far), dtype=np.float32)
        self._started = True
        if self.detector is not None:
            paid = min(self._debt, far.shape[0])
            self._debt -= paid
            kept = int(MAX_REFERENCE_S * SAMPLE_RATE)
            self._pending = np.concatenate((self._pending, far[paid:]))[-kept:]
        far = np.concatenate((self._far, far))
        whole = far.shape[0] // FRAME * FRAME
        for i in range(0, whole, FRAME):
            self._apm.process_reverse_stream(self._frame(far[i : i + FRAME]))
        self._far = far[whole:]

    def _frame(self, samples: np.ndarray) -> Any:
        return self._rtc.AudioFrame(to_int16(samples).tobytes(), SAMPLE_RATE, 1, FRAME)
