"""The whole offline path on synthesised recordings: VAD -> turns -> pocketsphinx -> commands ->
tools -> espeak-ng, checked against the known truth of each scene."""

from __future__ import annotations

import numpy as np

from avagent.agent.agent import Resources
from avagent.agent.testing import run_on_file
from tests.conftest import SceneFactory

COMMANDS = [
    ("turn left", "turn", {"direction": "left", "degrees": 90}),
    ("what time is it", "what_time", {}),
    ("turn right forty five degrees", "turn", {"direction": "right", "degrees": 45}),
    ("look at one hundred twenty degrees", "look_at", {"azimuth_deg": 120}),
    ("say thank you", "say", {"text": "thank you"}),
    ("stop", "stop", {}),
]


async def test_spoken_commands_become_tool_calls_and_spoken_answers(
    make_scene: SceneFactory, resources: Resources
) -> None:
    scene, path = make_scene([c[0] for c in COMMANDS], gap_s=3.5, snr_db=20.0, seed=1)
    result = await run_on_file(path, resources=resources)

    transcripts = [t["text"] for t in result.of_type("transcript")]
    assert transcripts == [c[0] for c in COMMANDS]
    calls = [(c["name"], c["args"]) for c in result.of_type("tool_call")]
    assert calls == [(name, args) for _, name, args in COMMANDS]
    assert all(r["ok"] for r in result.of_type("tool_result"))
    spoken = [s["text"] for s in result.of_type("speaking_started")]
    assert spoken[0] == "Turning left 90 degrees."
    assert spoken[-1] == "Stopping."
    # Each answer is heard after its command ended, and before the next command begins.
    starts = [s["t"] for s in result.of_type("speaking_started")]
    for phrase, start in zip(scene.phrases, starts, strict=True):
        assert phrase.end < start < phrase.end + 0.5
        voice = result.voice_between(start, start + 0.3)
        assert np.sqrt(np.mean(voice**2)) > 0.01, "the answer must be audible in the output"
    assert not result.of_type("error")
