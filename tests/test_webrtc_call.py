"""Calls end to end with a real aiortc caller in this process: speech in over Opus, events back
over the data channel, the agent's voice back as audio, camera frames onto the agent's bus."""

from __future__ import annotations

import numpy as np
import pytest

from avagent.agent.config import AgentConfig, parse_config
from avagent.agent.resources import Resources
from avagent.agent.serve.server import running_server
from avagent.core.events import Faces
from avagent.core.messages import VideoFrame
from avagent.core.streams import OverflowPolicy
from avagent.sim.calls import (
    CallPeer,
    PictureVideoTrack,
    SpokenAudioTrack,
    colour_video_track,
)
from avagent.sim.scene import synthesize_scene

pytestmark = pytest.mark.slow


def call_config(**serve: object) -> AgentConfig:
    return parse_config({"serve": {"loopback_only": True, "port": 0, **serve}})


def voiced_spans(voice: np.ndarray, rate: int = 48000, block: int = 960) -> list[tuple[float, float]]:
    """(start, end) seconds of each stretch of speech in ``voice``, pauses between words bridged."""
    n = voice.shape[0] // block
    rms = np.sqrt(np.mean(voice[: n * block].reshape(n, block) ** 2, axis=1))
    spans: list[tuple[float, float]] = []
    for i in np.flatnonzero(rms > 0.01):
        start, end = i * block / rate, (i + 1) * block / rate
        if spans and start - spans[-1][1] < 0.35:
            spans[-1] = (spans[-1][0], end)
        else:
            spans.append((start, end))
    return spans


async def test_a_spoken_command_comes_back_as_a_tool_call_and_a_spoken_answer(resources: Resources) -> None:
    scene = synthesize_scene(["turn left"], lead_s=0.8, tail_s=1.0, snr_db=30.0, sample_rate=48000, seed=3)
    async with running_server(call_config(), resources) as (server, url):
        peer = CallPeer(url)
        try:
            await peer.call(SpokenAudioTrack(scene.audio))
            assert server.sessions.keys() == {peer.call_id}

            call = await peer.wait_for_event("tool_call")
            assert (call["name"], call["args"]) == ("turn", {"direction": "left", "degrees": 90})
            ended = await peer.wait_for_event("speaking_ended")
            await peer.wait_for_event("turn_ended")
        finally:
            await peer.hang_up()

    # The events follow the JSON contract, on the caller's timeline (media time from its first frame).
    assert [e["type"] for e in peer.events][:2] == ["speech_started", "speech_ended"]
    assert all(isinstance(e["t"], float) for e in peer.events)
    started = peer.of_type("speech_started")[0]
    assert abs(started["t"] - scene.phrases[0].start) < 0.25
    assert peer.of_type("transcript")[0]["text"] == "turn left"
    assert peer.of_type("say")[0]["text"] == "Turning left 90 degrees."
    assert not peer.of_type("error")
    # The caller heard the whole answer, and silence around it.
    assert ended["interrupted"] is False
    [(start, end)] = voiced_spans(peer.voice)
    assert end - start == pytest.approx(ended["total_s"], abs=0.25)
    assert peer.voice_frames > peer.voice_loud_frames > 0


async def test_speaking_over_the_agent_cuts_its_voice_and_is_answered(resources: Resources) -> None:
    # The second command starts while the agent is still answering the first.
    scene = synthesize_scene(
        ["turn right forty five degrees", "look at one hundred twenty degrees"],
        lead_s=0.8,
        gap_s=1.0,
        tail_s=1.5,
        snr_db=30.0,
        sample_rate=48000,
        seed=4,
    )
    async with running_server(call_config(), resources) as (_server, url):
        peer = CallPeer(url)
        try:
            await peer.call(SpokenAudioTrack(scene.audio))
            await peer.wait_for_event("barge_in")
            look = await peer.wait_for_event("tool_call", count=2)
            await peer.wait_for_event("speaking_ended", count=2)
        finally:
            await peer.hang_up()

    assert (look["name"], look["args"]) == ("look_at", {"azimuth_deg": 120})
    first, second = peer.of_type("speaking_ended")[:2]
    assert first["text"] == "Turning right 45 degrees."
    assert first["interrupted"] is True
    assert first["played_s"] < first["total_s"]
    barge = peer.of_type("barge_in")[0]
    assert scene.phrases[1].start < barge["t"] < scene.phrases[1].end
    # What reached the caller is what was played: the cut answer and the whole second one.
    cut, whole = voiced_spans(peer.voice)
    assert cut[1] - cut[0] == pytest.approx(first["played_s"], abs=0.25)
    assert whole[1] - whole[0] == pytest.approx(second["total_s"], abs=0.25)


async def test_camera_frames_reach_the_agent_as_video_frames(resources: Resources) -> None:
    silence = np.zeros(48000, dtype=np.float32)
    bgr = (40, 200, 90)
    async with running_server(call_config(video_fps=10.0), resources) as (server, url):
        peer = CallPeer(url)
        try:
            await peer.call(SpokenAudioTrack(silence), video=colour_video_track(bgr))
            assert peer.call_id is not None
            session = server.sessions[peer.call_id]
            frames = session.agent.bus.subscribe(
                VideoFrame, name="test.video", maxsize=1, policy=OverflowPolicy.KEEP_LATEST
            )
            first = await frames.get()
            second = await frames.get()
        finally:
            await peer.hang_up()

    assert isinstance(first, VideoFrame)
    assert (first.width, first.height) == (320, 240)
    # VP8 is lossy: the colour comes back close, not exact.
    mean = first.image.reshape(-1, 3).mean(axis=0)
    assert np.allclose(mean, bgr, atol=12)
    assert isinstance(second, VideoFrame)
    assert second.t_capture > first.t_capture


async def test_faces_in_the_callers_video_when_asked_for(resources: Resources) -> None:
    from avagent.sim.faces import blank, draw_face

    picture = blank()
    draw_face(picture, 200, 240, 160)
    config = parse_config(
        {"serve": {"loopback_only": True, "port": 0, "video_fps": 5.0}, "faces": {"on_calls": True}}
    )
    async with running_server(config, resources) as (server, url):
        peer = CallPeer(url)
        try:
            await peer.call(
                SpokenAudioTrack(np.zeros(48000, dtype=np.float32)), video=PictureVideoTrack(picture)
            )
            assert peer.call_id is not None
            agent = server.sessions[peer.call_id].agent
            assert agent.parts.spatial.video is None, "a call's agent never opens the local camera"
            faces = agent.bus.subscribe(Faces, name="test.faces")
            seen = await faces.get()
            while not seen.faces:
                seen = await faces.get()
        finally:
            await peer.hang_up()
    assert isinstance(seen, Faces)
    assert len(seen.faces) == 1
    # Left of the image centre is left of the camera's axis: a positive signed bearing.
    assert seen.faces[0].camera_deg > 5.0


async def test_a_call_sees_no_faces_unless_asked(resources: Resources) -> None:
    async with running_server(call_config(), resources) as (server, url):
        peer = CallPeer(url)
        try:
            await peer.call(SpokenAudioTrack(np.zeros(48000, dtype=np.float32)))
            assert peer.call_id is not None
            assert server.sessions[peer.call_id].agent.parts.spatial.faces is None
        finally:
            await peer.hang_up()
