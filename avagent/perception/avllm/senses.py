"""The agent's senses for a model: one place that holds the sampled frames, the utterances and
the recent sound, and words for what the senses report.

The policy reaches it through ``policy.inputs.MediaSource`` (for the frames and utterance of a
turn) and the scene describer through the same object, without importing perception: the
assembly hands it over.
"""

from __future__ import annotations

from collections.abc import Callable

from avagent.core.media import EncodedAudio, EncodedImage, TurnMedia
from avagent.perception.avllm.frames import FrameSampler
from avagent.perception.avllm.report import Focus, SenseState, describe
from avagent.perception.avllm.sounds import SoundLog

TURN_LEAD_S = 1.0
"""Frames this long before the turn's audio begins still belong to the turn (they saw the
question coming)."""


class AgentSenses:
    """Frames from a ``FrameSampler`` (None without sight) and sound from a ``SoundLog``."""

    def __init__(
        self,
        frames: FrameSampler | None,
        sounds: SoundLog | None,
        now: Callable[[], float],
        *,
        front_deg: float = 0.0,
    ) -> None:
        self.frames = frames
        self.sounds = sounds
        self._now = now
        self.front_deg = front_deg

    def now(self) -> float:
        return self._now()

    async def turn_media(self, turn: int | None, *, images: bool, audio: bool) -> TurnMedia:
        """The frames sampled while turn ``turn`` was said (or the latest one, if none was) and
        its utterance, as far as they are asked for."""
        utterance = None
        if self.sounds is not None and (audio or images):
            utterance = await self.sounds.utterance(turn)
        frames: list[EncodedImage] = []
        if images and self.frames is not None:
            if utterance is not None:
                frames = self.frames.images_since(utterance.start - TURN_LEAD_S)
            if not frames and (latest := self.frames.latest()) is not None:
                frames = [latest]
        return TurnMedia(images=tuple(frames), audio=utterance if audio else None)

    def latest_images(self, count: int) -> list[EncodedImage]:
        """The newest ``count`` sampled frames, oldest first."""
        if self.frames is None or count <= 0:
            return []
        recent = self.frames.images_since(self.now() - 10.0)
        if not recent and (latest := self.frames.latest()) is not None:
            recent = [latest]
        return recent[-count:]

    def recent_sound(self, seconds: float) -> EncodedAudio | None:
        return self.sounds.recent(seconds) if self.sounds is not None else None

    def state(self) -> SenseState:
        now = self.now()
        frames = self.frames
        return SenseState(
            now=now,
            has_camera=frames is not None,
            faces=frames.faces if frames is not None else None,
            light=frames.light(now) if frames is not None else None,
            hearing=self.sounds.hearing(now) if self.sounds is not None else None,
            front_deg=self.front_deg,
        )

    def report(self, question: str = "", focus: Focus | None = None, *, full: bool = False) -> str:
        """What the senses report about what ``question`` asks (with ``full``, all they report)."""
        return describe(self.state(), question, focus, full=full)
