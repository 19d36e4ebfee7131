"""The base of every section of the configuration: unknown keys are errors (a misspelt setting must
not be silently ignored), and a loaded configuration does not change."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
