"""Spoken answers straight from an omni model (``policy.model_output: text,audio``).

The request is an ordinary chat completion with ``"modalities": ["text", "audio"]``; the answer's
audio (base64 WAV) comes back in ``message.audio.data``, in the first choice (OpenAI) or in a
second one (vLLM's omni serving). LangChain keeps only the first choice, so this client speaks
the OpenAI protocol itself, over aiohttp, non-streaming, with every part of the answer bounded:
its bytes, the audio's length and rate, and (through the policy) its time and words. The text
(or the audio's transcript) is what the memory keeps and what is shown; the audio is what is
heard, through the same playback as synthesised speech, so barge-in cuts it the same way.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
import numpy as np
import soundfile as sf
from langchain_core.messages import BaseMessage, HumanMessage
from langchain_core.messages.block_translators.openai import convert_to_openai_data_block
from langchain_core.messages.utils import convert_to_openai_messages

from avagent.core.text import describe_error, redact

MAX_SPOKEN_BYTES = 32 << 20
"""The largest answer read (JSON with base64 audio: about 10 minutes of 24 kHz speech)."""
MAX_SPOKEN_S = 180.0
"""The longest spoken answer played; a longer one is refused and the text synthesised instead."""
MIN_RATE, MAX_RATE = 8000, 192000


class VoiceFailed(RuntimeError):
    """The omni model's server did not give an answer. ``status`` is its HTTP status, if any;
    ``detail`` what it said (to recognise a refusal of some input: never shown)."""

    def __init__(self, message: str, status: int | None = None, detail: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail


@dataclass(frozen=True, slots=True)
class VoiceSettings:
    """Where the omni model is and how it speaks (``policy`` and ``avllm.voice`` in the config)."""

    model: str
    base_url: str
    api_key_env: str = "OPENAI_API_KEY"
    voice: str = "alloy"


@dataclass(frozen=True, slots=True)
class SpokenAnswer:
    """One answer: its text, its tool calls ``(id, name, arguments as sent)``, and its audio
    (mono float32 at ``sample_rate``; None when the server sent none or it was unusable)."""

    text: str
    calls: tuple[tuple[str, str, str], ...] = ()
    audio: np.ndarray | None = None
    sample_rate: int = 0
    audio_problem: str | None = None
    """Why audio that came was not usable (it is reported; the text is synthesised)."""


def openai_messages(messages: Sequence[BaseMessage]) -> list[dict[str, Any]]:
    """LangChain messages as OpenAI chat messages; content parts of OpenAI's own format (with a
    ``uuid``) are kept as they are."""
    out = convert_to_openai_messages(list(messages))
    for original, converted in zip(messages, out, strict=True):
        if isinstance(original, HumanMessage) and isinstance(original.content, list):
            converted["content"] = [_part(block) for block in original.content]
    return out


def _part(block: Any) -> Any:
    if isinstance(block, str):
        return {"type": "text", "text": block}
    if isinstance(block, dict) and block.get("type") in ("image", "audio", "file"):
        return convert_to_openai_data_block(block)
    return block


class ModelVoice:
    """Asks an OpenAI-compatible omni model for an answer in words and in its own voice."""

    def __init__(self, settings: VoiceSettings) -> None:
        self.settings = settings

    def _headers(self) -> dict[str, str]:
        key = os.environ.get(self.settings.api_key_env)
        return {"Authorization": f"Bearer {key}"} if key else {}

    async def complete(
        self, messages: Sequence[BaseMessage], tools: list[dict[str, Any]] | None
    ) -> SpokenAnswer:
        """One answer (no streaming: the audio comes whole); the caller bounds its time."""
        s = self.settings
        payload: dict[str, Any] = {
            "model": s.model,
            "messages": openai_messages(messages),
            "modalities": ["text", "audio"],
            "audio": {"voice": s.voice, "format": "wav"},
            "stream": False,
        }
        if tools:
            payload["tools"] = tools
        url = s.base_url.rstrip("/") + "/chat/completions"
        shown = redact(url)
        # A session per answer: nothing outlives the request, whatever cancels it.
        try:
            async with (
                aiohttp.ClientSession(headers=self._headers()) as session,
                session.post(url, json=payload) as response,
            ):
                if response.status != 200:
                    detail = (await response.content.read(4096)).decode("utf-8", "replace")
                    raise VoiceFailed(f"{shown} answered HTTP {response.status}", response.status, detail)
                raw = await _read_at_most(response, MAX_SPOKEN_BYTES, shown)
        except aiohttp.ClientError as exc:
            raise VoiceFailed(f"cannot reach {shown}: {describe_error(exc)}") from None
        # Megabytes of JSON and base64 audio: decoded off the loop.
        return await asyncio.to_thread(read_answer, raw, shown)


def read_answer(raw: bytes, shown: str = "the model") -> SpokenAnswer:
    """A chat completion's body, decoded (``VoiceFailed`` when it is not one)."""
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise VoiceFailed(f"{shown} did not answer with JSON") from None
    return parse_answer(body, shown)


def parse_answer(body: Any, shown: str = "the model") -> SpokenAnswer:
    """The text, tool calls and audio of a chat completion (audio from whichever choice has it)."""
    choices = body.get("choices") if isinstance(body, dict) else None
    if not isinstance(choices, list) or not choices or not all(isinstance(c, dict) for c in choices):
        raise VoiceFailed(f"{shown} answered without choices")
    messages = [c.get("message") if isinstance(c.get("message"), dict) else {} for c in choices]
    first = messages[0]
    text = _text(first.get("content"))
    audio_part = next((m["audio"] for m in messages if isinstance(m.get("audio"), dict)), None)
    if not text and audio_part is not None and isinstance(audio_part.get("transcript"), str):
        text = audio_part["transcript"]
    calls = []
    for index, call in enumerate(first.get("tool_calls") or []):
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            continue
        arguments = function.get("arguments")
        calls.append(
            (
                str(call.get("id") or f"call_{index}"),
                str(function.get("name") or ""),
                arguments if isinstance(arguments, str) else json.dumps(arguments or {}),
            )
        )
    audio, rate, problem = None, 0, None
    if audio_part is not None and audio_part.get("data"):
        try:
            audio, rate = decode_wav(audio_part["data"])
        except VoiceFailed as exc:
            problem = str(exc)
    return SpokenAnswer(text.strip(), tuple(calls), audio, rate, problem)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def decode_wav(data: Any) -> tuple[np.ndarray, int]:
    """Base64 audio as mono float32 and its rate, refused when it is not audio or out of bounds."""
    if not isinstance(data, str):
        raise VoiceFailed("the answer's audio is not base64 text")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise VoiceFailed("the answer's audio is not valid base64") from None
    try:
        info = sf.info(io.BytesIO(raw))
        if not MIN_RATE <= info.samplerate <= MAX_RATE:
            raise VoiceFailed(f"the answer's audio is at {info.samplerate} Hz")
        if info.frames / info.samplerate > MAX_SPOKEN_S:
            raise VoiceFailed(f"the answer's audio lasts more than {MAX_SPOKEN_S:g} s")
        samples, rate = sf.read(io.BytesIO(raw), dtype="float32", always_2d=True)
    except VoiceFailed:
        raise
    except Exception as exc:
        raise VoiceFailed(f"the answer's audio is not a sound file: {describe_error(exc)}") from None
    return np.ascontiguousarray(samples.mean(axis=1), dtype=np.float32), int(rate)


async def _read_at_most(response: aiohttp.ClientResponse, limit: int, shown: str) -> bytes:
    if response.content_length is not None and response.content_length > limit:
        raise VoiceFailed(f"{shown} answered with {response.content_length} bytes (at most {limit})")
    body = bytearray()
    async for chunk in response.content.iter_chunked(1 << 16):
        body += chunk
        if len(body) > limit:
            raise VoiceFailed(f"{shown} answered with more than {limit} bytes")
    return bytes(body)
