"""The agent's configuration: pydantic models, loaded from YAML, overridden from the command line.

Every field has a default, so an empty file (or none) is the laptop set-up of
``configs/laptop.yaml``. Unknown keys are errors: a misspelt setting must not be silently ignored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from avagent.agent.errors import ConfigError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AudioInputConfig(_Section):
    device: str | int | None = None
    """Input device by name (or part of it) or index; None for the system default."""
    sample_rate: int | None = Field(default=None, gt=0)
    """Device rate; None for the device's own. Audio is resampled to 16 kHz inside."""
    channels: int = Field(default=1, ge=1, le=32)
    block_ms: float = Field(default=32.0, gt=1.0, le=200.0)


class AudioOutputConfig(_Section):
    device: str | int | None = None
    sample_rate: int | None = Field(default=None, gt=0)
    """Playback rate; None for the device's own (or 22,050 Hz when writing a file)."""
    block_ms: float = Field(default=20.0, gt=1.0, le=200.0)


class AudioConfig(_Section):
    input: AudioInputConfig = AudioInputConfig()
    output: AudioOutputConfig = AudioOutputConfig()


class VadConfig(_Section):
    backend: Literal["onnx", "jit"] = "onnx"
    threshold: float = Field(default=0.5, gt=0.0, lt=1.0)
    neg_threshold: float = Field(default=0.35, gt=0.0, lt=1.0)
    min_speech_ms: float = Field(default=64.0, ge=0.0)
    min_silence_ms: float = Field(default=100.0, ge=0.0)
    speech_pad_ms: float = Field(default=30.0, ge=0.0)

    @model_validator(mode="after")
    def _thresholds_ordered(self) -> VadConfig:
        if self.neg_threshold > self.threshold:
            raise ValueError("neg_threshold must not be above threshold")
        return self


class TurnsConfig(_Section):
    hangover_ms: float = Field(default=300.0, ge=0.0, le=5000.0)
    """Silence after speech that ends the user's turn."""
    max_utterance_s: float = Field(default=15.0, gt=0.5, le=120.0)
    barge_in: bool = True
    min_barge_in_ms: float = Field(default=300.0, ge=0.0)
    """Speech over the agent shorter than this (a backchannel, a cough) does not interrupt it."""
    pause_on_onset: bool = True
    """Hold the agent's voice at the first sound of the user's speech, until it is clear."""


class WhisperConfig(_Section):
    model: str = "base.en"
    """A faster-whisper model name (downloaded on first use) or a local model directory."""
    device: str = "cpu"
    compute_type: str = "int8"
    language: str | None = "en"
    beam_size: int = Field(default=1, ge=1)


class OpenAIAsrConfig(_Section):
    model: str = "whisper-1"
    base_url: str | None = None
    language: str | None = None
    timeout_s: float = Field(default=30.0, gt=0.0)


class AsrConfig(_Section):
    backend: Literal["pocketsphinx", "whisper", "openai"] = "pocketsphinx"
    whisper: WhisperConfig = WhisperConfig()
    openai: OpenAIAsrConfig = OpenAIAsrConfig()


class PiperConfig(_Section):
    model: str | None = None
    """Path of a piper voice (``.onnx`` with its ``.onnx.json`` beside it)."""


class OpenAITtsConfig(_Section):
    model: str = "tts-1"
    voice: str = "alloy"
    base_url: str | None = None
    timeout_s: float = Field(default=30.0, gt=0.0)


class TtsConfig(_Section):
    backend: Literal["espeak", "piper", "openai"] = "espeak"
    voice: str = "en-us"
    """espeak-ng voice name."""
    rate_wpm: int = Field(default=160, ge=80, le=450)
    piper: PiperConfig = PiperConfig()
    openai: OpenAITtsConfig = OpenAITtsConfig()


class PolicyConfig(_Section):
    model: str | None = None
    """A chat model (``openai:gpt-4o-mini``, ``ollama:llama3.1``...); None for the offline commands."""
    base_url: str | None = None
    sorry: str = "Sorry, I did not understand."
    min_confidence: float = Field(default=0.8, ge=0.0, le=1.0)
    """Transcripts the recogniser is less sure of than this are answered with ``sorry``."""


class ToolsConfig(_Section):
    builtin: list[Literal["turn", "look_at", "stop", "what_time", "say"]] = [
        "turn",
        "look_at",
        "stop",
        "what_time",
        "say",
    ]


class AgentConfig(_Section):
    """Everything an agent needs to know; see configs/laptop.yaml for a commented example."""

    base_url: str | None = None
    """An OpenAI-compatible server for every backend that speaks that protocol, unless overridden."""
    api_key_env: str = "OPENAI_API_KEY"
    audio: AudioConfig = AudioConfig()
    vad: VadConfig = VadConfig()
    turns: TurnsConfig = TurnsConfig()
    asr: AsrConfig = AsrConfig()
    tts: TtsConfig = TtsConfig()
    policy: PolicyConfig = PolicyConfig()
    tools: ToolsConfig = ToolsConfig()


def load_config(path: str | Path | None = None) -> AgentConfig:
    """The configuration in ``path`` (YAML), or the defaults when ``path`` is None."""
    if path is None:
        return AgentConfig()
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{p}: no such config file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: cannot read: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" (line {where.line + 1})" if where is not None else ""
        raise ConfigError(f"{p}: not valid YAML{at}: {getattr(exc, 'problem', exc)}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: the top level must be a mapping of settings, not {type(data).__name__}")
    return parse_config(data, source=str(p))


def parse_config(data: dict[str, Any], *, source: str = "config") -> AgentConfig:
    try:
        return AgentConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {describe_validation_error(exc)}") from None


def describe_validation_error(exc: ValidationError) -> str:
    """One line naming each bad field and why."""
    parts = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "(top level)"
        message = err["msg"]
        if err["type"] == "extra_forbidden":
            message = "unknown setting"
        elif "input" in err and err["type"] not in ("missing",):
            message += f" (got {err['input']!r})"
        parts.append(f"{field}: {message}")
    return "; ".join(parts)


def with_overrides(config: AgentConfig, **changes: Any) -> AgentConfig:
    """A copy of ``config`` with dotted settings replaced, e.g. ``{"asr.backend": "openai"}``;
    None values are left out. The result is validated like a file."""
    data = config.model_dump()
    for dotted, value in changes.items():
        if value is None:
            continue
        node = data
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node[key]
        node[leaf] = value
    return parse_config(data, source="command line")
