"""A scripted OpenAI-compatible chat server on 127.0.0.1, for tests: real HTTP, real SSE.

Each ``POST /v1/chat/completions`` takes the next ``Reply`` of the script (or calls a function of
the request that makes one) and streams it as OpenAI does: the text word by word, then each tool
call with its arguments cut into pieces over several chunks. A reply can instead fail with an HTTP
status, or stall after some chunks. ``GET /v1/models`` lists one model. Every request body is kept.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class Reply:
    text: str = ""
    tool_calls: list[tuple[str, str, str]] = field(default_factory=list)
    """(name, arguments exactly as sent, call id)."""
    status: int = 200
    stall_after: int | None = None
    """Send this many chunks, then nothing more (the connection stays open)."""
    chunk_delay_s: float = 0.0


def tool_call(name: str, args: dict[str, Any], call_id: str) -> tuple[str, str, str]:
    return (name, json.dumps(args), call_id)


Script = Reply | Callable[[dict[str, Any]], Reply]


@dataclass
class ScriptedServer:
    script: list[Script]
    requests: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""
    chunks_sent: int = 0
    closed_early: int = 0
    """Streams the client closed before their end."""

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def tool_results(self, request: int) -> dict[str, str]:
        """The tool messages of request ``request``: call id -> content."""
        return {
            m["tool_call_id"]: m["content"]
            for m in self.requests[request]["messages"]
            if m.get("role") == "tool"
        }

    async def models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "scripted", "object": "model"}]})

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.requests.append(body)
        if not self.script:
            return web.json_response({"error": {"message": "script exhausted"}}, status=500)
        item = self.script.pop(0)
        reply = item(body) if callable(item) else item
        if reply.status != 200:
            return web.json_response({"error": {"message": f"scripted {reply.status}"}}, status=reply.status)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        sent = 0
        try:
            for chunk in self._chunks(reply, body.get("model", "scripted")):
                if reply.stall_after is not None and sent >= reply.stall_after:
                    await asyncio.sleep(3600)
                if reply.chunk_delay_s:
                    await asyncio.sleep(reply.chunk_delay_s)
                await response.write(b"data: " + json.dumps(chunk).encode() + b"\n\n")
                sent += 1
                self.chunks_sent += 1
            await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
        except ConnectionResetError:
            # The client closed the stream (an interrupted answer): stop generating.
            self.closed_early += 1
        return response

    def _chunks(self, reply: Reply, model: str) -> list[dict[str, Any]]:
        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {
                "id": "chatcmpl-scripted",
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }

        out = [chunk({"role": "assistant", "content": ""})]
        out += [chunk({"content": word}) for word in re.split(r"(?<=\s)", reply.text) if word]
        for index, (name, arguments, call_id) in enumerate(reply.tool_calls):
            start = {
                "index": index,
                "id": call_id,
                "type": "function",
                "function": {"name": name, "arguments": ""},
            }
            out.append(chunk({"tool_calls": [start]}))
            step = max(1, len(arguments) // 3)
            for i in range(0, len(arguments), step):
                piece = {"index": index, "function": {"arguments": arguments[i : i + step]}}
                out.append(chunk({"tool_calls": [piece]}))
        out.append(chunk({}, "tool_calls" if reply.tool_calls else "stop"))
        return out


@asynccontextmanager
async def scripted_server(*script: Script) -> AsyncIterator[ScriptedServer]:
    """Run a ``ScriptedServer`` on a free port of 127.0.0.1 for the duration of the block."""
    server = ScriptedServer(list(script))
    app = web.Application()
    app.router.add_get("/v1/models", server.models)
    app.router.add_post("/v1/chat/completions", server.chat)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    server.url = f"http://127.0.0.1:{port}"
    try:
        yield server
    finally:
        await runner.cleanup()
