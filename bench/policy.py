"""Policy loop figures, as JSON (bench/results/policy.json and stdout).

1. Runtime overhead, final transcript -> first audio sample, with an instant scripted model: the
   policy stage, the LLM loop (LangChain streaming, sentence cutting), speech out with espeak-ng,
   up to the moment the first sentence's samples are in the playback queue (the next block a
   speaker pulls). Synthesis of that sentence is timed too, and subtracted to give the runtime's
   own share. Target: p95 <= 15 ms.
2. Barge-in stop latency: a real agent on a spoken command, paced in real time, answering with a
   long, slowly streamed answer; the user cuts in at a random moment while it is generated and
   spoken. From the VAD onset of that speech: when the agent's voice went silent in its rendered
   output (media time), when playback was paused and when the policy stopped reading the model's
   stream (wall clock), and when the answer was cancelled (the barge-in). Target: p95 <= 150 ms.

    .venv/bin/python bench/policy.py [--turns 200] [--trials 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from avagent.agent.agent import Agent
from avagent.agent.config import AgentConfig
from avagent.agent.files import run_on_file
from avagent.agent.resources import Resources
from avagent.core.bus import Bus
from avagent.core.events import BargeIn, PauseSpeaking, SpeechStarted, Transcript
from avagent.io.actuators import SimulatedBody
from avagent.io.playback import Playback, Utterance
from avagent.io.speech_out import SpeechOut
from avagent.io.tts.espeak import EspeakSynthesizer
from avagent.policy.llm import LLMPolicy
from avagent.policy.runner import PolicyRunner
from avagent.sim.scene import Scene, speak, synthesize_scene
from avagent.sim.scripted_model import ScriptedChatModel, scripted
from avagent.tools.builtin import builtin_tools
from avagent.tools.executor import ToolExecutor
from avagent.tools.registry import ToolRegistry

RESULTS = Path(__file__).parent / "results" / "policy.json"
LONG = (
    "Here is a long story about a robot. It lived in a small flat by the sea. Every morning it "
    "watched the boats leave the harbour. One day it decided to follow them. It built a little "
    "raft out of old boxes. The raft floated better than anyone expected."
)


def stats(values: list[float]) -> dict[str, float]:
    a = np.asarray(values, dtype=np.float64)
    return {
        "n": int(a.size),
        "p50": round(float(np.percentile(a, 50)), 2),
        "p95": round(float(np.percentile(a, 95)), 2),
        "max": round(float(a.max()), 2),
        "mean": round(float(a.mean()), 2),
    }


class TimedSynth:
    """The espeak synthesiser, timing each call."""

    def __init__(self, inner: EspeakSynthesizer) -> None:
        self.inner = inner
        self.name = inner.name
        self.sample_rate = inner.sample_rate
        self.durations: list[float] = []

    async def start(self) -> None:
        await self.inner.start()

    async def stop(self) -> None:
        await self.inner.stop()

    async def synthesize(self, text: str) -> np.ndarray:
        start = time.perf_counter()
        audio = await self.inner.synthesize(text)
        self.durations.append(time.perf_counter() - start)
        return audio


async def runtime_overhead(turns: int, with_tool: bool) -> dict[str, Any]:
    bus = Bus()
    synth = TimedSynth(EspeakSynthesizer())
    playback = Playback(synth.sample_rate, bus.publish_nowait)
    first_audio: dict[int, float] = {}
    synth_first: dict[int, float] = {}
    enqueue = playback.enqueue

    def timed_enqueue(utterance: Utterance) -> None:
        enqueue(utterance)
        if utterance.turn is not None and utterance.turn not in first_audio:
            first_audio[utterance.turn] = time.perf_counter()
            synth_first[utterance.turn] = synth.durations[-1]

    playback.enqueue = timed_enqueue  # type: ignore[method-assign]
    speech_out = SpeechOut(bus, synth, playback)
    executor = ToolExecutor(ToolRegistry(builtin_tools(SimulatedBody())))
    answers: list[Any] = []
    for _ in range(turns):
        if with_tool:
            from langchain_core.messages import AIMessage

            call = {"name": "what_time", "args": {}, "id": "t"}
            answers.append(AIMessage(content="", tool_calls=[call]))
        answers.append("Sure. It is a fine day, and I am happy to help you with anything.")
    model = scripted(*answers)
    policy = LLMPolicy(model, executor)
    runner = PolicyRunner(bus, policy, executor)
    tasks = [asyncio.create_task(runner.run()), asyncio.create_task(speech_out.run())]
    sent: dict[int, float] = {}
    await bus.publish(Transcript(t=0.0, text="warm up", turn=0))
    await _drain(bus, playback)
    for turn in range(1, turns):
        sent[turn] = time.perf_counter()
        await bus.publish(Transcript(t=float(turn), text="how are you", turn=turn))
        await _drain(bus, playback)
    bus.close()
    await asyncio.wait(tasks, timeout=2.0)
    totals = [(first_audio[t] - sent[t]) * 1000.0 for t in sent]
    synthesis = [synth_first[t] * 1000.0 for t in sent]
    return {
        "transcript_to_first_audio_ms": stats(totals),
        "first_sentence_synthesis_ms": stats(synthesis),
        "runtime_overhead_ms": stats([a - b for a, b in zip(totals, synthesis, strict=True)]),
    }


async def _drain(bus: Bus, playback: Playback) -> None:
    await bus.activity.settled()
    while playback.speaking:
        playback.pull(4096, 0.0)
    await bus.activity.settled()


def voice_stop(voice: np.ndarray, rate: int, onset: float, quiet_s: float = 0.3) -> float:
    """Media time at which the agent's voice fell silent (for at least ``quiet_s``) after ``onset``;
    ``onset`` itself when it was already silent then."""
    start = round(onset * rate)
    loud = np.flatnonzero(np.abs(voice[start:]) > 1e-3)
    if loud.size == 0 or loud[0] > quiet_s * rate:
        return onset
    gaps = np.flatnonzero(np.diff(loud) > quiet_s * rate)
    last = loud[gaps[0]] if gaps.size else loud[-1]
    return float((start + last + 1) / rate)


async def barge_in_trial(resources: Resources, seed: int, tmp: Path) -> dict[str, float] | None:
    rng = random.Random(seed)
    base = synthesize_scene(["turn left"], lead_s=0.5, tail_s=5.0, snr_db=25.0, seed=seed)
    cut_at = base.phrases[0].end + 0.8 + rng.uniform(0.3, 1.8)
    audio = base.audio.copy()
    words = speak("what time is it")
    words = words * np.float32(0.3 / float(np.max(np.abs(words))))
    i = round(cut_at * base.sample_rate)
    audio[i : i + words.shape[0]] += words
    path = tmp / f"barge{seed}.wav"
    Scene(audio[: i + words.shape[0] + base.sample_rate], base.sample_rate, base.phrases, 25.0).write(path)
    model: ScriptedChatModel = scripted("Okay. " + LONG, "Stopping.", chunk_delay_s=0.04)
    requests_started: list[int] = []
    model.on_request = lambda _messages: requests_started.append(len(model.yielded_at))
    marks: dict[str, float] = {}

    def setup(agent: Agent) -> None:
        pause = agent.playback.pause
        cancel = agent.parts.policy_runner._worker.cancel

        def timed_pause() -> None:
            marks.setdefault("paused", time.monotonic())
            pause()

        async def timed_cancel() -> int:
            marks.setdefault("cancel_called", time.monotonic())
            dropped = await cancel()
            marks.setdefault("cancelled", time.monotonic())
            return dropped

        agent.playback.pause = timed_pause  # type: ignore[method-assign]
        agent.parts.policy_runner._worker.cancel = timed_cancel  # type: ignore[method-assign]

    registry = ToolRegistry(builtin_tools(SimulatedBody()))
    policy = LLMPolicy(model, ToolExecutor(registry))
    result = await run_on_file(
        path,
        AgentConfig(),
        resources=resources,
        tools=registry,
        policy=policy,
        realtime=True,
        setup=setup,
        max_tail_s=0.5,
    )
    onsets = [e for e in result.events if isinstance(e, SpeechStarted) and e.t > cut_at - 0.3]
    pauses = [e for e in result.events if isinstance(e, PauseSpeaking)]
    barges = [e for e in result.events if isinstance(e, BargeIn)]
    if not onsets or not pauses or not barges or "paused" not in marks:
        return None
    onset = onsets[0]
    silent_at = voice_stop(result.voice, result.voice_rate, onset.t)
    first_answer = model.yielded_at[: requests_started[1]] if len(requests_started) > 1 else model.yielded_at
    after = [t for t in first_answer if t >= onset.t_capture]
    last_chunk = max(after) if after else onset.t_capture
    return {
        "voice_stop_after_onset_ms": (silent_at - onset.t) * 1000.0,
        "voice_stop_after_true_onset_ms": (silent_at - cut_at) * 1000.0,
        "playback_paused_after_onset_ms": (marks["paused"] - onset.t_capture) * 1000.0,
        "generation_held_after_onset_ms": (last_chunk - onset.t_capture) * 1000.0,
        "answer_cancelled_after_onset_ms": (marks.get("cancelled", float("nan")) - onset.t_capture) * 1000.0,
        "answer_cancelled_after_barge_in_ms": (marks.get("cancelled", float("nan")) - barges[0].t_capture)
        * 1000.0,
    }


async def barge_in_latency(trials: int) -> dict[str, Any]:
    import tempfile

    resources = Resources(AgentConfig())
    await resources.start()
    rows: list[dict[str, float]] = []
    failed = 0
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for seed in range(trials):
                row = await barge_in_trial(resources, seed, Path(tmp))
                if row is None:
                    failed += 1
                else:
                    rows.append(row)
    finally:
        await resources.stop()
    out: dict[str, Any] = {"trials": trials, "trials_without_a_barge_in": failed}
    for key in rows[0] if rows else []:
        out[key] = stats([r[key] for r in rows if np.isfinite(r[key])])
    return out


async def main(turns: int, trials: int) -> dict[str, Any]:
    return {
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()},
        "first_audio_instant_model": await runtime_overhead(turns, with_tool=False),
        "first_audio_instant_model_one_tool_step": await runtime_overhead(turns, with_tool=True),
        "barge_in": await barge_in_latency(trials),
        "targets": {"runtime_overhead_p95_ms": 15.0, "barge_in_stop_p95_ms": 150.0},
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--trials", type=int, default=20)
    args = parser.parse_args()
    figures = asyncio.run(main(args.turns, args.trials))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    json.dump(figures, sys.stdout, indent=2)
    print()
