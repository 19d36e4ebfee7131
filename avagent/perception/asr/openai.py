"""Recognition through an OpenAI-compatible ``/v1/audio/transcriptions`` endpoint."""

from __future__ import annotations

import numpy as np

from avagent.io.openai_audio import OpenAIAudioClient, OpenAIAudioError
from avagent.perception.asr.base import Recognition, RecognizerError


class OpenAIRecognizer:
    name = "openai"

    def __init__(
        self,
        base_url: str,
        *,
        model: str = "whisper-1",
        language: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        timeout_s: float = 30.0,
    ) -> None:
        self._client = OpenAIAudioClient(base_url, api_key_env=api_key_env, timeout_s=timeout_s)
        self._model = model
        self._language = language

    async def transcribe(self, audio: np.ndarray, sample_rate: int) -> Recognition:
        try:
            text = await self._client.transcribe(
                audio, sample_rate, model=self._model, language=self._language
            )
        except OpenAIAudioError as exc:
            raise RecognizerError(str(exc)) from None
        return Recognition(text.strip())

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        await self._client.aclose()
