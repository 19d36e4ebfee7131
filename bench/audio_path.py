"""Benchmarks of the audio path; writes bench/results/audio_path.json (and prints it).

    .venv/bin/python bench/audio_path.py [--quick]

1. VAD cost per 32 ms chunk through the listening stage (resampling, chunking, Silero, segmenter,
   turn detector, audio history, events on the bus) against the bare onnxruntime model on the same
   audio. Target: within 1.3x of raw.
2. CPU share of one core for one agent listening in real time, everything included (worker
   processes too). Target: under 3 %.
3. How many agents, each fed in real time from a file, one process on this machine's cores keeps
   up with: frame lag p99 under 100 ms and not growing. Target: at least 50.
4. End of speech -> first sample of the spoken reply (played by a speaker clocked by the wall
   clock, in 20 ms blocks like a sound card), p50 and p95 over 24 commands: with an instant
   recogniser, policy and synthesiser (target: p95 <= hangover + 60 ms), and on the offline path
   with real pocketsphinx and espeak-ng (target: p50 <= hangover + 80 ms).

Recognition accuracy and echo cancellation are in bench/hearing.py.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from avagent.agent.config import AgentConfig
from avagent.agent.files import FileRun
from avagent.agent.resources import Resources
from avagent.core.bus import Bus
from avagent.core.events import Event, Transcript
from avagent.core.messages import SAMPLE_RATE, AudioFrame
from avagent.io.playback import Playback
from avagent.perception.asr.base import Recognition
from avagent.perception.listening import Listener
from avagent.perception.vad import CHUNK, load_onnx_session
from avagent.policy.base import Actions
from avagent.sim.scene import Scene, noise, synthesize_scene

RESULTS = Path(__file__).resolve().parent / "results"
COMMANDS = [
    "turn left",
    "what time is it",
    "turn right forty five degrees",
    "stop",
    "say good morning",
    "turn right",
]


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def children_cpu_seconds() -> float:
    """CPU seconds used so far by this process's live children (the recogniser's workers)."""
    total = 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == me:
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


# --- 1. VAD cost ---------------------------------------------------------------------------------


def vad_cost(scene: Scene, repeats: int) -> dict[str, Any]:
    audio = scene.audio
    n_chunks = int(audio.shape[0]) // CHUNK
    session = load_onnx_session()

    def raw() -> float:
        window = np.zeros((1, 64 + CHUNK), dtype=np.float32)
        feeds = {
            "input": window,
            "state": np.zeros((2, 1, 128), np.float32),
            "sr": np.array(SAMPLE_RATE, np.int64),
        }
        start = time.perf_counter()
        for i in range(n_chunks):
            window[0, :64] = window[0, CHUNK:]
            window[0, 64:] = audio[i * CHUNK : (i + 1) * CHUNK]
            _, feeds["state"] = session.run(None, feeds)
        return (time.perf_counter() - start) / n_chunks

    async def pipeline() -> float:
        bus = Bus()
        listener = Listener(bus)
        sink = bus.subscribe(Event, name="sink", maxsize=100_000)
        frames = [
            AudioFrame(audio[i * CHUNK : (i + 1) * CHUNK, None], SAMPLE_RATE, i * CHUNK / SAMPLE_RATE, 0.0)
            for i in range(n_chunks)
        ]
        start = time.perf_counter()
        for frame in frames:
            await listener.handle(frame)
        elapsed = time.perf_counter() - start
        assert listener.chunks == n_chunks
        while sink.get_nowait() is not None:
            pass
        return elapsed / n_chunks

    raw_times, pipe_times = [], []
    for _ in range(repeats):
        raw_times.append(raw())
        pipe_times.append(asyncio.run(pipeline()))
    raw_us, pipe_us = min(raw_times) * 1e6, min(pipe_times) * 1e6
    return {
        "chunks": n_chunks,
        "raw_onnxruntime_us_per_chunk": round(raw_us, 1),
        "pipeline_us_per_chunk": round(pipe_us, 1),
        "ratio": round(pipe_us / raw_us, 3),
        "target_ratio": 1.3,
        "method": f"best of {repeats} passes over {scene.duration:.0f} s of 16 kHz speech in noise",
    }


# --- 2. CPU share of one listening agent ---------------------------------------------------------


async def cpu_share(path: Path, duration: float, resources: Resources) -> dict[str, Any]:
    run = FileRun(path, resources=resources, realtime=True, max_tail_s=0.0, keep=False)
    cpu0, child0, wall0 = time.process_time(), children_cpu_seconds(), time.monotonic()
    await run.run()
    cpu = time.process_time() - cpu0
    child = children_cpu_seconds() - child0
    wall = time.monotonic() - wall0
    return {
        "seconds": round(wall, 1),
        "process_cpu_percent_of_one_core": round(100 * cpu / wall, 2),
        "with_recogniser_workers_percent": round(100 * (cpu + child) / wall, 2),
        "target_percent": 3.0,
        "scene": f"{duration:.0f} s of pink noise at 15 dB SNR, {len(COMMANDS)} spoken commands answered",
    }


# --- 3. Many agents in one process ---------------------------------------------------------------


class _NoRecognizer:
    name = "none"

    async def transcribe(self, audio: np.ndarray, sample_rate: int) -> Recognition:
        return Recognition("")

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


async def many_agents(path: Path, count: int, resources: Resources) -> dict[str, Any]:
    lags: list[list[float]] = [[] for _ in range(count)]
    runs = []
    for i in range(count):
        # Listening capacity: no speaker pulls the voice (a call's voice track costs about 0.05 % of a
        # core more per agent), as in every earlier run of this figure.
        run = FileRun(path, resources=resources, realtime=True, max_tail_s=0.0, keep=False, speaker=False)
        handle = run.agent.parts.listener.handle

        async def timed(
            frame: AudioFrame, _handle: Callable[..., Any] = handle, _lags: list[float] = lags[i]
        ) -> None:
            await _handle(frame)
            due = frame.t_capture + frame.duration
            _lags.append(time.monotonic() - due)

        run.agent.parts.listener.handle = timed  # type: ignore[method-assign]
        runs.append(run)

    async def start(run: FileRun) -> None:
        # Sound cards and calls do not tick in phase: start within one block of each other.
        await asyncio.sleep(random.random() * 0.032)
        await run.run()

    cpu0, wall0 = time.process_time(), time.monotonic()
    await asyncio.gather(*(start(run) for run in runs))
    cpu = time.process_time() - cpu0
    wall = time.monotonic() - wall0
    everything = [x for per in lags for x in per]
    halves = [
        [x for per in lags for x in per[: len(per) // 2]],
        [x for per in lags for x in per[len(per) // 2 :]],
    ]
    p99_first, p99_second = percentile(halves[0], 99) * 1000, percentile(halves[1], 99) * 1000
    p99 = percentile(everything, 99) * 1000
    return {
        "agents": count,
        "frames": len(everything),
        "lag_p50_ms": round(percentile(everything, 50) * 1000, 2),
        "lag_p99_ms": round(p99, 2),
        "lag_max_ms": round(max(everything) * 1000, 2),
        "lag_p99_first_half_ms": round(p99_first, 2),
        "lag_p99_second_half_ms": round(p99_second, 2),
        "process_cpu_percent_of_one_core": round(100 * cpu / wall, 1),
        "keeps_up": p99 < 100.0 and p99_second < max(2 * p99_first, p99_first + 20.0),
    }


# --- 4. End of speech to first reply sample ------------------------------------------------------


class _Instant:
    """An instant recogniser, policy and synthesiser: what is left is the runtime's own latency."""

    name = "instant"
    sample_rate = 22050

    def __init__(self) -> None:
        t = np.arange(2205) / 22050
        self._beep = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)

    async def transcribe(self, audio: np.ndarray, sample_rate: int) -> Recognition:
        return Recognition("stop")

    async def synthesize(self, text: str) -> np.ndarray:
        return self._beep

    async def respond(self, transcript: Transcript, actions: Actions) -> None:
        await actions.say("Done.")

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


class WallClockSpeaker:
    """Pulls the playback in 20 ms blocks paced by the wall clock, as a sound card does, and notes
    the wall time at which the first audible sample of each answer is played."""

    def __init__(self, playback: Playback, block_s: float = 0.02) -> None:
        self._playback = playback
        self._block = round(playback.sample_rate * block_s)
        self._block_s = self._block / playback.sample_rate
        self.first_samples: list[float] = []
        self._last_loud = -1.0

    async def run(self, until: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        next_tick = loop.time()
        while not until.is_set():
            next_tick += self._block_s
            await asyncio.sleep(max(0.0, next_tick - loop.time()))
            now = time.monotonic()
            block = self._playback.pull(self._block, 0.0)
            loud = np.flatnonzero(np.abs(block) > 1e-3)
            if loud.size:
                first = now + loud[0] / self._playback.sample_rate
                # Audible after a silence longer than any inside an answer: a new answer begins.
                if first - self._last_loud > 0.25:
                    self.first_samples.append(first)
                self._last_loud = now + loud[-1] / self._playback.sample_rate


async def reply_latency(scene: Scene, path: Path, resources: Resources, policy: Any) -> dict[str, Any]:
    run = FileRun(path, resources=resources, realtime=True, policy=policy, speaker=False, keep=False)
    speaker = WallClockSpeaker(run.agent.playback)
    done = asyncio.Event()
    speaker_task = asyncio.create_task(speaker.run(done))
    start_wall = time.monotonic()
    await run.run()
    done.set()
    await speaker_task
    # The file's media time 0 is the wall instant the source started (within a millisecond). An
    # answer counts for a command if it starts before the next command does.
    latencies = []
    for i, phrase in enumerate(scene.phrases):
        end = start_wall + phrase.end
        following = scene.phrases[i + 1].start if i + 1 < len(scene.phrases) else scene.duration + 5.0
        until = start_wall + following
        after = [s for s in speaker.first_samples if end < s < until]
        if after:
            latencies.append((after[0] - end) * 1000)
    hangover = AgentConfig().turns.hangover_ms
    return {
        "commands": len(scene.phrases),
        "answered": len(latencies),
        "p50_ms": round(percentile(latencies, 50), 1),
        "p95_ms": round(percentile(latencies, 95), 1),
        "max_ms": round(max(latencies), 1) if latencies else None,
        "hangover_ms": hangover,
        "p50_over_hangover_ms": round(percentile(latencies, 50) - hangover, 1),
        "p95_over_hangover_ms": round(percentile(latencies, 95) - hangover, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="smaller runs, to check that the benchmark works"
    )
    parser.add_argument("--agents", type=int, nargs="*", default=None, help="agent counts to try")
    args = parser.parse_args()
    random.seed(1)
    out: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "date": time.strftime("%Y-%m-%d %H:%M"),
    }
    work = Path(tempfile.mkdtemp(prefix="avagent-bench-"))
    listening = synthesize_scene(COMMANDS, gap_s=6.0 if not args.quick else 2.0, snr_db=15.0, seed=3)
    listening_path = listening.write(work / "listening.wav")

    print("1/4 VAD cost per chunk", file=sys.stderr)
    out["vad_cost"] = vad_cost(listening, repeats=2 if args.quick else 5)

    print("2/4 CPU share of one listening agent (real time)", file=sys.stderr)
    resources = Resources(AgentConfig())
    asyncio.run(resources.start())  # the recogniser's processes start outside what is measured
    seconds = 20.0 if args.quick else 60.0
    room = noise(int(seconds * 16000), "pink", np.random.default_rng(8)) * np.float32(0.01)
    room_path = work / "room.wav"
    sf.write(str(room_path), room, 16000, subtype="PCM_16")
    out["cpu_one_agent_listening"] = asyncio.run(cpu_share(room_path, seconds, resources))
    out["cpu_one_agent_listening"]["scene"] = (
        f"{seconds:.0f} s of a quiet room (pink noise at -40 dBFS), nobody talking"
    )
    out["cpu_one_agent_conversation"] = asyncio.run(cpu_share(listening_path, listening.duration, resources))

    print("3/4 agents per process (real time)", file=sys.stderr)
    quiet = Resources(resources.config, recognizer=_NoRecognizer(), synthesizer=resources.synthesizer)
    crowd_scene = synthesize_scene(COMMANDS[:3], gap_s=3.0, snr_db=15.0, seed=4, tail_s=3.0)
    crowd_path = crowd_scene.write(work / "crowd.wav")
    counts = args.agents or ([10, 25] if args.quick else [25, 50, 75, 100])
    out["agents_per_process"] = []
    for count in counts:
        result = asyncio.run(many_agents(crowd_path, count, quiet))
        print(
            f"   {count} agents: lag p99 {result['lag_p99_ms']} ms, keeps up: {result['keeps_up']}",
            file=sys.stderr,
        )
        out["agents_per_process"].append(result)
        if not result["keeps_up"]:
            break
    kept = [r["agents"] for r in out["agents_per_process"] if r["keeps_up"]]
    out["max_agents_keeping_up"] = max(kept) if kept else 0
    out["agents_target"] = 50

    print("4/4 end of speech -> first reply sample (real time)", file=sys.stderr)
    n = 6 if args.quick else 24
    phrases = [COMMANDS[i % len(COMMANDS)] for i in range(n)]
    commands = synthesize_scene(phrases, gap_s=2.5, snr_db=20.0, seed=5)
    commands_path = commands.write(work / "commands.wav")
    instant = _Instant()
    instant_resources = Resources(AgentConfig(), recognizer=instant, synthesizer=instant)
    out["reply_latency_instant"] = asyncio.run(
        reply_latency(commands, commands_path, instant_resources, instant)
    )
    out["reply_latency_instant"]["target_p95_over_hangover_ms"] = 60
    out["reply_latency_offline"] = asyncio.run(reply_latency(commands, commands_path, resources, None))
    out["reply_latency_offline"]["target_p50_over_hangover_ms"] = 80
    asyncio.run(resources.stop())

    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "audio_path.json").write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
