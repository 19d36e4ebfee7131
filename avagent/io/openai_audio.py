"""Speech in and out through any OpenAI-compatible server (``/v1/audio/transcriptions`` and
``/v1/audio/speech``): OpenAI itself, or a local server such as vLLM or speaches."""

from __future__ import annotations

import io
import os

import aiohttp
import numpy as np
import soundfile as sf
import soxr

from avagent.core.messages import to_int16


class OpenAIAudioError(RuntimeError):
    pass


class OpenAIAudioClient:
    """A small HTTP client for an OpenAI-compatible server's audio endpoints."""

    def __init__(
        self, base_url: str, *, api_key_env: str = "OPENAI_API_KEY", timeout_s: float = 30.0
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = os.environ.get(api_key_env)
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout, headers=self._headers())
        return self._session

    async def transcribe(
        self, audio: np.ndarray, sample_rate: int, *, model: str, language: str | None
    ) -> str:
        buffer = io.BytesIO()
        sf.write(buffer, to_int16(audio), sample_rate, format="WAV", subtype="PCM_16")
        form = aiohttp.FormData()
        form.add_field("file", buffer.getvalue(), filename="speech.wav", content_type="audio/wav")
        form.add_field("model", model)
        form.add_field("response_format", "json")
        if language:
            form.add_field("language", language)
        url = f"{self.base_url}/audio/transcriptions"
        try:
            async with self._client().post(url, data=form) as response:
                if response.status != 200:
                    raise OpenAIAudioError(
                        f"{url} answered HTTP {response.status}: {(await response.text())[:200]}"
                    )
                body = await response.json(content_type=None)
        except aiohttp.ClientError as exc:
            raise OpenAIAudioError(f"cannot reach {url}: {exc}") from None
        text = body.get("text") if isinstance(body, dict) else None
        if not isinstance(text, str):
            raise OpenAIAudioError(f"{url} answered without a text field")
        return text

    async def speak(self, text: str, *, model: str, voice: str, sample_rate: int) -> np.ndarray:
        url = f"{self.base_url}/audio/speech"
        payload = {"model": model, "input": text, "voice": voice, "response_format": "wav"}
        try:
            async with self._client().post(url, json=payload) as response:
                if response.status != 200:
                    raise OpenAIAudioError(
                        f"{url} answered HTTP {response.status}: {(await response.text())[:200]}"
                    )
                data = await response.read()
        except aiohttp.ClientError as exc:
            raise OpenAIAudioError(f"cannot reach {url}: {exc}") from None
        try:
            samples, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
        except Exception as exc:
            raise OpenAIAudioError(f"{url} did not answer with WAV audio: {exc}") from None
        mono: np.ndarray = samples.mean(axis=1).astype(np.float32)
        if rate != sample_rate:
            mono = np.asarray(soxr.resample(mono, rate, sample_rate), dtype=np.float32)
        return mono

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
