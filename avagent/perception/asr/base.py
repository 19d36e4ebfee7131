"""What every speech recogniser offers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


class RecognizerError(RuntimeError):
    """A recogniser could not start or could not transcribe."""


@dataclass(frozen=True, slots=True)
class Recognition:
    """What was said; ``text`` is empty when nothing was recognised."""

    text: str
    confidence: float | None = None


class Recognizer(Protocol):
    """Transcribes one finished utterance of mono float32 audio. ``start`` loads what it needs
    (models, worker processes) and ``stop`` lets it go; both are safe to call twice."""

    name: str

    async def start(self) -> None: ...

    async def transcribe(self, audio: np.ndarray, sample_rate: int) -> Recognition: ...

    async def stop(self) -> None: ...
