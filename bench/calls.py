"""How many concurrent calls one ``avagent serve`` holds in real time, and what each costs.

    .venv/bin/python bench/calls.py [--counts 5,10,15,20,25,30,35,40] [--out bench/results/calls.json]

The server runs as the real command (``python -m avagent serve``, loopback only) in its own
process; callers are real aiortc peers in ``--client-processes`` other processes. Each caller
sends, in real time over Opus, a recording that says a command every 7 s or so (each caller
starts at a different point of it, as people would), so every call runs VAD and turn-taking on
every frame and now and then recognition, a tool call and a spoken answer.

For each number of calls, after a warm-up, over a measuring window:
- backlog: how far behind real time the server hands each call's audio to its agent (``/calls``
  ``lag_ms``, sampled four times a second). Real time holds when it neither grows nor spikes.
- answers: the share of commands answered with the right tool call, and the latency from the end
  of the spoken command to the tool call reaching the caller (p50/p95).
- connect time (offer sent to connection established) and server CPU.
Memory per call is measured once, on a server that has had one call: its resident memory with
``MEMORY_CALLS`` calls up, less without, per call (later steps reuse memory earlier calls freed).
A step holds when no call's backlog grows by more than 100 ms over the window (a straight line
through samples taken four times a second), none peaks more than 250 ms above its lowest, and at
least 95 % of the commands are answered; the ramp stops after the first step that does not hold.
Also measured: how long a caller that vanishes (killed, no hang-up) takes to disappear from the
server.

Client processes take CPU from the same cores as the server: they send pre-encoded Opus packets
(no encoding per caller) to keep that cost small, but it is still there, so the figures are a
lower bound for a server with the machine to itself.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fractions
import json
import os
import platform
import random
import re
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import av
import numpy as np

from avagent.core.messages import to_int16
from avagent.sim.scene import Scene, synthesize_scene

RATE = 48000
BLOCK = 960
COMMANDS = [("turn left", "turn"), ("what time is it", "what_time")]
MAX_LAG_GROWTH_MS = 100.0
MAX_LAG_PEAK_MS = 250.0
MIN_ANSWERED = 0.95
ANSWER_WITHIN_S = 4.0
MEMORY_CALLS = 10


def caller_scene() -> Scene:
    """What every caller says, over and over: a command every 7 s or so."""
    return synthesize_scene(
        [text for text, _tool in COMMANDS], lead_s=1.0, gap_s=6.0, tail_s=6.0, snr_db=30.0, sample_rate=RATE
    )


def opus_packets(audio: np.ndarray) -> list[bytes]:
    """``audio`` (mono float, 48 kHz) as 20 ms Opus packets, encoded once for every caller."""
    codec = av.CodecContext.create("libopus", "w")
    assert isinstance(codec, av.AudioCodecContext)
    codec.sample_rate = RATE
    codec.format = "s16"
    codec.layout = "mono"
    codec.bit_rate = 32000
    codec.time_base = fractions.Fraction(1, RATE)
    pcm = to_int16(audio)
    n = pcm.shape[0] // BLOCK
    packets: list[bytes] = []
    for i in range(n + 4):
        block = pcm[i * BLOCK : (i + 1) * BLOCK] if i < n else np.zeros(BLOCK, np.int16)
        frame = av.AudioFrame.from_ndarray(block.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.pts = i * BLOCK
        packets += [bytes(p) for p in codec.encode(frame)]
    return packets[:n]


# --- the callers (client processes) ------------------------------------------------------------


async def run_callers(url: str, calls: int, duration_s: float, window_from_s: float, seed: int) -> None:
    """Client process: ``calls`` callers for ``duration_s``; prints one JSON line of results."""
    from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

    from avagent.sim.calls import CallPeer

    scene = caller_scene()
    packets = opus_packets(scene.audio)
    loop_s = len(packets) * BLOCK / RATE
    time_base = fractions.Fraction(1, RATE)

    class LoopedOpusTrack(MediaStreamTrack):
        kind = "audio"

        def __init__(self, offset: int) -> None:
            super().__init__()
            self.offset = offset
            self.sent = 0
            self.start: float | None = None

        async def recv(self) -> av.Packet[Any]:
            if self.readyState != "live":
                raise MediaStreamError
            now = time.monotonic()
            if self.start is None:
                self.start = now
            else:
                delay = self.start + self.sent * BLOCK / RATE - now
                if delay > 0:
                    await asyncio.sleep(delay)
            packet = av.Packet(packets[(self.offset + self.sent) % len(packets)])
            packet.pts = self.sent * BLOCK
            packet.time_base = time_base
            self.sent += 1
            return packet

    rng = random.Random(seed)
    tracks = [LoopedOpusTrack(rng.randrange(len(packets))) for _ in range(calls)]
    peers = [CallPeer(url, keep_voice=False) for _ in range(calls)]
    arrivals: list[list[tuple[float, str]]] = [[] for _ in range(calls)]
    for i, peer in enumerate(peers):

        def on_event(event: dict[str, Any], i: int = i) -> None:
            if event.get("type") == "tool_call":
                arrivals[i].append((time.monotonic(), str(event.get("name"))))

        peer.on_event = on_event
    began = time.monotonic()
    results = await asyncio.gather(
        *(p.call(t) for p, t in zip(peers, tracks, strict=True)), return_exceptions=True
    )
    failures = [repr(r) for r in results if isinstance(r, BaseException)]
    print(json.dumps({"connected": [p.connect_s for p in peers if p.connect_s is not None]}), flush=True)
    await asyncio.sleep(max(0.0, began + duration_s - time.monotonic()))

    latencies: list[float] = []
    due = answered = 0
    for track, calls_arrivals in zip(tracks, arrivals, strict=True):
        if track.start is None:
            continue
        window = (track.start + window_from_s, track.start + duration_s - ANSWER_WITHIN_S)
        first_sample = track.offset * BLOCK / RATE
        for loop in range(int(duration_s / loop_s) + 2):
            for phrase, (_text, tool) in zip(scene.phrases, COMMANDS, strict=True):
                end = track.start + loop * loop_s + phrase.end - first_sample
                if not window[0] <= end <= window[1]:
                    continue
                due += 1
                replies = [
                    t for t, name in calls_arrivals if name == tool and end < t <= end + ANSWER_WITHIN_S
                ]
                if replies:
                    answered += 1
                    latencies.append(replies[0] - end)
    await asyncio.gather(*(p.hang_up() for p in peers), return_exceptions=True)
    print(
        json.dumps({"due": due, "answered": answered, "latencies": latencies, "failures": failures}),
        flush=True,
    )


# --- the server process ------------------------------------------------------------------------


class ServerProcess:
    """``python -m avagent serve`` on loopback, with its CPU time and memory."""

    def __init__(self, process: asyncio.subprocess.Process, url: str) -> None:
        self.process = process
        self.url = url

    @classmethod
    async def start(cls, max_calls: int) -> ServerProcess:
        config = Path(tempfile.mkdtemp()) / "serve.yaml"
        config.write_text(
            "serve:\n  loopback_only: true\n  port: 0\n"
            f"  max_calls: {max_calls}\n  idle_timeout_s: 3600\n  video_fps: 0\n",
            encoding="utf-8",
        )
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "avagent", "serve", "--config", str(config), stderr=asyncio.subprocess.PIPE
        )
        assert process.stderr is not None
        async with asyncio.timeout(120):
            while True:
                line = (await process.stderr.readline()).decode()
                if not line:
                    raise RuntimeError("the server exited before it listened")
                found = re.search(r"answering calls at (\S+?)[;\s]", line)
                if found:
                    return cls(process, found.group(1))

    def cpu_s(self) -> float:
        with open(f"/proc/{self.process.pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mb(self) -> float:
        with open(f"/proc/{self.process.pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
        raise RuntimeError("no VmRSS")

    async def get(self, path: str) -> dict[str, Any]:
        async with aiohttp.ClientSession() as http, http.get(self.url + path) as response:
            data: dict[str, Any] = await response.json()
            return data

    async def wait_for_calls(self, count: int, within_s: float = 30.0) -> float:
        """Seconds until the server has ``count`` calls."""
        start = time.monotonic()
        async with asyncio.timeout(within_s):
            while True:
                health = await self.get("healthz")
                if health["calls"] == count:
                    break
                await asyncio.sleep(0.05)
        return time.monotonic() - start

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            async with asyncio.timeout(30):
                await self.process.wait()


async def spawn_callers(url: str, calls: int, duration_s: float, window_from_s: float, seed: int) -> Any:
    return await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--client", url, str(calls), str(duration_s), str(window_from_s), str(seed),
        stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip


async def read_json_line(process: asyncio.subprocess.Process) -> dict[str, Any]:
    assert process.stdout is not None
    line = await process.stdout.readline()
    if not line:
        raise RuntimeError("a client process exited early")
    data: dict[str, Any] = json.loads(line)
    return data


async def sample_lags(server: ServerProcess, seconds: float) -> dict[str, list[tuple[float, float]]]:
    """Each call's backlog (``lag_ms``), four times a second for ``seconds``."""
    lags: dict[str, list[tuple[float, float]]] = {}
    end = time.monotonic() + seconds
    while (now := time.monotonic()) < end:
        for call in (await server.get("calls"))["calls"]:
            if call["lag_ms"] is not None:
                lags.setdefault(call["id"], []).append((now, call["lag_ms"]))
        await asyncio.sleep(0.25)
    return lags


def backlog_growth_ms(samples: list[tuple[float, float]], window_s: float) -> float:
    """How much a call's backlog grows over the window, from a straight line through the samples."""
    t = np.array([s[0] for s in samples])
    lag = np.array([s[1] for s in samples])
    slope = float(np.polyfit(t - t[0], lag, 1)[0])
    return slope * window_s


def percentile(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 4) if values else None


async def measure_step(
    server: ServerProcess, calls: int, processes: int, warmup_s: float, window_s: float, step: int
) -> dict[str, Any]:
    rss_idle = server.rss_mb()
    duration = warmup_s + window_s
    shares = [calls // processes + (1 if i < calls % processes else 0) for i in range(processes)]
    clients = [
        await spawn_callers(server.url, n, duration, warmup_s, seed=step * 100 + i)
        for i, n in enumerate(shares)
        if n > 0
    ]
    connected = [t for c in clients for t in (await read_json_line(c))["connected"]]
    await asyncio.sleep(warmup_s)
    cpu_start, wall_start = server.cpu_s(), time.monotonic()
    rss_calls = server.rss_mb()
    lags = await sample_lags(server, window_s - 1.0)
    last = {c["id"]: c for c in (await server.get("calls"))["calls"]}
    cpu = (server.cpu_s() - cpu_start) / (time.monotonic() - wall_start)
    results = [await read_json_line(c) for c in clients]
    for client in clients:
        await client.wait()
    await server.wait_for_calls(0)

    growth = [backlog_growth_ms(samples, window_s) for samples in lags.values() if len(samples) > 2]
    peaks = [max(lag for _t, lag in samples) - min(lag for _t, lag in samples) for samples in lags.values()]
    latencies = [t for r in results for t in r["latencies"]]
    due = sum(r["due"] for r in results)
    answered = sum(r["answered"] for r in results)
    dropped = sum(c["audio_dropped"] for c in last.values())
    holds = (
        len(connected) == calls
        and bool(growth)
        and max(growth) <= MAX_LAG_GROWTH_MS
        and max(peaks) <= MAX_LAG_PEAK_MS
        and due > 0
        and answered / due >= MIN_ANSWERED
    )
    return {
        "calls": calls,
        "holds_real_time": holds,
        "connected": len(connected),
        "connect_s_p50": percentile(connected, 50),
        "connect_s_p95": percentile(connected, 95),
        "backlog_growth_ms_max": round(max(growth), 1) if growth else None,
        "backlog_peak_ms_max": round(max(peaks), 1) if peaks else None,
        "audio_dropped": dropped,
        "commands_due": due,
        "commands_answered": answered,
        "answer_latency_s_p50": percentile(latencies, 50),
        "answer_latency_s_p95": percentile(latencies, 95),
        "server_cpu_cores": round(cpu, 3),
        "server_cpu_cores_per_call": round(cpu / calls, 4),
        "server_rss_mb": round(rss_calls, 1),
        "server_rss_growth_mb": round(rss_calls - rss_idle, 1),
        "client_failures": [f for r in results for f in r["failures"]][:5],
    }


async def vanished_caller_gone_s(server: ServerProcess) -> float:
    """Seconds from killing a connected caller to the server dropping its call."""
    caller = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "avagent.sim.calls", server.url, stdout=asyncio.subprocess.PIPE
    )
    assert caller.stdout is not None
    await caller.stdout.readline()
    await asyncio.sleep(1.0)
    caller.send_signal(signal.SIGKILL)
    await caller.wait()
    return await server.wait_for_calls(0)


async def run_bench(args: argparse.Namespace) -> dict[str, Any]:
    counts = [int(c) for c in args.counts.split(",")]
    server = await ServerProcess.start(max(counts) + 1)
    try:
        # A first call loads what loads lazily, and gives the connect time of an idle server.
        idle = await measure_step(server, 1, 1, 2.0, 4.0, step=0)
        # Memory per call, measured first, before later calls leave freed memory for the next.
        memory = await measure_step(server, MEMORY_CALLS, args.client_processes, 3.0, 5.0, step=0)
        steps = []
        for step, calls in enumerate(counts, start=1):
            result = await measure_step(
                server, calls, args.client_processes, args.warmup_s, args.window_s, step
            )
            steps.append(result)
            print(json.dumps(result), file=sys.stderr, flush=True)
            if not result["holds_real_time"]:
                break
        gone = await vanished_caller_gone_s(server)
    finally:
        await server.stop()
    holding = [s["calls"] for s in steps if s["holds_real_time"]]
    return {
        "benchmark": "calls",
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "settings": {
            "window_s": args.window_s,
            "warmup_s": args.warmup_s,
            "client_processes": args.client_processes,
            "max_backlog_growth_ms": MAX_LAG_GROWTH_MS,
            "max_backlog_peak_ms": MAX_LAG_PEAK_MS,
            "min_answered": MIN_ANSWERED,
        },
        "connect_s_idle": idle["connect_s_p50"],
        "memory_per_call_mb": round(memory["server_rss_growth_mb"] / MEMORY_CALLS, 2),
        "max_calls_in_real_time": max(holding, default=0),
        "vanished_caller_gone_s": round(gone, 3),
        "steps": steps,
    }


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        url, calls, duration, window_from, seed = sys.argv[2:7]
        asyncio.run(run_callers(url, int(calls), float(duration), float(window_from), int(seed)))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--counts", default="5,10,15,20,25,30,35,40")
    parser.add_argument("--warmup-s", type=float, default=6.0)
    parser.add_argument("--window-s", type=float, default=20.0)
    parser.add_argument("--client-processes", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("bench/results/calls.json"))
    args = parser.parse_args()
    report = asyncio.run(run_bench(args))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
