"""Speech in and out through any OpenAI-compatible server (``/v1/audio/transcriptions`` and
``/v1/audio/speech``): OpenAI itself, or a local server such as vLLM or speaches."""

from __future__ import annotations

import io
import json
import os

import aiohttp
import numpy as np
import soundfile as sf
import soxr

from avagent.core.messages import to_int16
from avagent.core.text import describe_error, redact

MAX_TRANSCRIPT_BYTES = 1 << 20
"""A transcription answer larger than this is refused."""
MAX_SPEECH_BYTES = 64 << 20
"""A synthesised sentence larger than this (about 10 minutes of 48 kHz 16-bit audio) is refused."""
MIN_RATE, MAX_RATE = 8000, 192000


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
        shown = redact(url)
        try:
            async with self._client().post(url, data=form) as response:
                if response.status != 200:
                    # Not the body: it may echo the request, a key, or the server's internals.
                    raise OpenAIAudioError(f"{shown} answered HTTP {response.status}")
                raw = await _read_at_most(response, MAX_TRANSCRIPT_BYTES, shown)
        except aiohttp.ClientError as exc:
            raise OpenAIAudioError(f"cannot reach {shown}: {describe_error(exc)}") from None
        try:
            body = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            raise OpenAIAudioError(f"{shown} did not answer with JSON") from None
        text = body.get("text") if isinstance(body, dict) else None
        if not isinstance(text, str):
            raise OpenAIAudioError(f"{shown} answered without a text field")
        return text

    async def speak(self, text: str, *, model: str, voice: str, sample_rate: int) -> np.ndarray:
        url = f"{self.base_url}/audio/speech"
        shown = redact(url)
        payload = {"model": model, "input": text, "voice": voice, "response_format": "wav"}
        try:
            async with self._client().post(url, json=payload) as response:
                if response.status != 200:
                    raise OpenAIAudioError(f"{shown} answered HTTP {response.status}")
                data = await _read_at_most(response, MAX_SPEECH_BYTES, shown)
        except aiohttp.ClientError as exc:
            raise OpenAIAudioError(f"cannot reach {shown}: {describe_error(exc)}") from None
        try:
            samples, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
        except Exception as exc:
            raise OpenAIAudioError(f"{shown} did not answer with WAV audio: {describe_error(exc)}") from None
        if not MIN_RATE <= rate <= MAX_RATE:
            raise OpenAIAudioError(f"{shown} answered with audio at {rate} Hz")
        mono: np.ndarray = samples.mean(axis=1).astype(np.float32)
        if rate != sample_rate:
            mono = np.asarray(soxr.resample(mono, rate, sample_rate), dtype=np.float32)
        return mono

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


async def _read_at_most(response: aiohttp.ClientResponse, limit: int, shown: str) -> bytes:
    """The response's body, refused once it grows past ``limit`` bytes (a server that sends without
    end must not fill the memory)."""
    if response.content_length is not None and response.content_length > limit:
        raise OpenAIAudioError(f"{shown} answered with {response.content_length} bytes (at most {limit})")
    body = bytearray()
    async for chunk in response.content.iter_chunked(1 << 16):
        body += chunk
        if len(body) > limit:
            raise OpenAIAudioError(f"{shown} answered with more than {limit} bytes")
    return bytes(body)
