"""Tracking sound sources over time: one Kalman filter on the circle per talker.

Each utterance gives one measured direction. It joins the nearest known source within a gate
(three standard deviations of the expected difference, which widens the longer the source has
been quiet, since a talker may have moved; never wider than ``gate_deg``), or starts a new
source. A source's direction is the filtered mean of its
utterances, so one talker gives one steady direction and two talkers at different directions
keep separate, stable identities.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from avagent.core.angles import wrap180, wrap360


@dataclass(frozen=True, slots=True)
class TrackerSettings:
    gate_deg: float = 20.0
    """The widest a source's gate gets: speech farther than this from every source is a new talker."""
    min_gate_deg: float = 6.0
    gate_sigmas: float = 3.0
    """Within these limits the gate is this many standard deviations of the expected difference
    between a source's direction and a new measurement of it (both uncertainties together)."""
    measurement_deg: float = 3.0
    """Standard error of one utterance's direction at a typical confidence (0.25)."""
    drift_deg_per_s: float = 2.0
    """How fast a talker's direction may wander while quiet (random walk, per sqrt second)."""
    forget_s: float = 120.0
    """A source quiet for this long is forgotten."""
    max_sources: int = 8


@dataclass(slots=True)
class SourceTrack:
    id: int
    azimuth_deg: float
    variance: float
    last_t: float
    utterances: int = 1

    @property
    def stddev_deg(self) -> float:
        return math.sqrt(self.variance)


@dataclass
class DirectionTracker:
    """Associates utterance directions with talkers and filters each talker's direction."""

    settings: TrackerSettings = field(default_factory=TrackerSettings)
    sources: list[SourceTrack] = field(default_factory=list)
    _next_id: int = 1

    def _measurement_variance(self, confidence: float) -> float:
        scale = min(max(confidence / 0.25, 0.1), 4.0)
        return self.settings.measurement_deg**2 / scale

    def _predicted_variance(self, source: SourceTrack, t: float) -> float:
        quiet = max(0.0, t - source.last_t)
        return source.variance + self.settings.drift_deg_per_s**2 * quiet

    def nearest(self, t: float, azimuth_deg: float, confidence: float = 0.25) -> SourceTrack | None:
        """The known source this direction would join, if any (nothing is changed)."""
        s = self.settings
        measured_var = self._measurement_variance(confidence)
        best: SourceTrack | None = None
        best_distance = math.inf
        for source in self.sources:
            if t - source.last_t > s.forget_s:
                continue
            distance = abs(wrap180(azimuth_deg - source.azimuth_deg))
            spread = math.sqrt(self._predicted_variance(source, t) + measured_var)
            gate = min(max(s.gate_sigmas * spread, s.min_gate_deg), s.gate_deg)
            if distance <= gate and distance < best_distance:
                best, best_distance = source, distance
        return best

    def update(self, t: float, azimuth_deg: float, confidence: float) -> SourceTrack:
        """Fold one utterance's direction into its source (a new one if none is near)."""
        self.sources = [x for x in self.sources if t - x.last_t <= self.settings.forget_s]
        measured_var = self._measurement_variance(confidence)
        source = self.nearest(t, azimuth_deg, confidence)
        if source is None:
            source = SourceTrack(self._next_id, wrap360(azimuth_deg), measured_var, t)
            self._next_id += 1
            self.sources.append(source)
            if len(self.sources) > self.settings.max_sources:
                self.sources.remove(min(self.sources, key=lambda x: x.last_t))
            return source
        prior = self._predicted_variance(source, t)
        gain = prior / (prior + measured_var)
        innovation = wrap180(azimuth_deg - source.azimuth_deg)
        source.azimuth_deg = wrap360(source.azimuth_deg + gain * innovation)
        source.variance = (1.0 - gain) * prior
        source.last_t = t
        source.utterances += 1
        return source

    def reset(self) -> None:
        self.sources.clear()
