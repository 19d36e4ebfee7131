"""Barge-in with real audio timing: the user speaks over a long answer that is still being
generated (a model over HTTP streaming slowly), paced in real time through the real VAD."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from avagent.agent.config import parse_config
from avagent.agent.files import run_on_file
from avagent.agent.resources import Resources
from avagent.policy.memory import INTERRUPTION_NOTE
from avagent.sim.scene import Scene, speak, synthesize_scene
from tests.conftest import SceneFactory
from tests.openai_server import Reply, scripted_server, tool_call

LONG = (
    "Here is a long story about a robot. It lived in a small flat by the sea. Every morning it "
    "watched the boats leave the harbour. One day it decided to follow them. It built a little "
    "raft out of old boxes. The raft floated better than anyone expected."
)


def silent_from(voice: np.ndarray, rate: int, start: float, block_s: float = 0.02) -> float:
    """The first media time from ``start`` on after which the voice stays silent."""
    n = round(block_s * rate)
    i = round(start * rate)
    loud = np.flatnonzero(np.abs(voice[i:]) > 1e-3)
    if loud.size == 0:
        return start
    # The last loud sample before the first gap longer than a block.
    gaps = np.flatnonzero(np.diff(loud) > n)
    last = loud[gaps[0]] if gaps.size else loud[-1]
    return float((i + last + 1) / rate)


async def test_user_speaks_over_a_long_answer_while_it_is_generated(
    make_scene: SceneFactory, resources: Resources
) -> None:
    scene, path = make_scene(["turn left", "what time is it"], gap_s=2.2, snr_db=25.0, seed=5)
    async with scripted_server(
        Reply(text="Okay. ", tool_calls=[tool_call("turn", {"direction": "left"}, "first")]),
        Reply(text=LONG, tool_calls=[tool_call("look_at", {"azimuth_deg": 90}, "late")], chunk_delay_s=0.06),
        lambda request: Reply(text="It is time for a break."),
    ) as server:
        config = parse_config({"policy": {"model": "scripted", "base_url": server.base_url}})
        # A paced file is never "idle" between frames: keep the silence after it short.
        result = await run_on_file(path, config, resources=resources, realtime=True, max_tail_s=1.5)
        requests = server.requests
        closed_early = server.closed_early

    cut_in = scene.phrases[1]
    assert [t["text"] for t in result.of_type("transcript")] == ["turn left", "what time is it"]
    # What executed, and what was dropped: the tool of the first step ran, the one that the
    # interrupted answer would have asked for at its end never did.
    assert [c["name"] for c in result.of_type("tool_call")] == ["turn"]
    [barge_in] = result.of_type("barge_in")
    assert cut_in.start < barge_in["t"] < cut_in.end
    # Generation was still going on when the user cut in: the model's stream was closed early.
    assert closed_early == 1
    spoken_turn1 = [s["text"] for s in result.of_type("speaking_started") if s["turn"] == 1]
    assert spoken_turn1[0] == "Okay."
    assert "The raft floated better than anyone expected." not in spoken_turn1
    cut = [e for e in result.of_type("speaking_ended") if e["interrupted"] and e["turn"] == 1]
    assert cut
    assert 0.0 < cut[0]["played_s"] < cut[0]["total_s"]
    # The agent's voice stopped soon after the user's onset (the bench measures this precisely).
    stopped = silent_from(result.voice, result.voice_rate, cut_in.start - 0.5)
    assert cut_in.start - 0.5 < stopped < cut_in.start + 0.3
    # The model was told what the user really heard of the interrupted answer.
    history = requests[2]["messages"]
    assistant = [m["content"] for m in history if m["role"] == "assistant" and m.get("content")]
    assert assistant[-1].endswith(INTERRUPTION_NOTE)
    heard = assistant[-1].removesuffix(INTERRUPTION_NOTE).strip()
    assert heard
    assert LONG.startswith(heard.split(" [")[0][:20])
    assert len(heard) < len(LONG)
    assert result.of_type("speaking_started")[-1]["text"] == "It is time for a break."
    assert not result.of_type("error")


async def test_a_short_backchannel_does_not_interrupt(tmp_path: Path, resources: Resources) -> None:
    scene = synthesize_scene(["turn left"], tail_s=6.0, snr_db=25.0, seed=6)
    audio = scene.audio.copy()
    # A 0.2 s "oh", faded out, while the agent is still talking: shorter than min_barge_in_ms.
    oh = speak("oh")[: round(0.2 * scene.sample_rate)]
    oh = oh * np.linspace(1.0, 0.0, oh.shape[0], dtype=np.float32) * (0.3 / float(np.max(np.abs(oh))))
    at = round((scene.phrases[0].end + 1.6) * scene.sample_rate)
    audio[at : at + oh.shape[0]] += oh
    path = tmp_path / "backchannel.wav"
    Scene(audio, scene.sample_rate, scene.phrases, scene.snr_db).write(path)
    async with scripted_server(
        Reply(text="Okay. ", tool_calls=[tool_call("turn", {"direction": "left"}, "first")]),
        Reply(text=LONG, tool_calls=[tool_call("look_at", {"azimuth_deg": 90}, "end")], chunk_delay_s=0.03),
        Reply(text="Done."),
    ) as server:
        config = parse_config({"policy": {"model": "scripted", "base_url": server.base_url}})
        result = await run_on_file(path, config, resources=resources, realtime=True, max_tail_s=1.0)
    assert result.of_type("pause_speaking")
    assert result.of_type("resume_speaking")
    assert not result.of_type("barge_in")
    assert [c["name"] for c in result.of_type("tool_call")] == ["turn", "look_at"]
    assert [t["text"] for t in result.of_type("transcript")] == ["turn left"]
    assert not any(e["interrupted"] for e in result.of_type("speaking_ended"))
    said = [s["text"] for s in result.of_type("say")]
    assert "The raft floated better than anyone expected." in said
    assert said[-1] == "Done."
