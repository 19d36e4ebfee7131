"""Speech through an OpenAI-compatible ``/v1/audio/speech`` endpoint."""

from __future__ import annotations

import numpy as np

from avagent.io.openai_audio import OpenAIAudioClient, OpenAIAudioError
from avagent.io.tts.base import SynthesisError


class OpenAISynthesizer:
    name = "openai"
    sample_rate = 24000

    def __init__(
        self,
        base_url: str,
        *,
        model: str = "tts-1",
        voice: str = "alloy",
        api_key_env: str = "OPENAI_API_KEY",
        timeout_s: float = 30.0,
    ) -> None:
        self._client = OpenAIAudioClient(base_url, api_key_env=api_key_env, timeout_s=timeout_s)
        self._model = model
        self._voice = voice

    async def synthesize(self, text: str) -> np.ndarray:
        try:
            return await self._client.speak(
                text, model=self._model, voice=self._voice, sample_rate=self.sample_rate
            )
        except OpenAIAudioError as exc:
            raise SynthesisError(str(exc)) from None

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        await self._client.aclose()
