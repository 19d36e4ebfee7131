"""The ``hearing`` config section: how far offline commands are trusted."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from avagent.agent.settings import Section
from avagent.policy.wake import check_name


class HearingConfig(Section):
    check_commands: Literal["whisper"] | None = None
    """``whisper``: the offline commands act only when a free-speech recogniser (faster-whisper,
    the ``whisper`` extra, set up by ``asr.whisper``) hears the same phrase as the grammar, which
    keeps other speech from moving anything and recognises accents and noise far better; None:
    the grammar recogniser alone. Both decode at once, during the end-of-turn silence."""
    free_alone: float = Field(default=0.9, ge=0.0, le=1.0)
    """Confidence given to a phrase that only the free-speech recogniser heard."""
    min_similarity: float = Field(default=1.0, ge=0.0, le=1.0)
    """How alike (0..1, letter by letter) whisper's words must be to a phrase only the grammar heard
    for it to count as heard by both (whisper mishears synthetic and accented voices). 1: off, the
    default: at 0.65 about 2 % more commands were recognised, but half-commands slipped through
    ("turn on the lights" taken for "turn right"; bench/hearing.py reports both)."""
    grammar_alone: float = Field(default=0.5, ge=0.0, le=1.0)
    """Factor on the grammar's confidence when only the grammar heard a phrase: at the default,
    below ``policy.min_confidence``, so it is answered with ``policy.sorry``."""
    spot_urgent: bool = False
    """Act on safety words ("stop", and the phrases of any tool marked ``urgent``) the moment the
    user pauses after them: a ``stop`` event halts everything without waiting for the end of the
    turn (``turns.hangover_ms``). Heard by the grammar alone, so other speech heard as "stop" halts
    too (halting is the safe mistake; nothing latches until the turn confirms it)."""
    spot_confidence: float = Field(default=0.9, ge=0.0, le=1.0)
    """The grammar's least confidence in a safety word for it to be acted on early."""
    wake_word: str | None = None
    """A name (1-3 words, letters only, e.g. ``robot``) a turn must start with to be acted on
    ("robot, turn left"); the safety words ("stop") are acted on without it. None: every turn is
    acted on. The offline grammar accepts each command with the name before it, or without."""
    wake_window_s: float = Field(default=8.0, ge=0.0, le=120.0)
    """Media seconds after the agent's answer to a named turn in which the next turn needs no name."""

    @field_validator("wake_word")
    @classmethod
    def _a_name(cls, value: str | None) -> str | None:
        return None if value is None else check_name(value)
