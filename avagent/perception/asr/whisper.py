"""Free speech recognition with faster-whisper (the ``whisper`` extra).

The model is a faster-whisper name (downloaded once on a user's machine) or a local model folder.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import numpy as np
import soxr

from avagent.core.messages import SAMPLE_RATE
from avagent.perception.asr.base import Recognition, RecognizerError


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
            import faster_whisper  # noqa: F401 - fail now, not at the first turn
        except ImportError:
            raise RecognizerError(
                "the whisper backend needs faster-whisper: pip install 'avagent[whisper]'"
            ) from None
        self._name = model
        self._device = device
        self._compute_type = compute_type
        self._model: Any = None
        self._language = language
        self._beam_size = beam_size
        self._lock = asyncio.Lock()
        self._loading = threading.Lock()

    async def start(self) -> None:
        """Load the model (on a worker thread); safe to call twice, and from several agents at once."""
        await asyncio.to_thread(self._load)

    def _load(self) -> None:
        from faster_whisper import WhisperModel

        with self._loading:
            if self._model is not None:
                return
            try:
                self._model = WhisperModel(self._name, device=self._device, compute_type=self._compute_type)
            except Exception as exc:
                raise RecognizerError(f"cannot load the whisper model {self._name!r}: {exc}") from None

    async def transcribe(self, audio: np.ndarray, sample_rate: int) -> Recognition:
        samples = audio.astype(np.float32, copy=False)
        if sample_rate != SAMPLE_RATE:
            samples = np.asarray(soxr.resample(samples, sample_rate, SAMPLE_RATE), dtype=np.float32)
        async with self._lock:
            if self._model is None:
                raise RecognizerError("the whisper recogniser is not started")
            return await asyncio.to_thread(self._transcribe, samples)

    def _transcribe(self, samples: np.ndarray) -> Recognition:
        segments, _info = self._model.transcribe(samples, language=self._language, beam_size=self._beam_size)
        texts = [segment.text.strip() for segment in segments]
        return Recognition(" ".join(t for t in texts if t))

    async def stop(self) -> None:
        self._model = None
