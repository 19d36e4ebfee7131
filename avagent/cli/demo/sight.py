"""The demo's sight act: a video of two drawn faces, one of them talking, and the questions "what do
you see" and "who is speaking", answered with no model at all, from the agent's own senses."""

from __future__ import annotations

from pathlib import Path

from avagent.agent.config import parse_config
from avagent.cli.demo.act import heading, run_act
from avagent.sim.faces import DrawnFace, write_faces_video
from avagent.sim.scene import synthesize_scene

QUESTIONS = ["what do you see", "who is speaking"]
FACES_DEG = (20.0, -20.0)
"""Two faces, 20 degrees to the left and 20 to the right of the camera's axis."""


async def run_sight(out: Path, *, seed: int = 7) -> bool:
    heading(
        "sight",
        "a video of two drawn faces (the left one talks) and two spoken questions; no language model",
    )
    scene = synthesize_scene(QUESTIONS, gap_s=3.0, snr_db=25.0, seed=seed)
    audio = scene.write(out / "scene.wav")
    talking = [(p.start, p.end) for p in scene.phrases]
    faces = [DrawnFace(FACES_DEG[0], talking), DrawnFace(FACES_DEG[1])]
    video = write_faces_video(out / "faces.avi", scene.duration + 1.0, faces)
    config = parse_config({"camera": {"source": str(video), "fps": 10}})
    result = await run_act(audio, out, config)
    calls = [(c["name"], c["args"].get("question")) for c in result.of_type("tool_call")]
    result.check(
        f"both questions call describe_scene: {calls}",
        calls == [("describe_scene", q) for q in QUESTIONS],
    )
    answers = [s["text"] for s in result.of_type("scene")]
    sight = answers[0] if answers else ""
    result.check(
        f'"what do you see" -> "{sight}"',
        "two faces" in sight and "to my left" in sight and "to my right" in sight,
    )
    speaker = answers[1] if len(answers) > 1 else ""
    result.check(f'"who is speaking" -> "{speaker}"', "to my left" in speaker and "speaking" in speaker)
    return result.ok
