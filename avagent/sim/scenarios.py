"""Conversation tests: scenarios of user turns, each with what the agent is expected to do next.

A scenario is a YAML file (or the same data in Python)::

    name: turning
    config: ../configs/laptop.yaml        # optional, relative to this file
    snr_db: 30                            # noise under the spoken turns (null: none)
    turns:
      - user: turn left                   # spoken text, synthesised offline
        expect:
          - tool_call: {name: turn, args: {direction: left}}
          - say: {contains: left, within_ms: 2000}
      - user: {wav: recordings/window.wav}   # or {text: ..., voice: en-gb, snr_db: 10}, {recording: x.mcap}
        expect:
          - no_tool_call: true

Expectations of a turn are met in order by what follows the user's words, until the next turn:
``tool_call`` (``args`` are a subset of the call's), ``no_tool_call`` (``true``, or a tool's
name), ``say`` and ``transcript`` (``contains``, case-insensitive, or ``matches``, a regular
expression); ``within_ms`` bounds the delay from the end of the user's speech.

Everything about a scenario file is bounded (size, turns, text, audio, patterns): a bad one is
refused with one line (``ScenarioError``). The user's turns become audio here (``prepare_audio``);
running the agent on them is the command line's (``avagent test``, ``cli/scenario_run.py``), and
checking what it did is ``sim/scenario_checks.py``'s.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soxr
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from avagent.core.bounded_yaml import load_yaml
from avagent.core.errors import InputError
from avagent.core.files import read_bounded
from avagent.core.messages import SAMPLE_RATE, to_float32
from avagent.core.text import one_line
from avagent.io.recording.contents import scan
from avagent.io.recording.format import AUDIO_IN, decode_audio
from avagent.io.recording.reader import RecordingReader
from avagent.io.wav import inspect_wav, read_wav
from avagent.sim.scene import NoiseKind, noise, speak_all

MAX_SCENARIO_BYTES = 256 << 10
MAX_TURNS = 100
MAX_EXPECTATIONS = 32
MAX_TEXT_CHARS = 500
MAX_PATTERN_CHARS = 200
MAX_TURN_S = 120.0
"""The longest audio of one user turn (a WAV file or a recording)."""
LEAD_S = 0.5
"""Silence before each user turn's words."""


class ScenarioError(InputError):
    """A scenario that cannot be run: the message names the file and what is wrong, on one line."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Spoken(_Strict):
    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)
    voice: str | None = Field(default=None, max_length=40)
    rate_wpm: int | None = Field(default=None, ge=80, le=450)
    snr_db: float | None = Field(default=None, ge=-10.0, le=80.0)


class WavFile(_Strict):
    wav: str = Field(min_length=1, max_length=4096)


class Recorded(_Strict):
    recording: str = Field(min_length=1, max_length=4096)
    """A session recorded with ``avagent run --record``: its input audio is the user's turn."""


class TextMatch(_Strict):
    contains: str | None = Field(default=None, min_length=1, max_length=MAX_TEXT_CHARS)
    matches: str | None = Field(default=None, min_length=1, max_length=MAX_PATTERN_CHARS)
    within_ms: float | None = Field(default=None, gt=0.0)

    @field_validator("matches")
    @classmethod
    def _compiles(cls, pattern: str | None) -> str | None:
        if pattern is not None:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"not a regular expression ({exc})") from None
        return pattern

    @model_validator(mode="after")
    def _one(self) -> TextMatch:
        if (self.contains is None) == (self.matches is None):
            raise ValueError("give contains or matches")
        return self

    def describe(self) -> str:
        return f"contains {self.contains!r}" if self.contains is not None else f"matches /{self.matches}/"

    def fits(self, text: str) -> bool:
        if self.contains is not None:
            return self.contains.casefold() in text.casefold()
        return self.matches is not None and re.search(self.matches, text) is not None


class ToolCallMatch(_Strict):
    name: str = Field(min_length=1, max_length=128)
    args: dict[str, Any] = Field(default_factory=dict)
    within_ms: float | None = Field(default=None, gt=0.0)


class Expectation(_Strict):
    """One thing expected of the agent; exactly one kind is given."""

    tool_call: ToolCallMatch | None = None
    no_tool_call: bool | str | None = None
    say: TextMatch | None = None
    transcript: TextMatch | None = None
    within_ms: float | None = Field(default=None, gt=0.0)

    @field_validator("say", "transcript", mode="before")
    @classmethod
    def _plain_text(cls, value: Any) -> Any:
        return {"contains": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_kind(self) -> Expectation:
        given = [
            k for k in ("tool_call", "no_tool_call", "say", "transcript") if getattr(self, k) is not None
        ]
        if len(given) != 1:
            raise ValueError("give one of tool_call, no_tool_call, say, transcript")
        if self.no_tool_call is False:
            raise ValueError("no_tool_call is true or a tool's name")
        if self.within_ms is not None and self.no_tool_call is not None:
            raise ValueError("within_ms does not apply to no_tool_call")
        return self

    @property
    def kind(self) -> str:
        return next(
            k for k in ("tool_call", "no_tool_call", "say", "transcript") if getattr(self, k) is not None
        )

    @property
    def deadline_ms(self) -> float | None:
        inner = self.tool_call or self.say or self.transcript
        own = inner.within_ms if inner is not None else None
        return own if own is not None else self.within_ms

    def describe(self) -> str:
        if self.tool_call is not None:
            args = ", ".join(f"{k}={v!r}" for k, v in self.tool_call.args.items())
            text = f"tool_call {self.tool_call.name}({args})"
        elif self.no_tool_call is not None:
            text = "no tool call" if self.no_tool_call is True else f"no call of {self.no_tool_call}"
        elif self.say is not None:
            text = f"say {self.say.describe()}"
        else:
            assert self.transcript is not None
            text = f"transcript {self.transcript.describe()}"
        deadline = self.deadline_ms
        return text + (f" within {deadline:g} ms" if deadline is not None else "")


class Turn(_Strict):
    user: str | Spoken | WavFile | Recorded
    expect: list[Expectation] = Field(default_factory=list, max_length=MAX_EXPECTATIONS)

    @field_validator("user")
    @classmethod
    def _short(cls, value: Any) -> Any:
        if isinstance(value, str) and not 0 < len(value) <= MAX_TEXT_CHARS:
            raise ValueError(f"spoken text is 1 to {MAX_TEXT_CHARS} characters")
        return value

    def describe(self) -> str:
        user = self.user
        if isinstance(user, str):
            return repr(user)
        if isinstance(user, Spoken):
            return repr(user.text)
        return f"the audio of {user.wav if isinstance(user, WavFile) else user.recording}"


class Scenario(_Strict):
    name: str | None = Field(default=None, max_length=200)
    config: str | None = Field(default=None, max_length=4096)
    voice: str = Field(default="en-us", max_length=40)
    rate_wpm: int = Field(default=150, ge=80, le=450)
    snr_db: float | None = Field(default=30.0, ge=-10.0, le=80.0)
    noise: NoiseKind = "pink"
    seed: int = 0
    turns: list[Turn] = Field(min_length=1, max_length=MAX_TURNS)


@dataclass(frozen=True)
class LoadedScenario:
    """A checked scenario, and where its relative paths start."""

    scenario: Scenario
    name: str
    source: str
    """Its file, or ``"scenario"`` for one given as data."""
    folder: Path

    def path(self, relative: str) -> Path:
        p = Path(relative).expanduser()
        return p if p.is_absolute() else self.folder / p


def parse_scenario(
    data: Any, *, source: str = "scenario", folder: Path | None = None, name: str = "scenario"
) -> LoadedScenario:
    """``data`` (a scenario's YAML as Python values) checked; ``ScenarioError`` with one line."""
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}: a scenario is a mapping with turns, not {type(data).__name__}")
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in error["loc"]) or "(top level)"
        message = "unknown setting" if error["type"] == "extra_forbidden" else error["msg"]
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ScenarioError(f"{source}: {one_line(where, 80)}: {one_line(message, 160)}{more}") from None
    loaded = LoadedScenario(scenario, scenario.name or name, source, folder or Path.cwd())
    for turn_no, turn in enumerate(scenario.turns, 1):
        user = turn.user
        if isinstance(user, WavFile | Recorded):
            target = loaded.path(user.wav if isinstance(user, WavFile) else user.recording)
            if not target.is_file():
                raise ScenarioError(f"{source}: turn {turn_no}: no such file {target}")
    if scenario.config is not None and not loaded.path(scenario.config).is_file():
        raise ScenarioError(f"{source}: config: no such file {loaded.path(scenario.config)}")
    return loaded


def load_scenario(path: str | Path) -> LoadedScenario:
    """The scenario file at ``path``, checked."""
    p = Path(path)
    try:
        raw = read_bounded(p, MAX_SCENARIO_BYTES, "scenario file")
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ScenarioError(f"{p}: not UTF-8 text (byte {exc.start})") from None
    except InputError as exc:
        raise ScenarioError(str(exc)) from None
    data = load_yaml(text, str(p), error=ScenarioError)
    return parse_scenario(data, source=str(p), folder=p.parent, name=p.stem)


@dataclass(frozen=True)
class TurnAudio:
    """One user turn as audio: mono float32 at 16 kHz, and where its words end (when known)."""

    audio: np.ndarray
    speech_end: float | None
    """Seconds from the start of ``audio`` at which the words end (None: not known)."""


def prepare_audio(loaded: LoadedScenario) -> list[TurnAudio]:
    """Every user turn of the scenario as audio: spoken text synthesised offline (in noise at the
    scenario's or the turn's SNR), WAV files and recordings read (channel 0) and resampled."""
    s = loaded.scenario
    lines = []
    for turn in s.turns:
        if isinstance(turn.user, str):
            lines.append((turn.user, s.voice, s.rate_wpm))
        elif isinstance(turn.user, Spoken):
            u = turn.user
            lines.append((u.text, u.voice or s.voice, u.rate_wpm or s.rate_wpm))
    # One synthesis for all the turns: the same scenario always sounds the same.
    voices = iter(speak_all(lines) if lines else [])
    rng = np.random.default_rng(s.seed)
    lead = np.zeros(round(LEAD_S * SAMPLE_RATE), dtype=np.float32)
    out = []
    for number, turn in enumerate(s.turns, 1):
        user = turn.user
        if isinstance(user, str | Spoken):
            words = next(voices)
            peak = float(np.max(np.abs(words))) if words.size else 0.0
            words = words * np.float32(0.3 / peak) if peak else words
            audio = np.concatenate([lead, words, lead[: SAMPLE_RATE // 10]]).astype(np.float32)
            snr = user.snr_db if isinstance(user, Spoken) and user.snr_db is not None else s.snr_db
            if snr is not None and words.size:
                gain = np.float32(np.sqrt(float(np.mean(words**2)) / 10 ** (snr / 10)))
                audio += noise(audio.shape[0], s.noise, rng, SAMPLE_RATE) * gain
            out.append(TurnAudio(np.clip(audio, -1.0, 1.0), LEAD_S + words.shape[0] / SAMPLE_RATE))
        else:
            audio = _file_audio(loaded, user, number)
            out.append(TurnAudio(np.concatenate([lead, audio]), None))
    return out


def _file_audio(loaded: LoadedScenario, user: WavFile | Recorded, number: int) -> np.ndarray:
    where = f"{loaded.source}: turn {number}"
    if isinstance(user, WavFile):
        path = loaded.path(user.wav)
        info = inspect_wav(path)
        if info.duration > MAX_TURN_S:
            raise ScenarioError(
                f"{where}: {path} lasts {info.duration:.0f} s; a turn lasts at most {MAX_TURN_S:g} s"
            )
        samples, rate = read_wav(path, channel=0)
    else:
        path = loaded.path(user.recording)
        contents = scan(path)
        if contents.audio is None:
            raise ScenarioError(f"{where}: {path} holds no input audio")
        if contents.duration > MAX_TURN_S:
            raise ScenarioError(
                f"{where}: {path} lasts {contents.duration:.0f} s; a turn lasts at most {MAX_TURN_S:g} s"
            )
        rate = contents.audio.sample_rate
        blocks = [
            decode_audio(m.data).samples[:, 0]
            for m in RecordingReader(path).messages()
            if m.topic == AUDIO_IN
        ][: contents.audio.blocks]
        samples = np.concatenate([to_float32(b) for b in blocks])
    if rate != SAMPLE_RATE:
        samples = soxr.resample(samples, rate, SAMPLE_RATE)
    return np.asarray(samples, dtype=np.float32)
