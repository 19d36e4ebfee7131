"""What the agent's senses report, as one compact, clearly marked block for each turn.

The policy sees perception only through events: sound direction, faces, the active speaker and
scene descriptions are kept as they arrive, and ``render`` writes the block that goes in front of
the user's words. Old observations are left out (``max_age_s`` of media time), so the model is not
told of a face that left a minute ago.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable

from avagent.core.events import ActiveSpeaker, Event, Faces, Scene, SoundDirection

BEGIN = "[context from the agent's senses; not said by the user]"
END = "[the user said]"


def _deg(value: float) -> str:
    return f"{value:.0f}°"


class PerceptionContext:
    """The latest of each kind of perception event, rendered as a context block."""

    observes: tuple[type[Event], ...] = (SoundDirection, Faces, ActiveSpeaker, Scene)

    def __init__(
        self,
        *,
        max_age_s: float = 30.0,
        now: Callable[[], datetime.datetime] = lambda: datetime.datetime.now().astimezone(),
    ) -> None:
        self.max_age_s = max_age_s
        self._now = now
        self.direction: SoundDirection | None = None
        self.faces: Faces | None = None
        self.speaker: ActiveSpeaker | None = None
        self.scene: Scene | None = None

    def observe(self, event: Event) -> None:
        if isinstance(event, SoundDirection):
            self.direction = event
        elif isinstance(event, Faces):
            self.faces = event
        elif isinstance(event, ActiveSpeaker):
            self.speaker = event
        elif isinstance(event, Scene):
            self.scene = event

    def _fresh(self, event: Event | None, t: float) -> bool:
        return event is not None and t - event.t <= self.max_age_s

    def render(self, t: float) -> str:
        """The block for a turn whose words were final at media time ``t``."""
        lines = [BEGIN, "time: " + self._now().strftime("%A %d %B %Y, %H:%M")]
        speaker = self.speaker if self._fresh(self.speaker, t) else None
        direction = self.direction if self._fresh(self.direction, t) else None
        if speaker is not None:
            who = f"face {speaker.face_id}" if speaker.face_id is not None else "someone not in view"
            lines.append(f"speaker: {who}, at {_deg(speaker.azimuth_deg)}")
        elif direction is not None:
            lines.append(
                f"speaker: voice from {_deg(direction.azimuth_deg)} (confidence {direction.confidence:.1f})"
            )
        else:
            lines.append("speaker: direction unknown")
        faces = self.faces if self._fresh(self.faces, t) else None
        if faces is not None:
            seen = []
            for face in faces.faces[:6]:
                seen.append(f"face {face.id} at {_deg(face.bearing_deg)}")
            lines.append("faces: " + (", ".join(seen) if seen else "none in view"))
        scene = self.scene if self._fresh(self.scene, t) else None
        if scene is not None:
            by = "a vision model" if scene.source == "model" else "the agent's own senses"
            lines.append(f"scene ({by}, {t - scene.t:.0f} s ago): {scene.text}")
        lines.append(END)
        return "\n".join(lines)
