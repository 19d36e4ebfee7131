"""Conversation memory: past turns as the model will see them, bounded, true to what was heard.

Each turn is kept as a ``TurnRecord``: the user's words, and per model step the sentences the agent
said and the tool calls it made with their results. It becomes chat messages only when the next
answer is prepared, by which time the speaker has reported (through ``speaking_ended`` events,
kept by the ``SpeechLedger``) how much of each sentence was really played. When the user cut the
agent off, the history holds the sentences heard in full, the interrupted one truncated to the
share that was played, and a note of the interruption; what was never heard is left out, and tool
calls that never ran say so. An answer the agent cut off itself (at one of its limits) says so
too, so that the model knows it was not heard to the end of what it wrote.

The memory keeps at most ``max_turns`` turns and about ``max_tokens`` tokens of them; the oldest
whole turns go first, so a tool call is never separated from its result.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.messages.utils import count_tokens_approximately

from avagent.core.events import SpeakingEnded
from avagent.core.text import split_sentences

INTERRUPTION_NOTE = "[the user interrupted here; the rest was not heard]"
NOT_RUN = "not run: the user interrupted before it started"


def cut_note(reason: str) -> str:
    """The note that ends an answer the agent cut off at one of its limits."""
    return f"[the agent cut this answer off here: {reason}; the rest was not said]"


@dataclass
class CallRecord:
    id: str
    name: str
    args: dict[str, Any]
    result: str | None = None
    """None while it has not finished (or never started)."""


@dataclass
class StepRecord:
    """One model call: what it said and which tools it called."""

    sentences: list[str] = field(default_factory=list)
    calls: list[CallRecord] = field(default_factory=list)


@dataclass
class TurnRecord:
    turn: int | None
    user_text: str
    steps: list[StepRecord] = field(default_factory=list)
    interrupted: bool = False
    """The answer was cancelled before it finished."""
    cut: str | None = None
    """Why the agent cut the answer off at one of its limits (None when it did not)."""

    def call(self, call_id: str) -> CallRecord | None:
        for step in self.steps:
            for c in step.calls:
                if c.id == call_id:
                    return c
        return None


@dataclass(frozen=True, slots=True)
class Heard:
    text: str
    fraction: float
    interrupted: bool


class SpeechLedger:
    """What the speaker reported playing, per turn, in order."""

    def __init__(self) -> None:
        self._turns: dict[int | None, list[Heard]] = {}

    def observe(self, event: SpeakingEnded) -> None:
        fraction = 1.0 if event.total_s <= 0 else min(1.0, event.played_s / event.total_s)
        self._turns.setdefault(event.turn, []).append(Heard(event.text, fraction, event.interrupted))

    def cut(self, turn: int | None) -> bool:
        return any(h.interrupted for h in self._turns.get(turn, []))

    def heard(self, turn: int | None) -> list[Heard]:
        return list(self._turns.get(turn, []))

    def forget_except(self, turns: set[int | None]) -> None:
        for key in [k for k in self._turns if k not in turns]:
            del self._turns[key]


def truncate(sentence: str, fraction: float) -> str:
    """The words of ``sentence`` heard when ``fraction`` of it was played."""
    words = sentence.split()
    keep = int(len(words) * fraction + 1e-9)
    return " ".join(words[:keep])


def heard_sentences(record: TurnRecord, ledger: SpeechLedger) -> tuple[list[list[str]], bool]:
    """Per step, the text of each sentence as far as it was heard; and whether the turn was cut."""
    cut = record.interrupted or ledger.cut(record.turn)
    reports = deque(ledger.heard(record.turn))
    out: list[list[str]] = []
    stopped = False
    for step in record.steps:
        said: list[str] = []
        for sentence in step.sentences:
            if stopped:
                break
            parts: list[str] = []
            # A model's own voice says a whole answer as one utterance.
            whole = bool(reports) and reports[0].text == sentence
            for utterance in [sentence] if whole else split_sentences(sentence) or [sentence]:
                report = reports.popleft() if reports and reports[0].text == utterance else None
                fraction = report.fraction if report is not None else (0.0 if cut else 1.0)
                if fraction >= 1.0:
                    parts.append(utterance)
                    continue
                partial = truncate(utterance, fraction)
                if partial:
                    parts.append(partial)
                stopped = True
                break
            if parts:
                said.append(" ".join(parts))
        out.append(said)
    return out, cut


def turn_messages(
    record: TurnRecord,
    ledger: SpeechLedger,
    context: str | None = None,
    attachments: Sequence[dict[str, Any]] = (),
    words: str | None = None,
) -> list[BaseMessage]:
    """``record`` as chat messages (``context``, for the turn being answered, goes before the
    words, and ``attachments``, its images and sound as content blocks, after them; ``words``
    replaces the user's words as the model is given them)."""
    spoken = record.user_text if words is None else words
    user = spoken if context is None else f"{context}\n\n{spoken}"
    content: list[str | dict[Any, Any]] = [{"type": "text", "text": user}, *attachments]
    human = HumanMessage(content=content) if attachments else HumanMessage(user)
    messages: list[BaseMessage] = [human]
    heard, cut = heard_sentences(record, ledger)
    for step, said in zip(record.steps, heard, strict=True):
        if not said and not step.calls:
            continue
        tool_calls = [{"name": c.name, "args": c.args, "id": c.id, "type": "tool_call"} for c in step.calls]
        messages.append(AIMessage(content=" ".join(said), tool_calls=tool_calls))
        for c in step.calls:
            messages.append(
                ToolMessage(content=c.result if c.result is not None else NOT_RUN, tool_call_id=c.id)
            )
    notes = ([cut_note(record.cut)] if record.cut is not None else []) + ([INTERRUPTION_NOTE] if cut else [])
    for note in notes:
        last = messages[-1]
        if isinstance(last, AIMessage) and not last.tool_calls:
            text = str(last.content)
            messages[-1] = AIMessage(content=f"{text} {note}".strip())
        else:
            messages.append(AIMessage(content=note))
    return messages


class ConversationMemory:
    """Past turns, bounded by count and by (approximate) tokens."""

    def __init__(self, max_turns: int = 20, max_tokens: int = 3000) -> None:
        self.max_turns = max_turns
        self.max_tokens = max_tokens
        self.records: deque[TurnRecord] = deque()
        self.ledger = SpeechLedger()

    def begin(self, turn: int | None, user_text: str) -> TurnRecord:
        record = TurnRecord(turn, user_text)
        self.records.append(record)
        return record

    def find(self, turn: int | None) -> TurnRecord | None:
        for record in reversed(self.records):
            if record.turn == turn:
                return record
        return None

    def history(
        self,
        current: TurnRecord | None = None,
        context: str | None = None,
        attachments: Sequence[dict[str, Any]] = (),
        words: str | None = None,
    ) -> list[BaseMessage]:
        """Messages of the kept turns, oldest first; ``current`` (the turn being answered) is always
        kept, with ``context`` in front of its words and ``attachments`` (its media, bounded on
        their own, not counted as tokens) after them. Older turns beyond the bounds are forgotten."""
        past = [r for r in self.records if r is not current]
        rendered = [turn_messages(r, self.ledger) for r in past]
        now = turn_messages(current, self.ledger, context, words=words) if current is not None else []
        budget = self.max_tokens - count_tokens_approximately(now)
        if current is not None and attachments:
            now = turn_messages(current, self.ledger, context, attachments, words)
        kept: list[list[BaseMessage]] = []
        for messages in reversed(rendered):
            cost = count_tokens_approximately(messages)
            if len(kept) + (current is not None) >= self.max_turns or cost > budget:
                break
            budget -= cost
            kept.append(messages)
        forgotten = len(rendered) - len(kept)
        for _ in range(forgotten):
            self.records.popleft()
        self.ledger.forget_except({r.turn for r in self.records})
        return [m for messages in reversed(kept) for m in messages] + now
