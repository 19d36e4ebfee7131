"""The parts of a replay on their own: what ``--compare`` calls a difference, the recorded tool
results standing in for the tools, and the recorded model answers standing in for the model."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

from avagent.agent.compare import compare
from avagent.policy.model_tap import RecordedAnswerMissing, RecordedChatModel, request_key
from avagent.tools.recorded import RecordedOutcomes


def turn(
    n: int, heard: str, said: str, delay_ms: float = 286.0, call: str | None = None
) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = [{"type": "transcript", "text": heard, "final": True, "turn": n}]
    if call is not None:
        events.append({"type": "tool_call", "name": call, "args": {"direction": "left"}, "turn": n})
    events.append({"type": "say", "text": said, "turn": n})
    events.append({"type": "latency", "turn": n, "steps_ms": {"say": delay_ms}, "wall_ms": {"say": 3.0}})
    return events


def test_the_same_session_has_no_differences_whatever_the_wall_clock() -> None:
    recorded = turn(1, "turn left", "Turning left.", call="turn") + turn(2, "stop", "Stopping.")
    replayed = [dict(e) for e in recorded]
    replayed[3] = dict(replayed[3], wall_ms={"say": 90.0})
    assert compare(recorded, replayed) == []


def test_differences_are_named_by_turn_and_kind() -> None:
    recorded = turn(1, "turn left", "Turning left.", call="turn") + turn(2, "stop", "Stopping.")
    replayed = turn(1, "turn left", "Sorry.") + turn(2, "stop", "Stopping.", delay_ms=900.0)
    differences = compare(recorded, replayed)
    assert [(d.turn, d.what) for d in differences] == [(1, "tool_calls"), (1, "said"), (2, "delay")]
    assert differences[0].text == "turn 1 ('turn left'): tool calls turn(direction='left') -> (none)"
    assert "900 ms" in differences[2].text
    slower = turn(2, "stop", "Stopping.", delay_ms=900.0)
    assert compare(turn(2, "stop", "Stopping."), slower, tolerance_ms=1000.0) == []


def test_a_turn_heard_only_once_is_one_difference_not_a_shift() -> None:
    recorded = turn(1, "turn left", "a") + turn(2, "what time is it", "b") + turn(3, "stop", "c")
    replayed = turn(1, "turn left", "a") + turn(2, "stop", "c")
    differences = compare(recorded, replayed)
    assert [(d.what, d.recorded) for d in differences] == [("only_recorded", "what time is it")]


def test_a_cut_recording_compares_only_the_turns_it_saw_answered() -> None:
    recorded = [*turn(1, "turn left", "a"), {"type": "transcript", "text": "st", "final": True, "turn": 2}]
    replayed = turn(1, "turn left", "a") + turn(2, "stop", "c")
    assert compare(recorded, replayed, complete=False) == []
    assert compare(recorded, replayed) != []


def test_recorded_tool_results_answer_each_call_once_and_never_run_a_new_one() -> None:
    outcomes = RecordedOutcomes(
        [
            {"name": "turn", "args": {"direction": "left", "degrees": 90}, "ok": True, "result": "Turned."},
            {"name": "what_time", "args": {}, "ok": True, "result": "It is noon."},
            {"name": "broken", "args": None, "ok": True, "result": "left out"},
        ]
    )
    assert outcomes("turn", {"degrees": 90, "direction": "left"}).result == "Turned."
    again = outcomes("turn", {"degrees": 90, "direction": "left"})
    assert not again.ok
    assert "not run" in again.result
    assert outcomes("what_time", {}).result == "It is noon."
    assert outcomes.missing == ["turn(degrees=90, direction='left')"]


async def test_recorded_model_answers_by_the_users_words_and_the_step() -> None:
    first = {"words": "turn left", "step": 0, "chunks": [{"content": "Turning "}, {"content": "left."}]}
    first["ended"] = "complete"
    failed = {"words": "stop", "step": 0, "chunks": [], "ended": "failed", "error": {"message": "boom"}}
    model = RecordedChatModel(exchanges=[failed, first])
    asked = [SystemMessage("be brief"), HumanMessage("turn left")]
    assert request_key(asked) == ("turn left", 0)
    text = "".join([str(chunk.content) async for chunk in model.astream(asked)])
    assert text == "Turning left."
    with pytest.raises(RecordedAnswerMissing, match="turn left"):
        async for _chunk in model.astream(asked):  # each recorded answer answers once
            pass
    later = [
        *asked,
        AIMessage("", tool_calls=[{"name": "turn", "args": {}, "id": "c1"}]),
        ToolMessage("ok", tool_call_id="c1"),
    ]
    assert request_key(later) == ("turn left", 1)
    with pytest.raises(RuntimeError, match="boom"):
        async for _chunk in model.astream([HumanMessage("stop")]):
            pass
    assert model.unused == 0
