"""The policy's model on record: every request and the answer it streamed, kept to be played back.

``RecordingChatModel`` stands between the policy and its chat model: it passes each streamed
request on unchanged and hands one *exchange* per request to a callback (a recording's ``/model``
channel): the messages sent (images and sound left out: they are recorded as video and audio),
the tools offered, each chunk of the answer (text and tool-call pieces, as they came), and how the
answer ended (complete, closed early by the policy, or failed, with the HTTP status).

``RecordedChatModel`` plays those exchanges back, so a replay runs without the model. A request
is answered by the first unused exchange for the same user words at the same step of the turn
(the first request of a turn is step 0, the one after its tool results step 1...), so a replay
that hears one turn more or less still gets the right answers for the others. A request with no
recorded answer fails, saying so; the policy then apologises, as it does when a model fails.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun, CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage, ToolMessage
from langchain_core.messages.tool import tool_call_chunk
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from pydantic import ConfigDict, PrivateAttr

from avagent.core.text import describe_error
from avagent.policy.context import END

MAX_INLINE_CHARS = 512
"""Longer strings inside content blocks (base64 images and sound) are left out of a record."""

Exchange = dict[str, Any]


class RecordedAnswerMissing(RuntimeError):
    """The recording has no answer to a request the replay makes."""


class RecordedFailure(RuntimeError):
    """A failure of the model, as recorded (``status_code``: its HTTP status, if any)."""

    def __init__(self, message: str, status_code: int | None) -> None:
        super().__init__(message)
        self.status_code = status_code


def request_key(messages: Sequence[BaseMessage]) -> tuple[str, int]:
    """The user's words of the turn a request answers, and which step of that turn it is."""
    last_human = max((i for i, m in enumerate(messages) if isinstance(m, HumanMessage)), default=-1)
    if last_human < 0:
        return "", 0
    text = messages[last_human].text
    words = text.split(END, 1)[1] if END in text else text
    step = sum(isinstance(m, AIMessage) for m in messages[last_human + 1 :])
    return words.strip(), step


def _shortened(value: Any) -> Any:
    if isinstance(value, str):
        return value if len(value) <= MAX_INLINE_CHARS else f"<{len(value)} characters left out>"
    if isinstance(value, dict):
        return {str(k): _shortened(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_shortened(v) for v in value]
    return value


def message_record(message: BaseMessage) -> dict[str, Any]:
    """One message of a request, as recorded."""
    content = message.content
    record: dict[str, Any] = {
        "role": message.type,
        "content": content if isinstance(content, str) else _shortened(content),
    }
    if isinstance(message, AIMessage) and message.tool_calls:
        record["tool_calls"] = [
            {"name": c["name"], "args": c["args"], "id": c.get("id")} for c in message.tool_calls
        ]
    if isinstance(message, ToolMessage):
        record["tool_call_id"] = message.tool_call_id
    return record


def chunk_record(chunk: AIMessageChunk) -> dict[str, Any]:
    """One streamed chunk of an answer, as recorded."""
    record: dict[str, Any] = {"content": chunk.content}
    if chunk.tool_call_chunks:
        record["tool_call_chunks"] = [
            {"name": c.get("name"), "args": c.get("args"), "id": c.get("id"), "index": c.get("index")}
            for c in chunk.tool_call_chunks
        ]
    return record


def _tool_name(tool: Any) -> str:
    if isinstance(tool, dict):
        return str(tool.get("function", {}).get("name") or tool.get("name") or "")
    return str(getattr(tool, "name", getattr(tool, "__name__", "")))


class RecordingChatModel(BaseChatModel):
    """A chat model that streams what ``inner`` streams and reports each exchange."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    inner: BaseChatModel
    on_exchange: Callable[[Exchange], None]
    now: Callable[[], float]
    """Media time, to place each exchange on the recording's timeline."""

    @property
    def root_async_client(self) -> Any:
        """The inner model's client, so the start-up check asks the server as it would."""
        return getattr(self.inner, "root_async_client", None)

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        options = dict(kwargs, tool_choice=tool_choice) if tool_choice is not None else kwargs
        return self.bind(tools=list(tools), tool_options=options)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        tools = kwargs.pop("tools", None)
        options = kwargs.pop("tool_options", {})
        runnable: Runnable[LanguageModelInput, Any] = (
            self.inner.bind_tools(tools, **options) if tools else self.inner
        )
        words, step = request_key(messages)
        exchange: Exchange = {
            "t": self.now(),
            "words": words,
            "step": step,
            "tools": [_tool_name(t) for t in tools or ()],
            "request": [message_record(m) for m in messages],
            "chunks": [],
            "ended": "closed",
        }
        iterator = runnable.astream(messages, stop=stop, **kwargs).__aiter__()
        try:
            async for chunk in iterator:
                if isinstance(chunk, AIMessageChunk):
                    exchange["chunks"].append(chunk_record(chunk))
                    yield ChatGenerationChunk(message=chunk)
            exchange["ended"] = "complete"
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            status = getattr(exc, "status_code", None)
            exchange["ended"] = "failed"
            exchange["error"] = {
                "message": describe_error(exc),
                "status": status if isinstance(status, int) else None,
            }
            raise
        finally:
            closer = getattr(iterator, "aclose", None)
            if closer is not None:
                await closer()  # ends the HTTP request at once when the policy stopped reading
            self.on_exchange(exchange)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        # Not recorded: the policy streams; a plain call is the start-up check.
        return self.inner._generate(messages, stop=stop, **kwargs)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        return await self.inner._agenerate(messages, stop=stop, **kwargs)

    @property
    def _llm_type(self) -> str:
        return f"recording {self.inner._llm_type}"


class RecordedChatModel(BaseChatModel):
    """Answers requests with recorded exchanges (see the module's docstring)."""

    exchanges: list[Exchange]
    _used: set[int] = PrivateAttr(default_factory=set)

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        return self.bind(tools=[_tool_name(t) for t in tools])

    def answer_for(self, messages: Sequence[BaseMessage]) -> Exchange:
        """The recorded exchange that answers ``messages`` (taken: it answers only once)."""
        words, step = request_key(messages)
        for index, exchange in enumerate(self.exchanges):
            if index not in self._used and exchange.get("words") == words and exchange.get("step") == step:
                self._used.add(index)
                return exchange
        raise RecordedAnswerMissing(
            f"the recording has no answer to {words[:80]!r} (step {step + 1} of the turn)"
        )

    @property
    def unused(self) -> int:
        """Recorded answers no request has asked for."""
        return len(self.exchanges) - len(self._used)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        exchange = self.answer_for(messages)
        for record in exchange.get("chunks") or []:
            await asyncio.sleep(0)
            yield ChatGenerationChunk(message=_chunk(record))
        ended = exchange.get("ended")
        if ended == "failed":
            error = exchange.get("error") or {}
            status = error.get("status")
            raise RecordedFailure(
                str(error.get("message") or "the model failed"), status if isinstance(status, int) else None
            )
        if ended == "closed":
            # The policy stopped reading here (the model stalled, or the answer was cut): a replay
            # that reads on finds nothing more, as if the model had gone quiet.
            raise TimeoutError("the recorded answer ends here")

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        raise RecordedAnswerMissing("a recorded model only streams")

    @property
    def _llm_type(self) -> str:
        return "recorded"


def _chunk(record: dict[str, Any]) -> AIMessageChunk:
    content = record.get("content")
    pieces = [
        tool_call_chunk(
            name=c.get("name"),
            args=c.get("args"),
            id=c.get("id"),
            index=c.get("index") if isinstance(c.get("index"), int) else None,
        )
        for c in record.get("tool_call_chunks") or []
        if isinstance(c, dict)
    ]
    return AIMessageChunk(content=content if isinstance(content, str | list) else "", tool_call_chunks=pieces)
