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
    halt: str | None = None
    """A safety phrase ("stop") that may have been said, though ``text`` is not taken for it: the
    ``asr`` stage halts everything (a ``stop`` event, which does not latch) before it publishes
    the transcript."""


class Recognizer(Protocol):
    """Transcribes one finished utterance of mono float32 audio. ``start`` loads what it needs
    (models, worker processes) and ``stop`` lets it go; both are safe to call twice."""

    name: str

    async def start(self) -> None: ...

    async def transcribe(self, audio: np.ndarray, sample_rate: int) -> Recognition: ...

    async def stop(self) -> None: ...
