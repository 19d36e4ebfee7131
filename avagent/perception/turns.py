"""Turn-taking: when the user has finished speaking, and when they cut in on the agent.

``TurnDetector`` is a pure state machine fed with speech segment boundaries and the passing of
media time. A turn ends when no speech has been heard for ``hangover_ms`` after the last speech,
or when it reaches ``max_utterance_s``.

Speech that starts while the agent is talking first *pauses* the agent (at once, at the onset);
once the model has heard ``min_barge_in_ms`` of it it is a barge-in and the agent's answer is cut. Speech that
stops before that (a cough, an "mm-hm") resumes the agent and is not taken as a turn, so the agent
never abandons an answer for a backchannel.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TurnSettings:
    """When the user's turn ends and when they cut in (``turns:`` in the config)."""

    hangover_ms: float = 300.0
    """Silence after speech that ends the user's turn."""
    max_utterance_s: float = 15.0
    barge_in: bool = True
    min_barge_in_ms: float = 300.0
    """Speech over the agent shorter than this (a backchannel, a cough) does not interrupt it."""
    pause_on_onset: bool = True


@dataclass(frozen=True, slots=True)
class TurnEnd:
    """A finished turn: speech from ``start`` to ``end``; ``t`` is when the turn ended."""

    turn: int
    start: float
    end: float
    t: float
    forced: bool = False


@dataclass(frozen=True, slots=True)
class Interruption:
    """What the agent's voice must do now: ``pause``, ``resume`` or ``barge_in`` (cut)."""

    action: str
    t: float


class TurnDetector:
    """Endpointing and barge-in decisions from speech segments and the agent's state."""

    def __init__(self, settings: TurnSettings | None = None, *, step_s: float = 0.032) -> None:
        """``step_s``: how often the detector is asked (one VAD chunk). The hangover ends at the
        nearest step, so that on average the silence waited is ``hangover_ms``, not half a step more."""
        self.settings = s = settings or TurnSettings()
        self._turn_end_silence_s = s.hangover_ms / 1000.0 - step_s / 2
        self._min_barge_in_s = s.min_barge_in_ms / 1000.0 - 1e-9
        self._turns = 0
        self._turn_start: float | None = None
        self._speech_start = 0.0
        self._speech_onset = 0.0
        self._last_end = 0.0
        self._in_speech = False
        self._over_agent = False
        """The current speech began while the agent was talking and is not yet a barge-in."""
        self._paused = False

    @property
    def in_turn(self) -> bool:
        return self._turn_start is not None

    @property
    def turn_start(self) -> float | None:
        """Where the turn in progress began (None between turns)."""
        return self._turn_start

    @property
    def last_speech_end(self) -> float:
        """Where the last speech segment ended."""
        return self._last_end

    @property
    def turns(self) -> int:
        return self._turns

    def speech_started(
        self, start: float, t: float, agent_speaking: bool, onset: float | None = None
    ) -> Interruption | None:
        """Speech began at ``start`` (padded; the model heard it from ``onset``), known at ``t``."""
        self._in_speech = True
        self._speech_start = start
        self._speech_onset = start if onset is None else onset
        if self._turn_start is None:
            self._turn_start = start
        if agent_speaking and self.settings.barge_in:
            self._over_agent = True
            if self.settings.pause_on_onset:
                self._paused = True
                return Interruption("pause", t)
        return None

    def speech_ended(self, end: float, t: float) -> Interruption | None:
        self._in_speech = False
        self._last_end = end
        if self._over_agent:
            # Too short to be a barge-in: a backchannel or a noise. The agent carries on.
            self._over_agent = False
            if self._turn_start == self._speech_start:
                self._turn_start = None
            if self._paused:
                self._paused = False
                return Interruption("resume", t)
        return None

    def tick(self, t: float, last_voiced: float) -> tuple[TurnEnd | None, Interruption | None]:
        """Media time has reached ``t``; ``last_voiced`` is where the last speech heard ended."""
        s = self.settings
        interruption = None
        voiced = last_voiced - self._speech_onset
        if self._over_agent and self._in_speech and voiced >= self._min_barge_in_s:
            self._over_agent = False
            self._paused = False
            interruption = Interruption("barge_in", t)
        if self._turn_start is None or self._over_agent:
            return None, interruption
        if not self._in_speech and t - last_voiced >= self._turn_end_silence_s:
            return self._end_turn(self._turn_start, self._last_end, t, forced=False), interruption
        if t - self._turn_start >= s.max_utterance_s:
            end = self._end_turn(self._turn_start, t, t, forced=True)
            if self._in_speech:
                # The user is still talking: what follows is the next turn.
                self._turn_start = t
            return end, interruption
        return None, interruption

    def _end_turn(self, start: float, end: float, t: float, *, forced: bool) -> TurnEnd:
        self._turns += 1
        self._turn_start = None
        return TurnEnd(turn=self._turns, start=start, end=end, t=t, forced=forced)
