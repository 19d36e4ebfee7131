"""Free speech recognition with faster-whisper (the ``whisper`` extra).

The model is a faster-whisper name (downloaded once on a user's machine) or a local model folder.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import soxr

from avagent.perception.asr.base import Recognition, RecognizerError

SAMPLE_RATE = 16000


class WhisperRecognizer:
    """Transcribes utterances with a faster-whisper model on a worker thread."""

    name = "whisper"

    def __init__(
        self,
        model: str = "base.en",
        *,
        device: str = "cpu",
        compute_type: str = "int8",
        language: str | None = "en",
        beam_size: int = 1,
    ) -> None:
        try:
            from faster_whisper import WhisperModel
        except ImportError:
            raise RecognizerError(
                "the whisper backend needs faster-whisper: pip install 'avagent[whisper]'"
            ) from None
        try:
            self._model: Any = WhisperModel(model, device=device, compute_type=compute_type)
        except Exception as exc:
            raise RecognizerError(f"cannot load the whisper model {model!r}: {exc}") from None
        self._language = language
        self._beam_size = beam_size
        self._lock = asyncio.Lock()

    async def transcribe(self, audio: np.ndarray, sample_rate: int) -> Recognition:
        samples = audio.astype(np.float32, copy=False)
        if sample_rate != SAMPLE_RATE:
            samples = np.asarray(soxr.resample(samples, sample_rate, SAMPLE_RATE), dtype=np.float32)
        async with self._lock:
            return await asyncio.to_thread(self._transcribe, samples)

    def _transcribe(self, samples: np.ndarray) -> Recognition:
        segments, _info = self._model.transcribe(samples, language=self._language, beam_size=self._beam_size)
        texts = [segment.text.strip() for segment in segments]
        return Recognition(" ".join(t for t in texts if t))

    async def aclose(self) -> None:
        return None
