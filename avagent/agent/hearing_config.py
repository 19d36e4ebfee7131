"""The ``hearing`` config section: how far offline commands are trusted."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from avagent.agent.settings import Section
from avagent.policy.wake import check_name

ACCEPT_MARGIN = 0.375
"""``hearing.accept_margin``'s default, chosen with ``AGREED_MARGIN`` on commands said in voices the
benchmark does not use (sim/command_matrix.py) and on the tuning sentences (``OTHER_DEV``): of the
pairs tried (0.25-1.0 by 1.0-3.0), the one that hears the most commands while taking at most 0.5 %
of the sentences for one. bench/hearing.py sweeps both."""
AGREED_MARGIN = 2.0
"""``hearing.agreed_margin``'s default."""
HALT_MARGIN = 2.75
"""``hearing.halt_margin``'s default: the least of those tried (0.5-3.5) at which every "stop" in
the four tuning voices halts (48 of 48; at 2.5, 47), which halts on 3.0 % of the tuning sentences."""


class HearingConfig(Section):
    check_commands: Literal["whisper"] | None = None
    """``whisper``: every turn is recognised by whisper (the ``whisper`` extra, set up by
    ``asr.whisper``) scoring each command phrase against the audio next to its own transcript
    (``perception/asr/whisper_scoring.py``): commands are heard across voices, accents and noise,
    and other speech moves nothing. None: the grammar recogniser alone (faster, less sure)."""
    accept_margin: float = Field(default=ACCEPT_MARGIN, ge=0.0, le=20.0)
    """How much less likely per token (natural log) than whisper's own transcript a command may be
    and still be taken as said: larger hears more commands in noise, and takes more other speech
    for one."""
    agreed_margin: float = Field(default=AGREED_MARGIN, ge=0.0, le=20.0)
    """The same, for a command that whisper, told to expect the commands, writes whole and that
    the grammar recogniser hears too: two more ways of hearing agree, so it may be less likely.
    0 or anything below ``accept_margin``: no second way in."""
    halt_margin: float | None = Field(default=HALT_MARGIN, ge=0.0, le=20.0)
    """With ``check_commands``: a turn in which a safety phrase ("stop") is at most this much less
    likely than whisper's own transcript halts everything (a ``stop`` event, which does not latch)
    even when it is not taken for that phrase: a "stop" lost in noise or an accent still stops
    the robot, and other speech heard as "stop" now and then only halts it. None: no such halt."""
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
