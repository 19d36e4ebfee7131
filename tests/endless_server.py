"""An OpenAI-compatible chat server on 127.0.0.1 whose answers can be endless or megabytes long.

Unlike ``tests/openai_server.py`` (scripted replies, built whole before they are sent), each answer
here is generated as it is streamed, so the server itself stays small however much it sends: a
``Flood`` says what to stream (a text repeated, in chunks of a few words, paced or as fast as the
client reads), until ``total_chars`` have been sent or forever. The server notes what it sent,
when it sent a chosen word, and when it saw the client close the stream.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass(frozen=True)
class Flood:
    """One answer: ``text`` over and over, ``words_per_chunk`` words a chunk, ``delay_s`` apart."""

    text: str = "This answer goes on and on without an end in sight. "
    total_chars: int | None = None
    """Stop (and end the stream properly) after this many characters; None: never."""
    words_per_chunk: int = 4
    delay_s: float = 0.0


@dataclass
class FloodServer:
    answers: list[Flood | str]
    """One per request, in order (a ``str`` is a short ordinary answer); then "Okay." for ever."""
    watch_word: int | None = None
    """Note the instant the chunk holding this word (counted from 1, per answer) was sent."""
    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    chars_sent: int = 0
    words_sent: int = 0
    closed_early: int = 0
    """Streams the client closed before their end."""
    word_sent_at: float | None = None
    closed_at: float | None = None
    """Monotonic instants: the watched word sent; the client's close seen."""
    started_at: float | None = None
    """Monotonic instant the last request arrived."""

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def messages(self, request: int) -> list[dict[str, Any]]:
        return list(self.requests[request]["messages"])

    async def models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "flood", "object": "model"}]})

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        self.started_at = time.monotonic()
        answer = self.answers.pop(0) if self.answers else "Okay."
        flood = answer if isinstance(answer, Flood) else Flood(text=answer, total_chars=len(answer))
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        words_this_answer = 0
        try:
            await self._send(response, {"role": "assistant", "content": ""})
            for piece in _pieces(flood):
                if flood.delay_s:
                    await asyncio.sleep(flood.delay_s)
                else:
                    await asyncio.sleep(0)  # as fast as the client reads, but let it run
                transport = request.transport
                if transport is None or transport.is_closing():
                    raise ConnectionResetError
                await self._send(response, {"content": piece})
                self.chars_sent += len(piece)
                words = len(piece.split())
                self.words_sent += words
                before, words_this_answer = words_this_answer, words_this_answer + words
                if self.watch_word is not None and before < self.watch_word <= words_this_answer:
                    self.word_sent_at = time.monotonic()
            await self._send(response, {}, "stop")
            await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
        except ConnectionResetError:
            self.closed_at = time.monotonic()
            self.closed_early += 1
        return response

    async def _send(
        self, response: web.StreamResponse, delta: dict[str, Any], finish: str | None = None
    ) -> None:
        chunk = {
            "id": "chatcmpl-flood",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": "flood",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        await response.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")


def _pieces(flood: Flood) -> Iterator[str]:
    """The answer's chunks, made as they are needed."""
    words = flood.text.split(" ")
    sent = 0
    i = 0
    while flood.total_chars is None or sent < flood.total_chars:
        take = [words[(i + k) % len(words)] for k in range(flood.words_per_chunk)]
        i += flood.words_per_chunk
        piece = " ".join(w for w in take if w) + " "
        if flood.total_chars is not None:
            piece = piece[: flood.total_chars - sent]
        sent += len(piece)
        yield piece


@asynccontextmanager
async def flood_server(*answers: Flood | str, watch_word: int | None = None) -> AsyncIterator[FloodServer]:
    """Run a ``FloodServer`` on a free port of 127.0.0.1 for the duration of the block."""
    server = FloodServer(list(answers), watch_word=watch_word)
    app = web.Application()
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
