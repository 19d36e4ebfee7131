"""A behaviour: turn the head toward whoever speaks.

It follows ``active_speaker`` events when sight is configured (the speaker's face, or the sound's
direction when no face matches) and ``sound_direction`` events when only hearing is. A new
direction moves the head only when it differs from where the head is already going by more than
``hysteresis_deg``, so the small wobble of successive estimates of one talker never makes it
jitter. An emergency stop halts the head at once (it arrives on the control lane).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from avagent.core.angles import wrap180
from avagent.core.bus import Bus
from avagent.core.events import ActiveSpeaker, Event, SoundDirection, Stop
from avagent.io.head import PanTiltHead


@dataclass(frozen=True, slots=True)
class FollowSettings:
    follow: Literal["active_speaker", "sound"] = "sound"
    hysteresis_deg: float = 10.0
    min_confidence: float = 0.0
    """Sound directions less sure than this are ignored."""


class FollowSpeaker:
    """Points a ``PanTiltHead`` at the talker, with hysteresis."""

    name = "follow_speaker"
    produces: tuple[type, ...] = ()

    def __init__(self, bus: Bus, head: PanTiltHead, settings: FollowSettings | None = None) -> None:
        self.settings = s = settings or FollowSettings()
        self.head = head
        wanted: type[Event] = ActiveSpeaker if s.follow == "active_speaker" else SoundDirection
        self.consumes: tuple[type, ...] = (wanted, Stop)
        self._events = bus.subscribe(wanted, Stop, name="follow_speaker.events", maxsize=64)
        self.ignored = 0
        """Directions that did not move the head (within the hysteresis, or unsure)."""

    async def run(self) -> None:
        async for event in self._events:
            await self.handle(event)

    async def handle(self, event: Event) -> None:
        if isinstance(event, Stop):
            await self.head.stop()
            return
        if isinstance(event, SoundDirection):
            if event.confidence < self.settings.min_confidence:
                self.ignored += 1
                return
            azimuth = event.azimuth_deg
        elif isinstance(event, ActiveSpeaker):
            azimuth = event.azimuth_deg
        else:
            return
        pan = self.head.limits.pan_for(azimuth)
        going, _tilt = self.head.target()
        if abs(wrap180(pan - going)) <= self.settings.hysteresis_deg:
            self.ignored += 1
            return
        await self.head.point(pan, 0.0)
