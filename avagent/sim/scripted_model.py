"""A scripted chat model that streams text *and tool calls*: for tests, demos and benchmarks.

LangChain's ``GenericFakeChatModel`` streams the words of scripted answers but neither binds tools
nor streams tool calls. ``ScriptedChatModel`` adds both: each call takes the next scripted answer
(an ``AIMessage``, a string, or an exception to raise), streams its words one by one, then its tool
calls with the arguments' JSON cut into pieces, as a real provider does. ``raw_tool_calls`` script
arguments exactly as sent (malformed JSON included). Every call's messages and tools are kept in
``requests`` so that a test can check what the model was shown.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import LanguageModelInput
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import Field

Script = AIMessage | str | BaseException


def raw_call(name: str, arguments: str, call_id: str) -> dict[str, Any]:
    """A scripted tool call whose arguments are sent exactly as ``arguments`` (may be bad JSON)."""
    return {"name": name, "arguments": arguments, "id": call_id}


class ScriptedChatModel(GenericFakeChatModel):
    """Streams scripted answers, tool calls included; supports ``bind_tools``."""

    messages: Iterator[Any]
    """The scripted answers: ``AIMessage``, ``str``, or an exception to raise."""
    chunk_delay_s: float = 0.0
    """Pause before each streamed chunk (a slow model)."""
    requests: list[tuple[list[BaseMessage], list[dict[str, Any]] | None]] = Field(default_factory=list)
    on_request: Callable[[list[BaseMessage]], None] | None = None
    yielded_at: list[float] = Field(default_factory=list)
    """Monotonic instant of each streamed chunk (the stream runs only as fast as it is read)."""

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        specs = [convert_to_openai_tool(t) for t in tools]
        return self.bind(tools=specs, **kwargs)

    def _next(self, messages: list[BaseMessage], tools: list[dict[str, Any]] | None) -> AIMessage:
        self.requests.append((list(messages), tools))
        if self.on_request is not None:
            self.on_request(list(messages))
        try:
            item: Any = next(self.messages)
        except StopIteration:
            raise RuntimeError("the scripted model has no answer left") from None
        if isinstance(item, BaseException):
            raise item
        return AIMessage(content=item) if isinstance(item, str) else item

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return ChatResult(generations=[ChatGeneration(message=self._next(messages, kwargs.get("tools")))])

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        answer = self._next(messages, kwargs.get("tools"))
        for chunk in _chunks(answer):
            if self.chunk_delay_s > 0:
                await asyncio.sleep(self.chunk_delay_s)
            else:
                await asyncio.sleep(0)
            self.yielded_at.append(time.monotonic())
            yield ChatGenerationChunk(message=chunk)

    @property
    def _llm_type(self) -> str:
        return "scripted"


def _chunks(answer: AIMessage) -> Iterator[AIMessageChunk]:
    content = answer.content if isinstance(answer.content, str) else answer.text
    for token in re.split(r"(?<=\s)", content):
        if token:
            yield AIMessageChunk(content=token)
    raw = [
        {"name": tc["name"], "arguments": json.dumps(tc["args"]), "id": tc.get("id") or f"call_{i}"}
        for i, tc in enumerate(answer.tool_calls)
    ]
    raw += answer.additional_kwargs.get("raw_tool_calls", [])
    for index, call in enumerate(raw):
        text = call["arguments"]
        cut = [0, len(text) // 3, 2 * len(text) // 3, len(text)]
        for piece_no in range(3):
            piece = text[cut[piece_no] : cut[piece_no + 1]]
            first = piece_no == 0
            yield AIMessageChunk(
                content="",
                tool_call_chunks=[
                    {
                        "name": call["name"] if first else None,
                        "args": piece,
                        "id": call["id"] if first else None,
                        "index": index,
                        "type": "tool_call_chunk",
                    }
                ],
            )


def scripted(*answers: Script, chunk_delay_s: float = 0.0) -> ScriptedChatModel:
    """A ``ScriptedChatModel`` that gives ``answers`` in order."""
    return ScriptedChatModel(messages=iter(answers), chunk_delay_s=chunk_delay_s)
