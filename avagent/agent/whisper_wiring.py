"""The whisper recogniser made from its config section (``asr.whisper``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from avagent.agent.whisper_config import WhisperConfig
from avagent.core.errors import ConfigError
from avagent.perception.asr.whisper_model import WhisperModelError

if TYPE_CHECKING:
    from avagent.perception.asr.whisper import WhisperRecognizer


def whisper_recognizer(
    w: WhisperConfig,
    *,
    prompt: str = "",
    commands: list[dict[str, Any]] | None = None,
    needed_by: str = "",
) -> WhisperRecognizer:
    """The recogniser ``w`` describes, reading every utterance as following ``prompt`` (and scoring
    ``commands``, see ``WhisperRecognizer``); a model that cannot be used is a config error naming
    it (after ``needed_by``: the setting that asked for whisper, when that is not ``asr.backend``)."""
    from avagent.perception.asr.whisper import WhisperRecognizer

    try:
        return WhisperRecognizer(
            w.model,
            device=w.device,
            compute_type=w.compute_type,
            language=w.language,
            beam_size=w.beam_size,
            threads=w.threads,
            processes=w.processes,
            prompt=prompt,
            commands=commands,
        )
    except WhisperModelError as exc:
        prefix = f"{needed_by}: " if needed_by else ""
        raise ConfigError(f"{prefix}asr.whisper{'.model' if w.model is not None else ''}: {exc}") from None
