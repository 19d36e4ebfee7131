"""Benchmarks of recordings; writes bench/results/record.json (and prints it).

    .venv/bin/python bench/record.py [--quick]

1. Recording overhead: the CPU share of one core for one agent listening in real time to spoken
   commands in noise, with and without ``record:``, measured in the same run, alternating
   (without, with, without, with...), so that both see the same machine. The difference is the
   overhead. Target: under 0.5 % of a core. Because two real-time runs differ by about as much by
   chance (more on a busy machine: other processes' load changes a run's share), the two parts of
   the cost are measured on their own too, in the same runs: the writer's thread (its own CPU
   clock) and what the event loop's thread spends more with the recording (its thread clock, which
   leaves out the recogniser's worker processes and the other threads). Their sum is
   ``overhead_by_thread_percent``. The recording path alone (the stage and its writer fed a
   session's blocks, events and voice as fast as they go) is measured as well.
2. Bytes per minute of session: audio only, and with a camera (drawn faces with a camera's
   sensor noise, 640x480 at the camera's 15 frames/s, JPEG quality 75).
3. Replay speed: seconds of session replayed per second (times real time), audio only and with
   the video (today's agent sees every frame again: face detection sets the pace), beside the speed
   of the recorded run itself (the same file fed in lockstep).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from avagent.agent.config import AgentConfig, with_overrides
from avagent.agent.files import FileRun
from avagent.agent.replay import replay_recording
from avagent.agent.resources import Resources
from avagent.core.bus import Bus
from avagent.core.events import Say, SpeechStarted
from avagent.core.messages import SAMPLE_RATE, AudioFrame
from avagent.io.recording.contents import scan
from avagent.io.recording.stage import RecordingStage
from avagent.io.recording.writer import RecordingWriter, RecordSettings
from avagent.sim.faces import HEIGHT, WIDTH, column_for
from avagent.sim.faces import scene as face_scene
from avagent.sim.scene import synthesize_scene

RESULTS = Path(__file__).resolve().parent / "results"
COMMANDS = ["turn left", "what time is it", "turn right forty five degrees", "stop", "say good morning"]
TARGET_PERCENT = 0.5


def camera_video(path: Path, seconds: float, talking: list[tuple[float, float]], fps: int = 15) -> Path:
    """Two drawn faces, one talking, with a camera's sensor noise (identical frames would make
    the recording look far smaller than a real camera's)."""
    rng = np.random.default_rng(2)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, (WIDTH, HEIGHT))
    left, right = column_for(15.0, WIDTH, 60.0), column_for(-20.0, WIDTH, 60.0)
    try:
        for k in range(int(seconds * fps) + 1):
            mouth = float(k % 2) if any(a <= k / fps <= b for a, b in talking) else 0.0
            image = face_scene([(left, HEIGHT // 2, 110, mouth), (right, HEIGHT // 2, 100, 0.0)])
            noisy = image.astype(np.int16) + rng.normal(0.0, 3.0, image.shape).astype(np.int16)
            writer.write(np.clip(noisy, 0, 255).astype(np.uint8))
    finally:
        writer.release()
    return path


async def _listen(path: Path, resources: Resources, record: Path | None) -> tuple[float, float, float, float]:
    """Process CPU seconds, wall seconds, the event loop's thread CPU seconds, and the recording
    writer's thread CPU seconds."""
    config = AgentConfig()
    if record is not None:
        config = with_overrides(config, **{"record.file": str(record)})
    run = FileRun(path, config, resources=resources, realtime=True, max_tail_s=0.0, keep=False)
    stages = [s for s in run.agent.parts.extra if isinstance(s, RecordingStage)]
    cpu0, wall0, loop0 = time.process_time(), time.monotonic(), time.thread_time()
    await run.run()
    writer_cpu = stages[0].writer.cpu_s if stages else 0.0
    loop_cpu = time.thread_time() - loop0
    return time.process_time() - cpu0, time.monotonic() - wall0, loop_cpu, writer_cpu


async def overhead(path: Path, folder: Path, pairs: int, resources: Resources) -> dict[str, Any]:
    without: list[float] = []
    with_record: list[float] = []
    writer: list[float] = []
    loop: list[float] = []
    for i in range(pairs):
        cpu, wall, loop_cpu, _ = await _listen(path, resources, None)
        without.append(100 * cpu / wall)
        loop_without = 100 * loop_cpu / wall
        cpu, wall, loop_cpu, writer_cpu = await _listen(path, resources, folder / f"overhead{i}.mcap")
        with_record.append(100 * cpu / wall)
        writer.append(100 * writer_cpu / wall)
        loop.append(100 * loop_cpu / wall - loop_without)
    differences = [b - a for a, b in zip(without, with_record, strict=True)]
    return {
        "without_record_percent_of_one_core": [round(v, 2) for v in without],
        "with_record_percent_of_one_core": [round(v, 2) for v in with_record],
        "overhead_percent_median": round(statistics.median(differences), 3),
        "writer_thread_percent_of_one_core": [round(v, 3) for v in writer],
        "event_loop_thread_added_percent": [round(v, 3) for v in loop],
        "target_percent": TARGET_PERCENT,
        "method": f"{pairs} alternating pairs of real-time runs of the same file, one agent each",
    }


async def recording_path_cost(seconds: float, folder: Path) -> dict[str, Any]:
    """The recording stage and its writer alone: a session's input blocks (32 ms), the voice for
    half of it (20 ms blocks at 22,050 Hz) and 20 events a second, as fast as they go."""
    bus = Bus()
    settings = RecordSettings()
    writer = RecordingWriter(folder / "path.mcap", {"format": "1"})
    stage = RecordingStage(bus, writer, settings, voice_rate=22050)
    rng = np.random.default_rng(0)
    block = (rng.standard_normal((512, 1)) * 3000).astype(np.int16)
    voice = (rng.standard_normal(441) * 0.1).astype(np.float32)
    blocks = int(seconds / 0.032)
    task = asyncio.create_task(stage.run())
    await asyncio.sleep(0.05)
    cpu0, wall0, main0 = time.process_time(), time.monotonic(), time.thread_time()
    for i in range(blocks):
        t = i * 0.032
        await bus.publish(AudioFrame(block, SAMPLE_RATE, t, 0.0))
        if i % 2 == 0:
            await bus.publish(SpeechStarted(t=t))
        if i % 3 == 0:
            await bus.publish(Say(t=t, text="Turning left 90 degrees.", turn=i))
        if i % 2 == 1:
            for k in range(2):
                stage.voice(voice, t + 0.02 * k)
        if i % 64 == 0:
            await asyncio.sleep(0)
    for _ in range(100):  # the stage has taken everything published (its queue is empty)
        await asyncio.sleep(0)
    main = time.thread_time() - main0
    bus.close()
    await task
    cpu = time.process_time() - cpu0
    wall = time.monotonic() - wall0
    return {
        "session_seconds": round(blocks * 0.032, 1),
        "cpu_seconds": round(cpu, 3),
        "percent_of_one_core_in_real_time": round(100 * cpu / (blocks * 0.032), 3),
        "event_loop_thread_percent": round(100 * main / (blocks * 0.032), 3),
        "wall_seconds": round(wall, 3),
        "messages": writer.messages,
        "dropped": writer.dropped,
        "target_percent": TARGET_PERCENT,
    }


async def size_and_replay(
    path: Path, duration: float, video: Path | None, folder: Path, resources: Resources
) -> dict[str, Any]:
    record = folder / ("video.mcap" if video else "audio.mcap")
    changes: dict[str, Any] = {"record.file": str(record)}
    if video is not None:
        changes["camera.source"] = str(video)
    config = with_overrides(AgentConfig(), **changes)
    start = time.monotonic()
    await FileRun(path, config, resources=resources, keep=False).run()
    run_s = time.monotonic() - start
    contents = scan(record)
    start = time.monotonic()
    await replay_recording(record, resources=resources)
    replay_s = time.monotonic() - start
    return {
        "bytes": record.stat().st_size,
        "bytes_per_minute": round(record.stat().st_size * 60 / contents.duration),
        "video_frames": contents.video_frames,
        "video_size": contents.video_size,
        "session_seconds": round(contents.duration, 2),
        "replay_seconds": round(replay_s, 2),
        "replay_times_real_time": round(contents.duration / replay_s, 1),
        "recorded_run_times_real_time": round(contents.duration / run_s, 1),
    }


async def main_async(quick: bool) -> dict[str, Any]:
    repeat = 1 if quick else 4
    scene = synthesize_scene(COMMANDS * repeat, snr_db=15.0, seed=11)
    resources = Resources(AgentConfig())
    await resources.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            wav = scene.write(folder / "scene.wav")
            faces = camera_video(
                folder / "faces.avi", scene.duration, [(p.start, p.end) for p in scene.phrases]
            )
            audio_only = await size_and_replay(wav, scene.duration, None, folder, resources)
            with_video = await size_and_replay(wav, scene.duration, faces, folder, resources)
            path_cost = await recording_path_cost(30.0 if quick else 120.0, folder)
            cpu = await overhead(wav, folder, 2 if quick else 4, resources)
    finally:
        await resources.stop()
    loop_share = statistics.median(cpu["event_loop_thread_added_percent"])
    writer_share = statistics.median(cpu["writer_thread_percent_of_one_core"])
    return {
        "machine": {"python": platform.python_version(), "platform": platform.platform(terse=True)},
        "quick": quick,
        "scene_seconds": round(scene.duration, 1),
        "overhead": cpu,
        "recording_path": path_cost,
        "overhead_by_thread_percent": round(loop_share + writer_share, 3),
        "target_percent": TARGET_PERCENT,
        "audio_only": audio_only,
        "with_video": with_video,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a shorter scene and fewer repeats")
    args = parser.parse_args()
    results = asyncio.run(main_async(args.quick))
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "record.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
