"""The ``record:`` config section: recording whole sessions as MCAP files (docs/testing-agents.md)."""

from __future__ import annotations

from pydantic import Field, model_validator

from avagent.agent.settings import Section


class RecordConfig(Section):
    """Record every session: its input audio and video, the agent's voice, every event, the tool
    calls, and the model's requests and answers, to replay it later (``avagent replay``)."""

    file: str | None = None
    """Record into this one file (``avagent run --record FILE.mcap`` sets it)."""
    folder: str | None = None
    """Record each session (each call of ``avagent serve``) into a new file in this folder."""
    video: bool = True
    """Record the camera's or the call's frames (JPEG, at the rate sight takes them)."""
    voice: bool = True
    """Record the agent's own voice."""
    model: bool = True
    """Record the policy model's requests and answers (a replay then needs no model)."""
    jpeg_quality: int = Field(default=75, ge=10, le=100)
    flush_s: float = Field(default=1.0, gt=0.0, le=10.0)
    """At most this much of a session is lost when the process crashes or is killed."""
    max_file_mb: float = Field(default=4096.0, gt=0.0, le=1_048_576.0)
    """A recording stops growing here (the session goes on, unrecorded, and that is said once)."""
    max_backlog_mb: float = Field(default=64.0, gt=0.0, le=4096.0)
    """What may wait to be written; beyond it the disk is not keeping up and messages are dropped."""

    @model_validator(mode="after")
    def _one_place(self) -> RecordConfig:
        if self.file is not None and self.folder is not None:
            raise ValueError("give file or folder, not both")
        return self

    @property
    def enabled(self) -> bool:
        return self.file is not None or self.folder is not None
