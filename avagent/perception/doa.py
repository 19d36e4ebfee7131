"""The sound-direction stage: where speech comes from, per utterance, tracked over time.

It keeps its own short multichannel history (resampled to 16 kHz) and works only while the VAD
(the ``Listener``, on channel 0) says someone speaks: from ``SpeechStarted`` it analyses each
16 ms hop of the array's channels as it arrives and sums the hops' cross-spectra; at
``SpeechEnded`` it cuts the sum exactly at the end of speech, steers it once, and folds the
utterance's direction into the talker tracker. Silence costs nothing and never gives a direction.

While someone speaks for long, an interim direction (``final`` false) is published every
``interim_ms`` so that a head can start turning before the sentence ends.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass

import numpy as np
import soxr

from avagent.core.angles import wrap360
from avagent.core.bus import Bus
from avagent.core.events import Error, Event, SoundDirection, SpeechEnded, SpeechStarted
from avagent.core.messages import AudioFrame
from avagent.perception.arrays import MicArray
from avagent.perception.doa_tracker import DirectionTracker, TrackerSettings
from avagent.perception.srp import Peak, SrpPhat, SrpSettings


@dataclass(frozen=True, slots=True)
class DoaSettings:
    """Sound direction (``array.doa:`` in the config)."""

    min_confidence: float = 0.05
    """Utterances whose steered response peaks lower than this (diffuse sound) give no direction."""
    interim_ms: float = 500.0
    """Publish an interim direction every this many milliseconds of ongoing speech; 0 for none."""
    low_hz: float = 300.0
    high_hz: float = 4000.0
    """The band analysed (see ``SrpSettings``)."""
    gate_deg: float = 20.0
    """Speech farther than this from every known talker's direction is a new talker."""

    @property
    def srp(self) -> SrpSettings:
        return SrpSettings(low_hz=self.low_hz, high_hz=self.high_hz)

    @property
    def tracker(self) -> TrackerSettings:
        return TrackerSettings(gate_deg=self.gate_deg)


MIN_SPEECH_S = 0.15
"""Speech shorter than this gives no direction: too few hops to trust."""
HISTORY_S = 3.0
"""Multichannel audio kept, so that a segment can be analysed from its true start."""
TAIL_S = 1.0
"""Hops kept one by one (older ones are summed), so that a sum can be cut at the end of speech."""


class UtteranceSum:
    """The running sum of one utterance's hop cross-spectra, exact to the hop near its end."""

    def __init__(self, shape: tuple[int, int], tail_s: float) -> None:
        self._tail_s = tail_s
        self._weighted = np.zeros(shape, dtype=np.complex128)
        self._weights = np.zeros(shape, dtype=np.float64)
        self._committed = 0
        self._tail: deque[tuple[float, np.ndarray, np.ndarray]] = deque()

    def reset(self) -> None:
        self._weighted[:] = 0.0
        self._weights[:] = 0.0
        self._committed = 0
        self._tail.clear()

    @property
    def hops(self) -> int:
        return self._committed + len(self._tail)

    def add(self, centres: np.ndarray, weighted: np.ndarray, weights: np.ndarray) -> None:
        """Add hops centred at media times ``centres`` (ascending)."""
        for k in range(centres.shape[0]):
            self._tail.append((float(centres[k]), weighted[k], weights[k]))
        newest = self._tail[-1][0] if self._tail else 0.0
        while self._tail and self._tail[0][0] < newest - self._tail_s:
            _t, w, g = self._tail.popleft()
            self._weighted += w
            self._weights += g
            self._committed += 1

    def total(self, until: float = math.inf) -> tuple[np.ndarray, np.ndarray, int]:
        """Sums over the hops centred no later than ``until``, and how many hops those are."""
        weighted = self._weighted.copy()
        weights = self._weights.copy()
        count = self._committed
        for t, w, g in self._tail:
            if t <= until:
                weighted += w
                weights += g
                count += 1
        return weighted, weights, count


class SoundDirectionStage:
    """Publishes ``SoundDirection`` for each speech segment (and interim ones while it lasts)."""

    name = "doa"
    consumes = (AudioFrame, SpeechStarted, SpeechEnded)
    produces = (SoundDirection, Error)

    def __init__(self, bus: Bus, array: MicArray, settings: DoaSettings | None = None) -> None:
        self.settings = s = settings or DoaSettings()
        self.array = array
        self.srp = SrpPhat(array, s.srp)
        self.tracker = DirectionTracker(s.tracker)
        self._bus = bus
        self._input = bus.subscribe(AudioFrame, SpeechStarted, SpeechEnded, name="doa.input", maxsize=256)
        self._rate = self.srp.settings.sample_rate
        self._hop = self.srp.settings.hop
        self._frame = self.srp.settings.frame
        self._ring = np.zeros((max(int(HISTORY_S * self._rate), 4 * self._frame), array.mics), np.float32)
        self._written = 0
        self._t0 = 0.0
        self._t_next: float | None = None
        self._in_rate: int | None = None
        self._resampler: soxr.ResampleStream | None = None
        self._sum = UtteranceSum(self.srp.shape, TAIL_S)
        self._next_hop: int | None = None
        """Index of the next hop to analyse while in speech; None between utterances."""
        self._speech_start = 0.0
        self._next_interim = math.inf
        self._anchor = (0.0, time.monotonic())
        self._reported_channels = False
        self.hops_analysed = 0

    async def run(self) -> None:
        async for item in self._input:
            for event in self.handle(item):
                await self._bus.publish(event)

    def handle(self, item: object) -> list[Event]:
        """Take one frame or speech event; returns the events to publish."""
        if isinstance(item, AudioFrame):
            return self._take_frame(item)
        if isinstance(item, SpeechStarted):
            return self._speech_started(item.t)
        if isinstance(item, SpeechEnded):
            return self._speech_ended(item)
        return []

    # --- audio in ------------------------------------------------------------------------------

    def _take_frame(self, frame: AudioFrame) -> list[Event]:
        mics = self.array.mics
        if frame.channels < mics:
            if self._reported_channels:
                return []
            self._reported_channels = True
            return [
                Error(
                    t=frame.t,
                    stage=self.name,
                    message=f"the input has {frame.channels} channel(s) but the array {self.array.name!r} "
                    f"has {mics} microphones: no sound directions",
                )
            ]
        samples = frame.float_channels()[:, :mics]
        if not np.isfinite(samples).all():
            samples = np.nan_to_num(samples, nan=0.0, posinf=1.0, neginf=-1.0)
        if self._t_next is None or abs(frame.t - self._t_next) > self._hop / self._rate:
            self._restart_at(frame.t)
        self._t_next = frame.t_end
        self._anchor = (frame.t, frame.t_capture)
        if frame.sample_rate != self._rate:
            if self._resampler is None or self._in_rate != frame.sample_rate:
                self._in_rate = frame.sample_rate
                self._resampler = soxr.ResampleStream(frame.sample_rate, self._rate, mics, dtype="float32")
            samples = self._resampler.resample_chunk(np.ascontiguousarray(samples))
        self._append(np.asarray(samples, dtype=np.float32))
        if self._next_hop is None:
            return []
        self._analyse_available()
        return self._maybe_interim()

    def _restart_at(self, t: float) -> None:
        """Start (or restart after a gap) the 16 kHz timeline at media time ``t``."""
        self._t0 = t
        self._written = 0
        self._resampler = None
        if self._next_hop is not None:
            self._next_hop = 0

    def _append(self, samples: np.ndarray) -> None:
        size = self._ring.shape[0]
        n = samples.shape[0]
        if n >= size:
            self._ring[:] = samples[-size:]
            self._written += n
            return
        at = self._written % size
        first = min(n, size - at)
        self._ring[at : at + first] = samples[:first]
        if first < n:
            self._ring[: n - first] = samples[first:]
        self._written += n

    def _slice(self, i0: int, i1: int) -> np.ndarray:
        idx = np.arange(i0, i1) % self._ring.shape[0]
        return self._ring[idx]

    def _hop_at(self, t: float) -> int:
        return max(0, math.floor((t - self._t0) * self._rate / self._hop))

    def _analyse_available(self) -> None:
        assert self._next_hop is not None
        oldest = max(0, self._written - self._ring.shape[0])
        first = max(self._next_hop, -(-oldest // self._hop))
        end = (self._written - self._frame) // self._hop + 1
        if end <= first:
            return
        block = self._slice(first * self._hop, (end - 1) * self._hop + self._frame)
        weighted, weights = self.srp.cross_spectra(self.srp.frames_of(block))
        centres = self._t0 + (np.arange(first, end) * self._hop + self._frame / 2) / self._rate
        self._sum.add(centres, weighted, weights)
        self.hops_analysed += end - first
        self._next_hop = end

    # --- speech events -------------------------------------------------------------------------

    def _speech_started(self, start: float) -> list[Event]:
        if self._next_hop is not None:
            return []
        self._begin(start)
        self._analyse_available()
        return self._maybe_interim()

    def _begin(self, start: float) -> None:
        self._sum.reset()
        self._speech_start = start
        self._next_hop = self._hop_at(start)
        interim = self.settings.interim_ms / 1000.0
        self._next_interim = start + interim if interim > 0 else math.inf

    def _speech_ended(self, ended: SpeechEnded) -> list[Event]:
        if self._next_hop is None:
            self._begin(ended.start)
        self._analyse_available()
        weighted, weights, hops = self._sum.total(until=ended.end)
        self._next_hop = None
        self._next_interim = math.inf
        self._sum.reset()
        if hops * self._hop / self._rate < MIN_SPEECH_S:
            return []
        peak = self._steer(weighted, weights)
        if peak.power < self.settings.min_confidence:
            return []
        source = self.tracker.update(ended.end, peak.azimuth_deg, peak.power)
        return [
            self._event(
                ended.end, source.azimuth_deg, peak, ended.start, ended.end, final=True, source_id=source.id
            )
        ]

    def _maybe_interim(self) -> list[Event]:
        if self._next_hop is None:
            return []
        latest = self._t0 + ((self._next_hop - 1) * self._hop + self._frame / 2) / self._rate
        if latest < self._next_interim:
            return []
        while self._next_interim <= latest:
            self._next_interim += self.settings.interim_ms / 1000.0
        weighted, weights, hops = self._sum.total()
        if hops * self._hop / self._rate < MIN_SPEECH_S:
            return []
        peak = self._steer(weighted, weights)
        if peak.power < self.settings.min_confidence:
            return []
        near = self.tracker.nearest(latest, peak.azimuth_deg, peak.power)
        return [
            self._event(
                latest,
                peak.azimuth_deg,
                peak,
                self._speech_start,
                latest,
                final=False,
                source_id=near.id if near is not None else None,
            )
        ]

    def _steer(self, weighted: np.ndarray, weights: np.ndarray) -> Peak:
        return self.srp.peak(self.srp.power(self.srp.average(weighted, weights)))

    def _event(
        self,
        t: float,
        azimuth: float,
        peak: Peak,
        start: float,
        end: float,
        *,
        final: bool,
        source_id: int | None,
    ) -> SoundDirection:
        media, mono = self._anchor
        mirror = self.array.mirror(azimuth) if self.array.linear else None
        return SoundDirection(
            t=t,
            t_capture=mono + (t - media),
            azimuth_deg=round(wrap360(azimuth), 2),
            confidence=round(min(max(peak.power, 0.0), 1.0), 3),
            start=start,
            end=end,
            final=final,
            source_id=source_id,
            measured_deg=round(peak.azimuth_deg, 2),
            mirror_deg=round(mirror, 2) if mirror is not None else None,
        )
