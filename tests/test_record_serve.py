"""``avagent serve`` with ``record: {folder: ...}``: every call is recorded into a file of its own,
with the caller's audio and camera, the agent's voice and every event; it replays offline."""

from __future__ import annotations

from pathlib import Path

import pytest

from avagent.agent.config import parse_config
from avagent.agent.recording import check_serve_recording
from avagent.agent.resources import Resources
from avagent.agent.serve.server import running_server
from avagent.core.errors import ConfigError
from avagent.io.recording.contents import scan
from avagent.sim.calls import CallPeer, SpokenAudioTrack, colour_video_track
from avagent.sim.scene import synthesize_scene

pytestmark = pytest.mark.slow


async def test_each_call_is_recorded_into_its_own_file(resources: Resources, tmp_path: Path) -> None:
    config = parse_config(
        {
            "serve": {"loopback_only": True, "port": 0, "video_fps": 5.0},
            "faces": {"on_calls": True},
            "record": {"folder": str(tmp_path)},
        }
    )
    check_serve_recording(config)
    scene = synthesize_scene(["turn left"], lead_s=0.8, tail_s=1.0, snr_db=30.0, sample_rate=48000, seed=3)
    async with running_server(config, resources) as (_server, url):
        for video in (True, False):
            peer = CallPeer(url)
            try:
                track = colour_video_track((40, 200, 90)) if video else None
                await peer.call(SpokenAudioTrack(scene.audio), video=track)
                await peer.wait_for_event("speaking_ended")
            finally:
                await peer.hang_up()
    check_recordings(tmp_path)


def check_recordings(folder: Path) -> None:
    files = sorted(folder.glob("session-*.mcap"), key=lambda p: p.stat().st_mtime)
    assert len(files) == 2
    for path, video in zip(files, (True, False), strict=True):
        contents = scan(path)
        assert contents.cut is None
        assert contents.audio is not None
        assert contents.audio.sample_rate == 48000
        assert contents.duration > 1.0
        assert contents.voice_s > 0.5
        assert [t["name"] for t in contents.tools] == ["turn"]
        assert contents.has_video is video
        assert not contents.lockstep


def test_serve_refuses_one_file_for_every_call() -> None:
    config = parse_config({"record": {"file": "session.mcap"}})
    with pytest.raises(ConfigError, match=r"record\.folder"):
        check_serve_recording(config)
