"""A local transformers model as a LangChain chat model: the same loop (the policy's, the scene
describer's) streams its text, with images and sound given as standard content blocks.

Image blocks (base64 JPEG or PNG, or a ``data:`` URL) are decoded to pictures and audio blocks
(base64 WAV) to 16 kHz sound for the model's processor; nothing is fetched from a URL. Tools bound
with ``bind_tools`` go to the chat template, and calls the model writes the way Qwen's templates
teach (``<tool_call>{"name": ..., "arguments": {...}}</tool_call>``) come back as tool calls,
never as words to say.

``start`` loads the model on a worker thread (the agent calls it when it runs; the first request
would otherwise); ``stop`` lets it go. Closing a stream early stops the generation at its next token.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import json
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

import numpy as np
import soundfile as sf
import soxr
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, SystemMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from PIL import Image
from pydantic import ConfigDict

from avagent.core.messages import SAMPLE_RATE
from avagent.perception.avllm.local_model import LocalModelSettings, LocalOmniModel, Request

__all__ = ["LocalChatModel", "LocalModelSettings"]

MAX_IMAGES = 16
MAX_AUDIO_S = 120.0
OPEN, CLOSE = "<tool_call>", "</tool_call>"
_END = object()


class LocalChatModel(BaseChatModel):
    """A chat model that runs a ``LocalOmniModel``."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    settings: LocalModelSettings
    runner: LocalOmniModel

    @classmethod
    def for_settings(cls, settings: LocalModelSettings) -> LocalChatModel:
        return cls(settings=settings, runner=LocalOmniModel(settings))

    @property
    def _llm_type(self) -> str:
        return "avagent-transformers"

    async def start(self) -> None:
        """Load the model (on a worker thread); safe to call twice."""
        if not self.runner.loaded:
            await asyncio.to_thread(self.runner.load)

    async def stop(self) -> None:
        """Let the model go; safe to call twice."""
        await asyncio.to_thread(self.runner.unload)

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], **kwargs)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        pieces: list[str] = []
        self.runner.generate(request_for(messages, kwargs.get("tools")), pieces.append, threading.Event())
        merged = AIMessageChunk(content="")
        for chunk in ToolCallText().feed("".join(pieces), final=True):
            merged = merged + chunk
        message = AIMessage(
            content=merged.content, tool_calls=merged.tool_calls, invalid_tool_calls=merged.invalid_tool_calls
        )
        return ChatResult(generations=[ChatGeneration(message=message)])

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        tools = kwargs.get("tools")
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[object] = asyncio.Queue()
        halt = threading.Event()

        def emit(piece: str) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, piece)

        def work() -> None:
            try:
                # Decoding pictures and sound takes milliseconds: on the worker thread too.
                self.runner.generate(request_for(messages, tools), emit, halt)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, _END)

        job = asyncio.ensure_future(asyncio.to_thread(work))
        calls = ToolCallText()
        try:
            while (piece := await queue.get()) is not _END:
                for chunk in calls.feed(str(piece)):
                    yield ChatGenerationChunk(message=chunk)
            await job  # its error, if it failed
            for chunk in calls.feed("", final=True):
                yield ChatGenerationChunk(message=chunk)
        finally:
            # An answer cut short (barge-in, a limit): the generation ends at its next token.
            halt.set()
            if not job.done():
                job.add_done_callback(lambda j: j.cancelled() or j.exception())


class ToolCallText:
    """Splits a model's streamed text into words to say and ``<tool_call>`` blocks (held back
    until complete, then given as tool-call chunks)."""

    def __init__(self) -> None:
        self._buffer = ""
        self._calls = 0

    def feed(self, text: str, *, final: bool = False) -> Iterator[AIMessageChunk]:
        self._buffer += text
        while True:
            start = self._buffer.find(OPEN)
            if start < 0:
                keep = 0 if final else _partial_tag(self._buffer)
                said, self._buffer = (
                    self._buffer[: len(self._buffer) - keep],
                    self._buffer[len(self._buffer) - keep :],
                )
                if said:
                    yield AIMessageChunk(content=said)
                return
            if start > 0:
                yield AIMessageChunk(content=self._buffer[:start])
                self._buffer = self._buffer[start:]
            end = self._buffer.find(CLOSE)
            if end < 0:
                if final:
                    # A call that never closed: given whole, so that its arguments fail as JSON.
                    yield self._call(self._buffer[len(OPEN) :])
                    self._buffer = ""
                return
            yield self._call(self._buffer[len(OPEN) : end])
            self._buffer = self._buffer[end + len(CLOSE) :]

    def _call(self, body: str) -> AIMessageChunk:
        index = self._calls
        self._calls += 1
        name, arguments = "", body.strip()
        try:
            parsed = json.loads(body)
        except json.JSONDecodeError:
            parsed = None
        if isinstance(parsed, dict) and isinstance(parsed.get("name"), str):
            name = parsed["name"]
            args = parsed.get("arguments", {})
            arguments = args if isinstance(args, str) else json.dumps(args)
        chunk = {
            "name": name,
            "args": arguments,
            "id": f"local_{index}",
            "index": index,
            "type": "tool_call_chunk",
        }
        return AIMessageChunk(content="", tool_call_chunks=[chunk])  # type: ignore[list-item]


def _partial_tag(text: str) -> int:
    """How many characters at the end of ``text`` may be the start of ``<tool_call>``."""
    for n in range(min(len(OPEN) - 1, len(text)), 0, -1):
        if OPEN.startswith(text[-n:]):
            return n
    return 0


def request_for(messages: Sequence[BaseMessage], tools: list[dict[str, Any]] | None = None) -> Request:
    """LangChain messages as the processor's conversation, with the images and sound decoded."""
    request = Request(conversation=[], tools=tools or None)
    for message in messages:
        role = (
            "system"
            if isinstance(message, SystemMessage)
            else "assistant"
            if isinstance(message, AIMessage)
            else "tool"
            if isinstance(message, ToolMessage)
            else "user"
        )
        parts: list[dict[str, Any]] = []
        content = message.content if isinstance(message.content, list) else [message.content]
        for block in content:
            parts.extend(_part(block, request))
        if isinstance(message, AIMessage):
            for call in message.tool_calls:
                body = json.dumps({"name": call["name"], "arguments": call["args"]})
                parts.append({"type": "text", "text": f"{OPEN}{body}{CLOSE}"})
        request.conversation.append({"role": role, "content": parts})
    return request


def _part(block: Any, request: Request) -> list[dict[str, Any]]:
    if isinstance(block, str):
        return [{"type": "text", "text": block}] if block else []
    if not isinstance(block, dict):
        return []
    kind = block.get("type")
    if kind == "text":
        return [{"type": "text", "text": str(block.get("text", ""))}]
    if kind in ("image", "image_url"):
        if len(request.images) >= MAX_IMAGES:
            return []
        request.images.append(_image(_payload(block)))
        return [{"type": "image"}]
    if kind in ("audio", "input_audio"):
        request.audio.append(_audio(_payload(block)))
        return [{"type": "audio"}]
    return []


def _payload(block: dict[str, Any]) -> bytes:
    data = block.get("base64")
    if data is None and isinstance(block.get("image_url"), dict):
        data = block["image_url"].get("url")
    if data is None and isinstance(block.get("input_audio"), dict):
        data = block["input_audio"].get("data")
    if not isinstance(data, str):
        raise ValueError("a local model takes images and sound as base64 data, not URLs")
    if data.startswith("data:"):
        data = data.partition(",")[2]
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("an image or audio block is not valid base64") from None


def _image(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as picture:
        return picture.convert("RGB")


def _audio(data: bytes) -> np.ndarray:
    samples, rate = sf.read(
        io.BytesIO(data), dtype="float32", always_2d=True, frames=int(MAX_AUDIO_S * 192000)
    )
    mono = samples.mean(axis=1)
    if rate != SAMPLE_RATE:
        mono = soxr.resample(mono, rate, SAMPLE_RATE)
    return np.asarray(mono[: int(MAX_AUDIO_S * SAMPLE_RATE)], dtype=np.float32)
