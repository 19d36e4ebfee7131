"""The ``asr.whisper`` config section: faster-whisper, offline."""

from __future__ import annotations

from pydantic import Field

from avagent.agent.settings import Section


class WhisperConfig(Section):
    model: str | None = None
    """A CTranslate2 Whisper model folder; None for the packaged ``tiny.en`` (the ``whisper`` extra).
    Nothing is ever downloaded."""
    device: str = "cpu"
    compute_type: str = "int8"
    language: str | None = "en"
    beam_size: int = Field(default=1, ge=1, le=8)
    threads: int = Field(default=2, ge=1, le=64)
    """Threads each worker process decodes on."""
    processes: int = Field(default=1, ge=1, le=8)
    """Worker processes (each holds its own copy of the model: about 150 MB for tiny.en)."""
