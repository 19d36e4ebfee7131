"""Conversation memory (bounded, true to what was heard), the perception block, sentence cutting."""

from __future__ import annotations

import datetime

from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from avagent.core.events import ActiveSpeaker, FaceRecord, Faces, SoundDirection, SpeakingEnded
from avagent.core.text import SentenceSplitter
from avagent.policy.context import BEGIN, END, PerceptionContext
from avagent.policy.memory import (
    INTERRUPTION_NOTE,
    NOT_RUN,
    CallRecord,
    ConversationMemory,
    StepRecord,
    truncate,
)


def test_sentences_are_cut_as_they_complete() -> None:
    splitter = SentenceSplitter(max_chars=40)
    out: list[str] = []
    for piece in ["It is 3.", "5 degrees", " outside! Take", " a coat.", " Bye"]:
        out += splitter.feed(piece)
    assert out == ["It is 3.5 degrees outside!", "Take a coat."]
    assert splitter.flush() == ["Bye"]
    assert splitter.feed("a long run of words, without a full stop and on and on") == ["a long run of words,"]
    [piece] = splitter.feed(" and on and on and on and on and on")
    assert piece.startswith("without a full stop and on")
    assert len(piece) <= 40
    assert piece.endswith("and")


def test_truncation_keeps_the_share_of_words_played() -> None:
    assert truncate("one two three four", 0.5) == "one two"
    assert truncate("one two three four", 0.1) == ""


def test_memory_renders_tool_calls_and_an_interruption() -> None:
    memory = ConversationMemory()
    record = memory.begin(1, "open the door and tell me a story")
    record.steps.append(
        StepRecord(["Opening."], [CallRecord("a", "door", {}, "open"), CallRecord("b", "lamp", {}, None)])
    )
    record.steps.append(StepRecord(["Once upon a time there was a robot.", "It was happy."]))
    record.interrupted = True
    memory.ledger.observe(
        SpeakingEnded(t=1, text="Opening.", turn=1, interrupted=False, played_s=1, total_s=1)
    )
    memory.ledger.observe(
        SpeakingEnded(
            t=2, text="Once upon a time there was a robot.", turn=1, interrupted=True, played_s=1, total_s=2
        )
    )
    memory.begin(2, "what?")
    messages = memory.history(memory.records[-1], context="CTX")
    assert isinstance(messages[0], HumanMessage)
    assert messages[0].content == "open the door and tell me a story"
    first = messages[1]
    assert isinstance(first, AIMessage)
    assert first.content == "Opening."
    assert [c["id"] for c in first.tool_calls] == ["a", "b"]
    results = [m for m in messages if isinstance(m, ToolMessage)]
    assert [r.content for r in results] == ["open", NOT_RUN]
    assert messages[4].content == f"Once upon a time {INTERRUPTION_NOTE}"
    assert messages[-1].content == "CTX\n\nwhat?"


def test_memory_is_bounded_by_turns_and_tokens() -> None:
    memory = ConversationMemory(max_turns=3, max_tokens=10_000)
    for i in range(6):
        memory.begin(i, f"question {i}").steps.append(StepRecord([f"Answer {i}."]))
    current = memory.begin(6, "last")
    messages = memory.history(current)
    assert [m.content for m in messages if isinstance(m, HumanMessage)] == [
        "question 4",
        "question 5",
        "last",
    ]
    assert len(memory.records) == 3
    small = ConversationMemory(max_turns=50, max_tokens=120)
    for i in range(20):
        small.begin(i, "word " * 30).steps.append(StepRecord(["Reply."]))
    kept = small.history(small.begin(20, "now"))
    assert 1 < len(kept) < 10
    assert kept[-1].content == "now"


def test_perception_context_block() -> None:
    fixed = datetime.datetime(2026, 11, 26, 14, 5)
    context = PerceptionContext(now=lambda: fixed, max_age_s=10.0)
    empty = context.render(t=1.0)
    assert empty.splitlines() == [
        BEGIN,
        "time: Thursday 26 November 2026, 14:05",
        "speaker: direction unknown",
        END,
    ]
    context.observe(SoundDirection(t=5.0, azimuth_deg=87.4, confidence=0.8))
    context.observe(
        Faces(
            t=5.0,
            faces=(FaceRecord(id=3, box=(1, 2, 3, 4), bearing_deg=-12.0), FaceRecord(5, (9, 2, 3, 4), 20.0)),
        )
    )
    context.observe(ActiveSpeaker(t=5.1, face_id=3, azimuth_deg=87.0))
    lines = context.render(t=6.0).splitlines()
    assert "speaker: face 3, at 87°" in lines
    assert "faces: face 3 at -12°, face 5 at 20°" in lines
    stale = context.render(t=30.0).splitlines()
    assert "speaker: direction unknown" in stale
    assert not any(line.startswith("faces") for line in stale)
