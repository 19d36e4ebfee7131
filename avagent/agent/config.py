"""The agent's configuration: pydantic models, loaded from YAML, overridden from the command line.

Every field has a default, so an empty file (or none) is the laptop set-up of
``configs/laptop.yaml``. Unknown keys are errors: a misspelt setting must not be silently ignored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import Field, ValidationError, model_validator

from avagent.agent.avllm_config import AvllmConfig, ModelInput, ModelOutput, check_model_io
from avagent.agent.config_errors import describe_validation_error
from avagent.agent.hearing_config import HearingConfig
from avagent.agent.record_config import RecordConfig
from avagent.agent.robot_config import ActuatorsConfig, MqttConfig
from avagent.agent.serve.config import ServeConfig
from avagent.agent.settings import Section
from avagent.agent.whisper_config import WhisperConfig
from avagent.core.bounded_yaml import load_yaml
from avagent.core.errors import ConfigError, InputError
from avagent.core.files import read_bounded


class AudioInputConfig(Section):
    device: str | int | None = None
    """Input device by name (or part of it) or index; None for the system default."""
    sample_rate: int | None = Field(default=None, gt=0)
    """Device rate; None for the device's own. Audio is resampled to 16 kHz inside."""
    channels: int = Field(default=1, ge=1, le=32)
    block_ms: float = Field(default=32.0, gt=1.0, le=200.0)


class AudioOutputConfig(Section):
    device: str | int | None = None
    sample_rate: int | None = Field(default=None, gt=0)
    """Playback rate; None for the device's own (or 22,050 Hz when writing a file)."""
    block_ms: float = Field(default=20.0, gt=1.0, le=200.0)


class AudioConfig(Section):
    input: AudioInputConfig = AudioInputConfig()
    output: AudioOutputConfig = AudioOutputConfig()
    echo_cancellation: bool = True
    """With a microphone and a speaker in the same room, take the agent's own voice out of what the
    microphone hears (WebRTC's AEC3), so that it never takes itself for the user cutting in."""


class VadConfig(Section):
    backend: Literal["onnx", "jit"] = "onnx"
    threshold: float = Field(default=0.5, gt=0.0, lt=1.0)
    neg_threshold: float = Field(default=0.35, gt=0.0, lt=1.0)
    min_speech_ms: float = Field(default=64.0, ge=0.0)
    min_silence_ms: float = Field(default=100.0, ge=0.0)
    start_pad_ms: float = Field(default=50.0, ge=0.0)
    """Put the start of speech this much earlier than the model first heard it."""
    end_pad_ms: float = Field(default=-30.0, ge=-100.0)
    """Move the end of speech by this much (negative: the model's probability trails the voice)."""

    @model_validator(mode="after")
    def _thresholds_ordered(self) -> VadConfig:
        if self.neg_threshold > self.threshold:
            raise ValueError("neg_threshold must not be above threshold")
        return self


class TurnConfig(Section):
    hangover_ms: float = Field(default=300.0, ge=0.0, le=5000.0)
    """Silence after speech that ends the user's turn."""
    max_utterance_s: float = Field(default=15.0, gt=0.5, le=120.0)
    barge_in: bool = True
    min_barge_in_ms: float = Field(default=300.0, ge=0.0)
    """Speech over the agent shorter than this (a backchannel, a cough) does not interrupt it."""
    pause_on_onset: bool = True
    """Hold the agent's voice at the first sound of the user's speech, until it is clear."""


class OpenAIAsrConfig(Section):
    model: str = "whisper-1"
    base_url: str | None = None
    language: str | None = None
    timeout_s: float = Field(default=30.0, gt=0.0)


class AsrConfig(Section):
    backend: Literal["pocketsphinx", "whisper", "openai"] | None = None
    """None: pocketsphinx for the offline commands, whisper (when installed) for a language model."""
    whisper: WhisperConfig = WhisperConfig()
    openai: OpenAIAsrConfig = OpenAIAsrConfig()


class PiperConfig(Section):
    model: str | None = None
    """Path of a piper voice (``.onnx`` with its ``.onnx.json`` beside it)."""


class OpenAITtsConfig(Section):
    model: str = "tts-1"
    voice: str = "alloy"
    base_url: str | None = None
    timeout_s: float = Field(default=30.0, gt=0.0)


class TtsConfig(Section):
    backend: Literal["espeak", "piper", "openai"] = "espeak"
    voice: str = "en-us"
    """espeak-ng voice name."""
    rate_wpm: int = Field(default=160, ge=80, le=450)
    piper: PiperConfig = PiperConfig()
    openai: OpenAITtsConfig = OpenAITtsConfig()
    max_queued_s: float = Field(default=60.0, gt=0.0, le=3600.0)
    """Synthesised speech that may wait for the speaker; synthesis waits while more is queued."""


class PolicyConfig(Section):
    model: str | None = None
    """A chat model (``openai:gpt-4o-mini``, ``ollama:llama3.1``...); None for the offline commands."""
    base_url: str | None = None
    sorry: str = "Sorry, I did not understand."
    min_confidence: float = Field(default=0.75, ge=0.0, le=1.0)
    """Transcripts the recogniser is less sure of than this are answered with ``sorry``."""
    api_key_env: str | None = None
    """Environment variable holding the model's API key (default: the top-level ``api_key_env`` for
    OpenAI-compatible servers, the provider's own variable otherwise)."""
    system_prompt: str | None = None
    """Replaces the built-in system prompt (which explains speaking, tools and the context block)."""
    persona: str = "You are Ava, a helpful robot assistant."
    """Who the agent is; put in front of the system prompt."""
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    max_tool_steps: int = Field(default=4, ge=0, le=32)
    """Model calls that may ask for tools in one turn; then the model must answer in words."""
    memory_turns: int = Field(default=20, ge=1)
    """Conversation memory: at most this many past turns..."""
    memory_tokens: int = Field(default=3000, ge=100)
    """...and at most about this many tokens of them (the oldest turns go first)."""
    stream_timeout_s: float = Field(default=20.0, gt=0.0)
    """Longest wait for the model's next chunk before the answer is given up."""
    max_retries: int = Field(default=1, ge=0, le=10)
    """Retries of a failed model request (an HTTP 500...) before the answer is given up."""
    probe_timeout_s: float = Field(default=5.0, gt=0.0)
    """How long the check that the model is reachable (at start) may take."""
    fallback_notice: str = "I cannot reach my language model, so I only understand simple commands."
    """Said once when the model is unreachable at start and the offline commands take over."""
    max_answer_words: int = Field(default=300, ge=1, le=100_000)
    """The most one answer says (about two minutes of speech); the model is then cut off."""
    max_answer_s: float = Field(default=30.0, gt=0.0, le=3600.0)
    """The longest the model may take over one answer, all its steps together, on the wall clock."""
    cut_notice: str = "I will stop there."
    """Said when an answer is cut at one of those limits."""
    max_tool_calls_per_step: int = Field(default=8, ge=1, le=256)
    """Tool calls one model step may ask for; the ones beyond are refused and the model is told."""
    model_input: ModelInput = ("text",)
    """What the model takes: ``text``, ``image`` (the turn's frames), ``audio`` (the utterance)."""
    model_output: ModelOutput = ("text",)
    """``text``, or ``text,audio``: an omni model answers in its own voice (docs/avllm.md)."""

    @model_validator(mode="after")
    def _model_io(self) -> PolicyConfig:
        check_model_io(self.model_input, self.model_output)
        return self


class RateLimitConfig(Section):
    calls: int = Field(ge=1)
    per_s: float = Field(gt=0.0)


class McpServerConfig(Section):
    """An MCP server whose tools the agent may use."""

    transport: Literal["stdio", "http", "streamable_http", "sse"] = "stdio"
    command: str | None = None
    """stdio: the program that runs the server."""
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] | None = None
    cwd: str | None = None
    url: str | None = None
    """http / sse: the server's endpoint (e.g. http://127.0.0.1:8000/mcp)."""
    headers: dict[str, str] = Field(default_factory=dict)
    permission: Literal["allow", "confirm", "deny"] = "confirm"
    """Permission of this server's tools unless ``tools.permissions`` names them."""
    timeout_s: float = Field(default=10.0, gt=0.0)
    prefix: bool = False
    """Name the tools ``SERVER_TOOL`` (avoids clashes between servers)."""

    @model_validator(mode="after")
    def _endpoint_given(self) -> McpServerConfig:
        if self.transport == "stdio" and not self.command:
            raise ValueError("a stdio MCP server needs a command")
        if self.transport != "stdio" and not self.url:
            raise ValueError(f"an {self.transport} MCP server needs a url")
        return self


BuiltinTool = Literal["turn", "look_at", "stop", "what_time", "say"]


class ToolsConfig(Section):
    builtin: list[BuiltinTool] = Field(default_factory=lambda: list(get_args(BuiltinTool)))
    permissions: dict[str, Literal["allow", "confirm", "deny"]] = Field(default_factory=dict)
    """Per tool: ``allow``, ``confirm`` (asked aloud, yes/no) or ``deny``; overrides the tool's own."""
    rate_limits: dict[str, RateLimitConfig] = Field(default_factory=dict)
    """Per tool (or ``"*"`` for each tool without its own): at most ``calls`` per ``per_s`` seconds."""
    timeout_s: float | None = Field(default=None, gt=0.0)
    """Timeout of every tool call, overriding each tool's own (None: the tool's own, 10 s by default)."""
    confirm_timeout_s: float = Field(default=10.0, gt=0.0)
    """How long to wait for a spoken yes or no; silence cancels."""
    sync_workers: int = Field(default=4, ge=1, le=256)
    """Threads for tools that are plain (blocking) functions, apart from the ones hearing and speech
    use; a call that finds them all held (by tools that never return) is refused."""
    mcp_servers: dict[str, McpServerConfig] = Field(default_factory=dict)


class DoaConfig(Section):
    """Sound direction (docs/spatial.md)."""

    min_confidence: float = Field(default=0.05, ge=0.0, le=1.0)
    """Speech whose direction is less clear than this (diffuse sound) gives none."""
    interim_ms: float = Field(default=500.0, ge=0.0)
    """While someone speaks, an interim direction this often; 0 for one direction per segment."""
    low_hz: float = Field(default=300.0, gt=0.0)
    high_hz: float = Field(default=4000.0, gt=0.0, le=8000.0)
    gate_deg: float = Field(default=20.0, gt=0.0, le=90.0)
    """Speech farther than this from every known talker's direction is a new talker (nearer, it
    joins a talker when within three standard deviations of its expected direction)."""

    @model_validator(mode="after")
    def _band_ordered(self) -> DoaConfig:
        if self.low_hz >= self.high_hz:
            raise ValueError("low_hz must be below high_hz")
        return self


class ArrayConfig(Section):
    """The microphone array: a preset, a YAML geometry file, or the positions themselves (channel i
    of the input is microphone i). None of them: no sound directions."""

    preset: Literal["respeaker4", "respeaker6", "pair"] | None = None
    geometry: str | None = None
    """A YAML file ``mics: [[x, y, z], ...]`` in metres."""
    mics: list[list[float]] | None = None
    doa: DoaConfig = DoaConfig()

    @model_validator(mode="after")
    def _one_geometry(self) -> ArrayConfig:
        if sum(x is not None for x in (self.preset, self.geometry, self.mics)) > 1:
            raise ValueError("give only one of preset, geometry and mics")
        return self

    @property
    def enabled(self) -> bool:
        return self.preset is not None or self.geometry is not None or self.mics is not None


class CameraConfig(Section):
    """A camera (device index or stream URL) or a video file; None: no sight."""

    source: int | str | None = None
    fps: float = Field(default=15.0, gt=0.0, le=120.0)
    """Frames per second handed to sight (a faster camera is sampled down)."""
    width: int | None = Field(default=None, gt=0)
    height: int | None = Field(default=None, gt=0)
    """Resolution asked of a camera device; None for its own."""
    hfov_deg: float = Field(default=60.0, gt=1.0, lt=179.0)
    """Horizontal field of view of the lens."""
    yaw_deg: float = Field(default=0.0, ge=-360.0, le=360.0)
    """Azimuth of the camera's axis in the microphone array's frame."""


class FaceConfig(Section):
    """Face detection and tracking on the camera's frames, and who of them is speaking."""

    model: str | None = None
    """A YuNet ONNX model file for ``cv2.FaceDetectorYN``; None: OpenCV's Haar frontal-face cascade."""
    min_face_px: int = Field(default=40, ge=8)
    detect_width: int = Field(default=640, ge=160)
    """Frames wider than this are scaled down before detection."""
    score_threshold: float = Field(default=0.7, ge=0.0, le=1.0)
    """YuNet only: the lowest face score kept."""
    max_missed: int = Field(default=5, ge=0)
    """A face track survives this many frames without a detection."""
    speaker_tolerance_deg: float = Field(default=15.0, gt=0.0, le=90.0)
    """A face this close to the sound's direction may be the speaker."""
    threads: int = Field(default=1, ge=1, le=64)
    """OpenCV worker threads (one keeps a core free for the audio path)."""
    on_calls: bool = False
    """Also find faces in callers' video (``avagent serve``): about 13 ms of CPU per frame per call."""


class HeadConfig(Section):
    """A pan-tilt head that turns toward the active speaker (simulated unless a driver is given)."""

    enabled: bool = False
    pan_min_deg: float = Field(default=-170.0, ge=-180.0, le=0.0)
    pan_max_deg: float = Field(default=170.0, ge=0.0, le=180.0)
    tilt_min_deg: float = Field(default=-30.0, ge=-90.0, le=0.0)
    tilt_max_deg: float = Field(default=30.0, ge=0.0, le=90.0)
    max_speed_dps: float = Field(default=120.0, gt=0.0, le=2000.0)
    hysteresis_deg: float = Field(default=10.0, ge=0.0, le=90.0)
    """A new direction this close to where the head is going does not move it."""
    min_confidence: float = Field(default=0.0, ge=0.0, le=1.0)
    """Sound directions less sure than this do not move the head."""


class AgentConfig(Section):
    """Everything an agent needs to know; see configs/laptop.yaml for a commented example."""

    base_url: str | None = None
    """An OpenAI-compatible server for every backend that speaks that protocol, unless overridden."""
    api_key_env: str = "OPENAI_API_KEY"
    audio: AudioConfig = AudioConfig()
    vad: VadConfig = VadConfig()
    turns: TurnConfig = TurnConfig()
    asr: AsrConfig = AsrConfig()
    hearing: HearingConfig = HearingConfig()
    tts: TtsConfig = TtsConfig()
    policy: PolicyConfig = PolicyConfig()
    tools: ToolsConfig = ToolsConfig()
    serve: ServeConfig = ServeConfig()
    array: ArrayConfig = ArrayConfig()
    camera: CameraConfig = CameraConfig()
    faces: FaceConfig = FaceConfig()
    head: HeadConfig = HeadConfig()
    actuators: ActuatorsConfig = ActuatorsConfig()
    mqtt: MqttConfig = MqttConfig()
    avllm: AvllmConfig = AvllmConfig()
    record: RecordConfig = RecordConfig()


MAX_CONFIG_BYTES = 1 << 20
"""The largest config file read (1 MiB); at most one byte more is read to tell. A config is a few KiB."""


def load_config(path: str | Path | None = None) -> AgentConfig:
    """The configuration in ``path`` (YAML), or the defaults when ``path`` is None. Only a regular
    file of at most ``MAX_CONFIG_BYTES`` is read, and its YAML is bounded (core/bounded_yaml.py)."""
    if path is None:
        return AgentConfig()
    p = Path(path)
    try:
        raw = read_bounded(p, MAX_CONFIG_BYTES, "config file")
    except InputError as exc:
        raise ConfigError(str(exc)) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p}: not UTF-8 text (byte {exc.start})") from None
    data = load_yaml(text, str(p), error=ConfigError)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: the top level must be a mapping of settings, not {type(data).__name__}")
    return parse_config(data, source=str(p))


def parse_config(data: dict[str, Any], *, source: str = "config") -> AgentConfig:
    """``data`` validated as a configuration; ``ConfigError`` with one bounded, secret-free line
    (``describe_validation_error``) otherwise."""
    try:
        return AgentConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {describe_validation_error(exc)}") from None


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
