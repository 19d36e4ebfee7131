"""The agent's own senses, in words: what ``describe_scene`` and ``listen`` answer with no model.

Everything said here comes from perception the agent already runs: the faces in view and where
they are, who spoke last and from which direction, how bright the picture is and whether it
moves, and which sounds that were not speech stood out from the background. It is worded as
what the agent's senses report, never more: a face detector cannot tell a smile from a frown,
so nothing here says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from avagent.core.angles import wrap180
from avagent.core.events import ActiveSpeaker, Faces
from avagent.perception.avllm.frames import Light
from avagent.perception.avllm.sounds import Hearing

Focus = Literal["scene", "speaker", "sound"]

FACES_FRESH_S = 2.0
"""Faces seen longer ago than this are not reported as in view."""
_SPEAKER_WORDS = re.compile(r"\b(speak|speaking|spoke|talk|talking|said|saying|voice)\b")
_SOUND_WORDS = re.compile(r"\b(sound|sounds|noise|hear|heard|listen|loud)\b")


@dataclass(frozen=True, slots=True)
class SenseState:
    """What the senses hold at media time ``now``; ``front_deg`` is the azimuth of straight ahead
    (the camera's axis), so directions can be said as left and right of it."""

    now: float
    has_camera: bool
    faces: Faces | None
    light: Light | None
    hearing: Hearing | None
    front_deg: float = 0.0


def focus_of(question: str, default: Focus = "scene") -> Focus:
    """What a question is mostly about."""
    q = question.lower()
    if _SPEAKER_WORDS.search(q) or ("who is" in q and "there" not in q):
        return "speaker"
    if _SOUND_WORDS.search(q):
        return "sound"
    return default


def describe(state: SenseState, question: str = "", focus: Focus | None = None, *, full: bool = False) -> str:
    """An answer to ``question`` from the senses alone: what it asks about (sight, the speaker,
    sounds), or with ``full`` everything, the part it asks about first."""
    focus = focus or focus_of(question)
    orders: dict[Focus, list[Focus]] = {
        "scene": ["scene", "speaker", "sound"],
        "speaker": ["speaker", "scene", "sound"],
        "sound": ["sound", "speaker", "scene"],
    }
    writers = {"scene": _sight, "speaker": _speaker, "sound": _sound}
    parts = [text for text in (writers[k](state) for k in orders[focus]) if text]
    return " ".join(parts if full else parts[:1])


def side(relative_deg: float) -> str:
    """``30 degrees to my left`` for an angle from straight ahead (positive: left)."""
    rel = wrap180(relative_deg)
    if abs(rel) < 5.0:
        return "straight ahead"
    if abs(rel) > 175.0:
        return "behind me"
    return f"{abs(rel):.0f} degrees to my {'left' if rel > 0 else 'right'}"


def ago(seconds: float) -> str:
    if seconds < 1.5:
        return "just now"
    if seconds < 90:
        return f"{seconds:.0f} seconds ago"
    return f"{seconds / 60:.0f} minutes ago"


def _count(n: int, noun: str) -> str:
    words = ["no", "one", "two", "three", "four", "five", "six"]
    return f"{words[n] if n < len(words) else n} {noun}{'' if n == 1 else 's'}"


def _sight(state: SenseState) -> str:
    if not state.has_camera:
        return "I have no camera, so I cannot see."
    if state.light is None:
        return "My camera has not shown me anything yet."
    sentences = []
    faces = state.faces
    if faces is None or state.now - faces.t > FACES_FRESH_S:
        sentences.append("I cannot tell whether anyone is in view.")
    else:
        visible = [f for f in faces.faces if f.visible]
        if not visible:
            sentences.append("I see no faces.")
        else:
            where = [
                f"face {f.id}, {side(f.camera_deg)}" for f in sorted(visible, key=lambda f: -f.camera_deg)
            ]
            listed = where[0] if len(where) == 1 else ", ".join(where[:-1]) + " and " + where[-1]
            sentences.append(f"I see {_count(len(visible), 'face')}: {listed}.")
    sentences.append(_light_words(state.light))
    return " ".join(sentences)


def _light_words(light: Light) -> str:
    b = light.brightness
    brightness = "dark" if b < 50 else "dim" if b < 100 else "well lit" if b < 190 else "very bright"
    m = light.motion
    motion = "still" if m < 0.5 else "moving a little" if m < 3.0 else "moving a lot"
    return f"The picture is {brightness} and {motion}."


def _speaker(state: SenseState) -> str:
    hearing = state.hearing
    if hearing is None:
        return ""
    speaker = hearing.speakers[-1] if hearing.speakers else None
    direction = hearing.directions[-1] if hearing.directions else None
    if speaker is not None and (direction is None or speaker.t >= direction.t - 0.5):
        return _speaker_words(speaker, state)
    if direction is not None:
        where = side(direction.azimuth_deg - state.front_deg)
        return f"The last voice came from {where}, {ago(state.now - direction.t)}."
    if hearing.speech:
        _start, end = hearing.speech[-1]
        if hearing.speaking_now:
            return "Someone is speaking now; I cannot tell from where."
        return f"Someone spoke {ago(state.now - end)}; I cannot tell from where."
    return "I have not heard anyone speak."


def _speaker_words(speaker: ActiveSpeaker, state: SenseState) -> str:
    when = ago(state.now - speaker.t)
    where = side(speaker.azimuth_deg - state.front_deg)
    if speaker.face_id is None:
        return f"Someone out of view spoke from {where}, {when}."
    face = None
    if state.faces is not None:
        face = next((f for f in state.faces.faces if f.id == speaker.face_id), None)
    if face is not None:
        where = side(face.camera_deg)
    return f"Face {speaker.face_id}, {where}, was speaking {when}."


def _sound(state: SenseState) -> str:
    hearing = state.hearing
    if hearing is None:
        return ""
    if hearing.background_db is None:
        return "I have not heard anything yet."
    sentences = []
    if hearing.loud:
        last = hearing.loud[-1]
        others = len(hearing.loud) - 1
        sentences.append(
            f"I heard a sound that was not speech {ago(state.now - last.end)}, "
            f"{last.above_db:.0f} decibels above the background"
            + (f", and {_count(others, 'other')} before it." if others else ".")
        )
    elif not hearing.speech:
        sentences.append("I have heard no speech and no sudden sounds.")
    else:
        sentences.append("Apart from speech I heard no sudden sounds.")
    bg = hearing.background_db
    sentences.append(
        "It is quiet here."
        if bg < -50
        else "There is some background noise."
        if bg < -35
        else "It is noisy here."
    )
    return " ".join(sentences)
