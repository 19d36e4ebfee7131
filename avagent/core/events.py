"""Events: what the stages tell each other and the outside world.

Every event is a frozen, slotted dataclass with ``t`` (media time in seconds from the start of the
input) and ``t_capture`` (the monotonic instant of the sound or image that caused it). ``to_dict``
gives the JSON event contract of docs/events.md; fields marked ``json=False`` (raw audio) stay
inside the process. Control events (``control = True``) overtake queued data on every stream.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from avagent.core.messages import SAMPLE_RATE
from avagent.core.text import one_line, redact

_INTERNAL = {"json": False}
MAX_ERROR_CHARS = 300
"""An error event's message is cut to this many characters."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Base of all events; ``type`` is the snake_case name in the JSON contract."""

    type: ClassVar[str] = "event"
    control: ClassVar[bool] = False

    t: float
    t_capture: float = field(default_factory=time.monotonic, metadata=_INTERNAL)

    def to_dict(self) -> dict[str, Any]:
        """The event as a JSON-ready dict: ``type`` first, then ``t``, then the event's own fields."""
        out: dict[str, Any] = {"type": self.type}
        for f in dataclasses.fields(self):
            if f.metadata.get("json", True):
                out[f.name] = _jsonable(getattr(self, f.name))
        return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, float | np.floating):
        number = float(value)
        return round(number, 4) if math.isfinite(number) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_jsonable(v) for v in value.tolist()]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return value


# --- hearing -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeechStarted(Event):
    """The VAD found the onset of speech at ``t``."""

    type: ClassVar[str] = "speech_started"


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeechEnded(Event):
    """A speech segment ``[start, end]`` (media seconds) ended; ``t`` is when that became known."""

    type: ClassVar[str] = "speech_ended"
    start: float
    end: float


@dataclass(frozen=True, slots=True, kw_only=True)
class TurnEnded(Event):
    """The user finished a turn: the speech in ``[start, end]`` and its 16 kHz mono audio."""

    type: ClassVar[str] = "turn_ended"
    turn: int
    start: float
    end: float
    audio: np.ndarray = field(repr=False, metadata=_INTERNAL)
    sample_rate: int = field(default=SAMPLE_RATE, metadata=_INTERNAL)
    end_capture: float = field(default=0.0, metadata=_INTERNAL)
    """Monotonic capture instant of the last speech sample: where turn latency is measured from."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Transcript(Event):
    """Recognised words; ``final`` is False for interim hypotheses."""

    type: ClassVar[str] = "transcript"
    text: str
    final: bool = True
    turn: int | None = None
    confidence: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class BargeIn(Event):
    """The user started speaking while the agent was speaking: stop talking now."""

    type: ClassVar[str] = "barge_in"
    control: ClassVar[bool] = True


@dataclass(frozen=True, slots=True, kw_only=True)
class PauseSpeaking(Event):
    """The user may be cutting in: hold the agent's voice until it is clear whether they are."""

    type: ClassVar[str] = "pause_speaking"
    control: ClassVar[bool] = True


@dataclass(frozen=True, slots=True, kw_only=True)
class ResumeSpeaking(Event):
    """It was only a backchannel or a noise: the agent's voice carries on where it paused."""

    type: ClassVar[str] = "resume_speaking"
    control: ClassVar[bool] = True


# --- acting --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolCall(Event):
    type: ClassVar[str] = "tool_call"
    name: str
    args: dict[str, Any]
    turn: int | None = None
    call_id: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolResult(Event):
    type: ClassVar[str] = "tool_result"
    name: str
    ok: bool
    result: str
    turn: int | None = None
    call_id: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Say(Event):
    """The policy decided to say ``text``. ``audio`` (mono float32 at ``audio_rate``), when given,
    is the model's own voice saying it (an omni model): played instead of synthesising the text."""

    type: ClassVar[str] = "say"
    text: str
    turn: int | None = None
    audio: np.ndarray | None = field(default=None, repr=False, compare=False, metadata=_INTERNAL)
    audio_rate: int = field(default=0, metadata=_INTERNAL)


@dataclass(frozen=True, slots=True, kw_only=True)
class FirstToken(Event):
    """The policy's model sent the first chunk of its answer to turn ``turn``."""

    type: ClassVar[str] = "first_token"
    turn: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeakingStarted(Event):
    """The first sample of an utterance reached the speaker."""

    type: ClassVar[str] = "speaking_started"
    text: str
    turn: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeakingEnded(Event):
    """An utterance finished playing, or was cut: ``played_s`` of ``total_s`` seconds were heard."""

    type: ClassVar[str] = "speaking_ended"
    text: str
    interrupted: bool
    played_s: float
    total_s: float
    turn: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Stop(Event):
    """Emergency stop: every actuator halts, every utterance is cut."""

    type: ClassVar[str] = "stop"
    control: ClassVar[bool] = True
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Estop(Event):
    """The emergency stop is engaged: every actuator halts, and actuator commands are refused until
    it is cleared. ``source`` says where it came from (``mqtt``, ``key``, ``tool``, ``heartbeat``...)."""

    type: ClassVar[str] = "estop"
    control: ClassVar[bool] = True
    source: str
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class EstopCleared(Event):
    """The emergency stop was cleared: actuators take commands again."""

    type: ClassVar[str] = "estop_cleared"
    control: ClassVar[bool] = True
    source: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Actuator(Event):
    """An actuator's state changed: it started moving (``cause`` ``command``), arrived, or was
    halted (``stop``, ``estop``, ``lease``, ``link``); ``position`` and ``target`` by axis."""

    type: ClassVar[str] = "actuator"
    name: str
    moving: bool
    position: dict[str, float]
    target: dict[str, float] = field(default_factory=dict)
    cause: str = ""
    source: str = ""


# --- space and sight -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class SoundDirection(Event):
    """Where speech came from: ``azimuth_deg`` counter-clockwise from the array's +x axis, in
    [0, 360), the talker's tracked direction; ``measured_deg`` is this speech's own estimate.
    ``final`` is False for interim directions while someone is still speaking. ``source_id``
    names the talker track. A linear array (two microphones) cannot tell ``azimuth_deg`` from
    ``mirror_deg`` (front/back ambiguity); None for other arrays."""

    type: ClassVar[str] = "sound_direction"
    azimuth_deg: float
    confidence: float
    start: float | None = None
    end: float | None = None
    final: bool = True
    source_id: int | None = None
    measured_deg: float | None = None
    mirror_deg: float | None = None


@dataclass(frozen=True, slots=True)
class FaceRecord:
    """One face in view. ``id`` stays the same while the face is tracked; ``box`` is ``(x, y, w,
    h)`` in pixels; ``bearing_deg`` is in the array's frame like every azimuth, ``camera_deg``
    signed from the camera's axis (positive to the left); ``mouth_motion`` rises while its mouth
    moves; ``visible`` is False while a track coasts through frames the detector missed it in."""

    id: int
    box: tuple[int, int, int, int]
    bearing_deg: float
    camera_deg: float = 0.0
    score: float = 1.0
    mouth_motion: float = 0.0
    visible: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class Faces(Event):
    """The faces in view in one video frame."""

    type: ClassVar[str] = "faces"
    faces: tuple[FaceRecord, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ActiveSpeaker(Event):
    """Who is speaking: ``face_id`` (None when no face matches) at ``azimuth_deg``. ``method``
    says how: ``direction`` (the sound's direction matched one face), ``mouth`` (mouth motion
    with the voice chose among faces close together), ``sound`` (no face: the sound's direction)."""

    type: ClassVar[str] = "active_speaker"
    face_id: int | None
    azimuth_deg: float
    method: str = "direction"
    source_id: int | None = None
    final: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class Scene(Event):
    """What the agent sees and hears, in words: an answer of ``describe_scene`` or ``listen``.
    ``source`` is ``model`` (a vision or omni model looked and listened) or ``perception`` (the
    agent's own senses: faces, speaker, light, motion, sounds)."""

    type: ClassVar[str] = "scene"
    text: str
    source: str = "perception"


# --- health --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Error(Event):
    """A stage failed on one item; the agent keeps running."""

    type: ClassVar[str] = "error"
    stage: str
    message: str

    def __post_init__(self) -> None:
        # Every error leaves the process (sinks, a call's page, the robot bus): one bounded line,
        # with anything that looks like a credential taken out, whoever made it.
        object.__setattr__(self, "message", one_line(redact(self.message), MAX_ERROR_CHARS))


@dataclass(frozen=True, slots=True, kw_only=True)
class Overflow(Event):
    """A bounded stream had to drop items (``dropped`` since the last report)."""

    type: ClassVar[str] = "overflow"
    stream: str
    dropped: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Latency(Event):
    """How long each step of one turn took, in milliseconds from the end of the user's speech."""

    type: ClassVar[str] = "latency"
    turn: int
    steps_ms: dict[str, float]
    wall_ms: dict[str, float] = field(default_factory=dict)
    """The same steps on the wall clock (from the capture of the end of speech): includes the time
    spent computing, which media time does not when a file is fed as fast as possible."""
