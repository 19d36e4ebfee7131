"""The ``avllm:`` section of the configuration: what a multimodal model is shown of the camera and
the microphone, how requests are bounded, and the model that answers ``describe_scene`` and
``listen`` (docs/avllm.md); and the kinds of ``policy.model_input`` / ``policy.model_output``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, model_validator

from avagent.agent.settings import Section

InputKind = Literal["text", "image", "audio"]
OutputKind = Literal["text", "audio"]


def _kinds(value: Any) -> Any:
    """``"text,image"`` (the command line's form) as a list; a list as it is."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def _input_ok(kinds: tuple[str, ...]) -> tuple[str, ...]:
    if not kinds:
        raise ValueError("give at least one of text, image, audio")
    if "text" not in kinds and "audio" not in kinds:
        raise ValueError("the model needs the user's words: text, audio or both")
    return tuple(dict.fromkeys(kinds))


def _output_ok(kinds: tuple[str, ...]) -> tuple[str, ...]:
    if "text" not in kinds:
        raise ValueError("a model's answer always has text (text or text,audio)")
    return tuple(dict.fromkeys(kinds))


ModelInput = Annotated[tuple[InputKind, ...], BeforeValidator(_kinds)]
ModelOutput = Annotated[tuple[OutputKind, ...], BeforeValidator(_kinds)]


class FramesConfig(Section):
    """How camera (or call) frames are sampled and encoded for a model."""

    speaking_fps: float = Field(default=1.0, gt=0.0, le=30.0)
    """Frames a second while the user speaks."""
    idle_fps: float = Field(default=0.3, gt=0.0, le=30.0)
    """Frames a second while nobody speaks."""
    max_side: int = Field(default=1024, ge=32, le=4096)
    """Frames are scaled down to fit inside a square this many pixels wide."""
    jpeg_quality: int = Field(default=75, ge=10, le=100)
    same_frame_diff: float = Field(default=1.0, ge=0.0, le=255.0)
    """A frame this close to the last one kept (mean grey levels of a thumbnail) is not sent again."""
    keep_s: float = Field(default=60.0, gt=0.0, le=3600.0)
    max_kept: int = Field(default=32, ge=1, le=1024)


class RequestsConfig(Section):
    """What one model request may carry."""

    max_images: int = Field(default=4, ge=0, le=64)
    """Images per request (the newest kept; identical ones sent once)."""
    max_bytes: int = Field(default=8_000_000, ge=1024, le=256_000_000)
    """Bytes of images and audio per request, as sent (base64)."""
    max_audio_s: float = Field(default=30.0, gt=0.0, le=600.0)
    """An utterance longer than this is cut to its last seconds."""
    uuids: bool = False
    """Give each image part a content uuid (vLLM caches by it; OpenAI-compatible servers only)."""


class SoundsConfig(Section):
    """What the agent remembers of what it heard."""

    recent_s: float = Field(default=8.0, gt=0.0, le=120.0)
    history_s: float = Field(default=60.0, gt=0.0, le=3600.0)
    loud_db: float = Field(default=15.0, gt=0.0, le=120.0)
    turns_kept: int = Field(default=4, ge=1, le=64)


class AvllmConfig(Section):
    """Audio-visual understanding (docs/avllm.md)."""

    tools: bool | None = None
    """Offer ``describe_scene`` and ``listen`` (their phrases join the offline grammar). None:
    when the agent can see (a camera, or faces on calls) or a model takes images or sound."""
    model: str | None = None
    """A vision or omni model for ``describe_scene`` / ``listen``: a model name served at
    ``base_url`` (backend ``openai``), or a model folder on disk (backend ``transformers``).
    None: they answer from the agent's own senses."""
    backend: Literal["openai", "transformers"] = "openai"
    base_url: str | None = None
    """Its OpenAI-compatible server; None: the top-level ``base_url``."""
    api_key_env: str | None = None
    model_input: ModelInput = ("text", "image")
    """What that model takes: ``text,image`` or ``text,image,audio``."""
    device: str = "cpu"
    """Where a transformers model runs: ``cpu``, ``cuda`` or ``cuda:N``."""
    max_new_tokens: int = Field(default=128, ge=1, le=4096)
    """The most a transformers model writes in one answer."""
    timeout_s: float = Field(default=20.0, gt=0.0, le=600.0)
    """The longest one description may take; then the agent's own senses answer."""
    max_words: int = Field(default=80, ge=1, le=2000)
    listen_s: float = Field(default=5.0, gt=0.0, le=120.0)
    """Seconds of the latest sound given to that model, when it takes audio."""
    voice: str = "alloy"
    """The voice an omni model answers in (``policy.model_output: text,audio``)."""
    frames: FramesConfig = FramesConfig()
    requests: RequestsConfig = RequestsConfig()
    sounds: SoundsConfig = SoundsConfig()

    @model_validator(mode="after")
    def _checked(self) -> AvllmConfig:
        _input_ok(self.model_input)
        if self.backend == "transformers" and not self.model:
            raise ValueError("the transformers backend needs model: a model folder on disk")
        return self


def check_model_io(model_input: tuple[str, ...], model_output: tuple[str, ...]) -> None:
    """``ValueError`` when ``policy.model_input`` / ``policy.model_output`` cannot work."""
    _input_ok(model_input)
    _output_ok(model_output)
