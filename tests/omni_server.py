"""A multimodal OpenAI-compatible chat server on 127.0.0.1, for tests: real HTTP, real SSE.

Each ``POST /v1/chat/completions`` is kept with its media decoded (``Seen``: the JPEG images and
WAV clips of the last user message, checked to be what the protocol says) and answered by the
next ``Answer`` of the script (or a function of the request that makes one): streamed (SSE) when
the request asks for a stream, else one JSON completion, with audio in ``choices[1]`` as vLLM's
omni serving sends it (or in ``choices[0]`` as OpenAI does). An answer can instead refuse
requests carrying some kind of media (HTTP 400 naming it), fail with a status, send non-JSON, or
stall. ``GET /v1/models`` lists one model.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import soundfile as sf
from aiohttp import web


@dataclass
class Answer:
    text: str = ""
    tool_calls: list[tuple[str, str, str]] = field(default_factory=list)
    """(name, arguments exactly as sent, call id)."""
    audio: bytes | None = None
    """A WAV file sent as the answer's voice (non-streamed requests)."""
    audio_in_first_choice: bool = False
    """OpenAI's shape: the audio in ``choices[0].message.audio`` with a transcript, content null."""
    refuse: frozenset[str] = frozenset()
    """Kinds of media ("image", "audio") this answer refuses with HTTP 400, naming the part."""
    status: int = 200
    raw: bytes | None = None
    """Sent as the body as it is (not JSON)."""
    stall: bool = False
    """Send the headers, then nothing."""


@dataclass
class Seen:
    """What one request carried: the last user message's text and its decoded media."""

    body: dict[str, Any]
    text: str
    images: list[np.ndarray]
    """Decoded BGR images, in order."""
    audio: list[tuple[np.ndarray, int]]
    """(samples, rate) of each audio part."""
    uuids: list[str]

    @property
    def kinds(self) -> set[str]:
        return ({"image"} if self.images else set()) | ({"audio"} if self.audio else set())


def tone_wav(seconds: float, hz: float = 440.0, rate: int = 24000, level: float = 0.3) -> bytes:
    """A sine tone as a WAV file: a voice that is easy to find in what the agent played."""
    t = np.arange(int(seconds * rate)) / rate
    buffer = io.BytesIO()
    sf.write(
        buffer, (level * np.sin(2 * np.pi * hz * t)).astype(np.float32), rate, format="WAV", subtype="PCM_16"
    )
    return buffer.getvalue()


def decode_parts(body: dict[str, Any]) -> Seen:
    """The last user message's parts, each checked against the protocol and decoded."""
    user = [m for m in body["messages"] if m.get("role") == "user"][-1]
    content = user["content"]
    parts: list[dict[str, Any]] = [{"type": "text", "text": content}] if isinstance(content, str) else content
    text, images, audio, uuids = "", [], [], []
    for part in parts:
        kind = part["type"]
        if "uuid" in part:
            uuids.append(part["uuid"])
        if kind == "text":
            text += part["text"]
        elif kind == "image_url":
            url = part["image_url"]["url"]
            prefix = "data:image/jpeg;base64,"
            assert url.startswith(prefix), url[:40]
            jpeg = base64.b64decode(url[len(prefix) :], validate=True)
            assert jpeg[:3] == b"\xff\xd8\xff", "a JPEG"
            image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
            assert image is not None
            images.append(image)
        elif kind == "input_audio":
            assert part["input_audio"]["format"] == "wav"
            wav = base64.b64decode(part["input_audio"]["data"], validate=True)
            assert wav[:4] == b"RIFF"
            assert wav[8:12] == b"WAVE"
            samples, rate = sf.read(io.BytesIO(wav), dtype="float32")
            audio.append((samples, rate))
        else:
            raise AssertionError(f"unexpected part {kind}")
    return Seen(body, text, images, audio, uuids)


Script = Answer | Callable[[Seen], Answer]


@dataclass
class OmniServer:
    script: list[Script]
    seen: list[Seen] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    """Requests that broke the protocol (answered with HTTP 500)."""
    url: str = ""

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    async def models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "omni", "object": "model"}]})

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        try:
            seen = decode_parts(body)
        except (AssertionError, KeyError, ValueError) as exc:
            self.problems.append(f"{type(exc).__name__}: {exc}")
            return web.json_response({"error": {"message": "bad request parts"}}, status=500)
        self.seen.append(seen)
        item = self.script.pop(0) if self.script else Answer(text="Okay.")
        answer = item(seen) if callable(item) else item
        refused = answer.refuse & seen.kinds
        if refused:
            part = "input_audio" if "audio" in refused else "image_url"
            message = f"this model does not accept {part} content"
            return web.json_response({"error": {"message": message}}, status=400)
        if answer.status != 200:
            return web.json_response(
                {"error": {"message": f"scripted {answer.status}"}}, status=answer.status
            )
        if answer.raw is not None:
            return web.Response(body=answer.raw, content_type="application/json")
        if answer.stall:
            response = web.StreamResponse()
            await response.prepare(request)
            await asyncio.sleep(3600)
            return response
        if body.get("stream"):
            return await self._stream(request, answer, body.get("model", "omni"))
        return web.json_response(_completion(answer, body.get("model", "omni")))

    async def _stream(self, request: web.Request, answer: Answer, model: str) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            data = {
                "id": "chatcmpl-omni",
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            return b"data: " + json.dumps(data).encode() + b"\n\n"

        try:
            await response.write(chunk({"role": "assistant", "content": ""}))
            for word in re.split(r"(?<=\s)", answer.text):
                if word:
                    await response.write(chunk({"content": word}))
            for index, (name, arguments, call_id) in enumerate(answer.tool_calls):
                call = {
                    "index": index,
                    "id": call_id,
                    "type": "function",
                    "function": {"name": name, "arguments": arguments},
                }
                await response.write(chunk({"tool_calls": [call]}))
            await response.write(chunk({}, "tool_calls" if answer.tool_calls else "stop"))
            await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
        except ConnectionResetError:
            pass
        return response


def _completion(answer: Answer, model: str) -> dict[str, Any]:
    calls = [
        {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}
        for name, arguments, call_id in answer.tool_calls
    ]
    message: dict[str, Any] = {"role": "assistant", "content": answer.text or None}
    if calls:
        message["tool_calls"] = calls
    choices = [{"index": 0, "message": message, "finish_reason": "tool_calls" if calls else "stop"}]
    if answer.audio is not None:
        audio = {"id": "audio_1", "data": base64.b64encode(answer.audio).decode(), "transcript": answer.text}
        if answer.audio_in_first_choice:
            message["content"] = None
            message["audio"] = audio
        else:
            choices.append({"index": 1, "message": {"role": "assistant", "content": None, "audio": audio}})
    return {
        "id": "chatcmpl-omni",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": choices,
    }


@asynccontextmanager
async def omni_server(*script: Script) -> AsyncIterator[OmniServer]:
    """Run an ``OmniServer`` on a free port of 127.0.0.1 for the duration of the block."""
    server = OmniServer(list(script))
    app = web.Application(client_max_size=64 << 20)
    app.router.add_get("/v1/models", server.models)
    app.router.add_post("/v1/chat/completions", server.chat)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        yield server
    finally:
        await runner.cleanup()
