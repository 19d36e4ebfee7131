"""The active speaker: which face the voice belongs to.

The sound's direction is compared with the bearing of each face in view. One face within
``tolerance_deg``: that is the speaker. Several (faces too close together for the direction to
choose): the one whose mouth moves with the voice, i.e. whose mouth motion correlates best with
the VAD's speech/silence over the last seconds. None: nobody in view is speaking, and the
speaker is reported by the sound's direction alone. Without a microphone array, mouth motion
alone picks among all faces in view when a speech segment ends.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from avagent.core.angles import wrap180
from avagent.core.bus import Bus
from avagent.core.events import (
    ActiveSpeaker,
    Event,
    FaceRecord,
    Faces,
    SoundDirection,
    SpeechEnded,
    SpeechStarted,
)


@dataclass(frozen=True, slots=True)
class SpeakerSettings:
    tolerance_deg: float = 15.0
    context_s: float = 1.5
    """Mouth motion is compared with speech over the segment and this much before it."""
    min_correlation: float = 0.2
    """Weaker agreement between a mouth and the voice does not count as speaking."""
    stale_faces_s: float = 1.0
    """Faces seen longer ago than this are not in view any more."""
    history_s: float = 20.0


@dataclass(frozen=True, slots=True)
class Choice:
    face: FaceRecord | None
    method: str


class MouthHistory:
    """Each face's mouth motion over time, and the VAD's speech segments."""

    def __init__(self, history_s: float) -> None:
        self.history_s = history_s
        self.motion: dict[int, deque[tuple[float, float]]] = {}
        self.speech: deque[tuple[float, float]] = deque(maxlen=64)
        self.open_since: float | None = None

    def add_faces(self, t: float, faces: Sequence[FaceRecord]) -> None:
        for face in faces:
            series = self.motion.setdefault(face.id, deque())
            series.append((t, face.mouth_motion))
            while series and series[0][0] < t - self.history_s:
                series.popleft()
        for face_id in [k for k, v in self.motion.items() if not v or v[-1][0] < t - self.history_s]:
            del self.motion[face_id]

    def speaking_at(self, times: np.ndarray) -> np.ndarray:
        inside = np.zeros(times.shape[0], dtype=bool)
        spans = list(self.speech)
        if self.open_since is not None:
            spans.append((self.open_since, math.inf))
        for start, end in spans:
            inside |= (times >= start) & (times <= end)
        return inside.astype(np.float64)

    def correlation(self, face_id: int, t0: float, t1: float) -> float:
        """How well this face's mouth motion follows speech in ``[t0, t1]`` (Pearson r; 0 if unknown)."""
        samples = [(t, m) for t, m in self.motion.get(face_id, ()) if t0 <= t <= t1]
        if len(samples) < 4:
            return 0.0
        times = np.array([t for t, _ in samples])
        motion = np.array([m for _, m in samples])
        speaking = self.speaking_at(times)
        if np.std(motion) < 1e-6 or np.std(speaking) < 1e-6:
            return 0.0
        return float(np.corrcoef(motion, speaking)[0, 1])


def choose_speaker(
    faces: Sequence[FaceRecord],
    azimuth_deg: float | None,
    settings: SpeakerSettings,
    mouths: MouthHistory,
    window: tuple[float, float],
) -> Choice:
    """Which face is speaking, by direction first and by mouth motion among close faces."""
    if azimuth_deg is None:
        candidates = faces
    else:
        candidates = [f for f in faces if abs(wrap180(f.bearing_deg - azimuth_deg)) <= settings.tolerance_deg]
    if azimuth_deg is not None and len(candidates) == 1:
        return Choice(candidates[0], "direction")
    if candidates:
        scored = sorted(
            ((mouths.correlation(f.id, *window), f) for f in candidates),
            key=lambda pair: pair[0],
            reverse=True,
        )
        best_score, best = scored[0]
        if best_score >= settings.min_correlation:
            return Choice(best, "mouth")
        if azimuth_deg is not None:
            nearest = min(candidates, key=lambda f: abs(wrap180(f.bearing_deg - azimuth_deg)))
            return Choice(nearest, "direction")
    return Choice(None, "sound")


class ActiveSpeakerStage:
    """Publishes ``ActiveSpeaker`` for each sound direction (or, without an array, each segment)."""

    name = "active_speaker"
    consumes = (Faces, SoundDirection, SpeechStarted, SpeechEnded)
    produces = (ActiveSpeaker,)

    def __init__(self, bus: Bus, settings: SpeakerSettings | None = None, *, has_array: bool = True) -> None:
        self.settings = settings or SpeakerSettings()
        self.has_array = has_array
        self._bus = bus
        self._input = bus.subscribe(
            Faces, SoundDirection, SpeechStarted, SpeechEnded, name="active_speaker.input", maxsize=256
        )
        self.mouths = MouthHistory(self.settings.history_s)
        self._faces: Faces | None = None

    async def run(self) -> None:
        async for item in self._input:
            event = self.handle(item)
            if event is not None:
                await self._bus.publish(event)

    def handle(self, item: object) -> ActiveSpeaker | None:
        if isinstance(item, Faces):
            self._faces = item
            self.mouths.add_faces(item.t, item.faces)
        elif isinstance(item, SpeechStarted):
            self.mouths.open_since = item.t
        elif isinstance(item, SpeechEnded):
            self.mouths.open_since = None
            self.mouths.speech.append((item.start, item.end))
            if not self.has_array:
                return self._decide(item, None, item.start, item.end, final=True, source_id=None)
        elif isinstance(item, SoundDirection):
            start = item.start if item.start is not None else item.t
            end = item.end if item.end is not None else item.t
            return self._decide(
                item, item.azimuth_deg, start, end, final=item.final, source_id=item.source_id
            )
        return None

    def _decide(
        self,
        cause: Event,
        azimuth: float | None,
        start: float,
        end: float,
        *,
        final: bool,
        source_id: int | None,
    ) -> ActiveSpeaker | None:
        faces = self._faces.faces if self._faces is not None else []
        if self._faces is not None and cause.t - self._faces.t > self.settings.stale_faces_s:
            faces = []
        window = (start - self.settings.context_s, end)
        choice = choose_speaker(faces, azimuth, self.settings, self.mouths, window)
        if choice.face is None:
            if azimuth is None:
                return None
            return ActiveSpeaker(
                t=cause.t,
                t_capture=cause.t_capture,
                face_id=None,
                azimuth_deg=azimuth,
                method="sound",
                source_id=source_id,
                final=final,
            )
        return ActiveSpeaker(
            t=cause.t,
            t_capture=cause.t_capture,
            face_id=choice.face.id,
            azimuth_deg=choice.face.bearing_deg,
            method=choice.method,
            source_id=source_id,
            final=final,
        )
